/*
 * libfednode: what the envelope files share (format constants, the parsed
 * header, the hashing pipeline, the byte shuffle).  Not installed.  The
 * format is documented byte by byte in doc/exchange.md.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_ENVELOPE_PRIVATE_H
#define FDN_ENVELOPE_PRIVATE_H

#include <string.h>

#include <sodium.h>

#include "exchange_private.h"

#define FDN_ENV__MAGIC "FDNE"
#define FDN_ENV__END_MAGIC "ENDF"
#define FDN_ENV__MAGIC_BYTES 4
#define FDN_ENV__VERSION 1
/* magic, version u16, header length u32 */
#define FDN_ENV__PREAMBLE_BYTES 10
#define FDN_ENV__HEADER_MAX (128 * 1024)
#define FDN_ENV__CHUNK_DEFAULT (1024 * 1024)
#define FDN_ENV__CHUNK_MIN 16
#define FDN_ENV__CHUNK_MAX (16 * 1024 * 1024)
#define FDN_ENV__RECIPIENTS_MAX 1024
#define FDN_ENV__CONTENT_KEY_BYTES crypto_secretstream_xchacha20poly1305_KEYBYTES
#define FDN_ENV__WRAP_BYTES (crypto_box_SEALBYTES + FDN_ENV__CONTENT_KEY_BYTES)
#define FDN_ENV__RECIPIENT_BYTES (FDN_EXCHANGE__KEY_ID_BYTES + FDN_ENV__WRAP_BYTES)
#define FDN_ENV__SS_HEADER_BYTES crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define FDN_ENV__ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
/* A record: ciphertext length u32, record type u8, then the ciphertext. */
#define FDN_ENV__RECORD_HEAD 5
#define FDN_ENV__REC_STORED 0
#define FDN_ENV__REC_DEFLATE 1
/* Header flags. */
#define FDN_ENV__FLAG_COMPRESS 1u
/* Trailer: payload u64, body u64, body hash, signature, end magic. */
#define FDN_ENV__HASH_BYTES 32
#define FDN_ENV__SIG_BYTES crypto_sign_BYTES
#define FDN_ENV__TRAILER_SIGNED (8 + 8 + FDN_ENV__HASH_BYTES)
#define FDN_ENV__TRAILER_BYTES (FDN_ENV__TRAILER_SIGNED + FDN_ENV__SIG_BYTES + FDN_ENV__MAGIC_BYTES)
/* Domain separation of the signature, NUL included. */
#define FDN_ENV__SIG_DOMAIN "fednode envelope signature v1"
#define FDN_ENV__SIG_DOMAIN_BYTES sizeof(FDN_ENV__SIG_DOMAIN)
/* BLAKE2b personalisations (16 bytes) of a record's leaf hash and of the
 * body hash over the leaves. */
#define FDN_ENV__PERSONAL_RECORD "fdne-v1-record\0\0"
#define FDN_ENV__PERSONAL_BODY "fdne-v1-body\0\0\0\0"
/* Default largest payload opened: 64 GiB. */
#define FDN_ENV__MAX_PAYLOAD_DEFAULT (UINT64_C(64) << 30)

/* Test hook (white-box tests only): when non-zero, the plaintext chunk
 * size of envelopes sealed from now on.  Not thread-safe; never set by
 * the library itself. */
extern size_t fdn_envelope__test_chunk_size;

/* --- little-endian integers ------------------------------------------------ */

static inline void fdn_env__put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint64_t fdn_env__get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* --- the header ---------------------------------------------------------- */

typedef struct fdn_env__header {
	int kind;
	uint64_t round;
	char federation[FDN_FEDERATION_ID_MAX + 1];
	char sender[FDN_NODE_ID_MAX + 1];
	unsigned char sender_ed25519[FDN_PUBLIC_KEY_BYTES];
	unsigned int flags;
	unsigned int shuffle;
	uint32_t chunk_size;
	unsigned char ss_header[FDN_ENV__SS_HEADER_BYTES];
	unsigned int n_recipients;
	/* n_recipients entries of FDN_ENV__RECIPIENT_BYTES, inside @c raw. */
	const unsigned char *recipients;
	/* Preamble and header as stored: what the signature covers. */
	const unsigned char *raw;
	size_t raw_len;
} fdn_env__header;

