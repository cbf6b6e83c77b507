/*
 * Process-wide GDCM settings: the version for diagnostics, and the
 * implementation identity GDCM writes into File Meta.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <gdcmFileMetaInformation.h>
#include <gdcmVersion.h>

#include "../core/core_private.h"
#include "fednode/version.h"

/* libfednode's Implementation Class UID (a UUID-derived 2.25 UID, PS3.5
 * B.2): it names this implementation in every file the library writes. */
#define FDN_IMPLEMENTATION_CLASS_UID "2.25.39820188673622600314817101911372878536"

extern "C" const char *fdn_dicom__gdcm_version(void)
{
	return gdcm::Version::GetVersion();
}

extern "C" void fdn_dicom__gdcm_setup(void)
{
	try {
		gdcm::FileMetaInformation::SetImplementationClassUID(FDN_IMPLEMENTATION_CLASS_UID);
		gdcm::FileMetaInformation::SetImplementationVersionName("FEDNODE_" FDN_VERSION_STRING);
		gdcm::FileMetaInformation::SetSourceApplicationEntityTitle("FEDNODE");
	} catch (...) {
		/* Out of memory at start-up: GDCM keeps its own identity. */
	}
}
