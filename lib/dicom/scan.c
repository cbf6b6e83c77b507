/*
 * fdn_scan: reads every regular file of a folder tree as DICOM on a pool
 * of worker threads and delivers the results on the calling thread.
 *
 * Threads.  One walker thread lists the folders and feeds the paths of
 * regular files to a bounded job queue; N workers read them and push
 * datasets (or skip reasons) to a bounded results queue; the calling
 * thread is that queue's only consumer and runs every callback.  What the
 * walker rejects itself (loops, links not followed, special files,
 * unreadable folders) goes straight to the results queue, so every
 * callback still runs on the calling thread.  Both queues are bounded,
 * and each worker frees the datasets it read once they are delivered, so
 * the datasets alive at once are a small multiple of the worker count
 * (queued, being read, being delivered, waiting for their worker to free
 * them), however large the tree.  One mutex guards both queues:
 * reading a file costs far more than taking it, and waking a sleeping
 * thread costs more than both, so wake-ups are batched (see
 * push_result() and pop_job()).
 *
 * Order.  Folder entries are sorted bytewise, so the walk itself is
 * deterministic; delivery order is not (workers finish in any order, and
 * the walker's own skips overtake queued files).
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/core_private.h"
#include "dataset_private.h"

/* More threads than this only add contention on the disk. */
#define SCAN_MAX_WORKERS 64
/* The cancel token is a bare atomic flag with no wake-up, so an idle
 * consumer looks at it this often. */
#define SCAN_POLL_SECONDS 0.02

/* Which counter of fdn_scan_stats a result goes to. */
enum scan_tally { TALLY_INSTANCE, TALLY_NOT_DICOM, TALLY_DICOMDIR, TALLY_ERROR };

/* A file on its way through the queues: a job, then its result. */
typedef struct scan_item {
	char *path;
	char *reason;         /* skips only */
	fdn_dataset *ds;      /* instances only; info borrows from it */
	fdn_instance_info info;
	uint64_t size;
	int code;             /* skips only: the code for on_skip */
	int tally;            /* enum scan_tally */
	bool is_file;         /* a regular file: counts in files and bytes */
	unsigned int owner;   /* 1 + index of the worker that read it; 0: none */
	struct scan_item *next; /* in that worker's list of items to free */
} scan_item;

/* A fixed ring of item pointers. */
typedef struct scan_queue {
	scan_item **slots;
	size_t cap, head, count;
} scan_queue;

typedef struct scan_state {
	fdn_scan_options opts;
	pthread_mutex_t lock;
	pthread_cond_t jobs_not_empty, jobs_not_full;
	pthread_cond_t results_not_empty, results_not_full;
	scan_queue jobs, results;
	atomic_bool stop;         /* written under lock, read anywhere */
	bool walk_done;
	size_t outstanding;       /* jobs queued or being read */
	uint64_t files_found;     /* by the walker: progress totals */
	uint64_t bytes_found;
	/* Delivered items go back to the worker that read them, which frees
	 * them before its next file.  Freed on the calling thread, every
	 * GDCM allocation of a worker would be freed into another thread's
	 * cache and the worker's glibc arena from another core: with the two
	 * threads on two cores that tripled the CPU time of a scan. */
	scan_item *to_free[SCAN_MAX_WORKERS];
	/* An error that ends the scan on another thread (out of memory):
	 * error state is per thread, so its message is copied here. */
	int fatal_code;
	int fatal_klass;
	char fatal_message[FDN__ERROR_MESSAGE_MAX];
} scan_state;

/* A folder being walked: its sorted entry names. */
typedef struct scan_frame {
	char **names;
	char *arena;          /* the names, NUL-separated */
	size_t count, next;
	size_t path_len;      /* of the folder's path in walker.path */
	dev_t dev;
	ino_t ino;
} scan_frame;

typedef struct scan_dir_id {
	dev_t dev;
	ino_t ino;
	bool used;
} scan_dir_id;

typedef struct scan_walker {
	scan_state *st;
	fdn_buf path;         /* the folder or entry being looked at */
	scan_frame *frames;   /* the folders on the current path, root first */
	size_t depth, frames_cap;
	/* Every folder entered, so that a link to a folder scanned elsewhere
	 * does not deliver its files twice (open addressing). */
	scan_dir_id *seen;
	size_t seen_cap, seen_count;
	struct stat root_st;  /* root that is not a folder: visited alone */
} scan_walker;

/* ---------------------------------------------------------------- items */

static void item_free(scan_item *it)
{
	if (!it)
		return;
	fdn_dataset_free(it->ds);
	fdn__free(it->reason);
	fdn__free(it->path);
	fdn__free(it);
}

static void items_free(scan_item *it)
{
	while (it) {
		scan_item *next = it->next;
		item_free(it);
		it = next;
	}
}

