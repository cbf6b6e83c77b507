/*
 * Logging internals shared by the core and the GDCM trace bridge.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_LOG_PRIVATE_H
#define FDN_LOG_PRIVATE_H

#include "fednode/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Delivers one preformatted line to the host's callback, if enabled. */
void fdn_log__emit(fdn_log_level level, const char *module, const char *message);

#ifdef __cplusplus
}
#endif

#endif
