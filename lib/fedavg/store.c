/*
 * How the manifest, the client and the coordinator move envelopes
 * through the store: key names (ARCHITECTURE §3) and seal-and-put,
 * get-and-open, always through files so that memory stays bounded
 * whatever the model's size.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "protocol_private.h"

void fdn_fedavg__key_manifest(char *out, const char *fed)
{
	snprintf(out, FDN_TRANSPORT_KEY_MAX + 1, "%s/manifest.fdne", fed);
}

void fdn_fedavg__key_latest(char *out, const char *fed)
{
	snprintf(out, FDN_TRANSPORT_KEY_MAX + 1, "%s/latest", fed);
}

void fdn_fedavg__key_global(char *out, const char *fed, uint64_t round)
{
	snprintf(out, FDN_TRANSPORT_KEY_MAX + 1, "%s/rounds/%" PRIu64 "/global.fdne", fed, round);
}

void fdn_fedavg__key_update(char *out, const char *fed, uint64_t round, const char *site)
{
	snprintf(out, FDN_TRANSPORT_KEY_MAX + 1, "%s/rounds/%" PRIu64 "/update-%s.fdne", fed,
		round, site);
}

void fdn_fedavg__key_result(char *out, const char *fed, uint64_t round)
{
	snprintf(out, FDN_TRANSPORT_KEY_MAX + 1, "%s/rounds/%" PRIu64 "/result.fdne", fed, round);
}

int fdn_fedavg__temp_path(char **out, const char *dir, const char *what)
{
	const char *d = fdn__temp_dir(dir);
	char *path;
	size_t len;
	int fd;

	len = strlen(d) + strlen(what) + 16;
	if (!(path = fdn__malloc(len)))
		return fdn__error_oom();
	snprintf(path, len, "%s/.fdn-%s-XXXXXX", d, what);
	if ((fd = mkstemp(path)) < 0) {
		int e = errno;

		fdn__free(path);
		return fdn__error_os(e, "cannot create a temporary file in %s", d);
	}
	close(fd);
	*out = path;
	return 0;
}

int fdn_fedavg__file_sha256(char out[65], const char *path)
{
	crypto_hash_sha256_state st;
	unsigned char h[crypto_hash_sha256_BYTES];
	unsigned char *buf;
	ssize_t got;
	int fd, rc = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return fdn__error_os(errno, "cannot open %s", path);
	if (!(buf = fdn__malloc(1u << 20))) {
		close(fd);
		return fdn__error_oom();
	}
	crypto_hash_sha256_init(&st);
	while ((got = read(fd, buf, 1u << 20)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			rc = fdn__error_os(errno, "cannot read %s", path);
			break;
		}
		crypto_hash_sha256_update(&st, buf, (unsigned long long)got);
	}
	fdn__free(buf);
	close(fd);
	if (rc == 0) {
		crypto_hash_sha256_final(&st, h);
		sodium_bin2hex(out, 65, h, sizeof(h));
	}
	return rc;
}

static void seal_options(fdn_seal_options *o, int kind, const char *fed, uint64_t round)
{
	fdn_seal_options_init(o, FDN_SEAL_OPTIONS_VERSION);
	o->kind = kind;
	o->federation = fed;
	o->round = round;
}

static void open_options(fdn_open_options *o, int kind, const char *fed, uint64_t round,
	const char *sender, int role, const char *work_dir)
{
	fdn_open_options_init(o, FDN_OPEN_OPTIONS_VERSION);
	o->kind = kind;
	o->federation = fed;
	o->round = round;
	o->sender = sender;
	o->sender_role = role;
	o->temp_dir = work_dir;
}

int fdn_fedavg__put_sealed(fdn_transport *t, const char *key, const char *plain_path,
	const char *work_dir, const fdn_identity *me, const fdn_trust *trust,
	const char *const *to, size_t n_to, int kind, const char *fed, uint64_t round)
{
	fdn_seal_options so;
	char *sealed = NULL;
	int in = -1, out = -1, rc;

	seal_options(&so, kind, fed, round);
	if ((rc = fdn_fedavg__temp_path(&sealed, work_dir, "seal")) < 0)
		return rc;
	if ((in = open(plain_path, O_RDONLY | O_CLOEXEC)) < 0)
		rc = fdn__error_os(errno, "cannot open %s", plain_path);
	else if ((out = open(sealed, O_WRONLY | O_TRUNC | O_CLOEXEC)) < 0)
		rc = fdn__error_os(errno, "cannot open %s", sealed);
	else
		rc = fdn_envelope_seal_fd(in, out, me, trust, to, n_to, &so);
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && rc == 0)
		rc = fdn__error_os(errno, "cannot write %s", sealed);
	if (rc == 0)
		rc = fdn_transport_put_file(t, key, sealed, NULL);
	unlink(sealed);
	fdn__free(sealed);
	return rc;
}

int fdn_fedavg__put_sealed_buffer(fdn_transport *t, const char *key, const void *data,
	size_t len, const fdn_identity *me, const fdn_trust *trust,
	const char *const *to, size_t n_to, int kind, const char *fed, uint64_t round)
{
	fdn_seal_options so;
	fdn_buf env = FDN_BUF_INIT;
	int rc;

	seal_options(&so, kind, fed, round);
	rc = fdn_envelope_seal_buffer(&env, data, len, me, trust, to, n_to, &so);
	if (rc == 0)
		rc = fdn_transport_put_buffer(t, key, env.ptr, env.size, NULL);
	fdn_buf_dispose(&env);
	return rc;
}

int fdn_fedavg__get_opened(fdn_transport *t, const char *key, const char *out_path,
	const char *work_dir, const fdn_identity *me, const fdn_trust *trust,
	int kind, const char *fed, uint64_t round, const char *sender, int role)
{
	fdn_open_options oo;
	char *sealed = NULL;
	int rc;

	open_options(&oo, kind, fed, round, sender, role, work_dir);
	if ((rc = fdn_fedavg__temp_path(&sealed, work_dir, "get")) < 0)
		return rc;
	rc = fdn_transport_get_file(t, key, sealed, NULL, NULL);
	if (rc == 0)
		rc = fdn_envelope_open_file(NULL, sealed, out_path, me, trust, &oo);
	unlink(sealed);
	fdn__free(sealed);
	return rc;
}

int fdn_fedavg__get_opened_buffer(fdn_transport *t, const char *key, fdn_buf *out,
	char *etag, int *not_modified, const fdn_identity *me, const fdn_trust *trust,
	int kind, const char *fed, uint64_t round, const char *sender, int role)
{
	fdn_object_info info = FDN_OBJECT_INFO_INIT;
	fdn_open_options oo;
	fdn_buf env = FDN_BUF_INIT;
	int rc;

	open_options(&oo, kind, fed, round, sender, role, NULL);
	rc = fdn_transport_get_buffer(t, key, &env, FDN_FEDAVG__SMALL_MAX,
		etag && *etag ? etag : NULL, &info);
	if (rc == 0 && not_modified && (*not_modified = info.not_modified) != 0) {
		fdn_buf_dispose(&env);
		return 0;
	}
	if (rc == 0)
		rc = fdn_envelope_open_buffer(NULL, out, env.ptr, env.size, me, trust, &oo);
	/* Many servers (nginx among them) derive the entity tag from the
	 * modification time in whole seconds, so two versions written within
	 * one second share a tag: keep it for the next conditional GET only
	 * once the object is older than that (with a second for clock skew). */
	if (rc == 0 && etag)
		snprintf(etag, FDN_ETAG_MAX + 1, "%s",
			info.mtime > 0 && info.mtime + 2 <= (int64_t)time(NULL) ? info.etag : "");
	fdn_buf_dispose(&env);
	return rc;
}

