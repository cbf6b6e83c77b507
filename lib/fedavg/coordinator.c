/*
 * The coordinator (fedavg.h, "Coordinator").
 *
 * State directory:
 *   checkpoint.json          {"federation", "digest", "round", "opened_at",
 *                             "finished", "results": [...]}, replaced
 *                             atomically when a round closes: the commit
 *                             point of a round
 *   global-<r>.safetensors   the global model of round r
 *   server-<r>.safetensors   the strategy's state going into round r
 * A coordinator that restarts reloads the checkpoint, publishes the open
 * round again (puts are idempotent) and folds in again every update the
 * store holds for it.  Sums are kept in double precision, so the order
 * the updates arrive in does not change the float result: the restarted
 * run ends with the same model.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "protocol_private.h"

/* What happened to a site's update in the open round. */
enum site_status { SITE_PENDING = 0, SITE_FOLDED, SITE_REJECTED };

typedef struct site_state {
	int status;
	char etag[FDN_ETAG_MAX + 1]; /* of a rejected update: retried when it changes */
	bool late_logged;            /* a late update for the previous round was seen */
} site_state;

struct fdn_coordinator {
	fdn_transport *t;
	const fdn_identity *me;
	const fdn_trust *trust;
	const fdn_federation *fed;
	char *dir;
	fdn_coordinator_options opts;

	uint64_t round;
	bool finished;
	bool published;          /* this process has published the open round */
	bool deadline_logged;
	int64_t opened_at;       /* seconds since 1970 */
	fdn_model *global;       /* global-<round> */
	fdn_model *state;        /* server-<round>, NULL for none */
	fdn_aggregator *agg;
	site_state *sites;       /* per roster entry */
	size_t folded;
	json_t *results;         /* closed rounds */
	json_t *aggregated;      /* open round: [{site, examples, metrics}] */
	json_t *rejected;        /* open round: [{site, reason}] */
	json_t *late;            /* open round: [{site, round}] */
	double started;
};

int fdn_coordinator_options_init(fdn_coordinator_options *opts, unsigned int version)
{
	static const fdn_coordinator_options init = FDN_COORDINATOR_OPTIONS_INIT;

	FDN__CHECK_ARG(opts, "opts");
	if (version == 0 || version > FDN_COORDINATOR_OPTIONS_VERSION)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_coordinator_options: unsupported version %u", version);
	*opts = init;
	opts->version = version;
	return 0;
}

static char *state_path(const fdn_coordinator *c, const char *what, uint64_t round)
{
	size_t len = strlen(c->dir) + 64;
	char *p = fdn__malloc(len);

	if (p) {
		if (round)
			snprintf(p, len, "%s/%s-%" PRIu64 ".safetensors", c->dir, what, round);
		else
			snprintf(p, len, "%s/%s", c->dir, what);
	}
	return p;
}

static void round_reset(fdn_coordinator *c)
{
	fdn_aggregator_free(c->agg);
	c->agg = NULL;
	json_decref(c->aggregated);
	json_decref(c->rejected);
	json_decref(c->late);
	c->aggregated = json_array();
	c->rejected = json_array();
	c->late = json_array();
	c->folded = 0;
	c->published = false;
	c->deadline_logged = false;
	for (size_t i = 0; i < c->fed->n_sites; i++) {
		c->sites[i].status = SITE_PENDING;
		c->sites[i].etag[0] = '\0';
		c->sites[i].late_logged = false;
	}
}

void fdn_coordinator_free(fdn_coordinator *c)
{
	if (!c)
		return;
	fdn_aggregator_free(c->agg);
	fdn_model_free(c->global);
	fdn_model_free(c->state);
	json_decref(c->results);
	json_decref(c->aggregated);
	json_decref(c->rejected);
	json_decref(c->late);
	fdn__free(c->sites);
	fdn__free(c->dir);
	fdn__free(c);
}

uint64_t fdn_coordinator_round(const fdn_coordinator *c)
{
	return c ? c->round : 0;
}

