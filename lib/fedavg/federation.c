/*
 * The federation manifest: created and signed by the coordinator,
 * fetched and approved by each site.  The JSON format is described in
 * doc/federated.md; its canonical text (keys sorted, compact) is what the
 * digest, and so an approval, refers to.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "protocol_private.h"
#include "exchange/exchange_private.h"
#include "registry/registry_private.h"

#define MANIFEST_FORMAT "fednode-federation"
#define MANIFEST_VERSION 1
#define ROUNDS_MAX 100000u
#define SITES_MAX 1000u

static int bad(const char *fmt, const char *what)
{
	return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_FEDAVG, fmt, what);
}

int fdn_federation_options_init(fdn_federation_options *opts, unsigned int version)
{
	static const fdn_federation_options init = FDN_FEDERATION_OPTIONS_INIT;

	FDN__CHECK_ARG(opts, "opts");
	if (version == 0 || version > FDN_FEDERATION_OPTIONS_VERSION)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_federation_options: unsupported version %u", version);
	*opts = init;
	opts->version = version;
	return 0;
}

void fdn_federation_free(fdn_federation *fed)
{
	if (!fed)
		return;
	fdn__free(fed->sites);
	fdn__free(fed->train_json);
	free(fed->json); /* jansson's allocator */
	fdn__free(fed);
}

const char *fdn_federation_id(const fdn_federation *fed)
{
	return fed ? fed->id : NULL;
}

const char *fdn_federation_digest(const fdn_federation *fed)
{
	return fed ? fed->digest : NULL;
}

unsigned int fdn_federation_rounds(const fdn_federation *fed)
{
	return fed ? fed->rounds : 0;
}

int fdn_federation_json(fdn_buf *out, const fdn_federation *fed)
{
	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(fed, "fed");
	fdn_buf__clear(out);
	return fdn_buf__put(out, fed->json, strlen(fed->json));
}

bool fdn_fedavg__in_roster(const fdn_federation *fed, const char *node_id)
{
	for (size_t i = 0; i < fed->n_sites; i++)
		if (strcmp(fed->sites[i].node_id, node_id) == 0)
			return true;
	return false;
}

int fdn_fedavg__recipients(const char ***out, size_t *n, const fdn_federation *fed,
	bool with_sites)
{
	size_t count = with_sites ? fed->n_sites + 1 : 1;
	const char **ids = fdn__calloc(count, sizeof(*ids));

	if (!ids)
		return fdn__error_oom();
	ids[0] = fed->coordinator;
	for (size_t i = 1; i < count; i++)
		ids[i] = fed->sites[i - 1].node_id;
	*out = ids;
	*n = count;
	return 0;
}

/* --- from JSON ----------------------------------------------------------- */

static int get_uint(unsigned int *out, json_t *obj, const char *key, unsigned int lo,
	unsigned int hi)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo ||
			json_integer_value(v) > (json_int_t)hi)
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_FEDAVG,
			"manifest: \"%s\" must be an integer from %u to %u", key, lo, hi);
	*out = (unsigned int)json_integer_value(v);
	return 0;
}

static int get_real(double *out, json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0)
		return bad("manifest: \"%s\" must be a finite number >= 0", key);
	*out = json_number_value(v);
	return 0;
}

static int parse_strategy(fdn_strategy_options *s, json_t *o)
{
	const char *name = json_string_value(json_object_get(o, "name"));
	int rc;

	if (!json_is_object(o))
		return bad("manifest: \"%s\" must be an object", "strategy");
	fdn_strategy_options_init(s, FDN_STRATEGY_OPTIONS_VERSION);
	if (!name || fdn_strategy_from_name(&s->strategy, name) < 0)
		return bad("manifest: unknown strategy \"%s\"", name ? name : "");
	if ((rc = get_real(&s->server_lr, o, "server_lr")) < 0 ||
			(rc = get_real(&s->momentum, o, "momentum")) < 0 ||
			(rc = get_real(&s->beta1, o, "beta1")) < 0 ||
			(rc = get_real(&s->beta2, o, "beta2")) < 0 ||
			(rc = get_real(&s->tau, o, "tau")) < 0 ||
			(rc = get_real(&s->trim, o, "trim")) < 0 ||
			(rc = get_real(&s->proximal_mu, o, "proximal_mu")) < 0)
		return rc;
	return 0;
}

