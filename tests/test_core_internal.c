/*
 * White-box tests of the core helpers every module builds on (linked
 * against the internal static library).
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/core_private.h"

static void test_buf_put_and_printf(void **state)
{
	fdn_buf b = FDN_BUF_INIT;
	int i;

	(void)state;
	assert_int_equal(fdn_buf__puts(&b, "abc"), 0);
	assert_int_equal(b.size, 3);
	assert_string_equal(b.ptr, "abc");
	for (i = 0; i < 1000; i++)
		assert_int_equal(fdn_buf__printf(&b, "%d,", i), 0);
	assert_true(b.reserved > b.size);
	assert_int_equal(b.ptr[b.size], '\0');
	assert_memory_equal(b.ptr + b.size - 4, "999,", 4);
	assert_int_equal(fdn_buf__put(&b, "\0x", 2), 0); /* binary-safe */
	assert_int_equal(b.ptr[b.size - 2], '\0');
	fdn_buf__clear(&b);
	assert_int_equal(b.size, 0);
	assert_string_equal(b.ptr, "");
	fdn_buf_dispose(&b);
	assert_null(b.ptr);
}

static void test_buf_grow_overflow(void **state)
{
	fdn_buf b = FDN_BUF_INIT;

	(void)state;
	assert_int_equal(fdn_buf__puts(&b, "x"), 0);
	assert_int_equal(fdn_buf__grow(&b, SIZE_MAX), FDN_ERROR);
	assert_int_equal(fdn_error_last()->klass, FDN_ERRCLASS_NOMEMORY);
	assert_string_equal(b.ptr, "x"); /* unchanged on failure */
	fdn_buf_dispose(&b);
}

static void test_buf_borrowed_memory_is_copied(void **state)
{
	char outside[] = "borrowed";
	fdn_buf b = { outside, 8, 0 };

	(void)state;
	assert_int_equal(fdn_buf__puts(&b, "!"), 0);
	assert_ptr_not_equal(b.ptr, outside);
	assert_string_equal(b.ptr, "borrowed!");
	assert_string_equal(outside, "borrowed");
	fdn_buf_dispose(&b);
}

static void test_alloc_overflow(void **state)
{
	size_t out;

	(void)state;
	assert_null(fdn__calloc(SIZE_MAX / 2, 3));
	assert_null(fdn__reallocarray(NULL, SIZE_MAX / 4, 8));
	assert_true(fdn__mul_overflow(SIZE_MAX, 2, &out));
	assert_false(fdn__mul_overflow(4, 8, &out));
	assert_int_equal(out, 32);
	assert_true(fdn__add_overflow(SIZE_MAX, 1, &out));
	char *s = fdn__strndup("abcdef", 3);
	assert_string_equal(s, "abc");
	fdn__free(s);
}

static void test_long_message_is_cut_visibly(void **state)
{
	char big[FDN__ERROR_MESSAGE_MAX * 2];
	const fdn_error *e;

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM, "%s", big), FDN_EFORMAT);
	e = fdn_error_last();
	assert_int_equal(strlen(e->message), FDN__ERROR_MESSAGE_MAX - 1);
	assert_string_equal(e->message + strlen(e->message) - 3, "...");
}

static void test_os_errors(void **state)
{
	(void)state;
	assert_int_equal(fdn__error_os(ENOENT, "open '%s'", "/nope"), FDN_ENOTFOUND);
	assert_non_null(strstr(fdn_error_last()->message, "open '/nope': "));
	assert_int_equal(fdn_error_last()->klass, FDN_ERRCLASS_OS);
	assert_int_equal(fdn__error_os(EACCES, "write"), FDN_EIO);
	assert_int_equal(fdn__error_os(ENOMEM, "x"), FDN_ERROR);
	assert_int_equal(fdn_error_last()->klass, FDN_ERRCLASS_NOMEMORY);
}

static void test_callback_error(void **state)
{
	(void)state;
	assert_int_equal(fdn__error_callback(FDN_EUSER, "progress"), FDN_EUSER);
	assert_int_equal(fdn_error_last()->klass, FDN_ERRCLASS_CALLBACK);
	assert_non_null(strstr(fdn_error_last()->message, "progress callback returned -9"));
	assert_int_equal(fdn__error_callback(42, "instance"), 42);
}

static void test_cancel_check(void **state)
{
	fdn_cancel *t;

	(void)state;
	assert_int_equal(fdn_cancel_new(&t), 0);
	assert_int_equal(fdn__cancel_check(t), 0);
	assert_int_equal(fdn__cancel_check(NULL), 0);
	fdn_cancel_request(t);
	assert_int_equal(fdn__cancel_check(t), FDN_ECANCELLED);
	assert_int_equal(fdn_error_last()->code, FDN_ECANCELLED);
	fdn_cancel_free(t);
}

static void test_check_init(void **state)
{
	(void)state;
	assert_int_equal(fdn__check_init(), FDN_EINVALID);
	assert_non_null(strstr(fdn_error_last()->message, "fdn_init"));
	assert_int_equal(fdn_init(), 0);
	assert_int_equal(fdn__check_init(), 0);
	assert_int_equal(fdn_shutdown(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_put_and_printf),
		cmocka_unit_test(test_buf_grow_overflow),
		cmocka_unit_test(test_buf_borrowed_memory_is_copied),
		cmocka_unit_test(test_alloc_overflow),
		cmocka_unit_test(test_long_message_is_cut_visibly),
		cmocka_unit_test(test_os_errors),
		cmocka_unit_test(test_callback_error),
		cmocka_unit_test(test_cancel_check),
		cmocka_unit_test(test_check_init),
	};

	return cmocka_run_group_tests_name("core_internal", tests, NULL, NULL);
}