int fdn_coordinator_model(const fdn_model **out, const fdn_coordinator *c)
{
	FDN__CHECK_ARG(out && c, "out, coord");
	*out = c->global;
	return 0;
}

int fdn_coordinator_results(fdn_buf *out, const fdn_coordinator *c)
{
	char *text;
	int rc;

	FDN__CHECK_ARG(out && c, "out, coord");
	if (!(text = json_dumps(c->results, JSON_SORT_KEYS | JSON_COMPACT)))
		return fdn__error_oom();
	fdn_buf__clear(out);
	rc = fdn_buf__put(out, text, strlen(text));
	free(text);
	return rc;
}

/* --- checkpoint ---------------------------------------------------------- */

static int save_checkpoint(const fdn_coordinator *c)
{
	char *path = state_path(c, "checkpoint.json", 0), *text = NULL;
	fdn_atomic_file af;
	json_t *cp;
	int rc;

	cp = json_pack("{s:s, s:s, s:I, s:I, s:b, s:O}", "federation", c->fed->id,
		"digest", c->fed->digest, "round", (json_int_t)c->round,
		"opened_at", (json_int_t)c->opened_at, "finished", c->finished,
		"results", c->results);
	if (!path || !cp || !(text = json_dumps(cp, JSON_SORT_KEYS | JSON_INDENT(1)))) {
		rc = fdn__error_oom();
		goto out;
	}
	if ((rc = fdn__atomic_open(&af, path)) < 0)
		goto out;
	if ((rc = fdn__atomic_write(&af, text, strlen(text))) < 0) {
		fdn__atomic_abort(&af);
		goto out;
	}
	rc = fdn__atomic_commit(&af);
out:
	free(text);
	json_decref(cp);
	fdn__free(path);
	return rc;
}

/* Loads the checkpoint; FDN_ENOTFOUND when there is none. */
static int load_checkpoint(fdn_coordinator *c)
{
	char *path = state_path(c, "checkpoint.json", 0);
	json_error_t jerr;
	json_t *cp;
	const char *digest;
	int rc = 0;

	if (!path)
		return fdn__error_oom();
	if (access(path, F_OK) != 0) {
		fdn__free(path);
		return FDN_ENOTFOUND;
	}
	cp = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	digest = json_string_value(json_object_get(cp, "digest"));
	if (!cp || !digest || json_integer_value(json_object_get(cp, "round")) < 1 ||
			!json_is_array(json_object_get(cp, "results"))) {
		rc = fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_FEDAVG,
			"%s is not a coordinator checkpoint", path);
	} else if (strcmp(digest, c->fed->digest) != 0) {
		rc = fdn__error_set(FDN_ECONFLICT, FDN_ERRCLASS_FEDAVG,
			"%s belongs to another manifest (%.16s..., not %.16s...)", path, digest,
			c->fed->digest);
	} else {
		c->round = (uint64_t)json_integer_value(json_object_get(cp, "round"));
		c->opened_at = json_integer_value(json_object_get(cp, "opened_at"));
		c->finished = json_is_true(json_object_get(cp, "finished"));
		json_decref(c->results);
		c->results = json_incref(json_object_get(cp, "results"));
	}
	json_decref(cp);
	fdn__free(path);
	return rc;
}

/* Maps global-<round> and server-<round> (if any). */
static int load_round_models(fdn_coordinator *c)
{
	char *g = state_path(c, "global", c->round), *s = state_path(c, "server", c->round);
	int rc;

	if (!g || !s) {
		rc = fdn__error_oom();
		goto out;
	}
	fdn_model_free(c->global);
	fdn_model_free(c->state);
	c->global = c->state = NULL;
	if ((rc = fdn_model_read_file(&c->global, g, FDN_MODEL_READ_DEFAULT)) < 0)
		goto out;
	if (access(s, F_OK) == 0)
		rc = fdn_model_read_file(&c->state, s, FDN_MODEL_READ_DEFAULT);
out:
	fdn__free(g);
	fdn__free(s);
	return rc;
}

