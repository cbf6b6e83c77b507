/*
 * fednode push URL KEY FILE, fednode pull URL KEY FILE: one object to or
 * from a store (a folder by file:///, or an HTTPS server).
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <fednode/fednode.h>

#include "cli.h"

struct transfer_args {
	const char *url, *key, *file;
	const char *ca, *cert, *client_key, *proxy, *if_none_match;
};

static int usage_error(const char *command, const char *what, const char *arg)
{
	fprintf(stderr, "fednode %s: %s '%s' (see fednode %s --help)\n", command, what, arg,
		command);
	return CLI_USAGE;
}

static int parse(struct transfer_args *a, const char *command, int argc, char **argv)
{
	static const char *const names[] = {
		"--ca", "--cert", "--key", "--proxy", "--if-none-match",
	};
	const char *positional[3];
	int n = 0, i;

	memset(a, 0, sizeof(*a));
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], *v = NULL;
		int missing = 0;
		size_t k;

		if (arg[0] != '-' || !strcmp(arg, "-")) {
			if (n == 3)
				return usage_error(command, "unexpected argument", arg);
			positional[n++] = arg;
			continue;
		}
		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if ((v = cli_option_value(arg, names[k], argc, argv, &i, &missing)) || missing)
				break;
		if (missing)
			return usage_error(command, "missing value after", arg);
		if (!v || (k == 4 && strcmp(command, "pull") != 0))
			return usage_error(command, "unknown option", arg);
		switch (k) {
		case 0: a->ca = v; break;
		case 1: a->cert = v; break;
		case 2: a->client_key = v; break;
		case 3: a->proxy = v; break;
		default: a->if_none_match = v; break;
		}
	}
	if (n < 3) {
		fprintf(stderr, "fednode %s: needs URL KEY FILE (see fednode %s --help)\n",
			command, command);
		return CLI_USAGE;
	}
	a->url = positional[0];
	a->key = positional[1];
	a->file = positional[2];
	if (!fdn_transport_key_valid(a->key)) {
		fprintf(stderr, "fednode %s: invalid key '%s': a key is 1 to 16 '/'-separated "
			"segments of A-Z a-z 0-9 . _ - (not '.' or '..')\n", command, a->key);
		return CLI_USAGE;
	}
	return CLI_OK;
}

static int read_fd(void *buf, size_t capacity, size_t *got, void *payload)
{
	ssize_t n;

	do
		n = read(*(int *)payload, buf, capacity);
	while (n < 0 && errno == EINTR);
	*got = n > 0 ? (size_t)n : 0;
	return n < 0 ? FDN_EIO : 0;
}

static int write_fd(const void *data, size_t len, void *payload)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(*(int *)payload, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return FDN_EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Runs the transfer with Ctrl-C cancelling it. */
static int transfer(const char *command, const struct transfer_args *a)
{
	fdn_object_info info = FDN_OBJECT_INFO_INIT;
	fdn_transport *t = NULL;
	fdn_cancel *cancel = NULL;
	struct sigaction old;
	int rc, fd = -1, to_stdout = !strcmp(a->file, "-");
	FILE *report = to_stdout ? stderr : stdout;

	if ((rc = cli_store_open(&t, a->url, a->ca, a->cert, a->client_key, a->proxy)) != CLI_OK)
		return rc;
	if ((rc = fdn_cancel_new(&cancel)) != 0) {
		fdn_transport_free(t);
		return cli_fail(command, rc);
	}
	fdn_transport_set_cancel(t, cancel);
	cli_sigint_catch(cancel, &old);
	if (!strcmp(command, "push")) {
		if (to_stdout) {
			fd = STDIN_FILENO;
			rc = fdn_transport_put_stream(t, a->key, read_fd, &fd, UINT64_MAX, &info);
		} else {
			rc = fdn_transport_put_file(t, a->key, a->file, &info);
		}
	} else if (to_stdout) {
		fd = STDOUT_FILENO;
		rc = fdn_transport_get_stream(t, a->key, write_fd, &fd, a->if_none_match, &info);
	} else {
		rc = fdn_transport_get_file(t, a->key, a->file, a->if_none_match, &info);
	}
	cli_sigint_release(&old);
	if (rc == FDN_ECANCELLED) {
		fprintf(stderr, "fednode %s: interrupted; nothing was changed\n", command);
		rc = 130;
	} else if (rc == FDN_ENOTFOUND && strcmp(command, "pull") == 0) {
		fprintf(stderr, "fednode pull: no object '%s' in '%s'\n", a->key, a->url);
		rc = CLI_FAILED;
	} else if (rc != 0) {
		char what[512];
		snprintf(what, sizeof(what), "%s '%s'", command, a->key);
		rc = cli_fail(what, rc);
	} else if (info.not_modified) {
		fprintf(report, "not modified: '%s' still has entity tag %s\n", a->key, info.etag);
	} else {
		fprintf(report, "%s '%s': %llu bytes%s%s\n",
			!strcmp(command, "push") ? "pushed" : "pulled", a->key,
			(unsigned long long)info.size, info.etag[0] ? ", entity tag " : "",
			info.etag);
	}
	fdn_transport_free(t);
	fdn_cancel_free(cancel);
	return rc;
}

int cmd_push(int argc, char **argv)
{
	struct transfer_args a;
	int rc = parse(&a, "push", argc, argv);

	return rc == CLI_OK ? transfer("push", &a) : rc;
}

int cmd_pull(int argc, char **argv)
{
	struct transfer_args a;
	int rc = parse(&a, "pull", argc, argv);

	return rc == CLI_OK ? transfer("pull", &a) : rc;
}
