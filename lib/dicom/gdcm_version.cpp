/*
 * The runtime GDCM version, for diagnostics.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <gdcmVersion.h>

#include "../core/core_private.h"

extern "C" const char *fdn_dicom__gdcm_version(void)
{
	return gdcm::Version::GetVersion();
}
