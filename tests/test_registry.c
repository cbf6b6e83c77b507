/*
 * The registry through the public API: opening and schema checks, adds
 * (idempotent, conflicting, identified), batches, a host storage,
 * labels, consent and purge, the audit chain and its tamper detection
 * (the test edits the database and the objects directly).
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "testutil.h"
#include <sqlite3.h>

#include "fednode/fednode.h"


static char tmpdir[256];
static int counter;

static int setup(void **state)
{
	(void)state;
	if (fdn_test_mkdtemp(tmpdir, sizeof(tmpdir), "registry") != 0)
		return -1;
	return fdn_init();
}

static int teardown(void **state)
{
	(void)state;
	if (fdn_test_rmtree(tmpdir) != 0)
		return -1;
	return fdn_shutdown() < 0;
}

/* A fresh folder for one test. */
static const char *fresh(const char *name)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

/* A small de-identified CT slice: pseudonym patient, UIDs from @p n. */
static fdn_dataset *make_ds(const char *patient, int study, int series, int n, int deid)
{
	fdn_dataset *ds = NULL;
	char uid[96];
	static const uint16_t px[4] = { 1, 2, 3, 4 };

	OK(fdn_dataset_new(&ds, "1.2.840.10008.1.2.1"));
	OK(fdn_dataset_set_string(ds, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.2"));
	snprintf(uid, sizeof(uid), "2.25.1000.%d", n);
	OK(fdn_dataset_set_string(ds, "SOPInstanceUID", uid));
	snprintf(uid, sizeof(uid), "2.25.2000.%d", study);
	OK(fdn_dataset_set_string(ds, "StudyInstanceUID", uid));
	snprintf(uid, sizeof(uid), "2.25.3000.%d", series);
	OK(fdn_dataset_set_string(ds, "SeriesInstanceUID", uid));
	OK(fdn_dataset_set_string(ds, "PatientID", patient));
	OK(fdn_dataset_set_string(ds, "PatientSex", "F"));
	OK(fdn_dataset_set_string(ds, "PatientAge", "054Y"));
	OK(fdn_dataset_set_string(ds, "StudyDate", "20240131"));
	OK(fdn_dataset_set_string(ds, "Modality", "CT"));
	OK(fdn_dataset_set_string(ds, "BodyPartExamined", "CHEST"));
	OK(fdn_dataset_set_string(ds, "SeriesNumber", "3"));
	snprintf(uid, sizeof(uid), "%d", n);
	OK(fdn_dataset_set_string(ds, "InstanceNumber", uid));
	OK(fdn_dataset_set_string(ds, "Rows", "2"));
	OK(fdn_dataset_set_string(ds, "Columns", "2"));
	OK(fdn_dataset_set_string(ds, "BitsAllocated", "16"));
	OK(fdn_dataset_set_string(ds, "BitsStored", "16"));
	OK(fdn_dataset_set_string(ds, "HighBit", "15"));
	OK(fdn_dataset_set_string(ds, "PixelRepresentation", "0"));
	OK(fdn_dataset_set_string(ds, "SamplesPerPixel", "1"));
	OK(fdn_dataset_set_string(ds, "PhotometricInterpretation", "MONOCHROME2"));
	OK(fdn_dataset_set_bytes(ds, "PixelData", "OW", px, sizeof(px)));
	if (deid)
		OK(fdn_dataset_set_string(ds, "PatientIdentityRemoved", "YES"));
	return ds;
}

static int add(fdn_registry *reg, const char *patient, int study, int series, int n)
{
	fdn_dataset *ds = make_ds(patient, study, series, n, 1);
	int result = -1, rc = fdn_registry_add(&result, reg, ds, 0);

	fdn_dataset_free(ds);
	return rc < 0 ? rc : result;
}

static fdn_registry *open_reg(const char *path, int create)
{
	fdn_registry_options o = FDN_REGISTRY_OPTIONS_INIT;
	fdn_registry *reg = NULL;

	o.create = create;
	o.actor = "tester";
	OK(fdn_registry_open(&reg, path, &o));
	return reg;
}

static uint64_t count_instances(fdn_registry *reg)
{
	fdn_registry_stats st = { FDN_REGISTRY_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0 };

	OK(fdn_registry_stats_get(&st, reg));
	return st.instances;
}

static void sql(const char *dir, const char *stmt)
{
	char path[600];
	sqlite3 *db;
	char *err = NULL;

	snprintf(path, sizeof(path), "%s/registry.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, stmt, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", stmt, err);
	sqlite3_close(db);
}

static void expect_problem(const char *dir, const char *needle)
{
	fdn_registry *reg = open_reg(dir, 0);
	fdn_buf problem = FDN_BUF_INIT;

	assert_int_equal(fdn_registry_verify(&problem, reg), FDN_EAUTH);
	assert_non_null(problem.ptr);
	if (!strstr(problem.ptr, needle))
		fail_msg("problem '%s' does not mention '%s'", problem.ptr, needle);
	fdn_buf_dispose(&problem);
	fdn_registry_free(reg);
}

static void expect_intact(fdn_registry *reg)
{
	fdn_buf problem = FDN_BUF_INIT;
	int rc = fdn_registry_verify(&problem, reg);

	if (rc != 0)
		fail_msg("verify = %d: %s", rc, problem.ptr ? problem.ptr : "");
	fdn_buf_dispose(&problem);
}

/* --- opening -------------------------------------------------------------- */

static void test_create_open(void **state)
{
	const char *dir = fresh("open");
	fdn_registry_options o = FDN_REGISTRY_OPTIONS_INIT;
	fdn_registry *reg = NULL;
	char path[600];
	struct stat st;

	(void)state;
	assert_int_equal(fdn_registry_schema_version(), FDN_REGISTRY_SCHEMA_VERSION);
	assert_int_equal(fdn_registry_open(&reg, dir, &o), FDN_ENOTFOUND);
	assert_null(reg);
	reg = open_reg(dir, 1);
	snprintf(path, sizeof(path), "%s/objects", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(add(reg, "FDN-P1", 1, 1, 1), FDN_REGISTRY_ADDED);
	fdn_registry_free(reg);

	reg = open_reg(dir, 0);
	assert_int_equal(count_instances(reg), 1);
	expect_intact(reg);
	fdn_registry_free(reg);

	/* read-only: reads work, writes are refused */
	o.read_only = 1;
	OK(fdn_registry_open(&reg, dir, &o));
	assert_int_equal(count_instances(reg), 1);
	assert_int_equal(add(reg, "FDN-P1", 1, 1, 2), FDN_EINVALID);
	expect_intact(reg);
	fdn_registry_free(reg);

	o.version = 99;
	assert_int_equal(fdn_registry_open(&reg, dir, &o), FDN_EINVALID);
	OK(fdn_registry_options_init(&o, FDN_REGISTRY_OPTIONS_VERSION));
	assert_int_equal(o.create, 0);
}

static void test_schema_too_new(void **state)
{
	const char *dir = fresh("newer");
	fdn_registry_options o = FDN_REGISTRY_OPTIONS_INIT;
	fdn_registry *reg = open_reg(dir, 1);

	(void)state;
	fdn_registry_free(reg);
	sql(dir, "PRAGMA user_version = 99");
	reg = NULL;
	assert_int_equal(fdn_registry_open(&reg, dir, &o), FDN_EUNSUPPORTED);
	assert_non_null(strstr(fdn_error_last()->message, "99"));
	o.read_only = 1;
	assert_int_equal(fdn_registry_open(&reg, dir, &o), FDN_EUNSUPPORTED);
	assert_null(reg);
}

static void test_not_a_db(void **state)
{
	const char *dir = fresh("notdb");
	fdn_registry_options o = FDN_REGISTRY_OPTIONS_INIT;
	fdn_registry *reg = NULL;
	char path[600];
	FILE *f;

	(void)state;
	assert_int_equal(mkdir(dir, 0777), 0);
	snprintf(path, sizeof(path), "%s/registry.db", dir);
	f = fopen(path, "wb");
	assert_non_null(f);
	for (int i = 0; i < 200; i++)
		fputs("this is not an SQLite database at all. ", f);
	fclose(f);
	o.create = 1;
	assert_int_equal(fdn_registry_open(&reg, dir, &o), FDN_EFORMAT);
	assert_null(reg);
}

/* --- adding --------------------------------------------------------------- */

static void test_add(void **state)
{
	const char *dir = fresh("add");
	fdn_registry *reg = open_reg(dir, 1);
	fdn_registry_stats st = { FDN_REGISTRY_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0 };
	fdn_dataset *ds;
	int result;

	(void)state;
	assert_int_equal(add(reg, "FDN-P1", 1, 1, 1), FDN_REGISTRY_ADDED);
	assert_int_equal(add(reg, "FDN-P1", 1, 1, 2), FDN_REGISTRY_ADDED);
	assert_int_equal(add(reg, "FDN-P1", 1, 2, 3), FDN_REGISTRY_ADDED);
	assert_int_equal(add(reg, "FDN-P2", 2, 3, 4), FDN_REGISTRY_ADDED);
	/* idempotent */
	assert_int_equal(add(reg, "FDN-P1", 1, 1, 1), FDN_REGISTRY_ALREADY_PRESENT);
	OK(fdn_registry_stats_get(&st, reg));
	assert_int_equal(st.patients, 2);
	assert_int_equal(st.studies, 2);
	assert_int_equal(st.series, 3);
	assert_int_equal(st.instances, 4);
	assert_true(st.bytes > 0);
	assert_int_equal(st.audit_records, 5); /* create + 4 adds */

	/* same UID, other content */
	ds = make_ds("FDN-P1", 1, 1, 1, 1);
	OK(fdn_dataset_set_string(ds, "StudyDate", "20240201"));
	assert_int_equal(fdn_registry_add(&result, reg, ds, 0), FDN_ECONFLICT);
	fdn_dataset_free(ds);

	/* identified data */
	ds = make_ds("FDN-P3", 5, 5, 50, 0);
	assert_int_equal(fdn_registry_add(&result, reg, ds, 0), FDN_EPHI);
	OK(fdn_dataset_set_string(ds, "PatientIdentityRemoved", "NO"));
	assert_int_equal(fdn_registry_add(&result, reg, ds, 0), FDN_EPHI);
	OK(fdn_registry_add(&result, reg, ds, FDN_REGISTRY_ADD_ALLOW_IDENTIFIED));
	assert_int_equal(result, FDN_REGISTRY_ADDED);
	fdn_dataset_free(ds);
	assert_int_equal(fdn_registry_add(&result, reg, NULL, 0), FDN_EINVALID);
	assert_int_equal(count_instances(reg), 5);
	expect_intact(reg);
	fdn_registry_free(reg);
}

static void test_batch(void **state)
{
	const char *dir = fresh("batch");
	fdn_registry *reg = open_reg(dir, 1);
	fdn_registry_stats st = { FDN_REGISTRY_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0 };
	int i;

	(void)state;
	OK(fdn_registry_begin(reg));
	assert_int_equal(fdn_registry_begin(reg), FDN_EINVALID);
	for (i = 0; i < 20; i++)
		assert_int_equal(add(reg, "FDN-B1", 1, 1, i), FDN_REGISTRY_ADDED);
	/* a refused add inside a batch does not abandon the batch */
	{
		fdn_dataset *ds = make_ds("FDN-B1", 1, 1, 0, 1);
		int r;

		OK(fdn_dataset_set_string(ds, "StudyDate", "19990101"));
		assert_int_equal(fdn_registry_add(&r, reg, ds, 0), FDN_ECONFLICT);
		fdn_dataset_free(ds);
	}
	OK(fdn_registry_commit(reg));
	assert_int_equal(count_instances(reg), 20);

	OK(fdn_registry_begin(reg));
	for (i = 100; i < 110; i++)
		assert_int_equal(add(reg, "FDN-B2", 2, 2, i), FDN_REGISTRY_ADDED);
	assert_int_equal(count_instances(reg), 30);
	OK(fdn_registry_rollback(reg));
	OK(fdn_registry_stats_get(&st, reg));
	assert_int_equal(st.instances, 20);
	assert_int_equal(st.patients, 1);
	assert_int_equal(st.audit_records, 21);
	assert_int_equal(fdn_registry_commit(reg), FDN_EINVALID);
	expect_intact(reg);
	/* a batch abandoned by free is rolled back */
	OK(fdn_registry_begin(reg));
	assert_int_equal(add(reg, "FDN-B2", 2, 2, 500), FDN_REGISTRY_ADDED);
	fdn_registry_free(reg);
	reg = open_reg(dir, 0);
	assert_int_equal(count_instances(reg), 20);
	expect_intact(reg);
	fdn_registry_free(reg);
}

/* --- a host storage ---------------------------------------------------------- */

#define MEM_MAX 64
typedef struct mem_store {
	char hash[MEM_MAX][65];
	fdn_buf data[MEM_MAX];
	int count, puts, dels;
} mem_store;

static int mem_find(mem_store *m, const char *hash)
{
	for (int i = 0; i < m->count; i++)
		if (strcmp(m->hash[i], hash) == 0)
			return i;
	return -1;
}

static int mem_put(void *ud, const char *hash, const void *data, size_t size)
{
	mem_store *m = ud;
	int i = mem_find(m, hash);

	m->puts++;
	if (i >= 0)
		return 0;
	if (m->count == MEM_MAX)
		return FDN_EIO;
	i = m->count++;
	snprintf(m->hash[i], 65, "%s", hash);
	return fdn_buf_set(&m->data[i], data, size);
}

static int mem_get(void *ud, const char *hash, fdn_buf *out)
{
	mem_store *m = ud;
	int i = mem_find(m, hash);

	if (i < 0 || !m->data[i].ptr)
		return FDN_ENOTFOUND;
	return fdn_buf_set(out, m->data[i].ptr, m->data[i].size);
}

static int mem_del(void *ud, const char *hash)
{
	mem_store *m = ud;
	int i = mem_find(m, hash);

	m->dels++;
	if (i >= 0)
		fdn_buf_dispose(&m->data[i]);
	return 0;
}

static void test_custom_storage(void **state)
{
	const char *dir = fresh("custom");
	static mem_store m;
	fdn_registry_storage s = { FDN_REGISTRY_STORAGE_VERSION, mem_put, mem_get, mem_del, NULL, &m };
	fdn_registry_options o = FDN_REGISTRY_OPTIONS_INIT;
	fdn_registry *reg = NULL;
	char path[600];
	struct stat sb;

	(void)state;
	o.create = 1;
	o.storage = &s;
	OK(fdn_registry_open(&reg, dir, &o));
	for (int i = 0; i < 5; i++)
		assert_int_equal(add(reg, "FDN-M1", 1, 1, i), FDN_REGISTRY_ADDED);
	assert_int_equal(m.count, 5);
	assert_int_equal(m.puts, 5);
	snprintf(path, sizeof(path), "%s/objects", dir);
	assert_int_not_equal(stat(path, &sb), 0); /* the host's storage only */
	expect_intact(reg);
	/* corrupt one object in the host's store */
	m.data[2].ptr[m.data[2].size - 1] ^= 1;
	{
		fdn_buf problem = FDN_BUF_INIT;

		assert_int_equal(fdn_registry_verify(&problem, reg), FDN_EAUTH);
		assert_non_null(strstr(problem.ptr, "2.25.1000.2"));
		fdn_buf_dispose(&problem);
	}
	m.data[2].ptr[m.data[2].size - 1] ^= 1;
	OK(fdn_registry_withdraw(reg, "FDN-M1", NULL, "test", 1));
	assert_int_equal(m.dels, 5);
	expect_intact(reg);
	fdn_registry_free(reg);
	for (int i = 0; i < m.count; i++)
		fdn_buf_dispose(&m.data[i]);
}

/* --- labels ------------------------------------------------------------------- */

static void test_labels(void **state)
{
	const char *dir = fresh("labels");
	fdn_registry *reg = open_reg(dir, 1);
	fdn_buf log = FDN_BUF_INIT;
	char big[5000];

	(void)state;
	assert_int_equal(add(reg, "FDN-L1", 1, 1, 1), FDN_REGISTRY_ADDED);
	OK(fdn_registry_label(reg, FDN_LABEL_STUDY, "2.25.2000.1", "diagnosis", "nodule"));
	OK(fdn_registry_label(reg, FDN_LABEL_SERIES, "2.25.3000.1", "quality", "good"));
	OK(fdn_registry_label(reg, FDN_LABEL_INSTANCE, "2.25.1000.1", "split", "train"));
	OK(fdn_registry_label(reg, FDN_LABEL_INSTANCE, "2.25.1000.1", "split", "test"));
	OK(fdn_registry_label(reg, FDN_LABEL_INSTANCE, "2.25.1000.1", "split", ""));
	assert_int_equal(fdn_registry_label(reg, FDN_LABEL_INSTANCE, "2.25.9", "k", "v"), FDN_ENOTFOUND);
	assert_int_equal(fdn_registry_label(reg, FDN_LABEL_STUDY, "2.25.1000.1", "k", "v"), FDN_ENOTFOUND);
	assert_int_equal(fdn_registry_label(reg, 7, "2.25.2000.1", "k", "v"), FDN_EINVALID);
	assert_int_equal(fdn_registry_label(reg, 0, "2.25.2000.1", "bad key", "v"), FDN_EINVALID);
	assert_int_equal(fdn_registry_label(reg, 0, "2.25.2000.1", "", "v"), FDN_EINVALID);
	assert_int_equal(fdn_registry_label(reg, 0, "2.25.2000.1", "k", "\xff\xfe"), FDN_EINVALID);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(fdn_registry_label(reg, 0, "2.25.2000.1", "k", big), FDN_EINVALID);
	OK(fdn_registry_audit_export(&log, reg, 3));
	assert_non_null(strstr(log.ptr, "\"event\":\"label.set\""));
	assert_non_null(strstr(log.ptr, "\"event\":\"label.remove\""));
	assert_non_null(strstr(log.ptr, "\"value\":\"nodule\""));
	assert_null(strstr(log.ptr, "\"seq\":2,"));
	fdn_buf_dispose(&log);
	expect_intact(reg);
	fdn_registry_free(reg);
}

/* --- consent ------------------------------------------------------------------- */

static int object_exists(const char *dir, const char *hash)
{
	char path[700];
	struct stat st;

	snprintf(path, sizeof(path), "%s/objects/%.2s/%s", dir, hash, hash + 2);
	return stat(path, &st) == 0;
}

static void first_hash(const char *dir, const char *uid, char out[65])
{
	char path[600];
	sqlite3 *db;
	sqlite3_stmt *st;

	snprintf(path, sizeof(path), "%s/registry.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT sha256 FROM instance WHERE uid = ?",
		-1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(out, 65, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void test_consent(void **state)
{
	const char *dir = fresh("consent");
	fdn_registry *reg = open_reg(dir, 1);
	fdn_registry_stats st = { FDN_REGISTRY_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0 };
	fdn_buf log = FDN_BUF_INIT;
	char h1[65], h3[65];

	(void)state;
	assert_int_equal(add(reg, "FDN-C1", 1, 1, 1), FDN_REGISTRY_ADDED);
	assert_int_equal(add(reg, "FDN-C1", 1, 1, 2), FDN_REGISTRY_ADDED);
	assert_int_equal(add(reg, "FDN-C2", 2, 2, 3), FDN_REGISTRY_ADDED);
	first_hash(dir, "2.25.1000.1", h1);
	first_hash(dir, "2.25.1000.3", h3);
	assert_true(object_exists(dir, h1));

	assert_int_equal(fdn_registry_withdraw(reg, "FDN-NOBODY", NULL, "x", 0), FDN_ENOTFOUND);
	OK(fdn_registry_withdraw(reg, "FDN-C2", NULL, "patient request", 0));
	OK(fdn_registry_stats_get(&st, reg));
	assert_int_equal(st.withdrawn_patients, 1);
	OK(fdn_registry_grant(reg, "FDN-C2", NULL, "consent renewed"));
	OK(fdn_registry_stats_get(&st, reg));
	assert_int_equal(st.withdrawn_patients, 0);
	assert_true(object_exists(dir, h3));

	/* purge inside a batch is refused: files cannot be rolled back */
	OK(fdn_registry_begin(reg));
	assert_int_equal(fdn_registry_withdraw(reg, "FDN-C1", NULL, "x", 1), FDN_EINVALID);
	OK(fdn_registry_rollback(reg));

	OK(fdn_registry_withdraw(reg, "FDN-C1", NULL, "erasure request", 1));
	assert_false(object_exists(dir, h1));
	assert_true(object_exists(dir, h3));
	OK(fdn_registry_stats_get(&st, reg));
	assert_int_equal(st.withdrawn_patients, 1);
	assert_int_equal(st.instances, 3); /* rows stay, marked purged */
	expect_intact(reg);
	OK(fdn_registry_audit_export(&log, reg, 0));
	assert_non_null(strstr(log.ptr, "\"event\":\"consent.withdraw\""));
	assert_non_null(strstr(log.ptr, "\"event\":\"consent.grant\""));
	assert_non_null(strstr(log.ptr, "\"purged_instances\":2"));
	assert_non_null(strstr(log.ptr, "\"reason\":\"erasure request\""));
	fdn_buf_dispose(&log);
	fdn_registry_free(reg);
}

/* Withdrawal by original Patient ID through the site's pseudonym key:
 * the audit record holds the pseudonym, never the original. */
static void test_consent_by_original(void **state)
{
	const char *dir = fresh("consent-orig");
	fdn_deid_options o = FDN_DEID_OPTIONS_INIT;
	fdn_deid_profile *profile = NULL;
	fdn_registry *reg;
	fdn_buf pseudo = FDN_BUF_INIT, log = FDN_BUF_INIT;
	unsigned char key[64];

	(void)state;
	assert_true(fdn_deid_key_bytes() <= sizeof(key));
	memset(key, 0x5a, sizeof(key));
	o.key = key;
	OK(fdn_deid_profile_new(&profile, &o));
	OK(fdn_deid_pseudonym_for(&pseudo, profile, "MRN-123456"));
	reg = open_reg(dir, 1);
	assert_int_equal(add(reg, pseudo.ptr, 1, 1, 1), FDN_REGISTRY_ADDED);
	assert_int_equal(fdn_registry_withdraw(reg, "MRN-999", profile, "x", 0), FDN_ENOTFOUND);
	assert_null(strstr(fdn_error_last()->message, "MRN-999"));
	OK(fdn_registry_withdraw(reg, "MRN-123456", profile, "phone call", 0));
	OK(fdn_registry_grant(reg, "MRN-123456", profile, "renewed"));
	OK(fdn_registry_audit_export(&log, reg, 0));
	assert_null(strstr(log.ptr, "MRN-123456"));
	assert_non_null(strstr(log.ptr, pseudo.ptr));
	fdn_buf_dispose(&log);
	fdn_buf_dispose(&pseudo);
	fdn_registry_free(reg);
	fdn_deid_profile_free(profile);
}

/* --- audit ------------------------------------------------------------------- */

typedef struct sink_log {
	int count;
	char last[512];
} sink_log;

static void sink(const char *json, void *payload)
{
	sink_log *s = payload;

	s->count++;
	snprintf(s->last, sizeof(s->last), "%s", json);
}

static void test_audit_chain(void **state)
{
	const char *dir = fresh("audit");
	fdn_registry_options o = FDN_REGISTRY_OPTIONS_INIT;
	fdn_registry *reg = NULL;
	sink_log s = { 0, "" };
	fdn_buf log = FDN_BUF_INIT;

	(void)state;
	o.create = 1;
	o.actor = "dr-house";
	o.audit_sink = sink;
	o.audit_payload = &s;
	OK(fdn_registry_open(&reg, dir, &o));
	assert_int_equal(s.count, 1); /* registry.create */
	assert_int_equal(add(reg, "FDN-A1", 1, 1, 1), FDN_REGISTRY_ADDED);
	assert_int_equal(s.count, 2);
	assert_non_null(strstr(s.last, "\"event\":\"instance.add\""));
	OK(fdn_registry_audit(reg, "federation.approve", "{\"federation\":\"lungs\",\"n\":3}"));
	assert_int_equal(s.count, 3);
	assert_string_equal(s.last + strlen(s.last) - 1, "}");
	assert_non_null(strstr(s.last, "\"actor\":\"dr-house\""));
	assert_non_null(strstr(s.last, "\"details\":{\"federation\":\"lungs\",\"n\":3}"));
	assert_non_null(strstr(s.last, "\"seq\":3"));
	assert_int_equal(fdn_registry_audit(reg, "x", "[1]"), FDN_EINVALID);
	assert_int_equal(fdn_registry_audit(reg, "x", "{bad"), FDN_EINVALID);
	assert_int_equal(fdn_registry_audit(reg, "", NULL), FDN_EINVALID);
	OK(fdn_registry_audit(reg, "round.participate", NULL));
	/* a rolled-back batch never reaches the sink */
	OK(fdn_registry_begin(reg));
	OK(fdn_registry_audit(reg, "ghost", NULL));
	assert_int_equal(s.count, 4);
	OK(fdn_registry_rollback(reg));
	assert_int_equal(s.count, 4);
	OK(fdn_registry_audit_export(&log, reg, 0));
	assert_int_equal(log.ptr[0], '[');
	assert_non_null(strstr(log.ptr, "\"prev_sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\""));
	assert_non_null(strstr(log.ptr, "\"seq\":4"));
	assert_null(strstr(log.ptr, "ghost"));
	assert_null(strstr(log.ptr, "\"seq\":5"));
	fdn_buf_dispose(&log);
	OK(fdn_registry_audit_export(&log, reg, 100));
	assert_string_equal(log.ptr, "[]");
	fdn_buf_dispose(&log);
	expect_intact(reg);
	fdn_registry_free(reg);
}

/* A registry with seq 1 (create) .. 6 for the tampering tests. */
static const char *tamper_base(const char *name)
{
	const char *dir = fresh(name);
	fdn_registry *reg = open_reg(dir, 1);

	for (int i = 1; i <= 4; i++)
		assert_int_equal(add(reg, "FDN-T1", 1, 1, i), FDN_REGISTRY_ADDED);
	OK(fdn_registry_audit(reg, "round.participate", "{\"round\":1}"));
	expect_intact(reg);
	fdn_registry_free(reg);
	return dir;
}

static void test_tamper_edit(void **state)
{
	const char *dir = tamper_base("t-edit");

	(void)state;
	sql(dir, "UPDATE audit SET record = replace(record, 'FDN-T1', 'FDN-XX') WHERE seq = 3");
	expect_problem(dir, "audit record 3:");
}

static void test_tamper_delete(void **state)
{
	const char *dir = tamper_base("t-delete");

	(void)state;
	sql(dir, "DELETE FROM audit WHERE seq = 4");
	expect_problem(dir, "audit record 4 is missing");
}

static void test_tamper_swap(void **state)
{
	const char *dir = tamper_base("t-swap");

	(void)state;
	sql(dir, "UPDATE audit SET seq = -1 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3;"
		"UPDATE audit SET seq = 3 WHERE seq = -1");
	expect_problem(dir, "audit record 2:");
}

static void test_tamper_insert(void **state)
{
	const char *dir = tamper_base("t-insert");

	(void)state;
	/* shift 4.. up by one and slip a forged record in as 4, linked to 3 */
	sql(dir, "UPDATE audit SET seq = seq + 100 WHERE seq >= 4;"
		"UPDATE audit SET seq = seq - 99 WHERE seq >= 100;"
		"INSERT INTO audit (seq, record, prev_sha256, sha256) SELECT 4,"
		" '{\"actor\":\"x\",\"details\":{},\"event\":\"forged\",\"seq\":4,\"time\":\"t\"}',"
		" sha256, sha256 FROM audit WHERE seq = 3");
	expect_problem(dir, "audit record 4:");
}

static void test_tamper_append(void **state)
{
	const char *dir = tamper_base("t-append");

	(void)state;
	sql(dir, "INSERT INTO audit (seq, record, prev_sha256, sha256) SELECT 7,"
		" '{\"seq\":7}', sha256, sha256 FROM audit WHERE seq = 6");
	expect_problem(dir, "audit record 7:");
}

static void test_tamper_file(void **state)
{
	const char *dir = tamper_base("t-file");
	char hash[65], path[700];
	FILE *f;

	(void)state;
	first_hash(dir, "2.25.1000.3", hash);
	snprintf(path, sizeof(path), "%s/objects/%.2s/%s", dir, hash, hash + 2);
	f = fopen(path, "r+b");
	assert_non_null(f);
	fseek(f, -1, SEEK_END);
	fputc('Z', f);
	fclose(f);
	expect_problem(dir, "instance 2.25.1000.3:");
	unlink(path);
	expect_problem(dir, "2.25.1000.3: stored file");
}

/* Two processes: a writer holding a batch open, and a reader that must
 * still read, and a second writer that waits, then times out busy. */
static void test_concurrency(void **state)
{
	const char *dir = fresh("conc");
	fdn_registry *w = open_reg(dir, 1);
	int ready[2], done[2];
	pid_t pid;
	char c;
	int status;

	(void)state;
	assert_int_equal(add(w, "FDN-K1", 1, 1, 1), FDN_REGISTRY_ADDED);
	/* No SQLite handle may cross fork(): the child must not close the
	 * parent's connection (that would drop the parent's POSIX locks). */
	fdn_registry_free(w);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(done), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fdn_registry_options o = FDN_REGISTRY_OPTIONS_INIT;
		fdn_registry *r = NULL, *w2 = NULL;
		int bad = 0;

		if (read(ready[0], &c, 1) != 1)
			_exit(10);
		o.busy_timeout_ms = 200;
		o.read_only = 1;
		if (fdn_registry_open(&r, dir, &o) != 0 || count_instances(r) != 1)
			bad |= 1;
		o.read_only = 0;
		if (fdn_registry_open(&w2, dir, &o) != 0)
			bad |= 2;
		else if (add(w2, "FDN-K2", 2, 2, 2) != FDN_EIO ||
		         !strstr(fdn_error_last()->message, "busy"))
			bad |= 4;
		fdn_registry_free(w2);
		fdn_registry_free(r);
		fdn_shutdown();
		_exit(bad);
	}
	w = open_reg(dir, 0);
	OK(fdn_registry_begin(w));
	assert_int_equal(add(w, "FDN-K1", 1, 1, 3), FDN_REGISTRY_ADDED);
	assert_int_equal(write(ready[1], "x", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	OK(fdn_registry_commit(w));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(count_instances(w), 2);
	fdn_registry_free(w);
	close(ready[0]);
	close(ready[1]);
	close(done[0]);
	close(done[1]);
	(void)counter;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_open),
		cmocka_unit_test(test_schema_too_new),
		cmocka_unit_test(test_not_a_db),
		cmocka_unit_test(test_add),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_custom_storage),
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_consent),
		cmocka_unit_test(test_consent_by_original),
		cmocka_unit_test(test_audit_chain),
		cmocka_unit_test(test_tamper_edit),
		cmocka_unit_test(test_tamper_delete),
		cmocka_unit_test(test_tamper_swap),
		cmocka_unit_test(test_tamper_insert),
		cmocka_unit_test(test_tamper_append),
		cmocka_unit_test(test_tamper_file),
		cmocka_unit_test(test_concurrency),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
