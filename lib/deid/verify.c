/*
 * fdn_deid_verify: looks for values the profile should have removed or
 * replaced in the encoded de-identified dataset.  Findings name the
 * attribute and the length, never the value: the report goes to the
 * host's logs.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stdio.h>
#include <string.h>

#include "deid_private.h"
#include "dicom/edit_private.h"

/* Shorter text matches too much by chance (a 3-letter surname inside
 * any kept word or binary value); shorter numbers match slice positions,
 * window values and the digits of every remapped UID. */
#define MIN_TEXT 4
#define MIN_NUMBER 6
#define MIN_BINARY 8

typedef struct needle {
	size_t off, len;      /* in the needle arena */
	size_t path_off;      /* in the path arena */
} needle;

typedef struct verify_ctx {
	const fdn_deid_profile *p;
	const fdn_dataset *orig;
	int sop_index;
	uint32_t path[FDN_EDIT_MAX_DEPTH];
	bool gone[FDN_EDIT_MAX_DEPTH];   /* the sequence at that depth is gone */
	needle *needles;
	size_t count, cap;
	fdn_buf values;                  /* needle bytes */
	fdn_buf paths;                   /* NUL-separated paths */
	fdn_buf kept;                    /* kept values, NUL-separated */
	fdn_buf tmp, raw;
} verify_ctx;

static bool numeric_text(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!strchr("0123456789.+- ", s[i]))
			return false;
	return true;
}

static bool uniform(const char *s, size_t len)
{
	for (size_t i = 1; i < len; i++)
		if (s[i] != s[0])
			return false;
	return true;
}

static int add_needle(verify_ctx *v, const char *s, size_t len, size_t path_off,
	bool binary)
{
	if (len < (binary ? MIN_BINARY : numeric_text(s, len) ? MIN_NUMBER : MIN_TEXT) ||
	    uniform(s, len))
		return 0;
	if (v->count == v->cap) {
		size_t ncap = v->cap ? v->cap * 2 : 64;
		needle *n = fdn__reallocarray(v->needles, ncap, sizeof(*n));
		if (!n)
			return fdn__error_oom();
		v->needles = n;
		v->cap = ncap;
	}
	v->needles[v->count].off = v->values.size;
	v->needles[v->count].len = len;
	v->needles[v->count].path_off = path_off;
	v->count++;
	return fdn_buf__put(&v->values, s, len);
}

static size_t trim(const char **s, size_t len)
{
	while (len > 0 && ((*s)[0] == ' '))
		(*s)++, len--;
	while (len > 0 && ((*s)[len - 1] == ' ' || (*s)[len - 1] == '\0'))
		len--;
	return len;
}

/* The whole value, each of its values, and for names each component. */
static int add_text(verify_ctx *v, const char *s, size_t len, size_t path_off, bool pn)
{
	const char *seps = pn ? "\\^=" : "\\";
	size_t start = 0;
	int rc;

	len = trim(&s, len);
	if ((rc = add_needle(v, s, len, path_off, false)) != 0)
		return rc;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && !strchr(seps, s[i]))
			continue;
		if (start > 0 || i < len) {
			const char *part = s + start;
			size_t plen = trim(&part, i - start);
			if ((rc = add_needle(v, part, plen, path_off, false)) != 0)
				return rc;
		}
		start = i + 1;
	}
	return 0;
}

static int add_kept(verify_ctx *v, const char *s, size_t len)
{
	int rc = fdn_buf__put(&v->kept, s, len);

	return rc ? rc : fdn_buf__put(&v->kept, "", 1);
}

/* The Private Creator of a private element's block, read from its item. */
static const char *creator_of(verify_ctx *v, const fdn_element_info *e)
{
	const char *slash = strrchr(e->path, '/');
	size_t prefix = slash ? (size_t)(slash - e->path) + 1 : 0;
	fdn_buf path = FDN_BUF_INIT;
	const char *out = NULL;

	if ((uint16_t)e->tag < 0x1000)
		return NULL;
	fdn_buf__clear(&v->tmp);
	if (fdn_buf__put(&path, e->path, prefix) == 0 &&
	    fdn_buf__printf(&path, "(%04X,%04X)", (unsigned)(e->tag >> 16),
		    (unsigned)((e->tag >> 8) & 0xFFu)) == 0 &&
	    fdn_dataset_get_string(&v->tmp, v->orig, path.ptr) == 0)
		out = v->tmp.ptr ? v->tmp.ptr : "";
	fdn_buf_dispose(&path);
	return out;
}

static bool replaced(fdn_deid_op op)
{
	return op != FDN_DEID_OP_KEEP && op != FDN_DEID_OP_DESCEND &&
		op != FDN_DEID_OP_CREATOR;
}

