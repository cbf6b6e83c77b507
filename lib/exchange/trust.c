/*
 * The trust store: the peers a node knows, kept in a JSON file.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "exchange_private.h"

#define TRUST_FORMAT "fednode-trust"
#define TRUST_VERSION 1

typedef struct entry {
	char node_id[FDN_NODE_ID_MAX + 1];
	int role;
	char valid_until[FDN_EXCHANGE__DATE_SIZE]; /* "" for none */
	int64_t end;                               /* first invalid second; 0: none */
	char fingerprint[FDN_EXCHANGE__FINGERPRINT_SIZE];
	unsigned char ed25519[FDN_PUBLIC_KEY_BYTES];
	unsigned char x25519[FDN_PUBLIC_KEY_BYTES];
} entry;

struct fdn_trust {
	char *path;
	entry *entries;
	size_t count;
	size_t cap;
};

static const char *role_name(int role)
{
	switch (role) {
	case FDN_TRUST_ROLE_SITE: return "site";
	case FDN_TRUST_ROLE_COORDINATOR: return "coordinator";
	default: return NULL;
	}
}

static int role_from_name(const char *name)
{
	if (name && strcmp(name, "site") == 0)
		return FDN_TRUST_ROLE_SITE;
	if (name && strcmp(name, "coordinator") == 0)
		return FDN_TRUST_ROLE_COORDINATOR;
	return FDN_TRUST_ROLE_INVALID;
}

/* Appends after the conflict checks; FDN_ECONFLICT names the reason. */
static int insert(fdn_trust *t, const fdn_exchange__public *pub, int role)
{
	entry *e;

	for (size_t i = 0; i < t->count; i++) {
		e = &t->entries[i];
		if (sodium_memcmp(e->ed25519, pub->ed25519, FDN_PUBLIC_KEY_BYTES) == 0 ||
		    sodium_memcmp(e->x25519, pub->x25519, FDN_PUBLIC_KEY_BYTES) == 0)
			return fdn__error_set(FDN_ECONFLICT, FDN_ERRCLASS_EXCHANGE,
				"a key of '%s' is already trusted (as node '%s')",
				pub->node_id, e->node_id);
		if (strcmp(e->node_id, pub->node_id) == 0 && e->role != role)
			return fdn__error_set(FDN_ECONFLICT, FDN_ERRCLASS_EXCHANGE,
				"node '%s' is already trusted as a %s", pub->node_id,
				role_name(e->role));
	}
	if (t->count == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 8;
		entry *n = fdn__reallocarray(t->entries, cap, sizeof(*n));
		if (!n)
			return fdn__error_oom();
		t->entries = n;
		t->cap = cap;
	}
	e = &t->entries[t->count];
	memset(e, 0, sizeof(*e));
	memcpy(e->node_id, pub->node_id, sizeof(e->node_id));
	e->role = role;
	memcpy(e->valid_until, pub->valid_until, sizeof(e->valid_until));
	if (e->valid_until[0])
		fdn_exchange__date_end(&e->end, e->valid_until);
	memcpy(e->ed25519, pub->ed25519, FDN_PUBLIC_KEY_BYTES);
	memcpy(e->x25519, pub->x25519, FDN_PUBLIC_KEY_BYTES);
	fdn_exchange__fingerprint(e->fingerprint, e->ed25519, e->x25519);
	t->count++;
	return 0;
}

int fdn_trust_add(fdn_trust *trust, const char *public_text, int role,
	const char *valid_until)
{
	fdn_exchange__public pub;
	int64_t end;
	int rc;

	FDN__CHECK_ARG(trust, "trust");
	FDN__CHECK_ARG(public_text, "public_text");
	if (!role_name(role))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_EXCHANGE,
			"unknown trust role %d", role);
	if (valid_until && *valid_until && !fdn_exchange__date_end(&end, valid_until))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_EXCHANGE,
			"valid_until '%s' is not a date YYYY-MM-DD", valid_until);
	if ((rc = fdn_exchange__public_parse(&pub, public_text)) != 0)
		return rc;
	if (valid_until && *valid_until)
		memcpy(pub.valid_until, valid_until, FDN_EXCHANGE__DATE_SIZE);
	return insert(trust, &pub, role);
}

