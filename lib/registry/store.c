/*
 * The default storage: content-addressed files in the registry's
 * objects/ folder, objects/ab/cdef... sharded by the first two hex
 * characters so that no folder grows beyond a few thousand entries.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "registry/registry_private.h"

bool fdn_registry__hash_valid(const char *hash)
{
	size_t i;

	if (!hash)
		return false;
	for (i = 0; i < 64; i++)
		if (!((hash[i] >= '0' && hash[i] <= '9') || (hash[i] >= 'a' && hash[i] <= 'f')))
			return false;
	return hash[64] == '\0';
}

int fdn_registry__sha256_hex(char out[FDN_REGISTRY__HASH_SIZE], const void *data, size_t size)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (EVP_Digest(data, size, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
		return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_REGISTRY, "SHA-256 failed");
	sodium_bin2hex(out, FDN_REGISTRY__HASH_SIZE, md, 32);
	return 0;
}

int fdn_registry__locator(fdn_registry *reg, const char *hash, fdn_buf *out)
{
	const fdn_registry_storage *s = &reg->storage;
	int rc;

	fdn_buf__clear(out);
	if (s->version < 1 || !s->locate)
		return 0;
	rc = s->locate(s->ud, hash, out);
	if (rc == FDN_ENOTFOUND) {
		fdn_buf__clear(out);
		return 0;
	}
	return rc < 0 ? fdn__error_callback(rc, "storage locate") : 0;
}

/* <objects>/ab/cdef... ; the hash was validated by the caller. */
static int object_path(fdn_buf *out, const char *objects, const char *hash)
{
	fdn_buf__clear(out);
	return fdn_buf__printf(out, "%s/%.2s/%s", objects, hash, hash + 2) < 0
		? fdn__error_oom() : 0;
}

static int check_hash(const char *hash)
{
	if (!fdn_registry__hash_valid(hash))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_REGISTRY,
			"object name is not a lower-case hex SHA-256");
	return 0;
}

/* True when the object at @p path already holds exactly this content.
 * Its name alone is not trusted: a batch interrupted by a crash may
 * have left a file whose data never reached the disk. */
static bool already_stored(const char *path, const void *data, size_t size)
{
	fdn_buf have = FDN_BUF_INIT;
	struct stat st;
	size_t got = 0;
	bool same = false;
	int fd;

	if (stat(path, &st) != 0 || (uint64_t)st.st_size != (uint64_t)size)
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fdn_buf__grow(&have, size) == 0 &&
	    fdn__pread_all(fd, have.ptr, size, 0, &got, path) == 0 && got == size)
		same = memcmp(have.ptr, data, size) == 0;
	close(fd);
	fdn_buf_dispose(&have);
	fdn_error_clear();
	return same;
}

/* temp + rename without fsync: for batches, flushed by
 * fdn_registry__storage_sync() before the batch commits. */
static int put_unsynced(const char *path, const void *data, size_t size)
{
	fdn_buf tmp = FDN_BUF_INIT;
	int fd, rc;

	if (fdn_buf__printf(&tmp, "%s.tmp%08x", path, (unsigned)getpid()) < 0)
		return fdn__error_oom();
	fd = open(tmp.ptr, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0) {
		rc = fdn__error_os(errno, "create '%s'", tmp.ptr);
		goto out;
	}
	rc = fdn__write_all(fd, data, size, tmp.ptr);
	if (close(fd) != 0 && rc == 0)
		rc = fdn__error_os(errno, "close '%s'", tmp.ptr);
	if (rc == 0 && rename(tmp.ptr, path) != 0)
		rc = fdn__error_os(errno, "rename '%s'", tmp.ptr);
	if (rc < 0)
		unlink(tmp.ptr);
out:
	fdn_buf_dispose(&tmp);
	return rc;
}

