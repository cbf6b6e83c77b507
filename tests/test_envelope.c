/*
 * Envelopes: round trips through every input and output form, recipients
 * and key rotation, tampering and truncation, the receiver's checks
 * (trust, role, replay), limits, cancellation, progress, inspect.
 *
 * White-box: links the internal archive for the chunk-size test hook, so
 * that multi-record envelopes stay small enough for valgrind.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
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
#include "exchange/envelope_private.h"
#include "testutil.h"

#define FED "racoon-lung"

static char tmpdir[256];
static fdn_identity *coord, *site_a, *site_a2, *site_b, *stranger, *old;
static fdn_trust *trust;

static void add_peer(const fdn_identity *id, int role, const char *until)
{
	fdn_buf text = FDN_BUF_INIT;

	OK(fdn_identity_public(&text, id, until));
	OK(fdn_trust_add(trust, text.ptr, role, NULL));
	fdn_buf_dispose(&text);
}

static int setup(void **state)
{
	char path[300];

	(void)state;
	if (fdn_init() != 0 || fdn_test_mkdtemp(tmpdir, sizeof(tmpdir), "envelope") != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/trust.json", tmpdir);
	if (fdn_identity_generate(&coord, "coord") || fdn_identity_generate(&site_a, "site-a") ||
	    fdn_identity_generate(&site_a2, "site-a") || fdn_identity_generate(&site_b, "site-b") ||
	    fdn_identity_generate(&stranger, "site-x") || fdn_identity_generate(&old, "old") ||
	    fdn_trust_open(&trust, path))
		return -1;
	add_peer(coord, FDN_TRUST_ROLE_COORDINATOR, NULL);
	add_peer(site_a, FDN_TRUST_ROLE_SITE, "2099-12-31"); /* rotated: two keys */
	add_peer(site_a2, FDN_TRUST_ROLE_SITE, NULL);
	add_peer(site_b, FDN_TRUST_ROLE_SITE, NULL);
	add_peer(old, FDN_TRUST_ROLE_SITE, "2020-01-01");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fdn_identity_free(coord);
	fdn_identity_free(site_a);
	fdn_identity_free(site_a2);
	fdn_identity_free(site_b);
	fdn_identity_free(stranger);
	fdn_identity_free(old);
	fdn_trust_free(trust);
	fdn_test_rmtree(tmpdir);
	return fdn_shutdown() < 0;
}

/* --- helpers ---------------------------------------------------------------- */

static unsigned char *payload_of(size_t n, int compressible)
{
	unsigned char *p = malloc(n ? n : 1);

	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = compressible ? (unsigned char)((i / 16) % 7) : (unsigned char)(i * 2654435761u >> 13);
	if (!compressible && n)
		randombytes_buf(p, n);
	return p;
}

static fdn_seal_options seal_opts(int kind, uint64_t round, int level, unsigned threads)
{
	fdn_seal_options o = FDN_SEAL_OPTIONS_INIT;

	o.kind = kind;
	o.federation = FED;
	o.round = round;
	o.compression_level = level;
	o.threads = threads;
	return o;
}

static fdn_open_options open_opts(int kind, uint64_t round, unsigned threads)
{
	fdn_open_options o = FDN_OPEN_OPTIONS_INIT;

	o.kind = kind;
	o.federation = FED;
	o.round = round;
	o.threads = threads;
	return o;
}

static void seal_to(fdn_buf *out, const void *data, size_t len, const fdn_identity *from,
	const char *to, const fdn_seal_options *o)
{
	const char *rcpt[] = { to };

	OK(fdn_envelope_seal_buffer(out, data, len, from, trust, rcpt, 1, o));
}

/* Opens into a buffer, expecting @p code; on failure the output is empty
 * and the message contains @p needle. */
static void open_expect(const fdn_buf *env, const fdn_identity *me,
	const fdn_open_options *o, int code, const char *needle)
{
	fdn_buf out = FDN_BUF_INIT;
	int rc = fdn_envelope_open_buffer(NULL, &out, env->ptr, env->size, me, trust, o);

	if (rc != code)
		fail_msg("expected %d, got %d: %s", code, rc, fdn_error_last()->message);
	if (code != 0) {
		assert_int_equal(out.size, 0);
		assert_null(out.ptr);
		if (needle && !strstr(fdn_error_last()->message, needle))
			fail_msg("message '%s' lacks '%s'", fdn_error_last()->message, needle);
	}
	fdn_buf_dispose(&out);
}

typedef struct mem_in {
	const unsigned char *p;
	size_t len, off, step;
} mem_in;

