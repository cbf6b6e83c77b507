/*
 * demo-measure [--sites S] [--patients N] [--epochs E] [--rounds R]
 *              [--local-epochs L] [--lr LR] [--mu MU] [--seed SEED] [--keep]
 *
 * How hard is the demo's task?  Fills S synthetic sites of N patients in
 * temporary registries, then trains and reports test accuracy for:
 * the centralised baseline (all training data pooled, E epochs), each
 * site alone (E epochs, tested on every site), and federated averaging
 * (R rounds of L local epochs, the averaging done here by hand), with
 * the time each step took.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fednode/fednode.h>

#include "demo.h"

#define MAX_SITES 16

struct opts {
	unsigned int sites, patients, epochs, rounds, local_epochs;
	double lr, mu;
	uint64_t seed;
	int keep;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int die(const char *what, int rc)
{
	fprintf(stderr, "demo-measure: %s: %s (%d)\n", what, demo_error_message(), rc);
	return 1;
}

static int parse(struct opts *o, int argc, char **argv)
{
	int i;

	o->sites = 3;
	o->patients = 150;
	o->epochs = 25;
	o->rounds = 25;
	o->local_epochs = 1;
	o->lr = 0;
	o->mu = 0;
	o->seed = 42;
	o->keep = 0;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--keep")) {
			o->keep = 1;
			continue;
		}
		if (!v)
			return -1;
		i++;
		if (!strcmp(a, "--sites"))
			o->sites = (unsigned)atoi(v);
		else if (!strcmp(a, "--patients"))
			o->patients = (unsigned)atoi(v);
		else if (!strcmp(a, "--epochs"))
			o->epochs = (unsigned)atoi(v);
		else if (!strcmp(a, "--rounds"))
			o->rounds = (unsigned)atoi(v);
		else if (!strcmp(a, "--local-epochs"))
			o->local_epochs = (unsigned)atoi(v);
		else if (!strcmp(a, "--lr"))
			o->lr = atof(v);
		else if (!strcmp(a, "--mu"))
			o->mu = atof(v);
		else if (!strcmp(a, "--seed"))
			o->seed = strtoull(v, NULL, 10);
		else
			return -1;
	}
	return o->sites >= 1 && o->sites <= MAX_SITES && o->patients >= 2 ? 0 : -1;
}

/* The tensors of @p m as one float vector (weight then bias). */
static void flat(float *out, const fdn_model *m)
{
	size_t i, at = 0;

	for (i = 0; i < fdn_model_tensor_count(m); i++) {
		fdn_tensor_info ti = FDN_TENSOR_INFO_INIT;

		fdn_model_tensor(&ti, m, i);
		memcpy(out + at, ti.data, ti.nbytes);
		at += ti.nbytes / sizeof(float);
	}
}

static int unflat(fdn_model **out, const float *v, const fdn_model *like)
{
	size_t i, at = 0;
	int rc;

	if ((rc = fdn_model_new(out)) != 0)
		return rc;
	for (i = 0; i < fdn_model_tensor_count(like) && rc == 0; i++) {
		fdn_tensor_info ti = FDN_TENSOR_INFO_INIT;

		fdn_model_tensor(&ti, like, i);
		rc = fdn_model_add_tensor(*out, ti.name, ti.dtype, ti.ndim, ti.shape, v + at,
			ti.nbytes);
		at += ti.nbytes / sizeof(float);
	}
	return rc;
}

static void print_metrics(const char *what, const demo_metrics *m)
{
	printf("  %-34s n=%4" PRIu64 "  acc %.3f  loss %.3f  sens %.3f  spec %.3f\n", what,
		m->n, m->accuracy, m->loss, m->sensitivity, m->specificity);
}

static fdn_train_config config(const struct opts *o, unsigned epochs, uint64_t round,
	unsigned site)
{
	fdn_train_config c;

	memset(&c, 0, sizeof(c));
	c.version = FDN_TRAIN_CONFIG_VERSION;
	c.federation = "measure";
	c.round = round;
	c.local_epochs = epochs;
	c.learning_rate = o->lr;
	c.proximal_mu = o->mu;
	c.seed = o->seed * 1000003u + round * 101u + site;
	return c;
}

