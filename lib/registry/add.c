/*
 * Adding an instance: refuse identified data, store the bytes by their
 * SHA-256, then record patient, study, series and instance in one
 * transaction with its audit record.  The file is stored before the
 * rows commit, so a crash leaves at most an unreferenced object, never
 * a row without its file.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <string.h>

#include "registry/registry_private.h"

/* Everything one add needs, gathered before the transaction starts. */
typedef struct add_ctx {
	fdn_instance_info info;
	fdn_buf bytes;
	char hash[FDN_REGISTRY__HASH_SIZE];
} add_ctx;

/* Patient Identity Removed (0012,0062) is a CS: compare without the
 * padding space. */
static int check_deidentified(const fdn_dataset *ds)
{
	fdn_buf v = FDN_BUF_INIT;
	int rc = fdn_dataset_get_string(&v, ds, "PatientIdentityRemoved");
	bool yes = rc == 0 && v.ptr &&
		(strcmp(v.ptr, "YES") == 0 || strcmp(v.ptr, "YES ") == 0);

	fdn_buf_dispose(&v);
	if (!yes)
		return fdn__error_set(FDN_EPHI, FDN_ERRCLASS_REGISTRY,
			"refused: Patient Identity Removed (0012,0062) is not YES "
			"(de-identify first, or pass FDN_REGISTRY_ADD_ALLOW_IDENTIFIED)");
	fdn_error_clear();
	return 0;
}

static int step_done(fdn_registry *reg, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : fdn_registry__sql_error(reg, rc, what);
}

/* Looks up the id of the row whose unique column is @p key; *id = 0
 * when absent.  @p parent_out (optional) receives column 1. */
static int lookup(fdn_registry *reg, const char *sql, const char *key,
	sqlite3_int64 *id, sqlite3_int64 *parent_out)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = fdn_registry__cached(reg, &st, sql)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*id = 0;
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		if (parent_out)
			*parent_out = sqlite3_column_int64(st, 1);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = fdn_registry__sql_error(reg, rc, "lookup");
	}
	sqlite3_reset(st);
	return rc;
}