static int mem_read(void *buf, size_t cap, size_t *got, void *payload)
{
	mem_in *in = payload;
	size_t n = in->len - in->off;

	if (n > cap)
		n = cap;
	if (in->step && n > in->step)
		n = in->step;
	memcpy(buf, in->p + in->off, n);
	in->off += n;
	*got = n;
	return 0;
}

typedef struct mem_out {
	unsigned char *p;
	size_t len, calls;
	int fail;
} mem_out;

static int mem_write(const void *data, size_t len, void *payload)
{
	mem_out *out = payload;

	out->calls++;
	if (out->fail)
		return FDN_EUSER;
	out->p = realloc(out->p, out->len + len + 1);
	assert_non_null(out->p);
	memcpy(out->p + out->len, data, len);
	out->len += len;
	return 0;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static unsigned char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *p;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return p;
}

/* --- names and options --------------------------------------------------------- */

static void test_kinds(void **state)
{
	int k = 0;

	(void)state;
	for (int i = 1; i <= 6; i++) {
		OK(fdn_envelope_kind_from_name(&k, fdn_envelope_kind_name(i)));
		assert_int_equal(k, i);
	}
	assert_string_equal(fdn_envelope_kind_name(FDN_ENVELOPE_UPDATE), "update");
	assert_null(fdn_envelope_kind_name(0));
	assert_null(fdn_envelope_kind_name(7));
	assert_int_equal(fdn_envelope_kind_from_name(&k, "bogus"), FDN_EINVALID);
	assert_int_equal(fdn_envelope_kind_from_name(NULL, "data"), FDN_EINVALID);
}

static void test_options_init(void **state)
{
	fdn_seal_options s;
	fdn_open_options o;

	(void)state;
	OK(fdn_seal_options_init(&s, FDN_SEAL_OPTIONS_VERSION));
	assert_int_equal(s.version, FDN_SEAL_OPTIONS_VERSION);
	assert_int_equal(s.compression_level, 0);
	OK(fdn_open_options_init(&o, FDN_OPEN_OPTIONS_VERSION));
	assert_int_equal(o.version, FDN_OPEN_OPTIONS_VERSION);
	assert_int_equal(fdn_seal_options_init(&s, 99), FDN_EINVALID);
	assert_int_equal(fdn_open_options_init(&o, 0), FDN_EINVALID);
	assert_int_equal(fdn_seal_options_init(NULL, 1), FDN_EINVALID);
}

/* --- round trips ------------------------------------------------------------------ */

static void round_trip(size_t len, int compressible, int level, unsigned threads)
{
	fdn_seal_options so = seal_opts(FDN_ENVELOPE_GLOBAL, 7, level, threads);
	fdn_open_options oo = open_opts(FDN_ENVELOPE_GLOBAL, 7, threads);
	fdn_envelope_info info = FDN_ENVELOPE_INFO_INIT;
	fdn_buf env = FDN_BUF_INIT, out = FDN_BUF_INIT;
	unsigned char *p = payload_of(len, compressible);

	oo.sender_role = FDN_TRUST_ROLE_COORDINATOR;
	oo.sender = "coord";
	seal_to(&env, p, len, coord, "site-b", &so);
	OK(fdn_envelope_open_buffer(&info, &out, env.ptr, env.size, site_b, trust, &oo));
	assert_int_equal(out.size, len);
	if (len)
		assert_memory_equal(out.ptr, p, len);
	assert_int_equal(info.payload_bytes, len);
	assert_int_equal(info.stored_bytes, env.size);
	assert_int_equal(info.kind, FDN_ENVELOPE_GLOBAL);
	assert_int_equal(info.round, 7);
	assert_string_equal(info.federation, FED);
	assert_string_equal(info.sender, "coord");
	assert_int_equal(info.recipients, 1);
	assert_int_equal(info.compressed, level > 0 && compressible && len >= 64);
	if (level == 0 || !compressible)
		assert_true(env.size >= len); /* stored, never inflated */
	fdn_buf_dispose(&env);
	fdn_buf_dispose(&out);
	free(p);
}

static void test_round_trip_sizes(void **state)
{
	static const size_t sizes[] = { 0, 1, 63, 64, 65, 127, 128, 129, 64 * 5, 64 * 5 + 3, 1000 };

	(void)state;
	fdn_envelope__test_chunk_size = 64;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (unsigned threads = 1; threads <= 2; threads++) {
			round_trip(sizes[i], 0, 0, threads);
			round_trip(sizes[i], 1, 0, threads);
			round_trip(sizes[i], 1, 6, threads);
			round_trip(sizes[i], 0, 1, threads);
		}
	fdn_envelope__test_chunk_size = 0;
	/* The default chunk (1 MiB), one byte more: a full record and a
	 * one-byte final one. */
	round_trip(FDN_ENV__CHUNK_DEFAULT + 1, 0, 0, 0);
}

