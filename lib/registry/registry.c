/*
 * The registry handle: opening, schema migration, SQLite error mapping,
 * transactions that nest with the public batch API, statistics.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "registry/registry_private.h"
#include "registry/schema_private.h"

int fdn_registry_schema_version(void)
{
	return FDN_REGISTRY_SCHEMA_VERSION;
}

int fdn_registry_options_init(fdn_registry_options *opts, unsigned int version)
{
	fdn_registry_options def = FDN_REGISTRY_OPTIONS_INIT;

	FDN__CHECK_ARG(opts, "opts");
	if (version == 0 || version > FDN_REGISTRY_OPTIONS_VERSION)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"registry options: unsupported version %u", version);
	*opts = def;
	opts->version = version;
	return 0;
}

int fdn_registry__sql_error(fdn_registry *reg, int sqlite_rc, const char *what)
{
	const char *msg = reg && reg->db ? sqlite3_errmsg(reg->db) : sqlite3_errstr(sqlite_rc);

	switch (sqlite_rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return fdn__error_set(FDN_EIO, FDN_ERRCLASS_REGISTRY,
			"%s: database busy (%s)", what, msg);
	case SQLITE_CONSTRAINT:
		return fdn__error_set(FDN_ECONFLICT, FDN_ERRCLASS_REGISTRY,
			"%s: %s", what, msg);
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_REGISTRY,
			"%s: not a registry database (%s)", what, msg);
	case SQLITE_READONLY:
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_REGISTRY,
			"%s: registry is read-only (%s)", what, msg);
	case SQLITE_NOMEM:
		return fdn__error_oom();
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_PROTOCOL:
		return fdn__error_set(FDN_EIO, FDN_ERRCLASS_REGISTRY,
			"%s: %s", what, msg);
	default:
		return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_REGISTRY,
			"%s: %s", what, msg);
	}
}

int fdn_registry__prepare(fdn_registry *reg, sqlite3_stmt **stmt, const char *sql)
{
	int rc = sqlite3_prepare_v2(reg->db, sql, -1, stmt, NULL);

	if (rc != SQLITE_OK) {
		*stmt = NULL;
		return fdn_registry__sql_error(reg, rc, "prepare");
	}
	return 0;
}

int fdn_registry__cached(fdn_registry *reg, sqlite3_stmt **stmt, const char *sql)
{
	size_t i;
	int rc;

	for (i = 0; i < reg->cache_count; i++) {
		if (reg->cache[i].sql == sql) {
			sqlite3_reset(reg->cache[i].stmt);
			sqlite3_clear_bindings(reg->cache[i].stmt);
			*stmt = reg->cache[i].stmt;
			return 0;
		}
	}
	rc = sqlite3_prepare_v3(reg->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL);
	if (rc != SQLITE_OK) {
		*stmt = NULL;
		return fdn_registry__sql_error(reg, rc, "prepare");
	}
	/* The callers' SQL texts are a fixed, small set: running out of
	 * slots is a programming error, not a runtime condition. */
	if (reg->cache_count == FDN_REGISTRY__CACHE_MAX) {
		sqlite3_finalize(*stmt);
		*stmt = NULL;
		return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_REGISTRY,
			"statement cache full");
	}
	reg->cache[reg->cache_count].sql = sql;
	reg->cache[reg->cache_count].stmt = *stmt;
	reg->cache_count++;
	return 0;
}

