/*
 * Opening envelopes: check the header against the trust store and what
 * the receiver expects, unwrap the content key, decrypt into private
 * staging (a buffer, a temporary file, or the output file itself) while
 * the stored records are hashed, and release the payload only once the
 * final tag, the body hash and the signature have all been checked.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "envelope_private.h"

#define BAD(...) fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_EXCHANGE, __VA_ARGS__)
#define AUTH(...) fdn__error_set(FDN_EAUTH, FDN_ERRCLASS_EXCHANGE, __VA_ARGS__)
#define INVALID(...) fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_EXCHANGE, __VA_ARGS__)

typedef struct open_secret {
	unsigned char key[FDN_ENV__CONTENT_KEY_BYTES];
	crypto_secretstream_xchacha20poly1305_state st;
} open_secret;

/* Where the envelope comes from: memory (used in place) or a callback. */
typedef struct open_src {
	const unsigned char *mem;
	size_t mem_len, off;
	fdn_read_cb read;
	void *payload;
	uint64_t pos; /* bytes consumed */
} open_src;

/* Where unverified plaintext is staged: a private buffer or a file. */
typedef struct stage {
	fdn_buf *buf;
	int fd;
	const char *what;
} stage;

/* What the receiver expects, defaults applied. */
typedef struct expect {
	int kind;
	const char *federation;
	uint64_t round;
	const char *sender;
	int sender_role;
	uint64_t max_payload;
	int64_t when;
	const char *temp_dir;
	unsigned int threads;
	fdn_progress_cb progress;
	void *progress_payload;
	fdn_cancel *cancel;
} expect;

typedef struct opener {
	expect e;
	fdn_env__header h;
	unsigned char *raw; /* header copy when read through a callback */
	open_secret *secret;
	fdn_env__pipe *pipe;
	unsigned char *pt, *inflated; /* plaintext scratch, chunk bytes each */
	z_stream z;
	bool z_ready;
	uint64_t payload_bytes, body_bytes, records, total;
	int compressed;
	double started;
} opener;

static const char *role_name(int role)
{
	return role == FDN_TRUST_ROLE_SITE ? "site"
	     : role == FDN_TRUST_ROLE_COORDINATOR ? "coordinator" : "?";
}

/* --- arguments ---------------------------------------------------------------- */

static int check_args(expect *e, const fdn_identity *me, const fdn_trust *trust,
	const fdn_open_options *o)
{
	int rc;

	if ((rc = fdn__check_init()) != 0)
		return rc;
	FDN__CHECK_ARG(me, "me");
	FDN__CHECK_ARG(trust, "trust");
	if (!o)
		return INVALID("open: options are required (expected kind, federation and round)");
	FDN__CHECK_VERSION(o, FDN_OPEN_OPTIONS_VERSION, "fdn_open_options");
	if (!fdn_envelope_kind_name(o->kind))
		return INVALID("open: invalid expected envelope kind %d", o->kind);
	if (!fdn_env__federation_ok(o->federation))
		return INVALID("open: invalid expected federation id");
	if (o->sender && !fdn_exchange__node_id_ok(o->sender))
		return INVALID("open: invalid expected sender node id");
	if (o->sender_role != 0 && o->sender_role != FDN_TRUST_ROLE_SITE &&
	    o->sender_role != FDN_TRUST_ROLE_COORDINATOR)
		return INVALID("open: invalid expected sender role %d", o->sender_role);
	e->kind = o->kind;
	e->federation = o->federation;
	e->round = o->round;
	e->sender = o->sender;
	e->sender_role = o->sender_role;
	e->max_payload = o->max_payload ? o->max_payload : FDN_ENV__MAX_PAYLOAD_DEFAULT;
	e->when = o->when ? o->when : (int64_t)time(NULL);
	e->temp_dir = o->temp_dir;
	e->threads = o->threads;
	e->progress = o->progress;
	e->progress_payload = o->progress_payload;
	e->cancel = o->cancel;
	return 0;
}

/* --- input ---------------------------------------------------------------------- */

