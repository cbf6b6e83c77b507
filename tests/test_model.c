/*
 * The model module through the public API: safetensors round trips of
 * every dtype, metadata, zero-copy reads of files, and the rejection of
 * every class of malformed header, plus random corruption that must
 * never crash.
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
#include <cmocka.h>

#include "fednode/fednode.h"
#include "testutil.h"

static char tmpdir[256];

static int setup(void **state)
{
	(void)state;
	if (fdn_init() != 0)
		return -1;
	return fdn_test_mkdtemp(tmpdir, sizeof(tmpdir), "model");
}

static int teardown(void **state)
{
	(void)state;
	fdn_test_rmtree(tmpdir);
	return fdn_shutdown() < 0;
}

/* --- helpers ---------------------------------------------------------------- */

/* A safetensors image of @p header (unpadded) followed by @p data_size
 * bytes of a pattern. */
static fdn_buf image(const char *header, size_t data_size)
{
	fdn_buf b = FDN_BUF_INIT;
	size_t n = strlen(header);
	unsigned char *p;

	p = malloc(8 + n + data_size);
	assert_non_null(p);
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)((uint64_t)n >> (8 * i));
	memcpy(p + 8, header, n);
	for (size_t i = 0; i < data_size; i++)
		p[8 + n + i] = (unsigned char)i;
	OK(fdn_buf_set(&b, p, 8 + n + data_size));
	free(p);
	return b;
}

/* Reading @p header + @p data_size must fail with FDN_EFORMAT and a
 * message containing every one of the NULL-terminated fragments. */
static void expect_bad(const char *header, size_t data_size, ...)
{
	fdn_buf b = image(header, data_size);
	fdn_model *m = (fdn_model *)1;
	int rc = fdn_model_read_buffer(&m, b.ptr, b.size, 0);
	const char *msg = fdn_error_last()->message;
	const char *frag;
	va_list ap;

	fdn_buf_dispose(&b);
	if (rc != FDN_EFORMAT)
		fail_msg("%s: rc %d (%s)", header, rc, msg);
	assert_null(m);
	va_start(ap, data_size);
	while ((frag = va_arg(ap, const char *)) != NULL)
		if (!strstr(msg, frag))
			fail_msg("message '%s' lacks '%s'", msg, frag);
	va_end(ap);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 31 + i * 7);
}

/* --- tests ------------------------------------------------------------------ */

static void test_dtypes(void **state)
{
	int d;

	(void)state;
	assert_int_equal(fdn_dtype_size(FDN_DTYPE_F32), 4);
	assert_int_equal(fdn_dtype_size(FDN_DTYPE_BF16), 2);
	assert_int_equal(fdn_dtype_size(FDN_DTYPE_BOOL), 1);
	assert_int_equal(fdn_dtype_size(FDN_DTYPE_F64), 8);
	assert_int_equal(fdn_dtype_size(0), 0);
	assert_int_equal(fdn_dtype_size(99), 0);
	assert_null(fdn_dtype_name(-1));
	assert_string_equal(fdn_dtype_name(FDN_DTYPE_I64), "I64");
	for (int i = FDN_DTYPE_BOOL; i <= FDN_DTYPE_F64; i++) {
		OK(fdn_dtype_from_name(&d, fdn_dtype_name(i)));
		assert_int_equal(d, i);
	}
	assert_int_equal(fdn_dtype_from_name(&d, "F8"), FDN_ENOTFOUND);
	assert_int_equal(fdn_dtype_from_name(NULL, "F32"), FDN_EINVALID);
	assert_int_equal(fdn_model_max_dims(), 8);
	assert_true(fdn_model_header_max() == 100000000u);
}

static fdn_model *every_dtype_model(void)
{
	static const uint64_t shapes[][3] = { { 2, 3, 1 }, { 5, 0, 0 }, { 1, 1, 4 } };
	unsigned char data[256];
	fdn_model *m;
	char name[32];

	OK(fdn_model_new(&m));
	for (int d = FDN_DTYPE_BOOL; d <= FDN_DTYPE_F64; d++) {
		for (size_t k = 0; k < 3; k++) {
			size_t ndim = k == 0 ? 3 : k == 1 ? 1 : 3;
			size_t n = fdn_dtype_size(d);

			for (size_t i = 0; i < ndim; i++)
				n *= shapes[k][i];
			fill(data, n, (unsigned)(d * 3 + k));
			snprintf(name, sizeof(name), "%s.%zu", fdn_dtype_name(d), k);
			OK(fdn_model_add_tensor(m, name, d, ndim, shapes[k], data, n));
		}
		/* A 0-dim scalar. */
		fill(data, fdn_dtype_size(d), (unsigned)d);
		snprintf(name, sizeof(name), "%s.scalar", fdn_dtype_name(d));
		OK(fdn_model_add_tensor(m, name, d, 0, NULL, data, fdn_dtype_size(d)));
	}
	{
		uint64_t eight[8] = { 1, 2, 1, 2, 1, 1, 1, 1 };

		fill(data, 16, 5);
		OK(fdn_model_add_tensor(m, "eight_dims", FDN_DTYPE_F32, 8, eight, data, 16));
	}
	OK(fdn_model_set_metadata(m, "format", "pt"));
	OK(fdn_model_set_metadata(m, "round", "7"));
	OK(fdn_model_set_metadata(m, "note", "h\xc3\xa9llo \"quoted\""));
	return m;
}

