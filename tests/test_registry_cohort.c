/*
 * Cohorts: the filter language (grammar, positioned errors, injection),
 * counts, snapshots, iteration, withdrawal and manifests.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "fednode/fednode.h"
#include "fednode/registry.h"
#include "registry/cohort_private.h"

#define OK(x) assert_int_equal((x), 0)
#define UID(n) "1.2.826.0.1.3680043.10.999." n

/* ---------------------------------------------------------------------- */
/* The filter language alone                                                */

static void check_ok(const char *filter)
{
	int col = -1;

	if (fdn_registry_filter_check(&col, filter) != 0)
		fail_msg("'%s' refused: %s", filter, fdn_error_last()->message);
	assert_int_equal(col, 0);
}

static void check_err(const char *filter, int column)
{
	char prefix[64];
	int col = -1;

	assert_int_equal(fdn_registry_filter_check(&col, filter), FDN_EINVALID);
	if (col != column)
		fail_msg("'%s': column %d, expected %d (%s)", filter, col, column,
			fdn_error_last()->message);
	snprintf(prefix, sizeof(prefix), "filter column %d: ", column);
	assert_memory_equal(fdn_error_last()->message, prefix, strlen(prefix));
}

static void test_grammar(void **state)
{
	(void)state;
	check_ok("modality = 'CT'");
	check_ok("MODALITY = 'CT' and Study_Date between '20200101' AnD '2020-12-31'");
	check_ok("modality = 'MR' OR modality = 'CR' AND sex = 'M'");
	check_ok("NOT NOT (modality IN ('CT', 'MR') OR NOT rows >= 512)");
	check_ok("rows BETWEEN 256 AND 512 AND frames > 1 AND columns != 0");
	check_ok("age >= 60.5 AND age < '070Y' AND age > '006M'");
	check_ok("series_description = 'it''s' OR study_description = ''''");
	check_ok("label.diagnosis = 'nodule' AND label.a-b.c_9 IN ('x')");
	check_ok("sop_class = '1.2.840.10008.5.1.4.1.1.2' AND manufacturer < 'S' AND body_part <= 'Z'");
	check_ok("rows = -1");
	check_ok("");
	check_ok("   ");
}

static void test_errors_positioned(void **state)
{
	(void)state;
	check_err("modality =", 11);
	check_err("modality == 'CT'", 11);
	check_err("foo = 'x'", 1);
	check_err("modality = 'CT' AND", 20);
	check_err("(modality = 'CT'", 17);
	check_err("modality = 'CT')", 16);
	check_err("modality IN 'CT'", 13);
	check_err("modality IN ('CT' 'MR')", 19);
	check_err("rows BETWEEN 1 OR 2", 16);
	check_err("rows = 'x'", 8);
	check_err("modality = 5", 12);
	check_err("modality = 'CT", 12);
	check_err("modality; DROP TABLE instance", 9);
	check_err("study_date = '2020/01/01'", 14);
	check_err("label. = 'x'", 1);
	check_err("label.bad key = 'x'", 11);
	check_err("modality ! 'CT'", 10);
	check_err("sex = 'F' AND NOT", 18);
	check_err("age > 'old'", 7);
	check_err("modality = 'CT' modality = 'MR'", 17);
	check_err("()", 2);
	/* Columns count characters, not bytes. */
	check_err("series_description = '\xc3\xa9' AND x", 30);
	check_err("modality = \xc3\xa9", 12);
	assert_non_null(strstr(fdn_error_last()->message, "found '\xc3\xa9'"));
}

