/*
 * fdn_dataset modification: set and remove elements by path, creating
 * sequence items on the way where asked.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <gdcmItem.h>
#include <gdcmSequenceOfItems.h>

#include "charset.h"
#include "dataset_impl.hpp"

namespace {

using gdcm::DataElement;
using gdcm::DataSet;
using gdcm::Tag;
using fdn::Kind;
using fdn::VrInfo;

const Tag TAG_SCS(0x0008, 0x0005);

/* Where a modification lands: the dataset holding the last step. */
struct Target {
	DataSet *parent = nullptr;
	fdn::PathStep last;
	std::string scs;
};

int locate(fdn_dataset *ds, const char *path, bool create, Target &t)
{
	std::vector<fdn::PathStep> steps;
	int rc = fdn::parse_path(steps, path);
	if (rc != 0)
		return rc;
	DataSet *cur = &ds->file->GetDataSet();
	t.scs = fdn::scs_of(*cur, "");
	for (size_t i = 0; i + 1 < steps.size(); i++) {
		const fdn::PathStep &s = steps[i];
		if (!cur->FindDataElement(s.tag) && !(create && s.item == 0))
			return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_DICOM,
				"'%s': no sequence %s", path, fdn::tag_string(s.tag).c_str());
		gdcm::SequenceOfItems *sq = fdn::mutable_sequence(*cur, s.tag, create);
		if (!sq)
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
				"'%s': %s is not a sequence", path, fdn::tag_string(s.tag).c_str());
		size_t n = sq->GetNumberOfItems(), idx = static_cast<size_t>(s.item);
		if (idx > n || (idx == n && !create))
			return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_DICOM,
				"'%s': %s has %zu items", path, fdn::tag_string(s.tag).c_str(), n);
		gdcm::Item &item = idx == n ? sq->AddNewUndefinedLengthItem() : sq->GetItem(idx + 1);
		item.SetVLToUndefined();
		cur = &item.GetNestedDataSet();
		t.scs = fdn::scs_of(*cur, t.scs);
	}
	t.parent = cur;
	t.last = steps.back();
	return 0;
}

int refuse_meta(const Tag &tag, const char *path)
{
	if (tag.GetGroup() == 0x0002)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
			"'%s': File Meta elements are rebuilt when the dataset is written", path);
	if (tag.GetElement() == 0x0000 || tag.GetGroup() < 0x0008 || tag.GetGroup() == 0xFFFE)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
			"'%s': %s cannot be set in a dataset", path, fdn::tag_string(tag).c_str());
	if (tag.IsPrivate() && tag.GetElement() < 0x0010)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
			"'%s': %s is not a private data element", path, fdn::tag_string(tag).c_str());
	return 0;
}

/* Pads to even length as PS3.5 7.1 requires: NUL for UI and binary
 * data, space for text. */
void pad_even(std::string &v, const VrInfo &vi)
{
	if (v.size() % 2 == 0)
		return;
	bool nul = vi.kind == Kind::Bytes || vi.kind == Kind::Binary || strcmp(vi.name, "UI") == 0;
	v.push_back(nul ? '\0' : ' ');
}

std::vector<std::string> split_values(const std::string &s)
{
	std::vector<std::string> out;
	size_t start = 0;
	for (;;) {
		size_t sep = s.find('\\', start);
		out.push_back(s.substr(start, sep == std::string::npos ? std::string::npos : sep - start));
		if (sep == std::string::npos)
			return out;
		start = sep + 1;
	}
}

template <typename T> void store(std::string &out, T v)
{
	char b[sizeof(T)];
	memcpy(b, &v, sizeof(T));
	out.append(b, sizeof(T));
}

int bad_value(const char *path, const VrInfo &vi, const std::string &v)
{
	return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
		"'%s': '%s' is not a valid %s value", path, v.c_str(), vi.name);
}