int fdn_coordinator_new(fdn_coordinator **out, fdn_transport *transport,
	const fdn_identity *me, const fdn_trust *trust, const fdn_federation *fed,
	const fdn_model *initial, const char *state_dir,
	const fdn_coordinator_options *opts)
{
	fdn_coordinator *c;
	char *path;
	int rc;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	FDN__CHECK_ARG(transport && me && trust && fed && state_dir,
		"transport, me, trust, fed, state_dir");
	FDN__CHECK_VERSION(opts, FDN_COORDINATOR_OPTIONS_VERSION,
			"fdn_coordinator_options");
	if (strcmp(fdn_identity_node_id(me), fed->coordinator) != 0)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
			"%s is not the coordinator of federation %s (%s is)",
			fdn_identity_node_id(me), fed->id, fed->coordinator);
	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST)
		return fdn__error_os(errno, "cannot create the state directory %s", state_dir);
	if (!(c = fdn__calloc(1, sizeof(*c))))
		return fdn__error_oom();
	c->t = transport;
	c->me = me;
	c->trust = trust;
	c->fed = fed;
	fdn_coordinator_options_init(&c->opts, FDN_COORDINATOR_OPTIONS_VERSION);
	if (opts)
		memcpy(&c->opts, opts, sizeof(c->opts));
	if (!c->opts.poll_interval_ms)
		c->opts.poll_interval_ms = 1000;
	c->started = fdn__monotonic_seconds();
	c->dir = fdn__strdup(state_dir);
	c->sites = fdn__calloc(fed->n_sites, sizeof(*c->sites));
	c->results = json_array();
	if (!c->dir || !c->sites || !c->results) {
		rc = fdn__error_oom();
		goto fail;
	}
	round_reset(c);
	rc = load_checkpoint(c);
	if (rc == FDN_ENOTFOUND) {
		/* A new federation: round 1 from the initial model. */
		if (!initial) {
			rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
				"no checkpoint in %s and no initial model", state_dir);
			goto fail;
		}
		c->round = 1;
		c->opened_at = (int64_t)time(NULL);
		if (!(path = state_path(c, "global", 1))) {
			rc = fdn__error_oom();
			goto fail;
		}
		rc = fdn_model_write_file(initial, path);
		fdn__free(path);
		if (rc == 0)
			rc = save_checkpoint(c);
	} else if (rc == 0) {
		fdn__log(FDN_LOG_INFO, "fedavg", "federation %s: resuming at round %" PRIu64,
			fed->id, c->round);
	}
	if (rc == 0)
		rc = load_round_models(c);
	if (rc < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	fdn_coordinator_free(c);
	return rc;
}

/* --- publishing ---------------------------------------------------------- */

static int publish_latest(fdn_coordinator *c)
{
	char key[FDN_TRANSPORT_KEY_MAX + 1];
	const char **to = NULL;
	size_t n = 0;
	char *text;
	json_t *o;
	int rc;

	o = json_pack("{s:s, s:I, s:b}", "federation", c->fed->id, "round", (json_int_t)c->round,
		"finished", c->finished);
	text = o ? json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return fdn__error_oom();
	if ((rc = fdn_fedavg__recipients(&to, &n, c->fed, true)) == 0) {
		fdn_fedavg__key_latest(key, c->fed->id);
		rc = fdn_fedavg__put_sealed_buffer(c->t, key, text, strlen(text), c->me, c->trust,
			to, n, FDN_ENVELOPE_LATEST, c->fed->id, 0);
		fdn__free(to);
	}
	free(text);
	return rc;
}

/* Publishes the manifest (when the store lacks it), the open round's global
 * model and the pointer to it. */
