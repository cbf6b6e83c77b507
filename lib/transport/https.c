/*
 * The HTTPS transport: a WebDAV-style store (GET, HEAD, PUT, DELETE)
 * through libcurl.
 *
 * One easy handle per transport, reset before each request, so the TLS
 * connection (and its session) is reused from one request to the next.
 * Verification of the server's certificate and name is always on, TLS 1.2
 * is the minimum, and only https:// is ever spoken, redirects included.
 *
 * Failures that may pass (no connection, a timeout or a stall, a transfer
 * cut short, HTTP 408, 429 and 5xx) are retried with exponential backoff
 * and jitter, honouring a short Retry-After.  A put is sent again only
 * when its input can be read again from the start (a buffer, a regular
 * file), or when none of it was sent yet.  A get that breaks goes on
 * where it stopped with "Range: bytes=N-" guarded by "If-Range: <etag>";
 * when the server sends the whole object instead, a buffer or file get
 * starts again from zero, while a stream get fails: what its callback was
 * given cannot be taken back.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "fednode/version.h"
#include "transport/transport_private.h"

#define DEFAULT_CONNECT_MS 10000u
#define DEFAULT_STALL_MS 30000u
#define DEFAULT_RETRIES 4u
#define DEFAULT_BACKOFF_MS 250u
#define BACKOFF_CAP_MS 30000u
#define RETRY_AFTER_MAX_S 60
#define STALL_BYTES_PER_S 1024L

typedef struct https {
	CURL *easy;
	char *base;          /* no trailing '/' */
	char *ca_file, *cert, *key;
	char *proxy;         /* NULL: libcurl reads the environment */
	long connect_ms, stall_s;
	unsigned int retries, backoff_ms;
	char errbuf[CURL_ERROR_SIZE];
} https;

typedef enum method { M_GET, M_HEAD, M_PUT, M_DELETE } method;

static const char *const method_names[] = { "GET", "HEAD", "PUT", "DELETE" };

/* One operation, over all its attempts. */
typedef struct xfer {
	https *h;
	method m;
	const char *key;
	char *url;
	fdn_cancel *cancel;
	int rc;              /* set by a callback that stopped the transfer */
	bool transient;      /* ... and whether another attempt may help */
	/* put */
	const fdn_transport__source *src;
	uint64_t sent;       /* bytes taken from src (since the last rewind) */
	/* get */
	const fdn_transport__sink *sink;
	const char *if_none_match;
	uint64_t delivered;  /* bytes handed to the sink */
	uint64_t high_water; /* most ever delivered: progress resets the retries */
	uint64_t start;      /* offset this attempt asked for */
	uint64_t total;      /* object size, UINT64_MAX while unknown */
	bool checked, accept;
	char etag[FDN_ETAG_MAX + 1];
} xfer;

/* --- global state --------------------------------------------------------- */

int fdn_transport__global_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_TRANSPORT,
			"libcurl could not be initialised");
	return 0;
}

void fdn_transport__global_cleanup(void)
{
	curl_global_cleanup();
}

/* --- responses ------------------------------------------------------------- */

static void header_etag(xfer *x)
{
	struct curl_header *hd;

	x->etag[0] = '\0';
	if (curl_easy_header(x->h->easy, "ETag", 0, CURLH_HEADER, -1, &hd) == CURLHE_OK) {
		size_t len = strlen(hd->value);
		if (len <= FDN_ETAG_MAX)
			memcpy(x->etag, hd->value, len + 1);
	}
}

static bool etag_strong(const char *etag)
{
	return etag[0] == '"' && strlen(etag) >= 2;
}

/* "bytes S-E/T": S and T (T = UINT64_MAX for '*'); false when malformed. */
static bool parse_content_range(const char *v, uint64_t *first, uint64_t *total)
{
	char *end;

	if (strncmp(v, "bytes ", 6) != 0)
		return false;
	v += 6;
	if (*v == '*') {
		*first = UINT64_MAX;
		v++;
	} else {
		errno = 0;
		*first = strtoull(v, &end, 10);
		if (errno || end == v || *end != '-')
			return false;
		v = strchr(end, '/');
		if (!v)
			return false;
	}
	if (*v++ != '/')
		return false;
	if (*v == '*') {
		*total = UINT64_MAX;
		return true;
	}
	errno = 0;
	*total = strtoull(v, &end, 10);
	return !errno && end != v;
}

