/*
 * Aggregation strategies through the public API: names and options,
 * each strategy on inputs small enough to check by hand, state carried
 * over rounds (through a file too), F16/BF16/F64 outputs and their
 * rounding, every kind of rejected update (and that a rejection leaves
 * the sums untouched), and add_file/finish_file against add/finish.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "fednode/fednode.h"
#include "fednode/fedavg.h"
#include "testutil.h"

static char tmpdir[256];

static int setup(void **state)
{
	(void)state;
	if (fdn_init() != 0)
		return -1;
	return fdn_test_mkdtemp(tmpdir, sizeof(tmpdir), "fedavg");
}

static int teardown(void **state)
{
	(void)state;
	fdn_test_rmtree(tmpdir);
	return fdn_shutdown() < 0;
}

/* --- helpers ------------------------------------------------------------------ */

/* Adds tensor @p name of @p n values (1-D) in @p dtype (F32 or F64). */
static void add_values(fdn_model *m, const char *name, int dtype, const double *v,
	size_t n)
{
	uint64_t shape[1] = { n };
	unsigned char *buf = malloc(n * 8 + 1);

	assert_non_null(buf);
	for (size_t i = 0; i < n; i++) {
		if (dtype == FDN_DTYPE_F32) {
			float f = (float)v[i];

			memcpy(buf + 4 * i, &f, 4);
		} else {
			memcpy(buf + 8 * i, &v[i], 8);
		}
	}
	OK(fdn_model_add_tensor(m, name, dtype, 1, shape, buf,
		n * fdn_dtype_size(dtype)));
	free(buf);
}

/* A model "a" (@p na values), "b" (@p nb values), both in @p dtype. */
static fdn_model *model2(int dtype, const double *a, size_t na, const double *b,
	size_t nb)
{
	fdn_model *m;

	OK(fdn_model_new(&m));
	add_values(m, "a", dtype, a, na);
	add_values(m, "b", dtype, b, nb);
	return m;
}

/* A one-tensor model "w" of F64 values. */
static fdn_model *model1(const double *w, size_t n)
{
	fdn_model *m;

	OK(fdn_model_new(&m));
	add_values(m, "w", FDN_DTYPE_F64, w, n);
	return m;
}

/* Element @p i of tensor @p t (F32 or F64) as a double. */
static double val(const fdn_model *m, size_t t, size_t i)
{
	fdn_tensor_info info = FDN_TENSOR_INFO_INIT;

	OK(fdn_model_tensor(&info, m, t));
	if (info.dtype == FDN_DTYPE_F32) {
		float f;

		memcpy(&f, (const unsigned char *)info.data + 4 * i, 4);
		return f;
	}
	assert_int_equal(info.dtype, FDN_DTYPE_F64);
	{
		double d;

		memcpy(&d, (const unsigned char *)info.data + 8 * i, 8);
		return d;
	}
}

static uint16_t half_bits(const fdn_model *m, size_t t, size_t i)
{
	fdn_tensor_info info = FDN_TENSOR_INFO_INIT;
	uint16_t h;

	OK(fdn_model_tensor(&info, m, t));
	memcpy(&h, (const unsigned char *)info.data + 2 * i, 2);
	return h;
}

static fdn_strategy_options opts_for(int strategy)
{
	fdn_strategy_options o = FDN_STRATEGY_OPTIONS_INIT;

	o.strategy = strategy;
	return o;
}

/* The call fails with @p code and a message holding every fragment. */
static void expect_fail(int rc, int code, ...)
{
	const char *msg = fdn_error_last()->message, *frag;
	va_list ap;

	if (rc != code)
		fail_msg("rc %d, expected %d (%s)", rc, code, msg);
	va_start(ap, code);
	while ((frag = va_arg(ap, const char *)) != NULL)
		if (!strstr(msg, frag))
			fail_msg("message '%s' lacks '%s'", msg, frag);
	va_end(ap);
}

static void path_in(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", tmpdir, name);
}

/* --- names and options --------------------------------------------------------- */

static void test_names(void **state)
{
	int s;

	(void)state;
	for (int i = FDN_STRATEGY_FEDAVG; i <= FDN_STRATEGY_TRIMMED_MEAN; i++) {
		assert_non_null(fdn_strategy_name(i));
		OK(fdn_strategy_from_name(&s, fdn_strategy_name(i)));
		assert_int_equal(s, i);
	}
	assert_string_equal(fdn_strategy_name(FDN_STRATEGY_TRIMMED_MEAN), "trimmed-mean");
	assert_string_equal(fdn_strategy_name(FDN_STRATEGY_FEDYOGI), "fedyogi");
	assert_null(fdn_strategy_name(0));
	assert_null(fdn_strategy_name(9));
	assert_null(fdn_strategy_name(-1));
	expect_fail(fdn_strategy_from_name(&s, "FedAvg"), FDN_EINVALID, "FedAvg", NULL);
	expect_fail(fdn_strategy_from_name(NULL, "fedavg"), FDN_EINVALID, NULL);
	expect_fail(fdn_strategy_from_name(&s, NULL), FDN_EINVALID, NULL);
}

static void test_options(void **state)
{
	static const double one[1] = { 1 };
	fdn_strategy_options o;
	fdn_model *g = model1(one, 1);
	fdn_aggregator *agg;

	(void)state;
	memset(&o, 0xff, sizeof(o));
	OK(fdn_strategy_options_init(&o, FDN_STRATEGY_OPTIONS_VERSION));
	assert_int_equal(o.version, FDN_STRATEGY_OPTIONS_VERSION);
	assert_int_equal(o.strategy, 0);
	assert_true(o.server_lr == 0 && o.trim == 0 && o.proximal_mu == 0);
	expect_fail(fdn_strategy_options_init(&o, 0), FDN_EINVALID, "version", NULL);
	expect_fail(fdn_strategy_options_init(&o, 2), FDN_EINVALID, "version", NULL);
	expect_fail(fdn_strategy_options_init(NULL, 1), FDN_EINVALID, NULL);

	/* NULL options and zeroed options are FedAvg with the defaults. */
	OK(fdn_aggregator_new(&agg, g, NULL, NULL));
	fdn_aggregator_free(agg);
	o = opts_for(0);
	OK(fdn_aggregator_new(&agg, g, NULL, &o));
	fdn_aggregator_free(agg);

#define BAD_OPT(field, value, frag)                                          \
	do {                                                                  \
		o = opts_for(FDN_STRATEGY_FEDADAM);                           \
		o.field = (value);                                            \
		agg = (fdn_aggregator *)1;                                    \
		expect_fail(fdn_aggregator_new(&agg, g, NULL, &o), FDN_EINVALID, frag, NULL); \
		assert_null(agg);                                             \
	} while (0)
	BAD_OPT(strategy, 9, "unknown strategy");
	BAD_OPT(strategy, -2, "unknown strategy");
	BAD_OPT(server_lr, -0.1, "server_lr");
	BAD_OPT(server_lr, NAN, "server_lr");
	BAD_OPT(server_lr, INFINITY, "server_lr");
	BAD_OPT(momentum, 1.0, "momentum");
	BAD_OPT(beta1, -0.5, "beta1");
	BAD_OPT(beta2, 1.5, "beta2");
	BAD_OPT(tau, -1e-3, "tau");
	BAD_OPT(trim, 0.5, "trim");
	BAD_OPT(proximal_mu, -1, "proximal_mu");
	BAD_OPT(version, 2, "version");
	BAD_OPT(version, 0, "version");
#undef BAD_OPT
	expect_fail(fdn_aggregator_new(&agg, NULL, NULL, NULL), FDN_EINVALID, NULL);
	expect_fail(fdn_aggregator_new(NULL, g, NULL, NULL), FDN_EINVALID, NULL);
	assert_int_equal(fdn_aggregator_count(NULL), 0);
	fdn_aggregator_free(NULL);
	fdn_model_free(g);
}

/* --- the streaming strategies ----------------------------------------------------- */

