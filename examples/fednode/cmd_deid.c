/*
 * fednode deid [--option NAME]... [--rules FILE] [--allow-burned-in]
 *              [--workers N] [--quiet] --key-file KEY IN OUT
 * fednode deid --init-key KEY
 * fednode deid --pseudonym ID --key-file KEY
 *
 * De-identifies a DICOM file, or every DICOM file under a folder into a
 * folder of the same layout, with the PS3.15 Basic Application Level
 * Confidentiality Profile and the options asked for.  fdn_scan() reads
 * the files (on worker threads) and hands each one to this thread, which
 * de-identifies it and writes it atomically.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fednode/fednode.h>

#include "cli.h"

/* The shell's exit status for a command ended by SIGINT. */
#define EXIT_INTERRUPTED 130

/* --- arguments ------------------------------------------------------------------ */

struct deid_args {
	const char *in, *out, *key_file, *rules_file, *init_key, *pseudonym;
	unsigned int options, workers;
	int allow_burned_in, quiet;
};

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "fednode deid: %s%s%s%s\n", what, arg ? " '" : "", arg ? arg : "",
		arg ? "'" : "");
	fputs("usage: fednode deid [--option NAME]... [--rules FILE] [--allow-burned-in]\n"
		"                    [--workers N] [--quiet] --key-file KEY IN OUT\n"
		"       fednode deid --init-key KEY\n"
		"       fednode deid --pseudonym ID --key-file KEY\n"
		"(see fednode deid --help)\n", stderr);
	return CLI_USAGE;
}

/* One option at argv[*i]: 0 handled, 1 not an option with a value, or an
 * exit status. */
static int parse_valued(struct deid_args *a, int argc, char **argv, int *i)
{
	static const char *const names[] = {
		"--option", "--rules", "--key-file", "--init-key", "--pseudonym", "--workers"
	};
	const char *arg = argv[*i], *v = NULL;
	size_t k;
	int missing = 0;

	for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
		if ((v = cli_option_value(arg, names[k], argc, argv, i, &missing)) != NULL || missing)
			break;
	if (missing)
		return usage_error("missing value after", arg);
	if (!v)
		return 1;
	switch (k) {
	case 0:
		return cli_parse_deid_option(&a->options, "deid", v);
	case 1:
		a->rules_file = v;
		return 0;
	case 2:
		a->key_file = v;
		return 0;
	case 3:
		a->init_key = v;
		return 0;
	case 4:
		a->pseudonym = v;
		return 0;
	default:
		return cli_parse_workers(&a->workers, v) ?
			usage_error("--workers needs a number from 0 to 1024", NULL) : 0;
	}
}

static int check_mode(const struct deid_args *a)
{
	int converting = a->in || a->out || a->options || a->rules_file ||
		a->allow_burned_in || a->workers;

	if (a->init_key) {
		if (converting || a->key_file || a->pseudonym)
			return usage_error("--init-key takes no other argument", NULL);
		return 0;
	}
	if (!a->key_file)
		return usage_error("no --key-file given (create a key once with "
			"'fednode deid --init-key KEY')", NULL);
	if (a->pseudonym)
		return converting ? usage_error("--pseudonym takes only --key-file", NULL) : 0;
	if (!a->in || !a->out)
		return usage_error("IN and OUT are required", NULL);
	return 0;
}

static int parse_args(struct deid_args *a, int argc, char **argv)
{
	int i, rc, options = 1;

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (options && !strcmp(arg, "--")) {
			options = 0;
		} else if (options && !strcmp(arg, "--allow-burned-in")) {
			a->allow_burned_in = 1;
		} else if (options && !strcmp(arg, "--quiet")) {
			a->quiet = 1;
		} else if (options && arg[0] == '-' && arg[1]) {
			if ((rc = parse_valued(a, argc, argv, &i)) == 1)
				return usage_error("unknown option", arg);
			if (rc != 0)
				return rc;
		} else if (!a->in) {
			a->in = arg;
		} else if (!a->out) {
			a->out = arg;
		} else {
			return usage_error("unexpected argument", arg);
		}
	}
	return check_mode(a);
}

/* --- the site key and the profile ------------------------------------------------- */

/* --- output paths ------------------------------------------------------------------ */

