/*
 * The demo trainer: two-class softmax regression on average-pooled,
 * windowed CT pixels, with minibatch SGD and the optional FedProx term.
 *
 * Features are computed once per stored file and cached by the file's
 * SHA-256, which the registry gives with every cohort member: the cohort
 * is still iterated in every round (so consent is checked at each use,
 * and the use audited), but files are read only the first time.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "demo.h"
#include "demo_private.h"

#define N_PARAMS (DEMO_CLASSES * DEMO_FEATURES + DEMO_CLASSES)
#define DEFAULT_LEARNING_RATE 0.5
#define DEFAULT_BATCH_SIZE 16
#define MAX_BATCH_SIZE 65536

/* --- the feature cache ---------------------------------------------- */

struct entry {
	char sha256[65];
	float x[DEMO_FEATURES];
};

struct demo_trainer {
	struct entry **entries;     /* owned, stable addresses */
	size_t n, cap;
	size_t *slots;              /* open addressing: index + 1, 0 = empty */
	size_t n_slots;             /* power of two */
	uint64_t files_read;
	float atlas[DEMO_FEATURES]; /* subtracted from every example */
	char eval_cohort[128];      /* "" = the cohort the client passes */
};

int demo_trainer_new(demo_trainer **out)
{
	if (!out)
		return demo__fail(FDN_EINVALID, "demo_trainer_new: NULL argument");
	if (!(*out = calloc(1, sizeof(**out))))
		return demo__fail(FDN_ERROR, "out of memory");
	demo__atlas((*out)->atlas);
	return 0;
}

void demo_trainer_free(demo_trainer *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n; i++)
		free(t->entries[i]);
	free(t->entries);
	free(t->slots);
	free(t);
}

uint64_t demo_trainer_files_read(const demo_trainer *t)
{
	return t ? t->files_read : 0;
}

static size_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return (size_t)h;
}

static struct entry *cache_find(const demo_trainer *t, const char *sha)
{
	size_t i;

	if (!t->n_slots)
		return NULL;
	for (i = hash_key(sha) & (t->n_slots - 1); t->slots[i];
			i = (i + 1) & (t->n_slots - 1))
		if (!strcmp(t->entries[t->slots[i] - 1]->sha256, sha))
			return t->entries[t->slots[i] - 1];
	return NULL;
}

static int cache_rehash(demo_trainer *t, size_t n_slots)
{
	size_t *slots = calloc(n_slots, sizeof(*slots)), i, j;

	if (!slots)
		return demo__fail(FDN_ERROR, "out of memory");
	for (i = 0; i < t->n; i++) {
		for (j = hash_key(t->entries[i]->sha256) & (n_slots - 1); slots[j];
				j = (j + 1) & (n_slots - 1))
			;
		slots[j] = i + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->n_slots = n_slots;
	return 0;
}

/* Takes ownership of @p e. */
static int cache_insert(demo_trainer *t, struct entry *e)
{
	size_t i;
	int rc;

	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 256;
		struct entry **v = realloc(t->entries, cap * sizeof(*v));

		if (!v) {
			free(e);
			return demo__fail(FDN_ERROR, "out of memory");
		}
		t->entries = v;
		t->cap = cap;
	}
	/* Load factor at most 1/2. */
	if (2 * (t->n + 1) > t->n_slots &&
			(rc = cache_rehash(t, t->n_slots ? 2 * t->n_slots : 512)) != 0) {
		free(e);
		return rc;
	}
	t->entries[t->n++] = e;
	for (i = hash_key(e->sha256) & (t->n_slots - 1); t->slots[i];
			i = (i + 1) & (t->n_slots - 1))
		;
	t->slots[i] = t->n;
	return 0;
}

/* --- features -------------------------------------------------------- */

static int get_number_or(double *out, const fdn_dataset *ds, const char *path, double dflt)
{
	int rc = fdn_dataset_get_number(out, ds, path, 0);

	if (rc == FDN_ENOTFOUND) {
		*out = dflt;
		return 0;
	}
	return rc;
}

/* Windowed HU, scaled to [0, 1], average-pooled to DEMO_GRID², minus
 * the average patient: centred inputs keep SGD well conditioned (with
 * raw [0, 1] inputs every logit moves with the mean image, and SGD
 * swings between "all nodule" and "all normal"). */
