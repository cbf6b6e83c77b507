/*
 * libfednode: DICOM import — read, inspect, modify and write datasets,
 * and scan directory trees.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FEDNODE_DICOM_H
#define FEDNODE_DICOM_H

#include "common.h"

/** @file fednode/dicom.h
 *  @brief DICOM datasets (PS3.5/PS3.10) and directory scans.
 *
 *  Every input is checked structurally before it is parsed: element
 *  lengths against the bytes that remain, value representations,
 *  sequence and item nesting, the File Meta group.  A malformed input is
 *  refused with FDN_EFORMAT and a message that names the file (or
 *  "buffer") and the byte offset; nothing is allocated beyond what the
 *  input can hold.
 *
 *  Paths.  Elements are named by a path of components separated by '/'.
 *  A component is a keyword ("PatientName"), a tag as "(0010,0010)" or
 *  "00100010", optionally followed by "[N]" to select item N (from 0) of
 *  a sequence: "ReferencedImageSequence[0]/ReferencedSOPInstanceUID".
 *  Every component but the last must select a sequence item.
 *
 *  Thread safety: an ::fdn_dataset may be used by one thread at a time;
 *  distinct datasets on distinct threads need no locking.  fdn_scan()
 *  parses on its own worker threads but runs every callback on the
 *  calling thread.
 */

FDN_BEGIN_DECL

/* ------------------------------------------------------------------ */
/** @name Tags and the data dictionary
 *  @{ */

/** Builds a tag from group and element: FDN_TAG(0x0010, 0x0010). */
#define FDN_TAG(group, element) \
	((uint32_t)(((uint32_t)(group) << 16) | ((uint32_t)(element) & 0xFFFFu)))

/** The tag of a PS3.6 keyword, e.g. "PatientName" -> 0x00100010.
 *  @return 0, FDN_ENOTFOUND for an unknown keyword, FDN_EINVALID for NULL. */
FDN_EXTERN(int) fdn_tag_from_keyword(uint32_t *out, const char *keyword);

/** The PS3.6 keyword of @p tag (static string), or NULL when the tag is
 *  private or not in the dictionary. */
FDN_EXTERN(const char *) fdn_tag_keyword(uint32_t tag);

/** The dictionary VR of @p tag ("PN", "US", "OB or OW" is given as "OW",
 *  ...; static string), or NULL when unknown. */
FDN_EXTERN(const char *) fdn_tag_vr(uint32_t tag);

/** @} */

/* ------------------------------------------------------------------ */
/** @name Reading
 *  @{ */

/** A DICOM dataset with its File Meta information. */
typedef struct fdn_dataset fdn_dataset;

/** Flags for the read functions. */
typedef enum fdn_read_flags {
	FDN_READ_FULL = 0,          /**< Read everything, Pixel Data included. */
	FDN_READ_HEADER_ONLY = 1u << 0, /**< Stop before the top-level Pixel Data
	                                    (7FE0,0010).  Such a dataset cannot be
	                                    written. */
	FDN_READ_SUMMARY = 1u << 1     /**< Header-only, and keep only the
	                                    top-level elements ::fdn_instance_info
	                                    reports (with the Specific Character
	                                    Set): the fastest way to catalogue.
	                                    Implies ::FDN_READ_HEADER_ONLY. */
} fdn_read_flags;

/**
 * Reads a DICOM file: Part 10 files with preamble and File Meta, bare
 * datasets without File Meta (implicit or explicit VR little endian),
 * every transfer syntax GDCM reads (implicit/explicit little endian,
 * explicit big endian, deflated, the JPEG family, JPEG-LS, JPEG 2000,
 * RLE; compressed Pixel Data is kept as it is, not decoded), and
 * DICOMDIR files.
 *
 * @param out    receives the dataset; free it with fdn_dataset_free().
 * @param path   file to read.
 * @param flags  ::fdn_read_flags.
 * @return 0; FDN_ENOTFOUND (no such file), FDN_EIO (unreadable),
 *         FDN_EFORMAT (not DICOM, or malformed: the message names the
 *         file and the byte offset), FDN_EINVALID (bad argument).
 */
FDN_EXTERN(int) fdn_dataset_read_file(fdn_dataset **out, const char *path,
	unsigned int flags);

