/*
 * libfednode: folding several updates at once.
 *
 * One update at a time, every update sweeps all the sums (16 bytes a
 * parameter read and written, for 4 bytes of F32 update) and is read
 * twice (check, then fold).  With the updates at hand together, the
 * model is walked once instead, block by block: each update's block is
 * checked and folded while it and the block of sums sit in cache, so
 * memory sees each update's bytes once and the sums once.
 *
 * Each block is checked and folded in the same loop, so a bad block is
 * found after it was folded.  That is only recoverable exactly when the
 * sums start empty (the round's first updates): a rejection found in
 * block b leaves the rejected update's blocks up to b in the sums, so
 * the blocks up to the highest such b are recomputed from scratch from
 * the updates that remain, in order, which gives the same bits as never
 * having folded the rejected ones.  With
 * earlier updates in the sums there is no scratch to start from, so the
 * updates are added one by one.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fedavg/fedavg_private.h"

/* Elements of a tensor per block of the in-memory walk: 512 KiB of sums,
 * 256 KiB of each F32 update (measured best of 8K to 256K). */
#define BATCH_BLOCK 65536
/* Files read in lockstep at most, and their buffers' total size. */
#define BATCH_FILES 64
#define BATCH_BUFFERS ((size_t)8 << 20)
#define BATCH_CHUNK_MIN ((size_t)64 << 10)

typedef struct batch {
	fdn_aggregator *agg;
	size_t n;
	const fdn_model *const *updates;  /* models, or NULL */
	const char *const *paths;         /* files, or NULL */
	const double *weights;
	const int *forms;                 /* NULL: all weights */
	int *status;                      /* n */
	bool *rejected;                   /* n */
	size_t lo, hi;                    /* the updates of the fused walk */
	size_t first_bad, nbad;
	char msg[FDN__ERROR_MESSAGE_MAX];
	uint64_t dirty_end;  /* sums below this data offset hold parts of rejected updates */
	bool redo;           /* recomputing them */
} batch;

static int form_of(const batch *b, size_t k)
{
	return b->forms ? b->forms[k] : FDN_UPDATE_WEIGHTS;
}

/* What messages call update @p k. */
static const char *src_of(const batch *b, size_t k, char *buf, size_t size)
{
	if (b->paths)
		return b->paths[k];
	snprintf(buf, size, "update %zu", k);
	return buf;
}

/* Update @p k is rejected with @p rc; the last error says why, after
 * @p prefix when there is one. */
static void reject(batch *b, size_t k, int rc, const char *prefix)
{
	b->rejected[k] = true;
	b->status[k] = rc;
	b->nbad++;
	if (k < b->first_bad) {
		b->first_bad = k;
		snprintf(b->msg, sizeof(b->msg), "%s%s%s", prefix ? prefix : "",
			prefix ? ": " : "", fdn_error_last()->message);
	}
}

/* Weight and form of every update not yet rejected, in order, with the
 * running N kept finite. */
static void check_weights(batch *b, size_t lo, size_t hi)
{
	double total = b->agg->total;
	char name[32];

	for (size_t k = lo; k < hi; k++) {
		double w = b->weights[k];
		int form = form_of(b, k);
		const char *src = src_of(b, k, name, sizeof(name));

		if (b->rejected[k])
			continue;
		if (!(w > 0) || !isfinite(w) || !isfinite(total + w))
			reject(b, k, FDN_AGG__FAIL("%s: weight %g: must be a positive finite number",
				src, w), NULL);
		else if (form != FDN_UPDATE_WEIGHTS && form != FDN_UPDATE_DELTA)
			reject(b, k, FDN_AGG__FAIL("%s: form %d: must be FDN_UPDATE_WEIGHTS or "
				"FDN_UPDATE_DELTA", src, form), NULL);
		else
			total += w;
	}
}

/* --- the fused walk ---------------------------------------------------------- */

