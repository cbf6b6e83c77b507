/*
 * The C++ side of fdn_dataset: a gdcm::File plus what the C API lends out.
 * Included only by the GDCM shim (the C++ files of lib/dicom).
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_DICOM_DATASET_IMPL_HPP
#define FDN_DICOM_DATASET_IMPL_HPP

#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include <gdcmDataSet.h>
#include <gdcmSequenceOfItems.h>
#include <gdcmFile.h>
#include <gdcmTag.h>
#include <gdcmVR.h>

#include "../core/core_private.h"
#include "dataset_private.h"

struct fdn_dataset {
	/* Held by SmartPointer because gdcm::Reader/Writer take references
	 * counted on the object itself. */
	gdcm::SmartPointer<gdcm::File> file;
	std::string source;        /* path read from, or "" */
	std::string ts_uid;        /* transfer syntax of the dataset */
	uint64_t file_size = 0;
	bool header_only = false;
	uint64_t generation = 0;   /* bumped by every modification */

	/* Strings lent to the caller by fdn_dataset_instance_info(). */
	uint64_t info_generation = UINT64_MAX;
	std::vector<std::string> info_strings;
	/* Scratch for the path of fdn_dataset_get_element(). */
	std::string element_path;
};

namespace fdn {

/* Runs @p body, turning every C++ exception into an fdn error code: no
 * exception crosses the C boundary. */
template <typename F> int guarded(const char *what, F body)
{
	try {
		return body();
	} catch (const std::bad_alloc &) {
		return fdn__error_oom();
	} catch (const std::exception &e) {
		return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_DICOM, "%s: %s", what, e.what());
	} catch (...) {
		return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_DICOM, "%s: unexpected failure", what);
	}
}

/* How the C API treats each value representation. */
enum class Kind { Text, Ascii, Binary, Bytes, Sequence };

struct VrInfo {
	char name[3];
	Kind kind;      /* Text: in the character set; Ascii: default repertoire */
	unsigned size;  /* bytes per value of a binary number */
	bool multi;     /* '\\' separates values */
};

/* The VR named @p name ("PN"), or NULL when it is not one of the 34. */
const VrInfo *vr_info(const char *name);
const VrInfo *vr_info(gdcm::VR vr);

/* One step of a path: a tag and, optionally, an item index. */
struct PathStep {
	gdcm::Tag tag;
	long item = -1;
};

/* Parses a path; FDN_EINVALID with the offending component on error. */
int parse_path(std::vector<PathStep> &steps, const char *path);

/* Formats a tag as "(gggg,eeee)". */
std::string tag_string(const gdcm::Tag &t);

/* The VR to use for an element: its own when known, else the dictionary's
 * (composite VRs resolved to OW/US), else UN. */
gdcm::VR effective_vr(const gdcm::DataElement &de);
gdcm::VR dictionary_vr(const gdcm::Tag &tag);

/* The items of a sequence element GDCM parsed as one, or NULL (GDCM
 * keeps implicit-VR sequences of defined length as bytes). */
inline gdcm::SequenceOfItems *sequence_value(const gdcm::DataElement &de)
{
	if (de.IsEmpty())
		return nullptr; /* GetValue() asserts when there is no value */
	const gdcm::Value *v = &de.GetValue();
	return const_cast<gdcm::SequenceOfItems *>(dynamic_cast<const gdcm::SequenceOfItems *>(v));
}

/* The Specific Character Set in force in @p ds: its own (0008,0005)
 * without padding, else @p inherited from the enclosing dataset. */
std::string scs_of(const gdcm::DataSet &ds, const std::string &inherited);

/* The items of a sequence GDCM kept as bytes, parsed; NULL when the
 * element is not such a sequence. */
gdcm::SmartPointer<gdcm::SequenceOfItems> parse_item_bytes(const gdcm::DataElement &de);

/* A sequence that can be changed in place (created empty when absent and
 * @p create; converted to items when kept as bytes), with its lengths
 * made undefined; NULL when @p tag is not a sequence. */
gdcm::SequenceOfItems *mutable_sequence(gdcm::DataSet &ds, const gdcm::Tag &tag, bool create);

/* The deep copy of a dataset: sequences are copied, leaf values (which
 * are never modified in place) are shared. */
gdcm::DataSet deep_copy(const gdcm::DataSet &ds);

/* The last error GDCM reported on this thread (through the trace
 * bridge), for error messages; cleared before each parse. */
void gdcm_error_clear();
const std::string &gdcm_error_last();

} // namespace fdn

#endif
