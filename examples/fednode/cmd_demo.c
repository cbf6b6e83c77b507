/*
 * fednode demo [--sites N] [--patients P] [--rounds R] [--epochs E] [--lr X]
 *              [--strategy NAME] [--seed S] [--out DIR] [--https]
 *
 * The whole federation on one machine: N synthetic hospitals with
 * realistic patient data, each importing its images through
 * de-identification into its own registry; a coordinator and the sites
 * as separate processes (this same program: `fednode coordinator` and
 * `fednode node`) exchanging sealed envelopes through a store; the same
 * model trained centrally on the pooled data for comparison; a report
 * and a plot; every registry's audit chain verified.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <fednode/fednode.h>

#include "cli.h"
#include "demo.h"
#include "demo_https.h"

#define MAX_DEMO_SITES 8
#define PATH_SIZE 1024

extern char **environ;

struct demo_args {
	unsigned int sites, patients, rounds, epochs;
	double lr;
	uint64_t seed;
	const char *strategy, *out;
	int https;
};

struct demo_site_state {
	char name[32];
	char dir[PATH_SIZE], registry[PATH_SIZE], identity[PATH_SIZE], trust[PATH_SIZE];
	demo_site profile;
	demo_populate_stats stats;
	pid_t pid;
};

struct demo {
	struct demo_args a;
	char out[PATH_SIZE / 2], store_dir[PATH_SIZE], store_url[PATH_SIZE + 8];
	char coord_dir[PATH_SIZE], coord_identity[PATH_SIZE], coord_trust[PATH_SIZE];
	char state_dir[PATH_SIZE], final_model[PATH_SIZE], logs[PATH_SIZE], manifest[PATH_SIZE];
	char initial[PATH_SIZE];
	struct demo_site_state site[MAX_DEMO_SITES];
	pid_t coord_pid;
	demo_https https;    /* with --https: the nginx store */
	double t0;
	const char *fed_id;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
	fprintf(stderr, "fednode demo: %s\n", what);
	return CLI_FAILED;
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "fednode demo: cannot create '%s': %s\n", path, strerror(errno));
		return CLI_FAILED;
	}
	return CLI_OK;
}

/* --- arguments ---------------------------------------------------------------------- */

static int parse_args(struct demo_args *a, int argc, char **argv)
{
	const char *sites = NULL, *patients = NULL, *rounds = NULL, *epochs = NULL, *lr = NULL;
	const char *seed = NULL, *https = NULL;
	struct cli_opt opts[] = { { "--sites", &sites }, { "--patients", &patients },
		{ "--rounds", &rounds }, { "--epochs", &epochs }, { "--lr", &lr },
		{ "--seed", &seed }, { "--strategy", &a->strategy }, { "--out", &a->out },
		{ NULL, NULL } };
	char **args = calloc((size_t)argc + 1, sizeof(*args));
	int n = 0, npos, rc, s;

	/* --https takes no value: take it out before the generic parser. */
	if (!args)
		return CLI_FAILED;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--https"))
			https = "1";
		else
			args[n++] = argv[i];
	}
	rc = cli_parse_options("demo", n, args, 1, opts, NULL, 0, &npos);
	free(args);
	if (rc != CLI_OK)
		return rc;
	a->sites = sites ? (unsigned int)atoi(sites) : 3;
	a->patients = patients ? (unsigned int)atoi(patients) : 400;
	a->rounds = rounds ? (unsigned int)atoi(rounds) : 25;
	a->epochs = epochs ? (unsigned int)atoi(epochs) : 1;
	a->lr = lr ? atof(lr) : 0.5;
	a->seed = seed ? strtoull(seed, NULL, 10) : 42;
	a->https = https != NULL;
	if (a->sites < 2 || a->sites > MAX_DEMO_SITES)
		return cli_usage_error("demo", "--sites takes 2 to 8", sites);
	if (a->patients < 20 || a->patients > 5000)
		return cli_usage_error("demo", "--patients takes 20 to 5000", patients);
	if (a->rounds < 1 || a->rounds > 1000 || a->epochs < 1 || a->epochs > 100)
		return cli_usage_error("demo", "--rounds takes 1 to 1000, --epochs 1 to 100", NULL);
	if (!(a->lr > 0) || a->seed == 0)
		return cli_usage_error("demo", "--lr must be > 0 and --seed non-zero", NULL);
	if (a->strategy && fdn_strategy_from_name(&s, a->strategy) != 0)
		return cli_usage_error("demo", "unknown --strategy", a->strategy);
	return CLI_OK;
}

