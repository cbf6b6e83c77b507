/*
 * fdn_init / fdn_shutdown: reference-counted global set-up.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>

#include "core_private.h"
#include "alloc_private.h"
#include "fednode/version.h"

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int init_count;

int fdn_init_options_init(fdn_init_options *opts, unsigned int version)
{
	static const fdn_init_options defaults = FDN_INIT_OPTIONS_INIT;

	FDN__CHECK_ARG(opts, "opts");
	if (version == 0 || version > FDN_INIT_OPTIONS_VERSION)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_init_options: unsupported version %u", version);
	*opts = defaults;
	opts->version = version;
	return 0;
}

static int first_init(const fdn_init_options *opts)
{
	int rc;

	if ((rc = fdn_alloc__install(opts ? opts->allocator : NULL)) != 0)
		return rc;
	if (sodium_init() < 0) {
		fdn_alloc__install(NULL);
		return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_CORE,
			"libsodium could not be initialised");
	}
	/* libcurl before anything can run a transfer.  curl_global_init() is
	 * not thread-safe in older libcurl releases, so it runs here, under
	 * init_lock, once per first initialisation (libcurl counts calls, so
	 * a host that also initialises it is unaffected). */
	if (fdn_transport__global_init() != 0) {
		fdn_alloc__install(NULL);
		return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_CORE,
			"libcurl could not be initialised");
	}
	fdn_dicom__trace_install();
	fdn_dicom__gdcm_setup();
	return 0;
}

int fdn_init_opts(const fdn_init_options *opts)
{
	int rc = 0, level, count = 0;
	bool first;

	FDN__CHECK_VERSION(opts, FDN_INIT_OPTIONS_VERSION, "fdn_init_options");
	level = opts && opts->log_level ? opts->log_level : FDN_LOG_WARN;
	if (level < FDN_LOG_NONE || level > FDN_LOG_DEBUG)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_init_options: log_level %d is not an fdn_log_level", level);

	pthread_mutex_lock(&init_lock);
	first = atomic_load(&init_count) == 0;
	if (first)
		rc = first_init(opts);
	else if (!fdn_alloc__same(opts ? opts->allocator : NULL) &&
		 opts && opts->allocator)
		rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"fdn_init_opts: the allocator can only be set by the first initialisation");
	if (rc == 0) {
		/* A plain fdn_init() after the first keeps the host's callback. */
		if (opts && opts->log_cb)
			fdn_log_set_callback(opts->log_cb, level, opts->log_payload);
		count = atomic_fetch_add(&init_count, 1) + 1;
	}
	pthread_mutex_unlock(&init_lock);
	if (rc == 0 && first)
		fdn__log(FDN_LOG_INFO, "core",
			"libfednode %s initialised (libsodium %s, GDCM %s)",
			FDN_VERSION_STRING, sodium_version_string(),
			fdn_dicom__gdcm_version());
	else if (rc == 0)
		fdn__log(FDN_LOG_DEBUG, "core", "initialised again: %d references", count);
	return rc;
}

int fdn_init(void)
{
	return fdn_init_opts(NULL);
}

int fdn_init_checked(int major, int minor)
{
	if (major != FDN_VERSION_MAJOR || minor > FDN_VERSION_MINOR)
		return fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_CORE,
			"compiled against libfednode %d.%d, but the runtime library is %s",
			major, minor, FDN_VERSION_STRING);
	return fdn_init();
}

int fdn_shutdown(void)
{
	int left;

	pthread_mutex_lock(&init_lock);
	left = atomic_load(&init_count);
	if (left == 0) {
		pthread_mutex_unlock(&init_lock);
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_CORE,
			"fdn_shutdown: the library is not initialised");
	}
	atomic_store(&init_count, --left);
	if (left == 0) {
		fdn_dicom__trace_uninstall();
		fdn_transport__global_cleanup();
		fdn_log_set_callback(NULL, FDN_LOG_NONE, NULL);
		fdn_alloc__install(NULL);
	}
	pthread_mutex_unlock(&init_lock);
	return left;
}

int fdn__check_init(void)
{
	if (atomic_load(&init_count) > 0)
		return 0;
	return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_CORE,
		"libfednode is not initialised: call fdn_init() first");
}
