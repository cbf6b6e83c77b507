/*
 * fdn_buf: growable library-owned output buffers.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <string.h>

#include "core_private.h"

void fdn_buf_dispose(fdn_buf *buf)
{
	if (!buf)
		return;
	if (buf->reserved)
		fdn__free(buf->ptr);
	buf->ptr = NULL;
	buf->size = 0;
	buf->reserved = 0;
}

int fdn_buf_set(fdn_buf *buf, const void *data, size_t size)
{
	fdn_buf copy = FDN_BUF_INIT;
	int rc;

	FDN__CHECK_ARG(buf, "buf");
	FDN__CHECK_ARG(data || size == 0, "data");
	/* Into a fresh buffer first: @p data may point into @p buf. */
	if ((rc = fdn_buf__put(&copy, size ? data : "", size)) != 0)
		return rc;
	fdn_buf_dispose(buf);
	*buf = copy;
	return 0;
}

int fdn_buf__grow(fdn_buf *buf, size_t extra)
{
	size_t need, cap;
	char *p;

	if (fdn__add_overflow(buf->size, extra, &need) ||
	    fdn__add_overflow(need, 1, &need))
		return fdn__error_oom();
	if (buf->reserved >= need)
		return 0;
	cap = buf->reserved ? buf->reserved : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	/* A buffer pointing at memory it does not own is copied, not resized. */
	p = fdn__realloc(buf->reserved ? buf->ptr : NULL, cap);
	if (!p)
		return fdn__error_oom();
	if (!buf->reserved && buf->size)
		memcpy(p, buf->ptr, buf->size);
	buf->ptr = p;
	buf->reserved = cap;
	buf->ptr[buf->size] = '\0';
	return 0;
}

int fdn_buf__put(fdn_buf *buf, const void *data, size_t len)
{
	int rc = fdn_buf__grow(buf, len);

	if (rc)
		return rc;
	if (len)
		memcpy(buf->ptr + buf->size, data, len);
	buf->size += len;
	buf->ptr[buf->size] = '\0';
	return 0;
}

int fdn_buf__puts(fdn_buf *buf, const char *s)
{
	return fdn_buf__put(buf, s, strlen(s));
}

int fdn_buf__printf(fdn_buf *buf, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_CORE, "bad format string");
	if ((rc = fdn_buf__grow(buf, (size_t)n)) != 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(buf->ptr + buf->size, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buf->size += (size_t)n;
	return 0;
}

void fdn_buf__clear(fdn_buf *buf)
{
	buf->size = 0;
	if (buf->reserved)
		buf->ptr[0] = '\0';
}