static int features_of(float *x, const fdn_dataset *ds, const char *where,
	const float *atlas)
{
	double rows, cols, bits, sign, spp, slope, icept;
	double sum[DEMO_FEATURES] = { 0 };
	fdn_buf px = FDN_BUF_INIT;
	size_t r, c, pool, i;
	int rc;

	if ((rc = fdn_dataset_get_number(&rows, ds, "Rows", 0)) != 0 ||
			(rc = fdn_dataset_get_number(&cols, ds, "Columns", 0)) != 0 ||
			(rc = fdn_dataset_get_number(&bits, ds, "BitsAllocated", 0)) != 0 ||
			(rc = get_number_or(&sign, ds, "PixelRepresentation", 0)) != 0 ||
			(rc = get_number_or(&spp, ds, "SamplesPerPixel", 1)) != 0 ||
			(rc = get_number_or(&slope, ds, "RescaleSlope", 1)) != 0 ||
			(rc = get_number_or(&icept, ds, "RescaleIntercept", 0)) != 0)
		return demo__lib(rc, where);
	if (bits != 16 || spp != 1 || rows < DEMO_GRID || rows != cols || rows > 4096 ||
			fmod(rows, DEMO_GRID) != 0 || !isfinite(slope) || !isfinite(icept))
		return demo__fail(FDN_EINVALID, "%s: not a square 16-bit grayscale image with "
			"a side that is a multiple of %d", where, DEMO_GRID);
	if ((rc = fdn_dataset_get_bytes(&px, ds, "PixelData")) != 0)
		return demo__lib(rc, where);
	if (px.size != (size_t)rows * (size_t)cols * 2) {
		fdn_buf_dispose(&px);
		return demo__fail(FDN_EINVALID, "%s: %zu bytes of Pixel Data for %.0fx%.0f pixels",
			where, px.size, rows, cols);
	}
	pool = (size_t)rows / DEMO_GRID;
	for (r = 0; r < (size_t)rows; r++) {
		for (c = 0; c < (size_t)cols; c++) {
			const unsigned char *p = (const unsigned char *)px.ptr + 2 * (r * (size_t)cols + c);
			uint16_t u = (uint16_t)(p[0] | (p[1] << 8));
			double v = sign ? (double)(int16_t)u : (double)u;

			sum[(r / pool) * DEMO_GRID + c / pool] += demo__window(v * slope + icept);
		}
	}
	fdn_buf_dispose(&px);
	for (i = 0; i < DEMO_FEATURES; i++)
		x[i] = (float)(sum[i] / (double)(pool * pool) - atlas[i]);
	return 0;
}

static int read_features(demo_trainer *t, struct entry **out, const fdn_cohort_member *m)
{
	fdn_dataset *ds = NULL;
	struct entry *e;
	char where[256];
	int rc;

	if (!m->locator || !*m->locator)
		return demo__fail(FDN_EUNSUPPORTED, "instance %s: the registry's storage gives no "
			"path to read it from", m->sop_instance_uid);
	snprintf(where, sizeof(where), "instance %s", m->sop_instance_uid);
	if ((rc = fdn_dataset_read_file(&ds, m->locator, FDN_READ_FULL)) != 0)
		return demo__lib(rc, where);
	if (!(e = calloc(1, sizeof(*e)))) {
		fdn_dataset_free(ds);
		return demo__fail(FDN_ERROR, "out of memory");
	}
	rc = features_of(e->x, ds, where, t->atlas);
	fdn_dataset_free(ds);
	if (rc != 0) {
		free(e);
		return rc;
	}
	snprintf(e->sha256, sizeof(e->sha256), "%s", m->sha256);
	t->files_read++;
	if ((rc = cache_insert(t, e)) != 0)
		return rc;
	*out = e;
	return 0;
}

/* --- examples -------------------------------------------------------- */

struct example {
	const struct entry *e;
	int y;
};

struct examples {
	struct example *v;
	size_t n, cap;
};

static int label_of(int *y, const fdn_cohort_member *m)
{
	json_error_t err;
	json_t *labels = json_loads(m->labels_json ? m->labels_json : "", 0, &err);
	const char *f = json_string_value(json_object_get(labels, DEMO_LABEL_FINDING));
	int rc = 0;

	if (f && !strcmp(f, "nodule"))
		*y = 1;
	else if (f && !strcmp(f, "none"))
		*y = 0;
	else
		rc = demo__fail(FDN_EINVALID, "instance %s has no label '" DEMO_LABEL_FINDING
			"' = 'nodule' or 'none'", m->sop_instance_uid);
	json_decref(labels);
	return rc;
}