static int patient_row(fdn_registry *reg, const fdn_instance_info *i, sqlite3_int64 *id)
{
	static const char sel[] = "SELECT id FROM patient WHERE pseudonym = ?";
	static const char ins[] = "INSERT INTO patient (pseudonym, sex) VALUES (?, ?)";
	sqlite3_stmt *st;
	int rc;

	if ((rc = lookup(reg, sel, i->patient_id, id, NULL)) < 0 || *id)
		return rc;
	if ((rc = fdn_registry__cached(reg, &st, ins)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, i->patient_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, i->patient_sex, -1, SQLITE_STATIC);
	if ((rc = step_done(reg, st, "insert patient")) < 0)
		return rc;
	*id = sqlite3_last_insert_rowid(reg->db);
	return 0;
}

/* A study (series) seen again must hang under the same patient (study):
 * anything else means two sources disagree and is not silently merged. */
static int parent_conflict(const char *what, const char *uid)
{
	return fdn__error_set(FDN_ECONFLICT, FDN_ERRCLASS_REGISTRY,
		"%s %s is registered under another %s", what, uid,
		strcmp(what, "study") == 0 ? "patient" : "study");
}

static int study_row(fdn_registry *reg, const fdn_instance_info *i,
	sqlite3_int64 patient, sqlite3_int64 *id)
{
	static const char sel[] = "SELECT id, patient_id FROM study WHERE uid = ?";
	static const char ins[] =
		"INSERT INTO study (uid, patient_id, study_date, description, age, age_years)"
		" VALUES (?, ?, ?, ?, ?, ?)";
	sqlite3_int64 parent = 0;
	sqlite3_stmt *st;
	int rc;

	if ((rc = lookup(reg, sel, i->study_instance_uid, id, &parent)) < 0)
		return rc;
	if (*id)
		return parent == patient ? 0 : parent_conflict("study", i->study_instance_uid);
	if ((rc = fdn_registry__cached(reg, &st, ins)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, i->study_instance_uid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, patient);
	sqlite3_bind_text(st, 3, i->study_date, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, i->study_description, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, i->patient_age, -1, SQLITE_STATIC);
	double years = fdn_registry__age_years(i->patient_age);
	if (years >= 0)
		sqlite3_bind_double(st, 6, years);
	else
		sqlite3_bind_null(st, 6);
	if ((rc = step_done(reg, st, "insert study")) < 0)
		return rc;
	*id = sqlite3_last_insert_rowid(reg->db);
	return 0;
}

static int series_row(fdn_registry *reg, const fdn_instance_info *i,
	sqlite3_int64 study, sqlite3_int64 *id)
{
	static const char sel[] = "SELECT id, study_id FROM series WHERE uid = ?";
	static const char ins[] =
		"INSERT INTO series (uid, study_id, modality, body_part, manufacturer,"
		" description, number) VALUES (?, ?, ?, ?, ?, ?, ?)";
	sqlite3_int64 parent = 0;
	sqlite3_stmt *st;
	int rc;

	if ((rc = lookup(reg, sel, i->series_instance_uid, id, &parent)) < 0)
		return rc;
	if (*id)
		return parent == study ? 0 : parent_conflict("series", i->series_instance_uid);
	if ((rc = fdn_registry__cached(reg, &st, ins)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, i->series_instance_uid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, study);
	sqlite3_bind_text(st, 3, i->modality, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, i->body_part_examined, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, i->manufacturer, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, i->series_description, -1, SQLITE_STATIC);
	if (i->series_number >= 0)
		sqlite3_bind_int64(st, 7, i->series_number);
	if ((rc = step_done(reg, st, "insert series")) < 0)
		return rc;
	*id = sqlite3_last_insert_rowid(reg->db);
	return 0;
}

static int instance_row(fdn_registry *reg, const add_ctx *c, sqlite3_int64 series)
{
	static const char ins[] =
		"INSERT INTO instance (uid, series_id, sop_class, number, rows, columns,"
		" frames, sha256, size, transfer_syntax, added)"
		" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
	const fdn_instance_info *i = &c->info;
	char now[FDN_REGISTRY__TIME_SIZE];
	sqlite3_stmt *st;
	int rc;

	if ((rc = fdn_registry__cached(reg, &st, ins)) < 0)
		return rc;
	fdn_registry__now(now);
	sqlite3_bind_text(st, 1, i->sop_instance_uid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, series);
	sqlite3_bind_text(st, 3, i->sop_class_uid, -1, SQLITE_STATIC);
	if (i->instance_number >= 0)
		sqlite3_bind_int64(st, 4, i->instance_number);
	sqlite3_bind_int64(st, 5, i->rows);
	sqlite3_bind_int64(st, 6, i->columns);
	sqlite3_bind_int64(st, 7, i->frames);
	sqlite3_bind_text(st, 8, c->hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)c->bytes.size);
	sqlite3_bind_text(st, 10, i->transfer_syntax_uid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 11, now, -1, SQLITE_TRANSIENT);
	return step_done(reg, st, "insert instance");
}

/* Same UID: the same content is a no-op, other content a conflict. */
static int existing(fdn_registry *reg, const add_ctx *c, bool *present)
{
	static const char sel[] = "SELECT sha256 FROM instance WHERE uid = ?";
	sqlite3_stmt *st;
	int rc;

	*present = false;
	if ((rc = fdn_registry__cached(reg, &st, sel)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, c->info.sop_instance_uid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(st, 0);

		*present = true;
		rc = h && strcmp(h, c->hash) == 0 ? 0
			: fdn__error_set(FDN_ECONFLICT, FDN_ERRCLASS_REGISTRY,
				"SOP Instance UID %s is registered with other content",
				c->info.sop_instance_uid);
	} else {
		rc = rc == SQLITE_DONE ? 0 : fdn_registry__sql_error(reg, rc, "lookup instance");
	}
	sqlite3_reset(st);
	return rc;
}

static int store(fdn_registry *reg, const add_ctx *c)
{
	const fdn_registry_storage *s = &reg->storage;
	int rc = s->put(s->ud, c->hash, c->bytes.ptr, c->bytes.size);

	return rc < 0 ? fdn__error_callback(rc, "storage put") : 0;
}

static int record(fdn_registry *reg, const add_ctx *c)
{
	sqlite3_int64 patient, study, series;
	json_t *d;
	int rc;

	if ((rc = patient_row(reg, &c->info, &patient)) < 0 ||
	    (rc = study_row(reg, &c->info, patient, &study)) < 0 ||
	    (rc = series_row(reg, &c->info, study, &series)) < 0 ||
	    (rc = instance_row(reg, c, series)) < 0)
		return rc;
	d = json_pack("{s:s, s:s, s:s, s:I}", "sop_instance_uid", c->info.sop_instance_uid,
		"patient", c->info.patient_id, "sha256", c->hash,
		"size", (json_int_t)c->bytes.size);
	if (!d)
		return fdn__error_oom();
	rc = fdn_registry__audit(reg, "instance.add", d);
	json_decref(d);
	return rc;
}

static int prepare(add_ctx *c, const fdn_dataset *ds, unsigned int flags)
{
	const fdn_instance_info *i = &c->info;
	int rc;

	c->info.version = FDN_INSTANCE_INFO_VERSION;
	if (fdn_dataset_is_header_only(ds) == 1)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_REGISTRY,
			"a header-only dataset cannot be registered");
	if ((rc = fdn_dataset_instance_info(&c->info, ds)) < 0)
		return rc;
	if (!*i->sop_instance_uid || !*i->sop_class_uid || !*i->study_instance_uid ||
	    !*i->series_instance_uid)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_REGISTRY,
			"the dataset lacks a SOP Class, SOP Instance, Study or Series UID");
	if (!(flags & FDN_REGISTRY_ADD_ALLOW_IDENTIFIED) && (rc = check_deidentified(ds)) < 0)
		return rc;
	if (!*i->patient_id)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_REGISTRY,
			"the dataset has no Patient ID (the pseudonym)");
	if ((rc = fdn_dataset_write_buffer(&c->bytes, ds, FDN_WRITE_DEFAULT)) < 0)
		return rc;
	return fdn_registry__sha256_hex(c->hash, c->bytes.ptr, c->bytes.size);
}

