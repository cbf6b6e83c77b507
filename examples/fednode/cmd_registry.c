/*
 * fednode registry DIR SUBCOMMAND [ARGS...]
 *
 *   stats | query FILTER | label LEVEL UID KEY VALUE
 *   cohort create NAME FILTER | cohort list | cohort show NAME
 *   withdraw PATIENT [--key-file KEY] --reason TEXT [--purge]
 *   export COHORT [--format json|csv] [--output FILE]
 *   verify | audit [--since N]
 *
 * Looks into and manages the dataset registry that `fednode import`
 * fills: counts, queries, labels, cohorts, consent, manifests, and the
 * tamper-evident audit log.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <fednode/fednode.h>

#include "cli.h"

#define MAX_POSITIONAL 4

struct reg_args {
	const char *dir, *sub;
	const char *pos[MAX_POSITIONAL];
	int n_pos;
	const char *key_file, *reason, *format, *output, *since;
	int purge;
};

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "fednode registry: %s%s%s%s\n", what, arg ? " '" : "", arg ? arg : "",
		arg ? "'" : "");
	fputs("usage: fednode registry DIR SUBCOMMAND [ARGS...]  (see fednode registry --help)\n",
		stderr);
	return CLI_USAGE;
}

/* --- the audit export, read with jansson ------------------------------------------- */

typedef int (*record_cb)(json_t *record, void *payload);

/* Calls @p cb with each record of the audit log from @p since on. */
static int each_record(fdn_registry *reg, uint64_t since, const char *what, record_cb cb,
	void *payload)
{
	fdn_buf log = FDN_BUF_INIT;
	json_error_t err;
	json_t *all, *rec;
	size_t i;
	int rc;

	if ((rc = fdn_registry_audit_export(&log, reg, since)) != 0)
		return cli_fail(what, rc);
	all = json_loadb(log.ptr, log.size, 0, &err);
	fdn_buf_dispose(&log);
	if (!json_is_array(all)) {
		fprintf(stderr, "fednode registry: the audit export is not a JSON array\n");
		json_decref(all);
		return CLI_FAILED;
	}
	rc = CLI_OK;
	json_array_foreach(all, i, rec)
		if ((rc = cb(rec, payload)) != CLI_OK)
			break;
	json_decref(all);
	return rc;
}

/* A member as text: strings as they are, numbers in decimal, else "". */
static const char *text_of(json_t *obj, const char *key, char *tmp, size_t size)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(tmp, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return tmp;
	}
	return "";
}

/* --- subcommands -------------------------------------------------------------------- */

static int do_stats(fdn_registry *reg, const struct reg_args *a)
{
	fdn_registry_stats st;
	int rc;

	memset(&st, 0, sizeof(st));
	st.version = FDN_REGISTRY_STATS_VERSION;
	if ((rc = fdn_registry_stats_get(&st, reg)) != 0)
		return cli_fail("registry stats", rc);
	printf("Registry %s\n", a->dir);
	printf("  patients          %" PRIu64 "\n", st.patients);
	printf("  withdrawn         %" PRIu64 "\n", st.withdrawn_patients);
	printf("  studies           %" PRIu64 "\n", st.studies);
	printf("  series            %" PRIu64 "\n", st.series);
	printf("  instances         %" PRIu64 "\n", st.instances);
	printf("  stored bytes      %" PRIu64 "\n", st.bytes);
	printf("  cohorts           %" PRIu64 "\n", st.cohorts);
	printf("  audit records     %" PRIu64 "\n", st.audit_records);
	return CLI_OK;
}

/* A filter syntax error is shown under the filter, with a caret. */
static int check_filter(const char *filter)
{
	int column = 0, rc = fdn_registry_filter_check(&column, filter);

	if (rc == 0)
		return CLI_OK;
	if (rc != FDN_EINVALID)
		return cli_fail("filter", rc);
	fprintf(stderr, "fednode registry: %s\n  %s\n", fdn_error_last()->message, filter);
	if (column > 0)
		fprintf(stderr, "  %*s^\n", column - 1, "");
	return CLI_USAGE;
}