static void test_fedavg(void **state)
{
	static const double ga[4] = { 1, 2, 3, 4 }, gb[2] = { 0, 0 };
	static const double u1a[4] = { 2, 2, 2, 2 }, u1b[2] = { 1, -1 };
	static const double u2a[4] = { 6, 2, -2, 0 }, u2b[2] = { 5, 3 };
	fdn_model *g = model2(FDN_DTYPE_F32, ga, 4, gb, 2);
	fdn_model *u1 = model2(FDN_DTYPE_F32, u1a, 4, u1b, 2);
	fdn_model *u2 = model2(FDN_DTYPE_F32, u2a, 4, u2b, 2);
	fdn_model *out, *st = (fdn_model *)1;
	fdn_aggregator *agg;
	const char *v;

	(void)state;
	OK(fdn_model_set_metadata(g, "round", "7"));
	OK(fdn_aggregator_new(&agg, g, NULL, NULL));
	OK(fdn_aggregator_add(agg, u1, 1, FDN_UPDATE_WEIGHTS));
	OK(fdn_aggregator_add(agg, u2, 3, FDN_UPDATE_WEIGHTS));
	assert_int_equal(fdn_aggregator_count(agg), 2);
	OK(fdn_aggregator_finish(agg, &out, &st));
	assert_null(st);  /* FedAvg keeps no state */
	/* (1·u1 + 3·u2) / 4 */
	assert_true(val(out, 0, 0) == 5.0 && val(out, 0, 1) == 2.0 &&
		val(out, 0, 2) == -1.0 && val(out, 0, 3) == 0.5);
	assert_true(val(out, 1, 0) == 4.0 && val(out, 1, 1) == 2.0);
	OK(fdn_model_get_metadata(&v, out, "round"));  /* copied from the global model */
	assert_string_equal(v, "7");
	expect_fail(fdn_aggregator_add(agg, u1, 1, 0), FDN_EINVALID, "finished", NULL);
	{
		fdn_model *again = (fdn_model *)1;

		expect_fail(fdn_aggregator_finish(agg, &again, NULL), FDN_EINVALID,
			"already", NULL);
		assert_null(again);
	}
	fdn_aggregator_free(agg);
	fdn_model_free(out);

	/* Deltas, a server learning rate and FedProx (the same on the
	 * server): x + 0.5·(1·d1 + 3·d2)/4 with d_k = u_k − x. */
	{
		fdn_strategy_options o = opts_for(FDN_STRATEGY_FEDPROX);
		static const double d1a[4] = { 1, 0, -1, -2 }, d1b[2] = { 1, -1 };
		static const double d2a[4] = { 5, 0, -5, -4 }, d2b[2] = { 5, 3 };
		fdn_model *d1 = model2(FDN_DTYPE_F32, d1a, 4, d1b, 2);
		fdn_model *d2 = model2(FDN_DTYPE_F32, d2a, 4, d2b, 2);

		o.server_lr = 0.5;
		o.proximal_mu = 0.01;
		OK(fdn_aggregator_new(&agg, g, NULL, &o));
		OK(fdn_aggregator_add(agg, d1, 1, FDN_UPDATE_DELTA));
		OK(fdn_aggregator_add(agg, u2, 3, FDN_UPDATE_WEIGHTS));  /* forms mix */
		OK(fdn_aggregator_finish(agg, &out, NULL));
		/* Δ = ((1·d1 + 3·d2)/4) = a: [4, 0, -4, -3.5], b: [4, 2] */
		assert_true(val(out, 0, 0) == 3.0 && val(out, 0, 1) == 2.0 &&
			val(out, 0, 2) == 1.0 && val(out, 0, 3) == 2.25);
		assert_true(val(out, 1, 0) == 2.0 && val(out, 1, 1) == 1.0);
		fdn_aggregator_free(agg);
		fdn_model_free(out);
		fdn_model_free(d1);
		fdn_model_free(d2);
	}
	/* One update: the result is that update, bit for bit. */
	{
		static const double ra[4] = { 0.1, 1e-7, 3.3, -7e5 }, rb[2] = { 1.0 / 3, 2.0 / 7 };
		fdn_model *r = model2(FDN_DTYPE_F32, ra, 4, rb, 2);

		OK(fdn_aggregator_new(&agg, g, NULL, NULL));
		OK(fdn_aggregator_add(agg, r, 123, FDN_UPDATE_WEIGHTS));
		OK(fdn_aggregator_finish(agg, &out, NULL));
		for (size_t i = 0; i < 4; i++)
			assert_true(val(out, 0, i) == (double)(float)ra[i]);
		for (size_t i = 0; i < 2; i++)
			assert_true(val(out, 1, i) == (double)(float)rb[i]);
		fdn_aggregator_free(agg);
		fdn_model_free(out);
		fdn_model_free(r);
	}
	fdn_model_free(g);
	fdn_model_free(u1);
	fdn_model_free(u2);
}

/* One round of strategy @p o on a 1-tensor F64 model: @p x becomes the
 * next model; the state is passed in and replaced. */
static void round_f64(const fdn_strategy_options *o, double *x, size_t n,
	const double *const *updates, const double *weights, size_t k, fdn_model **st)
{
	fdn_model *g = model1(x, n), *out, *next = NULL;
	fdn_aggregator *agg;

	OK(fdn_aggregator_new(&agg, g, *st, o));
	for (size_t i = 0; i < k; i++) {
		fdn_model *u = model1(updates[i], n);

		OK(fdn_aggregator_add(agg, u, weights[i], FDN_UPDATE_WEIGHTS));
		fdn_model_free(u);
	}
	OK(fdn_aggregator_finish(agg, &out, &next));
	for (size_t i = 0; i < n; i++)
		x[i] = val(out, 0, i);
	fdn_aggregator_free(agg);
	fdn_model_free(out);
	fdn_model_free(g);
	fdn_model_free(*st);
	*st = next;
}

static void test_fedavgm(void **state)
{
	fdn_strategy_options o = opts_for(FDN_STRATEGY_FEDAVGM);
	double x[2] = { 10, 0 };
	static const double u1[2] = { 12, 1 }, u2[2] = { 13, 1 };
	const double *ups[1];
	const double w[1] = { 5 };
	fdn_model *st = NULL;
	fdn_tensor_info info = FDN_TENSOR_INFO_INIT;
	const char *v;

	(void)state;
	o.momentum = 0.5;
	ups[0] = u1;
	round_f64(&o, x, 2, ups, w, 1, &st);
	/* Δ = [2, 1]; m = [2, 1]; x = [12, 1] */
	assert_true(x[0] == 12 && x[1] == 1);
	assert_non_null(st);
	assert_int_equal(fdn_model_tensor_count(st), 1);
	OK(fdn_model_tensor(&info, st, 0));
	assert_string_equal(info.name, "m/w");
	assert_int_equal(info.dtype, FDN_DTYPE_F64);  /* F64 model: F64 moments */
	OK(fdn_model_get_metadata(&v, st, "fednode.strategy"));
	assert_string_equal(v, "fedavgm");
	OK(fdn_model_get_metadata(&v, st, "fednode.rounds"));
	assert_string_equal(v, "1");
	ups[0] = u2;
	round_f64(&o, x, 2, ups, w, 1, &st);
	/* Δ = [1, 0]; m = 0.5·[2, 1] + [1, 0] = [2, 0.5]; x = [14, 1.5] */
	assert_true(x[0] == 14 && x[1] == 1.5);
	OK(fdn_model_get_metadata(&v, st, "fednode.rounds"));
	assert_string_equal(v, "2");
	fdn_model_free(st);
}

/* The adaptive strategies against their formulas, written out here once
 * more, over three rounds (the state of round 2 goes through a file). */