static int stop(xfer *x, int rc, bool transient)
{
	x->rc = rc;
	x->transient = transient;
	return rc;
}

/* Looks at a GET response once, before any of its body is used: the
 * body goes to the sink only for 200 and a 206 that starts where asked. */
static int check_response(xfer *x)
{
	struct curl_header *hd;
	long status = 0;
	curl_off_t len = -1;
	uint64_t first, total;
	int rc;

	if (x->checked)
		return 0;
	x->checked = true;
	curl_easy_getinfo(x->h->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status == 200) {
		if (x->start > 0) {
			/* The object changed, or the server ignores ranges. */
			if (!x->sink->restart)
				return stop(x, fdn__error_set(FDN_EIO, FDN_ERRCLASS_TRANSPORT,
					"GET %s: the transfer broke after %" PRIu64 " bytes and the "
					"server sent the whole object again instead of the rest "
					"(the object changed, or the server ignores ranges); the "
					"bytes already given to the write callback cannot be taken back",
					x->url, x->delivered), false);
			if ((rc = x->sink->restart(x->sink->payload)) != 0)
				return stop(x, rc, false);
			x->delivered = 0;
			x->start = 0;
		}
		header_etag(x);
		curl_easy_getinfo(x->h->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
		x->total = len >= 0 ? (uint64_t)len : UINT64_MAX;
		if (x->total != UINT64_MAX && x->total > x->sink->limit)
			return stop(x, fdn__error_set(FDN_EBUFS, FDN_ERRCLASS_TRANSPORT,
				"object '%s' is %" PRIu64 " bytes, more than the %" PRIu64 " accepted",
				x->key, x->total, x->sink->limit), false);
		x->accept = true;
	} else if (status == 206) {
		if (curl_easy_header(x->h->easy, "Content-Range", 0, CURLH_HEADER, -1, &hd)
			!= CURLHE_OK || !parse_content_range(hd->value, &first, &total) ||
		    first != x->start)
			return stop(x, fdn__error_set(FDN_EIO, FDN_ERRCLASS_TRANSPORT,
				"GET %s: the server answered a range request with a different range",
				x->url), false);
		x->total = total;
		x->accept = true;
	}
	/* Anything else: the body is an error page, not the object. */
	return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *payload)
{
	xfer *x = payload;
	size_t n = size * nmemb;
	int rc;

	if (check_response(x) != 0)
		return CURL_WRITEFUNC_ERROR;
	if (!x->accept)
		return n;
	if (fdn_cancel_requested(x->cancel)) {
		stop(x, fdn__cancel_check(x->cancel), false);
		return CURL_WRITEFUNC_ERROR;
	}
	if ((rc = x->sink->write(data, n, x->sink->payload)) != 0) {
		stop(x, fdn__error_callback(rc, "write"), false);
		return CURL_WRITEFUNC_ERROR;
	}
	x->delivered += n;
	return n;
}

/* The body of a reply to a PUT or DELETE: not the caller's business. */
static size_t on_discard(char *data, size_t size, size_t nmemb, void *payload)
{
	(void)data, (void)payload;
	return size * nmemb;
}

static size_t on_upload(char *buf, size_t size, size_t nitems, void *payload)
{
	xfer *x = payload;
	const fdn_transport__source *src = x->src;
	size_t cap = size * nitems, got = 0;
	int rc;

	if (fdn_cancel_requested(x->cancel)) {
		stop(x, fdn__cancel_check(x->cancel), false);
		return CURL_READFUNC_ABORT;
	}
	if ((rc = src->read(buf, cap, &got, src->payload)) != 0) {
		stop(x, fdn__error_callback(rc, "read"), false);
		return CURL_READFUNC_ABORT;
	}
	if (got > cap) {
		stop(x, fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_CALLBACK,
			"read callback reported %zu bytes for a %zu-byte buffer", got, cap), false);
		return CURL_READFUNC_ABORT;
	}
	x->sent += got;
	if (src->size != UINT64_MAX && (x->sent > src->size || (got == 0 && x->sent < src->size))) {
		stop(x, fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_TRANSPORT,
			"put '%s': the stream gave %s the %" PRIu64 " bytes announced",
			x->key, x->sent > src->size ? "more than" : "fewer than", src->size), false);
		return CURL_READFUNC_ABORT;
	}
	return got;
}

