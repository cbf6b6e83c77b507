/*
 * Scan benchmark: header-only fdn_scan() of two corpora the library
 * writes itself — 2,000 single-frame 512x512 16-bit CT files with a full
 * header (~0.5 MB each) and 10,000 small files — against gdcmscanner
 * asked for five tags, and against reading every byte with cat, in the
 * same run with the page cache warm.  Target (the scan issue): one
 * worker at least as fast as gdcmscanner while extracting the whole
 * fdn_instance_info, two workers at least 1.8 times that.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define BENCH_NAME "bench_scan"
#include "bench.h"
#include "corpus.h"

#define CT_FILES 2000
#define CT_SERIES_FILES 250
#define SMALL_FILES 10000
#define SMALL_SERIES_FILES 100
#define REPS 7

static char tmpdir[256];

static void cleanup(void)
{
	char cmd[sizeof(tmpdir) + 32];

	if (!tmpdir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_scan: could not remove %s\n", tmpdir);
	tmpdir[0] = '\0';
}

/* ------------------------------------------------------------ timed runs */

typedef struct run {
	const char *dir;
	unsigned int workers;
	unsigned int read_flags;
	long expected;
	/* what the callback saw: keeps its reads from being optimised away */
	long instances;
	uint64_t checksum;
} run;

static void run_shell(const char *fmt, const char *dir)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), fmt, dir);
	if (system(cmd) != 0)
		fail("'%s' failed", cmd);
}

static void time_cat(void *arg)
{
	run_shell("find '%s' -type f -exec cat {} + > /dev/null", ((run *)arg)->dir);
}

static void time_gdcmscanner(void *arg)
{
	run_shell("gdcmscanner -r -d '%s' -t 10,10 -t 10,20 -t 20,d -t 20,e -t 8,18 "
		"> /dev/null 2>&1", ((run *)arg)->dir);
}

/* Touches every member of the info, as a registry import would. */
static int on_instance(const char *path, fdn_dataset *ds, const fdn_instance_info *i,
	void *payload)
{
	run *r = payload;
	const char *s[] = { i->sop_class_uid, i->sop_instance_uid, i->study_instance_uid,
		i->series_instance_uid, i->transfer_syntax_uid, i->modality, i->patient_id,
		i->patient_name, i->patient_sex, i->patient_age, i->study_date,
		i->study_description, i->series_description, i->body_part_examined,
		i->manufacturer };
	size_t k;

	(void)path;
	(void)ds;
	for (k = 0; k < sizeof(s) / sizeof(s[0]); k++)
		r->checksum += strlen(s[k]);
	r->checksum += (uint64_t)i->instance_number + i->rows + i->columns + i->frames +
		i->file_size;
	r->instances++;
	return 0;
}

static int on_skip(const char *path, int code, const char *reason, void *payload)
{
	(void)payload;
	fprintf(stderr, "bench_scan: skipped %s (%d): %s\n", path, code, reason);
	return FDN_EUSER;
}

static void time_fdn_scan(void *arg)
{
	run *r = arg;
	fdn_scan_options o;

	if (fdn_scan_options_init(&o, FDN_SCAN_OPTIONS_VERSION) != 0)
		fail("fdn_scan_options_init");
	o.workers = r->workers;
	o.read_flags = r->read_flags;
	o.on_instance = on_instance;
	o.on_skip = on_skip;
	o.payload = r;
	r->instances = 0;
	if (fdn_scan(NULL, r->dir, &o) != 0)
		fail("fdn_scan of %s", r->dir);
	if (r->instances != r->expected)
		fail("fdn_scan delivered %ld instances, not %ld", r->instances, r->expected);
}

/* Wall and CPU medians of one method. */
typedef struct timing {
	double wall, cpu;
} timing;

