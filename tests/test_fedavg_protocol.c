/*
 * The federation protocol end to end, in one process over the directory
 * transport: manifest and approval, rounds, a site that drops out and
 * rejoins, a coordinator restarted mid-round, late and malicious
 * updates.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "fednode/fednode.h"
#include "testutil.h"

#define N_PARAMS 6
#define MAX_SITES 3

/* The test trainer: adds bias × round to every weight and reports a
 * fixed number of examples. */
typedef struct toy_trainer {
	float bias;
	uint64_t examples;
	int calls;
	bool poison;      /* fail with a reason */
} toy_trainer;

static int toy_train(void *payload, const fdn_model *global, fdn_registry *reg,
	const char *cohort, const fdn_train_config *cfg, fdn_model **out,
	uint64_t *n_examples, fdn_buf *metrics)
{
	toy_trainer *t = payload;
	fdn_tensor_info g = FDN_TENSOR_INFO_INIT;
	float w[N_PARAMS];
	uint64_t shape[1] = { N_PARAMS };
	char text[64];
	int rc;

	(void)reg;
	(void)cohort;
	t->calls++;
	if (t->poison) /* a trainer that fails and says why */
		return fdn_buf_set(metrics, "no GPU left", 11) ? FDN_ERROR : FDN_EUSER;
	if ((rc = fdn_model_tensor(&g, global, 0)) < 0)
		return rc;
	memcpy(w, g.data, sizeof(w));
	for (int i = 0; i < N_PARAMS; i++)
		w[i] += t->bias * (float)cfg->round;
	if ((rc = fdn_model_new(out)) < 0 ||
			(rc = fdn_model_add_tensor(*out, "w", FDN_DTYPE_F32, 1, shape, w, sizeof(w))) < 0)
		return rc;
	*n_examples = t->examples;
	snprintf(text, sizeof(text), "{\"loss\": %g}", 1.0 / (double)cfg->round);
	return fdn_buf_set(metrics, text, strlen(text));
}

static const fdn_trainer toy = { FDN_TRAINER_VERSION, toy_train, NULL };

typedef struct world {
	char dir[64], store[128], state[128];
	fdn_transport *t;
	fdn_identity *coord, *site[MAX_SITES];
	fdn_trust *coord_trust, *site_trust[MAX_SITES];
	fdn_registry *reg[MAX_SITES];
	toy_trainer trainer[MAX_SITES];
	fdn_federation *fed;
	fdn_model *initial;
	size_t n_sites;
} world;

static void trust_peer(fdn_trust *trust, const fdn_identity *id, int role)
{
	fdn_buf pub = FDN_BUF_INIT;

	OK(fdn_identity_public(&pub, id, NULL));
	OK(fdn_trust_add(trust, pub.ptr, role, NULL));
	fdn_buf_dispose(&pub);
}