/* libcurl rewinds the upload itself in a few cases (a redirect, an
 * authentication round); only a restartable source can follow. */
static int on_seek(void *payload, curl_off_t offset, int origin)
{
	xfer *x = payload;

	if (offset != 0 || origin != SEEK_SET || !x->src->rewind)
		return CURL_SEEKFUNC_CANTSEEK;
	if (x->src->rewind(x->src->payload) != 0)
		return CURL_SEEKFUNC_FAIL;
	x->sent = 0;
	return CURL_SEEKFUNC_OK;
}

static int on_progress(void *payload, curl_off_t dltotal, curl_off_t dlnow,
	curl_off_t ultotal, curl_off_t ulnow)
{
	xfer *x = payload;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return fdn_cancel_requested(x->cancel);
}

/* --- one attempt ---------------------------------------------------------- */

#define SET(opt, val) \
	do { if (cc == CURLE_OK) cc = curl_easy_setopt(e, opt, val); } while (0)

static CURLcode set_common(xfer *x)
{
	https *h = x->h;
	CURL *e = h->easy;
	CURLcode cc = CURLE_OK;

	SET(CURLOPT_URL, x->url);
	SET(CURLOPT_ERRORBUFFER, h->errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (h->ca_file)
		SET(CURLOPT_CAINFO, h->ca_file);
	if (h->cert) {
		SET(CURLOPT_SSLCERTTYPE, "PEM");
		SET(CURLOPT_SSLCERT, h->cert);
	}
	if (h->key) {
		SET(CURLOPT_SSLKEYTYPE, "PEM");
		SET(CURLOPT_SSLKEY, h->key);
	}
	/* Unset, libcurl takes the proxy from https_proxy / HTTPS_PROXY /
	 * all_proxy / ALL_PROXY and honours no_proxy / NO_PROXY; "" means
	 * never a proxy, whatever the environment says. */
	if (h->proxy)
		SET(CURLOPT_PROXY, h->proxy);
	SET(CURLOPT_CONNECTTIMEOUT_MS, h->connect_ms);
	SET(CURLOPT_LOW_SPEED_LIMIT, STALL_BYTES_PER_S);
	SET(CURLOPT_LOW_SPEED_TIME, h->stall_s);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_USERAGENT, "libfednode/" FDN_VERSION_STRING);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, x);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_FILETIME, 1L);
	return cc;
}

static CURLcode set_method(xfer *x, struct curl_slist **headers)
{
	CURL *e = x->h->easy;
	CURLcode cc = CURLE_OK;
	char line[FDN_ETAG_MAX + 64];
	struct curl_slist *l = NULL;

	switch (x->m) {
	case M_GET:
		SET(CURLOPT_FOLLOWLOCATION, 1L);
		SET(CURLOPT_MAXREDIRS, 5L);
		SET(CURLOPT_WRITEFUNCTION, on_body);
		SET(CURLOPT_WRITEDATA, x);
		if (x->start > 0) {
			snprintf(line, sizeof(line), "Range: bytes=%" PRIu64 "-", x->start);
			l = curl_slist_append(l, line);
			snprintf(line, sizeof(line), "If-Range: %s", x->etag);
			if (l)
				l = curl_slist_append(l, line);
		} else if (x->if_none_match) {
			snprintf(line, sizeof(line), "If-None-Match: %s", x->if_none_match);
			l = curl_slist_append(l, line);
		}
		break;
	case M_HEAD:
		SET(CURLOPT_FOLLOWLOCATION, 1L);
		SET(CURLOPT_MAXREDIRS, 5L);
		SET(CURLOPT_NOBODY, 1L);
		break;
	case M_PUT:
		SET(CURLOPT_UPLOAD, 1L);
		SET(CURLOPT_READFUNCTION, on_upload);
		SET(CURLOPT_READDATA, x);
		SET(CURLOPT_SEEKFUNCTION, on_seek);
		SET(CURLOPT_SEEKDATA, x);
		if (x->src->size != UINT64_MAX && x->src->size <= (uint64_t)INT64_MAX)
			SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->src->size);
		SET(CURLOPT_WRITEFUNCTION, on_discard);
		break;
	case M_DELETE:
		SET(CURLOPT_CUSTOMREQUEST, "DELETE");
		SET(CURLOPT_WRITEFUNCTION, on_discard);
		break;
	}
	if ((x->m == M_GET && (x->start > 0 || x->if_none_match)) && !l)
		return CURLE_OUT_OF_MEMORY;
	if (l)
		SET(CURLOPT_HTTPHEADER, l);
	*headers = l;
	return cc;
}