static int do_query(fdn_registry *reg, const struct reg_args *a)
{
	uint64_t n = 0;
	int rc;

	if ((rc = check_filter(a->pos[0])) != CLI_OK)
		return rc;
	if ((rc = fdn_registry_query_count(&n, reg, a->pos[0])) != 0)
		return cli_fail("registry query", rc);
	printf("%" PRIu64 "\n", n);
	return CLI_OK;
}

static int do_label(fdn_registry *reg, const struct reg_args *a)
{
	static const char *const levels[] = { "study", "series", "instance" };
	int level, rc;

	for (level = 0; level < 3; level++)
		if (!strcmp(a->pos[0], levels[level]))
			break;
	if (level == 3)
		return usage_error("LEVEL must be study, series or instance, not", a->pos[0]);
	rc = fdn_registry_label(reg, level, a->pos[1], a->pos[2], a->pos[3]);
	if (rc == FDN_ENOTFOUND) {
		fprintf(stderr, "fednode registry: no %s '%s' in the registry\n", a->pos[0],
			a->pos[1]);
		return CLI_FAILED;
	}
	if (rc != 0)
		return cli_fail("registry label", rc);
	printf(*a->pos[3] ? "Labelled %s %s: %s = %s\n" : "Removed from %s %s: label %s%s\n",
		a->pos[0], a->pos[1], a->pos[2], a->pos[3]);
	return CLI_OK;
}

static int do_cohort_create(fdn_registry *reg, const struct reg_args *a)
{
	char hash[65];
	uint64_t members = 0;
	int rc;

	if ((rc = check_filter(a->pos[1])) != CLI_OK)
		return rc;
	/* In one transaction, so that the count is the snapshot's. */
	if ((rc = fdn_registry_begin(reg)) != 0)
		return cli_fail("registry cohort create", rc);
	rc = fdn_cohort_create(hash, reg, a->pos[0], a->pos[1]);
	if (rc == 0)
		rc = fdn_registry_query_count(&members, reg, a->pos[1]);
	if (rc != 0) {
		if (rc == FDN_ECONFLICT)
			fprintf(stderr, "fednode registry: a cohort named '%s' exists already\n",
				a->pos[0]);
		else
			cli_fail("registry cohort create", rc);
		fdn_registry_rollback(reg);
		return CLI_FAILED;
	}
	if ((rc = fdn_registry_commit(reg)) != 0)
		return cli_fail("registry cohort create", rc);
	printf("Created cohort %s: %" PRIu64 " members\nsnapshot sha256 %s\n", a->pos[0],
		members, hash);
	return CLI_OK;
}

struct listing {
	unsigned n;
};

static int list_one(json_t *rec, void *payload)
{
	struct listing *l = payload;
	json_t *d = json_object_get(rec, "details");
	char tmp[32];

	if (strcmp(text_of(rec, "event", tmp, sizeof(tmp)), "cohort.create") != 0 ||
	    !json_is_object(d))
		return CLI_OK;
	if (!l->n++)
		printf("%-24s %8s  %-24s  %s\n", "NAME", "MEMBERS", "CREATED", "SNAPSHOT SHA-256");
	printf("%-24s %8s  ", text_of(d, "name", tmp, sizeof(tmp)),
		text_of(d, "members", tmp, sizeof(tmp)));
	printf("%-24s  %s\n", text_of(rec, "time", tmp, sizeof(tmp)),
		text_of(d, "snapshot_sha256", tmp, sizeof(tmp)));
	return CLI_OK;
}

/* There is no function to list cohorts: their creations are read back
 * from the audit log, which holds every one (cohorts are never deleted). */