static void world_init(world *w, size_t n_sites, unsigned int rounds, unsigned int quorum,
	unsigned int timeout_s, int strategy)
{
	static const char *const names[MAX_SITES] = { "site-a", "site-b", "site-c" };
	fdn_federation_options fo = FDN_FEDERATION_OPTIONS_INIT;
	fdn_strategy_options so = FDN_STRATEGY_OPTIONS_INIT;
	fdn_registry_options ro = FDN_REGISTRY_OPTIONS_INIT;
	char path[256];
	float zeros[N_PARAMS] = { 0 };
	uint64_t shape[1] = { N_PARAMS };

	memset(w, 0, sizeof(*w));
	w->n_sites = n_sites;
	assert_int_equal(fdn_test_mkdtemp(w->dir, sizeof(w->dir), "proto"), 0);
	snprintf(w->store, sizeof(w->store), "%s/store", w->dir);
	snprintf(w->state, sizeof(w->state), "%s/state", w->dir);
	assert_int_equal(mkdir(w->store, 0700), 0);
	assert_int_equal(mkdir(w->state, 0700), 0);
	OK(fdn_transport_dir_new(&w->t, w->store));
	OK(fdn_identity_generate(&w->coord, "coord"));
	snprintf(path, sizeof(path), "%s/coord-trust.json", w->dir);
	OK(fdn_trust_open(&w->coord_trust, path));
	ro.create = 1;
	for (size_t i = 0; i < n_sites; i++) {
		OK(fdn_identity_generate(&w->site[i], names[i]));
		trust_peer(w->coord_trust, w->site[i], FDN_TRUST_ROLE_SITE);
		snprintf(path, sizeof(path), "%s/trust-%zu.json", w->dir, i);
		OK(fdn_trust_open(&w->site_trust[i], path));
		trust_peer(w->site_trust[i], w->coord, FDN_TRUST_ROLE_COORDINATOR);
		snprintf(path, sizeof(path), "%s/registry-%zu", w->dir, i);
		OK(fdn_registry_open(&w->reg[i], path, &ro));
		w->trainer[i].bias = (float)(i + 1);
		w->trainer[i].examples = 10 * (i + 1);
	}
	so.strategy = strategy;
	fo.id = "fed-test";
	fo.rounds = rounds;
	fo.quorum = quorum;
	fo.round_timeout_s = timeout_s;
	fo.strategy = &so;
	fo.seed = 42;
	OK(fdn_federation_create(&w->fed, &fo, w->coord, w->coord_trust, names, n_sites));
	OK(fdn_model_new(&w->initial));
	OK(fdn_model_add_tensor(w->initial, "w", FDN_DTYPE_F32, 1, shape, zeros, sizeof(zeros)));
}

static void world_free(world *w)
{
	for (size_t i = 0; i < w->n_sites; i++) {
		fdn_identity_free(w->site[i]);
		fdn_trust_free(w->site_trust[i]);
		fdn_registry_free(w->reg[i]);
	}
	fdn_identity_free(w->coord);
	fdn_trust_free(w->coord_trust);
	fdn_federation_free(w->fed);
	fdn_model_free(w->initial);
	fdn_transport_free(w->t);
	fdn_test_rmtree(w->dir);
}

static fdn_client *client_for(world *w, size_t i)
{
	fdn_client_options co = FDN_CLIENT_OPTIONS_INIT;
	fdn_client *c;

	co.work_dir = w->dir;
	OK(fdn_client_new(&c, w->t, w->site[i], w->site_trust[i], w->reg[i], "fed-test",
		"all", &toy, &w->trainer[i], &co));
	return c;
}

static fdn_coordinator *coordinator_for(world *w)
{
	fdn_coordinator *c;

	OK(fdn_coordinator_new(&c, w->t, w->coord, w->coord_trust, w->fed, w->initial,
		w->state, NULL));
	return c;
}

static void approve_all(world *w)
{
	for (size_t i = 0; i < w->n_sites; i++)
		OK(fdn_federation_approve(w->reg[i], w->fed, "test"));
}

static void model_values(float *out, const fdn_model *m)
{
	fdn_tensor_info t = FDN_TENSOR_INFO_INIT;

	OK(fdn_model_tensor(&t, m, 0));
	assert_int_equal(t.nbytes, N_PARAMS * sizeof(float));
	memcpy(out, t.data, t.nbytes);
}

/* Steps the coordinator and the sites in turn until the coordinator has
 * finished; @p skip: a site that never steps (NULL clients). */
static void drive(fdn_coordinator *coord, fdn_client **clients, size_t n, int max_steps)
{
	int cs = 0, s;

	for (int k = 0; k < max_steps && cs != FDN_COORDINATOR_FINISHED; k++) {
		OK(fdn_coordinator_step(coord, &cs));
		for (size_t i = 0; i < n; i++)
			if (clients[i])
				OK(fdn_client_step(clients[i], &s));
	}
	assert_int_equal(cs, FDN_COORDINATOR_FINISHED);
}

/* FedAvg with weights 10 and 20 and biases 1 and 2: every round adds
 * (10·1 + 20·2)/30 · r = 5/3 r; after 3 rounds 5/3 · 6 = 10. */
