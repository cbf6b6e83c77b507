/*
 * Registry add throughput: 10,000 small de-identified instances added in
 * batches of 500 into a fresh registry on /tmp (median of 5 runs), and
 * 1,000 added one transaction each for comparison.  The target is
 * >= 5,000 instances/s batched.  Datasets are built before timing: what
 * is measured is encode + SHA-256 + store + rows + audit.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "fednode/fednode.h"

#define BATCHED 10000
#define BATCH 500
#define SINGLE 1000
#define RUNS 5

static fdn_dataset *sets[BATCHED];
static char root[256];

static fdn_dataset *make_ds(int n)
{
	static const uint16_t px[64] = { 1 };
	fdn_dataset *ds = NULL;
	char uid[64], pid[32];
	int rc = 0;

	if (fdn_dataset_new(&ds, "1.2.840.10008.1.2.1"))
		abort();
	snprintf(uid, sizeof(uid), "2.25.4242.%d", n);
	rc |= fdn_dataset_set_string(ds, "SOPInstanceUID", uid);
	rc |= fdn_dataset_set_string(ds, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.4");
	snprintf(uid, sizeof(uid), "2.25.4343.%d", n / 200);
	rc |= fdn_dataset_set_string(ds, "StudyInstanceUID", uid);
	snprintf(uid, sizeof(uid), "2.25.4444.%d", n / 50);
	rc |= fdn_dataset_set_string(ds, "SeriesInstanceUID", uid);
	snprintf(pid, sizeof(pid), "FDN-BENCH%05d", n / 200);
	rc |= fdn_dataset_set_string(ds, "PatientID", pid);
	rc |= fdn_dataset_set_string(ds, "Modality", "MR");
	rc |= fdn_dataset_set_string(ds, "StudyDate", "20240301");
	rc |= fdn_dataset_set_string(ds, "Rows", "8");
	rc |= fdn_dataset_set_string(ds, "Columns", "8");
	rc |= fdn_dataset_set_string(ds, "PatientIdentityRemoved", "YES");
	rc |= fdn_dataset_set_bytes(ds, "PixelData", "OW", px, sizeof(px));
	if (rc)
		abort();
	return ds;
}

static fdn_registry *fresh(int run, const char *kind)
{
	fdn_registry_options o = FDN_REGISTRY_OPTIONS_INIT;
	fdn_registry *reg = NULL;
	char path[400];

	snprintf(path, sizeof(path), "%s/%s-%d", root, kind, run);
	o.create = 1;
	if (fdn_registry_open(&reg, path, &o)) {
		fprintf(stderr, "open: %s\n", fdn_error_last()->message);
		abort();
	}
	return reg;
}

static void add_or_die(fdn_registry *reg, int i)
{
	if (fdn_registry_add(NULL, reg, sets[i], 0)) {
		fprintf(stderr, "add %d: %s\n", i, fdn_error_last()->message);
		abort();
	}
}

static double run_batched(int run)
{
	fdn_registry *reg = fresh(run, "batched");
	double t = bench_now();

	for (int i = 0; i < BATCHED; i += BATCH) {
		if (fdn_registry_begin(reg))
			abort();
		for (int j = i; j < i + BATCH && j < BATCHED; j++)
			add_or_die(reg, j);
		if (fdn_registry_commit(reg))
			abort();
	}
	t = bench_now() - t;
	fdn_registry_free(reg);
	return t;
}

static double run_single(int run)
{
	fdn_registry *reg = fresh(run, "single");
	double t = bench_now();

	for (int i = 0; i < SINGLE; i++)
		add_or_die(reg, i);
	t = bench_now() - t;
	fdn_registry_free(reg);
	return t;
}

int main(void)
{
	double b[RUNS], s[RUNS], mb, ms;
	char cmd[300];

	if (fdn_init())
		return 1;
	snprintf(root, sizeof(root), "/tmp/fdn-bench-registry-XXXXXX");
	if (!mkdtemp(root))
		return 1;
	for (int i = 0; i < BATCHED; i++)
		sets[i] = make_ds(i);
	for (int r = 0; r < RUNS; r++) {
		b[r] = run_batched(r);
		s[r] = run_single(r);
	}
	mb = bench_median(b, RUNS);
	ms = bench_median(s, RUNS);
	bench_report("add, batches of 500", mb, BATCHED, "instances", 0);
	bench_report("add, one per transaction", ms, SINGLE, "instances", 0);
	printf("target >= 5000 instances/s batched: %s\n", BATCHED / mb >= 5000 ? "met" : "MISSED");
	for (int i = 0; i < BATCHED; i++)
		fdn_dataset_free(sets[i]);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		return 1;
	fdn_shutdown();
	return 0;
}
