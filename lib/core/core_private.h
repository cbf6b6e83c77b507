/*
 * libfednode: internal helpers every module uses.  Not installed.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_CORE_PRIVATE_H
#define FDN_CORE_PRIVATE_H

#include <stdarg.h>
#include <stdbool.h>

#include "fednode/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
# define FDN__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
# define FDN__PRINTF(f, a)
#endif

/* Bytes a thread's error message can hold, NUL included; longer ones are cut. */
#define FDN__ERROR_MESSAGE_MAX 2048

/* --- memory: through the host's allocator hook ------------------------- */
void *fdn__malloc(size_t size);
void *fdn__calloc(size_t count, size_t size);  /* overflow-checked */
void *fdn__realloc(void *ptr, size_t size);
void *fdn__reallocarray(void *ptr, size_t count, size_t size);
void fdn__free(void *ptr);
char *fdn__strdup(const char *s);
char *fdn__strndup(const char *s, size_t n);
/* true when a*b overflows size_t; else *out = a*b */
bool fdn__mul_overflow(size_t a, size_t b, size_t *out);
bool fdn__add_overflow(size_t a, size_t b, size_t *out);

/* --- errors: set the calling thread's error and return its code -------- */
int fdn__error_set(int code, int klass, const char *fmt, ...) FDN__PRINTF(3, 4);
int fdn__error_setv(int code, int klass, const char *fmt, va_list ap);
/* "out of memory", FDN_ERROR, class NOMEMORY */
int fdn__error_oom(void);
/* FDN_EIO (or the given code) with ": <strerror(errnum)>" appended */
int fdn__error_os(int errnum, const char *fmt, ...) FDN__PRINTF(2, 3);
/* FDN_EINVALID "<fn>: <what> must not be NULL" style checks */
#define FDN__CHECK_ARG(cond, name)                                         \
	do {                                                               \
		if (!(cond))                                               \
			return fdn__error_set(FDN_EINVALID,                \
				FDN_ERRCLASS_INVALID, "%s: invalid argument '%s'", \
				__func__, name);                           \
	} while (0)
/* Checks an options struct's version; a NULL struct is fine. */
#define FDN__CHECK_VERSION(opts, current, what)                            \
	do {                                                               \
		if ((opts) && ((opts)->version == 0 ||                     \
			       (opts)->version > (current)))               \
			return fdn__error_set(FDN_EINVALID,                \
				FDN_ERRCLASS_INVALID,                      \
				"%s: unsupported version %u (this library knows up to %u)", \
				what, (opts)->version, (unsigned)(current)); \
	} while (0)
/* A callback returned non-zero: record it and hand its value back. */
int fdn__error_callback(int rc, const char *what);

/* --- logging ----------------------------------------------------------- */
void fdn__log(fdn_log_level level, const char *module, const char *fmt, ...)
	FDN__PRINTF(3, 4);
bool fdn__log_enabled(fdn_log_level level);

/* --- initialisation ---------------------------------------------------- */
/* 0 when fdn_init() is in force, else FDN_EINVALID with a message. */
int fdn__check_init(void);

/* --- buffers ----------------------------------------------------------- */
/* Makes room for at least @p extra more bytes plus a NUL. */
int fdn_buf__grow(fdn_buf *buf, size_t extra);
int fdn_buf__put(fdn_buf *buf, const void *data, size_t len);
int fdn_buf__puts(fdn_buf *buf, const char *s);
int fdn_buf__printf(fdn_buf *buf, const char *fmt, ...) FDN__PRINTF(2, 3);
void fdn_buf__clear(fdn_buf *buf);

/* --- cancellation ------------------------------------------------------ */
/* 0, or FDN_ECANCELLED with the error set when @p token was signalled. */
int fdn__cancel_check(const fdn_cancel *token);

/* --- files ------------------------------------------------------------ */
/* Writes all of @p data (retrying short writes and EINTR). */
int fdn__write_all(int fd, const void *data, size_t len, const char *what);
/* Where temporary files go: @p dir when given and not empty, else
 * $TMPDIR when set and not empty, else /tmp. */
const char *fdn__temp_dir(const char *dir);
/* A file descriptor as the payload of fdn_read_cb/fdn_write_cb streams:
 * @c what names it in error messages ("the envelope", "'/path'"). */
typedef struct fdn__fd_stream {
	int fd;
	const char *what;
} fdn__fd_stream;
/* fdn_read_cb over an fdn__fd_stream: read() retried on EINTR. */
int fdn__fd_read(void *buf, size_t capacity, size_t *got, void *payload);
/* fdn_write_cb over an fdn__fd_stream: fdn__write_all(). */
int fdn__fd_write(const void *data, size_t len, void *payload);
/* Reads up to @p len bytes at @p offset; *got < len only at end of file. */
int fdn__pread_all(int fd, void *data, size_t len, uint64_t offset,
	size_t *got, const char *what);
/* fsync of the folder holding @p path (makes a rename durable). */
int fdn__fsync_dir(const char *path);

/* Atomic replacement of a file: open, write, then commit or abort. */
typedef struct fdn_atomic_file {
	int fd;
	char tmp_path[4096 + 32];
	char final_path[4096 + 32];
} fdn_atomic_file;
/* Creates the temporary file next to @p path (mode 0666 & ~umask). */
int fdn__atomic_open(fdn_atomic_file *af, const char *path);
/* The same with an explicit mode (0600 for key files). */
int fdn__atomic_open_mode(fdn_atomic_file *af, const char *path, unsigned int mode);
int fdn__atomic_write(fdn_atomic_file *af, const void *data, size_t len);
/* fsync, close, rename over the final name, fsync the folder.  On failure
 * the temporary file is removed and the final name is untouched. */
int fdn__atomic_commit(fdn_atomic_file *af);
/* Closes and removes the temporary file; safe after a failed commit. */
void fdn__atomic_abort(fdn_atomic_file *af);

/* --- clock --------------------------------------------------------------- */
double fdn__monotonic_seconds(void);

/* --- the GDCM shim's part of initialisation (lib/dicom/trace.cpp) -------- */
void fdn_dicom__trace_install(void);
void fdn_dicom__trace_uninstall(void);
const char *fdn_dicom__gdcm_version(void);
void fdn_dicom__gdcm_setup(void);

/* --- the HTTPS transport's part (lib/transport/https.c): libcurl's global
 * state, set up and released under the initialisation lock ------------- */
int fdn_transport__global_init(void);
void fdn_transport__global_cleanup(void);

#ifdef __cplusplus
}
#endif

#endif
