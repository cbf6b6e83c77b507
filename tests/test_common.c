/*
 * Public core API: errors, version, initialisation, allocator hook,
 * logging, cancellation.  Linked against the shared library.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fednode/fednode.h"
#include "fednode/sys/alloc.h"

static void test_error_codes_are_frozen(void **state)
{
	(void)state;
	/* These values are ABI: a change here is a break, not a fix. */
	assert_int_equal(FDN_OK, 0);
	assert_int_equal(FDN_ERROR, -1);
	assert_int_equal(FDN_ENOTFOUND, -3);
	assert_int_equal(FDN_EINVALID, -4);
	assert_int_equal(FDN_EAUTH, -5);
	assert_int_equal(FDN_ECERT, -6);
	assert_int_equal(FDN_EIO, -7);
	assert_int_equal(FDN_ECANCELLED, -8);
	assert_int_equal(FDN_EUSER, -9);
	assert_int_equal(FDN_EBUFS, -10);
	assert_int_equal(FDN_EFORMAT, -11);
	assert_int_equal(FDN_EPHI, -12);
	assert_int_equal(FDN_ECONFLICT, -13);
	assert_int_equal(FDN_EUNSUPPORTED, -14);
}

static void test_strerror(void **state)
{
	static const int codes[] = { FDN_OK, FDN_ERROR, FDN_ENOTFOUND,
		FDN_EINVALID, FDN_EAUTH, FDN_ECERT, FDN_EIO, FDN_ECANCELLED,
		FDN_EUSER, FDN_EBUFS, FDN_EFORMAT, FDN_EPHI, FDN_ECONFLICT,
		FDN_EUNSUPPORTED };
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *s = fdn_strerror((fdn_error_code)codes[i]);
		assert_non_null(s);
		assert_string_not_equal(s, "unknown error");
		for (j = 0; j < i; j++)
			assert_string_not_equal(s, fdn_strerror((fdn_error_code)codes[j]));
	}
	assert_string_equal(fdn_strerror((fdn_error_code)-2), "unknown error");
	assert_string_equal(fdn_strerror((fdn_error_code)12345), "unknown error");
	assert_string_equal(fdn_strerror(FDN_ENOTFOUND), "not found");
}

static void test_version(void **state)
{
	int major = -1, minor = -1, patch = -1;
	char expect[32];

	(void)state;
	fdn_version(&major, &minor, &patch);
	assert_int_equal(major, FDN_VERSION_MAJOR);
	assert_int_equal(minor, FDN_VERSION_MINOR);
	assert_int_equal(patch, FDN_VERSION_PATCH);
	snprintf(expect, sizeof(expect), "%d.%d.%d", major, minor, patch);
	assert_string_equal(fdn_version_string(), expect);
	assert_string_equal(fdn_version_string(), FDN_VERSION_STRING);
	fdn_version(NULL, NULL, NULL);
	assert_true(FDN_VERSION_CHECK(1, 0, 0));
	assert_false(FDN_VERSION_CHECK(FDN_VERSION_MAJOR + 1, 0, 0));
	assert_int_equal(FDN_VERSION_NUMBER,
		(FDN_VERSION_MAJOR << 16) | (FDN_VERSION_MINOR << 8) | FDN_VERSION_PATCH);
}

static void test_error_last_never_null(void **state)
{
	const fdn_error *e;

	(void)state;
	fdn_error_clear();
	e = fdn_error_last();
	assert_non_null(e);
	assert_int_equal(e->code, 0);
	assert_non_null(e->message);
	assert_string_equal(e->message, "no error");

	assert_int_equal(fdn_cancel_new(NULL), FDN_EINVALID);
	e = fdn_error_last();
	assert_int_equal(e->code, FDN_EINVALID);
	assert_int_equal(e->klass, FDN_ERRCLASS_INVALID);
	assert_non_null(strstr(e->message, "fdn_cancel_new"));
	assert_non_null(strstr(e->message, "out"));

	fdn_error_clear();
	assert_int_equal(fdn_error_last()->code, 0);
}

static void *other_thread_error(void *arg)
{
	const fdn_error *e = fdn_error_last();
	int *seen = arg;

	*seen = e->code;
	fdn_init_options_init(NULL, 1); /* sets this thread's error only */
	return NULL;
}

static void test_error_is_thread_local(void **state)
{
	pthread_t t;
	int seen = 1;

	(void)state;
	assert_int_equal(fdn_cancel_new(NULL), FDN_EINVALID);
	assert_int_equal(pthread_create(&t, NULL, other_thread_error, &seen), 0);
	pthread_join(t, NULL);
	assert_int_equal(seen, 0);
	/* Ours is unchanged by what the other thread raised. */
	assert_non_null(strstr(fdn_error_last()->message, "fdn_cancel_new"));
}

