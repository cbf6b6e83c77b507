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
