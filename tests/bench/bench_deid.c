/*
 * De-identification benchmark: 2,000 generated CT files (512x512x16-bit,
 * full headers with PHI, sequences and a private block) read, de-identified
 * (Basic Profile + Retain Longitudinal Temporal Information with Modified
 * Dates) and written, file by file, with fdn_dataset_write_file() (atomic:
 * fsync of the file and of its folder), on one and on two threads, against
 * gdcmanon (GDCM's 2008 Basic Profile, original attributes encrypted to a
 * self-signed certificate) and against cp -r, in the same run, on the same
 * corpus, the page cache warm and every output on tmpfs (/dev/shm).
 * Target (the de-identification issue): no slower than gdcmanon while
 * applying a table six times larger; moonshot: within 2x of cp.
 *
 *   bench_deid                          the benchmark (meson test --benchmark)
 *   bench_deid corpus DIR [FILES]       only write the corpus
 *   bench_deid pipeline IN OUT [THREADS] one timed pass, e.g. under perf
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define BENCH_NAME "bench_deid"
#include "bench.h"
#include "corpus.h"

#define FILES 2000
#define SERIES_FILES 250
#define MIN_FILES 200
#define REPS 7
#define MAX_THREADS 2
/* 512 x 512 x 2 bytes of Pixel Data and the header: what one file takes
 * on tmpfs, before the corpus exists to be measured. */
#define FILE_BYTES_ESTIMATE 530000.0
#define OUT_FS "/dev/shm"

static char workdir[256]; /* the corpus and the certificate (disk, cached) */
static char outdir[256];  /* the outputs (tmpfs) */

static void remove_tree(char *dir)
{
	char cmd[300];

	if (!dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, BENCH_NAME ": could not remove %s\n", dir);
	dir[0] = '\0';
}

static void cleanup(void)
{
	remove_tree(outdir);
	remove_tree(workdir);
}

static void shell(const char *cmd)
{
	if (system(cmd) != 0)
		fail("'%s' failed", cmd);
}

/* ------------------------------------------------------------ the pipeline */

/* Input and output paths of every file, in walk order. */
typedef struct file_list {
	char **in, **out;
	size_t n, cap;
} file_list;

static char *dup_path(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *s = malloc(n);

	if (!s)
		fail("out of memory");
	snprintf(s, n, "%s/%s", a, b);
	return s;
}

static void list_add(file_list *l, char *in, char *out)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		char **a = realloc(l->in, cap * sizeof(*a)), **b;

		if (!a)
			fail("out of memory");
		l->in = a;
		if (!(b = realloc(l->out, cap * sizeof(*b))))
			fail("out of memory");
		l->out = b;
		l->cap = cap;
	}
	l->in[l->n] = in;
	l->out[l->n] = out;
	l->n++;
}

static void list_free(file_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->in[i]);
		free(l->out[i]);
	}
	free(l->in);
	free(l->out);
	memset(l, 0, sizeof(*l));
}

/* Walks @p in as cp -r and gdcmanon -r do, creating the mirror folders
 * under @p out: part of the timed work, as it is theirs. */
static void walk(file_list *l, const char *in, const char *out)
{
	DIR *d = opendir(in);
	struct dirent *e;

	if (!d)
		fail("opendir %s: %s", in, strerror(errno));
	make_dir(out);
	while ((e = readdir(d))) {
		char *src, *dst;
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		src = dup_path(in, e->d_name);
		dst = dup_path(out, e->d_name);
		if (stat(src, &st) != 0)
			fail("stat %s: %s", src, strerror(errno));
		if (S_ISDIR(st.st_mode)) {
			walk(l, src, dst);
			free(src);
			free(dst);
		} else {
			list_add(l, src, dst);
		}
	}
	closedir(d);
}

typedef struct worker {
	const file_list *files;
	const fdn_deid_profile *profile;
	size_t first, stride;
	int rc;
	char message[512]; /* the error is thread-local: copied here */
} worker;

