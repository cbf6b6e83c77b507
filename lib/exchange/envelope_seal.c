/*
 * Sealing envelopes: read the payload in chunks, compress where it pays,
 * encrypt with secretstream under a fresh content key wrapped for every
 * recipient key, hash the stored records (envelope_pipe.c) and sign.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "envelope_private.h"

#define INVALID(...) fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_EXCHANGE, __VA_ARGS__)

/* A chunk is stored compressed only when that saves at least this many
 * hundredths of it. */
#define MIN_SAVING_PERCENT 3
/* Chunks this small are never worth a deflate stream. */
#define MIN_COMPRESS_BYTES 64

/* Key material, in guarded memory. */
typedef struct seal_secret {
	unsigned char key[FDN_ENV__CONTENT_KEY_BYTES];
	crypto_secretstream_xchacha20poly1305_state st;
} seal_secret;

/* Where the payload comes from: memory (read in place) or a callback. */
typedef struct seal_src {
	const unsigned char *mem;
	size_t mem_len, off;
	fdn_read_cb read;
	void *payload;
	unsigned char *buf; /* chunk + 1 bytes: the extra one tells the end */
	size_t have;
	bool carry, eof;
} seal_src;

/* Where the envelope goes: a callback, or a buffer reserved up front
 * into which records are encrypted in place. */
typedef struct seal_sink {
	fdn_write_cb write;
	void *payload;
	fdn_buf *buf;
} seal_sink;

typedef struct sealer {
	const fdn_seal_options *opts;
	size_t chunk;
	unsigned int shuffle; /* 1: none */
	seal_secret *secret;
	fdn_env__pipe *pipe;
	unsigned char *shuffled, *packed; /* compression scratch */
	z_stream z;
	bool z_ready;
	uint64_t payload_bytes, body_bytes, total;
	double started;
} sealer;

/* --- arguments -------------------------------------------------------------- */

static int check_options(const fdn_seal_options *o)
{
	if (!o)
		return INVALID("seal: options are required (kind and federation)");
	FDN__CHECK_VERSION(o, FDN_SEAL_OPTIONS_VERSION, "fdn_seal_options");
	if (!fdn_envelope_kind_name(o->kind))
		return INVALID("seal: invalid envelope kind %d", o->kind);
	if (!fdn_env__federation_ok(o->federation))
		return INVALID("seal: invalid federation id: 1 to %d characters of [A-Za-z0-9._-], "
			"not starting with '.' or '-'", FDN_FEDERATION_ID_MAX);
	if (o->compression_level < 0 || o->compression_level > 9)
		return INVALID("seal: compression level %d outside 0..9", o->compression_level);
	if (o->shuffle != 0 && o->shuffle != 1 && o->shuffle != 2 && o->shuffle != 4 &&
	    o->shuffle != 8)
		return INVALID("seal: shuffle width %u is not 0, 1, 2, 4 or 8", o->shuffle);
	return 0;
}

static int check_args(const fdn_identity *sender, const char *const *recipients,
	size_t n, const fdn_seal_options *opts)
{
	int rc;

	if ((rc = fdn__check_init()) != 0)
		return rc;
	FDN__CHECK_ARG(sender, "sender");
	FDN__CHECK_ARG(recipients, "recipients");
	if (n == 0 || n > FDN_ENV__RECIPIENTS_MAX)
		return INVALID("seal: %zu recipients (1..%d allowed)", n, FDN_ENV__RECIPIENTS_MAX);
	for (size_t i = 0; i < n; i++)
		if (!fdn_exchange__node_id_ok(recipients[i]))
			return INVALID("seal: recipient %zu is not a valid node id", i);
	return check_options(opts);
}

