/*
 * Hostile input: every file of pydicom's test corpus either reads or is
 * refused with a clear error, and thousands of truncations and byte
 * corruptions of valid files never crash the process.  Each batch of
 * inputs runs in a child process, so that a crash (GDCM's assertions
 * abort()) is caught, narrowed down to the input that caused it, saved,
 * and reported instead of killing the test runner.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <dirent.h>
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

#include "fednode/fednode.h"

#define CORPUS "/usr/lib/python3/dist-packages/pydicom/data/test_files"
#define CHARSETS "/usr/lib/python3/dist-packages/pydicom/data/charset_files"

struct blob {
	unsigned char *data;
	size_t size;
};

static struct blob load(const char *path)
{
	struct blob b = { NULL, 0 };
	FILE *f = fopen(path, "rb");
	long n;

	if (!f)
		return b;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b.data = malloc(n > 0 ? (size_t)n : 1);
	b.size = fread(b.data, 1, (size_t)n, f);
	fclose(f);
	return b;
}

static int touch_element(const fdn_element_info *e, void *payload)
{
	const fdn_dataset *ds = payload;
	fdn_buf b = FDN_BUF_INIT;
	double d;

	/* Every accessor on every element: only documented codes may come back. */
	int rc = fdn_dataset_get_string(&b, ds, e->path);
	if (rc != 0 && rc != FDN_EINVALID && rc != FDN_EFORMAT && rc != FDN_EUNSUPPORTED)
		return 1000 + rc;
	rc = fdn_dataset_get_bytes(&b, ds, e->path);
	if (rc != 0 && rc != FDN_EINVALID)
		return 2000 + rc;
	rc = fdn_dataset_get_number(&d, ds, e->path, 0);
	if (rc != 0 && rc != FDN_EINVALID && rc != FDN_ENOTFOUND && rc != FDN_EFORMAT)
		return 3000 + rc;
	fdn_buf_dispose(&b);
	return 0;
}

/* Reads @p data both ways and exercises what was read.  Returns 0 when
 * the outcome was one the API documents. */
static int exercise(const unsigned char *data, size_t size)
{
	static const unsigned flags[3] = { FDN_READ_HEADER_ONLY, FDN_READ_FULL, FDN_READ_SUMMARY };
	int i;

	for (i = 0; i < 3; i++) {
		fdn_dataset *ds = NULL;
		fdn_instance_info info;
		fdn_buf json = FDN_BUF_INIT;
		int rc = fdn_dataset_read_buffer(&ds, data, size, flags[i]);

		if (rc != 0) {
			const char *msg = fdn_error_last()->message;
			if ((rc != FDN_EFORMAT && rc != FDN_EUNSUPPORTED) || !strstr(msg, "buffer"))
				return 1;
			continue;
		}
		info.version = FDN_INSTANCE_INFO_VERSION;
		if (fdn_dataset_instance_info(&info, ds) != 0)
			return 2;
		rc = fdn_dataset_foreach(ds, NULL, FDN_FOREACH_RECURSIVE, touch_element, ds);
		if (rc != 0)
			return 3;
		rc = fdn_dataset_to_json(&json, ds, 0);
		if (rc != 0 && rc != FDN_EFORMAT && rc != FDN_EUNSUPPORTED)
			return 4;
		fdn_buf_dispose(&json);
		/* A copy of whatever was read, defined-length sequences included. */
		fdn_dataset *copy = NULL;
		if (fdn_dataset_clone(&copy, ds) != 0 ||
		    fdn_dataset_foreach(copy, NULL, FDN_FOREACH_RECURSIVE, touch_element, copy) != 0)
			return 5;
		fdn_dataset_free(copy);
		fdn_dataset_free(ds);
	}
	return 0;
}

/* --- mutations ------------------------------------------------------------- */

static uint64_t rng_state;

static uint32_t rnd(void)
{
	/* xorshift64*: deterministic across runs and platforms. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

/* Case @p k of a seed file: a truncation or a few corrupted bytes,
 * biased towards the header where the structure lives. */
static void mutate(struct blob *out, const struct blob *seed, uint32_t k)
{
	size_t head = seed->size < 4096 ? seed->size : 4096;
	int n, j;

	rng_state = 0x9E3779B97F4A7C15ull ^ ((uint64_t)k << 20) ^ seed->size;
	memcpy(out->data, seed->data, seed->size);
	out->size = seed->size;
	if (k % 4 == 0) {
		out->size = rnd() % (k % 8 == 0 ? head : seed->size);
		return;
	}
	n = 1 + (int)(rnd() % 8);
	for (j = 0; j < n; j++) {
		size_t at = rnd() % (rnd() % 3 ? head : seed->size);
		uint32_t r = rnd();
		/* Extreme values where lengths live; random bytes elsewhere. */
		out->data[at] = (unsigned char)(r % 5 == 0 ? 0xFF : r % 5 == 1 ? 0x00 : r >> 8);
	}
}

/* Runs cases [from, to) of @p seed in a child; 0 when all were fine, else
 * the child's status (or the first failing case + 1 in *bad). */
static int run_batch(const struct blob *seed, uint32_t from, uint32_t to, uint32_t *bad)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct blob m = { malloc(seed->size ? seed->size : 1), 0 };
		uint32_t k;
		for (k = from; k < to; k++) {
			mutate(&m, seed, k);
			if (exercise(m.data, m.size) != 0)
				_exit(100 + (int)(k - from) % 100);
		}
		free(m.data);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) >= 100 && to - from <= 100)
		*bad = from + (uint32_t)(WEXITSTATUS(status) - 100) + 1;
	return status ? status : 1;
}

