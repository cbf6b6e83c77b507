/*
 * `fednode demo --https`: the federation store on a real nginx on the
 * loopback interface, as doc/transport-nginx.md describes it — TLS, a
 * client certificate per node (CN = node id) from a throw-away CA, WebDAV
 * PUT/DELETE, and per-site write paths.  Certificates are made with the
 * openssl tool; nginx runs as a child of the demo and is stopped with it.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "demo_https.h"

extern char **environ;

static const char *const nginx_paths[] = { "/usr/sbin/nginx", "/usr/bin/nginx", NULL };

/* Runs a program to its end, its output into @p log; 0 on exit status 0. */
static int run_quiet(char *const *argv, const char *log)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status, rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return -1;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	return 0;
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* A certificate for @p cn signed by the demo CA: "server" (localhost,
 * 127.0.0.1) or a node's client certificate. */
static int certificate(const demo_https *h, const char *cn, int server)
{
	char key[DEMO_HTTPS_PATH], csr[DEMO_HTTPS_PATH], pem[DEMO_HTTPS_PATH];
	char subj[128], log[DEMO_HTTPS_PATH], ca[DEMO_HTTPS_PATH], ca_key[DEMO_HTTPS_PATH];
	char ext[DEMO_HTTPS_PATH];

	snprintf(key, sizeof(key), "%s/%s.key", h->dir, cn);
	snprintf(csr, sizeof(csr), "%s/%s.csr", h->dir, cn);
	snprintf(pem, sizeof(pem), "%s/%s.pem", h->dir, cn);
	snprintf(ca, sizeof(ca), "%s/ca.pem", h->dir);
	snprintf(ca_key, sizeof(ca_key), "%s/ca.key", h->dir);
	snprintf(ext, sizeof(ext), "%s/ext.cnf", h->dir);
	snprintf(log, sizeof(log), "%s/openssl.log", h->dir);
	snprintf(subj, sizeof(subj), "/CN=%s", cn);
	{
		char *req[] = { "openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
			"ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr, "-subj",
			subj, NULL };
		char *sign[] = { "openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
			"-CAcreateserial", "-days", "2", "-out", pem, "-extfile", ext, "-extensions",
			server ? "server" : "client", NULL };

		if (run_quiet(req, log) != 0 || run_quiet(sign, log) != 0)
			return -1;
	}
	return chmod(key, 0600);
}