/**
 * Reads a DICOM dataset from memory, e.g. what a PACS just received.
 * The library reads @p data in place during the call and keeps no
 * reference to it: the caller may free or reuse it as soon as the call
 * returns, and need not copy it first.
 *
 * @return as fdn_dataset_read_file(); messages say "buffer".
 */
FDN_EXTERN(int) fdn_dataset_read_buffer(fdn_dataset **out, const void *data,
	size_t size, unsigned int flags);

/**
 * Creates an empty dataset to be filled with the set functions and
 * written.
 * @param transfer_syntax_uid the transfer syntax to write with; NULL
 *        means explicit VR little endian (1.2.840.10008.1.2.1).  Only
 *        the uncompressed and deflated syntaxes are accepted here.
 * @return 0, FDN_EUNSUPPORTED for another transfer syntax.
 */
FDN_EXTERN(int) fdn_dataset_new(fdn_dataset **out, const char *transfer_syntax_uid);

/** A deep copy of @p ds, free with fdn_dataset_free(). */
FDN_EXTERN(int) fdn_dataset_clone(fdn_dataset **out, const fdn_dataset *ds);

/** Frees a dataset and everything borrowed from it.  NULL is a no-op. */
FDN_EXTERN(void) fdn_dataset_free(fdn_dataset *ds);

/** @} */

/* ------------------------------------------------------------------ */
/** @name Inspecting
 *  Values are borrowed or copied as each function says; strings are
 *  UTF-8, converted from the dataset's Specific Character Set (0008,0005)
 *  with trailing padding removed.
 *  @{ */

/** The transfer syntax UID (borrowed, lives as long as @p ds). */
FDN_EXTERN(const char *) fdn_dataset_transfer_syntax(const fdn_dataset *ds);

/** The file the dataset was read from (borrowed), or NULL. */
FDN_EXTERN(const char *) fdn_dataset_source(const fdn_dataset *ds);

/** 1 when the dataset was read with ::FDN_READ_HEADER_ONLY, else 0. */
FDN_EXTERN(int) fdn_dataset_is_header_only(const fdn_dataset *ds);

/** 1 when the element at @p path exists, 0 when not, or FDN_EINVALID
 *  for a malformed path. */
FDN_EXTERN(int) fdn_dataset_contains(const fdn_dataset *ds, const char *path);

/**
 * The value of a string or number element as UTF-8 text.  Several
 * values are joined with '\\'.  Binary numbers (US, SS, UL, SL, UV, SV,
 * FL, FD, AT) are formatted as decimal text; FL and FD with enough
 * digits to read back the same value.
 * @param out a buffer the caller disposes with fdn_buf_dispose().
 * @return 0; FDN_ENOTFOUND (no such element); FDN_EINVALID (bad path,
 *         or a binary VR such as OB, or a sequence); FDN_EFORMAT (text
 *         that is not valid in its character set).
 */
FDN_EXTERN(int) fdn_dataset_get_string(fdn_buf *out, const fdn_dataset *ds,
	const char *path);

/**
 * Value @p index (from 0) of a numeric element: IS, DS, US, SS, UL, SL,
 * UV, SV, FL, FD.
 * @return 0; FDN_ENOTFOUND (no element, or @p index >= its multiplicity);
 *         FDN_EINVALID (not numeric); FDN_EFORMAT (IS/DS text that is
 *         not a number).
 */
FDN_EXTERN(int) fdn_dataset_get_number(double *out, const fdn_dataset *ds,
	const char *path, size_t index);

/** As fdn_dataset_get_number() but exact for 64-bit integers; a value
 *  that is not integral is FDN_EINVALID. */
FDN_EXTERN(int) fdn_dataset_get_int(int64_t *out, const fdn_dataset *ds,
	const char *path, size_t index);

/** The raw value bytes, for any VR but SQ.  Multi-byte binary values
 *  (OW, US, FL, ...) are in little-endian order whatever the transfer
 *  syntax (big-endian input is swapped when it is read); encapsulated
 *  Pixel Data gives its fragments concatenated.
 *  @return 0, FDN_ENOTFOUND, FDN_EINVALID. */
FDN_EXTERN(int) fdn_dataset_get_bytes(fdn_buf *out, const fdn_dataset *ds,
	const char *path);