static int do_cohort_list(fdn_registry *reg, const struct reg_args *a)
{
	struct listing l = { 0 };
	int rc;

	(void)a;
	if ((rc = each_record(reg, 0, "registry cohort list", list_one, &l)) != CLI_OK)
		return rc;
	if (!l.n)
		printf("No cohorts.\n");
	return CLI_OK;
}

static int do_cohort_show(fdn_registry *reg, const struct reg_args *a)
{
	fdn_cohort_iter *it = NULL;
	fdn_cohort_member m;
	uint64_t n = 0;
	int rc;

	rc = fdn_cohort_iter_new(&it, reg, a->pos[0], "fednode cohort show");
	if (rc == FDN_ENOTFOUND) {
		fprintf(stderr, "fednode registry: no cohort '%s'\n", a->pos[0]);
		return CLI_FAILED;
	}
	if (rc != 0)
		return cli_fail("registry cohort show", rc);
	while ((rc = fdn_cohort_iter_next(&m, it)) == 0) {
		printf("%s  %s  %s  %s\n", m.sop_instance_uid, m.patient, m.modality,
			m.labels_json ? m.labels_json : "{}");
		n++;
	}
	fdn_cohort_iter_free(it);
	if (rc != FDN_ENOTFOUND)
		return cli_fail("registry cohort show", rc);
	printf("%" PRIu64 " members (of consenting patients)\n", n);
	return CLI_OK;
}

static int do_withdraw(fdn_registry *reg, const struct reg_args *a)
{
	fdn_deid_profile *profile = NULL;
	fdn_buf pseudonym = FDN_BUF_INIT;
	int rc;

	if (a->key_file) {
		if ((rc = cli_deid_profile(&profile, "registry", a->key_file, 0, NULL, 0)) !=
				CLI_OK)
			return rc;
		if ((rc = fdn_deid_pseudonym_for(&pseudonym, profile, a->pos[0])) != 0) {
			fdn_deid_profile_free(profile);
			return cli_fail("registry withdraw", rc);
		}
	}
	rc = fdn_registry_withdraw(reg, a->pos[0], profile, a->reason, a->purge);
	fdn_deid_profile_free(profile);
	if (rc == FDN_ENOTFOUND) {
		/* The original Patient ID is never printed, only its pseudonym. */
		fprintf(stderr, "fednode registry: no patient %s%s in the registry\n",
			profile ? "with pseudonym " : "", profile ? pseudonym.ptr : a->pos[0]);
		fdn_buf_dispose(&pseudonym);
		return CLI_FAILED;
	}
	if (rc != 0) {
		fdn_buf_dispose(&pseudonym);
		return cli_fail("registry withdraw", rc);
	}
	printf("Consent withdrawn for patient %s%s\n", profile ? pseudonym.ptr : a->pos[0],
		a->purge ? "; their files were deleted" : "");
	fdn_buf_dispose(&pseudonym);
	return CLI_OK;
}

/* Writes @p data to @p path through a temporary file and a rename, so
 * that a reader never sees half a manifest. */
static int write_atomically(const char *path, const char *data, size_t size)
{
	size_t n = strlen(path) + 32;
	char *tmp = malloc(n);
	FILE *f;
	int ok;

	if (!tmp)
		return -1;
	snprintf(tmp, n, "%s.tmp-%ld", path, (long)getpid());
	if (!(f = fopen(tmp, "wb"))) {
		free(tmp);
		return -1;
	}
	ok = fwrite(data, 1, size, f) == size;
	ok = (fflush(f) == 0) && ok;
	ok = (fsync(fileno(f)) == 0) && ok;
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, path) != 0) {
		int err = errno;
		remove(tmp);
		free(tmp);
		errno = err;
		return -1;
	}
	free(tmp);
	return 0;
}