static void test_init_options(void **state)
{
	fdn_init_options o;

	(void)state;
	assert_int_equal(fdn_init_options_init(NULL, FDN_INIT_OPTIONS_VERSION), FDN_EINVALID);
	assert_int_equal(fdn_init_options_init(&o, 0), FDN_EINVALID);
	assert_int_equal(fdn_init_options_init(&o, FDN_INIT_OPTIONS_VERSION + 1), FDN_EINVALID);
	assert_int_equal(fdn_init_options_init(&o, FDN_INIT_OPTIONS_VERSION), 0);
	assert_int_equal(o.version, FDN_INIT_OPTIONS_VERSION);
	assert_null(o.allocator);
	assert_null(o.log_cb);

	o.version = FDN_INIT_OPTIONS_VERSION + 1;
	assert_int_equal(fdn_init_opts(&o), FDN_EINVALID);
	assert_non_null(strstr(fdn_error_last()->message, "version"));
	o.version = 0;
	assert_int_equal(fdn_init_opts(&o), FDN_EINVALID);
	o.version = FDN_INIT_OPTIONS_VERSION;
	o.log_level = 17;
	assert_int_equal(fdn_init_opts(&o), FDN_EINVALID);
}

static void test_init_is_reference_counted(void **state)
{
	(void)state;
	assert_int_equal(fdn_shutdown(), FDN_EINVALID);
	assert_int_equal(fdn_init(), 0);
	assert_int_equal(fdn_init(), 0);
	assert_int_equal(fdn_shutdown(), 1);
	assert_int_equal(fdn_shutdown(), 0);
	assert_int_equal(fdn_shutdown(), FDN_EINVALID);
}

static void test_init_checked(void **state)
{
	(void)state;
	assert_int_equal(fdn_init_checked(FDN_VERSION_MAJOR + 1, 0), FDN_EUNSUPPORTED);
	assert_non_null(strstr(fdn_error_last()->message, "runtime library"));
	assert_int_equal(fdn_init_checked(FDN_VERSION_MAJOR, FDN_VERSION_MINOR + 1),
		FDN_EUNSUPPORTED);
	assert_int_equal(FDN_INIT(), 0);
	assert_int_equal(fdn_shutdown(), 0);
}

/* --- allocator hook -------------------------------------------------- */

struct counting {
	long mallocs, frees;
};

static void *count_malloc(size_t n, void *ud)
{
	((struct counting *)ud)->mallocs++;
	return malloc(n);
}

static void *count_realloc(void *p, size_t n, void *ud)
{
	if (!p)
		((struct counting *)ud)->mallocs++;
	return realloc(p, n);
}

static void count_free(void *p, void *ud)
{
	if (p)
		((struct counting *)ud)->frees++;
	free(p);
}

static void test_allocator_hook(void **state)
{
	struct counting c = { 0, 0 }, other = { 0, 0 };
	fdn_allocator a = { FDN_ALLOCATOR_VERSION, count_malloc, count_realloc, count_free, &c };
	fdn_allocator b = a;
	fdn_init_options o = FDN_INIT_OPTIONS_INIT;
	fdn_cancel *tok = NULL;

	(void)state;
	/* An incomplete allocator is refused, and nothing is initialised. */
	b.free_fn = NULL;
	o.allocator = &b;
	assert_int_equal(fdn_init_opts(&o), FDN_EINVALID);
	assert_int_equal(fdn_shutdown(), FDN_EINVALID);
	b = a;
	b.version = FDN_ALLOCATOR_VERSION + 1;
	assert_int_equal(fdn_init_opts(&o), FDN_EINVALID);

	o.allocator = &a;
	assert_int_equal(fdn_init_opts(&o), 0);
	assert_int_equal(fdn_cancel_new(&tok), 0);
	assert_int_equal(c.mallocs, 1);
	fdn_cancel_free(tok);
	assert_int_equal(c.frees, 1);

	/* Another allocator cannot replace the one in use... */
	b = a;
	b.ud = &other;
	o.allocator = &b;
	assert_int_equal(fdn_init_opts(&o), FDN_EINVALID);
	assert_non_null(strstr(fdn_error_last()->message, "allocator"));
	/* ...but the same one, or none, joins the existing initialisation. */
	o.allocator = &a;
	assert_int_equal(fdn_init_opts(&o), 0);
	assert_int_equal(fdn_init(), 0);
	assert_int_equal(fdn_shutdown(), 2);
	assert_int_equal(fdn_shutdown(), 1);
	assert_int_equal(fdn_shutdown(), 0);

	/* After the last shutdown the C library's allocator is back. */
	assert_int_equal(fdn_init(), 0);
	assert_int_equal(fdn_cancel_new(&tok), 0);
	fdn_cancel_free(tok);
	assert_int_equal(c.mallocs, 1);
	assert_int_equal(other.mallocs, 0);
	assert_int_equal(fdn_shutdown(), 0);
}

/* --- logging --------------------------------------------------------- */

struct log_capture {
	int records;
	int last_level;
	char module[32];
	char message[256];
};

