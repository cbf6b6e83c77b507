/*
 * libfednode: one round's aggregation.
 *
 * The streaming strategies keep one double per parameter, S = Σ n_k u_k
 * over the updates u_k as sent (weights or deltas), plus N = Σ n_k and
 * N_W = Σ n_k over the updates sent as weights.  Since x_k = x_t + d_k,
 * Σ n_k d_k = S − N_W·x_t, so one sum serves both forms, mixed or not,
 * and an update costs one pass over its data and the sums.
 *
 * An update is checked whole (names, dtypes, shapes, then every value
 * finite) before anything of it is folded in: a rejected update leaves
 * the sums untouched without a scratch copy of the model.  For a file
 * that means reading it twice (see doc/federated.md for the cost).
 *
 * The robust strategies keep each update's bytes as sent and compute the
 * next model coordinate by coordinate at the end.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fedavg/fedavg_private.h"
#include "model/model_private.h"

/* Bytes read from an update file (or gathered for the output file) at a
 * time: small enough to stay in L2 between the read and the fold. */
#define CHUNK_BYTES ((size_t)512 * 1024)
/* Coordinates computed at a time when finishing. */
#define BLOCK 2048
#define ROBUST_BLOCK 256

#define STATE_KEY_STRATEGY "fednode.strategy"
#define STATE_KEY_ROUNDS "fednode.rounds"

/* What the aggregator knows of one tensor of the global model. */
typedef struct agg_tensor {
	const fdn_model__tensor *g;   /* in the global model */
	size_t count;                 /* elements */
	size_t esize;                 /* bytes per element */
	size_t offset;                /* in the model's data, for kept updates */
	const fdn_model__tensor *m, *v;  /* in the input state, or NULL */
	int state_dtype;              /* of the tensors the new state gets */
} agg_tensor;

struct fdn_aggregator {
	fdn_strategy_options opts;    /* resolved: no zeros left */
	const fdn_model *global;
	size_t ntensors;
	agg_tensor *t;
	size_t data_bytes;            /* Σ tensor bytes */
	uint64_t rounds;              /* rounds the input state has seen */
	size_t count;                 /* updates folded in */
	bool finished;
	bool broken;                  /* sums may hold part of a rejected update */

	/* streaming strategies */
	double **sums;                /* per tensor; valid once count > 0 */
	double total, weights_total;  /* N and N_W */

	/* robust strategies */
	unsigned char **kept;         /* count blocks of data_bytes */
	unsigned char *kept_form;
	size_t kept_cap;

	unsigned char *chunk;         /* CHUNK_BYTES, on first use */
};

#define FAIL(...) fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG, __VA_ARGS__)

static bool float_dtype(int dtype)
{
	return dtype == FDN_DTYPE_F16 || dtype == FDN_DTYPE_BF16 ||
		dtype == FDN_DTYPE_F32 || dtype == FDN_DTYPE_F64;
}

/* The optimizer state keeps binary32 moments (enough for them, and half
 * the memory) except for binary64 tensors, whose moments stay binary64. */
static int state_dtype_for(int dtype)
{
	return dtype == FDN_DTYPE_F64 ? FDN_DTYPE_F64 : FDN_DTYPE_F32;
}

static bool same_shape(const fdn_model__tensor *a, const fdn_model__tensor *b)
{
	return a->ndim == b->ndim &&
		memcmp(a->shape, b->shape, a->ndim * sizeof(a->shape[0])) == 0;
}

/* "[2, 3]" for messages. */
static const char *shape_str(char *buf, size_t size, const fdn_model__tensor *t)
{
	size_t n = 0;

	n += (size_t)snprintf(buf, size, "[");
	for (size_t i = 0; i < t->ndim && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%" PRIu64, i ? ", " : "",
			t->shape[i]);
	if (n < size)
		snprintf(buf + n, size - n, "]");
	return buf;
}

/* --- the state ------------------------------------------------------------ */

/* "m/<name>" or "v/<name>"? */
static bool slot_name(const char *s, char slot, const char *name)
{
	return s[0] == slot && s[1] == '/' && strcmp(s + 2, name) == 0;
}

