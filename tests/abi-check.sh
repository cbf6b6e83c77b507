#!/bin/sh
# abi-compat: the built library against the committed baseline.
# The library is dumped with the same abidw options as the baseline (see
# abi/dump.sh) and the two dumps are compared.  Any non-zero abidiff exit
# fails (4: incompatible change, 12: removed symbol, 1/2: tool error).
# Added symbols are fine (--no-added-syms).  doc/abi.md says when the
# baseline is regenerated.
# usage: abi-check.sh LIBRARY BASELINE SUPPRESSIONS HEADERS_DIR
set -u
lib=$1 baseline=$2 suppr=$3 headers=$4
here=$(dirname "$0")
current=$(mktemp) || exit 1
trap 'rm -f "$current"' EXIT
sh "$here/../abi/dump.sh" "$lib" "$headers" > "$current" || exit 1
abidiff --no-added-syms --suppressions "$suppr" "$baseline" "$current"
rc=$?
if [ "$rc" -ne 0 ]; then
	echo "abi-compat: abidiff exited $rc: the ABI of $lib differs from $baseline" >&2
	exit 1
fi
echo "abi-compat: $lib is compatible with $baseline"