#undef SET

static CURLcode perform(xfer *x, long *status)
{
	struct curl_slist *headers = NULL;
	CURLcode cc;

	curl_easy_reset(x->h->easy);
	x->h->errbuf[0] = '\0';
	x->rc = 0;
	x->transient = false;
	x->checked = false;
	x->accept = false;
	*status = 0;
	cc = set_common(x);
	if (cc == CURLE_OK)
		cc = set_method(x, &headers);
	if (cc == CURLE_OK)
		cc = curl_easy_perform(x->h->easy);
	curl_easy_getinfo(x->h->easy, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(headers);
	return cc;
}

/* --- judging an attempt ----------------------------------------------------- */

/* OpenSSL's words when the server ends the handshake over our certificate. */
static bool client_cert_refused(const char *msg)
{
	static const char *const alerts[] = {
		"alert certificate required", "alert bad certificate", "alert unknown ca",
		"alert certificate unknown", "alert certificate expired",
		"alert certificate revoked", "alert access denied",
		"alert handshake failure",
	};

	for (size_t i = 0; i < sizeof(alerts) / sizeof(alerts[0]); i++)
		if (strstr(msg, alerts[i]))
			return true;
	return false;
}

static const char *curl_text(const xfer *x, CURLcode cc)
{
	return x->h->errbuf[0] ? x->h->errbuf : curl_easy_strerror(cc);
}

static int curl_failed(xfer *x, CURLcode cc)
{
	const char *m = method_names[x->m], *text = curl_text(x, cc);

	switch (cc) {
	case CURLE_OUT_OF_MEMORY:
		return fdn__error_oom();
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_CRL_BADFILE:
		return fdn__error_set(FDN_ECERT, FDN_ERRCLASS_TRANSPORT,
			"%s %s: the server's TLS certificate is not trusted: %s", m, x->url, text);
	case CURLE_SSL_CERTPROBLEM:
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_TRANSPORT,
			"%s %s: the client certificate or key cannot be used: %s", m, x->url, text);
	case CURLE_SSL_CLIENTCERT:
		return fdn__error_set(FDN_EAUTH, FDN_ERRCLASS_TRANSPORT,
			"%s %s: the server refused the TLS handshake: it requires a client "
			"certificate%s: %s", m, x->url,
			x->h->cert ? " it accepts" : " and none is configured", text);
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		if (client_cert_refused(text))
			return fdn__error_set(FDN_EAUTH, FDN_ERRCLASS_TRANSPORT,
				"%s %s: the server refused the TLS handshake (%s): %s", m, x->url,
				x->h->cert ? "client certificate not accepted" :
				"no client certificate is configured", text);
		x->transient = true;
		break;
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_AGAIN:
	case CURLE_PROXY:
		x->transient = true;
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
		return fdn__error_set(FDN_EIO, FDN_ERRCLASS_TRANSPORT,
			"%s %s: refused to leave https:// (a redirect?): %s", m, x->url, text);
	default:
		break;
	}
	return fdn__error_set(FDN_EIO, FDN_ERRCLASS_TRANSPORT, "%s %s: %s", m, x->url, text);
}

