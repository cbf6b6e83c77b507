/*
 * libfednode: cohorts — counting, frozen membership snapshots, iteration
 * with consent re-checked at use time, and manifests.
 *
 * The snapshot hash of a cohort is the SHA-256 of its members' SOP
 * Instance UIDs sorted bytewise (strcmp order), each followed by one
 * '\n'; an empty cohort hashes the empty string.  Anyone holding the
 * member list can recompute it.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "registry/registry_private.h"
#include "registry/cohort_private.h"

#define COHORT_NAME_MAX 1024

struct fdn_cohort_iter {
	fdn_registry *reg;
	int64_t *ids;        /* member instance ids in SOP Instance UID order */
	size_t count, next;
	sqlite3_stmt *row;   /* one member, if still usable */
	sqlite3_stmt *labels;
	fdn_buf locator;
	char *labels_json;
	/* Strings of the current member (copied: the statement is reset). */
	char *strings[6];
};

typedef struct cohort_row {
	int64_t id;
	char *filter, *created, *snapshot;
	int64_t members;
} cohort_row;

static void cohort_row_dispose(cohort_row *c)
{
	fdn__free(c->filter);
	fdn__free(c->created);
	fdn__free(c->snapshot);
	memset(c, 0, sizeof(*c));
}

static int check_name(const char *name)
{
	FDN__CHECK_ARG(name, "name");
	if (!name[0] || strlen(name) > COHORT_NAME_MAX)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_REGISTRY,
			"cohort name must be 1 to %d bytes", COHORT_NAME_MAX);
	return 0;
}

static char *column_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	return fdn__strdup(s ? (const char *)s : "");
}

/*
 * The join order of a filtered query, the tables and aliases of
 * FDN_FILTER__FROM.  Walking series in id order and each series'
 * instances through the covering index instance_series reads that
 * index sequentially; any order starting from patient or study visits
 * the instances in random order, several times slower on a large
 * registry (1,000,000 instances: 606 ms against 125 ms for
 * `rows >= 1024`; doc/registry.md, "Performance").
 *
 * Without a label comparison the order is pinned with CROSS JOIN:
 * series, study, patient, instance; it does not depend on statistics
 * (a registry is not ANALYZEd unless its host does so).  With one, the
 * label subquery (filter.c, emit_label) may be the best driver: SQLite
 * chooses, but the unary + keeps it from walking downwards from patient
 * or study, leaving it series first, instance first or label first.
 * A label comparison is recognised by its subquery's fixed text: the
 * compiled filter holds no text of the user's.
 */
#define FROM_PINNED \
	"series se CROSS JOIN study st ON st.id = se.study_id" \
	" CROSS JOIN patient p ON p.id = st.patient_id" \
	" CROSS JOIN instance i ON i.series_id = se.id"
#define FROM_LABEL \
	"instance i JOIN series se ON se.id = i.series_id" \
	" JOIN study st ON st.id = +se.study_id" \
	" JOIN patient p ON p.id = +st.patient_id"
#define LABEL_SUBQUERY "FROM label l"

/* Prepares "SELECT <what> FROM ... WHERE usable AND (filter)<tail>". */
static int prepare_filtered(fdn_registry *reg, sqlite3_stmt **st, const char *what,
	const fdn_filter__sql *f, const char *tail)
{
	fdn_buf sql = FDN_BUF_INIT;
	const char *from = strstr(f->sql.ptr, LABEL_SUBQUERY) ? FROM_LABEL : FROM_PINNED;
	int rc;

	if ((rc = fdn_buf__printf(&sql, "%s FROM %s WHERE " FDN_FILTER__USABLE
			" AND (%s)%s", what, from, f->sql.ptr, tail)) < 0)
		return rc;
	rc = fdn_registry__prepare(reg, st, sql.ptr);
	fdn_buf_dispose(&sql);
	if (rc < 0)
		return rc;
	if ((rc = fdn_filter__bind(f, *st)) < 0) {
		sqlite3_finalize(*st);
		*st = NULL;
	}
	return rc;
}

