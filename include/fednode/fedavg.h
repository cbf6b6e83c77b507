/*
 * libfednode: federated averaging — aggregation strategies (the client,
 * the coordinator and the federation manifest follow).
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FEDNODE_FEDAVG_H
#define FEDNODE_FEDAVG_H

#include "common.h"
#include "model.h"

/** @file fednode/fedavg.h
 *  @brief Aggregation of site updates into the next global model.
 *
 *  An ::fdn_aggregator folds the sites' updates of one round into
 *  double-precision running sums as they arrive, so that memory stays
 *  O(model) whatever the number of sites (FedAvg, FedAvgM, FedAdam,
 *  FedYogi, FedAdagrad).  The robust strategies (coordinate-wise median,
 *  trimmed mean) need every update at once: they keep each one, K times
 *  the model's size for K sites.  The formulas are in doc/federated.md.
 *
 *  Thread safety: an ::fdn_aggregator may be used by one thread at a
 *  time.
 */

FDN_BEGIN_DECL

/** Aggregation strategies.  Values are part of the ABI. */
typedef enum fdn_strategy {
	FDN_STRATEGY_INVALID = 0,
	FDN_STRATEGY_FEDAVG = 1,      /**< Sample-weighted mean (McMahan et al. 2017). */
	FDN_STRATEGY_FEDAVGM = 2,     /**< FedAvg with server momentum. */
	FDN_STRATEGY_FEDADAGRAD = 3,  /**< Server Adagrad (Reddi et al. 2021). */
	FDN_STRATEGY_FEDADAM = 4,     /**< Server Adam (Reddi et al. 2021). */
	FDN_STRATEGY_FEDYOGI = 5,     /**< Server Yogi (Reddi et al. 2021). */
	FDN_STRATEGY_FEDPROX = 6,     /**< FedAvg on the server; μ acts on the clients. */
	FDN_STRATEGY_MEDIAN = 7,      /**< Coordinate-wise median (unweighted). */
	FDN_STRATEGY_TRIMMED_MEAN = 8 /**< Coordinate-wise trimmed mean (unweighted). */
} fdn_strategy;

/** Name of a strategy ("fedavg", "fedavgm", "fedadagrad", "fedadam",
 *  "fedyogi", "fedprox", "median", "trimmed-mean"); NULL when unknown. */
FDN_EXTERN(const char *) fdn_strategy_name(int strategy);

/** Parses a strategy name.  @return 0; FDN_EINVALID. */
FDN_EXTERN(int) fdn_strategy_from_name(int *out, const char *name);

/** A strategy and its hyper-parameters. */
typedef struct fdn_strategy_options {
	unsigned int version;     /**< ::FDN_STRATEGY_OPTIONS_VERSION. */
	int strategy;             /**< An ::fdn_strategy; 0 = FedAvg. */
	double server_lr;         /**< η; 0 = 1.0 (FedAvg/FedAvgM), 0.1 (adaptive). */
	double momentum;          /**< FedAvgM β; 0 = 0.9. */
	double beta1;             /**< Adam/Yogi β1; 0 = 0.9. */
	double beta2;             /**< Adam/Yogi β2; 0 = 0.99. */
	double tau;               /**< Adaptivity τ; 0 = 1e-3. */
	double trim;              /**< Trimmed mean: fraction cut at each end,
	                               0 = 0.1; must be < 0.5. */
	double proximal_mu;       /**< FedProx μ, passed to the clients; 0 = none. */
} fdn_strategy_options;

#define FDN_STRATEGY_OPTIONS_VERSION 1
#define FDN_STRATEGY_OPTIONS_INIT { FDN_STRATEGY_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0 }

/** Initialises @p opts to the defaults of @p version.  @return 0; FDN_EINVALID. */
FDN_EXTERN(int) fdn_strategy_options_init(fdn_strategy_options *opts, unsigned int version);

/** One round's aggregation. */
typedef struct fdn_aggregator fdn_aggregator;

/**
 * Starts a round's aggregation.
 * @param global the round's global model: the reference every update
 *        must match (same tensor names in the same order, dtypes and
 *        shapes) and the point server optimizers step from.  Borrowed:
 *        it must outlive the aggregator.
 * @param state the server optimizer's state from the previous round
 *        (fdn_aggregator_finish()), or NULL in the first round and for
 *        stateless strategies.  Borrowed likewise.
 * @param opts NULL = FedAvg.
 * @return 0; FDN_EINVALID (bad options; a tensor of @p global that is not
 *         a floating-point dtype: F32, F64, F16, BF16; @p state that does
 *         not fit @p global); FDN_ERROR.
 */
FDN_EXTERN(int) fdn_aggregator_new(fdn_aggregator **out, const fdn_model *global,
	const fdn_model *state, const fdn_strategy_options *opts);

