/*
 * libfednode: de-identification to DICOM PS3.15 2026c Annex E.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FEDNODE_DEID_H
#define FEDNODE_DEID_H

#include "common.h"
#include "dicom.h"

/** @file fednode/deid.h
 *  @brief The Basic Application Level Confidentiality Profile with every
 *         option of PS3.15 2026c Table E.1-1, keyed pseudonyms, date
 *         shifting, and verification.
 *
 *  Thread safety: an ::fdn_deid_profile is immutable once created and may
 *  be used by any number of threads at once (the clean callback must then
 *  be thread-safe); an ::fdn_deid_report belongs to one thread at a time.
 */

FDN_BEGIN_DECL

/** Options of Table E.1-1 (PS3.15 E.3), as bit flags. */
typedef enum fdn_deid_option_flag {
	FDN_DEID_RETAIN_SAFE_PRIVATE = 1u << 0,
	FDN_DEID_RETAIN_UIDS = 1u << 1,
	FDN_DEID_RETAIN_DEVICE_IDENTITY = 1u << 2,
	FDN_DEID_RETAIN_INSTITUTION_IDENTITY = 1u << 3,
	FDN_DEID_RETAIN_PATIENT_CHARACTERISTICS = 1u << 4,
	FDN_DEID_RETAIN_LONG_FULL_DATES = 1u << 5,
	FDN_DEID_RETAIN_LONG_MODIFIED_DATES = 1u << 6,
	FDN_DEID_CLEAN_DESCRIPTORS = 1u << 7,
	FDN_DEID_CLEAN_STRUCTURED_CONTENT = 1u << 8,
	FDN_DEID_CLEAN_GRAPHICS = 1u << 9
} fdn_deid_option_flag;

/** Bytes of a site secret. */
#define FDN_DEID_KEY_BYTES 32
/** The same as a function, for bindings. */
FDN_EXTERN(size_t) fdn_deid_key_bytes(void);

/**
 * Cleans one free-text value (action C) for the host: put the cleaned
 * UTF-8 text into @p out with fdn_buf_set() (an empty @p out empties the
 * value).  @p path names the element, @p vr its VR, @p value its UTF-8
 * text without padding.  Called on
 * the thread that runs fdn_deid_apply().  Non-zero stops the
 * de-identification, which returns that value.
 */
typedef int (*fdn_deid_clean_cb)(fdn_buf *out, const char *path, const char *vr,
	const char *value, void *payload);

/** Options for fdn_deid_profile_new().  Members are only ever appended. */
typedef struct fdn_deid_options {
	unsigned int version;          /**< ::FDN_DEID_OPTIONS_VERSION */
	unsigned int options;          /**< ::fdn_deid_option_flag bits */
	const unsigned char *key;      /**< the site secret, ::FDN_DEID_KEY_BYTES
	                                    bytes; copied into guarded memory */
	const char *rules_json;        /**< site rules or NULL: JSON text
	                                    {"rules": [{"tag": "(0010,1010)" or
	                                    "00101010" or "PatientAge",
	                                    "action": "keep" | "remove" |
	                                    "empty" | "dummy" | "clean" |
	                                    "pseudonymize"}, ...]}.  A rule
	                                    overrides Table E.1-1 and every
	                                    option for that tag at any depth;
	                                    private tags, File Meta and group
	                                    lengths are refused, as are unknown
	                                    members and repeated tags. */
	fdn_deid_clean_cb clean;       /**< NULL: clean = empty the value */
	void *clean_payload;
	int allow_burned_in;           /**< 1: de-identify images flagged or
	                                    suspected of burned-in annotation */
} fdn_deid_options;

#define FDN_DEID_OPTIONS_VERSION 1
#define FDN_DEID_OPTIONS_INIT { FDN_DEID_OPTIONS_VERSION, 0, NULL, NULL, NULL, NULL, 0 }

/** Fills @p opts with the defaults of structure version @p version. */
FDN_EXTERN(int) fdn_deid_options_init(fdn_deid_options *opts, unsigned int version);

/** A de-identification profile: options, site rules and the site key. */
typedef struct fdn_deid_profile fdn_deid_profile;

/**
 * Creates a profile.
 * @return 0; FDN_EINVALID for contradictory options (both longitudinal
 *         date options), a missing or short key, or malformed rules (the
 *         message says which rule and why).
 */
FDN_EXTERN(int) fdn_deid_profile_new(fdn_deid_profile **out, const fdn_deid_options *opts);

/** Frees a profile, wiping its key.  NULL is a no-op. */
FDN_EXTERN(void) fdn_deid_profile_free(fdn_deid_profile *profile);

/** What happened to a dataset. */
typedef struct fdn_deid_report fdn_deid_report;

/**
 * De-identifies @p ds in place.  On any failure @p ds must be discarded:
 * it may be partly changed.
 *
 * Refused unless @c allow_burned_in: Burned In Annotation (0028,0301) or
 * Recognizable Visual Features (0028,0302) YES; Burned In Annotation
 * absent (or not NO) for modalities US, IVUS, OT, SC, DOC, XC, ES, GM,
 * SM, OP and the SOP Classes under 1.2.840.10008.5.1.4.1.1.7 (Secondary
 * Capture), .6 and .3.1 (Ultrasound), .104 (Encapsulated Documents) and
 * .77.1 (Visible Light).
 *
 * Patient ID becomes fdn_deid_pseudonym_for() of its value, Patient Name
 * that pseudonym followed by "^"; with the Modified Dates option every
 * DA and DT the option cleans moves by one offset per Patient ID (1 to
 * 3650 days back; TM unchanged; an unparsable date is emptied).  The
 * output is marked per PS3.15 E.1.1: (0012,0062) YES, (0012,0063),
 * (0012,0064) with the CID 7050 codes and (0028,0303).  Thread-safe for
 * distinct datasets sharing one profile.
 * @param report_out optional: receives the report (also on FDN_EPHI, with
 *        the reason); free it with fdn_deid_report_free().
 * @return 0; FDN_EPHI when the image is refused (burned-in annotation,
 *         recognizable visual features) — @p ds is then unchanged;
 *         the clean callback's non-zero value; FDN_EINVALID.
 */
