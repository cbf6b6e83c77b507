/*
 * Node identities: generation, key files, public text, fingerprints.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "exchange_private.h"

#define BAD(...) fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_EXCHANGE, __VA_ARGS__)

/* Key file layout: see doc/exchange.md. */
#define KF_MAGIC "FDNIDKEY"
#define KF_MAGIC_LEN 8
#define KF_VERSION 1
#define KF_PLAIN 0
#define KF_ARGON2ID_XCHACHA 1
#define KF_FIXED 12                     /* magic, version, kind, id length, 0 */
#define SEED_BYTES 32                   /* Ed25519 seed, then X25519 secret */
#define PLAIN_SECRET (SEED_BYTES + crypto_box_SECRETKEYBYTES)
#define KDF_BYTES (crypto_pwhash_SALTBYTES + 8 + 8 + 4)
#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define KF_MAX (KF_FIXED + FDN_NODE_ID_MAX + 2 * FDN_PUBLIC_KEY_BYTES + \
	KDF_BYTES + NONCE_BYTES + PLAIN_SECRET + TAG_BYTES)

/* The secret half: Ed25519 secret key (seed || public), X25519 secret. */
#define SECRET_BYTES (crypto_sign_SECRETKEYBYTES + crypto_box_SECRETKEYBYTES)

struct fdn_identity {
	char node_id[FDN_NODE_ID_MAX + 1];
	unsigned char ed_pk[FDN_PUBLIC_KEY_BYTES];
	unsigned char x_pk[FDN_PUBLIC_KEY_BYTES];
	/* sodium_malloc'd, PROT_NONE while not in use. */
	unsigned char *secret;
};

size_t fdn_node_id_max(void)
{
	return FDN_NODE_ID_MAX;
}

size_t fdn_public_key_bytes(void)
{
	return FDN_PUBLIC_KEY_BYTES;
}

/* --- shared helpers ---------------------------------------------------- */

bool fdn_exchange__node_id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > FDN_NODE_ID_MAX || id[0] == '.' || id[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

bool fdn_exchange__date_end(int64_t *out, const char *date)
{
	static const unsigned mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y = 0, m, d;

	if (!date || strlen(date) != 10 || date[4] != '-' || date[7] != '-')
		return false;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (date[i] < '0' || date[i] > '9'))
			return false;
	for (int i = 0; i < 4; i++)
		y = y * 10 + (unsigned)(date[i] - '0');
	m = (unsigned)(date[5] - '0') * 10 + (unsigned)(date[6] - '0');
	d = (unsigned)(date[8] - '0') * 10 + (unsigned)(date[9] - '0');
	if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return false;
	if (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return false;
	*out = (days_from_civil(y, m, d) + 1) * 86400;
	return true;
}

void fdn_exchange__fingerprint(char out[FDN_EXCHANGE__FINGERPRINT_SIZE],
	const unsigned char ed[FDN_PUBLIC_KEY_BYTES],
	const unsigned char x[FDN_PUBLIC_KEY_BYTES])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char h[FDN_EXCHANGE__KEY_ID_BYTES];
	size_t o = 0;

	fdn_exchange__key_id(h, ed, x);
	for (size_t i = 0; i < sizeof(h); i++) {
		if (i > 0 && i % 2 == 0)
			out[o++] = ':';
		out[o++] = hex[h[i] >> 4];
		out[o++] = hex[h[i] & 15];
	}
	out[o] = '\0';
}

void fdn_exchange__key_id(unsigned char out[FDN_EXCHANGE__KEY_ID_BYTES],
	const unsigned char ed[FDN_PUBLIC_KEY_BYTES],
	const unsigned char x[FDN_PUBLIC_KEY_BYTES])
{
	unsigned char both[2 * FDN_PUBLIC_KEY_BYTES];

	memcpy(both, ed, FDN_PUBLIC_KEY_BYTES);
	memcpy(both + FDN_PUBLIC_KEY_BYTES, x, FDN_PUBLIC_KEY_BYTES);
	crypto_generichash(out, FDN_EXCHANGE__KEY_ID_BYTES, both, sizeof(both), NULL, 0);
}