/** Frees an aggregator.  NULL is a no-op. */
FDN_EXTERN(void) fdn_aggregator_free(fdn_aggregator *agg);

/** What an update holds. */
typedef enum fdn_update_form {
	FDN_UPDATE_WEIGHTS = 0, /**< The site's new weights. */
	FDN_UPDATE_DELTA = 1    /**< New weights minus the global model. */
} fdn_update_form;

/**
 * Folds one site's update in.  Nothing of @p update is kept after the
 * call (except by the robust strategies, which copy it into their own
 * storage).  An update is rejected, and nothing of it folded in, when a
 * tensor name, order, dtype or shape differs from the global model, or
 * when a value is NaN or infinite.
 * @param weight the number of training examples behind it (> 0); the
 *        median and trimmed mean ignore it.
 * @param form an ::fdn_update_form.
 * @return 0; FDN_EINVALID (bad argument, mismatch: the message names the
 *         tensor; NaN/Inf: the message names the tensor and index);
 *         FDN_ERROR.
 */
FDN_EXTERN(int) fdn_aggregator_add(fdn_aggregator *agg, const fdn_model *update,
	double weight, int form);

/**
 * As fdn_aggregator_add(), reading the safetensors file @p path in
 * bounded chunks rather than mapping it whole: the memory it needs does
 * not grow with the update's size.
 * @return as fdn_aggregator_add(); FDN_ENOTFOUND, FDN_EIO, FDN_EFORMAT.
 */
FDN_EXTERN(int) fdn_aggregator_add_file(fdn_aggregator *agg, const char *path,
	double weight, int form);

/**
 * Folds in @p n updates at once: exactly what fdn_aggregator_add() on
 * each in turn would do (the same sums bit for bit, the same
 * rejections, each update accepted or rejected on its own), but faster
 * when the updates are at hand together, as at a round's deadline.
 *
 * When these are the round's first updates (fdn_aggregator_count() is 0)
 * of a streaming strategy, the model is walked once, block by block:
 * each block of every update is checked, then folded while the block of
 * sums is still in cache, so an update's bytes are read once and the
 * sums are not swept again for every update.  (A rejected update's
 * blocks that were already folded are then recomputed from the others.)
 * Otherwise, and for the robust strategies, it is the plain loop.
 *
 * @param updates @p n models; @p weights their weights; @p forms their
 *        ::fdn_update_form, or NULL for all FDN_UPDATE_WEIGHTS.
 * @param status_out NULL, or @p n entries: 0 or the error code each
 *        update got.
 * @return 0 when every update was accepted; otherwise the code of the
 *         first rejected one (by position), with its message ("update 3:
 *         tensor 'w': NaN at index 7"); the valid ones are folded in all
 *         the same.  FDN_EINVALID for bad arguments (nothing folded,
 *         @p status_out untouched).
 */
FDN_EXTERN(int) fdn_aggregator_add_batch(fdn_aggregator *agg, size_t n,
	const fdn_model *const *updates, const double *weights, const int *forms,
	int *status_out);

/**
 * As fdn_aggregator_add_batch() for safetensors files, read in bounded
 * chunks with pread (all of them in lockstep: about 8 MiB of buffers in
 * all, at most 64 files open at a time; past 64 files, or after earlier
 * updates, the rest are added one by one).  A file that cannot be read
 * is rejected like an invalid one (FDN_ENOTFOUND, FDN_EIO, FDN_EFORMAT).
 */
FDN_EXTERN(int) fdn_aggregator_add_files(fdn_aggregator *agg, size_t n,
	const char *const *paths, const double *weights, const int *forms,
	int *status_out);

/** Number of updates folded in so far. */
FDN_EXTERN(size_t) fdn_aggregator_count(const fdn_aggregator *agg);

/**
 * Computes the next global model (same names, dtypes and shapes as the
 * round's global model; metadata copied from it) and the strategy's new
 * state (NULL for stateless strategies).  The aggregator cannot take
 * more updates afterwards.
 * @param global_out receives the new model; free with fdn_model_free().
 * @param state_out receives the new state or NULL; may be NULL itself
 *        when the caller does not keep state.
 * @return 0; FDN_EINVALID (no update folded in; called twice); FDN_ERROR.
 */
FDN_EXTERN(int) fdn_aggregator_finish(fdn_aggregator *agg, fdn_model **global_out,
	fdn_model **state_out);

/**
 * As fdn_aggregator_finish(), writing the new global model straight to
 * the safetensors file @p path (atomically) instead of into memory.
 */
FDN_EXTERN(int) fdn_aggregator_finish_file(fdn_aggregator *agg, const char *path,
	fdn_model **state_out);

FDN_END_DECL

#endif
