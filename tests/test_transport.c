/*
 * Transports through the public API: the key rules, the directory
 * transport (buffers, files, streams, a few megabytes, entity tags,
 * atomic replacement, cancellation, symbolic links), host transports
 * (versioned vtable, missing methods), and the HTTPS transport's argument
 * checks and its retries against a port where nothing listens.  The real
 * HTTPS exchanges run in the 'net' suite (tests/net/).
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#include "fednode/fednode.h"
#include "testutil.h"

static char tmpdir[256];

static int setup(void **state)
{
	(void)state;
	if (fdn_init() != 0)
		return -1;
	return fdn_test_mkdtemp(tmpdir, sizeof(tmpdir), "transport");
}

static int teardown(void **state)
{
	(void)state;
	fdn_test_rmtree(tmpdir);
	return fdn_shutdown() < 0;
}

/* A fresh store folder per test. */
static fdn_transport *new_store(char *root, size_t size, const char *name)
{
	fdn_transport *t = NULL;

	snprintf(root, size, "%s/%s", tmpdir, name);
	assert_int_equal(mkdir(root, 0700), 0);
	OK(fdn_transport_dir_new(&t, root));
	return t;
}

/* Entries of @p dir whose name starts with '.' (temporary files). */
static int hidden_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static unsigned char *pattern(size_t n, unsigned seed)
{
	unsigned char *p = malloc(n ? n : 1);
	uint32_t x = seed * 2654435761u + 1;

	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		p[i] = (unsigned char)x;
	}
	return p;
}

/* --- keys --------------------------------------------------------------------- */

static void test_key_rules(void **state)
{
	static const char *good[] = {
		"a", "fed-1/rounds/3/update-site-a.fdne", "A.b_c-9", "x/y", "...", ".hidden",
		"a..b", "-", "_", "1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16",
	};
	static const char *bad[] = {
		"", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "../a", "a/..",
		"a b", "a\\b", "a:b", "a?b", "a%2fb", "é", "a\nb", "a~b",
		"1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17",
	};
	char seg[200], long_key[1100];
	fdn_transport *t = NULL;
	char root[300];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!fdn_transport_key_valid(good[i]))
			fail_msg("'%s' should be valid", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (fdn_transport_key_valid(bad[i]))
			fail_msg("'%s' should be invalid", bad[i]);
	assert_false(fdn_transport_key_valid(NULL));
	/* 128 characters per segment, 1024 bytes in all. */
	memset(seg, 'a', 128);
	seg[128] = '\0';
	assert_true(fdn_transport_key_valid(seg));
	seg[128] = 'a', seg[129] = '\0';
	assert_false(fdn_transport_key_valid(seg));
	long_key[0] = '\0';
	for (int i = 0; i < 8; i++) {
		memset(seg, 'b', 127);
		seg[127] = '\0';
		strcat(long_key, seg);
		if (i < 7)
			strcat(long_key, "/");
	}
	assert_int_equal(strlen(long_key), 1023);
	assert_true(fdn_transport_key_valid(long_key));
	strcat(long_key, "c");
	assert_true(fdn_transport_key_valid(long_key));
	strcat(long_key, "d");
	assert_false(fdn_transport_key_valid(long_key));

	/* Every operation refuses a bad key before any I/O, and says why. */
	t = new_store(root, sizeof(root), "keys");
	fdn_test_expect_error(fdn_transport_put_buffer(t, "../escape", "x", 1, NULL), FDN_EINVALID,
		"'.' or '..'");
	fdn_test_expect_error(fdn_transport_put_buffer(t, "a\x01z", "x", 1, NULL), FDN_EINVALID,
		"'a?z'");
	fdn_test_expect_error(fdn_transport_head(t, "/etc/passwd", NULL), FDN_EINVALID,
		"starts with '/'");
	fdn_test_expect_error(fdn_transport_delete(t, "a//b"), FDN_EINVALID, "empty segment");
	fdn_test_expect_error(fdn_transport_get_stream(t, NULL, NULL, NULL, NULL, NULL), FDN_EINVALID, NULL);
	assert_int_equal(hidden_entries(root), 0);
	fdn_transport_free(t);
	assert_int_equal(access(root, F_OK), 0);
	{
		DIR *d = opendir(root);
		struct dirent *e;
		int n = 0;
		while ((e = readdir(d)) != NULL)
			n++;
		closedir(d);
		assert_int_equal(n, 2);  /* nothing was created */
	}
}

/* --- the directory transport ------------------------------------------------- */

