/*
 * libfednode: the model object: dtypes, tensors and metadata.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <string.h>
#include <sys/mman.h>

#include <jansson.h>

#include "model/model_private.h"

static const struct {
	const char *name;
	size_t size;
} dtypes[] = {
	[FDN_DTYPE_BOOL] = { "BOOL", 1 },
	[FDN_DTYPE_U8] = { "U8", 1 },
	[FDN_DTYPE_I8] = { "I8", 1 },
	[FDN_DTYPE_I16] = { "I16", 2 },
	[FDN_DTYPE_U16] = { "U16", 2 },
	[FDN_DTYPE_I32] = { "I32", 4 },
	[FDN_DTYPE_U32] = { "U32", 4 },
	[FDN_DTYPE_I64] = { "I64", 8 },
	[FDN_DTYPE_U64] = { "U64", 8 },
	[FDN_DTYPE_F16] = { "F16", 2 },
	[FDN_DTYPE_BF16] = { "BF16", 2 },
	[FDN_DTYPE_F32] = { "F32", 4 },
	[FDN_DTYPE_F64] = { "F64", 8 },
};

#define NDTYPES (sizeof(dtypes) / sizeof(dtypes[0]))

size_t fdn_dtype_size(int dtype)
{
	return dtype > 0 && (size_t)dtype < NDTYPES ? dtypes[dtype].size : 0;
}

const char *fdn_dtype_name(int dtype)
{
	return dtype > 0 && (size_t)dtype < NDTYPES ? dtypes[dtype].name : NULL;
}

int fdn_dtype_from_name(int *out, const char *name)
{
	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(name, "name");
	for (size_t i = 1; i < NDTYPES; i++) {
		if (strcmp(dtypes[i].name, name) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_MODEL,
		"unknown dtype '%.32s'", name);
}

size_t fdn_model_max_dims(void)
{
	return FDN_MODEL_MAX_DIMS;
}

uint64_t fdn_model_header_max(void)
{
	return FDN_MODEL_HEADER_MAX;
}

bool fdn_model__byte_size(int dtype, size_t ndim, const uint64_t *shape,
	uint64_t *out)
{
	uint64_t n = fdn_dtype_size(dtype);

	for (size_t i = 0; i < ndim; i++) {
		if (shape[i] != 0 && n > UINT64_MAX / shape[i])
			return false;
		n *= shape[i];
	}
	*out = n;
	return true;
}

bool fdn_model__utf8_ok(const char *s)
{
	/* jansson validates UTF-8 when it makes a string. */
	json_t *j = json_string(s);

	json_decref(j);
	return j != NULL;
}

int fdn_model__alloc(fdn_model **out)
{
	fdn_model *m = fdn__calloc(1, sizeof(*m));

	if (!m)
		return fdn__error_oom();
	*out = m;
	return 0;
}

int fdn_model_new(fdn_model **out)
{
	int rc;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	if ((rc = fdn__check_init()) < 0)
		return rc;
	return fdn_model__alloc(out);
}

void fdn_model_free(fdn_model *model)
{
	if (!model)
		return;
	for (size_t i = 0; i < model->ntensors; i++) {
		fdn__free(model->tensors[i].name);
		fdn__free(model->tensors[i].owned);
	}
	fdn__free(model->tensors);
	for (size_t i = 0; i < model->nmeta; i++) {
		fdn__free(model->meta[i].key);
		fdn__free(model->meta[i].value);
	}
	fdn__free(model->meta);
	if (model->map)
		munmap(model->map, model->map_size);
	fdn__free(model->block);
	fdn__free(model);
}

int fdn_model__push(fdn_model *m, char *name, int dtype, size_t ndim,
	const uint64_t *shape, const void *data, size_t nbytes)
{
	fdn_model__tensor *t;

	if (m->ntensors == m->tensors_cap) {
		size_t cap = m->tensors_cap ? m->tensors_cap * 2 : 8;
		void *p = fdn__reallocarray(m->tensors, cap, sizeof(*m->tensors));

		if (!p)
			return fdn__error_oom();
		m->tensors = p;
		m->tensors_cap = cap;
	}
	t = &m->tensors[m->ntensors++];
	memset(t, 0, sizeof(*t));
	t->name = name;
	t->dtype = dtype;
	t->ndim = ndim;
	if (ndim)
		memcpy(t->shape, shape, ndim * sizeof(*shape));
	t->data = nbytes ? data : NULL;
	t->nbytes = nbytes;
	return 0;
}

