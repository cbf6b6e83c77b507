/*
 * Aggregation of ResNet-50-sized updates (25,557,032 F32 parameters, the
 * weights and batch-norm parameters of torchvision's ResNet-50) from
 * K = 10 and K = 50 sites, all measured in one run:
 *
 *  - the STREAM triad a[i] = b[i] + s*c[i] on three 512 MiB arrays (far
 *    past this machine's caches), one core: the bandwidth a fold can hope
 *    for;
 *  - fdn_aggregator_add on mapped, pre-faulted models (in memory) and
 *    fdn_aggregator_add_file on the same files (in the page cache), one
 *    update at a time, and the same through fdn_aggregator_add_batch and
 *    fdn_aggregator_add_files, then finish / finish_file: seconds, GB/s
 *    of update bytes folded, memory traffic as a fraction of the triad's;
 *  - the split of an add between its check pass and its fold (internal
 *    kernels called directly);
 *  - peak RSS (VmHWM) of a fresh child process aggregating K = 50 files,
 *    over its baseline (library and global model loaded), three ways;
 *  - a numpy re-implementation of Flower's aggregate() with the same K
 *    and sizes (tests/bench/bench_aggregate_numpy.py, Debian's python3),
 *    its time and peak RSS.
 *
 * usage: bench_aggregate [PYTHON SCRIPT]   (meson passes both)
 * FDN_BENCH_QUICK=1 shrinks the model 8x and the triad, to try the harness.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "fedavg/fedavg_private.h"
#include "fednode/fedavg.h"
#include "fednode/fednode.h"
#include "model/model_private.h"

#define MAX_TENSORS 200
#define MAX_K 50

static const int ks[] = { 10, 50 };

typedef struct shape {
	size_t ndim;
	uint64_t dims[4];
} shape;

static shape shapes[MAX_TENSORS];
static size_t nshapes;
static uint64_t params;
static int scale = 1;

static void die(const char *what)
{
	fprintf(stderr, "bench_aggregate: %s: %s\n", what, fdn_error_last()->message);
	exit(1);
}

static void push(size_t ndim, uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
	shape *s = &shapes[nshapes++];
	uint64_t n = 1;

	s->ndim = ndim;
	s->dims[0] = a;
	s->dims[1] = b;
	s->dims[2] = c;
	s->dims[3] = d;
	for (size_t i = 0; i < ndim; i++)
		n *= s->dims[i];
	params += n;
}

static uint64_t ch(uint64_t n)
{
	return n / (uint64_t)scale ? n / (uint64_t)scale : 1;
}

/* The same list as bench_aggregate_numpy.py's resnet50_shapes(). */
static void resnet50(void)
{
	static const uint64_t planes_of[4] = { 64, 128, 256, 512 };
	static const int blocks_of[4] = { 3, 4, 6, 3 };
	uint64_t inplanes = ch(64);

	push(4, ch(64), 3, 7, 7);
	push(1, ch(64), 0, 0, 0);
	push(1, ch(64), 0, 0, 0);
	for (int l = 0; l < 4; l++) {
		uint64_t p = ch(planes_of[l]);

		for (int b = 0; b < blocks_of[l]; b++) {
			push(4, p, inplanes, 1, 1);
			push(1, p, 0, 0, 0);
			push(1, p, 0, 0, 0);
			push(4, p, p, 3, 3);
			push(1, p, 0, 0, 0);
			push(1, p, 0, 0, 0);
			push(4, p * 4, p, 1, 1);
			push(1, p * 4, 0, 0, 0);
			push(1, p * 4, 0, 0, 0);
			if (b == 0) {
				push(4, p * 4, inplanes, 1, 1);
				push(1, p * 4, 0, 0, 0);
				push(1, p * 4, 0, 0, 0);
			}
			inplanes = p * 4;
		}
	}
	push(2, 1000, inplanes, 0, 0);
	push(1, 1000, 0, 0, 0);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static float rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (float)((double)(rng_state >> 40) * 0x1p-24 - 0.5) * 0.1f;
}

