/*
 * libfednode: federated averaging — aggregation strategies, trainers,
 * the federation manifest, the site client and the coordinator.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FEDNODE_FEDAVG_H
#define FEDNODE_FEDAVG_H

#include "common.h"
#include "model.h"
#include "exchange.h"
#include "registry.h"
#include "transport.h"

/** @file fednode/fedavg.h
 *  @brief Federated averaging: aggregation of site updates into the next
 *         global model, the federation manifest, the client and the
 *         coordinator.
 *
 *  An ::fdn_aggregator folds the sites' updates of one round into
 *  double-precision running sums as they arrive, so that memory stays
 *  O(model) whatever the number of sites (FedAvg, FedAvgM, FedAdam,
 *  FedYogi, FedAdagrad).  The robust strategies (coordinate-wise median,
 *  trimmed mean) need every update at once: they keep each one, K times
 *  the model's size for K sites.  The formulas are in doc/federated.md.
 *
 *  The federation manifest, the site client (::fdn_client) and the
 *  coordinator (::fdn_coordinator) run the round protocol over sealed
 *  envelopes in a blob store (doc/federated.md).
 *
 *  Thread safety: an ::fdn_aggregator, ::fdn_client or ::fdn_coordinator
 *  may be used by one thread at a time; an ::fdn_federation is immutable
 *  and may be shared.  Callbacks run on the calling thread.
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

/* ------------------------------------------------------------------ */
/** @name Trainers
 *  The host's training code, called by ::fdn_client.
 *  @{ */

/** What a site trains with in a round; from the federation manifest. */
typedef struct fdn_train_config {
	unsigned int version;     /**< ::FDN_TRAIN_CONFIG_VERSION (library-set). */
	const char *federation;   /**< Federation id. */
	uint64_t round;           /**< From 1. */
	unsigned int local_epochs;
	double learning_rate;
	double proximal_mu;       /**< FedProx μ: add μ/2·‖w − w_global‖²; 0 = none. */
	uint64_t seed;            /**< Derived from the manifest's seed, the round
	                               and the site: deterministic per round. */
	const char *extra_json;   /**< The manifest's "train" object (JSON text). */
} fdn_train_config;

#define FDN_TRAIN_CONFIG_VERSION 1

/**
 * A host's trainer: a versioned vtable (STYLE §6).  Called on the thread
 * that runs fdn_client_run()/fdn_client_step(); may call the library
 * (e.g. iterate the cohort, which is audited), but not the same client.
 */
typedef struct fdn_trainer {
	unsigned int version;   /**< ::FDN_TRAINER_VERSION. */
	/**
	 * Trains from @p global on the cohort @p cohort of @p registry.
	 * Sets @p *out to a new model with the same tensors as @p global
	 * (the library frees it), @p *n_examples to the number of examples
	 * used (> 0), and may write a JSON object of metrics (numbers) to
	 * @p metrics (e.g. {"loss": 0.41, "accuracy": 0.87}).  On failure it
	 * returns non-zero and may write a one-line explanation to @p metrics
	 * instead, which the client's error message then carries.
	 */
	int (*train)(void *payload, const fdn_model *global, fdn_registry *registry,
		const char *cohort, const fdn_train_config *config, fdn_model **out,
		uint64_t *n_examples, fdn_buf *metrics);
	/** Evaluates @p model on the cohort; metrics as for train.  Optional. */
	int (*evaluate)(void *payload, const fdn_model *model, fdn_registry *registry,
		const char *cohort, const fdn_train_config *config,
		uint64_t *n_examples, fdn_buf *metrics);
} fdn_trainer;

#define FDN_TRAINER_VERSION 1

/** @} */

/* ------------------------------------------------------------------ */
/** @name Federation manifest
 *
 *  A federation is described by a manifest the coordinator creates and
 *  signs: the roster of sites with their public keys, the strategy and
 *  its hyper-parameters, the number of rounds, the quorum and the round
 *  deadline, and what the trainers are told.  It is published sealed for
 *  every site as "<id>/manifest.fdne"; each site fetches it, and its
 *  operator approves it (recorded in the site's registry audit log) before
 *  the site takes part.  The JSON format is in doc/federated.md.
 *  @{ */

/** A parsed federation manifest. */
typedef struct fdn_federation fdn_federation;