bool fdn_exchange__key_from_b64(unsigned char out[FDN_PUBLIC_KEY_BYTES],
	const char *b64)
{
	size_t len = 0;
	const char *end = NULL;

	if (!b64 || sodium_base642bin(out, FDN_PUBLIC_KEY_BYTES, b64, strlen(b64),
			NULL, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0)
		return false;
	return len == FDN_PUBLIC_KEY_BYTES && end && *end == '\0';
}

static const char *get_str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int fdn_exchange__public_parse(fdn_exchange__public *out, const char *text)
{
	json_error_t jerr;
	json_t *root, *ver;
	const char *s, *key;
	json_t *v;
	int64_t end;
	int rc = 0;

	root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!root || !json_is_object(root)) {
		json_decref(root);
		return BAD("public identity text is not a JSON object");
	}
	memset(out, 0, sizeof(*out));
	json_object_foreach(root, key, v) {
		if (strcmp(key, "format") && strcmp(key, "version") &&
		    strcmp(key, "node_id") && strcmp(key, "ed25519") &&
		    strcmp(key, "x25519") && strcmp(key, "valid_until")) {
			rc = BAD("public identity text: unknown member '%s'", key);
			goto done;
		}
	}
	s = get_str(root, "format");
	ver = json_object_get(root, "version");
	if (!s || strcmp(s, "fednode-identity") != 0 || !json_is_integer(ver)) {
		rc = BAD("public identity text: not a fednode-identity");
		goto done;
	}
	if (json_integer_value(ver) != 1) {
		rc = fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_EXCHANGE,
			"public identity text: unsupported version %lld",
			(long long)json_integer_value(ver));
		goto done;
	}
	s = get_str(root, "node_id");
	if (!fdn_exchange__node_id_ok(s)) {
		rc = BAD("public identity text: missing or invalid node_id");
		goto done;
	}
	memcpy(out->node_id, s, strlen(s) + 1);
	if (!fdn_exchange__key_from_b64(out->ed25519, get_str(root, "ed25519")) ||
	    !fdn_exchange__key_from_b64(out->x25519, get_str(root, "x25519"))) {
		rc = BAD("public identity text of '%s': missing or invalid key", out->node_id);
		goto done;
	}
	if (json_object_get(root, "valid_until")) {
		s = get_str(root, "valid_until");
		if (!fdn_exchange__date_end(&end, s)) {
			rc = BAD("public identity text of '%s': valid_until is not a date YYYY-MM-DD",
				out->node_id);
			goto done;
		}
		memcpy(out->valid_until, s, FDN_EXCHANGE__DATE_SIZE);
	}
done:
	json_decref(root);
	return rc;
}

/* --- the identity object ------------------------------------------------ */

static void lock(const fdn_identity *id)
{
	sodium_mprotect_noaccess(id->secret);
}

static void unlock_ro(const fdn_identity *id)
{
	sodium_mprotect_readonly(id->secret);
}

static int identity_alloc(fdn_identity **out, const char *node_id)
{
	fdn_identity *id;

	id = fdn__calloc(1, sizeof(*id));
	if (!id)
		return fdn__error_oom();
	id->secret = sodium_malloc(SECRET_BYTES);
	if (!id->secret) {
		fdn__free(id);
		return fdn__error_oom();
	}
	memcpy(id->node_id, node_id, strlen(node_id) + 1);
	*out = id;
	return 0;
}

/* Fills keys from the 64 bytes seed || x25519 secret; secret is writable. */
static void identity_from_seeds(fdn_identity *id, const unsigned char *seeds)
{
	crypto_sign_seed_keypair(id->ed_pk, id->secret, seeds);
	memcpy(id->secret + crypto_sign_SECRETKEYBYTES, seeds + SEED_BYTES,
		crypto_box_SECRETKEYBYTES);
	crypto_scalarmult_base(id->x_pk, id->secret + crypto_sign_SECRETKEYBYTES);
}

