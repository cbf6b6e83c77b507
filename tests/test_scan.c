/*
 * fdn_scan through the public API: a tree the test writes with the
 * library itself (several patients, studies, series and transfer
 * syntaxes) plus every kind of file the scan must skip — text, empty, a
 * PNG header, a truncated DICOM file, a DICOMDIR, a FIFO, a link loop, a
 * link to itself, a dangling link and a second path to a scanned folder.
 * Checks exactly-once delivery with the right instance info, the skip
 * codes and counts, that every callback runs on the calling thread,
 * progress, stopping by callback and by cancellation (from a callback and
 * from another thread), and the argument checks.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fednode/fednode.h"

#define OK(call) assert_int_equal((call), 0)

#define UID_ROOT "1.2.826.0.1.3680043.2.1125.77."
#define MAX_INSTANCES 64
#define MAX_RECORDS 128

/* --------------------------------------------------------- the corpus */

typedef struct series_spec {
	const char *dir;          /* relative to the tree */
	const char *patient;
	const char *modality;
	const char *sop_class;
	const char *ts;
	int study, series, count;
} series_spec;

static const series_spec corpus[] = {
	{ "p1/st1/se1", "P1", "CT", "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1", 1, 1, 10 },
	{ "p1/st1/se2", "P1", "CT", "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2", 1, 2, 8 },
	{ "p1/st2/se1", "P1", "MR", "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.1.2.1", 2, 1, 6 },
	{ "p2/st1/se1", "P2", "CR", "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.1.2.1.99", 3, 1, 6 },
	{ "p3/st1/se1", "P3", "US", "1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.1.2.2", 4, 1, 6 },
};

/* What the scan must report for one instance. */
typedef struct expected {
	const series_spec *spec;
	char sop[72], study[72], series[72], file[32];
	int number;
} expected;

/* A skip the scan must report, with its code when links are followed
 * and when not (0: no skip expected in that mode). */
typedef struct expected_skip {
	const char *rel;
	int code_follow, code_nofollow;
} expected_skip;

static const expected_skip skips[] = {
	{ "misc/readme.txt", FDN_EUNSUPPORTED, FDN_EUNSUPPORTED },
	{ "misc/empty", FDN_EUNSUPPORTED, FDN_EUNSUPPORTED },
	{ "misc/image.png", FDN_EUNSUPPORTED, FDN_EUNSUPPORTED },
	{ "misc/truncated.dcm", FDN_EFORMAT, FDN_EFORMAT },
	{ "misc/DICOMDIR", FDN_EUNSUPPORTED, FDN_EUNSUPPORTED },
	{ "misc/fifo", FDN_EUNSUPPORTED, FDN_EUNSUPPORTED },
	{ "links/loop", FDN_ECONFLICT, FDN_EUNSUPPORTED },
	{ "links/self", FDN_ECONFLICT, FDN_EUNSUPPORTED },
	{ "links/dangling", FDN_ENOTFOUND, FDN_EUNSUPPORTED },
	{ "links/series", 0, FDN_EUNSUPPORTED },
	/* "links" sorts before "p2": the link is walked first. */
	{ "p2/st1", FDN_ECONFLICT, 0 },
};

static char tmpdir[256];
static char tree[300];
static expected instances[MAX_INSTANCES];
static int n_instances;
static uint64_t tree_bytes; /* sizes of the regular files */
static pthread_t main_thread;

static void join(char *out, size_t len, const char *dir, const char *rel)
{
	int n = snprintf(out, len, "%s/%s", dir, rel);

	assert_true(n > 0 && (size_t)n < len);
}

static void mkdirs(const char *rel)
{
	char path[512], *p;

	join(path, sizeof(path), tree, rel);
	for (p = path + strlen(tree) + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
		*p = '/';
	}
	assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
}

static void count_file(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	tree_bytes += (uint64_t)st.st_size;
}

static void write_raw(const char *rel, const void *data, size_t len)
{
	char path[512];
	FILE *f;

	join(path, sizeof(path), tree, rel);
	assert_non_null(f = fopen(path, "wb"));
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	count_file(path);
}

