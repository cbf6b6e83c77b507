/*
 * Transports: the handle, key rules, host implementations (a versioned
 * vtable), and the buffer, file and stream forms of put and get that every
 * transport shares.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "transport/transport_private.h"

#define KEY_SEGMENTS_MAX 16
#define KEY_SEGMENT_MAX 128
#define DEFAULT_GET_MAX ((size_t)1 << 30)

struct fdn_transport {
	const fdn_transport__ops *ops;
	void *self;
	fdn_cancel *cancel;
};

/* --- keys ------------------------------------------------------------- */

static bool key_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* NULL when @p key follows the rules of transport.h, else why it does not. */
static const char *key_problem(const char *key)
{
	size_t len, seg = 0, segments = 1;
	const char *start = key;

	if (!key)
		return "no key (NULL)";
	len = strnlen(key, FDN_TRANSPORT_KEY_MAX + 1);
	if (len == 0)
		return "the key is empty";
	if (len > FDN_TRANSPORT_KEY_MAX)
		return "longer than 1024 bytes";
	for (size_t i = 0; i <= len; i++) {
		char c = key[i];
		if (c == '/' || c == '\0') {
			if (seg == 0)
				return i == 0 ? "it starts with '/'" : c == '\0' ?
					"it ends with '/'" : "it has an empty segment ('//')";
			if ((seg == 1 && start[0] == '.') ||
			    (seg == 2 && start[0] == '.' && start[1] == '.'))
				return "a segment is '.' or '..'";
			if (c == '/' && ++segments > KEY_SEGMENTS_MAX)
				return "more than 16 segments";
			seg = 0;
			start = key + i + 1;
			continue;
		}
		if (!key_char_ok(c))
			return "a character is not one of A-Z a-z 0-9 . _ - /";
		if (++seg > KEY_SEGMENT_MAX)
			return "a segment is longer than 128 characters";
	}
	return NULL;
}

int fdn_transport_key_valid(const char *key)
{
	return key_problem(key) == NULL;
}

/* The key for a message: at most 80 characters, unprintable ones as '?'
 * (a hostile key must not garble the message or the log). */
static void key_for_message(char out[84], const char *key)
{
	size_t i;

	for (i = 0; i < 80 && key[i]; i++)
		out[i] = key[i] >= 0x20 && key[i] < 0x7f ? key[i] : '?';
	if (i == 80 && key[i])
		memcpy(out + i++ - 3, "...", 3);
	out[i] = '\0';
}

static int check_key(const char *fn, const char *key)
{
	const char *why = key_problem(key);
	char shown[84];

	if (!why)
		return 0;
	if (!key)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID, "%s: %s", fn, why);
	key_for_message(shown, key);
	return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
		"%s: invalid key '%s': %s", fn, shown, why);
}

void fdn_transport__set_etag(fdn_object_info *info, const char *etag, size_t len)
{
	if (len > FDN_ETAG_MAX)
		len = 0;  /* cut, it would no longer match: better none */
	memcpy(info->etag, etag, len);
	info->etag[len] = '\0';
}

/* --- the handle --------------------------------------------------------- */

int fdn_transport__wrap(fdn_transport **out, const fdn_transport__ops *ops, void *self)
{
	fdn_transport *t = fdn__calloc(1, sizeof(*t));

	if (!t) {
		if (ops->free)
			ops->free(self);
		return fdn__error_oom();
	}
	t->ops = ops;
	t->self = self;
	*out = t;
	return 0;
}

void fdn_transport_free(fdn_transport *t)
{
	if (!t)
		return;
	if (t->ops->free)
		t->ops->free(t->self);
	fdn__free(t);
}

int fdn_transport_set_cancel(fdn_transport *t, fdn_cancel *cancel)
{
	FDN__CHECK_ARG(t, "t");
	t->cancel = cancel;
	return 0;
}

/* --- host implementations ---------------------------------------------- */

/* What a version of fdn_transport_iface holds: members are only appended,
 * so a structure of version v is this many bytes long. */