size_t fdn_model_tensor_count(const fdn_model *model)
{
	return model ? model->ntensors : 0;
}

int fdn_model_tensor(fdn_tensor_info *out, const fdn_model *model, size_t index)
{
	const fdn_model__tensor *t;

	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(model, "model");
	FDN__CHECK_VERSION(out, FDN_TENSOR_INFO_VERSION, "fdn_tensor_info");
	if (index >= model->ntensors)
		return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_MODEL,
			"tensor index %zu out of range (%zu tensors)", index,
			model->ntensors);
	t = &model->tensors[index];
	out->name = t->name;
	out->dtype = t->dtype;
	out->ndim = t->ndim;
	memset(out->shape, 0, sizeof(out->shape));
	memcpy(out->shape, t->shape, t->ndim * sizeof(t->shape[0]));
	out->data = t->data;
	out->nbytes = t->nbytes;
	return 0;
}

static bool lookup(size_t *out, const fdn_model *m, const char *name)
{
	/* Linear: models have at most a few thousand tensors, and lookups
	 * by name are rare next to reading the data. */
	for (size_t i = 0; i < m->ntensors; i++) {
		if (strcmp(m->tensors[i].name, name) == 0) {
			*out = i;
			return true;
		}
	}
	return false;
}

int fdn_model_find(size_t *out_index, const fdn_model *model, const char *name)
{
	FDN__CHECK_ARG(out_index, "out_index");
	FDN__CHECK_ARG(model, "model");
	FDN__CHECK_ARG(name, "name");
	if (!lookup(out_index, model, name))
		return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_MODEL,
			"no tensor '%.200s'", name);
	return 0;
}

int fdn_model_add_tensor(fdn_model *model, const char *name, int dtype,
	size_t ndim, const uint64_t *shape, const void *data, size_t nbytes)
{
	uint64_t want;
	size_t idx;
	char *copy;
	void *owned = NULL;
	int rc;

	FDN__CHECK_ARG(model, "model");
	FDN__CHECK_ARG(name && *name, "name");
	FDN__CHECK_ARG(ndim == 0 || shape, "shape");
	FDN__CHECK_ARG(nbytes == 0 || data, "data");
	if (strcmp(name, "__metadata__") == 0 || !fdn_model__utf8_ok(name))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_MODEL,
			"tensor '%.200s': reserved name or invalid UTF-8", name);
	if (!fdn_dtype_size(dtype))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_MODEL,
			"tensor '%.200s': unknown dtype %d", name, dtype);
	if (ndim > FDN_MODEL_MAX_DIMS)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_MODEL,
			"tensor '%.200s': %zu dimensions (at most %d)", name, ndim,
			FDN_MODEL_MAX_DIMS);
	if (!fdn_model__byte_size(dtype, ndim, shape, &want) || want > SIZE_MAX)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_MODEL,
			"tensor '%.200s': shape overflows the byte count", name);
	if (want != nbytes)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_MODEL,
			"tensor '%.200s': shape x %s is %llu bytes but %zu were given",
			name, fdn_dtype_name(dtype), (unsigned long long)want, nbytes);
	if (lookup(&idx, model, name))
		return fdn__error_set(FDN_ECONFLICT, FDN_ERRCLASS_MODEL,
			"tensor '%.200s': the model already has one of that name", name);
	if (!(copy = fdn__strdup(name)))
		return fdn__error_oom();
	if (nbytes) {
		if (!(owned = fdn__malloc(nbytes))) {
			fdn__free(copy);
			return fdn__error_oom();
		}
		memcpy(owned, data, nbytes);
	}
	if ((rc = fdn_model__push(model, copy, dtype, ndim, shape, owned, nbytes)) < 0) {
		fdn__free(copy);
		fdn__free(owned);
		return rc;
	}
	model->tensors[model->ntensors - 1].owned = owned;
	return 0;
}