/* --- setting up the sites, the keys and the federation ---------------------------- */

static int layout(struct demo *d)
{
	time_t t = time(NULL);
	struct tm tm;
	int rc;

	if (d->a.out) {
		if (strlen(d->a.out) >= sizeof(d->out))
			return fail("--out: the path is too long");
		snprintf(d->out, sizeof(d->out), "%s", d->a.out);
	} else {
		localtime_r(&t, &tm);
		strftime(d->out, sizeof(d->out), "fednode-demo-%Y%m%d-%H%M%S", &tm);
	}
	if (mkdir(d->out, 0700) != 0) {
		fprintf(stderr, "fednode demo: cannot create '%s': %s\n", d->out,
			errno == EEXIST ? "it exists (choose another --out)" : strerror(errno));
		return CLI_FAILED;
	}
	snprintf(d->store_dir, sizeof(d->store_dir), "%s/store", d->out);
	snprintf(d->logs, sizeof(d->logs), "%s/logs", d->out);
	snprintf(d->coord_dir, sizeof(d->coord_dir), "%s/coordinator", d->out);
	snprintf(d->state_dir, sizeof(d->state_dir), "%s/coordinator/state", d->out);
	snprintf(d->coord_identity, sizeof(d->coord_identity), "%s/coordinator/identity.key",
		d->out);
	snprintf(d->coord_trust, sizeof(d->coord_trust), "%s/coordinator/trust.json", d->out);
	snprintf(d->final_model, sizeof(d->final_model), "%s/final-model.safetensors", d->out);
	snprintf(d->manifest, sizeof(d->manifest), "%s/coordinator/manifest.json", d->out);
	snprintf(d->initial, sizeof(d->initial), "%s/coordinator/initial-model.safetensors",
		d->out);
	if ((rc = make_dir(d->logs)) || (rc = make_dir(d->coord_dir)) ||
			(rc = make_dir(d->state_dir)))
		return rc;
	if (d->a.https)
		; /* the store is nginx's: start_https() */
	else if ((rc = make_dir(d->store_dir)) != CLI_OK)
		return rc;
	else {
		char abs[PATH_SIZE];

		if (!realpath(d->store_dir, abs))
			return fail("cannot resolve the store folder");
		snprintf(d->store_url, sizeof(d->store_url), "file://%s", abs);
	}
	for (unsigned int i = 0; i < d->a.sites; i++) {
		struct demo_site_state *s = &d->site[i];

		char name[8];

		demo_site_profile(&s->profile, i);
		snprintf(name, sizeof(name), "site-%c", 'a' + i);
		snprintf(s->name, sizeof(s->name), "%s", name);
		snprintf(s->dir, sizeof(s->dir), "%s/%s", d->out, name);
		snprintf(s->registry, sizeof(s->registry), "%s/%s/registry", d->out, name);
		snprintf(s->identity, sizeof(s->identity), "%s/%s/identity.key", d->out, name);
		snprintf(s->trust, sizeof(s->trust), "%s/%s/trust.json", d->out, name);
		if ((rc = make_dir(s->dir)) != CLI_OK)
			return rc;
	}
	return CLI_OK;
}

static int populate(struct demo *d, struct demo_site_state *s)
{
	unsigned char key[64];
	char key_path[PATH_SIZE];
	int rc;

	snprintf(key_path, sizeof(key_path), "%s/%s/deid.key", d->out, s->name);
	if ((rc = fdn_deid_key_generate(key_path)) != 0 ||
			(rc = fdn_deid_key_load(key, fdn_deid_key_bytes(), key_path)) != 0)
		return cli_fail("site key", rc);
	rc = demo_site_populate(&s->stats, s->registry, key, &s->profile, d->a.patients, 0.3,
		d->a.seed, NULL, NULL, NULL);
	memset(key, 0, sizeof(key));
	if (rc != 0) {
		fprintf(stderr, "fednode demo: %s: %s\n", s->name, demo_error_message());
		return CLI_FAILED;
	}
	printf("  %s  %-28s %3" PRIu64 " patients (%" PRIu64 " train, %" PRIu64 " test, %"
		PRIu64 " with a nodule), de-identified and registered in %.1f s\n", s->name,
		s->profile.institution, s->stats.patients, s->stats.train, s->stats.test,
		s->stats.nodules, s->stats.seconds);
	return CLI_OK;
}

