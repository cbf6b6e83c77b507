/*
 * De-identification: every row of PS3.15 Table E.1-1 under the Basic
 * Profile, each option and combinations, at top level and nested; keyed
 * UIDs, pseudonyms and date shifts across files; safe private attributes;
 * the burned-in guard; site rules; cleaning; verification; key files.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "testutil.h"

#include "fednode/fednode.h"
#include "deid/tables.h"


#define CT_CLASS "1.2.840.10008.5.1.4.1.1.2"
#define NEST "(0008,9215)" /* Derivation Code Sequence: no row, so K */

static char tmpdir[256];
static unsigned char key_a[FDN_DEID_KEY_BYTES], key_b[FDN_DEID_KEY_BYTES];

static int setup(void **state)
{
	(void)state;
	if (fdn_test_mkdtemp(tmpdir, sizeof(tmpdir), "deid") != 0)
		return -1;
	for (int i = 0; i < FDN_DEID_KEY_BYTES; i++) {
		key_a[i] = (unsigned char)i;
		key_b[i] = (unsigned char)(0xA5 ^ i);
	}
	return fdn_init();
}

static int teardown(void **state)
{
	(void)state;
	if (fdn_test_rmtree(tmpdir) != 0)
		return -1;
	return fdn_shutdown() < 0;
}

static fdn_deid_profile *profile_with(unsigned int options, const unsigned char *key,
	const char *rules)
{
	fdn_deid_options o = FDN_DEID_OPTIONS_INIT;
	fdn_deid_profile *p = NULL;

	o.options = options;
	o.key = key;
	o.rules_json = rules;
	OK(fdn_deid_profile_new(&p, &o));
	return p;
}

/* A string value, or NULL when absent; caller frees. */
static char *get(const fdn_dataset *ds, const char *path)
{
	fdn_buf b = FDN_BUF_INIT;
	char *s;

	if (fdn_dataset_get_string(&b, ds, path) != 0)
		return NULL;
	s = strdup(b.ptr ? b.ptr : "");
	fdn_buf_dispose(&b);
	return s;
}

static size_t byte_len(const fdn_dataset *ds, const char *path)
{
	fdn_buf b = FDN_BUF_INIT;
	size_t n;

	OK(fdn_dataset_get_bytes(&b, ds, path));
	n = b.size;
	fdn_buf_dispose(&b);
	return n;
}

/* --- every row ------------------------------------------------------------ */

/* Rows the test cannot set: the command group is not part of a dataset. */
static bool settable(const fdn_deid_rule *r)
{
	return r->match == FDN_DEID_MATCH_EXACT && r->vr && (r->tag >> 16) != 0x0000 &&
		(r->tag >> 16) != 0x0002 && (r->tag >> 16) != 0x0004;
}

static void first_vr(char vr[3], const fdn_deid_rule *r)
{
	vr[0] = r->vr[0];
	vr[1] = r->vr[1];
	vr[2] = '\0';
}

/* A value unique to row @p i that fits the VR. */
static void canary(char *out, size_t n, const char *vr, size_t i)
{
	if (!strcmp(vr, "DA"))
		snprintf(out, n, "%04zu%02zu01", 1901 + i % 90, 1 + i / 90);
	else if (!strcmp(vr, "DT"))
		snprintf(out, n, "%04zu%02zu01123000", 1901 + i % 90, 1 + i / 90);
	else if (!strcmp(vr, "TM"))
		snprintf(out, n, "%02zu%02zu11", i % 24, (i / 24) % 60);
	else if (!strcmp(vr, "DS"))
		snprintf(out, n, "9%05zu.5", i);
	else if (!strcmp(vr, "IS"))
		snprintf(out, n, "9%05zu", i);
	else if (!strcmp(vr, "AS"))
		snprintf(out, n, "%03zuY", i % 1000);
	else if (!strcmp(vr, "UI"))
		snprintf(out, n, "1.2.826.0.1.3680043.10.999.%zu", i);
	else if (!strcmp(vr, "UR"))
		snprintf(out, n, "http://canary%04zu.example", i);
	else if (!strcmp(vr, "PN"))
		snprintf(out, n, "Canary%04zu^Given", i);
	else if (!strcmp(vr, "AE") || !strcmp(vr, "CS") || !strcmp(vr, "SH"))
		snprintf(out, n, "CANARY%04zu", i);
	else
		snprintf(out, n, "Canary%04zu text", i);
}

static bool binary_vr(const char *vr)
{
	return !strcmp(vr, "OB") || !strcmp(vr, "OW") || !strcmp(vr, "UN") ||
		!strcmp(vr, "US");
}