/* Exactly @p n bytes: *out points at them, in memory or copied into @p dst. */
static int src_take(open_src *s, unsigned char *dst, size_t n,
	const unsigned char **out, const char *where)
{
	size_t done = 0, got;
	int rc;

	if (s->mem) {
		if (s->mem_len - s->off < n)
			return BAD("envelope truncated in %s (%zu bytes given, %zu needed)",
				where, s->mem_len, s->off + n);
		*out = s->mem + s->off;
		s->off += n;
		s->pos += n;
		return 0;
	}
	while (done < n) {
		got = 0;
		if ((rc = s->read(dst + done, n - done, &got, s->payload)) != 0)
			return fdn__error_callback(rc, "read");
		if (got > n - done)
			return INVALID("open: the read callback claims %zu bytes, more than the %zu asked",
				got, n - done);
		if (got == 0)
			return BAD("envelope truncated in %s (after byte %llu)", where,
				(unsigned long long)(s->pos + done));
		done += got;
	}
	s->pos += n;
	*out = dst;
	return 0;
}

/* 0 when the input has ended; FDN_EFORMAT when bytes follow. */
static int src_end(open_src *s)
{
	unsigned char extra[1];
	size_t got = 0;
	int rc;

	if (s->mem)
		return s->off == s->mem_len ? 0
			: BAD("%zu trailing bytes after the envelope's end", s->mem_len - s->off);
	if ((rc = s->read(extra, sizeof(extra), &got, s->payload)) != 0)
		return fdn__error_callback(rc, "read");
	return got == 0 ? 0 : BAD("trailing bytes after the envelope's end (byte %llu)",
		(unsigned long long)s->pos);
}

/* --- staging ----------------------------------------------------------------------- */

static int stage_put(stage *st, const unsigned char *data, size_t n)
{
	if (st->buf)
		return fdn_buf__put(st->buf, data, n);
	return fdn__write_all(st->fd, data, n, st->what);
}

/* A file without a name (O_TMPFILE, or created and unlinked at once) in
 * @p dir, $TMPDIR or /tmp, readable only by its owner. */
static int make_temp(int *out, const char *dir)
{
	char path[4096];
	int fd;

	dir = fdn__temp_dir(dir);
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (snprintf(path, sizeof(path), "%s/.fednode-open-XXXXXX", dir) >= (int)sizeof(path))
			return INVALID("temporary folder path too long: '%s'", dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd < 0)
			return fdn__error_os(errno, "cannot create a temporary file in '%s'", dir);
		unlink(path);
	}
	*out = fd;
	return 0;
}

/* --- the checks before decryption ------------------------------------------------ */

static int read_header(opener *op, open_src *src)
{
	const unsigned char *pre, *rest;
	unsigned char buf[FDN_ENV__PREAMBLE_BYTES];
	uint32_t hlen;
	int rc;

	if ((rc = src_take(src, buf, sizeof(buf), &pre, "its preamble")) != 0)
		return rc;
	if ((rc = fdn_env__preamble_parse(&hlen, pre)) != 0)
		return rc;
	if (src->mem) {
		if ((rc = src_take(src, NULL, hlen, &rest, "its header")) != 0)
			return rc;
		return fdn_env__header_parse(&op->h, pre, FDN_ENV__PREAMBLE_BYTES + hlen);
	}
	if (!(op->raw = fdn__malloc(FDN_ENV__PREAMBLE_BYTES + (size_t)hlen)))
		return fdn__error_oom();
	memcpy(op->raw, pre, FDN_ENV__PREAMBLE_BYTES);
	if ((rc = src_take(src, op->raw + FDN_ENV__PREAMBLE_BYTES, hlen, &rest,
			"its header")) != 0)
		return rc;
	return fdn_env__header_parse(&op->h, op->raw, FDN_ENV__PREAMBLE_BYTES + hlen);
}

