/*
 * The audit log: an append-only chain of canonical JSON records, each
 * hashed together with its predecessor's hash, so that editing,
 * deleting, inserting or reordering any record breaks the chain; and
 * verification of the chain and of every stored file.
 *
 * A record is json_dumps(JSON_SORT_KEYS | JSON_COMPACT) of
 * {"actor", "details", "event", "seq", "time"}; its sha256 is the
 * SHA-256 of the previous record's sha256 (64 hex, "0" x 64 for seq 1)
 * immediately followed by the record text.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "registry/registry_private.h"

static const char zero_hash[] =
	"0000000000000000000000000000000000000000000000000000000000000000";

/* SHA-256(prev || record) as hex, without building the concatenation. */
static int chain_hash(char out[FDN_REGISTRY__HASH_SIZE], const char *prev, const char *record)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (!ctx)
		return fdn__error_oom();
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
		EVP_DigestUpdate(ctx, prev, strlen(prev)) == 1 &&
		EVP_DigestUpdate(ctx, record, strlen(record)) == 1 &&
		EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 32;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_REGISTRY, "SHA-256 failed");
	sodium_bin2hex(out, FDN_REGISTRY__HASH_SIZE, md, 32);
	return 0;
}

static int pending_push(fdn_registry *reg, const char *record)
{
	fdn_registry__pending *p = &reg->pending;
	char *copy;

	if (!reg->sink)
		return 0;
	if (p->count == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		char **r = fdn__reallocarray(p->records, cap, sizeof(*r));

		if (!r)
			return fdn__error_oom();
		p->records = r;
		p->cap = cap;
	}
	if (!(copy = fdn__strdup(record)))
		return fdn__error_oom();
	p->records[p->count++] = copy;
	return 0;
}

int fdn_registry__audit(fdn_registry *reg, const char *event, json_t *details)
{
	static const char last_sql[] = "SELECT seq, sha256 FROM audit ORDER BY seq DESC LIMIT 1";
	static const char insert_sql[] =
		"INSERT INTO audit (seq, record, prev_sha256, sha256) VALUES (?, ?, ?, ?)";
	char now[FDN_REGISTRY__TIME_SIZE], prev[FDN_REGISTRY__HASH_SIZE], hash[FDN_REGISTRY__HASH_SIZE];
	sqlite3_stmt *st;
	sqlite3_int64 seq = 1;
	json_t *rec = NULL;
	char *text = NULL;
	int rc;

	if (reg->tx_depth <= 0)
		return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_REGISTRY,
			"audit outside a transaction");
	if ((rc = fdn_registry__cached(reg, &st, last_sql)) < 0)
		return rc;
	memcpy(prev, zero_hash, sizeof(prev));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *h = sqlite3_column_text(st, 1);

		seq = sqlite3_column_int64(st, 0) + 1;
		snprintf(prev, sizeof(prev), "%s", h ? (const char *)h : "");
	} else if (rc != SQLITE_DONE) {
		rc = fdn_registry__sql_error(reg, rc, "audit");
		sqlite3_reset(st);
		return rc;
	}
	sqlite3_reset(st);
	fdn_registry__now(now);
	rec = json_pack("{s:I, s:s, s:s, s:s, s:o}", "seq", (json_int_t)seq, "time", now,
		"actor", reg->actor, "event", event,
		"details", details ? json_incref(details) : json_object());
	if (!rec || !(text = json_dumps(rec, JSON_SORT_KEYS | JSON_COMPACT))) {
		rc = fdn__error_oom();
		goto out;
	}
	if ((rc = chain_hash(hash, prev, text)) < 0)
		goto out;
	if ((rc = fdn_registry__cached(reg, &st, insert_sql)) < 0)
		goto out;
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, prev, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	rc = rc == SQLITE_DONE ? pending_push(reg, text) : fdn_registry__sql_error(reg, rc, "audit");
out:
	free(text);   /* jansson's allocator */
	json_decref(rec);
	return rc;
}