static void assert_same(const fdn_model *a, const fdn_model *b)
{
	fdn_tensor_info x = FDN_TENSOR_INFO_INIT, y = FDN_TENSOR_INFO_INIT;
	const char *k1, *v1, *v2;

	assert_int_equal(fdn_model_tensor_count(a), fdn_model_tensor_count(b));
	for (size_t i = 0; i < fdn_model_tensor_count(a); i++) {
		OK(fdn_model_tensor(&x, a, i));
		OK(fdn_model_tensor(&y, b, i));
		assert_string_equal(x.name, y.name);
		assert_int_equal(x.dtype, y.dtype);
		assert_int_equal(x.ndim, y.ndim);
		assert_memory_equal(x.shape, y.shape, sizeof(x.shape));
		assert_int_equal(x.nbytes, y.nbytes);
		if (x.nbytes)
			assert_memory_equal(x.data, y.data, x.nbytes);
		else
			assert_null(y.data);
	}
	assert_int_equal(fdn_model_metadata_count(a), fdn_model_metadata_count(b));
	for (size_t i = 0; i < fdn_model_metadata_count(a); i++) {
		OK(fdn_model_metadata_entry(&k1, &v1, a, i));
		OK(fdn_model_get_metadata(&v2, b, k1));
		assert_string_equal(v1, v2);
	}
}

static void test_round_trip_buffer(void **state)
{
	fdn_model *m = every_dtype_model(), *r;
	fdn_buf b = FDN_BUF_INIT;
	uint64_t hlen = 0;
	size_t idx;

	(void)state;
	OK(fdn_model_write_buffer(&b, m));
	for (int i = 7; i >= 0; i--)
		hlen = (hlen << 8) | (unsigned char)b.ptr[i];
	assert_int_equal(hlen % 8, 0);
	OK(fdn_model_read_buffer(&r, b.ptr, b.size, 0));
	fdn_buf_dispose(&b);  /* copied: r outlives the buffer */
	assert_same(m, r);
	OK(fdn_model_find(&idx, r, "eight_dims"));
	assert_int_equal(idx, fdn_model_tensor_count(r) - 1);
	assert_int_equal(fdn_model_find(&idx, r, "nope"), FDN_ENOTFOUND);
	fdn_model_free(r);
	fdn_model_free(m);
}

static void test_round_trip_file_zero_copy(void **state)
{
	fdn_model *m = every_dtype_model(), *r, *c;
	fdn_tensor_info ti = FDN_TENSOR_INFO_INIT;
	char path[512];
	struct stat st;
	fdn_buf b = FDN_BUF_INIT;

	(void)state;
	snprintf(path, sizeof(path), "%s/m.safetensors", tmpdir);
	OK(fdn_model_write_file(m, path));
	OK(fdn_model_read_file(&r, path, 0));
	assert_same(m, r);
	OK(fdn_model_write_buffer(&b, m));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal((size_t)st.st_size, b.size);
	/* Every non-empty tensor points into the file's bytes, in order. */
	{
		const unsigned char *first = NULL;

		for (size_t i = 0; i < fdn_model_tensor_count(r); i++) {
			OK(fdn_model_tensor(&ti, r, i));
			if (!ti.nbytes)
				continue;
			if (!first) {
				uint64_t hlen = 0;

				for (int k = 7; k >= 0; k--)
					hlen = (hlen << 8) | (unsigned char)b.ptr[k];
				first = (const unsigned char *)ti.data - 8 - hlen;
			}
			assert_ptr_equal(ti.data, first + ((const char *)ti.data - (const char *)first));
			assert_memory_equal(ti.data, b.ptr + ((const unsigned char *)ti.data - first),
				ti.nbytes);
		}
		/* The mapping is the file's image: its first bytes are the header. */
		assert_memory_equal(first, b.ptr, 64);
	}
	/* Writing over the mapped file is safe (rename), and a copy read
	 * gives the same model. */
	OK(fdn_model_write_file(r, path));
	OK(fdn_model_read_file(&c, path, FDN_MODEL_READ_COPY));
	assert_same(m, c);
	fdn_model_free(c);
	fdn_model_free(r);
	fdn_buf_dispose(&b);
	fdn_model_free(m);
	assert_int_equal(fdn_model_read_file(&r, "/nonexistent/x.safetensors", 0), FDN_ENOTFOUND);
	assert_null(r);
	assert_int_equal(fdn_model_read_file(&r, path, 0x100), FDN_EINVALID);
}

