/*
 * What the cmocka tests share: a check that prints the library's error
 * message, and a scratch folder per test group.  Include after cmocka.h.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_TESTUTIL_H
#define FDN_TESTUTIL_H

#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

/* The call failed with @p code, and (unless NULL) the library's message
 * holds @p fragment. */
static inline void fdn_test_expect_error(int rc, int code, const char *fragment)
{
	const char *msg = fdn_error_last()->message;

	if (rc != code)
		fail_msg("rc %d, expected %d (%s)", rc, code, msg);
	if (fragment && !strstr(msg, fragment))
		fail_msg("message '%s' lacks '%s'", msg, fragment);
}

/* A loopback TCP port where nothing listens: bound to *fd_out (close it
 * when done), never listening, so connections are refused at once. */
static inline int fdn_test_dead_port(int *fd_out)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		fail_msg("cannot bind a loopback port");
	*fd_out = fd;
	return ntohs(a.sin_port);
}

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
