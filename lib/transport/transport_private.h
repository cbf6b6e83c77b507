/*
 * libfednode: what the transport module's files share.  Not installed.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_TRANSPORT_PRIVATE_H
#define FDN_TRANSPORT_PRIVATE_H

#include <stdbool.h>

#include "fednode/transport.h"
#include "core/core_private.h"

/* Bytes moved per read/write call by the built-in transports. */
#define FDN_TRANSPORT__CHUNK (256 * 1024)

/* Where a put's bytes come from.  The public wrappers know whether their
 * input can be read again from the start (a buffer or a regular file can,
 * a caller's stream cannot): a transport that must retry after some bytes
 * went out may only do so when @c rewind is set. */
typedef struct fdn_transport__source {
	fdn_read_cb read;
	void *payload;
	uint64_t size;               /* UINT64_MAX when unknown */
	int (*rewind)(void *payload); /* NULL: cannot start again */
} fdn_transport__source;

/* Where a get's bytes go.  @c restart forgets everything written so far
 * (a buffer or a temporary file can; a caller's stream cannot: what it
 * was given cannot be taken back). */
typedef struct fdn_transport__sink {
	fdn_write_cb write;
	void *payload;
	int (*restart)(void *payload); /* NULL: cannot start again */
	uint64_t limit;                /* largest object accepted (FDN_EBUFS) */
} fdn_transport__sink;

/* The operations of a transport.  Keys are validated, @p info points to a
 * zeroed version-1 structure (never NULL, except for put when the caller
 * does not want it), and the cancel token was checked before the call.
 * @c remove may be NULL (FDN_EUNSUPPORTED). */
typedef struct fdn_transport__ops {
	const char *name;
	int (*put)(void *self, const char *key, const fdn_transport__source *src,
		fdn_object_info *info, fdn_cancel *cancel);
	int (*get)(void *self, const char *key, const fdn_transport__sink *sink,
		const char *if_none_match, fdn_object_info *info, fdn_cancel *cancel);
	int (*head)(void *self, const char *key, fdn_object_info *info, fdn_cancel *cancel);
	int (*remove)(void *self, const char *key, fdn_cancel *cancel);
	void (*free)(void *self);
} fdn_transport__ops;

/* Wraps a built-in implementation; on failure @p self is released with
 * ops->free. */
int fdn_transport__wrap(fdn_transport **out, const fdn_transport__ops *ops, void *self);

/* Copies @p etag into @p out when it fits (else ""). */
void fdn_transport__set_etag(fdn_object_info *info, const char *etag, size_t len);

#endif
