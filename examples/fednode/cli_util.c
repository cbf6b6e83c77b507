/*
 * Helpers the fednode subcommands share: option parsing, the site key and
 * de-identification profile, opening a registry, lists of problems.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fednode/fednode.h>

#include "cli.h"

/* Site rules files are small JSON documents. */
#define RULES_MAX (1024 * 1024)

static const struct {
	const char *name;
	unsigned int flag;
} option_names[] = {
	{ "retain-safe-private", FDN_DEID_RETAIN_SAFE_PRIVATE },
	{ "retain-uids", FDN_DEID_RETAIN_UIDS },
	{ "retain-device-identity", FDN_DEID_RETAIN_DEVICE_IDENTITY },
	{ "retain-institution-identity", FDN_DEID_RETAIN_INSTITUTION_IDENTITY },
	{ "retain-patient-characteristics", FDN_DEID_RETAIN_PATIENT_CHARACTERISTICS },
	{ "retain-long-full-dates", FDN_DEID_RETAIN_LONG_FULL_DATES },
	{ "retain-long-modified-dates", FDN_DEID_RETAIN_LONG_MODIFIED_DATES },
	{ "clean-descriptors", FDN_DEID_CLEAN_DESCRIPTORS },
	{ "clean-structured-content", FDN_DEID_CLEAN_STRUCTURED_CONTENT },
	{ "clean-graphics", FDN_DEID_CLEAN_GRAPHICS },
};

#define N_OPTION_NAMES (sizeof(option_names) / sizeof(option_names[0]))

int cli_parse_deid_option(unsigned int *flags, const char *command, const char *name)
{
	size_t i;

	for (i = 0; i < N_OPTION_NAMES; i++) {
		if (!strcmp(name, option_names[i].name)) {
			*flags |= option_names[i].flag;
			return 0;
		}
	}
	fprintf(stderr, "fednode %s: unknown de-identification option '%s'; known:", command,
		name);
	for (i = 0; i < N_OPTION_NAMES; i++)
		fprintf(stderr, " %s", option_names[i].name);
	fputc('\n', stderr);
	return CLI_USAGE;
}

int cli_parse_workers(unsigned int *out, const char *s)
{
	char *end;
	unsigned long n;

	if (!s || *s < '0' || *s > '9')
		return -1;
	n = strtoul(s, &end, 10);
	if (*end || n > 1024)
		return -1;
	*out = (unsigned int)n;
	return 0;
}

const char *cli_option_value(const char *arg, const char *name, int argc, char **argv,
	int *i, int *missing)
{
	size_t n = strlen(name);

	if (strncmp(arg, name, n) != 0)
		return NULL;
	if (arg[n] == '=')
		return arg + n + 1;
	if (arg[n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = 1;
		return NULL;
	}
	return argv[++*i];
}

/* A plain memset before free may be optimised away; this one may not. */
static void wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;

	while (n--)
		*v++ = 0;
}

static int read_rules(char **out, const char *command, const char *path)
{
	FILE *f = fopen(path, "rb");
	size_t n;
	char *text;

	if (!f) {
		fprintf(stderr, "fednode %s: cannot open rules file '%s': %s\n", command, path,
			strerror(errno));
		return CLI_FAILED;
	}
	text = malloc(RULES_MAX + 1);
	n = text ? fread(text, 1, RULES_MAX + 1, f) : 0;
	if (!text || ferror(f) || n > RULES_MAX) {
		fprintf(stderr, "fednode %s: cannot read rules file '%s'%s\n", command, path,
			n > RULES_MAX ? ": larger than 1 MiB" : "");
		free(text);
		fclose(f);
		return CLI_FAILED;
	}
	fclose(f);
	text[n] = '\0';
	*out = text;
	return CLI_OK;
}

