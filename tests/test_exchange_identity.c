/*
 * Identities (key files, public text, fingerprints) and the trust store.
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
	return fdn_test_mkdtemp(tmpdir, sizeof(tmpdir), "exchange");
}

static int teardown(void **state)
{
	(void)state;
	fdn_test_rmtree(tmpdir);
	return fdn_shutdown() < 0;
}

/* --- helpers ------------------------------------------------------------- */

static void path_of(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", tmpdir, name);
}

static void text_of(fdn_buf *out, const fdn_identity *id, const char *fn)
{
	if (strcmp(fn, "public") == 0)
		OK(fdn_identity_public(out, id, NULL));
	else
		OK(fdn_identity_fingerprint(out, id));
}

/* Same node id, same public text and fingerprint. */
static void assert_same(const fdn_identity *a, const fdn_identity *b)
{
	fdn_buf x = FDN_BUF_INIT, y = FDN_BUF_INIT;

	assert_string_equal(fdn_identity_node_id(a), fdn_identity_node_id(b));
	text_of(&x, a, "public");
	text_of(&y, b, "public");
	assert_string_equal(x.ptr, y.ptr);
	text_of(&x, a, "fingerprint");
	text_of(&y, b, "fingerprint");
	assert_string_equal(x.ptr, y.ptr);
	fdn_buf_dispose(&x);
	fdn_buf_dispose(&y);
}

static void read_file(unsigned char *buf, size_t *len, const char *path)
{
	FILE *f = fopen(path, "rb");

	assert_non_null(f);
	*len = fread(buf, 1, 1024, f);
	fclose(f);
}

static void write_file(const char *path, const unsigned char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
}

/* --- identities ------------------------------------------------------------ */

static void test_generate(void **state)
{
	fdn_identity *id = NULL;
	fdn_buf fp = FDN_BUF_INIT;

	(void)state;
	assert_int_equal(fdn_node_id_max(), FDN_NODE_ID_MAX);
	assert_int_equal(fdn_public_key_bytes(), 32);
	assert_int_equal(fdn_identity_generate(&id, ""), FDN_EINVALID);
	assert_int_equal(fdn_identity_generate(&id, "../x"), FDN_EINVALID);
	assert_int_equal(fdn_identity_generate(&id, ".hidden"), FDN_EINVALID);
	assert_int_equal(fdn_identity_generate(&id, "a b"), FDN_EINVALID);
	assert_null(id);
	OK(fdn_identity_generate(&id, "site-a.example_1"));
	assert_string_equal(fdn_identity_node_id(id), "site-a.example_1");
	OK(fdn_identity_fingerprint(&fp, id));
	assert_int_equal(fp.size, 39);
	for (size_t i = 0; i < fp.size; i++)
		assert_true(i % 5 == 4 ? fp.ptr[i] == ':' :
			strchr("0123456789abcdef", fp.ptr[i]) != NULL);
	fdn_buf_dispose(&fp);
	fdn_identity_free(id);
	fdn_identity_free(NULL);
	assert_null(fdn_identity_node_id(NULL));
}

static void round_trip(const char *name, const char *passphrase)
{
	fdn_identity *id = NULL, *back = NULL;
	char path[512];
	struct stat st;

	path_of(path, sizeof(path), name);
	OK(fdn_identity_generate(&id, "node-1"));
	OK(fdn_identity_save(id, path, passphrase));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	OK(fdn_identity_load(&back, path, passphrase));
	assert_same(id, back);
	fdn_identity_free(back);
	/* never overwritten */
	assert_int_equal(fdn_identity_save(id, path, passphrase), FDN_ECONFLICT);
	fdn_identity_free(id);
}

static void test_round_trip_plain(void **state)
{
	fdn_identity *id = NULL;
	char path[512];

	(void)state;
	round_trip("plain.key", NULL);
	path_of(path, sizeof(path), "plain.key");
	assert_int_equal(fdn_identity_load(&id, path, "secret"), FDN_EINVALID);
	assert_null(id);
}