int fdn_trust_remove(fdn_trust *trust, const char *node_id)
{
	size_t kept = 0;

	FDN__CHECK_ARG(trust, "trust");
	FDN__CHECK_ARG(node_id, "node_id");
	for (size_t i = 0; i < trust->count; i++)
		if (strcmp(trust->entries[i].node_id, node_id) != 0)
			trust->entries[kept++] = trust->entries[i];
	if (kept == trust->count)
		return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_EXCHANGE,
			"node '%s' is not in the trust store", node_id);
	trust->count = kept;
	return 0;
}

size_t fdn_trust_count(const fdn_trust *trust)
{
	return trust ? trust->count : 0;
}

int fdn_trust_peer(fdn_trust_peer_info *out, const fdn_trust *trust, size_t index)
{
	const entry *e;

	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(trust, "trust");
	FDN__CHECK_VERSION(out, FDN_TRUST_PEER_INFO_VERSION, "fdn_trust_peer_info");
	if (index >= trust->count)
		return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_EXCHANGE,
			"trust entry %zu out of range (%zu entries)", index, trust->count);
	e = &trust->entries[index];
	out->node_id = e->node_id;
	out->role = e->role;
	out->fingerprint = e->fingerprint;
	out->valid_until = e->valid_until;
	memcpy(out->ed25519_public, e->ed25519, FDN_PUBLIC_KEY_BYTES);
	memcpy(out->x25519_public, e->x25519, FDN_PUBLIC_KEY_BYTES);
	return 0;
}

int fdn_trust_find_by_key(size_t *index_out, const fdn_trust *trust,
	const unsigned char *ed25519_public, int64_t when)
{
	FDN__CHECK_ARG(trust, "trust");
	FDN__CHECK_ARG(ed25519_public, "ed25519_public");
	for (size_t i = 0; i < trust->count; i++) {
		const entry *e = &trust->entries[i];
		if (sodium_memcmp(e->ed25519, ed25519_public, FDN_PUBLIC_KEY_BYTES) != 0)
			continue;
		if (e->end != 0 && when >= e->end)
			return fdn__error_set(FDN_EAUTH, FDN_ERRCLASS_EXCHANGE,
				"key %s of '%s' expired after %s", e->fingerprint,
				e->node_id, e->valid_until);
		if (index_out)
			*index_out = i;
		return 0;
	}
	return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_EXCHANGE,
		"the key is not in the trust store");
}

size_t fdn_trust__valid_keys(const fdn_trust *trust, const char *node_id,
	int64_t when, fdn_exchange__key *out, size_t max, size_t *known)
{
	size_t n = 0;

	*known = 0;
	for (size_t i = 0; trust && i < trust->count; i++) {
		const entry *e = &trust->entries[i];
		if (strcmp(e->node_id, node_id) != 0)
			continue;
		++*known;
		if (e->end != 0 && when >= e->end)
			continue;
		if (n < max) {
			memcpy(out[n].ed25519, e->ed25519, FDN_PUBLIC_KEY_BYTES);
			memcpy(out[n].x25519, e->x25519, FDN_PUBLIC_KEY_BYTES);
		}
		n++;
	}
	return n;
}

/* --- the file -------------------------------------------------------------- */

static json_t *to_json(const fdn_trust *t)
{
	char b64[sodium_base64_ENCODED_LEN(FDN_PUBLIC_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL)];
	char b64x[sizeof(b64)];
	json_t *root, *peers, *p;

	peers = json_array();
	root = json_pack("{s:s, s:i, s:o}", "format", TRUST_FORMAT, "version",
		TRUST_VERSION, "peers", peers);
	if (!root)
		return NULL;
	for (size_t i = 0; i < t->count; i++) {
		const entry *e = &t->entries[i];
		sodium_bin2base64(b64, sizeof(b64), e->ed25519, FDN_PUBLIC_KEY_BYTES,
			sodium_base64_VARIANT_ORIGINAL);
		sodium_bin2base64(b64x, sizeof(b64x), e->x25519, FDN_PUBLIC_KEY_BYTES,
			sodium_base64_VARIANT_ORIGINAL);
		p = json_pack("{s:s, s:s, s:s, s:s, s:s}", "node_id", e->node_id,
			"role", role_name(e->role), "ed25519", b64, "x25519", b64x,
			"valid_until", e->valid_until);
		if (!p || json_array_append_new(peers, p) != 0) {
			json_decref(root);
			return NULL;
		}
	}
	return root;
}