static void test_dir_buffer_round_trip(void **state)
{
	fdn_object_info info = FDN_OBJECT_INFO_INIT, info2 = FDN_OBJECT_INFO_INIT;
	fdn_buf out = FDN_BUF_INIT;
	fdn_transport *t;
	char root[300], path[400];
	struct stat st;

	(void)state;
	t = new_store(root, sizeof(root), "buffer");
	OK(fdn_transport_put_buffer(t, "fed/rounds/1/global.fdne", "hello", 5, &info));
	assert_int_equal(info.size, 5);
	assert_true(info.etag[0] == '"');
	assert_true(info.mtime > 0);
	snprintf(path, sizeof(path), "%s/fed/rounds/1/global.fdne", root);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 5);

	OK(fdn_transport_get_buffer(t, "fed/rounds/1/global.fdne", &out, 0, NULL, &info2));
	assert_int_equal(out.size, 5);
	assert_memory_equal(out.ptr, "hello", 5);
	assert_string_equal(info2.etag, info.etag);
	assert_int_equal(info2.not_modified, 0);

	/* The same entity tag: nothing transferred; the tag may be the very
	 * array the call refills. */
	OK(fdn_transport_get_buffer(t, "fed/rounds/1/global.fdne", &out, 0, info2.etag, &info2));
	assert_int_equal(info2.not_modified, 1);
	assert_int_equal(out.size, 0);
	assert_string_equal(info2.etag, info.etag);

	/* A new object: a new tag, transferred again. */
	OK(fdn_transport_put_buffer(t, "fed/rounds/1/global.fdne", "world!", 6, NULL));
	OK(fdn_transport_get_buffer(t, "fed/rounds/1/global.fdne", &out, 0, info.etag, &info2));
	assert_int_equal(info2.not_modified, 0);
	assert_int_equal(out.size, 6);
	assert_string_not_equal(info2.etag, info.etag);

	memset(&info, 0xff, sizeof(info));
	info.version = FDN_OBJECT_INFO_VERSION;
	OK(fdn_transport_head(t, "fed/rounds/1/global.fdne", &info));
	assert_int_equal(info.size, 6);
	assert_int_equal(info.not_modified, 0);
	assert_string_equal(info.etag, info2.etag);

	/* An empty object is an object. */
	OK(fdn_transport_put_buffer(t, "empty", NULL, 0, &info));
	assert_int_equal(info.size, 0);
	OK(fdn_transport_get_buffer(t, "empty", &out, 0, NULL, NULL));
	assert_int_equal(out.size, 0);

	OK(fdn_transport_delete(t, "fed/rounds/1/global.fdne"));
	fdn_test_expect_error(fdn_transport_head(t, "fed/rounds/1/global.fdne", &info), FDN_ENOTFOUND,
		"fed/rounds/1/global.fdne");
	fdn_test_expect_error(fdn_transport_delete(t, "fed/rounds/1/global.fdne"), FDN_ENOTFOUND, NULL);
	fdn_test_expect_error(fdn_transport_get_buffer(t, "nothing/here", &out, 0, NULL, NULL),
		FDN_ENOTFOUND, "no object 'nothing/here'");
	assert_null(out.ptr);
	/* A folder of keys is not an object. */
	fdn_test_expect_error(fdn_transport_head(t, "fed/rounds", NULL), FDN_ENOTFOUND, NULL);
	fdn_test_expect_error(fdn_transport_get_buffer(t, "fed", &out, 0, NULL, NULL), FDN_ENOTFOUND, NULL);
	/* Under an object there is nothing. */
	OK(fdn_transport_put_buffer(t, "file", "x", 1, NULL));
	fdn_test_expect_error(fdn_transport_head(t, "file/below", NULL), FDN_ENOTFOUND, NULL);
	fdn_test_expect_error(fdn_transport_put_buffer(t, "file/below", "x", 1, NULL), FDN_EIO, NULL);

	/* Bad info version, bad entity tag. */
	info.version = 0;
	fdn_test_expect_error(fdn_transport_head(t, "file", &info), FDN_EINVALID, "version 0");
	info.version = 99;
	fdn_test_expect_error(fdn_transport_head(t, "file", &info), FDN_EINVALID, "version 99");
	fdn_test_expect_error(fdn_transport_get_buffer(t, "file", &out, 0, "bad\r\nX-Injected: 1", NULL),
		FDN_EINVALID, "control");
	fdn_test_expect_error(fdn_transport_get_buffer(t, "file", &out, 0, "", NULL), FDN_EINVALID, NULL);

	/* max_size */
	OK(fdn_transport_put_buffer(t, "ten", "0123456789", 10, NULL));
	fdn_test_expect_error(fdn_transport_get_buffer(t, "ten", &out, 9, NULL, NULL), FDN_EBUFS, "ten");
	assert_null(out.ptr);
	OK(fdn_transport_get_buffer(t, "ten", &out, 10, NULL, NULL));
	assert_int_equal(out.size, 10);
	fdn_buf_dispose(&out);
	assert_int_equal(hidden_entries(root), 0);
	fdn_transport_free(t);
}