static int parse_rounds(uint64_t *out, const char *s)
{
	uint64_t v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* Every value finite and, for v, not negative. */
static int check_state_values(const fdn_model__tensor *st, bool nonneg)
{
	size_t es = fdn_dtype_size(st->dtype), n = st->nbytes / es, bad;
	double buf[256];

	if ((bad = fdn_fedavg__find_nonfinite(st->data, st->dtype, n)) < n)
		return FAIL("state: tensor '%.200s': %s at index %zu", st->name,
			"NaN or infinity", bad);
	for (size_t a = 0; nonneg && a < n; a += 256) {
		size_t k = n - a < 256 ? n - a : 256;

		fdn_fedavg__load(buf, (const unsigned char *)st->data + a * es,
			st->dtype, k);
		for (size_t j = 0; j < k; j++)
			if (buf[j] < 0)
				return FAIL("state: tensor '%.200s': negative second moment at index %zu",
					st->name, a + j);
	}
	return 0;
}

static int attach_state(fdn_aggregator *agg, const fdn_model *state)
{
	int strategy = agg->opts.strategy;
	const char *sname = fdn_strategy_name(strategy), *val;
	size_t slots = (size_t)fdn_fedavg__has_m(strategy) + fdn_fedavg__has_v(strategy);
	size_t k = 0;
	int rc;

	if (slots == 0)
		return FAIL("strategy %s keeps no state, but a state was given", sname);
	if (fdn_model_get_metadata(&val, state, STATE_KEY_STRATEGY) < 0)
		return FAIL("state: no metadata %s: not an aggregator's state",
			STATE_KEY_STRATEGY);
	if (strcmp(val, sname) != 0)
		return FAIL("state: a state of strategy '%.64s', not of %s", val, sname);
	if (fdn_model_get_metadata(&val, state, STATE_KEY_ROUNDS) < 0 ||
	    parse_rounds(&agg->rounds, val) < 0)
		return FAIL("state: metadata %s is missing or not a round count",
			STATE_KEY_ROUNDS);
	if (state->ntensors != agg->ntensors * slots)
		return FAIL("state: %zu tensors, but %zu were expected (%zu per tensor of the global model)",
			state->ntensors, agg->ntensors * slots, slots);
	for (size_t i = 0; i < agg->ntensors; i++) {
		agg_tensor *t = &agg->t[i];

		for (int s = 0; s < 2; s++) {
			char slot = s ? 'v' : 'm';
			const fdn_model__tensor *st;

			if (s ? !fdn_fedavg__has_v(strategy) : !fdn_fedavg__has_m(strategy))
				continue;
			st = &state->tensors[k++];
			if (!slot_name(st->name, slot, t->g->name))
				return FAIL("state: tensor %zu is '%.200s', expected '%c/%.200s'",
					k - 1, st->name, slot, t->g->name);
			if (st->dtype != FDN_DTYPE_F32 && st->dtype != FDN_DTYPE_F64)
				return FAIL("state: tensor '%.200s': dtype %s (F32 or F64 expected)",
					st->name, fdn_dtype_name(st->dtype));
			if (!same_shape(st, t->g))
				return FAIL("state: tensor '%.200s': shape differs from the global model's",
					st->name);
			if ((rc = check_state_values(st, s == 1)) < 0)
				return rc;
			*(s ? &t->v : &t->m) = st;
		}
	}
	return 0;
}

/* --- creation --------------------------------------------------------------- */

static int setup_tensors(fdn_aggregator *agg)
{
	const fdn_model *g = agg->global;

	if (!(agg->t = fdn__calloc(g->ntensors ? g->ntensors : 1, sizeof(*agg->t))))
		return fdn__error_oom();
	agg->ntensors = g->ntensors;
	for (size_t i = 0; i < g->ntensors; i++) {
		agg_tensor *t = &agg->t[i];

		t->g = &g->tensors[i];
		if (!float_dtype(t->g->dtype))
			return FAIL("global model: tensor '%.200s': dtype %s cannot be aggregated "
				"(F32, F64, F16 or BF16)", t->g->name, fdn_dtype_name(t->g->dtype));
		t->esize = fdn_dtype_size(t->g->dtype);
		t->count = t->g->nbytes / t->esize;
		t->offset = agg->data_bytes;
		t->state_dtype = state_dtype_for(t->g->dtype);
		if (fdn__add_overflow(agg->data_bytes, t->g->nbytes, &agg->data_bytes))
			return FAIL("global model: too large");
	}
	return 0;
}

static int alloc_sums(fdn_aggregator *agg)
{
	if (!(agg->sums = fdn__calloc(agg->ntensors ? agg->ntensors : 1, sizeof(*agg->sums))))
		return fdn__error_oom();
	for (size_t i = 0; i < agg->ntensors; i++) {
		if (!agg->t[i].count)
			continue;
		/* count * 8 cannot overflow: the tensor's own bytes did not,
		 * and a double is at most 4x an element. */
		if (!(agg->sums[i] = fdn__malloc(agg->t[i].count * sizeof(double))))
			return fdn__error_oom();
	}
	return 0;
}

int fdn_aggregator_new(fdn_aggregator **out, const fdn_model *global,
	const fdn_model *state, const fdn_strategy_options *opts)
{
	fdn_aggregator *agg;
	int rc;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	FDN__CHECK_ARG(global, "global");
	if ((rc = fdn__check_init()) < 0)
		return rc;
	if (!(agg = fdn__calloc(1, sizeof(*agg))))
		return fdn__error_oom();
	agg->global = global;
	if ((rc = fdn_fedavg__resolve_options(&agg->opts, opts)) < 0 ||
	    (rc = setup_tensors(agg)) < 0 ||
	    (state && (rc = attach_state(agg, state)) < 0) ||
	    (!fdn_fedavg__is_robust(agg->opts.strategy) && (rc = alloc_sums(agg)) < 0)) {
		fdn_aggregator_free(agg);
		return rc;
	}
	*out = agg;
	return 0;
}

void fdn_aggregator_free(fdn_aggregator *agg)
{
	if (!agg)
		return;
	for (size_t i = 0; agg->sums && i < agg->ntensors; i++)
		fdn__free(agg->sums[i]);
	fdn__free(agg->sums);
	for (size_t k = 0; k < agg->count && agg->kept; k++)
		fdn__free(agg->kept[k]);
	fdn__free(agg->kept);
	fdn__free(agg->kept_form);
	fdn__free(agg->chunk);
	fdn__free(agg->t);
	fdn__free(agg);
}

size_t fdn_aggregator_count(const fdn_aggregator *agg)
{
	return agg ? agg->count : 0;
}

/* --- checks shared by add and add_file ------------------------------------- */

static int check_call(fdn_aggregator *agg, double weight, int form)
{
	if (agg->finished)
		return FAIL("the aggregator is finished: it takes no more updates");
	if (agg->broken)
		return FAIL("the aggregator is unusable: an update file changed while it was folded in");
	if (!(weight > 0) || !isfinite(weight) || !isfinite(agg->total + weight))
		return FAIL("update weight %g: must be a positive finite number", weight);
	if (form != FDN_UPDATE_WEIGHTS && form != FDN_UPDATE_DELTA)
		return FAIL("update form %d: must be FDN_UPDATE_WEIGHTS or FDN_UPDATE_DELTA",
			form);
	return 0;
}

/* Same tensors in the same order, dtypes and shapes as the global model. */
static int check_layout(const fdn_aggregator *agg, const fdn_model *u, const char *src)
{
	char s1[200], s2[200];

	for (size_t i = 0; i < agg->ntensors && i < u->ntensors; i++) {
		const fdn_model__tensor *g = agg->t[i].g, *x = &u->tensors[i];

		if (strcmp(g->name, x->name) != 0)
			return FAIL("%s: tensor %zu is '%.200s' where the global model has '%.200s'",
				src, i, x->name, g->name);
		if (g->dtype != x->dtype)
			return FAIL("%s: tensor '%.200s': dtype %s, the global model's is %s",
				src, x->name, fdn_dtype_name(x->dtype), fdn_dtype_name(g->dtype));
		if (!same_shape(g, x))
			return FAIL("%s: tensor '%.200s': shape %s, the global model's is %s",
				src, x->name, shape_str(s1, sizeof(s1), x),
				shape_str(s2, sizeof(s2), g));
	}
	if (u->ntensors != agg->ntensors)
		return FAIL("%s: %zu tensors where the global model has %zu%s'%.200s'", src,
			u->ntensors, agg->ntensors,
			u->ntensors > agg->ntensors ? "; first extra: " : "; first missing: ",
			u->ntensors > agg->ntensors ? u->tensors[agg->ntensors].name
						    : agg->t[u->ntensors].g->name);
	return 0;
}

static int nonfinite_error(const char *src, const agg_tensor *t,
	const unsigned char *elem, size_t index)
{
	double v;

	fdn_fedavg__load(&v, elem, t->g->dtype, 1);
	return FAIL("%s: tensor '%.200s': %s at index %zu", src, t->g->name,
		isnan(v) ? "NaN" : "infinity", index);
}

/* Elements [first, first + n) of tensor @p i, at @p p: all finite? */
static int check_values(const agg_tensor *t, const unsigned char *p, size_t first,
	size_t n, const char *src)
{
	size_t bad = fdn_fedavg__find_nonfinite(p, t->g->dtype, n);

	return bad < n ? nonfinite_error(src, t, p + bad * t->esize, first + bad) : 0;
}

static void commit_weight(fdn_aggregator *agg, double weight, int form)
{
	agg->total += weight;
	if (form == FDN_UPDATE_WEIGHTS)
		agg->weights_total += weight;
	agg->count++;
}

/* Room for one more kept update. */
static int kept_reserve(fdn_aggregator *agg)
{
	void *p;
	size_t cap;

	if (agg->count < agg->kept_cap)
		return 0;
	cap = agg->kept_cap ? agg->kept_cap * 2 : 8;
	if (!(p = fdn__reallocarray(agg->kept, cap, sizeof(*agg->kept))))
		return fdn__error_oom();
	agg->kept = p;
	if (!(p = fdn__realloc(agg->kept_form, cap)))
		return fdn__error_oom();
	agg->kept_form = p;
	agg->kept_cap = cap;
	return 0;
}

/* --- fdn_aggregator_add ------------------------------------------------------ */

int fdn_aggregator_add(fdn_aggregator *agg, const fdn_model *update,
	double weight, int form)
{
	bool robust;
	unsigned char *block = NULL;
	int rc;

	FDN__CHECK_ARG(agg, "agg");
	FDN__CHECK_ARG(update, "update");
	if ((rc = check_call(agg, weight, form)) < 0 ||
	    (rc = check_layout(agg, update, "update")) < 0)
		return rc;
	/* Every value first: nothing is folded unless all are finite. */
	for (size_t i = 0; i < agg->ntensors; i++)
		if ((rc = check_values(&agg->t[i], update->tensors[i].data, 0,
				agg->t[i].count, "update")) < 0)
			return rc;
	robust = fdn_fedavg__is_robust(agg->opts.strategy);
	if (robust) {
		if ((rc = kept_reserve(agg)) < 0)
			return rc;
		if (!(block = fdn__malloc(agg->data_bytes ? agg->data_bytes : 1)))
			return fdn__error_oom();
	}
	for (size_t i = 0; i < agg->ntensors; i++) {
		const agg_tensor *t = &agg->t[i];

		if (!t->count)
			continue;
		if (robust)
			memcpy(block + t->offset, update->tensors[i].data, t->g->nbytes);
		else
			fdn_fedavg__fold(agg->sums[i], update->tensors[i].data,
				t->g->dtype, t->count, weight, agg->count == 0);
	}
	if (robust) {
		agg->kept[agg->count] = block;
		agg->kept_form[agg->count] = (unsigned char)form;
	}
	commit_weight(agg, weight, form);
	return 0;
}

/* --- fdn_aggregator_add_file ------------------------------------------------- */

typedef struct stream {
	fdn_aggregator *agg;
	int fd;
	const char *path;
	uint64_t data_start;
} stream;

/* Called on each run of whole elements of one tensor, in order. */
typedef int (*span_fn)(void *ctx, const agg_tensor *t, size_t ti, size_t first,
	const unsigned char *p, size_t n);

/* Reads the data section in CHUNK_BYTES pieces and hands every element
 * over exactly once, in model order.  An element cut by a chunk boundary
 * is carried to the front of the next chunk, so any tensor alignment in
 * the file works. */
static int stream_data(const stream *s, span_fn fn, void *ctx)
{
	fdn_aggregator *agg = s->agg;
	unsigned char *buf = agg->chunk;
	size_t have = 0, ti = 0, te = 0;
	uint64_t next = 0;
	int rc;

	for (;;) {
		size_t off = 0;

		while (ti < agg->ntensors) {
			const agg_tensor *t = &agg->t[ti];
			size_t k;

			if (te == t->count) {
				ti++;
				te = 0;
				continue;
			}
			k = (have - off) / t->esize;
			if (k == 0)
				break;
			if (k > t->count - te)
				k = t->count - te;
			if ((rc = fn(ctx, t, ti, te, buf + off, k)) < 0)
				return rc;
			off += k * t->esize;
			te += k;
		}
		if (ti == agg->ntensors)
			return 0;
		memmove(buf, buf + off, have - off);
		have -= off;
		{
			size_t want = CHUNK_BYTES - have, got;

			if (want > agg->data_bytes - next)
				want = (size_t)(agg->data_bytes - next);
			if ((rc = fdn__pread_all(s->fd, buf + have, want,
					s->data_start + next, &got, s->path)) < 0)
				return rc;
			if (got == 0 || got != want)
				return fdn__error_set(FDN_EIO, FDN_ERRCLASS_FEDAVG,
					"%s: the file shrank while it was read", s->path);
			have += got;
			next += got;
		}
	}
}

static int span_check(void *ctx, const agg_tensor *t, size_t ti, size_t first,
	const unsigned char *p, size_t n)
{
	const stream *s = ctx;

	(void)ti;
	return check_values(t, p, first, n, s->path);
}

typedef struct fold_ctx {
	const stream *s;
	double weight;
	bool first;
} fold_ctx;

static int span_fold(void *ctx, const agg_tensor *t, size_t ti, size_t first,
	const unsigned char *p, size_t n)
{
	fold_ctx *f = ctx;
	int rc;

	/* The first pass found every value finite; one that is not now
	 * means the file changed in place since, and part of it may already
	 * be in the sums. */
	if ((rc = check_values(t, p, first, n, f->s->path)) < 0) {
		f->s->agg->broken = true;
		return fdn__error_set(FDN_EIO, FDN_ERRCLASS_FEDAVG,
			"%s: the file changed while it was folded in (%s); the aggregator "
			"cannot be used any more", f->s->path, fdn_error_last()->message);
	}
	fdn_fedavg__fold(f->s->agg->sums[ti] + first, p, t->g->dtype, n, f->weight,
		f->first);
	return 0;
}

static int open_update(int *fd_out, uint64_t *size_out, const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT
			? fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_OS, "%s: no such file", path)
			: fdn__error_os(errno, "%s: cannot open", path);
	if (fstat(fd, &st) < 0) {
		int rc = fdn__error_os(errno, "%s: cannot stat", path);

		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fdn__error_set(FDN_EIO, FDN_ERRCLASS_FEDAVG, "%s: not a regular file", path);
	}
#ifdef POSIX_FADV_SEQUENTIAL
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
	*fd_out = fd;
	*size_out = (uint64_t)st.st_size;
	return 0;
}