static void set_row(fdn_dataset *ds, const char *prefix, const fdn_deid_rule *r, size_t i)
{
	char path[128], vr[3], val[64];

	first_vr(vr, r);
	snprintf(path, sizeof(path), "%s(%04X,%04X)", prefix, (unsigned)(r->tag >> 16),
		(unsigned)(r->tag & 0xFFFF));
	if (!strcmp(vr, "SQ")) {
		strcat(path, "[0]/(0008,0100)");
		snprintf(val, sizeof(val), "SQC%04zu", i);
		OK(fdn_dataset_set_string(ds, path, val));
	} else if (binary_vr(vr)) {
		snprintf(val, sizeof(val), "CANARYBIN%04zu", i);
		if (!strcmp(vr, "US"))
			OK(fdn_dataset_set_bytes(ds, path, vr, &i, 2));
		else
			OK(fdn_dataset_set_bytes(ds, path, vr, val, 14));
	} else {
		canary(val, sizeof(val), vr, i);
		OK(fdn_dataset_set_bytes(ds, path, vr, val, strlen(val)));
	}
}

static fdn_dataset *every_row_dataset(void)
{
	fdn_dataset *ds = NULL;

	OK(fdn_dataset_new(&ds, NULL));
	for (size_t i = 0; i < fdn_deid__rule_count; i++) {
		const fdn_deid_rule *r = &fdn_deid__rules[i];
		if (!settable(r))
			continue;
		set_row(ds, "", r, i);
		if (strcmp(r->vr, "SQ") != 0)
			set_row(ds, NEST "[0]/", r, i);
	}
	/* The instance identity the library needs, over the canaries. */
	OK(fdn_dataset_set_string(ds, "SOPClassUID", CT_CLASS));
	OK(fdn_dataset_set_string(ds, "SOPInstanceUID", "1.2.826.0.1.3680043.10.999.1.1"));
	OK(fdn_dataset_set_string(ds, "Modality", "CT"));
	OK(fdn_dataset_set_string(ds, "PatientID", "PID-EVERYROW"));
	return ds;
}

/* What the table says happens to row @p r at @p depth (0 or nested). */
static fdn_deid_action expected(const fdn_deid_rule *r, unsigned mask, int depth)
{
	uint32_t path[2] = { FDN_TAG(0x0008, 0x9215), r->tag };
	fdn_deid_action a = fdn_deid__action(r, mask);

	if (fdn_deid__action_is_composite(a))
		a = fdn_deid__resolve_at(a, fdn_deid__sop_class_index(CT_CLASS),
			depth ? path : path + 1, (size_t)depth + 1);
	return a;
}

typedef struct row_check {
	const fdn_dataset *out;
	const fdn_buf *enc;
	unsigned int options;
	const char *prefix;
} row_check;

static void check_value(const row_check *c, const fdn_deid_rule *r, const char *path,
	const char *vr, const char *orig, fdn_deid_action a)
{
	char *v = get(c->out, path);
	bool dates = !strcmp(vr, "DA") || !strcmp(vr, "DT");

	if (a == FDN_DEID_ACT_X) {
		if (v)
			fail_msg("%s (%s): X but present", path, r->keyword);
		return;
	}
	if (!v)
		fail_msg("%s (%s): %s but absent", path, r->keyword, fdn_deid__action_code(a));
	if (a == FDN_DEID_ACT_K || (a == FDN_DEID_ACT_C && !strcmp(vr, "TM") &&
		    (c->options & FDN_DEID_RETAIN_LONG_MODIFIED_DATES)))
		assert_string_equal(v, orig);
	else if (a == FDN_DEID_ACT_Z || (a == FDN_DEID_ACT_C && !dates && strcmp(vr, "UI")))
		assert_int_equal(byte_len(c->out, path), 0);
	else if (a == FDN_DEID_ACT_U || (a == FDN_DEID_ACT_C && !strcmp(vr, "UI")))
		assert_true(!strncmp(v, "2.25.", 5));
	else {
		/* D, and C as a date shift */
		assert_true(strlen(v) > 0);
		assert_string_not_equal(v, orig);
	}
	free(v);
}

static void check_row(const row_check *c, const fdn_deid_rule *r, size_t i, int depth)
{
	char path[128], vr[3], orig[64];
	fdn_deid_action a = expected(r, c->options & FDN_DEID_OPT_ALL, depth);

	first_vr(vr, r);
	snprintf(path, sizeof(path), "%s(%04X,%04X)", c->prefix, (unsigned)(r->tag >> 16),
		(unsigned)(r->tag & 0xFFFF));
	if (r->tag == FDN_TAG(0x0010, 0x0020) || r->tag == FDN_TAG(0x0010, 0x0010) ||
	    r->tag == FDN_TAG(0x0008, 0x0016) || r->tag == FDN_TAG(0x0008, 0x0018))
		return; /* pseudonyms and the instance identity: own tests */
	if (!strcmp(vr, "SQ")) {
		strcat(path, "[0]/(0008,0100)");
		snprintf(orig, sizeof(orig), "SQC%04zu", i);
		char *v = get(c->out, path);
		/* K, C, U and D keep the items and apply the profile to
		 * their content: CodeValue has no rule of its own, so it
		 * stays.  Z and X leave no item. */
		if (a == FDN_DEID_ACT_K || a == FDN_DEID_ACT_C || a == FDN_DEID_ACT_U ||
		    a == FDN_DEID_ACT_D)
			assert_string_equal(v ? v : "(absent)", orig);
		else if (v)
			fail_msg("%s (%s): %s but the item content stayed", path, r->keyword,
				fdn_deid__action_code(a));
		free(v);
		return;
	}
	if (binary_vr(vr)) {
		bool present = fdn_dataset_contains(c->out, path) == 1;
		assert_int_equal(present, a != FDN_DEID_ACT_X);
		return;
	}
	canary(orig, sizeof(orig), vr, i);
	check_value(c, r, path, vr, orig, a);
	/* Gone from the encoded output, not just from its element. */
	if (a != FDN_DEID_ACT_K && strlen(orig) >= 8 && strcmp(vr, "TM") &&
	    memmem(c->enc->ptr, c->enc->size, orig, strlen(orig)))
		fail_msg("%s (%s): canary still in the output", path, r->keyword);
}