static void test_round_trip_passphrase(void **state)
{
	fdn_identity *id = NULL;
	char path[512];

	(void)state;
	round_trip("enc.key", "correct horse battery staple");
	path_of(path, sizeof(path), "enc.key");
	assert_int_equal(fdn_identity_load(&id, path, "wrong"), FDN_EAUTH);
	assert_null(id);
	assert_int_equal(fdn_identity_load(&id, path, NULL), FDN_EAUTH);
	assert_int_equal(fdn_identity_save(NULL, path, NULL), FDN_EINVALID);
}

static void test_empty_passphrase(void **state)
{
	fdn_identity *id = NULL;
	char path[512];

	(void)state;
	path_of(path, sizeof(path), "empty.key");
	OK(fdn_identity_generate(&id, "n"));
	assert_int_equal(fdn_identity_save(id, path, ""), FDN_EINVALID);
	fdn_identity_free(id);
}

static void test_permissions(void **state)
{
	fdn_identity *id = NULL;
	char path[512], link_path[512];

	(void)state;
	path_of(path, sizeof(path), "perm.key");
	OK(fdn_identity_generate(&id, "n"));
	OK(fdn_identity_save(id, path, NULL));
	fdn_identity_free(id);
	id = NULL;
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(fdn_identity_load(&id, path, NULL), FDN_EINVALID);
	assert_null(id);
	assert_int_equal(chmod(path, 0600), 0);
	path_of(link_path, sizeof(link_path), "perm-link.key");
	assert_int_equal(symlink(path, link_path), 0);
	assert_int_equal(fdn_identity_load(&id, link_path, NULL), FDN_EINVALID);
	path_of(path, sizeof(path), "missing.key");
	assert_int_equal(fdn_identity_load(&id, path, NULL), FDN_ENOTFOUND);
}

static void test_corrupt(void **state)
{
	fdn_identity *id = NULL;
	unsigned char buf[1024], bad[1024];
	char plain[512], enc[512], path[512];
	size_t len = 0, elen = 0;

	(void)state;
	path_of(plain, sizeof(plain), "c-plain.key");
	path_of(enc, sizeof(enc), "c-enc.key");
	path_of(path, sizeof(path), "c-bad.key");
	OK(fdn_identity_generate(&id, "node-c"));
	OK(fdn_identity_save(id, plain, NULL));
	OK(fdn_identity_save(id, enc, "pw"));
	fdn_identity_free(id);
	id = NULL;
	read_file(buf, &len, plain);

	/* bad magic */
	memcpy(bad, buf, len);
	bad[0] ^= 1;
	write_file(path, bad, len);
	assert_int_equal(fdn_identity_load(&id, path, NULL), FDN_EFORMAT);
	/* truncated, and empty */
	write_file(path, buf, len - 1);
	assert_int_equal(fdn_identity_load(&id, path, NULL), FDN_EFORMAT);
	write_file(path, buf, 0);
	assert_int_equal(fdn_identity_load(&id, path, NULL), FDN_EFORMAT);
	/* a flipped secret byte no longer matches the public keys */
	memcpy(bad, buf, len);
	bad[len - 64] ^= 0x01; /* the Ed25519 seed */
	write_file(path, bad, len);
	assert_int_equal(fdn_identity_load(&id, path, NULL), FDN_EFORMAT);
	/* a flipped public key */
	memcpy(bad, buf, len);
	bad[12 + 6 + 3] ^= 0x40;
	write_file(path, bad, len);
	assert_int_equal(fdn_identity_load(&id, path, NULL), FDN_EFORMAT);
	/* bad node-id length */
	memcpy(bad, buf, len);
	bad[10] = 200;
	write_file(path, bad, len);
	assert_int_equal(fdn_identity_load(&id, path, NULL), FDN_EFORMAT);
	assert_null(id);

	/* encrypted: the header is authenticated, the KDF bounded */
	read_file(buf, &elen, enc);
	memcpy(bad, buf, elen);
	bad[12] = 'N';
	write_file(path, bad, elen);
	assert_int_equal(fdn_identity_load(&id, path, "pw"), FDN_EAUTH);
	memcpy(bad, buf, elen);
	memset(bad + 12 + 6 + 64 + 16 + 8, 0xff, 8); /* memlimit */
	write_file(path, bad, elen);
	assert_int_equal(fdn_identity_load(&id, path, "pw"), FDN_EFORMAT);
	write_file(path, buf, elen - 3);
	assert_int_equal(fdn_identity_load(&id, path, "pw"), FDN_EFORMAT);
	write_file(path, buf, elen);
	OK(fdn_identity_load(&id, path, "pw"));
	fdn_identity_free(id);
}