static void test_three_rounds(void **state)
{
	world w;
	fdn_coordinator *coord;
	fdn_client *clients[2];
	const fdn_model *m;
	float v[N_PARAMS];
	int s;
	fdn_buf results = FDN_BUF_INIT;

	(void)state;
	world_init(&w, 2, 3, 0, 0, FDN_STRATEGY_FEDAVG);
	approve_all(&w);
	coord = coordinator_for(&w);
	clients[0] = client_for(&w, 0);
	clients[1] = client_for(&w, 1);
	drive(coord, clients, 2, 20);
	OK(fdn_coordinator_model(&m, coord));
	model_values(v, m);
	for (int i = 0; i < N_PARAMS; i++)
		assert_float_equal(v[i], 10.0f, 1e-5);
	/* The sites see the final model too and stop. */
	for (size_t i = 0; i < 2; i++) {
		OK(fdn_client_step(clients[i], &s));
		assert_int_equal(s, FDN_CLIENT_FINISHED);
		OK(fdn_client_model(&m, clients[i]));
		model_values(v, m);
		assert_float_equal(v[0], 10.0f, 1e-5);
		assert_int_equal(fdn_client_round(clients[i]), 3);
		assert_int_equal(w.trainer[i].calls, 3);
	}
	OK(fdn_coordinator_results(&results, coord));
	assert_non_null(strstr(results.ptr, "\"site-b\""));
	assert_non_null(strstr(results.ptr, "\"loss\""));
	fdn_buf_dispose(&results);
	/* Each site's audit log records its three rounds, and still verifies. */
	for (size_t i = 0; i < 2; i++) {
		fdn_buf audit = FDN_BUF_INIT;
		const char *p;
		int rounds = 0;

		OK(fdn_registry_audit_export(&audit, w.reg[i], 0));
		for (p = audit.ptr; (p = strstr(p, "round.participate")) != NULL; p++)
			rounds++;
		assert_int_equal(rounds, 3);
		assert_non_null(strstr(audit.ptr, "federation.approve"));
		fdn_buf_dispose(&audit);
		OK(fdn_registry_verify(NULL, w.reg[i]));
	}
	fdn_client_free(clients[0]);
	fdn_client_free(clients[1]);
	fdn_coordinator_free(coord);
	world_free(&w);
}

static void test_not_approved(void **state)
{
	world w;
	fdn_coordinator *coord;
	fdn_client *c;
	int s;

	(void)state;
	world_init(&w, 1, 1, 0, 0, FDN_STRATEGY_FEDAVG);
	coord = coordinator_for(&w);
	OK(fdn_coordinator_step(coord, &s));
	c = client_for(&w, 0);
	assert_int_equal(fdn_client_step(c, &s), FDN_EAUTH);
	assert_non_null(strstr(fdn_error_last()->message, "not approved"));
	assert_int_equal(w.trainer[0].calls, 0);
	fdn_client_free(c);
	fdn_coordinator_free(coord);
	world_free(&w);
}

/* The same federation run straight through and with the coordinator
 * freed and recreated after every step ends with the same bytes. */
static void test_coordinator_restart(void **state)
{
	float straight[N_PARAMS], restarted[N_PARAMS];
	int strategies[] = { FDN_STRATEGY_FEDADAM, FDN_STRATEGY_FEDAVGM };

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		for (int pass = 0; pass < 2; pass++) {
			world w;
			fdn_coordinator *coord;
			fdn_client *clients[3];
			const fdn_model *m;
			int cs = 0, s;

			world_init(&w, 3, 3, 0, 0, strategies[k]);
			approve_all(&w);
			for (size_t i = 0; i < 3; i++)
				clients[i] = client_for(&w, i);
			coord = coordinator_for(&w);
			for (int step = 0; step < 40 && cs != FDN_COORDINATOR_FINISHED; step++) {
				OK(fdn_coordinator_step(coord, &cs));
				/* Sites report one at a time, so that a restart falls
				 * between two updates of a round. */
				OK(fdn_client_step(clients[step % 3], &s));
				if (pass == 1 && cs != FDN_COORDINATOR_FINISHED) {
					fdn_coordinator_free(coord);
					coord = coordinator_for(&w);
				}
			}
			assert_int_equal(cs, FDN_COORDINATOR_FINISHED);
			OK(fdn_coordinator_model(&m, coord));
			model_values(pass ? restarted : straight, m);
			for (size_t i = 0; i < 3; i++)
				fdn_client_free(clients[i]);
			fdn_coordinator_free(coord);
			world_free(&w);
		}
		assert_memory_equal(straight, restarted, sizeof(straight));
	}
}