static int check_sender(opener *op, const fdn_trust *trust)
{
	fdn_trust_peer_info peer = FDN_TRUST_PEER_INFO_INIT;
	const fdn_env__header *h = &op->h;
	char why[512];
	size_t index;
	int rc;

	rc = fdn_trust_find_by_key(&index, trust, h->sender_ed25519, op->e.when);
	if (rc == FDN_ENOTFOUND)
		return AUTH("envelope from '%s': sender not trusted (its signing key is not in the trust store)",
			h->sender);
	if (rc == FDN_EAUTH) {
		snprintf(why, sizeof(why), "%s", fdn_error_last()->message);
		return AUTH("envelope from '%s': sender key expired (%s)", h->sender, why);
	}
	if (rc != 0)
		return rc;
	if ((rc = fdn_trust_peer(&peer, trust, index)) != 0)
		return rc;
	if (strcmp(peer.node_id, h->sender) != 0)
		return AUTH("envelope claims to be from '%s' but is signed with a key of '%s'",
			h->sender, peer.node_id);
	if (op->e.sender && strcmp(op->e.sender, h->sender) != 0)
		return AUTH("envelope is from '%s', expected from '%s'", h->sender, op->e.sender);
	if (op->e.sender_role && peer.role != op->e.sender_role)
		return AUTH("envelope sender '%s' is a %s, expected a %s", h->sender,
			role_name(peer.role), role_name(op->e.sender_role));
	return 0;
}

/* Replay protection: a signed envelope is only ever valid in its place. */
static int check_expected(const opener *op)
{
	const fdn_env__header *h = &op->h;

	if (h->kind != op->e.kind)
		return AUTH("replay: expected a '%s' envelope, found a '%s' envelope",
			fdn_envelope_kind_name(op->e.kind), fdn_envelope_kind_name(h->kind));
	if (strcmp(h->federation, op->e.federation) != 0)
		return AUTH("replay: expected federation '%s', found federation '%s'",
			op->e.federation, h->federation);
	if (h->round != op->e.round)
		return AUTH("replay: expected round %llu, found round %llu",
			(unsigned long long)op->e.round, (unsigned long long)h->round);
	return 0;
}

static int unwrap(opener *op, const fdn_identity *me)
{
	unsigned char mine[FDN_EXCHANGE__KEY_ID_BYTES];
	char fp[FDN_EXCHANGE__FINGERPRINT_SIZE];
	const unsigned char *r = op->h.recipients;
	unsigned int i;

	fdn_exchange__key_id(mine, fdn_identity__ed25519_public(me),
		fdn_identity__x25519_public(me));
	for (i = 0; i < op->h.n_recipients; i++, r += FDN_ENV__RECIPIENT_BYTES)
		if (memcmp(r, mine, sizeof(mine)) == 0)
			break;
	if (i == op->h.n_recipients) {
		fdn_exchange__fingerprint(fp, fdn_identity__ed25519_public(me),
			fdn_identity__x25519_public(me));
		return AUTH("envelope not addressed to this node ('%s', key %s)",
			fdn_identity_node_id(me), fp);
	}
	if (!(op->secret = sodium_malloc(sizeof(*op->secret))))
		return fdn__error_oom();
	if (fdn_identity__unseal(op->secret->key, r + FDN_EXCHANGE__KEY_ID_BYTES,
			FDN_ENV__WRAP_BYTES, me) != 0)
		return AUTH("the content key wrapped for this node does not open: the envelope was altered");
	if (crypto_secretstream_xchacha20poly1305_init_pull(&op->secret->st, op->h.ss_header,
			op->secret->key) != 0)
		return AUTH("invalid secretstream header: the envelope was altered");
	return 0;
}

/* --- the body ----------------------------------------------------------------------- */

static int setup_body(opener *op, bool need_slots)
{
	size_t chunk = op->h.chunk_size;

	if (!(op->pt = fdn__malloc(chunk)))
		return fdn__error_oom();
	if (op->h.flags & FDN_ENV__FLAG_COMPRESS) {
		if (!(op->inflated = fdn__malloc(chunk)))
			return fdn__error_oom();
		fdn_env__zalloc_setup(&op->z);
		if (inflateInit2(&op->z, -15) != Z_OK)
			return fdn__error_oom();
		op->z_ready = true;
	}
	return fdn_env__pipe_new(&op->pipe,
		need_slots ? FDN_ENV__RECORD_HEAD + FDN_ENV__ABYTES + chunk : 1,
		need_slots ? FDN_ENV__SLOTS_STREAM : FDN_ENV__SLOTS_MAX, op->e.threads);
}

