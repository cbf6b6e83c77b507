/*
 * libfednode: the dataset registry — catalogue, content-addressed store,
 * labels, consent, cohorts and a tamper-evident audit log.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FEDNODE_REGISTRY_H
#define FEDNODE_REGISTRY_H

#include "common.h"
#include "dicom.h"
#include "deid.h"

/** @file fednode/registry.h
 *  @brief What the node holds, who consented, which cohort trained what —
 *         answerable years later, with proof that nobody edited the record.
 *
 *  A registry is a folder: `registry.db` (SQLite, WAL, synchronous=FULL:
 *  a returned commit survives power loss) and `objects/` (de-identified
 *  files stored by SHA-256) unless the host supplies its own storage.
 *
 *  Thread safety: an ::fdn_registry handle may be used by one thread at a
 *  time; open one handle per thread.  Several processes may open the same
 *  registry: readers run concurrently, writers take turns (a busy writer
 *  is waited for up to the busy timeout, then FDN_EIO "database busy").
 *  An ::fdn_cohort_iter belongs to the thread of its registry handle.
 */

FDN_BEGIN_DECL

/** The registry schema version this library writes (SQLite user_version). */
#define FDN_REGISTRY_SCHEMA_VERSION 1
FDN_EXTERN(int) fdn_registry_schema_version(void);

/* ------------------------------------------------------------------ */
/** @name Storage of files (host-implemented interface)
 *  @{ */

/**
 * Where the de-identified files live.  The default keeps them in the
 * registry's `objects/` folder; a PACS can keep them in its archive
 * instead.  Objects are named by the lower-case hex SHA-256 of their
 * content (64 characters).  Called on the thread using the registry.
 * Every method returns 0 or an fdn_error_code (FDN_ENOTFOUND for a
 * missing object); the library calls a method only when
 * `version >= N` for the version that introduced it and it is not NULL.
 */
typedef struct fdn_registry_storage {
	unsigned int version;  /**< ::FDN_REGISTRY_STORAGE_VERSION */
	/** Stores @p size bytes under @p hash, durably, atomically; storing an
	 *  existing object again is a success. */
	int (*put)(void *ud, const char *hash, const void *data, size_t size);
	/** Reads the object into @p out (replace its content with fdn_buf_set). */
	int (*get)(void *ud, const char *hash, fdn_buf *out);
	/** Removes the object; a missing one is a success. */
	int (*del)(void *ud, const char *hash);
	/** A locator the host's tools understand (a path, a URL) into @p out,
	 *  or FDN_ENOTFOUND when there is none. */
	int (*locate)(void *ud, const char *hash, fdn_buf *out);
	void *ud;
} fdn_registry_storage;

#define FDN_REGISTRY_STORAGE_VERSION 1

/** @} */

/* ------------------------------------------------------------------ */
/** @name Opening
 *  @{ */

/** Receives each audit record as it is appended (e.g. to forward it to
 *  syslog or a SIEM).  @p json is the record as stored.  Runs on the
 *  thread that made the change, after it committed; its return value is
 *  ignored (a failing sink must not undo history). */
typedef void (*fdn_audit_sink_cb)(const char *json, void *payload);

typedef struct fdn_registry_options {
	unsigned int version;       /**< ::FDN_REGISTRY_OPTIONS_VERSION */
	int create;                 /**< 1: create the registry if it is absent */
	int read_only;              /**< 1: open for reading only */
	int busy_timeout_ms;        /**< wait for a busy writer; 0: 5000 ms */
	const fdn_registry_storage *storage; /**< NULL: the objects/ folder */
	fdn_audit_sink_cb audit_sink;
	void *audit_payload;
	const char *actor;          /**< who acts, recorded in the audit log
	                                 (user, service); NULL: "libfednode" */
} fdn_registry_options;

#define FDN_REGISTRY_OPTIONS_VERSION 1
#define FDN_REGISTRY_OPTIONS_INIT \
	{ FDN_REGISTRY_OPTIONS_VERSION, 0, 0, 0, NULL, NULL, NULL, NULL }

FDN_EXTERN(int) fdn_registry_options_init(fdn_registry_options *opts, unsigned int version);

typedef struct fdn_registry fdn_registry;

/**
 * Opens (or, with `create`, creates) the registry in folder @p path.
 * Older schemas are migrated forward in one transaction; a newer schema
 * than this library knows is refused (FDN_EUNSUPPORTED).
 * @return 0; FDN_ENOTFOUND (no registry and not `create`); FDN_EUNSUPPORTED;
 *         FDN_EFORMAT (not a registry database); FDN_EIO.
 */
FDN_EXTERN(int) fdn_registry_open(fdn_registry **out, const char *path,
	const fdn_registry_options *opts);