static int http_failed(xfer *x, long status)
{
	const char *m = method_names[x->m];

	if (status == 404 || status == 410)
		return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_TRANSPORT,
			"no object '%s' at %s (HTTP %ld)", x->key, x->url, status);
	if (status == 401 || status == 403)
		return fdn__error_set(FDN_EAUTH, FDN_ERRCLASS_TRANSPORT,
			"%s %s: the server refused access (HTTP %ld)%s", m, x->url, status,
			x->h->cert ? "" : "; no client certificate is configured");
	if (status == 408 || status == 429 || (status >= 500 && status <= 599))
		x->transient = true;
	if (status == 400 && !x->h->cert)
		return fdn__error_set(FDN_EIO, FDN_ERRCLASS_TRANSPORT,
			"%s %s: HTTP 400 (a server that requires client certificates answers "
			"so when none is sent, and none is configured)", m, x->url);
	if (status == 413)
		return fdn__error_set(FDN_EIO, FDN_ERRCLASS_TRANSPORT,
			"%s %s: the object is too large for the server (HTTP 413)", m, x->url);
	return fdn__error_set(FDN_EIO, FDN_ERRCLASS_TRANSPORT, "%s %s: HTTP %ld", m, x->url,
		status);
}

/* 0 when the attempt did what was asked; else the error, with
 * x->transient telling whether another attempt may succeed. */
static int judge(xfer *x, CURLcode cc, long status)
{
	if (x->rc)
		return x->rc;  /* one of our callbacks stopped it: message and
				  x->transient set */
	x->transient = false;
	if (cc == CURLE_ABORTED_BY_CALLBACK && fdn_cancel_requested(x->cancel))
		return fdn__cancel_check(x->cancel);
	if (cc != CURLE_OK)
		return curl_failed(x, cc);
	switch (x->m) {
	case M_GET:
		if (status == 304 && x->if_none_match && x->start == 0)
			return 0;
		if (status == 200 || status == 206) {
			int rc = check_response(x);  /* an empty body never reached on_body */
			if (rc)
				return rc;
			if (x->total != UINT64_MAX && x->delivered != x->total) {
				x->transient = true;
				return fdn__error_set(FDN_EIO, FDN_ERRCLASS_TRANSPORT,
					"GET %s: the transfer ended after %" PRIu64 " of %" PRIu64 " bytes",
					x->url, x->delivered, x->total);
			}
			return 0;
		}
		if (status == 416 && x->start > 0) {
			/* Guarded by If-Range, so the same object: complete when the
			 * server says it is exactly as long as what we have. */
			struct curl_header *hd;
			uint64_t first, total;
			if (curl_easy_header(x->h->easy, "Content-Range", 0, CURLH_HEADER, -1, &hd)
				== CURLHE_OK && parse_content_range(hd->value, &first, &total) &&
			    total == x->delivered) {
				x->total = total;
				return 0;
			}
		}
		break;
	case M_HEAD:
		if (status == 200)
			return 0;
		break;
	case M_PUT:
		if (status == 200 || status == 201 || status == 204)
			return 0;
		break;
	case M_DELETE:
		if (status == 200 || status == 202 || status == 204)
			return 0;
		break;
	}
	return http_failed(x, status);
}

/* --- attempts ---------------------------------------------------------------- */

/* Re-sets the current error with @p suffix added. */
static int annotate(int rc, const char *fmt, ...) FDN__PRINTF(2, 3);
static int annotate(int rc, const char *fmt, ...)
{
	const fdn_error *e = fdn_error_last();
	char msg[FDN__ERROR_MESSAGE_MAX], extra[256];
	int klass = e->klass;
	va_list ap;

	snprintf(msg, sizeof(msg), "%s", e->message);
	va_start(ap, fmt);
	vsnprintf(extra, sizeof(extra), fmt, ap);
	va_end(ap);
	return fdn__error_set(rc, klass, "%s%s", msg, extra);
}

