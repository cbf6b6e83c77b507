/*
 * Core benchmark: the cost of building library-owned output in fdn_buf
 * against a plain memcpy into a preallocated block (the baseline), and of
 * raising an error with a formatted message.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <string.h>

#include "bench.h"
#include "core/core_private.h"

#define CHUNK 64
#define CHUNKS (1 << 18) /* 16 MiB of output */
#define ERRORS 200000

static char block[CHUNK * CHUNKS];
static const char chunk[CHUNK] = "0123456789abcdef0123456789abcdef0123456789abcdef012345678";

static void baseline_memcpy(void *arg)
{
	size_t i;

	(void)arg;
	for (i = 0; i < CHUNKS; i++)
		memcpy(block + i * CHUNK, chunk, CHUNK);
	__asm__ volatile("" : : "r"(block) : "memory");
}

static void buf_append(void *arg)
{
	fdn_buf b = FDN_BUF_INIT;
	size_t i;

	(void)arg;
	for (i = 0; i < CHUNKS; i++)
		if (fdn_buf__put(&b, chunk, CHUNK))
			abort();
	fdn_buf_dispose(&b);
}

static void raise_errors(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < ERRORS; i++)
		fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
			"%s: truncated element at byte offset %d", "/data/ct/0001.dcm", i);
}

int main(void)
{
	double base, t;

	if (fdn_init())
		return 1;
	base = bench_time(9, baseline_memcpy, NULL);
	bench_report("memcpy (baseline)", base, (double)CHUNK * CHUNKS / 1048576.0, "MiB", 0);
	t = bench_time(9, buf_append, NULL);
	bench_report("fdn_buf append", t, (double)CHUNK * CHUNKS / 1048576.0, "MiB", base);
	t = bench_time(9, raise_errors, NULL);
	bench_report("fdn error with message", t, ERRORS, "errors", 0);
	fdn_shutdown();
	return 0;
}
