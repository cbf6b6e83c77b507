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
 * that means reading it twice (see doc/federated.md for the cost).  The
 * first update is the exception: with no sums yet to protect it is
 * checked as it is folded.
 * batch.c folds several at once; finish.c computes the next model.
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

#define FAIL FDN_AGG__FAIL

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
	if (fdn_model_get_metadata(&val, state, FDN_AGG__STATE_STRATEGY) < 0)
		return FAIL("state: no metadata %s: not an aggregator's state",
			FDN_AGG__STATE_STRATEGY);
	if (strcmp(val, sname) != 0)
		return FAIL("state: a state of strategy '%.64s', not of %s", val, sname);
	if (fdn_model_get_metadata(&val, state, FDN_AGG__STATE_ROUNDS) < 0 ||
	    parse_rounds(&agg->rounds, val) < 0)
		return FAIL("state: metadata %s is missing or not a round count",
			FDN_AGG__STATE_ROUNDS);
	if (state->ntensors != agg->ntensors * slots)
		return FAIL("state: %zu tensors, but %zu were expected (%zu per tensor of the global model)",
			state->ntensors, agg->ntensors * slots, slots);
	for (size_t i = 0; i < agg->ntensors; i++) {
		fdn_agg__tensor *t = &agg->t[i];

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
		fdn_agg__tensor *t = &agg->t[i];

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

int fdn_agg__check_call(const fdn_aggregator *agg, double weight, int form)
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
int fdn_agg__check_layout(const fdn_aggregator *agg, const fdn_model *u,
	const char *src)
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

static int nonfinite_error(const char *src, const fdn_agg__tensor *t,
	const unsigned char *elem, size_t index)
{
	double v;

	fdn_fedavg__load(&v, elem, t->g->dtype, 1);
	return FAIL("%s: tensor '%.200s': %s at index %zu", src, t->g->name,
		isnan(v) ? "NaN" : "infinity", index);
}

/* Elements [first, first + n) of tensor @p i, at @p p: all finite? */
int fdn_agg__check_values(const fdn_agg__tensor *t, const unsigned char *p,
	size_t first, size_t n, const char *src)
{
	size_t bad = fdn_fedavg__find_nonfinite(p, t->g->dtype, n);

	return bad < n ? nonfinite_error(src, t, p + bad * t->esize, first + bad) : 0;
}

void fdn_agg__commit(fdn_aggregator *agg, double weight, int form)
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

/* The robust strategies keep a copy of the update. */
static int keep_update(fdn_aggregator *agg, const fdn_model *update, int form)
{
	unsigned char *block;
	int rc;

	for (size_t i = 0; i < agg->ntensors; i++)
		if ((rc = fdn_agg__check_values(&agg->t[i], update->tensors[i].data, 0,
				agg->t[i].count, "update")) < 0)
			return rc;
	if ((rc = kept_reserve(agg)) < 0)
		return rc;
	if (!(block = fdn__malloc(agg->data_bytes ? agg->data_bytes : 1)))
		return fdn__error_oom();
	for (size_t i = 0; i < agg->ntensors; i++)
		if (agg->t[i].count)
			memcpy(block + agg->t[i].offset, update->tensors[i].data,
				agg->t[i].g->nbytes);
	agg->kept[agg->count] = block;
	agg->kept_form[agg->count] = (unsigned char)form;
	return 0;
}

/* The first update may be folded as it is checked: if it turns out bad,
 * the sums it half wrote are not sums yet (count stays 0, and the next
 * first update overwrites them all). */
static int fold_first(fdn_aggregator *agg, const fdn_model *update, double weight)
{
	for (size_t i = 0; i < agg->ntensors; i++) {
		const fdn_agg__tensor *t = &agg->t[i];

		if (t->count && fdn_fedavg__fold_checked(agg->sums[i], update->tensors[i].data,
				t->g->dtype, t->count, weight, true))
			return fdn_agg__check_values(t, update->tensors[i].data, 0, t->count,
				"update");
	}
	return 0;
}

/* Later ones are checked whole first: nothing is folded unless all
 * values are finite. */
static int fold_next(fdn_aggregator *agg, const fdn_model *update, double weight)
{
	int rc;

	for (size_t i = 0; i < agg->ntensors; i++)
		if ((rc = fdn_agg__check_values(&agg->t[i], update->tensors[i].data, 0,
				agg->t[i].count, "update")) < 0)
			return rc;
	for (size_t i = 0; i < agg->ntensors; i++)
		if (agg->t[i].count)
			fdn_fedavg__fold(agg->sums[i], update->tensors[i].data,
				agg->t[i].g->dtype, agg->t[i].count, weight, false);
	return 0;
}

int fdn_aggregator_add(fdn_aggregator *agg, const fdn_model *update,
	double weight, int form)
{
	int rc;

	FDN__CHECK_ARG(agg, "agg");
	FDN__CHECK_ARG(update, "update");
	if ((rc = fdn_agg__check_call(agg, weight, form)) < 0 ||
	    (rc = fdn_agg__check_layout(agg, update, "update")) < 0)
		return rc;
	if (fdn_fedavg__is_robust(agg->opts.strategy))
		rc = keep_update(agg, update, form);
	else if (agg->count == 0)
		rc = fold_first(agg, update, weight);
	else
		rc = fold_next(agg, update, weight);
	if (rc < 0)
		return rc;
	fdn_agg__commit(agg, weight, form);
	return 0;
}

/* --- fdn_aggregator_add_file ------------------------------------------------- */

/* The file an add_file call reads. */
typedef struct one_file {
	fdn_aggregator *agg;
	int fd;
	const char *path;
	uint64_t data_start;
	double weight;
	bool first;
} one_file;

static int span_check(void *ctx, size_t ti, size_t first, size_t n, uint64_t offset,
	const unsigned char *const *ptrs)
{
	one_file *f = ctx;

	(void)offset;
	return fdn_agg__check_values(&f->agg->t[ti], ptrs[0], first, n, f->path);
}

int fdn_agg__changed(fdn_aggregator *agg, const char *path)
{
	agg->broken = true;
	return fdn__error_set(FDN_EIO, FDN_ERRCLASS_FEDAVG,
		"%s: the file changed while it was folded in (%s); the aggregator "
		"cannot be used any more", path, fdn_error_last()->message);
}

/* The first update's single pass (see fold_first). */
static int span_fold_first(void *ctx, size_t ti, size_t first, size_t n,
	uint64_t offset, const unsigned char *const *ptrs)
{
	one_file *f = ctx;
	const fdn_agg__tensor *t = &f->agg->t[ti];

	(void)offset;
	if (fdn_fedavg__fold_checked(f->agg->sums[ti] + first, ptrs[0], t->g->dtype, n,
			f->weight, true))
		return fdn_agg__check_values(t, ptrs[0], first, n, f->path);
	return 0;
}

static int span_fold(void *ctx, size_t ti, size_t first, size_t n, uint64_t offset,
	const unsigned char *const *ptrs)
{
	one_file *f = ctx;
	const fdn_agg__tensor *t = &f->agg->t[ti];

	(void)offset;
	/* The first pass found every value finite; one that is not now
	 * means the file changed in place since, and part of it may already
	 * be in the sums. */
	if (fdn_agg__check_values(t, ptrs[0], first, n, f->path) < 0)
		return fdn_agg__changed(f->agg, f->path);
	fdn_fedavg__fold(f->agg->sums[ti] + first, ptrs[0], t->g->dtype, n, f->weight,
		f->first);
	return 0;
}

/* Reads the whole data section into @p buf and checks every value: for
 * the robust strategies, which keep it, and for updates that fit one
 * chunk, which are then folded from memory after a single read. */
static int read_checked(const one_file *f, unsigned char *buf)
{
	fdn_aggregator *agg = f->agg;
	size_t got;
	int rc;

	if ((rc = fdn__pread_all(f->fd, buf, agg->data_bytes, f->data_start, &got,
			f->path)) < 0)
		return rc;
	if (got != agg->data_bytes)
		return fdn__error_set(FDN_EIO, FDN_ERRCLASS_FEDAVG,
			"%s: the file shrank while it was read", f->path);
	for (size_t i = 0; i < agg->ntensors; i++)
		if ((rc = fdn_agg__check_values(&agg->t[i], buf + agg->t[i].offset, 0,
				agg->t[i].count, f->path)) < 0)
			return rc;
	return 0;
}

static int add_file_robust(fdn_aggregator *agg, const one_file *f, int form)
{
	unsigned char *block;
	int rc;

	if ((rc = kept_reserve(agg)) < 0)
		return rc;
	if (!(block = fdn__malloc(agg->data_bytes ? agg->data_bytes : 1)))
		return fdn__error_oom();
	if ((rc = read_checked(f, block)) < 0) {
		fdn__free(block);
		return rc;
	}
	agg->kept[agg->count] = block;
	agg->kept_form[agg->count] = (unsigned char)form;
	fdn_agg__commit(agg, f->weight, form);
	return 0;
}

/* The streaming strategies: check the whole file, then fold it in. */
static int add_file_stream(fdn_aggregator *agg, one_file *f, int form)
{
	int rc;

	if (!agg->chunk && !(agg->chunk = fdn__malloc(FDN_AGG__CHUNK)))
		return fdn__error_oom();
	if (agg->data_bytes <= FDN_AGG__CHUNK) {
		if ((rc = read_checked(f, agg->chunk)) < 0)
			return rc;
		for (size_t i = 0; i < agg->ntensors; i++)
			if (agg->t[i].count)
				fdn_fedavg__fold(agg->sums[i], agg->chunk + agg->t[i].offset,
					agg->t[i].g->dtype, agg->t[i].count, f->weight, f->first);
	} else {
		const unsigned char *ptr;
		fdn_agg__reader r = { agg, 1, &f->fd, &f->data_start, &f->path, &agg->chunk,
			&ptr, FDN_AGG__CHUNK, NULL, NULL, f };

		if (f->first)
			rc = fdn_agg__stream(&r, agg->data_bytes, span_fold_first);
		else if ((rc = fdn_agg__stream(&r, agg->data_bytes, span_check)) == 0)
			rc = fdn_agg__stream(&r, agg->data_bytes, span_fold);
		if (rc < 0)
			return rc;
	}
	fdn_agg__commit(agg, f->weight, form);
	return 0;
}

int fdn_aggregator_add_file(fdn_aggregator *agg, const char *path,
	double weight, int form)
{
	fdn_model *hdr = NULL;
	one_file f = { agg, -1, path, 0, weight, false };
	uint64_t size = 0;
	int rc;

	FDN__CHECK_ARG(agg, "agg");
	FDN__CHECK_ARG(path, "path");
	if ((rc = fdn_agg__check_call(agg, weight, form)) < 0)
		return rc;
	if ((rc = fdn_agg__open(&f.fd, &size, path)) < 0)
		return rc;
	f.first = agg->count == 0;
	if ((rc = fdn_model__read_header(&hdr, &f.data_start, f.fd, path, size)) < 0 ||
	    (rc = fdn_agg__check_layout(agg, hdr, path)) < 0)
		goto out;
	rc = fdn_fedavg__is_robust(agg->opts.strategy)
		? add_file_robust(agg, &f, form)
		: add_file_stream(agg, &f, form);
out:
	fdn_model_free(hdr);
	close(f.fd);
	return rc;
}