static void test_empty_and_metadata(void **state)
{
	fdn_model *m, *r;
	fdn_buf b = FDN_BUF_INIT;
	const char *v, *k;
	char path[512];

	(void)state;
	OK(fdn_model_new(&m));
	OK(fdn_model_write_buffer(&b, m));
	OK(fdn_model_read_buffer(&r, b.ptr, b.size, 0));
	assert_int_equal(fdn_model_tensor_count(r), 0);
	fdn_model_free(r);
	/* An empty model as a file: data section of 0 bytes. */
	snprintf(path, sizeof(path), "%s/empty.safetensors", tmpdir);
	OK(fdn_model_write_file(m, path));
	OK(fdn_model_read_file(&r, path, 0));
	assert_int_equal(fdn_model_tensor_count(r), 0);
	fdn_model_free(r);

	OK(fdn_model_set_metadata(m, "a", "1"));
	OK(fdn_model_set_metadata(m, "b", "2"));
	OK(fdn_model_set_metadata(m, "a", "3"));
	assert_int_equal(fdn_model_metadata_count(m), 2);
	OK(fdn_model_get_metadata(&v, m, "a"));
	assert_string_equal(v, "3");
	OK(fdn_model_set_metadata(m, "a", NULL));
	OK(fdn_model_set_metadata(m, "zz", NULL));
	assert_int_equal(fdn_model_metadata_count(m), 1);
	OK(fdn_model_metadata_entry(&k, &v, m, 0));
	assert_string_equal(k, "b");
	assert_int_equal(fdn_model_metadata_entry(&k, &v, m, 1), FDN_ENOTFOUND);
	assert_int_equal(fdn_model_get_metadata(&v, m, "a"), FDN_ENOTFOUND);
	assert_int_equal(fdn_model_set_metadata(m, "bad", "\xff"), FDN_EINVALID);
	fdn_buf_dispose(&b);
	fdn_model_free(m);
}

static void test_add_checks(void **state)
{
	fdn_model *m;
	uint64_t shape[9] = { 2, 2, 1, 1, 1, 1, 1, 1, 1 };
	uint64_t huge[2] = { UINT64_MAX / 2, 4 };
	float f[4] = { 1, 2, 3, 4 };

	(void)state;
	OK(fdn_model_new(&m));
	OK(fdn_model_add_tensor(m, "w1", FDN_DTYPE_F32, 2, shape, f, sizeof(f)));
	assert_int_equal(fdn_model_add_tensor(m, "w1", FDN_DTYPE_F32, 2, shape, f, sizeof(f)),
		FDN_ECONFLICT);
	assert_int_equal(fdn_model_add_tensor(m, "w2", FDN_DTYPE_F32, 2, shape, f, 12),
		FDN_EINVALID);
	assert_non_null(strstr(fdn_error_last()->message, "tensor 'w2'"));
	assert_int_equal(fdn_model_add_tensor(m, "w3", FDN_DTYPE_F32, 9, shape, f, 16),
		FDN_EINVALID);
	assert_int_equal(fdn_model_add_tensor(m, "w4", FDN_DTYPE_F64, 2, huge, f, 16),
		FDN_EINVALID);
	assert_non_null(strstr(fdn_error_last()->message, "overflow"));
	assert_int_equal(fdn_model_add_tensor(m, "w5", 77, 2, shape, f, 16), FDN_EINVALID);
	assert_int_equal(fdn_model_add_tensor(m, "__metadata__", FDN_DTYPE_F32, 2, shape, f, 16),
		FDN_EINVALID);
	assert_int_equal(fdn_model_add_tensor(m, "", FDN_DTYPE_F32, 2, shape, f, 16),
		FDN_EINVALID);
	assert_int_equal(fdn_model_add_tensor(m, "w6", FDN_DTYPE_F32, 2, shape, NULL, 16),
		FDN_EINVALID);
	/* An empty tensor needs no data. */
	shape[0] = 0;
	OK(fdn_model_add_tensor(m, "empty", FDN_DTYPE_F32, 2, shape, NULL, 0));
	assert_int_equal(fdn_model_tensor_count(m), 2);
	{
		fdn_tensor_info ti = FDN_TENSOR_INFO_INIT;

		ti.version = 0;

		assert_int_equal(fdn_model_tensor(&ti, m, 0), FDN_EINVALID);
		ti.version = 99;
		assert_int_equal(fdn_model_tensor(&ti, m, 0), FDN_EINVALID);
		ti.version = FDN_TENSOR_INFO_VERSION;
		assert_int_equal(fdn_model_tensor(&ti, m, 2), FDN_ENOTFOUND);
		OK(fdn_model_tensor(&ti, m, 1));
		assert_null(ti.data);
		assert_int_equal(ti.shape[1], 2);
		assert_int_equal(ti.shape[2], 0);
	}
	fdn_model_free(m);
	fdn_model_free(NULL);
	assert_int_equal(fdn_model_tensor_count(NULL), 0);
}

