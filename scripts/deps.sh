#!/bin/sh
# Install every Debian package that building, testing and benchmarking tern
# needs. Idempotent: packages already present are skipped, and apt-get is
# only called when something is missing.
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev llvm
libssl-dev libsqlite3-dev sqlite3 libsodium-dev zlib1g-dev libcrypt-dev
libc-ares-dev openssl ca-certificates
python3 python3-pytest
curl swaks libnet-ssleay-perl libio-socket-ssl-perl isync fetchmail mutt getmail6 dnsmasq-base python3-dkim python3-nacl
iproute2 procps psmisc libpython3.11-testsuite"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	exit 0
fi

echo "deps: installing:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
	SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
