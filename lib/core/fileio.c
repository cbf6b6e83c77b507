/*
 * File I/O every module shares: whole-buffer reads and writes that
 * survive EINTR and short transfers, and atomic replacement of a file
 * (temporary file in the same folder, fsync, rename, fsync of the folder)
 * so that a reader sees the old content or the new, never a mix, and a
 * crash leaves no half-written file under the final name.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core_private.h"

int fdn__write_all(int fd, const void *data, size_t len, const char *what)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fdn__error_os(errno, "cannot write '%s'", what);
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fdn__pread_all(int fd, void *data, size_t len, uint64_t offset,
	size_t *got, const char *what)
{
	char *p = data;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, (off_t)(offset + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fdn__error_os(errno, "cannot read '%s'", what);
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

/* The folder part of @p path, for the directory fsync. */
static void dir_of(char *out, size_t outlen, const char *path)
{
	char copy[4096];

	snprintf(copy, sizeof(copy), "%s", path);
	snprintf(out, outlen, "%s", dirname(copy));
}

int fdn__atomic_open(fdn_atomic_file *af, const char *path)
{
	size_t len = strlen(path);
	int tries;

	memset(af, 0, sizeof(*af));
	af->fd = -1;
	if (len + 16 >= sizeof(af->tmp_path))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_OS,
			"path too long: '%s'", path);
	snprintf(af->final_path, sizeof(af->final_path), "%s", path);
	for (tries = 0; tries < 16; tries++) {
		/* A random name: mkstemp would force mode 0600, while the file
		 * should get the usual 0666 & ~umask. */
		snprintf(af->tmp_path, sizeof(af->tmp_path), "%s.tmp%08x", path,
			randombytes_random());
		af->fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (af->fd >= 0 || errno != EEXIST)
			break;
	}
	if (af->fd < 0)
		return fdn__error_os(errno, "cannot create a temporary file next to '%s'", path);
	return 0;
}

int fdn__atomic_open_mode(fdn_atomic_file *af, const char *path, unsigned int mode)
{
	int rc = fdn__atomic_open(af, path);

	if (rc == 0 && fchmod(af->fd, (mode_t)mode) != 0) {
		rc = fdn__error_os(errno, "cannot set the mode of '%s'", af->tmp_path);
		fdn__atomic_abort(af);
	}
	return rc;
}

int fdn__atomic_write(fdn_atomic_file *af, const void *data, size_t len)
{
	return fdn__write_all(af->fd, data, len, af->tmp_path);
}

int fdn__fsync_dir(const char *path)
{
	char dir[4096];
	int fd, rc = 0;

	dir_of(dir, sizeof(dir), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fdn__error_os(errno, "cannot open folder '%s'", dir);
	if (fsync(fd) != 0 && errno != EINVAL)
		rc = fdn__error_os(errno, "cannot flush folder '%s'", dir);
	close(fd);
	return rc;
}

int fdn__atomic_commit(fdn_atomic_file *af)
{
	int rc = 0;

	if (fsync(af->fd) != 0)
		rc = fdn__error_os(errno, "cannot flush '%s' to disk", af->tmp_path);
	if (close(af->fd) != 0 && rc == 0)
		rc = fdn__error_os(errno, "cannot close '%s'", af->tmp_path);
	af->fd = -1;
	if (rc == 0 && rename(af->tmp_path, af->final_path) != 0)
		rc = fdn__error_os(errno, "cannot rename '%s' to '%s'", af->tmp_path,
			af->final_path);
	if (rc != 0) {
		unlink(af->tmp_path);
		return rc;
	}
	return fdn__fsync_dir(af->final_path);
}

void fdn__atomic_abort(fdn_atomic_file *af)
{
	if (af->fd >= 0) {
		close(af->fd);
		af->fd = -1;
		unlink(af->tmp_path);
	}
}

int fdn__fd_read(void *buf, size_t capacity, size_t *got, void *payload)
{
	const fdn__fd_stream *in = payload;
	ssize_t n;

	do
		n = read(in->fd, buf, capacity);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		*got = 0;
		return fdn__error_os(errno, "cannot read %s", in->what);
	}
	*got = (size_t)n;
	return 0;
}

int fdn__fd_write(const void *data, size_t len, void *payload)
{
	const fdn__fd_stream *out = payload;

	return fdn__write_all(out->fd, data, len, out->what);
}

const char *fdn__temp_dir(const char *dir)
{
	if (!dir || !*dir)
		dir = getenv("TMPDIR");
	return dir && *dir ? dir : "/tmp";
}
