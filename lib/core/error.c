/*
 * The thread-local error state behind fdn_error_last().
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core_private.h"

/* A fixed per-thread buffer: reporting an error never allocates, so an
 * out-of-memory error can always be reported, and nothing leaks when a
 * host thread exits. */
static _Thread_local struct {
	fdn_error err;
	char message[FDN__ERROR_MESSAGE_MAX];
} tls_error;

static const fdn_error no_error = { 0, FDN_ERRCLASS_NONE, "no error" };

const fdn_error *fdn_error_last(void)
{
	if (tls_error.err.code == 0)
		return &no_error;
	return &tls_error.err;
}

void fdn_error_clear(void)
{
	tls_error.err.code = 0;
	tls_error.err.klass = FDN_ERRCLASS_NONE;
	tls_error.message[0] = '\0';
}

const char *fdn_strerror(fdn_error_code code)
{
	switch (code) {
	case FDN_OK: return "no error";
	case FDN_ERROR: return "error";
	case FDN_ENOTFOUND: return "not found";
	case FDN_EINVALID: return "invalid argument";
	case FDN_EAUTH: return "authentication failed";
	case FDN_ECERT: return "certificate verification failed";
	case FDN_EIO: return "input/output error";
	case FDN_ECANCELLED: return "cancelled";
	case FDN_EUSER: return "stopped by a user callback";
	case FDN_EBUFS: return "buffer too small";
	case FDN_EFORMAT: return "malformed data";
	case FDN_EPHI: return "refused: may contain protected health information";
	case FDN_ECONFLICT: return "conflicts with existing data";
	case FDN_EUNSUPPORTED: return "not supported";
	}
	return "unknown error";
}

int fdn__error_setv(int code, int klass, const char *fmt, va_list ap)
{
	int n = vsnprintf(tls_error.message, sizeof(tls_error.message), fmt, ap);

	if (n < 0)
		snprintf(tls_error.message, sizeof(tls_error.message), "%s",
			fdn_strerror((fdn_error_code)code));
	else if ((size_t)n >= sizeof(tls_error.message))
		memcpy(tls_error.message + sizeof(tls_error.message) - 4, "...", 4);
	tls_error.err.code = code;
	tls_error.err.klass = klass;
	tls_error.err.message = tls_error.message;
	return code;
}

int fdn__error_set(int code, int klass, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fdn__error_setv(code, klass, fmt, ap);
	va_end(ap);
	return code;
}

int fdn__error_oom(void)
{
	return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_NOMEMORY, "out of memory");
}

int fdn__error_os(int errnum, const char *fmt, ...)
{
	char detail[256];
	char what[FDN__ERROR_MESSAGE_MAX - 300];
	va_list ap;
	int code = FDN_EIO;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	/* GNU strerror_r returns the message, which may not be in detail. */
	const char *msg = strerror_r(errnum, detail, sizeof(detail));
	if (errnum == ENOENT)
		code = FDN_ENOTFOUND;
	else if (errnum == ENOMEM)
		return fdn__error_oom();
	return fdn__error_set(code, FDN_ERRCLASS_OS, "%s: %s", what, msg);
}

int fdn__error_callback(int rc, const char *what)
{
	/* Keep a message the callback may have set itself through the library. */
	if (tls_error.err.code == rc && rc != FDN_EUSER)
		return rc;
	return fdn__error_set(rc, FDN_ERRCLASS_CALLBACK,
		"%s callback returned %d", what, rc);
}
