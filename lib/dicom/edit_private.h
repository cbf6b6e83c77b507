/*
 * One-pass editing of a whole dataset, nested items included: the
 * mechanism the de-identifier drives (lib/deid/ decides, this applies).
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_DICOM_EDIT_PRIVATE_H
#define FDN_DICOM_EDIT_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "fednode/dicom.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fdn_edit_action {
	FDN_EDIT_KEEP = 0,   /* leave it; a sequence is not entered */
	FDN_EDIT_DESCEND,    /* a sequence: keep it and visit every item */
	FDN_EDIT_REMOVE,     /* remove the element (a sequence with its items) */
	FDN_EDIT_EMPTY,      /* zero-length value; a sequence without items */
	FDN_EDIT_REPLACE     /* the bytes left in the replacement buffer,
	                      * already encoded for the VR (padded by the walker) */
} fdn_edit_action;

/* Deepest path handed to a callback (the guard limits nesting to 32). */
#define FDN_EDIT_MAX_DEPTH 64

typedef struct fdn_edit_element {
	uint32_t tag;
	char vr[4];              /* effective VR ("UN" when unknowable) */
	const char *value;       /* raw bytes, little-endian numbers; NULL if none */
	size_t length;
	const uint32_t *path;    /* tags from the top level down to this one */
	size_t depth;            /* 0 at top level */
	const char *creator;     /* private data element: its block's Private
	                          * Creator value (trailing spaces removed), or
	                          * NULL when the block has none; else NULL */
	const char *scs;         /* Specific Character Set in force ("" default) */
	size_t items;            /* sequence: number of items */
} fdn_edit_element;

/*
 * Decides what happens to one element: set *action (default KEEP) and,
 * for REPLACE, fill @p replacement (cleared before each call).  A
 * non-zero return stops the edit and is returned by fdn_dicom__edit();
 * the dataset may then be partly edited.
 */
typedef int (*fdn_edit_cb)(const fdn_edit_element *e, fdn_edit_action *action,
	fdn_buf *replacement, void *payload);

/* Visits every element in tag order, items after their sequence when the
 * callback descends, and applies each decision. */
int fdn_dicom__edit(fdn_dataset *ds, fdn_edit_cb cb, void *payload);

#ifdef __cplusplus
}
#endif

#endif