/** What iteration and fdn_dataset_get_element() say about an element. */
typedef struct fdn_element_info {
	unsigned int version;   /**< ::FDN_ELEMENT_INFO_VERSION, set by the caller
	                             of fdn_dataset_get_element(), by the library
	                             in callbacks. */
	uint32_t tag;
	char vr[4];             /**< "PN", "SQ", ... NUL-terminated. */
	uint32_t length;        /**< Value length in bytes; 0xFFFFFFFF undefined. */
	size_t vm;              /**< Values (items for SQ; 1 for binary blobs). */
	size_t depth;           /**< 0 at top level, 1 inside a top-level item, ... */
	const char *path;       /**< Full path, e.g. "(0008,1140)[0]/(0008,1155)";
	                             valid during the callback or until the next
	                             call on @p ds. */
	const char *keyword;    /**< PS3.6 keyword or NULL (private, unknown). */
} fdn_element_info;

#define FDN_ELEMENT_INFO_VERSION 1

/** Describes the element at @p path.  @return 0, FDN_ENOTFOUND, FDN_EINVALID. */
FDN_EXTERN(int) fdn_dataset_get_element(fdn_element_info *out,
	const fdn_dataset *ds, const char *path);

/** Flags for fdn_dataset_foreach(). */
typedef enum fdn_foreach_flags {
	FDN_FOREACH_RECURSIVE = 1u << 0 /**< Also visit the elements of every
	                                     sequence item, depth first, right
	                                     after their sequence. */
} fdn_foreach_flags;

/**
 * Called for each element in tag order.  Return 0 to go on; a non-zero
 * value stops the iteration, which returns it.  The callback must not
 * modify @p ds.
 */
typedef int (*fdn_element_cb)(const fdn_element_info *element, void *payload);

/**
 * Visits the elements of the dataset (@p path NULL or "") or of one
 * sequence item (@p path such as "ReferencedImageSequence[0]").
 * @return 0, the callback's non-zero value, FDN_ENOTFOUND, FDN_EINVALID.
 */
FDN_EXTERN(int) fdn_dataset_foreach(const fdn_dataset *ds, const char *path,
	unsigned int flags, fdn_element_cb cb, void *payload);

/** Tri-state answers of ::fdn_instance_info. */
typedef enum fdn_tristate {
	FDN_UNKNOWN = -1, /**< The element is absent or holds another value. */
	FDN_NO = 0,
	FDN_YES = 1
} fdn_tristate;

/**
 * The summary of an instance that the registry and the de-identifier
 * use.  The caller sets @c version; the library fills the members that
 * version covers.  Strings are UTF-8, never NULL ("" when absent), and
 * borrowed from the dataset: they live until it is freed or modified.
 */
typedef struct fdn_instance_info {
	unsigned int version;            /**< ::FDN_INSTANCE_INFO_VERSION */
	const char *sop_class_uid;       /**< (0008,0016) */
	const char *sop_instance_uid;    /**< (0008,0018) */
	const char *study_instance_uid;  /**< (0020,000D) */
	const char *series_instance_uid; /**< (0020,000E) */
	const char *transfer_syntax_uid; /**< (0002,0010) */
	const char *modality;            /**< (0008,0060) */
	const char *patient_id;          /**< (0010,0020) */
	const char *patient_name;        /**< (0010,0010) */
	const char *patient_sex;         /**< (0010,0040) */
	const char *patient_age;         /**< (0010,1010) */
	const char *study_date;          /**< (0008,0020) as stored: YYYYMMDD */
	const char *study_description;   /**< (0008,1030) */
	const char *series_description;  /**< (0008,103E) */
	const char *body_part_examined;  /**< (0018,0015) */
	const char *manufacturer;        /**< (0008,0070) */
	int64_t series_number;           /**< (0020,0011); -1 when absent */
	int64_t instance_number;         /**< (0020,0013); -1 when absent */
	uint32_t rows;                   /**< (0028,0010); 0 when absent */
	uint32_t columns;                /**< (0028,0011); 0 when absent */
	uint32_t frames;                 /**< (0028,0008); 1 for an image without
	                                      it, 0 when there is no image */
	int burned_in_annotation;        /**< (0028,0301) as ::fdn_tristate */
	int recognizable_visual_features;/**< (0028,0302) as ::fdn_tristate */
	uint64_t file_size;              /**< bytes of the file or buffer read;
	                                      0 for a dataset built in memory */
} fdn_instance_info;

#define FDN_INSTANCE_INFO_VERSION 1

