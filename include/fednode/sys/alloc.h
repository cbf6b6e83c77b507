/*
 * libfednode: the allocator hook (host-implemented interface).
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FEDNODE_SYS_ALLOC_H
#define FEDNODE_SYS_ALLOC_H

#include "../common.h"

/** @file fednode/sys/alloc.h
 *  @brief Replace the memory functions libfednode uses for its own data.
 *
 *  Interfaces under fednode/sys/ may gain members in minor releases
 *  (appended only, announced by a new version number).
 */

FDN_BEGIN_DECL

/**
 * Memory functions, passed in ::fdn_init_options before any other call.
 * They cover libfednode's own allocations only: OpenSSL, SQLite, GDCM,
 * libcurl, jansson and libsodium keep their own allocators, secret keys
 * always live in libsodium's guarded memory, and the per-thread buffers
 * that files are read into for GDCM (kept between reads, so they outlive
 * fdn_shutdown()) use the C library.
 *
 * The functions may be called from any thread at the same time.
 * @c malloc_fn and @c realloc_fn return NULL on failure; @c free_fn
 * accepts NULL.  Memory must be aligned for any C object.
 */
typedef struct fdn_allocator {
	unsigned int version; /**< ::FDN_ALLOCATOR_VERSION */
	void *(*malloc_fn)(size_t size, void *ud);
	void *(*realloc_fn)(void *ptr, size_t size, void *ud);
	void (*free_fn)(void *ptr, void *ud);
	void *ud;             /**< Passed to every function. */
} fdn_allocator;

#define FDN_ALLOCATOR_VERSION 1

FDN_END_DECL

#endif
