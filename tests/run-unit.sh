#!/bin/sh
# Run unit-test binaries; print each one's summary and a total line.
# usage: run-unit.sh BUILD_DIR BIN...
b="$1"; shift
passed=0; failed=0; broken=0
for t in "$@"; do
	out=$("$t" 2>&1); rc=$?
	line=$(printf '%s\n' "$out" | tail -n 1)
	p=$(printf '%s' "$line" | sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
	f=$(printf '%s' "$line" | sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
	if [ -z "$p" ]; then
		# crashed before its summary (sanitizer report, abort)
		printf '%s\n' "$out" | tail -n 40
		echo "$(basename "$t"): CRASHED (exit $rc)"
		broken=$((broken + 1)); failed=$((failed + 1))
		continue
	fi
	if [ "$rc" != 0 ] || [ "$f" != 0 ]; then
		printf '%s\n' "$out" | tail -n 60
		[ "$f" = 0 ] && f=1
	else
		echo "$line"
	fi
	passed=$((passed + p)); failed=$((failed + f))
done
echo "unit ($b): $passed passed, $failed failed"
[ "$failed" = 0 ]