/** What fdn_federation_create() puts in a manifest. */
typedef struct fdn_federation_options {
	unsigned int version;        /**< ::FDN_FEDERATION_OPTIONS_VERSION. */
	const char *id;              /**< Federation id (as a node id; required). */
	const char *title;           /**< Free text for people; NULL = "". */
	unsigned int rounds;         /**< Rounds to run (1..100000; required). */
	/** Updates needed to close a round; 0 = every site.  A round closes
	 *  when every site has sent its update, or when at least this many
	 *  have and the deadline has passed. */
	unsigned int quorum;
	/** Seconds after a round opens when it may close with the quorum;
	 *  0 = no deadline (the round waits for every site). */
	unsigned int round_timeout_s;
	const fdn_strategy_options *strategy; /**< NULL = FedAvg. */
	int update_form;             /**< An ::fdn_update_form sites send. */
	unsigned int local_epochs;   /**< Passed to trainers; 0 = 1. */
	double learning_rate;        /**< Passed to trainers; 0 = 0.01. */
	/** L2 norm the library clips each update's delta to before sending;
	 *  0 = no clipping. */
	double clip_norm;
	/** Gaussian noise added to each coordinate of the clipped delta, with
	 *  standard deviation noise_multiplier × clip_norm (local
	 *  differential privacy; no privacy accounting is done).  0 = none;
	 *  needs clip_norm. */
	double noise_multiplier;
	uint64_t seed;               /**< Seeds training and noise; 0 = random. */
	const char *model_json;      /**< JSON object describing the model; NULL = {}. */
	const char *train_json;      /**< JSON object passed to trainers; NULL = {}. */
} fdn_federation_options;

#define FDN_FEDERATION_OPTIONS_VERSION 1
#define FDN_FEDERATION_OPTIONS_INIT { FDN_FEDERATION_OPTIONS_VERSION, NULL, NULL, 0, 0, 0, \
	NULL, 0, 0, 0, 0, 0, 0, NULL, NULL }

/** Initialises @p opts to the defaults of @p version.  @return 0; FDN_EINVALID. */
FDN_EXTERN(int) fdn_federation_options_init(fdn_federation_options *opts,
	unsigned int version);

/**
 * Creates a manifest.  The coordinator is @p coordinator; the roster is
 * @p sites, each with its valid keys from @p trust (role site).
 * @return 0; FDN_EINVALID (bad option, no site, duplicate site);
 *         FDN_ENOTFOUND (a site has no valid key in @p trust); FDN_ERROR.
 */
FDN_EXTERN(int) fdn_federation_create(fdn_federation **out,
	const fdn_federation_options *opts, const fdn_identity *coordinator,
	const fdn_trust *trust, const char *const *sites, size_t n_sites);

/**
 * Parses manifest JSON (fdn_federation_json()).  The text is not
 * authenticated: a site takes manifests from fdn_federation_fetch().
 * @return 0; FDN_EFORMAT (the message says what is wrong); FDN_EINVALID.
 */
FDN_EXTERN(int) fdn_federation_parse(fdn_federation **out, const char *json);

/** Frees a manifest.  NULL is a no-op. */
FDN_EXTERN(void) fdn_federation_free(fdn_federation *fed);

/** The manifest as canonical JSON text (keys sorted).  @return 0; FDN_EINVALID; FDN_ERROR. */
FDN_EXTERN(int) fdn_federation_json(fdn_buf *out, const fdn_federation *fed);

/** The federation id; borrowed.  NULL for NULL. */
FDN_EXTERN(const char *) fdn_federation_id(const fdn_federation *fed);

/** The SHA-256 of the canonical JSON, 64 hex digits; borrowed.  What an
 *  approval refers to.  NULL for NULL. */
FDN_EXTERN(const char *) fdn_federation_digest(const fdn_federation *fed);

/** Number of rounds; 0 for NULL. */
FDN_EXTERN(unsigned int) fdn_federation_rounds(const fdn_federation *fed);

/**
 * Seals the manifest for every site of the roster and the coordinator
 * itself and puts it as "<id>/manifest.fdne".
 * @return 0; FDN_EINVALID (@p coordinator is not the manifest's);
 *         as fdn_envelope_seal_buffer() and fdn_transport_put_buffer().
 */
FDN_EXTERN(int) fdn_federation_publish(fdn_transport *t, const fdn_federation *fed,
	const fdn_identity *coordinator, const fdn_trust *trust);

/**
 * Gets and opens "<id>/manifest.fdne": it must be sealed for @p me by a
 * key of @p trust with the coordinator role, and its roster must list
 * @p me (with the keys @p me has) unless @p me is its coordinator.
 * @return 0; FDN_ENOTFOUND (not published); FDN_EAUTH; FDN_EFORMAT; as
 *         the transport.
 */
