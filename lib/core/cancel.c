/*
 * Cancellation tokens: one lock-free atomic flag.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <stdatomic.h>

#include "core_private.h"

_Static_assert(ATOMIC_INT_LOCK_FREE == 2,
	"fdn_cancel_request() must be async-signal-safe, so lock-free");

struct fdn_cancel {
	atomic_int flag;
};

int fdn_cancel_new(fdn_cancel **out)
{
	fdn_cancel *t;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	if (!(t = fdn__malloc(sizeof(*t))))
		return fdn__error_oom();
	atomic_init(&t->flag, 0);
	*out = t;
	return 0;
}

void fdn_cancel_free(fdn_cancel *token)
{
	fdn__free(token);
}

void fdn_cancel_request(fdn_cancel *token)
{
	if (token)
		atomic_store(&token->flag, 1);
}

int fdn_cancel_requested(const fdn_cancel *token)
{
	return token ? atomic_load(&((fdn_cancel *)token)->flag) : 0;
}

void fdn_cancel_reset(fdn_cancel *token)
{
	if (token)
		atomic_store(&token->flag, 0);
}

int fdn__cancel_check(const fdn_cancel *token)
{
	if (!fdn_cancel_requested(token))
		return 0;
	return fdn__error_set(FDN_ECANCELLED, FDN_ERRCLASS_CORE,
		"operation cancelled");
}
