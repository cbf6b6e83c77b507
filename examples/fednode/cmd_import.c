/*
 * fednode import [--create] [--option NAME]... [--rules FILE] [--allow-burned-in]
 *                [--workers N] [--quiet] --registry DIR --key-file KEY PATH...
 *
 * Reads every DICOM file under each PATH (fdn_scan(), whole files),
 * de-identifies it with the PS3.15 profile and the options asked for,
 * and stores and registers it in the registry DIR.  Additions commit in
 * batches of BATCH_SIZE instances, and on Ctrl-C the current batch is
 * committed before the program ends: every registered instance is
 * complete and nothing is half written.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fednode/fednode.h>

#include "cli.h"

/* Instances per transaction: large enough to amortise the fsyncs of a
 * commit, small enough that a crash loses little work. */
#define BATCH_SIZE 500
/* The shell's exit status for a command ended by SIGINT. */
#define EXIT_INTERRUPTED 130


/* --- arguments ------------------------------------------------------------------ */

struct import_args {
	const char *registry, *key_file, *rules_file;
	char **paths;
	int n_paths;
	unsigned int options, workers;
	int allow_burned_in, quiet, create;
};

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "fednode import: %s%s%s%s\n", what, arg ? " '" : "", arg ? arg : "",
		arg ? "'" : "");
	fputs("usage: fednode import [--create] [--option NAME]... [--rules FILE]\n"
		"                      [--allow-burned-in] [--workers N] [--quiet]\n"
		"                      --registry DIR --key-file KEY PATH...\n"
		"(see fednode import --help)\n", stderr);
	return CLI_USAGE;
}

/* One option at argv[*i]: 0 handled, 1 not an option with a value, or an
 * exit status. */
static int parse_valued(struct import_args *a, int argc, char **argv, int *i)
{
	static const char *const names[] = {
		"--option", "--rules", "--key-file", "--registry", "--workers"
	};
	const char *arg = argv[*i], *v = NULL;
	size_t k;
	int missing = 0;

	for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
		if ((v = cli_option_value(arg, names[k], argc, argv, i, &missing)) != NULL ||
				missing)
			break;
	if (missing)
		return usage_error("missing value after", arg);
	if (!v)
		return 1;
	switch (k) {
	case 0:
		return cli_parse_deid_option(&a->options, "import", v);
	case 1:
		a->rules_file = v;
		return 0;
	case 2:
		a->key_file = v;
		return 0;
	case 3:
		a->registry = v;
		return 0;
	default:
		return cli_parse_workers(&a->workers, v) ?
			usage_error("--workers needs a number from 0 to 1024", NULL) : 0;
	}
}

static int parse_args(struct import_args *a, int argc, char **argv)
{
	int i, rc, options = 1;

	if (!(a->paths = calloc((size_t)argc, sizeof(*a->paths)))) {
		fprintf(stderr, "fednode import: out of memory\n");
		return CLI_FAILED;
	}
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (options && !strcmp(arg, "--")) {
			options = 0;
		} else if (options && !strcmp(arg, "--allow-burned-in")) {
			a->allow_burned_in = 1;
		} else if (options && !strcmp(arg, "--quiet")) {
			a->quiet = 1;
		} else if (options && !strcmp(arg, "--create")) {
			a->create = 1;
		} else if (options && arg[0] == '-' && arg[1]) {
			if ((rc = parse_valued(a, argc, argv, &i)) == 1)
				return usage_error("unknown option", arg);
			if (rc != 0)
				return rc;
		} else {
			a->paths[a->n_paths++] = argv[i];
		}
	}
	if (!a->registry)
		return usage_error("no --registry DIR given", NULL);
	if (!a->key_file)
		return usage_error("no --key-file given (create a key once with "
			"'fednode deid --init-key KEY')", NULL);
	if (!a->n_paths)
		return usage_error("no PATH to import given", NULL);
	return 0;
}

/* --- the run ----------------------------------------------------------------------- */