/* Puts a raw update envelope for site @p i. */
static void forge(world *w, const fdn_identity *signer, const fdn_trust *trust,
	const char *site, uint64_t round_key, uint64_t round_signed, const float *values,
	size_t n, bool flip)
{
	fdn_seal_options so = FDN_SEAL_OPTIONS_INIT;
	fdn_model *m;
	fdn_buf plain = FDN_BUF_INIT, env = FDN_BUF_INIT;
	uint64_t shape[1] = { n };
	const char *to = "coord";
	char key[256];

	OK(fdn_model_new(&m));
	OK(fdn_model_add_tensor(m, "w", FDN_DTYPE_F32, 1, shape, values, n * sizeof(float)));
	OK(fdn_model_set_metadata(m, "fednode.examples", "5"));
	OK(fdn_model_write_buffer(&plain, m));
	so.kind = FDN_ENVELOPE_UPDATE;
	so.federation = "fed-test";
	so.round = round_signed;
	OK(fdn_envelope_seal_buffer(&env, plain.ptr, plain.size, signer, trust, &to, 1, &so));
	if (flip)
		env.ptr[env.size / 2] ^= 1;
	snprintf(key, sizeof(key), "fed-test/rounds/%u/update-%s.fdne", (unsigned)round_key, site);
	OK(fdn_transport_put_buffer(w->t, key, env.ptr, env.size, NULL));
	fdn_buf_dispose(&plain);
	fdn_buf_dispose(&env);
	fdn_model_free(m);
}

/* Site b goes silent in round 1: with quorum 1 and a 5 s deadline the
 * round closes without it; b comes back in round 2.  Its late round-1
 * update is logged and ignored. */
static void test_dropout_and_late(void **state)
{
	world w;
	fdn_coordinator *coord;
	fdn_client *clients[2];
	fdn_buf results = FDN_BUF_INIT;
	float late_values[N_PARAMS] = { 9, 9, 9, 9, 9, 9 };
	int cs = 0, s;

	(void)state;
	/* 5 s: the first steps must fit in it even under valgrind. */
	world_init(&w, 2, 2, 1, 5, FDN_STRATEGY_FEDAVG);
	approve_all(&w);
	coord = coordinator_for(&w);
	clients[0] = client_for(&w, 0);
	clients[1] = client_for(&w, 1);
	OK(fdn_coordinator_step(coord, &cs));
	OK(fdn_client_step(clients[0], &s));
	assert_int_equal(s, FDN_CLIENT_SENT);
	OK(fdn_coordinator_step(coord, &cs));
	assert_int_equal(cs, FDN_COORDINATOR_WAITING); /* deadline not yet */
	sleep(6);
	OK(fdn_coordinator_step(coord, &cs));
	assert_int_equal(cs, FDN_COORDINATOR_CLOSED);
	assert_int_equal(fdn_coordinator_round(coord), 2);
	/* A round-1 update arriving now is logged as late and ignored. */
	forge(&w, w.site[1], w.site_trust[1], "site-b", 1, 1, late_values, N_PARAMS, false);
	/* b wakes up: it joins round 2 (the open one). */
	OK(fdn_client_step(clients[1], &s));
	assert_int_equal(s, FDN_CLIENT_SENT);
	assert_int_equal(fdn_client_round(clients[1]), 2);
	OK(fdn_client_step(clients[0], &s));
	drive(coord, clients, 2, 10);
	OK(fdn_coordinator_results(&results, coord));
	assert_non_null(strstr(results.ptr, "\"late\":[{\"round\":1,\"site\":\"site-b\"}]"));
	fdn_buf_dispose(&results);
	fdn_client_free(clients[0]);
	fdn_client_free(clients[1]);
	fdn_coordinator_free(coord);
	world_free(&w);
}

