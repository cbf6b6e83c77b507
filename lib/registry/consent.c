/*
 * Consent: withdrawal (optionally purging the files) and grant, keyed by
 * the pseudonym; the original Patient ID, when given, is turned into
 * the pseudonym at once and never stored, logged or put in an error.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <string.h>

#include "registry/registry_private.h"

static int resolve(fdn_buf *pseudonym, const char *patient, const fdn_deid_profile *profile)
{
	int rc;

	if (!profile)
		return fdn_buf_set(pseudonym, patient, strlen(patient));
	rc = fdn_deid_pseudonym_for(pseudonym, profile, patient);
	if (rc < 0)
		/* The deid message could quote the identifier: replace it. */
		return fdn__error_set(rc, FDN_ERRCLASS_REGISTRY,
			"cannot derive the pseudonym of the given Patient ID");
	return 0;
}

static int set_consent(fdn_registry *reg, const char *pseudonym, bool granted,
	const char *reason, bool named_by_original)
{
	static const char upd[] =
		"UPDATE patient SET consent = ?, consent_changed = ?, consent_reason = ?"
		" WHERE pseudonym = ?";
	char now[FDN_REGISTRY__TIME_SIZE];
	sqlite3_stmt *st;
	int rc;

	if ((rc = fdn_registry__cached(reg, &st, upd)) < 0)
		return rc;
	fdn_registry__now(now);
	sqlite3_bind_text(st, 1, granted ? "granted" : "withdrawn", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, now, -1, SQLITE_TRANSIENT);
	if (reason)
		sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, pseudonym, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return fdn_registry__sql_error(reg, rc, "consent");
	if (sqlite3_changes(reg->db) == 0)
		return named_by_original
			? fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_REGISTRY,
				"no registered patient for that Patient ID")
			: fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_REGISTRY,
				"no patient with pseudonym %s", pseudonym);
	return 0;
}

static int mark_purged(fdn_registry *reg, const char *pseudonym, int64_t *count)
{
	static const char upd[] =
		"UPDATE instance SET purged = 1 WHERE purged = 0 AND series_id IN"
		" (SELECT se.id FROM series se JOIN study st ON se.study_id = st.id"
		"  JOIN patient p ON st.patient_id = p.id WHERE p.pseudonym = ?)";
	sqlite3_stmt *st;
	int rc;

	if ((rc = fdn_registry__cached(reg, &st, upd)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, pseudonym, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return fdn_registry__sql_error(reg, rc, "purge");
	*count = sqlite3_changes(reg->db);
	return 0;
}

/* After the purge committed: delete every file of the patient's purged
 * instances.  Running it again (a crash in between, a failing storage)
 * finishes the job, since it looks at all purged instances. */
static int delete_files(fdn_registry *reg, const char *pseudonym)
{
	static const char sel[] =
		"SELECT DISTINCT i.sha256 FROM instance i JOIN series se ON i.series_id = se.id"
		" JOIN study st ON se.study_id = st.id JOIN patient p ON st.patient_id = p.id"
		" WHERE p.pseudonym = ? AND i.purged = 1 AND NOT EXISTS"
		" (SELECT 1 FROM instance o WHERE o.sha256 = i.sha256 AND o.purged = 0)";
	const fdn_registry_storage *s = &reg->storage;
	sqlite3_stmt *st;
	int rc;

	if (s->version < 1 || !s->del)
		return fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_REGISTRY,
			"the storage cannot delete objects: purge not possible");
	if ((rc = fdn_registry__prepare(reg, &st, sel)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, pseudonym, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int d = s->del(s->ud, (const char *)sqlite3_column_text(st, 0));

		if (d < 0) {
			rc = fdn__error_callback(d, "storage del");
			break;
		}
	}
	if (rc == SQLITE_DONE)
		rc = 0;
	else if (rc > 0)
		rc = fdn_registry__sql_error(reg, rc, "purge");
	sqlite3_finalize(st);
	return rc;
}

static int change(fdn_registry *reg, const char *patient, const fdn_deid_profile *profile,
	const char *reason, bool granted, int purge)
{
	fdn_buf pseudo = FDN_BUF_INIT;
	int64_t purged = 0;
	json_t *d = NULL;
	int rc;

	FDN__CHECK_ARG(reg, "reg");
	FDN__CHECK_ARG(patient && *patient, "patient");
	if ((rc = fdn_registry__check_writable(reg)) < 0)
		return rc;
	/* Files cannot be undeleted: a purge must not sit in a batch that
	 * might still be rolled back. */
	if (purge && reg->in_batch)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_REGISTRY,
			"purge is not allowed inside a batch");
	if ((rc = resolve(&pseudo, patient, profile)) < 0)
		goto out;
	if ((rc = fdn_registry__tx_begin(reg)) < 0)
		goto out;
	rc = set_consent(reg, pseudo.ptr, granted, reason, profile != NULL);
	if (rc == 0 && purge)
		rc = mark_purged(reg, pseudo.ptr, &purged);
	if (rc == 0) {
		d = granted ? json_pack("{s:s, s:s?}", "patient", pseudo.ptr, "reason", reason)
			: json_pack("{s:s, s:s?, s:b, s:I}", "patient", pseudo.ptr, "reason", reason,
				"purge", purge != 0, "purged_instances", (json_int_t)purged);
		rc = d ? fdn_registry__audit(reg, granted ? "consent.grant" : "consent.withdraw", d)
		       : fdn__error_oom();
	}
	rc = rc < 0 ? fdn_registry__tx_rollback(reg, rc) : fdn_registry__tx_commit(reg);
	if (rc == 0 && purge)
		rc = delete_files(reg, pseudo.ptr);
out:
	json_decref(d);
	fdn_buf_dispose(&pseudo);
	return rc;
}

int fdn_registry_withdraw(fdn_registry *reg, const char *patient,
	const fdn_deid_profile *profile, const char *reason, int purge)
{
	return change(reg, patient, profile, reason, false, purge);
}

int fdn_registry_grant(fdn_registry *reg, const char *patient,
	const fdn_deid_profile *profile, const char *reason)
{
	return change(reg, patient, profile, reason, true, 0);
}