static int push(struct examples *ex, const struct entry *e, int y)
{
	if (ex->n == ex->cap) {
		size_t cap = ex->cap ? 2 * ex->cap : 256;
		struct example *v = realloc(ex->v, cap * sizeof(*v));

		if (!v)
			return demo__fail(FDN_ERROR, "out of memory");
		ex->v = v;
		ex->cap = cap;
	}
	ex->v[ex->n].e = e;
	ex->v[ex->n].y = y;
	ex->n++;
	return 0;
}

static int collect_one(demo_trainer *t, struct examples *ex, fdn_registry *reg,
	const char *cohort, const char *purpose)
{
	fdn_cohort_iter *it = NULL;
	fdn_cohort_member m;
	int rc, y = 0;

	if ((rc = fdn_cohort_iter_new(&it, reg, cohort, purpose)) != 0) {
		char what[160];

		snprintf(what, sizeof(what), "cannot iterate cohort '%s'", cohort);
		return demo__lib(rc, what);
	}
	for (;;) {
		struct entry *e;

		if ((rc = fdn_cohort_iter_next(&m, it)) != 0) {
			/* FDN_ENOTFOUND here is the end, not an error. */
			rc = rc == FDN_ENOTFOUND ? 0 : demo__lib(rc, "cannot iterate the cohort");
			break;
		}
		if (!m.sha256 || strlen(m.sha256) != 64) {
			rc = demo__fail(FDN_EINVALID, "instance %s: no content hash",
				m.sop_instance_uid);
			break;
		}
		if ((rc = label_of(&y, &m)) != 0)
			break;
		if (!(e = cache_find(t, m.sha256)) && (rc = read_features(t, &e, &m)) != 0)
			break;
		if ((rc = push(ex, e, y)) != 0)
			break;
	}
	fdn_cohort_iter_free(it);
	return rc;
}

static int cmp_example(const void *a, const void *b)
{
	const struct example *x = a, *y = b;
	int c = memcmp(x->e->x, y->e->x, sizeof(x->e->x));

	return c ? c : x->y - y->y;
}

/* The examples of @p cohort in every registry, in the order of their
 * features, so that training depends neither on the order storage
 * returns them in nor on the site key (which changes every stored
 * file's UIDs, and so its hash). */
static int collect(demo_trainer *t, struct examples *ex, fdn_registry *const *regs,
	size_t n_regs, const char *cohort, const char *purpose)
{
	size_t i;
	int rc;

	memset(ex, 0, sizeof(*ex));
	if (!t || !regs || !n_regs || !cohort)
		return demo__fail(FDN_EINVALID, "demo trainer: NULL argument");
	for (i = 0; i < n_regs; i++) {
		if (!regs[i]) {
			rc = demo__fail(FDN_EINVALID, "demo trainer: NULL registry");
		} else {
			rc = collect_one(t, ex, regs[i], cohort, purpose);
		}
		if (rc != 0) {
			free(ex->v);
			memset(ex, 0, sizeof(*ex));
			return rc;
		}
	}
	qsort(ex->v, ex->n, sizeof(*ex->v), cmp_example);
	return 0;
}

/* --- the model ------------------------------------------------------- */

/* Parameters: W (row-major [2][256]) then b [2]. */
struct params {
	double p[N_PARAMS];
	size_t order[2];            /* model index of weight, bias */
};

static int check_tensor(const fdn_tensor_info *ti, size_t ndim, uint64_t d0, uint64_t d1)
{
	char shape[128] = "";
	size_t i, at = 0;

	if (ti->dtype == FDN_DTYPE_F32 && ti->ndim == ndim && ti->shape[0] == d0 &&
			(ndim == 1 || ti->shape[1] == d1))
		return 0;
	for (i = 0; i < ti->ndim && at < sizeof(shape) - 24; i++)
		at += (size_t)snprintf(shape + at, sizeof(shape) - at, "%s%llu", i ? ", " : "",
			(unsigned long long)ti->shape[i]);
	return demo__fail(FDN_EINVALID, "demo trainer: tensor '%s' must be F32 %s, not %s [%s]",
		ti->name, ndim == 2 ? "[2, 256]" : "[2]",
		fdn_dtype_name(ti->dtype) ? fdn_dtype_name(ti->dtype) : "?", shape);
}

