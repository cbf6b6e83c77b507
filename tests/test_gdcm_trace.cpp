/*
 * GDCM's diagnostics reach the libfednode log, never the host's stderr.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <setjmp.h>
#include <sstream>
#include <string>
#include <unistd.h>

/* GDCM first: cmocka defines a fail() macro that breaks its templates. */
#include <gdcmReader.h>

extern "C" {
#include <cmocka.h>
}

#include "fednode/fednode.h"

struct capture {
	int gdcm_records = 0;
	int gdcm_warnings = 0;
	int gdcm_errors = 0;
	std::string last;
};

static void on_log(fdn_log_level level, const char *module, const char *message,
	void *payload)
{
	capture *cap = static_cast<capture *>(payload);
	if (std::strcmp(module, "gdcm") == 0) {
		cap->gdcm_records++;
		cap->gdcm_warnings += level == FDN_LOG_WARN;
		cap->gdcm_errors += level == FDN_LOG_ERROR;
		cap->last = message;
	}
}

/* Reads garbage with GDCM (it warns about it) while fd 2 goes to a file;
 * returns how many bytes reached that file. */
static long read_garbage_capturing_stderr(void)
{
	char path[] = "/tmp/fdn-stderr-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	long size;

	assert_true(fd >= 0 && saved >= 0);
	unlink(path);
	fflush(stderr);
	dup2(fd, 2);
	{
		/* Preamble and magic, then nothing GDCM can make sense of:
		 * it warns, then reports an error, and gives up. */
		std::istringstream junk(std::string(128, '\0') + "DICM" + std::string(64, 'x'));
		gdcm::Reader reader;
		reader.SetStream(junk);
		assert_false(reader.Read());
	}
	std::cerr.flush();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	size = lseek(fd, 0, SEEK_END);
	close(fd);
	return size;
}

static void test_gdcm_warnings_go_to_log(void **)
{
	capture cap;
	fdn_init_options o = FDN_INIT_OPTIONS_INIT;

	o.log_cb = on_log;
	o.log_payload = &cap;
	o.log_level = FDN_LOG_DEBUG;
	assert_int_equal(fdn_init_opts(&o), 0);
	assert_int_equal(read_garbage_capturing_stderr(), 0);
	assert_true(cap.gdcm_warnings >= 1);
	assert_true(cap.gdcm_errors >= 1);
	/* One line: the source location folded in, no raw newlines. */
	assert_null(std::strchr(cap.last.c_str(), '\n'));
	assert_non_null(std::strstr(cap.last.c_str(), "(gdcmReader.cxx:"));
	assert_int_equal(fdn_shutdown(), 0);
}

static void test_gdcm_silent_without_callback(void **)
{
	/* Initialised without a log callback: still nothing on stderr. */
	assert_int_equal(fdn_init(), 0);
	assert_int_equal(read_garbage_capturing_stderr(), 0);
	assert_int_equal(fdn_shutdown(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gdcm_warnings_go_to_log),
		cmocka_unit_test(test_gdcm_silent_without_callback),
	};

	return cmocka_run_group_tests_name("gdcm_trace", tests, NULL, NULL);
}
