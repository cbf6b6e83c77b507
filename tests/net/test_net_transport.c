/*
 * The HTTPS transport against a real nginx (run by tests/net/run-net.sh):
 * a 20 MB round trip through put/get/head/delete in every form, entity
 * tags, 404, client certificates (none, foreign, per-site write rules),
 * an untrusted server, TLS 1.3 and connection reuse (seen in nginx's
 * access log), resumed downloads over a stalling link (Range/If-Range,
 * and a server that ignores ranges), retries with Retry-After, a port
 * where nothing listens, cancellation, and the proxy environment.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fednode/fednode.h"
#include "testutil.h"

#define BIG (20u * 1024 * 1024 + 123)

static const char *base, *host_base, *dir, *access_log, *refuser_base;
static unsigned char *big;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *path_in(const char *name)
{
	static char buf[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

/* A transport on @p where ("store", "slow", ...) as node @p who (a
 * certificate name, or NULL for none), trusting @p ca ("ca", "other-ca",
 * or NULL for the system's). */
static fdn_transport *open_as(const char *where, const char *who, const char *ca,
	fdn_https_options *tune)
{
	fdn_https_options o = FDN_HTTPS_OPTIONS_INIT;
	char url[256], cert[512], key[512], cafile[512];
	fdn_transport *t = NULL;

	if (tune)
		o = *tune;
	if (ca) {
		snprintf(cafile, sizeof(cafile), "%s/%s.pem", dir, ca);
		o.ca_file = cafile;
	}
	if (who) {
		snprintf(cert, sizeof(cert), "%s/%s.pem", dir, who);
		snprintf(key, sizeof(key), "%s/%s.key", dir, who);
		o.client_cert = cert;
		o.client_key = key;
	}
	if (!o.backoff_ms)
		o.backoff_ms = 20;
	snprintf(url, sizeof(url), "%s/%s", base, where);
	OK(fdn_transport_https_new(&t, url, &o));
	return t;
}