static void test_public_text(void **state)
{
	fdn_identity *id = NULL;
	fdn_buf a = FDN_BUF_INIT, b = FDN_BUF_INIT;

	(void)state;
	OK(fdn_identity_generate(&id, "coord"));
	OK(fdn_identity_public(&a, id, NULL));
	assert_non_null(strstr(a.ptr, "\"node_id\":\"coord\""));
	assert_null(strstr(a.ptr, "valid_until"));
	OK(fdn_identity_public(&b, id, ""));
	assert_string_equal(a.ptr, b.ptr);
	OK(fdn_identity_public(&b, id, "2027-06-30"));
	assert_non_null(strstr(b.ptr, "\"valid_until\":\"2027-06-30\""));
	assert_int_equal(fdn_identity_public(&b, id, "2027-02-30"), FDN_EINVALID);
	assert_int_equal(fdn_identity_public(&b, id, "27-06-30"), FDN_EINVALID);
	/* fingerprint is stable */
	OK(fdn_identity_fingerprint(&a, id));
	OK(fdn_identity_fingerprint(&b, id));
	assert_string_equal(a.ptr, b.ptr);
	fdn_buf_dispose(&a);
	fdn_buf_dispose(&b);
	fdn_identity_free(id);
}

/* --- trust ------------------------------------------------------------------ */

static void test_trust_add_persist(void **state)
{
	fdn_identity *site = NULL, *coord = NULL;
	fdn_trust *t = NULL;
	fdn_trust_peer_info info = FDN_TRUST_PEER_INFO_INIT;
	fdn_buf pub = FDN_BUF_INIT, fp = FDN_BUF_INIT;
	unsigned char other[32] = { 0 };
	char path[512];
	size_t index = 99;

	(void)state;
	path_of(path, sizeof(path), "trust.json");
	OK(fdn_identity_generate(&site, "site-a"));
	OK(fdn_identity_generate(&coord, "coordinator"));
	OK(fdn_trust_open(&t, path));
	assert_int_equal(fdn_trust_count(t), 0);
	OK(fdn_identity_public(&pub, site, NULL));
	OK(fdn_trust_add(t, pub.ptr, FDN_TRUST_ROLE_SITE, ""));
	assert_int_equal(fdn_trust_add(t, pub.ptr, FDN_TRUST_ROLE_SITE, ""), FDN_ECONFLICT);
	assert_int_equal(fdn_trust_add(t, pub.ptr, 7, ""), FDN_EINVALID);
	assert_int_equal(fdn_trust_add(t, "{\"format\":1}", FDN_TRUST_ROLE_SITE, ""),
		FDN_EFORMAT);
	assert_int_equal(fdn_trust_add(t, "not json", FDN_TRUST_ROLE_SITE, ""), FDN_EFORMAT);
	OK(fdn_identity_public(&pub, coord, "2030-01-01"));
	OK(fdn_trust_add(t, pub.ptr, FDN_TRUST_ROLE_COORDINATOR, NULL));
	assert_int_equal(fdn_trust_count(t), 2);
	OK(fdn_trust_save(t));
	fdn_trust_free(t);
	t = NULL;

	OK(fdn_trust_open(&t, path));
	assert_int_equal(fdn_trust_count(t), 2);
	OK(fdn_trust_peer(&info, t, 1));
	assert_string_equal(info.node_id, "coordinator");
	assert_int_equal(info.role, FDN_TRUST_ROLE_COORDINATOR);
	assert_string_equal(info.valid_until, "2030-01-01");
	OK(fdn_identity_fingerprint(&fp, coord));
	assert_string_equal(info.fingerprint, fp.ptr);
	OK(fdn_trust_find_by_key(&index, t, info.ed25519_public, 1800000000));
	assert_int_equal(index, 1);
	assert_int_equal(fdn_trust_find_by_key(NULL, t, info.ed25519_public, 1900000000),
		FDN_EAUTH);
	assert_int_equal(fdn_trust_find_by_key(NULL, t, other, 0), FDN_ENOTFOUND);
	OK(fdn_trust_peer(&info, t, 0));
	assert_string_equal(info.node_id, "site-a");
	assert_string_equal(info.valid_until, "");
	assert_int_equal(fdn_trust_peer(&info, t, 2), FDN_ENOTFOUND);

	assert_int_equal(fdn_trust_remove(t, "nobody"), FDN_ENOTFOUND);
	OK(fdn_trust_remove(t, "site-a"));
	OK(fdn_trust_save(t));
	fdn_trust_free(t);
	OK(fdn_trust_open(&t, path));
	assert_int_equal(fdn_trust_count(t), 1);
	fdn_trust_free(t);
	fdn_trust_free(NULL);
	fdn_buf_dispose(&pub);
	fdn_buf_dispose(&fp);
	fdn_identity_free(site);
	fdn_identity_free(coord);
}

