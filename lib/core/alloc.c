/*
 * Memory functions routed through the host's optional allocator hook.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>
#include <string.h>

#include "core_private.h"
#include "alloc_private.h"
#include "fednode/sys/alloc.h"

/* Set only by the first fdn_init_opts() and cleared by the last
 * fdn_shutdown(), both under the init lock; read without a lock because
 * hosts must not race allocations against those two calls. */
static fdn_allocator host_allocator;
static bool host_allocator_set;

int fdn_alloc__install(const fdn_allocator *a)
{
	if (!a) {
		host_allocator_set = false;
		return 0;
	}
	if (a->version == 0 || a->version > FDN_ALLOCATOR_VERSION)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_allocator: unsupported version %u", a->version);
	if (!a->malloc_fn || !a->realloc_fn || !a->free_fn)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_allocator: malloc_fn, realloc_fn and free_fn are all required");
	host_allocator = *a;
	host_allocator_set = true;
	return 0;
}

bool fdn_alloc__same(const fdn_allocator *a)
{
	if (!a)
		return !host_allocator_set;
	return host_allocator_set && a->malloc_fn == host_allocator.malloc_fn &&
	       a->realloc_fn == host_allocator.realloc_fn &&
	       a->free_fn == host_allocator.free_fn && a->ud == host_allocator.ud;
}

void *fdn__malloc(size_t size)
{
	if (size == 0)
		size = 1;
	if (host_allocator_set)
		return host_allocator.malloc_fn(size, host_allocator.ud);
	return malloc(size);
}

void *fdn__realloc(void *ptr, size_t size)
{
	if (size == 0)
		size = 1;
	if (host_allocator_set)
		return host_allocator.realloc_fn(ptr, size, host_allocator.ud);
	return realloc(ptr, size);
}

void fdn__free(void *ptr)
{
	if (!ptr)
		return;
	if (host_allocator_set)
		host_allocator.free_fn(ptr, host_allocator.ud);
	else
		free(ptr);
}

bool fdn__mul_overflow(size_t a, size_t b, size_t *out)
{
	return __builtin_mul_overflow(a, b, out);
}

bool fdn__add_overflow(size_t a, size_t b, size_t *out)
{
	return __builtin_add_overflow(a, b, out);
}

void *fdn__calloc(size_t count, size_t size)
{
	size_t total;
	void *p;

	if (fdn__mul_overflow(count, size, &total))
		return NULL;
	p = fdn__malloc(total);
	if (p)
		memset(p, 0, total);
	return p;
}

void *fdn__reallocarray(void *ptr, size_t count, size_t size)
{
	size_t total;

	if (fdn__mul_overflow(count, size, &total))
		return NULL;
	return fdn__realloc(ptr, total);
}

char *fdn__strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *copy = fdn__malloc(len + 1);

	if (!copy)
		return NULL;
	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

char *fdn__strdup(const char *s)
{
	return fdn__strndup(s, strlen(s));
}