static void adaptive_case(int strategy)
{
	fdn_strategy_options o = opts_for(strategy);
	double x[3] = { 1, -2, 0.5 }, ex[3], m[3] = { 0 }, v[3];
	static const double ua[3] = { 1.5, -2.5, 0.5 }, ub[3] = { 0.5, -1.0, 0.7 };
	const double *ups[2] = { ua, ub };
	const double w[2] = { 1, 3 };
	const double lr = 0.1, b1 = 0.9, b2 = 0.99, tau = 1e-3;
	fdn_model *st = NULL;
	char path[300];

	memcpy(ex, x, sizeof(x));
	for (int i = 0; i < 3; i++)
		v[i] = tau * tau;
	path_in(path, sizeof(path), "state.safetensors");
	for (int r = 0; r < 3; r++) {
		for (int i = 0; i < 3; i++) {
			double d = (1 * ua[i] + 3 * ub[i]) / 4 - ex[i];

			switch (strategy) {
			case FDN_STRATEGY_FEDADAGRAD:
				v[i] = v[i] + d * d;
				ex[i] += lr * d / (sqrt(v[i]) + tau);
				break;
			case FDN_STRATEGY_FEDADAM:
				m[i] = b1 * m[i] + (1 - b1) * d;
				v[i] = b2 * v[i] + (1 - b2) * d * d;
				ex[i] += lr * m[i] / (sqrt(v[i]) + tau);
				break;
			default:
				m[i] = b1 * m[i] + (1 - b1) * d;
				v[i] = v[i] - (1 - b2) * d * d *
					(v[i] > d * d ? 1 : v[i] < d * d ? -1 : 0);
				ex[i] += lr * m[i] / (sqrt(v[i]) + tau);
				break;
			}
		}
		round_f64(&o, x, 3, ups, w, 2, &st);
		for (int i = 0; i < 3; i++)
			if (fabs(x[i] - ex[i]) > 1e-12 * fabs(ex[i]))
				fail_msg("%s round %d [%d]: %.17g, expected %.17g",
					fdn_strategy_name(strategy), r, i, x[i], ex[i]);
		if (r == 1) {
			OK(fdn_model_write_file(st, path));
			fdn_model_free(st);
			OK(fdn_model_read_file(&st, path, 0));
		}
	}
	{
		const char *rounds;
		fdn_tensor_info info = FDN_TENSOR_INFO_INIT;

		OK(fdn_model_get_metadata(&rounds, st, "fednode.rounds"));
		assert_string_equal(rounds, "3");
		OK(fdn_model_tensor(&info, st, fdn_model_tensor_count(st) - 1));
		assert_string_equal(info.name, "v/w");
	}
	fdn_model_free(st);
}

static void test_adaptive(void **state)
{
	(void)state;
	adaptive_case(FDN_STRATEGY_FEDADAGRAD);
	adaptive_case(FDN_STRATEGY_FEDADAM);
	adaptive_case(FDN_STRATEGY_FEDYOGI);
}

/* A hand-computed FedAdam step with the defaults (η 0.1, β1 0.9, β2 0.99,
 * τ 1e-3), F32 model: the moments are kept in F32. */
static void test_fedadam_by_hand(void **state)
{
	fdn_strategy_options o = opts_for(FDN_STRATEGY_FEDADAM);
	static const double g0[1] = { 0 }, u[1] = { 1 };
	fdn_model *g, *up, *out, *st;
	fdn_aggregator *agg;
	fdn_tensor_info info = FDN_TENSOR_INFO_INIT;
	double v;

	(void)state;
	OK(fdn_model_new(&g));
	add_values(g, "w", FDN_DTYPE_F32, g0, 1);
	OK(fdn_model_new(&up));
	add_values(up, "w", FDN_DTYPE_F32, u, 1);
	OK(fdn_aggregator_new(&agg, g, NULL, &o));
	OK(fdn_aggregator_add(agg, up, 2, FDN_UPDATE_WEIGHTS));
	OK(fdn_aggregator_finish(agg, &out, &st));
	/* Δ = 1: m = (1 − 0.9)·1; v = 0.99·τ² + (1 − 0.99)·1;
	 * x = 0 + 0.1·m/(√v + τ), each as the library computes it */
	v = 0.99 * (1e-3 * 1e-3) + (1 - 0.99) * (1.0 * 1.0);
	assert_true(val(out, 0, 0) == (double)(float)(0.1 * (1 - 0.9) / (sqrt(v) + 1e-3)));
	OK(fdn_model_tensor(&info, st, 0));
	assert_string_equal(info.name, "m/w");
	assert_int_equal(info.dtype, FDN_DTYPE_F32);
	assert_true(val(st, 0, 0) == (double)(float)(1 - 0.9));
	assert_true(val(st, 1, 0) == (double)(float)v);
	fdn_aggregator_free(agg);
	fdn_model_free(out);
	fdn_model_free(st);
	fdn_model_free(g);
	fdn_model_free(up);
}

/* --- the robust strategies ------------------------------------------------------------ */

static void robust_case(int strategy, double trim, size_t k, const double *vals,
	const int *forms, double global, double expect)
{
	fdn_strategy_options o = opts_for(strategy);
	fdn_model *g = model1(&global, 1), *out;
	fdn_aggregator *agg;

	o.trim = trim;
	OK(fdn_aggregator_new(&agg, g, NULL, &o));
	for (size_t i = 0; i < k; i++) {
		fdn_model *u = model1(&vals[i], 1);

		/* weights are ignored */
		OK(fdn_aggregator_add(agg, u, (double)(i + 1) * 100, forms ? forms[i] : 0));
		fdn_model_free(u);
	}
	OK(fdn_aggregator_finish(agg, &out, NULL));
	if (val(out, 0, 0) != expect)
		fail_msg("%s k=%zu: %.17g, expected %.17g", fdn_strategy_name(strategy), k,
			val(out, 0, 0), expect);
	fdn_aggregator_free(agg);
	fdn_model_free(out);
	fdn_model_free(g);
}

static void test_robust(void **state)
{
	static const double a[5] = { 7, -1, 100, 3, 2 };
	static const int forms[3] = { 0, 1, 0 };
	static const double b[3] = { 5, 1, 9 };

	(void)state;
	robust_case(FDN_STRATEGY_MEDIAN, 0, 1, a, NULL, 0, 7);
	robust_case(FDN_STRATEGY_MEDIAN, 0, 2, a, NULL, 0, 3);      /* (7 + -1)/2 */
	robust_case(FDN_STRATEGY_MEDIAN, 0, 3, a, NULL, 0, 7);
	robust_case(FDN_STRATEGY_MEDIAN, 0, 4, a, NULL, 0, 5);      /* (3 + 7)/2 */
	robust_case(FDN_STRATEGY_MEDIAN, 0, 5, a, NULL, 0, 3);
	/* A delta is x_t + d: 4 + 1 = 5 among 5, 9. */
	robust_case(FDN_STRATEGY_MEDIAN, 0, 3, b, forms, 4, 5);
	/* trim 0.2 of 5: one dropped at each end → mean(2, 3, 7) = 4 */
	robust_case(FDN_STRATEGY_TRIMMED_MEAN, 0.2, 5, a, NULL, 0, 4);
	/* default trim 0.1 of 5: floor(0.5) = 0 dropped → plain mean 22.2 */
	robust_case(FDN_STRATEGY_TRIMMED_MEAN, 0, 5, a, NULL, 0, (7 - 1 + 100 + 3 + 2) / 5.0);
	/* trim 0.49 of 4: floor(1.96) = 1 → mean(3, 7) */
	robust_case(FDN_STRATEGY_TRIMMED_MEAN, 0.49, 4, a, NULL, 0, 5);
	robust_case(FDN_STRATEGY_TRIMMED_MEAN, 0.3, 1, a, NULL, 0, 7);
}