static fdn_model *random_model(void)
{
	fdn_model *m;
	float *buf;
	char name[32];

	if (fdn_model_new(&m) < 0)
		die("fdn_model_new");
	buf = malloc(sizeof(float) * 1000 * 2048);
	for (size_t i = 0; i < nshapes; i++) {
		uint64_t n = 1;

		for (size_t d = 0; d < shapes[i].ndim; d++)
			n *= shapes[i].dims[d];
		buf = realloc(buf, sizeof(float) * n);
		for (uint64_t j = 0; j < n; j++)
			buf[j] = rnd();
		snprintf(name, sizeof(name), "p%03zu", i);
		if (fdn_model_add_tensor(m, name, FDN_DTYPE_F32, shapes[i].ndim, shapes[i].dims,
				buf, n * sizeof(float)) < 0)
			die("fdn_model_add_tensor");
	}
	free(buf);
	return m;
}

/* --- /proc ------------------------------------------------------------------- */

static long long status_bytes(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long long v = -1;
	size_t n = strlen(key);

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, n) == 0 && line[n] == ':')
			v = atoll(line + n + 1) * 1024;
	fclose(f);
	return v;
}

static void reset_peak(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");

	if (f) {
		fputs("5", f);
		fclose(f);
	}
}

/* Touches every page so that timing does not include page faults. */
static void prefault(const fdn_model *m)
{
	volatile unsigned char sink = 0;

	for (size_t i = 0; i < m->ntensors; i++)
		for (size_t o = 0; o < m->tensors[i].nbytes; o += 4096)
			sink ^= ((const unsigned char *)m->tensors[i].data)[o];
	(void)sink;
}

/* --- the triad ----------------------------------------------------------------- */

static double triad(size_t n, int reps, double *best_out)
{
	double *a = malloc(n * sizeof(double)), *b = malloc(n * sizeof(double));
	double *c = malloc(n * sizeof(double)), s = 3.0, t[16], best = 1e30;
	volatile double sink;

	if (!a || !b || !c) {
		fprintf(stderr, "bench_aggregate: no memory for the triad\n");
		exit(1);
	}
	for (size_t i = 0; i < n; i++) {
		a[i] = 0;
		b[i] = 1.0 + (double)(i & 7);
		c[i] = 2.0;
	}
	for (int r = 0; r < reps; r++) {
		double t0 = bench_now();

		for (size_t i = 0; i < n; i++)
			a[i] = b[i] + s * c[i];
		t[r] = bench_now() - t0;
		sink = a[r];
		if (t[r] < best)
			best = t[r];
	}
	(void)sink;
	free(a);
	free(b);
	free(c);
	*best_out = 24.0 * (double)n / best / 1e9;
	return 24.0 * (double)n / bench_median(t, reps) / 1e9;
}

/* --- the library ---------------------------------------------------------------- */

static char dir[256];

static void path_of(char *out, size_t size, int k)
{
	if (k < 0)
		snprintf(out, size, "%s/global.safetensors", dir);
	else
		snprintf(out, size, "%s/u%02d.safetensors", dir, k);
}

typedef struct timing {
	double add, finish;   /* medians, seconds */
	double cpu_share;     /* CPU seconds / wall seconds over the adds */
} timing;

/* How the updates go in. */
enum { M_ADD, M_ADD_FILE, M_BATCH, M_FILES, NMODES };
static const char *const mode_names[NMODES] = {
	"add", "add_file", "add_batch", "add_files"
};

static bool mode_files(int mode)
{
	return mode == M_ADD_FILE || mode == M_FILES;
}

/* This process's CPU time: on a shared machine, wall time minus this is
 * time the scheduler gave to someone else. */
