/*
 * DICOM character sets (PS3.3 C.12.1.1.2, PS3.5 6.1) to and from UTF-8,
 * through the C library's iconv.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_DICOM_CHARSET_H
#define FDN_DICOM_CHARSET_H

#include <stdbool.h>
#include <stddef.h>

#include "fednode/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Appends to @p out the UTF-8 form of @p len bytes of text of value
 * representation @p vr ("PN", "LO", ...), encoded as the Specific
 * Character Set value @p scs says (the raw (0008,0005) value, possibly
 * several values separated by '\'; NULL or "" is the default repertoire,
 * ISO-IR 6).  ISO 2022 code extensions (escape sequences) are honoured,
 * with the VR's delimiters resetting to the initial designation as
 * PS3.5 6.1.2.5.3 requires.
 *
 * Returns 0; FDN_EFORMAT for bytes that are not valid in the character
 * set (the error names the byte offset); FDN_EUNSUPPORTED for a defined
 * term this build cannot convert.
 */
int fdn_charset__to_utf8(fdn_buf *out, const char *scs, const char *text,
	size_t len, const char *vr);

/*
 * Appends to @p out @p len bytes of UTF-8 encoded for a dataset whose
 * Specific Character Set is @p scs (the first character set named, plus
 * the escape sequences of the others where needed).  Returns 0;
 * FDN_EINVALID when the text cannot be represented (the error says which
 * character) or is not valid UTF-8; FDN_EUNSUPPORTED for a defined term
 * this build cannot convert.
 */
int fdn_charset__from_utf8(fdn_buf *out, const char *scs, const char *utf8,
	size_t len, const char *vr);

/* true when every value of @p scs is a defined term this build converts. */
bool fdn_charset__supported(const char *scs);

#ifdef __cplusplus
}
#endif

#endif