/* More sites than the insertion sort handles, F32, two tensors. */
static void test_robust_many(void **state)
{
	enum { K = 41 };
	static const double ga[3] = { 0, 0, 0 }, gb[1] = { 0 };
	fdn_strategy_options o = opts_for(FDN_STRATEGY_MEDIAN);
	fdn_model *g = model2(FDN_DTYPE_F32, ga, 3, gb, 1), *out;
	fdn_aggregator *agg;

	(void)state;
	OK(fdn_aggregator_new(&agg, g, NULL, &o));
	for (int k = 0; k < K; k++) {
		/* a permutation of 0..40 per coordinate */
		double a[3] = { (k * 7) % K, (k * 11) % K, K - 1 - k }, b[1] = { k * 0.5 };
		fdn_model *u = model2(FDN_DTYPE_F32, a, 3, b, 1);

		OK(fdn_aggregator_add(agg, u, 1, FDN_UPDATE_WEIGHTS));
		fdn_model_free(u);
	}
	OK(fdn_aggregator_finish(agg, &out, NULL));
	assert_true(val(out, 0, 0) == 20 && val(out, 0, 1) == 20 && val(out, 0, 2) == 20);
	assert_true(val(out, 1, 0) == 10);
	fdn_aggregator_free(agg);
	fdn_model_free(out);
	fdn_model_free(g);
}

/* --- rejections ------------------------------------------------------------------------ */

static void test_rejections(void **state)
{
	static const double ga[4] = { 0, 0, 0, 0 }, gb[2] = { 0, 0 };
	static const double ua[4] = { 4, 4, 4, 4 }, ub[2] = { 8, 8 };
	fdn_model *g = model2(FDN_DTYPE_F32, ga, 4, gb, 2);
	fdn_model *good = model2(FDN_DTYPE_F32, ua, 4, ub, 2);
	fdn_model *bad, *out;
	fdn_aggregator *agg;
	uint64_t shape22[2] = { 2, 2 };
	float f4[4] = { 0 };

	(void)state;
	OK(fdn_aggregator_new(&agg, g, NULL, NULL));
	expect_fail(fdn_aggregator_finish(agg, &out, NULL), FDN_EINVALID, "no update", NULL);

	/* Wrong name. */
	OK(fdn_model_new(&bad));
	add_values(bad, "a", FDN_DTYPE_F32, ua, 4);
	add_values(bad, "c", FDN_DTYPE_F32, ub, 2);
	expect_fail(fdn_aggregator_add(agg, bad, 1, 0), FDN_EINVALID, "'c'", "'b'", NULL);
	fdn_model_free(bad);
	/* Wrong order. */
	OK(fdn_model_new(&bad));
	add_values(bad, "b", FDN_DTYPE_F32, ub, 2);
	add_values(bad, "a", FDN_DTYPE_F32, ua, 4);
	expect_fail(fdn_aggregator_add(agg, bad, 1, 0), FDN_EINVALID, "tensor 0", "'b'", NULL);
	fdn_model_free(bad);
	/* Wrong dtype. */
	OK(fdn_model_new(&bad));
	add_values(bad, "a", FDN_DTYPE_F32, ua, 4);
	add_values(bad, "b", FDN_DTYPE_F64, ub, 2);
	expect_fail(fdn_aggregator_add(agg, bad, 1, 0), FDN_EINVALID, "'b'", "F64", NULL);
	fdn_model_free(bad);
	/* Wrong shape: same element count, other dimensions. */
	OK(fdn_model_new(&bad));
	OK(fdn_model_add_tensor(bad, "a", FDN_DTYPE_F32, 2, shape22, f4, sizeof(f4)));
	add_values(bad, "b", FDN_DTYPE_F32, ub, 2);
	expect_fail(fdn_aggregator_add(agg, bad, 1, 0), FDN_EINVALID, "'a'", "[2, 2]", "[4]", NULL);
	fdn_model_free(bad);
	/* A tensor missing, one too many. */
	OK(fdn_model_new(&bad));
	add_values(bad, "a", FDN_DTYPE_F32, ua, 4);
	expect_fail(fdn_aggregator_add(agg, bad, 1, 0), FDN_EINVALID, "missing", "'b'", NULL);
	add_values(bad, "b", FDN_DTYPE_F32, ub, 2);
	add_values(bad, "z", FDN_DTYPE_F32, ub, 2);
	expect_fail(fdn_aggregator_add(agg, bad, 1, 0), FDN_EINVALID, "extra", "'z'", NULL);
	fdn_model_free(bad);
	/* NaN and infinity, after good values of the first tensor. */
	{
		double na[2] = { 8, NAN }, ia[4] = { 1, 2, 3, -INFINITY };

		bad = model2(FDN_DTYPE_F32, ua, 4, na, 2);
		expect_fail(fdn_aggregator_add(agg, bad, 1, 0), FDN_EINVALID, "'b'", "NaN",
			"index 1", NULL);
		fdn_model_free(bad);
		bad = model2(FDN_DTYPE_F32, ia, 4, ub, 2);
		expect_fail(fdn_aggregator_add(agg, bad, 1, 0), FDN_EINVALID, "'a'", "infinity",
			"index 3", NULL);
		fdn_model_free(bad);
	}
	/* Bad weights and forms. */
	expect_fail(fdn_aggregator_add(agg, good, 0, 0), FDN_EINVALID, "weight", NULL);
	expect_fail(fdn_aggregator_add(agg, good, -1, 0), FDN_EINVALID, "weight", NULL);
	expect_fail(fdn_aggregator_add(agg, good, NAN, 0), FDN_EINVALID, "weight", NULL);
	expect_fail(fdn_aggregator_add(agg, good, INFINITY, 0), FDN_EINVALID, "weight", NULL);
	expect_fail(fdn_aggregator_add(agg, good, 1, 2), FDN_EINVALID, "form", NULL);
	expect_fail(fdn_aggregator_add(agg, NULL, 1, 0), FDN_EINVALID, NULL);
	expect_fail(fdn_aggregator_add(NULL, good, 1, 0), FDN_EINVALID, NULL);
	assert_int_equal(fdn_aggregator_count(agg), 0);

	/* None of it reached the sums: one good update gives itself. */
	OK(fdn_aggregator_add(agg, good, 2, 0));
	/* A rejected update after a good one leaves the sums alone too. */
	{
		double na[4] = { 1, 1, NAN, 1 };

		bad = model2(FDN_DTYPE_F32, na, 4, ub, 2);
		expect_fail(fdn_aggregator_add(agg, bad, 1, 0), FDN_EINVALID, "NaN", "index 2", NULL);
		fdn_model_free(bad);
	}
	OK(fdn_aggregator_finish(agg, &out, NULL));
	for (size_t i = 0; i < 4; i++)
		assert_true(val(out, 0, i) == 4);
	assert_true(val(out, 1, 0) == 8 && val(out, 1, 1) == 8);
	fdn_model_free(out);
	fdn_aggregator_free(agg);
	fdn_model_free(good);
	fdn_model_free(g);
}