int fdn_registry_query_count(uint64_t *out, fdn_registry *reg, const char *filter)
{
	fdn_filter__sql f = FDN_FILTER__SQL_INIT;
	sqlite3_stmt *st = NULL;
	int rc;

	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(reg, "reg");
	FDN__CHECK_ARG(filter, "filter");
	if ((rc = fdn_filter__compile(&f, NULL, filter)) < 0)
		return rc;
	if ((rc = prepare_filtered(reg, &st, "SELECT count(*)", &f, "")) < 0)
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = (uint64_t)sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		rc = fdn_registry__sql_error(reg, rc, "count cohort query");
	}
out:
	sqlite3_finalize(st);
	fdn_filter__dispose(&f);
	return rc;
}

/* The cohort's row, or FDN_ENOTFOUND. */
static int cohort_lookup(cohort_row *out, fdn_registry *reg, const char *name)
{
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = fdn_registry__prepare(reg, &st,
			"SELECT id, filter, created, snapshot_sha256, members"
			" FROM cohort WHERE name = ?")) < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->id = sqlite3_column_int64(st, 0);
		out->filter = column_dup(st, 1);
		out->created = column_dup(st, 2);
		out->snapshot = column_dup(st, 3);
		out->members = sqlite3_column_int64(st, 4);
		rc = out->filter && out->created && out->snapshot ? 0 : fdn__error_oom();
	} else if (rc == SQLITE_DONE) {
		rc = fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_REGISTRY,
			"no cohort named '%s'", name);
	} else {
		rc = fdn_registry__sql_error(reg, rc, "look up cohort");
	}
	sqlite3_finalize(st);
	if (rc < 0)
		cohort_row_dispose(out);
	return rc;
}

int fdn_registry__cohort_hash(char out[FDN_REGISTRY__HASH_SIZE], fdn_registry *reg,
	const char *name)
{
	cohort_row c;
	int rc;

	if ((rc = cohort_lookup(&c, reg, name)) < 0)
		return rc;
	snprintf(out, FDN_REGISTRY__HASH_SIZE, "%s", c.snapshot);
	cohort_row_dispose(&c);
	return 0;
}

/* Hashes the members' UIDs in bytewise order (see the file comment). */
static int snapshot_hash(char out[FDN_REGISTRY__HASH_SIZE], fdn_registry *reg,
	int64_t cohort_id)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	sqlite3_stmt *st = NULL;
	int rc;

	if (!ctx)
		return fdn__error_oom();
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		rc = fdn__error_set(FDN_ERROR, FDN_ERRCLASS_REGISTRY, "SHA-256 unavailable");
		goto out;
	}
	if ((rc = fdn_registry__prepare(reg, &st,
			"SELECT i.uid FROM cohort_member m JOIN instance i ON i.id = m.instance_id"
			" WHERE m.cohort_id = ? ORDER BY i.uid COLLATE BINARY")) < 0)
		goto out;
	sqlite3_bind_int64(st, 1, cohort_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *uid = sqlite3_column_text(st, 0);
		int n = sqlite3_column_bytes(st, 0);

		if (EVP_DigestUpdate(ctx, uid, (size_t)n) != 1 ||
		    EVP_DigestUpdate(ctx, "\n", 1) != 1) {
			rc = fdn__error_set(FDN_ERROR, FDN_ERRCLASS_REGISTRY, "SHA-256 failed");
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		rc = fdn_registry__sql_error(reg, rc, "read cohort members");
		goto out;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
		rc = fdn__error_set(FDN_ERROR, FDN_ERRCLASS_REGISTRY, "SHA-256 failed");
		goto out;
	}
	sodium_bin2hex(out, FDN_REGISTRY__HASH_SIZE, md, 32);
	rc = 0;
out:
	sqlite3_finalize(st);
	EVP_MD_CTX_free(ctx);
	return rc;
}

static int step_done(fdn_registry *reg, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	return rc == SQLITE_DONE ? 0 : fdn_registry__sql_error(reg, rc, what);
}

