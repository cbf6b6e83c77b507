/*
 * Runtime version and the monotonic clock.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <time.h>

#include "core_private.h"
#include "fednode/version.h"

void fdn_version(int *major, int *minor, int *patch)
{
	if (major)
		*major = FDN_VERSION_MAJOR;
	if (minor)
		*minor = FDN_VERSION_MINOR;
	if (patch)
		*patch = FDN_VERSION_PATCH;
}

const char *fdn_version_string(void)
{
	return FDN_VERSION_STRING;
}

double fdn__monotonic_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