static int certificates(const demo_https *h, const char *const *nodes, size_t n)
{
	char ca[DEMO_HTTPS_PATH], ca_key[DEMO_HTTPS_PATH], ext[DEMO_HTTPS_PATH];
	char log[DEMO_HTTPS_PATH];
	char *req[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
		"ec_paramgen_curve:P-256", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
		"-subj", "/CN=fednode demo CA", "-addext", "basicConstraints=critical,CA:TRUE",
		"-addext", "keyUsage=critical,keyCertSign,cRLSign", NULL };

	snprintf(ca, sizeof(ca), "%s/ca.pem", h->dir);
	snprintf(ca_key, sizeof(ca_key), "%s/ca.key", h->dir);
	snprintf(ext, sizeof(ext), "%s/ext.cnf", h->dir);
	snprintf(log, sizeof(log), "%s/openssl.log", h->dir);
	if (write_text(ext, "[server]\nsubjectAltName = DNS:localhost, IP:127.0.0.1\n"
			"extendedKeyUsage = serverAuth\nbasicConstraints = CA:FALSE\n"
			"[client]\nextendedKeyUsage = clientAuth\nbasicConstraints = CA:FALSE\n") != 0 ||
			run_quiet(req, log) != 0 || certificate(h, "server", 1) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (certificate(h, nodes[i], 0) != 0)
			return -1;
	return 0;
}

/* The store section of doc/transport-nginx.md, on @p port, rooted in the
 * demo's folder. */
static int nginx_conf(const demo_https *h)
{
	char path[DEMO_HTTPS_PATH], text[8192];
	const char *d = h->dir;
	int n;

	n = snprintf(text, sizeof(text),
		"%s"
		"worker_processes 1;\n"
		"pid %s/nginx.pid;\n"
		"error_log %s/nginx-error.log;\n"
		"events { worker_connections 64; }\n"
		"http {\n"
		"  default_type application/octet-stream;\n"
		"  access_log %s/nginx-access.log;\n"
		"  client_body_temp_path %s/tmp;\n"
		"  proxy_temp_path %s/tmp; fastcgi_temp_path %s/tmp;\n"
		"  uwsgi_temp_path %s/tmp; scgi_temp_path %s/tmp;\n"
		"  map $ssl_client_s_dn $fdn_node {\n"
		"    default \"\";\n"
		"    \"~(^|,)CN=(?<fdn_cn>[A-Za-z0-9._-]+)(,|$)\" $fdn_cn;\n"
		"  }\n"
		"  map $fdn_node $fdn_role { default site; \"\" none; coordinator coordinator; }\n"
		"  map \"$fdn_node|$uri\" $fdn_own_update {\n"
		"    default 0;\n"
		"    \"~^([A-Za-z0-9._-]+)\\|/store/[A-Za-z0-9._-]+/rounds/[0-9]+/update-\\1\\.fdne$\" 1;\n"
		"  }\n"
		"  map \"$request_method|$fdn_role|$fdn_own_update\" $fdn_deny {\n"
		"    default 1;\n"
		"    \"~^(GET|HEAD)\\|(coordinator|site)\\|\" 0;\n"
		"    \"~^(PUT|DELETE)\\|coordinator\\|\" 0;\n"
		"    \"~^(PUT|DELETE)\\|site\\|1$\" 0;\n"
		"  }\n"
		"  server {\n"
		"    listen 127.0.0.1:%u ssl;\n"
		"    server_name localhost;\n"
		"    ssl_certificate %s/server.pem;\n"
		"    ssl_certificate_key %s/server.key;\n"
		"    ssl_protocols TLSv1.3;\n"
		"    ssl_client_certificate %s/ca.pem;\n"
		"    ssl_verify_client on;\n"
		"    error_page 495 496 = @refused;\n"
		"    location @refused { return 403; }\n"
		"    root %s/www;\n"
		"    client_max_body_size 0;\n"
		"    location / { return 404; }\n"
		"    location /store/ {\n"
		"      if ($fdn_deny) { return 403; }\n"
		"      dav_methods PUT DELETE;\n"
		"      create_full_put_path on;\n"
		"      dav_access user:rw;\n"
		"    }\n"
		"  }\n"
		"}\n", geteuid() == 0 ? "user root;\n" : "", d, d, d, d, d, d, d, d,
		h->port, d, d, d, d);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -1;
	snprintf(path, sizeof(path), "%s/nginx.conf", d);
	return write_text(path, text);
}

/* A free TCP port of 127.0.0.1 (there is a small race until nginx binds it). */
static unsigned int free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	unsigned int port = 0;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
			getsockname(s, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

static int listening(unsigned int port)
{
	struct sockaddr_in a;
	int s = socket(AF_INET, SOCK_STREAM, 0), ok;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (s >= 0)
		close(s);
	return ok;
}

int demo_https_start(demo_https *h, const char *dir, const char *const *nodes, size_t n)
{
	char conf[DEMO_HTTPS_PATH], prefix[DEMO_HTTPS_PATH], tmp[DEMO_HTTPS_PATH];
	const char *nginx = NULL;

	memset(h, 0, sizeof(*h));
	snprintf(h->dir, sizeof(h->dir), "%s", dir);
	for (size_t i = 0; nginx_paths[i]; i++)
		if (access(nginx_paths[i], X_OK) == 0)
			nginx = nginx_paths[i];
	if (!nginx) {
		fprintf(stderr, "fednode demo: --https needs nginx (apt-get install nginx-light)\n");
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	if (mkdir(dir, 0700) != 0 || mkdir(tmp, 0700) != 0)
		return -1;
	snprintf(prefix, sizeof(prefix), "%s/www", dir);
	if (mkdir(prefix, 0700) != 0)
		return -1;
	if (certificates(h, nodes, n) != 0) {
		fprintf(stderr, "fednode demo: could not make the certificates (see %s/openssl.log)\n",
			dir);
		return -1;
	}
	if (!(h->port = free_port()) || nginx_conf(h) != 0)
		return -1;
	snprintf(conf, sizeof(conf), "%s/nginx.conf", dir);
	snprintf(prefix, sizeof(prefix), "%s/", dir);
	{
		char *argv[] = { (char *)nginx, "-p", prefix, "-c", conf, "-g", "daemon off;", NULL };
		posix_spawn_file_actions_t fa;
		char log[DEMO_HTTPS_PATH];
		int rc;

		snprintf(log, sizeof(log), "%s/nginx-stderr.log", dir);
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		rc = posix_spawn(&h->pid, nginx, &fa, NULL, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
		if (rc != 0)
			return -1;
	}
	for (int i = 0; i < 100; i++) {
		int status;

		if (listening(h->port)) {
			snprintf(h->url, sizeof(h->url), "https://127.0.0.1:%u/store", h->port);
			return 0;
		}
		if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
			h->pid = 0;
			break;
		}
		usleep(50000);
	}
	fprintf(stderr, "fednode demo: nginx did not start (see %s/nginx-error.log)\n", dir);
	demo_https_stop(h);
	return -1;
}

void demo_https_files(const demo_https *h, const char *node, char *cert, char *key,
	char *ca)
{
	snprintf(cert, DEMO_HTTPS_PATH, "%s/%s.pem", h->dir, node);
	snprintf(key, DEMO_HTTPS_PATH, "%s/%s.key", h->dir, node);
	snprintf(ca, DEMO_HTTPS_PATH, "%s/ca.pem", h->dir);
}

void demo_https_stop(demo_https *h)
{
	if (h->pid > 0) {
		kill(h->pid, SIGTERM);
		waitpid(h->pid, NULL, 0);
		h->pid = 0;
	}
}
