/*
 * The allocator hook's installation, used by init.c only.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_ALLOC_PRIVATE_H
#define FDN_ALLOC_PRIVATE_H

#include <stdbool.h>

struct fdn_allocator;

/* Validates and installs @p a; NULL reverts to the C library. */
int fdn_alloc__install(const struct fdn_allocator *a);
/* true when @p a is what is installed (NULL: nothing is). */
bool fdn_alloc__same(const struct fdn_allocator *a);

#endif
