/*
 * The fednode command-line tool: the subcommand table.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#ifndef FEDNODE_CLI_H
#define FEDNODE_CLI_H

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

#endif