/* The work of fdn_cohort_create inside its transaction. */
static int cohort_insert(char hash[FDN_REGISTRY__HASH_SIZE], fdn_registry *reg,
	const char *name, const char *filter, const fdn_filter__sql *f)
{
	char now[FDN_REGISTRY__TIME_SIZE];
	sqlite3_stmt *st = NULL;
	int64_t id, members;
	json_t *details;
	int rc;

	if ((rc = fdn_registry__prepare(reg, &st, "SELECT 1 FROM cohort WHERE name = ?")) < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return fdn__error_set(FDN_ECONFLICT, FDN_ERRCLASS_REGISTRY,
			"a cohort named '%s' exists", name);
	if (rc != SQLITE_DONE)
		return fdn_registry__sql_error(reg, rc, "look up cohort");

	fdn_registry__now(now);
	if ((rc = fdn_registry__prepare(reg, &st,
			"INSERT INTO cohort (name, filter, created, snapshot_sha256, members)"
			" VALUES (?, ?, ?, '', 0)")) < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, filter, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
	rc = step_done(reg, st, "insert cohort");
	sqlite3_finalize(st);
	if (rc < 0)
		return rc;
	id = sqlite3_last_insert_rowid(reg->db);

	/* The filter's parameters are ?1..?N; the cohort id takes ?N+1 (a
	 * named parameter written before them would be given index 1). */
	{
		char what[128];

		snprintf(what, sizeof(what),
			"INSERT INTO cohort_member (cohort_id, instance_id) SELECT ?%zu, i.id",
			f->count + 1);
		if ((rc = prepare_filtered(reg, &st, what, f, "")) < 0)
			return rc;
	}
	sqlite3_bind_int64(st, (int)f->count + 1, id);
	rc = step_done(reg, st, "insert cohort members");
	sqlite3_finalize(st);
	if (rc < 0)
		return rc;
	members = sqlite3_changes(reg->db);

	if ((rc = snapshot_hash(hash, reg, id)) < 0)
		return rc;
	if ((rc = fdn_registry__prepare(reg, &st,
			"UPDATE cohort SET snapshot_sha256 = ?, members = ? WHERE id = ?")) < 0)
		return rc;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, members);
	sqlite3_bind_int64(st, 3, id);
	rc = step_done(reg, st, "update cohort");
	sqlite3_finalize(st);
	if (rc < 0)
		return rc;

	details = json_pack("{s:s, s:s, s:I, s:s}", "name", name, "filter", filter,
		"members", (json_int_t)members, "snapshot_sha256", hash);
	if (!details)
		return fdn__error_oom();
	rc = fdn_registry__audit(reg, "cohort.create", details);
	json_decref(details);
	return rc;
}

int fdn_cohort_create(char *hash_out, fdn_registry *reg, const char *name,
	const char *filter)
{
	fdn_filter__sql f = FDN_FILTER__SQL_INIT;
	char hash[FDN_REGISTRY__HASH_SIZE];
	int rc;

	FDN__CHECK_ARG(reg, "reg");
	FDN__CHECK_ARG(filter, "filter");
	if ((rc = check_name(name)) < 0 || (rc = fdn_registry__check_writable(reg)) < 0)
		return rc;
	if ((rc = fdn_filter__compile(&f, NULL, filter)) < 0)
		return rc;
	if ((rc = fdn_registry__tx_begin(reg)) < 0)
		goto out;
	rc = cohort_insert(hash, reg, name, filter, &f);
	rc = rc < 0 ? fdn_registry__tx_rollback(reg, rc) : fdn_registry__tx_commit(reg);
	if (rc == 0 && hash_out)
		memcpy(hash_out, hash, sizeof(hash));
out:
	fdn_filter__dispose(&f);
	return rc;
}

/* --- iteration ----------------------------------------------------------- */

void fdn_cohort_iter_free(fdn_cohort_iter *it)
{
	if (!it)
		return;
	sqlite3_finalize(it->row);
	sqlite3_finalize(it->labels);
	fdn_buf_dispose(&it->locator);
	fdn__free(it->labels_json);
	for (size_t i = 0; i < sizeof(it->strings) / sizeof(it->strings[0]); i++)
		fdn__free(it->strings[i]);
	fdn__free(it->ids);
	fdn__free(it);
}

/* Loads the member ids in UID order.  Only ids are held: each member's
 * row (and its patient's consent) is read when it is reached, so a
 * withdrawal during a long iteration takes effect at once and no read
 * transaction stays open between calls. */
static int load_ids(fdn_cohort_iter *it, int64_t cohort_id)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc;

	if ((rc = fdn_registry__prepare(it->reg, &st,
			"SELECT m.instance_id FROM cohort_member m JOIN instance i ON i.id = m.instance_id"
			" WHERE m.cohort_id = ? ORDER BY i.uid COLLATE BINARY")) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, cohort_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (it->count == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			int64_t *n = fdn__reallocarray(it->ids, ncap, sizeof(*n));

			if (!n) {
				sqlite3_finalize(st);
				return fdn__error_oom();
			}
			it->ids = n;
			cap = ncap;
		}
		it->ids[it->count++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : fdn_registry__sql_error(it->reg, rc, "read cohort members");
}

static int iter_open(fdn_cohort_iter **out, fdn_registry *reg, int64_t cohort_id)
{
	fdn_cohort_iter *it = fdn__calloc(1, sizeof(*it));
	int rc;

	if (!it)
		return fdn__error_oom();
	it->reg = reg;
	if ((rc = load_ids(it, cohort_id)) < 0 ||
	    (rc = fdn_registry__prepare(reg, &it->row,
			"SELECT i.uid, se.uid, st.uid, p.pseudonym, se.modality, i.sha256,"
			" i.size, se.id, st.id FROM " FDN_FILTER__FROM
			" WHERE i.id = ? AND " FDN_FILTER__USABLE)) < 0 ||
	    (rc = fdn_registry__prepare(reg, &it->labels,
			"SELECT key, value FROM label WHERE (level = 0 AND object_id = ?3)"
			" OR (level = 1 AND object_id = ?2) OR (level = 2 AND object_id = ?1)"
			" ORDER BY level")) < 0) {
		fdn_cohort_iter_free(it);
		return rc;
	}
	*out = it;
	return 0;
}

int fdn_cohort_iter_new(fdn_cohort_iter **out, fdn_registry *reg, const char *name,
	const char *purpose)
{
	cohort_row c;
	json_t *details;
	int rc;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	FDN__CHECK_ARG(reg, "reg");
	if ((rc = check_name(name)) < 0 || (rc = cohort_lookup(&c, reg, name)) < 0)
		return rc;
	/* Every use of data is on the record before any member is handed out. */
	details = json_pack("{s:s, s:s, s:s}", "name", name, "purpose",
		purpose ? purpose : "", "snapshot_sha256", c.snapshot);
	if (!details) {
		rc = fdn__error_oom();
		goto out;
	}
	if ((rc = fdn_registry__tx_begin(reg)) < 0)
		goto out;
	rc = fdn_registry__audit(reg, "cohort.use", details);
	rc = rc < 0 ? fdn_registry__tx_rollback(reg, rc) : fdn_registry__tx_commit(reg);
	if (rc == 0)
		rc = iter_open(out, reg, c.id);
out:
	json_decref(details);
	cohort_row_dispose(&c);
	return rc;
}

/* The merged labels of the current member as a JSON object; rows come
 * study, series, instance, so a later one overwrites: the most specific
 * wins. */
static int member_labels(fdn_cohort_iter *it, int64_t inst, int64_t series, int64_t study)
{
	json_t *obj = json_object();
	int rc;

	if (!obj)
		return fdn__error_oom();
	sqlite3_reset(it->labels);
	sqlite3_bind_int64(it->labels, 1, inst);
	sqlite3_bind_int64(it->labels, 2, series);
	sqlite3_bind_int64(it->labels, 3, study);
	while ((rc = sqlite3_step(it->labels)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(it->labels, 0);
		const char *v = (const char *)sqlite3_column_text(it->labels, 1);

		if (k && v && json_object_set_new(obj, k, json_string(v)) != 0) {
			json_decref(obj);
			return fdn__error_oom();
		}
	}
	sqlite3_reset(it->labels);
	if (rc != SQLITE_DONE) {
		json_decref(obj);
		return fdn_registry__sql_error(it->reg, rc, "read labels");
	}
	fdn__free(it->labels_json);
	{
		char *s = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);

		/* Copied so that the caller's string comes from our allocator. */
		it->labels_json = s ? fdn__strdup(s) : NULL;
		free(s);
	}
	json_decref(obj);
	return it->labels_json ? 0 : fdn__error_oom();
}

/* Reads member it->ids[it->next]: 1 when usable, 0 when skipped. */
static int member_read(fdn_cohort_member *out, fdn_cohort_iter *it)
{
	sqlite3_stmt *st = it->row;
	int64_t series, study;
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, it->ids[it->next]);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0; /* consent withdrawn or purged since the snapshot */
	}
	if (rc != SQLITE_ROW) {
		rc = fdn_registry__sql_error(it->reg, rc, "read cohort member");
		sqlite3_reset(st);
		return rc;
	}
	for (int i = 0; i < 6; i++) {
		fdn__free(it->strings[i]);
		if (!(it->strings[i] = column_dup(st, i))) {
			sqlite3_reset(st);
			return fdn__error_oom();
		}
	}
	memset(out, 0, sizeof(*out));
	out->version = FDN_COHORT_MEMBER_VERSION;
	out->size = (uint64_t)sqlite3_column_int64(st, 6);
	series = sqlite3_column_int64(st, 7);
	study = sqlite3_column_int64(st, 8);
	sqlite3_reset(st);
	out->sop_instance_uid = it->strings[0];
	out->series_instance_uid = it->strings[1];
	out->study_instance_uid = it->strings[2];
	out->patient = it->strings[3];
	out->modality = it->strings[4];
	out->sha256 = it->strings[5];
	if ((rc = member_labels(it, it->ids[it->next], series, study)) < 0)
		return rc;
	out->labels_json = it->labels_json;
	fdn_buf__clear(&it->locator);
	if ((rc = fdn_registry__locator(it->reg, out->sha256, &it->locator)) < 0)
		return rc;
	out->locator = it->locator.ptr ? it->locator.ptr : "";
	return 1;
}