static int collect_value(verify_ctx *v, const fdn_element_info *e, bool gone,
	size_t path_off)
{
	bool text = fdn_deid__vr_is_text(e->vr), pn = strcmp(e->vr, "PN") == 0;
	int rc;

	fdn_buf__clear(&v->raw);
	if (fdn_dataset_get_bytes(&v->raw, v->orig, e->path) != 0 || v->raw.size == 0) {
		fdn_error_clear();
		return 0;
	}
	if (!gone)
		return add_kept(v, v->raw.ptr, v->raw.size);
	if (!text) {
		const char *b = v->raw.ptr;
		size_t blen = trim(&b, v->raw.size);
		return add_needle(v, b, blen, path_off, true);
	}
	if ((rc = add_text(v, v->raw.ptr, v->raw.size, path_off, pn)) != 0)
		return rc;
	/* The UTF-8 form too: the output may be in another character set. */
	fdn_buf__clear(&v->tmp);
	if (fdn_dataset_get_string(&v->tmp, v->orig, e->path) == 0 && v->tmp.size &&
	    (v->tmp.size != v->raw.size || memcmp(v->tmp.ptr, v->raw.ptr, v->raw.size)))
		return add_text(v, v->tmp.ptr, v->tmp.size, path_off, pn);
	fdn_error_clear();
	return 0;
}

static int collect_cb(const fdn_element_info *e, void *payload)
{
	verify_ctx *v = payload;
	const char *creator = NULL;
	fdn_deid_decision d;
	bool gone;
	size_t path_off;
	int rc;

	if (e->depth >= FDN_EDIT_MAX_DEPTH)
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DEID, "nesting too deep");
	v->path[e->depth] = e->tag;
	path_off = v->paths.size;
	if ((rc = fdn_buf__put(&v->paths, e->path, strlen(e->path) + 1)) != 0)
		return rc;
	if ((e->tag >> 16) & 1u)
		creator = creator_of(v, e);
	d = fdn_deid__decide(v->p, v->sop_index, v->path, e->depth, e->vr, creator);
	gone = (e->depth > 0 && v->gone[e->depth - 1]) || replaced(d.op);
	v->gone[e->depth] = (e->depth > 0 && v->gone[e->depth - 1]) ||
		d.op == FDN_DEID_OP_REMOVE || d.op == FDN_DEID_OP_EMPTY;
	if (strcmp(e->vr, "SQ") == 0)
		return 0;
	return collect_value(v, e, gone, path_off);
}

/* Values the library itself writes: a needle inside them is no leak. */
static bool generated(const verify_ctx *v, const needle *n)
{
	static const char fixed[] = "ANONYMIZED 19000101000000 urn:fednode:anonymized YES "
		"MODIFIED UNMODIFIED REMOVED libfednode Basic Application Confidentiality "
		"Profile Retain Safe Private UIDs Device Identity Institution Patient "
		"Characteristics Longitudinal Temporal Information Full Modified Dates Clean "
		"Descriptors Structured Content Graphics Option Site rules Host text cleaning "
		"PS3.15 2026c DCM "
		/* the method codes (PS3.16 CID 7050) a time such as 11:31:00 matches */
		"113100 113101 113102 113103 113104 113105 113106 113107 113108 113109 "
		"113110 113111";
	const char *s = v->values.ptr + n->off;

	if (memmem(fixed, sizeof(fixed) - 1, s, n->len))
		return true;
	return v->kept.size && memmem(v->kept.ptr, v->kept.size, s, n->len);
}

/* A hit among the digits of a "2.25...." UID is a remapped UID's. */
static bool inside_new_uid(const char *hay, size_t at)
{
	size_t i = at;

	while (i > 0 && (strchr("0123456789.", hay[i - 1]) && hay[i - 1] != '\0'))
		i--;
	return strncmp(hay + i, "2.25.", 5) == 0;
}

/* A hit among the 26 base32 characters of a "FDN-..." pseudonym is the
 * keyed pseudonym's, not the original's (a 4-letter surname turns up in
 * about one pseudonym in 500). */
static bool inside_pseudonym(const char *hay, size_t at)
{
	size_t i = at;

	while (i > 0 && at - i < 26 && ((hay[i - 1] >= 'A' && hay[i - 1] <= 'Z') ||
			(hay[i - 1] >= '2' && hay[i - 1] <= '7')))
		i--;
	return i >= 4 && memcmp(hay + i - 4, "FDN-", 4) == 0;
}

