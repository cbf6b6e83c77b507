/*
 * Cohort queries on a registry of 1,000,000 synthetic instances (20,000
 * patients, 50,000 studies, 200,000 series, 6 modalities, labels on 10%
 * of the studies).  The rows are written straight into the registry's
 * database, which the public API created: adding a million real files
 * would time the storage, not the query.  Target: median < 200 ms.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fednode/fednode.h"
#include "fednode/registry.h"
#include "bench.h"

#define PATIENTS 20000
#define STUDIES 50000
#define SERIES 200000
#define INSTANCES 1000000
#define RUNS 7

static uint64_t rng = 0x9E3779B97F4A7C15ull;

/* xorshift64: deterministic, so every run builds the same registry. */
static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static void die_sql(sqlite3 *db, const char *what)
{
	fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
	exit(1);
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		die_sql(db, sql);
	return st;
}

static void run(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		die_sql(db, what);
	sqlite3_reset(st);
}

static void fill(const char *dbpath)
{
	static const char *const modalities[] = { "CT", "CT", "MR", "CR", "DX", "US", "PT", "CT" };
	static const char *const parts[] = { "CHEST", "HEAD", "ABDOMEN", "PELVIS", "KNEE" };
	static const char *const dx[] = { "nodule", "normal", "mass", "effusion" };
	static const char *const sexes[] = { "F", "M", "O" };
	sqlite3 *db;
	sqlite3_stmt *st;
	char buf[96], date[16], age[8];

	if (sqlite3_open(dbpath, &db) != SQLITE_OK)
		die_sql(db, "open");
	sqlite3_exec(db, "PRAGMA synchronous = OFF; BEGIN", NULL, NULL, NULL);

	st = prep(db, "INSERT INTO patient (id, pseudonym, sex, consent) VALUES (?, ?, ?, ?)");
	for (int i = 1; i <= PATIENTS; i++) {
		snprintf(buf, sizeof(buf), "PSEUDO%06d", i);
		sqlite3_bind_int(st, 1, i);
		sqlite3_bind_text(st, 2, buf, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, sexes[rnd(3)], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, rnd(100) ? "granted" : "withdrawn", -1, SQLITE_STATIC);
		run(db, st, "patient");
	}
	sqlite3_finalize(st);

	/* age_years as fdn_registry_add computes it from the AS value. */
	st = prep(db, "INSERT INTO study (id, uid, patient_id, study_date, description, age,"
		" age_years) VALUES (?, ?, ?, ?, 'study', ?, ?)");
	for (int i = 1; i <= STUDIES; i++) {
		snprintf(buf, sizeof(buf), "1.2.826.0.1.3680043.10.998.1.%d", i);
		snprintf(date, sizeof(date), "%04u%02u%02u", 2015 + rnd(10), 1 + rnd(12), 1 + rnd(28));
		unsigned years = 18 + rnd(73);
		snprintf(age, sizeof(age), "%03uY", years);
		sqlite3_bind_int(st, 1, i);
		sqlite3_bind_text(st, 2, buf, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(st, 3, 1 + (int)rnd(PATIENTS));
		sqlite3_bind_text(st, 4, date, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 5, age, -1, SQLITE_TRANSIENT);
		sqlite3_bind_double(st, 6, years);
		run(db, st, "study");
	}
	sqlite3_finalize(st);

	st = prep(db, "INSERT INTO label (level, object_id, key, value) VALUES (0, ?, 'diagnosis', ?)");
	for (int i = 1; i <= STUDIES; i++) {
		if (rnd(10))
			continue;
		sqlite3_bind_int(st, 1, i);
		sqlite3_bind_text(st, 2, dx[rnd(4)], -1, SQLITE_STATIC);
		run(db, st, "label");
	}
	sqlite3_finalize(st);

	st = prep(db, "INSERT INTO series (id, uid, study_id, modality, body_part, manufacturer,"
		" description, number) VALUES (?, ?, ?, ?, ?, 'ACME', 'series', 1)");
	for (int i = 1; i <= SERIES; i++) {
		snprintf(buf, sizeof(buf), "1.2.826.0.1.3680043.10.998.2.%d", i);
		sqlite3_bind_int(st, 1, i);
		sqlite3_bind_text(st, 2, buf, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(st, 3, 1 + (i - 1) / (SERIES / STUDIES));
		sqlite3_bind_text(st, 4, modalities[rnd(8)], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, parts[rnd(5)], -1, SQLITE_STATIC);
		run(db, st, "series");
	}
	sqlite3_finalize(st);

	st = prep(db, "INSERT INTO instance (id, uid, series_id, sop_class, number, rows, columns,"
		" frames, sha256, size, transfer_syntax, added) VALUES (?, ?, ?,"
		" '1.2.840.10008.5.1.4.1.1.2', 1, ?, ?, 1, ?, 524288, '1.2.840.10008.1.2.1',"
		" '2026-01-01T00:00:00.000Z')");
	for (int i = 1; i <= INSTANCES; i++) {
		char hash[65];
		int rows = rnd(4) ? 512 : 1024;

		snprintf(buf, sizeof(buf), "1.2.826.0.1.3680043.10.998.3.%d", i);
		snprintf(hash, sizeof(hash), "%064x", i);
		sqlite3_bind_int(st, 1, i);
		sqlite3_bind_text(st, 2, buf, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(st, 3, 1 + (i - 1) / (INSTANCES / SERIES));
		sqlite3_bind_int(st, 4, rows);
		sqlite3_bind_int(st, 5, rows);
		sqlite3_bind_text(st, 6, hash, -1, SQLITE_TRANSIENT);
		run(db, st, "instance");
		if (i % 200000 == 0) {
			sqlite3_exec(db, "COMMIT; BEGIN", NULL, NULL, NULL);
		}
	}
	sqlite3_finalize(st);
	if (sqlite3_exec(db, "COMMIT; ANALYZE", NULL, NULL, NULL) != SQLITE_OK)
		die_sql(db, "commit");
	sqlite3_close(db);
}

typedef struct query {
	fdn_registry *reg;
	const char *filter;
	uint64_t count;
} query;

static void count_once(void *arg)
{
	query *q = arg;

	if (fdn_registry_query_count(&q->count, q->reg, q->filter) != 0) {
		fprintf(stderr, "%s: %s\n", q->filter, fdn_error_last()->message);
		exit(1);
	}
}

int main(void)
{
	static const char *const filters[] = {
		"modality = 'CT' AND study_date BETWEEN '20200101' AND '20201231'"
		" AND label.diagnosis = 'nodule'",
		"modality = 'CT' AND study_date BETWEEN '20200101' AND '20201231'",
		"label.diagnosis = 'nodule'",
		"modality IN ('MR', 'PT') AND age >= 60 AND sex = 'F'",
		"study_date >= '2024-06-01' AND body_part = 'HEAD'",
		"modality = 'US' AND NOT label.diagnosis = 'normal'",
		"rows >= 1024",
		"modality = 'CT'",
		"sex = 'F'",
		"age >= 60",
		"",
	};
	fdn_registry_options opts = FDN_REGISTRY_OPTIONS_INIT;
	char dir[] = "/tmp/fdn-bench-registry-XXXXXX", path[128], cmd[160];
	fdn_registry *reg;
	double t, worst = 0;
	char hash[65];

	if (fdn_init() != 0 || !mkdtemp(dir))
		return 1;
	opts.create = 1;
	if (fdn_registry_open(&reg, dir, &opts) != 0) {
		fprintf(stderr, "open: %s\n", fdn_error_last()->message);
		return 1;
	}
	fdn_registry_free(reg);
	snprintf(path, sizeof(path), "%s/registry.db", dir);
	t = bench_now();
	fill(path);
	printf("filled %d instances in %.1f s\n", INSTANCES, bench_now() - t);
	if (fdn_registry_open(&reg, dir, NULL) != 0) {
		fprintf(stderr, "reopen: %s\n", fdn_error_last()->message);
		return 1;
	}
	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
		query q = { reg, filters[i], 0 };

		t = bench_time(RUNS, count_once, &q);
		if (t > worst)
			worst = t;
		printf("%8.1f ms  %8llu rows  %s\n", t * 1e3, (unsigned long long)q.count,
			filters[i][0] ? filters[i] : "(empty filter: every instance)");
	}
	t = bench_now();
	if (fdn_cohort_create(hash, reg, "bench", filters[0]) != 0) {
		fprintf(stderr, "cohort: %s\n", fdn_error_last()->message);
		return 1;
	}
	printf("%8.1f ms  fdn_cohort_create of the first filter\n", (bench_now() - t) * 1e3);
	printf("slowest query median %.1f ms (target < 200 ms): %s\n", worst * 1e3,
		worst < 0.2 ? "met" : "MISSED");
	fdn_registry_free(reg);
	/* FDN_BENCH_KEEP=1 keeps the registry for EXPLAIN QUERY PLAN. */
	if (getenv("FDN_BENCH_KEEP")) {
		printf("kept %s\n", dir);
	} else {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 1;
	}
	fdn_shutdown();
	return 0;
}