/* Reads the whole data section into @p buf and checks every value: for
 * the robust strategies, which keep it, and for updates that fit one
 * chunk, which are then folded from memory after a single read. */
static int read_checked(const stream *s, unsigned char *buf)
{
	fdn_aggregator *agg = s->agg;
	size_t got;
	int rc;

	if ((rc = fdn__pread_all(s->fd, buf, agg->data_bytes, s->data_start, &got,
			s->path)) < 0)
		return rc;
	if (got != agg->data_bytes)
		return fdn__error_set(FDN_EIO, FDN_ERRCLASS_FEDAVG,
			"%s: the file shrank while it was read", s->path);
	for (size_t i = 0; i < agg->ntensors; i++)
		if ((rc = check_values(&agg->t[i], buf + agg->t[i].offset, 0,
				agg->t[i].count, s->path)) < 0)
			return rc;
	return 0;
}

static int add_file_robust(fdn_aggregator *agg, const stream *s, double weight, int form)
{
	unsigned char *block;
	int rc;

	if ((rc = kept_reserve(agg)) < 0)
		return rc;
	if (!(block = fdn__malloc(agg->data_bytes ? agg->data_bytes : 1)))
		return fdn__error_oom();
	if ((rc = read_checked(s, block)) < 0) {
		fdn__free(block);
		return rc;
	}
	agg->kept[agg->count] = block;
	agg->kept_form[agg->count] = (unsigned char)form;
	commit_weight(agg, weight, form);
	return 0;
}

