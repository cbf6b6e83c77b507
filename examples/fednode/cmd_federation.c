/*
 * fednode federation create|show|approve ...
 * fednode coordinator --store URL --identity KEY --trust FILE --id FED --state DIR ...
 * fednode node --store URL --identity KEY --trust FILE --id FED --registry DIR --cohort NAME ...
 *
 * A real deployment of federated averaging: the coordinator creates and
 * publishes a manifest, each site's operator reviews and approves it, then
 * the coordinator and the nodes run until the last round.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fednode/fednode.h>

#include "cli.h"
#include "demo.h"

#define MAX_SITES 64

/* What every federation command needs: the store and who we are. */
struct fed_args {
	const char *store, *ca, *cert, *key, *proxy;
	const char *identity, *passphrase_file, *trust, *id;
};

#define FED_OPTS(a) \
	{ "--store", &(a)->store }, { "--ca", &(a)->ca }, { "--cert", &(a)->cert }, \
	{ "--key", &(a)->key }, { "--proxy", &(a)->proxy }, \
	{ "--identity", &(a)->identity }, { "--passphrase-file", &(a)->passphrase_file }, \
	{ "--trust", &(a)->trust }, { "--id", &(a)->id }

/* Opens what struct fed_args names; an exit status. */
static int fed_open(const char *command, const struct fed_args *a, fdn_transport **t,
	fdn_identity **me, fdn_trust **trust)
{
	int rc;

	*t = NULL;
	*me = NULL;
	*trust = NULL;
	if (!a->store || !a->identity || !a->trust || !a->id)
		return cli_usage_error(command, "--store, --identity, --trust and --id are required",
			NULL);
	if ((rc = cli_store_open(t, a->store, a->ca, a->cert, a->key, a->proxy)) != CLI_OK ||
			(rc = cli_identity_load(me, command, a->identity, a->passphrase_file)) != CLI_OK ||
			(rc = cli_trust_open(trust, a->trust)) != CLI_OK)
		return rc;
	return CLI_OK;
}

static void fed_close(fdn_transport *t, fdn_identity *me, fdn_trust *trust)
{
	fdn_transport_free(t);
	fdn_identity_free(me);
	fdn_trust_free(trust);
}

static int parse_uint(unsigned int *out, const char *s, unsigned int max)
{
	char *end;
	unsigned long v;

	if (!s)
		return 0;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || !*s || v > max || s[0] == '-')
		return -1;
	*out = (unsigned int)v;
	return 0;
}

static int parse_real(double *out, const char *s)
{
	char *end;

	if (!s)
		return 0;
	*out = strtod(s, &end);
	return *end || !*s || !(*out >= 0) ? -1 : 0;
}

static char *read_file_text(const char *command, const char *path)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	long n;

	if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > (1 << 24) ||
			fseek(f, 0, SEEK_SET) != 0 || !(text = calloc(1, (size_t)n + 1)) ||
			fread(text, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "fednode %s: cannot read '%s': %s\n", command, path,
			strerror(errno ? errno : EIO));
		free(text);
		text = NULL;
	}
	if (f)
		fclose(f);
	return text;
}

/* --- federation create ----------------------------------------------------------- */

struct create_args {
	const char *sites, *rounds, *quorum, *timeout, *strategy, *server_lr, *momentum, *mu;
	const char *form, *epochs, *lr, *clip, *noise, *seed, *title, *train_json, *model_json;
};

