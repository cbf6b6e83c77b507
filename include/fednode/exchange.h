/*
 * libfednode: node identities, the trust store and sealed envelopes.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FEDNODE_EXCHANGE_H
#define FEDNODE_EXCHANGE_H

#include "common.h"

/** @file fednode/exchange.h
 *  @brief Node identities (Ed25519 + X25519 key pairs), the trust store
 *         of known peers, and envelopes: signed, encrypted messages.
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

/* ------------------------------------------------------------------ */
/** @name Envelopes
 *
 *  An envelope carries one payload (usually a safetensors model) from a
 *  sender to one or more recipients: signed by the sender's Ed25519 key,
 *  encrypted with libsodium secretstream under a random content key that
 *  is wrapped for each recipient's X25519 key.  Its signed header names
 *  the kind of message, the federation and the round, so that a receiver
 *  who states what it expects cannot be fed a message replayed from
 *  another round, kind or federation.  The format, byte by byte, and the
 *  threat model are in doc/exchange.md.
 *
 *  Opening never hands out unverified plaintext: the output appears only
 *  after the signature, the final secretstream tag and the hash of every
 *  byte have been checked.  Memory stays bounded by a few chunks whatever
 *  the payload's size.
 *
 *  Threads: the seal and open functions may use one helper thread
 *  (::fdn_seal_options.threads); callbacks always run on the calling
 *  thread and must not re-enter the same envelope call.
 *  @{ */

/** What an envelope carries.  Values are part of the ABI. */
typedef enum fdn_envelope_kind {
	FDN_ENVELOPE_INVALID = 0,  /**< Never valid. */
	FDN_ENVELOPE_DATA = 1,     /**< Anything else (tests, ad-hoc transfers). */
	FDN_ENVELOPE_MANIFEST = 2, /**< A federation manifest (coordinator → all). */
	FDN_ENVELOPE_GLOBAL = 3,   /**< A round's global model (coordinator → sites). */
	FDN_ENVELOPE_UPDATE = 4,   /**< A site's model update (site → coordinator). */
	FDN_ENVELOPE_RESULT = 5,   /**< A round's result (coordinator → all). */
	FDN_ENVELOPE_LATEST = 6    /**< The pointer to the newest round. */
} fdn_envelope_kind;

/** Longest federation id, in bytes; same characters as a node id. */
#define FDN_FEDERATION_ID_MAX 64

/** Name of an ::fdn_envelope_kind ("data", "manifest", "global",
 *  "update", "result", "latest"); NULL for an unknown value. */
FDN_EXTERN(const char *) fdn_envelope_kind_name(int kind);

/** Parses the name of a kind.  @return 0; FDN_EINVALID. */
FDN_EXTERN(int) fdn_envelope_kind_from_name(int *out, const char *name);

/** How to seal.  Transparent, versioned (see STYLE: options structs). */
typedef struct fdn_seal_options {
	unsigned int version;   /**< ::FDN_SEAL_OPTIONS_VERSION. */
	int kind;               /**< An ::fdn_envelope_kind (required). */
	const char *federation; /**< Federation id (required). */
	uint64_t round;         /**< Round number; 0 when rounds do not apply. */
	/** zlib level 1..9, or 0 (the default): no compression.  With a
	 *  level, each chunk is stored compressed only where that pays. */
	int compression_level;
	/** Byte-shuffle width before compression: 0 (default) = the width
	 *  of a float32 (4); 1 = no shuffle; 2, 4 or 8.  Ignored without
	 *  compression. */
	unsigned int shuffle;
	/** Threads to use: 0 (default) = up to 2; 1 = the calling thread only. */
	unsigned int threads;
	fdn_progress_cb progress;  /**< Optional; called on the calling thread. */
	void *progress_payload;
	fdn_cancel *cancel;        /**< Optional. */
} fdn_seal_options;

#define FDN_SEAL_OPTIONS_VERSION 1
#define FDN_SEAL_OPTIONS_INIT { FDN_SEAL_OPTIONS_VERSION, 0, NULL, 0, 0, 0, 0, NULL, NULL, NULL }

/** Initialises @p opts to the defaults of @p version.  @return 0; FDN_EINVALID. */
FDN_EXTERN(int) fdn_seal_options_init(fdn_seal_options *opts, unsigned int version);