static int too_large(const opener *op)
{
	return BAD("payload larger than the %llu bytes accepted (max_payload)",
		(unsigned long long)op->e.max_payload);
}

/* Inflates op->pt (@p n bytes) and unshuffles; sets *data and *n. */
static int inflate_record(opener *op, stage *st, const unsigned char **data, size_t *n)
{
	size_t chunk = op->h.chunk_size;
	unsigned char *dst;
	int zrc, rc;

	inflateReset(&op->z);
	op->z.next_in = op->pt;
	op->z.avail_in = (uInt)*n;
	op->z.next_out = op->inflated;
	op->z.avail_out = (uInt)chunk;
	zrc = inflate(&op->z, Z_FINISH);
	if (zrc != Z_STREAM_END || op->z.avail_in != 0)
		return BAD("record %llu: compressed data is invalid or inflates past the chunk size",
			(unsigned long long)op->records);
	*n = chunk - op->z.avail_out;
	if (*n > op->e.max_payload - op->payload_bytes)
		return too_large(op);
	if (op->h.shuffle == 1) {
		*data = op->inflated;
		return 0;
	}
	dst = op->pt;
	if (st->buf) {
		if ((rc = fdn_buf__grow(st->buf, *n)) != 0)
			return rc;
		dst = (unsigned char *)st->buf->ptr + st->buf->size;
	}
	fdn_env__unshuffle(dst, op->inflated, *n, op->h.shuffle);
	*data = dst;
	return 0;
}

static int report(const opener *op)
{
	fdn_progress p;
	int rc;

	if (!op->e.progress)
		return 0;
	memset(&p, 0, sizeof(p));
	p.version = FDN_PROGRESS_VERSION;
	p.stage = "open";
	p.items_done = op->records;
	p.bytes_done = op->payload_bytes;
	p.elapsed = fdn__monotonic_seconds() - op->started;
	rc = op->e.progress(&p, op->e.progress_payload);
	return rc ? fdn__error_callback(rc, "progress") : 0;
}