static int publish_round(fdn_coordinator *c)
{
	fdn_object_info info = FDN_OBJECT_INFO_INIT;
	char key[FDN_TRANSPORT_KEY_MAX + 1];
	char *path = NULL;
	const char **to = NULL;
	size_t n = 0;
	int rc;

	fdn_fedavg__key_manifest(key, c->fed->id);
	rc = fdn_transport_head(c->t, key, &info);
	if (rc == FDN_ENOTFOUND)
		rc = fdn_federation_publish(c->t, c->fed, c->me, c->trust);
	if (rc < 0)
		return rc;
	if (!(path = state_path(c, "global", c->round)))
		return fdn__error_oom();
	if ((rc = fdn_fedavg__recipients(&to, &n, c->fed, true)) == 0) {
		fdn_fedavg__key_global(key, c->fed->id, c->round);
		rc = fdn_fedavg__put_sealed(c->t, key, path, c->dir, c->me, c->trust, to, n,
			FDN_ENVELOPE_GLOBAL, c->fed->id, c->round);
		fdn__free(to);
	}
	fdn__free(path);
	if (rc == 0)
		rc = publish_latest(c);
	if (rc == 0)
		c->published = true;
	return rc;
}

static int publish_result(fdn_coordinator *c, json_t *result, uint64_t round)
{
	char key[FDN_TRANSPORT_KEY_MAX + 1];
	char *text = json_dumps(result, JSON_SORT_KEYS | JSON_COMPACT);
	const char **to = NULL;
	size_t n = 0;
	int rc;

	if (!text)
		return fdn__error_oom();
	if ((rc = fdn_fedavg__recipients(&to, &n, c->fed, true)) == 0) {
		fdn_fedavg__key_result(key, c->fed->id, round);
		rc = fdn_fedavg__put_sealed_buffer(c->t, key, text, strlen(text), c->me, c->trust,
			to, n, FDN_ENVELOPE_RESULT, c->fed->id, round);
		fdn__free(to);
	}
	free(text);
	return rc;
}

/* --- collecting ---------------------------------------------------------- */

static void reject(fdn_coordinator *c, size_t i, const char *etag, const char *reason)
{
	site_state *s = &c->sites[i];

	fdn__log(FDN_LOG_WARN, "fedavg", "federation %s round %" PRIu64
		": update of %s rejected: %s", c->fed->id, c->round, c->fed->sites[i].node_id, reason);
	s->status = SITE_REJECTED;
	snprintf(s->etag, sizeof(s->etag), "%s", etag);
	json_array_append_new(c->rejected, json_pack("{s:s, s:s}", "site",
		c->fed->sites[i].node_id, "reason", reason));
}

/* Reads the examples count and metrics the client put in the metadata. */
static int update_labels(const fdn_model *m, double *examples, json_t **metrics)
{
	const char *n = NULL, *text = NULL;
	char *end = NULL;
	double v;

	if (fdn_model_get_metadata(&n, m, FDN_FEDAVG__META_EXAMPLES) < 0 || !n ||
			(v = strtod(n, &end), *end) || !(v >= 1) || v > 9007199254740992.0)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
			"the update does not say how many examples it comes from");
	*examples = v;
	if (fdn_model_get_metadata(&text, m, FDN_FEDAVG__META_METRICS) == 0 && text)
		*metrics = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(*metrics)) {
		json_decref(*metrics);
		*metrics = json_object();
	}
	return 0;
}