int fdn_registry_audit(fdn_registry *reg, const char *event, const char *details_json)
{
	json_t *d = NULL;
	json_error_t jerr;
	int rc;

	FDN__CHECK_ARG(reg, "reg");
	FDN__CHECK_ARG(event && *event && strlen(event) <= 128, "event");
	if (details_json) {
		d = json_loads(details_json, JSON_REJECT_DUPLICATES, &jerr);
		if (!d || !json_is_object(d)) {
			json_decref(d);
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_REGISTRY,
				"audit details: not a JSON object (%s)", d ? "" : jerr.text);
		}
	}
	rc = fdn_registry__audit_json(reg, event, d);
	json_decref(d);
	return rc;
}

/* --- verification -------------------------------------------------------- */

static int problem(fdn_buf *out, const char *fmt, ...) FDN__PRINTF(2, 3);
static int problem(fdn_buf *out, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (out)
		fdn_buf_set(out, msg, strlen(msg));
	return fdn__error_set(FDN_EAUTH, FDN_ERRCLASS_REGISTRY, "verify: %s", msg);
}

/* A record's own "seq" must name its row: a row moved to another seq
 * (with its hashes) is caught even where the links happen to match. */
static bool record_seq_is(const char *record, sqlite3_int64 seq)
{
	json_t *j = json_loads(record, 0, NULL);
	json_t *s = json_object_get(j, "seq");
	bool ok = json_is_integer(s) && json_integer_value(s) == seq;

	json_decref(j);
	return ok;
}

static int verify_chain(fdn_buf *out, fdn_registry *reg)
{
	sqlite3_stmt *st;
	sqlite3_int64 expect = 1;
	char prev[FDN_REGISTRY__HASH_SIZE], hash[FDN_REGISTRY__HASH_SIZE];
	int rc;

	if ((rc = fdn_registry__prepare(reg, &st,
		"SELECT seq, record, prev_sha256, sha256 FROM audit ORDER BY seq")) < 0)
		return rc;
	memcpy(prev, zero_hash, sizeof(prev));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 seq = sqlite3_column_int64(st, 0);
		const char *rec = (const char *)sqlite3_column_text(st, 1);
		const char *p = (const char *)sqlite3_column_text(st, 2);
		const char *h = (const char *)sqlite3_column_text(st, 3);

		if (seq != expect) {
			rc = problem(out, "audit record %" PRId64 " is missing (next is %" PRId64 ")",
				(int64_t)expect, (int64_t)seq);
			goto out;
		}
		if (!rec || !p || !h || strcmp(p, prev) != 0) {
			rc = problem(out, "audit record %" PRId64 ": link to the previous record broken"
				" (removed, inserted or reordered)", (int64_t)seq);
			goto out;
		}
		if ((rc = chain_hash(hash, prev, rec)) < 0)
			goto out;
		if (strcmp(hash, h) != 0 || !record_seq_is(rec, seq)) {
			rc = problem(out, "audit record %" PRId64 ": content does not match its hash"
				" (edited)", (int64_t)seq);
			goto out;
		}
		memcpy(prev, hash, sizeof(prev));
		expect++;
	}
	rc = rc == SQLITE_DONE ? 0 : fdn_registry__sql_error(reg, rc, "verify");
out:
	sqlite3_finalize(st);
	return rc;
}

static int verify_files(fdn_buf *out, fdn_registry *reg)
{
	const fdn_registry_storage *s = &reg->storage;
	fdn_buf data = FDN_BUF_INIT;
	char hash[FDN_REGISTRY__HASH_SIZE];
	sqlite3_stmt *st;
	int rc;

	if ((rc = fdn_registry__prepare(reg, &st,
		"SELECT uid, sha256 FROM instance WHERE purged = 0 ORDER BY id")) < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *uid = (const char *)sqlite3_column_text(st, 0);
		const char *want = (const char *)sqlite3_column_text(st, 1);

		rc = s->get(s->ud, want ? want : "", &data);
		if (rc == FDN_ENOTFOUND) {
			rc = problem(out, "instance %s: stored file %s is missing", uid, want);
			goto out;
		}
		if (rc < 0) {
			rc = fdn__error_callback(rc, "storage get");
			goto out;
		}
		if ((rc = fdn_registry__sha256_hex(hash, data.ptr ? data.ptr : "", data.size)) < 0)
			goto out;
		if (strcmp(hash, want) != 0) {
			rc = problem(out, "instance %s: stored file does not match its SHA-256"
				" (%s, now %s)", uid, want, hash);
			goto out;
		}
	}
	rc = rc == SQLITE_DONE ? 0 : fdn_registry__sql_error(reg, rc, "verify");
out:
	sqlite3_finalize(st);
	fdn_buf_dispose(&data);
	return rc;
}

