/*
 * De-identification internals shared by the files of lib/deid/: the
 * profile, the report, the per-element decision and the keyed pseudonyms.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_DEID_PRIVATE_H
#define FDN_DEID_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core_private.h"
#include "fednode/deid.h"
#include "deid/tables.h"

/* Site rule actions (the "action" member of a rules JSON entry). */
typedef enum fdn_deid_site_action {
	FDN_DEID_SITE_KEEP = 0,
	FDN_DEID_SITE_REMOVE,
	FDN_DEID_SITE_EMPTY,
	FDN_DEID_SITE_DUMMY,
	FDN_DEID_SITE_CLEAN,
	FDN_DEID_SITE_PSEUDONYMIZE
} fdn_deid_site_action;

typedef struct fdn_deid_site_rule {
	uint32_t tag;
	int action;          /* fdn_deid_site_action */
} fdn_deid_site_rule;

struct fdn_deid_profile {
	unsigned int options;        /* fdn_deid_option_flag bits */
	unsigned int table_mask;     /* the same as FDN_DEID_OPT_BIT() bits */
	unsigned char *key;          /* sodium_malloc'd, read-only */
	fdn_deid_site_rule *rules;   /* sorted by tag */
	size_t rule_count;
	fdn_deid_clean_cb clean;
	void *clean_payload;
	int allow_burned_in;
};

/* What is done to one element. */
typedef enum fdn_deid_op {
	FDN_DEID_OP_KEEP = 0,
	FDN_DEID_OP_DESCEND,   /* a sequence kept: the profile applies to its items */
	FDN_DEID_OP_REMOVE,
	FDN_DEID_OP_EMPTY,
	FDN_DEID_OP_DUMMY,
	FDN_DEID_OP_CLEAN,     /* free text: host callback, else emptied */
	FDN_DEID_OP_UID,
	FDN_DEID_OP_SHIFT,     /* DA/DT moved by the patient's offset */
	FDN_DEID_OP_PSEUDO,
	FDN_DEID_OP_CREATOR    /* Private Creator: kept if its block keeps elements */
} fdn_deid_op;

/* The decision for one element plus the Table E.1-1 code it came from. */
typedef struct fdn_deid_decision {
	fdn_deid_op op;
	const char *code;      /* "X", "Z", "K", ... or "rule:keep" for site rules */
} fdn_deid_decision;

/*
 * Decides what happens to the element reached by @p path (@p depth + 1
 * tags, the last one the element's) of VR @p vr; @p creator is its
 * block's Private Creator (NULL if none or not private).  Pure function
 * of the profile: apply and verify agree by construction.
 */
fdn_deid_decision fdn_deid__decide(const fdn_deid_profile *p, int sop_index,
	const uint32_t *path, size_t depth, const char *vr, const char *creator);

/* true for the VRs whose value is text (a dummy/clean string fits). */
bool fdn_deid__vr_is_text(const char *vr);

/* --- keyed pseudonyms (pseudo.c) ------------------------------------------- */

/* Appends "2.25.<decimal>" for @p uid (@p len bytes, padding ignored). */
int fdn_deid__uid_remap(fdn_buf *out, const fdn_deid_profile *p, const char *uid,
	size_t len);
/* Appends the pseudonym of @p id; @p short_form gives 16 characters for
 * VRs limited to 16 (SH, AE, CS). */
int fdn_deid__pseudonym(fdn_buf *out, const fdn_deid_profile *p, const char *id,
	size_t len, bool short_form);
/* The per-patient day offset (negative: into the past). */
long fdn_deid__date_offset(const fdn_deid_profile *p, const char *patient_id);
/* Appends the DA (or DT when @p is_dt) value @p v shifted by @p days; every
 * value of a multi-valued element and both ends of a range.  FDN_EFORMAT
 * (nothing appended that matters) when a value is not a date. */
int fdn_deid__shift_dates(fdn_buf *out, const char *v, size_t len, bool is_dt,
	long days);

/* --- reports (report.c) ---------------------------------------------------- */

typedef struct fdn_deid_entry {
	size_t path_off;       /* into the report's arena */
	const char *code;      /* static */
} fdn_deid_entry;

struct fdn_deid_report {
	size_t counts[FDN_DEID_PSEUDONYMIZED + 1];
	fdn_deid_entry *entries;
	size_t entry_count, entry_cap;
	fdn_buf arena;           /* NUL-separated paths */
	size_t *leaks;           /* offsets of leak descriptions in leak_arena */
	size_t leak_count, leak_cap;
	fdn_buf leak_arena;
	char *refusal;
	bool counts_only;        /* nobody will read the entries: skip them */
};

int fdn_deid__report_new(fdn_deid_report **out);
/* Records an entry whose path is the tags @p path[0..depth]. */
int fdn_deid__report_add(fdn_deid_report *r, const uint32_t *path, size_t depth,
	const char *code, int kind);
int fdn_deid__report_leak(fdn_deid_report *r, const char *fmt, ...)
	FDN__PRINTF(2, 3);
int fdn_deid__report_refuse(fdn_deid_report *r, const char *reason);

/* Formats tags as "(GGGG,EEEE)/(GGGG,EEEE)". */
int fdn_deid__path_string(fdn_buf *out, const uint32_t *path, size_t depth);

#endif
