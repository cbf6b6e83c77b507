#!/bin/sh
# Checks the ABI gate itself: with abi/libfednode.suppr, abidiff accepts a
# member appended to a versioned options struct and rejects a member
# inserted in the middle, a removed function and a renumbered enum value.
# Built on a throw-away two-function library so it runs in a second.
# usage: abi-gate-selftest.sh SUPPRESSIONS
set -eu
suppr=$1
cc=${CC:-cc}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

variant() { # name, extra struct members before/after, extra decls
	mkdir -p "$dir/$1"
	cat > "$dir/$1/gate.h" <<EOT
typedef enum fdn_gate_mode { FDN_GATE_A = 0, FDN_GATE_B = $5 } fdn_gate_mode;
typedef struct fdn_gate_options {
	unsigned int version;
	void *first;
	$2
	int last;
	$3
} fdn_gate_options;
__attribute__((visibility("default"))) int fdn_gate_run(const fdn_gate_options *o, fdn_gate_mode m);
$4
EOT
	cat > "$dir/$1/gate.c" <<EOT
#include "gate.h"
int fdn_gate_run(const fdn_gate_options *o, fdn_gate_mode m) { return o->last + (int)m; }
#ifdef WITH_EXTRA
int fdn_gate_extra(void) { return 1; }
#endif
EOT
	extra=""
	[ -n "$4" ] && extra=-DWITH_EXTRA
	$cc -g -O0 -shared -fPIC -fvisibility=hidden $extra -o "$dir/$1/libgate.so" "$dir/$1/gate.c"
	abidw --headers-dir "$dir/$1" --drop-private-types --no-show-locs \
		"$dir/$1/libgate.so" > "$dir/$1.abi"
}

extra_decl='__attribute__((visibility("default"))) int fdn_gate_extra(void);'
variant base "" "" "$extra_decl" 1
variant append "" "int appended;" "$extra_decl" 1
variant middle "int inserted;" "" "$extra_decl" 1
variant removed "" "" "" 1
variant renumbered "" "" "$extra_decl" 2

fail=0
expect() { # variant, "ok"|"break", suppressions or ""
	set +e
	if [ -n "$3" ]; then
		abidiff --no-added-syms --suppressions "$3" "$dir/base.abi" "$dir/$1.abi" >/dev/null
	else
		abidiff --no-added-syms "$dir/base.abi" "$dir/$1.abi" >/dev/null
	fi
	rc=$?
	set -e
	if { [ "$2" = ok ] && [ $rc -ne 0 ]; } || { [ "$2" = break ] && [ $rc -eq 0 ]; }; then
		echo "FAIL: $1 (suppressions: ${3:-none}): abidiff exited $rc, expected $2"
		fail=1
	else
		echo "ok: $1 (suppressions: ${3:-none}): abidiff exited $rc"
	fi
}

expect append ok "$suppr"
expect append break ""        # the suppression is what allows it
expect middle break "$suppr"
expect removed break "$suppr"
expect renumbered break "$suppr"
exit $fail