/* Reads happen in one transaction so that the chain and the instances
 * are a single consistent snapshot while writers carry on. */
static int read_begin(fdn_registry *reg)
{
	return reg->tx_depth > 0 ? 0 : fdn_registry__exec(reg, "BEGIN");
}

static void read_end(fdn_registry *reg)
{
	if (reg->tx_depth == 0 && !sqlite3_get_autocommit(reg->db))
		sqlite3_exec(reg->db, "COMMIT", NULL, NULL, NULL);
}

int fdn_registry_verify(fdn_buf *problem_out, fdn_registry *reg)
{
	int rc;

	FDN__CHECK_ARG(reg, "reg");
	if (problem_out)
		fdn_buf__clear(problem_out);
	if ((rc = read_begin(reg)) < 0)
		return rc;
	rc = verify_chain(problem_out, reg);
	if (rc == 0)
		rc = verify_files(problem_out, reg);
	read_end(reg);
	return rc;
}

int fdn_registry_audit_export(fdn_buf *out, fdn_registry *reg, uint64_t since)
{
	sqlite3_stmt *st;
	json_t *arr = json_array();
	char *text = NULL;
	int rc;

	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(reg, "reg");
	if (!arr)
		return fdn__error_oom();
	if (since > INT64_MAX)
		since = INT64_MAX;
	rc = fdn_registry__prepare(reg, &st,
		"SELECT record, prev_sha256, sha256 FROM audit WHERE seq >= ? ORDER BY seq");
	if (rc < 0)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* Each element is the record with its two hashes added, so
		 * that the export can be checked on its own: drop "sha256"
		 * and "prev_sha256", dump with sorted keys, compact. */
		json_t *r = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);

		if (!r || !json_is_object(r)) {
			json_decref(r);
			rc = fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_REGISTRY,
				"audit record is not JSON");
			break;
		}
		json_object_set_new(r, "prev_sha256",
			json_string((const char *)sqlite3_column_text(st, 1)));
		json_object_set_new(r, "sha256",
			json_string((const char *)sqlite3_column_text(st, 2)));
		json_array_append_new(arr, r);
	}
	if (rc == SQLITE_DONE)
		rc = 0;
	else if (rc > 0)
		rc = fdn_registry__sql_error(reg, rc, "audit export");
	sqlite3_finalize(st);
	if (rc < 0)
		goto out;
	if (!(text = json_dumps(arr, JSON_SORT_KEYS | JSON_COMPACT))) {
		rc = fdn__error_oom();
		goto out;
	}
	rc = fdn_buf_set(out, text, strlen(text));
out:
	free(text);
	json_decref(arr);
	return rc;
}

int fdn_registry__audit_find(json_t **details_out, fdn_registry *reg, const char *event,
	const char *field, const char *value)
{
	sqlite3_stmt *st;
	json_t *rec = NULL;
	int rc;

	*details_out = NULL;
	rc = fdn_registry__prepare(reg, &st,
		"SELECT record FROM audit WHERE json_extract(record, '$.event') = ?1"
		" AND json_extract(record, '$.details.' || ?2) = ?3 ORDER BY seq DESC LIMIT 1");
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, event, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, field, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rec = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
		if (!rec || !json_is_object(json_object_get(rec, "details")))
			rc = fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_REGISTRY,
				"audit record is not JSON");
		else {
			*details_out = json_incref(json_object_get(rec, "details"));
			rc = 0;
		}
	} else if (rc == SQLITE_DONE) {
		rc = FDN_ENOTFOUND;
	} else {
		rc = fdn_registry__sql_error(reg, rc, "audit search");
	}
	json_decref(rec);
	sqlite3_finalize(st);
	return rc;
}

int fdn_registry__audit_json(fdn_registry *reg, const char *event, json_t *details)
{
	int rc;

	if ((rc = fdn_registry__check_writable(reg)) < 0)
		return rc;
	if ((rc = fdn_registry__tx_begin(reg)) == 0) {
		rc = fdn_registry__audit(reg, event, details);
		rc = rc < 0 ? fdn_registry__tx_rollback(reg, rc) : fdn_registry__tx_commit(reg);
	}
	return rc;
}