static void run_every_row(const fdn_dataset *base, unsigned int options)
{
	fdn_deid_profile *p = profile_with(options, key_a, NULL);
	fdn_deid_report *rep = NULL;
	fdn_dataset *ds = NULL;
	fdn_buf enc = FDN_BUF_INIT;
	row_check c = { NULL, &enc, options, "" };

	OK(fdn_dataset_clone(&ds, base));
	OK(fdn_deid_apply(&rep, p, ds));
	OK(fdn_dataset_write_buffer(&enc, ds, 0));
	c.out = ds;
	for (size_t i = 0; i < fdn_deid__rule_count; i++) {
		const fdn_deid_rule *r = &fdn_deid__rules[i];
		if (!settable(r))
			continue;
		c.prefix = "";
		check_row(&c, r, i, 0);
		if (strcmp(r->vr, "SQ") != 0) {
			c.prefix = NEST "[0]/";
			check_row(&c, r, i, 1);
		}
	}
	assert_true(fdn_deid_report_entry_count(rep) > 1000);
	if (fdn_deid_report_count(rep, FDN_DEID_REMOVED) < 100)
		fail_msg("options 0x%x: %zu removed", options,
			fdn_deid_report_count(rep, FDN_DEID_REMOVED));
	/* The library's own check agrees that nothing leaked. */
	fdn_deid_report_free(rep);
	rep = NULL;
	if (fdn_deid_verify(&rep, p, base, ds) != 0) {
		for (size_t i = 0; i < fdn_deid_report_leak_count(rep); i++)
			print_message("leak: %s\n", fdn_deid_report_leak(rep, i));
		fail_msg("verify found leaks with options 0x%x", options);
	}
	fdn_deid_report_free(rep);
	fdn_buf_dispose(&enc);
	fdn_dataset_free(ds);
	fdn_deid_profile_free(p);
}

static void test_every_row(void **state)
{
	static const unsigned int sets[] = {
		0,
		FDN_DEID_RETAIN_SAFE_PRIVATE, FDN_DEID_RETAIN_UIDS, FDN_DEID_RETAIN_DEVICE_IDENTITY,
		FDN_DEID_RETAIN_INSTITUTION_IDENTITY, FDN_DEID_RETAIN_PATIENT_CHARACTERISTICS,
		FDN_DEID_RETAIN_LONG_FULL_DATES, FDN_DEID_RETAIN_LONG_MODIFIED_DATES,
		FDN_DEID_CLEAN_DESCRIPTORS, FDN_DEID_CLEAN_STRUCTURED_CONTENT,
		FDN_DEID_CLEAN_GRAPHICS,
		0x3FFu & ~(unsigned)FDN_DEID_RETAIN_LONG_FULL_DATES,
		0x3FFu & ~(unsigned)FDN_DEID_RETAIN_LONG_MODIFIED_DATES,
		FDN_DEID_RETAIN_UIDS | FDN_DEID_RETAIN_DEVICE_IDENTITY |
			FDN_DEID_RETAIN_LONG_MODIFIED_DATES,
	};
	fdn_dataset *base = every_row_dataset();

	(void)state;
	for (size_t i = 0; i < sizeof(sets) / sizeof(*sets); i++)
		run_every_row(base, sets[i]);
	fdn_dataset_free(base);
}

/* --- keyed replacements across files ---------------------------------------- */