/* Creates the folders of @p path (a file path) below its first @p from bytes. */
static int make_parents(char *path, size_t from)
{
	char *p;

	for (p = path + from; (p = strchr(p, '/')) != NULL; p++) {
		if (p == path)
			continue;
		*p = '\0';
		if (mkdir(path, 0777) != 0 && errno != EEXIST) {
			int err = errno;
			*p = '/';
			errno = err;
			return -1;
		}
		*p = '/';
	}
	return 0;
}

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* 1 when @p inner is @p outer or lies under it (both must exist). */
static int path_within(const char *inner, const char *outer)
{
	char a[PATH_MAX], b[PATH_MAX];
	size_t n;

	if (!realpath(inner, a) || !realpath(outer, b))
		return 0;
	n = strlen(b);
	return !strncmp(a, b, n) && (a[n] == '\0' || a[n] == '/' || n == 1);
}

/* --- the run ----------------------------------------------------------------------- */

struct run {
	const fdn_deid_profile *profile;
	const char *in, *out;
	size_t in_len;          /* of IN without trailing slashes */
	int tree;               /* IN is a folder */
	uint64_t done;
	struct cli_lines refused, failed;
	int show_progress, progress_drawn, out_of_memory;
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

/* OUT, or OUT/<the path below IN>. */
static char *output_path(const struct run *r, const char *path)
{
	const char *rel = path + r->in_len;
	size_t len;
	char *out;

	if (!r->tree)
		return strdup(r->out);
	while (*rel == '/')
		rel++;
	len = strlen(r->out) + strlen(rel) + 2;
	if ((out = malloc(len)) != NULL)
		snprintf(out, len, "%s/%s", r->out, rel);
	return out;
}

static int write_output(struct run *r, const char *path, const fdn_dataset *ds)
{
	char *dest = output_path(r, path);
	int rc;

	if (!dest) {
		r->out_of_memory = 1;
		return FDN_EUSER;
	}
	if (r->tree && make_parents(dest, strlen(r->out) + 1) != 0) {
		char reason[PATH_MAX + 64];
		snprintf(reason, sizeof(reason), "cannot create the folders of '%s': %s", dest,
			strerror(errno));
		free(dest);
		return note(r, &r->failed, path, reason);
	}
	rc = fdn_dataset_write_file(ds, dest, FDN_WRITE_DEFAULT);
	free(dest);
	if (rc != 0)
		return note_error(r, path, rc);
	r->done++;
	return 0;
}

/* Runs on this thread, one file at a time: read (by the scan), apply, write. */
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
		/* The dataset may be half changed: it is never written. */
		rc = note_error(r, path, rc);
	} else {
		rc = write_output(r, path, ds);
	}
	fdn_deid_report_free(rep);
	return rc;
}

static int on_skip(const char *path, int code, const char *reason, void *payload)
{
	struct run *r = payload;

	/* Files that are not DICOM instances (DICOMDIRs too) are only counted:
	 * nothing of them is copied. */
	if (code == FDN_EUNSUPPORTED)
		return 0;
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
	fprintf(stderr, "%" PRIu64 " files  %" PRIu64 " de-identified  %zu refused  %zu errors",
		p->items_done, r->done, r->refused.n, r->failed.n);
	fflush(stderr);
	r->progress_drawn = 1;
	return 0;
}

static int scan(struct run *r, unsigned int workers, fdn_cancel *token, fdn_scan_stats *st)
{
	fdn_scan_options opts;
	struct sigaction old;
	int rc;

	if ((rc = fdn_scan_options_init(&opts, FDN_SCAN_OPTIONS_VERSION)) != 0)
		return rc;
	opts.read_flags = FDN_READ_FULL;
	opts.workers = workers;
	opts.on_instance = on_instance;
	opts.on_skip = on_skip;
	opts.on_progress = r->show_progress ? on_progress : NULL;
	opts.cancel = token;
	opts.payload = r;
	/* Ctrl-C stops between files (every output is written atomically);
	 * a second one (SA_RESETHAND) ends the program at once. */
	cli_sigint_catch(token, &old);
	rc = fdn_scan(st, r->in, &opts);
	cli_sigint_release(&old);
	erase_progress(r);
	return rc;
}

static void print_summary(const struct run *r, const fdn_scan_stats *st, int interrupted)
{
	printf("De-identification of %s into %s%s\n", r->in, r->out,
		interrupted ? " (interrupted)" : "");
	printf("  files examined    %" PRIu64 "\n", st->files);
	printf("  de-identified     %" PRIu64 "\n", r->done);
	printf("  refused           %zu\n", r->refused.n);
	printf("  not DICOM         %" PRIu64 " (not copied)\n", st->not_dicom);
	printf("  errors            %zu\n", r->failed.n);
	cli_lines_print(&r->refused, "Refused (possible burned-in annotation or recognizable "
		"features; see --allow-burned-in)");
	cli_lines_print(&r->failed, "Errors");
}