static void add_key(fdn_exchange__key *keys, size_t *n, const unsigned char *ed,
	const unsigned char *x)
{
	for (size_t i = 0; i < *n; i++)
		if (memcmp(keys[i].ed25519, ed, FDN_PUBLIC_KEY_BYTES) == 0 &&
		    memcmp(keys[i].x25519, x, FDN_PUBLIC_KEY_BYTES) == 0)
			return; /* named twice */
	if (*n < FDN_ENV__RECIPIENTS_MAX + 1) {
		memcpy(keys[*n].ed25519, ed, FDN_PUBLIC_KEY_BYTES);
		memcpy(keys[*n].x25519, x, FDN_PUBLIC_KEY_BYTES);
	}
	++*n;
}

/* Every key valid now of every recipient; the sender's own node id
 * means its own identity's key. */
static int resolve(fdn_exchange__key **out, size_t *n_out, const fdn_identity *sender,
	const fdn_trust *trust, const char *const *recipients, size_t n)
{
	fdn_exchange__key *keys, *found;
	int64_t now = (int64_t)time(NULL);
	size_t nk = 0, count, known;

	/* The result (one spare entry to notice too many), then scratch. */
	keys = fdn__calloc(2 * FDN_ENV__RECIPIENTS_MAX + 1, sizeof(*keys));
	if (!keys)
		return fdn__error_oom();
	found = keys + FDN_ENV__RECIPIENTS_MAX + 1;
	for (size_t i = 0; i < n && nk <= FDN_ENV__RECIPIENTS_MAX; i++) {
		if (strcmp(recipients[i], fdn_identity_node_id(sender)) == 0) {
			add_key(keys, &nk, fdn_identity__ed25519_public(sender),
				fdn_identity__x25519_public(sender));
			continue;
		}
		count = fdn_trust__valid_keys(trust, recipients[i], now, found,
			FDN_ENV__RECIPIENTS_MAX, &known);
		if (count == 0) {
			fdn__free(keys);
			if (known)
				return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_EXCHANGE,
					"seal: every key of recipient '%s' has expired", recipients[i]);
			return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_EXCHANGE,
				"seal: recipient '%s' is not in the trust store", recipients[i]);
		}
		for (size_t k = 0; k < count && k < FDN_ENV__RECIPIENTS_MAX; k++)
			add_key(keys, &nk, found[k].ed25519, found[k].x25519);
	}
	if (nk > FDN_ENV__RECIPIENTS_MAX) {
		fdn__free(keys);
		return INVALID("seal: more than %d recipient keys", FDN_ENV__RECIPIENTS_MAX);
	}
	*out = keys;
	*n_out = nk;
	return 0;
}

/* --- output -------------------------------------------------------------------- */

static int sink_put(seal_sink *k, const void *data, size_t len)
{
	int rc;

	if (k->buf)
		return fdn_buf__put(k->buf, data, len);
	rc = k->write(data, len, k->payload);
	return rc ? fdn__error_callback(rc, "write") : 0;
}

