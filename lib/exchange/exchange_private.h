/*
 * libfednode: what the exchange module's files share.  Not installed.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_EXCHANGE_PRIVATE_H
#define FDN_EXCHANGE_PRIVATE_H

#include <stdbool.h>

#include "fednode/exchange.h"
#include "core/core_private.h"

/* Hex groups "xxxx:xxxx:..." of 16 bytes, NUL included. */
#define FDN_EXCHANGE__FINGERPRINT_SIZE 40
/* "YYYY-MM-DD", NUL included. */
#define FDN_EXCHANGE__DATE_SIZE 11

/* true when @p id is a valid node id (see FDN_NODE_ID_MAX). */
bool fdn_exchange__node_id_ok(const char *id);
/* Parses "YYYY-MM-DD" into the first second after that UTC day. */
bool fdn_exchange__date_end(int64_t *out, const char *date);
void fdn_exchange__fingerprint(char out[FDN_EXCHANGE__FINGERPRINT_SIZE],
	const unsigned char ed[FDN_PUBLIC_KEY_BYTES],
	const unsigned char x[FDN_PUBLIC_KEY_BYTES]);

/* A parsed public identity text. */
typedef struct fdn_exchange__public {
	char node_id[FDN_NODE_ID_MAX + 1];
	unsigned char ed25519[FDN_PUBLIC_KEY_BYTES];
	unsigned char x25519[FDN_PUBLIC_KEY_BYTES];
	char valid_until[FDN_EXCHANGE__DATE_SIZE]; /* "" for none */
} fdn_exchange__public;

/* Parses the text of fdn_identity_public(); FDN_EFORMAT when malformed. */
int fdn_exchange__public_parse(fdn_exchange__public *out, const char *text);
/* Decodes standard base64 of exactly FDN_PUBLIC_KEY_BYTES bytes. */
bool fdn_exchange__key_from_b64(unsigned char out[FDN_PUBLIC_KEY_BYTES],
	const char *b64);

#endif
