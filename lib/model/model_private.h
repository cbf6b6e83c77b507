/*
 * libfednode: the model's internal layout, shared by model.c and
 * safetensors.c.  Not installed.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_MODEL_PRIVATE_H
#define FDN_MODEL_PRIVATE_H

#include "core/core_private.h"
#include "fednode/model.h"

typedef struct fdn_model__tensor {
	char *name;
	int dtype;
	size_t ndim;
	uint64_t shape[FDN_MODEL_MAX_DIMS];
	const void *data;  /* into the model's block, or == owned */
	size_t nbytes;
	void *owned;       /* data copied by fdn_model_add_tensor(), or NULL */
} fdn_model__tensor;

typedef struct fdn_model__meta {
	char *key;
	char *value;
} fdn_model__meta;

struct fdn_model {
	fdn_model__tensor *tensors;
	size_t ntensors, tensors_cap;
	fdn_model__meta *meta;
	size_t nmeta, meta_cap;
	void *map;          /* the mapped file, or NULL */
	size_t map_size;
	void *block;        /* copied data of a read buffer or file, or NULL */
};

int fdn_model__alloc(fdn_model **out);
/* Appends a tensor without copying data; takes ownership of @p name. */
int fdn_model__push(fdn_model *m, char *name, int dtype, size_t ndim,
	const uint64_t *shape, const void *data, size_t nbytes);
bool fdn_model__utf8_ok(const char *s);
/* Element count × element size with overflow checks; false on overflow. */
bool fdn_model__byte_size(int dtype, size_t ndim, const uint64_t *shape,
	uint64_t *out);

/* --- for modules that produce or stream models (lib/fedavg) ----------- */

/* Appends a tensor whose data the model allocates but leaves
 * uninitialised; *data_out receives it (NULL for 0 bytes).  @p name is
 * copied and must be valid and unique (the caller's job: no lookup). */
int fdn_model__add_uninit(fdn_model *m, const char *name, int dtype,
	size_t ndim, const uint64_t *shape, void **data_out);

/* The safetensors header of @p m (length prefix, JSON padded to 8) as
 * fdn_model_write_file() writes it, and the size of the data after it:
 * write these, then each tensor's bytes in model order. */
int fdn_model__header(fdn_buf *out, const fdn_model *m, size_t *data_size);

/* Reads and validates only the header of the safetensors file open on
 * @p fd (@p file_size bytes; @p path for messages), as
 * fdn_model_read_file() would.  The model's tensors carry names, dtypes,
 * shapes and byte counts but no data (fdn_model__tensor::data is NULL):
 * it must not reach the public functions that read data.  Tensors are in
 * data order and tile the data, which starts at *data_start. */
int fdn_model__read_header(fdn_model **out, uint64_t *data_start, int fd,
	const char *path, uint64_t file_size);

#endif