/** Fills @p out (whose @c version the caller set) from @p ds.
 *  @return 0, FDN_EINVALID (NULL, or an unknown version). */
FDN_EXTERN(int) fdn_dataset_instance_info(fdn_instance_info *out,
	const fdn_dataset *ds);

/** Flags for fdn_dataset_to_json(). */
typedef enum fdn_json_flags {
	FDN_JSON_DEFAULT = 0,
	FDN_JSON_PRETTY = 1u << 0,       /**< Indented, one member per line. */
	FDN_JSON_SKIP_BINARY = 1u << 1   /**< Leave out the values of OB, OW, UN,
	                                      ... (InlineBinary), e.g. Pixel Data. */
} fdn_json_flags;

/**
 * The dataset in the DICOM JSON Model (PS3.18 F.2): an object keyed by
 * "GGGGEEEE" with "vr" and "Value" (strings as UTF-8, numbers as JSON
 * numbers, PN as {"Alphabetic", "Ideographic", "Phonetic"}, sequences as
 * arrays of objects) or "InlineBinary" (base64).  File Meta is not
 * included, as in the model; group lengths are left out.  DS and IS
 * values that are not valid numbers stay strings, as are SV/UV values
 * beyond 2^53; encapsulated Pixel Data gives "vr" only.
 * @param out replaced with the JSON text; dispose with fdn_buf_dispose().
 * @return 0, FDN_EINVALID, FDN_EFORMAT (text not valid in its charset),
 *         FDN_ERROR (out of memory).
 */
FDN_EXTERN(int) fdn_dataset_to_json(fdn_buf *out, const fdn_dataset *ds,
	unsigned int flags);

/** @} */

/* ------------------------------------------------------------------ */
/** @name Modifying and writing
 *  Setting or removing an element invalidates strings borrowed from the
 *  dataset.
 *  @{ */

/**
 * Sets a text or number element from UTF-8 text (several values
 * separated by '\\').  The VR is the existing element's, else the
 * dictionary's; binary number VRs are parsed from the text.  Text is
 * stored in the dataset's character set; text it cannot represent is
 * refused (set SpecificCharacterSet to "ISO_IR 192" first to store any
 * UTF-8).  A path into a sequence item that does not exist yet may
 * name the next item (index == item count), which is created.
 * @return 0; FDN_EINVALID (bad path, a private or unknown tag without
 *         VR — use fdn_dataset_set_bytes() — a value that does not fit
 *         the VR, or text the character set cannot hold).
 */
FDN_EXTERN(int) fdn_dataset_set_string(fdn_dataset *ds, const char *path,
	const char *value);

/**
 * Sets an element to raw bytes with an explicit VR (for private tags,
 * binary data and Pixel Data).  @p data is copied.  Odd lengths are
 * padded as PS3.5 requires.
 * @return 0, FDN_EINVALID (bad path or VR, SQ).
 */
FDN_EXTERN(int) fdn_dataset_set_bytes(fdn_dataset *ds, const char *path,
	const char *vr, const void *data, size_t size);

/** Removes the element (or, for a path ending in "[N]", sequence item N).
 *  @return 0, FDN_ENOTFOUND, FDN_EINVALID. */
FDN_EXTERN(int) fdn_dataset_remove(fdn_dataset *ds, const char *path);

/** Flags for the write functions (none yet). */
typedef enum fdn_write_flags {
	FDN_WRITE_DEFAULT = 0
} fdn_write_flags;

/**
 * Writes the dataset as a DICOM Part 10 file in its transfer syntax,
 * with a File Meta group rebuilt from the dataset (group length, Media
 * Storage SOP Class/Instance UID, Implementation Class UID and Version
 * Name).  Atomic: the data goes to a temporary file in the same folder,
 * is flushed to disk, and is renamed over @p path; on failure @p path
 * is untouched and nothing is left behind.
 * @return 0; FDN_EINVALID (header-only dataset, no SOP Class/Instance
 *         UID); FDN_EIO; FDN_ENOTFOUND (no such folder).
 */
FDN_EXTERN(int) fdn_dataset_write_file(const fdn_dataset *ds, const char *path,
	unsigned int flags);

/** As fdn_dataset_write_file(), into memory.  @p out is replaced; dispose
 *  it with fdn_buf_dispose(). */
