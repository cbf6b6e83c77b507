/*
 * Envelope benchmark: sealing and opening a 100M-parameter float32 model
 * (400 MB) against raw libsodium secretstream push and pull over the same
 * buffer in the same run (targets: >= 0.6x raw throughput without
 * compression, 0.9x as the moonshot); shuffle+zlib on trained-like
 * weights (ratio and MB/s); and the peak memory of sealing a 1 GB model
 * file to a file (target: <= 64 MB above the process baseline).
 *
 * Trained-like weights: float32 drawn from N(0, 0.02^2) (Box-Muller over
 * a xorshift64* generator, fixed seed) -- the scale of initialised and
 * fine-tuned transformer/CNN weights.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include <fednode/fednode.h>

#include "bench.h"

#define PARAMS (100u * 1000 * 1000)
#define BYTES ((size_t)PARAMS * 4)
#define CHUNK (1024 * 1024)
#define REPS 5
#define ZLIB_BYTES ((size_t)64 * 1000 * 1000)
#define RSS_FILE_BYTES ((size_t)1 << 30)

static float *model;
static unsigned char *raw_out, *raw_back;
static fdn_identity *coord, *site;
static fdn_trust *trust;
static fdn_buf sealed = FDN_BUF_INIT;

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static double uniform01(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return ((rng * 0x2545f4914f6cdd1dull) >> 11) * (1.0 / 9007199254740992.0);
}

static void make_weights(float *w, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2) {
		double u = uniform01(), v = uniform01();
		double r = sqrt(-2.0 * log(u > 0 ? u : 1e-300)) * 0.02;
		w[i] = (float)(r * cos(2 * M_PI * v));
		w[i + 1] = (float)(r * sin(2 * M_PI * v));
	}
}

/* --- raw libsodium baselines -------------------------------------------------- */

static unsigned char raw_key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
static unsigned char raw_hdr[crypto_secretstream_xchacha20poly1305_HEADERBYTES];