static void test_limits(void **state)
{
	static char s[64 * 1024 + 16];
	size_t n = 64 * 1024 + 10;
	int col;

	(void)state;
	/* 64 levels are allowed, the 65th is refused where it starts. */
	memset(s, '(', 64);
	strcpy(s + 64, "rows = 1");
	memset(s + 72, ')', 64);
	s[136] = '\0';
	check_ok(s);
	memset(s, '(', 65);
	strcpy(s + 65, "rows = 1");
	memset(s + 73, ')', 65);
	s[138] = '\0';
	check_err(s, 65);
	for (int i = 0; i < 100; i++)
		memcpy(s + 4 * i, "NOT ", 4);
	strcpy(s + 400, "rows = 1");
	check_err(s, 257);
	memset(s, ' ', n);
	s[n] = '\0';
	assert_int_equal(fdn_registry_filter_check(&col, s), FDN_EINVALID);
	assert_int_equal(col, 64 * 1024 + 1);
	assert_int_equal(fdn_registry_filter_check(NULL, NULL), FDN_EINVALID);
	/* Values are bounded below SQLite's limit on parameters. */
	strcpy(s, "rows IN (1");
	for (size_t i = 0; i < 8191; i++)
		strcat(s + 10 + 2 * (i ? i - 1 : 0), ",1");
	strcat(s, ")");
	check_ok(s);
	s[strlen(s) - 1] = '\0';
	strcat(s, ",2)");
	check_err(s, (int)strlen(s) - 1);
}

/* White box: the SQL holds no byte of a value, and the values are intact. */
static void test_sql_has_no_values(void **state)
{
	static const char *const hostile[] = {
		"x'); DROP TABLE instance; --",
		"CT' OR 1=1 --",
		"\" OR \"\"=\"",
		"?1",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		fdn_filter__sql f = FDN_FILTER__SQL_INIT;
		char filter[256], *q = filter;

		q += sprintf(q, "series_description = '");
		for (const char *c = hostile[i]; *c; c++) {
			*q++ = *c;
			if (*c == '\'')
				*q++ = '\'';
		}
		strcpy(q, "' AND label.k = 'v'");
		OK(fdn_filter__compile(&f, NULL, filter));
		assert_null(strstr(f.sql.ptr, "DROP"));
		assert_null(strstr(f.sql.ptr, "1=1"));
		assert_null(strstr(f.sql.ptr, "\"\""));
		assert_null(strchr(f.sql.ptr, ';'));
		assert_int_equal(f.count, 3);
		assert_string_equal(f.values[0].text, hostile[i]);
		assert_string_equal(f.values[1].text, "k");
		assert_string_equal(f.values[2].text, "v");
		fdn_filter__dispose(&f);
	}
}

/* ---------------------------------------------------------------------- */
/* A small registry                                                         */

typedef struct fixture {
	char dir[64];
	fdn_registry *reg;
} fixture;

typedef struct inst {
	const char *patient, *sex, *study, *date, *age, *series, *modality,
		*body_part, *series_desc, *sop, *rows;
} inst;

/* 7 instances of 3 patients; see the counts in test_counts. */
static const inst corpus[] = {
	{ "PAT1", "F", UID("1"), "20200315", "061Y", UID("1.1"), "CT", "CHEST", "chest", UID("1.1.1"), "512" },
	{ "PAT1", "F", UID("1"), "20200315", "061Y", UID("1.1"), "CT", "CHEST", "chest", UID("1.1.2"), "512" },
	{ "PAT1", "F", UID("1"), "20200315", "061Y", UID("1.2"), "MR", "HEAD", "head", UID("1.2.1"), "256" },
	{ "PAT2", "M", UID("2"), "20210110", "045Y", UID("2.1"), "CT", "CHEST", "chest", UID("2.1.1"), "512" },
	{ "PAT2", "M", UID("3"), "20201231", "050Y", UID("3.1"), "CT", "ABDOMEN", "abd", UID("3.1.1"), "1024" },
	{ "PAT3", "O", UID("4"), "20190601", "006M", UID("4.1"), "CR", "CHEST",
	  "x'); DROP TABLE instance; --", UID("4.1.1"), "2048" },
	{ "PAT3", "O", UID("4"), "20190601", "006M", UID("4.2"), "CT", "CHEST",
	  "CT' OR 1=1 --", UID("4.2.1"), "512" },
};
#define CORPUS_N (sizeof(corpus) / sizeof(corpus[0]))

