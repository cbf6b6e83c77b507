/*
 * Envelopes: kinds, options, the preamble and the header (parse and
 * inspect), and the message the sender signs.  Format: doc/exchange.md.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <zlib.h>

#include "envelope_private.h"

#define BAD(...) fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_EXCHANGE, __VA_ARGS__)

size_t fdn_envelope__test_chunk_size;

static const char *const kind_names[] = {
	NULL, "data", "manifest", "global", "update", "result", "latest",
};

#define N_KINDS (sizeof(kind_names) / sizeof(kind_names[0]))

const char *fdn_envelope_kind_name(int kind)
{
	if (kind <= FDN_ENVELOPE_INVALID || (size_t)kind >= N_KINDS)
		return NULL;
	return kind_names[kind];
}

int fdn_envelope_kind_from_name(int *out, const char *name)
{
	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(name, "name");
	for (size_t i = 1; i < N_KINDS; i++) {
		if (strcmp(kind_names[i], name) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_EXCHANGE,
		"unknown envelope kind '%s' (known: data, manifest, global, update, result, latest)",
		name);
}

int fdn_seal_options_init(fdn_seal_options *opts, unsigned int version)
{
	FDN__CHECK_ARG(opts, "opts");
	if (version == 0 || version > FDN_SEAL_OPTIONS_VERSION)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_seal_options: unsupported version %u (this library knows up to %u)",
			version, FDN_SEAL_OPTIONS_VERSION);
	memset(opts, 0, sizeof(*opts));
	opts->version = version;
	return 0;
}

int fdn_open_options_init(fdn_open_options *opts, unsigned int version)
{
	FDN__CHECK_ARG(opts, "opts");
	if (version == 0 || version > FDN_OPEN_OPTIONS_VERSION)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_open_options: unsupported version %u (this library knows up to %u)",
			version, FDN_OPEN_OPTIONS_VERSION);
	memset(opts, 0, sizeof(*opts));
	opts->version = version;
	return 0;
}

bool fdn_env__federation_ok(const char *id)
{
	/* Same alphabet and length as node ids: it names folders in the store. */
	return fdn_exchange__node_id_ok(id);
}

/* --- parsing --------------------------------------------------------------- */

int fdn_env__preamble_parse(uint32_t *header_len, const unsigned char *p)
{
	uint64_t version, len;

	if (memcmp(p, FDN_ENV__MAGIC, FDN_ENV__MAGIC_BYTES) != 0)
		return BAD("not an envelope: bad magic (expected \"FDNE\")");
	version = fdn_env__get_le(p + 4, 2);
	if (version != FDN_ENV__VERSION)
		return BAD("unsupported envelope format version %u (this library reads version %d)",
			(unsigned)version, FDN_ENV__VERSION);
	len = fdn_env__get_le(p + 6, 4);
	if (len > FDN_ENV__HEADER_MAX)
		return BAD("envelope header length %llu exceeds the limit of %d bytes",
			(unsigned long long)len, FDN_ENV__HEADER_MAX);
	*header_len = (uint32_t)len;
	return 0;
}

/* A cursor over the header bytes that fails (returns NULL) past the end. */
typedef struct cursor {
	const unsigned char *p;
	size_t left;
} cursor;

static const unsigned char *take(cursor *c, size_t n)
{
	const unsigned char *r;

	if (n > c->left)
		return NULL;
	r = c->p;
	c->p += n;
	c->left -= n;
	return r;
}

/* A length-prefixed id into @p out; false when truncated or invalid. */
static bool take_id(cursor *c, char out[FDN_NODE_ID_MAX + 1])
{
	const unsigned char *n = take(c, 1), *s;

	if (!n || *n == 0 || *n > FDN_NODE_ID_MAX || !(s = take(c, *n)))
		return false;
	memcpy(out, s, *n);
	out[*n] = '\0';
	/* An embedded NUL would make the C string shorter than the bytes. */
	return strlen(out) == *n && fdn_exchange__node_id_ok(out);
}