int fdn_registry_add(int *result, fdn_registry *reg, const fdn_dataset *ds, unsigned int flags)
{
	add_ctx c;
	bool present = false;
	int rc;

	if (result)
		*result = FDN_REGISTRY_ADDED;
	FDN__CHECK_ARG(reg, "reg");
	FDN__CHECK_ARG(ds, "ds");
	if (flags & ~(unsigned int)FDN_REGISTRY_ADD_ALLOW_IDENTIFIED)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_registry_add: unknown flags 0x%x", flags);
	if ((rc = fdn_registry__check_writable(reg)) < 0)
		return rc;
	memset(&c, 0, sizeof(c));
	if ((rc = prepare(&c, ds, flags)) < 0)
		goto out;
	if ((rc = fdn_registry__tx_begin(reg)) < 0)
		goto out;
	rc = existing(reg, &c, &present);
	if (rc == 0 && !present) {
		rc = store(reg, &c);
		if (rc == 0)
			rc = record(reg, &c);
	}
	if (rc < 0) {
		fdn_registry__tx_rollback(reg, rc);
		goto out;
	}
	if ((rc = fdn_registry__tx_commit(reg)) == 0 && present && result)
		*result = FDN_REGISTRY_ALREADY_PRESENT;
out:
	fdn_buf_dispose(&c.bytes);
	return rc;
}
