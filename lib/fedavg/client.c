/*
 * The site's round loop (fedavg.h, "Client").  State that must survive a
 * crash lives in the registry's audit log: the newest "round.participate"
 * record of the federation says which round was sent last.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "protocol_private.h"
#include "exchange/exchange_private.h"
#include "registry/registry_private.h"

struct fdn_client {
	fdn_transport *t;
	const fdn_identity *me;
	const fdn_trust *trust;
	fdn_registry *reg;
	char fed_id[FDN_FEDERATION_ID_MAX + 1];
	char *cohort;
	fdn_trainer trainer;
	void *trainer_payload;
	fdn_client_options opts;
	char *work_dir;

	fdn_federation *fed;
	uint64_t done_round;     /* last round sent */
	uint64_t latest_round;   /* newest round "latest" announced */
	bool finished;
	char latest_etag[FDN_ETAG_MAX + 1];
	fdn_model *global;       /* mapped from global_path */
	uint64_t global_round;
	char *global_path;
	double started;
};

int fdn_client_options_init(fdn_client_options *opts, unsigned int version)
{
	static const fdn_client_options init = FDN_CLIENT_OPTIONS_INIT;

	FDN__CHECK_ARG(opts, "opts");
	if (version == 0 || version > FDN_CLIENT_OPTIONS_VERSION)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_client_options: unsupported version %u", version);
	*opts = init;
	opts->version = version;
	return 0;
}

int fdn_client_new(fdn_client **out, fdn_transport *transport,
	const fdn_identity *me, const fdn_trust *trust, fdn_registry *registry,
	const char *federation_id, const char *cohort,
	const fdn_trainer *trainer, void *trainer_payload,
	const fdn_client_options *opts)
{
	fdn_client *c;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	FDN__CHECK_ARG(transport && me && trust && registry && cohort && *cohort && trainer,
		"transport, me, trust, registry, cohort, trainer");
	FDN__CHECK_ARG(federation_id && fdn_exchange__node_id_ok(federation_id), "federation_id");
	FDN__CHECK_ARG(trainer->version >= 1 && trainer->train, "trainer (version, train)");
	FDN__CHECK_VERSION(opts, FDN_CLIENT_OPTIONS_VERSION, "fdn_client_options");
	if (!(c = fdn__calloc(1, sizeof(*c))))
		return fdn__error_oom();
	c->t = transport;
	c->me = me;
	c->trust = trust;
	c->reg = registry;
	snprintf(c->fed_id, sizeof(c->fed_id), "%s", federation_id);
	memcpy(&c->trainer, trainer, sizeof(c->trainer)); /* only version 1 exists */
	c->trainer_payload = trainer_payload;
	fdn_client_options_init(&c->opts, FDN_CLIENT_OPTIONS_VERSION);
	if (opts)
		memcpy(&c->opts, opts, sizeof(c->opts));
	c->opts.version = FDN_CLIENT_OPTIONS_VERSION;
	if (!c->opts.poll_interval_ms)
		c->opts.poll_interval_ms = 1000;
	c->cohort = fdn__strdup(cohort);
	c->work_dir = opts && opts->work_dir ? fdn__strdup(opts->work_dir) : NULL;
	if (!c->cohort || (opts && opts->work_dir && !c->work_dir)) {
		fdn_client_free(c);
		return fdn__error_oom();
	}
	c->opts.work_dir = c->work_dir;
	c->started = fdn__monotonic_seconds();
	*out = c;
	return 0;
}

static void drop_global(fdn_client *c)
{
	fdn_model_free(c->global);
	c->global = NULL;
	if (c->global_path) {
		unlink(c->global_path);
		fdn__free(c->global_path);
		c->global_path = NULL;
	}
}

void fdn_client_free(fdn_client *c)
{
	if (!c)
		return;
	drop_global(c);
	fdn_federation_free(c->fed);
	fdn__free(c->cohort);
	fdn__free(c->work_dir);
	fdn__free(c);
}

uint64_t fdn_client_round(const fdn_client *c)
{
	return c ? c->done_round : 0;
}

int fdn_client_model(const fdn_model **out, const fdn_client *c)
{
	FDN__CHECK_ARG(out && c, "out, client");
	*out = c->global;
	if (!c->global)
		return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_FEDAVG,
			"no global model received yet");
	return 0;
}

/* --- joining ------------------------------------------------------------- */