/* Waits before attempt @p n (1 = the first retry); cancellable. */
static int backoff(xfer *x, unsigned int n, long retry_after_s)
{
	uint64_t ms = x->h->backoff_ms;
	double until;

	for (unsigned int i = 1; i < n && ms < BACKOFF_CAP_MS; i++)
		ms *= 2;
	if (ms > BACKOFF_CAP_MS)
		ms = BACKOFF_CAP_MS;
	/* Half fixed, half random: clients that failed together spread out. */
	ms = ms / 2 + randombytes_uniform((uint32_t)(ms / 2 + 1));
	if (retry_after_s > 0 && (uint64_t)retry_after_s * 1000 > ms)
		ms = (uint64_t)retry_after_s * 1000;
	until = fdn__monotonic_seconds() + (double)ms / 1000.0;
	for (;;) {
		double left = until - fdn__monotonic_seconds();
		struct timespec ts = { 0, 20 * 1000000L };

		if (fdn_cancel_requested(x->cancel))
			return fdn__cancel_check(x->cancel);
		if (left <= 0)
			return 0;
		if (left < 0.02)
			ts.tv_nsec = (long)(left * 1e9);
		nanosleep(&ts, NULL);
	}
}

/* Prepares attempt n > 0: an upload is read again from the start, a
 * download goes on where it stopped (or starts again). */
static int prepare_again(xfer *x)
{
	int rc;

	if (x->m == M_PUT && x->sent > 0) {
		if ((rc = x->src->rewind(x->src->payload)) != 0)
			return rc;
		x->sent = 0;
	}
	if (x->m == M_GET && x->delivered > 0) {
		if (etag_strong(x->etag)) {
			x->start = x->delivered;
		} else if (x->sink->restart) {
			if ((rc = x->sink->restart(x->sink->payload)) != 0)
				return rc;
			x->delivered = 0;
			x->start = 0;
		} else {
			return fdn__error_set(FDN_EIO, FDN_ERRCLASS_TRANSPORT,
				"GET %s: the transfer broke after %" PRIu64 " bytes and cannot be "
				"resumed: the server gave no strong entity tag", x->url, x->delivered);
		}
	}
	return 0;
}

