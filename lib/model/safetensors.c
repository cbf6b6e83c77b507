/*
 * libfednode: reading and writing the safetensors format.
 *
 * 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {"k": "v"}}, then the data the tensors tile exactly.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "model/model_private.h"

/* What parsing learns of one tensor before the tiling check. */
typedef struct entry {
	const char *name;   /* borrowed from the JSON */
	int dtype;
	size_t ndim;
	uint64_t shape[FDN_MODEL_MAX_DIMS];
	uint64_t begin, end;
} entry;

typedef struct parse {
	const char *src;    /* "buffer" or the path, for messages */
	const unsigned char *data;  /* the data section */
	uint64_t data_size;
} parse;

#define BAD(p, ...) fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_MODEL, __VA_ARGS__)

static uint64_t le64(const unsigned char *b)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | b[i];
	return v;
}

static int parse_uint(uint64_t *out, const json_t *v)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int parse_entry(entry *e, const parse *p, const char *name, json_t *v)
{
	json_t *dt, *shape, *offs;
	const char *key;
	json_t *val;
	uint64_t want;

	e->name = name;
	if (!json_is_object(v))
		return BAD(p, "%s: tensor '%.200s': not a JSON object", p->src, name);
	json_object_foreach(v, key, val) {
		if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
			return BAD(p, "%s: tensor '%.200s': unknown key '%.64s'",
				p->src, name, key);
	}
	dt = json_object_get(v, "dtype");
	shape = json_object_get(v, "shape");
	offs = json_object_get(v, "data_offsets");
	if (!json_is_string(dt))
		return BAD(p, "%s: tensor '%.200s': missing or non-string dtype", p->src, name);
	if (fdn_dtype_from_name(&e->dtype, json_string_value(dt)) < 0)
		return BAD(p, "%s: tensor '%.200s': unknown dtype '%.32s'", p->src,
			name, json_string_value(dt));
	if (!json_is_array(shape))
		return BAD(p, "%s: tensor '%.200s': missing or non-array shape", p->src, name);
	if (json_array_size(shape) > FDN_MODEL_MAX_DIMS)
		return BAD(p, "%s: tensor '%.200s': %zu dimensions (at most %d)", p->src,
			name, json_array_size(shape), FDN_MODEL_MAX_DIMS);
	e->ndim = json_array_size(shape);
	for (size_t i = 0; i < e->ndim; i++)
		if (parse_uint(&e->shape[i], json_array_get(shape, i)) < 0)
			return BAD(p, "%s: tensor '%.200s': dimension %zu is not a non-negative integer",
				p->src, name, i);
	if (!json_is_array(offs) || json_array_size(offs) != 2 ||
	    parse_uint(&e->begin, json_array_get(offs, 0)) < 0 ||
	    parse_uint(&e->end, json_array_get(offs, 1)) < 0)
		return BAD(p, "%s: tensor '%.200s': data_offsets must be [begin, end] of non-negative integers",
			p->src, name);
	if (e->end < e->begin)
		return BAD(p, "%s: tensor '%.200s': data_offsets end %llu before begin %llu",
			p->src, name, (unsigned long long)e->end, (unsigned long long)e->begin);
	if (e->end > p->data_size)
		return BAD(p, "%s: tensor '%.200s': data_offsets [%llu, %llu] out of bounds (data is %llu bytes)",
			p->src, name, (unsigned long long)e->begin,
			(unsigned long long)e->end, (unsigned long long)p->data_size);
	if (!fdn_model__byte_size(e->dtype, e->ndim, e->shape, &want))
		return BAD(p, "%s: tensor '%.200s': shape overflows the byte count", p->src, name);
	if (want != e->end - e->begin)
		return BAD(p, "%s: tensor '%.200s': shape x %s is %llu bytes but data_offsets cover %llu",
			p->src, name, fdn_dtype_name(e->dtype), (unsigned long long)want,
			(unsigned long long)(e->end - e->begin));
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const entry *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

/* The tensors, sorted by offset, must cover [0, data_size) exactly. */
static int check_tiling(const parse *p, entry *es, size_t n)
{
	uint64_t pos = 0;

	qsort(es, n, sizeof(*es), cmp_entry);
	for (size_t i = 0; i < n; i++) {
		if (es[i].begin < pos)
			return BAD(p, "%s: tensor '%.200s': data_offsets [%llu, %llu] overlap tensor '%.200s'",
				p->src, es[i].name, (unsigned long long)es[i].begin,
				(unsigned long long)es[i].end, es[i - 1].name);
		if (es[i].begin > pos)
			return BAD(p, "%s: tensor '%.200s': hole of %llu bytes before its data at %llu",
				p->src, es[i].name, (unsigned long long)(es[i].begin - pos),
				(unsigned long long)es[i].begin);
		pos = es[i].end;
	}
	if (pos != p->data_size)
		return BAD(p, "%s: %llu bytes of data after the last tensor",
			p->src, (unsigned long long)(p->data_size - pos));
	return 0;
}

static int parse_metadata(fdn_model *m, const parse *p, json_t *v)
{
	const char *key;
	json_t *val;
	int rc;

	if (!json_is_object(v))
		return BAD(p, "%s: __metadata__ is not a JSON object", p->src);
	json_object_foreach(v, key, val) {
		if (!json_is_string(val))
			return BAD(p, "%s: metadata '%.200s': value is not a string", p->src, key);
		if ((rc = fdn_model_set_metadata(m, key, json_string_value(val))) < 0)
			return rc;
	}
	return 0;
}

static int build(fdn_model *m, const parse *p, json_t *root)
{
	size_t cap = json_object_size(root), n = 0;
	entry *es = fdn__calloc(cap ? cap : 1, sizeof(*es));
	const char *key;
	json_t *val;
	int rc = 0;

	if (!es)
		return fdn__error_oom();
	json_object_foreach(root, key, val) {
		if (strcmp(key, "__metadata__") == 0)
			rc = parse_metadata(m, p, val);
		else if (*key == '\0')
			rc = BAD(p, "%s: tensor '': empty name", p->src);
		else
			rc = parse_entry(&es[n++], p, key, val);
		if (rc < 0)
			goto out;
	}
	if ((rc = check_tiling(p, es, n)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char *name = fdn__strdup(es[i].name);

		if (!name) {
			rc = fdn__error_oom();
			goto out;
		}
		/* A header-only parse (p->data NULL) leaves the data out. */
		if ((rc = fdn_model__push(m, name, es[i].dtype, es[i].ndim, es[i].shape,
				p->data ? p->data + es[i].begin : NULL,
				(size_t)(es[i].end - es[i].begin))) < 0) {
			fdn__free(name);
			goto out;
		}
	}
out:
	fdn__free(es);
	return rc;
}

/* Checks the 8-byte length prefix of an image of @p size bytes. */
static int check_header_length(const char *src, uint64_t hlen, uint64_t size)
{
	if (size < 8)
		return BAD(NULL, "%s: %llu bytes is too short for a safetensors header length",
			src, (unsigned long long)size);
	if (hlen > FDN_MODEL_HEADER_MAX)
		return BAD(NULL, "%s: header length %llu exceeds the limit of %llu bytes", src,
			(unsigned long long)hlen, (unsigned long long)FDN_MODEL_HEADER_MAX);
	if (hlen > size - 8)
		return BAD(NULL, "%s: header length %llu runs past the end (%llu bytes)", src,
			(unsigned long long)hlen, (unsigned long long)size);
	return 0;
}

/* Parses the JSON header @p text (@p hlen bytes) of an image whose data
 * section is @p p->data_size bytes at @p p->data (NULL: header only).
 * With @p copy_data the model gets its own copy of the data first. */
static int parse_json(fdn_model *m, parse *p, const char *text, uint64_t hlen,
	bool copy_data)
{
	json_error_t err;
	json_t *root;
	int rc;

	if (hlen < 2 || text[0] != '{')
		return BAD(p, "%s: header does not start with '{'", p->src);
	root = json_loadb(text, (size_t)hlen, JSON_REJECT_DUPLICATES, &err);
	if (!root)
		return BAD(p, "%s: invalid JSON header at byte %d: %s", p->src,
			err.position, err.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return BAD(p, "%s: header is not a JSON object", p->src);
	}
	if (copy_data && p->data_size) {
		if (!(m->block = fdn__malloc((size_t)p->data_size))) {
			json_decref(root);
			return fdn__error_oom();
		}
		memcpy(m->block, p->data, (size_t)p->data_size);
		p->data = m->block;
	}
	rc = build(m, p, root);
	json_decref(root);
	return rc;
}

/* Parses @p size bytes at @p bytes; with @p copy_data the model gets its
 * own copy of the data section, else the tensors view @p bytes. */
static int parse_image(fdn_model *m, const char *src, const unsigned char *bytes,
	size_t size, bool copy_data)
{
	parse p = { src, NULL, 0 };
	uint64_t hlen = size >= 8 ? le64(bytes) : 0;
	int rc;

	if ((rc = check_header_length(src, hlen, size)) < 0)
		return rc;
	p.data_size = size - 8 - hlen;
	p.data = bytes + 8 + hlen;
	return parse_json(m, &p, (const char *)bytes + 8, hlen, copy_data);
}

int fdn_model__read_header(fdn_model **out, uint64_t *data_start, int fd,
	const char *path, uint64_t file_size)
{
	parse p = { path, NULL, 0 };
	unsigned char lenb[8];
	fdn_model *m = NULL;
	char *text = NULL;
	uint64_t hlen = 0;
	size_t got;
	int rc;

	*out = NULL;
	if (file_size >= 8) {
		if ((rc = fdn__pread_all(fd, lenb, 8, 0, &got, path)) < 0)
			return rc;
		if (got != 8)
			return fdn__error_set(FDN_EIO, FDN_ERRCLASS_MODEL,
				"%s: the file shrank while it was read", path);
		hlen = le64(lenb);
	}
	if ((rc = check_header_length(path, hlen, file_size)) < 0)
		return rc;
	if (!(text = fdn__malloc(hlen ? (size_t)hlen : 1)))
		return fdn__error_oom();
	if ((rc = fdn__pread_all(fd, text, (size_t)hlen, 8, &got, path)) < 0)
		goto out;
	if (got != hlen) {
		rc = fdn__error_set(FDN_EIO, FDN_ERRCLASS_MODEL,
			"%s: the file shrank while it was read", path);
		goto out;
	}
	if ((rc = fdn_model__alloc(&m)) < 0)
		goto out;
	p.data_size = file_size - 8 - hlen;
	if ((rc = parse_json(m, &p, text, hlen, false)) < 0)
		goto out;
	*data_start = 8 + hlen;
	*out = m;
	m = NULL;
out:
	fdn_model_free(m);
	fdn__free(text);
	return rc;
}

int fdn_model_read_buffer(fdn_model **out, const void *data, size_t size,
	unsigned int flags)
{
	fdn_model *m;
	int rc;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	FDN__CHECK_ARG(data || size == 0, "data");
	FDN__CHECK_ARG(!(flags & ~(unsigned)FDN_MODEL_READ_COPY), "flags");
	if ((rc = fdn__check_init()) < 0)
		return rc;
	if ((rc = fdn_model__alloc(&m)) < 0)
		return rc;
	if ((rc = parse_image(m, "buffer", data ? data : "", size, true)) < 0) {
		fdn_model_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

static int read_whole(int fd, const char *path, size_t size, void **out)
{
	size_t got;
	void *b = fdn__malloc(size ? size : 1);
	int rc;

	if (!b)
		return fdn__error_oom();
	if ((rc = fdn__pread_all(fd, b, size, 0, &got, path)) < 0) {
		fdn__free(b);
		return rc;
	}
	if (got != size) {
		fdn__free(b);
		return fdn__error_set(FDN_EIO, FDN_ERRCLASS_MODEL,
			"%s: the file shrank while it was read", path);
	}
	*out = b;
	return 0;
}

int fdn_model_read_file(fdn_model **out, const char *path, unsigned int flags)
{
	fdn_model *m = NULL;
	struct stat st;
	void *bytes;
	int fd, rc;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	FDN__CHECK_ARG(path, "path");
	FDN__CHECK_ARG(!(flags & ~(unsigned)FDN_MODEL_READ_COPY), "flags");
	if ((rc = fdn__check_init()) < 0)
		return rc;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT
			? fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_OS, "%s: no such file", path)
			: fdn__error_os(errno, "%s: cannot open", path);
	if (fstat(fd, &st) < 0) {
		rc = fdn__error_os(errno, "%s: cannot stat", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = fdn__error_set(FDN_EIO, FDN_ERRCLASS_MODEL, "%s: not a regular file", path);
		goto fail;
	}
	if ((uint64_t)st.st_size > SIZE_MAX) {
		rc = fdn__error_set(FDN_EIO, FDN_ERRCLASS_MODEL, "%s: too large to map", path);
		goto fail;
	}
	if ((rc = fdn_model__alloc(&m)) < 0)
		goto fail;
	if ((flags & FDN_MODEL_READ_COPY) || st.st_size < 8) {
		/* The whole file is the block; the tensors view its data part. */
		if ((rc = read_whole(fd, path, (size_t)st.st_size, &m->block)) < 0)
			goto fail;
		bytes = m->block;
	} else {
		bytes = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (bytes == MAP_FAILED) {
			rc = fdn__error_os(errno, "%s: cannot map", path);
			goto fail;
		}
		m->map = bytes;
		m->map_size = (size_t)st.st_size;
	}
	close(fd);
	fd = -1;
	if ((rc = parse_image(m, path, bytes, (size_t)st.st_size, false)) < 0)
		goto fail;
	*out = m;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	fdn_model_free(m);
	return rc;
}

/* --- writing --------------------------------------------------------------- */

static json_t *tensor_json(const fdn_model__tensor *t, uint64_t begin)
{
	json_t *o = json_object(), *shape = json_array(), *offs = json_array();
	bool ok = o && shape && offs;

	for (size_t i = 0; ok && i < t->ndim; i++)
		ok = json_array_append_new(shape, json_integer((json_int_t)t->shape[i])) == 0;
	ok = ok && json_array_append_new(offs, json_integer((json_int_t)begin)) == 0 &&
		json_array_append_new(offs, json_integer((json_int_t)(begin + t->nbytes))) == 0 &&
		json_object_set_new(o, "dtype", json_string(fdn_dtype_name(t->dtype))) == 0;
	if (ok) {
		ok = json_object_set_new(o, "shape", shape) == 0;
		shape = NULL;
		ok = ok && json_object_set_new(o, "data_offsets", offs) == 0;
		offs = NULL;
	}
	json_decref(shape);
	json_decref(offs);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The header, padded with spaces to a multiple of 8, with its length
 * prefix, in @p out; the data's total size in @p data_size. */
int fdn_model__header(fdn_buf *out, const fdn_model *m, size_t *data_size)
{
	json_t *root = json_object();
	json_t *meta = NULL;
	uint64_t pos = 0;
	char *text = NULL;
	size_t len, padded;
	unsigned char lenb[8];
	int rc = fdn__error_oom();

	if (!root)
		return rc;
	for (size_t i = 0; i < m->ntensors; i++) {
		json_t *t = tensor_json(&m->tensors[i], pos);

		if (!t || json_object_set_new(root, m->tensors[i].name, t) < 0)
			goto out;
		pos += m->tensors[i].nbytes;
		if (pos > (uint64_t)INT64_MAX || pos > SIZE_MAX) {
			rc = fdn__error_set(FDN_ERROR, FDN_ERRCLASS_MODEL,
				"the model is too large to write");
			goto out;
		}
	}
	if (m->nmeta) {
		if (!(meta = json_object()) || json_object_set_new(root, "__metadata__", meta) < 0)
			goto out;
		for (size_t i = 0; i < m->nmeta; i++)
			if (json_object_set_new(meta, m->meta[i].key,
					json_string(m->meta[i].value)) < 0)
				goto out;
	}
	if (!(text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		goto out;
	len = strlen(text);
	padded = (len + 7) & ~(size_t)7;
	for (int i = 0; i < 8; i++)
		lenb[i] = (unsigned char)((uint64_t)padded >> (8 * i));
	if (fdn_buf__put(out, lenb, 8) < 0 || fdn_buf__put(out, text, len) < 0)
		goto out;
	for (; len < padded; len++)
		if (fdn_buf__put(out, " ", 1) < 0)
			goto out;
	*data_size = (size_t)pos;
	rc = 0;
out:
	free(text);  /* jansson's allocator */
	json_decref(root);
	return rc;
}

int fdn_model_write_buffer(fdn_buf *out, const fdn_model *model)
{
	fdn_buf b = FDN_BUF_INIT;
	size_t data_size;
	int rc;

	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(model, "model");
	if ((rc = fdn__check_init()) < 0)
		return rc;
	if ((rc = fdn_model__header(&b, model, &data_size)) < 0)
		goto fail;
	if ((rc = fdn_buf__grow(&b, data_size)) < 0)
		goto fail;
	for (size_t i = 0; i < model->ntensors; i++)
		if (model->tensors[i].nbytes &&
		    (rc = fdn_buf__put(&b, model->tensors[i].data, model->tensors[i].nbytes)) < 0)
			goto fail;
	fdn_buf_dispose(out);
	*out = b;
	return 0;
fail:
	fdn_buf_dispose(&b);
	return rc;
}

int fdn_model_write_file(const fdn_model *model, const char *path)
{
	fdn_buf hdr = FDN_BUF_INIT;
	fdn_atomic_file af;
	size_t data_size;
	int rc;

	FDN__CHECK_ARG(model, "model");
	FDN__CHECK_ARG(path, "path");
	if ((rc = fdn__check_init()) < 0)
		return rc;
	if ((rc = fdn_model__header(&hdr, model, &data_size)) < 0)
		goto out;
	if ((rc = fdn__atomic_open(&af, path)) < 0)
		goto out;
	rc = fdn__atomic_write(&af, hdr.ptr, hdr.size);
	for (size_t i = 0; rc == 0 && i < model->ntensors; i++)
		if (model->tensors[i].nbytes)
			rc = fdn__atomic_write(&af, model->tensors[i].data,
				model->tensors[i].nbytes);
	if (rc == 0)
		rc = fdn__atomic_commit(&af);
	if (rc < 0)
		fdn__atomic_abort(&af);
out:
	fdn_buf_dispose(&hdr);
	return rc;
}