int fdn_trust_save(const fdn_trust *trust)
{
	fdn_atomic_file af;
	json_t *root;
	char *text;
	int rc;

	FDN__CHECK_ARG(trust, "trust");
	root = to_json(trust);
	text = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
	json_decref(root);
	if (!text)
		return fdn__error_oom();
	rc = fdn__atomic_open(&af, trust->path);
	if (rc == 0) {
		rc = fdn__atomic_write(&af, text, strlen(text));
		if (rc == 0)
			rc = fdn__atomic_write(&af, "\n", 1);
		if (rc == 0)
			rc = fdn__atomic_commit(&af);
		if (rc != 0)
			fdn__atomic_abort(&af);
	}
	free(text); /* jansson's allocator */
	return rc;
}

static int load_peer(fdn_trust *t, json_t *p, size_t i)
{
	fdn_exchange__public pub;
	json_t *copy;
	const char *role_s, *vu;
	int role, rc;

	if (!json_is_object(p))
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_EXCHANGE,
			"'%s': peer %zu is not an object", t->path, i);
	role_s = json_string_value(json_object_get(p, "role"));
	role = role_from_name(role_s);
	vu = json_string_value(json_object_get(p, "valid_until"));
	if (role == FDN_TRUST_ROLE_INVALID || !vu || json_object_size(p) != 5)
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_EXCHANGE,
			"'%s': peer %zu is malformed", t->path, i);
	/* Reuse the public-text parser for the id, keys and date. */
	copy = json_pack("{s:s, s:i, s:O, s:O, s:O}", "format", "fednode-identity",
		"version", 1, "node_id", json_object_get(p, "node_id"),
		"ed25519", json_object_get(p, "ed25519"),
		"x25519", json_object_get(p, "x25519"));
	if (!copy)
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_EXCHANGE,
			"'%s': peer %zu is malformed", t->path, i);
	if (*vu && json_object_set_new(copy, "valid_until", json_string(vu)) != 0) {
		json_decref(copy);
		return fdn__error_oom();
	}
	{
		char *text = json_dumps(copy, JSON_COMPACT);
		json_decref(copy);
		if (!text)
			return fdn__error_oom();
		rc = fdn_exchange__public_parse(&pub, text);
		free(text);
	}
	if (rc == 0)
		rc = insert(t, &pub, role);
	if (rc != 0 && rc != FDN_ERROR)
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_EXCHANGE,
			"'%s': peer %zu: %s", t->path, i, fdn_error_last()->message);
	return rc;
}

static int load(fdn_trust *t, FILE *f)
{
	json_error_t jerr;
	json_t *root, *peers;
	const char *fmt;
	int rc = 0;

	root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_EXCHANGE,
			"'%s' is not valid JSON: line %d: %s", t->path, jerr.line, jerr.text);
	fmt = json_string_value(json_object_get(root, "format"));
	peers = json_object_get(root, "peers");
	if (!fmt || strcmp(fmt, TRUST_FORMAT) != 0 || !json_is_array(peers) ||
	    !json_is_integer(json_object_get(root, "version")))
		rc = fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_EXCHANGE,
			"'%s' is not a fednode trust store", t->path);
	else if (json_integer_value(json_object_get(root, "version")) != TRUST_VERSION)
		rc = fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_EXCHANGE,
			"'%s': unsupported trust store version", t->path);
	for (size_t i = 0; rc == 0 && i < json_array_size(peers); i++)
		rc = load_peer(t, json_array_get(peers, i), i);
	json_decref(root);
	return rc;
}

int fdn_trust_open(fdn_trust **out, const char *path)
{
	fdn_trust *t;
	FILE *f;
	int rc;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	FDN__CHECK_ARG(path, "path");
	if ((rc = fdn__check_init()) != 0)
		return rc;
	t = fdn__calloc(1, sizeof(*t));
	if (!t || !(t->path = fdn__strdup(path))) {
		fdn__free(t);
		return fdn__error_oom();
	}
	f = fopen(path, "rb");
	if (f) {
		rc = load(t, f);
		fclose(f);
	} else if (errno == ENOENT) {
		rc = fdn_trust_save(t);
	} else {
		rc = fdn__error_os(errno, "cannot open trust store '%s'", path);
	}
	if (rc != 0) {
		fdn_trust_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

void fdn_trust_free(fdn_trust *trust)
{
	if (!trust)
		return;
	fdn__free(trust->entries);
	fdn__free(trust->path);
	fdn__free(trust);
}
