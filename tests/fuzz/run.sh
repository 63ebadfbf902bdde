#!/bin/sh
# Build and run every libFuzzer target for SECONDS each.
# usage: run.sh BUILD_DIR SECONDS [target...]
# The committed seeds in corpus/<name>/ are read, never written: new inputs
# go to a scratch corpus; crashes are kept in tests/fuzz/crashes/.
set -u
b="$1"; secs="$2"; shift 2
cd "$(dirname "$0")/../.." || exit 1
libs="$b/lib/libtern_queue.a $b/lib/libtern_pop3.a $b/lib/libtern_imap.a \
$b/lib/libtern_smtp.a $b/lib/libtern_auth.a $b/lib/libtern_store.a \
$b/lib/libtern_mime.a $b/lib/libtern_lib.a"
# the archives that exist, in link order (ls would sort them by name)
have=""
for l in $libs; do [ -f "$l" ] && have="$have $l"; done
ldlibs="-lssl -lcrypto -lsqlite3 -lsodium -lz -lcrypt -lcares -lpthread -lm"
targets="$*"
[ -n "$targets" ] || targets=$(ls tests/fuzz/fuzz_*.c 2>/dev/null | sed 's,.*/fuzz_,,; s,\.c$,,')
mkdir -p "$b/fuzz" tests/fuzz/crashes
status=0
for t in $targets; do
	bin="$b/fuzz/fuzz_$t"
	clang -std=c17 -D_GNU_SOURCE -O1 -g -Isrc \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		"tests/fuzz/fuzz_$t.c" -Wl,--start-group $have -Wl,--end-group \
		$ldlibs -o "$bin" || {
		echo "fuzz $t: BUILD FAILED"; status=1; continue; }
	scratch=$(mktemp -d /tmp/tern-fuzz-XXXXXX)
	seeds="tests/fuzz/corpus/$t"
	[ -d "$seeds" ] || seeds=""
	echo "== fuzz $t for ${secs}s"
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="tests/fuzz/crashes/$t-" -print_final_stats=1 \
		"$scratch" $seeds 2>&1 | grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss|==[0-9]+==ERROR|SUMMARY|cov:)" | tail -5
	rc=$?
	if ls tests/fuzz/crashes/"$t"-* >/dev/null 2>&1; then
		echo "fuzz $t: CRASH saved in tests/fuzz/crashes/"
		status=1
	fi
	rm -rf "$scratch"
done
exit $status