static int create_options(fdn_federation_options *fo, fdn_strategy_options *so,
	const struct create_args *c)
{
	unsigned int rounds = 0;

	fdn_federation_options_init(fo, FDN_FEDERATION_OPTIONS_VERSION);
	fdn_strategy_options_init(so, FDN_STRATEGY_OPTIONS_VERSION);
	if (!c->sites || !c->rounds)
		return cli_usage_error("federation", "create needs --sites A,B,... and --rounds N",
			NULL);
	if (parse_uint(&rounds, c->rounds, 100000) < 0 || rounds == 0)
		return cli_usage_error("federation", "--rounds takes 1 to 100000", c->rounds);
	fo->rounds = rounds;
	if (parse_uint(&fo->quorum, c->quorum, MAX_SITES) < 0)
		return cli_usage_error("federation", "bad --quorum", c->quorum);
	if (parse_uint(&fo->round_timeout_s, c->timeout, 1u << 30) < 0)
		return cli_usage_error("federation", "bad --round-timeout (seconds)", c->timeout);
	if (parse_uint(&fo->local_epochs, c->epochs, 100000) < 0)
		return cli_usage_error("federation", "bad --epochs", c->epochs);
	if (c->strategy && fdn_strategy_from_name(&so->strategy, c->strategy) != 0)
		return cli_usage_error("federation", "unknown --strategy (fedavg, fedavgm, fedadagrad, "
			"fedadam, fedyogi, fedprox, median, trimmed-mean)", c->strategy);
	if (parse_real(&so->server_lr, c->server_lr) < 0 ||
			parse_real(&so->momentum, c->momentum) < 0 ||
			parse_real(&so->proximal_mu, c->mu) < 0 ||
			parse_real(&fo->learning_rate, c->lr) < 0 ||
			parse_real(&fo->clip_norm, c->clip) < 0 ||
			parse_real(&fo->noise_multiplier, c->noise) < 0)
		return cli_usage_error("federation", "a number option is not a number >= 0", NULL);
	if (c->form && strcmp(c->form, "weights") != 0 && strcmp(c->form, "delta") != 0)
		return cli_usage_error("federation", "--form takes weights or delta", c->form);
	fo->update_form = c->form && !strcmp(c->form, "delta") ? FDN_UPDATE_DELTA :
		FDN_UPDATE_WEIGHTS;
	fo->seed = c->seed ? strtoull(c->seed, NULL, 10) : 0;
	fo->title = c->title;
	fo->strategy = so;
	return CLI_OK;
}

static int split_sites(char *list, const char **names, size_t *n)
{
	char *save = NULL, *tok;

	*n = 0;
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*n == MAX_SITES)
			return -1;
		names[(*n)++] = tok;
	}
	return *n ? 0 : -1;
}

static int federation_create(int argc, char **argv)
{
	struct fed_args a = { 0 };
	struct create_args c = { 0 };
	const char *out = NULL, *sites[MAX_SITES];
	struct cli_opt opts[] = { FED_OPTS(&a), { "--sites", &c.sites }, { "--rounds", &c.rounds },
		{ "--quorum", &c.quorum }, { "--round-timeout", &c.timeout },
		{ "--strategy", &c.strategy }, { "--server-lr", &c.server_lr },
		{ "--momentum", &c.momentum }, { "--mu", &c.mu }, { "--form", &c.form },
		{ "--epochs", &c.epochs }, { "--lr", &c.lr }, { "--clip", &c.clip },
		{ "--noise", &c.noise }, { "--seed", &c.seed }, { "--title", &c.title },
		{ "--train-json", &c.train_json }, { "--model-json", &c.model_json },
		{ "--out", &out }, { NULL, NULL } };
	fdn_federation_options fo;
	fdn_strategy_options so;
	fdn_transport *t = NULL;
	fdn_identity *me = NULL;
	fdn_trust *trust = NULL;
	fdn_federation *fed = NULL;
	char *list = NULL, *train = NULL, *model = NULL;
	size_t n_sites;
	int npos, rc;

	if ((rc = cli_parse_options("federation", argc, argv, 2, opts, NULL, 0, &npos)) != CLI_OK ||
			(rc = create_options(&fo, &so, &c)) != CLI_OK)
		return rc;
	if (!(list = strdup(c.sites)) || split_sites(list, sites, &n_sites) < 0) {
		free(list);
		return cli_usage_error("federation", "--sites takes 1 to 64 node ids separated by "
			"commas", c.sites);
	}
	fo.id = a.id;
	if ((c.train_json && !(train = read_file_text("federation", c.train_json))) ||
			(c.model_json && !(model = read_file_text("federation", c.model_json)))) {
		rc = CLI_FAILED;
		goto out;
	}
	fo.train_json = train;
	fo.model_json = model;
	if ((rc = fed_open("federation", &a, &t, &me, &trust)) != CLI_OK)
		goto out;
	if ((rc = fdn_federation_create(&fed, &fo, me, trust, sites, n_sites)) != 0 ||
			(rc = fdn_federation_publish(t, fed, me, trust)) != 0) {
		rc = cli_fail("cannot create the federation", rc);
		goto out;
	}
	if (out) {
		fdn_buf json = FDN_BUF_INIT;
		FILE *f;

		fdn_federation_json(&json, fed);
		if (!(f = fopen(out, "w")) || fputs(json.ptr, f) < 0 || fclose(f) != 0) {
			fprintf(stderr, "fednode federation: cannot write '%s'\n", out);
			rc = CLI_FAILED;
		}
		fdn_buf_dispose(&json);
	}
	printf("federation %s published to %s for %zu sites\nmanifest digest %s\n",
		fdn_federation_id(fed), a.store, n_sites, fdn_federation_digest(fed));
out:
	fdn_federation_free(fed);
	fed_close(t, me, trust);
	free(list);
	free(train);
	free(model);
	return rc;
}