/* The streaming strategies: check the whole file, then fold it in. */
static int add_file_stream(fdn_aggregator *agg, const stream *s, double weight, int form)
{
	fold_ctx f = { s, weight, agg->count == 0 };
	int rc;

	if (!agg->chunk && !(agg->chunk = fdn__malloc(CHUNK_BYTES)))
		return fdn__error_oom();
	if (agg->data_bytes <= CHUNK_BYTES) {
		if ((rc = read_checked(s, agg->chunk)) < 0)
			return rc;
		for (size_t i = 0; i < agg->ntensors; i++)
			if (agg->t[i].count)
				fdn_fedavg__fold(agg->sums[i], agg->chunk + agg->t[i].offset,
					agg->t[i].g->dtype, agg->t[i].count, weight, f.first);
	} else if ((rc = stream_data(s, span_check, (void *)s)) < 0 ||
		   (rc = stream_data(s, span_fold, &f)) < 0) {
		return rc;
	}
	commit_weight(agg, weight, form);
	return 0;
}

int fdn_aggregator_add_file(fdn_aggregator *agg, const char *path,
	double weight, int form)
{
	fdn_model *hdr = NULL;
	stream s = { agg, -1, path, 0 };
	uint64_t size = 0;
	int rc;

	FDN__CHECK_ARG(agg, "agg");
	FDN__CHECK_ARG(path, "path");
	if ((rc = check_call(agg, weight, form)) < 0)
		return rc;
	if ((rc = open_update(&s.fd, &size, path)) < 0)
		return rc;
	if ((rc = fdn_model__read_header(&hdr, &s.data_start, s.fd, path, size)) < 0 ||
	    (rc = check_layout(agg, hdr, path)) < 0)
		goto out;
	rc = fdn_fedavg__is_robust(agg->opts.strategy)
		? add_file_robust(agg, &s, weight, form)
		: add_file_stream(agg, &s, weight, form);
out:
	fdn_model_free(hdr);
	close(s.fd);
	return rc;
}