int fdn_model__add_uninit(fdn_model *m, const char *name, int dtype,
	size_t ndim, const uint64_t *shape, void **data_out)
{
	uint64_t nbytes;
	char *copy;
	void *owned = NULL;
	int rc;

	*data_out = NULL;
	if (ndim > FDN_MODEL_MAX_DIMS || !fdn_dtype_size(dtype) ||
	    !fdn_model__byte_size(dtype, ndim, shape, &nbytes) || nbytes > SIZE_MAX)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_MODEL,
			"tensor '%.200s': bad dtype or shape", name);
	if (!(copy = fdn__strdup(name)))
		return fdn__error_oom();
	if (nbytes && !(owned = fdn__malloc((size_t)nbytes))) {
		fdn__free(copy);
		return fdn__error_oom();
	}
	if ((rc = fdn_model__push(m, copy, dtype, ndim, shape, owned, (size_t)nbytes)) < 0) {
		fdn__free(copy);
		fdn__free(owned);
		return rc;
	}
	m->tensors[m->ntensors - 1].owned = owned;
	*data_out = owned;
	return 0;
}

/* --- metadata ------------------------------------------------------------- */

static fdn_model__meta *meta_find(const fdn_model *m, const char *key)
{
	for (size_t i = 0; i < m->nmeta; i++)
		if (strcmp(m->meta[i].key, key) == 0)
			return &m->meta[i];
	return NULL;
}

int fdn_model_set_metadata(fdn_model *model, const char *key, const char *value)
{
	fdn_model__meta *e;
	char *k, *v;

	FDN__CHECK_ARG(model, "model");
	FDN__CHECK_ARG(key, "key");
	if (!fdn_model__utf8_ok(key) || (value && !fdn_model__utf8_ok(value)))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_MODEL,
			"metadata: key or value is not valid UTF-8");
	e = meta_find(model, key);
	if (!value) {
		if (e) {
			fdn__free(e->key);
			fdn__free(e->value);
			memmove(e, e + 1, (size_t)(model->meta + model->nmeta - (e + 1)) * sizeof(*e));
			model->nmeta--;
		}
		return 0;
	}
	if (!(v = fdn__strdup(value)))
		return fdn__error_oom();
	if (e) {
		fdn__free(e->value);
		e->value = v;
		return 0;
	}
	if (model->nmeta == model->meta_cap) {
		size_t cap = model->meta_cap ? model->meta_cap * 2 : 8;
		void *p = fdn__reallocarray(model->meta, cap, sizeof(*model->meta));

		if (!p) {
			fdn__free(v);
			return fdn__error_oom();
		}
		model->meta = p;
		model->meta_cap = cap;
	}
	if (!(k = fdn__strdup(key))) {
		fdn__free(v);
		return fdn__error_oom();
	}
	model->meta[model->nmeta].key = k;
	model->meta[model->nmeta].value = v;
	model->nmeta++;
	return 0;
}

int fdn_model_get_metadata(const char **out, const fdn_model *model, const char *key)
{
	const fdn_model__meta *e;

	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(model, "model");
	FDN__CHECK_ARG(key, "key");
	if (!(e = meta_find(model, key)))
		return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_MODEL,
			"no metadata '%.200s'", key);
	*out = e->value;
	return 0;
}

size_t fdn_model_metadata_count(const fdn_model *model)
{
	return model ? model->nmeta : 0;
}

int fdn_model_metadata_entry(const char **key_out, const char **value_out,
	const fdn_model *model, size_t index)
{
	FDN__CHECK_ARG(model, "model");
	if (index >= model->nmeta)
		return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_MODEL,
			"metadata index %zu out of range (%zu entries)", index,
			model->nmeta);
	if (key_out)
		*key_out = model->meta[index].key;
	if (value_out)
		*value_out = model->meta[index].value;
	return 0;
}