static int fs_put(void *ud, const char *hash, const void *data, size_t size)
{
	fdn_registry *reg = ud;
	const char *objects = reg->objects_dir;
	fdn_buf path = FDN_BUF_INIT;
	fdn_atomic_file af;
	size_t cut = strlen(objects) + 3;
	int rc;

	if ((rc = check_hash(hash)) < 0 || (rc = object_path(&path, objects, hash)) < 0)
		goto out;
	if (already_stored(path.ptr, data, size))
		goto out;
	/* The shard folder: created once, and made durable before any
	 * object in it is relied upon. */
	path.ptr[cut] = '\0';
	if (mkdir(path.ptr, 0777) == 0) {
		if ((rc = fdn__fsync_dir(path.ptr)) < 0)
			goto out;
	} else if (errno != EEXIST) {
		rc = fdn__error_os(errno, "create folder '%s'", path.ptr);
		goto out;
	}
	path.ptr[cut] = '/';
	if (reg->in_batch) {
		/* Hundreds of fsyncs per batch would cap throughput at the
		 * disk's flush rate; one flush before COMMIT gives the same
		 * guarantee (no row commits before its file is durable). */
		if ((rc = put_unsynced(path.ptr, data, size)) == 0)
			reg->objects_unsynced = true;
		goto out;
	}
	if ((rc = fdn__atomic_open(&af, path.ptr)) < 0)
		goto out;
	if ((rc = fdn__atomic_write(&af, data, size)) < 0) {
		fdn__atomic_abort(&af);
		goto out;
	}
	rc = fdn__atomic_commit(&af);
out:
	fdn_buf_dispose(&path);
	return rc;
}

int fdn_registry__storage_sync(fdn_registry *reg)
{
	int fd, rc = 0;

	if (!reg->objects_unsynced)
		return 0;
	fd = open(reg->objects_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fdn__error_os(errno, "open '%s'", reg->objects_dir);
	/* syncfs flushes file data and the shard folders' entries of the
	 * whole file system in one call. */
	if (syncfs(fd) != 0)
		rc = fdn__error_os(errno, "flush '%s'", reg->objects_dir);
	close(fd);
	if (rc == 0)
		reg->objects_unsynced = false;
	return rc;
}

static int fs_get(void *ud, const char *hash, fdn_buf *out)
{
	fdn_registry *reg = ud;
	fdn_buf path = FDN_BUF_INIT;
	struct stat st;
	size_t got;
	int fd = -1, rc;

	if ((rc = check_hash(hash)) < 0 || (rc = object_path(&path, reg->objects_dir, hash)) < 0)
		goto out;
	fd = open(path.ptr, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT
			? fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_REGISTRY,
				"object %s is missing", hash)
			: fdn__error_os(errno, "open '%s'", path.ptr);
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		rc = fdn__error_os(errno, "stat '%s'", path.ptr);
		goto out;
	}
	if ((uint64_t)st.st_size >= SIZE_MAX / 2) {
		rc = fdn__error_set(FDN_EIO, FDN_ERRCLASS_REGISTRY, "object too large");
		goto out;
	}
	fdn_buf__clear(out);
	if ((rc = fdn_buf__grow(out, (size_t)st.st_size)) < 0)
		goto out;
	rc = fdn__pread_all(fd, out->ptr, (size_t)st.st_size, 0, &got, path.ptr);
	if (rc == 0) {
		out->size = got;
		out->ptr[got] = '\0';
	}
out:
	if (fd >= 0)
		close(fd);
	fdn_buf_dispose(&path);
	return rc;
}

static int fs_del(void *ud, const char *hash)
{
	fdn_registry *reg = ud;
	fdn_buf path = FDN_BUF_INIT;
	int rc;

	if ((rc = check_hash(hash)) < 0 ||
	    (rc = object_path(&path, reg->objects_dir, hash)) < 0)
		goto out;
	if (unlink(path.ptr) != 0) {
		if (errno != ENOENT)
			rc = fdn__error_os(errno, "remove '%s'", path.ptr);
		goto out;
	}
	/* A purge must stay done after a crash. */
	rc = fdn__fsync_dir(path.ptr);
out:
	fdn_buf_dispose(&path);
	return rc;
}

static int fs_locate(void *ud, const char *hash, fdn_buf *out)
{
	fdn_registry *reg = ud;
	int rc = check_hash(hash);

	return rc < 0 ? rc : object_path(out, reg->objects_dir, hash);
}

void fdn_registry__storage_default(fdn_registry_storage *out, fdn_registry *reg)
{
	memset(out, 0, sizeof(*out));
	out->version = FDN_REGISTRY_STORAGE_VERSION;
	out->put = fs_put;
	out->get = fs_get;
	out->del = fs_del;
	out->locate = fs_locate;
	out->ud = reg;
}
