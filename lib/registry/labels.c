/*
 * Labels: key/value annotations on a study, series or instance, the
 * ground truth and tags that cohort filters select on.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <string.h>

#include "registry/registry_private.h"

#define LABEL_KEY_MAX 64
#define LABEL_VALUE_MAX 4096

/* Keys appear in filters as label.<key>: only a plain, unambiguous
 * alphabet can be parsed there. */
static bool key_valid(const char *key)
{
	size_t n = strlen(key), i;

	if (n == 0 || n > LABEL_KEY_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char c = key[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF)
 * and no NUL: values go to JSON manifests and audit records. */
static bool utf8_valid(const unsigned char *s)
{
	while (*s) {
		unsigned int c = *s, n, cp, i;

		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 0x1f; }
		else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 0x0f; }
		else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; }
		else return false;
		for (i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		s += n + 1;
	}
	return true;
}

static const char *const level_sql[] = {
	"SELECT id FROM study WHERE uid = ?",
	"SELECT id FROM series WHERE uid = ?",
	"SELECT id FROM instance WHERE uid = ?",
};
static const char *const level_name[] = { "study", "series", "instance" };

static int find_object(fdn_registry *reg, int level, const char *uid, sqlite3_int64 *id)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = fdn_registry__cached(reg, &st, level_sql[level])) < 0)
		return rc;
	sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_REGISTRY,
			"no %s with UID %s", level_name[level], uid);
	} else {
		rc = fdn_registry__sql_error(reg, rc, "label lookup");
	}
	sqlite3_reset(st);
	return rc;
}

static int apply(fdn_registry *reg, int level, const char *uid, const char *key,
	const char *value)
{
	static const char set_sql[] =
		"INSERT INTO label (level, object_id, key, value) VALUES (?, ?, ?, ?)"
		" ON CONFLICT (level, object_id, key) DO UPDATE SET value = excluded.value";
	static const char del_sql[] =
		"DELETE FROM label WHERE level = ? AND object_id = ? AND key = ?";
	sqlite3_int64 id = 0;
	sqlite3_stmt *st;
	json_t *d;
	int rc;

	if ((rc = find_object(reg, level, uid, &id)) < 0)
		return rc;
	if ((rc = fdn_registry__cached(reg, &st, *value ? set_sql : del_sql)) < 0)
		return rc;
	sqlite3_bind_int(st, 1, level);
	sqlite3_bind_int64(st, 2, id);
	sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
	if (*value)
		sqlite3_bind_text(st, 4, value, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return fdn_registry__sql_error(reg, rc, "label");
	d = *value ? json_pack("{s:s, s:s, s:s, s:s}", "level", level_name[level],
			"uid", uid, "key", key, "value", value)
		   : json_pack("{s:s, s:s, s:s}", "level", level_name[level],
			"uid", uid, "key", key);
	if (!d)
		return fdn__error_oom();
	rc = fdn_registry__audit(reg, *value ? "label.set" : "label.remove", d);
	json_decref(d);
	return rc;
}

int fdn_registry_label(fdn_registry *reg, int level, const char *uid,
	const char *key, const char *value)
{
	int rc;

	FDN__CHECK_ARG(reg, "reg");
	FDN__CHECK_ARG(uid && *uid, "uid");
	FDN__CHECK_ARG(key, "key");
	FDN__CHECK_ARG(value, "value");
	if (level < FDN_LABEL_STUDY || level > FDN_LABEL_INSTANCE)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"label: unknown level %d", level);
	if (!key_valid(key))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"label key must be 1-%d characters of [A-Za-z0-9_.-]", LABEL_KEY_MAX);
	if (strlen(value) > LABEL_VALUE_MAX || !utf8_valid((const unsigned char *)value))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"label value must be UTF-8 of at most %d bytes", LABEL_VALUE_MAX);
	if ((rc = fdn_registry__check_writable(reg)) < 0)
		return rc;
	if ((rc = fdn_registry__tx_begin(reg)) < 0)
		return rc;
	rc = apply(reg, level, uid, key, value);
	return rc < 0 ? fdn_registry__tx_rollback(reg, rc) : fdn_registry__tx_commit(reg);
}