static void test_bad_global_and_state(void **state)
{
	static const double one[2] = { 1, 2 };
	fdn_model *g, *st, *out, *other;
	fdn_aggregator *agg;
	fdn_strategy_options adam = opts_for(FDN_STRATEGY_FEDADAM);
	fdn_strategy_options yogi = opts_for(FDN_STRATEGY_FEDYOGI);
	int32_t ints[2] = { 1, 2 };
	uint64_t two = 2;

	(void)state;
	/* Integer tensors cannot be averaged. */
	OK(fdn_model_new(&g));
	OK(fdn_model_add_tensor(g, "steps", FDN_DTYPE_I32, 1, &two, ints, sizeof(ints)));
	expect_fail(fdn_aggregator_new(&agg, g, NULL, NULL), FDN_EINVALID, "'steps'", "I32", NULL);
	fdn_model_free(g);

	g = model1(one, 2);
	OK(fdn_aggregator_new(&agg, g, NULL, &adam));
	OK(fdn_aggregator_add(agg, g, 1, FDN_UPDATE_WEIGHTS));
	OK(fdn_aggregator_finish(agg, &out, &st));
	fdn_aggregator_free(agg);
	fdn_model_free(out);
	/* The state of another strategy, or a stateless strategy given one. */
	expect_fail(fdn_aggregator_new(&agg, g, st, &yogi), FDN_EINVALID, "fedadam", NULL);
	expect_fail(fdn_aggregator_new(&agg, g, st, NULL), FDN_EINVALID, "no state", NULL);
	/* A state for another model. */
	{
		static const double three[3] = { 1, 2, 3 };

		other = model1(three, 3);
		expect_fail(fdn_aggregator_new(&agg, other, st, &adam), FDN_EINVALID, "shape", NULL);
		fdn_model_free(other);
	}
	/* Tampered state: a negative second moment, a NaN, a bad round count. */
	{
		fdn_tensor_info m = FDN_TENSOR_INFO_INIT, v = FDN_TENSOR_INFO_INIT;
		double mv[2], vv[2];
		fdn_model *t;

		OK(fdn_model_tensor(&m, st, 0));
		OK(fdn_model_tensor(&v, st, 1));
		memcpy(mv, m.data, sizeof(mv));
		memcpy(vv, v.data, sizeof(vv));
		vv[1] = -1;
		OK(fdn_model_new(&t));
		add_values(t, "m/w", FDN_DTYPE_F64, mv, 2);
		add_values(t, "v/w", FDN_DTYPE_F64, vv, 2);
		OK(fdn_model_set_metadata(t, "fednode.strategy", "fedadam"));
		OK(fdn_model_set_metadata(t, "fednode.rounds", "1"));
		expect_fail(fdn_aggregator_new(&agg, g, t, &adam), FDN_EINVALID, "v/w",
			"negative", "index 1", NULL);
		fdn_model_free(t);
		vv[1] = 1;
		mv[0] = NAN;
		OK(fdn_model_new(&t));
		add_values(t, "m/w", FDN_DTYPE_F64, mv, 2);
		add_values(t, "v/w", FDN_DTYPE_F64, vv, 2);
		OK(fdn_model_set_metadata(t, "fednode.strategy", "fedadam"));
		OK(fdn_model_set_metadata(t, "fednode.rounds", "x1"));
		expect_fail(fdn_aggregator_new(&agg, g, t, &adam), FDN_EINVALID, "rounds", NULL);
		OK(fdn_model_set_metadata(t, "fednode.rounds", "1"));
		expect_fail(fdn_aggregator_new(&agg, g, t, &adam), FDN_EINVALID, "m/w", "index 0", NULL);
		fdn_model_free(t);
		/* Slots swapped. */
		OK(fdn_model_new(&t));
		add_values(t, "v/w", FDN_DTYPE_F64, vv, 2);
		add_values(t, "m/w", FDN_DTYPE_F64, vv, 2);
		OK(fdn_model_set_metadata(t, "fednode.strategy", "fedadam"));
		OK(fdn_model_set_metadata(t, "fednode.rounds", "1"));
		expect_fail(fdn_aggregator_new(&agg, g, t, &adam), FDN_EINVALID, "'m/w'", NULL);
		fdn_model_free(t);
	}
	fdn_model_free(st);
	fdn_model_free(g);
}

/* --- dtypes ------------------------------------------------------------------------------ */

static fdn_model *half_model(int dtype, const uint16_t *bits, size_t n)
{
	fdn_model *m;
	uint64_t shape[1] = { n };

	OK(fdn_model_new(&m));
	OK(fdn_model_add_tensor(m, "h", dtype, 1, shape, bits, n * 2));
	return m;
}

/* The mean of two half-precision models, as bits. */
static int mean_half(int dtype, const uint16_t *x, const uint16_t *y, size_t n,
	uint16_t *out_bits)
{
	fdn_model *g = half_model(dtype, x, n), *a = half_model(dtype, x, n);
	fdn_model *b = half_model(dtype, y, n), *out = NULL;
	fdn_aggregator *agg;
	int rc;

	OK(fdn_aggregator_new(&agg, g, NULL, NULL));
	OK(fdn_aggregator_add(agg, a, 1, FDN_UPDATE_WEIGHTS));
	OK(fdn_aggregator_add(agg, b, 1, FDN_UPDATE_WEIGHTS));
	rc = fdn_aggregator_finish(agg, &out, NULL);
	for (size_t i = 0; rc == 0 && i < n; i++)
		out_bits[i] = half_bits(out, 0, i);
	fdn_aggregator_free(agg);
	fdn_model_free(out);
	fdn_model_free(g);
	fdn_model_free(a);
	fdn_model_free(b);
	return rc;
}

static void test_half_outputs(void **state)
{
	uint16_t r[6];

	(void)state;
	{
		/* binary16: 1 = 0x3c00, ulp 2^-10.
		 * mean(1, 1+u) = 1 + u/2: a tie, to even: 1.
		 * mean(1+u, 1+2u) = 1 + 1.5u: a tie, to even: 1+2u.
		 * mean(1, 1+3u) = 1 + 1.5u: 1 + 2u.
		 * subnormals: mean(2^-24, 2·2^-24) = 1.5·2^-24, to even: 2·2^-24.
		 * mean(-2, 0) = -1.  mean(65504, 65504) = 65504 (the largest). */
		static const uint16_t x[6] = { 0x3c00, 0x3c01, 0x3c00, 0x0001, 0xc000, 0x7bff };
		static const uint16_t y[6] = { 0x3c01, 0x3c02, 0x3c03, 0x0002, 0x0000, 0x7bff };

		OK(mean_half(FDN_DTYPE_F16, x, y, 6, r));
		assert_int_equal(r[0], 0x3c00);
		assert_int_equal(r[1], 0x3c02);
		assert_int_equal(r[2], 0x3c02);
		assert_int_equal(r[3], 0x0002);
		assert_int_equal(r[4], 0xbc00);
		assert_int_equal(r[5], 0x7bff);
	}
	{
		/* bfloat16: 1 = 0x3f80, ulp 2^-7; the same ties. */
		static const uint16_t x[4] = { 0x3f80, 0x3f81, 0x0001, 0x7f7f };
		static const uint16_t y[4] = { 0x3f81, 0x3f82, 0x0002, 0x7f7f };

		OK(mean_half(FDN_DTYPE_BF16, x, y, 4, r));
		assert_int_equal(r[0], 0x3f80);
		assert_int_equal(r[1], 0x3f82);
		assert_int_equal(r[2], 0x0002);
		assert_int_equal(r[3], 0x7f7f);
	}
	/* A step past the largest binary16 (65504; 65520 rounds to infinity):
	 * refused, not written as infinity. */
	{
		static const uint16_t g[1] = { 0x7bff }, d[1] = { 0x5640 };  /* 65504, +100 */
		fdn_model *gm = half_model(FDN_DTYPE_F16, g, 1), *dm = half_model(FDN_DTYPE_F16, d, 1);
		fdn_model *out = (fdn_model *)1;
		fdn_aggregator *agg;

		OK(fdn_aggregator_new(&agg, gm, NULL, NULL));
		OK(fdn_aggregator_add(agg, dm, 1, FDN_UPDATE_DELTA));
		expect_fail(fdn_aggregator_finish(agg, &out, NULL), FDN_EINVALID, "'h'",
			"does not fit F16", NULL);
		assert_null(out);
		fdn_aggregator_free(agg);
		fdn_model_free(gm);
		fdn_model_free(dm);
	}
	/* Inputs in F16 are checked for NaN/Inf too (0x7c00 = +inf). */
	{
		static const uint16_t g[2] = { 0, 0 }, i[2] = { 0x3c00, 0x7c00 }, n[2] = { 0x7fc0, 0 };
		fdn_model *gm = half_model(FDN_DTYPE_F16, g, 2), *im = half_model(FDN_DTYPE_F16, i, 2);
		fdn_model *nm = half_model(FDN_DTYPE_BF16, n, 2), *gb = half_model(FDN_DTYPE_BF16, g, 2);
		fdn_aggregator *agg;

		OK(fdn_aggregator_new(&agg, gm, NULL, NULL));
		expect_fail(fdn_aggregator_add(agg, im, 1, 0), FDN_EINVALID, "infinity", "index 1", NULL);
		fdn_aggregator_free(agg);
		OK(fdn_aggregator_new(&agg, gb, NULL, NULL));
		expect_fail(fdn_aggregator_add(agg, nm, 1, 0), FDN_EINVALID, "NaN", "index 0", NULL);
		fdn_aggregator_free(agg);
		fdn_model_free(gm);
		fdn_model_free(im);
		fdn_model_free(nm);
		fdn_model_free(gb);
	}
}

