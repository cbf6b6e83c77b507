/*
 * Site rules for de-identification: a small JSON text that overrides the
 * action of single attributes.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_DEID_RULES_PRIVATE_H
#define FDN_DEID_RULES_PRIVATE_H

#include <stddef.h>

#include "deid_private.h"

/*
 * Parses @p json:
 *
 *   {"rules": [{"tag": "(0010,1010)", "action": "keep"},
 *              {"tag": "PatientWeight", "action": "remove"}]}
 *
 * "tag" is "(GGGG,EEEE)", "GGGGEEEE" or a PS3.6 keyword; "action" one of
 * keep, remove, empty, dummy, clean, pseudonymize.  Unknown members,
 * private tags, repeated tags and the File Meta group are refused with a
 * message that names the rule index and the field.  *out is sorted by
 * tag; free it with fdn__free().
 */
int fdn_deid__rules_parse(fdn_deid_site_rule **out, size_t *count, const char *json);

#endif
