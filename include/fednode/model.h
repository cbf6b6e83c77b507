/*
 * libfednode: models as ordered named tensors, read and written in the
 * safetensors format.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FEDNODE_MODEL_H
#define FEDNODE_MODEL_H

#include "common.h"

/** @file fednode/model.h
 *  @brief Named tensors with a string metadata map; safetensors I/O.
 *
 *  A model is an ordered list of tensors (name, element type, up to
 *  ::FDN_MODEL_MAX_DIMS dimensions, raw little-endian bytes) and a map of
 *  UTF-8 string metadata.  It is read from and written to the
 *  safetensors format: an 8-byte little-endian header length N, N bytes
 *  of JSON header, then the tensor data, which the tensors must tile
 *  exactly.
 *
 *  Reading is strict: the header must be at most ::FDN_MODEL_HEADER_MAX
 *  bytes and lie inside the input, be valid UTF-8 JSON without duplicate
 *  keys, every dtype must be known, every shape a list of at most 8
 *  non-negative integers whose product times the element size (overflow
 *  checked) equals the tensor's byte length, offsets must lie inside the
 *  data, and the tensors must cover it without overlap or hole.  A
 *  malformed input is refused with FDN_EFORMAT and a message that names
 *  the file (or "buffer"), the tensor ("tensor 'w1': ...") and the reason.
 *
 *  Tensors read from input are ordered by their data offset (for a file
 *  this library wrote: the order they were added in).
 *
 *  Thread safety: an ::fdn_model may be used by one thread at a time;
 *  several threads may read (the const functions) the same model at once
 *  as long as none modifies it.  Distinct models need no locking.
 */

FDN_BEGIN_DECL

/* ------------------------------------------------------------------ */
/** @name Element types
 *  @{ */

/** Element types, named as in safetensors.  Values are part of the ABI. */
typedef enum fdn_dtype {
	FDN_DTYPE_INVALID = 0, /**< Never a valid tensor type. */
	FDN_DTYPE_BOOL = 1,    /**< "BOOL": one byte, 0 or 1. */
	FDN_DTYPE_U8 = 2,      /**< "U8" */
	FDN_DTYPE_I8 = 3,      /**< "I8" */
	FDN_DTYPE_I16 = 4,     /**< "I16" */
	FDN_DTYPE_U16 = 5,     /**< "U16" */
	FDN_DTYPE_I32 = 6,     /**< "I32" */
	FDN_DTYPE_U32 = 7,     /**< "U32" */
	FDN_DTYPE_I64 = 8,     /**< "I64" */
	FDN_DTYPE_U64 = 9,     /**< "U64" */
	FDN_DTYPE_F16 = 10,    /**< "F16": IEEE 754 binary16. */
	FDN_DTYPE_BF16 = 11,   /**< "BF16": bfloat16. */
	FDN_DTYPE_F32 = 12,    /**< "F32" */
	FDN_DTYPE_F64 = 13     /**< "F64" */
} fdn_dtype;

/** Bytes per element of @p dtype (an ::fdn_dtype), or 0 when unknown. */
FDN_EXTERN(size_t) fdn_dtype_size(int dtype);

/** The safetensors name of @p dtype ("F32", ...; static), or NULL when
 *  unknown. */
FDN_EXTERN(const char *) fdn_dtype_name(int dtype);

/**
 * The ::fdn_dtype named @p name ("F32", "BF16", ...; case-sensitive).
 * @return 0; FDN_ENOTFOUND for an unknown name; FDN_EINVALID for NULL.
 */
FDN_EXTERN(int) fdn_dtype_from_name(int *out, const char *name);

/** @} */

/* ------------------------------------------------------------------ */
/** @name Limits
 *  @{ */

/** Most dimensions a tensor may have. */
#define FDN_MODEL_MAX_DIMS 8
/** Largest safetensors JSON header accepted when reading (100 MB). */
#define FDN_MODEL_HEADER_MAX ((uint64_t)100 * 1000 * 1000)

/** ::FDN_MODEL_MAX_DIMS, for bindings. */
FDN_EXTERN(size_t) fdn_model_max_dims(void);

/** ::FDN_MODEL_HEADER_MAX, for bindings. */
FDN_EXTERN(uint64_t) fdn_model_header_max(void);

/** @} */