/* The manifest, its approval, and the last round sent before a restart. */
static int join(fdn_client *c)
{
	json_t *d = NULL;
	int rc;

	if ((rc = fdn_federation_fetch(&c->fed, c->t, c->fed_id, c->me, c->trust)) < 0)
		return rc;
	if ((rc = fdn_federation_approved(c->reg, c->fed)) < 0) {
		fdn_federation_free(c->fed);
		c->fed = NULL;
		return fdn__error_set(FDN_EAUTH, FDN_ERRCLASS_FEDAVG,
			"federation %s is not approved in this site's registry: review it "
			"(fednode federation show) and approve it (fednode federation approve)",
			c->fed_id);
	}
	rc = fdn_registry__audit_find(&d, c->reg, "round.participate", "federation", c->fed_id);
	if (rc == 0) {
		json_int_t r = json_integer_value(json_object_get(d, "round"));

		c->done_round = r > 0 ? (uint64_t)r : 0;
		fdn__log(FDN_LOG_INFO, "fedavg", "federation %s: resuming after round %" PRIu64,
			c->fed_id, c->done_round);
	} else if (rc != FDN_ENOTFOUND) {
		json_decref(d);
		return rc;
	}
	json_decref(d);
	return 0;
}

/* Polls "latest"; sets c->latest_round and c->finished. */
static int poll_latest(fdn_client *c, bool *changed)
{
	char key[FDN_TRANSPORT_KEY_MAX + 1];
	fdn_buf text = FDN_BUF_INIT;
	json_t *root;
	json_int_t r;
	int not_modified = 0, rc;

	*changed = false;
	fdn_fedavg__key_latest(key, c->fed_id);
	rc = fdn_fedavg__get_opened_buffer(c->t, key, &text, c->latest_etag, &not_modified,
		c->me, c->trust, FDN_ENVELOPE_LATEST, c->fed_id, 0, c->fed->coordinator,
		FDN_TRUST_ROLE_COORDINATOR);
	if (rc == FDN_ENOTFOUND)
		return 0; /* the coordinator has not started */
	if (rc < 0 || not_modified)
		return rc;
	root = text.ptr ? json_loads(text.ptr, JSON_REJECT_DUPLICATES, NULL) : NULL;
	fdn_buf_dispose(&text);
	r = json_integer_value(json_object_get(root, "round"));
	if (!json_is_object(root) || r < 1 || (uint64_t)r > (uint64_t)c->fed->rounds + 1) {
		json_decref(root);
		c->latest_etag[0] = '\0';
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_FEDAVG,
			"federation %s: the latest-round pointer is malformed", c->fed_id);
	}
	if ((uint64_t)r < c->latest_round) {
		/* Signed, but older than one already seen: a store replaying an
		 * old pointer.  Keep the newer knowledge. */
		fdn__log(FDN_LOG_WARN, "fedavg",
			"federation %s: the store went back from round %" PRIu64 " to %lld; ignored",
			c->fed_id, c->latest_round, (long long)r);
	} else {
		c->latest_round = (uint64_t)r;
		c->finished = json_is_true(json_object_get(root, "finished"));
		*changed = true;
	}
	json_decref(root);
	return 0;
}

static int fetch_global(fdn_client *c, uint64_t round)
{
	char key[FDN_TRANSPORT_KEY_MAX + 1];
	char *path = NULL;
	fdn_model *m = NULL;
	int rc;

	if (c->global && c->global_round == round)
		return 0;
	if ((rc = fdn_fedavg__temp_path(&path, c->work_dir, "global")) < 0)
		return rc;
	fdn_fedavg__key_global(key, c->fed_id, round);
	rc = fdn_fedavg__get_opened(c->t, key, path, c->work_dir, c->me, c->trust,
		FDN_ENVELOPE_GLOBAL, c->fed_id, round, c->fed->coordinator,
		FDN_TRUST_ROLE_COORDINATOR);
	if (rc == 0)
		rc = fdn_model_read_file(&m, path, FDN_MODEL_READ_DEFAULT);
	if (rc < 0) {
		unlink(path);
		fdn__free(path);
		return rc;
	}
	drop_global(c);
	c->global = m;
	c->global_path = path;
	c->global_round = round;
	return 0;
}

/* --- the update ---------------------------------------------------------- */

static uint64_t round_seed(const fdn_client *c, uint64_t round)
{
	unsigned char h[8];
	crypto_generichash_state st;
	uint64_t s = 0;

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const unsigned char *)&c->fed->seed, sizeof(c->fed->seed));
	crypto_generichash_update(&st, (const unsigned char *)&round, sizeof(round));
	crypto_generichash_update(&st, (const unsigned char *)fdn_identity_node_id(c->me),
		strlen(fdn_identity_node_id(c->me)));
	crypto_generichash_final(&st, h, sizeof(h));
	for (int i = 0; i < 8; i++)
		s |= (uint64_t)h[i] << (8 * i);
	return s;
}