int fdn_identity_generate(fdn_identity **out, const char *node_id)
{
	fdn_identity *id = NULL;
	int rc;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	if ((rc = fdn__check_init()) != 0)
		return rc;
	if (!fdn_exchange__node_id_ok(node_id))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_EXCHANGE,
			"invalid node id: 1 to %d characters of [A-Za-z0-9._-], not starting with '.' or '-'",
			FDN_NODE_ID_MAX);
	if ((rc = identity_alloc(&id, node_id)) != 0)
		return rc;
	crypto_sign_keypair(id->ed_pk, id->secret);
	crypto_box_keypair(id->x_pk, id->secret + crypto_sign_SECRETKEYBYTES);
	lock(id);
	*out = id;
	return 0;
}

void fdn_identity_free(fdn_identity *id)
{
	if (!id)
		return;
	sodium_free(id->secret); /* wipes it */
	sodium_memzero(id, sizeof(*id));
	fdn__free(id);
}

const char *fdn_identity_node_id(const fdn_identity *id)
{
	return id ? id->node_id : NULL;
}

/* --- what envelopes need: the secret keys are used here, never handed out -- */

const unsigned char *fdn_identity__ed25519_public(const fdn_identity *id)
{
	return id->ed_pk;
}

const unsigned char *fdn_identity__x25519_public(const fdn_identity *id)
{
	return id->x_pk;
}

void fdn_identity__sign(unsigned char sig[crypto_sign_BYTES], const fdn_identity *id,
	const unsigned char *msg, size_t len)
{
	unlock_ro(id);
	crypto_sign_detached(sig, NULL, msg, len, id->secret);
	lock(id);
}

int fdn_identity__unseal(unsigned char *out, const unsigned char *sealed, size_t len,
	const fdn_identity *id)
{
	int rc;

	unlock_ro(id);
	rc = crypto_box_seal_open(out, sealed, len, id->x_pk,
		id->secret + crypto_sign_SECRETKEYBYTES);
	lock(id);
	return rc;
}

int fdn_identity_fingerprint(fdn_buf *out, const fdn_identity *id)
{
	char fp[FDN_EXCHANGE__FINGERPRINT_SIZE];

	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(id, "id");
	fdn_exchange__fingerprint(fp, id->ed_pk, id->x_pk);
	fdn_buf__clear(out);
	return fdn_buf__puts(out, fp);
}