/* Reads the parameters, refusing a model that is not this demo's. */
static int params_from_model(struct params *out, const fdn_model *model)
{
	size_t i, n = fdn_model_tensor_count(model);
	int seen[2] = { 0, 0 }, rc;

	if (!model)
		return demo__fail(FDN_EINVALID, "demo trainer: no model");
	for (i = 0; i < n; i++) {
		fdn_tensor_info ti = FDN_TENSOR_INFO_INIT;
		float f[DEMO_CLASSES * DEMO_FEATURES];
		size_t k, base;
		int which;

		if ((rc = fdn_model_tensor(&ti, model, i)) != 0)
			return demo__lib(rc, "demo trainer: cannot read the model");
		if (!strcmp(ti.name, DEMO_TENSOR_WEIGHT)) {
			which = 0;
			rc = check_tensor(&ti, 2, DEMO_CLASSES, DEMO_FEATURES);
			base = 0;
		} else if (!strcmp(ti.name, DEMO_TENSOR_BIAS)) {
			which = 1;
			rc = check_tensor(&ti, 1, DEMO_CLASSES, 0);
			base = DEMO_CLASSES * DEMO_FEATURES;
		} else {
			return demo__fail(FDN_EINVALID, "demo trainer: unexpected tensor '%s' (the "
				"model holds '" DEMO_TENSOR_WEIGHT "' and '" DEMO_TENSOR_BIAS
				"' only)", ti.name);
		}
		if (rc != 0)
			return rc;
		/* Tensor data need not be aligned: copy it. */
		memcpy(f, ti.data, ti.nbytes);
		for (k = 0; k < ti.nbytes / sizeof(float); k++) {
			if (!isfinite(f[k]))
				return demo__fail(FDN_EINVALID, "demo trainer: tensor '%s' holds a "
					"NaN or infinite value at index %zu", ti.name, k);
			out->p[base + k] = f[k];
		}
		seen[which] = 1;
		out->order[which] = i;
	}
	if (!seen[0] || !seen[1])
		return demo__fail(FDN_EINVALID, "demo trainer: the model has no tensor '%s'",
			seen[0] ? DEMO_TENSOR_BIAS : DEMO_TENSOR_WEIGHT);
	return 0;
}

/* Rounds @p p to what an F32 model holds. */
static void params_round(struct params *p)
{
	size_t i;

	for (i = 0; i < N_PARAMS; i++)
		p->p[i] = (float)p->p[i];
}

/* A model with @p p in the order of @p like (and its metadata). */
static int model_from_params(fdn_model **out, const struct params *p, const fdn_model *like)
{
	float w[DEMO_CLASSES * DEMO_FEATURES], b[DEMO_CLASSES];
	const uint64_t wshape[2] = { DEMO_CLASSES, DEMO_FEATURES }, bshape[1] = { DEMO_CLASSES };
	fdn_model *m = NULL;
	size_t i, k;
	int rc;

	for (i = 0; i < DEMO_CLASSES * DEMO_FEATURES; i++)
		w[i] = (float)p->p[i];
	for (i = 0; i < DEMO_CLASSES; i++)
		b[i] = (float)p->p[DEMO_CLASSES * DEMO_FEATURES + i];
	if ((rc = fdn_model_new(&m)) != 0)
		return demo__lib(rc, "cannot create a model");
	for (k = 0; k < 2 && rc == 0; k++) {
		int bias = like ? p->order[1] == k : (int)k;

		rc = bias ? fdn_model_add_tensor(m, DEMO_TENSOR_BIAS, FDN_DTYPE_F32, 1, bshape,
				b, sizeof(b)) :
			fdn_model_add_tensor(m, DEMO_TENSOR_WEIGHT, FDN_DTYPE_F32, 2, wshape,
				w, sizeof(w));
	}
	for (i = 0; like && rc == 0 && i < fdn_model_metadata_count(like); i++) {
		const char *key, *value;

		if ((rc = fdn_model_metadata_entry(&key, &value, like, i)) == 0)
			rc = fdn_model_set_metadata(m, key, value);
	}
	if (rc != 0) {
		fdn_model_free(m);
		return demo__lib(rc, "cannot build the model");
	}
	*out = m;
	return 0;
}