static fdn_dataset *study_file(const char *pid, const char *sop, const char *date)
{
	fdn_dataset *ds = NULL;

	OK(fdn_dataset_new(&ds, NULL));
	OK(fdn_dataset_set_string(ds, "SOPClassUID", CT_CLASS));
	OK(fdn_dataset_set_string(ds, "SOPInstanceUID", sop));
	OK(fdn_dataset_set_string(ds, "StudyInstanceUID", "1.2.826.0.1.3680043.10.5.1"));
	OK(fdn_dataset_set_string(ds, "SeriesInstanceUID", "1.2.826.0.1.3680043.10.5.2"));
	OK(fdn_dataset_set_string(ds, "FrameOfReferenceUID", "1.2.826.0.1.3680043.10.5.3"));
	OK(fdn_dataset_set_string(ds, "Modality", "CT"));
	OK(fdn_dataset_set_string(ds, "PatientID", pid));
	OK(fdn_dataset_set_string(ds, "PatientName", "Doe^John"));
	OK(fdn_dataset_set_string(ds, "StudyDate", date));
	OK(fdn_dataset_set_string(ds, "SeriesDate", "20200229"));
	OK(fdn_dataset_set_string(ds, "StudyTime", "101010"));
	OK(fdn_dataset_set_string(ds, "PixelSpacing", "0.5\\0.5"));
	OK(fdn_dataset_set_string(ds, NEST "[0]/ReferencedSOPClassUID", CT_CLASS));
	OK(fdn_dataset_set_string(ds, NEST "[0]/ReferencedSOPInstanceUID",
		"1.2.826.0.1.3680043.10.5.100"));
	return ds;
}

static bool valid_uid(const char *u)
{
	size_t n = strlen(u);

	if (n == 0 || n > 64)
		return false;
	for (const char *c = u; *c; c++) {
		if (*c == '.')
			continue;
		if (*c < '0' || *c > '9')
			return false;
		if (*c == '0' && (c == u || c[-1] == '.') && c[1] && c[1] != '.')
			return false;
	}
	return true;
}

static long day_number(const char *d)
{
	int y, m, dd;
	struct tm tm;

	assert_int_equal(sscanf(d, "%4d%2d%2d", &y, &m, &dd), 3);
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = dd;
	tm.tm_hour = 12;
	return (long)(timegm(&tm) / 86400);
}

static void test_uids_pseudonyms_dates(void **state)
{
	fdn_deid_profile *p = profile_with(FDN_DEID_RETAIN_LONG_MODIFIED_DATES, key_a, NULL);
	fdn_deid_profile *q = profile_with(0, key_b, NULL);
	fdn_dataset *a = study_file("PAT-1", "1.2.826.0.1.3680043.10.5.100", "20240110");
	fdn_dataset *b = study_file("PAT-1", "1.2.826.0.1.3680043.10.5.101", "20240120");
	fdn_dataset *c = study_file("PAT-2", "1.2.826.0.1.3680043.10.5.102", "20240110");
	fdn_dataset *d = NULL;
	fdn_buf pseudo = FDN_BUF_INIT;
	char *s1, *s2, *s3, *v;

	(void)state;
	OK(fdn_dataset_clone(&d, a));
	OK(fdn_deid_apply(NULL, p, a));
	OK(fdn_deid_apply(NULL, p, b));
	OK(fdn_deid_apply(NULL, p, c));
	OK(fdn_deid_apply(NULL, q, d));
	/* Same UID, same replacement, references included. */
	s1 = get(a, "StudyInstanceUID");
	s2 = get(b, "StudyInstanceUID");
	assert_string_equal(s1, s2);
	assert_true(valid_uid(s1) && !strncmp(s1, "2.25.", 5));
	v = get(d, "StudyInstanceUID");
	assert_string_not_equal(s1, v); /* another key */
	free(v);
	free(s2);
	s2 = get(a, "SOPInstanceUID");
	s3 = get(b, NEST "[0]/ReferencedSOPInstanceUID");
	assert_string_equal(s2, s3); /* b references a's instance */
	assert_true(valid_uid(s2));
	v = get(a, "SOPClassUID");
	assert_string_equal(v, CT_CLASS); /* not in the table: kept */
	free(v);
	v = get(a, NEST "[0]/ReferencedSOPClassUID");
	assert_string_equal(v, CT_CLASS);
	free(v);
	free(s1);
	free(s2);
	free(s3);
	/* Pseudonyms. */
	OK(fdn_deid_pseudonym_for(&pseudo, p, "PAT-1"));
	v = get(a, "PatientID");
	assert_string_equal(v, pseudo.ptr);
	assert_true(!strncmp(v, "FDN-", 4) && strlen(v) <= 64);
	free(v);
	v = get(a, "PatientName");
	assert_true(!strncmp(v, pseudo.ptr, pseudo.size) && v[pseudo.size] == '^');
	free(v);
	v = get(c, "PatientID");
	assert_string_not_equal(v, pseudo.ptr);
	free(v);
	/* Dates: one offset per patient, intervals kept, times unchanged. */
	s1 = get(a, "StudyDate");
	s2 = get(b, "StudyDate");
	s3 = get(c, "StudyDate");
	assert_int_equal(day_number(s2) - day_number(s1), 10);
	assert_true(day_number(s1) < day_number("20240110"));
	assert_true(day_number(s1) >= day_number("20240110") - 3650);
	assert_string_not_equal(s1, s3); /* another patient, another offset */
	v = get(a, "SeriesDate");
	assert_int_equal(day_number("20240110") - day_number("20200229"),
		day_number(s1) - day_number(v));
	free(v);
	v = get(a, "StudyTime");
	assert_string_equal(v, "101010");
	free(v);
	v = get(a, "PixelSpacing");
	assert_string_equal(v, "0.5\\0.5");
	free(v);
	/* Marking. */
	v = get(a, "(0012,0062)");
	assert_string_equal(v, "YES");
	free(v);
	v = get(a, "(0028,0303)");
	assert_string_equal(v, "MODIFIED");
	free(v);
	v = get(a, "(0012,0064)[1]/(0008,0100)");
	assert_string_equal(v, "113107");
	free(v);
	v = get(d, "(0028,0303)");
	assert_string_equal(v, "REMOVED");
	free(v);
	v = get(d, "StudyDate");
	assert_string_equal(v, "");
	free(v);
	free(s1);
	free(s2);
	free(s3);
	fdn_buf_dispose(&pseudo);
	fdn_dataset_free(a);
	fdn_dataset_free(b);
	fdn_dataset_free(c);
	fdn_dataset_free(d);
	fdn_deid_profile_free(p);
	fdn_deid_profile_free(q);
}

