/*
 * The directory transport: key "a/b" is the file "<root>/a/b".
 *
 * Every path is walked one segment at a time from a descriptor of the
 * root with openat(O_NOFOLLOW), so a symbolic link planted in the store
 * can never lead a key outside it (keys cannot hold ".." anyway).  Puts
 * write ".fdn~<random>.tmp" in the target folder, fsync it, rename it over
 * the key and fsync the folder: readers see the old object or the new one,
 * never a mix, and a crash leaves at most a temporary file whose name
 * ('~') no key can ever have.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "transport/transport_private.h"

#define TMP_NAME_SIZE 32

typedef struct dirt {
	int root_fd;
	char *root;  /* for messages */
} dirt;

static int symlink_refused(const dirt *d, const char *key)
{
	return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_TRANSPORT,
		"'%s/%s': a symbolic link is on the way, and the directory transport "
		"never follows one", d->root, key);
}

static int not_found(const dirt *d, const char *key)
{
	return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_TRANSPORT,
		"no object '%s' in '%s'", key, d->root);
}

static bool is_symlink(int dfd, const char *name)
{
	struct stat st;

	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

/* Opens the folder that holds the last segment of @p key (made, with its
 * parents, when @p create) into *dfd_out; *name points at that segment. */
static int walk(const dirt *d, const char *key, bool create, int *dfd_out,
	const char **name)
{
	char seg[130];
	const char *p = key, *slash;
	int cur, next;

	if ((cur = fcntl(d->root_fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return fdn__error_os(errno, "cannot use the folder '%s'", d->root);
	while ((slash = strchr(p, '/')) != NULL) {
		size_t len = (size_t)(slash - p);

		memcpy(seg, p, len);  /* a valid key's segment is <= 128 bytes */
		seg[len] = '\0';
		next = openat(cur, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(cur, seg, 0777) != 0 && errno != EEXIST) {
				int err = errno;
				close(cur);
				return fdn__error_os(err, "cannot create the folder '%s/%.*s'",
					d->root, (int)(slash - key), key);
			}
			next = openat(cur, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			int err = errno;
			bool link = (err == ELOOP || err == ENOTDIR) && is_symlink(cur, seg);

			close(cur);
			if (link)
				return symlink_refused(d, key);
			if ((err == ENOENT || err == ENOTDIR) && !create)
				return not_found(d, key);
			return fdn__error_os(err == ENOENT ? EIO : err,
				"cannot open the folder '%s/%.*s'", d->root,
				(int)(slash - key), key);
		}
		close(cur);
		cur = next;
		p = slash + 1;
	}
	*dfd_out = cur;
	*name = p;
	return 0;
}

static void fill_info(fdn_object_info *info, const struct stat *st)
{
	char etag[72];
	uint64_t ns = (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
	int n;

	info->size = (uint64_t)st->st_size;
	info->mtime = (int64_t)st->st_mtim.tv_sec;
	/* Any rename-replace changes the inode, any write the time or size. */
	n = snprintf(etag, sizeof(etag), "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"",
		(uint64_t)st->st_size, ns, (uint64_t)st->st_ino);
	fdn_transport__set_etag(info, etag, (size_t)n);
}

/* --- put ------------------------------------------------------------------ */

/* Streams @p src into the open temporary file @p fd. */
static int copy_in(const char *key, int fd, const char *tmp,
	const fdn_transport__source *src, fdn_cancel *cancel)
{
	unsigned char *buf = fdn__malloc(FDN_TRANSPORT__CHUNK);
	uint64_t total = 0;
	int rc = 0;

	if (!buf)
		return fdn__error_oom();
	for (;;) {
		size_t got = 0;

		if ((rc = fdn__cancel_check(cancel)) != 0)
			break;
		if ((rc = src->read(buf, FDN_TRANSPORT__CHUNK, &got, src->payload)) != 0) {
			rc = fdn__error_callback(rc, "read");
			break;
		}
		if (got > FDN_TRANSPORT__CHUNK) {
			rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_CALLBACK,
				"read callback reported %zu bytes for a %d-byte buffer",
				got, FDN_TRANSPORT__CHUNK);
			break;
		}
		if (got == 0)
			break;
		total += got;
		if (src->size != UINT64_MAX && total > src->size) {
			rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_TRANSPORT,
				"put '%s': the stream gave more than the %" PRIu64 " bytes announced",
				key, src->size);
			break;
		}
		if ((rc = fdn__write_all(fd, buf, got, tmp)) != 0)
			break;
	}
	if (rc == 0 && src->size != UINT64_MAX && total != src->size)
		rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_TRANSPORT,
			"put '%s': the stream ended after %" PRIu64 " of the %" PRIu64
			" bytes announced", key, total, src->size);
	fdn__free(buf);
	return rc;
}

static int dir_put(void *self, const char *key, const fdn_transport__source *src,
	fdn_object_info *info, fdn_cancel *cancel)
{
	dirt *d = self;
	const char *name;
	char tmp[TMP_NAME_SIZE], shown[4096];
	struct stat st;
	int dfd, fd = -1, rc, tries;

	if ((rc = walk(d, key, true, &dfd, &name)) != 0)
		return rc;
	for (tries = 0; tries < 16; tries++) {
		uint64_t r;

		randombytes_buf(&r, sizeof(r));
		snprintf(tmp, sizeof(tmp), ".fdn~%016" PRIx64 ".tmp", r);
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	snprintf(shown, sizeof(shown), "%s/%s", d->root, key);
	if (fd < 0) {
		rc = fdn__error_os(errno == ENOENT ? EIO : errno,
			"cannot create a temporary file next to '%s'", shown);
		close(dfd);
		return rc;
	}
	rc = copy_in(key, fd, shown, src, cancel);
	if (rc == 0 && fsync(fd) != 0)
		rc = fdn__error_os(errno, "cannot flush '%s' to disk", shown);
	if (rc == 0 && fstat(fd, &st) != 0)
		rc = fdn__error_os(errno, "cannot inspect '%s'", shown);
	if (close(fd) != 0 && rc == 0)
		rc = fdn__error_os(errno, "cannot close '%s'", shown);
	if (rc == 0 && renameat(dfd, tmp, dfd, name) != 0)
		rc = fdn__error_os(errno == ENOENT ? EIO : errno, "cannot rename into '%s'", shown);
	if (rc != 0) {
		unlinkat(dfd, tmp, 0);
	} else {
		if (fsync(dfd) != 0 && errno != EINVAL)
			rc = fdn__error_os(errno, "cannot flush the folder of '%s'", shown);
		if (info)
			fill_info(info, &st);
	}
	close(dfd);
	return rc;
}

/* --- get, head, remove ----------------------------------------------------- */

/* The object named by @p key, opened for reading (*fd_out), with its stat. */
static int open_object(const dirt *d, const char *key, int *fd_out, struct stat *st)
{
	const char *name;
	int dfd, fd, rc, err;

	if ((rc = walk(d, key, false, &dfd, &name)) != 0)
		return rc;
	/* O_NONBLOCK: a FIFO planted in the store must not hang the open. */
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	err = errno;
	if (fd < 0) {
		rc = err == ELOOP && is_symlink(dfd, name) ? symlink_refused(d, key) :
			err == ENOENT || err == ENOTDIR ? not_found(d, key) :
			fdn__error_os(err, "cannot open '%s/%s'", d->root, key);
		close(dfd);
		return rc;
	}
	close(dfd);
	if (fstat(fd, st) != 0) {
		rc = fdn__error_os(errno, "cannot inspect '%s/%s'", d->root, key);
	} else if (S_ISDIR(st->st_mode)) {
		rc = not_found(d, key);  /* a folder of keys, not an object */
	} else if (!S_ISREG(st->st_mode)) {
		rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_TRANSPORT,
			"'%s/%s' is not a regular file", d->root, key);
	} else {
		*fd_out = fd;
		return 0;
	}
	close(fd);
	return rc;
}

static int copy_out(const dirt *d, const char *key, int fd, uint64_t size,
	const fdn_transport__sink *sink, fdn_cancel *cancel)
{
	unsigned char *buf = fdn__malloc(FDN_TRANSPORT__CHUNK);
	uint64_t done = 0;
	int rc = 0;

	if (!buf)
		return fdn__error_oom();
	/* Exactly the size the entity tag was made of: a file that a foreign
	 * writer appends to is read as it was. */
	while (done < size) {
		size_t want = size - done < FDN_TRANSPORT__CHUNK ?
			(size_t)(size - done) : FDN_TRANSPORT__CHUNK, got;

		if ((rc = fdn__cancel_check(cancel)) != 0 ||
		    (rc = fdn__pread_all(fd, buf, want, done, &got, key)) != 0)
			break;
		if (got < want) {
			rc = fdn__error_set(FDN_EIO, FDN_ERRCLASS_TRANSPORT,
				"'%s/%s' shrank while it was read", d->root, key);
			break;
		}
		if ((rc = sink->write(buf, got, sink->payload)) != 0) {
			rc = fdn__error_callback(rc, "write");
			break;
		}
		done += got;
	}
	fdn__free(buf);
	return rc;
}

static int dir_get(void *self, const char *key, const fdn_transport__sink *sink,
	const char *if_none_match, fdn_object_info *info, fdn_cancel *cancel)
{
	dirt *d = self;
	struct stat st;
	int fd = -1, rc;

	if ((rc = open_object(d, key, &fd, &st)) != 0)
		return rc;
	fill_info(info, &st);
	if (if_none_match && strcmp(if_none_match, info->etag) == 0) {
		info->not_modified = 1;
	} else if (info->size > sink->limit) {
		rc = fdn__error_set(FDN_EBUFS, FDN_ERRCLASS_TRANSPORT,
			"object '%s' is %" PRIu64 " bytes, more than the %" PRIu64 " accepted",
			key, info->size, sink->limit);
	} else {
		rc = copy_out(d, key, fd, info->size, sink, cancel);
	}
	close(fd);
	return rc;
}

/* The stat of the object named by @p key without opening it. */
static int stat_object(const dirt *d, const char *key, int *dfd_out, const char **name,
	struct stat *st)
{
	int dfd, rc;

	if ((rc = walk(d, key, false, &dfd, name)) != 0)
		return rc;
	if (fstatat(dfd, *name, st, AT_SYMLINK_NOFOLLOW) != 0) {
		int err = errno;
		rc = err == ENOENT || err == ENOTDIR ? not_found(d, key) :
			fdn__error_os(err, "cannot inspect '%s/%s'", d->root, key);
	} else if (S_ISLNK(st->st_mode)) {
		rc = symlink_refused(d, key);
	} else if (S_ISDIR(st->st_mode)) {
		rc = not_found(d, key);
	} else if (!S_ISREG(st->st_mode)) {
		rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_TRANSPORT,
			"'%s/%s' is not a regular file", d->root, key);
	}
	if (rc != 0)
		close(dfd);
	else
		*dfd_out = dfd;
	return rc;
}

static int dir_head(void *self, const char *key, fdn_object_info *info, fdn_cancel *cancel)
{
	const char *name;
	struct stat st;
	int dfd, rc;

	(void)cancel;
	if ((rc = stat_object(self, key, &dfd, &name, &st)) != 0)
		return rc;
	close(dfd);
	fill_info(info, &st);
	return 0;
}

static int dir_remove(void *self, const char *key, fdn_cancel *cancel)
{
	dirt *d = self;
	const char *name;
	struct stat st;
	int dfd, rc;

	(void)cancel;
	if ((rc = stat_object(d, key, &dfd, &name, &st)) != 0)
		return rc;
	if (unlinkat(dfd, name, 0) != 0)
		rc = errno == ENOENT ? not_found(d, key) :
			fdn__error_os(errno, "cannot remove '%s/%s'", d->root, key);
	else if (fsync(dfd) != 0 && errno != EINVAL)
		rc = fdn__error_os(errno, "cannot flush the folder of '%s/%s'", d->root, key);
	close(dfd);
	return rc;
}

static void dir_free(void *self)
{
	dirt *d = self;

	if (d->root_fd >= 0)
		close(d->root_fd);
	fdn__free(d->root);
	fdn__free(d);
}

static const fdn_transport__ops dir_ops = {
	"directory", dir_put, dir_get, dir_head, dir_remove, dir_free,
};

int fdn_transport_dir_new(fdn_transport **out, const char *root)
{
	dirt *d;
	int rc, fd;

	FDN__CHECK_ARG(out, "out");
	*out = NULL;
	FDN__CHECK_ARG(root && *root, "root");
	if ((rc = fdn__check_init()) != 0)
		return rc;
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_TRANSPORT,
				"directory transport: no such directory '%s'", root);
		if (errno == ENOTDIR)
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_TRANSPORT,
				"directory transport: '%s' is not a directory", root);
		return fdn__error_os(errno, "directory transport: cannot open '%s'", root);
	}
	if (!(d = fdn__calloc(1, sizeof(*d))) || !(d->root = fdn__strdup(root))) {
		fdn__free(d);
		close(fd);
		return fdn__error_oom();
	}
	d->root_fd = fd;
	return fdn_transport__wrap(out, &dir_ops, d);
}