static int parse_sites(fdn_federation *fed, json_t *arr)
{
	size_t i, j;
	json_t *s;

	if (!json_is_array(arr) || json_array_size(arr) == 0 ||
			json_array_size(arr) > SITES_MAX)
		return bad("manifest: \"%s\" must list 1 to 1000 sites", "sites");
	fed->n_sites = json_array_size(arr);
	if (!(fed->sites = fdn__calloc(fed->n_sites, sizeof(*fed->sites))))
		return fdn__error_oom();
	json_array_foreach(arr, i, s) {
		const char *id = json_string_value(json_object_get(s, "node_id"));

		if (!id || !fdn_exchange__node_id_ok(id) ||
				!json_is_array(json_object_get(s, "keys")))
			return bad("manifest: site %s is malformed", id ? id : "without a node id");
		for (j = 0; j < i; j++)
			if (strcmp(fed->sites[j].node_id, id) == 0)
				return bad("manifest: site %s is listed twice", id);
		snprintf(fed->sites[i].node_id, sizeof(fed->sites[i].node_id), "%s", id);
	}
	return 0;
}

static int parse_train(fdn_federation *fed, json_t *t)
{
	const char *seed = json_string_value(json_object_get(t, "seed"));
	json_t *extra = json_object_get(t, "extra");
	char *end = NULL;
	int rc;

	if (!json_is_object(t))
		return bad("manifest: \"%s\" must be an object", "train");
	if ((rc = get_uint(&fed->local_epochs, t, "local_epochs", 1, 100000)) < 0 ||
			(rc = get_real(&fed->learning_rate, t, "learning_rate")) < 0 ||
			(rc = get_real(&fed->clip_norm, t, "clip_norm")) < 0 ||
			(rc = get_real(&fed->noise_multiplier, t, "noise_multiplier")) < 0)
		return rc;
	if (!seed || !*seed || (fed->seed = strtoull(seed, &end, 10), *end))
		return bad("manifest: \"%s\" must be a decimal string", "train.seed");
	if (!json_is_object(extra))
		return bad("manifest: \"%s\" must be an object", "train.extra");
	fed->train_json = json_dumps(extra, JSON_SORT_KEYS | JSON_COMPACT);
	if (!fed->train_json)
		return fdn__error_oom();
	/* json_dumps allocated it with jansson's allocator: keep ours uniform. */
	{
		char *copy = fdn__strdup(fed->train_json);

		free(fed->train_json);
		if (!(fed->train_json = copy))
			return fdn__error_oom();
	}
	return 0;
}

static int parse_coordinator(fdn_federation *fed, json_t *c)
{
	const char *id = json_string_value(json_object_get(c, "node_id"));
	const char *ed = json_string_value(json_object_get(c, "ed25519"));

	if (!json_is_object(c) || !id || !fdn_exchange__node_id_ok(id) || !ed ||
			!fdn_exchange__key_from_b64(fed->coordinator_ed25519, ed))
		return bad("manifest: \"%s\" is malformed", "coordinator");
	snprintf(fed->coordinator, sizeof(fed->coordinator), "%s", id);
	return 0;
}