int demo_model_init(fdn_model **out, uint64_t seed)
{
	struct params p;
	demo_rng r;
	size_t i;
	int rc;

	if (!out)
		return demo__fail(FDN_EINVALID, "demo_model_init: NULL argument");
	memset(&p, 0, sizeof(p));
	demo_rng_seed(&r, seed, 0x6d6f64656cu /* "model" */, 0, 0);
	for (i = 0; i < DEMO_CLASSES * DEMO_FEATURES; i++)
		p.p[i] = 0.01 * demo_rng_normal(&r);
	if ((rc = model_from_params(out, &p, NULL)) != 0)
		return rc;
	if ((rc = fdn_model_set_metadata(*out, "fednode.demo.model",
			"softmax regression, classes none|nodule")) != 0 ||
			(rc = fdn_model_set_metadata(*out, "fednode.demo.features",
			"CT slice in HU, window [-1000, -400] scaled to [0, 1], "
			"average-pooled to 16x16, minus the demo's average patient")) != 0) {
		fdn_model_free(*out);
		*out = NULL;
		return demo__lib(rc, "cannot set the model's metadata");
	}
	return 0;
}

/* --- training and evaluation ---------------------------------------- */

/* Softmax of the two logits of @p x; returns the cross-entropy for @p y. */
static double forward(double prob[DEMO_CLASSES], const double *p, const float *x, int y)
{
	double z[DEMO_CLASSES], m, s = 0.0;
	size_t k, i;

	for (k = 0; k < DEMO_CLASSES; k++) {
		const double *w = p + k * DEMO_FEATURES;
		double a = p[DEMO_CLASSES * DEMO_FEATURES + k];

		for (i = 0; i < DEMO_FEATURES; i++)
			a += w[i] * x[i];
		z[k] = a;
	}
	m = z[0] > z[1] ? z[0] : z[1];
	for (k = 0; k < DEMO_CLASSES; k++)
		s += exp(z[k] - m);
	for (k = 0; k < DEMO_CLASSES; k++)
		prob[k] = exp(z[k] - m) / s;
	return m + log(s) - z[y];
}

static void measure(demo_metrics *out, const struct params *p, const struct examples *ex)
{
	uint64_t tp = 0, tn = 0, pos = 0, neg = 0;
	double loss = 0.0, prob[DEMO_CLASSES];
	size_t i;

	for (i = 0; i < ex->n; i++) {
		int y = ex->v[i].y, guess;

		loss += forward(prob, p->p, ex->v[i].e->x, y);
		guess = prob[1] > prob[0];
		if (y) {
			pos++;
			tp += guess == 1;
		} else {
			neg++;
			tn += guess == 0;
		}
	}
	out->n = ex->n;
	out->loss = ex->n ? loss / (double)ex->n : NAN;
	out->accuracy = ex->n ? (double)(tp + tn) / (double)ex->n : NAN;
	out->sensitivity = pos ? (double)tp / (double)pos : NAN;
	out->specificity = neg ? (double)tn / (double)neg : NAN;
}

struct sgd {
	unsigned int epochs;
	size_t batch;
	double lr, mu;
	uint64_t seed;
};

static int sgd_config(struct sgd *s, const fdn_train_config *c)
{
	if (!c || c->version < 1)
		return demo__fail(FDN_EINVALID, "demo trainer: no training configuration");
	s->epochs = c->local_epochs ? c->local_epochs : 1;
	s->lr = c->learning_rate > 0 ? c->learning_rate : DEFAULT_LEARNING_RATE;
	s->mu = c->proximal_mu;
	s->seed = c->seed;
	s->batch = DEFAULT_BATCH_SIZE;
	if (!isfinite(s->lr) || !(s->mu >= 0) || !isfinite(s->mu))
		return demo__fail(FDN_EINVALID, "demo trainer: learning rate %g or proximal mu %g "
			"out of range", c->learning_rate, c->proximal_mu);
	if (c->extra_json && *c->extra_json) {
		json_error_t err;
		json_t *o = json_loads(c->extra_json, 0, &err), *b;
		int rc = 0;

		if (!json_is_object(o)) {
			rc = demo__fail(FDN_EINVALID, "demo trainer: the \"train\" settings are not "
				"a JSON object");
		} else if ((b = json_object_get(o, "batch_size")) != NULL) {
			if (!json_is_integer(b) || json_integer_value(b) < 1 ||
					json_integer_value(b) > MAX_BATCH_SIZE)
				rc = demo__fail(FDN_EINVALID, "demo trainer: batch_size must be an "
					"integer from 1 to %d", MAX_BATCH_SIZE);
			else
				s->batch = (size_t)json_integer_value(b);
		}
		json_decref(o);
		return rc;
	}
	return 0;
}