static int deid_one(const fdn_deid_profile *profile, const char *in, const char *out)
{
	fdn_dataset *ds = NULL;
	int rc;

	if ((rc = fdn_dataset_read_file(&ds, in, FDN_READ_FULL)) == 0 &&
	    (rc = fdn_deid_apply(NULL, profile, ds)) == 0)
		rc = fdn_dataset_write_file(ds, out, FDN_WRITE_DEFAULT);
	fdn_dataset_free(ds);
	return rc;
}

static void *work(void *arg)
{
	worker *w = arg;
	size_t i;

	for (i = w->first; i < w->files->n; i += w->stride) {
		if ((w->rc = deid_one(w->profile, w->files->in[i], w->files->out[i])) != 0) {
			snprintf(w->message, sizeof(w->message), "%s: %s",
				w->files->in[i], fdn_error_last()->message);
			break;
		}
	}
	return NULL;
}

/* One pass over @p in into @p out on @p threads threads, each taking every
 * threads-th file; the profile is shared.  Returns the files done. */
static size_t pipeline(const fdn_deid_profile *profile, const char *in, const char *out,
	int threads)
{
	file_list files = { 0 };
	worker w[MAX_THREADS];
	pthread_t tid[MAX_THREADS];
	size_t n;
	int k;

	walk(&files, in, out);
	for (k = 0; k < threads; k++) {
		w[k].files = &files;
		w[k].profile = profile;
		w[k].first = (size_t)k;
		w[k].stride = (size_t)threads;
		w[k].rc = 0;
		w[k].message[0] = '\0';
	}
	for (k = 1; k < threads; k++)
		if (pthread_create(&tid[k], NULL, work, &w[k]) != 0)
			fail("pthread_create");
	work(&w[0]);
	for (k = 1; k < threads; k++)
		pthread_join(tid[k], NULL);
	for (k = 0; k < threads; k++)
		if (w[k].rc != 0) {
			fprintf(stderr, BENCH_NAME ": %s\n", w[k].message);
			fail("de-identification failed (%d)", w[k].rc);
		}
	n = files.n;
	list_free(&files);
	return n;
}

static fdn_deid_profile *make_profile(void)
{
	static unsigned char key[FDN_DEID_KEY_BYTES]; /* a benchmark's key: no secret */
	fdn_deid_options o;
	fdn_deid_profile *p = NULL;
	size_t i;

	for (i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)(i * 37 + 11);
	if (fdn_deid_options_init(&o, FDN_DEID_OPTIONS_VERSION) != 0)
		fail("fdn_deid_options_init");
	o.options = FDN_DEID_RETAIN_LONG_MODIFIED_DATES;
	o.key = key;
	if (fdn_deid_profile_new(&p, &o) != 0)
		fail("fdn_deid_profile_new");
	return p;
}

/* ------------------------------------------------------------ timed runs */

typedef enum kind { CP, GDCMANON, PIPELINE } kind;

typedef struct method {
	const char *name;
	kind kind;
	int threads;       /* for PIPELINE */
	double wall[REPS], cpu[REPS];
} method;

typedef struct bench {
	const fdn_deid_profile *profile;
	const char *in, *cert;
	long files;
} bench;