/* --- finishing ------------------------------------------------------------------ */

typedef struct finisher {
	fdn_aggregator *agg;
	fdn_fedavg__step step;
	double *x, *m, *v;          /* BLOCK each (streaming) */
	double *cols;               /* ROBUST_BLOCK x count (robust) */
	size_t cut;                 /* trimmed mean: values dropped at each end */
	unsigned char **m_out, **v_out;  /* per tensor, the new state's data or NULL */
} finisher;

static int finisher_init(finisher *f, fdn_aggregator *agg)
{
	memset(f, 0, sizeof(*f));
	f->agg = agg;
	f->step.strategy = agg->opts.strategy;
	f->step.lr = agg->opts.server_lr;
	f->step.momentum = agg->opts.momentum;
	f->step.beta1 = agg->opts.beta1;
	f->step.beta2 = agg->opts.beta2;
	f->step.tau = agg->opts.tau;
	f->step.total = agg->total;
	f->step.weights_share = agg->weights_total / agg->total;
	if (fdn_fedavg__is_robust(agg->opts.strategy)) {
		size_t n;

		f->cut = agg->opts.strategy == FDN_STRATEGY_TRIMMED_MEAN
			? (size_t)floor(agg->opts.trim * (double)agg->count) : 0;
		if (fdn__mul_overflow(agg->count, ROBUST_BLOCK, &n) ||
		    !(f->cols = fdn__calloc(n, sizeof(double))) ||
		    !(f->x = fdn__calloc(ROBUST_BLOCK, sizeof(double))))
			return fdn__error_oom();
		return 0;
	}
	if (!(f->x = fdn__calloc(3 * BLOCK, sizeof(double))))
		return fdn__error_oom();
	f->m = f->x + BLOCK;
	f->v = f->m + BLOCK;
	if (!(f->m_out = fdn__calloc(agg->ntensors ? agg->ntensors : 1, sizeof(*f->m_out))) ||
	    !(f->v_out = fdn__calloc(agg->ntensors ? agg->ntensors : 1, sizeof(*f->v_out))))
		return fdn__error_oom();
	return 0;
}