/* Checks IN and OUT and creates OUT for a tree. */
static int prepare_paths(struct run *r)
{
	struct stat st;

	if (stat(r->in, &st) != 0) {
		fprintf(stderr, "fednode deid: cannot read '%s': %s\n", r->in, strerror(errno));
		return CLI_FAILED;
	}
	r->tree = S_ISDIR(st.st_mode);
	r->in_len = strlen(r->in);
	while (r->in_len > 1 && r->in[r->in_len - 1] == '/')
		r->in_len--;
	if (!r->tree) {
		if (is_dir(r->out) || path_within(r->out, r->in)) {
			fprintf(stderr, "fednode deid: OUT must be a file name other than IN "
				"when IN is a file\n");
			return CLI_FAILED;
		}
		return CLI_OK;
	}
	if (mkdir(r->out, 0777) != 0 && errno != EEXIST) {
		fprintf(stderr, "fednode deid: cannot create '%s': %s\n", r->out, strerror(errno));
		return CLI_FAILED;
	}
	if (!is_dir(r->out)) {
		fprintf(stderr, "fednode deid: '%s' is not a folder\n", r->out);
		return CLI_FAILED;
	}
	/* Outputs inside IN would be read back as inputs; IN inside OUT would
	 * be overwritten. */
	if (path_within(r->out, r->in) || path_within(r->in, r->out)) {
		fprintf(stderr, "fednode deid: IN and OUT must not contain each other\n");
		return CLI_FAILED;
	}
	return CLI_OK;
}

static int convert(const struct deid_args *a, const fdn_deid_profile *profile)
{
	fdn_scan_stats st = { FDN_SCAN_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0 };
	fdn_cancel *token = NULL;
	struct run r;
	int rc, interrupted;

	memset(&r, 0, sizeof(r));
	r.profile = profile;
	r.in = a->in;
	r.out = a->out;
	r.show_progress = !a->quiet && isatty(STDERR_FILENO);
	if ((rc = prepare_paths(&r)) != CLI_OK)
		return rc;
	if ((rc = fdn_cancel_new(&token)) != 0)
		return cli_fail("deid", rc);
	rc = scan(&r, a->workers, token, &st);
	fdn_cancel_free(token);
	interrupted = rc == FDN_ECANCELLED;
	if (r.out_of_memory) {
		fprintf(stderr, "fednode deid: out of memory\n");
		rc = CLI_FAILED;
	} else if (rc != 0 && !interrupted) {
		rc = cli_fail("deid", rc);
	} else {
		print_summary(&r, &st, interrupted);
		if (!r.tree && st.not_dicom)
			fprintf(stderr, "fednode deid: '%s' is not a DICOM instance\n", r.in);
		rc = interrupted ? EXIT_INTERRUPTED :
			(r.refused.n || r.failed.n || (!r.tree && !r.done)) ? CLI_FAILED : CLI_OK;
	}
	cli_lines_free(&r.refused);
	cli_lines_free(&r.failed);
	return rc;
}

static int init_key(const char *path)
{
	int rc = fdn_deid_key_generate(path);

	if (rc != 0)
		return cli_fail("cannot create the site key", rc);
	printf("Created the site key %s (mode 0600).\n"
		"Keep it secret and back it up: every node of this site needs the same key\n"
		"to give a patient the same pseudonym, and without it pseudonyms cannot be\n"
		"recomputed for a consent withdrawal.\n", path);
	return CLI_OK;
}

static int print_pseudonym(const fdn_deid_profile *profile, const char *id)
{
	fdn_buf out = FDN_BUF_INIT;
	int rc = fdn_deid_pseudonym_for(&out, profile, id);

	if (rc != 0)
		return cli_fail("pseudonym", rc);
	printf("%s\n", out.ptr);
	fdn_buf_dispose(&out);
	return CLI_OK;
}

int cmd_deid(int argc, char **argv)
{
	struct deid_args a;
	fdn_deid_profile *profile = NULL;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((rc = parse_args(&a, argc, argv)) != 0)
		return rc;
	if (a.init_key)
		return init_key(a.init_key);
	if ((rc = cli_deid_profile(&profile, "deid", a.key_file, a.options, a.rules_file,
	    a.allow_burned_in)) != CLI_OK)
		return rc;
	rc = a.pseudonym ? print_pseudonym(profile, a.pseudonym) : convert(&a, profile);
	fdn_deid_profile_free(profile);
	return rc;
}
