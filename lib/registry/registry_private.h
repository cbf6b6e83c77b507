/*
 * libfednode: internals of the registry shared by every file of
 * lib/registry/ (registry core and cohorts).  Not installed.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_REGISTRY_PRIVATE_H
#define FDN_REGISTRY_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "fednode/registry.h"
#include "core/core_private.h"

/* Audit records appended inside the current transaction; handed to the
 * sink only once that transaction commits (a rolled-back change must
 * not appear to have happened). */
typedef struct fdn_registry__pending {
	char **records;
	size_t count, cap;
} fdn_registry__pending;

/* Deepest transaction nesting (batch + a call + its helpers). */
#define FDN_REGISTRY__TX_MAX 16
/* Statements fdn_registry__cached() keeps prepared. */
#define FDN_REGISTRY__CACHE_MAX 48

struct fdn_registry {
	sqlite3 *db;
	char *path;                    /* the registry folder */
	char *objects_dir;             /* <path>/objects (default storage) */
	fdn_registry_storage storage;  /* a copy of the host's, or the default */
	bool own_storage;              /* storage is the objects/ folder */
	/* objects/ files written in a batch without their own fsync, to be
	 * flushed (syncfs) before the batch commits: see store.c */
	bool objects_unsynced;
	fdn_audit_sink_cb sink;
	void *sink_payload;
	char *actor;
	bool read_only;
	bool in_batch;                 /* fdn_registry_begin() is in force */
	int tx_depth;                  /* fdn_registry__tx_begin nesting */
	/* pending.count when each nesting level began, so that a level
	 * rolled back drops exactly the sink records it appended */
	size_t tx_mark[FDN_REGISTRY__TX_MAX];
	fdn_registry__pending pending; /* sink records awaiting commit */
	/* prepared statements reused across calls, keyed by the address of
	 * their (constant) SQL text: see fdn_registry__cached() */
	struct { const char *sql; sqlite3_stmt *stmt; } cache[FDN_REGISTRY__CACHE_MAX];
	size_t cache_count;
};

/* Names the SQLite failure @p sqlite_rc of step @p what as an fdn error
 * and returns its code: BUSY/LOCKED -> FDN_EIO "database busy",
 * CONSTRAINT -> FDN_ECONFLICT, NOTADB/CORRUPT -> FDN_EFORMAT,
 * READONLY -> FDN_EINVALID, FULL/IOERR/CANTOPEN -> FDN_EIO,
 * NOMEM -> out of memory, others FDN_ERROR.  Message includes
 * sqlite3_errmsg() of @p reg's handle (which may be NULL). */
int fdn_registry__sql_error(fdn_registry *reg, int sqlite_rc, const char *what);

/* Prepares @p sql (a constant, with ? parameters: never spliced values).
 * On failure *stmt is NULL and the error is set via
 * fdn_registry__sql_error(). */
int fdn_registry__prepare(fdn_registry *reg, sqlite3_stmt **stmt, const char *sql);

/* A prepared statement for @p sql kept by the registry across calls
 * (hot paths such as add): @p sql must be a string literal, whose
 * address is the cache key.  Returned reset with no bindings; the
 * caller must NOT finalize it (sqlite3_reset after use is good manners,
 * it releases read locks early).  Freed by fdn_registry_free(). */
int fdn_registry__cached(fdn_registry *reg, sqlite3_stmt **stmt, const char *sql);

/* Runs @p sql (constant, no parameters, may hold several statements). */
int fdn_registry__exec(fdn_registry *reg, const char *sql);

/* Transactions that nest with the public batch API.  The outermost
 * begin issues BEGIN IMMEDIATE (the write lock is taken at once, so a
 * busy writer is waited for at the start instead of failing at commit);
 * inner ones only count.  A write outside a batch is thus its own
 * transaction, inside a batch it joins it.  commit of the outermost
 * level issues COMMIT and then hands pending audit records to the sink;
 * rollback at any level marks the transaction failed and, at the
 * outermost level, issues ROLLBACK.  Pattern:
 *
 *     if ((rc = fdn_registry__tx_begin(reg)) < 0) return rc;
 *     rc = ...work...;
 *     return rc < 0 ? fdn_registry__tx_rollback(reg, rc)
 *                   : fdn_registry__tx_commit(reg);
 *
 * tx_rollback returns @p rc (the error being propagated) so the error
 * detail set by the failing step is kept.  Inside a batch a failing
 * step rolls back only its own changes (a SAVEPOINT per nested level),
 * so one refused add does not abandon the batch. */
int fdn_registry__tx_begin(fdn_registry *reg);
int fdn_registry__tx_commit(fdn_registry *reg);
int fdn_registry__tx_rollback(fdn_registry *reg, int rc);

/* Appends an audit record of @p event with @p details (a JSON object,
 * or NULL for {}; borrowed, not stolen) inside the current transaction
 * (the caller must hold one: tx_begin).  Fills seq, time, actor and the
 * hash chain. */
int fdn_registry__audit(fdn_registry *reg, const char *event, json_t *details);
/* Appends one audit record in its own transaction (fdn_registry_audit()
 * without the JSON text). */
int fdn_registry__audit_json(fdn_registry *reg, const char *event, json_t *details);
/* The details of the newest record of @p event whose details.<field>
 * equals @p value (a new reference); FDN_ENOTFOUND when there is none. */
int fdn_registry__audit_find(json_t **details_out, fdn_registry *reg, const char *event,
	const char *field, const char *value);

/* The current UTC time as ISO 8601 "YYYY-MM-DDThh:mm:ss.sssZ" into
 * @p out (at least FDN_REGISTRY__TIME_SIZE bytes). */
#define FDN_REGISTRY__TIME_SIZE 32
void fdn_registry__now(char out[FDN_REGISTRY__TIME_SIZE]);

/* The storage's locator of object @p hash into @p out, or "" (empty
 * buffer, return 0) when the storage has none. */
int fdn_registry__locator(fdn_registry *reg, const char *hash, fdn_buf *out);

/* Lower-case hex SHA-256 of @p data (65 bytes with the NUL). */
#define FDN_REGISTRY__HASH_SIZE 65
int fdn_registry__sha256_hex(char out[FDN_REGISTRY__HASH_SIZE], const void *data, size_t size);
/* The snapshot hash (64 hex + NUL) of cohort @p name; FDN_ENOTFOUND. */
int fdn_registry__cohort_hash(char out[FDN_REGISTRY__HASH_SIZE], fdn_registry *reg,
	const char *name);

/* 0 unless @p reg is read-only (FDN_EINVALID "registry is read-only"). */
int fdn_registry__check_writable(fdn_registry *reg);

/* --- store.c: the default objects/ storage ----------------------------- */
/* Fills @p out with the objects/ storage of @p reg->objects_dir
 * (ud = reg: inside a batch it defers the per-file fsync to one
 * flush before COMMIT). */
void fdn_registry__storage_default(fdn_registry_storage *out, fdn_registry *reg);
/* Makes the objects written without fsync durable; called by the
 * outermost tx_commit before COMMIT, so that no row ever commits
 * ahead of its file. */
int fdn_registry__storage_sync(fdn_registry *reg);
/* true when @p hash is 64 lower-case hex characters (object names are
 * used as file names: nothing else may reach the file system). */
bool fdn_registry__hash_valid(const char *hash);

/* DICOM AS ("061Y", "006M", "012W", "030D") in years, or -1 when
 * malformed; study.age_years and age filters use the same conversion. */
double fdn_registry__age_years(const char *as);

#endif