int fdn_cohort_iter_next(fdn_cohort_member *out, fdn_cohort_iter *it)
{
	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(it, "it");
	while (it->next < it->count) {
		int rc = member_read(out, it);

		it->next++;
		if (rc < 0)
			return rc;
		if (rc == 1)
			return 0;
	}
	return FDN_ENOTFOUND;
}

/* --- manifests ------------------------------------------------------------ */

/* RFC 4180: a field holding a comma, quote, CR or LF is quoted, and its
 * quotes doubled; everything else is written as is. */
static int csv_field(fdn_buf *out, const char *s, bool last)
{
	int rc = 0;

	if (strpbrk(s, ",\"\r\n")) {
		rc = fdn_buf__puts(out, "\"");
		for (const char *q; rc == 0 && (q = strchr(s, '"')); s = q + 1) {
			if ((rc = fdn_buf__put(out, s, (size_t)(q - s + 1))) == 0)
				rc = fdn_buf__puts(out, "\"");
		}
		if (rc == 0)
			rc = fdn_buf__puts(out, s);
		if (rc == 0)
			rc = fdn_buf__puts(out, "\"");
	} else {
		rc = fdn_buf__puts(out, s);
	}
	if (rc == 0)
		rc = fdn_buf__puts(out, last ? "\r\n" : ",");
	return rc;
}