/* Checks the 10-byte preamble; sets *header_len.  FDN_EFORMAT when it is
 * not an envelope of a version this library reads. */
int fdn_env__preamble_parse(uint32_t *header_len, const unsigned char *p);

/* Parses preamble + header (@p len bytes at @p raw, exactly).  @p h
 * borrows @p raw.  FDN_EFORMAT with a message naming the field. */
int fdn_env__header_parse(fdn_env__header *h, const unsigned char *raw, size_t len);

/* The message the sender signs: domain, preamble and header, and the
 * first FDN_ENV__TRAILER_SIGNED bytes of the trailer, into a new buffer. */
int fdn_env__signed_message(unsigned char **out, size_t *len,
	const unsigned char *raw, size_t raw_len, const unsigned char *trailer);

/* Is @p id a valid federation id (same rules as node ids)? */
bool fdn_env__federation_ok(const char *id);

/* --- the hashing pipeline (envelope_pipe.c) ------------------------------
 *
 * The body hash is BLAKE2b-256 (personal "fdne-v1-body") over the leaf
 * hashes of the records in order, each leaf BLAKE2b-256 (personal
 * "fdne-v1-record") of one record as stored.  Leaves are independent, so
 * a helper thread hashes records while the calling thread encrypts or
 * decrypts the next ones, and the calling thread hashes too instead of
 * waiting when it gets ahead.  A ring of records bounds
 * memory: a record submitted stays readable (and unchanged) until the
 * pipeline hands its slot out again or finishes.
 *
 * A deep ring matters on a loaded machine: when the helper is descheduled
 * while it holds the oldest record, the calling thread can go on for as
 * many records as the ring has before it must wait. */

/* Ring depth when records live in the caller's memory (slots cost
 * nothing), and when they are read or written through slot buffers. */
#define FDN_ENV__SLOTS_MAX 16
#define FDN_ENV__SLOTS_STREAM 8

typedef struct fdn_env__pipe fdn_env__pipe;

/* @p n_slots records of @p slot_bytes each (2..FDN_ENV__SLOTS_MAX);
 * @p threads 1: no helper thread, else one (started at the second
 * record). */
int fdn_env__pipe_new(fdn_env__pipe **out, size_t slot_bytes, unsigned int n_slots,
	unsigned int threads);
/* The buffer of the next slot, once one is free (hashing on the calling
 * thread meanwhile rather than waiting). */
unsigned char *fdn_env__pipe_next(fdn_env__pipe *p);
/* Queues the record @p data (in the slot from fdn_env__pipe_next(), or in
 * memory that stays unchanged as long) for hashing. */
void fdn_env__pipe_submit(fdn_env__pipe *p, const unsigned char *data, size_t len);
/* Waits for every record and writes the body hash. */
void fdn_env__pipe_finish(fdn_env__pipe *p, unsigned char hash[FDN_ENV__HASH_BYTES]);
/* Stops the helper and frees; NULL is a no-op. */
void fdn_env__pipe_free(fdn_env__pipe *p);

/* --- byte shuffle (envelope_shuffle.c, built -O3) ------------------------- */

/* Groups byte j of every @p width-byte element together: dst holds all
 * first bytes, then all second bytes, ...; the n % width tail bytes are
 * copied as they are.  @p width 2, 4 or 8. */
void fdn_env__shuffle(unsigned char *dst, const unsigned char *src, size_t n,
	unsigned int width);
/* The inverse of fdn_env__shuffle(). */
void fdn_env__unshuffle(unsigned char *dst, const unsigned char *src, size_t n,
	unsigned int width);

/* Advises huge pages for a large fresh output buffer (best effort). */
void fdn_env__advise_huge(void *p, size_t n);

/* zlib through the library's allocator. */
struct z_stream_s;
void fdn_env__zalloc_setup(struct z_stream_s *z);

#endif