static void add(fdn_registry *reg, const inst *in)
{
	fdn_dataset *ds;
	int result = -1;
	const char *kv[][2] = {
		{ "SOPClassUID", "1.2.840.10008.5.1.4.1.1.2" },
		{ "SOPInstanceUID", in->sop },
		{ "StudyInstanceUID", in->study },
		{ "SeriesInstanceUID", in->series },
		{ "Modality", in->modality },
		{ "PatientID", in->patient },
		{ "PatientName", in->patient },
		{ "PatientSex", in->sex },
		{ "PatientAge", in->age },
		{ "StudyDate", in->date },
		{ "BodyPartExamined", in->body_part },
		{ "SeriesDescription", in->series_desc },
		{ "Rows", in->rows },
		{ "Columns", in->rows },
		{ "PatientIdentityRemoved", "YES" },
	};

	OK(fdn_dataset_new(&ds, NULL));
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		if (fdn_dataset_set_string(ds, kv[i][0], kv[i][1]) != 0)
			fail_msg("set %s: %s", kv[i][0], fdn_error_last()->message);
	if (fdn_registry_add(&result, reg, ds, 0) != 0)
		fail_msg("add: %s", fdn_error_last()->message);
	assert_int_equal(result, FDN_REGISTRY_ADDED);
	fdn_dataset_free(ds);
}

