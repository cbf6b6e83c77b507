/*
 * fednode scan [--workers N] [--full] [--quiet] DIR
 *
 * Reads every file under DIR as DICOM with fdn_scan() and prints what it
 * found: patients, studies, series and instances per modality, the files
 * that were not DICOM or could not be read, and the speed.  A progress
 * line is drawn on stderr when it is a terminal; Ctrl-C stops the scan
 * cleanly and prints what was found so far.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fednode/fednode.h>

#include "cli.h"

/* Errors listed one by one; the rest are only counted. */
#define ERRORS_LISTED 20
/* Characters of the progress bar itself. */
#define BAR_WIDTH 24
/* The shell's exit status for a command ended by SIGINT. */
#define EXIT_INTERRUPTED 130

/* --- a set of strings: open addressing, FNV-1a, grown at 3/4 full ------- */

struct str_set {
	char **slots;
	size_t cap;   /* a power of two; 0 until the first insertion */
	size_t count;
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 14695981039346656037u;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211u;
	}
	return h;
}

static size_t free_slot(char **slots, size_t cap, const char *key)
{
	size_t i = (size_t)fnv1a(key) & (cap - 1);

	while (slots[i] && strcmp(slots[i], key))
		i = (i + 1) & (cap - 1);
	return i;
}

static int set_grow(struct str_set *set)
{
	size_t cap = set->cap ? set->cap * 2 : 64, i;
	char **slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -1;
	for (i = 0; i < set->cap; i++)
		if (set->slots[i])
			slots[free_slot(slots, cap, set->slots[i])] = set->slots[i];
	free(set->slots);
	set->slots = slots;
	set->cap = cap;
	return 0;
}

/* Adds a copy of @p key unless it is there.  Empty keys (an absent
 * Patient ID, say) are not counted.  -1 when out of memory. */
static int set_add(struct str_set *set, const char *key)
{
	size_t i;

	if (!*key)
		return 0;
	if ((set->count + 1) * 4 > set->cap * 3 && set_grow(set) != 0)
		return -1;
	i = free_slot(set->slots, set->cap, key);
	if (set->slots[i])
		return 0;
	if (!(set->slots[i] = strdup(key)))
		return -1;
	set->count++;
	return 0;
}

static void set_free(struct str_set *set)
{
	size_t i;

	for (i = 0; i < set->cap; i++)
		free(set->slots[i]);
	free(set->slots);
}

/* --- what the scan found ------------------------------------------------ */

struct tally {
	char *modality;
	uint64_t instances;
	struct str_set patients, studies, series;
};

struct report {
	struct tally *mods;          /* one per modality, in order of discovery */
	size_t n_mods;
	struct tally all;            /* distinct over every modality */
	char *errors[ERRORS_LISTED]; /* "path: reason" */
	size_t n_listed;
	int show_progress;
	int progress_drawn;
	int out_of_memory;
};

static int tally_add(struct tally *t, const fdn_instance_info *info)
{
	t->instances++;
	return set_add(&t->patients, info->patient_id) |
		set_add(&t->studies, info->study_instance_uid) |
		set_add(&t->series, info->series_instance_uid);
}

static void tally_free(struct tally *t)
{
	free(t->modality);
	set_free(&t->patients);
	set_free(&t->studies);
	set_free(&t->series);
}

static struct tally *tally_for(struct report *r, const char *modality)
{
	struct tally *grown;
	size_t i;

	for (i = 0; i < r->n_mods; i++)
		if (!strcmp(r->mods[i].modality, modality))
			return &r->mods[i];
	if (!(grown = realloc(r->mods, (r->n_mods + 1) * sizeof(*grown))))
		return NULL;
	r->mods = grown;
	memset(&grown[r->n_mods], 0, sizeof(*grown));
	if (!(grown[r->n_mods].modality = strdup(modality)))
		return NULL;
	return &grown[r->n_mods++];
}

static void report_free(struct report *r)
{
	size_t i;

	for (i = 0; i < r->n_mods; i++)
		tally_free(&r->mods[i]);
	free(r->mods);
	tally_free(&r->all);
	for (i = 0; i < r->n_listed; i++)
		free(r->errors[i]);
}

/* --- callbacks: all run on this thread ---------------------------------- */