static void test_date_forms(void **state)
{
	fdn_deid_profile *p = profile_with(FDN_DEID_RETAIN_LONG_MODIFIED_DATES, key_a, NULL);
	fdn_dataset *ds = study_file("PAT-1", "1.2.826.0.1.3680043.10.5.100", "20240110");
	char *v;

	(void)state;
	OK(fdn_dataset_set_string(ds, "StudyDate", "20240110\\20240111"));
	OK(fdn_dataset_set_bytes(ds, "SeriesDate", "DA", "2024", 4));
	OK(fdn_dataset_set_bytes(ds, "AcquisitionDate", "DA", "20240101-20240131 ", 18));
	OK(fdn_dataset_set_bytes(ds, "AcquisitionDateTime", "DT", "20240110123000.5+0100 ", 22));
	OK(fdn_dataset_set_bytes(ds, "ContentDate", "DA", "2024.01.10", 10));
	OK(fdn_deid_apply(NULL, p, ds));
	v = get(ds, "StudyDate");
	assert_int_equal(strlen(v), 17);
	assert_int_equal(day_number(v + 9) - day_number(v), 1);
	free(v);
	v = get(ds, "SeriesDate");
	assert_int_equal(strlen(v), 4);
	free(v);
	v = get(ds, "AcquisitionDate");
	assert_true(strlen(v) == 17 && v[8] == '-');
	assert_int_equal(day_number(v + 9) - day_number(v), 30);
	free(v);
	v = get(ds, "AcquisitionDateTime");
	assert_int_equal(strlen(v), 21);
	assert_memory_equal(v + 8, "123000.5+0100", 13);
	assert_true(strncmp(v, "20240110", 8) != 0);
	free(v);
	v = get(ds, "ContentDate"); /* unparsable: emptied, never kept */
	assert_string_equal(v, "");
	free(v);
	fdn_dataset_free(ds);
	fdn_deid_profile_free(p);
}

/* --- private attributes --------------------------------------------------------- */

static void test_safe_private(void **state)
{
	fdn_deid_profile *keep = profile_with(FDN_DEID_RETAIN_SAFE_PRIVATE, key_a, NULL);
	fdn_deid_profile *basic = profile_with(0, key_a, NULL);
	const fdn_deid_safe_private_row *row = &fdn_deid__safe_private_rows[0];
	fdn_dataset *ds = study_file("PAT-1", "1.2.826.0.1.3680043.10.5.100", "20240110");
	fdn_dataset *ds2 = NULL;
	char path[64], creator[80], vr[3] = "LO";
	uint16_t g = row->group;
	int off = row->element_offset;

	(void)state;
	/* Block 0x10: the exact creator; 0x11: a wrong one; in 0x10 also an
	 * element offset that is not on the list. */
	snprintf(creator, sizeof(creator), "%s", row->creator);
	snprintf(path, sizeof(path), "(%04X,0010)", g);
	OK(fdn_dataset_set_bytes(ds, path, "LO", creator, strlen(creator)));
	snprintf(path, sizeof(path), "(%04X,0011)", g);
	OK(fdn_dataset_set_bytes(ds, path, "LO", "NOT A CREATOR", 13));
	if (row->vr && strlen(row->vr) >= 2 && strcmp(row->vr, "SQ") != 0) {
		vr[0] = row->vr[0];
		vr[1] = row->vr[1];
	}
	snprintf(path, sizeof(path), "(%04X,10%02X)", g, off);
	OK(fdn_dataset_set_bytes(ds, path, vr, "12", 2));
	snprintf(path, sizeof(path), "(%04X,11%02X)", g, off);
	OK(fdn_dataset_set_bytes(ds, path, vr, "12", 2));
	for (int o = 0; o < 256; o++) {
		if (!fdn_deid__safe_private(g, (uint8_t)o, row->creator)) {
			snprintf(path, sizeof(path), "(%04X,10%02X)", g, o);
			OK(fdn_dataset_set_bytes(ds, path, "LO", "SECRET", 6));
			break;
		}
	}
	/* Another block whose only element is not safe: its creator goes. */
	OK(fdn_dataset_set_bytes(ds, "(0031,0010)", "LO", "ACME 1", 6));
	OK(fdn_dataset_set_bytes(ds, "(0031,1001)", "LO", "SECRET", 6));
	OK(fdn_dataset_clone(&ds2, ds));
	OK(fdn_deid_apply(NULL, keep, ds));
	snprintf(path, sizeof(path), "(%04X,0010)", g);
	assert_int_equal(fdn_dataset_contains(ds, path), 1);
	snprintf(path, sizeof(path), "(%04X,10%02X)", g, off);
	assert_int_equal(fdn_dataset_contains(ds, path), 1);
	snprintf(path, sizeof(path), "(%04X,0011)", g);
	assert_int_equal(fdn_dataset_contains(ds, path), 0);
	snprintf(path, sizeof(path), "(%04X,11%02X)", g, off);
	assert_int_equal(fdn_dataset_contains(ds, path), 0);
	assert_int_equal(fdn_dataset_contains(ds, "(0031,0010)"), 0);
	assert_int_equal(fdn_dataset_contains(ds, "(0031,1001)"), 0);
	/* Without the option nothing private survives. */
	OK(fdn_deid_apply(NULL, basic, ds2));
	snprintf(path, sizeof(path), "(%04X,0010)", g);
	assert_int_equal(fdn_dataset_contains(ds2, path), 0);
	snprintf(path, sizeof(path), "(%04X,10%02X)", g, off);
	assert_int_equal(fdn_dataset_contains(ds2, path), 0);
	fdn_dataset_free(ds);
	fdn_dataset_free(ds2);
	fdn_deid_profile_free(keep);
	fdn_deid_profile_free(basic);
}