static void test_f64_output(void **state)
{
	/* F64 keeps what F32 would round away. */
	static const double x[2] = { 1.0, 0x1p-1000 }, y[2] = { 1.0 + 0x1p-50, 0x1p-999 };
	fdn_model *g = model1(x, 2), *a = model1(x, 2), *b = model1(y, 2), *out;
	fdn_aggregator *agg;

	(void)state;
	OK(fdn_aggregator_new(&agg, g, NULL, NULL));
	OK(fdn_aggregator_add(agg, a, 1, 0));
	OK(fdn_aggregator_add(agg, b, 1, 0));
	OK(fdn_aggregator_finish(agg, &out, NULL));
	assert_true(val(out, 0, 0) == 1.0 + 0x1p-51);
	assert_true(val(out, 0, 1) == 0x1.8p-1000);
	fdn_aggregator_free(agg);
	fdn_model_free(out);
	fdn_model_free(g);
	fdn_model_free(a);
	fdn_model_free(b);
}

/* --- files ----------------------------------------------------------------------------------- */

static uint64_t rng = 88172645463325252ull;

static double rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) * 0x1p-53 * 2 - 1;
}

/* Three tensors whose data does not start aligned: F16 [3] (6 bytes),
 * F32 [n] (crosses read-chunk boundaries mid-element), F64 [5]; an
 * F16/F32/F64 mix is allowed as long as the update matches. */
static fdn_model *mixed_model(size_t n, double scale)
{
	fdn_model *m;
	uint16_t h[3] = { 0x3c00, 0x4000, 0x4200 };
	float *f = malloc(n * 4);
	double d[5];
	uint64_t s3 = 3, s5 = 5, sn = n;

	assert_non_null(f);
	for (size_t i = 0; i < n; i++)
		f[i] = (float)(rnd() * scale);
	for (size_t i = 0; i < 5; i++)
		d[i] = rnd() * scale;
	h[0] = (uint16_t)(h[0] + (rng & 7));
	OK(fdn_model_new(&m));
	OK(fdn_model_add_tensor(m, "h", FDN_DTYPE_F16, 1, &s3, h, sizeof(h)));
	OK(fdn_model_add_tensor(m, "f", FDN_DTYPE_F32, 1, &sn, f, n * 4));
	OK(fdn_model_add_tensor(m, "d", FDN_DTYPE_F64, 1, &s5, d, sizeof(d)));
	free(f);
	return m;
}

static void assert_same_models(const fdn_model *a, const fdn_model *b)
{
	assert_int_equal(fdn_model_tensor_count(a), fdn_model_tensor_count(b));
	for (size_t i = 0; i < fdn_model_tensor_count(a); i++) {
		fdn_tensor_info x = FDN_TENSOR_INFO_INIT, y = FDN_TENSOR_INFO_INIT;

		OK(fdn_model_tensor(&x, a, i));
		OK(fdn_model_tensor(&y, b, i));
		assert_string_equal(x.name, y.name);
		assert_int_equal(x.dtype, y.dtype);
		assert_int_equal(x.nbytes, y.nbytes);
		if (x.nbytes && memcmp(x.data, y.data, x.nbytes) != 0)
			fail_msg("tensor '%s' differs", x.name);
	}
}

static void file_case(int strategy, size_t n)
{
	enum { K = 3 };
	fdn_strategy_options o = opts_for(strategy);
	fdn_model *g = mixed_model(n, 1), *u[K], *out1, *st1 = NULL, *st2 = NULL, *read;
	fdn_aggregator *a1, *a2;
	char path[K][300], outpath[300];
	double w[K] = { 1, 2.5, 4 };

	for (int k = 0; k < K; k++) {
		char name[32];

		snprintf(name, sizeof(name), "u%d.safetensors", k);
		path_in(path[k], sizeof(path[k]), name);
		u[k] = mixed_model(n, 2);
		OK(fdn_model_write_file(u[k], path[k]));
	}
	OK(fdn_aggregator_new(&a1, g, NULL, &o));
	OK(fdn_aggregator_new(&a2, g, NULL, &o));
	for (int k = 0; k < K; k++) {
		int form = k == 1 ? FDN_UPDATE_DELTA : FDN_UPDATE_WEIGHTS;

		OK(fdn_aggregator_add(a1, u[k], w[k], form));
		OK(fdn_aggregator_add_file(a2, path[k], w[k], form));
	}
	assert_int_equal(fdn_aggregator_count(a2), K);
	OK(fdn_aggregator_finish(a1, &out1, &st1));
	path_in(outpath, sizeof(outpath), "next.safetensors");
	OK(fdn_aggregator_finish_file(a2, outpath, &st2));
	OK(fdn_model_read_file(&read, outpath, 0));
	assert_same_models(out1, read);
	if (st1 || st2)
		assert_same_models(st1, st2);
	/* What finish_file wrote is what fdn_model_write_file() writes. */
	{
		fdn_buf b1 = FDN_BUF_INIT, b2 = FDN_BUF_INIT;
		FILE *fp = fopen(outpath, "rb");
		struct stat sb;

		assert_non_null(fp);
		assert_int_equal(stat(outpath, &sb), 0);
		OK(fdn_model_write_buffer(&b1, out1));
		assert_int_equal(b1.size, (size_t)sb.st_size);
		b2.ptr = malloc(b1.size);
		assert_int_equal(fread(b2.ptr, 1, b1.size, fp), b1.size);
		assert_memory_equal(b1.ptr, b2.ptr, b1.size);
		free(b2.ptr);
		fclose(fp);
		fdn_buf_dispose(&b1);
	}
	fdn_aggregator_free(a1);
	fdn_aggregator_free(a2);
	fdn_model_free(out1);
	fdn_model_free(read);
	fdn_model_free(st1);
	fdn_model_free(st2);
	for (int k = 0; k < K; k++)
		fdn_model_free(u[k]);
	fdn_model_free(g);
}

static void test_add_file(void **state)
{
	(void)state;
	/* Larger than one read chunk (512 KiB), then small enough for one. */
	file_case(FDN_STRATEGY_FEDAVG, 300001);
	file_case(FDN_STRATEGY_FEDADAM, 200003);
	file_case(FDN_STRATEGY_FEDAVGM, 1000);
	file_case(FDN_STRATEGY_TRIMMED_MEAN, 1000);
}