static int per_site(const struct opts *o, demo_trainer *t, fdn_registry **regs)
{
	unsigned s, u;
	int rc;

	printf("Each site alone (%u epochs), test accuracy on each site's test split:\n",
		o->epochs);
	for (s = 0; s < o->sites; s++) {
		fdn_train_config c = config(o, o->epochs, 1, s);
		fdn_model *init = NULL, *m = NULL;
		demo_metrics tr, te;
		double t0 = now(), other = 0;
		uint64_t other_n = 0;

		if ((rc = demo_model_init(&init, o->seed)) != 0 ||
				(rc = demo_train(&m, &tr, t, init, &regs[s], 1, DEMO_COHORT_TRAIN, &c)) != 0)
			return die("local training", rc);
		printf("  site %u (train acc %.3f, %.2f s):", s, tr.accuracy, now() - t0);
		for (u = 0; u < o->sites; u++) {
			if ((rc = demo_evaluate(&te, t, m, &regs[u], 1, DEMO_COHORT_TEST)) != 0)
				return die("evaluation", rc);
			printf("  site%u %.3f", u, te.accuracy);
			if (u != s) {
				other += te.accuracy * (double)te.n;
				other_n += te.n;
			}
		}
		if (other_n)
			printf("  | others %.3f", other / (double)other_n);
		if ((rc = demo_evaluate(&te, t, m, regs, o->sites, DEMO_COHORT_TEST)) != 0)
			return die("evaluation", rc);
		printf("  | pooled %.3f\n", te.accuracy);
		fdn_model_free(m);
		fdn_model_free(init);
	}
	return 0;
}

static int fedavg(const struct opts *o, demo_trainer *t, fdn_registry **regs)
{
	enum { P = DEMO_CLASSES * DEMO_FEATURES + DEMO_CLASSES };
	fdn_model *global = NULL;
	double t0 = now();
	unsigned r, s;
	int rc;

	printf("Federated averaging (%u rounds x %u local epochs, mu %g):\n", o->rounds,
		o->local_epochs, o->mu);
	if ((rc = demo_model_init(&global, o->seed)) != 0)
		return die("init", rc);
	for (r = 1; r <= o->rounds; r++) {
		double acc[P] = { 0 }, total = 0;
		float v[P];
		fdn_model *next = NULL;
		demo_metrics te;
		size_t i;

		for (s = 0; s < o->sites; s++) {
			fdn_train_config c = config(o, o->local_epochs, r, s);
			demo_metrics tr;
			fdn_model *m = NULL;

			if ((rc = demo_train(&m, &tr, t, global, &regs[s], 1, DEMO_COHORT_TRAIN,
					&c)) != 0)
				return die("local round", rc);
			flat(v, m);
			for (i = 0; i < P; i++)
				acc[i] += (double)tr.n * v[i];
			total += (double)tr.n;
			fdn_model_free(m);
		}
		for (i = 0; i < P; i++)
			v[i] = (float)(acc[i] / total);
		if ((rc = unflat(&next, v, global)) != 0)
			return die("average", rc);
		fdn_model_free(global);
		global = next;
		if (r % 5 == 0 || r == o->rounds) {
			if ((rc = demo_evaluate(&te, t, global, regs, o->sites, DEMO_COHORT_TEST)) != 0)
				return die("evaluation", rc);
			printf("  round %3u  pooled test acc %.3f  loss %.3f  (%.2f s so far)\n", r,
				te.accuracy, te.loss, now() - t0);
		}
	}
	for (s = 0; s < o->sites; s++) {
		demo_metrics te;
		char what[48];

		if ((rc = demo_evaluate(&te, t, global, &regs[s], 1, DEMO_COHORT_TEST)) != 0)
			return die("evaluation", rc);
		snprintf(what, sizeof(what), "federated on site %u test", s);
		print_metrics(what, &te);
	}
	fdn_model_free(global);
	return 0;
}