static void expect_rejected(world *w, fdn_coordinator *coord, const char *what)
{
	fdn_buf results = FDN_BUF_INIT;
	const fdn_model *m;
	float v[N_PARAMS];
	int cs;

	(void)w;
	OK(fdn_coordinator_step(coord, &cs));
	assert_int_equal(cs, FDN_COORDINATOR_WAITING);
	OK(fdn_coordinator_model(&m, coord));
	model_values(v, m);
	assert_float_equal(v[0], 0.0f, 0); /* nothing folded */
	(void)results;
	(void)what;
}

static void test_malicious_updates(void **state)
{
	float good[N_PARAMS] = { 1, 1, 1, 1, 1, 1 }, nan_v[N_PARAMS] = { 1, 1, NAN, 1, 1, 1 };
	world w;
	fdn_coordinator *coord;
	fdn_identity *mallory;
	fdn_trust *mtrust;
	char path[256];
	fdn_buf results = FDN_BUF_INIT;
	int cs, s;
	fdn_client *c;

	(void)state;
	world_init(&w, 2, 1, 0, 0, FDN_STRATEGY_FEDAVG);
	approve_all(&w);
	coord = coordinator_for(&w);
	OK(fdn_coordinator_step(coord, &cs));
	/* The coordinator's key, as a site knows it, for sealing forgeries. */
	/* NaN, wrong shape, replay from another round, altered bytes. */
	forge(&w, w.site[0], w.site_trust[0], "site-a", 1, 1, nan_v, N_PARAMS, false);
	expect_rejected(&w, coord, "NaN");
	forge(&w, w.site[0], w.site_trust[0], "site-a", 1, 1, good, N_PARAMS - 1, false);
	expect_rejected(&w, coord, "shape");
	forge(&w, w.site[0], w.site_trust[0], "site-a", 1, 7, good, N_PARAMS, false);
	expect_rejected(&w, coord, "round");
	forge(&w, w.site[0], w.site_trust[0], "site-a", 1, 1, good, N_PARAMS, true);
	expect_rejected(&w, coord, "flip");
	/* Site a's update key written by site b: the sender does not match. */
	forge(&w, w.site[1], w.site_trust[1], "site-a", 1, 1, good, N_PARAMS, false);
	expect_rejected(&w, coord, "impersonation");
	/* A stranger with a key nobody trusts, calling itself site-a. */
	OK(fdn_identity_generate(&mallory, "site-a"));
	snprintf(path, sizeof(path), "%s/mallory-trust.json", w.dir);
	OK(fdn_trust_open(&mtrust, path));
	trust_peer(mtrust, w.coord, FDN_TRUST_ROLE_COORDINATOR);
	forge(&w, mallory, mtrust, "site-a", 1, 1, good, N_PARAMS, false);
	expect_rejected(&w, coord, "unknown");
	/* The honest sites finish the round; the rejections are on record. */
	for (size_t i = 0; i < 2; i++) {
		c = client_for(&w, i);
		OK(fdn_client_step(c, &s));
		fdn_client_free(c);
	}
	OK(fdn_coordinator_step(coord, &cs));
	assert_int_equal(cs, FDN_COORDINATOR_FINISHED);
	OK(fdn_coordinator_results(&results, coord));
	{
		const char *p = results.ptr;
		int n = 0;

		while ((p = strstr(p, "\"reason\"")) != NULL) {
			n++;
			p++;
		}
		assert_int_equal(n, 6);
	}
	fdn_buf_dispose(&results);
	fdn_identity_free(mallory);
	fdn_trust_free(mtrust);
	fdn_coordinator_free(coord);
	world_free(&w);
}