static void finisher_dispose(finisher *f)
{
	fdn__free(f->x);
	fdn__free(f->cols);
	fdn__free(f->m_out);
	fdn__free(f->v_out);
}

/* The new state's tensors ("m/<name>", "v/<name>" per tensor), to be
 * filled while the model is computed. */
static int make_state(fdn_model **out, finisher *f)
{
	fdn_aggregator *agg = f->agg;
	int strategy = agg->opts.strategy;
	char rounds[24];
	fdn_model *st;
	char *name = NULL;
	int rc;

	*out = NULL;
	if ((rc = fdn_model__alloc(&st)) < 0)
		return rc;
	for (size_t i = 0; i < agg->ntensors; i++) {
		const agg_tensor *t = &agg->t[i];
		size_t len = strlen(t->g->name) + 3;
		void *data;

		if (!(name = fdn__malloc(len))) {
			rc = fdn__error_oom();
			goto fail;
		}
		for (int s = 0; s < 2; s++) {
			if (s ? !fdn_fedavg__has_v(strategy) : !fdn_fedavg__has_m(strategy))
				continue;
			snprintf(name, len, "%c/%s", s ? 'v' : 'm', t->g->name);
			if ((rc = fdn_model__add_uninit(st, name, t->state_dtype, t->g->ndim,
					t->g->shape, &data)) < 0)
				goto fail;
			*(s ? &f->v_out[i] : &f->m_out[i]) = data;
		}
		fdn__free(name);
		name = NULL;
	}
	snprintf(rounds, sizeof(rounds), "%" PRIu64, agg->rounds + 1);
	if ((rc = fdn_model_set_metadata(st, STATE_KEY_STRATEGY,
			fdn_strategy_name(strategy))) < 0 ||
	    (rc = fdn_model_set_metadata(st, STATE_KEY_ROUNDS, rounds)) < 0)
		goto fail;
	*out = st;
	return 0;
fail:
	fdn__free(name);
	fdn_model_free(st);
	return rc;
}

/* Stores @p n values at @p src as tensor @p t's elements from @p first
 * into @p dst (in @p dtype), refusing any that do not fit the dtype. */
static int store_checked(unsigned char *dst, int dtype, const double *src, size_t n,
	const char *what, const char *name, size_t first)
{
	size_t bad;

	fdn_fedavg__store(dst, src, dtype, n);
	if ((bad = fdn_fedavg__find_nonfinite(dst, dtype, n)) < n)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
			"%s: tensor '%.200s': value %g at index %zu does not fit %s",
			what, name, src[bad], first + bad, fdn_dtype_name(dtype));
	return 0;
}