static void test_shuffle_widths(void **state)
{
	fdn_open_options oo = open_opts(FDN_ENVELOPE_DATA, 0, 1);
	fdn_buf env = FDN_BUF_INIT, out = FDN_BUF_INIT;
	unsigned char *p = payload_of(1001, 1);
	static const unsigned widths[] = { 0, 1, 2, 4, 8 };

	(void)state;
	fdn_envelope__test_chunk_size = 256;
	for (size_t i = 0; i < 5; i++) {
		fdn_seal_options so = seal_opts(FDN_ENVELOPE_DATA, 0, 9, 1);
		so.shuffle = widths[i];
		seal_to(&env, p, 1001, site_a, "site-b", &so);
		OK(fdn_envelope_open_buffer(NULL, &out, env.ptr, env.size, site_b, trust, &oo));
		assert_int_equal(out.size, 1001);
		assert_memory_equal(out.ptr, p, 1001);
	}
	fdn_envelope__test_chunk_size = 0;
	fdn_buf_dispose(&env);
	fdn_buf_dispose(&out);
	free(p);
}

static void test_round_trip_fd_file_stream(void **state)
{
	fdn_seal_options so = seal_opts(FDN_ENVELOPE_UPDATE, 3, 5, 0);
	fdn_open_options oo = open_opts(FDN_ENVELOPE_UPDATE, 3, 0);
	fdn_envelope_info info = FDN_ENVELOPE_INFO_INIT;
	const char *rcpt[] = { "coord" };
	char in_path[300], env_path[300], out_path[300];
	unsigned char *p = payload_of(3000, 1), *got;
	fdn_buf env = FDN_BUF_INIT;
	mem_in in = { 0 };
	mem_out out = { 0 };
	size_t n;
	int fds[2], ifd, ofd;

	(void)state;
	fdn_envelope__test_chunk_size = 256;
	snprintf(in_path, sizeof(in_path), "%s/payload", tmpdir);
	snprintf(env_path, sizeof(env_path), "%s/update.fdne", tmpdir);
	snprintf(out_path, sizeof(out_path), "%s/opened", tmpdir);
	write_file(in_path, p, 3000);

	/* seal_fd: file to file, appended after existing bytes. */
	ifd = open(in_path, O_RDONLY);
	ofd = open(env_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	OK(fdn_envelope_seal_fd(ifd, ofd, site_a, trust, rcpt, 1, &so));
	close(ifd);
	close(ofd);

	/* open_file */
	OK(fdn_envelope_open_file(&info, env_path, out_path, coord, trust, &oo));
	got = read_all(out_path, &n);
	assert_int_equal(n, 3000);
	assert_memory_equal(got, p, 3000);
	free(got);
	assert_int_equal(info.payload_bytes, 3000);
	assert_true(info.compressed);

	/* open_fd into a regular file (decrypted in place) */
	ifd = open(env_path, O_RDONLY);
	ofd = open(out_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(write(ofd, "stale content longer than nothing", 33), 33);
	assert_int_equal(lseek(ofd, 0, SEEK_SET), 0);
	OK(fdn_envelope_open_fd(NULL, ifd, ofd, coord, trust, &oo));
	close(ifd);
	close(ofd);
	got = read_all(out_path, &n);
	assert_int_equal(n, 3000);
	assert_memory_equal(got, p, 3000);
	free(got);

	/* open_fd into a pipe (through a temporary file) */
	assert_int_equal(pipe(fds), 0);
	ifd = open(env_path, O_RDONLY);
	oo.temp_dir = tmpdir;
	OK(fdn_envelope_open_fd(NULL, ifd, fds[1], coord, trust, &oo));
	oo.temp_dir = NULL;
	close(ifd);
	close(fds[1]);
	got = malloc(4000);
	n = 0;
	for (ssize_t r; (r = read(fds[0], got + n, 4000 - n)) > 0;)
		n += (size_t)r;
	close(fds[0]);
	assert_int_equal(n, 3000);
	assert_memory_equal(got, p, 3000);
	free(got);

	/* seal_stream with tiny reads, open_stream with tiny reads */
	{
		mem_out sealed = { 0 };
		in.p = p;
		in.len = 3000;
		in.step = 7;
		OK(fdn_envelope_seal_stream(mem_read, &in, mem_write, &sealed, site_a, trust,
			rcpt, 1, &so));
		in.p = sealed.p;
		in.len = sealed.len;
		in.off = 0;
		in.step = 5;
		OK(fdn_envelope_open_stream(&info, mem_read, &in, mem_write, &out, coord, trust, &oo));
		assert_int_equal(out.len, 3000);
		assert_memory_equal(out.p, p, 3000);
		assert_int_equal(info.stored_bytes, sealed.len);
		/* The same bytes open from memory too. */
		OK(fdn_envelope_open_buffer(NULL, &env, sealed.p, sealed.len, coord, trust, &oo));
		assert_int_equal(env.size, 3000);
		free(sealed.p);
	}
	fdn_envelope__test_chunk_size = 0;
	fdn_buf_dispose(&env);
	free(out.p);
	free(p);
}

/* --- recipients ----------------------------------------------------------------------- */

static void test_recipients(void **state)
{
	fdn_seal_options so = seal_opts(FDN_ENVELOPE_GLOBAL, 1, 0, 0);
	fdn_open_options oo = open_opts(FDN_ENVELOPE_GLOBAL, 1, 0);
	fdn_envelope_info info = FDN_ENVELOPE_INFO_INIT;
	const char *rcpt[] = { "site-a", "site-b", "coord", "site-b" };
	fdn_buf env = FDN_BUF_INIT, out = FDN_BUF_INIT;

	(void)state;
	OK(fdn_envelope_seal_buffer(&env, "weights", 7, coord, trust, rcpt, 4, &so));
	/* site-a's two keys, site-b (named twice), the sender itself. */
	OK(fdn_envelope_inspect(&info, env.ptr, env.size));
	assert_int_equal(info.recipients, 4);
	open_expect(&env, site_a, &oo, 0, NULL);
	open_expect(&env, site_a2, &oo, 0, NULL);
	open_expect(&env, site_b, &oo, 0, NULL);
	OK(fdn_envelope_open_buffer(&info, &out, env.ptr, env.size, coord, trust, &oo));
	assert_string_equal(out.ptr, "weights");
	open_expect(&env, stranger, &oo, FDN_EAUTH, "not addressed to this node");
	fdn_buf_dispose(&env);
	fdn_buf_dispose(&out);

	/* Only to itself: no trust store needed to seal. */
	rcpt[0] = "coord";
	OK(fdn_envelope_seal_buffer(&env, "x", 1, coord, NULL, rcpt, 1, &so));
	open_expect(&env, coord, &oo, 0, NULL);
	/* Unknown and expired recipients. */
	rcpt[0] = "site-x";
	assert_int_equal(fdn_envelope_seal_buffer(&env, "x", 1, coord, trust, rcpt, 1, &so),
		FDN_ENOTFOUND);
	assert_non_null(strstr(fdn_error_last()->message, "not in the trust store"));
	assert_int_equal(env.size, 0);
	rcpt[0] = "old";
	assert_int_equal(fdn_envelope_seal_buffer(&env, "x", 1, coord, trust, rcpt, 1, &so),
		FDN_ENOTFOUND);
	assert_non_null(strstr(fdn_error_last()->message, "expired"));
	fdn_buf_dispose(&env);
}

/* --- what the receiver checks ------------------------------------------------------- */

static void test_receiver_checks(void **state)
{
	fdn_seal_options so = seal_opts(FDN_ENVELOPE_UPDATE, 5, 0, 0);
	fdn_open_options oo = open_opts(FDN_ENVELOPE_UPDATE, 5, 0);
	fdn_buf env = FDN_BUF_INIT;
	fdn_trust *empty;
	char path[300];

	(void)state;
	seal_to(&env, "update", 6, site_a, "coord", &so);
	open_expect(&env, coord, &oo, 0, NULL);
	oo.sender = "site-a";
	oo.sender_role = FDN_TRUST_ROLE_SITE;
	open_expect(&env, coord, &oo, 0, NULL);
	oo.sender = "site-b";
	open_expect(&env, coord, &oo, FDN_EAUTH, "expected from 'site-b'");
	oo.sender = NULL;
	oo.sender_role = FDN_TRUST_ROLE_COORDINATOR;
	open_expect(&env, coord, &oo, FDN_EAUTH, "is a site, expected a coordinator");
	oo.sender_role = 0;
	oo.round = 6;
	open_expect(&env, coord, &oo, FDN_EAUTH, "replay: expected round 6, found round 5");
	oo.round = 5;
	oo.kind = FDN_ENVELOPE_GLOBAL;
	open_expect(&env, coord, &oo, FDN_EAUTH, "replay: expected a 'global' envelope, found a 'update'");
	oo.kind = FDN_ENVELOPE_UPDATE;
	oo.federation = "other-fed";
	open_expect(&env, coord, &oo, FDN_EAUTH, "replay: expected federation 'other-fed'");
	oo.federation = FED;
	open_expect(&env, site_b, &oo, FDN_EAUTH, "not addressed to this node");
	fdn_buf_dispose(&env);

	/* A sender nobody trusts. */
	seal_to(&env, "update", 6, stranger, "coord", &so);
	open_expect(&env, coord, &oo, FDN_EAUTH, "sender not trusted");
	fdn_buf_dispose(&env);

	/* An expired sender key: refused now, accepted at a time it was valid. */
	seal_to(&env, "update", 6, old, "coord", &so);
	open_expect(&env, coord, &oo, FDN_EAUTH, "key expired");
	oo.when = 1577750400; /* 2019-12-31 */
	open_expect(&env, coord, &oo, 0, NULL);
	oo.when = 0;
	fdn_buf_dispose(&env);

	/* A receiver that trusts nobody, not even the sender it is. */
	snprintf(path, sizeof(path), "%s/empty-trust.json", tmpdir);
	OK(fdn_trust_open(&empty, path));
	seal_to(&env, "x", 1, coord, "coord", &so);
	assert_int_equal(fdn_envelope_open_buffer(NULL, &(fdn_buf)FDN_BUF_INIT, env.ptr,
		env.size, coord, empty, &oo), FDN_EAUTH);
	fdn_trust_free(empty);
	fdn_buf_dispose(&env);
}

/* The header names 'site-a' but the key is site-b's: rejected although
 * the signature itself is valid for site-b's key. */
static void test_impersonation(void **state)
{
	fdn_seal_options so = seal_opts(FDN_ENVELOPE_UPDATE, 1, 0, 1);
	fdn_open_options oo = open_opts(FDN_ENVELOPE_UPDATE, 1, 1);
	fdn_identity *fake;
	fdn_buf env = FDN_BUF_INIT;

	(void)state;
	OK(fdn_identity_generate(&fake, "site-a")); /* a new key, not trusted */
	seal_to(&env, "forged", 6, fake, "coord", &so);
	open_expect(&env, coord, &oo, FDN_EAUTH, "sender not trusted");
	fdn_buf_dispose(&env);
	fdn_identity_free(fake);
	/* site-b's key claiming to be site-a: patch the name in the header. */
	seal_to(&env, "forged", 6, site_b, "coord", &so);
	{
		char *at = memmem(env.ptr, env.size, "site-b", 6);
		assert_non_null(at);
		at[5] = 'a';
	}
	open_expect(&env, coord, &oo, FDN_EAUTH, "signed with a key of 'site-b'");
	fdn_buf_dispose(&env);
}

/* --- tampering ------------------------------------------------------------------------- */

static int flip_result(const unsigned char *env, size_t len, unsigned threads)
{
	fdn_open_options oo = open_opts(FDN_ENVELOPE_GLOBAL, 2, threads);
	fdn_buf out = FDN_BUF_INIT;
	int rc = fdn_envelope_open_buffer(NULL, &out, env, len, site_a, trust, &oo);

	if (rc != 0)
		assert_null(out.ptr);
	fdn_buf_dispose(&out);
	return rc;
}

static void tamper_all(int level, size_t stride)
{
	fdn_seal_options so = seal_opts(FDN_ENVELOPE_GLOBAL, 2, level, 1);
	fdn_buf env = FDN_BUF_INIT;
	unsigned char *p = payload_of(150, 1), *copy;
	mem_out out = { 0 };
	mem_in in = { 0 };
	size_t i;
	int rc;

	fdn_envelope__test_chunk_size = 64;
	seal_to(&env, p, 150, coord, "site-a", &so);
	fdn_envelope__test_chunk_size = 0;
	assert_int_equal(flip_result((unsigned char *)env.ptr, env.size, 1), 0);
	copy = malloc(env.size + 1);
	for (i = 0; i < env.size; i += stride) {
		memcpy(copy, env.ptr, env.size);
		copy[i] ^= (unsigned char)(1u << (i % 8));
		rc = flip_result(copy, env.size, i % 2 ? 1 : 2);
		if (rc != FDN_EAUTH && rc != FDN_EFORMAT)
			fail_msg("flip of byte %zu of %zu: %d (%s)", i, env.size, rc,
				fdn_error_last()->message);
		/* Through a stream: the writer is never called. */
		if (i % 16 == 0) {
			fdn_open_options oo = open_opts(FDN_ENVELOPE_GLOBAL, 2, 0);
			in.p = copy;
			in.len = env.size;
			in.off = 0;
			in.step = 0;
			rc = fdn_envelope_open_stream(NULL, mem_read, &in, mem_write, &out, site_a,
				trust, &oo);
			assert_true(rc == FDN_EAUTH || rc == FDN_EFORMAT);
			assert_int_equal(out.calls, 0);
		}
	}
	for (i = 0; i < env.size; i += stride) {
		rc = flip_result((unsigned char *)env.ptr, i, 1);
		if (rc != FDN_EFORMAT && rc != FDN_EAUTH)
			fail_msg("truncation to %zu of %zu: %d", i, env.size, rc);
	}
	memcpy(copy, env.ptr, env.size);
	copy[env.size] = 0;
	assert_int_equal(flip_result(copy, env.size + 1, 1), FDN_EFORMAT);
	assert_non_null(strstr(fdn_error_last()->message, "trailing"));
	free(copy);
	free(p);
	fdn_buf_dispose(&env);
}

static void test_tamper_sampled(void **state)
{
	(void)state;
	/* Every 4th or 7th byte, a different bit each time; test_envelope_robust
	 * (suite 'robust') changes every byte three ways. */
	tamper_all(0, 4);
	tamper_all(6, 7);
}

static void test_open_fd_failure_truncates(void **state)
{
	fdn_seal_options so = seal_opts(FDN_ENVELOPE_DATA, 0, 0, 0);
	fdn_open_options oo = open_opts(FDN_ENVELOPE_DATA, 0, 0);
	char env_path[300], out_path[300];
	unsigned char *p = payload_of(500, 0);
	fdn_buf env = FDN_BUF_INIT;
	struct stat st;
	int ifd, ofd;

	(void)state;
	fdn_envelope__test_chunk_size = 64;
	seal_to(&env, p, 500, site_b, "coord", &so);
	fdn_envelope__test_chunk_size = 0;
	env.ptr[env.size - 80] ^= 1; /* the signature */
	snprintf(env_path, sizeof(env_path), "%s/bad.fdne", tmpdir);
	snprintf(out_path, sizeof(out_path), "%s/bad.out", tmpdir);
	write_file(env_path, env.ptr, env.size);
	ifd = open(env_path, O_RDONLY);
	ofd = open(out_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(fdn_envelope_open_fd(NULL, ifd, ofd, coord, trust, &oo), FDN_EAUTH);
	assert_non_null(strstr(fdn_error_last()->message, "signature"));
	assert_int_equal(fstat(ofd, &st), 0);
	assert_int_equal(st.st_size, 0);
	close(ifd);
	close(ofd);
	/* open_file leaves no file behind. */
	unlink(out_path);
	assert_int_equal(fdn_envelope_open_file(NULL, env_path, out_path, coord, trust, &oo),
		FDN_EAUTH);
	assert_int_equal(stat(out_path, &st), -1);
	assert_int_equal(fdn_envelope_open_file(NULL, "/nonexistent/x", out_path, coord, trust,
		&oo), FDN_ENOTFOUND);
	free(p);
	fdn_buf_dispose(&env);
}

/* --- limits, cancellation, progress ---------------------------------------------------- */

static int count_progress(const fdn_progress *p, void *payload)
{
	(*(int *)payload)++;
	assert_non_null(p->stage);
	return 0;
}

static int stop_progress(const fdn_progress *p, void *payload)
{
	(void)p;
	(void)payload;
	return 42;
}

static void test_max_payload(void **state)
{
	fdn_open_options oo = open_opts(FDN_ENVELOPE_DATA, 0, 0);
	fdn_buf env = FDN_BUF_INIT;
	unsigned char *p = payload_of(1000, 1);

	(void)state;
	fdn_envelope__test_chunk_size = 128;
	for (int level = 0; level <= 6; level += 6) {
		fdn_seal_options so = seal_opts(FDN_ENVELOPE_DATA, 0, level, 0);
		seal_to(&env, p, 1000, site_a, "site-b", &so);
		oo.max_payload = 1000;
		open_expect(&env, site_b, &oo, 0, NULL);
		oo.max_payload = 999;
		open_expect(&env, site_b, &oo, FDN_EFORMAT, "max_payload");
		oo.max_payload = 1;
		open_expect(&env, site_b, &oo, FDN_EFORMAT, "max_payload");
	}
	fdn_envelope__test_chunk_size = 0;
	fdn_buf_dispose(&env);
	free(p);
}

static void test_cancel_and_progress(void **state)
{
	fdn_seal_options so = seal_opts(FDN_ENVELOPE_DATA, 0, 0, 0);
	fdn_open_options oo = open_opts(FDN_ENVELOPE_DATA, 0, 0);
	const char *rcpt[] = { "site-b" };
	fdn_buf env = FDN_BUF_INIT, out = FDN_BUF_INIT;
	unsigned char *p = payload_of(1000, 0);
	fdn_cancel *cancel;
	int calls = 0;

	(void)state;
	fdn_envelope__test_chunk_size = 100;
	OK(fdn_cancel_new(&cancel));
	so.progress = count_progress;
	so.progress_payload = &calls;
	OK(fdn_envelope_seal_buffer(&env, p, 1000, site_a, trust, rcpt, 1, &so));
	assert_int_equal(calls, 10);
	calls = 0;
	oo.progress = count_progress;
	oo.progress_payload = &calls;
	OK(fdn_envelope_open_buffer(NULL, &out, env.ptr, env.size, site_b, trust, &oo));
	assert_int_equal(calls, 10);

	so.progress = stop_progress;
	assert_int_equal(fdn_envelope_seal_buffer(&env, p, 1000, site_a, trust, rcpt, 1, &so), 42);
	assert_int_equal(env.size, 0);
	so.progress = NULL;
	OK(fdn_envelope_seal_buffer(&env, p, 1000, site_a, trust, rcpt, 1, &so));
	oo.progress = stop_progress;
	assert_int_equal(fdn_envelope_open_buffer(NULL, &out, env.ptr, env.size, site_b, trust,
		&oo), 42);
	assert_int_equal(out.size, 0);
	oo.progress = NULL;

	fdn_cancel_request(cancel);
	so.cancel = cancel;
	assert_int_equal(fdn_envelope_seal_buffer(&env, p, 1000, site_a, trust, rcpt, 1, &so),
		FDN_ECANCELLED);
	so.cancel = NULL;
	OK(fdn_envelope_seal_buffer(&env, p, 1000, site_a, trust, rcpt, 1, &so));
	oo.cancel = cancel;
	assert_int_equal(fdn_envelope_open_buffer(NULL, &out, env.ptr, env.size, site_b, trust,
		&oo), FDN_ECANCELLED);
	fdn_cancel_free(cancel);
	fdn_envelope__test_chunk_size = 0;

	/* A failing writer stops sealing with its own value. */
	{
		mem_in in = { p, 1000, 0, 0 };
		mem_out w = { 0 };
		w.fail = 1;
		assert_int_equal(fdn_envelope_seal_stream(mem_read, &in, mem_write, &w, site_a,
			trust, rcpt, 1, &so), FDN_EUSER);
	}
	fdn_buf_dispose(&env);
	fdn_buf_dispose(&out);
	free(p);
}

static void test_bad_arguments(void **state)
{
	fdn_seal_options so = seal_opts(FDN_ENVELOPE_DATA, 0, 0, 0);
	fdn_open_options oo = open_opts(FDN_ENVELOPE_DATA, 0, 0);
	fdn_envelope_info info = FDN_ENVELOPE_INFO_INIT;
	const char *rcpt[] = { "site-b" }, *bad_rcpt[] = { "no spaces" };
	fdn_buf env = FDN_BUF_INIT, out = FDN_BUF_INIT;

	(void)state;
	assert_int_equal(fdn_envelope_seal_buffer(NULL, "x", 1, site_a, trust, rcpt, 1, &so), FDN_EINVALID);
	assert_int_equal(fdn_envelope_seal_buffer(&env, "x", 1, NULL, trust, rcpt, 1, &so), FDN_EINVALID);
	assert_int_equal(fdn_envelope_seal_buffer(&env, "x", 1, site_a, trust, NULL, 1, &so), FDN_EINVALID);
	assert_int_equal(fdn_envelope_seal_buffer(&env, "x", 1, site_a, trust, rcpt, 0, &so), FDN_EINVALID);
	assert_int_equal(fdn_envelope_seal_buffer(&env, "x", 1, site_a, trust, bad_rcpt, 1, &so), FDN_EINVALID);
	assert_int_equal(fdn_envelope_seal_buffer(&env, "x", 1, site_a, trust, rcpt, 1, NULL), FDN_EINVALID);
	assert_int_equal(fdn_envelope_seal_buffer(&env, NULL, 1, site_a, trust, rcpt, 1, &so), FDN_EINVALID);
	so.kind = 0;
	assert_int_equal(fdn_envelope_seal_buffer(&env, "x", 1, site_a, trust, rcpt, 1, &so), FDN_EINVALID);
	so.kind = FDN_ENVELOPE_DATA;
	so.federation = "../etc";
	assert_int_equal(fdn_envelope_seal_buffer(&env, "x", 1, site_a, trust, rcpt, 1, &so), FDN_EINVALID);
	so.federation = FED;
	so.compression_level = 10;
	assert_int_equal(fdn_envelope_seal_buffer(&env, "x", 1, site_a, trust, rcpt, 1, &so), FDN_EINVALID);
	so.compression_level = 1;
	so.shuffle = 3;
	assert_int_equal(fdn_envelope_seal_buffer(&env, "x", 1, site_a, trust, rcpt, 1, &so), FDN_EINVALID);
	so.shuffle = 0;
	so.version = 2;
	assert_int_equal(fdn_envelope_seal_buffer(&env, "x", 1, site_a, trust, rcpt, 1, &so), FDN_EINVALID);
	so.version = 1;
	assert_int_equal(fdn_envelope_seal_fd(-1, 1, site_a, trust, rcpt, 1, &so), FDN_EINVALID);
	assert_int_equal(fdn_envelope_seal_stream(NULL, NULL, mem_write, NULL, site_a, trust, rcpt, 1, &so), FDN_EINVALID);

	OK(fdn_envelope_seal_buffer(&env, "x", 1, site_a, trust, rcpt, 1, &so));
	assert_int_equal(fdn_envelope_open_buffer(&info, NULL, env.ptr, env.size, site_b, trust, &oo), FDN_EINVALID);
	assert_int_equal(fdn_envelope_open_buffer(&info, &out, env.ptr, env.size, NULL, trust, &oo), FDN_EINVALID);
	assert_int_equal(fdn_envelope_open_buffer(&info, &out, env.ptr, env.size, site_b, NULL, &oo), FDN_EINVALID);
	assert_int_equal(fdn_envelope_open_buffer(&info, &out, env.ptr, env.size, site_b, trust, NULL), FDN_EINVALID);
	oo.federation = NULL;
	assert_int_equal(fdn_envelope_open_buffer(&info, &out, env.ptr, env.size, site_b, trust, &oo), FDN_EINVALID);
	oo.federation = FED;
	oo.sender_role = 9;
	assert_int_equal(fdn_envelope_open_buffer(&info, &out, env.ptr, env.size, site_b, trust, &oo), FDN_EINVALID);
	oo.sender_role = 0;
	info.version = 99;
	assert_int_equal(fdn_envelope_open_buffer(&info, &out, env.ptr, env.size, site_b, trust, &oo), FDN_EINVALID);
	assert_int_equal(fdn_envelope_open_fd(NULL, 0, -1, site_b, trust, &oo), FDN_EINVALID);
	assert_int_equal(fdn_envelope_open_file(NULL, NULL, "x", site_b, trust, &oo), FDN_EINVALID);
	assert_int_equal(fdn_envelope_open_stream(NULL, mem_read, NULL, NULL, NULL, site_b, trust, &oo), FDN_EINVALID);
	fdn_buf_dispose(&env);
}

static void test_inspect(void **state)
{
	fdn_seal_options so = seal_opts(FDN_ENVELOPE_RESULT, 9, 6, 0);
	fdn_envelope_info info = FDN_ENVELOPE_INFO_INIT;
	unsigned char *p = payload_of(4000, 1);
	fdn_buf env = FDN_BUF_INIT;
	static const char garbage[] = "this is not an envelope at all, not even close";

	(void)state;
	seal_to(&env, p, 4000, coord, "site-a", &so);
	OK(fdn_envelope_inspect(&info, env.ptr, env.size));
	assert_int_equal(info.kind, FDN_ENVELOPE_RESULT);
	assert_int_equal(info.round, 9);
	assert_string_equal(info.federation, FED);
	assert_string_equal(info.sender, "coord");
	assert_int_equal(info.recipients, 2);
	assert_int_equal(info.stored_bytes, env.size);
	assert_int_equal(info.payload_bytes, 0);
	assert_int_equal(info.compressed, 1);
	assert_true(env.size < 4000);
	/* The header alone is enough. */
	memset(&info, 0, sizeof(info));
	info.version = FDN_ENVELOPE_INFO_VERSION;
	OK(fdn_envelope_inspect(&info, env.ptr, env.size - 50));
	assert_string_equal(info.sender, "coord");
	assert_int_equal(info.stored_bytes, 0);
	assert_int_equal(fdn_envelope_inspect(&info, env.ptr, 30), FDN_EFORMAT);
	assert_int_equal(fdn_envelope_inspect(&info, garbage, sizeof(garbage)), FDN_EFORMAT);
	assert_int_equal(fdn_envelope_inspect(&info, garbage, 3), FDN_EFORMAT);
	assert_int_equal(fdn_envelope_inspect(NULL, env.ptr, env.size), FDN_EINVALID);
	env.ptr[4] = 2; /* format version */
	assert_int_equal(fdn_envelope_inspect(&info, env.ptr, env.size), FDN_EFORMAT);
	assert_non_null(strstr(fdn_error_last()->message, "version 2"));
	fdn_buf_dispose(&env);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_options_init),
		cmocka_unit_test(test_round_trip_sizes),
		cmocka_unit_test(test_shuffle_widths),
		cmocka_unit_test(test_round_trip_fd_file_stream),
		cmocka_unit_test(test_recipients),
		cmocka_unit_test(test_receiver_checks),
		cmocka_unit_test(test_impersonation),
		cmocka_unit_test(test_tamper_sampled),
		cmocka_unit_test(test_open_fd_failure_truncates),
		cmocka_unit_test(test_max_payload),
		cmocka_unit_test(test_cancel_and_progress),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_inspect),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