/* ------------------------------------------------------------------ */
/** @name Creating and reading
 *  @{ */

/** A model: ordered named tensors and string metadata. */
typedef struct fdn_model fdn_model;

/** Flags for the read functions. */
typedef enum fdn_model_read_flags {
	FDN_MODEL_READ_DEFAULT = 0, /**< Map the file: tensors are views of it. */
	FDN_MODEL_READ_COPY = 1u << 0 /**< fdn_model_read_file() reads the
	                                  file into memory instead of mapping
	                                  it; the file may then change freely. */
} fdn_model_read_flags;

/**
 * Creates an empty model, to be filled with fdn_model_add_tensor().
 * @param out receives the model; free it with fdn_model_free().
 * @return 0; FDN_EINVALID (NULL @p out, library not initialised);
 *         FDN_ERROR (out of memory).
 */
FDN_EXTERN(int) fdn_model_new(fdn_model **out);

/**
 * Reads a safetensors file.
 *
 * By default the file is mapped read-only (MAP_PRIVATE) and the tensors
 * are zero-copy views of the mapping: fdn_tensor_info::data points into
 * it.  The model keeps the mapping until fdn_model_free().  While the
 * model is open the file must not be truncated or rewritten in place
 * (replacing it by rename, as fdn_model_write_file() does, is safe):
 * touching a page past the new end of a truncated file raises SIGBUS.
 * Use ::FDN_MODEL_READ_COPY when that cannot be guaranteed.
 *
 * @param out   receives the model; free it with fdn_model_free().
 * @param path  the file.
 * @param flags ::fdn_model_read_flags.
 * @return 0; FDN_ENOTFOUND (no such file), FDN_EIO (unreadable),
 *         FDN_EFORMAT (malformed: the message names the file, the tensor
 *         and the reason), FDN_EINVALID (bad argument or flags),
 *         FDN_ERROR (out of memory).
 */
FDN_EXTERN(int) fdn_model_read_file(fdn_model **out, const char *path,
	unsigned int flags);

/**
 * Reads a safetensors image from memory.  The tensor data is copied:
 * the caller may free or reuse @p data as soon as the call returns.
 *
 * @param flags 0 (::FDN_MODEL_READ_COPY is accepted and changes nothing).
 * @return as fdn_model_read_file(); messages say "buffer".
 */
FDN_EXTERN(int) fdn_model_read_buffer(fdn_model **out, const void *data,
	size_t size, unsigned int flags);

/** Frees a model, its mapping and everything borrowed from it.  NULL is
 *  a no-op. */
FDN_EXTERN(void) fdn_model_free(fdn_model *model);

/** @} */

/* ------------------------------------------------------------------ */
/** @name Tensors
 *  @{ */

/** One tensor, as fdn_model_tensor() describes it. */
typedef struct fdn_tensor_info {
	unsigned int version;  /**< Set by the caller to ::FDN_TENSOR_INFO_VERSION. */
	const char *name;      /**< UTF-8, borrowed from the model. */
	int dtype;             /**< An ::fdn_dtype. */
	size_t ndim;           /**< Dimensions in use (0 for a scalar). */
	uint64_t shape[FDN_MODEL_MAX_DIMS]; /**< Sizes; unused entries are 0. */
	const void *data;      /**< Little-endian elements, C order, borrowed from
	                            the model (for a mapped file: a view of the
	                            mapping); NULL when @c nbytes is 0.  Not
	                            necessarily aligned to the element size. */
	size_t nbytes;         /**< Bytes at @c data. */
} fdn_tensor_info;

#define FDN_TENSOR_INFO_VERSION 1
/** Initialiser of an ::fdn_tensor_info with its version set. */
#define FDN_TENSOR_INFO_INIT { FDN_TENSOR_INFO_VERSION, NULL, 0, 0, { 0 }, NULL, 0 }

/** Number of tensors in @p model (0 for NULL). */
FDN_EXTERN(size_t) fdn_model_tensor_count(const fdn_model *model);

/**
 * Describes tensor @p index (from 0, in model order).  The pointers in
 * @p out are borrowed and stay valid until the model is freed (adding
 * tensors does not move them).
 * @param out with @c version set by the caller.
 * @return 0; FDN_ENOTFOUND for an index past the end; FDN_EINVALID for a
 *         NULL argument or an unknown @c out->version.
 */