/* Elements [first, first + n) of tensor @p ti, update k's at ptrs[k]:
 * each update's run is checked and folded in one loop (the first one to
 * reach these sums overwrites them).  A bad run has then been folded
 * too: the update is rejected and the sums up to the end of this run
 * are recomputed later. */
static int span(void *ctx, size_t ti, size_t first, size_t n, uint64_t offset,
	const unsigned char *const *ptrs)
{
	batch *b = ctx;
	fdn_aggregator *agg = b->agg;
	const fdn_agg__tensor *t = &agg->t[ti];
	double *sums = agg->sums[ti] + first;
	bool init = false;
	char name[32];

	for (size_t k = b->lo; k < b->hi; k++) {
		const unsigned char *p = ptrs[k - b->lo];
		const char *src;

		if (b->rejected[k])
			continue;
		if (b->redo && !b->paths) {
			/* A model cannot change between the passes; a file can. */
			fdn_fedavg__fold(sums, p, t->g->dtype, n, b->weights[k], !init);
			init = true;
			continue;
		}
		if (!fdn_fedavg__fold_checked(sums, p, t->g->dtype, n, b->weights[k], !init)) {
			init = true;
			continue;
		}
		src = src_of(b, k, name, sizeof(name));
		(void)fdn_agg__check_values(t, p, first, n, src);  /* the message */
		if (b->redo)
			return fdn_agg__changed(agg, src);
		reject(b, k, FDN_EINVALID, NULL);
		if (offset + n * t->esize > b->dirty_end)
			b->dirty_end = offset + n * t->esize;
		init = true;  /* these sums are garbage until recomputed */
	}
	return 0;
}

/* The in-memory walk over data offsets [0, end). */
static int walk_models(batch *b, const unsigned char **ptrs, uint64_t end)
{
	fdn_aggregator *agg = b->agg;
	int rc;

	for (size_t ti = 0; ti < agg->ntensors; ti++) {
		const fdn_agg__tensor *t = &agg->t[ti];

		for (size_t a = 0; a < t->count; a += BATCH_BLOCK) {
			uint64_t offset = t->offset + (uint64_t)a * t->esize;
			size_t n = t->count - a < BATCH_BLOCK ? t->count - a : BATCH_BLOCK;

			if (offset >= end)
				return 0;
			for (size_t k = b->lo; k < b->hi; k++)
				ptrs[k - b->lo] = b->rejected[k] ? NULL
					: (const unsigned char *)b->updates[k]->tensors[ti].data +
						a * t->esize;
			if ((rc = span(b, ti, a, n, offset, ptrs)) < 0)
				return rc;
		}
	}
	return 0;
}

static bool any_left(const batch *b)
{
	for (size_t k = b->lo; k < b->hi; k++)
		if (!b->rejected[k])
			return true;
	return false;
}

static void commit_all(batch *b)
{
	for (size_t k = b->lo; k < b->hi; k++) {
		if (b->rejected[k])
			continue;
		fdn_agg__commit(b->agg, b->weights[k], form_of(b, k));
		b->status[k] = 0;
	}
}

static int fused_models(batch *b)
{
	const unsigned char **ptrs = fdn__calloc(b->hi - b->lo, sizeof(*ptrs));
	int rc;

	if (!ptrs)
		return fdn__error_oom();
	rc = walk_models(b, ptrs, b->agg->data_bytes);
	if (rc == 0 && b->dirty_end && any_left(b)) {
		b->redo = true;
		rc = walk_models(b, ptrs, b->dirty_end);
	}
	fdn__free(ptrs);
	if (rc == 0)
		commit_all(b);
	return rc;
}

/* --- files ------------------------------------------------------------------- */

static int on_read_fail(void *ctx, size_t k, int rc)
{
	batch *b = ctx;

	if (b->redo)
		return fdn_agg__changed(b->agg, b->paths[b->lo + k]);
	reject(b, b->lo + k, rc, NULL);
	/* Where the walk had got to is not known here: redo all of it. */
	b->dirty_end = b->agg->data_bytes;
	return 0;
}