/** Closes the registry.  NULL is a no-op. */
FDN_EXTERN(void) fdn_registry_free(fdn_registry *reg);

/** @} */

/* ------------------------------------------------------------------ */
/** @name Adding instances
 *  @{ */

/** Flags for fdn_registry_add(). */
typedef enum fdn_registry_add_flags {
	FDN_REGISTRY_ADD_DEFAULT = 0,
	/** Accept a dataset without Patient Identity Removed (0012,0062) = YES.
	 *  Only for data known to be free of PHI by other means. */
	FDN_REGISTRY_ADD_ALLOW_IDENTIFIED = 1u << 0
} fdn_registry_add_flags;

/** What fdn_registry_add() did. */
typedef enum fdn_registry_add_result {
	FDN_REGISTRY_ADDED = 0,          /**< new instance */
	FDN_REGISTRY_ALREADY_PRESENT = 1 /**< same SOP Instance UID, same content */
} fdn_registry_add_result;

/**
 * Adds a de-identified instance: writes it with fdn_dataset_write_buffer(),
 * stores the bytes by SHA-256, and records patient (pseudonym), study,
 * series and instance with the ::fdn_instance_info fields; audited.
 * Inside a batch (fdn_registry_begin()) the rows commit with the batch.
 * @param result optional ::fdn_registry_add_result.
 * @return 0; FDN_EPHI (Patient Identity Removed is not YES and the flag is
 *         absent); FDN_ECONFLICT (the SOP Instance UID is registered with
 *         other content); FDN_EINVALID (header-only dataset, no UIDs).
 */
FDN_EXTERN(int) fdn_registry_add(int *result, fdn_registry *reg, const fdn_dataset *ds,
	unsigned int flags);

/** Starts a batch: the following changes commit together (much faster
 *  for many instances).  Batches do not nest. */
FDN_EXTERN(int) fdn_registry_begin(fdn_registry *reg);
/** Commits the batch durably. */
FDN_EXTERN(int) fdn_registry_commit(fdn_registry *reg);
/** Abandons the batch: none of its rows remain (stored objects may stay,
 *  unreferenced, and are harmless). */
FDN_EXTERN(int) fdn_registry_rollback(fdn_registry *reg);

/** Counts of what the registry holds. */
typedef struct fdn_registry_stats {
	unsigned int version;   /**< ::FDN_REGISTRY_STATS_VERSION, set by the caller */
	uint64_t patients, studies, series, instances;
	uint64_t withdrawn_patients;
	uint64_t bytes;         /**< stored file sizes */
	uint64_t cohorts;
	uint64_t audit_records;
} fdn_registry_stats;

#define FDN_REGISTRY_STATS_VERSION 1

FDN_EXTERN(int) fdn_registry_stats_get(fdn_registry_stats *out, fdn_registry *reg);

/** @} */

/* ------------------------------------------------------------------ */
/** @name Labels
 *  @{ */

/** What a label is attached to. */
typedef enum fdn_label_level {
	FDN_LABEL_STUDY = 0,
	FDN_LABEL_SERIES = 1,
	FDN_LABEL_INSTANCE = 2
} fdn_label_level;

/**
 * Sets label @p key to @p value on the study, series or instance with
 * UID @p uid (an empty @p value removes it); audited.  Keys are
 * [A-Za-z0-9_.-], at most 64 bytes; values UTF-8, at most 4096 bytes.
 * @return 0, FDN_ENOTFOUND (no such UID), FDN_EINVALID.
 */
FDN_EXTERN(int) fdn_registry_label(fdn_registry *reg, int level, const char *uid,
	const char *key, const char *value);

/** @} */

/* ------------------------------------------------------------------ */
/** @name Consent
 *  @{ */

/**
 * Records that a patient withdrew consent: from now on the patient is in
 * no new cohort and is skipped when existing cohorts are iterated.
 * @p patient is the pseudonym as stored, or, when @p profile is given,
 * the original Patient ID, turned into its pseudonym with
 * fdn_deid_pseudonym_for() (no re-identification table is needed, and
 * the original is neither stored nor logged).  With @p purge the
 * patient's files are deleted from storage and their instances marked
 * purged.  Audited with @p reason.
 * @return 0, FDN_ENOTFOUND (no such patient).
 */
FDN_EXTERN(int) fdn_registry_withdraw(fdn_registry *reg, const char *patient,
	const fdn_deid_profile *profile, const char *reason, int purge);

/** Grants (again) consent for a patient (arguments as for
 *  fdn_registry_withdraw()); audited. */
FDN_EXTERN(int) fdn_registry_grant(fdn_registry *reg, const char *patient,
	const fdn_deid_profile *profile, const char *reason);

/** @} */

