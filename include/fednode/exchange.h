/*
 * libfednode: node identities and the trust store (the first part of the
 * exchange module; envelopes follow).
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FEDNODE_EXCHANGE_H
#define FEDNODE_EXCHANGE_H

#include "common.h"

/** @file fednode/exchange.h
 *  @brief Node identities (Ed25519 + X25519 key pairs) and the trust store
 *         of known peers.
 *
 *  An ::fdn_identity is a node id with an Ed25519 signing key and an
 *  X25519 key-agreement key.  It is generated once, saved to a key file
 *  created 0600 (optionally protected by a passphrase) and loaded again.
 *  Its public part is a small JSON text that peers add to their
 *  ::fdn_trust, the persisted list of the peers a node knows.  The key
 *  file and trust file formats are in doc/exchange.md.
 *
 *  Secret keys live in libsodium's guarded memory, inaccessible while
 *  not in use, and are wiped when the identity is freed; they are never
 *  logged.
 *
 *  Thread safety: an ::fdn_identity or ::fdn_trust may be used by one
 *  thread at a time (the const functions included: an identity's secret
 *  memory is unlocked during use).  Distinct objects need no locking.
 */

FDN_BEGIN_DECL

/* ------------------------------------------------------------------ */
/** @name Limits
 *  @{ */

/** Longest node id, in bytes.  A node id is 1 to 64 characters from
 *  [A-Za-z0-9._-] that does not start with '.' or '-': it names files
 *  in the federation's store. */
#define FDN_NODE_ID_MAX 64
/** Bytes of an Ed25519 or X25519 public key. */
#define FDN_PUBLIC_KEY_BYTES 32

/** ::FDN_NODE_ID_MAX, for bindings. */
FDN_EXTERN(size_t) fdn_node_id_max(void);

/** ::FDN_PUBLIC_KEY_BYTES, for bindings. */
FDN_EXTERN(size_t) fdn_public_key_bytes(void);

/** @} */

/* ------------------------------------------------------------------ */
/** @name Identities
 *  @{ */

/** A node's identity: node id, Ed25519 and X25519 key pairs. */
typedef struct fdn_identity fdn_identity;

/**
 * Generates a new identity with fresh random keys.
 * @param out receives the identity; free it with fdn_identity_free().
 * @param node_id see ::FDN_NODE_ID_MAX; copied.
 * @return 0; FDN_EINVALID (NULL argument, bad node id, library not
 *         initialised); FDN_ERROR (out of memory).
 */
FDN_EXTERN(int) fdn_identity_generate(fdn_identity **out, const char *node_id);

/**
 * Saves @p id to a new key file at @p path, created with mode 0600.
 * The file appears complete or not at all, and an existing file is never
 * replaced.
 * @param passphrase NULL: the secret keys are stored in plain; else a
 *        non-empty UTF-8 passphrase from which Argon2id derives the key
 *        that encrypts them.
 * @return 0; FDN_ECONFLICT (@p path exists); FDN_EINVALID (NULL argument,
 *         empty passphrase); FDN_EIO; FDN_ERROR (out of memory).
 */
FDN_EXTERN(int) fdn_identity_save(const fdn_identity *id, const char *path,
	const char *passphrase);

/**
 * Loads an identity from a key file written by fdn_identity_save().
 * The file must be a regular file (not a symbolic link) that neither group
 * nor others can access.
 * @param out receives the identity; free it with fdn_identity_free().
 * @param passphrase the one it was saved with; NULL for a plain file.
 * @return 0; FDN_ENOTFOUND (no file); FDN_EINVALID (NULL argument, file
 *         accessible by group or others, passphrase given for a plain
 *         file); FDN_EAUTH (wrong or missing passphrase, or the encrypted
 *         part was altered); FDN_EFORMAT (not a key file, unknown version,
 *         truncated, inconsistent keys); FDN_EIO; FDN_ERROR.
 */
FDN_EXTERN(int) fdn_identity_load(fdn_identity **out, const char *path,
	const char *passphrase);

/** Wipes and frees an identity.  NULL is a no-op. */
FDN_EXTERN(void) fdn_identity_free(fdn_identity *id);

/** The node id of @p id, borrowed for the identity's lifetime; NULL for
 *  NULL. */
FDN_EXTERN(const char *) fdn_identity_node_id(const fdn_identity *id);

/**
 * The public part of @p id as one line of JSON, e.g.
 * {"format":"fednode-identity","version":1,"node_id":"site-a",
 *  "ed25519":"<base64>","x25519":"<base64>","valid_until":"2027-06-30"}
 * (keys sorted; "valid_until" only when given).  It contains no secret;
 * fdn_trust_add() takes it.
 * @param out replaced with the text; release with fdn_buf_dispose().
 * @param valid_until NULL or "": no end date; else an ISO date
 *        "YYYY-MM-DD" (the keys are valid through that day, UTC).
 * @return 0; FDN_EINVALID (NULL argument, bad date); FDN_ERROR.
 */
FDN_EXTERN(int) fdn_identity_public(fdn_buf *out, const fdn_identity *id,
	const char *valid_until);

/**
 * The short fingerprint of @p id's public keys, for people to compare
 * over the phone: the first 16 bytes of BLAKE2b(ed25519 || x25519) as
 * eight groups of four lower-case hex digits joined by ':' (39
 * characters).  Stable for a given pair of keys.
 * @param out replaced with the text; release with fdn_buf_dispose().
 * @return 0; FDN_EINVALID; FDN_ERROR.
 */