int fdn_fedavg__nap(unsigned int ms, const fdn_cancel *cancel)
{
	/* In slices, so that a cancellation is noticed within 50 ms. */
	while (ms > 0 && !fdn_cancel_requested(cancel)) {
		unsigned int slice = ms > 50 ? 50 : ms;

		usleep(slice * 1000u);
		ms -= slice;
	}
	return fdn__cancel_check(cancel);
}

int fdn_fedavg__run(int (*step)(void *obj, int *state), void *obj, int finished,
	int progressed, bool retry_missing, unsigned int poll_ms, const fdn_cancel *cancel,
	const char *fed)
{
	int state, rc;

	for (;;) {
		if ((rc = fdn__cancel_check(cancel)) < 0)
			return rc;
		state = -1;
		rc = step(obj, &state);
		if (rc == FDN_EIO || (retry_missing && rc == FDN_ENOTFOUND))
			fdn__log(FDN_LOG_WARN, "fedavg", "federation %s: %s (retrying)", fed,
				fdn_error_last()->message);
		else if (rc < 0)
			return rc;
		else if (state == finished)
			return 0;
		else if (state == progressed)
			continue; /* more may be due at once */
		if ((rc = fdn_fedavg__nap(poll_ms, cancel)) < 0)
			return rc;
	}
}