static void raw_push(void *arg)
{
	crypto_secretstream_xchacha20poly1305_state st;
	const unsigned char *in = (const unsigned char *)model;
	size_t o = 0;

	(void)arg;
	crypto_secretstream_xchacha20poly1305_init_push(&st, raw_hdr, raw_key);
	for (size_t i = 0; i < BYTES; i += CHUNK) {
		size_t n = BYTES - i < CHUNK ? BYTES - i : CHUNK;
		crypto_secretstream_xchacha20poly1305_push(&st, raw_out + o, NULL, in + i, n,
			NULL, 0, i + n == BYTES ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
		o += n + crypto_secretstream_xchacha20poly1305_ABYTES;
	}
}

static void raw_pull(void *arg)
{
	crypto_secretstream_xchacha20poly1305_state st;
	unsigned char tag;
	size_t o = 0;

	(void)arg;
	crypto_secretstream_xchacha20poly1305_init_pull(&st, raw_hdr, raw_key);
	for (size_t i = 0; i < BYTES; i += CHUNK) {
		size_t n = BYTES - i < CHUNK ? BYTES - i : CHUNK;
		if (crypto_secretstream_xchacha20poly1305_pull(&st, raw_back + i, NULL, &tag,
				raw_out + o, n + crypto_secretstream_xchacha20poly1305_ABYTES,
				NULL, 0) != 0)
			abort();
		o += n + crypto_secretstream_xchacha20poly1305_ABYTES;
	}
}

static void raw_hash(void *arg)
{
	unsigned char h[32];

	(void)arg;
	crypto_generichash(h, sizeof(h), raw_out, BYTES, NULL, 0);
}

/* --- libfednode ------------------------------------------------------------------- */

typedef struct job {
	unsigned threads;
	int level;
	const void *data;
	size_t len;
} job;

static void seal(void *arg)
{
	const job *j = arg;
	fdn_seal_options o = FDN_SEAL_OPTIONS_INIT;
	const char *to[] = { "site-a" };

	o.kind = FDN_ENVELOPE_GLOBAL;
	o.federation = "bench";
	o.round = 1;
	o.threads = j->threads;
	o.compression_level = j->level;
	if (fdn_envelope_seal_buffer(&sealed, j->data, j->len, coord, trust, to, 1, &o) != 0) {
		fprintf(stderr, "seal: %s\n", fdn_error_last()->message);
		exit(1);
	}
}

typedef struct copy_out {
	unsigned char *p;
	size_t off;
} copy_out;

static int copy_write(const void *data, size_t len, void *payload)
{
	copy_out *c = payload;

	memcpy(c->p + c->off, data, len);
	c->off += len;
	return 0;
}

typedef struct mem_in {
	const unsigned char *p;
	size_t len, off;
} mem_in;

static int mem_read(void *buf, size_t cap, size_t *got, void *payload)
{
	mem_in *in = payload;
	size_t n = in->len - in->off < cap ? in->len - in->off : cap;

	memcpy(buf, in->p + in->off, n);
	in->off += n;
	*got = n;
	return 0;
}

/* seal_stream reading the model and writing into a faulted-in buffer:
 * the two copies a host's callbacks would make are included. */
static void seal_stream(void *arg)
{
	const job *j = arg;
	fdn_seal_options o = FDN_SEAL_OPTIONS_INIT;
	const char *to[] = { "site-a" };
	mem_in in = { j->data, j->len, 0 };
	copy_out out = { raw_back, 0 };

	o.kind = FDN_ENVELOPE_GLOBAL;
	o.federation = "bench";
	o.round = 1;
	o.threads = j->threads;
	if (fdn_envelope_seal_stream(mem_read, &in, copy_write, &out, coord, trust, to, 1, &o) != 0)
		abort();
}

static void open_env(void *arg)
{
	const job *j = arg;
	fdn_open_options o = FDN_OPEN_OPTIONS_INIT;
	fdn_buf out = FDN_BUF_INIT;

	o.kind = FDN_ENVELOPE_GLOBAL;
	o.federation = "bench";
	o.round = 1;
	o.threads = j->threads;
	if (fdn_envelope_open_buffer(NULL, &out, sealed.ptr, sealed.size, site, trust, &o) != 0) {
		fprintf(stderr, "open: %s\n", fdn_error_last()->message);
		exit(1);
	}
	fdn_buf_dispose(&out);
}

/* The machine is shared: load changes between one measurement and the
 * next.  Each repetition times the baseline and then the candidate, back
 * to back, and the ratio reported is the median of the per-pair ratios. */
static double paired(int reps, void (*base)(void *), void (*fn)(void *), void *arg,
	double *base_median, double *ratio_median)
{
	double b[64], t[64], r[64];

	for (int i = 0; i < reps && i < 64; i++) {
		double s = bench_now();
		base(NULL);
		b[i] = bench_now() - s;
		s = bench_now();
		fn(arg);
		t[i] = bench_now() - s;
		r[i] = b[i] / t[i];
	}
	*base_median = bench_median(b, reps);
	*ratio_median = bench_median(r, reps);
	return bench_median(t, reps);
}

static void line(const char *name, double s, double bytes, double base_s)
{
	printf("%-40s median %7.3f s  %7.1f MB/s", name, s, bytes / s / 1e6);
	if (base_s > 0)
		printf("  = %.2fx raw throughput", base_s / s);
	printf("\n");
	fflush(stdout);
}

/* --- peak memory of sealing a 1 GB file -------------------------------------------- */

static long vm_hwm_kib(void)
{
	char l[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(l, sizeof(l), f))
		if (sscanf(l, "VmHWM: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

/* Runs in a child forked before the big buffers exist. */
static int rss_child(const char *dir)
{
	char in_path[512], out_path[512];
	fdn_seal_options o = FDN_SEAL_OPTIONS_INIT;
	const char *to[] = { "site-a" };
	float *w = malloc(CHUNK);
	long before, after;
	double t;
	int in, out, rc;

	snprintf(in_path, sizeof(in_path), "%s/model-1g.bin", dir);
	snprintf(out_path, sizeof(out_path), "%s/model-1g.fdne", dir);
	in = open(in_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	for (size_t i = 0; i < RSS_FILE_BYTES; i += CHUNK) {
		make_weights(w, CHUNK / 4);
		if (write(in, w, CHUNK) != CHUNK)
			return 1;
	}
	free(w);
	lseek(in, 0, SEEK_SET);
	out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	before = vm_hwm_kib();
	o.kind = FDN_ENVELOPE_GLOBAL;
	o.federation = "bench";
	o.round = 1;
	t = bench_now();
	rc = fdn_envelope_seal_fd(in, out, coord, trust, to, 1, &o);
	t = bench_now() - t;
	after = vm_hwm_kib();
	close(in);
	close(out);
	unlink(in_path);
	unlink(out_path);
	if (rc != 0) {
		fprintf(stderr, "seal_fd: %s\n", fdn_error_last()->message);
		return 1;
	}
	printf("seal_fd 1 GiB file -> file: %.2f s (%.0f MB/s), peak RSS %ld KiB before, %ld KiB after:"
		" +%.1f MiB (target <= 64 MiB)\n", t, RSS_FILE_BYTES / t / 1e6, before, after,
		(after - before) / 1024.0);
	fflush(stdout); /* the child leaves through _exit() */
	return 0;
}

int main(void)
{
	char dir[] = "/tmp/fdn-bench-envelope-XXXXXX", trust_path[600];
	fdn_buf text = FDN_BUF_INIT;
	double push, pull, hash, t;
	job j = { 2, 0, NULL, BYTES };
	int status;
	pid_t pid;

	if (fdn_init() != 0 || !mkdtemp(dir))
		return 1;
	snprintf(trust_path, sizeof(trust_path), "%s/trust.json", dir);
	if (fdn_identity_generate(&coord, "coord") || fdn_identity_generate(&site, "site-a") ||
	    fdn_trust_open(&trust, trust_path) || fdn_identity_public(&text, coord, NULL) ||
	    fdn_trust_add(trust, text.ptr, FDN_TRUST_ROLE_COORDINATOR, NULL) ||
	    fdn_identity_public(&text, site, NULL) ||
	    fdn_trust_add(trust, text.ptr, FDN_TRUST_ROLE_SITE, NULL))
		return 1;
	fdn_buf_dispose(&text);

	/* Memory first, in a child, before this process holds 1.2 GB. */
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(rss_child(dir));
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return 1;

	model = malloc(BYTES);
	raw_out = malloc(BYTES + BYTES / 1000 + 4096);
	raw_back = malloc(BYTES + BYTES / 1000 + 4096);
	if (!model || !raw_out || !raw_back)
		return 1;
	make_weights(model, PARAMS);
	memset(raw_out, 0, BYTES + BYTES / 1000 + 4096);
	memset(raw_back, 0, BYTES + BYTES / 1000 + 4096);
	randombytes_buf(raw_key, sizeof(raw_key));
	j.data = model;

	printf("100M float32 parameters (%.0f MB), N(0, 0.02), 1 MiB chunks, median of %d\n",
		BYTES / 1e6, REPS);
	push = bench_time(REPS, raw_push, NULL);
	line("raw secretstream push (baseline)", push, BYTES, 0);
	pull = bench_time(REPS, raw_pull, NULL);
	line("raw secretstream pull (baseline)", pull, BYTES, 0);
	hash = bench_time(REPS, raw_hash, NULL);
	line("raw BLAKE2b-256 (reference)", hash, BYTES, 0);
	printf("%-40s         %7.3f s  (1-thread floor of a sealed envelope)\n",
		"raw push + BLAKE2b, sequential", push + hash);

	{
		static const struct {
			const char *name;
			void (*base)(void *), (*fn)(void *);
			unsigned threads;
		} runs[] = {
			{ "seal_buffer, 2 threads", raw_push, seal, 2 },
			{ "seal_buffer, 1 thread", raw_push, seal, 1 },
			{ "seal_stream (memcpy in/out), 2 threads", raw_push, seal_stream, 2 },
			{ "open_buffer, 2 threads", raw_pull, open_env, 2 },
			{ "open_buffer, 1 thread", raw_pull, open_env, 1 },
		};
		double b, r;

		printf("paired with the raw baseline in each repetition:\n");
		j.threads = 2;
		seal(&j); /* an envelope to open */
		for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
			j.threads = runs[i].threads;
			t = paired(REPS, runs[i].base, runs[i].fn, &j, &b, &r);
			printf("%-40s median %7.3f s  %7.1f MB/s  raw %7.3f s  = %.2fx raw throughput\n",
				runs[i].name, t, BYTES / t / 1e6, b, r);
			fflush(stdout);
		}
	}

	/* zlib is an order of magnitude slower than the cipher: the first
	 * 64 MB (16M parameters, the same distribution) is enough. */
	j.len = ZLIB_BYTES;
	for (int level = 1; level <= 6; level += 5) {
		char name[64];
		j.threads = 2;
		j.level = level;
		t = bench_time(3, seal, &j);
		snprintf(name, sizeof(name), "seal_buffer zlib %d + shuffle 4 (64 MB)", level);
		line(name, t, ZLIB_BYTES, 0);
		printf("  envelope %.2f MB = %.3f of the payload\n", sealed.size / 1e6,
			(double)sealed.size / ZLIB_BYTES);
		t = bench_time(3, open_env, &j);
		snprintf(name, sizeof(name), "open_buffer of zlib %d (64 MB)", level);
		line(name, t, ZLIB_BYTES, 0);
	}

	fdn_buf_dispose(&sealed);
	free(model);
	free(raw_out);
	free(raw_back);
	fdn_identity_free(coord);
	fdn_identity_free(site);
	fdn_trust_free(trust);
	unlink(trust_path);
	rmdir(dir);
	fdn_shutdown();
	return 0;
}