static void test_valid_inputs(void **state)
{
	fdn_model *m;
	fdn_buf b;
	fdn_tensor_info ti = FDN_TENSOR_INFO_INIT;

	(void)state;
	/* Listed out of order, padded with spaces, metadata first. */
	b = image("{\"__metadata__\":{\"x\":\"y\"},\"b\":{\"dtype\":\"U8\",\"shape\":[2],"
		"\"data_offsets\":[4,6]},\"a\":{\"dtype\":\"I16\",\"shape\":[2],"
		"\"data_offsets\":[0,4]},\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],"
		"\"data_offsets\":[6,6]}}      ", 6);
	OK(fdn_model_read_buffer(&m, b.ptr, b.size, 0));
	assert_int_equal(fdn_model_tensor_count(m), 3);
	OK(fdn_model_tensor(&ti, m, 0));
	assert_string_equal(ti.name, "a");
	assert_int_equal(ti.nbytes, 4);
	assert_memory_equal(ti.data, "\0\1\2\3", 4);
	OK(fdn_model_tensor(&ti, m, 1));
	assert_string_equal(ti.name, "b");
	fdn_model_free(m);
	fdn_buf_dispose(&b);
}

static void test_malformed(void **state)
{
	fdn_model *m;
	unsigned char small[16] = { 0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}' };

	(void)state;
	/* Header length past EOF, and over the limit. */
	small[0] = 40;
	small[1] = 0;
	assert_int_equal(fdn_model_read_buffer(&m, small, 10, 0), FDN_EFORMAT);
	assert_non_null(strstr(fdn_error_last()->message, "past the end"));
	memset(small, 0xff, 8);
	assert_int_equal(fdn_model_read_buffer(&m, small, 10, 0), FDN_EFORMAT);
	assert_non_null(strstr(fdn_error_last()->message, "exceeds the limit"));
	assert_int_equal(fdn_model_read_buffer(&m, small, 5, 0), FDN_EFORMAT);
	assert_int_equal(fdn_model_read_buffer(&m, NULL, 0, 0), FDN_EFORMAT);

	expect_bad("{\"a\":", 0, "invalid JSON", NULL);
	expect_bad("[1,2]", 0, "does not start with '{'", NULL);
	expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
		"\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2,
		"invalid JSON", "duplicate", NULL);
	expect_bad("{\"w1\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
		"tensor 'w1'", "unknown dtype 'F8'", NULL);
	expect_bad("{\"w1\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
		"tensor 'w1'", "8 bytes but data_offsets cover 4", NULL);
	expect_bad("{\"w1\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],"
		"\"data_offsets\":[0,0]}}", 0, "tensor 'w1'", "overflow", NULL);
	expect_bad("{\"w1\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0,
		"tensor 'w1'", "dimension 0", NULL);
	expect_bad("{\"w1\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,0]}}", 0,
		"tensor 'w1'", "dimension 0", NULL);
	expect_bad("{\"w1\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 2,
		"tensor 'w1'", "out of bounds", NULL);
	expect_bad("{\"w1\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[3,2]}}", 4,
		"tensor 'w1'", "before begin", NULL);
	expect_bad("{\"w1\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
		"\"w2\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}", 6,
		"tensor 'w2'", "overlap tensor 'w1'", NULL);
	expect_bad("{\"w1\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
		"\"w2\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]}}", 6,
		"tensor 'w2'", "hole of 2 bytes", NULL);
	expect_bad("{\"w1\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 5,
		"3 bytes of data after the last tensor", NULL);
	expect_bad("{\"w1\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
		"\"data_offsets\":[0,1]}}", 1, "tensor 'w1'", "9 dimensions", NULL);
	expect_bad("{\"__metadata__\":{\"k\":1}}", 0, "metadata 'k'", "not a string", NULL);
	expect_bad("{\"__metadata__\":[]}", 0, "__metadata__ is not a JSON object", NULL);
	expect_bad("{\"w1\":[1]}", 0, "tensor 'w1'", "not a JSON object", NULL);
	expect_bad("{\"w1\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0],\"x\":1}}", 0,
		"tensor 'w1'", "unknown key 'x'", NULL);
	expect_bad("{\"w1\":{\"shape\":[0],\"data_offsets\":[0,0]}}", 0, "tensor 'w1'", "dtype", NULL);
	expect_bad("{\"w1\":{\"dtype\":\"U8\",\"data_offsets\":[0,0]}}", 0, "tensor 'w1'", "shape", NULL);
	expect_bad("{\"w1\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0]}}", 0,
		"tensor 'w1'", "data_offsets", NULL);
	expect_bad("{\"\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0,
		"empty name", NULL);
	expect_bad("{\"w\xff\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0,
		"invalid JSON", NULL);
	expect_bad("{\"w1\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,99999999999999999999]}}",
		0, "invalid JSON", NULL);
}