static void capture_log(fdn_log_level level, const char *module,
	const char *message, void *payload)
{
	struct log_capture *cap = payload;

	cap->records++;
	cap->last_level = (int)level;
	snprintf(cap->module, sizeof(cap->module), "%s", module);
	snprintf(cap->message, sizeof(cap->message), "%s", message);
}

static void test_log_callback(void **state)
{
	struct log_capture cap;
	fdn_init_options o = FDN_INIT_OPTIONS_INIT;

	(void)state;
	memset(&cap, 0, sizeof(cap));
	o.log_cb = capture_log;
	o.log_payload = &cap;
	o.log_level = FDN_LOG_INFO;
	assert_int_equal(fdn_init_opts(&o), 0);
	/* Initialisation announces itself at INFO, naming the versions. */
	assert_int_equal(cap.records, 1);
	assert_int_equal(cap.last_level, FDN_LOG_INFO);
	assert_string_equal(cap.module, "core");
	assert_non_null(strstr(cap.message, fdn_version_string()));
	assert_int_equal(fdn_shutdown(), 0);

	/* At the default level (WARN) the INFO record is filtered out. */
	memset(&cap, 0, sizeof(cap));
	o.log_level = 0;
	assert_int_equal(fdn_init_opts(&o), 0);
	assert_int_equal(cap.records, 0);
	assert_int_equal(fdn_shutdown(), 0);

	assert_int_equal(fdn_log_set_callback(capture_log, 99, &cap), FDN_EINVALID);
	assert_int_equal(fdn_log_set_callback(capture_log, -1, &cap), FDN_EINVALID);
	assert_int_equal(fdn_log_set_callback(NULL, FDN_LOG_DEBUG, NULL), 0);
}

/* --- cancellation ---------------------------------------------------- */

static fdn_cancel *signal_token;

static void on_signal(int sig)
{
	(void)sig;
	fdn_cancel_request(signal_token);
}

static void *cancel_from_thread(void *arg)
{
	fdn_cancel_request(arg);
	return NULL;
}

static void test_cancel_token(void **state)
{
	fdn_cancel *tok = NULL;
	pthread_t t;

	(void)state;
	assert_int_equal(fdn_init(), 0);
	assert_int_equal(fdn_cancel_new(&tok), 0);
	assert_non_null(tok);
	assert_int_equal(fdn_cancel_requested(tok), 0);
	fdn_cancel_request(tok);
	assert_int_equal(fdn_cancel_requested(tok), 1);
	fdn_cancel_reset(tok);
	assert_int_equal(fdn_cancel_requested(tok), 0);

	assert_int_equal(pthread_create(&t, NULL, cancel_from_thread, tok), 0);
	pthread_join(t, NULL);
	assert_int_equal(fdn_cancel_requested(tok), 1);
	fdn_cancel_reset(tok);

	signal_token = tok;
	signal(SIGUSR1, on_signal);
	raise(SIGUSR1);
	signal(SIGUSR1, SIG_DFL);
	assert_int_equal(fdn_cancel_requested(tok), 1);

	/* NULL is harmless everywhere. */
	assert_int_equal(fdn_cancel_requested(NULL), 0);
	fdn_cancel_request(NULL);
	fdn_cancel_reset(NULL);
	fdn_cancel_free(NULL);
	fdn_cancel_free(tok);
	assert_int_equal(fdn_shutdown(), 0);
}

static void test_buf_dispose(void **state)
{
	fdn_buf b = FDN_BUF_INIT;

	(void)state;
	fdn_buf_dispose(NULL);
	fdn_buf_dispose(&b);
	assert_null(b.ptr);
	assert_int_equal(b.size, 0);
	assert_int_equal(b.reserved, 0);
}

static void test_buf_set(void **state)
{
	fdn_buf b = FDN_BUF_INIT;

	(void)state;
	assert_int_equal(fdn_buf_set(NULL, "x", 1), FDN_EINVALID);
	assert_int_equal(fdn_buf_set(&b, NULL, 3), FDN_EINVALID);
	assert_int_equal(fdn_buf_set(&b, "hello", 5), 0);
	assert_int_equal(b.size, 5);
	assert_string_equal(b.ptr, "hello");
	/* From its own content: the copy is taken before the old is freed. */
	assert_int_equal(fdn_buf_set(&b, b.ptr + 1, 3), 0);
	assert_string_equal(b.ptr, "ell");
	assert_int_equal(fdn_buf_set(&b, NULL, 0), 0);
	assert_int_equal(b.size, 0);
	assert_string_equal(b.ptr, "");
	fdn_buf_dispose(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_codes_are_frozen),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_error_last_never_null),
		cmocka_unit_test(test_error_is_thread_local),
		cmocka_unit_test(test_init_options),
		cmocka_unit_test(test_init_is_reference_counted),
		cmocka_unit_test(test_init_checked),
		cmocka_unit_test(test_allocator_hook),
		cmocka_unit_test(test_log_callback),
		cmocka_unit_test(test_cancel_token),
		cmocka_unit_test(test_buf_dispose),
		cmocka_unit_test(test_buf_set),
	};

	return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