static const size_t iface_size[] = {
	0,
	offsetof(fdn_transport_iface, free) + sizeof(((fdn_transport_iface *)0)->free),
};

typedef struct host_impl {
	fdn_transport_iface iface;
	void *payload;
} host_impl;

/* A host method failed: keep the message it set through the library
 * (e.g. our own write callback's FDN_EBUFS), else say who failed. */
static int host_failed(int rc, const char *method)
{
	const fdn_error *e = fdn_error_last();
	char what[48];

	if (e->code == rc)
		return rc;
	snprintf(what, sizeof(what), "host transport's %s", method);
	return fdn__error_callback(rc, what);
}

static int host_put(void *self, const char *key, const fdn_transport__source *src,
	fdn_object_info *info, fdn_cancel *cancel)
{
	host_impl *h = self;
	int rc;

	fdn_error_clear();  /* so that host_failed() sees a message of this call */
	rc = h->iface.put(h->payload, key, src->read, src->payload, src->size, info, cancel);

	return rc ? host_failed(rc, "put") : 0;
}

static int host_get(void *self, const char *key, const fdn_transport__sink *sink,
	const char *if_none_match, fdn_object_info *info, fdn_cancel *cancel)
{
	host_impl *h = self;
	int rc;

	fdn_error_clear();
	rc = h->iface.get(h->payload, key, sink->write, sink->payload, if_none_match,
		info, cancel);

	return rc ? host_failed(rc, "get") : 0;
}

static int host_head(void *self, const char *key, fdn_object_info *info, fdn_cancel *cancel)
{
	host_impl *h = self;
	int rc;

	fdn_error_clear();
	rc = h->iface.head(h->payload, key, info, cancel);

	return rc ? host_failed(rc, "head") : 0;
}

static int host_remove(void *self, const char *key, fdn_cancel *cancel)
{
	host_impl *h = self;
	int rc;

	if (!h->iface.remove)
		return fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_TRANSPORT,
			"the host transport has no remove method");
	fdn_error_clear();
	rc = h->iface.remove(h->payload, key, cancel);
	return rc ? host_failed(rc, "remove") : 0;
}

static void host_free(void *self)
{
	host_impl *h = self;

	if (h->iface.free)
		h->iface.free(h->payload);
	fdn__free(h);
}

static const fdn_transport__ops host_ops = {
	"host", host_put, host_get, host_head, host_remove, host_free,
};

int fdn_transport_new(fdn_transport **out, const fdn_transport_iface *iface, void *payload)
{
	fdn_transport_iface copy;
	const char *missing = NULL;
	host_impl *h;
	int rc;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	FDN__CHECK_ARG(iface, "iface");
	if (iface->version == 0)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_transport_iface: version 0 (set FDN_TRANSPORT_IFACE_VERSION)");
	/* Any version >= 1 has free at the same place: the payload is always
	 * released when this call fails, as documented. */
	if (iface->version > FDN_TRANSPORT_IFACE_VERSION) {
		if (iface->free)
			iface->free(payload);
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_transport_iface: unsupported version %u (this library knows up to %u)",
			iface->version, FDN_TRANSPORT_IFACE_VERSION);
	}
	memset(&copy, 0, sizeof(copy));
	memcpy(&copy, iface, iface_size[iface->version]);
	if (!copy.put)
		missing = "put";
	else if (!copy.get)
		missing = "get";
	else if (!copy.head)
		missing = "head";
	if (missing) {
		if (copy.free)
			copy.free(payload);
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_transport_iface: the %s method is required", missing);
	}
	if ((rc = fdn__check_init()) != 0) {
		if (copy.free)
			copy.free(payload);
		return rc;
	}
	if (!(h = fdn__calloc(1, sizeof(*h)))) {
		if (copy.free)
			copy.free(payload);
		return fdn__error_oom();
	}
	h->iface = copy;
	h->payload = payload;
	return fdn_transport__wrap(out, &host_ops, h);
}