static int parse_root(fdn_federation *fed, json_t *root)
{
	const char *id = json_string_value(json_object_get(root, "id"));
	const char *form = json_string_value(json_object_get(root, "update_form"));
	json_t *fmt = json_object_get(root, "format");
	int rc;

	if (!json_is_object(root) || !json_is_string(fmt) ||
			strcmp(json_string_value(fmt), MANIFEST_FORMAT) != 0)
		return bad("%s", "not a federation manifest");
	if (json_integer_value(json_object_get(root, "version")) != MANIFEST_VERSION)
		return bad("manifest: %s", "unknown version");
	if (!id || !fdn_exchange__node_id_ok(id))
		return bad("manifest: \"%s\" is not a valid federation id", "id");
	snprintf(fed->id, sizeof(fed->id), "%s", id);
	if (!form || (strcmp(form, "weights") != 0 && strcmp(form, "delta") != 0))
		return bad("manifest: \"%s\" must be \"weights\" or \"delta\"", "update_form");
	fed->update_form = strcmp(form, "delta") == 0 ? FDN_UPDATE_DELTA : FDN_UPDATE_WEIGHTS;
	if ((rc = get_uint(&fed->rounds, root, "rounds", 1, ROUNDS_MAX)) < 0 ||
			(rc = get_uint(&fed->round_timeout_s, root, "round_timeout_s", 0,
				UINT32_MAX / 2)) < 0 ||
			(rc = parse_coordinator(fed, json_object_get(root, "coordinator"))) < 0 ||
			(rc = parse_sites(fed, json_object_get(root, "sites"))) < 0 ||
			(rc = get_uint(&fed->quorum, root, "quorum", 1, (unsigned int)fed->n_sites)) < 0 ||
			(rc = parse_strategy(&fed->strategy, json_object_get(root, "strategy"))) < 0 ||
			(rc = parse_train(fed, json_object_get(root, "train"))) < 0)
		return rc;
	if (fed->noise_multiplier > 0 && fed->clip_norm <= 0)
		return bad("manifest: %s", "noise_multiplier needs clip_norm");
	if (!json_is_object(json_object_get(root, "model")))
		return bad("manifest: \"%s\" must be an object", "model");
	return 0;
}

/* Takes @p root (a reference is consumed); fills the canonical text. */
static int from_json(fdn_federation **out, json_t *root)
{
	fdn_federation *fed = root ? fdn__calloc(1, sizeof(*fed)) : NULL;
	unsigned char h[crypto_hash_sha256_BYTES];
	int rc;

	if (!fed) {
		json_decref(root);
		return fdn__error_oom();
	}
	if ((rc = parse_root(fed, root)) < 0)
		goto fail;
	if (!(fed->json = json_dumps(root, JSON_SORT_KEYS | JSON_COMPACT))) {
		rc = fdn__error_oom();
		goto fail;
	}
	crypto_hash_sha256(h, (const unsigned char *)fed->json, strlen(fed->json));
	sodium_bin2hex(fed->digest, sizeof(fed->digest), h, sizeof(h));
	json_decref(root);
	*out = fed;
	return 0;
fail:
	json_decref(root);
	fdn_federation_free(fed);
	return rc;
}

int fdn_federation_parse(fdn_federation **out, const char *json)
{
	json_error_t jerr;
	json_t *root;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	FDN__CHECK_ARG(json, "json");
	if (!(root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr)))
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_FEDAVG,
			"manifest: not JSON (line %d: %s)", jerr.line, jerr.text);
	return from_json(out, root);
}

/* --- creating ------------------------------------------------------------ */

static json_t *strategy_json(const fdn_strategy_options *in)
{
	fdn_strategy_options s;
	bool adaptive;

	fdn_strategy_options_init(&s, FDN_STRATEGY_OPTIONS_VERSION);
	if (in)
		memcpy(&s, in, sizeof(s) < sizeof(*in) ? sizeof(s) : sizeof(*in));
	if (s.strategy == 0)
		s.strategy = FDN_STRATEGY_FEDAVG;
	adaptive = s.strategy == FDN_STRATEGY_FEDADAM || s.strategy == FDN_STRATEGY_FEDYOGI ||
		s.strategy == FDN_STRATEGY_FEDADAGRAD;
	/* Every default written out: the manifest says what will be done. */
	return json_pack("{s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
		"name", fdn_strategy_name(s.strategy) ? fdn_strategy_name(s.strategy) : "?",
		"server_lr", s.server_lr > 0 ? s.server_lr : (adaptive ? 0.1 : 1.0),
		"momentum", s.momentum > 0 ? s.momentum : 0.9,
		"beta1", s.beta1 > 0 ? s.beta1 : 0.9,
		"beta2", s.beta2 > 0 ? s.beta2 : 0.99,
		"tau", s.tau > 0 ? s.tau : 1e-3,
		"trim", s.trim > 0 ? s.trim : 0.1,
		"proximal_mu", s.proximal_mu);
}

