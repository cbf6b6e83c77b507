#!/bin/sh
# Writes the ABI of a libfednode build to stdout, as the baseline in this
# folder was made.  The library must carry debug info (the default
# debugoptimized build does).
# usage: abi/dump.sh LIBRARY HEADERS_DIR > abi/libfednode-$(uname -m).abi
set -eu
exec abidw --headers-dir "$2" --drop-private-types --no-show-locs "$1"