static int save_identity(fdn_identity **out, const char *node_id, const char *path)
{
	int rc;

	if ((rc = fdn_identity_generate(out, node_id)) != 0 ||
			(rc = fdn_identity_save(*out, path, NULL)) != 0)
		return cli_fail("identity", rc);
	return CLI_OK;
}

static int trust_add(fdn_trust *trust, const fdn_identity *peer, int role)
{
	fdn_buf text = FDN_BUF_INIT;
	int rc = fdn_identity_public(&text, peer, NULL);

	if (rc == 0)
		rc = fdn_trust_add(trust, text.ptr, role, NULL);
	fdn_buf_dispose(&text);
	return rc;
}

/* Keys for everyone; the coordinator trusts the sites and each site the
 * coordinator (in a real network: keys exchanged and fingerprints compared
 * out of band). */
static int keys(struct demo *d)
{
	fdn_identity *coord = NULL, *site = NULL;
	fdn_trust *ct = NULL, *st = NULL;
	int rc;

	if ((rc = save_identity(&coord, "coordinator", d->coord_identity)) != CLI_OK)
		return rc;
	if ((rc = fdn_trust_open(&ct, d->coord_trust)) != 0) {
		rc = cli_fail("trust", rc);
		goto out;
	}
	for (unsigned int i = 0; i < d->a.sites; i++) {
		struct demo_site_state *s = &d->site[i];

		if ((rc = save_identity(&site, s->name, s->identity)) != CLI_OK)
			goto out;
		if ((rc = fdn_trust_open(&st, s->trust)) != 0 ||
				(rc = trust_add(st, coord, FDN_TRUST_ROLE_COORDINATOR)) != 0 ||
				(rc = fdn_trust_save(st)) != 0 ||
				(rc = trust_add(ct, site, FDN_TRUST_ROLE_SITE)) != 0) {
			rc = cli_fail("trust", rc);
			goto out;
		}
		fdn_trust_free(st);
		st = NULL;
		fdn_identity_free(site);
		site = NULL;
	}
	if ((rc = fdn_trust_save(ct)) != 0)
		rc = cli_fail("trust", rc);
out:
	fdn_identity_free(coord);
	fdn_identity_free(site);
	fdn_trust_free(ct);
	fdn_trust_free(st);
	return rc;
}

/* The store as @p node reaches it: the folder, or nginx with the node's
 * client certificate. */
static int open_store(fdn_transport **t, const struct demo *d, const char *node)
{
	char cert[DEMO_HTTPS_PATH], key[DEMO_HTTPS_PATH], ca[DEMO_HTTPS_PATH];
	fdn_https_options o;

	if (!d->a.https)
		return fdn_transport_dir_new(t, d->store_dir);
	demo_https_files(&d->https, node, cert, key, ca);
	fdn_https_options_init(&o, FDN_HTTPS_OPTIONS_VERSION);
	o.ca_file = ca;
	o.client_cert = cert;
	o.client_key = key;
	o.proxy = "";
	return fdn_transport_https_new(t, d->store_url, &o);
}

/* The coordinator creates and publishes the manifest; each site's operator
 * fetches it and approves it in the site's registry. */