static int setup(void **state)
{
	fixture *fx = calloc(1, sizeof(*fx));
	fdn_registry_options opts = FDN_REGISTRY_OPTIONS_INIT;

	if (!fx)
		return -1;
	strcpy(fx->dir, "/tmp/fdn-cohort-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	opts.create = 1;
	if (fdn_registry_open(&fx->reg, fx->dir, &opts) != 0) {
		fprintf(stderr, "open: %s\n", fdn_error_last()->message);
		return -1;
	}
	for (size_t i = 0; i < CORPUS_N; i++)
		add(fx->reg, &corpus[i]);
	OK(fdn_registry_label(fx->reg, FDN_LABEL_STUDY, UID("1"), "diagnosis", "nodule"));
	OK(fdn_registry_label(fx->reg, FDN_LABEL_SERIES, UID("1.2"), "diagnosis", "normal"));
	OK(fdn_registry_label(fx->reg, FDN_LABEL_INSTANCE, UID("1.1.2"), "quality", "good"));
	OK(fdn_registry_label(fx->reg, FDN_LABEL_STUDY, UID("2"), "diagnosis", "nodule"));
	OK(fdn_registry_label(fx->reg, FDN_LABEL_STUDY, UID("2"), "note", "a, \"quoted\"\nline"));
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	fixture *fx = *state;
	char cmd[128];

	fdn_registry_free(fx->reg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		return -1;
	free(fx);
	return 0;
}

static uint64_t count(fixture *fx, const char *filter)
{
	uint64_t n = 0;

	if (fdn_registry_query_count(&n, fx->reg, filter) != 0)
		fail_msg("'%s': %s", filter, fdn_error_last()->message);
	return n;
}

static void test_counts(void **state)
{
	fixture *fx = *state;

	assert_int_equal(count(fx, ""), 7);
	assert_int_equal(count(fx, "modality = 'CT'"), 5);
	assert_int_equal(count(fx, "modality = 'ct'"), 0);
	assert_int_equal(count(fx, "MODALITY = 'CT'"), 5);
	assert_int_equal(count(fx, "modality != 'CT'"), 2);
	/* Precedence: NOT > AND > OR. */
	assert_int_equal(count(fx, "modality = 'MR' OR modality = 'CR' AND sex = 'M'"), 1);
	assert_int_equal(count(fx, "(modality = 'MR' OR modality = 'CR') AND sex = 'O'"), 1);
	assert_int_equal(count(fx, "(modality = 'MR' OR modality = 'CT') AND sex = 'F'"), 3);
	assert_int_equal(count(fx, "NOT modality = 'CT' AND sex = 'F'"), 1);
	assert_int_equal(count(fx, "NOT (modality = 'CT' AND sex = 'F')"), 5);
	assert_int_equal(count(fx, "not not modality = 'CT'"), 5);
	assert_int_equal(count(fx, "modality IN ('MR', 'CR')"), 2);
	assert_int_equal(count(fx, "modality in ('CT')"), 5);
	assert_int_equal(count(fx, "NOT modality IN ('MR', 'CR')"), 5);
	assert_int_equal(count(fx, "rows >= 1024"), 2);
	assert_int_equal(count(fx, "rows BETWEEN 256 AND 512"), 5);
	assert_int_equal(count(fx, "columns = 2048"), 1);
	/* Dates, in both spellings. */
	assert_int_equal(count(fx, "modality = 'CT' AND study_date BETWEEN '20200101' AND '20201231'"), 3);
	assert_int_equal(count(fx, "study_date BETWEEN '2020-01-01' AND '2020-12-31'"), 4);
	assert_int_equal(count(fx, "study_date >= '2021-01-01'"), 1);
	/* Ages in years. */
	assert_int_equal(count(fx, "age >= 50"), 4);
	assert_int_equal(count(fx, "age < 1"), 2);
	assert_int_equal(count(fx, "age = '061Y'"), 3);
	assert_int_equal(count(fx, "age = 0.5"), 2);
	assert_int_equal(count(fx, "sex = 'M' OR body_part = 'HEAD'"), 3);
	assert_int_equal(count(fx, "series_description = 'chest'"), 3);
	assert_int_equal(count(fx, "series_description = 'it''s'"), 0);
}

static void test_label_filters(void **state)
{
	fixture *fx = *state;

	/* Study label, overridden by the MR series' own. */
	assert_int_equal(count(fx, "label.diagnosis = 'nodule'"), 3);
	assert_int_equal(count(fx, "label.diagnosis = 'normal'"), 1);
	assert_int_equal(count(fx, "label.diagnosis IN ('normal', 'nodule')"), 4);
	assert_int_equal(count(fx, "NOT label.diagnosis = 'nodule'"), 4);
	assert_int_equal(count(fx, "label.diagnosis != 'nodule'"), 1);
	assert_int_equal(count(fx, "label.quality = 'good'"), 1);
	assert_int_equal(count(fx, "label.Quality = 'good'"), 0);
	assert_int_equal(count(fx, "label.missing = 'x'"), 0);
	assert_int_equal(count(fx, "modality = 'CT' AND label.diagnosis = 'nodule' AND "
		"study_date BETWEEN '20200101' AND '20201231'"), 2);
}

static int64_t sql_count(fixture *fx, const char *sql)
{
	char path[128];
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t n = -1;

	snprintf(path, sizeof(path), "%s/registry.db", fx->dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return n;
}

static void test_injection(void **state)
{
	fixture *fx = *state;
	static const char *const tables[] = { "patient", "study", "series", "instance",
		"label", "cohort", "cohort_member", "audit" };
	char sql[128];
	int col;

	/* Values are data: matched literally, never run. */
	assert_int_equal(count(fx, "modality = 'CT'' OR 1=1 --'"), 0);
	assert_int_equal(count(fx, "modality = 'x''); DROP TABLE instance; --'"), 0);
	assert_int_equal(count(fx, "series_description = 'CT'' OR 1=1 --'"), 1);
	assert_int_equal(count(fx, "series_description = 'x''); DROP TABLE instance; --'"), 1);
	assert_int_equal(count(fx, "label.diagnosis = ''' OR ''1''=''1'"), 0);
	/* Field names come from a fixed table. */
	assert_int_equal(fdn_registry_filter_check(&col, "modality; DROP TABLE instance"), FDN_EINVALID);
	assert_int_equal(col, 9);
	{
		uint64_t n = 99;

		assert_int_equal(fdn_registry_query_count(&n, fx->reg,
			"modality; DROP TABLE instance; --"), FDN_EINVALID);
		assert_int_equal(fdn_registry_query_count(&n, fx->reg,
			"i.uid = '1' OR 1 = 1"), FDN_EINVALID);
		assert_int_equal(fdn_registry_query_count(&n, fx->reg,
			"label.x' = 'y"), FDN_EINVALID);
		assert_int_equal(n, 99);
	}
	assert_int_equal(fdn_cohort_create(NULL, fx->reg, "evil",
		"modality = 'CT'); DELETE FROM patient; --"), FDN_EINVALID);
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		snprintf(sql, sizeof(sql),
			"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'",
			tables[i]);
		assert_int_equal(sql_count(fx, sql), 1);
	}
	assert_int_equal(sql_count(fx, "SELECT count(*) FROM instance"), 7);
	assert_int_equal(sql_count(fx, "SELECT count(*) FROM patient"), 3);
	assert_int_equal(sql_count(fx, "SELECT count(*) FROM cohort"), 0);
	assert_int_equal(count(fx, ""), 7);
}

/* The snapshot hash as documented, computed independently. */
static void expected_hash(char out[65], const char *const *uids, size_t n)
{
	unsigned char md[32];
	unsigned int len;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	assert_non_null(ctx);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (size_t i = 0; i < n; i++) {
		EVP_DigestUpdate(ctx, uids[i], strlen(uids[i]));
		EVP_DigestUpdate(ctx, "\n", 1);
	}
	EVP_DigestFinal_ex(ctx, md, &len);
	EVP_MD_CTX_free(ctx);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

/* CT members in strcmp order. */
static const char *const ct_uids[] = {
	UID("1.1.1"), UID("1.1.2"), UID("2.1.1"), UID("3.1.1"), UID("4.2.1"),
};

static void test_cohort_create(void **state)
{
	fixture *fx = *state;
	char h1[65], h2[65], want[65];

	expected_hash(want, ct_uids, 5);
	OK(fdn_cohort_create(h1, fx->reg, "ct", "modality = 'CT'"));
	assert_string_equal(h1, want);
	/* Same members by another filter: the same hash. */
	OK(fdn_cohort_create(h2, fx->reg, "ct-again", "NOT modality IN ('MR', 'CR')"));
	assert_string_equal(h2, want);
	assert_int_equal(fdn_cohort_create(h2, fx->reg, "ct", "modality = 'MR'"), FDN_ECONFLICT);
	assert_int_equal(fdn_cohort_create(NULL, fx->reg, "bad", "modality ="), FDN_EINVALID);
	assert_int_equal(fdn_cohort_create(NULL, fx->reg, "", "modality = 'CT'"), FDN_EINVALID);
	OK(fdn_cohort_create(NULL, fx->reg, "none", "modality = 'XA'"));
	expected_hash(want, NULL, 0);
	assert_int_equal(sql_count(fx, "SELECT count(*) FROM cohort"), 3);
	assert_int_equal(sql_count(fx, "SELECT members FROM cohort WHERE name = 'ct'"), 5);
	assert_int_equal(sql_count(fx,
		"SELECT count(*) FROM cohort WHERE name = 'none' AND members = 0 AND snapshot_sha256 = "
		"'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'"), 1);
	assert_int_equal(sql_count(fx,
		"SELECT count(*) FROM audit WHERE record LIKE '%cohort.create%'"), 3);
}

static void test_iterate(void **state)
{
	fixture *fx = *state;
	fdn_cohort_iter *it;
	fdn_cohort_member m;
	size_t n = 0;

	OK(fdn_cohort_create(NULL, fx->reg, "ct", "modality = 'CT'"));
	assert_int_equal(fdn_cohort_iter_new(&it, fx->reg, "nope", "x"), FDN_ENOTFOUND);
	assert_null(it);
	OK(fdn_cohort_iter_new(&it, fx->reg, "ct", "training run 7"));
	while (fdn_cohort_iter_next(&m, it) == 0) {
		assert_true(n < 5);
		assert_int_equal(m.version, FDN_COHORT_MEMBER_VERSION);
		assert_string_equal(m.sop_instance_uid, ct_uids[n]);
		assert_string_equal(m.modality, "CT");
		assert_int_equal(strlen(m.sha256), 64);
		assert_true(m.size > 0);
		assert_non_null(m.locator);
		if (n == 0) {
			assert_string_equal(m.patient, "PAT1");
			assert_string_equal(m.series_instance_uid, UID("1.1"));
			assert_string_equal(m.study_instance_uid, UID("1"));
			assert_string_equal(m.labels_json, "{\"diagnosis\":\"nodule\"}");
		} else if (n == 1) {
			assert_string_equal(m.labels_json, "{\"diagnosis\":\"nodule\",\"quality\":\"good\"}");
		} else if (n == 3 || n == 4) {
			assert_string_equal(m.labels_json, "{}");
		}
		n++;
	}
	assert_int_equal(n, 5);
	assert_int_equal(fdn_cohort_iter_next(&m, it), FDN_ENOTFOUND);
	fdn_cohort_iter_free(it);
	fdn_cohort_iter_free(NULL);

	/* The series label overrides the study's. */
	OK(fdn_cohort_create(NULL, fx->reg, "mr", "modality = 'MR'"));
	OK(fdn_cohort_iter_new(&it, fx->reg, "mr", NULL));
	OK(fdn_cohort_iter_next(&m, it));
	assert_string_equal(m.labels_json, "{\"diagnosis\":\"normal\"}");
	assert_int_equal(fdn_cohort_iter_next(&m, it), FDN_ENOTFOUND);
	fdn_cohort_iter_free(it);
	assert_int_equal(sql_count(fx,
		"SELECT count(*) FROM audit WHERE record LIKE '%\"cohort.use\"%' AND record LIKE '%training run 7%'"), 1);
}

static size_t iter_count(fixture *fx, const char *name)
{
	fdn_cohort_iter *it;
	fdn_cohort_member m;
	size_t n = 0;

	OK(fdn_cohort_iter_new(&it, fx->reg, name, "count"));
	while (fdn_cohort_iter_next(&m, it) == 0) {
		assert_string_not_equal(m.patient, "PAT2");
		n++;
	}
	fdn_cohort_iter_free(it);
	return n;
}

static void test_withdrawal(void **state)
{
	fixture *fx = *state;
	fdn_buf out = FDN_BUF_INIT;
	fdn_cohort_iter *it;
	fdn_cohort_member m;
	char h[65];

	OK(fdn_cohort_create(h, fx->reg, "ct", "modality = 'CT'"));
	/* Withdrawal during an iteration takes effect at the next member. */
	OK(fdn_cohort_iter_new(&it, fx->reg, "ct", "live"));
	OK(fdn_cohort_iter_next(&m, it));
	assert_string_equal(m.patient, "PAT1");
	OK(fdn_registry_withdraw(fx->reg, "PAT2", NULL, "patient request", 0));
	OK(fdn_cohort_iter_next(&m, it));
	assert_string_equal(m.sop_instance_uid, UID("1.1.2"));
	OK(fdn_cohort_iter_next(&m, it));
	assert_string_equal(m.sop_instance_uid, UID("4.2.1"));
	assert_int_equal(fdn_cohort_iter_next(&m, it), FDN_ENOTFOUND);
	fdn_cohort_iter_free(it);

	assert_int_equal(count(fx, "modality = 'CT'"), 3);
	assert_int_equal(count(fx, ""), 5);
	assert_int_equal(iter_count(fx, "ct"), 3);
	{
		char h2[65], want[65];
		const char *const uids[] = { UID("1.1.1"), UID("1.1.2"), UID("4.2.1") };

		OK(fdn_cohort_create(h2, fx->reg, "ct-after", "modality = 'CT'"));
		expected_hash(want, uids, 3);
		assert_string_equal(h2, want);
		assert_string_not_equal(h, h2);
	}
	OK(fdn_cohort_export(&out, fx->reg, "ct", FDN_MANIFEST_CSV));
	assert_null(strstr(out.ptr, "PAT2"));
	OK(fdn_cohort_export(&out, fx->reg, "ct", FDN_MANIFEST_JSON));
	assert_null(strstr(out.ptr, "PAT2"));
	fdn_buf_dispose(&out);

	/* Consent granted again: back in iteration. */
	OK(fdn_registry_grant(fx->reg, "PAT2", NULL, "renewed"));
	OK(fdn_cohort_iter_new(&it, fx->reg, "ct", "again"));
	{
		size_t n = 0;

		while (fdn_cohort_iter_next(&m, it) == 0)
			n++;
		assert_int_equal(n, 5);
	}
	fdn_cohort_iter_free(it);

	/* Purged files stay out even when consent is granted again. */
	OK(fdn_registry_withdraw(fx->reg, "PAT3", NULL, "purge test", 1));
	OK(fdn_registry_grant(fx->reg, "PAT3", NULL, "renewed"));
	assert_int_equal(count(fx, "sex = 'O'"), 0);
	OK(fdn_cohort_iter_new(&it, fx->reg, "ct", "after purge"));
	{
		size_t n = 0;

		while (fdn_cohort_iter_next(&m, it) == 0) {
			assert_string_not_equal(m.patient, "PAT3");
			n++;
		}
		assert_int_equal(n, 4);
	}
	fdn_cohort_iter_free(it);
	assert_int_equal(fdn_registry_withdraw(fx->reg, "NOBODY", NULL, "x", 0), FDN_ENOTFOUND);
}

static void test_export(void **state)
{
	fixture *fx = *state;
	fdn_buf out = FDN_BUF_INIT;
	json_t *doc, *members, *first, *header;
	json_error_t jerr;
	char h[65];

	OK(fdn_cohort_create(h, fx->reg, "chest", "body_part = 'CHEST' AND modality = 'CT'"));
	assert_int_equal(fdn_cohort_export(&out, fx->reg, "nope", FDN_MANIFEST_JSON), FDN_ENOTFOUND);
	assert_int_equal(fdn_cohort_export(&out, fx->reg, "chest", 7), FDN_EINVALID);

	OK(fdn_cohort_export(&out, fx->reg, "chest", FDN_MANIFEST_JSON));
	doc = json_loads(out.ptr, 0, &jerr);
	if (!doc)
		fail_msg("JSON: %s", jerr.text);
	header = json_object_get(doc, "cohort");
	assert_string_equal(json_string_value(json_object_get(header, "name")), "chest");
	assert_string_equal(json_string_value(json_object_get(header, "filter")),
		"body_part = 'CHEST' AND modality = 'CT'");
	assert_string_equal(json_string_value(json_object_get(header, "snapshot_sha256")), h);
	assert_non_null(json_string_value(json_object_get(header, "created")));
	members = json_object_get(doc, "members");
	assert_int_equal(json_array_size(members), 4);
	assert_int_equal(json_integer_value(json_object_get(header, "exported_members")), 4);
	first = json_array_get(members, 1);
	assert_string_equal(json_string_value(json_object_get(first, "sop_instance_uid")), UID("1.1.2"));
	assert_string_equal(json_string_value(json_object_get(
		json_object_get(first, "labels"), "quality")), "good");
	first = json_array_get(members, 2);
	assert_string_equal(json_string_value(json_object_get(
		json_object_get(first, "labels"), "note")), "a, \"quoted\"\nline");
	json_decref(doc);

	OK(fdn_cohort_export(&out, fx->reg, "chest", FDN_MANIFEST_CSV));
	{
		const char *prefix = "sop_instance_uid,series_instance_uid,study_instance_uid,"
			"patient,modality,sha256,size,locator,labels\r\n" UID("1.1.1") ","
			UID("1.1") "," UID("1") ",PAT1,CT,";

		assert_memory_equal(out.ptr, prefix, strlen(prefix));
	}
	/* RFC 4180: quotes doubled inside a quoted field, newline kept. */
	assert_non_null(strstr(out.ptr,
		",\"{\"\"diagnosis\"\":\"\"nodule\"\",\"\"note\"\":\"\"a, \\\"\"quoted\\\"\"\\nline\"\"}\"\r\n"));
	assert_non_null(strstr(out.ptr, ",\"{\"\"diagnosis\"\":\"\"nodule\"\"}\"\r\n"));
	{
		size_t lines = 0;

		for (const char *c = out.ptr; (c = strstr(c, "\r\n")); c += 2)
			lines++;
		assert_int_equal(lines, 5);
	}
	fdn_buf_dispose(&out);
	assert_int_equal(sql_count(fx,
		"SELECT count(*) FROM audit WHERE record LIKE '%cohort.export%'"), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grammar),
		cmocka_unit_test(test_errors_positioned),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_sql_has_no_values),
		cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_label_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_injection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cohort_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iterate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_withdrawal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_export, setup, teardown),
	};
	int rc;

	if (fdn_init() != 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	fdn_shutdown();
	return rc;
}