int cli_deid_profile(fdn_deid_profile **out, const char *command, const char *key_file,
	unsigned int options, const char *rules_file, int allow_burned_in)
{
	fdn_deid_options o;
	unsigned char key[FDN_DEID_KEY_BYTES];
	char *rules = NULL;
	int rc;

	if ((rc = fdn_deid_options_init(&o, FDN_DEID_OPTIONS_VERSION)) != 0)
		return cli_fail(command, rc);
	if (rules_file && (rc = read_rules(&rules, command, rules_file)) != CLI_OK)
		return rc;
	rc = fdn_deid_key_load(key, FDN_DEID_KEY_BYTES, key_file);
	if (rc == FDN_ENOTFOUND) {
		fprintf(stderr, "fednode %s: no key file '%s'.  Create the site key once with\n"
			"  fednode deid --init-key %s\n", command, key_file, key_file);
		rc = CLI_FAILED;
	} else if (rc != 0) {
		rc = cli_fail("cannot load the site key", rc);
	} else {
		o.options = options;
		o.key = key;
		o.rules_json = rules;
		o.allow_burned_in = allow_burned_in;
		/* The profile copies the key into guarded memory. */
		if ((rc = fdn_deid_profile_new(out, &o)) != 0)
			rc = cli_fail("invalid de-identification settings", rc);
	}
	wipe(key, sizeof(key));
	free(rules);
	return rc;
}

int cli_registry_open(fdn_registry **out, const char *command, const char *dir,
	int create, int read_only)
{
	fdn_registry_options o;
	int rc;

	if ((rc = fdn_registry_options_init(&o, FDN_REGISTRY_OPTIONS_VERSION)) != 0)
		return cli_fail(command, rc);
	o.create = create;
	o.read_only = read_only;
	/* Who acted goes into the audit log. */
	o.actor = getenv("USER") && *getenv("USER") ? getenv("USER") : "fednode";
	rc = fdn_registry_open(out, dir, &o);
	if (rc == FDN_ENOTFOUND) {
		fprintf(stderr, "fednode %s: no registry in '%s'%s\n", command, dir,
			!strcmp(command, "import") ? " (use --create to create one)" : "");
		return CLI_FAILED;
	}
	if (rc != 0) {
		char what[256];
		snprintf(what, sizeof(what), "cannot open the registry '%s'", dir);
		return cli_fail(what, rc);
	}
	return CLI_OK;
}

/* --- a list of "path: reason" lines ---------------------------------------- */

/* -1 when out of memory. */
int cli_lines_add(struct cli_lines *l, const char *path, const char *reason)
{
	size_t len = strlen(path) + strlen(reason) + 3;
	char **grown;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		if (!(grown = realloc(l->v, cap * sizeof(*grown))))
			return -1;
		l->v = grown;
		l->cap = cap;
	}
	if (!(l->v[l->n] = malloc(len)))
		return -1;
	snprintf(l->v[l->n++], len, "%s: %s", path, reason);
	return 0;
}

void cli_lines_print(const struct cli_lines *l, const char *title)
{
	size_t i;

	if (!l->n)
		return;
	printf("\n%s (%zu):\n", title, l->n);
	for (i = 0; i < l->n; i++)
		printf("  %s\n", l->v[i]);
}