static scan_item *item_new(const char *path)
{
	scan_item *it = fdn__calloc(1, sizeof(*it));

	if (it && !(it->path = fdn__strdup(path))) {
		fdn__free(it);
		it = NULL;
	}
	return it;
}

/* Turns @p it into a skip; fails only for lack of memory. */
static int item_skip(scan_item *it, int code, int tally, const char *reason)
{
	it->code = code;
	it->tally = tally;
	if (!(it->reason = fdn__strdup(reason)))
		return fdn__error_oom();
	return 0;
}

/* ---------------------------------------------------------------- queues */

static int queue_init(scan_queue *q, size_t cap)
{
	q->head = q->count = 0;
	q->cap = cap;
	q->slots = fdn__calloc(cap, sizeof(*q->slots));
	return q->slots ? 0 : fdn__error_oom();
}

static bool queue_full(const scan_queue *q)
{
	return q->count == q->cap;
}

static void queue_push(scan_queue *q, scan_item *it)
{
	q->slots[(q->head + q->count) % q->cap] = it;
	q->count++;
}

static scan_item *queue_pop(scan_queue *q)
{
	scan_item *it = q->slots[q->head];

	q->head = (q->head + 1) % q->cap;
	q->count--;
	return it;
}

static void queue_dispose(scan_queue *q)
{
	while (q->slots && q->count)
		item_free(queue_pop(q));
	fdn__free(q->slots);
	q->slots = NULL;
}

/* ------------------------------------------------------- shared state */

static bool is_stopped(scan_state *s)
{
	return atomic_load(&s->stop);
}

/* Ends the scan early: every thread leaves its wait and exits. */
static void scan_stop(scan_state *s)
{
	pthread_mutex_lock(&s->lock);
	atomic_store(&s->stop, true);
	pthread_cond_broadcast(&s->jobs_not_empty);
	pthread_cond_broadcast(&s->jobs_not_full);
	pthread_cond_broadcast(&s->results_not_empty);
	pthread_cond_broadcast(&s->results_not_full);
	pthread_mutex_unlock(&s->lock);
}

/* Called on a walker or worker thread whose error ends the scan. */
static void scan_fail(scan_state *s)
{
	const fdn_error *e = fdn_error_last();

	pthread_mutex_lock(&s->lock);
	if (!s->fatal_code) {
		s->fatal_code = e->code ? e->code : FDN_ERROR;
		s->fatal_klass = e->klass;
		snprintf(s->fatal_message, sizeof(s->fatal_message), "%s", e->message);
	}
	pthread_mutex_unlock(&s->lock);
	scan_stop(s);
}

/* The producers' check between two files: a cancellation stops them
 * without waiting for the consumer to notice it. */
static bool should_stop(scan_state *s)
{
	if (is_stopped(s))
		return true;
	if (!fdn_cancel_requested(s->opts.cancel))
		return false;
	scan_stop(s);
	return true;
}

/*
 * The walker's side: waits for room and queues @p it, a file for the
 * workers (@p job) or a skip for the consumer.  When the scan stops
 * instead, @p it is freed and false returned.
 */