int fdn_identity_public(fdn_buf *out, const fdn_identity *id, const char *valid_until)
{
	char ed[sodium_base64_ENCODED_LEN(FDN_PUBLIC_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL)];
	char x[sizeof(ed)];
	json_t *root;
	char *text;
	int64_t end;
	int rc;

	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(id, "id");
	if (valid_until && *valid_until && !fdn_exchange__date_end(&end, valid_until))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_EXCHANGE,
			"valid_until '%s' is not a date YYYY-MM-DD", valid_until);
	sodium_bin2base64(ed, sizeof(ed), id->ed_pk, FDN_PUBLIC_KEY_BYTES,
		sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(x, sizeof(x), id->x_pk, FDN_PUBLIC_KEY_BYTES,
		sodium_base64_VARIANT_ORIGINAL);
	root = json_pack("{s:s, s:i, s:s, s:s, s:s}", "format", "fednode-identity",
		"version", 1, "node_id", id->node_id, "ed25519", ed, "x25519", x);
	if (root && valid_until && *valid_until &&
	    json_object_set_new(root, "valid_until", json_string(valid_until)) != 0) {
		json_decref(root);
		root = NULL;
	}
	text = root ? json_dumps(root, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
	json_decref(root);
	if (!text)
		return fdn__error_oom();
	fdn_buf__clear(out);
	rc = fdn_buf__puts(out, text);
	free(text); /* jansson's allocator */
	return rc;
}

/* --- key files ----------------------------------------------------------- */

static void put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Writes the header (magic .. public keys) at @p p; returns its length. */
static size_t put_header(unsigned char *p, const fdn_identity *id, int kind)
{
	size_t n = strlen(id->node_id), o = 0;

	memcpy(p, KF_MAGIC, KF_MAGIC_LEN);
	o = KF_MAGIC_LEN;
	p[o++] = KF_VERSION;
	p[o++] = (unsigned char)kind;
	p[o++] = (unsigned char)n;
	p[o++] = 0;
	memcpy(p + o, id->node_id, n);
	o += n;
	memcpy(p + o, id->ed_pk, FDN_PUBLIC_KEY_BYTES);
	o += FDN_PUBLIC_KEY_BYTES;
	memcpy(p + o, id->x_pk, FDN_PUBLIC_KEY_BYTES);
	return o + FDN_PUBLIC_KEY_BYTES;
}

/* The 64 bytes that are stored: Ed25519 seed, X25519 secret. */
static void get_seeds(unsigned char *seeds, const fdn_identity *id)
{
	unlock_ro(id);
	crypto_sign_ed25519_sk_to_seed(seeds, id->secret);
	memcpy(seeds + SEED_BYTES, id->secret + crypto_sign_SECRETKEYBYTES,
		crypto_box_SECRETKEYBYTES);
	lock(id);
}

static int derive_key(unsigned char *key, const char *passphrase,
	const unsigned char *salt, uint64_t ops, uint64_t mem)
{
	if (crypto_pwhash(key, crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
			passphrase, strlen(passphrase), salt, ops, (size_t)mem,
			crypto_pwhash_ALG_ARGON2ID13) != 0)
		return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_NOMEMORY,
			"key derivation failed (out of memory)");
	return 0;
}

/* Builds the whole key file in @p file (guarded memory); sets *len. */
static int build_file(unsigned char *file, size_t *len, const fdn_identity *id,
	const char *passphrase)
{
	unsigned char *seeds = file + KF_MAX; /* scratch after the file */
	unsigned char *key = seeds + PLAIN_SECRET;
	unsigned char *p, *nonce;
	size_t o;
	int rc;

	o = put_header(file, id, passphrase ? KF_ARGON2ID_XCHACHA : KF_PLAIN);
	get_seeds(seeds, id);
	if (!passphrase) {
		memcpy(file + o, seeds, PLAIN_SECRET);
		*len = o + PLAIN_SECRET;
		return 0;
	}
	p = file + o;
	randombytes_buf(p, crypto_pwhash_SALTBYTES);
	put_le(p + crypto_pwhash_SALTBYTES, crypto_pwhash_OPSLIMIT_INTERACTIVE, 8);
	put_le(p + crypto_pwhash_SALTBYTES + 8, crypto_pwhash_MEMLIMIT_INTERACTIVE, 8);
	put_le(p + crypto_pwhash_SALTBYTES + 16, crypto_pwhash_ALG_ARGON2ID13, 4);
	nonce = p + KDF_BYTES;
	randombytes_buf(nonce, NONCE_BYTES);
	o += KDF_BYTES + NONCE_BYTES;
	rc = derive_key(key, passphrase, p, crypto_pwhash_OPSLIMIT_INTERACTIVE,
		crypto_pwhash_MEMLIMIT_INTERACTIVE);
	if (rc != 0)
		return rc;
	/* Everything before the ciphertext is additional data: the node id
	 * and public keys cannot be swapped under the sealed secret. */
	crypto_aead_xchacha20poly1305_ietf_encrypt(file + o, NULL, seeds,
		PLAIN_SECRET, file, o, NULL, nonce, key);
	*len = o + PLAIN_SECRET + TAG_BYTES;
	return 0;
}

/* link() instead of rename(): it fails when the name exists, so a key
 * file is never replaced, not even by a concurrent save. */