int fdn_env__header_parse(fdn_env__header *h, const unsigned char *raw, size_t len)
{
	const unsigned char *p;
	cursor c;
	uint32_t hlen;
	uint64_t n;
	int rc;

	memset(h, 0, sizeof(*h));
	if (len < FDN_ENV__PREAMBLE_BYTES)
		return BAD("envelope truncated in its preamble");
	if ((rc = fdn_env__preamble_parse(&hlen, raw)) != 0)
		return rc;
	if (len != FDN_ENV__PREAMBLE_BYTES + (size_t)hlen)
		return BAD("envelope header truncated: %zu of %u bytes",
			len - FDN_ENV__PREAMBLE_BYTES, hlen);
	c.p = raw + FDN_ENV__PREAMBLE_BYTES;
	c.left = hlen;
	if (!(p = take(&c, 10)))
		return BAD("envelope header truncated before the round");
	h->kind = (int)fdn_env__get_le(p, 2);
	h->round = fdn_env__get_le(p + 2, 8);
	if (!fdn_envelope_kind_name(h->kind))
		return BAD("envelope header: unknown kind %d", h->kind);
	if (!take_id(&c, h->federation))
		return BAD("envelope header: missing or invalid federation id");
	if (!take_id(&c, h->sender))
		return BAD("envelope header: missing or invalid sender node id");
	if (!(p = take(&c, FDN_PUBLIC_KEY_BYTES + 2 + 4 + FDN_ENV__SS_HEADER_BYTES + 2)))
		return BAD("envelope header truncated after the sender id");
	memcpy(h->sender_ed25519, p, FDN_PUBLIC_KEY_BYTES);
	p += FDN_PUBLIC_KEY_BYTES;
	h->flags = p[0];
	h->shuffle = p[1];
	if (h->flags & ~FDN_ENV__FLAG_COMPRESS)
		return BAD("envelope header: unknown flags 0x%02x", h->flags);
	if (h->shuffle != 1 && h->shuffle != 2 && h->shuffle != 4 && h->shuffle != 8)
		return BAD("envelope header: invalid shuffle width %u", h->shuffle);
	h->chunk_size = (uint32_t)fdn_env__get_le(p + 2, 4);
	if (h->chunk_size < FDN_ENV__CHUNK_MIN || h->chunk_size > FDN_ENV__CHUNK_MAX)
		return BAD("envelope header: chunk size %u outside %d..%d", h->chunk_size,
			FDN_ENV__CHUNK_MIN, FDN_ENV__CHUNK_MAX);
	memcpy(h->ss_header, p + 6, FDN_ENV__SS_HEADER_BYTES);
	n = fdn_env__get_le(p + 6 + FDN_ENV__SS_HEADER_BYTES, 2);
	if (n == 0 || n > FDN_ENV__RECIPIENTS_MAX)
		return BAD("envelope header: %u recipients (1..%d allowed)", (unsigned)n,
			FDN_ENV__RECIPIENTS_MAX);
	h->n_recipients = (unsigned)n;
	if (!(h->recipients = take(&c, n * FDN_ENV__RECIPIENT_BYTES)))
		return BAD("envelope header truncated in its recipient list");
	if (c.left != 0)
		return BAD("envelope header has %zu unexpected bytes at its end", c.left);
	h->raw = raw;
	h->raw_len = len;
	return 0;
}

int fdn_env__signed_message(unsigned char **out, size_t *len,
	const unsigned char *raw, size_t raw_len, const unsigned char *trailer)
{
	size_t n = FDN_ENV__SIG_DOMAIN_BYTES + raw_len + FDN_ENV__TRAILER_SIGNED;
	unsigned char *m = fdn__malloc(n);

	if (!m)
		return fdn__error_oom();
	memcpy(m, FDN_ENV__SIG_DOMAIN, FDN_ENV__SIG_DOMAIN_BYTES);
	memcpy(m + FDN_ENV__SIG_DOMAIN_BYTES, raw, raw_len);
	memcpy(m + FDN_ENV__SIG_DOMAIN_BYTES + raw_len, trailer, FDN_ENV__TRAILER_SIGNED);
	*out = m;
	*len = n;
	return 0;
}

/* --- inspect ------------------------------------------------------------------ */

/* Walks the records in the clear framing, when all of them are there: the
 * size of the envelope and whether any record is compressed.  Nothing is
 * checked beyond the framing: this is for display. */