int fdn_registry__exec(fdn_registry *reg, const char *sql)
{
	int rc = sqlite3_exec(reg->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : fdn_registry__sql_error(reg, rc, "exec");
}

void fdn_registry__now(char out[FDN_REGISTRY__TIME_SIZE])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	/* strftime bounds the year's width, which printf of tm_year cannot */
	if (strftime(out, FDN_REGISTRY__TIME_SIZE - 6, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		out[0] = '\0';
	{
		int ms = (int)((ts.tv_nsec / 1000000L) % 1000);
		char *p = out + strlen(out);

		p[0] = '.';
		p[1] = (char)('0' + ms / 100);
		p[2] = (char)('0' + ms / 10 % 10);
		p[3] = (char)('0' + ms % 10);
		p[4] = 'Z';
		p[5] = '\0';
	}
}

int fdn_registry__check_writable(fdn_registry *reg)
{
	if (reg->read_only)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_REGISTRY,
			"registry is read-only");
	return 0;
}

/* --- transactions -------------------------------------------------------- */

static void pending_drop(fdn_registry *reg, size_t keep)
{
	while (reg->pending.count > keep)
		fdn__free(reg->pending.records[--reg->pending.count]);
}

/* Hands the committed records to the sink; its failures are ignored on
 * purpose: history is already written and must not be undone. */
static void pending_flush(fdn_registry *reg)
{
	size_t i;

	for (i = 0; i < reg->pending.count; i++)
		if (reg->sink)
			reg->sink(reg->pending.records[i], reg->sink_payload);
	pending_drop(reg, 0);
}

static int savepoint(fdn_registry *reg, const char *verb, int level)
{
	char sql[64];
	int rc;

	/* The name is generated from an integer, not from input. */
	snprintf(sql, sizeof(sql), "%s fdn_sp%d", verb, level);
	rc = sqlite3_exec(reg->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : fdn_registry__sql_error(reg, rc, verb);
}

int fdn_registry__tx_begin(fdn_registry *reg)
{
	int rc;

	if (reg->tx_depth >= FDN_REGISTRY__TX_MAX)
		return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_REGISTRY,
			"transactions nested too deeply");
	if (reg->tx_depth == 0) {
		/* IMMEDIATE takes the write lock now: waiting for another
		 * writer happens here, under busy_timeout, and never as a
		 * deadlock-prone lock upgrade halfway through. */
		rc = sqlite3_exec(reg->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			return fdn_registry__sql_error(reg, rc, "begin");
	} else if ((rc = savepoint(reg, "SAVEPOINT", reg->tx_depth)) < 0) {
		return rc;
	}
	reg->tx_mark[reg->tx_depth] = reg->pending.count;
	reg->tx_depth++;
	return 0;
}

int fdn_registry__tx_commit(fdn_registry *reg)
{
	int rc;

	if (reg->tx_depth <= 0)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_REGISTRY,
			"commit without a transaction");
	if (reg->tx_depth > 1) {
		rc = savepoint(reg, "RELEASE", reg->tx_depth - 1);
		if (rc < 0)
			return fdn_registry__tx_rollback(reg, rc);
		reg->tx_depth--;
		return 0;
	}
	if ((rc = fdn_registry__storage_sync(reg)) < 0)
		return fdn_registry__tx_rollback(reg, rc);
	rc = sqlite3_exec(reg->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		rc = fdn_registry__sql_error(reg, rc, "commit");
		return fdn_registry__tx_rollback(reg, rc);
	}
	reg->tx_depth = 0;
	pending_flush(reg);
	return 0;
}

int fdn_registry__tx_rollback(fdn_registry *reg, int rc)
{
	char keep[FDN__ERROR_MESSAGE_MAX];
	const fdn_error *e = fdn_error_last();
	int code = e->code, klass = e->klass;

	if (reg->tx_depth <= 0)
		return rc;
	/* Rolling back must not overwrite the detail of what failed. */
	snprintf(keep, sizeof(keep), "%s", e->message);
	reg->tx_depth--;
	pending_drop(reg, reg->tx_mark[reg->tx_depth]);
	if (reg->tx_depth > 0) {
		if (savepoint(reg, "ROLLBACK TO", reg->tx_depth) == 0)
			savepoint(reg, "RELEASE", reg->tx_depth);
	} else if (!sqlite3_get_autocommit(reg->db)) {
		sqlite3_exec(reg->db, "ROLLBACK", NULL, NULL, NULL);
	}
	if (code != 0)
		fdn__error_set(code, klass, "%s", keep);
	return rc;
}

/* --- the public batch API -------------------------------------------------- */

int fdn_registry_begin(fdn_registry *reg)
{
	int rc;

	FDN__CHECK_ARG(reg, "reg");
	if ((rc = fdn_registry__check_writable(reg)) < 0)
		return rc;
	if (reg->in_batch || reg->tx_depth > 0)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_REGISTRY,
			"a batch is already in progress (batches do not nest)");
	if ((rc = fdn_registry__tx_begin(reg)) < 0)
		return rc;
	reg->in_batch = true;
	return 0;
}

int fdn_registry_commit(fdn_registry *reg)
{
	int rc;

	FDN__CHECK_ARG(reg, "reg");
	if (!reg->in_batch)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_REGISTRY,
			"commit: no batch in progress");
	reg->in_batch = false;
	rc = fdn_registry__tx_commit(reg);
	return rc;
}

int fdn_registry_rollback(fdn_registry *reg)
{
	FDN__CHECK_ARG(reg, "reg");
	if (!reg->in_batch)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_REGISTRY,
			"rollback: no batch in progress");
	reg->in_batch = false;
	fdn_registry__tx_rollback(reg, 0);
	return 0;
}

/* --- opening ----------------------------------------------------------- */

static int user_version(fdn_registry *reg, int *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = fdn_registry__prepare(reg, &st, "PRAGMA user_version")) < 0)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		rc = 0;
	} else {
		rc = fdn_registry__sql_error(reg, rc, "read schema version");
	}
	sqlite3_finalize(st);
	return rc;
}