static int run(xfer *x)
{
	unsigned int failures = 0;
	char *url;
	int rc;

	if (!(url = fdn__malloc(strlen(x->h->base) + strlen(x->key) + 2)))
		return fdn__error_oom();
	sprintf(url, "%s/%s", x->h->base, x->key);
	x->url = url;
	x->total = UINT64_MAX;
	for (;;) {
		long status, retry_after = 0;
		curl_off_t ra = 0;
		CURLcode cc;

		cc = perform(x, &status);
		if ((rc = judge(x, cc, status)) == 0)
			break;
		if (!x->transient)
			break;
		if (x->m == M_GET && x->delivered > x->high_water) {
			x->high_water = x->delivered;
			failures = 0;  /* it moved on: a flaky link, not a dead one */
		}
		if (x->m == M_PUT && x->sent > 0 && !x->src->rewind) {
			rc = annotate(rc, " (not retried: %" PRIu64 " bytes of the stream were "
				"already sent, and a stream cannot be read again)", x->sent);
			break;
		}
		if (curl_easy_getinfo(x->h->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0) {
			if (ra > RETRY_AFTER_MAX_S) {
				rc = annotate(rc, " (not retried: the server asks to wait %ld s)",
					(long)ra);
				break;
			}
			retry_after = (long)ra;
		}
		if (++failures > x->h->retries) {
			rc = annotate(rc, " (after %u attempts)", failures);
			break;
		}
		fdn__log(FDN_LOG_INFO, "transport", "%s; retrying (%u of %u)",
			fdn_error_last()->message, failures, x->h->retries);
		if ((rc = backoff(x, failures, retry_after)) != 0 ||
		    (rc = prepare_again(x)) != 0)
			break;
	}
	x->url = NULL;
	fdn__free(url);
	return rc;
}

static void fill_from_response(xfer *x, fdn_object_info *info)
{
	curl_off_t t = -1;

	if (curl_easy_getinfo(x->h->easy, CURLINFO_FILETIME_T, &t) == CURLE_OK && t > 0)
		info->mtime = (int64_t)t;
}

/* --- operations -------------------------------------------------------------- */

static int https_head(void *self, const char *key, fdn_object_info *info, fdn_cancel *cancel)
{
	xfer x = { .h = self, .m = M_HEAD, .key = key, .cancel = cancel };
	curl_off_t len = -1;
	int rc;

	if ((rc = run(&x)) != 0)
		return rc;
	header_etag(&x);
	fdn_transport__set_etag(info, x.etag, strlen(x.etag));
	if (curl_easy_getinfo(x.h->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len) == CURLE_OK &&
	    len >= 0)
		info->size = (uint64_t)len;
	fill_from_response(&x, info);
	return 0;
}

static int https_get(void *self, const char *key, const fdn_transport__sink *sink,
	const char *if_none_match, fdn_object_info *info, fdn_cancel *cancel)
{
	xfer x = { .h = self, .m = M_GET, .key = key, .cancel = cancel, .sink = sink,
		   .if_none_match = if_none_match };
	long status = 0;
	int rc;

	if ((rc = run(&x)) != 0)
		return rc;
	curl_easy_getinfo(x.h->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status == 304) {
		info->not_modified = 1;
		header_etag(&x);
		if (!x.etag[0])
			snprintf(x.etag, sizeof(x.etag), "%s", if_none_match);
	}
	fdn_transport__set_etag(info, x.etag, strlen(x.etag));
	info->size = x.total != UINT64_MAX ? x.total : x.delivered;
	if (status == 304)
		info->size = 0;
	fill_from_response(&x, info);
	return 0;
}

static int https_put(void *self, const char *key, const fdn_transport__source *src,
	fdn_object_info *info, fdn_cancel *cancel)
{
	xfer x = { .h = self, .m = M_PUT, .key = key, .cancel = cancel, .src = src };
	fdn_object_info after = FDN_OBJECT_INFO_INIT;
	int rc;

	if ((rc = run(&x)) != 0)
		return rc;
	if (!info)
		return 0;
	info->size = x.sent;
	header_etag(&x);
	fdn_transport__set_etag(info, x.etag, strlen(x.etag));
	fill_from_response(&x, info);
	/* Servers such as nginx give no entity tag for a PUT: ask for it, as a
	 * courtesy; the object is stored whatever this says. */
	if (!info->etag[0] && https_head(self, key, &after, cancel) == 0 &&
	    after.size == info->size) {
		memcpy(info->etag, after.etag, sizeof(info->etag));
		info->mtime = after.mtime;
	}
	return 0;
}

static int https_remove(void *self, const char *key, fdn_cancel *cancel)
{
	xfer x = { .h = self, .m = M_DELETE, .key = key, .cancel = cancel };

	return run(&x);
}

static void https_free(void *self)
{
	https *h = self;

	if (!h)
		return;
	if (h->easy)
		curl_easy_cleanup(h->easy);
	fdn__free(h->base);
	fdn__free(h->ca_file);
	fdn__free(h->cert);
	fdn__free(h->key);
	if (h->proxy)
		sodium_memzero(h->proxy, strlen(h->proxy));  /* may hold a password */
	fdn__free(h->proxy);
	fdn__free(h);
}

static const fdn_transport__ops https_ops = {
	"https", https_put, https_get, https_head, https_remove, https_free,
};

/* --- construction --------------------------------------------------------------- */

int fdn_https_options_init(fdn_https_options *opts, unsigned int version)
{
	static const fdn_https_options defaults = FDN_HTTPS_OPTIONS_INIT;

	FDN__CHECK_ARG(opts, "opts");
	if (version == 0 || version > FDN_HTTPS_OPTIONS_VERSION)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_https_options: unsupported version %u", version);
	*opts = defaults;
	opts->version = version;
	return 0;
}

static int readable(const char *path, const char *what)
{
	FILE *f = fopen(path, "rb");

	if (!f)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_TRANSPORT,
			"https transport: cannot read the %s '%s': %s", what, path, strerror(errno));
	fclose(f);
	return 0;
}