typedef struct file_set {
	int *fds;
	uint64_t *starts;
	unsigned char **bufs;
	unsigned char *block;
	const unsigned char **ptrs;
	bool *skip;
} file_set;

static void file_set_dispose(file_set *fs, size_t g)
{
	for (size_t k = 0; fs->fds && k < g; k++)
		if (fs->fds[k] >= 0)
			close(fs->fds[k]);
	fdn__free(fs->fds);
	fdn__free(fs->starts);
	fdn__free(fs->bufs);
	fdn__free(fs->block);
	fdn__free(fs->ptrs);
	fdn__free(fs->skip);
}

/* Opens files [lo, hi) and checks their headers; a failure rejects the
 * file. */
static void open_files(batch *b, file_set *fs)
{
	for (size_t k = b->lo; k < b->hi; k++) {
		const char *path = b->paths[k];
		fdn_model *hdr = NULL;
		uint64_t size = 0;
		int rc, *fd = &fs->fds[k - b->lo];

		if (b->rejected[k])
			continue;
		if ((rc = fdn_agg__open(fd, &size, path)) < 0 ||
		    (rc = fdn_model__read_header(&hdr, &fs->starts[k - b->lo], *fd, path,
				size)) < 0 ||
		    (rc = fdn_agg__check_layout(b->agg, hdr, path)) < 0)
			reject(b, k, rc, NULL);
		fdn_model_free(hdr);
	}
}

static int fused_files(batch *b)
{
	fdn_aggregator *agg = b->agg;
	size_t g = b->hi - b->lo, chunk = BATCH_BUFFERS / g;
	file_set fs = { 0 };
	int rc = 0;

	if (chunk > FDN_AGG__CHUNK)
		chunk = FDN_AGG__CHUNK;
	if (chunk < BATCH_CHUNK_MIN)
		chunk = BATCH_CHUNK_MIN;
	chunk &= ~(size_t)63;
	if (!(fs.fds = fdn__malloc(g * sizeof(*fs.fds))) ||
	    !(fs.starts = fdn__calloc(g, sizeof(*fs.starts))) ||
	    !(fs.bufs = fdn__calloc(g, sizeof(*fs.bufs))) ||
	    !(fs.ptrs = fdn__calloc(g, sizeof(*fs.ptrs))) ||
	    !(fs.block = fdn__malloc(g * chunk))) {
		rc = fdn__error_oom();
		goto out;
	}
	for (size_t k = 0; k < g; k++) {
		fs.fds[k] = -1;
		fs.bufs[k] = fs.block + k * chunk;
	}
	open_files(b, &fs);
	check_weights(b, b->lo, b->hi);
	if (any_left(b)) {
		fdn_agg__reader r = { agg, g, fs.fds, fs.starts, b->paths + b->lo, fs.bufs,
			fs.ptrs, chunk, b->rejected + b->lo, on_read_fail, b };

		rc = fdn_agg__stream(&r, agg->data_bytes, span);
		if (rc == 0 && b->dirty_end && any_left(b)) {
			b->redo = true;
			rc = fdn_agg__stream(&r, b->dirty_end, span);
		}
	}
	if (rc == 0)
		commit_all(b);
out:
	file_set_dispose(&fs, g);
	return rc;
}

/* --- entry points -------------------------------------------------------------- */

static int sequential(batch *b, size_t k)
{
	int rc;

	if (b->rejected[k])
		return 0;
	rc = b->paths
		? fdn_aggregator_add_file(b->agg, b->paths[k], b->weights[k], form_of(b, k))
		: fdn_aggregator_add(b->agg, b->updates[k], b->weights[k], form_of(b, k));
	if (rc < 0) {
		char name[32];

		reject(b, k, rc, b->paths ? NULL : src_of(b, k, name, sizeof(name)));
	} else {
		b->status[k] = 0;
	}
	return 0;
}

static bool can_fuse(const fdn_aggregator *agg)
{
	return agg->count == 0 && !agg->broken && !fdn_fedavg__is_robust(agg->opts.strategy);
}