static int csv_member(fdn_buf *out, const fdn_cohort_member *m)
{
	char size[32];
	const char *cells[9];
	int rc = 0;

	snprintf(size, sizeof(size), "%llu", (unsigned long long)m->size);
	cells[0] = m->sop_instance_uid;
	cells[1] = m->series_instance_uid;
	cells[2] = m->study_instance_uid;
	cells[3] = m->patient;
	cells[4] = m->modality;
	cells[5] = m->sha256;
	cells[6] = size;
	cells[7] = m->locator;
	cells[8] = m->labels_json;
	for (int i = 0; rc == 0 && i < 9; i++)
		rc = csv_field(out, cells[i], i == 8);
	return rc;
}

static json_t *json_member(const fdn_cohort_member *m)
{
	json_t *labels = json_loads(m->labels_json, 0, NULL);

	if (!labels)
		return NULL;
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:o}",
		"sop_instance_uid", m->sop_instance_uid,
		"series_instance_uid", m->series_instance_uid,
		"study_instance_uid", m->study_instance_uid,
		"patient", m->patient,
		"modality", m->modality,
		"sha256", m->sha256,
		"size", (json_int_t)m->size,
		"locator", m->locator,
		"labels", labels);
}

/* Writes every usable member into @p out (CSV) or @p array (JSON). */
static int export_members(fdn_buf *out, json_t *array, size_t *count,
	fdn_cohort_iter *it)
{
	fdn_cohort_member m;
	int rc;

	*count = 0;
	while ((rc = fdn_cohort_iter_next(&m, it)) == 0) {
		if (array) {
			json_t *o = json_member(&m);

			if (!o || json_array_append_new(array, o) != 0)
				return fdn__error_oom();
		} else if ((rc = csv_member(out, &m)) < 0) {
			return rc;
		}
		(*count)++;
	}
	return rc == FDN_ENOTFOUND ? 0 : rc;
}

