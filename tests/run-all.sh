#!/bin/sh
# The whole test suite: build, unit tests, protocol tests, the banned-
# function check, then everything again under AddressSanitizer and
# UndefinedBehaviorSanitizer. The last line is "N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
log=$(mktemp /tmp/tern-tests-XXXXXX.log)
status=0

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

jobs=$(nproc 2>/dev/null || echo 2)
step "build" make -j"$jobs" all
step "banned functions" sh scripts/check-banned.sh
step "unit tests" make -j"$jobs" unit
step "protocol tests" make proto
if [ "${TERN_SKIP_ASAN:-0}" != 1 ]; then
	step "asan+ubsan build and tests" make -j"$jobs" asan
fi

passed=0; failed=0
for line in $(grep -E '^(unit|proto) .*[0-9]+ passed, [0-9]+ failed|^proto: ' "$log" |
	sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed.*/\1:\2/p'); do
	passed=$((passed + ${line%%:*}))
	failed=$((failed + ${line##*:}))
done
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then
	failed=1  # a build or script step failed without counted tests
fi
rm -f "$log" "$log.step"
echo "$passed passed, $failed failed"
[ "$status" = 0 ] && [ "$failed" = 0 ]
