/*
 * Site key files: 32 random bytes, mode 0600, never overwritten.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "deid_private.h"

/* link() instead of the usual rename(): it fails when the name exists,
 * so two nodes generating at once cannot replace each other's key. */
static int publish(fdn_atomic_file *af)
{
	if (fsync(af->fd) != 0)
		return fdn__error_os(errno, "cannot flush '%s'", af->tmp_path);
	if (link(af->tmp_path, af->final_path) != 0) {
		if (errno == EEXIST)
			return fdn__error_set(FDN_ECONFLICT, FDN_ERRCLASS_DEID,
				"key file '%s' already exists: it is never overwritten",
				af->final_path);
		return fdn__error_os(errno, "cannot create '%s'", af->final_path);
	}
	return 0;
}

int fdn_deid_key_generate(const char *path)
{
	fdn_atomic_file af;
	unsigned char *key;
	int rc;

	FDN__CHECK_ARG(path, "path");
	if ((rc = fdn__check_init()) != 0)
		return rc;
	if (access(path, F_OK) == 0)
		return fdn__error_set(FDN_ECONFLICT, FDN_ERRCLASS_DEID,
			"key file '%s' already exists: it is never overwritten", path);
	key = sodium_malloc(FDN_DEID_KEY_BYTES);
	if (!key)
		return fdn__error_oom();
	randombytes_buf(key, FDN_DEID_KEY_BYTES);
	rc = fdn__atomic_open_mode(&af, path, 0600);
	if (rc == 0) {
		rc = fdn__atomic_write(&af, key, FDN_DEID_KEY_BYTES);
		if (rc == 0)
			rc = publish(&af);
		/* The temporary name goes in every case; on success the key
		 * lives on under its final name. */
		fdn__atomic_abort(&af);
		if (rc == 0)
			rc = fdn__fsync_dir(path);
	}
	sodium_free(key);
	return rc;
}

static int check_file(int fd, const char *path)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return fdn__error_os(errno, "cannot stat '%s'", path);
	if (!S_ISREG(st.st_mode))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DEID,
			"key file '%s' is not a regular file", path);
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DEID,
			"key file '%s' is accessible by group or others: run chmod 600 on it",
			path);
	if (st.st_size != FDN_DEID_KEY_BYTES)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DEID,
			"key file '%s' must hold exactly %d bytes", path, FDN_DEID_KEY_BYTES);
	return 0;
}

int fdn_deid_key_load(unsigned char *key, size_t key_size, const char *path)
{
	size_t got = 0;
	int fd, rc;

	FDN__CHECK_ARG(key, "key");
	FDN__CHECK_ARG(path, "path");
	if (key_size != FDN_DEID_KEY_BYTES)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_deid_key_load: key_size must be %d", FDN_DEID_KEY_BYTES);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ?
			fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_DEID, "no key file '%s'", path) :
			fdn__error_os(errno, "cannot open key file '%s'", path);
	rc = check_file(fd, path);
	if (rc == 0)
		rc = fdn__pread_all(fd, key, key_size, 0, &got, path);
	if (rc == 0 && got != key_size)
		rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DEID,
			"key file '%s' must hold exactly %d bytes", path, FDN_DEID_KEY_BYTES);
	if (rc != 0)
		sodium_memzero(key, key_size);
	close(fd);
	return rc;
}
