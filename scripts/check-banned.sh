#!/bin/sh
# Fail when C sources use a banned function (STYLE.md section 4).
cd "$(dirname "$0")/.." || exit 1
banned='strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|strncpy|alloca'
hits=$(grep -rnE "(^|[^_a-zA-Z0-9.>])($banned)\(" src tests/unit tests/fuzz bench \
	--include='*.c' --include='*.h' 2>/dev/null |
	grep -vE '^[^:]*:[0-9]+:[[:space:]]*(/\*|\*)')
if [ -n "$hits" ]; then
	echo "banned functions used:"
	echo "$hits"
	exit 1
fi
echo "banned functions: none"
