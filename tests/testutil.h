/*
 * What the cmocka tests share: a check that prints the library's error
 * message, and a scratch folder per test group.  Include after cmocka.h.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_TESTUTIL_H
#define FDN_TESTUTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fednode/common.h"

/* The call must succeed; otherwise the test fails with the library's
 * own message, which says why. */
#define OK(call)                                                          \
	do {                                                               \
		int ok_rc_ = (call);                                       \
		if (ok_rc_ != 0)                                           \
			fail_msg("%s = %d: %s", #call, ok_rc_,             \
				fdn_error_last()->message);                \
	} while (0)

/* Creates /tmp/fdn-test-<name>-XXXXXX in @p dir; 0 or -1. */
static inline int fdn_test_mkdtemp(char *dir, size_t size, const char *name)
{
	snprintf(dir, size, "/tmp/fdn-test-%s-XXXXXX", name);
	return mkdtemp(dir) ? 0 : -1;
}

static inline int fdn_test_unlink(const char *path, const struct stat *st, int flag,
	struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes @p dir and everything in it (read-only entries included). */
static inline int fdn_test_rmtree(const char *dir)
{
	return nftw(dir, fdn_test_unlink, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