static int federation(struct demo *d)
{
	fdn_federation_options fo;
	fdn_strategy_options so;
	const char *sites[MAX_DEMO_SITES];
	fdn_identity *coord = NULL, *me = NULL;
	fdn_trust *ct = NULL, *st = NULL;
	fdn_transport *t = NULL;
	fdn_federation *fed = NULL, *seen = NULL;
	fdn_registry *reg = NULL;
	fdn_registry_options ro;
	int rc;

	fdn_federation_options_init(&fo, FDN_FEDERATION_OPTIONS_VERSION);
	fdn_strategy_options_init(&so, FDN_STRATEGY_OPTIONS_VERSION);
	if (d->a.strategy)
		fdn_strategy_from_name(&so.strategy, d->a.strategy);
	for (unsigned int i = 0; i < d->a.sites; i++)
		sites[i] = d->site[i].name;
	fo.id = d->fed_id;
	fo.title = "fednode demo: lung nodule on synthetic CT";
	fo.rounds = d->a.rounds;
	fo.strategy = &so;
	fo.local_epochs = d->a.epochs;
	fo.learning_rate = d->a.lr;
	fo.seed = d->a.seed;
	fo.model_json = "{\"name\": \"demo softmax regression\", \"inputs\": \"16x16 lung-window "
		"pixels\", \"classes\": [\"none\", \"nodule\"]}";
	fo.train_json = "{\"batch_size\": 16}";
	fdn_registry_options_init(&ro, FDN_REGISTRY_OPTIONS_VERSION);
	if ((rc = fdn_identity_load(&coord, d->coord_identity, NULL)) != 0 ||
			(rc = fdn_trust_open(&ct, d->coord_trust)) != 0 ||
			(rc = open_store(&t, d, "coordinator")) != 0 ||
			(rc = fdn_federation_create(&fed, &fo, coord, ct, sites, d->a.sites)) != 0 ||
			(rc = fdn_federation_publish(t, fed, coord, ct)) != 0) {
		rc = cli_fail("federation", rc);
		goto out;
	}
	for (unsigned int i = 0; i < d->a.sites && rc == 0; i++) {
		struct demo_site_state *s = &d->site[i];

		fdn_transport *site_t = NULL;

		if ((rc = fdn_identity_load(&me, s->identity, NULL)) != 0 ||
				(rc = fdn_trust_open(&st, s->trust)) != 0 ||
				(rc = open_store(&site_t, d, s->name)) != 0 ||
				(rc = fdn_federation_fetch(&seen, site_t, d->fed_id, me, st)) != 0 ||
				(rc = fdn_registry_open(&reg, s->registry, &ro)) != 0 ||
				(rc = fdn_federation_approve(reg, seen,
					"demo: approved by the site's operator")) != 0)
			rc = cli_fail(s->name, rc);
		fdn_transport_free(site_t);
		fdn_registry_free(reg);
		fdn_federation_free(seen);
		fdn_trust_free(st);
		fdn_identity_free(me);
		reg = NULL;
		seen = NULL;
		st = NULL;
		me = NULL;
	}
	if (rc == 0) {
		fdn_buf json = FDN_BUF_INIT;
		FILE *f;

		fdn_federation_json(&json, fed);
		if (!(f = fopen(d->manifest, "w")) || fputs(json.ptr, f) < 0 || fclose(f) != 0)
			rc = fail("cannot write the manifest");
		fdn_buf_dispose(&json);
	}
	if (rc == 0) {
		/* The same start as the centralised baseline (demo_train_central). */
		fdn_model *init = NULL;

		if ((rc = demo_model_init(&init, d->a.seed)) != 0 ||
				(rc = fdn_model_write_file(init, d->initial)) != 0)
			rc = fail("cannot write the initial model");
		fdn_model_free(init);
	}
	if (rc == 0)
		printf("  federation %s: %u rounds of %s, manifest %.16s..., approved by %u sites\n",
			d->fed_id, d->a.rounds, d->a.strategy ? d->a.strategy : "fedavg",
			fdn_federation_digest(fed), d->a.sites);
out:
	fdn_federation_free(fed);
	fdn_transport_free(t);
	fdn_trust_free(ct);
	fdn_identity_free(coord);
	return rc;
}

/* --- the processes ----------------------------------------------------------------- */

static pid_t spawn(const struct demo *d, const char *log_name, char **argv)
{
	char cert[DEMO_HTTPS_PATH], key[DEMO_HTTPS_PATH], ca[DEMO_HTTPS_PATH];
	posix_spawn_file_actions_t fa;
	char log[PATH_SIZE];
	pid_t pid;
	int rc, argc = 0;

	while (argv[argc])
		argc++;
	/* Over nginx, each process shows its own client certificate (argv has
	 * room for six more). */
	if (d->a.https) {
		demo_https_files(&d->https, log_name, cert, key, ca);
		argv[argc++] = "--ca";
		argv[argc++] = ca;
		argv[argc++] = "--cert";
		argv[argc++] = cert;
		argv[argc++] = "--key";
		argv[argc++] = key;
		argv[argc] = NULL;
	}

	snprintf(log, sizeof(log), "%s/logs/%s.log", d->out, log_name);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		fprintf(stderr, "fednode demo: cannot start %s: %s\n", log_name, strerror(rc));
		return -1;
	}
	return pid;
}