static int on_instance(const char *path, fdn_dataset *ds, const fdn_instance_info *info,
	void *payload)
{
	struct report *r = payload;
	struct tally *t = tally_for(r, *info->modality ? info->modality : "(none)");

	(void)path;
	(void)ds;
	if (!t || tally_add(t, info) != 0 || tally_add(&r->all, info) != 0) {
		r->out_of_memory = 1;
		return FDN_EUSER;
	}
	return 0;
}

static int on_skip(const char *path, int code, const char *reason, void *payload)
{
	struct report *r = payload;
	size_t n;

	/* Files that are simply not DICOM are counted by the scan, not listed. */
	if (code == FDN_EUNSUPPORTED || r->n_listed == ERRORS_LISTED)
		return 0;
	/* Most reasons name the file already; those of the walker do not. */
	n = strlen(path);
	if (!strncmp(reason, path, n) && reason[n] == ':')
		path = "";
	n += strlen(reason) + 3;
	if (!(r->errors[r->n_listed] = malloc(n))) {
		r->out_of_memory = 1;
		return FDN_EUSER;
	}
	snprintf(r->errors[r->n_listed++], n, "%s%s%s", path, *path ? ": " : "", reason);
	return 0;
}

static void erase_progress(struct report *r)
{
	if (r->progress_drawn)
		fputs("\r\033[K", stderr);
	r->progress_drawn = 0;
}

static int on_progress(const fdn_progress *p, void *payload)
{
	struct report *r = payload;
	double rate = p->elapsed > 0 ? (double)p->items_done / p->elapsed : 0;
	char bar[BAR_WIDTH + 1];
	size_t full;

	fputs("\r\033[K", stderr);
	/* The total is known only once the walk has listed every folder. */
	if (p->items_total) {
		full = (size_t)(BAR_WIDTH * p->items_done / p->items_total);
		memset(bar, '#', full);
		memset(bar + full, '.', BAR_WIDTH - full);
		bar[BAR_WIDTH] = '\0';
		fprintf(stderr, "[%s] %3u%%  %" PRIu64 "/%" PRIu64 " files", bar,
			(unsigned)(100 * p->items_done / p->items_total), p->items_done,
			p->items_total);
	} else {
		fprintf(stderr, "%" PRIu64 " files", p->items_done);
	}
	fprintf(stderr, "  %.1f MB  %.0f files/s  %" PRIu64 " error%s", (double)p->bytes_done / 1e6,
		rate, p->errors, p->errors == 1 ? "" : "s");
	fflush(stderr);
	r->progress_drawn = 1;
	return 0;
}

/* --- the summary ---------------------------------------------------------------- */

static int by_modality(const void *a, const void *b)
{
	return strcmp(((const struct tally *)a)->modality, ((const struct tally *)b)->modality);
}

static void print_row(const struct tally *t, const char *name)
{
	printf("  %-10s %9zu %9zu %9zu %10" PRIu64 "\n", name, t->patients.count,
		t->studies.count, t->series.count, t->instances);
}

static void print_table(struct report *r)
{
	size_t i;

	if (!r->all.instances)
		return;
	qsort(r->mods, r->n_mods, sizeof(*r->mods), by_modality);
	printf("\n  %-10s %9s %9s %9s %10s\n", "modality", "patients", "studies", "series",
		"instances");
	for (i = 0; i < r->n_mods; i++)
		print_row(&r->mods[i], r->mods[i].modality);
	/* Distinct over all modalities: a study with CT and SR counts once. */
	print_row(&r->all, "all");
}

static void print_errors(const struct report *r, const fdn_scan_stats *st)
{
	size_t i;

	if (!st->errors)
		return;
	printf("\nErrors (%" PRIu64 "):\n", st->errors);
	for (i = 0; i < r->n_listed; i++)
		printf("  %s\n", r->errors[i]);
	if (st->errors > r->n_listed)
		printf("  ... and %" PRIu64 " more\n", st->errors - r->n_listed);
}