static bool enqueue(scan_state *s, scan_item *it, bool job)
{
	scan_queue *q = job ? &s->jobs : &s->results;
	pthread_cond_t *not_full = job ? &s->jobs_not_full : &s->results_not_full;
	bool ok;

	pthread_mutex_lock(&s->lock);
	while (!is_stopped(s) && queue_full(q))
		pthread_cond_wait(not_full, &s->lock);
	ok = !is_stopped(s);
	if (ok) {
		queue_push(q, it);
		if (job) {
			s->outstanding++;
			s->files_found++;
			s->bytes_found += it->size;
			pthread_cond_signal(&s->jobs_not_empty);
		} else {
			pthread_cond_signal(&s->results_not_empty);
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (!ok)
		item_free(it);
	return ok;
}

/* ---------------------------------------------------------------- walker */

/* Reports an entry the walker does not hand to the workers.  0, or an
 * error when the walk must end (out of memory, scan stopped). */
static int walker_skip(scan_walker *w, int code, int tally, const char *reason)
{
	scan_item *it = item_new(w->path.ptr);

	if (!it || item_skip(it, code, tally, reason) != 0) {
		item_free(it);
		return fdn__error_oom();
	}
	return enqueue(w->st, it, false) ? 0 : FDN_ECANCELLED;
}

static int walker_skip_errno(scan_walker *w, int err, const char *what)
{
	char detail[256], reason[320];
	/* GNU strerror_r returns the message, which may not be in detail. */
	const char *msg = strerror_r(err, detail, sizeof(detail));

	snprintf(reason, sizeof(reason), "%s: %s", what, msg);
	return walker_skip(w, err == ENOENT ? FDN_ENOTFOUND : FDN_EIO, TALLY_ERROR, reason);
}

/* Makes w->path the folder path of @p len bytes followed by @p name. */
static int walker_set_path(scan_walker *w, size_t len, const char *name)
{
	w->path.size = len;
	w->path.ptr[len] = '\0';
	if (len && w->path.ptr[len - 1] != '/' && fdn_buf__put(&w->path, "/", 1) != 0)
		return FDN_ERROR;
	return fdn_buf__puts(&w->path, name);
}

static size_t dir_id_slot(const scan_walker *w, dev_t dev, ino_t ino)
{
	uint64_t h = ((uint64_t)dev * 0x9E3779B97F4A7C15u) ^ (uint64_t)ino;
	size_t i;

	h ^= h >> 29;
	h *= 0xBF58476D1CE4E5B9u;
	h ^= h >> 32;
	for (i = (size_t)h & (w->seen_cap - 1); w->seen[i].used;
	     i = (i + 1) & (w->seen_cap - 1))
		if (w->seen[i].dev == dev && w->seen[i].ino == ino)
			break;
	return i;
}

static int seen_grow(scan_walker *w)
{
	scan_dir_id *old = w->seen;
	size_t i, old_cap = w->seen_cap;

	w->seen_cap = old_cap ? old_cap * 2 : 64;
	if (!(w->seen = fdn__calloc(w->seen_cap, sizeof(*w->seen)))) {
		w->seen = old;
		w->seen_cap = old_cap;
		return fdn__error_oom();
	}
	for (i = 0; i < old_cap; i++)
		if (old[i].used)
			w->seen[dir_id_slot(w, old[i].dev, old[i].ino)] = old[i];
	fdn__free(old);
	return 0;
}

/* Records a folder; 1 when it had been entered already. */
static int seen_add(scan_walker *w, dev_t dev, ino_t ino)
{
	size_t i;

	if (2 * (w->seen_count + 1) > w->seen_cap && seen_grow(w) != 0)
		return FDN_ERROR;
	i = dir_id_slot(w, dev, ino);
	if (w->seen[i].used)
		return 1;
	w->seen[i].dev = dev;
	w->seen[i].ino = ino;
	w->seen[i].used = true;
	w->seen_count++;
	return 0;
}

static bool is_ancestor(const scan_walker *w, dev_t dev, ino_t ino)
{
	size_t i;

	for (i = 0; i < w->depth; i++)
		if (w->frames[i].dev == dev && w->frames[i].ino == ino)
			return true;
	return false;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void frame_dispose(scan_frame *f)
{
	fdn__free(f->names);
	fdn__free(f->arena);
	f->names = NULL;
	f->arena = NULL;
}

/* Offsets of the names in the arena become sorted pointers. */
static int frame_index(scan_frame *f, fdn_buf *arena, const size_t *offsets)
{
	size_t i;

	f->arena = arena->ptr;
	arena->ptr = NULL;
	if (f->count == 0)
		return 0;
	if (!(f->names = fdn__reallocarray(NULL, f->count, sizeof(*f->names))))
		return fdn__error_oom();
	for (i = 0; i < f->count; i++)
		f->names[i] = f->arena + offsets[i];
	qsort(f->names, f->count, sizeof(*f->names), cmp_names);
	return 0;
}

/*
 * Lists the folder @p d into @p f.  Returns 0; FDN_ERROR (out of
 * memory, error set); or FDN_EIO with *err the errno of readdir().
 */
static int frame_read(scan_frame *f, DIR *d, int *err)
{
	fdn_buf arena = FDN_BUF_INIT;
	size_t *offsets = NULL, cap = 0, *grown;
	struct dirent *e;
	int rc = 0;

	f->count = f->next = 0;
	for (errno = 0; (e = readdir(d)) != NULL; errno = 0) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (f->count == cap) {
			cap = cap ? 2 * cap : 64;
			if (!(grown = fdn__reallocarray(offsets, cap, sizeof(*offsets)))) {
				rc = fdn__error_oom();
				break;
			}
			offsets = grown;
		}
		offsets[f->count++] = arena.size;
		if ((rc = fdn_buf__put(&arena, e->d_name, strlen(e->d_name) + 1)) != 0)
			break;
	}
	if (rc == 0 && errno != 0) {
		*err = errno;
		rc = FDN_EIO;
	}
	if (rc == 0)
		rc = frame_index(f, &arena, offsets);
	fdn__free(offsets);
	fdn_buf_dispose(&arena);
	if (rc != 0)
		frame_dispose(f);
	return rc;
}

static int frames_push(scan_walker *w, const scan_frame *f)
{
	if (w->depth == w->frames_cap) {
		size_t cap = w->frames_cap ? 2 * w->frames_cap : 16;
		scan_frame *grown = fdn__reallocarray(w->frames, cap, sizeof(*grown));
		if (!grown)
			return fdn__error_oom();
		w->frames = grown;
		w->frames_cap = cap;
	}
	w->frames[w->depth++] = *f;
	return 0;
}

/* Opens the folder at w->path, or returns -errno.  Entries that were not
 * links are opened with O_NOFOLLOW when links are not followed, so that
 * one swapped for a link in the meantime is not followed either. */
static int open_dir(const scan_walker *w, bool follow)
{
	int fd = open(w->path.ptr, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
		(follow ? 0 : O_NOFOLLOW));

	return fd < 0 ? -errno : fd;
}

/* Lists an open folder and makes it the deepest frame.  FDN_EIO with
 * *err set when it cannot be listed. */
static int enter_open_dir(scan_walker *w, int fd, const struct stat *st, int *err)
{
	scan_frame f = { NULL, NULL, 0, 0, w->path.size, st->st_dev, st->st_ino };
	DIR *d = fdopendir(fd);
	int rc;

	if (!d) {
		*err = errno;
		close(fd);
		return FDN_EIO;
	}
	rc = frame_read(&f, d, err);
	closedir(d);
	if (rc == 0 && (rc = frames_push(w, &f)) != 0)
		frame_dispose(&f);
	return rc;
}

/*
 * Enters the folder at w->path.  A folder entered before is skipped: a
 * loop when it encloses this one (an error), else a second path to a
 * folder already scanned (not a failure: its files were delivered).
 */
static int enter_dir(scan_walker *w, bool follow)
{
	struct stat st;
	int fd = open_dir(w, follow), err = 0, rc;

	if (fd < 0)
		return walker_skip_errno(w, -fd, "cannot open folder");
	if (fstat(fd, &st) != 0) {
		err = errno;
		close(fd);
		return walker_skip_errno(w, err, "cannot examine folder");
	}
	if ((rc = seen_add(w, st.st_dev, st.st_ino)) != 0) {
		close(fd);
		if (rc < 0)
			return rc;
		if (is_ancestor(w, st.st_dev, st.st_ino))
			return walker_skip(w, FDN_ECONFLICT, TALLY_ERROR,
				"symbolic-link loop: leads back to a folder that encloses it");
		return walker_skip(w, FDN_ECONFLICT, TALLY_NOT_DICOM,
			"folder already scanned through another path (symbolic link)");
	}
	rc = enter_open_dir(w, fd, &st, &err);
	return rc == FDN_EIO ? walker_skip_errno(w, err, "cannot list folder") : rc;
}

static int submit_file(scan_walker *w, uint64_t size)
{
	scan_item *it = item_new(w->path.ptr);

	if (!it)
		return fdn__error_oom();
	it->size = size;
	it->is_file = true;
	return enqueue(w->st, it, true) ? 0 : FDN_ECANCELLED;
}

static const char *special_reason(mode_t mode)
{
	if (S_ISFIFO(mode))
		return "a FIFO, not a regular file: not opened";
	if (S_ISSOCK(mode))
		return "a socket, not a regular file: not opened";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "a device, not a regular file: not opened";
	return "not a regular file: not opened";
}

/* Handles the entry at w->path whose (followed) stat is @p st. */
static int visit_stat(scan_walker *w, const struct stat *st, bool via_link)
{
	if (S_ISDIR(st->st_mode))
		return enter_dir(w, via_link || w->st->opts.follow_symlinks);
	if (S_ISREG(st->st_mode))
		return submit_file(w, (uint64_t)st->st_size);
	return walker_skip(w, FDN_EUNSUPPORTED, TALLY_NOT_DICOM, special_reason(st->st_mode));
}

static int visit_link(scan_walker *w)
{
	struct stat st;

	if (!w->st->opts.follow_symlinks)
		return walker_skip(w, FDN_EUNSUPPORTED, TALLY_NOT_DICOM,
			"symbolic link not followed (follow_symlinks is 0)");
	if (stat(w->path.ptr, &st) == 0)
		return visit_stat(w, &st, true);
	if (errno == ELOOP)
		return walker_skip(w, FDN_ECONFLICT, TALLY_ERROR,
			"symbolic-link loop: the link resolves to itself");
	if (errno == ENOENT)
		return walker_skip(w, FDN_ENOTFOUND, TALLY_ERROR,
			"dangling symbolic link: its target does not exist");
	return walker_skip_errno(w, errno, "cannot follow symbolic link");
}

static int visit(scan_walker *w)
{
	struct stat st;

	if (lstat(w->path.ptr, &st) != 0)
		return walker_skip_errno(w, errno, "cannot examine");
	if (S_ISLNK(st.st_mode))
		return visit_link(w);
	return visit_stat(w, &st, false);
}

/* Depth first through the frames; 0 when the walk is complete. */
static int walk(scan_walker *w)
{
	int rc = 0;

	while (rc == 0 && w->depth > 0 && !should_stop(w->st)) {
		scan_frame *f = &w->frames[w->depth - 1];
		if (f->next == f->count) {
			frame_dispose(f);
			w->depth--;
			continue;
		}
		if ((rc = walker_set_path(w, f->path_len, f->names[f->next++])) == 0)
			rc = visit(w);
	}
	return rc;
}

static void *walker_main(void *arg)
{
	scan_walker *w = arg;
	scan_state *s = w->st;
	int rc;

	/* Named for the host's debugger and top -H. */
	pthread_setname_np(pthread_self(), "fdn-scan-walk");
	rc = w->depth ? walk(w) : visit_stat(w, &w->root_st, true);

	/* FDN_ECANCELLED: the scan stopped, nothing to report. */
	if (rc != 0 && rc != FDN_ECANCELLED && !is_stopped(s))
		scan_fail(s);
	pthread_mutex_lock(&s->lock);
	s->walk_done = true;
	pthread_cond_broadcast(&s->jobs_not_empty);
	pthread_cond_signal(&s->results_not_empty);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void walker_dispose(scan_walker *w)
{
	while (w->depth > 0)
		frame_dispose(&w->frames[--w->depth]);
	fdn__free(w->frames);
	fdn__free(w->seen);
	fdn_buf_dispose(&w->path);
}

/*
 * Prepares the walk of @p root on the calling thread, so that a root that
 * cannot be read is fdn_scan()'s error rather than a skip.  The root is
 * followed even when it is a link, as find -H does.
 */
static int walker_init(scan_walker *w, scan_state *s, const char *root)
{
	size_t len = strlen(root);
	int fd, err = 0, rc;

	w->st = s;
	while (len > 1 && root[len - 1] == '/')
		len--;
	if ((rc = fdn_buf__put(&w->path, root, len)) != 0)
		return rc;
	if (stat(w->path.ptr, &w->root_st) != 0)
		return fdn__error_os(errno, "fdn_scan: cannot examine '%s'", root);
	if (!S_ISDIR(w->root_st.st_mode))
		return 0;
	if ((fd = open_dir(w, true)) < 0)
		return fdn__error_os(-fd, "fdn_scan: cannot open folder '%s'", root);
	if ((rc = seen_add(w, w->root_st.st_dev, w->root_st.st_ino)) != 0)
		close(fd);
	else if ((rc = enter_open_dir(w, fd, &w->root_st, &err)) == FDN_EIO)
		return fdn__error_os(err, "fdn_scan: cannot list folder '%s'", root);
	return rc;
}

/* ---------------------------------------------------------------- workers */

/* Keeps the reader's code when on_skip documents it. */
static int skip_code(int rc)
{
	switch (rc) {
	case FDN_EFORMAT:
	case FDN_EIO:
	case FDN_ENOTFOUND:
	case FDN_EUNSUPPORTED:
		return rc;
	case FDN_ERROR:
		return FDN_EFORMAT; /* GDCM threw while parsing: the content's fault */
	default:
		return FDN_EIO;     /* e.g. replaced by a non-regular file */
	}
}

static bool is_dicomdir(const fdn_instance_info *info)
{
	return strcmp(info->sop_class_uid, FDN_DICOMDIR_SOP_CLASS) == 0;
}

/* Reads the file of @p it, which gets a dataset or becomes a skip.
 * Fails only when the scan must end (out of memory). */
static int read_item(const scan_state *s, scan_item *it)
{
	bool not_dicom = false;
	int rc = fdn_dicom__read_path(&it->ds, it->path, s->opts.read_flags, it->size,
		&not_dicom);

	if (rc == 0) {
		it->tally = TALLY_INSTANCE;
		return 0;
	}
	if (fdn_error_last()->klass == FDN_ERRCLASS_NOMEMORY)
		return rc;
	/* The reader names the file first; on_skip gets the path already,
	 * and the walker's reasons do not repeat it either. */
	const char *why = fdn_error_last()->message;
	size_t n = strlen(it->path);
	if (strncmp(why, it->path, n) == 0 && why[n] == ':' && why[n + 1] == ' ')
		why += n + 2;
	if (not_dicom)
		return item_skip(it, FDN_EUNSUPPORTED, TALLY_NOT_DICOM, why);
	return item_skip(it, skip_code(rc), TALLY_ERROR, why);
}

/* Queues a worker's result.  The consumer is woken once the queue is
 * half full rather than for every result (each wake-up is a system call
 * on the worker's path); the worker wakes it anyway before it waits or
 * leaves, so no result is held back. */
static void push_result(scan_state *s, scan_item *done)
{
	queue_push(&s->results, done);
	s->outstanding--;
	if (2 * s->results.count >= s->results.cap)
		pthread_cond_signal(&s->results_not_empty);
}

static scan_item *pop_job(scan_state *s)
{
	scan_item *it = queue_pop(&s->jobs);

	/* A walker that found the queue full sleeps until it is half empty:
	 * one wake-up per half queue, not one per file. */
	if (s->jobs.count == s->jobs.cap / 2)
		pthread_cond_signal(&s->jobs_not_full);
	return it;
}

/*
 * Hands in @p done (the last result of worker @p index, or NULL) and
 * takes the next file, in one critical section; *to_free receives the
 * items of this worker delivered since.  NULL when there is no more work
 * or the scan stopped (@p done is then freed).
 */
static scan_item *swap_job(scan_state *s, unsigned int index, scan_item *done,
	scan_item **to_free)
{
	scan_item *it = NULL;

	pthread_mutex_lock(&s->lock);
	while (done && !is_stopped(s) && queue_full(&s->results))
		pthread_cond_wait(&s->results_not_full, &s->lock);
	if (done && !is_stopped(s)) {
		push_result(s, done);
		done = NULL;
	}
	while (!is_stopped(s) && s->jobs.count == 0 && !s->walk_done) {
		if (s->results.count > 0)
			pthread_cond_signal(&s->results_not_empty);
		pthread_cond_wait(&s->jobs_not_empty, &s->lock);
	}
	if (!is_stopped(s) && s->jobs.count > 0)
		it = pop_job(s);
	else
		pthread_cond_signal(&s->results_not_empty);
	*to_free = s->to_free[index];
	s->to_free[index] = NULL;
	pthread_mutex_unlock(&s->lock);
	item_free(done);
	return it;
}

typedef struct scan_worker {
	scan_state *st;
	unsigned int index;
} scan_worker;

static void *worker_main(void *arg)
{
	scan_worker *w = arg;
	scan_state *s = w->st;
	scan_item *it = NULL, *to_free = NULL;

	pthread_setname_np(pthread_self(), "fdn-scan-work");
	while ((it = swap_job(s, w->index, it, &to_free)) != NULL) {
		items_free(to_free);
		to_free = NULL;
		it->owner = w->index + 1;
		if (should_stop(s)) {
			item_free(it);
			break;
		}
		if (read_item(s, it) != 0) {
			item_free(it);
			scan_fail(s);
			break;
		}
	}
	items_free(to_free);
	return NULL;
}

/* ---------------------------------------------------------------- consumer */

typedef struct scan_totals {
	fdn_scan_stats stats; /* every version-1 member, filled as results come */
	double start;
	double next_progress;
} scan_totals;

static struct timespec abs_monotonic(double t)
{
	struct timespec ts;

	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static bool all_done(const scan_state *s)
{
	return s->walk_done && s->outstanding == 0 && s->results.count == 0;
}

/* Why another thread stopped the scan, as this thread's error. */
static int stopped_error(const scan_state *s)
{
	if (s->fatal_code)
		return fdn__error_set(s->fatal_code, s->fatal_klass, "%s", s->fatal_message);
	return fdn__error_set(FDN_ECANCELLED, FDN_ERRCLASS_CORE, "operation cancelled");
}

/*
 * Hands back @p done, the item delivered last, to the worker that read
 * it, and takes the next result, waiting at most until @p deadline.
 * Returns 0 (with *out NULL on a timeout), 1 when the scan is complete,
 * or the error that stopped it.
 */
static int next_result(scan_state *s, scan_item **out, double deadline, scan_item *done)
{
	struct timespec ts = abs_monotonic(deadline);
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&s->lock);
	if (done && done->owner) {
		done->next = s->to_free[done->owner - 1];
		s->to_free[done->owner - 1] = done;
		done = NULL;
	}
	while (!is_stopped(s) && s->results.count == 0 && !all_done(s))
		if (pthread_cond_timedwait(&s->results_not_empty, &s->lock, &ts) == ETIMEDOUT)
			break;
	if (is_stopped(s)) {
		rc = stopped_error(s);
	} else if (s->results.count > 0) {
		*out = queue_pop(&s->results);
		pthread_cond_signal(&s->results_not_full);
	} else if (all_done(s)) {
		rc = 1;
	}
	pthread_mutex_unlock(&s->lock);
	item_free(done); /* the walker's: no dataset */
	return rc;
}

static int send_progress(scan_state *s, const scan_totals *t, double now, bool last)
{
	const fdn_scan_stats *st = &t->stats;
	fdn_progress p = { FDN_PROGRESS_VERSION, "scan", st->files, 0, st->bytes, 0,
		st->errors, now - t->start };
	int rc;

	pthread_mutex_lock(&s->lock);
	if (s->walk_done) {
		p.items_total = s->files_found;
		p.bytes_total = s->bytes_found;
	}
	pthread_mutex_unlock(&s->lock);
	if (last) {
		p.items_total = st->files;
		p.bytes_total = st->bytes;
	}
	rc = s->opts.on_progress(&p, s->opts.payload);
	return rc ? fdn__error_callback(rc, "progress") : 0;
}

/*
 * Fills the instance info of a dataset a worker read.  This runs on the
 * calling thread, which one worker leaves mostly idle: the info is a
 * tenth of a worker's instructions per file (measured).  A DICOMDIR
 * becomes a skip here.  Fails only for lack of memory.
 */
static int summarize(scan_item *it)
{
	int rc;

	it->info.version = FDN_INSTANCE_INFO_VERSION;
	rc = fdn_dataset_instance_info(&it->info, it->ds);
	if (rc == 0 && !is_dicomdir(&it->info))
		return 0;
	fdn_dataset_free(it->ds);
	it->ds = NULL;
	if (rc == 0)
		return item_skip(it, FDN_EUNSUPPORTED, TALLY_DICOMDIR,
			"a DICOMDIR (media directory), not an instance: "
			"the files it references are scanned on their own");
	if (fdn_error_last()->klass == FDN_ERRCLASS_NOMEMORY)
		return rc;
	return item_skip(it, skip_code(rc), TALLY_ERROR, fdn_error_last()->message);
}

static void tally(fdn_scan_stats *st, const scan_item *it)
{
	if (it->is_file) {
		st->files++;
		st->bytes += it->size;
	}
	switch (it->tally) {
	case TALLY_INSTANCE:
		st->instances++;
		break;
	case TALLY_DICOMDIR:
		st->dicomdirs++;
		st->not_dicom++;
		break;
	case TALLY_NOT_DICOM:
		st->not_dicom++;
		break;
	default:
		st->errors++;
		break;
	}
}

static int deliver(const scan_state *s, scan_item *it)
{
	const fdn_scan_options *o = &s->opts;
	int rc;

	if (it->ds) {
		if (o->on_instance && (rc = o->on_instance(it->path, it->ds, &it->info, o->payload)))
			return fdn__error_callback(rc, "instance");
	} else if (o->on_skip && (rc = o->on_skip(it->path, it->code, it->reason, o->payload))) {
		return fdn__error_callback(rc, "skip");
	}
	return 0;
}

/* Progress when it is due; also the wake-up time of an idle wait. */
static int progress_tick(scan_state *s, scan_totals *t, double *wake)
{
	double now = fdn__monotonic_seconds();
	int rc;

	*wake = now + SCAN_POLL_SECONDS;
	if (!s->opts.on_progress)
		return 0;
	if (now >= t->next_progress) {
		if ((rc = send_progress(s, t, now, false)) != 0)
			return rc;
		t->next_progress = now + s->opts.progress_interval;
	}
	if (t->next_progress < *wake)
		*wake = t->next_progress;
	return 0;
}

/* The calling thread's loop: results to callbacks until the end. */
static int consume(scan_state *s, scan_totals *t)
{
	scan_item *it, *done = NULL;
	double wake;
	int rc;

	for (;;) {
		if ((rc = fdn__cancel_check(s->opts.cancel)) != 0 ||
		    (rc = progress_tick(s, t, &wake)) != 0)
			break;
		rc = next_result(s, &it, wake, done);
		done = NULL;
		if (rc != 0) {
			rc = rc == 1 ? 0 : rc;
			break;
		}
		if (!it)
			continue;
		done = it;
		if (it->ds && (rc = summarize(it)) != 0)
			break;
		tally(&t->stats, it);
		if ((rc = deliver(s, it)) != 0)
			break;
	}
	item_free(done);
	return rc;
}

/* ---------------------------------------------------------------- set-up */

static int load_options(fdn_scan_options *o, const fdn_scan_options *opts)
{
	static const fdn_scan_options defaults = FDN_SCAN_OPTIONS_INIT;

	FDN__CHECK_VERSION(opts, FDN_SCAN_OPTIONS_VERSION, "fdn_scan_options");
	/* Version 1 is every member there is. */
	*o = opts ? *opts : defaults;
	if (o->read_flags & ~(unsigned int)(FDN_READ_HEADER_ONLY | FDN_READ_SUMMARY))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_scan_options: unknown read flags 0x%x", o->read_flags);
	/* Also refuses NaN. */
	if (!(o->progress_interval >= 0 && o->progress_interval <= 1e9))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_scan_options: progress_interval must be between 0 and 1e9 seconds");
	return 0;
}

static unsigned int worker_count(const fdn_scan_options *o)
{
	long n = o->workers ? (long)o->workers : sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	return n > SCAN_MAX_WORKERS ? SCAN_MAX_WORKERS : (unsigned int)n;
}

static int state_init(scan_state *s, const fdn_scan_options *o, unsigned int workers)
{
	pthread_condattr_t ca;
	int rc;

	memset(s, 0, sizeof(*s));
	s->opts = *o;
	atomic_init(&s->stop, false);
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->results_not_empty, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&s->jobs_not_empty, NULL);
	pthread_cond_init(&s->jobs_not_full, NULL);
	pthread_cond_init(&s->results_not_full, NULL);
	/* Paths are cheap: enough jobs that no worker waits for the walker. */
	if ((rc = queue_init(&s->jobs, 16 + 4 * (size_t)workers)) != 0)
		return rc;
	/* Few results in flight: each may hold a dataset. */
	return queue_init(&s->results, 2 * (size_t)workers + 2);
}

static void state_dispose(scan_state *s)
{
	size_t i;

	for (i = 0; i < SCAN_MAX_WORKERS; i++)
		items_free(s->to_free[i]);
	queue_dispose(&s->jobs);
	queue_dispose(&s->results);
	pthread_cond_destroy(&s->jobs_not_empty);
	pthread_cond_destroy(&s->jobs_not_full);
	pthread_cond_destroy(&s->results_not_empty);
	pthread_cond_destroy(&s->results_not_full);
	pthread_mutex_destroy(&s->lock);
}

typedef struct scan_threads {
	pthread_t walker;
	pthread_t workers[SCAN_MAX_WORKERS];
	scan_worker args[SCAN_MAX_WORKERS];
	unsigned int started;     /* workers */
	bool walker_started;
} scan_threads;

/* Starts the threads with every signal blocked: the host's handlers run
 * on the host's threads, never on ours. */
static int threads_start(scan_threads *th, scan_state *s, scan_walker *w, unsigned int n)
{
	sigset_t all, old;
	int err = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (th->started < n && !err) {
		scan_worker *a = &th->args[th->started];
		a->st = s;
		a->index = th->started;
		if ((err = pthread_create(&th->workers[th->started], NULL, worker_main, a)) == 0)
			th->started++;
	}
	if (!err)
		err = pthread_create(&th->walker, NULL, walker_main, w);
	th->walker_started = !err;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err ? fdn__error_os(err, "fdn_scan: cannot start a thread") : 0;
}

static void threads_join(scan_threads *th, scan_state *s)
{
	unsigned int i;

	scan_stop(s);
	if (th->walker_started)
		pthread_join(th->walker, NULL);
	for (i = 0; i < th->started; i++)
		pthread_join(th->workers[i], NULL);
}

static void stats_copy(fdn_scan_stats *out, const fdn_scan_stats *st)
{
	unsigned int version = out->version;

	*out = *st;
	out->version = version;
}

static int run_scan(scan_state *s, scan_walker *w, scan_totals *t, unsigned int workers)
{
	scan_threads th;
	int rc;

	memset(&th, 0, sizeof(th));
	if ((rc = threads_start(&th, s, w, workers)) == 0)
		rc = consume(s, t);
	threads_join(&th, s);
	t->stats.elapsed = fdn__monotonic_seconds() - t->start;
	if (rc == 0 && s->opts.on_progress)
		rc = send_progress(s, t, t->start + t->stats.elapsed, true);
	return rc;
}

int fdn_scan_options_init(fdn_scan_options *opts, unsigned int version)
{
	static const fdn_scan_options defaults = FDN_SCAN_OPTIONS_INIT;
	int rc;

	FDN__CHECK_ARG(opts, "opts");
	if ((rc = fdn__check_init()) != 0)
		return rc;
	if (version == 0 || version > FDN_SCAN_OPTIONS_VERSION)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_scan_options: unsupported version %u", version);
	*opts = defaults;
	opts->version = version;
	return 0;
}

int fdn_scan(fdn_scan_stats *stats_out, const char *root, const fdn_scan_options *opts)
{
	fdn_scan_options o;
	scan_state s;
	scan_walker w;
	scan_totals t;
	unsigned int workers;
	int rc;

	FDN__CHECK_ARG(root, "root");
	FDN__CHECK_VERSION(stats_out, FDN_SCAN_STATS_VERSION, "fdn_scan_stats");
	if ((rc = fdn__check_init()) != 0 || (rc = load_options(&o, opts)) != 0)
		return rc;
	memset(&t, 0, sizeof(t));
	memset(&w, 0, sizeof(w));
	t.start = fdn__monotonic_seconds();
	t.next_progress = t.start + o.progress_interval;
	workers = worker_count(&o);
	if ((rc = state_init(&s, &o, workers)) == 0 &&
	    (rc = walker_init(&w, &s, root)) == 0)
		rc = run_scan(&s, &w, &t, workers);
	else
		t.stats.elapsed = fdn__monotonic_seconds() - t.start;
	walker_dispose(&w);
	state_dispose(&s);
	if (stats_out)
		stats_copy(stats_out, &t.stats);
	return rc;
}