static int start(struct demo *d)
{
	char *coord[24] = { "fednode", "coordinator", "--store", d->store_url, "--identity",
		d->coord_identity, "--trust", d->coord_trust, "--id", (char *)d->fed_id, "--state",
		d->state_dir, "--manifest", d->manifest, "--initial", d->initial, "--poll-ms", "50",
		"--out", d->final_model, NULL };

	if ((d->coord_pid = spawn(d, "coordinator", coord)) < 0)
		return CLI_FAILED;
	for (unsigned int i = 0; i < d->a.sites; i++) {
		struct demo_site_state *s = &d->site[i];
		char work[PATH_SIZE];
		char *node[28] = { "fednode", "node", "--store", d->store_url, "--identity",
			s->identity, "--trust", s->trust, "--id", (char *)d->fed_id, "--registry",
			s->registry, "--cohort", DEMO_COHORT_TRAIN, "--eval-cohort", DEMO_COHORT_TEST,
			"--work", work, "--poll-ms", "50", NULL };

		snprintf(work, sizeof(work), "%s/%s/work", d->out, s->name);
		if (make_dir(work) != CLI_OK || (s->pid = spawn(d, s->name, node)) < 0)
			return CLI_FAILED;
	}
	return CLI_OK;
}

static void stop_all(struct demo *d)
{
	if (d->coord_pid > 0)
		kill(d->coord_pid, SIGTERM);
	for (unsigned int i = 0; i < d->a.sites; i++)
		if (d->site[i].pid > 0)
			kill(d->site[i].pid, SIGTERM);
}

/* A metric of a site in a round's result; NaN when absent. */
static double site_metric(json_t *round, const char *site, const char *phase,
	const char *name)
{
	json_t *e;
	size_t i;

	json_array_foreach(json_object_get(round, "aggregated"), i, e)
		if (!strcmp(json_string_value(json_object_get(e, "site")), site)) {
			json_t *v = json_object_get(json_object_get(json_object_get(e, "metrics"),
				phase), name);

			return json_is_number(v) ? json_number_value(v) : NAN;
		}
	return NAN;
}

static json_t *load_results(const struct demo *d)
{
	char path[PATH_SIZE + 32];
	json_t *cp, *r;

	snprintf(path, sizeof(path), "%s/checkpoint.json", d->state_dir);
	if (!(cp = json_load_file(path, 0, NULL)))
		return NULL;
	r = json_incref(json_object_get(cp, "results"));
	json_decref(cp);
	return r;
}

static void print_round(const struct demo *d, json_t *round)
{
	size_t k = (size_t)json_integer_value(json_object_get(round, "round"));

	printf("  round %2zu/%u  test accuracy of the global model:", k, d->a.rounds);
	for (unsigned int i = 0; i < d->a.sites; i++)
		printf("  %s %.3f", d->site[i].name,
			site_metric(round, d->site[i].name, "eval", "accuracy"));
	printf("  (%.1f s)\n", now_s() - d->t0);
	fflush(stdout);
}

/* Waits for every process, printing each round as the coordinator closes it. */
static int wait_all(struct demo *d)
{
	size_t shown = 0;
	unsigned int running = d->a.sites + 1;
	int failed = 0;

	while (running > 0) {
		json_t *results = load_results(d);
		int status;
		pid_t pid;

		while (results && shown < json_array_size(results))
			print_round(d, json_array_get(results, shown++));
		json_decref(results);
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			running--;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				fprintf(stderr, "fednode demo: process %d failed (see %s)\n", (int)pid,
					d->logs);
				failed = 1;
				stop_all(d);
			}
		}
		if (running)
			usleep(100000);
	}
	return failed ? CLI_FAILED : CLI_OK;
}

/* --- results ------------------------------------------------------------------------ */

struct outcome {
	demo_metrics central_train, central_test, fed_test;
	demo_metrics fed_site[MAX_DEMO_SITES], central_site[MAX_DEMO_SITES];
	int verified[MAX_DEMO_SITES];
	double central_seconds;
};

