/*
 * The smallest libfednode host: initialise with a log callback, print
 * the version, shut down.  Build it against an installed library with
 *
 *   cc hello.c $(pkg-config --cflags --libs fednode) -o hello
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <stdio.h>

#include <fednode/fednode.h>

static void on_log(fdn_log_level level, const char *module,
	const char *message, void *payload)
{
	(void)payload;
	fprintf(stderr, "[%d %s] %s\n", (int)level, module, message);
}

int main(void)
{
	fdn_init_options opts = FDN_INIT_OPTIONS_INIT;
	int rc;

	/* FDN_INIT() refuses a runtime library older than these headers. */
	if ((rc = FDN_INIT()) != 0) {
		fprintf(stderr, "libfednode: %s\n", fdn_error_last()->message);
		return 1;
	}
	opts.log_cb = on_log;
	opts.log_level = FDN_LOG_INFO;
	if ((rc = fdn_init_opts(&opts)) != 0) {
		fprintf(stderr, "libfednode: %s\n", fdn_error_last()->message);
		fdn_shutdown();
		return 1;
	}
	printf("libfednode %s\n", fdn_version_string());
	fdn_shutdown();
	fdn_shutdown();
	return 0;
}