static int publish(fdn_atomic_file *af)
{
	if (fsync(af->fd) != 0)
		return fdn__error_os(errno, "cannot flush '%s'", af->tmp_path);
	if (link(af->tmp_path, af->final_path) != 0) {
		if (errno == EEXIST)
			return fdn__error_set(FDN_ECONFLICT, FDN_ERRCLASS_EXCHANGE,
				"key file '%s' already exists: it is never overwritten",
				af->final_path);
		return fdn__error_os(errno, "cannot create '%s'", af->final_path);
	}
	return 0;
}

#define WORK_BYTES (KF_MAX + PLAIN_SECRET + crypto_aead_xchacha20poly1305_ietf_KEYBYTES)

int fdn_identity_save(const fdn_identity *id, const char *path, const char *passphrase)
{
	fdn_atomic_file af;
	unsigned char *work;
	size_t len = 0;
	int rc;

	FDN__CHECK_ARG(id, "id");
	FDN__CHECK_ARG(path, "path");
	if (passphrase && !*passphrase)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_EXCHANGE,
			"an empty passphrase protects nothing: pass NULL for a plain key file");
	if (access(path, F_OK) == 0)
		return fdn__error_set(FDN_ECONFLICT, FDN_ERRCLASS_EXCHANGE,
			"key file '%s' already exists: it is never overwritten", path);
	work = sodium_malloc(WORK_BYTES);
	if (!work)
		return fdn__error_oom();
	rc = build_file(work, &len, id, passphrase);
	if (rc == 0)
		rc = fdn__atomic_open_mode(&af, path, 0600);
	if (rc == 0) {
		rc = fdn__atomic_write(&af, work, len);
		if (rc == 0)
			rc = publish(&af);
		fdn__atomic_abort(&af);
		if (rc == 0)
			rc = fdn__fsync_dir(path);
	}
	sodium_free(work);
	return rc;
}

static int check_file(int fd, const char *path, size_t *size)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return fdn__error_os(errno, "cannot stat '%s'", path);
	if (!S_ISREG(st.st_mode))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_EXCHANGE,
			"key file '%s' is not a regular file", path);
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_EXCHANGE,
			"key file '%s' is accessible by group or others: run chmod 600 on it",
			path);
	if (st.st_size < KF_FIXED || st.st_size > KF_MAX)
		return BAD("'%s' is not an identity key file (size %lld)", path,
			(long long)st.st_size);
	*size = (size_t)st.st_size;
	return 0;
}

/* Decrypts or copies the 64 stored secret bytes into @p seeds. */
static int open_secret(unsigned char *seeds, unsigned char *file, size_t len,
	size_t o, int kind, const char *passphrase, const char *path)
{
	unsigned char *key = seeds + PLAIN_SECRET;
	const unsigned char *kdf = file + o;
	uint64_t ops, mem, alg;
	int rc;

	if (kind == KF_PLAIN) {
		if (passphrase)
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_EXCHANGE,
				"key file '%s' is not passphrase-protected", path);
		if (len != o + PLAIN_SECRET)
			return BAD("key file '%s' has the wrong size", path);
		memcpy(seeds, file + o, PLAIN_SECRET);
		return 0;
	}
	if (len != o + KDF_BYTES + NONCE_BYTES + PLAIN_SECRET + TAG_BYTES)
		return BAD("key file '%s' has the wrong size", path);
	ops = get_le(kdf + crypto_pwhash_SALTBYTES, 8);
	mem = get_le(kdf + crypto_pwhash_SALTBYTES + 8, 8);
	alg = get_le(kdf + crypto_pwhash_SALTBYTES + 16, 4);
	/* Bounded so that a crafted file cannot ask for a gigabyte-hour. */
	if (alg != crypto_pwhash_ALG_ARGON2ID13 ||
	    ops < crypto_pwhash_OPSLIMIT_MIN || ops > crypto_pwhash_OPSLIMIT_SENSITIVE ||
	    mem < crypto_pwhash_MEMLIMIT_MIN || mem > crypto_pwhash_MEMLIMIT_SENSITIVE)
		return BAD("key file '%s': unsupported key-derivation parameters", path);
	if (!passphrase)
		return fdn__error_set(FDN_EAUTH, FDN_ERRCLASS_EXCHANGE,
			"key file '%s' is passphrase-protected: a passphrase is required", path);
	if ((rc = derive_key(key, passphrase, kdf, ops, mem)) != 0)
		return rc;
	o += KDF_BYTES;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(seeds, NULL, NULL,
			file + o + NONCE_BYTES, PLAIN_SECRET + TAG_BYTES,
			file, o + NONCE_BYTES, file + o, key) != 0)
		return fdn__error_set(FDN_EAUTH, FDN_ERRCLASS_EXCHANGE,
			"key file '%s': wrong passphrase (or the file was altered)", path);
	return 0;
}