/* --- the burned-in guard ---------------------------------------------------------- */

static void expect_refused(const fdn_deid_profile *p, fdn_dataset *ds)
{
	fdn_deid_report *rep = NULL;
	fdn_buf before = FDN_BUF_INIT, after = FDN_BUF_INIT;

	OK(fdn_dataset_write_buffer(&before, ds, 0));
	assert_int_equal(fdn_deid_apply(&rep, p, ds), FDN_EPHI);
	assert_non_null(fdn_deid_report_refusal(rep));
	OK(fdn_dataset_write_buffer(&after, ds, 0));
	assert_int_equal(before.size, after.size);
	assert_memory_equal(before.ptr, after.ptr, before.size);
	fdn_deid_report_free(rep);
	fdn_buf_dispose(&before);
	fdn_buf_dispose(&after);
}

static void test_burned_in(void **state)
{
	fdn_deid_profile *p = profile_with(0, key_a, NULL);
	fdn_deid_options o = FDN_DEID_OPTIONS_INIT;
	fdn_deid_profile *allow = NULL;
	fdn_dataset *ds = study_file("PAT-1", "1.2.826.0.1.3680043.10.5.100", "20240110");

	(void)state;
	o.key = key_a;
	o.allow_burned_in = 1;
	OK(fdn_deid_profile_new(&allow, &o));
	OK(fdn_dataset_set_string(ds, "BurnedInAnnotation", "YES"));
	expect_refused(p, ds);
	OK(fdn_dataset_set_string(ds, "BurnedInAnnotation", "NO"));
	OK(fdn_dataset_set_string(ds, "RecognizableVisualFeatures", "YES"));
	expect_refused(p, ds);
	OK(fdn_dataset_remove(ds, "RecognizableVisualFeatures"));
	OK(fdn_dataset_remove(ds, "BurnedInAnnotation"));
	OK(fdn_dataset_set_string(ds, "Modality", "US"));
	OK(fdn_dataset_set_string(ds, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.6.1"));
	expect_refused(p, ds);
	OK(fdn_dataset_set_string(ds, "Modality", "OT"));
	OK(fdn_dataset_set_string(ds, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.7"));
	expect_refused(p, ds);
	OK(fdn_dataset_set_string(ds, "BurnedInAnnotation", "NO"));
	OK(fdn_deid_apply(NULL, p, ds)); /* declared free of burned-in text */
	fdn_dataset_free(ds);
	ds = study_file("PAT-1", "1.2.826.0.1.3680043.10.5.100", "20240110");
	OK(fdn_dataset_set_string(ds, "BurnedInAnnotation", "YES"));
	OK(fdn_deid_apply(NULL, allow, ds));
	fdn_dataset_free(ds);
	fdn_deid_profile_free(p);
	fdn_deid_profile_free(allow);
}

/* --- options and rules --------------------------------------------------------------- */

static void expect_bad(unsigned int options, const unsigned char *key, const char *rules,
	const char *message_part)
{
	fdn_deid_options o = FDN_DEID_OPTIONS_INIT;
	fdn_deid_profile *p = NULL;

	o.options = options;
	o.key = key;
	o.rules_json = rules;
	assert_int_equal(fdn_deid_profile_new(&p, &o), FDN_EINVALID);
	assert_null(p);
	if (!strstr(fdn_error_last()->message, message_part))
		fail_msg("'%s' lacks '%s'", fdn_error_last()->message, message_part);
}

static void test_options_and_rules(void **state)
{
	fdn_deid_profile *p;
	fdn_dataset *ds = study_file("PAT-1", "1.2.826.0.1.3680043.10.5.100", "20240110");
	char *v;

	(void)state;
	expect_bad(FDN_DEID_RETAIN_LONG_FULL_DATES | FDN_DEID_RETAIN_LONG_MODIFIED_DATES,
		key_a, NULL, "exclude each other");
	expect_bad(0, NULL, NULL, "key");
	expect_bad(0, key_a, "{\"rules\": [", "invalid JSON");
	expect_bad(0, key_a, "{\"rulez\": []}", "unknown member");
	expect_bad(0, key_a, "{\"rules\": [{\"tag\": \"(0010,1010)\", \"action\": \"keep\"},"
		"{\"tag\": \"Nonsense\", \"action\": \"keep\"}]}", "rule 1, \"tag\"");
	expect_bad(0, key_a, "{\"rules\": [{\"tag\": \"PatientAge\", \"action\": \"zap\"}]}",
		"rule 0, \"action\"");
	expect_bad(0, key_a, "{\"rules\": [{\"tag\": \"(0029,1010)\", \"action\": \"keep\"}]}",
		"private");
	expect_bad(0, key_a, "{\"rules\": [{\"tag\": \"PatientAge\", \"action\": \"keep\", "
		"\"x\": 1}]}", "rule 0, \"x\"");
	expect_bad(0, key_a, "{\"rules\": [{\"tag\": \"PatientAge\", \"action\": \"keep\"},"
		"{\"tag\": \"00101010\", \"action\": \"remove\"}]}", "repeats");
	p = profile_with(0, key_a, "{\"rules\": [{\"tag\": \"(0010,1010)\", \"action\": \"keep\"},"
		"{\"tag\": \"PixelSpacing\", \"action\": \"remove\"},"
		"{\"tag\": \"AccessionNumber\", \"action\": \"pseudonymize\"}]}");
	OK(fdn_dataset_set_string(ds, "PatientAge", "061Y"));
	OK(fdn_dataset_set_string(ds, "AccessionNumber", "ACC12345"));
	OK(fdn_deid_apply(NULL, p, ds));
	v = get(ds, "PatientAge");
	assert_string_equal(v, "061Y");
	free(v);
	assert_int_equal(fdn_dataset_contains(ds, "PixelSpacing"), 0);
	v = get(ds, "AccessionNumber");
	assert_true(!strncmp(v, "FDN-", 4) && strlen(v) == 16);
	free(v);
	fdn_dataset_free(ds);
	fdn_deid_profile_free(p);
}

static int cleaner(fdn_buf *out, const char *path, const char *vr, const char *value,
	void *payload)
{
	int *calls = payload;

	(void)path;
	(void)vr;
	(*calls)++;
	if (strstr(value, "FAIL"))
		return FDN_EUSER;
	return strstr(value, "EMPTY") ? 0 :
		fdn_buf_set(out, "CLEANED", 7);
}

static void test_clean_callback(void **state)
{
	fdn_deid_options o = FDN_DEID_OPTIONS_INIT;
	fdn_deid_profile *p = NULL;
	fdn_dataset *ds = study_file("PAT-1", "1.2.826.0.1.3680043.10.5.100", "20240110");
	int calls = 0;
	char *v;

	(void)state;
	o.key = key_a;
	o.options = FDN_DEID_CLEAN_DESCRIPTORS;
	o.clean = cleaner;
	o.clean_payload = &calls;
	OK(fdn_deid_profile_new(&p, &o));
	OK(fdn_dataset_set_string(ds, "StudyDescription", "Doe follow-up"));
	OK(fdn_dataset_set_string(ds, "SeriesDescription", "EMPTY me"));
	OK(fdn_deid_apply(NULL, p, ds));
	assert_true(calls >= 2);
	v = get(ds, "StudyDescription");
	assert_string_equal(v, "CLEANED");
	free(v);
	v = get(ds, "SeriesDescription");
	assert_string_equal(v, "");
	free(v);
	fdn_dataset_free(ds);
	ds = study_file("PAT-1", "1.2.826.0.1.3680043.10.5.100", "20240110");
	OK(fdn_dataset_set_string(ds, "StudyDescription", "FAIL"));
	assert_int_equal(fdn_deid_apply(NULL, p, ds), FDN_EUSER);
	fdn_dataset_free(ds);
	fdn_deid_profile_free(p);
}

/* --- verification ----------------------------------------------------------------------- */

static void test_verify(void **state)
{
	fdn_deid_profile *p = profile_with(FDN_DEID_RETAIN_SAFE_PRIVATE, key_a, NULL);
	fdn_dataset *orig = study_file("PAT-1", "1.2.826.0.1.3680043.10.5.100", "20240110");
	fdn_dataset *out = NULL;
	fdn_deid_report *rep = NULL;
	const char *leak;

	(void)state;
	OK(fdn_dataset_set_string(orig, "PatientName", "Smithson^Johanna"));
	OK(fdn_dataset_clone(&out, orig));
	OK(fdn_deid_apply(NULL, p, out));
	OK(fdn_deid_verify(&rep, p, orig, out));
	assert_int_equal(fdn_deid_report_leak_count(rep), 0);
	fdn_deid_report_free(rep);
	/* Plant the name in a kept free-text element. */
	OK(fdn_dataset_set_string(out, "ImageComments", "seen by Smithson^Johanna"));
	assert_int_equal(fdn_deid_verify(&rep, p, orig, out), FDN_EPHI);
	assert_true(fdn_deid_report_leak_count(rep) >= 1);
	leak = fdn_deid_report_leak(rep, 0);
	assert_non_null(strstr(leak, "(0010,0010)"));
	assert_non_null(strstr(leak, "byte offset"));
	assert_null(strstr(leak, "Smithson")); /* never the value itself */
	assert_null(strstr(fdn_error_last()->message, "Smithson"));
	fdn_deid_report_free(rep);
	fdn_dataset_free(orig);
	fdn_dataset_free(out);
	fdn_deid_profile_free(p);
}

/* Values the profile writes itself are no leak even when an original value
 * happens to be part of them: a time equal to a method code, a surname
 * that is a run of the patient's new pseudonym. */
static void test_verify_generated_values(void **state)
{
	fdn_deid_profile *p = profile_with(0, key_a, NULL);
	fdn_dataset *orig = study_file("PAT-1", "1.2.826.0.1.3680043.10.5.100", "20240110");
	fdn_dataset *out = NULL;
	fdn_deid_report *rep = NULL;
	fdn_buf pseudonym = FDN_BUF_INIT;
	char name[64], surname[8];

	(void)state;
	OK(fdn_deid_pseudonym_for(&pseudonym, p, "PAT-1"));
	assert_true(pseudonym.size > 12 && strncmp(pseudonym.ptr, "FDN-", 4) == 0);
	memcpy(surname, pseudonym.ptr + 6, 5); /* five characters from its middle */
	surname[5] = '\0';
	snprintf(name, sizeof(name), "%s^Johanna", surname);
	OK(fdn_dataset_set_string(orig, "PatientName", name));
	OK(fdn_dataset_set_string(orig, "StudyTime", "113100"));
	OK(fdn_dataset_clone(&out, orig));
	OK(fdn_deid_apply(NULL, p, out));
	OK(fdn_deid_verify(&rep, p, orig, out));
	assert_int_equal(fdn_deid_report_leak_count(rep), 0);
	fdn_deid_report_free(rep);
	/* The same surname elsewhere is still a leak. */
	snprintf(name, sizeof(name), "seen by %s", surname);
	OK(fdn_dataset_set_string(out, "ImageComments", name));
	assert_int_equal(fdn_deid_verify(&rep, p, orig, out), FDN_EPHI);
	fdn_deid_report_free(rep);
	fdn_buf_dispose(&pseudonym);
	fdn_dataset_free(orig);
	fdn_dataset_free(out);
	fdn_deid_profile_free(p);
}

/* --- key files ---------------------------------------------------------------------------- */

static void test_key_files(void **state)
{
	char path[512];
	unsigned char k1[FDN_DEID_KEY_BYTES], k2[FDN_DEID_KEY_BYTES];
	struct stat st;
	FILE *f;

	(void)state;
	assert_int_equal(fdn_deid_key_bytes(), FDN_DEID_KEY_BYTES);
	snprintf(path, sizeof(path), "%s/site.key", tmpdir);
	OK(fdn_deid_key_generate(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, FDN_DEID_KEY_BYTES);
	OK(fdn_deid_key_load(k1, sizeof(k1), path));
	assert_int_equal(fdn_deid_key_generate(path), FDN_ECONFLICT);
	OK(fdn_deid_key_load(k2, sizeof(k2), path));
	assert_memory_equal(k1, k2, sizeof(k1)); /* not overwritten */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(fdn_deid_key_load(k2, sizeof(k2), path), FDN_EINVALID);
	assert_non_null(strstr(fdn_error_last()->message, "chmod 600"));
	snprintf(path, sizeof(path), "%s/short.key", tmpdir);
	f = fopen(path, "wb");
	assert_non_null(f);
	fwrite(k1, 1, 16, f);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(fdn_deid_key_load(k2, sizeof(k2), path), FDN_EINVALID);
	snprintf(path, sizeof(path), "%s/none.key", tmpdir);
	assert_int_equal(fdn_deid_key_load(k2, sizeof(k2), path), FDN_ENOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_row),
		cmocka_unit_test(test_uids_pseudonyms_dates),
		cmocka_unit_test(test_date_forms),
		cmocka_unit_test(test_safe_private),
		cmocka_unit_test(test_burned_in),
		cmocka_unit_test(test_options_and_rules),
		cmocka_unit_test(test_clean_callback),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_verify_generated_values),
		cmocka_unit_test(test_key_files),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