static void test_dir_files(void **state)
{
	fdn_object_info info = FDN_OBJECT_INFO_INIT;
	fdn_transport *t;
	char root[300], src[400], dst[400];
	unsigned char *data = pattern(3 * 1024 * 1024 + 17, 1), *back;
	size_t n = 3 * 1024 * 1024 + 17;
	FILE *f;
	struct stat st;

	(void)state;
	t = new_store(root, sizeof(root), "files");
	snprintf(src, sizeof(src), "%s/src.bin", tmpdir);
	snprintf(dst, sizeof(dst), "%s/dst.bin", tmpdir);
	f = fopen(src, "wb");
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);

	OK(fdn_transport_put_file(t, "big/object", src, &info));
	assert_int_equal(info.size, n);
	OK(fdn_transport_get_file(t, "big/object", dst, NULL, &info));
	assert_int_equal(stat(dst, &st), 0);
	assert_int_equal(st.st_size, n);
	back = malloc(n);
	f = fopen(dst, "rb");
	assert_int_equal(fread(back, 1, n, f), n);
	fclose(f);
	assert_memory_equal(back, data, n);

	/* Not modified: the file is left as it is. */
	OK(fdn_transport_put_buffer(t, "small", "abc", 3, &info));
	OK(fdn_transport_get_file(t, "small", dst, info.etag, &info));
	assert_int_equal(info.not_modified, 1);
	assert_int_equal(stat(dst, &st), 0);
	assert_int_equal(st.st_size, n);

	/* A failed get leaves the file and no temporary beside it. */
	fdn_test_expect_error(fdn_transport_get_file(t, "missing", dst, NULL, NULL), FDN_ENOTFOUND, NULL);
	assert_int_equal(stat(dst, &st), 0);
	assert_int_equal(st.st_size, n);
	OK(fdn_transport_get_file(t, "small", dst, NULL, NULL));
	assert_int_equal(stat(dst, &st), 0);
	assert_int_equal(st.st_size, 3);
	{
		DIR *d = opendir(tmpdir);
		struct dirent *e;
		while ((e = readdir(d)) != NULL)
			if (strstr(e->d_name, ".tmp"))
				fail_msg("temporary file left: %s", e->d_name);
		closedir(d);
	}

	fdn_test_expect_error(fdn_transport_put_file(t, "x", "/nonexistent/file", NULL), FDN_ENOTFOUND,
		"/nonexistent/file");
	fdn_test_expect_error(fdn_transport_put_file(t, "x", tmpdir, NULL), FDN_EINVALID, "folder");
	free(back);
	free(data);
	fdn_transport_free(t);
}

/* A stream of @c total bytes in chunks of at most @c chunk, failing with
 * @c fail_rc after @c fail_after bytes (0: never). */
typedef struct gen {
	const unsigned char *data;
	size_t total, pos, chunk, fail_after;
	int fail_rc;
	fdn_cancel *cancel_at_half;
} gen;

static int gen_read(void *buf, size_t capacity, size_t *got, void *payload)
{
	gen *g = payload;
	size_t n = g->total - g->pos;

	if (g->fail_after && g->pos >= g->fail_after)
		return g->fail_rc;
	if (g->cancel_at_half && g->pos >= g->total / 2)
		fdn_cancel_request(g->cancel_at_half);
	if (n > capacity)
		n = capacity;
	if (n > g->chunk)
		n = g->chunk;
	memcpy(buf, g->data + g->pos, n);
	g->pos += n;
	*got = n;
	return 0;
}

typedef struct sink {
	unsigned char *data;
	size_t size, cap, calls;
	int fail_rc;
	size_t fail_after;
} sink;

static int sink_write(const void *data, size_t len, void *payload)
{
	sink *s = payload;

	s->calls++;
	if (s->fail_after && s->size >= s->fail_after)
		return s->fail_rc;
	if (s->size + len > s->cap) {
		s->cap = (s->size + len) * 2;
		s->data = realloc(s->data, s->cap);
	}
	memcpy(s->data + s->size, data, len);
	s->size += len;
	return 0;
}

