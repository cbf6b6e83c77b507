/*
 * fednode version
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <stdio.h>

#include <fednode/fednode.h>

#include "cli.h"

int cmd_version(int argc, char **argv)
{
	int major, minor, patch;

	if (argc > 1) {
		fprintf(stderr, "fednode version: unexpected argument '%s'\n", argv[1]);
		return CLI_USAGE;
	}
	fdn_version(&major, &minor, &patch);
	printf("fednode %s\n", FDN_VERSION_STRING);
	printf("libfednode %d.%d.%d (ABI %d)\n", major, minor, patch, major);
	return CLI_OK;
}