static double element(const fdn_tensor_info *t, size_t i)
{
	if (t->dtype == FDN_DTYPE_F32) {
		float v;

		memcpy(&v, (const char *)t->data + 4 * i, 4);
		return v;
	} else {
		double v;

		memcpy(&v, (const char *)t->data + 8 * i, 8);
		return v;
	}
}

/* Checks that @p trained has @p global's tensors, each F32 or F64 when the
 * update must be computed (delta, clipping, noise), and finite. */
static int check_trained(const fdn_model *global, const fdn_model *trained, bool arithmetic)
{
	size_t n = fdn_model_tensor_count(global);

	if (fdn_model_tensor_count(trained) != n)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
			"the trainer returned %zu tensors; the global model has %zu",
			fdn_model_tensor_count(trained), n);
	for (size_t i = 0; i < n; i++) {
		fdn_tensor_info g = FDN_TENSOR_INFO_INIT, t = FDN_TENSOR_INFO_INIT;

		fdn_model_tensor(&g, global, i);
		fdn_model_tensor(&t, trained, i);
		if (strcmp(g.name, t.name) != 0 || g.dtype != t.dtype || g.ndim != t.ndim ||
				memcmp(g.shape, t.shape, sizeof(g.shape)) != 0)
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
				"the trainer's tensor %zu (%s) differs from the global model's (%s) "
				"in name, dtype or shape", i, t.name, g.name);
		if (arithmetic && g.dtype != FDN_DTYPE_F32 && g.dtype != FDN_DTYPE_F64)
			return fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_FEDAVG,
				"tensor %s: deltas, clipping and noise need F32 or F64 tensors", g.name);
		if (g.dtype == FDN_DTYPE_F32 || g.dtype == FDN_DTYPE_F64) {
			size_t count = t.nbytes / fdn_dtype_size(t.dtype);

			for (size_t k = 0; k < count; k++)
				if (!isfinite(element(&t, k)))
					return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
						"the trainer's tensor %s has a NaN or infinite value at %zu",
						t.name, k);
		}
	}
	return 0;
}

/* A standard normal variate from libsodium's CSPRNG (Box-Muller): the
 * noise must not be predictable from the manifest's seed. */
static double gaussian(void)
{
	uint64_t a, b;
	double u, v;

	randombytes_buf(&a, sizeof(a));
	randombytes_buf(&b, sizeof(b));
	u = ((double)(a >> 11) + 0.5) / 9007199254740992.0;
	v = (double)(b >> 11) / 9007199254740992.0;
	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

static double delta_norm(const fdn_model *global, const fdn_model *trained)
{
	double sum = 0;

	for (size_t i = 0; i < fdn_model_tensor_count(global); i++) {
		fdn_tensor_info g = FDN_TENSOR_INFO_INIT, t = FDN_TENSOR_INFO_INIT;

		fdn_model_tensor(&g, global, i);
		fdn_model_tensor(&t, trained, i);
		for (size_t k = 0; k < g.nbytes / fdn_dtype_size(g.dtype); k++) {
			double d = element(&t, k) - element(&g, k);

			sum += d * d;
		}
	}
	return sqrt(sum);
}

/* The update to send: delta or weights, clipped and noised as the
 * manifest says.  @p clipped_norm receives the delta's norm before
 * clipping (for the audit record). */
static int make_update(fdn_model **out, const fdn_client *c, const fdn_model *trained,
	double *norm_out)
{
	const fdn_federation *f = c->fed;
	double norm = delta_norm(c->global, trained);
	double scale = f->clip_norm > 0 && norm > f->clip_norm ? f->clip_norm / norm : 1.0;
	double sigma = f->noise_multiplier * f->clip_norm;
	fdn_model *u;
	int rc;

	*norm_out = norm;
	if ((rc = fdn_model_new(&u)) < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < fdn_model_tensor_count(c->global); i++) {
		fdn_tensor_info g = FDN_TENSOR_INFO_INIT, t = FDN_TENSOR_INFO_INIT;
		size_t count, es;
		unsigned char *buf;

		fdn_model_tensor(&g, c->global, i);
		fdn_model_tensor(&t, trained, i);
		es = fdn_dtype_size(g.dtype);
		count = g.nbytes / es;
		if (!(buf = fdn__malloc(g.nbytes ? g.nbytes : 1))) {
			rc = fdn__error_oom();
			break;
		}
		for (size_t k = 0; k < count; k++) {
			double d = (element(&t, k) - element(&g, k)) * scale;

			if (sigma > 0)
				d += sigma * gaussian();
			if (f->update_form == FDN_UPDATE_WEIGHTS)
				d += element(&g, k);
			if (es == 4) {
				float v = (float)d;

				memcpy(buf + 4 * k, &v, 4);
			} else {
				memcpy(buf + 8 * k, &d, 8);
			}
		}
		rc = fdn_model_add_tensor(u, g.name, g.dtype, g.ndim, g.shape, buf, g.nbytes);
		fdn__free(buf);
	}
	if (rc < 0) {
		fdn_model_free(u);
		return rc;
	}
	*out = u;
	return 0;
}

static int metrics_object(json_t **out, const fdn_buf *text, const char *what)
{
	if (!text->ptr || !text->size) {
		*out = json_object();
		return *out ? 0 : fdn__error_oom();
	}
	*out = json_loads(text->ptr, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
			"the trainer's %s metrics are not a JSON object", what);
	}
	return 0;
}