FDN_EXTERN(int) fdn_model_tensor(fdn_tensor_info *out, const fdn_model *model,
	size_t index);

/**
 * The index of the tensor named @p name.
 * @return 0; FDN_ENOTFOUND when there is none; FDN_EINVALID for NULL.
 */
FDN_EXTERN(int) fdn_model_find(size_t *out_index, const fdn_model *model,
	const char *name);

/**
 * Appends a tensor, copying @p name, @p shape and @p data.
 *
 * @param name   non-empty UTF-8, unique in the model, not "__metadata__".
 * @param dtype  an ::fdn_dtype.
 * @param ndim   0 (a scalar: one element) to ::FDN_MODEL_MAX_DIMS.
 * @param shape  @p ndim sizes (may be NULL when @p ndim is 0).
 * @param data   @p nbytes bytes of little-endian elements in C order;
 *               may be NULL when @p nbytes is 0.
 * @param nbytes must equal the product of @p shape times
 *               fdn_dtype_size(@p dtype) (checked for overflow).
 * @return 0; FDN_EINVALID (bad argument, unknown dtype, too many
 *         dimensions, size mismatch or overflow, bad name);
 *         FDN_ECONFLICT (the name is taken); FDN_ERROR (out of memory).
 */
FDN_EXTERN(int) fdn_model_add_tensor(fdn_model *model, const char *name,
	int dtype, size_t ndim, const uint64_t *shape, const void *data,
	size_t nbytes);

/** @} */

/* ------------------------------------------------------------------ */
/** @name Metadata
 *  String key/value pairs ("__metadata__" in safetensors), kept in the
 *  order keys were first set.
 *  @{ */

/**
 * Sets (copying both strings) or, with a NULL @p value, removes the
 * metadata entry @p key.  Both must be valid UTF-8.  Removing changes
 * the indexes of later entries and ends the life of strings borrowed
 * from the removed entry; replacing a value ends the life of the old one.
 * @return 0; FDN_EINVALID (NULL model or key, invalid UTF-8);
 *         FDN_ERROR (out of memory).  Removing a missing key is not an error.
 */
FDN_EXTERN(int) fdn_model_set_metadata(fdn_model *model, const char *key,
	const char *value);

/**
 * The metadata value of @p key (borrowed; valid until the model is
 * freed or the entry is changed).
 * @return 0; FDN_ENOTFOUND; FDN_EINVALID for NULL.
 */
FDN_EXTERN(int) fdn_model_get_metadata(const char **out, const fdn_model *model,
	const char *key);

/** Number of metadata entries (0 for NULL). */
FDN_EXTERN(size_t) fdn_model_metadata_count(const fdn_model *model);

/**
 * Metadata entry @p index: its key and value, borrowed as in
 * fdn_model_get_metadata().  Either out-pointer may be NULL.
 * @return 0; FDN_ENOTFOUND past the end; FDN_EINVALID for a NULL model.
 */
FDN_EXTERN(int) fdn_model_metadata_entry(const char **key_out,
	const char **value_out, const fdn_model *model, size_t index);

/** @} */

/* ------------------------------------------------------------------ */
/** @name Writing
 *  The header lists the tensors in model order and the metadata (when
 *  there is any); it is padded with spaces to a multiple of 8 bytes, so
 *  the data starts 8-aligned.  Data follows in model order.
 *  @{ */

/**
 * Writes @p model to @p path atomically: a temporary file next to it is
 * written, synced and renamed over @p path, so readers see the old file
 * or the new one, never a part.  A model may be written over the file it
 * was mapped from.
 * @return 0; FDN_EIO (the message names the file; @p path is then
 *         untouched); FDN_EINVALID; FDN_ERROR (out of memory).
 */
FDN_EXTERN(int) fdn_model_write_file(const fdn_model *model, const char *path);

/**
 * Writes @p model as a safetensors image into @p out, replacing its
 * content; the caller disposes it with fdn_buf_dispose().  On failure
 * @p out is unchanged.
 * @return 0; FDN_EINVALID; FDN_ERROR (out of memory or too large).
 */
FDN_EXTERN(int) fdn_model_write_buffer(fdn_buf *out, const fdn_model *model);

/** @} */

FDN_END_DECL

#endif