static void test_trust_rotation(void **state)
{
	fdn_identity *old = NULL, *cur = NULL;
	fdn_trust *t = NULL;
	fdn_trust_peer_info a = FDN_TRUST_PEER_INFO_INIT, b = FDN_TRUST_PEER_INFO_INIT;
	fdn_buf pub = FDN_BUF_INIT;
	char path[512];
	/* 2026-02-01T00:00:00Z: the first second after 2026-01-31 */
	const int64_t feb1 = 1769904000;

	(void)state;
	path_of(path, sizeof(path), "rotation.json");
	OK(fdn_identity_generate(&old, "site-b"));
	OK(fdn_identity_generate(&cur, "site-b"));
	OK(fdn_trust_open(&t, path));
	OK(fdn_identity_public(&pub, old, NULL));
	assert_int_equal(fdn_trust_add(t, pub.ptr, FDN_TRUST_ROLE_SITE, "2026-1-31"),
		FDN_EINVALID);
	OK(fdn_trust_add(t, pub.ptr, FDN_TRUST_ROLE_SITE, "2026-01-31"));
	OK(fdn_identity_public(&pub, cur, NULL));
	/* one node keeps one role */
	assert_int_equal(fdn_trust_add(t, pub.ptr, FDN_TRUST_ROLE_COORDINATOR, ""),
		FDN_ECONFLICT);
	OK(fdn_trust_add(t, pub.ptr, FDN_TRUST_ROLE_SITE, ""));
	OK(fdn_trust_save(t));
	fdn_trust_free(t);
	OK(fdn_trust_open(&t, path));
	assert_int_equal(fdn_trust_count(t), 2);
	OK(fdn_trust_peer(&a, t, 0));
	OK(fdn_trust_peer(&b, t, 1));
	OK(fdn_trust_find_by_key(NULL, t, a.ed25519_public, feb1 - 1));
	assert_int_equal(fdn_trust_find_by_key(NULL, t, a.ed25519_public, feb1), FDN_EAUTH);
	OK(fdn_trust_find_by_key(NULL, t, b.ed25519_public, feb1 - 1));
	OK(fdn_trust_find_by_key(NULL, t, b.ed25519_public, feb1 + 86400 * 3650));
	OK(fdn_trust_remove(t, "site-b"));
	assert_int_equal(fdn_trust_count(t), 0);
	fdn_trust_free(t);
	fdn_buf_dispose(&pub);
	fdn_identity_free(old);
	fdn_identity_free(cur);
}

static void test_trust_malformed(void **state)
{
	fdn_trust *t = NULL;
	char path[512];
	FILE *f;

	(void)state;
	path_of(path, sizeof(path), "bad-trust.json");
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"format\":\"fednode-trust\",\"version\":1,\"peers\":[{\"node_id\":\"x\"}]}", f);
	fclose(f);
	assert_int_equal(fdn_trust_open(&t, path), FDN_EFORMAT);
	f = fopen(path, "w");
	fputs("[]", f);
	fclose(f);
	assert_int_equal(fdn_trust_open(&t, path), FDN_EFORMAT);
	assert_null(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate),
		cmocka_unit_test(test_round_trip_plain),
		cmocka_unit_test(test_round_trip_passphrase),
		cmocka_unit_test(test_empty_passphrase),
		cmocka_unit_test(test_permissions),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_public_text),
		cmocka_unit_test(test_trust_add_persist),
		cmocka_unit_test(test_trust_rotation),
		cmocka_unit_test(test_trust_malformed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