/* One record: read, queue for hashing, decrypt, decompress, stage. */
static int read_record(opener *op, open_src *src, stage *st, bool *final)
{
	size_t chunk = op->h.chunk_size, n;
	unsigned char *slot = fdn_env__pipe_next(op->pipe), *dst, tag = 0;
	const unsigned char *head, *ct, *data;
	unsigned long long rec = op->records;
	uint64_t clen;
	int type, rc;

	if ((rc = src_take(src, slot, FDN_ENV__RECORD_HEAD, &head, "a record header")) != 0)
		return rc;
	clen = fdn_env__get_le(head, 4);
	type = head[4];
	if (clen < FDN_ENV__ABYTES || clen > (uint64_t)chunk + FDN_ENV__ABYTES)
		return BAD("record %llu: length %llu outside %d..%llu", rec,
			(unsigned long long)clen, FDN_ENV__ABYTES,
			(unsigned long long)chunk + FDN_ENV__ABYTES);
	if (type != FDN_ENV__REC_STORED &&
	    (type != FDN_ENV__REC_DEFLATE || !(op->h.flags & FDN_ENV__FLAG_COMPRESS)))
		return BAD("record %llu: invalid record type %d", rec, type);
	n = (size_t)clen - FDN_ENV__ABYTES;
	if (type == FDN_ENV__REC_STORED && n > op->e.max_payload - op->payload_bytes)
		return too_large(op);
	if ((rc = src_take(src, slot + FDN_ENV__RECORD_HEAD, (size_t)clen, &ct,
			"a record")) != 0)
		return rc;
	fdn_env__pipe_submit(op->pipe, head, FDN_ENV__RECORD_HEAD + (size_t)clen);
	op->body_bytes += FDN_ENV__RECORD_HEAD + clen;
	dst = op->pt;
	if (type == FDN_ENV__REC_STORED && st->buf) {
		/* Straight into the private buffer: no copy. */
		if ((rc = fdn_buf__grow(st->buf, n)) != 0)
			return rc;
		dst = (unsigned char *)st->buf->ptr + st->buf->size;
	}
	if (crypto_secretstream_xchacha20poly1305_pull(&op->secret->st, dst, NULL, &tag,
			ct, clen, head, FDN_ENV__RECORD_HEAD) != 0)
		return AUTH("record %llu does not authenticate: the envelope was altered", rec);
	*final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
	if (!*final && tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
		return BAD("record %llu: unexpected secretstream tag %u", rec, tag);
	data = dst;
	if (type == FDN_ENV__REC_DEFLATE) {
		op->compressed = 1;
		if ((rc = inflate_record(op, st, &data, &n)) != 0)
			return rc;
	}
	if (!*final && n != chunk)
		return BAD("record %llu holds %zu bytes, not the chunk size %zu", rec, n, chunk);
	if (st->buf && data == (const unsigned char *)st->buf->ptr + st->buf->size) {
		st->buf->size += n;
		st->buf->ptr[st->buf->size] = '\0';
	} else if ((rc = stage_put(st, data, n)) != 0) {
		return rc;
	}
	op->payload_bytes += n;
	op->records++;
	return report(op);
}

static int check_trailer(opener *op, open_src *src)
{
	unsigned char buf[FDN_ENV__TRAILER_BYTES], hash[FDN_ENV__HASH_BYTES], *msg;
	const unsigned char *t;
	size_t mlen;
	int rc, bad;

	if ((rc = src_take(src, buf, sizeof(buf), &t, "its trailer")) != 0)
		return rc;
	if (memcmp(t + FDN_ENV__TRAILER_BYTES - FDN_ENV__MAGIC_BYTES, FDN_ENV__END_MAGIC,
			FDN_ENV__MAGIC_BYTES) != 0)
		return BAD("envelope trailer does not end with the end magic \"ENDF\"");
	if ((rc = src_end(src)) != 0)
		return rc;
	fdn_env__pipe_finish(op->pipe, hash);
	if ((rc = fdn_env__signed_message(&msg, &mlen, op->h.raw, op->h.raw_len, t)) != 0)
		return rc;
	bad = crypto_sign_verify_detached(t + FDN_ENV__TRAILER_SIGNED, msg, mlen,
		op->h.sender_ed25519);
	fdn__free(msg);
	if (bad)
		return AUTH("the signature of '%s' does not verify: the envelope was altered",
			op->h.sender);
	if (sodium_memcmp(hash, t + 16, FDN_ENV__HASH_BYTES) != 0)
		return AUTH("the stored records do not match the signed body hash: the envelope was altered");
	if (fdn_env__get_le(t, 8) != op->payload_bytes || fdn_env__get_le(t + 8, 8) != op->body_bytes)
		return AUTH("the signed sizes (%llu payload, %llu body bytes) do not match the envelope",
			(unsigned long long)fdn_env__get_le(t, 8),
			(unsigned long long)fdn_env__get_le(t + 8, 8));
	return 0;
}

static void fill_info(fdn_envelope_info *info, const opener *op, uint64_t stored)
{
	if (!info)
		return;
	info->kind = op->h.kind;
	info->round = op->h.round;
	memcpy(info->federation, op->h.federation, sizeof(info->federation));
	memcpy(info->sender, op->h.sender, sizeof(info->sender));
	memcpy(info->sender_ed25519, op->h.sender_ed25519, FDN_PUBLIC_KEY_BYTES);
	info->payload_bytes = op->payload_bytes;
	info->stored_bytes = stored;
	info->recipients = op->h.n_recipients;
	info->compressed = op->compressed;
}

static void opener_free(opener *op)
{
	fdn_env__pipe_free(op->pipe);
	if (op->z_ready)
		inflateEnd(&op->z);
	if (op->pt) {
		sodium_memzero(op->pt, op->h.chunk_size);
		fdn__free(op->pt);
	}
	if (op->inflated) {
		sodium_memzero(op->inflated, op->h.chunk_size);
		fdn__free(op->inflated);
	}
	sodium_free(op->secret);
	fdn__free(op->raw);
}

/* Checked arguments in; the verified payload staged in @p st. */
static int open_core(fdn_envelope_info *info, const expect *e, open_src *src, stage *st,
	const fdn_identity *me, const fdn_trust *trust)
{
	opener op;
	bool final = false;
	int rc;

	memset(&op, 0, sizeof(op));
	op.e = *e;
	op.started = fdn__monotonic_seconds();
	if ((rc = read_header(&op, src)) != 0 ||
	    (rc = check_sender(&op, trust)) != 0 ||
	    (rc = check_expected(&op)) != 0 ||
	    (rc = unwrap(&op, me)) != 0 ||
	    (rc = setup_body(&op, !src->mem)) != 0)
		goto done;
	while (!final) {
		if ((rc = fdn__cancel_check(op.e.cancel)) != 0 ||
		    (rc = read_record(&op, src, st, &final)) != 0)
			goto done;
	}
	if ((rc = check_trailer(&op, src)) != 0)
		goto done;
	fill_info(info, &op, src->pos);
done:
	opener_free(&op);
	return rc;
}

static int check_info(fdn_envelope_info *info)
{
	FDN__CHECK_VERSION(info, FDN_ENVELOPE_INFO_VERSION, "fdn_envelope_info");
	return 0;
}

/* --- delivery from a temporary file ------------------------------------------------- */

/* Copies the verified payload staged in @p fd to @p write or @p out_fd. */
static int deliver(int fd, fdn_write_cb write, void *payload, int out_fd)
{
	unsigned char *buf = fdn__malloc(FDN_ENV__CHUNK_DEFAULT);
	ssize_t n;
	int rc = 0;

	if (!buf)
		return fdn__error_oom();
	if (lseek(fd, 0, SEEK_SET) < 0)
		rc = fdn__error_os(errno, "cannot rewind the temporary payload file");
	while (rc == 0) {
		n = read(fd, buf, FDN_ENV__CHUNK_DEFAULT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = fdn__error_os(errno, "cannot read the temporary payload file");
			break;
		}
		if (n == 0)
			break;
		if (write) {
			int wrc = write(buf, (size_t)n, payload);
			if (wrc)
				rc = fdn__error_callback(wrc, "write");
		} else {
			rc = fdn__write_all(out_fd, buf, (size_t)n, "envelope payload output");
		}
	}
	sodium_memzero(buf, FDN_ENV__CHUNK_DEFAULT);
	fdn__free(buf);
	return rc;
}

/* open_core into a nameless temporary file, then delivery. */
static int open_via_temp(fdn_envelope_info *info, const expect *e, open_src *src,
	fdn_write_cb write, void *payload, int out_fd,
	const fdn_identity *me, const fdn_trust *trust)
{
	stage st = { NULL, -1, "temporary payload file" };
	int rc;

	if ((rc = make_temp(&st.fd, e->temp_dir)) != 0)
		return rc;
	rc = open_core(info, e, src, &st, me, trust);
	if (rc == 0)
		rc = deliver(st.fd, write, payload, out_fd);
	/* Drop the plaintext blocks now rather than at close. */
	if (ftruncate(st.fd, 0) != 0)
		fdn__log(FDN_LOG_DEBUG, "exchange", "cannot truncate the temporary payload file");
	close(st.fd);
	return rc;
}

/* --- the public functions ------------------------------------------------------------- */

int fdn_envelope_open_stream(fdn_envelope_info *info,
	fdn_read_cb read, void *read_payload,
	fdn_write_cb write, void *write_payload,
	const fdn_identity *me, const fdn_trust *trust,
	const fdn_open_options *opts)
{
	open_src src;
	expect e;
	int rc;

	FDN__CHECK_ARG(read, "read");
	FDN__CHECK_ARG(write, "write");
	if ((rc = check_info(info)) != 0 || (rc = check_args(&e, me, trust, opts)) != 0)
		return rc;
	memset(&src, 0, sizeof(src));
	src.read = read;
	src.payload = read_payload;
	return open_via_temp(info, &e, &src, write, write_payload, -1, me, trust);
}

/* A regular file opened for writing, at offset 0: decrypted into directly. */
static bool direct_target(int fd)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && (fl & O_ACCMODE) != O_RDONLY && !(fl & O_APPEND) &&
	       fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && lseek(fd, 0, SEEK_CUR) == 0;
}