static void print_summary(struct report *r, const fdn_scan_stats *st, const char *root,
	int interrupted)
{
	double rate = st->elapsed > 0 ? (double)st->files / st->elapsed : 0;

	printf("Scan of %s%s\n", root, interrupted ? " (interrupted: partial results)" : "");
	printf("  files examined   %" PRIu64 " (%.1f MB)\n", st->files, (double)st->bytes / 1e6);
	printf("  DICOM instances  %" PRIu64 "\n", st->instances);
	printf("  not DICOM        %" PRIu64, st->not_dicom);
	if (st->dicomdirs)
		printf(" (%" PRIu64 " DICOMDIR)", st->dicomdirs);
	printf("\n  errors           %" PRIu64 "\n", st->errors);
	printf("  elapsed          %.2f s (%.0f files/s)\n", st->elapsed, rate);
	print_table(r);
	print_errors(r, st);
}

/* --- the command ------------------------------------------------------------------ */

struct scan_args {
	const char *root;
	unsigned int workers;
	int full, quiet;
};

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "fednode scan: %s%s%s%s\n", what, arg ? " '" : "", arg ? arg : "",
		arg ? "'" : "");
	fputs("usage: fednode scan [--workers N] [--full] [--quiet] DIR "
		"(see fednode scan --help)\n", stderr);
	return CLI_USAGE;
}

static int parse_args(struct scan_args *a, int argc, char **argv)
{
	int i, options = 1;

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (options && !strcmp(arg, "--")) {
			options = 0;
		} else if (options && !strcmp(arg, "--full")) {
			a->full = 1;
		} else if (options && !strcmp(arg, "--quiet")) {
			a->quiet = 1;
		} else if (options && !strcmp(arg, "--workers")) {
			if (cli_parse_workers(&a->workers, i + 1 < argc ? argv[++i] : NULL))
				return usage_error("--workers needs a number from 0 to 1024", NULL);
		} else if (options && !strncmp(arg, "--workers=", 10)) {
			if (cli_parse_workers(&a->workers, arg + 10))
				return usage_error("--workers needs a number from 0 to 1024", NULL);
		} else if (options && arg[0] == '-' && arg[1]) {
			return usage_error("unknown option", arg);
		} else if (a->root) {
			return usage_error("unexpected argument", arg);
		} else {
			a->root = arg;
		}
	}
	return a->root ? 0 : usage_error("no DIR given", NULL);
}

static int run(const struct scan_args *a, struct report *r, fdn_cancel *token)
{
	fdn_scan_options opts;
	fdn_scan_stats stats = { FDN_SCAN_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0 };
	struct sigaction old;
	int rc, interrupted;

	if ((rc = fdn_scan_options_init(&opts, FDN_SCAN_OPTIONS_VERSION)) != 0)
		return cli_fail("scan", rc);
	opts.workers = a->workers;
	/* The summary is all this command looks at. */
	opts.read_flags = a->full ? FDN_READ_FULL : FDN_READ_SUMMARY;
	opts.on_instance = on_instance;
	opts.on_skip = on_skip;
	opts.on_progress = r->show_progress ? on_progress : NULL;
	opts.cancel = token;
	opts.payload = r;

	cli_sigint_catch(token, &old);
	rc = fdn_scan(&stats, a->root, &opts);
	cli_sigint_release(&old);
	erase_progress(r);

	interrupted = rc == FDN_ECANCELLED;
	if (r->out_of_memory) {
		fprintf(stderr, "fednode scan: out of memory\n");
		return CLI_FAILED;
	}
	if (rc != 0 && !interrupted)
		return cli_fail("scan", rc);
	print_summary(r, &stats, a->root, interrupted);
	if (interrupted) {
		fflush(stdout);
		fprintf(stderr, "fednode scan: interrupted\n");
		return EXIT_INTERRUPTED;
	}
	return CLI_OK;
}

int cmd_scan(int argc, char **argv)
{
	struct scan_args a = { NULL, 0, 0, 0 };
	struct report r;
	fdn_cancel *token = NULL;
	int rc;

	if ((rc = parse_args(&a, argc, argv)) != 0)
		return rc;
	memset(&r, 0, sizeof(r));
	r.show_progress = !a.quiet && isatty(STDERR_FILENO);
	if ((rc = fdn_cancel_new(&token)) != 0)
		return cli_fail("scan", rc);
	rc = run(&a, &r, token);
	fdn_cancel_free(token);
	report_free(&r);
	return rc;
}