static void test_add_file_rejections(void **state)
{
	enum { N = 300001 };
	fdn_model *g = mixed_model(N, 1), *good = mixed_model(N, 1), *out1, *out2;
	fdn_aggregator *agg, *ref;
	char path[300], gpath[300];
	fdn_tensor_info info = FDN_TENSOR_INFO_INIT;

	(void)state;
	path_in(gpath, sizeof(gpath), "good.safetensors");
	OK(fdn_model_write_file(good, gpath));
	OK(fdn_aggregator_new(&agg, g, NULL, NULL));
	OK(fdn_aggregator_new(&ref, g, NULL, NULL));
	OK(fdn_aggregator_add_file(agg, gpath, 2, 0));
	OK(fdn_aggregator_add(ref, good, 2, 0));

	/* A NaN near the end of a file larger than one chunk: refused, and
	 * nothing of it folded (the check pass reads it all first). */
	{
		fdn_model *bad = mixed_model(N, 1);
		unsigned char *f;

		OK(fdn_model_tensor(&info, bad, 1));
		f = (unsigned char *)info.data;  /* owned by the model: patch it */
		{
			float nan = NAN;

			memcpy(f + 4 * (N - 2), &nan, 4);
		}
		path_in(path, sizeof(path), "nan.safetensors");
		OK(fdn_model_write_file(bad, path));
		expect_fail(fdn_aggregator_add_file(agg, path, 1, 0), FDN_EINVALID, path,
			"'f'", "NaN", "index 299999", NULL);
		fdn_model_free(bad);
	}
	/* The same as the very first update (checked as it is folded: what
	 * it half wrote must not count). */
	{
		fdn_aggregator *first;
		fdn_model *o1, *o2;

		OK(fdn_aggregator_new(&first, g, NULL, NULL));
		expect_fail(fdn_aggregator_add_file(first, path, 1, 0), FDN_EINVALID, "NaN",
			"index 299999", NULL);
		assert_int_equal(fdn_aggregator_count(first), 0);
		OK(fdn_aggregator_add_file(first, gpath, 2, 0));
		OK(fdn_aggregator_finish(first, &o1, NULL));
		fdn_aggregator_free(first);
		OK(fdn_aggregator_new(&first, g, NULL, NULL));
		OK(fdn_aggregator_add(first, good, 2, 0));
		OK(fdn_aggregator_finish(first, &o2, NULL));
		fdn_aggregator_free(first);
		assert_same_models(o1, o2);
		fdn_model_free(o1);
		fdn_model_free(o2);
	}
	expect_fail(fdn_aggregator_add_file(agg, "/nonexistent/u.safetensors", 1, 0),
		FDN_ENOTFOUND, NULL);
	path_in(path, sizeof(path), "junk.safetensors");
	{
		FILE *fp = fopen(path, "wb");

		fputs("not a safetensors file at all", fp);
		fclose(fp);
	}
	expect_fail(fdn_aggregator_add_file(agg, path, 1, 0), FDN_EFORMAT, path, NULL);
	/* A file with another layout. */
	{
		static const double one[1] = { 1 };
		fdn_model *other = model1(one, 1);

		path_in(path, sizeof(path), "other.safetensors");
		OK(fdn_model_write_file(other, path));
		expect_fail(fdn_aggregator_add_file(agg, path, 1, 0), FDN_EINVALID, path, "'w'", NULL);
		fdn_model_free(other);
	}
	expect_fail(fdn_aggregator_add_file(agg, tmpdir, 1, 0), FDN_EIO, NULL);
	expect_fail(fdn_aggregator_add_file(agg, gpath, -1, 0), FDN_EINVALID, "weight", NULL);
	expect_fail(fdn_aggregator_add_file(agg, NULL, 1, 0), FDN_EINVALID, NULL);
	assert_int_equal(fdn_aggregator_count(agg), 1);
	OK(fdn_aggregator_finish(agg, &out1, NULL));
	OK(fdn_aggregator_finish(ref, &out2, NULL));
	assert_same_models(out1, out2);
	expect_fail(fdn_aggregator_add_file(agg, gpath, 1, 0), FDN_EINVALID, "finished", NULL);
	expect_fail(fdn_aggregator_finish_file(agg, gpath, NULL), FDN_EINVALID, "already", NULL);
	fdn_aggregator_free(agg);
	fdn_aggregator_free(ref);
	fdn_model_free(out1);
	fdn_model_free(out2);
	fdn_model_free(g);
	fdn_model_free(good);
}

/* --- batches -------------------------------------------------------------------------- */

/* Puts @p value at element @p index of tensor @p t (F32) of @p m, which
 * owns its data (made by fdn_model_add_tensor). */
static void poke_f32(fdn_model *m, size_t t, size_t index, float value)
{
	fdn_tensor_info info = FDN_TENSOR_INFO_INIT;

	OK(fdn_model_tensor(&info, m, t));
	memcpy((unsigned char *)info.data + 4 * index, &value, 4);
}

/* The next model from adding updates @p use (indexes into @p u) one by
 * one, as the reference for a batch. */
static fdn_model *one_by_one(const fdn_model *g, const fdn_strategy_options *o,
	fdn_model *const *u, const double *w, const int *forms, const size_t *use, size_t nuse,
	fdn_model **state)
{
	fdn_aggregator *agg;
	fdn_model *out;

	OK(fdn_aggregator_new(&agg, g, NULL, o));
	for (size_t i = 0; i < nuse; i++)
		OK(fdn_aggregator_add(agg, u[use[i]], w[use[i]], forms ? forms[use[i]] : 0));
	OK(fdn_aggregator_finish(agg, &out, state));
	fdn_aggregator_free(agg);
	return out;
}

enum { BN = 300001, BK = 6 };

static void batch_models_case(int strategy)
{
	fdn_strategy_options o = opts_for(strategy);
	fdn_model *g = mixed_model(BN, 1), *u[BK], *ref, *out, *st_ref = NULL, *st = NULL;
	const fdn_model *cu[BK];
	double w[BK] = { 3, 1, 4, 1, 5, 9 };
	int forms[BK] = { 0, 1, 0, 0, 1, 0 }, status[BK];
	size_t all[BK] = { 0, 1, 2, 3, 4, 5 };
	fdn_aggregator *agg;

	for (int k = 0; k < BK; k++)
		cu[k] = u[k] = mixed_model(BN, 2);
	ref = one_by_one(g, &o, u, w, forms, all, BK, &st_ref);
	OK(fdn_aggregator_new(&agg, g, NULL, &o));
	memset(status, 0x55, sizeof(status));
	OK(fdn_aggregator_add_batch(agg, BK, cu, w, forms, status));
	for (int k = 0; k < BK; k++)
		assert_int_equal(status[k], 0);
	assert_int_equal(fdn_aggregator_count(agg), BK);
	OK(fdn_aggregator_finish(agg, &out, &st));
	assert_same_models(ref, out);  /* bit for bit */
	if (st_ref)
		assert_same_models(st_ref, st);
	fdn_aggregator_free(agg);
	fdn_model_free(out);
	fdn_model_free(ref);
	fdn_model_free(st);
	fdn_model_free(st_ref);

	/* After a first update the batch is added one by one: same bits. */
	OK(fdn_aggregator_new(&agg, g, NULL, &o));
	OK(fdn_aggregator_add(agg, u[0], w[0], forms[0]));
	OK(fdn_aggregator_add_batch(agg, BK - 1, cu + 1, w + 1, forms + 1, NULL));
	OK(fdn_aggregator_finish(agg, &out, NULL));
	ref = one_by_one(g, &o, u, w, forms, all, BK, NULL);
	assert_same_models(ref, out);
	fdn_aggregator_free(agg);
	fdn_model_free(out);
	fdn_model_free(ref);
	for (int k = 0; k < BK; k++)
		fdn_model_free(u[k]);
	fdn_model_free(g);
}

static void test_batch_models(void **state)
{
	(void)state;
	batch_models_case(FDN_STRATEGY_FEDAVG);
	batch_models_case(FDN_STRATEGY_FEDYOGI);
	batch_models_case(FDN_STRATEGY_MEDIAN);
}

/* Rejections inside a batch: the survivors' result is bit for bit that
 * of adding only them, whichever update went first and wherever the bad
 * value sat. */