/* Elements [a, a + n) (n <= BLOCK) of tensor @p i: the next model's go
 * to @p out (in the tensor's dtype), the new state's to f->m_out/v_out. */
static int finish_stream_block(finisher *f, size_t i, size_t a, size_t n,
	unsigned char *out)
{
	fdn_aggregator *agg = f->agg;
	const agg_tensor *t = &agg->t[i];
	int strategy = agg->opts.strategy;
	bool has_m = fdn_fedavg__has_m(strategy), has_v = fdn_fedavg__has_v(strategy);
	size_t ses = fdn_dtype_size(t->state_dtype);
	int rc;

	fdn_fedavg__load(f->x, (const unsigned char *)t->g->data + a * t->esize,
		t->g->dtype, n);
	if (has_m) {
		if (t->m)
			fdn_fedavg__load(f->m, (const unsigned char *)t->m->data +
				a * fdn_dtype_size(t->m->dtype), t->m->dtype, n);
		else
			for (size_t j = 0; j < n; j++)
				f->m[j] = 0;
	}
	if (has_v) {
		/* Reddi et al.: v starts at τ². */
		if (t->v)
			fdn_fedavg__load(f->v, (const unsigned char *)t->v->data +
				a * fdn_dtype_size(t->v->dtype), t->v->dtype, n);
		else
			for (size_t j = 0; j < n; j++)
				f->v[j] = agg->opts.tau * agg->opts.tau;
	}
	fdn_fedavg__server_step(&f->step, n, agg->sums[i] + a, f->x,
		has_m ? f->m : NULL, has_v ? f->v : NULL);
	if ((rc = store_checked(out, t->g->dtype, f->x, n, "next model", t->g->name, a)) < 0)
		return rc;
	if (f->m_out[i] && (rc = store_checked(f->m_out[i] + a * ses, t->state_dtype,
			f->m, n, "new state m", t->g->name, a)) < 0)
		return rc;
	if (f->v_out[i] && (rc = store_checked(f->v_out[i] + a * ses, t->state_dtype,
			f->v, n, "new state v", t->g->name, a)) < 0)
		return rc;
	return 0;
}

/* The same for the robust strategies (n <= ROBUST_BLOCK). */
static int finish_robust_block(finisher *f, size_t i, size_t a, size_t n,
	unsigned char *out)
{
	fdn_aggregator *agg = f->agg;
	const agg_tensor *t = &agg->t[i];
	size_t K = agg->count;
	double *tmp = f->x;

	double base[ROBUST_BLOCK];

	/* Deltas become weights, x_t + d_k, in double. */
	fdn_fedavg__load(base, (const unsigned char *)t->g->data + a * t->esize,
		t->g->dtype, n);
	for (size_t k = 0; k < K; k++) {
		fdn_fedavg__load(tmp, agg->kept[k] + t->offset + a * t->esize,
			t->g->dtype, n);
		if (agg->kept_form[k] == FDN_UPDATE_DELTA)
			for (size_t j = 0; j < n; j++)
				tmp[j] += base[j];
		for (size_t j = 0; j < n; j++)
			f->cols[j * K + k] = tmp[j];
	}
	if (agg->opts.strategy == FDN_STRATEGY_MEDIAN)
		fdn_fedavg__median(tmp, f->cols, n, K);
	else
		fdn_fedavg__trimmed_mean(tmp, f->cols, n, K, f->cut);
	return store_checked(out, t->g->dtype, tmp, n, "next model", t->g->name, a);
}

static int finish_block(finisher *f, size_t i, size_t a, size_t n, unsigned char *out)
{
	return f->cols ? finish_robust_block(f, i, a, n, out)
		       : finish_stream_block(f, i, a, n, out);
}

static size_t block_of(const finisher *f)
{
	return f->cols ? ROBUST_BLOCK : BLOCK;
}

/* A tensor's sums are not needed once its output is computed: freeing
 * them as we go keeps the peak near sums + one tensor, not sums + model. */
static void release_sums(fdn_aggregator *agg, size_t i)
{
	if (agg->sums) {
		fdn__free(agg->sums[i]);
		agg->sums[i] = NULL;
	}
}

static int check_finish(fdn_aggregator *agg)
{
	if (agg->finished)
		return FAIL("the aggregator is already finished");
	if (agg->broken)
		return FAIL("the aggregator is unusable: an update file changed while it was folded in");
	if (agg->count == 0)
		return FAIL("no update was folded in: nothing to aggregate");
	return 0;
}

static bool wants_state(const fdn_aggregator *agg)
{
	return fdn_fedavg__has_m(agg->opts.strategy) || fdn_fedavg__has_v(agg->opts.strategy);
}