static int parse_file(fdn_identity **out, unsigned char *file, size_t len,
	const char *passphrase, const char *path)
{
	unsigned char *seeds = file + KF_MAX;
	char node_id[FDN_NODE_ID_MAX + 1];
	fdn_identity *id = NULL;
	size_t n, o;
	int kind, rc;

	if (memcmp(file, KF_MAGIC, KF_MAGIC_LEN) != 0)
		return BAD("'%s' is not an identity key file", path);
	if (file[8] != KF_VERSION)
		return fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_EXCHANGE,
			"key file '%s' has unsupported version %u", path, file[8]);
	kind = file[9];
	n = file[10];
	if ((kind != KF_PLAIN && kind != KF_ARGON2ID_XCHACHA) || file[11] != 0 ||
	    n == 0 || n > FDN_NODE_ID_MAX || len < KF_FIXED + n + 2 * FDN_PUBLIC_KEY_BYTES)
		return BAD("key file '%s' has a malformed header", path);
	memcpy(node_id, file + KF_FIXED, n);
	node_id[n] = '\0';
	if (!fdn_exchange__node_id_ok(node_id))
		return BAD("key file '%s' holds an invalid node id", path);
	o = KF_FIXED + n + 2 * FDN_PUBLIC_KEY_BYTES;
	if ((rc = open_secret(seeds, file, len, o, kind, passphrase, path)) != 0)
		return rc;
	if ((rc = identity_alloc(&id, node_id)) != 0)
		return rc;
	identity_from_seeds(id, seeds);
	lock(id);
	if (sodium_memcmp(id->ed_pk, file + KF_FIXED + n, FDN_PUBLIC_KEY_BYTES) != 0 ||
	    sodium_memcmp(id->x_pk, file + KF_FIXED + n + FDN_PUBLIC_KEY_BYTES,
		    FDN_PUBLIC_KEY_BYTES) != 0) {
		fdn_identity_free(id);
		return BAD("key file '%s' is corrupt: its secret and public keys do not match",
			path);
	}
	*out = id;
	return 0;
}

int fdn_identity_load(fdn_identity **out, const char *path, const char *passphrase)
{
	unsigned char *work;
	size_t size = 0, got = 0;
	int fd, rc;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	FDN__CHECK_ARG(path, "path");
	if ((rc = fdn__check_init()) != 0)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_EXCHANGE,
				"no key file '%s'", path);
		if (errno == ELOOP)
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_EXCHANGE,
				"key file '%s' is a symbolic link", path);
		return fdn__error_os(errno, "cannot open key file '%s'", path);
	}
	work = sodium_malloc(WORK_BYTES);
	if (!work) {
		close(fd);
		return fdn__error_oom();
	}
	rc = check_file(fd, path, &size);
	if (rc == 0)
		rc = fdn__pread_all(fd, work, size, 0, &got, path);
	if (rc == 0 && got != size)
		rc = BAD("key file '%s' changed while it was read", path);
	if (rc == 0)
		rc = parse_file(out, work, size, passphrase, path);
	sodium_free(work);
	close(fd);
	return rc;
}