/* Each step takes the schema from version i to i + 1. */
static const char *const migrations[] = {
	FDN_REGISTRY_SCHEMA_V1 "PRAGMA user_version = 1;",
};

static int migrate(fdn_registry *reg)
{
	int version, rc;
	json_t *d;

	/* The version is read again inside the write transaction: two
	 * processes creating the same registry must not both migrate. */
	if ((rc = fdn_registry__tx_begin(reg)) < 0)
		return rc;
	if ((rc = user_version(reg, &version)) < 0)
		return fdn_registry__tx_rollback(reg, rc);
	if (version > FDN_REGISTRY_SCHEMA_VERSION) {
		rc = fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_REGISTRY,
			"registry schema version %d is newer than this library's %d: "
			"upgrade libfednode", version, FDN_REGISTRY_SCHEMA_VERSION);
		return fdn_registry__tx_rollback(reg, rc);
	}
	if (version == FDN_REGISTRY_SCHEMA_VERSION)
		return fdn_registry__tx_commit(reg);
	for (int v = version; v < FDN_REGISTRY_SCHEMA_VERSION; v++)
		if ((rc = fdn_registry__exec(reg, migrations[v])) < 0)
			return fdn_registry__tx_rollback(reg, rc);
	d = json_pack("{s:i, s:i}", "from", version, "to", FDN_REGISTRY_SCHEMA_VERSION);
	rc = d ? fdn_registry__audit(reg, version == 0 ? "registry.create" : "registry.migrate", d)
	       : fdn__error_oom();
	json_decref(d);
	if (rc < 0)
		return fdn_registry__tx_rollback(reg, rc);
	return fdn_registry__tx_commit(reg);
}

static int open_db(fdn_registry *reg, const char *dbpath, const fdn_registry_options *o)
{
	int flags = SQLITE_OPEN_NOMUTEX | (o->read_only ? SQLITE_OPEN_READONLY
		: SQLITE_OPEN_READWRITE | (o->create ? SQLITE_OPEN_CREATE : 0));
	int rc, version;

	rc = sqlite3_open_v2(dbpath, &reg->db, flags, NULL);
	if (rc != SQLITE_OK)
		return fdn_registry__sql_error(reg, rc, "open registry database");
	sqlite3_extended_result_codes(reg->db, 1);
	sqlite3_busy_timeout(reg->db, o->busy_timeout_ms > 0 ? o->busy_timeout_ms : 5000);
	/* The first real read tells a database from any other file. */
	if ((rc = user_version(reg, &version)) < 0)
		return rc;
	if (!o->read_only) {
		/* WAL: readers never block the writer nor each other;
		 * synchronous=FULL: a returned commit survives power loss. */
		rc = fdn_registry__exec(reg, "PRAGMA journal_mode=WAL;"
			"PRAGMA synchronous=FULL;PRAGMA foreign_keys=ON;");
		if (rc < 0)
			return rc;
		/* Up to date: no write lock needed, so opening does not wait
		 * for (or time out on) another process's long batch. */
		if (version == FDN_REGISTRY_SCHEMA_VERSION)
			return 0;
		return migrate(reg);
	}
	if (version > FDN_REGISTRY_SCHEMA_VERSION)
		return fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_REGISTRY,
			"registry schema version %d is newer than this library's %d",
			version, FDN_REGISTRY_SCHEMA_VERSION);
	if (version < FDN_REGISTRY_SCHEMA_VERSION)
		return fdn__error_set(version == 0 ? FDN_EFORMAT : FDN_EUNSUPPORTED,
			FDN_ERRCLASS_REGISTRY,
			"registry schema version %d needs migrating: open it writable once",
			version);
	return fdn_registry__exec(reg, "PRAGMA foreign_keys=ON;");
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0777) != 0 && errno != EEXIST)
		return fdn__error_os(errno, "create folder '%s'", path);
	return 0;
}

static int open_impl(fdn_registry *reg, const char *path, const fdn_registry_options *o)
{
	fdn_buf dbpath = FDN_BUF_INIT, objects = FDN_BUF_INIT;
	struct stat st;
	int rc;

	reg->path = fdn__strdup(path);
	if (!reg->path || fdn_buf__printf(&dbpath, "%s/registry.db", path) < 0 ||
	    fdn_buf__printf(&objects, "%s/objects", path) < 0) {
		rc = fdn__error_oom();
		goto out;
	}
	reg->objects_dir = objects.ptr;
	objects.ptr = NULL;
	if (stat(dbpath.ptr, &st) != 0) {
		if (!o->create || o->read_only) {
			rc = fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_REGISTRY,
				"no registry in '%s'", path);
			goto out;
		}
		if ((rc = make_dir(path)) < 0)
			goto out;
	}
	if (!o->read_only && !o->storage && (rc = make_dir(reg->objects_dir)) < 0)
		goto out;
	rc = open_db(reg, dbpath.ptr, o);