/* Copies the global model's metadata to @p m. */
static int copy_metadata(fdn_model *m, const fdn_model *g)
{
	int rc;

	for (size_t i = 0; i < g->nmeta; i++)
		if ((rc = fdn_model_set_metadata(m, g->meta[i].key, g->meta[i].value)) < 0)
			return rc;
	return 0;
}

int fdn_aggregator_finish(fdn_aggregator *agg, fdn_model **global_out,
	fdn_model **state_out)
{
	fdn_model *out = NULL, *st = NULL;
	finisher f;
	int rc;

	FDN__CHECK_ARG(global_out, "global_out");
	*global_out = NULL;
	if (state_out)
		*state_out = NULL;
	FDN__CHECK_ARG(agg, "agg");
	if ((rc = check_finish(agg)) < 0)
		return rc;
	if ((rc = finisher_init(&f, agg)) < 0 ||
	    (rc = fdn_model__alloc(&out)) < 0 ||
	    (rc = copy_metadata(out, agg->global)) < 0 ||
	    (wants_state(agg) && (rc = make_state(&st, &f)) < 0))
		goto fail;
	for (size_t i = 0; i < agg->ntensors; i++) {
		const agg_tensor *t = &agg->t[i];
		void *data;

		if ((rc = fdn_model__add_uninit(out, t->g->name, t->g->dtype, t->g->ndim,
				t->g->shape, &data)) < 0)
			goto fail;
		/* From here on the sums are consumed. */
		agg->finished = true;
		for (size_t a = 0; a < t->count; a += block_of(&f)) {
			size_t n = t->count - a < block_of(&f) ? t->count - a : block_of(&f);

			if ((rc = finish_block(&f, i, a, n,
					(unsigned char *)data + a * t->esize)) < 0)
				goto fail;
		}
		release_sums(agg, i);
	}
	agg->finished = true;
	finisher_dispose(&f);
	*global_out = out;
	if (state_out)
		*state_out = st;
	else
		fdn_model_free(st);
	return 0;
fail:
	finisher_dispose(&f);
	fdn_model_free(out);
	fdn_model_free(st);
	return rc;
}

/* Gathers output bytes into the chunk buffer and writes full chunks. */
typedef struct writer {
	fdn_atomic_file af;
	unsigned char *buf;
	size_t have;
} writer;

static int writer_flush(writer *w)
{
	int rc = w->have ? fdn__atomic_write(&w->af, w->buf, w->have) : 0;

	w->have = 0;
	return rc;
}

int fdn_aggregator_finish_file(fdn_aggregator *agg, const char *path,
	fdn_model **state_out)
{
	fdn_buf hdr = FDN_BUF_INIT;
	fdn_model *st = NULL;
	writer w = { .have = 0 };
	bool open = false;
	size_t data_size;
	finisher f;
	int rc;

	if (state_out)
		*state_out = NULL;
	FDN__CHECK_ARG(agg, "agg");
	FDN__CHECK_ARG(path, "path");
	if ((rc = check_finish(agg)) < 0)
		return rc;
	memset(&f, 0, sizeof(f));
	if (!agg->chunk && !(agg->chunk = fdn__malloc(CHUNK_BYTES))) {
		rc = fdn__error_oom();
		goto out;
	}
	w.buf = agg->chunk;
	if ((rc = finisher_init(&f, agg)) < 0 ||
	    (wants_state(agg) && (rc = make_state(&st, &f)) < 0) ||
	    (rc = fdn_model__header(&hdr, agg->global, &data_size)) < 0 ||
	    (rc = fdn__atomic_open(&w.af, path)) < 0)
		goto out;
	open = true;
	if ((rc = fdn__atomic_write(&w.af, hdr.ptr, hdr.size)) < 0)
		goto out;
	agg->finished = true;
	for (size_t i = 0; i < agg->ntensors; i++) {
		const agg_tensor *t = &agg->t[i];

		for (size_t a = 0; a < t->count; a += block_of(&f)) {
			size_t n = t->count - a < block_of(&f) ? t->count - a : block_of(&f);

			if (CHUNK_BYTES - w.have < n * t->esize && (rc = writer_flush(&w)) < 0)
				goto out;
			if ((rc = finish_block(&f, i, a, n, w.buf + w.have)) < 0)
				goto out;
			w.have += n * t->esize;
		}
		release_sums(agg, i);
	}
	if ((rc = writer_flush(&w)) < 0 || (rc = fdn__atomic_commit(&w.af)) < 0)
		goto out;
	open = false;
	if (state_out) {
		*state_out = st;
		st = NULL;
	}
out:
	if (open)
		fdn__atomic_abort(&w.af);
	finisher_dispose(&f);
	fdn_model_free(st);
	fdn_buf_dispose(&hdr);
	return rc;
}