static void test_dir_streams(void **state)
{
	size_t n = 5 * 1024 * 1024 + 3;
	unsigned char *data = pattern(n, 2);
	gen g = { data, n, 0, 70000, 0, 0, NULL };
	sink s = { 0 };
	fdn_object_info info = FDN_OBJECT_INFO_INIT;
	fdn_transport *t;
	char root[300];

	(void)state;
	t = new_store(root, sizeof(root), "streams");
	OK(fdn_transport_put_stream(t, "s/large", gen_read, &g, UINT64_MAX, &info));
	assert_int_equal(info.size, n);
	OK(fdn_transport_get_stream(t, "s/large", sink_write, &s, NULL, &info));
	assert_int_equal(s.size, n);
	assert_memory_equal(s.data, data, n);
	assert_true(s.calls > 1);  /* streamed, not in one piece */

	/* Announced size must match. */
	g.pos = 0;
	fdn_test_expect_error(fdn_transport_put_stream(t, "s/short", gen_read, &g, n + 1, NULL),
		FDN_EINVALID, "ended after");
	g.pos = 0;
	fdn_test_expect_error(fdn_transport_put_stream(t, "s/long", gen_read, &g, n - 1, NULL),
		FDN_EINVALID, "more than");
	fdn_test_expect_error(fdn_transport_head(t, "s/short", NULL), FDN_ENOTFOUND, NULL);
	fdn_test_expect_error(fdn_transport_head(t, "s/long", NULL), FDN_ENOTFOUND, NULL);

	/* A write callback that stops: its value comes back. */
	free(s.data);
	memset(&s, 0, sizeof(s));
	s.fail_rc = FDN_EUSER;
	s.fail_after = 1;
	fdn_test_expect_error(fdn_transport_get_stream(t, "s/large", sink_write, &s, NULL, NULL),
		FDN_EUSER, "write callback");
	fdn_test_expect_error(fdn_transport_put_stream(t, "x", NULL, NULL, 0, NULL), FDN_EINVALID, "read");
	fdn_test_expect_error(fdn_transport_get_stream(t, "x", NULL, NULL, NULL, NULL), FDN_EINVALID, "write");
	free(s.data);
	free(data);
	fdn_transport_free(t);
}

static void test_dir_atomic(void **state)
{
	size_t n = 2 * 1024 * 1024;
	unsigned char *data = pattern(n, 3);
	gen g = { data, n, 0, 65536, 1024 * 1024, FDN_EUSER, NULL };
	fdn_object_info before = FDN_OBJECT_INFO_INIT, after = FDN_OBJECT_INFO_INIT;
	fdn_buf out = FDN_BUF_INIT;
	fdn_transport *t;
	char root[300], dir[400];

	(void)state;
	t = new_store(root, sizeof(root), "atomic");
	OK(fdn_transport_put_buffer(t, "a/b/obj", "old content", 11, &before));
	/* The read callback fails half-way: the old object stays whole, and
	 * no temporary file is left in the folder. */
	fdn_test_expect_error(fdn_transport_put_stream(t, "a/b/obj", gen_read, &g, n, NULL), FDN_EUSER,
		"read callback");
	OK(fdn_transport_get_buffer(t, "a/b/obj", &out, 0, NULL, &after));
	assert_int_equal(out.size, 11);
	assert_memory_equal(out.ptr, "old content", 11);
	assert_string_equal(before.etag, after.etag);
	snprintf(dir, sizeof(dir), "%s/a/b", root);
	assert_int_equal(hidden_entries(dir), 0);

	/* A temporary file left by a crash is never seen as a key. */
	{
		char tmp[500];
		FILE *f;
		snprintf(tmp, sizeof(tmp), "%s/.fdn~0123456789abcdef.tmp", dir);
		f = fopen(tmp, "w");
		fclose(f);
		assert_false(fdn_transport_key_valid("a/b/.fdn~0123456789abcdef.tmp"));
	}
	fdn_buf_dispose(&out);
	free(data);
	fdn_transport_free(t);
}

static void test_dir_cancel(void **state)
{
	size_t n = 4 * 1024 * 1024;
	unsigned char *data = pattern(n, 4);
	fdn_cancel *c;
	gen g = { data, n, 0, 65536, 0, 0, NULL };
	sink s = { 0 };
	fdn_transport *t;
	char root[300], dir[400];

	(void)state;
	OK(fdn_cancel_new(&c));
	t = new_store(root, sizeof(root), "cancel");
	OK(fdn_transport_put_buffer(t, "k/obj", data, n, NULL));
	OK(fdn_transport_set_cancel(t, c));

	/* Cancelled half-way through a put: stops between chunks, old object kept. */
	g.cancel_at_half = c;
	fdn_test_expect_error(fdn_transport_put_stream(t, "k/obj", gen_read, &g, n, NULL),
		FDN_ECANCELLED, NULL);
	assert_true(g.pos < n);
	snprintf(dir, sizeof(dir), "%s/k", root);
	assert_int_equal(hidden_entries(dir), 0);

	/* Already cancelled: nothing starts. */
	fdn_test_expect_error(fdn_transport_get_stream(t, "k/obj", sink_write, &s, NULL, NULL),
		FDN_ECANCELLED, NULL);
	assert_int_equal(s.calls, 0);
	fdn_test_expect_error(fdn_transport_head(t, "k/obj", NULL), FDN_ECANCELLED, NULL);

	fdn_cancel_reset(c);
	OK(fdn_transport_get_stream(t, "k/obj", sink_write, &s, NULL, NULL));
	assert_int_equal(s.size, n);
	assert_memory_equal(s.data, data, n);
	OK(fdn_transport_set_cancel(t, NULL));
	fdn_test_expect_error(fdn_transport_set_cancel(NULL, c), FDN_EINVALID, NULL);
	free(s.data);
	free(data);
	fdn_transport_free(t);
	fdn_cancel_free(c);
}