out:
	fdn_buf_dispose(&dbpath);
	fdn_buf_dispose(&objects);
	return rc;
}

int fdn_registry_open(fdn_registry **out, const char *path, const fdn_registry_options *opts)
{
	fdn_registry_options o = FDN_REGISTRY_OPTIONS_INIT;
	fdn_registry *reg;
	int rc;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	FDN__CHECK_ARG(path && *path, "path");
	FDN__CHECK_VERSION(opts, FDN_REGISTRY_OPTIONS_VERSION, "registry options");
	if ((rc = fdn__check_init()) < 0)
		return rc;
	if (opts)
		o = *opts;
	if (o.storage && (o.storage->version == 0 || !o.storage->put || !o.storage->get))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_REGISTRY,
			"registry storage: version and put/get are required");
	if (!(reg = fdn__calloc(1, sizeof(*reg))))
		return fdn__error_oom();
	reg->read_only = o.read_only != 0;
	reg->sink = o.audit_sink;
	reg->sink_payload = o.audit_payload;
	reg->actor = fdn__strdup(o.actor ? o.actor : "libfednode");
	if (!reg->actor) {
		fdn__free(reg);
		return fdn__error_oom();
	}
	rc = open_impl(reg, path, &o);
	if (rc < 0) {
		fdn_registry_free(reg);
		return rc;
	}
	if (o.storage) {
		reg->storage = *o.storage;
	} else {
		fdn_registry__storage_default(&reg->storage, reg);
		reg->own_storage = true;
	}
	*out = reg;
	return 0;
}

void fdn_registry_free(fdn_registry *reg)
{
	size_t i;

	if (!reg)
		return;
	if (reg->tx_depth > 0) {
		/* An unfinished batch is abandoned, as a crash would. */
		reg->in_batch = false;
		reg->tx_depth = 1;
		fdn_registry__tx_rollback(reg, 0);
	}
	pending_drop(reg, 0);
	fdn__free(reg->pending.records);
	for (i = 0; i < reg->cache_count; i++)
		sqlite3_finalize(reg->cache[i].stmt);
	/* Keeps the planner's statistics current (cohort filters with labels
	 * depend on them); cheap when nothing changed.  A failure, e.g. on a
	 * read-only handle or a busy database, is harmless. */
	sqlite3_exec(reg->db, "PRAGMA optimize", NULL, NULL, NULL);
	sqlite3_close_v2(reg->db);
	fdn__free(reg->path);
	fdn__free(reg->objects_dir);
	fdn__free(reg->actor);
	fdn__free(reg);
}

/* --- statistics -------------------------------------------------------- */

int fdn_registry_stats_get(fdn_registry_stats *out, fdn_registry *reg)
{
	static const char sql[] =
		"SELECT (SELECT count(*) FROM patient),"
		" (SELECT count(*) FROM study),"
		" (SELECT count(*) FROM series),"
		" (SELECT count(*) FROM instance),"
		" (SELECT count(*) FROM patient WHERE consent = 'withdrawn'),"
		" (SELECT coalesce(sum(size), 0) FROM instance WHERE purged = 0),"
		" (SELECT count(*) FROM cohort),"
		" (SELECT count(*) FROM audit)";
	sqlite3_stmt *st;
	unsigned int version;
	int rc;

	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(reg, "reg");
	FDN__CHECK_VERSION(out, FDN_REGISTRY_STATS_VERSION, "registry stats");
	version = out->version;
	if ((rc = fdn_registry__prepare(reg, &st, sql)) < 0)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof(*out));
		out->version = version;
		out->patients = (uint64_t)sqlite3_column_int64(st, 0);
		out->studies = (uint64_t)sqlite3_column_int64(st, 1);
		out->series = (uint64_t)sqlite3_column_int64(st, 2);
		out->instances = (uint64_t)sqlite3_column_int64(st, 3);
		out->withdrawn_patients = (uint64_t)sqlite3_column_int64(st, 4);
		out->bytes = (uint64_t)sqlite3_column_int64(st, 5);
		out->cohorts = (uint64_t)sqlite3_column_int64(st, 6);
		out->audit_records = (uint64_t)sqlite3_column_int64(st, 7);
		rc = 0;
	} else {
		rc = fdn_registry__sql_error(reg, rc, "stats");
	}
	sqlite3_finalize(st);
	return rc;
}