/* Preamble and header, built in @p out (a new buffer). */
static int build_header(fdn_buf *out, sealer *s, const fdn_identity *sender,
	const fdn_exchange__key *keys, size_t nk)
{
	const fdn_seal_options *o = s->opts;
	size_t fl = strlen(o->federation), sl = strlen(fdn_identity_node_id(sender));
	size_t hlen = 10 + 1 + fl + 1 + sl + FDN_PUBLIC_KEY_BYTES + 2 + 4 +
		FDN_ENV__SS_HEADER_BYTES + 2 + nk * FDN_ENV__RECIPIENT_BYTES;
	unsigned char *p;
	int rc;

	if ((rc = fdn_buf__grow(out, FDN_ENV__PREAMBLE_BYTES + hlen)) != 0)
		return rc;
	p = (unsigned char *)out->ptr;
	memcpy(p, FDN_ENV__MAGIC, FDN_ENV__MAGIC_BYTES);
	fdn_env__put_le(p + 4, FDN_ENV__VERSION, 2);
	fdn_env__put_le(p + 6, hlen, 4);
	p += FDN_ENV__PREAMBLE_BYTES;
	fdn_env__put_le(p, (uint64_t)o->kind, 2);
	fdn_env__put_le(p + 2, o->round, 8);
	p += 10;
	*p++ = (unsigned char)fl;
	memcpy(p, o->federation, fl);
	p += fl;
	*p++ = (unsigned char)sl;
	memcpy(p, fdn_identity_node_id(sender), sl);
	p += sl;
	memcpy(p, fdn_identity__ed25519_public(sender), FDN_PUBLIC_KEY_BYTES);
	p += FDN_PUBLIC_KEY_BYTES;
	*p++ = o->compression_level > 0 ? FDN_ENV__FLAG_COMPRESS : 0;
	*p++ = (unsigned char)s->shuffle;
	fdn_env__put_le(p, s->chunk, 4);
	p += 4;
	crypto_secretstream_xchacha20poly1305_init_push(&s->secret->st, p, s->secret->key);
	p += FDN_ENV__SS_HEADER_BYTES;
	fdn_env__put_le(p, nk, 2);
	p += 2;
	for (size_t i = 0; i < nk; i++) {
		fdn_exchange__key_id(p, keys[i].ed25519, keys[i].x25519);
		crypto_box_seal(p + FDN_EXCHANGE__KEY_ID_BYTES, s->secret->key,
			FDN_ENV__CONTENT_KEY_BYTES, keys[i].x25519);
		p += FDN_ENV__RECIPIENT_BYTES;
	}
	out->size = FDN_ENV__PREAMBLE_BYTES + hlen;
	out->ptr[out->size] = '\0';
	return 0;
}

/* The most an envelope of @p len payload bytes can take after its header. */
static int body_bound(size_t *out, size_t len, size_t chunk)
{
	size_t chunks = len / chunk + 1, per;

	per = FDN_ENV__RECORD_HEAD + FDN_ENV__ABYTES;
	if (fdn__mul_overflow(chunks, per, out) || fdn__add_overflow(*out, len, out) ||
	    fdn__add_overflow(*out, FDN_ENV__TRAILER_BYTES, out))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_EXCHANGE,
			"seal: payload of %zu bytes too large for memory", len);
	return 0;
}

/* --- input ------------------------------------------------------------------------ */

/* The next chunk: at most s->chunk bytes; *final when nothing follows. */
static int src_next(seal_src *src, size_t chunk, const unsigned char **data, size_t *n,
	bool *final)
{
	size_t got;
	int rc;

	if (src->mem) {
		*data = src->mem + src->off;
		*n = src->mem_len - src->off < chunk ? src->mem_len - src->off : chunk;
		src->off += *n;
		*final = src->off == src->mem_len;
		return 0;
	}
	if (src->carry) { /* the byte that showed the last chunk was not final */
		src->buf[0] = src->buf[chunk];
		src->have = 1;
		src->carry = false;
	}
	while (!src->eof && src->have < chunk + 1) {
		got = 0;
		rc = src->read(src->buf + src->have, chunk + 1 - src->have, &got, src->payload);
		if (rc)
			return fdn__error_callback(rc, "read");
		if (got > chunk + 1 - src->have)
			return INVALID("seal: the read callback claims %zu bytes, more than the %zu asked",
				got, chunk + 1 - src->have);
		if (got == 0)
			src->eof = true;
		src->have += got;
	}
	*data = src->buf;
	*n = src->have > chunk ? chunk : src->have;
	*final = src->have <= chunk;
	src->carry = !*final;
	src->have = 0;
	return 0;
}

/* --- compression ----------------------------------------------------------------- */

static int compress_setup(sealer *s)
{
	if (s->opts->compression_level == 0)
		return 0;
	s->shuffled = fdn__malloc(s->chunk);
	s->packed = fdn__malloc(s->chunk);
	if (!s->shuffled || !s->packed)
		return fdn__error_oom();
	fdn_env__zalloc_setup(&s->z);
	/* Raw deflate: the AEAD already checks integrity, no Adler-32 needed. */
	if (deflateInit2(&s->z, s->opts->compression_level, Z_DEFLATED, -15, 8,
			Z_DEFAULT_STRATEGY) != Z_OK)
		return fdn__error_oom();
	s->z_ready = true;
	return 0;
}

