/*
 * The host's log callback.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core_private.h"
#include "log_private.h"

/* The callback and its payload change together under the lock; the
 * level is also kept atomically so that disabled levels cost one load. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static fdn_log_cb log_cb;
static void *log_payload;
static atomic_int log_level = FDN_LOG_NONE;

int fdn_log_set_callback(fdn_log_cb cb, int max_level, void *payload)
{
	if (max_level < FDN_LOG_NONE || max_level > FDN_LOG_DEBUG)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_log_set_callback: level %d is not an fdn_log_level",
			max_level);
	pthread_mutex_lock(&log_lock);
	log_cb = cb;
	log_payload = payload;
	atomic_store(&log_level, cb ? max_level : FDN_LOG_NONE);
	pthread_mutex_unlock(&log_lock);
	return 0;
}

bool fdn__log_enabled(fdn_log_level level)
{
	return level != FDN_LOG_NONE &&
	       (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

void fdn_log__emit(fdn_log_level level, const char *module, const char *message)
{
	fdn_log_cb cb;
	void *payload;

	if (!fdn__log_enabled(level))
		return;
	pthread_mutex_lock(&log_lock);
	cb = log_cb;
	payload = log_payload;
	pthread_mutex_unlock(&log_lock);
	/* Called outside the lock so that the callback may use the library. */
	if (cb)
		cb(level, module, message, payload);
}

void fdn__log(fdn_log_level level, const char *module, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!fdn__log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fdn_log__emit(level, module, line);
}