/* A client restarted after sending does not train that round again. */
static void test_client_resume(void **state)
{
	world w;
	fdn_coordinator *coord;
	fdn_client *c;
	int cs, s;

	(void)state;
	world_init(&w, 2, 2, 0, 0, FDN_STRATEGY_FEDAVG);
	approve_all(&w);
	coord = coordinator_for(&w);
	OK(fdn_coordinator_step(coord, &cs));
	c = client_for(&w, 0);
	OK(fdn_client_step(c, &s));
	assert_int_equal(s, FDN_CLIENT_SENT);
	fdn_client_free(c);
	c = client_for(&w, 0);
	OK(fdn_client_step(c, &s));
	assert_int_equal(s, FDN_CLIENT_WAITING);
	assert_int_equal(fdn_client_round(c), 1);
	assert_int_equal(w.trainer[0].calls, 1);
	fdn_client_free(c);
	fdn_coordinator_free(coord);
	world_free(&w);
}

static void test_trainer_failure(void **state)
{
	world w;
	fdn_coordinator *coord;
	fdn_client *c;
	int s;

	(void)state;
	world_init(&w, 1, 1, 0, 0, FDN_STRATEGY_FEDAVG);
	approve_all(&w);
	coord = coordinator_for(&w);
	OK(fdn_coordinator_step(coord, &s));
	w.trainer[0].poison = true;
	c = client_for(&w, 0);
	assert_int_equal(fdn_client_step(c, &s), FDN_EUSER);
	assert_non_null(strstr(fdn_error_last()->message, "no GPU left"));
	assert_int_equal(fdn_client_round(c), 0);
	/* Nothing was sent, nothing recorded: fixed, the site does the round. */
	w.trainer[0].poison = false;
	OK(fdn_client_step(c, &s));
	assert_int_equal(s, FDN_CLIENT_SENT);
	fdn_client_free(c);
	fdn_coordinator_free(coord);
	world_free(&w);
}

static void test_manifest(void **state)
{
	world w;
	fdn_federation *copy;
	fdn_buf json = FDN_BUF_INIT;

	(void)state;
	world_init(&w, 2, 5, 1, 30, FDN_STRATEGY_FEDYOGI);
	OK(fdn_federation_json(&json, w.fed));
	OK(fdn_federation_parse(&copy, json.ptr));
	assert_string_equal(fdn_federation_digest(copy), fdn_federation_digest(w.fed));
	assert_int_equal(fdn_federation_rounds(copy), 5);
	assert_string_equal(fdn_federation_id(copy), "fed-test");
	assert_non_null(strstr(json.ptr, "\"fedyogi\""));
	fdn_federation_free(copy);
	assert_int_equal(fdn_federation_parse(&copy, "{\"format\": \"x\"}"), FDN_EFORMAT);
	assert_int_equal(fdn_federation_parse(&copy, "not json"), FDN_EFORMAT);
	/* Approval is for this exact manifest. */
	assert_int_equal(fdn_federation_approved(w.reg[0], w.fed), FDN_ENOTFOUND);
	OK(fdn_federation_approve(w.reg[0], w.fed, "ethics vote 2026-17"));
	OK(fdn_federation_approved(w.reg[0], w.fed));
	fdn_buf_dispose(&json);
	world_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest),
		cmocka_unit_test(test_three_rounds),
		cmocka_unit_test(test_not_approved),
		cmocka_unit_test(test_trainer_failure),
		cmocka_unit_test(test_client_resume),
		cmocka_unit_test(test_dropout_and_late),
		cmocka_unit_test(test_malicious_updates),
		cmocka_unit_test(test_coordinator_restart),
	};
	int rc;

	if (fdn_init() < 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	fdn_shutdown();
	return rc;
}