/** What a receiver expects, and limits. */
typedef struct fdn_open_options {
	unsigned int version;   /**< ::FDN_OPEN_OPTIONS_VERSION. */
	int kind;               /**< Expected ::fdn_envelope_kind (required). */
	const char *federation; /**< Expected federation id (required). */
	uint64_t round;         /**< Expected round. */
	/** NULL: any sender in the trust store; else the node id the sender
	 *  must have (e.g. the site an update's key names). */
	const char *sender;
	/** 0: any role; else the ::fdn_trust_role the sender must have. */
	int sender_role;
	/** Largest payload accepted, in bytes; 0 = 64 GiB.  Larger envelopes
	 *  are refused (FDN_EFORMAT) before anything is decrypted past it. */
	uint64_t max_payload;
	/** Time at which the sender's key must be valid, in seconds since
	 *  1970 UTC; 0 = now. */
	int64_t when;
	/** Directory for the temporary file that holds plaintext until it is
	 *  verified (fdn_envelope_open_stream()/_fd()); NULL = $TMPDIR or /tmp. */
	const char *temp_dir;
	unsigned int threads;      /**< As in ::fdn_seal_options. */
	fdn_progress_cb progress;  /**< Optional; called on the calling thread. */
	void *progress_payload;
	fdn_cancel *cancel;        /**< Optional. */
} fdn_open_options;

#define FDN_OPEN_OPTIONS_VERSION 1
#define FDN_OPEN_OPTIONS_INIT { FDN_OPEN_OPTIONS_VERSION, 0, NULL, 0, NULL, 0, 0, 0, NULL, 0, NULL, NULL, NULL }

/** Initialises @p opts to the defaults of @p version.  @return 0; FDN_EINVALID. */
FDN_EXTERN(int) fdn_open_options_init(fdn_open_options *opts, unsigned int version);

/** What an envelope says about itself; filled by the library. */
typedef struct fdn_envelope_info {
	unsigned int version;    /**< Set by the caller to ::FDN_ENVELOPE_INFO_VERSION. */
	int kind;                /**< An ::fdn_envelope_kind. */
	uint64_t round;
	char federation[FDN_FEDERATION_ID_MAX + 1];
	char sender[FDN_NODE_ID_MAX + 1]; /**< The sender's node id as signed. */
	unsigned char sender_ed25519[FDN_PUBLIC_KEY_BYTES];
	uint64_t payload_bytes;  /**< Plaintext size (0 from fdn_envelope_inspect()). */
	uint64_t stored_bytes;   /**< Size of the envelope. */
	unsigned int recipients; /**< Number of recipient keys. */
	int compressed;          /**< 1 when some chunk is stored compressed. */
} fdn_envelope_info;

#define FDN_ENVELOPE_INFO_VERSION 1
#define FDN_ENVELOPE_INFO_INIT { FDN_ENVELOPE_INFO_VERSION, 0, 0, { 0 }, { 0 }, { 0 }, 0, 0, 0, 0 }

/**
 * Seals a payload read from @p read into an envelope written to @p write.
 * The payload is read once, in chunks; memory use is a few chunks
 * (1 MiB each) whatever its size.
 *
 * @param sender signs; its node id goes into the header.
 * @param trust where the recipients' keys are found; may be NULL when the
 *        only recipient is @p sender itself.
 * @param recipients node ids; each gets every key of that node that is
 *        valid now (key rotation).  The sender's own node id means its own
 *        identity's key (e.g. a coordinator that keeps its global model).
 * @param n_recipients 1 to 1024 (counting keys).
 * @param opts kind and federation are required.
 * @return 0; FDN_EINVALID (NULL argument, no recipients, bad option);
 *         FDN_ENOTFOUND (a recipient has no valid key in @p trust);
 *         FDN_ECANCELLED; FDN_ERROR; or a callback's non-zero value.
 *         On failure part of the envelope may have been written: the
 *         caller discards it (the _fd and _buffer variants do).
 */
FDN_EXTERN(int) fdn_envelope_seal_stream(fdn_read_cb read, void *read_payload,
	fdn_write_cb write, void *write_payload,
	const fdn_identity *sender, const fdn_trust *trust,
	const char *const *recipients, size_t n_recipients,
	const fdn_seal_options *opts);

