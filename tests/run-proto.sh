#!/bin/sh
# Run the protocol tests (pytest, Debian's python3) against $TERND/$TERNCTL.
# Prints "proto: N passed, N failed" last.
cd "$(dirname "$0")/proto" || exit 1
xml=$(mktemp /tmp/tern-proto-XXXXXX.xml)
# A private base directory: pytest's default one (/tmp/pytest-of-USER)
# keeps only the 3 newest runs, so concurrent runs (other worktrees)
# deleted each other's live server directories.
tmp=$(mktemp -d /tmp/tern-proto-XXXXXX)
/usr/bin/python3 -m pytest -q -rfE -p no:cacheprovider --junitxml="$xml" \
	--basetemp="$tmp/t" ${PYTEST_ARGS:-} .
rc=$?
if [ "$rc" = 0 ]; then rm -rf "$tmp"; else echo "proto: test directories kept in $tmp"; fi
/usr/bin/python3 - "$xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("proto: 0 passed, 1 failed")
    sys.exit(0)
suites = [root] if root.tag == "testsuite" else list(root)
total = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print("proto: %d passed, %d failed (%d skipped)" % (total - bad - skipped, bad, skipped))
PY
rm -f "$xml"
# 5 = no tests collected: not a failure while suites are being written
[ "$rc" = 0 ] || [ "$rc" = 5 ]
