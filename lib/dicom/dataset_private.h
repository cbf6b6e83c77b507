/*
 * Dataset internals shared inside lib/dicom/ (C side of the GDCM shim).
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_DICOM_DATASET_PRIVATE_H
#define FDN_DICOM_DATASET_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "fednode/dicom.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The Media Storage SOP Class of a DICOMDIR. */
#define FDN_DICOMDIR_SOP_CLASS "1.2.840.10008.1.3.10"

/*
 * fdn_dataset_read_file() that also tells a file that is not DICOM at all
 * (*not_dicom = true, FDN_EFORMAT returned: no "DICM" magic and no
 * plausible first element) from a DICOM file that is malformed
 * (*not_dicom = false).  @p size_hint is the file size when the caller
 * already knows it (from stat), else 0.
 */
int fdn_dicom__read_path(fdn_dataset **out, const char *path, unsigned int flags,
	uint64_t size_hint, bool *not_dicom);

#ifdef __cplusplus
}
#endif

#endif
