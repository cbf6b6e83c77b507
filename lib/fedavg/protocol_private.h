/*
 * libfednode: what the federation manifest, the client and the
 * coordinator share.  Not installed.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_FEDAVG_PROTOCOL_PRIVATE_H
#define FDN_FEDAVG_PROTOCOL_PRIVATE_H

#include <stdbool.h>

#include "fednode/fedavg.h"
#include "core/core_private.h"

/* One site of the roster. */
typedef struct fdn_fedavg__site {
	char node_id[FDN_NODE_ID_MAX + 1];
} fdn_fedavg__site;

/* A parsed manifest; every value resolved (no "0 = default" left). */
struct fdn_federation {
	char id[FDN_FEDERATION_ID_MAX + 1];
	char coordinator[FDN_NODE_ID_MAX + 1];
	unsigned char coordinator_ed25519[FDN_PUBLIC_KEY_BYTES];
	fdn_fedavg__site *sites;
	size_t n_sites;
	unsigned int rounds, quorum, round_timeout_s;
	fdn_strategy_options strategy;
	int update_form;
	unsigned int local_epochs;
	double learning_rate, clip_norm, noise_multiplier;
	uint64_t seed;
	char *train_json;       /* the "train.extra" object, compact */
	char *json;             /* canonical text */
	char digest[65];        /* SHA-256 hex of json */
};

/* Metadata a client puts in its update and the coordinator reads. */
#define FDN_FEDAVG__META_EXAMPLES "fednode.examples" /* decimal count */
#define FDN_FEDAVG__META_METRICS "fednode.metrics"   /* {"eval": {..}, "train": {..}} */
#define FDN_FEDAVG__META_ROUND "fednode.round"
#define FDN_FEDAVG__META_SITE "fednode.site"

/* Store keys ("<id>/..."), written into out (FDN_TRANSPORT_KEY_MAX + 1). */
void fdn_fedavg__key_manifest(char *out, const char *fed);
void fdn_fedavg__key_latest(char *out, const char *fed);
void fdn_fedavg__key_global(char *out, const char *fed, uint64_t round);
void fdn_fedavg__key_update(char *out, const char *fed, uint64_t round, const char *site);
void fdn_fedavg__key_result(char *out, const char *fed, uint64_t round);

bool fdn_fedavg__in_roster(const fdn_federation *fed, const char *node_id);
/* The roster's node ids (borrowed from fed) + the coordinator, for sealing. */
int fdn_fedavg__recipients(const char ***out, size_t *n, const fdn_federation *fed,
	bool with_sites);

/* SHA-256 hex of a file's content (streamed). */
int fdn_fedavg__file_sha256(char out[65], const char *path);
/* A fresh temporary path "<dir>/.fdn-<what>-XXXXXX" (file created 0600). */
int fdn_fedavg__temp_path(char **out, const char *dir, const char *what);

/* Seals the file @p plain_path and puts it under @p key. */
int fdn_fedavg__put_sealed(fdn_transport *t, const char *key, const char *plain_path,
	const char *work_dir, const fdn_identity *me, const fdn_trust *trust,
	const char *const *to, size_t n_to, int kind, const char *fed, uint64_t round);
/* Seals memory and puts it. */
int fdn_fedavg__put_sealed_buffer(fdn_transport *t, const char *key, const void *data,
	size_t len, const fdn_identity *me, const fdn_trust *trust,
	const char *const *to, size_t n_to, int kind, const char *fed, uint64_t round);
/* Gets @p key and opens it into @p out_path (replaced only when verified). */
int fdn_fedavg__get_opened(fdn_transport *t, const char *key, const char *out_path,
	const char *work_dir, const fdn_identity *me, const fdn_trust *trust,
	int kind, const char *fed, uint64_t round, const char *sender, int role);
/* Gets @p key and opens it into memory.  @p etag/not_modified as in
 * fdn_transport_get_buffer() when @p etag is not NULL. */
int fdn_fedavg__get_opened_buffer(fdn_transport *t, const char *key, fdn_buf *out,
	char *etag, int *not_modified, const fdn_identity *me, const fdn_trust *trust,
	int kind, const char *fed, uint64_t round, const char *sender, int role);

/* Sleeps @p ms, or less when @p cancel is signalled; FDN_ECANCELLED then. */
int fdn_fedavg__nap(unsigned int ms, const fdn_cancel *cancel);

/* The blocking loop of fdn_client_run() and fdn_coordinator_run(): steps
 * until @p step reports @p finished, at once again after @p progressed,
 * else after @p poll_ms; FDN_EIO (and FDN_ENOTFOUND with
 * @p retry_missing) is logged and retried. */
int fdn_fedavg__run(int (*step)(void *obj, int *state), void *obj, int finished,
	int progressed, bool retry_missing, unsigned int poll_ms, const fdn_cancel *cancel,
	const char *fed);

/* Largest small JSON envelope (manifest, latest, result) accepted. */
#define FDN_FEDAVG__SMALL_MAX (16u << 20)

#endif