/* ------------------------------------------------------------------ */
/** @name Cohorts
 *  Filter language (doc/registry.md):
 *
 *      filter  := or
 *      or      := and ("OR" and)*
 *      and     := not ("AND" not)*
 *      not     := "NOT" not | "(" or ")" | cmp
 *      cmp     := field op value | field "IN" "(" value ("," value)* ")"
 *               | field "BETWEEN" value "AND" value
 *      field   := modality | body_part | manufacturer | study_date | sex
 *               | age | rows | columns | frames | sop_class | series_description
 *               | study_description | label.<key>
 *      op      := "=" | "!=" | "<" | "<=" | ">" | ">="
 *      value   := 'text' | number
 *
 *  Keywords are case-insensitive; strings are single-quoted ('' escapes a
 *  quote).  Filters become parameterized SQL: values are never spliced
 *  into SQL text.
 *  @{ */

/**
 * Checks @p filter without running it.  On a syntax error returns
 * FDN_EINVALID with the message "filter column N: ..." and, if
 * @p column is not NULL, the 1-based column.
 */
FDN_EXTERN(int) fdn_registry_filter_check(int *column, const char *filter);

/** Counts the instances (of consenting patients) that match @p filter. */
FDN_EXTERN(int) fdn_registry_query_count(uint64_t *out, fdn_registry *reg, const char *filter);

/**
 * Creates cohort @p name: the instances matching @p filter now, frozen as
 * a membership snapshot whose SHA-256 (over the sorted SOP Instance UIDs)
 * identifies it; audited.
 * @param hash_out optional: receives the snapshot hash (64 hex + NUL).
 * @return 0, FDN_ECONFLICT (the name exists), FDN_EINVALID (bad filter).
 */
FDN_EXTERN(int) fdn_cohort_create(char *hash_out, fdn_registry *reg, const char *name,
	const char *filter);

/** One member of a cohort, as iteration yields it. */
typedef struct fdn_cohort_member {
	unsigned int version;       /**< ::FDN_COHORT_MEMBER_VERSION (library-set) */
	const char *sop_instance_uid;
	const char *series_instance_uid;
	const char *study_instance_uid;
	const char *patient;        /**< pseudonym */
	const char *modality;
	const char *sha256;
	const char *locator;        /**< a path or the host's locator; "" if none */
	const char *labels_json;    /**< {"key": "value", ...} of instance, series
	                                 and study labels (the most specific wins) */
	uint64_t size;
} fdn_cohort_member;

#define FDN_COHORT_MEMBER_VERSION 1

typedef struct fdn_cohort_iter fdn_cohort_iter;

/**
 * Iterates cohort @p name.  Consent is checked at use time: members of
 * patients who withdrew since the snapshot are skipped.  The use is
 * audited (with @p purpose).
 */
FDN_EXTERN(int) fdn_cohort_iter_new(fdn_cohort_iter **out, fdn_registry *reg,
	const char *name, const char *purpose);
/** The next member (strings live until the next call), or FDN_ENOTFOUND
 *  at the end. */
FDN_EXTERN(int) fdn_cohort_iter_next(fdn_cohort_member *out, fdn_cohort_iter *it);
FDN_EXTERN(void) fdn_cohort_iter_free(fdn_cohort_iter *it);

/** Manifest formats. */
typedef enum fdn_manifest_format {
	FDN_MANIFEST_JSON = 0,
	FDN_MANIFEST_CSV = 1
} fdn_manifest_format;

/** Writes cohort @p name's current members (consent re-checked) as a
 *  manifest for training pipelines into @p out; audited as an export. */
FDN_EXTERN(int) fdn_cohort_export(fdn_buf *out, fdn_registry *reg, const char *name,
	int format);

/** @} */

/* ------------------------------------------------------------------ */
/** @name Audit log
 *  Every change and every data use is appended as a JSON record whose
 *  SHA-256 chains to the previous record's: an edited, deleted or
 *  reordered record breaks the chain.
 *  @{ */

/**
 * Appends an audit record of @p event (e.g. "federation.approve",
 * "round.participate") with @p details_json (a JSON object, or NULL) —
 * how later modules and hosts record data use.
 */
FDN_EXTERN(int) fdn_registry_audit(fdn_registry *reg, const char *event,
	const char *details_json);

/**
 * Recomputes the audit chain and re-hashes every stored file.
 * @param problem_out optional: replaced with a description of the first
 *        problem (broken link and its sequence number, or a file whose
 *        content no longer matches).
 * @return 0 when everything is intact, FDN_EAUTH at the first problem.
 */
FDN_EXTERN(int) fdn_registry_verify(fdn_buf *problem_out, fdn_registry *reg);

/** The audit records with sequence number >= @p since, as a JSON array. */
FDN_EXTERN(int) fdn_registry_audit_export(fdn_buf *out, fdn_registry *reg, uint64_t since);

/** @} */

FDN_END_DECL

#endif