/* --- federation show / approve ---------------------------------------------------- */

static void show(const fdn_federation *fed, int as_json)
{
	fdn_buf text = FDN_BUF_INIT;
	json_t *m, *s, *k, *strategy, *train;
	size_t i, j;

	fdn_federation_json(&text, fed);
	if (as_json) {
		printf("%s\n", text.ptr);
		fdn_buf_dispose(&text);
		return;
	}
	m = json_loads(text.ptr, 0, NULL);
	fdn_buf_dispose(&text);
	strategy = json_object_get(m, "strategy");
	train = json_object_get(m, "train");
	printf("Federation   %s  %s\n", fdn_federation_id(fed),
		json_string_value(json_object_get(m, "title")));
	printf("Digest       %s\n", fdn_federation_digest(fed));
	printf("Created      %s\n", json_string_value(json_object_get(m, "created")));
	printf("Coordinator  %s\n",
		json_string_value(json_object_get(json_object_get(m, "coordinator"), "node_id")));
	printf("Rounds       %d (quorum %d, round deadline %d s)\n",
		(int)json_integer_value(json_object_get(m, "rounds")),
		(int)json_integer_value(json_object_get(m, "quorum")),
		(int)json_integer_value(json_object_get(m, "round_timeout_s")));
	printf("Strategy     %s (server lr %g, FedProx mu %g)\n",
		json_string_value(json_object_get(strategy, "name")),
		json_number_value(json_object_get(strategy, "server_lr")),
		json_number_value(json_object_get(strategy, "proximal_mu")));
	printf("Training     %d local epochs, lr %g, update %s, clip %g, noise %g\n",
		(int)json_integer_value(json_object_get(train, "local_epochs")),
		json_number_value(json_object_get(train, "learning_rate")),
		json_string_value(json_object_get(m, "update_form")),
		json_number_value(json_object_get(train, "clip_norm")),
		json_number_value(json_object_get(train, "noise_multiplier")));
	printf("Sites\n");
	json_array_foreach(json_object_get(m, "sites"), i, s)
		json_array_foreach(json_object_get(s, "keys"), j, k)
			printf("  %-20s %s\n", json_string_value(json_object_get(s, "node_id")),
				json_string_value(json_object_get(k, "fingerprint")));
	json_decref(m);
}

static int federation_show_approve(int argc, char **argv, int approve)
{
	struct fed_args a = { 0 };
	const char *registry = NULL, *note = NULL, *as_json = NULL;
	struct cli_opt opts[] = { FED_OPTS(&a), { "--registry", &registry }, { "--note", &note },
		{ "--format", &as_json }, { NULL, NULL } };
	fdn_transport *t = NULL;
	fdn_identity *me = NULL;
	fdn_trust *trust = NULL;
	fdn_federation *fed = NULL;
	fdn_registry *reg = NULL;
	int npos, rc;

	if ((rc = cli_parse_options("federation", argc, argv, 2, opts, NULL, 0, &npos)) != CLI_OK)
		return rc;
	if (approve && !registry)
		return cli_usage_error("federation", "approve needs --registry DIR", NULL);
	if ((rc = fed_open("federation", &a, &t, &me, &trust)) != CLI_OK)
		goto out;
	if ((rc = fdn_federation_fetch(&fed, t, a.id, me, trust)) != 0) {
		rc = cli_fail("cannot fetch the manifest", rc);
		goto out;
	}
	show(fed, !approve && as_json && !strcmp(as_json, "json"));
	if (approve) {
		if ((rc = cli_registry_open(&reg, "federation", registry, 0, 0)) != CLI_OK)
			goto out;
		if ((rc = fdn_federation_approve(reg, fed, note)) != 0) {
			rc = cli_fail("cannot record the approval", rc);
			goto out;
		}
		printf("approved: recorded in the audit log of %s\n", registry);
	}
out:
	fdn_registry_free(reg);
	fdn_federation_free(fed);
	fed_close(t, me, trust);
	return rc;
}