static int run(batch *b)
{
	fdn_aggregator *agg = b->agg;
	size_t k = 0;
	int rc = 0;

	/* NULL entries are rejected on their own. */
	for (size_t i = 0; i < b->n; i++)
		if ((b->paths && !b->paths[i]) || (b->updates && !b->updates[i]))
			reject(b, i, FDN_AGG__FAIL("%s %zu is NULL", b->paths ? "path" : "update",
				i), NULL);
	while (k < b->n && rc == 0) {
		if (!can_fuse(agg)) {
			rc = sequential(b, k++);
			continue;
		}
		b->lo = k;
		b->hi = b->paths && b->n - k > BATCH_FILES ? k + BATCH_FILES : b->n;
		b->dirty_end = 0;
		b->redo = false;
		if (b->paths) {
			rc = fused_files(b);
		} else {
			char name[32];

			check_weights(b, b->lo, b->hi);
			for (size_t i = b->lo; i < b->hi; i++)
				if (!b->rejected[i] &&
				    fdn_agg__check_layout(agg, b->updates[i],
					    src_of(b, i, name, sizeof(name))) < 0)
					reject(b, i, FDN_EINVALID, NULL);
			rc = any_left(b) ? fused_models(b) : 0;
		}
		k = b->hi;
	}
	return rc;
}

static int add_many(fdn_aggregator *agg, size_t n, const fdn_model *const *updates,
	const char *const *paths, const double *weights, const int *forms,
	int *status_out)
{
	batch b;
	int rc;

	if (agg->finished)
		return FDN_AGG__FAIL("the aggregator is finished: it takes no more updates");
	if (agg->broken)
		return FDN_AGG__FAIL("the aggregator is unusable: an update file changed while it was folded in");
	if (n == 0)
		return 0;
	memset(&b, 0, sizeof(b));
	b.agg = agg;
	b.n = n;
	b.updates = updates;
	b.paths = paths;
	b.weights = weights;
	b.forms = forms;
	b.first_bad = n;
	if (!(b.status = fdn__calloc(n, sizeof(*b.status))) ||
	    !(b.rejected = fdn__calloc(n, sizeof(*b.rejected)))) {
		fdn__free(b.status);
		return fdn__error_oom();
	}
	/* 1: not folded in (yet); 0 once it is; a code once rejected. */
	for (size_t k = 0; k < n; k++)
		b.status[k] = 1;
	rc = run(&b);
	for (size_t k = 0; k < n; k++)
		if (b.status[k] == 1)  /* left out by a failure of the whole call */
			b.status[k] = rc < 0 ? rc : FDN_ERROR;
	if (status_out)
		memcpy(status_out, b.status, n * sizeof(*status_out));
	if (rc == 0 && b.first_bad < n) {
		rc = b.status[b.first_bad];
		if (b.nbad > 1)
			fdn__error_set(rc, FDN_ERRCLASS_FEDAVG, "%s (and %zu more rejected)",
				b.msg, b.nbad - 1);
		else
			fdn__error_set(rc, FDN_ERRCLASS_FEDAVG, "%s", b.msg);
	}
	fdn__free(b.status);
	fdn__free(b.rejected);
	return rc;
}

int fdn_aggregator_add_batch(fdn_aggregator *agg, size_t n,
	const fdn_model *const *updates, const double *weights, const int *forms,
	int *status_out)
{
	FDN__CHECK_ARG(agg, "agg");
	FDN__CHECK_ARG(n == 0 || updates, "updates");
	FDN__CHECK_ARG(n == 0 || weights, "weights");
	return add_many(agg, n, updates, NULL, weights, forms, status_out);
}

int fdn_aggregator_add_files(fdn_aggregator *agg, size_t n,
	const char *const *paths, const double *weights, const int *forms,
	int *status_out)
{
	FDN__CHECK_ARG(agg, "agg");
	FDN__CHECK_ARG(n == 0 || paths, "paths");
	FDN__CHECK_ARG(n == 0 || weights, "weights");
	return add_many(agg, n, NULL, paths, weights, forms, status_out);
}