/* Packs text values into the binary form of a number VR. */
int encode_binary(std::string &out, const VrInfo &vi, const std::string &text, const char *path)
{
	std::string name = vi.name;
	if (text.empty())
		return 0;
	for (const std::string &v : split_values(text)) {
		const char *s = v.c_str();
		char *end = nullptr;
		errno = 0;
		if (name == "FL" || name == "FD") {
			double d = strtod(s, &end);
			if (end == s || *end || errno)
				return bad_value(path, vi, v);
			if (name == "FL")
				store(out, static_cast<float>(d));
			else
				store(out, d);
			continue;
		}
		if (name == "AT") {
			unsigned long t = strtoul(s, &end, 16);
			if (end != s + 8 || *end)
				return bad_value(path, vi, v);
			store(out, static_cast<uint16_t>(t >> 16));
			store(out, static_cast<uint16_t>(t & 0xFFFF));
			continue;
		}
		bool is_unsigned = name[0] == 'U';
		long long sv = 0;
		unsigned long long uv = 0;
		if (is_unsigned) {
			uv = strtoull(s, &end, 10);
			if (strchr(s, '-'))
				return bad_value(path, vi, v);
		} else {
			sv = strtoll(s, &end, 10);
		}
		if (end == s || *end || errno)
			return bad_value(path, vi, v);
		if ((name == "US" && uv > UINT16_MAX) || (name == "UL" && uv > UINT32_MAX) ||
		    (name == "SS" && (sv < INT16_MIN || sv > INT16_MAX)) ||
		    (name == "SL" && (sv < INT32_MIN || sv > INT32_MAX)))
			return bad_value(path, vi, v);
		if (name == "US")
			store(out, static_cast<uint16_t>(uv));
		else if (name == "UL")
			store(out, static_cast<uint32_t>(uv));
		else if (name == "UV")
			store(out, static_cast<uint64_t>(uv));
		else if (name == "SS")
			store(out, static_cast<int16_t>(sv));
		else if (name == "SL")
			store(out, static_cast<int32_t>(sv));
		else
			store(out, static_cast<int64_t>(sv));
	}
	return 0;
}

/* Checks the default-repertoire VRs that have a strict form. */
int check_ascii(const VrInfo &vi, const std::string &text, const char *path)
{
	std::string name = vi.name;
	for (unsigned char c : text)
		if (c < 0x20 || c > 0x7E)
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
				"'%s': VR %s allows only the default character repertoire", path, vi.name);
	for (const std::string &v : split_values(text)) {
		if (name == "UI" && (v.size() > 64 || v.find_first_not_of("0123456789.") != std::string::npos))
			return bad_value(path, vi, v);
		if (name == "IS" && !v.empty()) {
			char *end = nullptr;
			strtoll(v.c_str(), &end, 10);
			if (v.size() > 12 || *end)
				return bad_value(path, vi, v);
		}
		if (name == "DS" && !v.empty()) {
			char *end = nullptr;
			strtod(v.c_str(), &end);
			if (v.size() > 16 || *end)
				return bad_value(path, vi, v);
		}
		if (name == "DA" && !v.empty() &&
		    (v.size() != 8 || v.find_first_not_of("0123456789") != std::string::npos))
			return bad_value(path, vi, v);
	}
	return 0;
}

/* The place a set function writes to: an element (not an item) that a
 * dataset may hold, with the items on the way created as needed. */
int locate_settable(fdn_dataset *ds, const char *path, Target &t)
{
	int rc = locate(ds, path, true, t);
	if (rc != 0)
		return rc;
	if (t.last.item >= 0)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
			"'%s' names a sequence item, not an element", path);
	return refuse_meta(t.last.tag, path);
}

int set_element(fdn_dataset *ds, const Target &t, gdcm::VR vr, const std::string &bytes)
{
	DataElement de(t.last.tag);
	de.SetVR(vr);
	de.SetByteValue(bytes.data(), static_cast<uint32_t>(bytes.size()));
	t.parent->Replace(de);
	ds->generation++;
	return 0;
}

} // namespace