static double cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
		(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static char paths[MAX_K][300];
static const char *path_ptrs[MAX_K];
static double weights[MAX_K];

/* Adds updates 0..k-1 the way @p mode says. */
static void add_updates(fdn_aggregator *agg, fdn_model *const *models, int k, int mode)
{
	int rc = 0;

	switch (mode) {
	case M_ADD:
		for (int i = 0; rc == 0 && i < k; i++)
			rc = fdn_aggregator_add(agg, models[i], weights[i], FDN_UPDATE_WEIGHTS);
		break;
	case M_ADD_FILE:
		for (int i = 0; rc == 0 && i < k; i++)
			rc = fdn_aggregator_add_file(agg, paths[i], weights[i], FDN_UPDATE_WEIGHTS);
		break;
	case M_BATCH:
		rc = fdn_aggregator_add_batch(agg, (size_t)k, (const fdn_model *const *)models,
			weights, NULL, NULL);
		break;
	default:
		rc = fdn_aggregator_add_files(agg, (size_t)k, path_ptrs, weights, NULL, NULL);
		break;
	}
	if (rc < 0)
		die(mode_names[mode]);
}

static timing run_lib(const fdn_model *global, fdn_model *const *models, int k,
	int mode, int reps)
{
	double add[16], fin[16], cpu = 0, wall = 0;
	char out[300];
	timing r;

	snprintf(out, sizeof(out), "%s/next.safetensors", dir);
	for (int rep = 0; rep < reps; rep++) {
		fdn_aggregator *agg;
		fdn_model *next;
		double t0 = bench_now(), c0 = cpu_now(), t1;

		if (fdn_aggregator_new(&agg, global, NULL, NULL) < 0)
			die("fdn_aggregator_new");
		add_updates(agg, models, k, mode);
		t1 = bench_now();
		cpu += cpu_now() - c0;
		wall += t1 - t0;
		if ((mode_files(mode) ? fdn_aggregator_finish_file(agg, out, NULL)
				      : fdn_aggregator_finish(agg, &next, NULL)) < 0)
			die("finish");
		fin[rep] = bench_now() - t1;
		add[rep] = t1 - t0;
		if (!mode_files(mode))
			fdn_model_free(next);
		fdn_aggregator_free(agg);
	}
	r.add = bench_median(add, reps);
	r.finish = bench_median(fin, reps);
	r.cpu_share = cpu / wall;
	return r;
}

/* The check pass and the fold of an add, timed apart on @p k models. */
static void split(fdn_model *const *models, int k, double *check_s, double *fold_s)
{
	double *sums = malloc(params * sizeof(double)), c[8], f[8];
	volatile size_t sink = 0;

	for (int rep = 0; rep < 3; rep++) {
		double t0 = bench_now(), t1;

		for (int i = 0; i < k; i++)
			for (size_t t = 0; t < models[i]->ntensors; t++)
				sink += fdn_fedavg__find_nonfinite(models[i]->tensors[t].data,
					FDN_DTYPE_F32, models[i]->tensors[t].nbytes / 4);
		t1 = bench_now();
		for (int i = 0; i < k; i++) {
			double *s = sums;

			for (size_t t = 0; t < models[i]->ntensors; t++) {
				size_t n = models[i]->tensors[t].nbytes / 4;

				fdn_fedavg__fold(s, models[i]->tensors[t].data, FDN_DTYPE_F32, n,
					weights[i], i == 0);
				s += n;
			}
		}
		f[rep] = bench_now() - t1;
		c[rep] = t1 - t0;
	}
	(void)sink;
	free(sums);
	*check_s = bench_median(c, 3) / k;
	*fold_s = bench_median(f, 3) / k;
}

/* Bytes moved to and from memory to add k updates, STREAM's convention
 * (no write-allocate traffic counted).  One by one, each update is read
 * by the check pass and by the fold (4 + 4 bytes a parameter) and the
 * sums are written by the first (8) and read and written by the others
 * (16).  In a batch each update is read once (4) and the sums, kept in
 * cache block by block, are written once (8). */
static double traffic(int k, int mode)
{
	if (mode == M_BATCH || mode == M_FILES)
		return (double)params * (4.0 * k + 8.0);
	return (double)params * (16.0 + 24.0 * (k - 1));
}

/* --- child processes ------------------------------------------------------------ */

static void setup_names(void)
{
	for (int k = 0; k < MAX_K; k++) {
		path_of(paths[k], sizeof(paths[k]), k);
		path_ptrs[k] = paths[k];
		weights[k] = 50.0 + (double)((k * 37) % 450);
	}
}

static int rss_child(const char *mode, const char *d, int k)
{
	fdn_model *global;
	fdn_aggregator *agg;
	long long base, peak;
	char path[300];

	snprintf(dir, sizeof(dir), "%s", d);
	setup_names();
	if (fdn_init() < 0)
		die("fdn_init");
	path_of(path, sizeof(path), -1);
	if (fdn_model_read_file(&global, path, 0) < 0)
		die("read global");
	prefault(global);
	base = status_bytes("VmRSS");
	reset_peak();
	if (fdn_aggregator_new(&agg, global, NULL, NULL) < 0)
		die("fdn_aggregator_new");
	if (strcmp(mode, "memory") == 0) {
		for (int i = 0; i < k; i++) {
			fdn_model *u;

			if (fdn_model_read_file(&u, paths[i], 0) < 0 ||
			    fdn_aggregator_add(agg, u, weights[i], 0) < 0)
				die("add");
			fdn_model_free(u);
		}
	} else {
		add_updates(agg, NULL, k, strcmp(mode, "files") == 0 ? M_FILES : M_ADD_FILE);
	}
	snprintf(path, sizeof(path), "%s/next-rss.safetensors", dir);
	if (strcmp(mode, "memory") == 0) {
		fdn_model *next;

		if (fdn_aggregator_finish(agg, &next, NULL) < 0)
			die("finish");
		fdn_model_free(next);
	} else if (fdn_aggregator_finish_file(agg, path, NULL) < 0) {
		die("finish_file");
	}
	peak = status_bytes("VmHWM");
	printf("rss base=%lld peak=%lld\n", base, peak);
	fdn_aggregator_free(agg);
	fdn_model_free(global);
	fdn_shutdown();
	return 0;
}

/* Runs @p cmd and returns its first line of output that starts with
 * @p prefix (static buffer), or NULL. */
static const char *run_line(const char *cmd, const char *prefix)
{
	static char line[1024];
	char buf[1024];
	FILE *p = popen(cmd, "r");
	const char *found = NULL;

	if (!p)
		return NULL;
	while (fgets(buf, sizeof(buf), p))
		if (!found && strncmp(buf, prefix, strlen(prefix)) == 0) {
			snprintf(line, sizeof(line), "%s", buf);
			found = line;
		}
	return pclose(p) == 0 ? found : NULL;
}

static double field(const char *line, const char *key)
{
	const char *p = line ? strstr(line, key) : NULL;

	return p ? atof(p + strlen(key)) : -1;
}

/* --- main ------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	static const char *const rss_modes[3] = { "file", "files", "memory" };
	static const char *const rss_what[3] = {
		"add_file + finish_file", "add_files + finish_file",
		"add (mapped, one at a time) + finish"
	};
	const char *python = argc > 2 ? argv[1] : "/usr/bin/python3";
	const char *script = argc > 2 ? argv[2] : NULL;
	bool quick = getenv("FDN_BENCH_QUICK") != NULL;
	size_t triad_n = quick ? (size_t)8 << 20 : (size_t)64 << 20;
	fdn_model *global, *models[MAX_K];
	double triad_med, triad_best, model_mb;
	timing tm[2][NMODES];
	double check_s, fold_s, np_t[2] = { -1, -1 }, np_peak[2] = { -1, -1 };
	double np_inputs[2] = { 0, 0 }, np_base[2] = { 0, 0 }, np_first[2] = { -1, -1 };
	long long rss_base[3], rss_peak[3];
	char path[300], self[PATH_MAX], cmd[2048];
	ssize_t sl;

	if (argc == 5 && strcmp(argv[1], "--rss-child") == 0)
		return rss_child(argv[2], argv[3], atoi(argv[4]));
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (quick)
		scale = 8;
	resnet50();
	model_mb = (double)params * 4 / 1e6;
	if (fdn_init() < 0)
		die("fdn_init");
	printf("aggregation of %" PRIu64 " F32 parameters in %zu tensors (%.1f MB a model)%s\n",
		params, nshapes, model_mb, quick ? " [quick]" : "");

	/* 1. The triad, before anything else holds memory. */
	triad_med = triad(triad_n, 7, &triad_best);
	printf("STREAM triad, 3 x %zu MiB, one core: median %.2f GB/s, best %.2f GB/s\n",
		triad_n * 8 >> 20, triad_med, triad_best);

	/* 2. The files: global model and K updates, in the page cache. */
	snprintf(dir, sizeof(dir), "/tmp/fdn-bench-agg-XXXXXX");
	if (!mkdtemp(dir))
		die("mkdtemp");
	setup_names();
	{
		double t0 = bench_now();

		for (int k = -1; k < MAX_K; k++) {
			fdn_model *m = random_model();

			path_of(path, sizeof(path), k);
			if (fdn_model_write_file(m, path) < 0)
				die("write");
			fdn_model_free(m);
		}
		printf("wrote %d update files + the global model in %.1f s\n", MAX_K,
			bench_now() - t0);
	}
	path_of(path, sizeof(path), -1);
	if (fdn_model_read_file(&global, path, 0) < 0)
		die("read global");
	prefault(global);
	for (int k = 0; k < MAX_K; k++) {
		if (fdn_model_read_file(&models[k], paths[k], 0) < 0)
			die("read update");
		prefault(models[k]);
	}

	/* 3. The library, every way in, K = 10 then 50. */
	for (int i = 0; i < 2; i++) {
		int k = ks[i], reps = k > 10 ? 3 : 5;
		double ub = (double)k * (double)params * 4;

		for (int m = 0; m < NMODES; m++) {
			timing *t = &tm[i][m];

			*t = run_lib(global, models, k, m, reps);
			printf("K=%2d %-9s: %6.3f s (%5.1f ms/update), %5.2f GB/s of updates, "
				"traffic %5.2f GB/s = %3.0f%% of triad; finish%s %.3f s; cpu %.0f%%\n",
				k, mode_names[m], t->add, t->add / k * 1e3, ub / t->add / 1e9,
				traffic(k, m) / t->add / 1e9,
				100 * traffic(k, m) / t->add / 1e9 / triad_med,
				mode_files(m) ? "_file" : "", t->finish, 100 * t->cpu_share);
		}
	}
	{
		/* Again, closer in time to the folds: on a shared machine the
		 * bandwidth a core gets drifts.  The larger median is the
		 * reference (the conservative choice for "fraction of"). */
		double med2, best2;

		med2 = triad(triad_n, 7, &best2);
		printf("STREAM triad again: median %.2f GB/s, best %.2f GB/s%s\n", med2, best2,
			med2 > triad_med ? " (the reference from here on)" : "");
		if (med2 > triad_med)
			triad_med = med2;
	}
	split(models, 10, &check_s, &fold_s);
	printf("one update, in memory: check pass %.1f ms (%.2f GB/s read), fold %.1f ms "
		"(%.2f GB/s traffic = %.0f%% of triad)\n", check_s * 1e3,
		(double)params * 4 / check_s / 1e9, fold_s * 1e3,
		(double)params * 20 / fold_s / 1e9,
		100 * (double)params * 20 / fold_s / 1e9 / triad_med);
	for (int k = 0; k < MAX_K; k++)
		fdn_model_free(models[k]);

	/* 4. Peak RSS of a fresh process at K = 50. */
	sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[sl > 0 ? sl : 0] = '\0';
	for (int i = 0; i < 3; i++) {
		const char *line;

		snprintf(cmd, sizeof(cmd), "'%.1500s' --rss-child %s '%.300s' %d", self,
			rss_modes[i], dir, MAX_K);
		line = run_line(cmd, "rss ");
		rss_base[i] = (long long)field(line, "base=");
		rss_peak[i] = (long long)field(line, "peak=");
		printf("peak RSS, K=%d, %s: %.1f MB over a baseline of %.1f MB = %.2fx the "
			"model (VmHWM %.1f MB)\n", MAX_K, rss_what[i],
			(double)(rss_peak[i] - rss_base[i]) / 1e6, (double)rss_base[i] / 1e6,
			(double)(rss_peak[i] - rss_base[i]) / 1e6 / model_mb,
			(double)rss_peak[i] / 1e6);
	}
	fdn_model_free(global);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_aggregate: could not remove %s\n", dir);

	/* 5. numpy, Flower style, with the files gone from the page cache. */
	for (int i = 0; script && i < 2; i++) {
		const char *line;

		snprintf(cmd, sizeof(cmd), "'%s' '%s' %d 3 %d", python, script, ks[i], scale);
		line = run_line(cmd, "numpy ");
		if (!line) {
			printf("numpy K=%d: failed\n", ks[i]);
			continue;
		}
		np_t[i] = field(line, "median_s=");
		np_peak[i] = field(line, "peak_rss=");
		np_base[i] = field(line, "base_rss=");
		np_inputs[i] = field(line, "inputs_bytes=");
		{
			const char *runs = strstr(line, "runs_s=");
			int len = runs ? (int)strcspn(runs + 7, " \n") : 0;

			np_first[i] = runs ? atof(runs + 7) : -1;

			printf("numpy (Flower-style) K=%2d: %7.3f s (median of 3 runs: %.*s s; the "
				"first faults its arrays in); peak RSS %.2f GB (inputs %.2f GB, "
				"%.2f GB over them)\n", ks[i], np_t[i], len, runs ? runs + 7 : "",
				np_peak[i] / 1e9, np_inputs[i] / 1e9,
				(np_peak[i] - np_base[i]) / 1e9);
		}
	}

	/* 6. Summary against the targets. */
	printf("\nsummary (same run; medians; times are add + finish):\n");
	for (int i = 0; i < 2; i++) {
		if (np_t[i] <= 0)
			continue;
		printf("  K=%2d: numpy %.3f s;", ks[i], np_t[i]);
		for (int m = 0; m < NMODES; m++) {
			double t = tm[i][m].add + tm[i][m].finish;

			printf(" %s %.3f s (x%.1f)", mode_names[m], t, np_t[i] / t);
		}
		printf("\n");
	}
	if (np_t[1] > 0)
		for (int m = 0; m < NMODES; m++) {
			double t = tm[1][m].add + tm[1][m].finish, r = np_t[1] / t;

			printf("  target >= 5x numpy at K=50, %-9s: x%.1f %s (x%.1f against numpy's "
				"first run)\n", mode_names[m], r, r >= 5 ? "met" : "NOT met",
				np_first[1] / t);
		}
	for (int m = 0; m < NMODES; m++) {
		double f = traffic(50, m) / tm[1][m].add / 1e9 / triad_med;

		printf("  target >= 50%% of triad bandwidth at K=50, %-9s: %.0f%% %s\n",
			mode_names[m], 100 * f, f >= 0.5 ? "met" : "NOT met");
	}
	for (int i = 0; i < 2; i++) {
		double x = (double)(rss_peak[i] - rss_base[i]) / 1e6 / model_mb;

		printf("  target peak RSS <= 3x model at K=50, %s: %.2fx %s\n", rss_what[i], x,
			x <= 3 ? "met" : "NOT met");
	}
	fdn_shutdown();
	return 0;
}