/* nginx's access log, one line per request. */
static char *read_log(void)
{
	FILE *f = fopen(access_log, "r");
	char *text = calloc(1, 1 << 20);
	size_t n;

	assert_non_null(f);
	n = fread(text, 1, (1 << 20) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

static int count_lines(const char *text, const char *a, const char *b)
{
	int n = 0;

	for (const char *line = text; line && *line; ) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char buf[1024];

		snprintf(buf, sizeof(buf), "%.*s", (int)(len < sizeof(buf) ? len : sizeof(buf) - 1), line);
		if (strstr(buf, a) && (!b || strstr(buf, b)))
			n++;
		line = end ? end + 1 : NULL;
	}
	return n;
}

/* nginx writes a request's log line after its response: wait (2 s at
 * most) for @p n lines with @p a (and @p b), then the log. */
static char *wait_log(int n, const char *a, const char *b)
{
	for (int i = 0; ; i++) {
		char *log = read_log();
		struct timespec ts = { 0, 20 * 1000000L };

		if (count_lines(log, a, b) >= n || i == 100)
			return log;
		free(log);
		nanosleep(&ts, NULL);
	}
}

static int setup(void **state)
{
	uint32_t x = 12345;

	(void)state;
	if (fdn_init() != 0)
		return -1;
	big = malloc(BIG);
	if (!big)
		return -1;
	for (size_t i = 0; i < BIG; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		big[i] = (unsigned char)x;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(big);
	return fdn_shutdown() < 0;
}

/* --- round trips ---------------------------------------------------------------- */

typedef struct chunks {
	const unsigned char *data;
	size_t size, pos;
} chunks;

static int chunks_read(void *buf, size_t capacity, size_t *got, void *payload)
{
	chunks *c = payload;
	size_t n = c->size - c->pos < capacity ? c->size - c->pos : capacity;

	if (n > 100000)
		n = 100000;
	memcpy(buf, c->data + c->pos, n);
	c->pos += n;
	*got = n;
	return 0;
}

typedef struct collect {
	unsigned char *data;
	size_t size;
	fdn_cancel *cancel_at;   /* requested once this many bytes came */
	size_t cancel_after;
} collect;

static int collect_write(const void *data, size_t len, void *payload)
{
	collect *c = payload;

	if (c->size + len > BIG + 16)
		return FDN_EUSER;
	memcpy(c->data + c->size, data, len);
	c->size += len;
	if (c->cancel_at && c->size >= c->cancel_after)
		fdn_cancel_request(c->cancel_at);
	return 0;
}

static void test_round_trip_20mb(void **state)
{
	fdn_transport *t = open_as("store", "coordinator", "ca", NULL);
	fdn_object_info put = FDN_OBJECT_INFO_INIT, got = FDN_OBJECT_INFO_INIT;
	fdn_buf out = FDN_BUF_INIT;
	collect sink = { malloc(BIG + 16), 0, NULL, 0 };
	chunks src = { big, BIG, 0 };
	FILE *f;
	double t0;

	(void)state;
	t0 = now();
	OK(fdn_transport_put_buffer(t, "fed/rounds/1/global.fdne", big, BIG, &put));
	assert_int_equal(put.size, BIG);
	assert_true(put.etag[0] == '"');  /* asked with a HEAD: nginx sends none on PUT */
	OK(fdn_transport_get_buffer(t, "fed/rounds/1/global.fdne", &out, 0, NULL, &got));
	print_message("20 MB put + get over TLS: %.2f s\n", now() - t0);
	assert_int_equal(out.size, BIG);
	assert_memory_equal(out.ptr, big, BIG);
	assert_string_equal(got.etag, put.etag);
	assert_int_equal(got.size, BIG);
	assert_true(got.mtime > 1600000000);

	OK(fdn_transport_head(t, "fed/rounds/1/global.fdne", &got));
	assert_int_equal(got.size, BIG);
	assert_string_equal(got.etag, put.etag);

	/* Unchanged: 304, nothing transferred. */
	OK(fdn_transport_get_buffer(t, "fed/rounds/1/global.fdne", &out, 0, got.etag, &got));
	assert_int_equal(got.not_modified, 1);
	assert_int_equal(out.size, 0);
	assert_string_equal(got.etag, put.etag);
	OK(fdn_transport_get_file(t, "fed/rounds/1/global.fdne", path_in("dl.bin"), put.etag, &got));
	assert_int_equal(got.not_modified, 1);
	assert_int_equal(access(path_in("dl.bin"), F_OK), -1);

	/* A file, and a stream of unknown length (chunked upload). */
	f = fopen(path_in("up.bin"), "wb");
	assert_int_equal(fwrite(big, 1, BIG, f), BIG);
	fclose(f);
	OK(fdn_transport_put_file(t, "fed/file.bin", path_in("up.bin"), NULL));
	OK(fdn_transport_get_file(t, "fed/file.bin", path_in("dl.bin"), NULL, &got));
	assert_int_equal(got.not_modified, 0);
	f = fopen(path_in("dl.bin"), "rb");
	assert_int_equal(fread(sink.data, 1, BIG + 16, f), BIG);
	fclose(f);
	assert_memory_equal(sink.data, big, BIG);
	OK(fdn_transport_put_stream(t, "fed/stream.bin", chunks_read, &src, UINT64_MAX, &got));
	assert_int_equal(got.size, BIG);
	OK(fdn_transport_get_stream(t, "fed/stream.bin", collect_write, &sink, NULL, &got));
	assert_int_equal(sink.size, BIG);
	assert_memory_equal(sink.data, big, BIG);

	/* Delete, then it is gone. */
	OK(fdn_transport_delete(t, "fed/stream.bin"));
	fdn_test_expect_error(fdn_transport_head(t, "fed/stream.bin", NULL), FDN_ENOTFOUND, "HTTP 404");
	fdn_test_expect_error(fdn_transport_delete(t, "fed/stream.bin"), FDN_ENOTFOUND, NULL);
	fdn_test_expect_error(fdn_transport_get_buffer(t, "fed/nothing", &out, 0, NULL, NULL), FDN_ENOTFOUND,
		"no object 'fed/nothing'");
	fdn_test_expect_error(fdn_transport_get_buffer(t, "fed/rounds/1/global.fdne", &out, 1000, NULL, NULL),
		FDN_EBUFS, NULL);
	/* By name rather than address: host-name verification. */
	{
		fdn_https_options o = FDN_HTTPS_OPTIONS_INIT;
		fdn_transport *byname = NULL;
		char url[256];

		o.ca_file = path_in("ca.pem");
		o.client_cert = path_in("site-b.pem");
		o.client_key = path_in("site-b.key");
		snprintf(url, sizeof(url), "%s/store/", host_base);
		OK(fdn_transport_https_new(&byname, url, &o));
		OK(fdn_transport_head(byname, "fed/file.bin", &got));
		assert_int_equal(got.size, BIG);
		fdn_transport_free(byname);
	}
	fdn_buf_dispose(&out);
	free(sink.data);
	fdn_transport_free(t);
}

static void test_connection_reuse_and_tls13(void **state)
{
	fdn_transport *t = open_as("store", "site-a", "ca", NULL);
	unsigned long conn[3], req[3];
	char *log, *lines[4096];
	int n = 0;

	(void)state;
	OK(fdn_transport_put_buffer(t, "fed/rounds/1/update-site-a.fdne", "u", 1, NULL));
	for (int i = 0; i < 3; i++)
		OK(fdn_transport_head(t, "fed/rounds/1/update-site-a.fdne", NULL));
	log = wait_log(3, "200 HEAD /store/fed/rounds/1/update-site-a.fdne", NULL);
	for (char *line = strtok(log, "\n"); line && n < 4096; line = strtok(NULL, "\n"))
		lines[n++] = line;
	assert_true(n >= 4);
	/* The last three requests: one connection, one request after the
	 * other on it (the PUT came first), all TLS 1.3. */
	for (int i = 0; i < 3; i++) {
		const char *line = lines[n - 3 + i];
		assert_int_equal(sscanf(line, "%lu %lu", &conn[i], &req[i]), 2);
		assert_non_null(strstr(line, "200 HEAD /store/fed/rounds/1/update-site-a.fdne TLSv1.3"));
	}
	assert_true(conn[0] == conn[1] && conn[1] == conn[2]);
	assert_true(req[0] >= 2 && req[1] == req[0] + 1 && req[2] == req[1] + 1);
	free(log);
	fdn_transport_free(t);
}

/* --- who may do what ------------------------------------------------------------- */

static void test_client_certificates(void **state)
{
	fdn_transport *coord = open_as("store", "coordinator", "ca", NULL);
	fdn_transport *a = open_as("store", "site-a", "ca", NULL);
	fdn_transport *none = open_as("store", NULL, "ca", NULL);
	fdn_transport *stranger = open_as("store", "stranger", "ca", NULL);
	fdn_buf out = FDN_BUF_INIT;

	(void)state;
	OK(fdn_transport_put_buffer(coord, "fed2/rounds/7/global.fdne", "g", 1, NULL));
	/* No certificate, or one of another CA (claiming to be the
	 * coordinator): refused, as an authorisation matter. */
	fdn_test_expect_error(fdn_transport_get_buffer(none, "fed2/rounds/7/global.fdne", &out, 0, NULL, NULL),
		FDN_EAUTH, "no client certificate is configured");
	fdn_test_expect_error(fdn_transport_put_buffer(stranger, "fed2/rounds/7/global.fdne", "x", 1, NULL),
		FDN_EAUTH, "HTTP 403");

	/* A site reads everything but writes only its own updates. */
	OK(fdn_transport_get_buffer(a, "fed2/rounds/7/global.fdne", &out, 0, NULL, NULL));
	assert_int_equal(out.size, 1);
	OK(fdn_transport_put_buffer(a, "fed2/rounds/7/update-site-a.fdne", "mine", 4, NULL));
	OK(fdn_transport_delete(a, "fed2/rounds/7/update-site-a.fdne"));
	OK(fdn_transport_put_buffer(a, "fed2/rounds/8/update-site-a.fdne", "mine", 4, NULL));
	fdn_test_expect_error(fdn_transport_put_buffer(a, "fed2/rounds/7/update-site-b.fdne", "x", 1, NULL),
		FDN_EAUTH, "HTTP 403");
	fdn_test_expect_error(fdn_transport_put_buffer(a, "fed2/rounds/7/global.fdne", "x", 1, NULL),
		FDN_EAUTH, NULL);
	fdn_test_expect_error(fdn_transport_delete(a, "fed2/rounds/7/global.fdne"), FDN_EAUTH, NULL);
	fdn_test_expect_error(fdn_transport_put_buffer(a, "fed2/rounds/7/update-site-a.fdne.x", "x", 1, NULL),
		FDN_EAUTH, NULL);
	fdn_test_expect_error(fdn_transport_put_buffer(a, "fed2/manifest.fdne", "x", 1, NULL), FDN_EAUTH, NULL);
	/* The coordinator writes and deletes anywhere. */
	OK(fdn_transport_put_buffer(coord, "fed2/rounds/7/update-site-b.fdne", "b", 1, NULL));
	OK(fdn_transport_delete(coord, "fed2/rounds/8/update-site-a.fdne"));
	OK(fdn_transport_get_buffer(coord, "fed2/rounds/7/global.fdne", &out, 0, NULL, NULL));
	assert_memory_equal(out.ptr, "g", 1);

	fdn_buf_dispose(&out);
	fdn_transport_free(coord);
	fdn_transport_free(a);
	fdn_transport_free(none);
	fdn_transport_free(stranger);
}

static void test_untrusted_server(void **state)
{
	fdn_transport *other = open_as("store", "coordinator", "other-ca", NULL);
	fdn_transport *system = open_as("store", "coordinator", NULL, NULL);
	double t0 = now();

	(void)state;
	fdn_test_expect_error(fdn_transport_head(other, "fed/file.bin", NULL), FDN_ECERT, "not trusted");
	fdn_test_expect_error(fdn_transport_put_buffer(system, "fed/x", "x", 1, NULL), FDN_ECERT, base);
	assert_true(now() - t0 < 2.0);  /* not retried */
	fdn_transport_free(other);
	fdn_transport_free(system);
}

static void test_handshake_refused(void **state)
{
	fdn_https_options o = FDN_HTTPS_OPTIONS_INIT;
	fdn_transport *t = NULL;

	(void)state;
	if (!refuser_base || !*refuser_base)
		skip();
	o.ca_file = path_in("ca.pem");
	o.backoff_ms = 10;
	OK(fdn_transport_https_new(&t, refuser_base, &o));
	fdn_test_expect_error(fdn_transport_head(t, "k", NULL), FDN_EAUTH, "refused the TLS handshake");
	assert_non_null(strstr(fdn_error_last()->message, "no client certificate"));
	fdn_transport_free(t);
}

/* --- broken transfers ------------------------------------------------------------- */

static void test_resume_after_stall(void **state)
{
	fdn_https_options tune = FDN_HTTPS_OPTIONS_INIT;
	fdn_transport *coord = open_as("store", "coordinator", "ca", NULL), *slow;
	collect sink = { malloc(BIG + 16), 0, NULL, 0 };
	fdn_object_info info = FDN_OBJECT_INFO_INIT;
	size_t n = 1024 * 1024 + 300 * 1024;
	fdn_buf out = FDN_BUF_INIT;
	char *log;
	double t0;

	(void)state;
	OK(fdn_transport_put_buffer(coord, "resume/obj", big, n, NULL));
	tune.stall_timeout_ms = 1000;
	tune.retries = 2;
	slow = open_as("slow", "coordinator", "ca", &tune);
	/* Each response runs fast for 1 MiB, then stalls at 200 B/s: the
	 * transport gives up on it (libcurl averages the speed over a few
	 * seconds, so after 5 to 7 s) and asks for the rest. */
	t0 = now();
	OK(fdn_transport_get_stream(slow, "resume/obj", collect_write, &sink, NULL, &info));
	print_message("1.3 MiB over a link stalling after 1 MiB: %.2f s\n", now() - t0);
	assert_int_equal(sink.size, n);
	assert_memory_equal(sink.data, big, n);
	assert_int_equal(info.size, n);
	log = wait_log(1, " 206 GET /slow/resume/obj", "bytes=");
	assert_true(count_lines(log, " 206 GET /slow/resume/obj", "bytes=") >= 1);
	free(log);
	/* A buffer get resumes the same way. */
	OK(fdn_transport_get_buffer(slow, "resume/obj", &out, 0, NULL, NULL));
	assert_int_equal(out.size, n);
	assert_memory_equal(out.ptr, big, n);
	fdn_buf_dispose(&out);
	fdn_transport_free(slow);

	/* A server that ignores ranges sends the whole object again: a stream
	 * cannot take back what it got, so the get fails. */
	slow = open_as("norange", "coordinator", "ca", &tune);
	sink.size = 0;
	fdn_test_expect_error(fdn_transport_get_stream(slow, "resume/obj", collect_write, &sink, NULL, NULL),
		FDN_EIO, "cannot be taken back");
	fdn_transport_free(slow);
	free(sink.data);
	fdn_transport_free(coord);
}

typedef struct replacer {
	double delay;
	const char *key;
	const void *data;
	size_t len;
	int rc;
} replacer;

static void *replace_later(void *arg)
{
	replacer *r = arg;
	struct timespec ts = { (time_t)r->delay,
		(long)((r->delay - (double)(time_t)r->delay) * 1e9) };
	fdn_transport *coord = open_as("store", "coordinator", "ca", NULL);

	nanosleep(&ts, NULL);
	r->rc = fdn_transport_put_buffer(coord, r->key, r->data, r->len, NULL);
	fdn_transport_free(coord);
	return NULL;
}

static void test_resume_object_changed(void **state)
{
	fdn_https_options tune = FDN_HTTPS_OPTIONS_INIT;
	fdn_transport *coord = open_as("store", "coordinator", "ca", NULL), *slow;
	replacer r = { 1.0, "changed/obj", "the new, small object", 21, -1 };
	fdn_buf out = FDN_BUF_INIT;
	pthread_t th;
	char *log;

	(void)state;
	OK(fdn_transport_put_buffer(coord, "changed/obj", big, 1024 * 1024 + 100000, NULL));
	tune.stall_timeout_ms = 1000;
	tune.retries = 2;
	slow = open_as("slow", "coordinator", "ca", &tune);
	/* The object is replaced while the first response stalls: the resumed
	 * request's If-Range no longer matches, nginx sends the new object
	 * whole (200), and a buffer get starts again from zero with it. */
	pthread_create(&th, NULL, replace_later, &r);
	OK(fdn_transport_get_buffer(slow, "changed/obj", &out, 0, NULL, NULL));
	pthread_join(th, NULL);
	OK(r.rc);
	assert_int_equal(out.size, 21);
	assert_memory_equal(out.ptr, "the new, small object", 21);
	log = wait_log(1, " 200 GET /slow/changed/obj", "bytes=");
	assert_int_equal(count_lines(log, " 200 GET /slow/changed/obj", "bytes="), 1);
	free(log);
	fdn_buf_dispose(&out);
	fdn_transport_free(slow);
	fdn_transport_free(coord);
}

static void test_retries(void **state)
{
	fdn_https_options tune = FDN_HTTPS_OPTIONS_INIT;
	fdn_transport *busy, *dead;
	char url[128], *log;
	double t0;
	int fd;

	(void)state;
	/* 503 with Retry-After: 1 → two waits of a second, then FDN_EIO. */
	tune.retries = 2;
	busy = open_as("busy", "coordinator", "ca", &tune);
	t0 = now();
	fdn_test_expect_error(fdn_transport_head(busy, "x", NULL), FDN_EIO, "HTTP 503 (after 3 attempts)");
	assert_true(now() - t0 >= 1.9);
	assert_true(now() - t0 < 10);
	log = wait_log(3, "503 HEAD /busy/x", NULL);
	assert_int_equal(count_lines(log, "503 HEAD /busy/x", NULL), 3);
	free(log);

	fdn_transport_free(busy);

	/* After the server read a put's body (and failed with 502): a buffer
	 * put is sent again (rewound), a stream put is not, since its bytes
	 * cannot be read again. */
	busy = open_as("readall", "coordinator", "ca", &tune);
	fdn_test_expect_error(fdn_transport_put_buffer(busy, "b", big, 200000, NULL), FDN_EIO,
		"HTTP 502 (after 3 attempts)");
	log = wait_log(3, "502 PUT /readall/b", NULL);
	assert_int_equal(count_lines(log, "502 PUT /readall/b", NULL), 3);
	free(log);
	{
		chunks src = { big, 200000, 0 };
		fdn_test_expect_error(fdn_transport_put_stream(busy, "s", chunks_read, &src, 200000, NULL),
			FDN_EIO, "not retried: 200000 bytes of the stream were already sent");
		log = wait_log(1, "502 PUT /readall/s", NULL);
		assert_int_equal(count_lines(log, "502 PUT /readall/s", NULL), 1);
		free(log);
	}
	fdn_transport_free(busy);

	/* Nothing listening: connection refused, retried, quickly. */
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/store", fdn_test_dead_port(&fd));
	tune.retries = 3;
	tune.backoff_ms = 10;
	OK(fdn_transport_https_new(&dead, url, &tune));
	t0 = now();
	fdn_test_expect_error(fdn_transport_get_buffer(dead, "k", &(fdn_buf)FDN_BUF_INIT, 0, NULL, NULL),
		FDN_EIO, "after 4 attempts");
	assert_true(now() - t0 < 3);
	assert_non_null(strstr(fdn_error_last()->message, url));
	fdn_transport_free(dead);
	close(fd);
}

typedef struct later {
	fdn_cancel *token;
	double delay;
} later;

static void *cancel_later(void *arg)
{
	later *l = arg;
	struct timespec ts = { (time_t)l->delay, (long)((l->delay - (double)(time_t)l->delay) * 1e9) };

	nanosleep(&ts, NULL);
	fdn_cancel_request(l->token);
	return NULL;
}

static void test_cancel(void **state)
{
	fdn_https_options tune = FDN_HTTPS_OPTIONS_INIT;
	fdn_transport *slow;
	fdn_cancel *token;
	collect sink = { malloc(BIG + 16), 0, NULL, 0 };
	later l;
	pthread_t th;
	double t0;

	(void)state;
	OK(fdn_cancel_new(&token));
	tune.stall_timeout_ms = 30000;
	slow = open_as("slow", "coordinator", "ca", &tune);
	OK(fdn_transport_set_cancel(slow, token));
	/* Cancelled from another thread while the link crawls. */
	l.token = token;
	l.delay = 1.0;
	pthread_create(&th, NULL, cancel_later, &l);
	t0 = now();
	fdn_test_expect_error(fdn_transport_get_stream(slow, "resume/obj", collect_write, &sink, NULL, NULL),
		FDN_ECANCELLED, NULL);
	pthread_join(th, NULL);
	assert_true(now() - t0 < 5.0);  /* libcurl asks at least once a second */
	/* ... and from the write callback. */
	fdn_cancel_reset(token);
	sink.size = 0;
	sink.cancel_at = token;
	sink.cancel_after = 100000;
	fdn_test_expect_error(fdn_transport_get_stream(slow, "resume/obj", collect_write, &sink, NULL, NULL),
		FDN_ECANCELLED, NULL);
	fdn_transport_free(slow);
	fdn_cancel_free(token);
	free(sink.data);
}

/* --- proxies from the environment ------------------------------------------------ */

static void test_proxy_environment(void **state)
{
	fdn_https_options tune = FDN_HTTPS_OPTIONS_INIT;
	char proxy[64];
	fdn_transport *t;
	int fd;

	(void)state;
	snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", fdn_test_dead_port(&fd));
	tune.retries = 1;
	tune.backoff_ms = 5;

	/* proxy NULL: libcurl takes https_proxy (here a dead one) ... */
	setenv("https_proxy", proxy, 1);
	t = open_as("store", "coordinator", "ca", &tune);
	fdn_test_expect_error(fdn_transport_head(t, "fed/file.bin", NULL), FDN_EIO, NULL);
	fdn_transport_free(t);
	unsetenv("https_proxy");
	/* ... or HTTPS_PROXY, or all_proxy ... */
	setenv("HTTPS_PROXY", proxy, 1);
	t = open_as("store", "coordinator", "ca", &tune);
	fdn_test_expect_error(fdn_transport_head(t, "fed/file.bin", NULL), FDN_EIO, NULL);
	fdn_transport_free(t);
	unsetenv("HTTPS_PROXY");
	setenv("all_proxy", proxy, 1);
	t = open_as("store", "coordinator", "ca", &tune);
	fdn_test_expect_error(fdn_transport_head(t, "fed/file.bin", NULL), FDN_EIO, NULL);
	/* ... and honours no_proxy. */
	setenv("no_proxy", "127.0.0.1", 1);
	OK(fdn_transport_head(t, "fed/file.bin", NULL));
	fdn_transport_free(t);
	unsetenv("no_proxy");
	/* proxy "": never a proxy, whatever the environment says. */
	tune.proxy = "";
	t = open_as("store", "coordinator", "ca", &tune);
	OK(fdn_transport_head(t, "fed/file.bin", NULL));
	fdn_transport_free(t);
	/* An explicit proxy wins over the environment too. */
	unsetenv("all_proxy");
	tune.proxy = proxy;
	t = open_as("store", "coordinator", "ca", &tune);
	fdn_test_expect_error(fdn_transport_head(t, "fed/file.bin", NULL), FDN_EIO, NULL);
	fdn_transport_free(t);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_20mb),
		cmocka_unit_test(test_connection_reuse_and_tls13),
		cmocka_unit_test(test_client_certificates),
		cmocka_unit_test(test_untrusted_server),
		cmocka_unit_test(test_handshake_refused),
		cmocka_unit_test(test_resume_after_stall),
		cmocka_unit_test(test_resume_object_changed),
		cmocka_unit_test(test_retries),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_proxy_environment),
	};

	base = getenv("FDN_NET_BASE");
	host_base = getenv("FDN_NET_HOST_BASE");
	dir = getenv("FDN_NET_DIR");
	access_log = getenv("FDN_NET_ACCESS_LOG");
	refuser_base = getenv("FDN_NET_REFUSER_BASE");
	if (!base || !dir || !access_log || !host_base) {
		printf("FDN_NET_* not set: run through tests/net/run-net.sh; skipped\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
