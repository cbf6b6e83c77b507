/*
 * De-identification reports: what was done to which attribute, why an
 * image was refused, and what verification found.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "deid_private.h"

int fdn_deid__report_new(fdn_deid_report **out)
{
	fdn_deid_report *r = fdn__calloc(1, sizeof(*r));

	*out = r;
	return r ? 0 : fdn__error_oom();
}

int fdn_deid__path_string(fdn_buf *out, const uint32_t *path, size_t depth)
{
	for (size_t i = 0; i <= depth; i++) {
		int rc = fdn_buf__printf(out, "%s(%04X,%04X)", i ? "/" : "",
			(unsigned)(path[i] >> 16), (unsigned)(path[i] & 0xFFFFu));
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int grow(void **arr, size_t *cap, size_t count, size_t size)
{
	size_t ncap;
	void *n;

	if (count < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	n = fdn__reallocarray(*arr, ncap, size);
	if (!n)
		return fdn__error_oom();
	*arr = n;
	*cap = ncap;
	return 0;
}

int fdn_deid__report_add(fdn_deid_report *r, const uint32_t *path, size_t depth,
	const char *code, int kind)
{
	size_t off = r->arena.size;
	int rc;

	r->counts[kind]++;
	/* Formatting every path was half the cost of de-identifying a file
	 * whose caller asked for no report. */
	if (r->counts_only)
		return 0;
	rc = grow((void **)&r->entries, &r->entry_cap, r->entry_count,
		sizeof(*r->entries));
	if (rc == 0)
		rc = fdn_deid__path_string(&r->arena, path, depth);
	if (rc == 0)
		rc = fdn_buf__put(&r->arena, "", 1);
	if (rc != 0)
		return rc;
	r->entries[r->entry_count].path_off = off;
	r->entries[r->entry_count].code = code;
	r->entry_count++;
	return 0;
}

int fdn_deid__report_leak(fdn_deid_report *r, const char *fmt, ...)
{
	size_t off = r->leak_arena.size;
	char line[512];
	va_list ap;
	int rc = grow((void **)&r->leaks, &r->leak_cap, r->leak_count, sizeof(*r->leaks));

	if (rc != 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if ((rc = fdn_buf__put(&r->leak_arena, line, strlen(line) + 1)) != 0)
		return rc;
	r->leaks[r->leak_count++] = off;
	return 0;
}

int fdn_deid__report_refuse(fdn_deid_report *r, const char *reason)
{
	fdn__free(r->refusal);
	r->refusal = fdn__strdup(reason);
	return r->refusal ? 0 : fdn__error_oom();
}

size_t fdn_deid_report_count(const fdn_deid_report *report, int kind)
{
	if (!report || kind < 0 || kind > FDN_DEID_PSEUDONYMIZED)
		return 0;
	return report->counts[kind];
}

size_t fdn_deid_report_entry_count(const fdn_deid_report *report)
{
	return report ? report->entry_count : 0;
}

int fdn_deid_report_entry(const fdn_deid_report *report, size_t i, const char **path,
	const char **action)
{
	FDN__CHECK_ARG(report, "report");
	if (i >= report->entry_count)
		return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_DEID,
			"report entry %zu of %zu", i, report->entry_count);
	if (path)
		*path = report->arena.ptr + report->entries[i].path_off;
	if (action)
		*action = report->entries[i].code;
	return 0;
}

const char *fdn_deid_report_refusal(const fdn_deid_report *report)
{
	return report ? report->refusal : NULL;
}

size_t fdn_deid_report_leak_count(const fdn_deid_report *report)
{
	return report ? report->leak_count : 0;
}

const char *fdn_deid_report_leak(const fdn_deid_report *report, size_t i)
{
	if (!report || i >= report->leak_count)
		return NULL;
	return report->leak_arena.ptr + report->leaks[i];
}

void fdn_deid_report_free(fdn_deid_report *report)
{
	if (!report)
		return;
	fdn__free(report->entries);
	fdn_buf_dispose(&report->arena);
	fdn__free(report->leaks);
	fdn_buf_dispose(&report->leak_arena);
	fdn__free(report->refusal);
	fdn__free(report);
}