/* Replaces (*data, *n) with its compressed form when that pays. */
static int maybe_compress(sealer *s, const unsigned char **data, size_t *n)
{
	size_t limit = *n - (*n * MIN_SAVING_PERCENT + 99) / 100;
	const unsigned char *in = *data;
	int zrc;

	if (!s->z_ready || *n < MIN_COMPRESS_BYTES)
		return FDN_ENV__REC_STORED;
	if (s->shuffle > 1) {
		fdn_env__shuffle(s->shuffled, *data, *n, s->shuffle);
		in = s->shuffled;
	}
	deflateReset(&s->z);
	s->z.next_in = (unsigned char *)in;
	s->z.avail_in = (uInt)*n;
	s->z.next_out = s->packed;
	s->z.avail_out = (uInt)limit;
	zrc = deflate(&s->z, Z_FINISH);
	if (zrc != Z_STREAM_END)
		return FDN_ENV__REC_STORED; /* did not fit in the limit: store */
	*data = s->packed;
	*n = limit - s->z.avail_out;
	return FDN_ENV__REC_DEFLATE;
}

/* --- the records ----------------------------------------------------------------- */

static int put_record(sealer *s, seal_sink *k, const unsigned char *data, size_t n,
	int type, bool final)
{
	size_t clen = n + FDN_ENV__ABYTES, rlen = FDN_ENV__RECORD_HEAD + clen;
	unsigned char *slot = fdn_env__pipe_next(s->pipe);
	unsigned char *dst = k->buf ? (unsigned char *)k->buf->ptr + k->buf->size : slot;
	int rc = 0;

	fdn_env__put_le(dst, clen, 4);
	dst[4] = (unsigned char)type;
	crypto_secretstream_xchacha20poly1305_push(&s->secret->st, dst + FDN_ENV__RECORD_HEAD,
		NULL, data, n, dst, FDN_ENV__RECORD_HEAD,
		final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
		      : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
	fdn_env__pipe_submit(s->pipe, dst, rlen);
	if (k->buf) {
		k->buf->size += rlen;
	} else if ((rc = k->write(dst, rlen, k->payload)) != 0) {
		return fdn__error_callback(rc, "write");
	}
	s->body_bytes += rlen;
	return 0;
}

static int report(sealer *s)
{
	fdn_progress p;
	int rc;

	if (!s->opts->progress)
		return 0;
	memset(&p, 0, sizeof(p));
	p.version = FDN_PROGRESS_VERSION;
	p.stage = "seal";
	p.bytes_done = s->payload_bytes;
	p.bytes_total = s->total;
	p.elapsed = fdn__monotonic_seconds() - s->started;
	rc = s->opts->progress(&p, s->opts->progress_payload);
	return rc ? fdn__error_callback(rc, "progress") : 0;
}

static int put_body(sealer *s, seal_src *src, seal_sink *k)
{
	const unsigned char *data = NULL;
	bool final = false;
	size_t n = 0;
	int rc, type;

	while (!final) {
		if ((rc = fdn__cancel_check(s->opts->cancel)) != 0)
			return rc;
		if ((rc = src_next(src, s->chunk, &data, &n, &final)) != 0)
			return rc;
		s->payload_bytes += n;
		type = maybe_compress(s, &data, &n);
		if ((rc = put_record(s, k, data, n, type, final)) != 0)
			return rc;
		if ((rc = report(s)) != 0)
			return rc;
	}
	return 0;
}

static int put_trailer(sealer *s, seal_sink *k, const fdn_identity *sender,
	const fdn_buf *header)
{
	unsigned char t[FDN_ENV__TRAILER_BYTES], *msg;
	size_t mlen;
	int rc;

	fdn_env__put_le(t, s->payload_bytes, 8);
	fdn_env__put_le(t + 8, s->body_bytes, 8);
	fdn_env__pipe_finish(s->pipe, t + 16);
	rc = fdn_env__signed_message(&msg, &mlen, (const unsigned char *)header->ptr,
		header->size, t);
	if (rc != 0)
		return rc;
	fdn_identity__sign(t + FDN_ENV__TRAILER_SIGNED, sender, msg, mlen);
	fdn__free(msg);
	memcpy(t + FDN_ENV__TRAILER_SIGNED + FDN_ENV__SIG_BYTES, FDN_ENV__END_MAGIC,
		FDN_ENV__MAGIC_BYTES);
	return sink_put(k, t, sizeof(t));
}

static void sealer_free(sealer *s)
{
	/* The helper thread may still read records in k->buf: stop it first. */
	fdn_env__pipe_free(s->pipe);
	if (s->z_ready)
		deflateEnd(&s->z);
	if (s->shuffled) {
		sodium_memzero(s->shuffled, s->chunk);
		fdn__free(s->shuffled);
	}
	if (s->packed) {
		sodium_memzero(s->packed, s->chunk);
		fdn__free(s->packed);
	}
	sodium_free(s->secret); /* wipes the content key and stream state */
}

/* Checked arguments in, envelope out. */
static int seal(seal_src *src, seal_sink *k, const fdn_identity *sender,
	const fdn_trust *trust, const char *const *recipients, size_t n_recipients,
	const fdn_seal_options *opts, uint64_t total)
{
	fdn_exchange__key *keys = NULL;
	fdn_buf header = FDN_BUF_INIT;
	sealer s;
	size_t nk = 0, bound, slot_bytes;
	int rc;

	memset(&s, 0, sizeof(s));
	s.opts = opts;
	s.total = total;
	s.started = fdn__monotonic_seconds();
	s.chunk = fdn_envelope__test_chunk_size ? fdn_envelope__test_chunk_size
						: FDN_ENV__CHUNK_DEFAULT;
	s.shuffle = opts->compression_level == 0 ? 1 : opts->shuffle ? opts->shuffle : 4;
	if ((rc = resolve(&keys, &nk, sender, trust, recipients, n_recipients)) != 0)
		return rc;
	slot_bytes = FDN_ENV__RECORD_HEAD + FDN_ENV__ABYTES + s.chunk;
	if (!(s.secret = sodium_malloc(sizeof(*s.secret)))) {
		rc = fdn__error_oom();
		goto done;
	}
	crypto_secretstream_xchacha20poly1305_keygen(s.secret->key);
	if ((rc = build_header(&header, &s, sender, keys, nk)) != 0)
		goto done;
	if (!src->mem && !(src->buf = fdn__malloc(s.chunk + 1))) {
		rc = fdn__error_oom();
		goto done;
	}
	if ((rc = compress_setup(&s)) != 0 ||
	    (rc = fdn_env__pipe_new(&s.pipe, k->buf ? 1 : slot_bytes,
			k->buf ? FDN_ENV__SLOTS_MAX : FDN_ENV__SLOTS_STREAM, opts->threads)) != 0)
		goto done;
	/* Records are encrypted straight into a buffer sink: reserve all of it
	 * now so that it never moves while the helper hashes in it. */
	if (k->buf) {
		if ((rc = body_bound(&bound, src->mem_len, s.chunk)) != 0 ||
		    (rc = fdn_buf__grow(k->buf, header.size + bound)) != 0)
			goto done;
		fdn_env__advise_huge(k->buf->ptr, k->buf->reserved);
	}
	if ((rc = sink_put(k, header.ptr, header.size)) != 0 ||
	    (rc = put_body(&s, src, k)) != 0 ||
	    (rc = put_trailer(&s, k, sender, &header)) != 0)
		goto done;
	if (k->buf)
		k->buf->ptr[k->buf->size] = '\0';
done:
	sealer_free(&s);
	if (src->buf) {
		sodium_memzero(src->buf, s.chunk + 1);
		fdn__free(src->buf);
		src->buf = NULL;
	}
	fdn_buf_dispose(&header);
	fdn__free(keys);
	return rc;
}

/* --- the public functions ------------------------------------------------------------- */

int fdn_envelope_seal_stream(fdn_read_cb read, void *read_payload,
	fdn_write_cb write, void *write_payload,
	const fdn_identity *sender, const fdn_trust *trust,
	const char *const *recipients, size_t n_recipients,
	const fdn_seal_options *opts)
{
	seal_src src;
	seal_sink k;
	int rc;

	FDN__CHECK_ARG(read, "read");
	FDN__CHECK_ARG(write, "write");
	if ((rc = check_args(sender, recipients, n_recipients, opts)) != 0)
		return rc;
	memset(&src, 0, sizeof(src));
	memset(&k, 0, sizeof(k));
	src.read = read;
	src.payload = read_payload;
	k.write = write;
	k.payload = write_payload;
	return seal(&src, &k, sender, trust, recipients, n_recipients, opts, 0);
}

int fdn_envelope_seal_buffer(fdn_buf *out, const void *data, size_t len,
	const fdn_identity *sender, const fdn_trust *trust,
	const char *const *recipients, size_t n_recipients,
	const fdn_seal_options *opts)
{
	fdn_buf result = FDN_BUF_INIT;
	seal_src src;
	seal_sink k;
	int rc;

	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(data || len == 0, "data");
	if ((rc = check_args(sender, recipients, n_recipients, opts)) != 0)
		return rc;
	memset(&src, 0, sizeof(src));
	memset(&k, 0, sizeof(k));
	src.mem = data ? data : (const unsigned char *)"";
	src.mem_len = len;
	k.buf = &result;
	rc = seal(&src, &k, sender, trust, recipients, n_recipients, opts, len);
	fdn_buf_dispose(out);
	if (rc != 0) {
		fdn_buf_dispose(&result);
		return rc;
	}
	*out = result;
	return 0;
}

/* --- file descriptors ----------------------------------------------------------------- */

int fdn_envelope_seal_fd(int in_fd, int out_fd,
	const fdn_identity *sender, const fdn_trust *trust,
	const char *const *recipients, size_t n_recipients,
	const fdn_seal_options *opts)
{
	fdn__fd_stream in = { in_fd, "the payload" }, out = { out_fd, "the envelope output" };
	struct stat st;
	uint64_t total = 0;
	off_t start = -1;
	seal_src src;
	seal_sink k;
	int rc;

	if (in_fd < 0 || out_fd < 0)
		return INVALID("fdn_envelope_seal_fd: invalid file descriptor %d",
			in_fd < 0 ? in_fd : out_fd);
	if ((rc = check_args(sender, recipients, n_recipients, opts)) != 0)
		return rc;
	if (fstat(in_fd, &st) == 0 && S_ISREG(st.st_mode))
		total = (uint64_t)st.st_size;
	if (fstat(out_fd, &st) == 0 && S_ISREG(st.st_mode))
		start = lseek(out_fd, 0, SEEK_CUR);
	memset(&src, 0, sizeof(src));
	memset(&k, 0, sizeof(k));
	src.read = fdn__fd_read;
	src.payload = &in;
	k.write = fdn__fd_write;
	k.payload = &out;
	rc = seal(&src, &k, sender, trust, recipients, n_recipients, opts, total);
	if (rc != 0 && start >= 0) {
		/* Leave no partial envelope behind in a regular file. */
		if (ftruncate(out_fd, start) != 0 || lseek(out_fd, start, SEEK_SET) < 0)
			fdn__log(FDN_LOG_WARN, "exchange",
				"cannot truncate the partial envelope output: %s", strerror(errno));
	}
	return rc;
}
