/*
 * `fednode demo --https`: a federation store on nginx on 127.0.0.1.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#ifndef FEDNODE_DEMO_HTTPS_H
#define FEDNODE_DEMO_HTTPS_H

#include <stddef.h>
#include <sys/types.h>

#define DEMO_HTTPS_PATH 1024

typedef struct demo_https {
	char dir[DEMO_HTTPS_PATH / 2]; /* certificates, nginx.conf, logs, www/store */
	char url[64];                  /* https://127.0.0.1:PORT/store */
	unsigned int port;
	pid_t pid;                     /* nginx; 0 when not running */
} demo_https;

/* Makes a CA, a server certificate and a client certificate per node
 * (CN = node id) in @p dir (created), and starts nginx on a free port of
 * 127.0.0.1.  Prints the problem and returns -1 on failure. */
int demo_https_start(demo_https *h, const char *dir, const char *const *nodes, size_t n);
/* The client certificate, key and CA file of @p node (DEMO_HTTPS_PATH each). */
void demo_https_files(const demo_https *h, const char *node, char *cert, char *key,
	char *ca);
/* Stops nginx. */
void demo_https_stop(demo_https *h);

#endif