static int export_json(fdn_buf *out, const char *name, const cohort_row *c,
	fdn_cohort_iter *it, size_t *count)
{
	json_t *members = json_array(), *doc;
	char *text;
	int rc;

	if (!members)
		return fdn__error_oom();
	if ((rc = export_members(NULL, members, count, it)) < 0) {
		json_decref(members);
		return rc;
	}
	doc = json_pack("{s:{s:s, s:s, s:s, s:s, s:I, s:I}, s:o}",
		"cohort", "name", name, "filter", c->filter, "created", c->created,
		"snapshot_sha256", c->snapshot, "snapshot_members", (json_int_t)c->members,
		"exported_members", (json_int_t)*count, "members", members);
	if (!doc)
		return fdn__error_oom();
	text = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (!text)
		return fdn__error_oom();
	rc = fdn_buf__puts(out, text);
	free(text);
	return rc;
}

static int export_csv(fdn_buf *out, fdn_cohort_iter *it, size_t *count)
{
	int rc = fdn_buf__puts(out, "sop_instance_uid,series_instance_uid,"
		"study_instance_uid,patient,modality,sha256,size,locator,labels\r\n");

	return rc < 0 ? rc : export_members(out, NULL, count, it);
}

int fdn_cohort_export(fdn_buf *out, fdn_registry *reg, const char *name, int format)
{
	fdn_buf text = FDN_BUF_INIT;
	fdn_cohort_iter *it = NULL;
	cohort_row c;
	json_t *details = NULL;
	size_t count = 0;
	int rc;

	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(reg, "reg");
	FDN__CHECK_ARG(format == FDN_MANIFEST_JSON || format == FDN_MANIFEST_CSV, "format");
	if ((rc = check_name(name)) < 0 || (rc = cohort_lookup(&c, reg, name)) < 0)
		return rc;
	if ((rc = iter_open(&it, reg, c.id)) < 0)
		goto out;
	rc = format == FDN_MANIFEST_JSON ? export_json(&text, name, &c, it, &count)
		: export_csv(&text, it, &count);
	if (rc < 0)
		goto out;
	/* Audited before the manifest is handed over: no record, no data. */
	details = json_pack("{s:s, s:s, s:I, s:s}", "name", name,
		"format", format == FDN_MANIFEST_JSON ? "json" : "csv",
		"members", (json_int_t)count, "snapshot_sha256", c.snapshot);
	if (!details) {
		rc = fdn__error_oom();
		goto out;
	}
	if ((rc = fdn_registry__tx_begin(reg)) < 0)
		goto out;
	rc = fdn_registry__audit(reg, "cohort.export", details);
	rc = rc < 0 ? fdn_registry__tx_rollback(reg, rc) : fdn_registry__tx_commit(reg);
	if (rc == 0) {
		fdn_buf_dispose(out);
		*out = text;
		text = (fdn_buf)FDN_BUF_INIT;
	}
out:
	json_decref(details);
	fdn_buf_dispose(&text);
	fdn_cohort_iter_free(it);
	cohort_row_dispose(&c);
	return rc;
}