static void test_dir_symlinks(void **state)
{
	fdn_buf out = FDN_BUF_INIT;
	fdn_transport *t;
	char root[300], outside[300], link[400], file[400];
	FILE *f;

	(void)state;
	t = new_store(root, sizeof(root), "links");
	snprintf(outside, sizeof(outside), "%s/outside", tmpdir);
	assert_int_equal(mkdir(outside, 0700), 0);
	snprintf(file, sizeof(file), "%s/secret", outside);
	f = fopen(file, "w");
	fputs("secret", f);
	fclose(f);
	/* A folder link and a file link planted in the store. */
	snprintf(link, sizeof(link), "%s/dirlink", root);
	assert_int_equal(symlink(outside, link), 0);
	snprintf(link, sizeof(link), "%s/filelink", root);
	assert_int_equal(symlink(file, link), 0);

	fdn_test_expect_error(fdn_transport_get_buffer(t, "dirlink/secret", &out, 0, NULL, NULL),
		FDN_EINVALID, "symbolic link");
	fdn_test_expect_error(fdn_transport_get_buffer(t, "filelink", &out, 0, NULL, NULL),
		FDN_EINVALID, "symbolic link");
	fdn_test_expect_error(fdn_transport_head(t, "filelink", NULL), FDN_EINVALID, "symbolic link");
	fdn_test_expect_error(fdn_transport_delete(t, "dirlink/secret"), FDN_EINVALID, "symbolic link");
	fdn_test_expect_error(fdn_transport_put_buffer(t, "dirlink/new", "x", 1, NULL), FDN_EINVALID,
		"symbolic link");
	snprintf(link, sizeof(link), "%s/new", outside);
	assert_int_equal(access(link, F_OK), -1);
	assert_int_equal(access(file, F_OK), 0);
	/* A put over a file link replaces the link, never writes through it. */
	OK(fdn_transport_put_buffer(t, "filelink", "mine", 4, NULL));
	f = fopen(file, "r");
	{
		char buf[16] = { 0 };
		assert_non_null(fgets(buf, sizeof(buf), f));
		assert_string_equal(buf, "secret");
	}
	fclose(f);
	fdn_transport_free(t);
}

