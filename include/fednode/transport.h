/*
 * libfednode: transports, the blob stores envelopes travel through.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FEDNODE_TRANSPORT_H
#define FEDNODE_TRANSPORT_H

#include "common.h"

/** @file fednode/transport.h
 *  @brief A blob store with put/get/head/delete on keys: a directory, an
 *         HTTPS (WebDAV-style) server, or one the host implements.
 *
 *  A key is a relative path of 1 to 16 segments separated by '/', each 1
 *  to 128 characters of [A-Za-z0-9._-] and neither "." nor "..", at most
 *  1024 bytes in all, e.g. "fed-1/rounds/3/update-site-a.fdne".  The store
 *  is untrusted: what travels through it is sealed (exchange.h).
 *
 *  Objects are put whole: a reader sees the old object or the new one,
 *  never a mix.  Gets and puts stream, so memory does not grow with the
 *  object's size.
 *
 *  Thread safety: an ::fdn_transport may be used by one thread at a time;
 *  distinct transports need no locking.  fdn_cancel_request() on the
 *  token given to fdn_transport_set_cancel() may come from any thread.
 */

FDN_BEGIN_DECL

/** Longest key, in bytes. */
#define FDN_TRANSPORT_KEY_MAX 1024
/** Longest entity tag kept, in bytes. */
#define FDN_ETAG_MAX 127

/** What is known about a stored object. */
typedef struct fdn_object_info {
	unsigned int version;   /**< Set by the caller to ::FDN_OBJECT_INFO_VERSION. */
	uint64_t size;          /**< Bytes. */
	int64_t mtime;          /**< Last change, seconds since 1970 UTC; 0 if unknown. */
	char etag[FDN_ETAG_MAX + 1]; /**< Opaque; "" if the store gives none. */
	/** Set by the get functions: 1 when the object still had the entity
	 *  tag given as if_none_match, and nothing was transferred. */
	int not_modified;
} fdn_object_info;

#define FDN_OBJECT_INFO_VERSION 1
#define FDN_OBJECT_INFO_INIT { FDN_OBJECT_INFO_VERSION, 0, 0, { 0 }, 0 }

/**
 * A transport the host implements: a versioned vtable (STYLE §6).  The
 * library calls a method only when @c version covers it and it is set.
 * Every method runs on the thread that called the fdn_transport_*()
 * function, returns 0 or an ::fdn_error_code (FDN_ENOTFOUND for a missing
 * key), and should return FDN_ECANCELLED soon after @p cancel is
 * signalled.
 */
typedef struct fdn_transport_iface {
	unsigned int version;   /**< ::FDN_TRANSPORT_IFACE_VERSION. */
	/** Stores the bytes @p read yields (until it reports 0 bytes) under
	 *  @p key, replacing any object, atomically.  @p size is the total
	 *  when known, else UINT64_MAX.  Fills @p info (may be NULL). */
	int (*put)(void *payload, const char *key, fdn_read_cb read, void *read_payload,
		uint64_t size, fdn_object_info *info, fdn_cancel *cancel);
	/** Passes the object's bytes to @p write.  When @p if_none_match is
	 *  non-NULL and equals the object's entity tag, writes nothing and
	 *  sets info->not_modified.  Fills @p info (may be NULL). */
	int (*get)(void *payload, const char *key, fdn_write_cb write, void *write_payload,
		const char *if_none_match, fdn_object_info *info, fdn_cancel *cancel);
	/** Fills @p info about @p key; FDN_ENOTFOUND when there is none. */
	int (*head)(void *payload, const char *key, fdn_object_info *info, fdn_cancel *cancel);
	/** Removes @p key; FDN_ENOTFOUND when there is none. */
	int (*remove)(void *payload, const char *key, fdn_cancel *cancel);
	/** Releases @p payload when the transport is freed; may be NULL. */
	void (*free)(void *payload);
} fdn_transport_iface;

#define FDN_TRANSPORT_IFACE_VERSION 1

/** A transport: a built-in one or a host's ::fdn_transport_iface. */
typedef struct fdn_transport fdn_transport;

/**
 * Wraps a host implementation.  @p iface is copied; @p payload is passed
 * to every method and released with iface->free when the transport is
 * freed (also when this call fails).
 * @return 0; FDN_EINVALID (NULL iface, version 0 or newer than this
 *         library, put/get/head missing); FDN_ERROR.
 */
FDN_EXTERN(int) fdn_transport_new(fdn_transport **out, const fdn_transport_iface *iface,
	void *payload);

/**
 * The directory transport: key "a/b" is file "<root>/a/b".  Puts write a
 * temporary file in the target directory, fsync it, rename it over the
 * key and fsync the directory, so they are atomic on local disks and on
 * network shares that honour rename.  Missing directories are created.
 * The entity tag is derived from size, modification time and inode.
 * @param root an existing directory.
 * @return 0; FDN_ENOTFOUND (no such directory); FDN_EINVALID; FDN_ERROR.
 */
FDN_EXTERN(int) fdn_transport_dir_new(fdn_transport **out, const char *root);

