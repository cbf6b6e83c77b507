/*
 * Envelopes against hostile input, exhaustively: every single-byte
 * change (three per byte) and every truncation of small multi-record
 * envelopes, compressed and not, through memory and through a stream,
 * plus random mutations.  Each must be refused with FDN_EAUTH or
 * FDN_EFORMAT and release nothing.  Suite 'robust' (plain and sanitizer
 * builds; too slow for valgrind).
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
#include <cmocka.h>

#include "fednode/fednode.h"
#include "exchange/envelope_private.h"
#include "testutil.h"

static char tmpdir[256];
static fdn_identity *coord, *site;
static fdn_trust *trust;

static int setup(void **state)
{
	fdn_buf text = FDN_BUF_INIT;
	char path[300];

	(void)state;
	if (fdn_init() != 0 || fdn_test_mkdtemp(tmpdir, sizeof(tmpdir), "envelope-robust") != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/trust.json", tmpdir);
	if (fdn_identity_generate(&coord, "coord") || fdn_identity_generate(&site, "site-a") ||
	    fdn_trust_open(&trust, path) || fdn_identity_public(&text, coord, NULL) ||
	    fdn_trust_add(trust, text.ptr, FDN_TRUST_ROLE_COORDINATOR, NULL) ||
	    fdn_identity_public(&text, site, NULL) ||
	    fdn_trust_add(trust, text.ptr, FDN_TRUST_ROLE_SITE, NULL))
		return -1;
	fdn_buf_dispose(&text);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fdn_identity_free(coord);
	fdn_identity_free(site);
	fdn_trust_free(trust);
	fdn_test_rmtree(tmpdir);
	return fdn_shutdown() < 0;
}

typedef struct mem_in {
	const unsigned char *p;
	size_t len, off;
} mem_in;

static int mem_read(void *buf, size_t cap, size_t *got, void *payload)
{
	mem_in *in = payload;
	size_t n = in->len - in->off < cap ? in->len - in->off : cap;

	memcpy(buf, in->p + in->off, n);
	in->off += n;
	*got = n;
	return 0;
}

static int never_write(const void *data, size_t len, void *payload)
{
	(void)data;
	(void)len;
	(void)payload;
	fail_msg("the payload of a rejected envelope was released");
	return 0;
}

static fdn_open_options expect(unsigned threads)
{
	fdn_open_options o = FDN_OPEN_OPTIONS_INIT;

	o.kind = FDN_ENVELOPE_GLOBAL;
	o.federation = "fed";
	o.round = 4;
	o.threads = threads;
	return o;
}

/* Must be refused, by both the buffer and the stream forms. */
static void refused(const unsigned char *env, size_t len, const char *what, size_t at)
{
	fdn_open_options o = expect(at % 2 ? 1 : 2);
	fdn_buf out = FDN_BUF_INIT;
	mem_in in = { env, len, 0 };
	int rc;

	rc = fdn_envelope_open_buffer(NULL, &out, env, len, site, trust, &o);
	if (rc != FDN_EAUTH && rc != FDN_EFORMAT)
		fail_msg("%s at %zu: open_buffer gave %d (%s)", what, at, rc,
			fdn_error_last()->message);
	assert_null(out.ptr);
	rc = fdn_envelope_open_stream(NULL, mem_read, &in, never_write, NULL, site, trust, &o);
	if (rc != FDN_EAUTH && rc != FDN_EFORMAT)
		fail_msg("%s at %zu: open_stream gave %d (%s)", what, at, rc,
			fdn_error_last()->message);
}

static void seal_small(fdn_buf *env, int level, size_t len)
{
	fdn_seal_options o = FDN_SEAL_OPTIONS_INIT;
	const char *rcpt[] = { "site-a", "coord" };
	unsigned char *p = malloc(len);

	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(i < len / 2 ? (i / 8) % 5 : i * 131 + 7);
	o.kind = FDN_ENVELOPE_GLOBAL;
	o.federation = "fed";
	o.round = 4;
	o.compression_level = level;
	fdn_envelope__test_chunk_size = 64;
	OK(fdn_envelope_seal_buffer(env, p, len, coord, trust, rcpt, 2, &o));
	fdn_envelope__test_chunk_size = 0;
	free(p);
}

static void exhaustive(int level)
{
	static const unsigned char flips[] = { 0x01, 0x80, 0xff };
	fdn_open_options o = expect(1);
	fdn_buf env = FDN_BUF_INIT, out = FDN_BUF_INIT;
	unsigned char *copy;

	seal_small(&env, level, 200);
	OK(fdn_envelope_open_buffer(NULL, &out, env.ptr, env.size, site, trust, &o));
	assert_int_equal(out.size, 200);
	copy = malloc(env.size + 8);
	for (size_t i = 0; i < env.size; i++) {
		for (size_t f = 0; f < sizeof(flips); f++) {
			memcpy(copy, env.ptr, env.size);
			copy[i] ^= flips[f];
			refused(copy, env.size, "flip", i);
		}
		refused((const unsigned char *)env.ptr, i, "truncation", i);
	}
	memcpy(copy, env.ptr, env.size);
	for (size_t extra = 1; extra <= 8; extra++) {
		copy[env.size + extra - 1] = (unsigned char)extra;
		refused(copy, env.size + extra, "trailing bytes", extra);
	}
	free(copy);
	fdn_buf_dispose(&env);
	fdn_buf_dispose(&out);
}

static void test_every_byte_stored(void **state)
{
	(void)state;
	exhaustive(0);
}

static void test_every_byte_compressed(void **state)
{
	(void)state;
	exhaustive(6);
}

/* Random runs of random bytes written over random places; random input. */
static void test_random_mutations(void **state)
{
	fdn_buf env = FDN_BUF_INIT;
	unsigned char *copy, junk[600];

	(void)state;
	seal_small(&env, 6, 300);
	copy = malloc(env.size);
	for (int n = 0; n < 3000; n++) {
		size_t at = randombytes_uniform((uint32_t)env.size);
		size_t run = 1 + randombytes_uniform(16);
		memcpy(copy, env.ptr, env.size);
		if (run > env.size - at)
			run = env.size - at;
		randombytes_buf(copy + at, run);
		if (memcmp(copy, env.ptr, env.size) != 0)
			refused(copy, env.size, "mutation", at);
	}
	for (int n = 0; n < 500; n++) {
		size_t len = randombytes_uniform(sizeof(junk));
		randombytes_buf(junk, len);
		if (n % 2 && len >= 10) /* a valid preamble over junk */
			memcpy(junk, env.ptr, 10);
		refused(junk, len, "random input", len);
	}
	free(copy);
	fdn_buf_dispose(&env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_byte_stored),
		cmocka_unit_test(test_every_byte_compressed),
		cmocka_unit_test(test_random_mutations),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