static void test_batch_rejections(void **state)
{
	fdn_model *g = mixed_model(BN, 1), *u[BK], *ref, *out, *other;
	const fdn_model *cu[BK];
	double w[BK] = { 3, 1, 4, 1, 5, 9 };
	int status[BK];
	fdn_aggregator *agg;
	static const double one[1] = { 1 };

	(void)state;
	for (int k = 0; k < BK; k++)
		cu[k] = u[k] = mixed_model(BN, 2);
	poke_f32(u[0], 1, BN - 2, NAN);       /* the first update, in the last block */
	poke_f32(u[3], 1, 70000, INFINITY);   /* the second block */
	other = model1(one, 1);
	cu[4] = other;                        /* another layout */
	w[5] = -1;                            /* a bad weight */
	OK(fdn_aggregator_new(&agg, g, NULL, NULL));
	expect_fail(fdn_aggregator_add_batch(agg, BK, cu, w, NULL, status), FDN_EINVALID,
		"update 0", "'f'", "NaN", "index 299999", "3 more rejected", NULL);
	assert_int_equal(status[0], FDN_EINVALID);
	assert_int_equal(status[1], 0);
	assert_int_equal(status[2], 0);
	assert_int_equal(status[3], FDN_EINVALID);
	assert_int_equal(status[4], FDN_EINVALID);
	assert_int_equal(status[5], FDN_EINVALID);
	assert_int_equal(fdn_aggregator_count(agg), 2);
	OK(fdn_aggregator_finish(agg, &out, NULL));
	{
		size_t use[2] = { 1, 2 };

		ref = one_by_one(g, NULL, u, w, NULL, use, 2, NULL);
	}
	assert_same_models(ref, out);
	fdn_aggregator_free(agg);
	fdn_model_free(out);
	fdn_model_free(ref);

	/* Every one rejected: nothing counted. */
	OK(fdn_aggregator_new(&agg, g, NULL, NULL));
	{
		const fdn_model *bad[2] = { u[0], u[3] };

		expect_fail(fdn_aggregator_add_batch(agg, 2, bad, w, NULL, NULL), FDN_EINVALID,
			"update 0", "1 more", NULL);
	}
	assert_int_equal(fdn_aggregator_count(agg), 0);
	/* ... and the next batch starts from scratch all the same. */
	OK(fdn_aggregator_add_batch(agg, 2, cu + 1, w + 1, NULL, NULL));
	OK(fdn_aggregator_finish(agg, &out, NULL));
	{
		size_t use[2] = { 1, 2 };

		ref = one_by_one(g, NULL, u, w, NULL, use, 2, NULL);
	}
	assert_same_models(ref, out);
	fdn_model_free(out);
	fdn_model_free(ref);
	fdn_aggregator_free(agg);

	/* Arguments. */
	OK(fdn_aggregator_new(&agg, g, NULL, NULL));
	{
		const fdn_model *withnull[2] = { u[1], NULL };

		expect_fail(fdn_aggregator_add_batch(agg, 2, withnull, w + 1, NULL, status),
			FDN_EINVALID, "update 1 is NULL", NULL);
		assert_int_equal(status[0], 0);
		assert_int_equal(fdn_aggregator_count(agg), 1);
	}
	OK(fdn_aggregator_add_batch(agg, 0, NULL, NULL, NULL, NULL));
	expect_fail(fdn_aggregator_add_batch(agg, 1, NULL, w, NULL, NULL), FDN_EINVALID, NULL);
	expect_fail(fdn_aggregator_add_batch(agg, 1, cu, NULL, NULL, NULL), FDN_EINVALID, NULL);
	expect_fail(fdn_aggregator_add_batch(NULL, 1, cu, w, NULL, NULL), FDN_EINVALID, NULL);
	expect_fail(fdn_aggregator_add_files(agg, 1, NULL, w, NULL, NULL), FDN_EINVALID, NULL);
	{
		int bad_form[1] = { 7 };

		expect_fail(fdn_aggregator_add_batch(agg, 1, cu + 1, w + 1, bad_form, status),
			FDN_EINVALID, "update 0", "form", NULL);
		assert_int_equal(status[0], FDN_EINVALID);
	}
	OK(fdn_aggregator_finish(agg, &out, NULL));
	fdn_model_free(out);
	expect_fail(fdn_aggregator_add_batch(agg, 1, cu + 1, w + 1, NULL, NULL), FDN_EINVALID,
		"finished", NULL);
	fdn_aggregator_free(agg);
	for (int k = 0; k < BK; k++)
		fdn_model_free(u[k]);
	fdn_model_free(other);
	fdn_model_free(g);
}

static void test_batch_files(void **state)
{
	fdn_model *g = mixed_model(BN, 1), *u[BK], *ref, *out;
	fdn_strategy_options o = opts_for(FDN_STRATEGY_FEDADAM);
	double w[BK] = { 3, 1, 4, 1, 5, 9 };
	int forms[BK] = { 0, 1, 0, 0, 1, 0 }, status[BK + 2];
	char paths[BK + 2][300];
	const char *cp[BK + 2];
	double w2[BK + 2];
	int forms2[BK + 2];
	fdn_aggregator *agg;
	size_t all[BK] = { 0, 1, 2, 3, 4, 5 };

	(void)state;
	for (int k = 0; k < BK; k++) {
		char name[32];

		snprintf(name, sizeof(name), "b%d.safetensors", k);
		path_in(paths[k], sizeof(paths[k]), name);
		cp[k] = paths[k];
		u[k] = mixed_model(BN, 2);
		OK(fdn_model_write_file(u[k], paths[k]));
	}
	ref = one_by_one(g, &o, u, w, forms, all, BK, NULL);
	OK(fdn_aggregator_new(&agg, g, NULL, &o));
	OK(fdn_aggregator_add_files(agg, BK, cp, w, forms, status));
	OK(fdn_aggregator_finish(agg, &out, NULL));
	assert_same_models(ref, out);
	fdn_aggregator_free(agg);
	fdn_model_free(out);
	fdn_model_free(ref);

	/* Rejections: a NaN late in the first file, a missing file, a junk
	 * file; the others as if alone. */
	{
		fdn_model *bad = mixed_model(BN, 2);
		FILE *fp;
		size_t use[BK - 1] = { 1, 2, 3, 4, 5 };

		poke_f32(bad, 1, BN - 1, NAN);
		OK(fdn_model_write_file(bad, paths[0]));
		fdn_model_free(bad);
		path_in(paths[BK], sizeof(paths[BK]), "missing.safetensors");
		path_in(paths[BK + 1], sizeof(paths[BK + 1]), "junk2.safetensors");
		fp = fopen(paths[BK + 1], "wb");
		fputs("{}", fp);
		fclose(fp);
		for (int k = 0; k < BK + 2; k++) {
			cp[k] = paths[k];
			w2[k] = k < BK ? w[k] : 1;
			forms2[k] = k < BK ? forms[k] : 0;
		}
		OK(fdn_aggregator_new(&agg, g, NULL, &o));
		expect_fail(fdn_aggregator_add_files(agg, BK + 2, cp, w2, forms2, status),
			FDN_EINVALID, paths[0], "NaN", "index 300000", "2 more", NULL);
		assert_int_equal(status[0], FDN_EINVALID);
		for (int k = 1; k < BK; k++)
			assert_int_equal(status[k], 0);
		assert_int_equal(status[BK], FDN_ENOTFOUND);
		assert_int_equal(status[BK + 1], FDN_EFORMAT);
		OK(fdn_aggregator_finish(agg, &out, NULL));
		ref = one_by_one(g, &o, u, w, forms, use, BK - 1, NULL);
		assert_same_models(ref, out);
		fdn_aggregator_free(agg);
		fdn_model_free(out);
		fdn_model_free(ref);
	}
	for (int k = 0; k < BK; k++)
		fdn_model_free(u[k]);
	fdn_model_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_fedavg),
		cmocka_unit_test(test_fedavgm),
		cmocka_unit_test(test_adaptive),
		cmocka_unit_test(test_fedadam_by_hand),
		cmocka_unit_test(test_robust),
		cmocka_unit_test(test_robust_many),
		cmocka_unit_test(test_rejections),
		cmocka_unit_test(test_bad_global_and_state),
		cmocka_unit_test(test_half_outputs),
		cmocka_unit_test(test_f64_output),
		cmocka_unit_test(test_add_file),
		cmocka_unit_test(test_add_file_rejections),
		cmocka_unit_test(test_batch_models),
		cmocka_unit_test(test_batch_rejections),
		cmocka_unit_test(test_batch_files),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
