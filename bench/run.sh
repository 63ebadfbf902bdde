#!/bin/sh
# make bench: tern side by side with Postfix + Dovecot (issue 9).
# Installs the bench-only packages (not in scripts/deps.sh, which CI uses),
# builds the load generator, raises the descriptor limit and runs
# bench/bench.py, which starts every server on loopback in a temporary
# directory, stops them on exit and prints the table. Knobs (environment):
# BENCH_RUNS=3 BENCH_PORT=26000 BENCH_BIG=100000 BENCH_IDLE=10000
# BENCH_IDLE_DOVECOT=1000 BENCH_SECONDS=5 BENCH_ONLY=smtp,imap,append,pop3,idle,big
set -eu
cd "$(dirname "$0")/.."
B=${B:-build}

PKGS="postfix dovecot-imapd dovecot-pop3d dovecot-lmtpd python3 libssl-dev"
missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
if [ -n "$missing" ]; then
	echo "bench: installing:$missing"
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -q
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -q --no-install-recommends $missing
fi
if [ "$(id -u)" != 0 ]; then
	echo "bench: run as root (Postfix and Dovecot start from a private" \
	    "config as root, then drop privileges)" >&2
	exit 1
fi

mkdir -p "$B/bench"
${CC:-cc} -std=c17 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror \
	-o "$B/bench/tload" bench/tload.c -lssl -lcrypto -lpthread

# 10,000 idle clients need that many descriptors on each side
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 30000 ]; then
	ulimit -n 30000
else
	ulimit -n "$hard"
fi

# bench.py stops what it started; this trap is the last resort for a
# crash of Python itself: the process group of bench.py is ours alone.
pid=""
trap '[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait' INT TERM HUP
B="$B" python3 bench/bench.py &
pid=$!
wait "$pid"