static int evaluate(struct demo *d, struct outcome *o)
{
	fdn_registry *regs[MAX_DEMO_SITES] = { 0 };
	fdn_registry_options ro;
	demo_trainer *t = NULL;
	fdn_model *central = NULL, *fed = NULL;
	int rc = 0;
	double t0;

	fdn_registry_options_init(&ro, FDN_REGISTRY_OPTIONS_VERSION);
	for (unsigned int i = 0; i < d->a.sites && rc == 0; i++)
		rc = fdn_registry_open(&regs[i], d->site[i].registry, &ro);
	if (rc != 0 || (rc = fdn_model_read_file(&fed, d->final_model, FDN_MODEL_READ_COPY)) != 0) {
		rc = cli_fail("results", rc);
		goto out;
	}
	if ((rc = demo_trainer_new(&t)) != 0)
		goto demo_fail;
	t0 = now_s();
	if ((rc = demo_train_central(&central, &o->central_train, &o->central_test, t, regs,
			d->a.sites, d->a.rounds * d->a.epochs, d->a.lr, d->a.seed)) != 0)
		goto demo_fail;
	o->central_seconds = now_s() - t0;
	if ((rc = demo_evaluate(&o->fed_test, t, fed, regs, d->a.sites, DEMO_COHORT_TEST)) != 0)
		goto demo_fail;
	for (unsigned int i = 0; i < d->a.sites; i++) {
		if ((rc = demo_evaluate(&o->fed_site[i], t, fed, &regs[i], 1, DEMO_COHORT_TEST)) != 0 ||
				(rc = demo_evaluate(&o->central_site[i], t, central, &regs[i], 1,
					DEMO_COHORT_TEST)) != 0)
			goto demo_fail;
		o->verified[i] = fdn_registry_verify(NULL, regs[i]) == 0;
	}
	{
		char path[PATH_SIZE + 32];

		snprintf(path, sizeof(path), "%s/central-model.safetensors", d->out);
		fdn_model_write_file(central, path);
	}
	goto out;
demo_fail:
	fprintf(stderr, "fednode demo: %s\n", demo_error_message());
	rc = CLI_FAILED;
out:
	for (unsigned int i = 0; i < d->a.sites; i++)
		fdn_registry_free(regs[i]);
	demo_trainer_free(t);
	fdn_model_free(central);
	fdn_model_free(fed);
	return rc ? CLI_FAILED : CLI_OK;
}

/* An SVG with two panels: test accuracy and training loss per round and site. */
static void write_svg(const struct demo *d, json_t *results, FILE *f)
{
	static const char *const colors[] = { "#1b9e77", "#d95f02", "#7570b3", "#e7298a",
		"#66a61e", "#e6ab02", "#a6761d", "#666666" };
	const double W = 420, H = 260, L = 50, T = 30, PW = 340, PH = 190;
	size_t n = json_array_size(results);
	double max_loss = 0.0;

	for (size_t k = 0; k < n; k++)
		for (unsigned int i = 0; i < d->a.sites; i++) {
			double v = site_metric(json_array_get(results, k), d->site[i].name, "train", "loss");

			if (v > max_loss)
				max_loss = v;
		}
	if (!(max_loss > 0))
		max_loss = 1;
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
		"font-family=\"sans-serif\" font-size=\"11\">\n", 2 * W, H + 20);
	for (int panel = 0; panel < 2; panel++) {
		double x0 = panel * W + L;

		fprintf(f, "<text x=\"%g\" y=\"18\" font-size=\"13\">%s</text>\n", x0,
			panel ? "training loss per site" : "test accuracy of the global model per site");
		fprintf(f, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" "
			"stroke=\"#999\"/>\n", x0, T, PW, PH);
		fprintf(f, "<text x=\"%g\" y=\"%g\">round</text>\n", x0 + PW / 2 - 15, T + PH + 28);
		for (int tick = 0; tick <= 4; tick++) {
			double y = T + PH - PH * tick / 4.0;

			fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"end\">%.2f</text>\n", x0 - 4,
				y + 4, panel ? max_loss * tick / 4.0 : 0.5 + 0.5 * tick / 4.0);
		}
		fprintf(f, "<text x=\"%g\" y=\"%g\">1</text><text x=\"%g\" y=\"%g\">%zu</text>\n",
			x0, T + PH + 14, x0 + PW - 10, T + PH + 14, n);
		for (unsigned int i = 0; i < d->a.sites; i++) {
			fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
				colors[i % 8]);
			for (size_t k = 0; k < n; k++) {
				json_t *r = json_array_get(results, k);
				double v = panel ? site_metric(r, d->site[i].name, "train", "loss") / max_loss :
					(site_metric(r, d->site[i].name, "eval", "accuracy") - 0.5) / 0.5;
				double x = x0 + (n > 1 ? PW * (double)k / (double)(n - 1) : 0);

				if (isfinite(v))
					fprintf(f, "%.1f,%.1f ", x, T + PH - PH * (v < 0 ? 0 : v > 1 ? 1 : v));
			}
			fprintf(f, "\"/>\n<text x=\"%g\" y=\"%g\" fill=\"%s\">%s</text>\n",
				x0 + PW - 60, T + 14 + 13.0 * i, colors[i % 8], d->site[i].name);
		}
	}
	fprintf(f, "</svg>\n");
}