static int search(verify_ctx *v, fdn_deid_report *r, const char *hay, size_t size,
	const char *where, size_t *leaks)
{
	for (size_t i = 0; i < v->count; i++) {
		const needle *n = &v->needles[i];
		const char *s = v->values.ptr + n->off, *hit = hay;
		size_t left = size;
		int rc;

		if (generated(v, n))
			continue;
		while ((hit = memmem(hit, left, s, n->len)) != NULL) {
			size_t at = (size_t)(hit - hay);
			if (!inside_new_uid(hay, at) && !inside_pseudonym(hay, at)) {
				rc = fdn_deid__report_leak(r, "%s: %zu-byte value found %s%zu",
					v->paths.ptr + n->path_off, n->len, where, at);
				if (rc != 0)
					return rc;
				(*leaks)++;
				break;
			}
			hit++;
			left = size - (size_t)(hit - hay);
		}
	}
	return 0;
}

typedef struct value_walk {
	verify_ctx *v;
	fdn_deid_report *r;
	const fdn_dataset *ds;
	size_t leaks;
	int rc;
} value_walk;

/* Header-only output cannot be encoded: search its values one by one. */
static int value_cb(const fdn_element_info *e, void *payload)
{
	value_walk *w = payload;
	fdn_buf val = FDN_BUF_INIT;
	char where[600];

	if (strcmp(e->vr, "SQ") == 0)
		return 0;
	if (fdn_dataset_get_bytes(&val, w->ds, e->path) == 0 && val.size) {
		snprintf(where, sizeof(where), "in the value of %s at offset ", e->path);
		w->rc = search(w->v, w->r, val.ptr, val.size, where, &w->leaks);
	}
	fdn_error_clear();
	fdn_buf_dispose(&val);
	return w->rc;
}

static int search_output(verify_ctx *v, fdn_deid_report *r, const fdn_dataset *out,
	size_t *leaks)
{
	fdn_dataset *copy = NULL;
	fdn_buf enc = FDN_BUF_INIT;
	int rc;

	if (fdn_dataset_is_header_only(out)) {
		value_walk w = { v, r, out, 0, 0 };
		rc = fdn_dataset_foreach(out, NULL, FDN_FOREACH_RECURSIVE, value_cb, &w);
		*leaks = w.leaks;
		return rc;
	}
	/* Pixel Data is left out: burned-in text is pixels, not bytes (the
	 * guard deals with it), and megabytes of samples match short values
	 * by chance.  Everything before it keeps its file offset. */
	rc = fdn_dataset_clone(&copy, out);
	if (rc == 0 && fdn_dataset_contains(copy, "(7FE0,0010)") == 1)
		rc = fdn_dataset_remove(copy, "(7FE0,0010)");
	if (rc == 0)
		rc = fdn_dataset_write_buffer(&enc, copy, 0);
	if (rc == 0)
		rc = search(v, r, enc.ptr, enc.size, "at byte offset ", leaks);
	fdn_buf_dispose(&enc);
	fdn_dataset_free(copy);
	return rc;
}

static void verify_ctx_free(verify_ctx *v)
{
	fdn__free(v->needles);
	fdn_buf_dispose(&v->values);
	fdn_buf_dispose(&v->paths);
	fdn_buf_dispose(&v->kept);
	fdn_buf_dispose(&v->tmp);
	fdn_buf_dispose(&v->raw);
}

static int run_verify(verify_ctx *v, fdn_deid_report *r, const fdn_dataset *out)
{
	fdn_instance_info info;
	size_t leaks = 0;
	int rc;

	memset(&info, 0, sizeof(info));
	info.version = FDN_INSTANCE_INFO_VERSION;
	if ((rc = fdn_dataset_instance_info(&info, v->orig)) != 0)
		return rc;
	v->sop_index = fdn_deid__sop_class_index(info.sop_class_uid);
	rc = fdn_dataset_foreach(v->orig, NULL, FDN_FOREACH_RECURSIVE, collect_cb, v);
	if (rc == 0)
		rc = search_output(v, r, out, &leaks);
	if (rc == 0 && leaks > 0)
		rc = fdn__error_set(FDN_EPHI, FDN_ERRCLASS_DEID,
			"de-identification check: %zu value(s) of the original found in the output",
			leaks);
	return rc;
}

int fdn_deid_verify(fdn_deid_report **report_out, const fdn_deid_profile *profile,
	const fdn_dataset *original, const fdn_dataset *deidentified)
{
	verify_ctx v;
	fdn_deid_report *r = NULL;
	int rc;

	if (report_out)
		*report_out = NULL;
	FDN__CHECK_ARG(profile, "profile");
	FDN__CHECK_ARG(original, "original");
	FDN__CHECK_ARG(deidentified, "deidentified");
	memset(&v, 0, sizeof(v));
	v.p = profile;
	v.orig = original;
	if ((rc = fdn_deid__report_new(&r)) != 0)
		return rc;
	rc = run_verify(&v, r, deidentified);
	verify_ctx_free(&v);
	if (report_out && (rc == 0 || rc == FDN_EPHI))
		*report_out = r;
	else
		fdn_deid_report_free(r);
	return rc;
}