int fdn_envelope_open_fd(fdn_envelope_info *info, int in_fd, int out_fd,
	const fdn_identity *me, const fdn_trust *trust,
	const fdn_open_options *opts)
{
	fdn__fd_stream in = { in_fd, "the envelope" };
	stage st = { NULL, out_fd, "envelope payload output" };
	open_src src;
	expect e;
	int rc;

	if (in_fd < 0 || out_fd < 0)
		return INVALID("fdn_envelope_open_fd: invalid file descriptor %d",
			in_fd < 0 ? in_fd : out_fd);
	if ((rc = check_info(info)) != 0 || (rc = check_args(&e, me, trust, opts)) != 0)
		return rc;
	memset(&src, 0, sizeof(src));
	src.read = fdn__fd_read;
	src.payload = &in;
	if (!direct_target(out_fd))
		return open_via_temp(info, &e, &src, NULL, NULL, out_fd, me, trust);
	if (ftruncate(out_fd, 0) != 0)
		return fdn__error_os(errno, "cannot truncate the envelope payload output");
	rc = open_core(info, &e, &src, &st, me, trust);
	if (rc != 0 && (ftruncate(out_fd, 0) != 0 || lseek(out_fd, 0, SEEK_SET) < 0))
		fdn__log(FDN_LOG_ERROR, "exchange",
			"cannot truncate the output of a rejected envelope: %s", strerror(errno));
	return rc;
}