/* Where the store's objects are, relative to the output folder. */
static const char *store_rel(const struct demo *d)
{
	return d->a.https ? "https/www/store/" : "store/";
}

static int report(const struct demo *d, const struct outcome *o)
{
	char path[PATH_SIZE + 32];
	json_t *results = load_results(d);
	FILE *f;

	snprintf(path, sizeof(path), "%s/report.svg", d->out);
	if (!results || !(f = fopen(path, "w")))
		return fail("cannot write the report");
	write_svg(d, results, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/report.md", d->out);
	if (!(f = fopen(path, "w"))) {
		json_decref(results);
		return fail("cannot write the report");
	}
	fprintf(f, "# fednode demo\n\n%u hospitals, %u synthetic CT patients each (30%% held "
		"out for testing), a bright lung nodule present or not; softmax regression on "
		"16×16 lung-window pixels.  Federation `%s`: %u rounds of %s, %u local epoch(s), "
		"learning rate %g, seed %" PRIu64 ".\n\n![accuracy and loss](report.svg)\n\n",
		d->a.sites, d->a.patients, d->fed_id, d->a.rounds,
		d->a.strategy ? d->a.strategy : "fedavg", d->a.epochs, d->a.lr, d->a.seed);
	fprintf(f, "## Sites\n\n| site | institution | scanner | patients | train | test | "
		"nodules | noise (HU) | audit chain |\n|---|---|---|---|---|---|---|---|---|\n");
	for (unsigned int i = 0; i < d->a.sites; i++) {
		const struct demo_site_state *s = &d->site[i];

		fprintf(f, "| %s | %s | %s %s | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64
			" | %g | %s |\n", s->name, s->profile.institution, s->profile.manufacturer,
			s->profile.model_name, s->stats.patients, s->stats.train, s->stats.test,
			s->stats.nodules, s->profile.noise_hu, o->verified[i] ? "intact" : "**BROKEN**");
	}
	fprintf(f, "\n## Result\n\nTest accuracy (held-out patients):\n\n| model | pooled |");
	for (unsigned int i = 0; i < d->a.sites; i++)
		fprintf(f, " %s |", d->site[i].name);
	fprintf(f, "\n|---|---|");
	for (unsigned int i = 0; i < d->a.sites; i++)
		fprintf(f, "---|");
	fprintf(f, "\n| federated (final global model) | %.3f |", o->fed_test.accuracy);
	for (unsigned int i = 0; i < d->a.sites; i++)
		fprintf(f, " %.3f |", o->fed_site[i].accuracy);
	fprintf(f, "\n| centralised (pooled data, %u epochs) | %.3f |", d->a.rounds * d->a.epochs,
		o->central_test.accuracy);
	for (unsigned int i = 0; i < d->a.sites; i++)
		fprintf(f, " %.3f |", o->central_site[i].accuracy);
	fprintf(f, "\n\nFederated minus centralised: %+.1f points.  No image left its site: "
		"only sealed model parameters went through `%s`.\n\n## Rounds\n\n| round |",
		100.0 * (o->fed_test.accuracy - o->central_test.accuracy), store_rel(d));
	for (unsigned int i = 0; i < d->a.sites; i++)
		fprintf(f, " %s accuracy | %s loss |", d->site[i].name, d->site[i].name);
	fprintf(f, "\n|---|");
	for (unsigned int i = 0; i < d->a.sites; i++)
		fprintf(f, "---|---|");
	fprintf(f, "\n");
	for (size_t k = 0; k < json_array_size(results); k++) {
		json_t *r = json_array_get(results, k);

		fprintf(f, "| %zu |", k + 1);
		for (unsigned int i = 0; i < d->a.sites; i++)
			fprintf(f, " %.3f | %.3f |", site_metric(r, d->site[i].name, "eval", "accuracy"),
				site_metric(r, d->site[i].name, "train", "loss"));
		fprintf(f, "\n");
	}
	fprintf(f, "\nAccuracy: of the round's global model on the site's test patients, before "
		"training; loss: the site's training loss in the round.\n\n## Where things are\n\n"
		"- `%s`: the federation store (sealed envelopes only)%s\n"
		"- `coordinator/state/`: the coordinator's checkpoint and round results\n"
		"- `site-*/registry/`: each site's registry (de-identified images, labels, "
		"cohorts, audit log: `fednode registry DIR audit`)\n"
		"- `final-model.safetensors`, `central-model.safetensors`\n"
		"- `logs/`: the output of each process\n", store_rel(d),
		d->a.https ? "; `https/`: nginx's configuration, logs and the test CA" : "");
	fclose(f);
	json_decref(results);
	return CLI_OK;
}

/* nginx on 127.0.0.1 with a certificate per node; the store URL points there. */
static int start_https(struct demo *d)
{
	const char *nodes[MAX_DEMO_SITES + 1] = { "coordinator" };
	char dir[PATH_SIZE];

	for (unsigned int i = 0; i < d->a.sites; i++)
		nodes[i + 1] = d->site[i].name;
	snprintf(dir, sizeof(dir), "%s/https", d->out);
	if (strlen(dir) >= sizeof(d->https.dir))
		return fail("--out: the path is too long for --https");
	if (realpath(d->out, dir) == NULL || strlen(dir) + 7 >= sizeof(d->https.dir))
		return fail("cannot resolve the output folder");
	strcat(dir, "/https");
	if (demo_https_start(&d->https, dir, nodes, d->a.sites + 1) != 0)
		return CLI_FAILED;
	snprintf(d->store_url, sizeof(d->store_url), "%s", d->https.url);
	snprintf(d->store_dir, sizeof(d->store_dir), "%s/www/store", dir);
	printf("Store: nginx on %s (TLS 1.3, a client certificate per node)\n", d->store_url);
	return CLI_OK;
}

int cmd_demo(int argc, char **argv)
{
	struct demo d;
	struct outcome o;
	unsigned int intact = 0;
	int rc;

	memset(&d, 0, sizeof(d));
	memset(&o, 0, sizeof(o));
	if ((rc = parse_args(&d.a, argc, argv)) != CLI_OK)
		return rc;
	d.fed_id = "demo-lung-nodules";
	d.t0 = now_s();
	if ((rc = layout(&d)) != CLI_OK)
		return rc;
	printf("fednode demo: %u hospitals, %u patients each, %u rounds -> %s\n", d.a.sites,
		d.a.patients, d.a.rounds, d.out);
	printf("Importing synthetic studies through de-identification:\n");
	for (unsigned int i = 0; i < d.a.sites; i++)
		if ((rc = populate(&d, &d.site[i])) != CLI_OK)
			return rc;
	if (d.a.https && (rc = start_https(&d)) != CLI_OK)
		return rc;
	printf("Keys, trust and the federation:\n");
	if ((rc = keys(&d)) != CLI_OK || (rc = federation(&d)) != CLI_OK) {
		demo_https_stop(&d.https);
		return rc;
	}
	printf("Training: 1 coordinator and %u site processes over %s\n", d.a.sites,
		d.store_url);
	fflush(stdout);
	if ((rc = start(&d)) != CLI_OK) {
		stop_all(&d);
		wait_all(&d);
		demo_https_stop(&d.https);
		return rc;
	}
	rc = wait_all(&d);
	demo_https_stop(&d.https);
	if (rc != CLI_OK || (rc = evaluate(&d, &o)) != CLI_OK ||
			(rc = report(&d, &o)) != CLI_OK)
		return rc;
	for (unsigned int i = 0; i < d.a.sites; i++)
		intact += o.verified[i] ? 1u : 0u;
	printf("Result on the held-out patients of all sites:\n"
		"  federated   %.3f\n  centralised %.3f (same model on the pooled data, %.2f s)\n"
		"  difference  %+.1f points\n", o.fed_test.accuracy, o.central_test.accuracy,
		o.central_seconds, 100.0 * (o.fed_test.accuracy - o.central_test.accuracy));
	printf("Audit chains intact: %u of %u registries\n", intact, d.a.sites);
	printf("Done in %.1f s.  Outputs in %s/: report.md, report.svg, "
		"final-model.safetensors, %s, site-*/registry/, logs/\n", now_s() - d.t0, d.out,
		store_rel(&d));
	return intact == d.a.sites ? CLI_OK : CLI_FAILED;
}