/** Options of the HTTPS transport. */
typedef struct fdn_https_options {
	unsigned int version;    /**< ::FDN_HTTPS_OPTIONS_VERSION. */
	const char *ca_file;     /**< PEM bundle of CAs to trust; NULL = the system's. */
	const char *client_cert; /**< PEM client certificate (mTLS); NULL = none. */
	const char *client_key;  /**< PEM private key of @c client_cert. */
	/** Proxy URL; NULL = from the environment (https_proxy, HTTPS_PROXY,
	 *  all_proxy, no_proxy), "" = never a proxy. */
	const char *proxy;
	unsigned int connect_timeout_ms; /**< 0 = 10 000. */
	/** A transfer slower than 1 KiB/s for this long is aborted and
	 *  retried; 0 = 30 000. */
	unsigned int stall_timeout_ms;
	/** Attempts after the first on a transient error (connection
	 *  failure, timeout, HTTP 408/429/5xx); 0 = 4; exponential backoff
	 *  with jitter starting at @c backoff_ms (0 = 250). */
	unsigned int retries;
	unsigned int backoff_ms;
} fdn_https_options;

#define FDN_HTTPS_OPTIONS_VERSION 1
#define FDN_HTTPS_OPTIONS_INIT { FDN_HTTPS_OPTIONS_VERSION, NULL, NULL, NULL, NULL, 0, 0, 0, 0 }

/** Initialises @p opts to the defaults of @p version.  @return 0; FDN_EINVALID. */
FDN_EXTERN(int) fdn_https_options_init(fdn_https_options *opts, unsigned int version);

/**
 * The HTTPS transport (libcurl) for a WebDAV-style server: key "a/b" is
 * "<base_url>/a/b"; put = PUT (streamed; the server creates collections,
 * e.g. nginx `create_full_put_path`), get = GET (resumed with a Range
 * request when a transfer breaks, guarded by If-Range), head = HEAD,
 * remove = DELETE.  Certificate and host-name verification are always on;
 * TLS 1.2 is the minimum.  Plain http:// is refused.
 * @param base_url "https://host[:port][/path]".
 * @param opts NULL for defaults.
 * @return 0; FDN_EINVALID (bad URL, bad option, unreadable certificate or
 *         key file); FDN_ERROR.
 */
FDN_EXTERN(int) fdn_transport_https_new(fdn_transport **out, const char *base_url,
	const fdn_https_options *opts);

/**
 * A built-in transport from a URL: "file:///abs/dir" (directory) or
 * "https://…" (HTTPS with @p opts, which may be NULL).
 * @return as the constructors; FDN_EUNSUPPORTED for another scheme.
 */
FDN_EXTERN(int) fdn_transport_open_url(fdn_transport **out, const char *url,
	const fdn_https_options *opts);

/** Frees a transport (and its host payload).  NULL is a no-op. */
FDN_EXTERN(void) fdn_transport_free(fdn_transport *t);

/** Uses @p cancel (may be NULL; borrowed, must outlive its use) for
 *  every later call on @p t.  @return 0; FDN_EINVALID. */
FDN_EXTERN(int) fdn_transport_set_cancel(fdn_transport *t, fdn_cancel *cancel);

/**
 * Puts @p len bytes from memory under @p key.
 * @param info filled (version set by the caller); may be NULL.
 * @return 0; FDN_EINVALID (bad key); FDN_EAUTH (the server refused the
 *         credentials: 401/403); FDN_ECERT (server certificate not
 *         trusted); FDN_EIO (network or disk failure after the retries);
 *         FDN_ECANCELLED; FDN_ERROR.
 */
FDN_EXTERN(int) fdn_transport_put_buffer(fdn_transport *t, const char *key,
	const void *data, size_t len, fdn_object_info *info);

/** As fdn_transport_put_buffer(), streaming the file @p path. */
FDN_EXTERN(int) fdn_transport_put_file(fdn_transport *t, const char *key,
	const char *path, fdn_object_info *info);

/** As fdn_transport_put_buffer(), streaming from @p read. */
FDN_EXTERN(int) fdn_transport_put_stream(fdn_transport *t, const char *key,
	fdn_read_cb read, void *read_payload, uint64_t size, fdn_object_info *info);

/**
 * Gets @p key into @p out (replaced; left empty on failure).
 * @param if_none_match NULL, or an entity tag from an earlier call: when
 *        the object still has it, nothing is transferred, @p out is left
 *        empty and info->not_modified is 1.
 * @param max_size largest object accepted; 0 = 1 GiB.  Larger: FDN_EBUFS.
 * @return 0; FDN_ENOTFOUND; FDN_EBUFS; as fdn_transport_put_buffer().
 */
FDN_EXTERN(int) fdn_transport_get_buffer(fdn_transport *t, const char *key,
	fdn_buf *out, size_t max_size, const char *if_none_match, fdn_object_info *info);

/**
 * Gets @p key into the file @p path, written to a temporary file beside
 * it and renamed when complete (nothing is left behind on failure).
 */
FDN_EXTERN(int) fdn_transport_get_file(fdn_transport *t, const char *key,
	const char *path, const char *if_none_match, fdn_object_info *info);

/** Gets @p key, streaming it to @p write. */
FDN_EXTERN(int) fdn_transport_get_stream(fdn_transport *t, const char *key,
	fdn_write_cb write, void *write_payload, const char *if_none_match,
	fdn_object_info *info);

/** Describes @p key.  @return 0; FDN_ENOTFOUND; as fdn_transport_put_buffer(). */
FDN_EXTERN(int) fdn_transport_head(fdn_transport *t, const char *key,
	fdn_object_info *info);

/** Removes @p key.  @return 0; FDN_ENOTFOUND; as fdn_transport_put_buffer(). */
FDN_EXTERN(int) fdn_transport_delete(fdn_transport *t, const char *key);

/** 1 when @p key is a valid key (see above), else 0. */
FDN_EXTERN(int) fdn_transport_key_valid(const char *key);

FDN_END_DECL

#endif