/* Minibatch SGD from @p p, in place. */
static int sgd_run(struct params *p, const struct examples *ex, const struct sgd *s)
{
	double global[N_PARAMS], grad[N_PARAMS], prob[DEMO_CLASSES];
	size_t *order, i, k, f, start;
	unsigned int e;
	demo_rng r;

	if (!(order = malloc(ex->n * sizeof(*order))))
		return demo__fail(FDN_ERROR, "out of memory");
	memcpy(global, p->p, sizeof(global));
	for (i = 0; i < ex->n; i++)
		order[i] = i;
	demo_rng_seed(&r, s->seed, 0x747261696eu /* "train" */, 0, 0);
	for (e = 0; e < s->epochs; e++) {
		for (i = ex->n - 1; i > 0; i--) { /* Fisher-Yates */
			size_t j = demo_rng_below(&r, (uint32_t)(i + 1)), tmp = order[i];

			order[i] = order[j];
			order[j] = tmp;
		}
		for (start = 0; start < ex->n; start += s->batch) {
			size_t end = start + s->batch < ex->n ? start + s->batch : ex->n;
			double scale = 1.0 / (double)(end - start);

			memset(grad, 0, sizeof(grad));
			for (i = start; i < end; i++) {
				const struct example *x = &ex->v[order[i]];

				forward(prob, p->p, x->e->x, x->y);
				for (k = 0; k < DEMO_CLASSES; k++) {
					double g = prob[k] - (x->y == (int)k);
					double *gw = grad + k * DEMO_FEATURES;

					for (f = 0; f < DEMO_FEATURES; f++)
						gw[f] += g * x->e->x[f];
					grad[DEMO_CLASSES * DEMO_FEATURES + k] += g;
				}
			}
			for (k = 0; k < N_PARAMS; k++) {
				double gk = grad[k] * scale + s->mu * (p->p[k] - global[k]);

				p->p[k] -= s->lr * gk;
			}
		}
	}
	free(order);
	for (k = 0; k < N_PARAMS; k++)
		if (!isfinite(p->p[k]))
			return demo__fail(FDN_ERROR, "demo trainer: training diverged (learning "
				"rate %g too high?)", s->lr);
	return 0;
}

int demo_train(fdn_model **out, demo_metrics *metrics, demo_trainer *t,
	const fdn_model *global, fdn_registry *const *regs, size_t n_regs,
	const char *cohort, const fdn_train_config *config)
{
	struct examples ex;
	struct params p;
	struct sgd s;
	int rc;

	memset(&s, 0, sizeof(s));
	if (!out)
		return demo__fail(FDN_EINVALID, "demo_train: NULL argument");
	*out = NULL;
	memset(&p, 0, sizeof(p));
	/* Arguments and the model first: nothing is read for a bad call. */
	if ((rc = sgd_config(&s, config)) != 0 || (rc = params_from_model(&p, global)) != 0)
		return rc;
	if ((rc = collect(t, &ex, regs, n_regs, cohort, "demo: training")) != 0)
		return rc;
	if (ex.n == 0)
		rc = demo__fail(FDN_EINVALID, "demo trainer: cohort '%s' has no member to "
			"train on", cohort);
	else if ((rc = sgd_run(&p, &ex, &s)) == 0) {
		params_round(&p);
		if (metrics)
			measure(metrics, &p, &ex);
		rc = model_from_params(out, &p, global);
	}
	free(ex.v);
	return rc;
}

int demo_evaluate(demo_metrics *out, demo_trainer *t, const fdn_model *model,
	fdn_registry *const *regs, size_t n_regs, const char *cohort)
{
	struct examples ex;
	struct params p;
	int rc;

	if (!out)
		return demo__fail(FDN_EINVALID, "demo_evaluate: NULL argument");
	memset(&p, 0, sizeof(p));
	if ((rc = params_from_model(&p, model)) != 0 ||
			(rc = collect(t, &ex, regs, n_regs, cohort, "demo: evaluation")) != 0)
		return rc;
	measure(out, &p, &ex);
	free(ex.v);
	return 0;
}

