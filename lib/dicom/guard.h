/*
 * The structural guard: a bounds-checked walk over the encoded bytes of a
 * DICOM input, run before GDCM sees them.  Debian's GDCM is built with
 * assertions on, and malformed input can make it abort() the process or
 * allocate whatever a length field claims; the guard refuses such input
 * with FDN_EFORMAT and the byte offset, so GDCM only parses inputs whose
 * element structure is sound.  Pure C, no GDCM.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_DICOM_GUARD_H
#define FDN_DICOM_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Encodings of the main dataset (after the File Meta group). */
typedef enum fdn_guard_encoding {
	FDN_GUARD_IMPLICIT_LE = 0,
	FDN_GUARD_EXPLICIT_LE = 1,
	FDN_GUARD_EXPLICIT_BE = 2,
	FDN_GUARD_DEFLATED_LE = 3 /* explicit VR LE, raw-deflated after the meta group */
} fdn_guard_encoding;

/* Stop at the top-level Pixel Data (7FE0,0010): its value is not needed. */
#define FDN_GUARD_STOP_AT_PIXELS (1u << 0)

/* Deepest sequence nesting accepted (real files stay below 10). */
#define FDN_GUARD_MAX_DEPTH 32
/* Largest inflated dataset accepted for the deflated transfer syntax. */
#define FDN_GUARD_MAX_INFLATED ((uint64_t)256 << 20)

typedef struct fdn_guard_result {
	bool has_preamble;          /* 128-byte preamble + "DICM" */
	bool has_meta;              /* a File Meta group (0002,xxxx) */
	bool is_dicomdir;           /* Media Storage SOP Class 1.2.840.10008.1.3.10 */
	int encoding;               /* fdn_guard_encoding of the main dataset */
	size_t meta_start;          /* offset of the first group-0002 element */
	size_t dataset_start;       /* offset of the first main-dataset byte */
	size_t pixel_data_offset;   /* offset of the top-level (7FE0,0010) tag, SIZE_MAX if none */
	size_t end;                 /* where the walk stopped: the input size, or
	                             * pixel_data_offset with FDN_GUARD_STOP_AT_PIXELS.
	                             * FDN_GUARD_DEFLATED_LE: always the input size, and
	                             * pixel_data_offset stays SIZE_MAX (offsets in the
	                             * inflated bytes mean nothing in the file) */
	uint64_t needed;            /* with FDN_EBUFS: input bytes needed to go on */
	char transfer_syntax[65];   /* (0002,0010) without padding; "" without meta */
	char media_storage_sop_class[65]; /* (0002,0002) without padding, or "" */
} fdn_guard_result;

/*
 * Walks @p data[0..size) of an input whose whole size is @p total_size
 * (>= size; a file may be read in part).  @p name ("/path/file.dcm" or
 * "buffer") prefixes error messages.
 *
 * Returns 0 when the structure is sound up to out->end; FDN_EBUFS with
 * out->needed (<= total_size) when it has to look at bytes beyond @p size
 * — the caller reads that much and calls again; FDN_EFORMAT (error set:
 * "<name>: <what> at byte offset <N>") for malformed or non-DICOM input;
 * FDN_EUNSUPPORTED for an unknown transfer syntax, an implicit VR big
 * endian (ACR-NEMA) dataset without File Meta group, or nesting that GDCM
 * would take exponential time to parse (implicit VR without a group length).
 */
int fdn_dicom__guard(fdn_guard_result *out, const uint8_t *data, size_t size,
	uint64_t total_size, unsigned int flags, const char *name);

/*
 * The deflated transfer syntax's inflate step, with the cap as a parameter
 * so tests reach the cap logic without inflating 256 MB (the guard passes
 * FDN_GUARD_MAX_INFLATED).  Inflates the raw deflate stream (RFC 1951)
 * @p in[0..in_size), found at byte offset @p in_offset of the input, into
 * *out (*out_size bytes; the caller frees it with fdn__free).  Bytes after
 * the end of the stream are ignored.  Returns FDN_EFORMAT when the stream
 * is corrupt, truncated or inflates to more than @p cap bytes.
 */
int fdn_dicom__guard_inflate(uint8_t **out, size_t *out_size, const uint8_t *in,
	size_t in_size, uint64_t in_offset, uint64_t cap, const char *name);

#ifdef __cplusplus
}
#endif

#endif