FDN_EXTERN(int) fdn_deid_apply(fdn_deid_report **report_out,
	const fdn_deid_profile *profile, fdn_dataset *ds);

/**
 * The keyed pseudonym the profile gives Patient ID @p patient_id (the
 * value written to PatientID, and to PatientName as "<pseudonym>^"):
 * "FDN-" and 26 base32 characters (128 bits of BLAKE2b keyed with the
 * site key; trailing spaces of @p patient_id are ignored),
 * so that a consent withdrawal for a known patient finds the
 * de-identified data without a re-identification table.
 * @param out replaced with the pseudonym.
 */
FDN_EXTERN(int) fdn_deid_pseudonym_for(fdn_buf *out, const fdn_deid_profile *profile,
	const char *patient_id);

/**
 * Looks for identifying content of @p original left in @p deidentified:
 * every value the profile should have removed or replaced is searched
 * for in the de-identified dataset's encoded bytes (nested, private and
 * pixel-adjacent elements included; the Pixel Data value itself is not
 * searched, see the burned-in guard), as stored and as UTF-8, each value
 * of a multi-valued element and each name component on its own.  Values
 * shorter than 4 bytes (6 for numbers, 8 for binary), values made of one
 * repeated byte, and values that also occur in attributes the profile
 * keeps or in the library's own dummies and marking are not searched:
 * they would match by chance.  A finding reads "<path>: <n>-byte value
 * found at byte offset <o>" (for a header-only @p deidentified: "in the
 * value of <path> at offset <o>"); it never contains the value.
 * @param report_out receives the findings (fdn_deid_report_leak_count).
 * @return 0 when nothing leaked, FDN_EPHI when something did, or an error.
 */
FDN_EXTERN(int) fdn_deid_verify(fdn_deid_report **report_out,
	const fdn_deid_profile *profile, const fdn_dataset *original,
	const fdn_dataset *deidentified);

/** Actions as counted by a report. */
typedef enum fdn_deid_action_kind {
	FDN_DEID_KEPT = 0,      /**< K, and attributes no rule names */
	FDN_DEID_REMOVED = 1,   /**< X */
	FDN_DEID_EMPTIED = 2,   /**< Z */
	FDN_DEID_DUMMIED = 3,   /**< D */
	FDN_DEID_CLEANED = 4,   /**< C */
	FDN_DEID_UID_REPLACED = 5, /**< U */
	FDN_DEID_DATE_SHIFTED = 6, /**< C on dates with Modified Dates */
	FDN_DEID_PSEUDONYMIZED = 7 /**< Patient ID / Name */
} fdn_deid_action_kind;

/** How many attributes got action @p kind. */
FDN_EXTERN(size_t) fdn_deid_report_count(const fdn_deid_report *report, int kind);

/** Number of (path, action) entries: one per element visited. */
FDN_EXTERN(size_t) fdn_deid_report_entry_count(const fdn_deid_report *report);

/** Entry @p i as borrowed strings (living as long as @p report): the
 *  path as tags, "(0008,9215)/(0008,1155)" (item numbers are not known
 *  to the editor yet), and the Table E.1-1 code applied ("X", "Z", "D",
 *  "K", "C", "U"; the resolved code for composites).  Either pointer may
 *  be NULL.  @return 0, FDN_ENOTFOUND past the end. */
FDN_EXTERN(int) fdn_deid_report_entry(const fdn_deid_report *report, size_t i,
	const char **path, const char **action);

/** The reason an image was refused (FDN_EPHI), or NULL. */
FDN_EXTERN(const char *) fdn_deid_report_refusal(const fdn_deid_report *report);

/** Leaks found by fdn_deid_verify(); leak @p i as a borrowed description. */
FDN_EXTERN(size_t) fdn_deid_report_leak_count(const fdn_deid_report *report);
FDN_EXTERN(const char *) fdn_deid_report_leak(const fdn_deid_report *report, size_t i);

/** Frees a report.  NULL is a no-op. */
FDN_EXTERN(void) fdn_deid_report_free(fdn_deid_report *report);

/**
 * Creates a new random site key file at @p path, mode 0600, refusing to
 * overwrite an existing file (FDN_ECONFLICT, also when another process
 * creates it at the same moment).  @return 0, FDN_ECONFLICT, FDN_EIO.
 */
FDN_EXTERN(int) fdn_deid_key_generate(const char *path);

/**
 * Loads a site key file into @p key (::FDN_DEID_KEY_BYTES bytes) — pass
 * memory from sodium_malloc or wipe it after use.
 * @return 0; FDN_EINVALID (wrong size, or the file is readable by group
 *         or others: the message says to chmod 600); FDN_ENOTFOUND.
 */
FDN_EXTERN(int) fdn_deid_key_load(unsigned char *key, size_t key_size, const char *path);

FDN_END_DECL

#endif