FDN_EXTERN(int) fdn_identity_fingerprint(fdn_buf *out, const fdn_identity *id);

/** @} */

/* ------------------------------------------------------------------ */
/** @name Trust store
 *  @{ */

/** The peers a node knows, persisted in a JSON file. */
typedef struct fdn_trust fdn_trust;

/** A peer's role in a federation.  Values are part of the ABI. */
typedef enum fdn_trust_role {
	FDN_TRUST_ROLE_INVALID = 0,     /**< Never a valid role. */
	FDN_TRUST_ROLE_SITE = 1,        /**< A site: trains on local data. */
	FDN_TRUST_ROLE_COORDINATOR = 2  /**< A coordinator: signs manifests,
	                                     aggregates. */
} fdn_trust_role;

/** One trusted key of a peer, as fdn_trust_peer() describes it. */
typedef struct fdn_trust_peer_info {
	unsigned int version;    /**< Set by the caller to ::FDN_TRUST_PEER_INFO_VERSION. */
	const char *node_id;     /**< Borrowed (see fdn_trust_peer()). */
	int role;                /**< An ::fdn_trust_role. */
	const char *fingerprint; /**< As fdn_identity_fingerprint(); borrowed. */
	const char *valid_until; /**< "YYYY-MM-DD", or "" for no end; borrowed. */
	unsigned char ed25519_public[FDN_PUBLIC_KEY_BYTES]; /**< Signing key. */
	unsigned char x25519_public[FDN_PUBLIC_KEY_BYTES];  /**< Key-agreement key. */
} fdn_trust_peer_info;

#define FDN_TRUST_PEER_INFO_VERSION 1
/** Initialiser of an ::fdn_trust_peer_info with its version set. */
#define FDN_TRUST_PEER_INFO_INIT { FDN_TRUST_PEER_INFO_VERSION, NULL, 0, NULL, NULL, { 0 }, { 0 } }

/**
 * Opens the trust store kept in @p path, creating an empty one (written
 * atomically) when the file does not exist.
 * @param out receives the store; free it with fdn_trust_free().
 * @return 0; FDN_EINVALID (NULL argument, library not initialised);
 *         FDN_EFORMAT (the file is not a valid trust store); FDN_EIO;
 *         FDN_ERROR.
 */
FDN_EXTERN(int) fdn_trust_open(fdn_trust **out, const char *path);

/**
 * Adds a peer key from its public text (fdn_identity_public()).  Changes
 * the store in memory only: fdn_trust_save() persists it.
 *
 * A node id may have several keys (key rotation): each is an entry of its
 * own with its own end date.  All entries of one node id must have the
 * same role.
 *
 * @param role an ::fdn_trust_role.
 * @param valid_until NULL or "": the date in @p public_text, if any; else
 *        an ISO date "YYYY-MM-DD" that overrides it.
 * @return 0; FDN_EINVALID (NULL argument, bad role or date); FDN_EFORMAT
 *         (@p public_text is malformed); FDN_ECONFLICT (one of the keys is
 *         already in the store, or the node id is known with another
 *         role); FDN_ERROR.
 */
FDN_EXTERN(int) fdn_trust_add(fdn_trust *trust, const char *public_text,
	int role, const char *valid_until);

/**
 * Removes every key of @p node_id (in memory; see fdn_trust_save()).
 * Invalidates the pointers fdn_trust_peer() handed out.
 * @return 0; FDN_ENOTFOUND (no such node); FDN_EINVALID.
 */
FDN_EXTERN(int) fdn_trust_remove(fdn_trust *trust, const char *node_id);

/** Number of keys (entries) in @p trust; 0 for NULL. */
FDN_EXTERN(size_t) fdn_trust_count(const fdn_trust *trust);

/**
 * Describes entry @p index (from 0, in the order they were added).  The
 * pointers in @p out are borrowed and stay valid until the store is
 * changed (fdn_trust_add(), fdn_trust_remove()) or freed.
 * @param out with @c version set by the caller.
 * @return 0; FDN_ENOTFOUND (index past the end); FDN_EINVALID.
 */
FDN_EXTERN(int) fdn_trust_peer(fdn_trust_peer_info *out, const fdn_trust *trust,
	size_t index);

/**
 * Is this Ed25519 key trusted at time @p when?  A key is valid through the
 * UTC day of its end date.
 * @param index_out receives the entry's index for fdn_trust_peer(); may
 *        be NULL.
 * @param ed25519_public ::FDN_PUBLIC_KEY_BYTES bytes.
 * @param when seconds since 1970-01-01 UTC (e.g. time(NULL)).
 * @return 0 (trusted); FDN_ENOTFOUND (unknown key); FDN_EAUTH (known, but
 *         its end date has passed at @p when); FDN_EINVALID.
 */
FDN_EXTERN(int) fdn_trust_find_by_key(size_t *index_out, const fdn_trust *trust,
	const unsigned char *ed25519_public, int64_t when);

/**
 * Writes the store back to its file atomically (the file is replaced
 * whole or not at all).
 * @return 0; FDN_EINVALID; FDN_EIO; FDN_ERROR.
 */
FDN_EXTERN(int) fdn_trust_save(const fdn_trust *trust);

/** Frees a store without saving it.  NULL is a no-op. */
FDN_EXTERN(void) fdn_trust_free(fdn_trust *trust);

/** @} */

FDN_END_DECL

#endif