static int do_export(fdn_registry *reg, const struct reg_args *a)
{
	fdn_buf out = FDN_BUF_INIT;
	int format, rc;

	if (!a->format || !strcmp(a->format, "json"))
		format = FDN_MANIFEST_JSON;
	else if (!strcmp(a->format, "csv"))
		format = FDN_MANIFEST_CSV;
	else
		return usage_error("--format must be json or csv, not", a->format);
	rc = fdn_cohort_export(&out, reg, a->pos[0], format);
	if (rc == FDN_ENOTFOUND) {
		fprintf(stderr, "fednode registry: no cohort '%s'\n", a->pos[0]);
		return CLI_FAILED;
	}
	if (rc != 0)
		return cli_fail("registry export", rc);
	if (a->output) {
		if (write_atomically(a->output, out.ptr, out.size) != 0) {
			fprintf(stderr, "fednode registry: cannot write '%s': %s\n", a->output,
				strerror(errno));
			rc = CLI_FAILED;
		}
	} else {
		fwrite(out.ptr, 1, out.size, stdout);
		if (out.size && out.ptr[out.size - 1] != '\n')
			putchar('\n');
	}
	fdn_buf_dispose(&out);
	return rc;
}

static int do_verify(fdn_registry *reg, const struct reg_args *a)
{
	fdn_buf problem = FDN_BUF_INIT;
	int rc = fdn_registry_verify(&problem, reg);

	if (rc == FDN_EAUTH) {
		printf("Registry %s is NOT intact: %s\n", a->dir,
			problem.ptr ? problem.ptr : fdn_error_last()->message);
		fdn_buf_dispose(&problem);
		return CLI_FAILED;
	}
	fdn_buf_dispose(&problem);
	if (rc != 0)
		return cli_fail("registry verify", rc);
	printf("Registry %s is intact: the audit chain and every stored file check out.\n",
		a->dir);
	return CLI_OK;
}

static int print_line(json_t *rec, void *payload)
{
	char *line = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);

	(void)payload;
	if (!line)
		return CLI_FAILED;
	printf("%s\n", line);
	free(line);
	return CLI_OK;
}

static int do_audit(fdn_registry *reg, const struct reg_args *a)
{
	uint64_t since = 0;
	char *end;

	if (a->since) {
		errno = 0;
		since = strtoull(a->since, &end, 10);
		if (*a->since < '0' || *a->since > '9' || *end || errno)
			return usage_error("--since needs a sequence number, not", a->since);
	}
	return each_record(reg, since, "registry audit", print_line, NULL);
}

/* --- the table of subcommands --------------------------------------------------------- */

enum { OPT_KEY_FILE = 1, OPT_REASON = 2, OPT_PURGE = 4, OPT_FORMAT = 8, OPT_OUTPUT = 16,
	OPT_SINCE = 32 };

static const struct sub {
	const char *name, *action;  /* action: for "cohort ACTION" */
	int n_pos;
	unsigned options;
	int read_only;
	const char *synopsis;
	int (*run)(fdn_registry *reg, const struct reg_args *a);
} subs[] = {
	{ "stats", NULL, 0, 0, 1, "stats", do_stats },
	{ "query", NULL, 1, 0, 1, "query FILTER", do_query },
	{ "label", NULL, 4, 0, 0, "label LEVEL UID KEY VALUE", do_label },
	{ "cohort", "create", 2, 0, 0, "cohort create NAME FILTER", do_cohort_create },
	{ "cohort", "list", 0, 0, 1, "cohort list", do_cohort_list },
	{ "cohort", "show", 1, 0, 0, "cohort show NAME", do_cohort_show },
	{ "withdraw", NULL, 1, OPT_KEY_FILE | OPT_REASON | OPT_PURGE, 0,
	  "withdraw PATIENT [--key-file KEY] --reason TEXT [--purge]", do_withdraw },
	{ "export", NULL, 1, OPT_FORMAT | OPT_OUTPUT, 0,
	  "export COHORT [--format json|csv] [--output FILE]", do_export },
	{ "verify", NULL, 0, 0, 1, "verify", do_verify },
	{ "audit", NULL, 0, OPT_SINCE, 1, "audit [--since N]", do_audit },
};