/* Gets, verifies and folds in site @p i's update if the store has one. */
static int collect_site(fdn_coordinator *c, size_t i)
{
	fdn_object_info info = FDN_OBJECT_INFO_INIT;
	const char *site = c->fed->sites[i].node_id;
	char key[FDN_TRANSPORT_KEY_MAX + 1];
	char *path = NULL;
	fdn_model *m = NULL;
	json_t *metrics = NULL;
	double examples = 0;
	int rc;

	fdn_fedavg__key_update(key, c->fed->id, c->round, site);
	rc = fdn_transport_head(c->t, key, &info);
	if (rc == FDN_ENOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	if (c->sites[i].status == SITE_REJECTED && strcmp(info.etag, c->sites[i].etag) == 0)
		return 0; /* the same rejected object: nothing new */
	if ((rc = fdn_fedavg__temp_path(&path, c->dir, "update")) < 0)
		return rc;
	rc = fdn_fedavg__get_opened(c->t, key, path, c->dir, c->me, c->trust,
		FDN_ENVELOPE_UPDATE, c->fed->id, c->round, site, FDN_TRUST_ROLE_SITE);
	if (rc == 0)
		rc = fdn_model_read_file(&m, path, FDN_MODEL_READ_DEFAULT);
	if (rc == 0)
		rc = update_labels(m, &examples, &metrics);
	if (rc == 0)
		rc = fdn_aggregator_add(c->agg, m, examples, c->fed->update_form);
	fdn_model_free(m);
	unlink(path);
	fdn__free(path);
	if (rc == FDN_EAUTH || rc == FDN_EFORMAT || rc == FDN_EINVALID) {
		reject(c, i, info.etag, fdn_error_last()->message);
		json_decref(metrics);
		return 0;
	}
	if (rc < 0) {
		json_decref(metrics);
		return rc;
	}
	c->sites[i].status = SITE_FOLDED;
	c->folded++;
	json_array_append_new(c->aggregated, json_pack("{s:s, s:f, s:o}", "site", site,
		"examples", examples, "metrics", metrics));
	fdn__log(FDN_LOG_INFO, "fedavg", "federation %s round %" PRIu64 ": update of %s folded in"
		" (%zu of %zu)", c->fed->id, c->round, site, c->folded, c->fed->n_sites);
	return 0;
}

/* Logs, once per site, an update that arrived for the round just closed. */
static int check_late(fdn_coordinator *c)
{
	json_t *prev = json_array_get(c->results, json_array_size(c->results) - 1);
	json_t *done = json_object_get(prev, "aggregated");

	if (!prev || c->round < 2)
		return 0;
	for (size_t i = 0; i < c->fed->n_sites; i++) {
		fdn_object_info info = FDN_OBJECT_INFO_INIT;
		char key[FDN_TRANSPORT_KEY_MAX + 1];
		const char *site = c->fed->sites[i].node_id;
		bool was_folded = false;
		size_t k;
		json_t *e;

		if (c->sites[i].late_logged)
			continue;
		json_array_foreach(done, k, e)
			if (strcmp(json_string_value(json_object_get(e, "site")), site) == 0)
				was_folded = true;
		if (was_folded)
			continue;
		fdn_fedavg__key_update(key, c->fed->id, c->round - 1, site);
		if (fdn_transport_head(c->t, key, &info) != 0)
			continue;
		fdn__log(FDN_LOG_WARN, "fedavg", "federation %s: late update of %s for closed round %"
			PRIu64 " ignored", c->fed->id, site, c->round - 1);
		json_array_append_new(c->late, json_pack("{s:s, s:I}", "site", site, "round",
			(json_int_t)(c->round - 1)));
		c->sites[i].late_logged = true;
	}
	return 0;
}

static bool can_close(fdn_coordinator *c)
{
	int64_t now = (int64_t)time(NULL);
	bool deadline = c->fed->round_timeout_s > 0 &&
		now >= c->opened_at + (int64_t)c->fed->round_timeout_s;

	if (c->folded == c->fed->n_sites)
		return true;
	if (!deadline)
		return false;
	if (c->folded >= c->fed->quorum)
		return true;
	if (!c->deadline_logged) {
		fdn__log(FDN_LOG_WARN, "fedavg", "federation %s round %" PRIu64 ": deadline passed "
			"with %zu updates, quorum %u: waiting", c->fed->id, c->round, c->folded,
			c->fed->quorum);
		c->deadline_logged = true;
	}
	return false;
}

/* --- closing ------------------------------------------------------------- */

static int write_state(fdn_model *state, const fdn_coordinator *c, uint64_t round)
{
	char *path;
	int rc;

	if (!state)
		return 0;
	if (!(path = state_path(c, "server", round)))
		return fdn__error_oom();
	rc = fdn_model_write_file(state, path);
	fdn__free(path);
	return rc;
}

static void remove_round_files(const fdn_coordinator *c, uint64_t round)
{
	char *g = state_path(c, "global", round), *s = state_path(c, "server", round);

	if (g)
		unlink(g);
	if (s)
		unlink(s);
	fdn__free(g);
	fdn__free(s);
}

static int close_round(fdn_coordinator *c)
{
	char *next = state_path(c, "global", c->round + 1);
	char *cur = state_path(c, "global", c->round);
	char gsha[65], nsha[65];
	fdn_model *state = NULL;
	json_t *result = NULL;
	uint64_t closed = c->round;
	int rc;

	if (!next || !cur) {
		rc = fdn__error_oom();
		goto out;
	}
	if ((rc = fdn_aggregator_finish_file(c->agg, next, &state)) < 0 ||
			(rc = write_state(state, c, c->round + 1)) < 0 ||
			(rc = fdn_fedavg__file_sha256(gsha, cur)) < 0 ||
			(rc = fdn_fedavg__file_sha256(nsha, next)) < 0)
		goto out;
	result = json_pack("{s:s, s:I, s:s, s:s, s:O, s:O, s:O, s:I}", "federation", c->fed->id,
		"round", (json_int_t)closed, "global_sha256", gsha, "next_global_sha256", nsha,
		"aggregated", c->aggregated, "rejected", c->rejected, "late", c->late,
		"closed_at", (json_int_t)time(NULL));
	if (!result) {
		rc = fdn__error_oom();
		goto out;
	}
	json_array_append(c->results, result);
	c->round++;
	c->finished = closed >= c->fed->rounds;
	c->opened_at = (int64_t)time(NULL);
	if ((rc = save_checkpoint(c)) < 0) {
		/* Not committed: stay in the round (its updates are still there). */
		c->round--;
		c->finished = false;
		json_array_remove(c->results, json_array_size(c->results) - 1);
		goto out;
	}
	remove_round_files(c, closed);
	round_reset(c);
	if ((rc = load_round_models(c)) < 0)
		goto out;
	/* Publishing may fail (the store is down): the next step retries. */
	if (publish_result(c, result, closed) == 0)
		(void)publish_round(c);
	fdn__log(FDN_LOG_INFO, "fedavg", "federation %s: round %" PRIu64 " closed",
		c->fed->id, closed);
out:
	json_decref(result);
	fdn_model_free(state);
	fdn__free(next);
	fdn__free(cur);
	return rc;
}

static int report(fdn_coordinator *c)
{
	fdn_progress p = { FDN_PROGRESS_VERSION, "round",
		c->finished ? c->fed->rounds : c->round - 1, c->fed->rounds, 0, 0,
		(uint64_t)json_array_size(c->rejected), fdn__monotonic_seconds() - c->started };
	int rc;

	if (!c->opts.progress)
		return 0;
	rc = c->opts.progress(&p, c->opts.progress_payload);
	return rc ? fdn__error_callback(rc, "the progress callback") : 0;
}

int fdn_coordinator_step(fdn_coordinator *c, int *state)
{
	int rc;

	FDN__CHECK_ARG(c && state, "coord, state");
	*state = FDN_COORDINATOR_WAITING;
	if (!c->published && (rc = publish_round(c)) < 0)
		return rc;
	if (c->finished) {
		*state = FDN_COORDINATOR_FINISHED;
		return 0;
	}
	if (!c->agg && (rc = fdn_aggregator_new(&c->agg, c->global, c->state,
			&c->fed->strategy)) < 0)
		return rc;
	for (size_t i = 0; i < c->fed->n_sites; i++)
		if (c->sites[i].status != SITE_FOLDED && (rc = collect_site(c, i)) < 0)
			return rc;
	if ((rc = check_late(c)) < 0)
		return rc;
	if (can_close(c)) {
		if ((rc = close_round(c)) < 0)
			return rc;
		*state = c->finished ? FDN_COORDINATOR_FINISHED : FDN_COORDINATOR_CLOSED;
	}
	return report(c);
}

static int coordinator_step(void *c, int *state)
{
	return fdn_coordinator_step(c, state);
}

int fdn_coordinator_run(fdn_coordinator *c)
{
	FDN__CHECK_ARG(c, "coord");
	return fdn_fedavg__run(coordinator_step, c, FDN_COORDINATOR_FINISHED,
		FDN_COORDINATOR_CLOSED, false, c->opts.poll_interval_ms, c->opts.cancel, c->fed->id);
}
