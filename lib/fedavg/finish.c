/*
 * libfednode: finishing a round: the server step (or the robust
 * statistic) coordinate by coordinate, block by block, into a new model
 * in memory or streamed to a file, and the new optimizer state.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fedavg/fedavg_private.h"

/* Coordinates computed at a time. */
#define BLOCK 2048
#define ROBUST_BLOCK 256

#define FAIL FDN_AGG__FAIL

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
		const fdn_agg__tensor *t = &agg->t[i];
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
	if ((rc = fdn_model_set_metadata(st, FDN_AGG__STATE_STRATEGY,
			fdn_strategy_name(strategy))) < 0 ||
	    (rc = fdn_model_set_metadata(st, FDN_AGG__STATE_ROUNDS, rounds)) < 0)
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
	const fdn_agg__tensor *t = &agg->t[i];
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
	const fdn_agg__tensor *t = &agg->t[i];
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
		const fdn_agg__tensor *t = &agg->t[i];
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
	if (!agg->chunk && !(agg->chunk = fdn__malloc(FDN_AGG__CHUNK))) {
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
		const fdn_agg__tensor *t = &agg->t[i];

		for (size_t a = 0; a < t->count; a += block_of(&f)) {
			size_t n = t->count - a < block_of(&f) ? t->count - a : block_of(&f);

			if (FDN_AGG__CHUNK - w.have < n * t->esize && (rc = writer_flush(&w)) < 0)
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
