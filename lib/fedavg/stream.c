/*
 * libfednode: reading update files in bounded chunks with pread, one
 * file or several in lockstep (the same byte range of each at a time,
 * so that the folds of all of them meet the same block of sums while it
 * is in cache).
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fedavg/fedavg_private.h"

int fdn_agg__open(int *fd_out, uint64_t *size_out, const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT
			? fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_OS, "%s: no such file", path)
			: fdn__error_os(errno, "%s: cannot open", path);
	if (fstat(fd, &st) < 0) {
		int rc = fdn__error_os(errno, "%s: cannot stat", path);

		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fdn__error_set(FDN_EIO, FDN_ERRCLASS_FEDAVG, "%s: not a regular file", path);
	}
#ifdef POSIX_FADV_SEQUENTIAL
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
	*fd_out = fd;
	*size_out = (uint64_t)st.st_size;
	return 0;
}

/* Moves each buffer's unconsumed tail (@p keep bytes from @p off) to its
 * front and appends @p want bytes from data offset @p next. */
static int refill(const fdn_agg__reader *r, size_t off, size_t keep, size_t want,
	uint64_t next)
{
	int rc;

	for (size_t k = 0; k < r->nfiles; k++) {
		size_t got;

		if (r->skip && r->skip[k])
			continue;
		memmove(r->bufs[k], r->bufs[k] + off, keep);
		rc = fdn__pread_all(r->fds[k], r->bufs[k] + keep, want,
			r->data_starts[k] + next, &got, r->paths[k]);
		if (rc == 0 && got != want)
			rc = fdn__error_set(FDN_EIO, FDN_ERRCLASS_FEDAVG,
				"%s: the file shrank while it was read", r->paths[k]);
		if (rc < 0 && (!r->on_fail || (rc = r->on_fail(r->ctx, k, rc)) < 0))
			return rc;
	}
	return 0;
}

int fdn_agg__stream(const fdn_agg__reader *r, uint64_t end, fdn_agg__span_fn fn)
{
	fdn_aggregator *agg = r->agg;
	size_t have = 0, ti = 0, te = 0;
	uint64_t next = 0;
	int rc;

	for (;;) {
		size_t off = 0, want;

		while (ti < agg->ntensors) {
			const fdn_agg__tensor *t = &agg->t[ti];
			uint64_t pos = t->offset + (uint64_t)te * t->esize;
			size_t k;

			if (te == t->count) {
				ti++;
				te = 0;
				continue;
			}
			if (pos >= end)
				return 0;
			k = (have - off) / t->esize;
			if (k > t->count - te)
				k = t->count - te;
			if (k > (end - pos) / t->esize)
				k = (size_t)((end - pos) / t->esize);
			if (k == 0)
				break;
			for (size_t f = 0; f < r->nfiles; f++)
				r->ptrs[f] = r->bufs[f] + off;
			if ((rc = fn(r->ctx, ti, te, k, pos, r->ptrs)) < 0)
				return rc;
			off += k * t->esize;
			te += k;
		}
		if (ti == agg->ntensors)
			return 0;
		want = r->chunk - (have - off);
		if (want > end - next)
			want = (size_t)(end - next);
		if (want == 0)  /* cannot happen: the layouts matched */
			return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_FEDAVG,
				"internal error: update data ended early");
		if ((rc = refill(r, off, have - off, want, next)) < 0)
			return rc;
		have = have - off + want;
		next += want;
	}
}