/* Sets the update's metadata the coordinator reads. */
static int label_update(fdn_model *u, uint64_t examples, json_t *metrics, uint64_t round,
	const char *site)
{
	char num[24];
	char *text = json_dumps(metrics, JSON_SORT_KEYS | JSON_COMPACT);
	int rc;

	if (!text)
		return fdn__error_oom();
	snprintf(num, sizeof(num), "%" PRIu64, examples);
	rc = fdn_model_set_metadata(u, FDN_FEDAVG__META_EXAMPLES, num);
	if (rc == 0)
		rc = fdn_model_set_metadata(u, FDN_FEDAVG__META_METRICS, text);
	snprintf(num, sizeof(num), "%" PRIu64, round);
	if (rc == 0)
		rc = fdn_model_set_metadata(u, FDN_FEDAVG__META_ROUND, num);
	if (rc == 0)
		rc = fdn_model_set_metadata(u, FDN_FEDAVG__META_SITE, site);
	free(text);
	return rc;
}

/* A trainer that fails may explain why in its metrics buffer (one line of
 * text): the error message then carries it. */
static int trainer_failed(int rc, const char *method, const fdn_buf *why)
{
	if (why->ptr && why->size > 0 && why->size < 1024 && !memchr(why->ptr, '\n', why->size))
		return fdn__error_set(rc, FDN_ERRCLASS_CALLBACK, "the trainer's %s failed (%d): %s",
			method, rc, why->ptr);
	return fdn__error_callback(rc, method[0] == 't' ? "the trainer's train" :
		"the trainer's evaluate");
}

static int train_round(fdn_client *c, uint64_t round, fdn_model **update, uint64_t *examples,
	json_t *metrics, double *norm)
{
	fdn_train_config cfg = { FDN_TRAIN_CONFIG_VERSION, c->fed_id, round,
		c->fed->local_epochs, c->fed->learning_rate, c->fed->strategy.proximal_mu,
		round_seed(c, round), c->fed->train_json };
	fdn_buf text = FDN_BUF_INIT;
	fdn_model *trained = NULL;
	json_t *m = NULL;
	uint64_t eval_n = 0;
	bool arithmetic = c->fed->update_form == FDN_UPDATE_DELTA || c->fed->clip_norm > 0;
	int rc = 0;

	if (c->trainer.evaluate) {
		rc = c->trainer.evaluate(c->trainer_payload, c->global, c->reg, c->cohort, &cfg,
			&eval_n, &text);
		if (rc != 0) {
			rc = trainer_failed(rc, "evaluate", &text);
			fdn_buf_dispose(&text);
			return rc;
		}
		if ((rc = metrics_object(&m, &text, "evaluation")) < 0)
			goto out;
		json_object_set_new(metrics, "eval", m);
		fdn_buf__clear(&text);
	}
	rc = c->trainer.train(c->trainer_payload, c->global, c->reg, c->cohort, &cfg, &trained,
		examples, &text);
	if (rc != 0) {
		fdn_model_free(trained);
		rc = trainer_failed(rc, "train", &text);
		goto out;
	}
	if (!trained || *examples == 0) {
		fdn_model_free(trained);
		rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
			"the trainer returned no model or no examples");
		goto out;
	}
	if ((rc = metrics_object(&m, &text, "training")) < 0 ||
			(rc = check_trained(c->global, trained, arithmetic)) < 0) {
		fdn_model_free(trained);
		goto out;
	}
	json_object_set_new(metrics, "train", m);
	if (arithmetic) {
		rc = make_update(update, c, trained, norm);
		fdn_model_free(trained);
	} else {
		*norm = -1;
		*update = trained;
	}
out:
	fdn_buf_dispose(&text);
	return rc;
}

/* Puts the update, then records the participation: the record is the
 * commit point of the round for this site. */