int fdn_envelope_open_file(fdn_envelope_info *info,
	const char *in_path, const char *out_path,
	const fdn_identity *me, const fdn_trust *trust,
	const fdn_open_options *opts)
{
	fdn__fd_stream in = { -1, NULL };
	fdn_atomic_file af;
	stage st;
	open_src src;
	expect e;
	int rc;

	FDN__CHECK_ARG(in_path, "in_path");
	FDN__CHECK_ARG(out_path, "out_path");
	if ((rc = check_info(info)) != 0 || (rc = check_args(&e, me, trust, opts)) != 0)
		return rc;
	in.fd = open(in_path, O_RDONLY | O_CLOEXEC);
	if (in.fd < 0) {
		if (errno == ENOENT)
			return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_EXCHANGE,
				"no envelope file '%s'", in_path);
		return fdn__error_os(errno, "cannot open envelope '%s'", in_path);
	}
	in.what = in_path;
	/* The payload (a model trained on patient data) is for its owner only. */
	if ((rc = fdn__atomic_open_mode(&af, out_path, 0600)) != 0) {
		close(in.fd);
		return rc;
	}
	memset(&src, 0, sizeof(src));
	src.read = fdn__fd_read;
	src.payload = &in;
	st.buf = NULL;
	st.fd = af.fd;
	st.what = af.tmp_path;
	rc = open_core(info, &e, &src, &st, me, trust);
	if (rc == 0)
		rc = fdn__atomic_commit(&af);
	else
		fdn__atomic_abort(&af);
	close(in.fd);
	return rc;
}

int fdn_envelope_open_buffer(fdn_envelope_info *info, fdn_buf *out,
	const void *data, size_t len,
	const fdn_identity *me, const fdn_trust *trust,
	const fdn_open_options *opts)
{
	fdn_buf staged = FDN_BUF_INIT;
	stage st = { &staged, -1, "payload buffer" };
	open_src src;
	expect e;
	int rc;

	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(data || len == 0, "data");
	if ((rc = check_info(info)) != 0 || (rc = check_args(&e, me, trust, opts)) != 0)
		return rc;
	fdn_buf_dispose(out);
	memset(&src, 0, sizeof(src));
	src.mem = data ? data : (const unsigned char *)"";
	src.mem_len = len;
	/* Stored records are never larger than the envelope: one allocation
	 * unless the payload was compressed. */
	rc = fdn_buf__grow(&staged, (uint64_t)len < e.max_payload ? len : (size_t)e.max_payload);
	if (rc == 0) {
		fdn_env__advise_huge(staged.ptr, staged.reserved);
		rc = open_core(info, &e, &src, &st, me, trust);
	}
	if (rc != 0) {
		if (staged.ptr)
			sodium_memzero(staged.ptr, staged.reserved);
		fdn_buf_dispose(&staged);
		return rc;
	}
	*out = staged;
	return 0;
}