/* --- what every operation checks first ----------------------------------- */

static int begin(const char *fn, fdn_transport *t, const char *key,
	const fdn_object_info *info)
{
	int rc;

	if (!t)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"%s: invalid argument 't'", fn);
	if ((rc = fdn__check_init()) != 0 || (rc = check_key(fn, key)) != 0)
		return rc;
	if (info && (info->version == 0 || info->version > FDN_OBJECT_INFO_VERSION))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"%s: fdn_object_info version %u is not supported (this library knows up to %u)",
			fn, info->version, FDN_OBJECT_INFO_VERSION);
	return fdn__cancel_check(t->cancel);
}

/* Hands the filled version-1 structure to the caller's (of any version
 * this library knows: for now, only 1). */
static void give_info(fdn_object_info *out, const fdn_object_info *in)
{
	unsigned int version;

	if (!out)
		return;
	version = out->version;
	*out = *in;
	out->version = version;
}

/* The entity tag given to a get, checked (it goes into a request header)
 * and copied (the caller may pass info->etag, which the get refills). */
static int copy_if_none_match(char out[FDN_ETAG_MAX + 1], const char *fn, const char *etag)
{
	size_t len;

	if (!etag)
		return 0;
	len = strnlen(etag, FDN_ETAG_MAX + 1);
	if (len == 0 || len > FDN_ETAG_MAX)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"%s: if_none_match must be 1 to %d bytes", fn, FDN_ETAG_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)etag[i] < 0x20 || (unsigned char)etag[i] >= 0x7f)
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
				"%s: if_none_match holds a control or non-ASCII character", fn);
	memcpy(out, etag, len + 1);
	return 1;
}

static int do_put(const char *fn, fdn_transport *t, const char *key,
	const fdn_transport__source *src, fdn_object_info *info)
{
	fdn_object_info tmp = FDN_OBJECT_INFO_INIT;
	int rc;

	if ((rc = begin(fn, t, key, info)) != 0)
		return rc;
	/* A put fills info only when asked: over HTTPS it may take a HEAD. */
	if ((rc = t->ops->put(t->self, key, src, info ? &tmp : NULL, t->cancel)) != 0)
		return rc;
	give_info(info, &tmp);
	return 0;
}

static int do_get(const char *fn, fdn_transport *t, const char *key,
	const fdn_transport__sink *sink, const char *if_none_match, fdn_object_info *info)
{
	fdn_object_info tmp = FDN_OBJECT_INFO_INIT;
	char inm[FDN_ETAG_MAX + 1];
	int rc;

	if ((rc = begin(fn, t, key, info)) != 0 ||
	    (rc = copy_if_none_match(inm, fn, if_none_match)) < 0)
		return rc;
	if ((rc = t->ops->get(t->self, key, sink, rc ? inm : NULL, &tmp, t->cancel)) != 0)
		return rc;
	give_info(info, &tmp);
	return 0;
}

/* --- put: buffer, file, stream ---------------------------------------- */

typedef struct mem_reader {
	const unsigned char *data;
	size_t len, pos;
} mem_reader;

static int mem_read(void *buf, size_t capacity, size_t *got, void *payload)
{
	mem_reader *m = payload;
	size_t n = m->len - m->pos < capacity ? m->len - m->pos : capacity;

	if (n)
		memcpy(buf, m->data + m->pos, n);
	m->pos += n;
	*got = n;
	return 0;
}

static int mem_rewind(void *payload)
{
	((mem_reader *)payload)->pos = 0;
	return 0;
}

int fdn_transport_put_buffer(fdn_transport *t, const char *key,
	const void *data, size_t len, fdn_object_info *info)
{
	mem_reader m = { data, len, 0 };
	fdn_transport__source src = { mem_read, &m, len, mem_rewind };

	if (!data && len)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_transport_put_buffer: invalid argument 'data'");
	return do_put(__func__, t, key, &src, info);
}