static json_t *keys_json(const fdn_trust *trust, const char *node_id, int *found)
{
	json_t *arr = json_array();
	int64_t now = (int64_t)time(NULL);

	*found = 0;
	for (size_t i = 0; arr && i < fdn_trust_count(trust); i++) {
		fdn_trust_peer_info p = FDN_TRUST_PEER_INFO_INIT;
		char ed[sodium_base64_ENCODED_LEN(FDN_PUBLIC_KEY_BYTES,
			sodium_base64_VARIANT_ORIGINAL)];
		char x[sizeof(ed)];
		size_t idx;

		if (fdn_trust_peer(&p, trust, i) < 0 || strcmp(p.node_id, node_id) != 0 ||
				p.role != FDN_TRUST_ROLE_SITE ||
				fdn_trust_find_by_key(&idx, trust, p.ed25519_public, now) != 0)
			continue;
		sodium_bin2base64(ed, sizeof(ed), p.ed25519_public, FDN_PUBLIC_KEY_BYTES,
			sodium_base64_VARIANT_ORIGINAL);
		sodium_bin2base64(x, sizeof(x), p.x25519_public, FDN_PUBLIC_KEY_BYTES,
			sodium_base64_VARIANT_ORIGINAL);
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "ed25519", ed,
			"x25519", x, "fingerprint", p.fingerprint, "valid_until", p.valid_until));
		(*found)++;
	}
	return arr;
}

static int roster_json(json_t **out, const fdn_trust *trust, const char *const *sites,
	size_t n_sites)
{
	json_t *arr = json_array();
	int found;

	if (!arr)
		return fdn__error_oom();
	for (size_t i = 0; i < n_sites; i++) {
		json_t *keys;

		if (!sites[i] || !fdn_exchange__node_id_ok(sites[i])) {
			json_decref(arr);
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
				"site %zu: not a valid node id", i);
		}
		if (!(keys = keys_json(trust, sites[i], &found)) || found == 0) {
			json_decref(keys);
			json_decref(arr);
			return keys ? fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_FEDAVG,
				"site %s has no valid key with the site role in the trust store",
				sites[i]) : fdn__error_oom();
		}
		json_array_append_new(arr, json_pack("{s:s, s:o}", "node_id", sites[i],
			"keys", keys));
	}
	*out = arr;
	return 0;
}

static int load_object(json_t **out, const char *text, const char *what)
{
	json_error_t jerr;

	if (!text) {
		*out = json_object();
		return *out ? 0 : fdn__error_oom();
	}
	*out = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!*out || !json_is_object(*out)) {
		json_decref(*out);
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
			"%s: not a JSON object", what);
	}
	return 0;
}

static int coordinator_json(json_t **out, const fdn_identity *coordinator)
{
	fdn_buf text = FDN_BUF_INIT;
	fdn_exchange__public pub;
	char ed[sodium_base64_ENCODED_LEN(FDN_PUBLIC_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL)];
	char x[sizeof(ed)];
	int rc;

	if ((rc = fdn_identity_public(&text, coordinator, NULL)) < 0)
		return rc;
	rc = fdn_exchange__public_parse(&pub, text.ptr);
	fdn_buf_dispose(&text);
	if (rc < 0)
		return rc;
	sodium_bin2base64(ed, sizeof(ed), pub.ed25519, FDN_PUBLIC_KEY_BYTES,
		sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(x, sizeof(x), pub.x25519, FDN_PUBLIC_KEY_BYTES,
		sodium_base64_VARIANT_ORIGINAL);
	*out = json_pack("{s:s, s:s, s:s}", "node_id", pub.node_id, "ed25519", ed, "x25519", x);
	return *out ? 0 : fdn__error_oom();
}

static int check_create_options(const fdn_federation_options *o, size_t n_sites)
{
	if (!o->id || !fdn_exchange__node_id_ok(o->id))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
			"federation id: 1 to %d characters of [A-Za-z0-9._-]", FDN_FEDERATION_ID_MAX);
	if (o->rounds < 1 || o->rounds > ROUNDS_MAX)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
			"rounds must be 1 to %u", ROUNDS_MAX);
	if (n_sites < 1 || n_sites > SITES_MAX || o->quorum > n_sites)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
			"%zu sites with a quorum of %u: need 1 to %u sites and quorum <= sites",
			n_sites, o->quorum, SITES_MAX);
	if (o->update_form != FDN_UPDATE_WEIGHTS && o->update_form != FDN_UPDATE_DELTA)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG, "bad update_form");
	if (!(o->learning_rate >= 0) || !(o->clip_norm >= 0) || !(o->noise_multiplier >= 0) ||
			!isfinite(o->learning_rate) || !isfinite(o->clip_norm) ||
			!isfinite(o->noise_multiplier))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
			"learning_rate, clip_norm and noise_multiplier must be finite and >= 0");
	if (o->noise_multiplier > 0 && o->clip_norm <= 0)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
			"noise_multiplier needs clip_norm (noise is scaled to the clipping norm)");
	return 0;
}