struct run {
	fdn_registry *reg;
	const fdn_deid_profile *profile;
	uint64_t imported, present, in_batch;
	uint64_t files, not_dicom;      /* over every PATH */
	struct cli_lines refused, failed;
	int show_progress, progress_drawn, out_of_memory, batch_open;
	int batch_rc;                   /* a failed begin or commit */
};

static int note(struct run *r, struct cli_lines *l, const char *path, const char *reason)
{
	if (cli_lines_add(l, path, reason) == 0)
		return 0;
	r->out_of_memory = 1;
	return FDN_EUSER;
}

static int note_error(struct run *r, const char *path, int rc)
{
	const fdn_error *e = fdn_error_last();

	return note(r, &r->failed, path,
		e->code == rc ? e->message : fdn_strerror((fdn_error_code)rc));
}

static int batch_begin(struct run *r)
{
	int rc;

	if (r->batch_open)
		return 0;
	if ((rc = fdn_registry_begin(r->reg)) != 0)
		return rc;
	r->batch_open = 1;
	r->in_batch = 0;
	return 0;
}

static int batch_commit(struct run *r)
{
	if (!r->batch_open)
		return 0;
	r->batch_open = 0;
	return fdn_registry_commit(r->reg);
}

/* Stops the scan with FDN_EUSER after a failed begin or commit. */
static int batch_failed(struct run *r, int rc)
{
	r->batch_rc = rc;
	return FDN_EUSER;
}

static int register_instance(struct run *r, const char *path, const fdn_dataset *ds)
{
	int rc, result = FDN_REGISTRY_ADDED;

	if ((rc = batch_begin(r)) != 0)
		return batch_failed(r, rc);
	rc = fdn_registry_add(&result, r->reg, ds, FDN_REGISTRY_ADD_DEFAULT);
	if (rc != 0)
		return note_error(r, path, rc);
	if (result == FDN_REGISTRY_ALREADY_PRESENT)
		r->present++;
	else
		r->imported++;
	if (++r->in_batch >= BATCH_SIZE && (rc = batch_commit(r)) != 0)
		return batch_failed(r, rc);
	return 0;
}

/* Runs on this thread, one file at a time.  The dataset is lent for the
 * call and ours to change: de-identified in place, then registered. */
static int on_instance(const char *path, fdn_dataset *ds, const fdn_instance_info *info,
	void *payload)
{
	struct run *r = payload;
	fdn_deid_report *rep = NULL;
	int rc;

	(void)info;
	rc = fdn_deid_apply(&rep, r->profile, ds);
	if (rc == FDN_EPHI) {
		const char *why = fdn_deid_report_refusal(rep);
		rc = note(r, &r->refused, path, why ? why : "refused");
	} else if (rc != 0) {
		/* The dataset may be half changed: it is never registered. */
		rc = note_error(r, path, rc);
	} else {
		rc = register_instance(r, path, ds);
	}
	fdn_deid_report_free(rep);
	return rc;
}

static int on_skip(const char *path, int code, const char *reason, void *payload)
{
	struct run *r = payload;

	if (code == FDN_EUNSUPPORTED)
		return 0; /* not DICOM: counted by the scan */
	return note(r, &r->failed, path, reason);
}

static void erase_progress(struct run *r)
{
	if (r->progress_drawn)
		fputs("\r\033[K", stderr);
	r->progress_drawn = 0;
}

static int on_progress(const fdn_progress *p, void *payload)
{
	struct run *r = payload;

	fputs("\r\033[K", stderr);
	if (p->items_total)
		fprintf(stderr, "%3u%%  ", (unsigned)(100 * p->items_done / p->items_total));
	fprintf(stderr, "%" PRIu64 " files  %" PRIu64 " imported  %" PRIu64 " present  "
		"%zu refused  %zu errors", r->files + p->items_done, r->imported, r->present,
		r->refused.n, r->failed.n);
	fflush(stderr);
	r->progress_drawn = 1;
	return 0;
}