static int send_update(fdn_client *c, uint64_t round, fdn_model *update, uint64_t examples,
	double norm)
{
	char key[FDN_TRANSPORT_KEY_MAX + 1], gsha[65], usha[65], cohort_sha[65];
	const char *site = fdn_identity_node_id(c->me);
	const char *to = c->fed->coordinator;
	char *path = NULL;
	json_t *d;
	int rc;

	if ((rc = fdn_fedavg__temp_path(&path, c->work_dir, "update")) < 0)
		return rc;
	if ((rc = fdn_model_write_file(update, path)) < 0 ||
			(rc = fdn_fedavg__file_sha256(usha, path)) < 0 ||
			(rc = fdn_fedavg__file_sha256(gsha, c->global_path)) < 0)
		goto out;
	if (fdn_registry__cohort_hash(cohort_sha, c->reg, c->cohort) < 0)
		snprintf(cohort_sha, sizeof(cohort_sha), "%s", "");
	fdn_fedavg__key_update(key, c->fed_id, round, site);
	rc = fdn_fedavg__put_sealed(c->t, key, path, c->work_dir, c->me, c->trust, &to, 1,
		FDN_ENVELOPE_UPDATE, c->fed_id, round);
	if (rc < 0)
		goto out;
	d = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:I, s:s, s:f}", "federation", c->fed_id,
		"round", (json_int_t)round, "cohort", c->cohort, "cohort_sha256", cohort_sha,
		"global_sha256", gsha, "update_sha256", usha, "examples", (json_int_t)examples,
		"form", c->fed->update_form == FDN_UPDATE_DELTA ? "delta" : "weights",
		"delta_norm", norm);
	if (!d) {
		rc = fdn__error_oom();
		goto out;
	}
	rc = fdn_registry__audit_json(c->reg, "round.participate", d);
	json_decref(d);
	if (rc == 0)
		c->done_round = round;
out:
	unlink(path);
	fdn__free(path);
	return rc;
}

static int run_round(fdn_client *c, uint64_t round)
{
	fdn_model *update = NULL;
	uint64_t examples = 0;
	json_t *metrics = json_object();
	double norm = -1;
	int rc;

	if (!metrics)
		return fdn__error_oom();
	rc = train_round(c, round, &update, &examples, metrics, &norm);
	if (rc == 0)
		rc = label_update(update, examples, metrics, round, fdn_identity_node_id(c->me));
	if (rc == 0)
		rc = send_update(c, round, update, examples, norm);
	fdn_model_free(update);
	json_decref(metrics);
	if (rc == 0)
		fdn__log(FDN_LOG_INFO, "fedavg", "federation %s: round %" PRIu64 " sent (%" PRIu64
			" examples)", c->fed_id, round, examples);
	return rc;
}

static int report(fdn_client *c)
{
	fdn_progress p = { FDN_PROGRESS_VERSION, "round", c->done_round,
		c->fed ? c->fed->rounds : 0, 0, 0, 0, fdn__monotonic_seconds() - c->started };
	int rc;

	if (!c->opts.progress)
		return 0;
	rc = c->opts.progress(&p, c->opts.progress_payload);
	return rc ? fdn__error_callback(rc, "the progress callback") : 0;
}

int fdn_client_step(fdn_client *c, int *state)
{
	bool changed;
	int rc;

	FDN__CHECK_ARG(c && state, "client, state");
	*state = FDN_CLIENT_WAITING;
	if (!c->fed && (rc = join(c)) < 0)
		return rc;
	if ((rc = poll_latest(c, &changed)) < 0)
		return rc;
	if (c->finished) {
		/* The final model is the one published past the last round. */
		if ((rc = fetch_global(c, c->latest_round)) < 0)
			return rc;
		*state = FDN_CLIENT_FINISHED;
		return report(c);
	}
	if (c->latest_round == 0 || c->latest_round <= c->done_round)
		return 0;
	if ((rc = fetch_global(c, c->latest_round)) < 0 ||
			(rc = run_round(c, c->latest_round)) < 0)
		return rc;
	*state = FDN_CLIENT_SENT;
	return report(c);
}

static int client_step(void *c, int *state)
{
	return fdn_client_step(c, state);
}

int fdn_client_run(fdn_client *c)
{
	FDN__CHECK_ARG(c, "client");
	/* A missing key (the coordinator has not published yet) is retried
	 * like an unreachable store. */
	return fdn_fedavg__run(client_step, c, FDN_CLIENT_FINISHED, FDN_CLIENT_SENT, true,
		c->opts.poll_interval_ms, c->opts.cancel, c->fed_id);
}