#define N_SUBS (sizeof(subs) / sizeof(subs[0]))

static int parse_option(struct reg_args *a, const struct sub *s, int argc, char **argv,
	int *i)
{
	static const struct {
		const char *name;
		unsigned bit;
	} valued[] = {
		{ "--key-file", OPT_KEY_FILE }, { "--reason", OPT_REASON },
		{ "--format", OPT_FORMAT }, { "--output", OPT_OUTPUT }, { "--since", OPT_SINCE },
	};
	const char *arg = argv[*i], *v = NULL;
	const char **slots[] = { &a->key_file, &a->reason, &a->format, &a->output, &a->since };
	size_t k;
	int missing = 0;

	if (!strcmp(arg, "--purge") && (s->options & OPT_PURGE)) {
		a->purge = 1;
		return 0;
	}
	for (k = 0; k < sizeof(valued) / sizeof(valued[0]); k++) {
		if (!(s->options & valued[k].bit))
			continue;
		if ((v = cli_option_value(arg, valued[k].name, argc, argv, i, &missing)) != NULL) {
			*slots[k] = v;
			return 0;
		}
		if (missing)
			return usage_error("missing value after", arg);
	}
	fprintf(stderr, "fednode registry %s: unknown option '%s'\n", s->synopsis, arg);
	return CLI_USAGE;
}

static const struct sub *find_sub(const char *name, const char *action)
{
	size_t i;

	for (i = 0; i < N_SUBS; i++)
		if (!strcmp(subs[i].name, name) &&
				(!subs[i].action || (action && !strcmp(subs[i].action, action))))
			return &subs[i];
	return NULL;
}

static int parse_args(struct reg_args *a, const struct sub **sub, int argc, char **argv)
{
	const struct sub *s;
	int i = 3, rc, options = 1;

	if (argc < 3)
		return usage_error(argc < 2 ? "no registry DIR given" : "no subcommand given", NULL);
	a->dir = argv[1];
	a->sub = argv[2];
	if (!strcmp(a->sub, "cohort")) {
		if (argc < 4 || !(s = find_sub("cohort", argv[3])))
			return usage_error("cohort needs create, list or show, not",
				argc < 4 ? "" : argv[3]);
		i = 4;
	} else if (!(s = find_sub(a->sub, NULL))) {
		return usage_error("unknown subcommand", a->sub);
	}
	for (; i < argc; i++) {
		if (options && !strcmp(argv[i], "--")) {
			options = 0;
		} else if (options && argv[i][0] == '-' && argv[i][1]) {
			if ((rc = parse_option(a, s, argc, argv, &i)) != 0)
				return rc;
		} else if (a->n_pos < s->n_pos) {
			a->pos[a->n_pos++] = argv[i];
		} else {
			return usage_error("unexpected argument", argv[i]);
		}
	}
	if (a->n_pos < s->n_pos) {
		fprintf(stderr, "fednode registry: missing arguments; usage: fednode registry "
			"DIR %s\n", s->synopsis);
		return CLI_USAGE;
	}
	if ((s->options & OPT_REASON) && !a->reason)
		return usage_error("--reason TEXT is required (it is kept in the audit log)",
			NULL);
	*sub = s;
	return 0;
}

int cmd_registry(int argc, char **argv)
{
	struct reg_args a;
	const struct sub *s = NULL;
	fdn_registry *reg = NULL;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((rc = parse_args(&a, &s, argc, argv)) != 0)
		return rc;
	if ((rc = cli_registry_open(&reg, "registry", a.dir, 0, s->read_only)) != CLI_OK)
		return rc;
	rc = s->run(reg, &a);
	fdn_registry_free(reg);
	return rc;
}