static void test_dir_open(void **state)
{
	fdn_transport *t = (fdn_transport *)1;
	char url[600], path[400];

	(void)state;
	fdn_test_expect_error(fdn_transport_dir_new(&t, "/nonexistent/store"), FDN_ENOTFOUND, "no such");
	assert_null(t);
	snprintf(path, sizeof(path), "%s/plain-file", tmpdir);
	fclose(fopen(path, "w"));
	fdn_test_expect_error(fdn_transport_dir_new(&t, path), FDN_EINVALID, "not a directory");
	fdn_test_expect_error(fdn_transport_dir_new(&t, NULL), FDN_EINVALID, NULL);
	fdn_test_expect_error(fdn_transport_dir_new(NULL, tmpdir), FDN_EINVALID, NULL);

	snprintf(url, sizeof(url), "file://%s", tmpdir);
	OK(fdn_transport_open_url(&t, url, NULL));
	OK(fdn_transport_put_buffer(t, "via-url", "u", 1, NULL));
	fdn_transport_free(t);
	snprintf(path, sizeof(path), "%s/via-url", tmpdir);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(url, sizeof(url), "file://localhost%s", tmpdir);
	OK(fdn_transport_open_url(&t, url, NULL));
	fdn_transport_free(t);
	/* Percent-encoded folder names. */
	snprintf(path, sizeof(path), "%s/with space", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(url, sizeof(url), "file://%s/with%%20space", tmpdir);
	OK(fdn_transport_open_url(&t, url, NULL));
	fdn_transport_free(t);

	fdn_test_expect_error(fdn_transport_open_url(&t, "file://host/x", NULL), FDN_EINVALID, NULL);
	fdn_test_expect_error(fdn_transport_open_url(&t, "file:///nonexistent", NULL), FDN_ENOTFOUND, NULL);
	fdn_test_expect_error(fdn_transport_open_url(&t, "http://example.org/store", NULL),
		FDN_EUNSUPPORTED, "plain http:// is refused");
	fdn_test_expect_error(fdn_transport_open_url(&t, "ftp://example.org/", NULL), FDN_EUNSUPPORTED,
		"unsupported");
	fdn_test_expect_error(fdn_transport_open_url(&t, "s3://bucket", NULL), FDN_EUNSUPPORTED, NULL);
	assert_null(t);
}

/* --- host transports ---------------------------------------------------------- */

#define MEM_SLOTS 8

typedef struct mem_store {
	struct {
		char key[FDN_TRANSPORT_KEY_MAX + 1];
		unsigned char *data;
		size_t size;
		unsigned gen;
	} slot[MEM_SLOTS];
	unsigned gen;
	int calls, freed;
} mem_store;

static int mem_find(mem_store *m, const char *key)
{
	for (int i = 0; i < MEM_SLOTS; i++)
		if (m->slot[i].data && strcmp(m->slot[i].key, key) == 0)
			return i;
	return -1;
}

static void mem_info(mem_store *m, int i, fdn_object_info *info)
{
	if (!info)
		return;
	info->size = m->slot[i].size;
	info->mtime = 1700000000;
	snprintf(info->etag, sizeof(info->etag), "\"g%u\"", m->slot[i].gen);
}

static int mem_put(void *payload, const char *key, fdn_read_cb read, void *read_payload,
	uint64_t size, fdn_object_info *info, fdn_cancel *cancel)
{
	mem_store *m = payload;
	unsigned char *data = NULL, buf[1000];
	size_t len = 0, got;
	int i, rc;

	(void)size, (void)cancel;
	m->calls++;
	do {
		if ((rc = read(buf, sizeof(buf), &got, read_payload)) != 0) {
			free(data);
			return rc;
		}
		data = realloc(data, len + got + 1);
		memcpy(data + len, buf, got);
		len += got;
	} while (got);
	if ((i = mem_find(m, key)) < 0)
		for (i = 0; i < MEM_SLOTS && m->slot[i].data; i++)
			;
	if (i == MEM_SLOTS) {
		free(data);
		return FDN_EIO;  /* no message: the library must make one */
	}
	free(m->slot[i].data);
	snprintf(m->slot[i].key, sizeof(m->slot[i].key), "%s", key);
	m->slot[i].data = data;
	m->slot[i].size = len;
	m->slot[i].gen = ++m->gen;
	mem_info(m, i, info);
	return 0;
}

static int mem_get(void *payload, const char *key, fdn_write_cb write, void *write_payload,
	const char *if_none_match, fdn_object_info *info, fdn_cancel *cancel)
{
	mem_store *m = payload;
	int i = mem_find(m, key), rc;

	(void)cancel;
	m->calls++;
	if (i < 0)
		return FDN_ENOTFOUND;
	mem_info(m, i, info);
	if (if_none_match && info && strcmp(if_none_match, info->etag) == 0) {
		info->not_modified = 1;
		return 0;
	}
	/* In two pieces, to exercise the caller's sink. */
	if ((rc = write(m->slot[i].data, m->slot[i].size / 2, write_payload)) != 0)
		return rc;
	return write(m->slot[i].data + m->slot[i].size / 2,
		m->slot[i].size - m->slot[i].size / 2, write_payload);
}

static int mem_head(void *payload, const char *key, fdn_object_info *info, fdn_cancel *cancel)
{
	mem_store *m = payload;
	int i = mem_find(m, key);

	(void)cancel;
	m->calls++;
	if (i < 0)
		return FDN_ENOTFOUND;
	mem_info(m, i, info);
	return 0;
}

static int mem_remove(void *payload, const char *key, fdn_cancel *cancel)
{
	mem_store *m = payload;
	int i = mem_find(m, key);

	(void)cancel;
	m->calls++;
	if (i < 0)
		return FDN_ENOTFOUND;
	free(m->slot[i].data);
	m->slot[i].data = NULL;
	return 0;
}

static void mem_free(void *payload)
{
	mem_store *m = payload;

	for (int i = 0; i < MEM_SLOTS; i++)
		free(m->slot[i].data);
	memset(m->slot, 0, sizeof(m->slot));
	m->freed++;
}

static void test_host_transport(void **state)
{
	fdn_transport_iface iface = {
		FDN_TRANSPORT_IFACE_VERSION, mem_put, mem_get, mem_head, mem_remove, mem_free,
	};
	fdn_object_info info = FDN_OBJECT_INFO_INIT;
	fdn_buf out = FDN_BUF_INIT;
	mem_store m;
	fdn_transport *t;
	char path[400];
	FILE *f;

	(void)state;
	memset(&m, 0, sizeof(m));
	OK(fdn_transport_new(&t, &iface, &m));
	iface.put = NULL;  /* copied: later changes do not matter */
	OK(fdn_transport_put_buffer(t, "fed/manifest.fdne", "manifest", 8, &info));
	assert_string_equal(info.etag, "\"g1\"");
	assert_int_equal(info.size, 8);
	OK(fdn_transport_get_buffer(t, "fed/manifest.fdne", &out, 0, NULL, &info));
	assert_int_equal(out.size, 8);
	assert_memory_equal(out.ptr, "manifest", 8);
	OK(fdn_transport_get_buffer(t, "fed/manifest.fdne", &out, 0, "\"g1\"", &info));
	assert_int_equal(info.not_modified, 1);
	assert_int_equal(out.size, 0);
	fdn_test_expect_error(fdn_transport_get_buffer(t, "fed/manifest.fdne", &out, 3, NULL, NULL),
		FDN_EBUFS, "larger than");
	OK(fdn_transport_head(t, "fed/manifest.fdne", &info));
	assert_int_equal(info.mtime, 1700000000);
	fdn_test_expect_error(fdn_transport_head(t, "nope", &info), FDN_ENOTFOUND, "head");

	snprintf(path, sizeof(path), "%s/host-src", tmpdir);
	f = fopen(path, "w");
	fputs("from a file", f);
	fclose(f);
	OK(fdn_transport_put_file(t, "f", path, NULL));
	snprintf(path, sizeof(path), "%s/host-dst", tmpdir);
	OK(fdn_transport_get_file(t, "f", path, NULL, NULL));
	f = fopen(path, "r");
	{
		char buf[32] = { 0 };
		assert_non_null(fgets(buf, sizeof(buf), f));
		assert_string_equal(buf, "from a file");
	}
	fclose(f);

	/* Invalid keys never reach the host. */
	m.calls = 0;
	fdn_test_expect_error(fdn_transport_put_buffer(t, "a/../b", "x", 1, NULL), FDN_EINVALID, NULL);
	fdn_test_expect_error(fdn_transport_delete(t, ""), FDN_EINVALID, NULL);
	assert_int_equal(m.calls, 0);

	/* A host error without a message gets one. */
	for (int i = 0; i < MEM_SLOTS; i++) {
		char key[16];
		snprintf(key, sizeof(key), "fill%d", i);
		if (fdn_transport_put_buffer(t, key, "x", 1, NULL) != 0)
			break;
	}
	fdn_test_expect_error(fdn_transport_put_buffer(t, "one-too-many", "x", 1, NULL), FDN_EIO,
		"host transport's put");

	OK(fdn_transport_delete(t, "f"));
	fdn_test_expect_error(fdn_transport_delete(t, "f"), FDN_ENOTFOUND, NULL);
	fdn_buf_dispose(&out);
	fdn_transport_free(t);
	assert_int_equal(m.freed, 1);
}

static void test_host_versions(void **state)
{
	fdn_transport_iface iface = {
		FDN_TRANSPORT_IFACE_VERSION, mem_put, mem_get, mem_head, NULL, mem_free,
	};
	mem_store m;
	fdn_transport *t = (fdn_transport *)1;

	(void)state;
	memset(&m, 0, sizeof(m));
	/* No remove: delete is unsupported, the rest works. */
	OK(fdn_transport_new(&t, &iface, &m));
	OK(fdn_transport_put_buffer(t, "k", "v", 1, NULL));
	fdn_test_expect_error(fdn_transport_delete(t, "k"), FDN_EUNSUPPORTED, "remove");
	fdn_transport_free(t);
	assert_int_equal(m.freed, 1);

	/* Refusals release the payload (except when the layout is unknown). */
	iface.version = 0;
	fdn_test_expect_error(fdn_transport_new(&t, &iface, &m), FDN_EINVALID, "version 0");
	assert_null(t);
	assert_int_equal(m.freed, 1);
	iface.version = FDN_TRANSPORT_IFACE_VERSION + 1;
	fdn_test_expect_error(fdn_transport_new(&t, &iface, &m), FDN_EINVALID, "unsupported version");
	assert_int_equal(m.freed, 2);
	iface.version = FDN_TRANSPORT_IFACE_VERSION;
	iface.get = NULL;
	fdn_test_expect_error(fdn_transport_new(&t, &iface, &m), FDN_EINVALID, "get method");
	assert_int_equal(m.freed, 3);
	iface.get = mem_get;
	iface.head = NULL;
	fdn_test_expect_error(fdn_transport_new(&t, &iface, &m), FDN_EINVALID, "head method");
	assert_int_equal(m.freed, 4);
	iface.head = mem_head;
	iface.free = NULL;  /* optional */
	OK(fdn_transport_new(&t, &iface, &m));
	fdn_transport_free(t);
	fdn_test_expect_error(fdn_transport_new(&t, NULL, &m), FDN_EINVALID, "iface");
	fdn_transport_free(NULL);
}

/* --- HTTPS: what can be checked without a server ----------------------------- */

static void test_https_arguments(void **state)
{
	fdn_https_options o;
	fdn_transport *t = (fdn_transport *)1;
	char ca[400];

	(void)state;
	OK(fdn_https_options_init(&o, FDN_HTTPS_OPTIONS_VERSION));
	assert_int_equal(o.version, FDN_HTTPS_OPTIONS_VERSION);
	assert_null(o.proxy);
	fdn_test_expect_error(fdn_https_options_init(&o, 0), FDN_EINVALID, NULL);
	fdn_test_expect_error(fdn_https_options_init(&o, 2), FDN_EINVALID, NULL);

	fdn_test_expect_error(fdn_transport_https_new(&t, "http://example.org/store", NULL),
		FDN_EINVALID, "plain http:// is refused");
	assert_null(t);
	fdn_test_expect_error(fdn_transport_https_new(&t, "https://user:pw@example.org/", NULL),
		FDN_EINVALID, "credentials");
	assert_null(strstr(fdn_error_last()->message, "pw"));
	fdn_test_expect_error(fdn_transport_https_new(&t, "https://example.org/?q=1", NULL),
		FDN_EINVALID, "query");
	fdn_test_expect_error(fdn_transport_https_new(&t, "not a url", NULL), FDN_EINVALID, NULL);
	fdn_test_expect_error(fdn_transport_https_new(&t, "https://", NULL), FDN_EINVALID, NULL);
	o.ca_file = "/nonexistent/ca.pem";
	fdn_test_expect_error(fdn_transport_https_new(&t, "https://example.org/", &o), FDN_EINVALID,
		"/nonexistent/ca.pem");
	o.ca_file = NULL;
	o.client_key = "/nonexistent/key.pem";
	fdn_test_expect_error(fdn_transport_https_new(&t, "https://example.org/", &o), FDN_EINVALID,
		"client_key");
	o.client_cert = "/nonexistent/cert.pem";
	fdn_test_expect_error(fdn_transport_https_new(&t, "https://example.org/", &o), FDN_EINVALID,
		"client certificate");
	o.client_cert = o.client_key = NULL;
	o.version = 7;
	fdn_test_expect_error(fdn_transport_https_new(&t, "https://example.org/", &o), FDN_EINVALID,
		"version 7");

	/* Creating one does no I/O. */
	OK(fdn_https_options_init(&o, FDN_HTTPS_OPTIONS_VERSION));
	snprintf(ca, sizeof(ca), "%s/ca.pem", tmpdir);
	fclose(fopen(ca, "w"));
	o.ca_file = ca;
	o.proxy = "";
	OK(fdn_transport_https_new(&t, "https://example.org:8443/store/", &o));
	fdn_test_expect_error(fdn_transport_put_buffer(t, "../x", "x", 1, NULL), FDN_EINVALID, NULL);
	fdn_transport_free(t);
	OK(fdn_transport_open_url(&t, "HTTPS://example.org/store", NULL));
	fdn_transport_free(t);
}

static void test_https_retries_then_eio(void **state)
{
	fdn_https_options o = FDN_HTTPS_OPTIONS_INIT;
	fdn_transport *t;
	char url[100];
	struct timespec t0, t1;
	double secs;
	int fd, port = fdn_test_dead_port(&fd);

	(void)state;
	o.retries = 2;
	o.backoff_ms = 20;
	o.connect_timeout_ms = 2000;
	o.proxy = "";
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/store", port);
	OK(fdn_transport_https_new(&t, url, &o));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fdn_test_expect_error(fdn_transport_put_buffer(t, "k", "x", 1, NULL), FDN_EIO, "after 3 attempts");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(secs < 5.0);
	assert_non_null(strstr(fdn_error_last()->message, url));
	fdn_test_expect_error(fdn_transport_head(t, "k", NULL), FDN_EIO, "HEAD https://127.0.0.1");
	fdn_transport_free(t);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_rules),
		cmocka_unit_test(test_dir_buffer_round_trip),
		cmocka_unit_test(test_dir_files),
		cmocka_unit_test(test_dir_streams),
		cmocka_unit_test(test_dir_atomic),
		cmocka_unit_test(test_dir_cancel),
		cmocka_unit_test(test_dir_symlinks),
		cmocka_unit_test(test_dir_open),
		cmocka_unit_test(test_host_transport),
		cmocka_unit_test(test_host_versions),
		cmocka_unit_test(test_https_arguments),
		cmocka_unit_test(test_https_retries_then_eio),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