int cmd_federation(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error("federation", "expected create, show or approve", NULL);
	if (!strcmp(argv[1], "create"))
		return federation_create(argc, argv);
	if (!strcmp(argv[1], "show"))
		return federation_show_approve(argc, argv, 0);
	if (!strcmp(argv[1], "approve"))
		return federation_show_approve(argc, argv, 1);
	return cli_usage_error("federation", "expected create, show or approve", argv[1]);
}

/* --- coordinator and node ----------------------------------------------------------- */

/* One line per round on stdout. */
static int print_round(const fdn_progress *p, void *payload)
{
	const char *who = payload;
	static uint64_t last = UINT64_MAX;

	if (p->items_done != last) {
		last = p->items_done;
		printf("%s: %" PRIu64 " of %" PRIu64 " rounds done (%.1f s)\n", who, p->items_done,
			p->items_total, p->elapsed);
		fflush(stdout);
	}
	return 0;
}

int cmd_coordinator(int argc, char **argv)
{
	struct fed_args a = { 0 };
	const char *state = NULL, *initial = NULL, *poll = NULL, *out = NULL, *manifest = NULL;
	struct cli_opt opts[] = { FED_OPTS(&a), { "--state", &state }, { "--initial", &initial },
		{ "--poll-ms", &poll }, { "--out", &out }, { "--manifest", &manifest },
		{ NULL, NULL } };
	char *text = NULL;
	fdn_coordinator_options co;
	fdn_transport *t = NULL;
	fdn_identity *me = NULL;
	fdn_trust *trust = NULL;
	fdn_federation *fed = NULL;
	fdn_model *model = NULL;
	fdn_coordinator *coord = NULL;
	fdn_cancel *cancel = NULL;
	struct sigaction old;
	const fdn_model *final;
	int npos, rc;

	if ((rc = cli_parse_options("coordinator", argc, argv, 1, opts, NULL, 0, &npos)) != CLI_OK)
		return rc;
	fdn_coordinator_options_init(&co, FDN_COORDINATOR_OPTIONS_VERSION);
	if (!state || parse_uint(&co.poll_interval_ms, poll, 3600000) < 0)
		return cli_usage_error("coordinator", "--state DIR is required; --poll-ms a number",
			NULL);
	if ((rc = fed_open("coordinator", &a, &t, &me, &trust)) != CLI_OK)
		goto out;
	/* The coordinator's own copy (federation create --out), or the store's,
	 * which it can open when its trust store holds its own key. */
	if (manifest && !(text = read_file_text("coordinator", manifest))) {
		rc = CLI_FAILED;
		goto out;
	}
	rc = text ? fdn_federation_parse(&fed, text) : fdn_federation_fetch(&fed, t, a.id, me, trust);
	if (rc != 0) {
		rc = cli_fail("cannot read the manifest (create it first: fednode federation "
			"create --out FILE, then --manifest FILE)", rc);
		goto out;
	}
	if (strcmp(fdn_federation_id(fed), a.id) != 0) {
		fprintf(stderr, "fednode coordinator: the manifest is for federation %s, not %s\n",
			fdn_federation_id(fed), a.id);
		rc = CLI_FAILED;
		goto out;
	}
	rc = initial ? fdn_model_read_file(&model, initial, FDN_MODEL_READ_COPY) :
		demo_model_init(&model, 1);
	if (rc != 0) {
		rc = cli_fail("cannot read the initial model", rc);
		goto out;
	}
	fdn_cancel_new(&cancel);
	co.cancel = cancel;
	co.progress = print_round;
	co.progress_payload = "coordinator";
	if ((rc = fdn_coordinator_new(&coord, t, me, trust, fed, model, state, &co)) != 0) {
		rc = cli_fail("cannot start the coordinator", rc);
		goto out;
	}
	cli_sigint_catch(cancel, &old);
	rc = fdn_coordinator_run(coord);
	cli_sigint_release(&old);
	if (rc != 0) {
		rc = rc == FDN_ECANCELLED ? 130 : cli_fail("the federation stopped", rc);
		goto out;
	}
	fdn_coordinator_model(&final, coord);
	if (out && (rc = fdn_model_write_file(final, out)) != 0) {
		rc = cli_fail("cannot write the final model", rc);
		goto out;
	}
	printf("coordinator: federation %s finished%s%s\n", a.id, out ? "; final model in " : "",
		out ? out : "");
out:
	free(text);
	fdn_coordinator_free(coord);
	fdn_model_free(model);
	fdn_federation_free(fed);
	fdn_cancel_free(cancel);
	fed_close(t, me, trust);
	return rc;
}

/* A host trainer from a shared library that exports
 *   int fednode_trainer_init(const fdn_trainer **iface, void **payload, const char *arg);
 * (see doc/federated.md). */