static int run(const struct opts *o, char dirs[][64])
{
	fdn_registry *regs[MAX_SITES] = { NULL };
	unsigned char key[FDN_DEID_KEY_BYTES];
	demo_trainer *t = NULL;
	demo_metrics tr, te;
	fdn_model *central = NULL;
	double t0;
	unsigned s;
	int rc;

	/* A fixed, public key: this is synthetic data. */
	memset(key, 0x5a, sizeof(key));
	for (s = 0; s < o->sites; s++) {
		demo_site site;
		demo_populate_stats st;

		demo_site_profile(&site, s);
		if ((rc = demo_site_populate(&st, dirs[s], key, &site, o->patients, 0.3, o->seed,
				NULL, NULL, NULL)) != 0)
			return die("populate", rc);
		printf("site %u %-36s %" PRIu64 " patients (%" PRIu64 " train, %" PRIu64
			" test, %" PRIu64 " nodules) in %.2f s\n", s, site.institution, st.patients,
			st.train, st.test, st.nodules, st.seconds);
	}
	for (s = 0; s < o->sites; s++) {
		fdn_registry_options ro = FDN_REGISTRY_OPTIONS_INIT;

		if ((rc = fdn_registry_open(&regs[s], dirs[s], &ro)) != 0) {
			fprintf(stderr, "open: %s\n", fdn_error_last()->message);
			return 1;
		}
	}
	if ((rc = demo_trainer_new(&t)) != 0)
		return die("trainer", rc);

	t0 = now();
	if ((rc = demo_train_central(&central, &tr, &te, t, regs, o->sites, o->epochs, o->lr,
			o->seed)) != 0)
		return die("central", rc);
	printf("Centralised (%u epochs, %.2f s including %" PRIu64 " file reads):\n",
		o->epochs, now() - t0, demo_trainer_files_read(t));
	print_metrics("train (pooled)", &tr);
	print_metrics("test (pooled)", &te);
	for (s = 0; s < o->sites; s++) {
		char what[48];

		if ((rc = demo_evaluate(&te, t, central, &regs[s], 1, DEMO_COHORT_TEST)) != 0)
			return die("evaluation", rc);
		snprintf(what, sizeof(what), "test site %u", s);
		print_metrics(what, &te);
	}
	fdn_model_free(central);

	t0 = now();
	if ((rc = per_site(o, t, regs)) != 0)
		return rc;
	printf("  (%.2f s)\n", now() - t0);
	if ((rc = fedavg(o, t, regs)) != 0)
		return rc;
	demo_trainer_free(t);
	for (s = 0; s < o->sites; s++)
		fdn_registry_free(regs[s]);
	return 0;
}

static int unlink_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int rmtree(const char *dir)
{
	return nftw(dir, unlink_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
	char dirs[MAX_SITES][64];
	struct opts o;
	unsigned s;
	int rc;

	if (parse(&o, argc, argv) != 0) {
		fprintf(stderr, "usage: demo-measure [--sites S] [--patients N] [--epochs E] "
			"[--rounds R] [--local-epochs L] [--lr LR] [--mu MU] [--seed SEED] [--keep]\n");
		return 2;
	}
	if (FDN_INIT() != 0) {
		fprintf(stderr, "demo-measure: %s\n", fdn_error_last()->message);
		return 1;
	}
	for (s = 0; s < o.sites; s++) {
		snprintf(dirs[s], sizeof(dirs[s]), "/tmp/fdn-demo-site%u-XXXXXX", s);
		if (!mkdtemp(dirs[s])) {
			perror("mkdtemp");
			return 1;
		}
	}
	rc = run(&o, dirs);
	for (s = 0; s < o.sites; s++) {
		if (o.keep)
			printf("kept %s\n", dirs[s]);
		else
			rmtree(dirs[s]);
	}
	fdn_shutdown();
	return rc;
}
