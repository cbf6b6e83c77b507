/*
 * libfednode: what the aggregation files share: resolved strategy
 * options and the numeric kernels (kernels.c, compiled -O3).  Not
 * installed.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_FEDAVG_PRIVATE_H
#define FDN_FEDAVG_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core_private.h"
#include "fednode/fedavg.h"

#include "model/model_private.h"

/* --- the aggregator (aggregate.c, stream.c, batch.c, finish.c) ----------- */

/* Bytes read from an update file (or gathered for the output file) at a
 * time: small enough to stay in L2 between the read and the fold. */
#define FDN_AGG__CHUNK ((size_t)512 * 1024)

#define FDN_AGG__STATE_STRATEGY "fednode.strategy"
#define FDN_AGG__STATE_ROUNDS "fednode.rounds"

#define FDN_AGG__FAIL(...) \
	fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG, __VA_ARGS__)

/* What the aggregator knows of one tensor of the global model. */
typedef struct fdn_agg__tensor {
	const fdn_model__tensor *g;   /* in the global model */
	size_t count;                 /* elements */
	size_t esize;                 /* bytes per element */
	size_t offset;                /* in the model's data section */
	const fdn_model__tensor *m, *v;  /* in the input state, or NULL */
	int state_dtype;              /* of the tensors the new state gets */
} fdn_agg__tensor;

struct fdn_aggregator {
	fdn_strategy_options opts;    /* resolved: no zeros left */
	const fdn_model *global;
	size_t ntensors;
	fdn_agg__tensor *t;
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

	unsigned char *chunk;         /* FDN_AGG__CHUNK, on first use */
};

/* aggregate.c: the checks every way of adding shares. */
/* The aggregator takes updates, @p weight is positive and finite (and
 * keeps N finite), @p form is known. */
int fdn_agg__check_call(const fdn_aggregator *agg, double weight, int form);
/* Same tensors in the same order, dtypes and shapes as the global model;
 * @p src names the update in messages. */
int fdn_agg__check_layout(const fdn_aggregator *agg, const fdn_model *u,
	const char *src);
/* Elements [first, first + n) of tensor @p t at @p p are all finite. */
int fdn_agg__check_values(const fdn_agg__tensor *t, const unsigned char *p,
	size_t first, size_t n, const char *src);
/* Counts an update that was folded in. */
void fdn_agg__commit(fdn_aggregator *agg, double weight, int form);
/* The FDN_EIO that marks the aggregator unusable: a file checked finite
 * held a NaN or infinity when it was read again. */
int fdn_agg__changed(fdn_aggregator *agg, const char *path);

/* stream.c: reading update files. */
/* Opens @p path, which must be a regular file; its size in *size_out. */
int fdn_agg__open(int *fd_out, uint64_t *size_out, const char *path);

/* Called on each run of @p n whole elements of tensor @p ti from element
 * @p first (at data offset @p offset), with each file's bytes at ptrs[k]
 * (that of a skipped file is meaningless). */
typedef int (*fdn_agg__span_fn)(void *ctx, size_t ti, size_t first, size_t n,
	uint64_t offset, const unsigned char *const *ptrs);
/* A read of file @p k failed with @p rc: 0 to go on without it (the
 * callback marks it skipped), or @p rc to stop. */
typedef int (*fdn_agg__fail_fn)(void *ctx, size_t k, int rc);

/* Several update files of the aggregator's layout, read in lockstep. */
typedef struct fdn_agg__reader {
	fdn_aggregator *agg;
	size_t nfiles;
	const int *fds;
	const uint64_t *data_starts;   /* where each file's data begins */
	const char *const *paths;
	unsigned char *const *bufs;    /* nfiles buffers of chunk bytes */
	const unsigned char **ptrs;    /* nfiles entries, for the callback */
	size_t chunk;                  /* >= 8 */
	const bool *skip;              /* NULL, or files to leave out */
	fdn_agg__fail_fn on_fail;      /* NULL: any read failure stops */
	void *ctx;
} fdn_agg__reader;

/* Reads data bytes [0, @p end) of every file (@p end an element
 * boundary), chunk by chunk, and hands each element over exactly once,
 * in model order.  An element cut by a chunk boundary is carried to the
 * front of the next chunk, so any tensor alignment in the files works. */
int fdn_agg__stream(const fdn_agg__reader *r, uint64_t end, fdn_agg__span_fn fn);

/* --- strategy.c ---------------------------------------------------------- */

/* Copies the fields @p in's version covers over the defaults, replaces
 * every 0 by its strategy's default and checks the ranges (NULL = FedAvg
 * with defaults).  0 or FDN_EINVALID naming the bad field. */
int fdn_fedavg__resolve_options(fdn_strategy_options *out,
	const fdn_strategy_options *in);

/* Optimizer slots a strategy keeps per tensor: "m", "v", both, or none. */
bool fdn_fedavg__has_m(int strategy);
bool fdn_fedavg__has_v(int strategy);
/* Median and trimmed mean: every update is kept whole. */
bool fdn_fedavg__is_robust(int strategy);

/* --- kernels.c: loops over n elements of a floating-point dtype -------- */

/* Index of the first NaN or infinity among @p n elements of @p dtype at
 * @p x (any alignment), or @p n when all are finite. */
size_t fdn_fedavg__find_nonfinite(const void *x, int dtype, size_t n);

/* acc[j] = w·x[j] when @p first, else acc[j] += w·x[j]. */
void fdn_fedavg__fold(double *acc, const void *x, int dtype, size_t n,
	double w, bool first);

/* The fold, and true when any of the @p n values is NaN or infinite
 * (they are folded all the same: for callers that can recompute). */
bool fdn_fedavg__fold_checked(double *acc, const void *x, int dtype, size_t n,
	double w, bool first);

/* out[j] = x[j] as a double. */
void fdn_fedavg__load(double *out, const void *x, int dtype, size_t n);

/* out[j] = x[j] rounded to @p dtype, to nearest, ties to even; values
 * past the type's range become infinities. */
void fdn_fedavg__store(void *out, const double *x, int dtype, size_t n);

/* One round's server step, coordinate by coordinate. */
typedef struct fdn_fedavg__step {
	int strategy;
	double lr, momentum, beta1, beta2, tau;
	double total;          /* N = Σ n_k */
	double weights_share;  /* Σ n_k over the updates sent as weights, / N */
} fdn_fedavg__step;

/* With sum[j] = Σ n_k u_k (u_k the update as sent) and x[j] the global
 * model: x[j] becomes the next global model; m[j] and v[j] (when the
 * strategy keeps them; may be NULL otherwise) hold the previous state on
 * entry and the new one on return. */
void fdn_fedavg__server_step(const fdn_fedavg__step *p, size_t n,
	const double *sum, double *x, double *m, double *v);

/* Robust strategies.  cols holds k values per coordinate, coordinate j at
 * cols[j*k .. j*k+k) (reordered in place); out[j] receives the median, or
 * the mean of what is left after dropping @p cut values at each end. */
void fdn_fedavg__median(double *out, double *cols, size_t n, size_t k);
void fdn_fedavg__trimmed_mean(double *out, double *cols, size_t n, size_t k,
	size_t cut);

#endif