extern "C" int fdn_dataset_set_string(fdn_dataset *ds, const char *path, const char *value)
{
	FDN__CHECK_ARG(ds, "ds");
	FDN__CHECK_ARG(value, "value");
	return fdn::guarded("fdn_dataset_set_string", [&] {
		Target t;
		int rc = locate_settable(ds, path, t);
		if (rc != 0)
			return rc;
		gdcm::VR vr = t.parent->FindDataElement(t.last.tag)
			? fdn::effective_vr(t.parent->GetDataElement(t.last.tag))
			: fdn::dictionary_vr(t.last.tag);
		const VrInfo *vi = fdn::vr_info(vr);
		if (!vi || vi->kind == Kind::Bytes || vi->kind == Kind::Sequence)
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
				"'%s': VR %s is not set from text; use fdn_dataset_set_bytes()",
				path, vi ? vi->name : "unknown");
		std::string text(value), bytes;
		if (vi->kind == Kind::Binary) {
			rc = encode_binary(bytes, *vi, text, path);
		} else if (vi->kind == Kind::Ascii) {
			rc = check_ascii(*vi, text, path);
			bytes = text;
		} else {
			fdn_buf b = FDN_BUF_INIT;
			/* The Specific Character Set itself is plain ASCII. */
			const char *scs = t.last.tag == TAG_SCS || t.scs.empty() ? nullptr : t.scs.c_str();
			rc = fdn_charset__from_utf8(&b, scs, text.data(), text.size(), vi->name);
			if (rc == 0)
				bytes.assign(b.ptr ? b.ptr : "", b.size);
			fdn_buf_dispose(&b);
		}
		if (rc != 0)
			return rc;
		if (bytes.size() > 0xFFFFFFF0u)
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM, "'%s': value too long", path);
		pad_even(bytes, *vi);
		return set_element(ds, t, vr, bytes);
	});
}

extern "C" int fdn_dataset_set_bytes(fdn_dataset *ds, const char *path, const char *vr,
	const void *data, size_t size)
{
	FDN__CHECK_ARG(ds, "ds");
	FDN__CHECK_ARG(vr, "vr");
	FDN__CHECK_ARG(data || size == 0, "data");
	const VrInfo *vi = fdn::vr_info(vr);
	if (!vi || vi->kind == Kind::Sequence)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
			"'%s': '%s' is not a VR that holds bytes", path ? path : "", vr);
	if (size > 0xFFFFFFF0u)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
			"'%s': %zu bytes exceed the 32-bit length of a DICOM element", path ? path : "", size);
	if (vi->kind == Kind::Binary && size % vi->size != 0)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
			"'%s': %zu bytes is not a whole number of %s values", path ? path : "", size, vr);
	return fdn::guarded("fdn_dataset_set_bytes", [&] {
		Target t;
		int rc = locate_settable(ds, path, t);
		if (rc != 0)
			return rc;
		std::string bytes(static_cast<const char *>(data), size);
		pad_even(bytes, *vi);
		return set_element(ds, t, gdcm::VR::GetVRType(vi->name), bytes);
	});
}

extern "C" int fdn_dataset_remove(fdn_dataset *ds, const char *path)
{
	FDN__CHECK_ARG(ds, "ds");
	return fdn::guarded("fdn_dataset_remove", [&] {
		Target t;
		int rc = locate(ds, path, false, t);
		if (rc != 0)
			return rc;
		if (!t.parent->FindDataElement(t.last.tag))
			return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_DICOM, "no element '%s'", path);
		if (t.last.item < 0) {
			t.parent->Remove(t.last.tag);
			ds->generation++;
			return 0;
		}
		gdcm::SequenceOfItems *sq = fdn::mutable_sequence(*t.parent, t.last.tag, false);
		if (!sq)
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
				"'%s': %s is not a sequence", path, fdn::tag_string(t.last.tag).c_str());
		if (static_cast<size_t>(t.last.item) >= sq->GetNumberOfItems())
			return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_DICOM, "no item '%s'", path);
		sq->RemoveItemByIndex(static_cast<size_t>(t.last.item) + 1);
		ds->generation++;
		return 0;
	});
}