int fdn_federation_create(fdn_federation **out, const fdn_federation_options *opts,
	const fdn_identity *coordinator, const fdn_trust *trust,
	const char *const *sites, size_t n_sites)
{
	json_t *roster = NULL, *strategy = NULL, *model = NULL, *extra = NULL, *coord = NULL;
	char seed[24], now[32];
	uint64_t seed_value;
	time_t t = time(NULL);
	struct tm tm;
	int rc;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	FDN__CHECK_ARG(opts && coordinator && trust && sites, "opts, coordinator, trust, sites");
	FDN__CHECK_VERSION(opts, FDN_FEDERATION_OPTIONS_VERSION, "fdn_federation_options");
	if ((rc = check_create_options(opts, n_sites)) < 0)
		return rc;
	for (size_t i = 0; i < n_sites; i++)
		for (size_t j = 0; j < i; j++)
			if (sites[i] && sites[j] && strcmp(sites[i], sites[j]) == 0)
				return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
					"site %s is listed twice", sites[i]);
	if (!(strategy = strategy_json(opts->strategy)))
		return fdn__error_oom();
	if (strcmp(json_string_value(json_object_get(strategy, "name")), "?") == 0) {
		json_decref(strategy);
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG, "unknown strategy");
	}
	if ((rc = roster_json(&roster, trust, sites, n_sites)) < 0 ||
			(rc = coordinator_json(&coord, coordinator)) < 0 ||
			(rc = load_object(&model, opts->model_json, "model_json")) < 0 ||
			(rc = load_object(&extra, opts->train_json, "train_json")) < 0)
		goto out;
	seed_value = opts->seed;
	while (seed_value == 0)
		randombytes_buf(&seed_value, sizeof(seed_value));
	snprintf(seed, sizeof(seed), "%" PRIu64, seed_value);
	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	rc = from_json(out, json_pack(
		"{s:s, s:i, s:s, s:s, s:s, s:O, s:O, s:i, s:i, s:i, s:O, s:s, s:O,"
		" s:{s:i, s:f, s:f, s:f, s:s, s:O}}",
		"format", MANIFEST_FORMAT, "version", MANIFEST_VERSION, "id", opts->id,
		"title", opts->title ? opts->title : "", "created", now,
		"coordinator", coord, "sites", roster,
		"rounds", (int)opts->rounds,
		"quorum", (int)(opts->quorum ? opts->quorum : (unsigned int)n_sites),
		"round_timeout_s", (int)opts->round_timeout_s,
		"strategy", strategy,
		"update_form", opts->update_form == FDN_UPDATE_DELTA ? "delta" : "weights",
		"model", model,
		"train", "local_epochs", (int)(opts->local_epochs ? opts->local_epochs : 1),
		"learning_rate", opts->learning_rate > 0 ? opts->learning_rate : 0.01,
		"clip_norm", opts->clip_norm, "noise_multiplier", opts->noise_multiplier,
		"seed", seed, "extra", extra));
out:
	json_decref(roster);
	json_decref(strategy);
	json_decref(model);
	json_decref(extra);
	json_decref(coord);
	return rc;
}

/* --- publishing, fetching, approving ------------------------------------- */