static int scan_one(struct run *r, const char *path, unsigned int workers, fdn_cancel *token)
{
	fdn_scan_stats st = { FDN_SCAN_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0 };
	fdn_scan_options opts;
	struct stat sb;
	int rc;

	if (stat(path, &sb) != 0)
		return note(r, &r->failed, path, strerror(errno));
	if ((rc = fdn_scan_options_init(&opts, FDN_SCAN_OPTIONS_VERSION)) != 0)
		return rc;
	opts.read_flags = FDN_READ_FULL;
	opts.workers = workers;
	opts.on_instance = on_instance;
	opts.on_skip = on_skip;
	opts.on_progress = r->show_progress ? on_progress : NULL;
	opts.cancel = token;
	opts.payload = r;
	rc = fdn_scan(&st, path, &opts);
	r->files += st.files;
	r->not_dicom += st.not_dicom;
	if (rc != 0 && rc != FDN_ECANCELLED && rc != FDN_EUSER) {
		/* This PATH cannot be scanned; the others still can. */
		rc = note_error(r, path, rc);
	}
	return rc;
}

static int import_all(struct run *r, const struct import_args *a, fdn_cancel *token)
{
	struct sigaction old;
	int i, rc = 0, rc2;

	/* Ctrl-C stops between files and the batch so far is committed; a
	 * second one (SA_RESETHAND) ends the program at once, and SQLite
	 * then drops the uncommitted batch as a crash would. */
	cli_sigint_catch(token, &old);
	for (i = 0; i < a->n_paths && rc == 0; i++)
		rc = scan_one(r, a->paths[i], a->workers, token);
	rc2 = batch_commit(r);
	cli_sigint_release(&old);
	erase_progress(r);
	if (rc2 != 0 && !r->batch_rc)
		r->batch_rc = rc2;
	return rc;
}

static void print_summary(const struct run *r, const char *registry, int interrupted)
{
	printf("Import into %s%s\n", registry, interrupted ? " (interrupted)" : "");
	printf("  files examined    %" PRIu64 "\n", r->files);
	printf("  imported          %" PRIu64 "\n", r->imported);
	printf("  already present   %" PRIu64 "\n", r->present);
	printf("  refused           %zu\n", r->refused.n);
	printf("  not DICOM         %" PRIu64 "\n", r->not_dicom);
	printf("  errors            %zu\n", r->failed.n);
	cli_lines_print(&r->refused, "Refused (possible burned-in annotation or recognizable "
		"features; see --allow-burned-in)");
	cli_lines_print(&r->failed, "Errors");
}

static int run_import(const struct import_args *a, fdn_registry *reg,
	const fdn_deid_profile *profile)
{
	fdn_cancel *token = NULL;
	struct run r;
	int rc, interrupted;

	memset(&r, 0, sizeof(r));
	r.reg = reg;
	r.profile = profile;
	r.show_progress = !a->quiet && isatty(STDERR_FILENO);
	if ((rc = fdn_cancel_new(&token)) != 0)
		return cli_fail("import", rc);
	rc = import_all(&r, a, token);
	fdn_cancel_free(token);
	interrupted = rc == FDN_ECANCELLED;
	if (r.out_of_memory) {
		fprintf(stderr, "fednode import: out of memory\n");
		rc = CLI_FAILED;
	} else if (r.batch_rc) {
		rc = cli_fail("import: cannot commit to the registry", r.batch_rc);
	} else {
		print_summary(&r, a->registry, interrupted);
		rc = interrupted ? EXIT_INTERRUPTED :
			(r.refused.n || r.failed.n) ? CLI_FAILED : CLI_OK;
	}
	cli_lines_free(&r.refused);
	cli_lines_free(&r.failed);
	return rc;
}

int cmd_import(int argc, char **argv)
{
	struct import_args a;
	fdn_deid_profile *profile = NULL;
	fdn_registry *reg = NULL;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((rc = parse_args(&a, argc, argv)) == 0 &&
			(rc = cli_deid_profile(&profile, "import", a.key_file, a.options,
				a.rules_file, a.allow_burned_in)) == CLI_OK &&
			(rc = cli_registry_open(&reg, "import", a.registry, a.create, 0)) == CLI_OK)
		rc = run_import(&a, reg, profile);
	fdn_registry_free(reg);
	fdn_deid_profile_free(profile);
	free(a.paths);
	return rc;
}