/* Checks @p url and stores it without a trailing '/' in h->base. */
static int set_base(https *h, const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *user = NULL, *query = NULL, *frag = NULL;
	char *full = NULL;
	int rc = 0;
	size_t len;

	if (!u)
		return fdn__error_oom();
	if (strlen(url) > 4096 || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
		rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_TRANSPORT,
			"https transport: '%.200s' is not a URL", url);
		goto out;
	}
	curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	curl_url_get(u, CURLUPART_HOST, &host, 0);
	curl_url_get(u, CURLUPART_USER, &user, 0);
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
	if (!scheme || strcmp(scheme, "https") != 0)
		rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_TRANSPORT,
			scheme && strcmp(scheme, "http") == 0 ?
			"https transport: plain http:// is refused (no TLS: the store and the "
			"client certificate could not be authenticated); use https://" :
			"https transport: '%.200s' is not an https:// URL", url);
	else if (!host || !*host)
		rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_TRANSPORT,
			"https transport: no host in the URL");
	else if (user)
		/* Messages name the URL: a password in it would be shown. */
		rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_TRANSPORT,
			"https transport: credentials in the URL are refused; use a client certificate");
	else if (query || frag)
		rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_TRANSPORT,
			"https transport: the URL must have no query or fragment");
	else if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK)
		rc = fdn__error_oom();
	if (rc == 0) {
		len = strlen(full);
		while (len > 0 && full[len - 1] == '/')
			len--;
		if (!(h->base = fdn__strndup(full, len)))
			rc = fdn__error_oom();
	}
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_free(query);
	curl_free(frag);
	curl_free(full);
	curl_url_cleanup(u);
	return rc;
}

static int dup_opt(char **out, const char *value)
{
	if (value && !(*out = fdn__strdup(value)))
		return fdn__error_oom();
	return 0;
}

int fdn_transport_https_new(fdn_transport **out, const char *base_url,
	const fdn_https_options *opts)
{
	fdn_https_options o = FDN_HTTPS_OPTIONS_INIT;
	https *h;
	int rc;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	FDN__CHECK_ARG(base_url, "base_url");
	FDN__CHECK_VERSION(opts, FDN_HTTPS_OPTIONS_VERSION, "fdn_https_options");
	if ((rc = fdn__check_init()) != 0)
		return rc;
	if (opts)
		o = *opts;  /* version 1 is all there is */
	if (o.client_key && !o.client_cert)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_TRANSPORT,
			"https transport: client_key given without client_cert");
	if ((o.ca_file && (rc = readable(o.ca_file, "CA file")) != 0) ||
	    (o.client_cert && (rc = readable(o.client_cert, "client certificate")) != 0) ||
	    (o.client_key && (rc = readable(o.client_key, "client key")) != 0))
		return rc;
	if (!(h = fdn__calloc(1, sizeof(*h))))
		return fdn__error_oom();
	h->connect_ms = (long)(o.connect_timeout_ms ? o.connect_timeout_ms : DEFAULT_CONNECT_MS);
	h->stall_s = (long)(((uint64_t)(o.stall_timeout_ms ? o.stall_timeout_ms : DEFAULT_STALL_MS) + 999) / 1000);
	h->retries = o.retries ? o.retries : DEFAULT_RETRIES;
	h->backoff_ms = o.backoff_ms ? o.backoff_ms : DEFAULT_BACKOFF_MS;
	if ((rc = set_base(h, base_url)) != 0 ||
	    (rc = dup_opt(&h->ca_file, o.ca_file)) != 0 ||
	    (rc = dup_opt(&h->cert, o.client_cert)) != 0 ||
	    (rc = dup_opt(&h->key, o.client_key)) != 0 ||
	    (rc = dup_opt(&h->proxy, o.proxy)) != 0) {
		https_free(h);
		return rc;
	}
	if (!(h->easy = curl_easy_init())) {
		https_free(h);
		return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_TRANSPORT,
			"https transport: libcurl could not make a handle");
	}
	return fdn_transport__wrap(out, &https_ops, h);
}