int fdn_federation_publish(fdn_transport *t, const fdn_federation *fed,
	const fdn_identity *coordinator, const fdn_trust *trust)
{
	char key[FDN_TRANSPORT_KEY_MAX + 1];
	const char **to = NULL;
	size_t n = 0;
	int rc;

	FDN__CHECK_ARG(t && fed && coordinator && trust, "t, fed, coordinator, trust");
	if (strcmp(fdn_identity_node_id(coordinator), fed->coordinator) != 0)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_FEDAVG,
			"%s is not the coordinator of federation %s (%s is)",
			fdn_identity_node_id(coordinator), fed->id, fed->coordinator);
	if ((rc = fdn_fedavg__recipients(&to, &n, fed, true)) < 0)
		return rc;
	fdn_fedavg__key_manifest(key, fed->id);
	rc = fdn_fedavg__put_sealed_buffer(t, key, fed->json, strlen(fed->json), coordinator,
		trust, to, n, FDN_ENVELOPE_MANIFEST, fed->id, 0);
	fdn__free(to);
	return rc;
}

int fdn_federation_fetch(fdn_federation **out, fdn_transport *t,
	const char *federation_id, const fdn_identity *me, const fdn_trust *trust)
{
	char key[FDN_TRANSPORT_KEY_MAX + 1];
	fdn_buf text = FDN_BUF_INIT;
	fdn_federation *fed = NULL;
	const char *my_id;
	int rc;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	FDN__CHECK_ARG(t && me && trust, "t, me, trust");
	FDN__CHECK_ARG(federation_id && fdn_exchange__node_id_ok(federation_id), "federation_id");
	fdn_fedavg__key_manifest(key, federation_id);
	rc = fdn_fedavg__get_opened_buffer(t, key, &text, NULL, NULL, me, trust,
		FDN_ENVELOPE_MANIFEST, federation_id, 0, NULL, FDN_TRUST_ROLE_COORDINATOR);
	if (rc < 0)
		return rc;
	rc = text.ptr ? fdn_federation_parse(&fed, text.ptr) :
		fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_FEDAVG, "the manifest is empty");
	fdn_buf_dispose(&text);
	if (rc < 0)
		return rc;
	my_id = fdn_identity_node_id(me);
	if (strcmp(fed->id, federation_id) != 0) {
		rc = fdn__error_set(FDN_EAUTH, FDN_ERRCLASS_FEDAVG,
			"the manifest under %s is for federation %s", federation_id, fed->id);
	} else if (strcmp(fed->coordinator, my_id) != 0 && !fdn_fedavg__in_roster(fed, my_id)) {
		rc = fdn__error_set(FDN_EAUTH, FDN_ERRCLASS_FEDAVG,
			"federation %s does not list this node (%s) as a site", fed->id, my_id);
	}
	if (rc < 0) {
		fdn_federation_free(fed);
		return rc;
	}
	*out = fed;
	return 0;
}

int fdn_federation_approve(fdn_registry *registry, const fdn_federation *fed,
	const char *note)
{
	json_t *d, *sites;
	int rc;

	FDN__CHECK_ARG(registry && fed, "registry, fed");
	if (!(sites = json_array()))
		return fdn__error_oom();
	for (size_t i = 0; i < fed->n_sites; i++)
		json_array_append_new(sites, json_string(fed->sites[i].node_id));
	d = json_pack("{s:s, s:s, s:s, s:o, s:s, s:i, s:s}", "federation", fed->id,
		"digest", fed->digest, "coordinator", fed->coordinator, "sites", sites,
		"strategy", fdn_strategy_name(fed->strategy.strategy), "rounds", (int)fed->rounds,
		"note", note ? note : "");
	if (!d)
		return fdn__error_oom();
	rc = fdn_registry__audit_json(registry, "federation.approve", d);
	json_decref(d);
	return rc;
}

int fdn_federation_approved(fdn_registry *registry, const fdn_federation *fed)
{
	json_t *d = NULL;
	int rc;

	FDN__CHECK_ARG(registry && fed, "registry, fed");
	rc = fdn_registry__audit_find(&d, registry, "federation.approve", "digest", fed->digest);
	json_decref(d);
	if (rc == FDN_ENOTFOUND)
		return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_FEDAVG,
			"federation %s (manifest %.16s...) is not approved in this registry",
			fed->id, fed->digest);
	return rc;
}