static void walk_records(fdn_envelope_info *info, const fdn_env__header *h,
	const unsigned char *data, size_t len)
{
	size_t o = h->raw_len;
	uint64_t body, claimed;
	int compressed = 0;

	while (len - o >= FDN_ENV__RECORD_HEAD) {
		uint64_t clen = fdn_env__get_le(data + o, 4);
		if (clen < FDN_ENV__ABYTES || clen > (uint64_t)h->chunk_size + FDN_ENV__ABYTES ||
		    clen > len - o - FDN_ENV__RECORD_HEAD)
			return;
		compressed |= data[o + 4] == FDN_ENV__REC_DEFLATE;
		o += FDN_ENV__RECORD_HEAD + (size_t)clen;
		if (len - o == FDN_ENV__TRAILER_BYTES)
			break;
	}
	if (len - o != FDN_ENV__TRAILER_BYTES ||
	    memcmp(data + len - FDN_ENV__MAGIC_BYTES, FDN_ENV__END_MAGIC, FDN_ENV__MAGIC_BYTES) != 0)
		return;
	body = o - h->raw_len;
	claimed = fdn_env__get_le(data + o + 8, 8);
	if (claimed != body)
		return;
	info->stored_bytes = len;
	info->compressed = compressed;
}

int fdn_envelope_inspect(fdn_envelope_info *info, const void *data, size_t len)
{
	const unsigned char *p = data;
	fdn_env__header h;
	uint32_t hlen;
	int rc;

	FDN__CHECK_ARG(info, "info");
	FDN__CHECK_ARG(data || len == 0, "data");
	FDN__CHECK_VERSION(info, FDN_ENVELOPE_INFO_VERSION, "fdn_envelope_info");
	if (len < FDN_ENV__PREAMBLE_BYTES)
		return BAD("not an envelope: %zu bytes, shorter than its preamble", len);
	if ((rc = fdn_env__preamble_parse(&hlen, p)) != 0)
		return rc;
	if (len - FDN_ENV__PREAMBLE_BYTES < hlen)
		return BAD("envelope header truncated: %zu of %u bytes",
			len - FDN_ENV__PREAMBLE_BYTES, hlen);
	if ((rc = fdn_env__header_parse(&h, p, FDN_ENV__PREAMBLE_BYTES + hlen)) != 0)
		return rc;
	info->kind = h.kind;
	info->round = h.round;
	memcpy(info->federation, h.federation, sizeof(info->federation));
	memcpy(info->sender, h.sender, sizeof(info->sender));
	memcpy(info->sender_ed25519, h.sender_ed25519, FDN_PUBLIC_KEY_BYTES);
	info->payload_bytes = 0;
	info->stored_bytes = 0;
	info->recipients = h.n_recipients;
	info->compressed = 0;
	walk_records(info, &h, p, len);
	return 0;
}

/* --- zlib through the library's allocator --------------------------------- */

/* Each block remembers its size so that it is wiped when freed: zlib's
 * window holds payload plaintext. */
#define ZHEAD 16

static voidpf zalloc_fn(voidpf opaque, uInt items, uInt size)
{
	unsigned char *p;
	size_t n;

	(void)opaque;
	if (fdn__mul_overflow(items, size, &n) || fdn__add_overflow(n, ZHEAD, &n))
		return Z_NULL;
	if (!(p = fdn__malloc(n)))
		return Z_NULL;
	memcpy(p, &n, sizeof(n));
	return p + ZHEAD;
}

static void zfree_fn(voidpf opaque, voidpf ptr)
{
	unsigned char *p = (unsigned char *)ptr - ZHEAD;
	size_t n;

	(void)opaque;
	memcpy(&n, p, sizeof(n));
	sodium_memzero(p, n);
	fdn__free(p);
}

void fdn_env__zalloc_setup(struct z_stream_s *z)
{
	memset(z, 0, sizeof(*z));
	z->zalloc = zalloc_fn;
	z->zfree = zfree_fn;
	z->opaque = Z_NULL;
}

/* --- large output buffers ----------------------------------------------------- */

void fdn_env__advise_huge(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
	uintptr_t page = 2 * 1024 * 1024, start = ((uintptr_t)p + page - 1) & ~(page - 1);
	uintptr_t end = ((uintptr_t)p + n) & ~(page - 1);

	/* Fresh memory costs a page fault per 4 KiB when first written: for
	 * a 400 MB model that is as long as encrypting it.  Huge pages cut
	 * the faults 512-fold where the system allows them on request.  Only
	 * advice: failure changes nothing. */
	if (end > start)
		(void)madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
	(void)p;
	(void)n;
#endif
}