static double cpu_seconds(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
		(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/*
 * Times @p fn: the wall clock, and the CPU time (user + system, every
 * thread) of this process or, for shell commands, of the children — the
 * work done, next to the speed.  Both move with other load on the
 * machine; compare figures from the same run.
 */
static timing measure(void (*fn)(void *), void *arg, int who)
{
	double wall[REPS], cpu[REPS], t, c;
	timing out;
	int i;

	for (i = 0; i < REPS; i++) {
		c = cpu_seconds(who);
		t = bench_now();
		fn(arg);
		wall[i] = bench_now() - t;
		cpu[i] = cpu_seconds(who) - c;
	}
	out.wall = bench_median(wall, REPS);
	out.cpu = bench_median(cpu, REPS);
	return out;
}

static void report(const char *name, timing t, long files, const timing *gdcm)
{
	printf("  %-24s median %7.4f s %8.0f files/s", name, t.wall, (double)files / t.wall);
	if (gdcm)
		printf(" %5.2fx gdcmscanner", gdcm->wall / t.wall);
	printf(" | CPU %7.4f s %6.1f us/file\n", t.cpu, t.cpu / (double)files * 1e6);
}

static void bench_corpus(const char *title, const char *dir, long files, uint64_t bytes,
	int have_gdcmscanner)
{
	run r = { dir, 0, FDN_READ_HEADER_ONLY, files, 0, 0 };
	timing cat, gdcm = { 0, 0 }, one, two, sum1, sum2;
	const timing *base = have_gdcmscanner ? &gdcm : NULL;

	printf("%s: %ld files, %.1f MB; medians of %d runs\n", title, files,
		(double)bytes / 1e6, REPS);
	time_cat(&r); /* warm the page cache */
	cat = measure(time_cat, &r, RUSAGE_CHILDREN);
	if (have_gdcmscanner)
		gdcm = measure(time_gdcmscanner, &r, RUSAGE_CHILDREN);
	r.workers = 1;
	one = measure(time_fdn_scan, &r, RUSAGE_SELF);
	r.workers = 2;
	two = measure(time_fdn_scan, &r, RUSAGE_SELF);
	/* The summary read keeps only what fdn_instance_info reports, as
	 * gdcmscanner keeps only its selected tags. */
	r.read_flags = FDN_READ_SUMMARY;
	r.workers = 1;
	sum1 = measure(time_fdn_scan, &r, RUSAGE_SELF);
	r.workers = 2;
	sum2 = measure(time_fdn_scan, &r, RUSAGE_SELF);
	report("cat (find -exec cat +)", cat, files, base);
	if (have_gdcmscanner)
		report("gdcmscanner (5 tags)", gdcm, files, base);
	else
		printf("  gdcmscanner: not installed (Debian: libgdcm-tools), not timed\n");
	report("fdn_scan workers=1", one, files, base);
	report("fdn_scan workers=2", two, files, base);
	printf("  workers=2 / workers=1: %.2fx\n", one.wall / two.wall);
	report("fdn_scan summary workers=1", sum1, files, base);
	report("fdn_scan summary workers=2", sum2, files, base);
	printf("  summary workers=2 / workers=1: %.2fx\n", sum1.wall / sum2.wall);
	if (r.checksum == 0)
		fail("no instance info was read");
}

int main(void)
{
	char ct[300], small[300];
	uint64_t ct_bytes, small_bytes;
	int have_gdcmscanner = system("command -v gdcmscanner > /dev/null 2>&1") == 0;
	int full = CT_HEADER_ELEMENTS;
	double t;

	if (fdn_init() != 0)
		fail("fdn_init");
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/fdn-bench-scan-XXXXXX");
	if (!mkdtemp(tmpdir))
		fail("mkdtemp: %s", strerror(errno));
	atexit(cleanup);
	snprintf(ct, sizeof(ct), "%s/ct", tmpdir);
	snprintf(small, sizeof(small), "%s/small", tmpdir);
	t = bench_now();
	ct_bytes = write_corpus(ct, CT_FILES, CT_SERIES_FILES, 512, full);
	/* Small files: a shorter header (no equipment or CT modules) and a
	 * 32x32 image, about 3 KB each. */
	small_bytes = write_corpus(small, SMALL_FILES, SMALL_SERIES_FILES, 32, full / 2);
	/* Writeback of the fresh corpus would compete with the timed runs. */
	sync();
	printf("corpus written in %.1f s (%d elements in each CT file, File Meta aside)\n",
		bench_now() - t, full + OTHER_ELEMENTS);
	bench_corpus("CT 512x512x16", ct, CT_FILES, ct_bytes, have_gdcmscanner);
	bench_corpus("small files", small, SMALL_FILES, small_bytes, have_gdcmscanner);
	cleanup();
	fdn_shutdown();
	return 0;
}