FDN_EXTERN(int) fdn_federation_fetch(fdn_federation **out, fdn_transport *t,
	const char *federation_id, const fdn_identity *me, const fdn_trust *trust);

/**
 * Records in @p registry's audit log ("federation.approve") that this
 * site's operator approved the manifest (id, digest, roster, strategy).
 * @param note free text, e.g. the approver's name and the ethics vote; may
 *        be NULL.
 * @return 0; FDN_EINVALID; as fdn_registry_audit().
 */
FDN_EXTERN(int) fdn_federation_approve(fdn_registry *registry,
	const fdn_federation *fed, const char *note);

/** @return 0 when @p registry records an approval of exactly this
 *  manifest (same digest); FDN_ENOTFOUND when not; FDN_EINVALID. */
FDN_EXTERN(int) fdn_federation_approved(fdn_registry *registry,
	const fdn_federation *fed);

/** @} */

/* ------------------------------------------------------------------ */
/** @name Client (a site)
 *
 *  The round loop of a site: wait for the round's global model, evaluate
 *  it and train on the cohort (the host's ::fdn_trainer), seal the update
 *  for the coordinator and put it as
 *  "<id>/rounds/<r>/update-<site>.fdne", until the federation ends.
 *  Every round the site takes part in is recorded in its registry audit
 *  log ("round.participate": federation, round, cohort and its snapshot
 *  hash, SHA-256 of the global model and of the update, examples).  A
 *  client that restarts resumes where it stopped: a round already sent is
 *  not trained again.
 *  @{ */

typedef struct fdn_client fdn_client;

/** Client settings. */
typedef struct fdn_client_options {
	unsigned int version;          /**< ::FDN_CLIENT_OPTIONS_VERSION. */
	unsigned int poll_interval_ms; /**< fdn_client_run()'s wait between polls; 0 = 1000. */
	const char *work_dir;          /**< Temporary files; NULL = $TMPDIR or /tmp. */
	fdn_progress_cb progress;      /**< Optional; stage "round", items = rounds. */
	void *progress_payload;
	fdn_cancel *cancel;            /**< Optional; fdn_client_run() returns FDN_ECANCELLED. */
} fdn_client_options;

#define FDN_CLIENT_OPTIONS_VERSION 1
#define FDN_CLIENT_OPTIONS_INIT { FDN_CLIENT_OPTIONS_VERSION, 0, NULL, NULL, NULL, NULL }

/** Initialises @p opts to the defaults of @p version.  @return 0; FDN_EINVALID. */
FDN_EXTERN(int) fdn_client_options_init(fdn_client_options *opts, unsigned int version);

/**
 * Creates a site's client.  Everything passed is borrowed and must
 * outlive the client; @p trust must hold the coordinator's key.
 * The federation's manifest is fetched and its approval checked at the
 * first step.
 * @return 0; FDN_EINVALID; FDN_ERROR.
 */
FDN_EXTERN(int) fdn_client_new(fdn_client **out, fdn_transport *transport,
	const fdn_identity *me, const fdn_trust *trust, fdn_registry *registry,
	const char *federation_id, const char *cohort,
	const fdn_trainer *trainer, void *trainer_payload,
	const fdn_client_options *opts);

/** Frees a client.  NULL is a no-op. */
FDN_EXTERN(void) fdn_client_free(fdn_client *client);

/** What a step did. */
typedef enum fdn_client_state {
	FDN_CLIENT_WAITING = 0,  /**< Nothing new yet: poll again later. */
	FDN_CLIENT_SENT = 1,     /**< Trained on a round and sent the update. */
	FDN_CLIENT_FINISHED = 2  /**< The federation has ended. */
} fdn_client_state;

/**
 * One step, for hosts with their own event loop: polls the store once
 * (cheaply: a conditional GET of "<id>/latest"), and when a round this
 * site has not done is open, runs it (which blocks for the training).
 * @param state receives an ::fdn_client_state.
 * @return 0; FDN_EAUTH (the manifest is not approved in the registry, or
 *         an envelope failed verification: nothing of it was used);
 *         transport errors (the step may simply be retried); the
 *         trainer's error; FDN_ERROR.
 */
FDN_EXTERN(int) fdn_client_step(fdn_client *client, int *state);

/**
 * Steps until the federation ends, sleeping opts->poll_interval_ms
 * between polls.  Transient transport errors (FDN_EIO) are logged and
 * retried.
 * @return 0 when the federation has ended; FDN_ECANCELLED; as
 *         fdn_client_step() for the other errors.
 */
FDN_EXTERN(int) fdn_client_run(fdn_client *client);