/* A small image instance: enough for every fdn_instance_info member. */
static fdn_dataset *make_instance(const expected *e)
{
	static const uint16_t pixels[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	const series_spec *s = e->spec;
	fdn_dataset *ds = NULL;
	char num[16];

	OK(fdn_dataset_new(&ds, s->ts));
	OK(fdn_dataset_set_string(ds, "SOPClassUID", s->sop_class));
	OK(fdn_dataset_set_string(ds, "SOPInstanceUID", e->sop));
	OK(fdn_dataset_set_string(ds, "StudyInstanceUID", e->study));
	OK(fdn_dataset_set_string(ds, "SeriesInstanceUID", e->series));
	OK(fdn_dataset_set_string(ds, "PatientID", s->patient));
	OK(fdn_dataset_set_string(ds, "PatientName", "Test^Patient"));
	OK(fdn_dataset_set_string(ds, "StudyDate", "20240131"));
	OK(fdn_dataset_set_string(ds, "Modality", s->modality));
	snprintf(num, sizeof(num), "%d", s->series);
	OK(fdn_dataset_set_string(ds, "SeriesNumber", num));
	snprintf(num, sizeof(num), "%d", e->number);
	OK(fdn_dataset_set_string(ds, "InstanceNumber", num));
	OK(fdn_dataset_set_string(ds, "Rows", "4"));
	OK(fdn_dataset_set_string(ds, "Columns", "4"));
	OK(fdn_dataset_set_string(ds, "BitsAllocated", "16"));
	OK(fdn_dataset_set_bytes(ds, "PixelData", "OW", pixels, sizeof(pixels)));
	return ds;
}

static void write_series(const series_spec *s)
{
	char rel[128], path[512];
	int i;

	mkdirs(s->dir);
	for (i = 1; i <= s->count; i++) {
		expected *e = &instances[n_instances++];
		fdn_dataset *ds;

		assert_true(n_instances <= MAX_INSTANCES);
		e->spec = s;
		e->number = i;
		snprintf(e->study, sizeof(e->study), UID_ROOT "%d", s->study);
		snprintf(e->series, sizeof(e->series), UID_ROOT "%d.%d", s->study, s->series);
		snprintf(e->sop, sizeof(e->sop), UID_ROOT "%d.%d.%d", s->study, s->series, i);
		snprintf(e->file, sizeof(e->file), "img%03d.dcm", i);
		ds = make_instance(e);
		snprintf(rel, sizeof(rel), "%s/%s", s->dir, e->file);
		join(path, sizeof(path), tree, rel);
		OK(fdn_dataset_write_file(ds, path, 0));
		fdn_dataset_free(ds);
		count_file(path);
	}
}

/* A DICOM file cut in the middle of its header: malformed, not "not DICOM". */
static void write_truncated(void)
{
	expected e = { &corpus[0], UID_ROOT "99.1", UID_ROOT "99", UID_ROOT "99.1.1", "x", 1 };
	fdn_dataset *ds = make_instance(&e);
	fdn_buf b = FDN_BUF_INIT;

	OK(fdn_dataset_write_buffer(&b, ds, 0));
	write_raw("misc/truncated.dcm", b.ptr, b.size / 2);
	fdn_buf_dispose(&b);
	fdn_dataset_free(ds);
}

/* fdn_dataset_write_file() derives the File Meta's Media Storage SOP
 * Class from SOPClassUID: the DICOMDIR class makes a DICOMDIR. */
static void write_dicomdir(void)
{
	fdn_dataset *ds = NULL;
	char path[512];

	join(path, sizeof(path), tree, "misc/DICOMDIR");
	OK(fdn_dataset_new(&ds, NULL));
	OK(fdn_dataset_set_string(ds, "SOPClassUID", "1.2.840.10008.1.3.10"));
	OK(fdn_dataset_set_string(ds, "SOPInstanceUID", UID_ROOT "98"));
	OK(fdn_dataset_write_file(ds, path, 0));
	fdn_dataset_free(ds);
	count_file(path);
}

static void write_misc(void)
{
	static const char png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0";
	char text[400], path[512];
	size_t i;

	mkdirs("misc");
	for (i = 0; i + 1 < sizeof(text); i++)
		text[i] = "This is a README, not a DICOM file.\n"[i % 36];
	write_raw("misc/readme.txt", text, sizeof(text) - 1);
	write_raw("misc/empty", "", 0);
	write_raw("misc/image.png", png, sizeof(png) - 1);
	write_truncated();
	write_dicomdir();
	join(path, sizeof(path), tree, "misc/fifo");
	assert_int_equal(mkfifo(path, 0644), 0);
}

static void make_link(const char *target, const char *rel)
{
	char path[512];

	join(path, sizeof(path), tree, rel);
	assert_int_equal(symlink(target, path), 0);
}

static void write_links(void)
{
	mkdirs("links");
	make_link("..", "links/loop");
	make_link("self", "links/self");
	make_link("no-such-file", "links/dangling");
	make_link("../p2/st1", "links/series");
}

static int group_setup(void **state)
{
	size_t i;

	(void)state;
	main_thread = pthread_self();
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/fdn-test-scan-XXXXXX");
	if (!mkdtemp(tmpdir) || fdn_init() != 0)
		return -1;
	snprintf(tree, sizeof(tree), "%s/tree", tmpdir);
	if (mkdir(tree, 0755) != 0)
		return -1;
	for (i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++)
		write_series(&corpus[i]);
	write_misc();
	write_links();
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[2 * sizeof(tmpdir) + 64];

	(void)state;
	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s'; rm -rf '%s'", tmpdir, tmpdir);
	if (system(cmd) != 0)
		return -1;
	return fdn_shutdown() < 0;
}

/* --------------------------------------------------------- collecting */

typedef struct record {
	char path[512];
	char uid[72];   /* instances */
	int code;       /* skips */
} record;

typedef struct collector {
	record inst[MAX_RECORDS], skip[MAX_RECORDS];
	int n_inst, n_skip;
	int wrong_thread;
	int bad_info;
	/* progress */
	int n_progress, bad_progress;
	fdn_progress last;
	uint64_t max_items_total;
	/* stopping: the callback that makes the N-th call returns rc */
	int stop_instance_at, stop_skip_at, stop_progress_at, stop_rc;
	/* cancellation */
	fdn_cancel *cancel_at_instance;
	int cancel_after;
	unsigned sleep_ms;
	/* cross-thread cancellation handshake */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int first_seen, cancelled;
} collector;

static collector *collector_new(void)
{
	collector *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	return c;
}

static void collector_free(collector *c)
{
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

static void check_thread(collector *c)
{
	if (!pthread_equal(pthread_self(), main_thread))
		c->wrong_thread++;
}

static const expected *find_expected(const char *sop)
{
	int i;

	for (i = 0; i < n_instances; i++)
		if (strcmp(instances[i].sop, sop) == 0)
			return &instances[i];
	return NULL;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Every fdn_instance_info member against what was written. */
static int info_matches(const char *path, const fdn_instance_info *i)
{
	const expected *e = find_expected(i->sop_instance_uid);
	const series_spec *s = e ? e->spec : NULL;

	return e && strcmp(base_name(path), e->file) == 0 &&
		strcmp(i->sop_class_uid, s->sop_class) == 0 &&
		strcmp(i->study_instance_uid, e->study) == 0 &&
		strcmp(i->series_instance_uid, e->series) == 0 &&
		strcmp(i->transfer_syntax_uid, s->ts) == 0 &&
		strcmp(i->modality, s->modality) == 0 &&
		strcmp(i->patient_id, s->patient) == 0 &&
		strcmp(i->patient_name, "Test^Patient") == 0 &&
		strcmp(i->study_date, "20240131") == 0 &&
		strcmp(i->patient_sex, "") == 0 &&
		i->series_number == s->series && i->instance_number == e->number &&
		i->rows == 4 && i->columns == 4 && i->frames == 1 &&
		i->burned_in_annotation == FDN_UNKNOWN && i->file_size > 0;
}

static int stop_now(collector *c, int n, int at)
{
	return at && n == at ? c->stop_rc : 0;
}

/* The other thread cancels once the first instance has been seen. */
static void handshake(collector *c)
{
	pthread_mutex_lock(&c->lock);
	c->first_seen = 1;
	pthread_cond_broadcast(&c->cond);
	while (!c->cancelled)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

static int on_instance(const char *path, fdn_dataset *ds, const fdn_instance_info *info,
	void *payload)
{
	collector *c = payload;
	record *r;

	check_thread(c);
	if (c->n_inst >= MAX_RECORDS)
		return FDN_EUSER;
	r = &c->inst[c->n_inst++];
	snprintf(r->path, sizeof(r->path), "%s", path);
	snprintf(r->uid, sizeof(r->uid), "%s", info->sop_instance_uid);
	if (!info_matches(path, info) || !fdn_dataset_is_header_only(ds) ||
	    strcmp(fdn_dataset_source(ds), path) != 0) {
		fprintf(stderr, "unexpected instance info for %s (%s)\n", path,
			info->sop_instance_uid);
		c->bad_info++;
	}
	if (c->cancel_at_instance && c->n_inst == c->cancel_after)
		fdn_cancel_request(c->cancel_at_instance);
	if (c->sleep_ms) {
		struct timespec ts = { 0, (long)c->sleep_ms * 1000000L };
		if (c->n_inst == 1)
			handshake(c);
		nanosleep(&ts, NULL);
	}
	return stop_now(c, c->n_inst, c->stop_instance_at);
}

static int on_skip(const char *path, int code, const char *reason, void *payload)
{
	collector *c = payload;
	record *r;

	check_thread(c);
	if (c->n_skip >= MAX_RECORDS)
		return FDN_EUSER;
	r = &c->skip[c->n_skip++];
	snprintf(r->path, sizeof(r->path), "%s", path);
	r->code = code;
	if (!reason || !*reason)
		c->bad_info++;
	return stop_now(c, c->n_skip, c->stop_skip_at);
}

static int on_progress(const fdn_progress *p, void *payload)
{
	collector *c = payload;
	const fdn_progress *l = &c->last;

	check_thread(c);
	if (p->version != FDN_PROGRESS_VERSION || strcmp(p->stage, "scan") != 0)
		c->bad_progress++;
	if (c->n_progress && (p->items_done < l->items_done || p->bytes_done < l->bytes_done ||
	    p->errors < l->errors || p->elapsed < l->elapsed))
		c->bad_progress++;
	if (p->items_total && p->items_total < p->items_done)
		c->bad_progress++;
	if (p->items_total > c->max_items_total)
		c->max_items_total = p->items_total;
	c->last = *p;
	c->n_progress++;
	return stop_now(c, c->n_progress, c->stop_progress_at);
}

static fdn_scan_options options(collector *c, unsigned int workers)
{
	fdn_scan_options o;

	OK(fdn_scan_options_init(&o, FDN_SCAN_OPTIONS_VERSION));
	o.workers = workers;
	o.on_instance = on_instance;
	o.on_skip = on_skip;
	o.on_progress = on_progress;
	o.progress_interval = 0; /* every chance: more checks of the counts */
	o.payload = c;
	return o;
}

static const char *rel_of(const char *path)
{
	size_t n = strlen(tree);

	assert_memory_equal(path, tree, n);
	assert_int_equal(path[n], '/');
	return path + n + 1;
}

/* Every instance exactly once, with the right info. */
static void check_instances(const collector *c)
{
	int hits[MAX_INSTANCES] = { 0 };
	int i;

	assert_int_equal(c->bad_info, 0);
	assert_int_equal(c->n_inst, n_instances);
	for (i = 0; i < c->n_inst; i++) {
		const expected *e = find_expected(c->inst[i].uid);
		assert_non_null(e);
		hits[e - instances]++;
	}
	for (i = 0; i < n_instances; i++)
		assert_int_equal(hits[i], 1);
}

/* Exactly the expected skips, each once, with its code. */
static void check_skips(const collector *c, int follow)
{
	size_t i, n = 0;
	int j, found;

	for (i = 0; i < sizeof(skips) / sizeof(skips[0]); i++) {
		int code = follow ? skips[i].code_follow : skips[i].code_nofollow;
		if (!code)
			continue;
		n++;
		for (found = 0, j = 0; j < c->n_skip; j++) {
			if (strcmp(rel_of(c->skip[j].path), skips[i].rel) != 0)
				continue;
			found++;
			if (c->skip[j].code != code)
				fprintf(stderr, "%s: code %d, expected %d\n",
					skips[i].rel, c->skip[j].code, code);
			assert_int_equal(c->skip[j].code, code);
		}
		if (found != 1)
			fprintf(stderr, "%s: reported %d times\n", skips[i].rel, found);
		assert_int_equal(found, 1);
	}
	assert_int_equal((size_t)c->n_skip, n);
}

static void check_final_progress(const collector *c, const fdn_scan_stats *st)
{
	assert_int_equal(c->bad_progress, 0);
	assert_true(c->n_progress >= 1);
	assert_int_equal(c->last.items_done, st->files);
	assert_int_equal(c->last.items_total, st->files);
	assert_int_equal(c->last.bytes_done, st->bytes);
	assert_int_equal(c->last.errors, st->errors);
	assert_true(c->max_items_total <= st->files);
}

/* Regular files: the instances, readme, empty, png, truncated, DICOMDIR. */
#define TREE_FILES ((uint64_t)n_instances + 5)

static void full_scan(unsigned int workers, int follow)
{
	collector *c = collector_new();
	fdn_scan_options o = options(c, workers);
	fdn_scan_stats st = { FDN_SCAN_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0 };

	o.follow_symlinks = follow;
	OK(fdn_scan(&st, tree, &o));
	assert_int_equal(c->wrong_thread, 0);
	check_instances(c);
	check_skips(c, follow);
	assert_int_equal(st.version, FDN_SCAN_STATS_VERSION);
	assert_int_equal(st.files, TREE_FILES);
	assert_int_equal(st.bytes, tree_bytes);
	assert_int_equal(st.instances, n_instances);
	assert_int_equal(st.dicomdirs, 1);
	/* follow: readme, empty, png, DICOMDIR, fifo, the second path to
	 * p2/st1; errors: truncated, loop, self, dangling.  No follow: the
	 * four links are skipped, not errors. */
	assert_int_equal(st.not_dicom, follow ? 6 : 9);
	assert_int_equal(st.errors, follow ? 4 : 1);
	assert_int_equal(st.not_dicom + st.errors, (uint64_t)c->n_skip);
	assert_true(st.elapsed > 0);
	check_final_progress(c, &st);
	collector_free(c);
}

static void test_scan_two_workers(void **state)
{
	(void)state;
	full_scan(2, 1);
}

static void test_scan_one_worker(void **state)
{
	(void)state;
	full_scan(1, 1);
}

static void test_scan_four_workers(void **state)
{
	(void)state;
	full_scan(4, 1);
}

static void test_scan_default_workers(void **state)
{
	(void)state;
	full_scan(0, 1);
}

static void test_no_follow(void **state)
{
	(void)state;
	full_scan(2, 0);
}

static int cmp_records(const void *a, const void *b)
{
	const record *x = a, *y = b;
	int d = strcmp(x->path, y->path);

	return d ? d : strcmp(x->uid, y->uid);
}

/* One worker and four give the same results, whatever the order. */
static void test_same_results(void **state)
{
	collector *a = collector_new(), *b = collector_new();
	fdn_scan_options oa = options(a, 1), ob = options(b, 4);
	int i;

	(void)state;
	OK(fdn_scan(NULL, tree, &oa));
	OK(fdn_scan(NULL, tree, &ob));
	assert_int_equal(a->n_inst, b->n_inst);
	assert_int_equal(a->n_skip, b->n_skip);
	qsort(a->inst, (size_t)a->n_inst, sizeof(record), cmp_records);
	qsort(b->inst, (size_t)b->n_inst, sizeof(record), cmp_records);
	qsort(a->skip, (size_t)a->n_skip, sizeof(record), cmp_records);
	qsort(b->skip, (size_t)b->n_skip, sizeof(record), cmp_records);
	for (i = 0; i < a->n_inst; i++) {
		assert_string_equal(a->inst[i].path, b->inst[i].path);
		assert_string_equal(a->inst[i].uid, b->inst[i].uid);
	}
	for (i = 0; i < a->n_skip; i++) {
		assert_string_equal(a->skip[i].path, b->skip[i].path);
		assert_int_equal(a->skip[i].code, b->skip[i].code);
	}
	collector_free(a);
	collector_free(b);
}

static void test_single_file(void **state)
{
	collector *c = collector_new();
	fdn_scan_options o = options(c, 2);
	fdn_scan_stats st = { FDN_SCAN_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0 };
	char path[512];

	(void)state;
	join(path, sizeof(path), tree, "p1/st2/se1/img003.dcm");
	OK(fdn_scan(&st, path, &o));
	assert_int_equal(c->n_inst, 1);
	assert_int_equal(c->n_skip, 0);
	assert_int_equal(c->bad_info, 0);
	assert_string_equal(c->inst[0].path, path);
	assert_string_equal(c->inst[0].uid, UID_ROOT "2.1.3");
	assert_int_equal(st.files, 1);
	assert_int_equal(st.instances, 1);
	check_final_progress(c, &st);
	collector_free(c);
}

static void test_single_special_roots(void **state)
{
	collector *c = collector_new();
	fdn_scan_options o = options(c, 1);
	fdn_scan_stats st = { FDN_SCAN_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0 };
	char path[512];

	(void)state;
	/* A text file: skipped, and the scan still succeeds. */
	join(path, sizeof(path), tree, "misc/readme.txt");
	OK(fdn_scan(&st, path, &o));
	assert_int_equal(c->n_skip, 1);
	assert_int_equal(c->skip[0].code, FDN_EUNSUPPORTED);
	assert_int_equal(st.files, 1);
	assert_int_equal(st.not_dicom, 1);
	/* A FIFO: never opened, so this does not hang. */
	join(path, sizeof(path), tree, "misc/fifo");
	OK(fdn_scan(&st, path, &o));
	assert_int_equal(c->n_skip, 2);
	assert_int_equal(c->skip[1].code, FDN_EUNSUPPORTED);
	assert_int_equal(st.files, 0);
	/* A folder given with trailing slashes: paths still have one '/'. */
	join(path, sizeof(path), tree, "p1/st2//");
	OK(fdn_scan(&st, path, &o));
	assert_int_equal(st.instances, 6);
	assert_non_null(strstr(c->inst[0].path, "p1/st2/se1/img"));
	collector_free(c);
}

static void test_root_errors(void **state)
{
	fdn_scan_stats st = { FDN_SCAN_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0 };
	char path[512];

	(void)state;
	join(path, sizeof(path), tmpdir, "no-such-folder");
	assert_int_equal(fdn_scan(&st, path, NULL), FDN_ENOTFOUND);
	assert_non_null(strstr(fdn_error_last()->message, "no-such-folder"));
	/* A dangling link as root is not found either. */
	join(path, sizeof(path), tree, "links/dangling");
	assert_int_equal(fdn_scan(NULL, path, NULL), FDN_ENOTFOUND);
}

static void test_bad_arguments(void **state)
{
	fdn_scan_options o;
	fdn_scan_stats st = { FDN_SCAN_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0 };

	(void)state;
	assert_int_equal(fdn_scan_options_init(NULL, FDN_SCAN_OPTIONS_VERSION), FDN_EINVALID);
	assert_int_equal(fdn_scan_options_init(&o, 0), FDN_EINVALID);
	assert_int_equal(fdn_scan_options_init(&o, FDN_SCAN_OPTIONS_VERSION + 1), FDN_EINVALID);
	OK(fdn_scan_options_init(&o, FDN_SCAN_OPTIONS_VERSION));
	assert_int_equal(o.version, FDN_SCAN_OPTIONS_VERSION);
	assert_int_equal(o.read_flags, FDN_READ_HEADER_ONLY);
	assert_int_equal(o.follow_symlinks, 1);
	assert_true(o.progress_interval > 0);

	assert_int_equal(fdn_scan(&st, NULL, NULL), FDN_EINVALID);
	o.version = 0;
	assert_int_equal(fdn_scan(&st, tree, &o), FDN_EINVALID);
	o.version = FDN_SCAN_OPTIONS_VERSION + 1;
	assert_int_equal(fdn_scan(&st, tree, &o), FDN_EINVALID);
	assert_non_null(strstr(fdn_error_last()->message, "version"));
	o.version = FDN_SCAN_OPTIONS_VERSION;
	o.read_flags = 0x80;
	assert_int_equal(fdn_scan(&st, tree, &o), FDN_EINVALID);
	o.read_flags = FDN_READ_HEADER_ONLY;
	o.progress_interval = -1;
	assert_int_equal(fdn_scan(&st, tree, &o), FDN_EINVALID);
	o.progress_interval = 0.25;
	st.version = 0;
	assert_int_equal(fdn_scan(&st, tree, &o), FDN_EINVALID);
	st.version = FDN_SCAN_STATS_VERSION + 1;
	assert_int_equal(fdn_scan(&st, tree, &o), FDN_EINVALID);
}

/* No callbacks at all: the scan only counts. */
static void test_default_options(void **state)
{
	fdn_scan_stats st = { FDN_SCAN_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0 };

	(void)state;
	OK(fdn_scan(&st, tree, NULL));
	assert_int_equal(st.instances, n_instances);
	assert_int_equal(st.files, TREE_FILES);
	assert_int_equal(st.errors, 4);
}

/* A full read also works, and hands out datasets with Pixel Data. */
static int on_full_instance(const char *path, fdn_dataset *ds, const fdn_instance_info *info,
	void *payload)
{
	int *n = payload;

	(void)path;
	(void)info;
	if (!fdn_dataset_is_header_only(ds) && fdn_dataset_contains(ds, "PixelData") == 1)
		++*n;
	return 0;
}

static void test_full_read(void **state)
{
	fdn_scan_options o;
	int n = 0;

	(void)state;
	OK(fdn_scan_options_init(&o, FDN_SCAN_OPTIONS_VERSION));
	o.read_flags = FDN_READ_FULL;
	o.workers = 2;
	o.on_instance = on_full_instance;
	o.payload = &n;
	OK(fdn_scan(NULL, tree, &o));
	assert_int_equal(n, n_instances);
}

enum which { BY_INSTANCE, BY_SKIP, BY_PROGRESS };

/* The @p at-th call of one callback returns @p rc. */
static void stop_by(enum which by, int at, int rc, unsigned int workers)
{
	collector *c = collector_new();
	fdn_scan_options o = options(c, workers);
	fdn_scan_stats st = { FDN_SCAN_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0 };

	c->stop_instance_at = by == BY_INSTANCE ? at : 0;
	c->stop_skip_at = by == BY_SKIP ? at : 0;
	c->stop_progress_at = by == BY_PROGRESS ? at : 0;
	c->stop_rc = rc;
	assert_int_equal(fdn_scan(&st, tree, &o), rc);
	assert_int_equal(fdn_error_last()->code, rc);
	assert_int_equal(fdn_error_last()->klass, FDN_ERRCLASS_CALLBACK);
	assert_int_equal(c->wrong_thread, 0);
	/* Nothing is delivered once a callback said stop. */
	assert_int_equal(by == BY_INSTANCE ? c->n_inst : by == BY_SKIP ? c->n_skip :
		c->n_progress, at);
	assert_true(st.files < TREE_FILES);
	collector_free(c);
}

static void test_stop_by_callback(void **state)
{
	(void)state;
	stop_by(BY_INSTANCE, 3, FDN_EUSER, 2);
	stop_by(BY_INSTANCE, 1, 42, 1);
	stop_by(BY_SKIP, 1, 42, 4);
	stop_by(BY_PROGRESS, 2, FDN_EUSER, 2);
}

static void test_cancel_in_callback(void **state)
{
	collector *c = collector_new();
	fdn_scan_options o = options(c, 2);
	fdn_cancel *token = NULL;

	(void)state;
	OK(fdn_cancel_new(&token));
	o.cancel = token;
	c->cancel_at_instance = token;
	c->cancel_after = 5;
	assert_int_equal(fdn_scan(NULL, tree, &o), FDN_ECANCELLED);
	assert_int_equal(c->n_inst, 5);
	/* A signalled token stops the next scan before it delivers anything. */
	c->n_inst = c->n_skip = 0;
	assert_int_equal(fdn_scan(NULL, tree, &o), FDN_ECANCELLED);
	assert_int_equal(c->n_inst + c->n_skip, 0);
	/* Reset, it runs to the end. */
	fdn_cancel_reset(token);
	c->cancel_at_instance = NULL;
	OK(fdn_scan(NULL, tree, &o));
	fdn_cancel_free(token);
	collector_free(c);
}

typedef struct canceller {
	collector *c;
	fdn_cancel *token;
} canceller;

static void *cancel_thread(void *arg)
{
	canceller *k = arg;
	collector *c = k->c;

	pthread_mutex_lock(&c->lock);
	while (!c->first_seen)
		pthread_cond_wait(&c->cond, &c->lock);
	fdn_cancel_request(k->token);
	c->cancelled = 1;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* The token is signalled from another thread while the scan is busy; the
 * slow callback keeps both queues full, so the walker and the workers are
 * all blocked when the scan has to stop. */
static void test_cancel_from_thread(void **state)
{
	collector *c = collector_new();
	fdn_scan_options o = options(c, 2);
	fdn_scan_stats st = { FDN_SCAN_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0 };
	canceller k = { c, NULL };
	pthread_t t;

	(void)state;
	OK(fdn_cancel_new(&k.token));
	o.cancel = k.token;
	c->sleep_ms = 20;
	assert_int_equal(pthread_create(&t, NULL, cancel_thread, &k), 0);
	assert_int_equal(fdn_scan(&st, tree, &o), FDN_ECANCELLED);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(c->n_inst, 1);
	assert_int_equal(c->wrong_thread, 0);
	assert_true(st.files < TREE_FILES);
	fdn_cancel_free(k.token);
	collector_free(c);
}

/* Root sees through permissions: only an unprivileged run can make a
 * file or a folder unreadable. */
static void test_unreadable(void **state)
{
	collector *c;
	fdn_scan_options o;
	fdn_scan_stats st = { FDN_SCAN_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0 };
	char dir[512], path[512];
	int i;

	(void)state;
	if (geteuid() == 0)
		skip();
	c = collector_new();
	o = options(c, 2);
	join(dir, sizeof(dir), tmpdir, "locked");
	assert_int_equal(mkdir(dir, 0755), 0);
	join(path, sizeof(path), dir, "secret.dcm");
	fclose(fopen(path, "wb"));
	assert_int_equal(chmod(path, 0), 0);
	join(path, sizeof(path), dir, "closed");
	assert_int_equal(mkdir(path, 0), 0);
	OK(fdn_scan(&st, dir, &o));
	assert_int_equal(c->n_skip, 2);
	for (i = 0; i < 2; i++)
		assert_int_equal(c->skip[i].code, FDN_EIO);
	assert_int_equal(st.errors, 2);
	collector_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan_two_workers),
		cmocka_unit_test(test_scan_one_worker),
		cmocka_unit_test(test_scan_four_workers),
		cmocka_unit_test(test_scan_default_workers),
		cmocka_unit_test(test_no_follow),
		cmocka_unit_test(test_same_results),
		cmocka_unit_test(test_single_file),
		cmocka_unit_test(test_single_special_roots),
		cmocka_unit_test(test_root_errors),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_default_options),
		cmocka_unit_test(test_full_read),
		cmocka_unit_test(test_stop_by_callback),
		cmocka_unit_test(test_cancel_in_callback),
		cmocka_unit_test(test_cancel_from_thread),
		cmocka_unit_test(test_unreadable),
	};

	return cmocka_run_group_tests_name("scan", tests, group_setup, group_teardown);
}