int demo_train_central(fdn_model **out, demo_metrics *train_metrics,
	demo_metrics *test_metrics, demo_trainer *t, fdn_registry *const *regs,
	size_t n_regs, unsigned int epochs, double learning_rate, uint64_t seed)
{
	fdn_train_config c;
	fdn_model *init = NULL, *trained = NULL;
	demo_metrics test;
	int rc;

	memset(&c, 0, sizeof(c));
	c.version = FDN_TRAIN_CONFIG_VERSION;
	c.federation = "central";
	c.round = 1;
	c.local_epochs = epochs;
	c.learning_rate = learning_rate;
	c.seed = seed;
	if ((rc = demo_model_init(&init, seed)) == 0 &&
			(rc = demo_train(&trained, train_metrics, t, init, regs, n_regs,
				DEMO_COHORT_TRAIN, &c)) == 0 &&
			(rc = demo_evaluate(&test, t, trained, regs, n_regs, DEMO_COHORT_TEST)) == 0 &&
			test_metrics)
		*test_metrics = test;
	fdn_model_free(init);
	if (rc == 0 && out)
		*out = trained;
	else
		fdn_model_free(trained);
	return rc;
}

/* --- the fdn_trainer vtable ------------------------------------------ */

static int put_metrics(fdn_buf *out, const demo_metrics *m)
{
	char text[256];
	int n;

	if (!out)
		return 0;
	if (m->n == 0)
		n = snprintf(text, sizeof(text), "{}");
	else if (isnan(m->sensitivity) || isnan(m->specificity))
		n = snprintf(text, sizeof(text), "{\"loss\": %.6g, \"accuracy\": %.6g}",
			m->loss, m->accuracy);
	else
		n = snprintf(text, sizeof(text), "{\"loss\": %.6g, \"accuracy\": %.6g, "
			"\"sensitivity\": %.6g, \"specificity\": %.6g}", m->loss, m->accuracy,
			m->sensitivity, m->specificity);
	if (fdn_buf_set(out, text, (size_t)n) != 0)
		return demo__fail(FDN_ERROR, "out of memory");
	return 0;
}

static int iface_train(void *payload, const fdn_model *global, fdn_registry *registry,
	const char *cohort, const fdn_train_config *config, fdn_model **out,
	uint64_t *n_examples, fdn_buf *metrics)
{
	demo_metrics m;
	int rc;

	if (!n_examples)
		return demo__fail(FDN_EINVALID, "demo trainer: NULL argument");
	if ((rc = demo_train(out, &m, payload, global, &registry, 1, cohort, config)) != 0) {
		/* The client's error message carries this (fedavg.h). */
		fdn_buf_set(metrics, demo_error_message(), strlen(demo_error_message()));
		return rc;
	}
	*n_examples = m.n;
	if ((rc = put_metrics(metrics, &m)) != 0) {
		fdn_model_free(*out);
		*out = NULL;
	}
	return rc;
}

static int iface_evaluate(void *payload, const fdn_model *model, fdn_registry *registry,
	const char *cohort, const fdn_train_config *config, uint64_t *n_examples,
	fdn_buf *metrics)
{
	demo_metrics m;
	int rc;

	(void)config;
	if (!n_examples)
		return demo__fail(FDN_EINVALID, "demo trainer: NULL argument");
	if (((demo_trainer *)payload)->eval_cohort[0])
		cohort = ((demo_trainer *)payload)->eval_cohort;
	if ((rc = demo_evaluate(&m, payload, model, &registry, 1, cohort)) != 0) {
		fdn_buf_set(metrics, demo_error_message(), strlen(demo_error_message()));
		return rc;
	}
	*n_examples = m.n;
	return put_metrics(metrics, &m);
}

static const fdn_trainer demo_iface = {
	FDN_TRAINER_VERSION, iface_train, iface_evaluate
};

int demo_trainer_set_eval_cohort(demo_trainer *t, const char *cohort)
{
	if (!t || (cohort && strlen(cohort) >= sizeof(t->eval_cohort)))
		return demo__fail(FDN_EINVALID, "demo_trainer_set_eval_cohort: bad argument");
	snprintf(t->eval_cohort, sizeof(t->eval_cohort), "%s", cohort ? cohort : "");
	return 0;
}

const fdn_trainer *demo_trainer_iface(void)
{
	return &demo_iface;
}