static double cpu_seconds(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
		(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static long count_files(const char *dir)
{
	char cmd[512], line[64];
	FILE *p;
	long n = -1;

	snprintf(cmd, sizeof(cmd), "find '%s' -type f | wc -l", dir);
	if (!(p = popen(cmd, "r")))
		fail("popen: %s", strerror(errno));
	if (fgets(line, sizeof(line), p))
		n = strtol(line, NULL, 10);
	pclose(p);
	return n;
}

/* Our output must really be de-identified: spot-check one file. */
static void check_output(const char *dir)
{
	char path[512];
	fdn_dataset *ds = NULL;
	fdn_buf b = FDN_BUF_INIT;

	snprintf(path, sizeof(path), "%s/p0000/s01/000001.dcm", dir);
	if (fdn_dataset_read_file(&ds, path, FDN_READ_HEADER_ONLY) != 0)
		fail("cannot read back %s", path);
	if (fdn_dataset_get_string(&b, ds, "PatientName") != 0 ||
	    strncmp((const char *)b.ptr, "FDN-", 4) != 0)
		fail("%s: PatientName was not replaced", path);
	if (fdn_dataset_contains(ds, "(0029,1010)") != 0 ||
	    fdn_dataset_contains(ds, "InstitutionName") != 0)
		fail("%s: a private or identifying attribute survived", path);
	if (fdn_dataset_get_string(&b, ds, "PatientIdentityRemoved") != 0 ||
	    strcmp((const char *)b.ptr, "YES") != 0)
		fail("%s: not marked as de-identified", path);
	fdn_buf_dispose(&b);
	fdn_dataset_free(ds);
}

/* Runs @p m once into a fresh output folder, then removes the output
 * (untimed). */
static void run_once(method *m, int rep, const bench *b)
{
	char out[300], cmd[1024];
	int who = m->kind == PIPELINE ? RUSAGE_SELF : RUSAGE_CHILDREN;
	double t, c;
	long n = 0;

	snprintf(out, sizeof(out), "%s/out", outdir);
	if (m->kind == CP) {
		snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s'", b->in, out);
	} else if (m->kind == GDCMANON) {
		/* gdcmanon writes into an existing folder, cp -r creates one */
		make_dir(out);
		snprintf(cmd, sizeof(cmd), "gdcmanon -e -c '%s' -i '%s' -o '%s' -r "
			"> /dev/null 2>&1", b->cert, b->in, out);
	}
	c = cpu_seconds(who);
	t = bench_now();
	if (m->kind == PIPELINE)
		n = (long)pipeline(b->profile, b->in, out, m->threads);
	else
		shell(cmd);
	m->wall[rep] = bench_now() - t;
	m->cpu[rep] = cpu_seconds(who) - c;
	if (m->kind != PIPELINE)
		n = count_files(out);
	if (n != b->files)
		fail("%s produced %ld files, not %ld", m->name, n, b->files);
	if (m->kind == PIPELINE && rep == 0)
		check_output(out);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", out);
	shell(cmd);
}

static void report(method *m, long files, double gdcm, double cp)
{
	double wall = bench_median(m->wall, REPS), cpu = bench_median(m->cpu, REPS);

	printf("  %-26s median %7.3f s %7.0f files/s", m->name, wall, (double)files / wall);
	if (gdcm > 0)
		printf("  %5.2fx gdcmanon", wall / gdcm);
	printf("  %5.2fx cp | CPU %7.3f s %6.0f us/file\n", wall / cp, cpu,
		cpu / (double)files * 1e6);
}

/* How many files fit twice over on the output tmpfs (one output lives at a
 * time; the margin is for others). */
static long files_that_fit(void)
{
	struct statvfs sv;
	double avail;

	if (statvfs(OUT_FS, &sv) != 0)
		fail("%s: %s (the benchmark writes its output on tmpfs)", OUT_FS,
			strerror(errno));
	avail = (double)sv.f_bavail * (double)sv.f_frsize;
	return (long)(avail / (2 * FILE_BYTES_ESTIMATE));
}

static uint64_t make_corpus(const char *dir, long files)
{
	return write_corpus(dir, (int)files, SERIES_FILES, 512, CT_HEADER_ELEMENTS);
}

static int benchmark(void)
{
	method m[] = {
		{ "cp -r", CP, 0, { 0 }, { 0 } },
		{ "gdcmanon -e (2008 Basic)", GDCMANON, 0, { 0 }, { 0 } },
		{ "fdn pipeline, 1 thread", PIPELINE, 1, { 0 }, { 0 } },
		{ "fdn pipeline, 2 threads", PIPELINE, 2, { 0 }, { 0 } },
	};
	const size_t nm = sizeof(m) / sizeof(m[0]);
	int have_gdcmanon = system("command -v gdcmanon > /dev/null 2>&1") == 0;
	char in[300], cert[300], cmd[1024];
	double t, gdcm, cp, one, two;
	uint64_t bytes;
	bench b;
	size_t k;
	int rep;

	b.files = files_that_fit();
	if (b.files < MIN_FILES)
		fail("%s has room for %ld files, fewer than %d", OUT_FS, b.files, MIN_FILES);
	if (b.files > FILES)
		b.files = FILES;
	snprintf(workdir, sizeof(workdir), "/tmp/fdn-bench-deid-XXXXXX");
	snprintf(outdir, sizeof(outdir), OUT_FS "/fdn-bench-deid-XXXXXX");
	if (!mkdtemp(workdir) || !mkdtemp(outdir))
		fail("mkdtemp: %s", strerror(errno));
	atexit(cleanup);
	snprintf(in, sizeof(in), "%s/ct", workdir);
	snprintf(cert, sizeof(cert), "%s/cert.pem", workdir);
	t = bench_now();
	bytes = make_corpus(in, b.files);
	/* Writeback of the fresh corpus would compete with the timed runs. */
	sync();
	printf("corpus: %ld CT files, %.1f MB (%d elements each besides File Meta) in %s, "
		"written in %.1f s;\noutput on tmpfs %s; medians of %d runs, the methods "
		"interleaved; 2 shared cores: expect noise\n", b.files, (double)bytes / 1e6,
		CT_HEADER_ELEMENTS + OTHER_ELEMENTS, workdir, bench_now() - t, outdir, REPS);
	if (have_gdcmanon) {
		snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey rsa:2048 -nodes -days 1 "
			"-subj /CN=bench-deid -keyout '%s/key.pem' -out '%s' > /dev/null 2>&1",
			workdir, cert);
		shell(cmd);
	} else {
		printf("  gdcmanon: not installed (Debian: libgdcm-tools), not timed\n");
	}
	b.profile = make_profile();
	b.in = in;
	b.cert = cert;
	snprintf(cmd, sizeof(cmd), "find '%s' -type f -exec cat {} + > /dev/null", in);
	shell(cmd); /* warm the page cache */
	for (rep = 0; rep < REPS; rep++)
		for (k = 0; k < nm; k++)
			if (m[k].kind != GDCMANON || have_gdcmanon)
				run_once(&m[k], rep, &b);
	cp = bench_median(m[0].wall, REPS);
	gdcm = have_gdcmanon ? bench_median(m[1].wall, REPS) : 0;
	for (k = 0; k < nm; k++)
		if (m[k].kind != GDCMANON || have_gdcmanon)
			report(&m[k], b.files, gdcm, cp);
	one = bench_median(m[2].wall, REPS);
	two = bench_median(m[3].wall, REPS);
	printf("  2 threads / 1 thread: %.2fx faster\n", one / two);
	if (have_gdcmanon)
		printf("  target (no slower than gdcmanon): %s\n",
			one <= gdcm ? "met" : "missed");
	printf("  moonshot (within 2x of cp): %s\n", one <= 2 * cp ? "met" : "missed");
	fdn_deid_profile_free((fdn_deid_profile *)b.profile);
	cleanup();
	return 0;
}

int main(int argc, char **argv)
{
	int rc;

	if (fdn_init() != 0)
		fail("fdn_init");
	if (argc >= 3 && strcmp(argv[1], "corpus") == 0) {
		make_corpus(argv[2], argc > 3 ? atol(argv[3]) : FILES);
		rc = 0;
	} else if (argc >= 4 && strcmp(argv[1], "pipeline") == 0) {
		fdn_deid_profile *p = make_profile();
		int threads = argc > 4 ? atoi(argv[4]) : 1;
		double t = bench_now();
		size_t n;

		if (threads < 1 || threads > MAX_THREADS)
			fail("threads: 1 to %d", MAX_THREADS);
		n = pipeline(p, argv[2], argv[3], threads);
		printf("%zu files in %.3f s\n", n, bench_now() - t);
		fdn_deid_profile_free(p);
		rc = 0;
	} else if (argc == 1) {
		rc = benchmark();
	} else {
		fprintf(stderr, "usage: bench_deid [corpus DIR [FILES] | pipeline IN OUT "
			"[THREADS]]\n");
		rc = 2;
	}
	fdn_shutdown();
	return rc;
}