/** The last round this client sent an update for (0: none). */
FDN_EXTERN(uint64_t) fdn_client_round(const fdn_client *client);

/**
 * The newest global model the client has received (after the federation
 * ended: the final model); borrowed until the next step or the client is
 * freed.
 * @return 0; FDN_ENOTFOUND (none yet); FDN_EINVALID.
 */
FDN_EXTERN(int) fdn_client_model(const fdn_model **out, const fdn_client *client);

/** @} */

/* ------------------------------------------------------------------ */
/** @name Coordinator
 *
 *  Publishes the global model of each round for the roster, collects the
 *  sites' updates, aggregates them streaming with the manifest's strategy
 *  and publishes the result of the round and the next global model, until
 *  the last round.  Each round is checkpointed in a state directory; a
 *  coordinator restarted on the same directory resumes the round it was
 *  in and finishes with the same model as an uninterrupted run.
 *  @{ */

typedef struct fdn_coordinator fdn_coordinator;

/** Coordinator settings. */
typedef struct fdn_coordinator_options {
	unsigned int version;          /**< ::FDN_COORDINATOR_OPTIONS_VERSION. */
	unsigned int poll_interval_ms; /**< fdn_coordinator_run()'s wait between polls; 0 = 1000. */
	fdn_progress_cb progress;      /**< Optional; stage "round", items = rounds. */
	void *progress_payload;
	fdn_cancel *cancel;            /**< Optional. */
} fdn_coordinator_options;

#define FDN_COORDINATOR_OPTIONS_VERSION 1
#define FDN_COORDINATOR_OPTIONS_INIT { FDN_COORDINATOR_OPTIONS_VERSION, 0, NULL, NULL, NULL }

/** Initialises @p opts to the defaults of @p version.  @return 0; FDN_EINVALID. */
FDN_EXTERN(int) fdn_coordinator_options_init(fdn_coordinator_options *opts,
	unsigned int version);

/**
 * Creates the coordinator of @p fed (whose coordinator must be @p me).
 * When @p state_dir holds a checkpoint of this federation the coordinator
 * resumes from it and @p initial is ignored; else it starts at round 1
 * from @p initial (copied) and publishes the manifest if the store has
 * none.
 * @param state_dir a directory private to this coordinator (created, mode
 *        0700, when it does not exist; its parent must).
 * @return 0; FDN_EINVALID; FDN_ECONFLICT (the checkpoint belongs to
 *         another manifest); FDN_EIO; FDN_ERROR.
 */
FDN_EXTERN(int) fdn_coordinator_new(fdn_coordinator **out, fdn_transport *transport,
	const fdn_identity *me, const fdn_trust *trust, const fdn_federation *fed,
	const fdn_model *initial, const char *state_dir,
	const fdn_coordinator_options *opts);

/** Frees a coordinator (its checkpoint stays).  NULL is a no-op. */
FDN_EXTERN(void) fdn_coordinator_free(fdn_coordinator *coord);

/** What a coordinator step did. */
typedef enum fdn_coordinator_state {
	FDN_COORDINATOR_WAITING = 0,  /**< Round open, waiting for updates. */
	FDN_COORDINATOR_CLOSED = 1,   /**< Closed a round and opened the next. */
	FDN_COORDINATOR_FINISHED = 2  /**< The last round is closed. */
} fdn_coordinator_state;

/**
 * One step: publishes what is due, collects the updates that arrived
 * (each verified and checked, then folded in; a rejected update is
 * logged and recorded in the round's result), and closes the round when
 * it can.
 * @param state receives an ::fdn_coordinator_state.
 */
FDN_EXTERN(int) fdn_coordinator_step(fdn_coordinator *coord, int *state);

/** Steps until the last round is closed (see fdn_client_run()). */
FDN_EXTERN(int) fdn_coordinator_run(fdn_coordinator *coord);

/** The current round (the last one when finished). */
FDN_EXTERN(uint64_t) fdn_coordinator_round(const fdn_coordinator *coord);

/** The current global model (after the last round: the final one);
 *  borrowed until the next step.  @return 0; FDN_EINVALID. */
FDN_EXTERN(int) fdn_coordinator_model(const fdn_model **out,
	const fdn_coordinator *coord);

/**
 * The results of every closed round as a JSON array: per round the sites
 * aggregated (examples, weight, metrics), the updates rejected and why,
 * the late ones, and the SHA-256 of the global models.
 * @return 0; FDN_EINVALID; FDN_ERROR.
 */
FDN_EXTERN(int) fdn_coordinator_results(fdn_buf *out, const fdn_coordinator *coord);

/** @} */

FDN_END_DECL

#endif
