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

/* --- for envelopes -------------------------------------------------------- */

/* Bytes of a recipient key id: the first 16 bytes of the fingerprint hash. */
#define FDN_EXCHANGE__KEY_ID_BYTES 16

/* The raw fingerprint bytes of a key pair (see fdn_exchange__fingerprint). */
void fdn_exchange__key_id(unsigned char out[FDN_EXCHANGE__KEY_ID_BYTES],
	const unsigned char ed[FDN_PUBLIC_KEY_BYTES],
	const unsigned char x[FDN_PUBLIC_KEY_BYTES]);

/* A peer's two public keys. */
typedef struct fdn_exchange__key {
	unsigned char ed25519[FDN_PUBLIC_KEY_BYTES];
	unsigned char x25519[FDN_PUBLIC_KEY_BYTES];
} fdn_exchange__key;

/* Copies up to @p max keys of @p node_id that are valid at @p when into
 * @p out, in the store's order; returns how many there are (possibly more
 * than @p max).  *known counts the node's keys, expired ones included.
 * @p trust may be NULL (no keys). */
size_t fdn_trust__valid_keys(const fdn_trust *trust, const char *node_id,
	int64_t when, fdn_exchange__key *out, size_t max, size_t *known);

/* The identity's public keys (borrowed). */
const unsigned char *fdn_identity__ed25519_public(const fdn_identity *id);
const unsigned char *fdn_identity__x25519_public(const fdn_identity *id);

/* The secret keys never leave identity.c: these use them in place, with
 * the guarded memory readable only for the duration of the call. */
/* Ed25519 detached signature (64 bytes) of @p msg. */
void fdn_identity__sign(unsigned char sig[64], const fdn_identity *id,
	const unsigned char *msg, size_t len);
/* crypto_box_seal_open() with the identity's X25519 key pair: 0, or -1
 * when @p sealed was not sealed to this key or was altered. */
int fdn_identity__unseal(unsigned char *out, const unsigned char *sealed, size_t len,
	const fdn_identity *id);

#endif