static void test_header_past_eof_file(void **state)
{
	char path[512];
	unsigned char hdr[10] = { 200, 0, 0, 0, 0, 0, 0, 0, '{', '}' };
	fdn_model *m;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/trunc.safetensors", tmpdir);
	assert_non_null(f = fopen(path, "wb"));
	assert_int_equal(fwrite(hdr, 1, sizeof(hdr), f), sizeof(hdr));
	fclose(f);
	assert_int_equal(fdn_model_read_file(&m, path, 0), FDN_EFORMAT);
	assert_non_null(strstr(fdn_error_last()->message, path));
	assert_non_null(strstr(fdn_error_last()->message, "past the end"));
	/* Shorter than the length prefix. */
	assert_non_null(f = fopen(path, "wb"));
	fclose(f);
	assert_int_equal(fdn_model_read_file(&m, path, 0), FDN_EFORMAT);
}

static void test_random_corruption(void **state)
{
	fdn_model *m = every_dtype_model(), *r;
	fdn_buf b = FDN_BUF_INIT;
	unsigned char *copy;
	unsigned int seed = 12345;
	size_t accepted = 0;

	(void)state;
	OK(fdn_model_write_buffer(&b, m));
	copy = malloc(b.size);
	assert_non_null(copy);
	for (int iter = 0; iter < 4000; iter++) {
		size_t size = b.size;
		int flips;

		memcpy(copy, b.ptr, b.size);
		seed = seed * 1103515245u + 12345u;
		flips = 1 + (int)((seed >> 16) % 4);
		for (int k = 0; k < flips; k++) {
			seed = seed * 1103515245u + 12345u;
			/* Mostly the header and its length: that is what is parsed. */
			size_t pos = (seed >> 8) % (iter % 4 ? 8 + 600 : b.size);

			seed = seed * 1103515245u + 12345u;
			copy[pos % b.size] = (unsigned char)(seed >> 16);
		}
		if (iter % 7 == 0) {
			seed = seed * 1103515245u + 12345u;
			size = (seed >> 8) % b.size;
		}
		if (fdn_model_read_buffer(&r, copy, size, 0) == 0) {
			fdn_tensor_info ti = FDN_TENSOR_INFO_INIT;
			volatile unsigned sum = 0;

			accepted++;
			for (size_t i = 0; i < fdn_model_tensor_count(r); i++) {
				OK(fdn_model_tensor(&ti, r, i));
				for (size_t j = 0; j < ti.nbytes; j++)
					sum += ((const unsigned char *)ti.data)[j];
			}
			fdn_model_free(r);
		} else {
			assert_null(r);
		}
	}
	assert_true(accepted < 4000);
	free(copy);
	fdn_buf_dispose(&b);
	fdn_model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dtypes),
		cmocka_unit_test(test_round_trip_buffer),
		cmocka_unit_test(test_round_trip_file_zero_copy),
		cmocka_unit_test(test_empty_and_metadata),
		cmocka_unit_test(test_add_checks),
		cmocka_unit_test(test_valid_inputs),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_header_past_eof_file),
		cmocka_unit_test(test_random_corruption),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