void cli_lines_free(struct cli_lines *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* --- Ctrl-C ------------------------------------------------------------------- */

/* Set before the handler is installed and cleared after it is removed. */
static fdn_cancel *volatile interrupt_token;

static void on_sigint(int sig)
{
	(void)sig;
	fdn_cancel_request(interrupt_token); /* async-signal-safe */
}

void cli_sigint_catch(fdn_cancel *token, struct sigaction *old)
{
	struct sigaction sa;

	interrupt_token = token;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESETHAND;
	sigaction(SIGINT, &sa, old);
}

void cli_sigint_release(const struct sigaction *old)
{
	sigaction(SIGINT, old, NULL);
	interrupt_token = NULL;
}

/* --- options, identities, trust stores, stores ------------------------------------- */

#define MAX_PASSPHRASE 1024

int cli_usage_error(const char *command, const char *what, const char *arg)
{
	fprintf(stderr, "fednode %s: %s%s%s%s (see fednode %s --help)\n", command, what,
		arg ? " '" : "", arg ? arg : "", arg ? "'" : "", command);
	return CLI_USAGE;
}

/* Parses argv[first..] into @p opts and up to @p max positionals. */
int cli_parse_options(const char *command, int argc, char **argv, int first, struct cli_opt *opts,
	const char **pos, int max, int *npos)
{
	int i, missing = 0, options = 1;

	*npos = 0;
	for (i = first; i < argc; i++) {
		const char *v = NULL;
		struct cli_opt *o;

		if (options && !strcmp(argv[i], "--")) {
			options = 0;
			continue;
		}
		if (options && argv[i][0] == '-' && argv[i][1]) {
			for (o = opts; o->name; o++)
				if ((v = cli_option_value(argv[i], o->name, argc, argv, &i, &missing)) ||
				    missing)
					break;
			if (missing)
				return cli_usage_error(command, "missing value for", argv[i]);
			if (!o->name)
				return cli_usage_error(command, "unknown option", argv[i]);
			*o->value = v;
			continue;
		}
		if (*npos >= max)
			return cli_usage_error(command, "unexpected argument", argv[i]);
		pos[(*npos)++] = argv[i];
	}
	return CLI_OK;
}

/* The passphrase from @p file (first line) or $FEDNODE_PASSPHRASE, or
 * none (*out = NULL).  Free with passphrase_free(). */
int cli_passphrase_get(char **out, const char *command, const char *file)
{
	const char *env = getenv("FEDNODE_PASSPHRASE");
	char *p;
	size_t n;
	FILE *f;

	*out = NULL;
	if (!file && (!env || !*env))
		return CLI_OK;
	if (!(p = calloc(1, MAX_PASSPHRASE + 2)))
		return CLI_FAILED;
	if (file) {
		if (!(f = fopen(file, "r"))) {
			fprintf(stderr, "fednode %s: cannot open passphrase file '%s': %s\n", command,
				file, strerror(errno));
			free(p);
			return CLI_FAILED;
		}
		if (!fgets(p, MAX_PASSPHRASE + 2, f))
			p[0] = '\0';
		fclose(f);
	} else {
		snprintf(p, MAX_PASSPHRASE + 2, "%s", env);
	}
	n = strcspn(p, "\r\n");
	p[n] = '\0';
	if (n == 0 || n > MAX_PASSPHRASE) {
		fprintf(stderr, "fednode %s: the passphrase is empty or longer than %d bytes\n",
			command, MAX_PASSPHRASE);
		wipe(p, MAX_PASSPHRASE + 2);
		free(p);
		return CLI_FAILED;
	}
	*out = p;
	return CLI_OK;
}

void cli_passphrase_free(char *p)
{
	if (p) {
		wipe(p, MAX_PASSPHRASE + 2);
		free(p);
	}
}

int cli_identity_load(fdn_identity **out, const char *command, const char *path,
	const char *passphrase_file)
{
	char *pw;
	int rc;

	if ((rc = cli_passphrase_get(&pw, command, passphrase_file)) != CLI_OK)
		return rc;
	rc = fdn_identity_load(out, path, pw);
	cli_passphrase_free(pw);
	if (rc == FDN_EAUTH && !pw)
		fprintf(stderr, "fednode %s: '%s' is protected: give --passphrase-file or set "
			"FEDNODE_PASSPHRASE\n", command, path);
	return rc ? cli_fail("cannot load the identity", rc) : CLI_OK;
}

int cli_trust_open(fdn_trust **out, const char *path)
{
	int rc = fdn_trust_open(out, path);

	return rc ? cli_fail("cannot open the trust store", rc) : CLI_OK;
}


int cli_store_open(fdn_transport **out, const char *url, const char *ca, const char *cert,
	const char *key, const char *proxy)
{
	fdn_https_options o;
	int rc;

	if ((rc = fdn_https_options_init(&o, FDN_HTTPS_OPTIONS_VERSION)) != 0)
		return cli_fail("options", rc);
	o.ca_file = ca;
	o.client_cert = cert;
	o.client_key = key;
	o.proxy = proxy;
	if ((rc = fdn_transport_open_url(out, url, &o)) != 0) {
		char what[512];

		snprintf(what, sizeof(what), "cannot open the store '%s'", url);
		return cli_fail(what, rc);
	}
	return CLI_OK;
}
