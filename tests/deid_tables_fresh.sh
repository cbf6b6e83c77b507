#!/bin/sh
# lib/deid/tables.c is generated from data/ps3.15-2026c/ and checked in so
# that the build needs no Python; this fails when the two have drifted
# apart (data or generator changed without regenerating, or a hand edit).
#
# Usage: deid_tables_fresh.sh PYTHON SOURCE_ROOT
#
# Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
set -eu

python=$1
root=$2
tmp=$(mktemp "${TMPDIR:-/tmp}/deid-tables.XXXXXX")
trap 'rm -f "$tmp"' EXIT

"$python" "$root/tools/gen_deid_tables.py" --output "$tmp"
if ! diff -u "$root/lib/deid/tables.c" "$tmp"; then
	echo "lib/deid/tables.c is out of date:" \
		"run /usr/bin/python3 tools/gen_deid_tables.py" >&2
	exit 1
fi