static int plugin_trainer(const fdn_trainer **iface, void **payload, const char *path,
	const char *arg, void **handle)
{
	int (*init)(const fdn_trainer **, void **, const char *);
	int rc;

	if (!(*handle = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
		fprintf(stderr, "fednode node: cannot load the trainer '%s': %s\n", path, dlerror());
		return CLI_FAILED;
	}
	*(void **)&init = dlsym(*handle, "fednode_trainer_init");
	if (!init) {
		fprintf(stderr, "fednode node: '%s' has no fednode_trainer_init\n", path);
		return CLI_FAILED;
	}
	if ((rc = init(iface, payload, arg)) != 0)
		return cli_fail("the trainer's initialisation failed", rc);
	return CLI_OK;
}

int cmd_node(int argc, char **argv)
{
	struct fed_args a = { 0 };
	const char *registry = NULL, *cohort = NULL, *trainer = "demo", *trainer_arg = NULL;
	const char *work = NULL, *poll = NULL, *eval_cohort = NULL, *out = NULL;
	struct cli_opt opts[] = { FED_OPTS(&a), { "--registry", &registry }, { "--cohort", &cohort },
		{ "--trainer", &trainer }, { "--trainer-arg", &trainer_arg }, { "--work", &work },
		{ "--poll-ms", &poll }, { "--eval-cohort", &eval_cohort }, { "--out", &out },
		{ NULL, NULL } };
	fdn_client_options co;
	fdn_transport *t = NULL;
	fdn_identity *me = NULL;
	fdn_trust *trust = NULL;
	fdn_registry *reg = NULL;
	fdn_client *client = NULL;
	fdn_cancel *cancel = NULL;
	const fdn_trainer *iface = NULL;
	demo_trainer *demo = NULL;
	void *payload = NULL, *plugin = NULL;
	struct sigaction old;
	const fdn_model *final;
	int npos, rc;

	if ((rc = cli_parse_options("node", argc, argv, 1, opts, NULL, 0, &npos)) != CLI_OK)
		return rc;
	fdn_client_options_init(&co, FDN_CLIENT_OPTIONS_VERSION);
	if (!registry || !cohort || parse_uint(&co.poll_interval_ms, poll, 3600000) < 0)
		return cli_usage_error("node", "--registry DIR and --cohort NAME are required; "
			"--poll-ms a number", NULL);
	if ((rc = fed_open("node", &a, &t, &me, &trust)) != CLI_OK ||
			(rc = cli_registry_open(&reg, "node", registry, 0, 0)) != CLI_OK)
		goto out;
	if (!strcmp(trainer, "demo")) {
		if ((rc = demo_trainer_new(&demo)) != 0 ||
				(eval_cohort && (rc = demo_trainer_set_eval_cohort(demo, eval_cohort)) != 0)) {
			fprintf(stderr, "fednode node: %s\n", demo_error_message());
			rc = CLI_FAILED;
			goto out;
		}
		iface = demo_trainer_iface();
		payload = demo;
	} else if ((rc = plugin_trainer(&iface, &payload, trainer, trainer_arg, &plugin)) != CLI_OK) {
		goto out;
	}
	fdn_cancel_new(&cancel);
	co.cancel = cancel;
	co.work_dir = work;
	co.progress = print_round;
	co.progress_payload = (void *)fdn_identity_node_id(me);
	if ((rc = fdn_client_new(&client, t, me, trust, reg, a.id, cohort, iface, payload,
			&co)) != 0) {
		rc = cli_fail("cannot start the node", rc);
		goto out;
	}
	cli_sigint_catch(cancel, &old);
	rc = fdn_client_run(client);
	cli_sigint_release(&old);
	if (rc != 0) {
		rc = rc == FDN_ECANCELLED ? 130 : cli_fail("the node stopped", rc);
		goto out;
	}
	if (out && fdn_client_model(&final, client) == 0 &&
			(rc = fdn_model_write_file(final, out)) != 0) {
		rc = cli_fail("cannot write the final model", rc);
		goto out;
	}
	printf("%s: federation %s finished after %" PRIu64 " rounds\n", fdn_identity_node_id(me),
		a.id, fdn_client_round(client));
out:
	fdn_client_free(client);
	demo_trainer_free(demo);
	fdn_registry_free(reg);
	fdn_cancel_free(cancel);
	fed_close(t, me, trust);
	if (plugin)
		dlclose(plugin);
	return rc;
}
