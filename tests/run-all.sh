#!/bin/sh
# The whole test suite: the banned-function check, unit tests, protocol
# tests against the built ternd, then unit and protocol tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer. Last line: "N passed, N
# failed".
cd "$(dirname "$0")/.." || exit 1
log=$(mktemp /tmp/tern-tests-XXXXXX.log)
status=0
jobs=$(nproc 2>/dev/null || echo 2)

step() {
	name="$1"; shift
	echo "== $name"
	if ! ( "$@" ) >"$log.step" 2>&1; then
		status=1
		echo "== $name: FAILED"
	fi
	cat "$log.step"
	cat "$log.step" >>"$log"
}

proto_step() {
	# $1: label, $2...: make variables for the build
	label="$1"; shift
	echo "== build ternd ($label)"
	if make -j"$jobs" "$@" all >"$log.build" 2>&1; then
		step "protocol tests ($label)" make "$@" proto
	else
		cat "$log.build"
		echo "== build ternd ($label): FAILED"
		status=1
	fi
}

step "banned functions" sh scripts/check-banned.sh
step "unit tests" make -j"$jobs" unit
proto_step "plain"
if [ "${TERN_SKIP_ASAN:-0}" != 1 ]; then
	step "unit tests (asan+ubsan)" make -j"$jobs" B=build-asan CC=clang \
		OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" unit
	proto_step "asan+ubsan" B=build-asan CC=clang \
		OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
fi

passed=0; failed=0
for line in $(grep -E '^(unit|proto).*[0-9]+ passed, [0-9]+ failed' "$log" |
	sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed.*/\1:\2/p'); do
	passed=$((passed + ${line%%:*}))
	failed=$((failed + ${line##*:}))
done
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then
	failed=1  # a build or script step failed without counted tests
fi
rm -f "$log" "$log.step" "$log.build"
echo "$passed passed, $failed failed"
[ "$status" = 0 ] && [ "$failed" = 0 ]