/**
 * As fdn_envelope_seal_stream(), from @p in_fd (read to its end) to
 * @p out_fd (written from its current offset).  On failure @p out_fd is
 * truncated back to where it started when it is a regular file.
 */
FDN_EXTERN(int) fdn_envelope_seal_fd(int in_fd, int out_fd,
	const fdn_identity *sender, const fdn_trust *trust,
	const char *const *recipients, size_t n_recipients,
	const fdn_seal_options *opts);

/** As fdn_envelope_seal_stream(), from memory into @p out (replaced;
 *  left empty on failure). */
FDN_EXTERN(int) fdn_envelope_seal_buffer(fdn_buf *out, const void *data, size_t len,
	const fdn_identity *sender, const fdn_trust *trust,
	const char *const *recipients, size_t n_recipients,
	const fdn_seal_options *opts);

/**
 * Opens an envelope read from @p read and writes its payload to @p write.
 *
 * In order: the header is parsed (FDN_EFORMAT when malformed); the sender
 * must be in @p trust with a key valid at opts->when, and match
 * opts->sender and opts->sender_role when given (FDN_EAUTH); kind,
 * federation and round must equal what @p opts expects (FDN_EAUTH: a
 * replay); @p me must be a recipient (FDN_EAUTH).  The payload is then
 * decrypted into a temporary file (in opts->temp_dir) while every stored
 * byte is hashed; only when the final tag, the hash and the sender's
 * signature all check out is the payload passed to @p write.  A sender
 * opening its own envelope needs itself in @p trust.
 *
 * @param info filled (version set by the caller) on success; may be NULL.
 * @return 0; FDN_EINVALID; FDN_EFORMAT (malformed or truncated envelope,
 *         payload over opts->max_payload); FDN_EAUTH (as above, or a
 *         signature, tag or hash mismatch: the envelope was altered);
 *         FDN_EIO; FDN_ECANCELLED; FDN_ERROR; or a callback's value.
 */
FDN_EXTERN(int) fdn_envelope_open_stream(fdn_envelope_info *info,
	fdn_read_cb read, void *read_payload,
	fdn_write_cb write, void *write_payload,
	const fdn_identity *me, const fdn_trust *trust,
	const fdn_open_options *opts);

/**
 * As fdn_envelope_open_stream(), from @p in_fd to @p out_fd.  When
 * @p out_fd is a regular file opened for writing at offset 0, the payload
 * is decrypted straight into it and the file is truncated to zero on any
 * failure: hosts must not read it before this call returns 0.  Prefer
 * fdn_envelope_open_file() when a path will do.
 */
FDN_EXTERN(int) fdn_envelope_open_fd(fdn_envelope_info *info, int in_fd, int out_fd,
	const fdn_identity *me, const fdn_trust *trust,
	const fdn_open_options *opts);

/**
 * Opens the envelope in file @p in_path into a new file @p out_path: the
 * payload is decrypted into a temporary file beside it that is renamed
 * to @p out_path only after verification (an existing file is replaced).
 * The file gets mode 0600: a model trained on patient data is treated as
 * sensitive.  FDN_ENOTFOUND when @p in_path does not exist.
 */
FDN_EXTERN(int) fdn_envelope_open_file(fdn_envelope_info *info,
	const char *in_path, const char *out_path,
	const fdn_identity *me, const fdn_trust *trust,
	const fdn_open_options *opts);

/** As fdn_envelope_open_stream(), from memory into @p out (replaced
 *  after verification; left empty on failure). */
FDN_EXTERN(int) fdn_envelope_open_buffer(fdn_envelope_info *info, fdn_buf *out,
	const void *data, size_t len,
	const fdn_identity *me, const fdn_trust *trust,
	const fdn_open_options *opts);

/**
 * Parses the header of an envelope without checking anything: the
 * result is NOT authenticated (anyone can write any header).  For
 * display and for choosing what to expect; fdn_envelope_open_*() decides.
 * @param data the envelope or at least its beginning (the header is at
 *        most 128 KiB).
 * @return 0; FDN_EFORMAT; FDN_EINVALID.
 */
FDN_EXTERN(int) fdn_envelope_inspect(fdn_envelope_info *info, const void *data,
	size_t len);

/** @} */

FDN_END_DECL

#endif
