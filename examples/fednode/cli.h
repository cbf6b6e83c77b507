/*
 * The fednode command-line tool: the subcommand table.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#ifndef FEDNODE_CLI_H
#define FEDNODE_CLI_H

#include <stddef.h>

/* Exit codes: 0 success, 1 the operation failed, 2 bad usage. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

struct cli_command {
	const char *name;
	const char *summary;  /* one line for `fednode --help` */
	const char *usage;    /* full help for `fednode NAME --help` */
	/* argv[0] is the subcommand name; --help is handled before the call */
	int (*run)(int argc, char **argv);
};

/* Prints fdn_error_last() after a failed call and returns CLI_FAILED. */
int cli_fail(const char *what, int rc);

int cmd_version(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_deid(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_registry(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_trust(int argc, char **argv);
int cmd_seal(int argc, char **argv);
int cmd_open(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_federation(int argc, char **argv);
int cmd_coordinator(int argc, char **argv);
int cmd_node(int argc, char **argv);
int cmd_demo(int argc, char **argv);

/* Helpers the subcommands share (cli_util.c). */
struct fdn_deid_profile;
struct fdn_registry;

/* "--name VALUE" or "--name=VALUE": the value, or NULL if @p arg is not
 * @p name.  *i moves past a separate value; *missing is set without one. */
const char *cli_option_value(const char *arg, const char *name, int argc, char **argv,
	int *i, int *missing);
/* A de-identification profile from the site key file and the options;
 * prints the problem and returns an exit status on failure. */
int cli_deid_profile(struct fdn_deid_profile **out, const char *command,
	const char *key_file, unsigned int options, const char *rules_file,
	int allow_burned_in);
/* Opens the registry in @p dir; prints the problem and returns an exit
 * status on failure (a missing registry names --create for `import`). */
int cli_registry_open(struct fdn_registry **out, const char *command, const char *dir,
	int create, int read_only);
/* Adds the de-identification option @p name ("retain-uids", ...) to
 * @p flags; an unknown name prints the known ones and gives CLI_USAGE. */
int cli_parse_deid_option(unsigned int *flags, const char *command, const char *name);
/* A worker count (0..1024); -1 when @p s is not one. */
int cli_parse_workers(unsigned int *out, const char *s);

/* Ctrl-C signals @p token, so that a scan stops between files; a second
 * Ctrl-C (SA_RESETHAND) ends the program at once.  The previous handler
 * goes to @p old and comes back with cli_sigint_release(). */
struct sigaction;
struct fdn_cancel;
void cli_sigint_catch(struct fdn_cancel *token, struct sigaction *old);
void cli_sigint_release(const struct sigaction *old);

/* Prints "fednode COMMAND: WHAT 'ARG'" and a pointer to --help; CLI_USAGE. */
int cli_usage_error(const char *command, const char *what, const char *arg);

/* An option of a subcommand: its name and where its value goes. */
struct cli_opt {
	const char *name;
	const char **value;
};
/* Parses argv[first..] into @p opts (terminated by a NULL name) and up to
 * @p max positionals; "--" ends the options.  An exit status. */
int cli_parse_options(const char *command, int argc, char **argv, int first,
	struct cli_opt *opts, const char **pos, int max, int *npos);

/* Loads a node identity, the passphrase from @p passphrase_file or
 * $FEDNODE_PASSPHRASE; prints the problem and returns an exit status. */
struct fdn_identity;
struct fdn_trust;
struct fdn_transport;
int cli_identity_load(struct fdn_identity **out, const char *command, const char *path,
	const char *passphrase_file);
/* The passphrase from @p file (first line) or $FEDNODE_PASSPHRASE, or none
 * (*out = NULL); release it with cli_passphrase_free(), which wipes it. */
int cli_passphrase_get(char **out, const char *command, const char *file);
void cli_passphrase_free(char *passphrase);
/* Opens (or creates) the trust store in @p path; an exit status. */
int cli_trust_open(struct fdn_trust **out, const char *path);
/* Opens the store at @p url (file:// or https://) with optional TLS files
 * and proxy; an exit status. */
int cli_store_open(struct fdn_transport **out, const char *url, const char *ca,
	const char *cert, const char *key, const char *proxy);

/* A list of "path: reason" lines, printed under a title. */
struct cli_lines {
	char **v;
	size_t n, cap;
};
int cli_lines_add(struct cli_lines *l, const char *path, const char *reason);
void cli_lines_print(const struct cli_lines *l, const char *title);
void cli_lines_free(struct cli_lines *l);

#endif