/* Narrows a failing batch down to one case, saves it, and describes it. */
static void report_failure(const char *name, const struct blob *seed, uint32_t from, uint32_t to)
{
	struct blob m = { malloc(seed->size ? seed->size : 1), 0 };
	char path[1024];
	uint32_t k, bad = 0;
	FILE *f;

	for (k = from; k < to; k++)
		if (run_batch(seed, k, k + 1, &bad) != 0)
			break;
	mutate(&m, seed, k);
	snprintf(path, sizeof(path), "/tmp/fdn-robust-%s-%u.dcm", name, k);
	f = fopen(path, "wb");
	if (f) {
		fwrite(m.data, 1, m.size, f);
		fclose(f);
	}
	fprintf(stderr, "mutation %u of %s crashed or misbehaved; input saved as %s\n",
		k, name, path);
	free(m.data);
}

static void mutate_file(const char *path, uint32_t cases)
{
	struct blob seed = load(path);
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	uint32_t from, bad = 0;
	int failures = 0;

	if (!seed.data)
		skip();
	for (from = 0; from < cases; from += 100) {
		uint32_t to = from + 100 < cases ? from + 100 : cases;
		if (run_batch(&seed, from, to, &bad) != 0) {
			report_failure(name, &seed, from, to);
			failures++;
		}
	}
	printf("%s: %u mutations, %d failing batches\n", name, cases, failures);
	free(seed.data);
	assert_int_equal(failures, 0);
}

/* --- tests ----------------------------------------------------------------- */

static int is_dcm(const char *name)
{
	size_t n = strlen(name);
	return (n > 4 && strcmp(name + n - 4, ".dcm") == 0) || strcmp(name, "DICOMDIR") == 0;
}

static void corpus_dir(const char *dir, int *read_ok, int *refused)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[1024];
		struct blob b;
		fdn_dataset *ds = NULL;
		int rc;

		if (!is_dcm(e->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		b = load(path);
		assert_int_equal(exercise(b.data, b.size), 0);
		rc = fdn_dataset_read_file(&ds, path, FDN_READ_FULL);
		if (rc == 0) {
			(*read_ok)++;
			printf("  read     %s\n", e->d_name);
		} else {
			/* Refused: a documented code and a message naming the file. */
			assert_true(rc == FDN_EFORMAT || rc == FDN_EUNSUPPORTED);
			assert_non_null(strstr(fdn_error_last()->message, path));
			(*refused)++;
			printf("  refused  %s: %s\n", e->d_name, fdn_error_last()->message + strlen(path));
		}
		fdn_dataset_free(ds);
		free(b.data);
	}
	closedir(d);
}

static void test_pydicom_corpus(void **state)
{
	int read_ok = 0, refused = 0;

	(void)state;
	if (access(CORPUS, R_OK) != 0)
		skip();
	corpus_dir(CORPUS, &read_ok, &refused);
	corpus_dir(CORPUS "/dicomdirtests", &read_ok, &refused);
	corpus_dir(CHARSETS, &read_ok, &refused);
	printf("pydicom corpus: %d read, %d refused\n", read_ok, refused);
	assert_true(read_ok >= 60);
}

static void test_known_good_files_read(void **state)
{
	static const char *const good[] = { "CT_small.dcm", "MR_small.dcm",
		"MR_small_implicit.dcm", "MR_small_bigendian.dcm", "ExplVR_BigEnd.dcm",
		"image_dfl.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm", "rtplan.dcm",
		"rtstruct.dcm", "test-SR.dcm",
		"waveform_ecg.dcm", "JPEG-lossy.dcm", "MR_small_jpeg_ls_lossless.dcm" };
	static const char *const bad[] = { "MR_truncated.dcm", "rtplan_truncated.dcm" };
	size_t i;

	(void)state;
	if (access(CORPUS, R_OK) != 0)
		skip();
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char path[512];
		fdn_dataset *ds = NULL;
		snprintf(path, sizeof(path), CORPUS "/%s", good[i]);
		if (fdn_dataset_read_file(&ds, path, FDN_READ_FULL) != 0)
			fail_msg("%s: %s", good[i], fdn_error_last()->message);
		fdn_dataset_free(ds);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char path[512];
		fdn_dataset *ds = NULL;
		snprintf(path, sizeof(path), CORPUS "/%s", bad[i]);
		assert_int_equal(fdn_dataset_read_file(&ds, path, FDN_READ_FULL), FDN_EFORMAT);
		assert_non_null(strstr(fdn_error_last()->message, "offset"));
	}
}

static void test_mutations(void **state)
{
	static const char *const seeds[] = { "CT_small.dcm", "MR_small_implicit.dcm",
		"MR_small_bigendian.dcm", "image_dfl.dcm", "rtplan.dcm", "JPEG2000.dcm",
		"nested_priv_SQ.dcm", "no_meta.dcm", "UN_sequence.dcm" };
	const char *env = getenv("FDN_ROBUST_CASES");
	uint32_t cases = env ? (uint32_t)atoi(env) : 400;
	size_t i;

	(void)state;
	if (access(CORPUS, R_OK) != 0)
		skip();
	for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		char path[512];
		snprintf(path, sizeof(path), CORPUS "/%s", seeds[i]);
		mutate_file(path, cases);
	}
}

static int setup(void **state)
{
	(void)state;
	return fdn_init();
}

static int teardown(void **state)
{
	(void)state;
	return fdn_shutdown() < 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pydicom_corpus),
		cmocka_unit_test(test_known_good_files_read),
		cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests_name("dicom_robust", tests, setup, teardown);
}