FDN_EXTERN(int) fdn_dataset_write_buffer(fdn_buf *out, const fdn_dataset *ds,
	unsigned int flags);

/** @} */

/* ------------------------------------------------------------------ */
/** @name Directory scans
 *  @{ */

/**
 * Receives each DICOM instance found.  @p ds and @p info are borrowed
 * for the duration of the call (clone @p ds to keep it).  Runs on the
 * thread that called fdn_scan().  Return 0 to go on; a non-zero value
 * stops the scan, which returns it.
 */
typedef int (*fdn_scan_instance_cb)(const char *path, fdn_dataset *ds,
	const fdn_instance_info *info, void *payload);

/**
 * Receives each file that was not delivered as an instance, with the
 * reason (a sentence that does not repeat @p path): @p code is FDN_EUNSUPPORTED for files that are not DICOM
 * instances (no DICOM content, a DICOMDIR), FDN_EFORMAT for malformed
 * DICOM, FDN_EIO/FDN_ENOTFOUND for files or folders that could not be
 * read, FDN_ECONFLICT for a symbolic-link loop.  Runs on the calling
 * thread; a non-zero return stops the scan.
 */
typedef int (*fdn_scan_skip_cb)(const char *path, int code, const char *reason,
	void *payload);

/** Options for fdn_scan().  Members are only ever appended. */
typedef struct fdn_scan_options {
	unsigned int version;        /**< ::FDN_SCAN_OPTIONS_VERSION */
	unsigned int read_flags;     /**< ::fdn_read_flags for each file;
	                                  default ::FDN_READ_HEADER_ONLY */
	unsigned int workers;        /**< parsing threads; 0: one per core */
	int follow_symlinks;         /**< 1 (default): follow links to files
	                                  and folders, loops detected */
	fdn_scan_instance_cb on_instance;
	fdn_scan_skip_cb on_skip;
	fdn_progress_cb on_progress; /**< stage "scan": items are files, bytes
	                                  are file sizes, errors are skips that
	                                  were failures (not non-DICOM files) */
	double progress_interval;    /**< seconds between progress calls;
	                                  default 0.25; a last call at the end */
	fdn_cancel *cancel;          /**< may be NULL */
	void *payload;               /**< passed to every callback */
} fdn_scan_options;

#define FDN_SCAN_OPTIONS_VERSION 1
#define FDN_SCAN_OPTIONS_INIT \
	{ FDN_SCAN_OPTIONS_VERSION, FDN_READ_HEADER_ONLY, 0, 1, NULL, NULL, NULL, 0.25, NULL, NULL }

/** Fills @p opts with the defaults of structure version @p version. */
FDN_EXTERN(int) fdn_scan_options_init(fdn_scan_options *opts, unsigned int version);

/** What a scan did.  The caller sets @c version. */
typedef struct fdn_scan_stats {
	unsigned int version;  /**< ::FDN_SCAN_STATS_VERSION */
	uint64_t files;        /**< regular files examined */
	uint64_t instances;    /**< delivered to on_instance */
	uint64_t not_dicom;    /**< skipped as not DICOM instances (DICOMDIRs included) */
	uint64_t dicomdirs;    /**< DICOMDIR files among not_dicom */
	uint64_t errors;       /**< malformed, unreadable, loops */
	uint64_t bytes;        /**< sizes of the files examined */
	double elapsed;        /**< seconds */
} fdn_scan_stats;

#define FDN_SCAN_STATS_VERSION 1

/**
 * Walks @p root (a folder, or a single file) recursively and reads every
 * regular file as DICOM on a pool of worker threads.  Instances, skips
 * and progress are delivered on the calling thread, in no particular
 * order across files.  Files that are not DICOM, are malformed or cannot
 * be read are reported through @c on_skip and counted, and the scan goes
 * on; DICOMDIR files are recognised and skipped (their referenced files
 * are found by the walk).
 *
 * @param stats_out optional; its @c version set by the caller.
 * @return 0 when the walk finished (even with skipped files);
 *         FDN_ECANCELLED; a callback's non-zero value; FDN_ENOTFOUND or
 *         FDN_EIO when @p root itself cannot be read; FDN_EINVALID.
 */
FDN_EXTERN(int) fdn_scan(fdn_scan_stats *stats_out, const char *root,
	const fdn_scan_options *opts);

/** @} */

FDN_END_DECL

#endif