static int file_rewind(void *payload)
{
	const fdn__fd_stream *f = payload;

	if (lseek(f->fd, 0, SEEK_SET) != 0)
		return fdn__error_os(errno, "cannot go back to the start of %s", f->what);
	return 0;
}

int fdn_transport_put_file(fdn_transport *t, const char *key,
	const char *path, fdn_object_info *info)
{
	char what[PATH_MAX + 3];
	fdn__fd_stream f = { -1, what };
	fdn_transport__source src = { fdn__fd_read, &f, UINT64_MAX, NULL };
	struct stat st;
	int rc;

	FDN__CHECK_ARG(path, "path");
	snprintf(what, sizeof(what), "'%s'", path);
	/* Key and options first: nothing is opened for a call that is refused. */
	if ((rc = begin(__func__, t, key, info)) != 0)
		return rc;
	if ((f.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return fdn__error_os(errno, "cannot open '%s'", path);
	if (fstat(f.fd, &st) != 0) {
		rc = fdn__error_os(errno, "cannot inspect '%s'", path);
	} else if (S_ISDIR(st.st_mode)) {
		rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_transport_put_file: '%s' is a folder", path);
	} else {
		/* A regular file has a size and can be read again for a retry;
		 * a pipe or device has neither. */
		if (S_ISREG(st.st_mode)) {
			src.size = (uint64_t)st.st_size;
			src.rewind = file_rewind;
		}
		rc = do_put(__func__, t, key, &src, info);
	}
	close(f.fd);
	return rc;
}

int fdn_transport_put_stream(fdn_transport *t, const char *key,
	fdn_read_cb read, void *read_payload, uint64_t size, fdn_object_info *info)
{
	fdn_transport__source src = { read, read_payload, size, NULL };

	FDN__CHECK_ARG(read, "read");
	return do_put(__func__, t, key, &src, info);
}

/* --- get: buffer, file, stream ----------------------------------------- */

typedef struct buf_writer {
	fdn_buf *buf;
	size_t max;
	const char *key;
} buf_writer;

static int buf_write(const void *data, size_t len, void *payload)
{
	buf_writer *w = payload;

	if (len > w->max - w->buf->size)
		return fdn__error_set(FDN_EBUFS, FDN_ERRCLASS_TRANSPORT,
			"object '%s' is larger than the %zu bytes accepted", w->key, w->max);
	return fdn_buf__put(w->buf, data, len);
}

static int buf_restart(void *payload)
{
	fdn_buf__clear(((buf_writer *)payload)->buf);
	return 0;
}

int fdn_transport_get_buffer(fdn_transport *t, const char *key,
	fdn_buf *out, size_t max_size, const char *if_none_match, fdn_object_info *info)
{
	buf_writer w = { out, max_size ? max_size : DEFAULT_GET_MAX, key };
	fdn_transport__sink sink = { buf_write, &w, buf_restart, w.max };
	int rc;

	FDN__CHECK_ARG(out, "out");
	fdn_buf_dispose(out);
	rc = do_get(__func__, t, key, &sink, if_none_match, info);
	if (rc != 0)
		fdn_buf_dispose(out);
	return rc;
}

typedef struct file_writer {
	fdn_atomic_file af;
} file_writer;

static int file_write(const void *data, size_t len, void *payload)
{
	file_writer *w = payload;

	return fdn__atomic_write(&w->af, data, len);
}

static int file_restart(void *payload)
{
	file_writer *w = payload;

	if (ftruncate(w->af.fd, 0) != 0 || lseek(w->af.fd, 0, SEEK_SET) != 0)
		return fdn__error_os(errno, "cannot empty '%s'", w->af.tmp_path);
	return 0;
}

int fdn_transport_get_file(fdn_transport *t, const char *key,
	const char *path, const char *if_none_match, fdn_object_info *info)
{
	fdn_object_info tmp = FDN_OBJECT_INFO_INIT;
	file_writer w;
	fdn_transport__sink sink = { file_write, &w, file_restart, UINT64_MAX };
	int rc;

	FDN__CHECK_ARG(path, "path");
	if ((rc = begin(__func__, t, key, info)) != 0)
		return rc;
	if ((rc = fdn__atomic_open(&w.af, path)) != 0)
		return rc;
	rc = do_get(__func__, t, key, &sink, if_none_match, &tmp);
	if (rc == 0 && !tmp.not_modified)
		rc = fdn__atomic_commit(&w.af);
	/* Not modified: the file the caller has is the current one. */
	fdn__atomic_abort(&w.af);
	if (rc == 0)
		give_info(info, &tmp);
	return rc;
}

int fdn_transport_get_stream(fdn_transport *t, const char *key,
	fdn_write_cb write, void *write_payload, const char *if_none_match,
	fdn_object_info *info)
{
	fdn_transport__sink sink = { write, write_payload, NULL, UINT64_MAX };

	FDN__CHECK_ARG(write, "write");
	return do_get(__func__, t, key, &sink, if_none_match, info);
}

/* --- head, delete ------------------------------------------------------- */

int fdn_transport_head(fdn_transport *t, const char *key, fdn_object_info *info)
{
	fdn_object_info tmp = FDN_OBJECT_INFO_INIT;
	int rc;

	if ((rc = begin(__func__, t, key, info)) != 0 ||
	    (rc = t->ops->head(t->self, key, &tmp, t->cancel)) != 0)
		return rc;
	give_info(info, &tmp);
	return 0;
}

int fdn_transport_delete(fdn_transport *t, const char *key)
{
	int rc;

	if ((rc = begin(__func__, t, key, NULL)) != 0)
		return rc;
	if (!t->ops->remove)
		return fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_TRANSPORT,
			"the %s transport cannot delete", t->ops->name);
	return t->ops->remove(t->self, key, t->cancel);
}

/* --- from a URL ------------------------------------------------------------ */

/* The folder of a "file:///abs/dir" (or "file://localhost/abs/dir") URL,
 * percent-decoded, into *out (library memory). */
static int file_url_path(char **out, const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL, *path = NULL, *query = NULL;
	int rc = 0;

	if (!u)
		return fdn__error_oom();
	if (strstr(url, "%00") || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) != CURLUE_OK) {
		rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_TRANSPORT,
			"'%.200s' is not a file:// URL", url);
		goto out;
	}
	curl_url_get(u, CURLUPART_HOST, &host, 0);
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	if ((host && *host && strcmp(host, "localhost") != 0) || query)
		rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_TRANSPORT,
			"'%.200s': only file:///absolute/folder is supported", url);
	else if (!path || path[0] != '/')
		rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_TRANSPORT,
			"'%.200s': the folder must be an absolute path", url);
	else if (!(*out = fdn__strdup(path)))
		rc = fdn__error_oom();
out:
	curl_free(host);
	curl_free(path);
	curl_free(query);
	curl_url_cleanup(u);
	return rc;
}

int fdn_transport_open_url(fdn_transport **out, const char *url,
	const fdn_https_options *opts)
{
	char *path = NULL;
	int rc;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	FDN__CHECK_ARG(url, "url");
	if (strncasecmp(url, "https://", 8) == 0)
		return fdn_transport_https_new(out, url, opts);
	if (strncasecmp(url, "file://", 7) == 0) {
		FDN__CHECK_VERSION(opts, FDN_HTTPS_OPTIONS_VERSION, "fdn_https_options");
		if ((rc = file_url_path(&path, url)) != 0)
			return rc;
		rc = fdn_transport_dir_new(out, path);
		fdn__free(path);
		return rc;
	}
	if (strncasecmp(url, "http://", 7) == 0)
		return fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_TRANSPORT,
			"plain http:// is refused: the store and the client certificate could "
			"not be authenticated; use https://");
	return fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_TRANSPORT,
		"'%.200s': unsupported transport URL (file:///folder or https://host/path)", url);
}
