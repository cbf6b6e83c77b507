/*
 * fdn_dicom__edit: a single walk over a dataset and all its items that
 * applies a callback's keep/descend/remove/empty/replace decisions.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <cstring>
#include <string>
#include <vector>

#include <gdcmItem.h>
#include <gdcmSequenceOfItems.h>

#include "dataset_impl.hpp"
#include "edit_private.h"

namespace {

using gdcm::DataElement;
using gdcm::DataSet;
using gdcm::Tag;

struct Walk {
	fdn_edit_cb cb;
	void *payload;
	uint32_t path[FDN_EDIT_MAX_DEPTH];
	fdn_buf replacement = FDN_BUF_INIT;
	bool changed = false;

	~Walk() { fdn_buf_dispose(&replacement); }
};

std::string trimmed(const gdcm::ByteValue *bv)
{
	std::string s = bv ? std::string(bv->GetPointer(), bv->GetLength()) : std::string();
	while (!s.empty() && (s.back() == ' ' || s.back() == '\0'))
		s.pop_back();
	return s;
}

/* The Private Creator of a private data element's block, if present. */
bool creator_of(const DataSet &ds, const Tag &t, std::string &out)
{
	if (!t.IsPrivate())
		return false;
	if (t.IsPrivateCreator()) {
		out = trimmed(ds.GetDataElement(t).GetByteValue());
		return true;
	}
	uint16_t block = static_cast<uint16_t>(t.GetElement() >> 8);
	if (block < 0x10)
		return false;
	Tag ct(t.GetGroup(), block);
	if (!ds.FindDataElement(ct))
		return false;
	out = trimmed(ds.GetDataElement(ct).GetByteValue());
	return true;
}

void pad_even(std::string &v, const char *vr)
{
	if (v.size() % 2 == 0)
		return;
	const fdn::VrInfo *vi = fdn::vr_info(vr);
	bool nul = !vi || vi->kind == fdn::Kind::Bytes || vi->kind == fdn::Kind::Binary ||
		   strcmp(vr, "UI") == 0;
	v.push_back(nul ? '\0' : ' ');
}

int walk(Walk &w, DataSet &ds, size_t depth, const std::string &scs_up)
{
	if (depth >= FDN_EDIT_MAX_DEPTH)
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
			"sequences nested deeper than %d levels", FDN_EDIT_MAX_DEPTH);
	std::string scs = fdn::scs_of(ds, scs_up);
	/* Decisions first, changes after: the set is not modified while it
	 * is being iterated. */
	std::vector<Tag> tags;
	tags.reserve(ds.Size());
	for (auto it = ds.Begin(); it != ds.End(); ++it)
		tags.push_back(it->GetTag());
	for (const Tag &tag : tags) {
		if (!ds.FindDataElement(tag))
			continue;
		const DataElement &de = ds.GetDataElement(tag);
		gdcm::VR vr = fdn::effective_vr(de);
		const fdn::VrInfo *vi = fdn::vr_info(vr);
		bool is_sq = vi && vi->kind == fdn::Kind::Sequence;
		const gdcm::ByteValue *bv = de.GetByteValue();
		std::string creator;
		bool has_creator = creator_of(ds, tag, creator);
		const gdcm::SequenceOfItems *sq = is_sq ? fdn::sequence_value(de) : nullptr;

		fdn_edit_element e;
		memset(&e, 0, sizeof(e));
		w.path[depth] = tag.GetElementTag();
		e.tag = tag.GetElementTag();
		snprintf(e.vr, sizeof(e.vr), "%s", vi ? vi->name : "UN");
		e.value = bv ? bv->GetPointer() : nullptr;
		e.length = bv ? static_cast<size_t>(bv->GetLength()) : 0;
		e.path = w.path;
		e.depth = depth;
		e.creator = has_creator ? creator.c_str() : nullptr;
		e.scs = scs.c_str();
		e.items = sq ? sq->GetNumberOfItems() : 0;

		fdn_edit_action action = FDN_EDIT_KEEP;
		fdn_buf__clear(&w.replacement);
		int rc = w.cb(&e, &action, &w.replacement, w.payload);
		if (rc != 0)
			return rc;
		switch (action) {
		case FDN_EDIT_KEEP:
			break;
		case FDN_EDIT_REMOVE:
			ds.Remove(tag);
			w.changed = true;
			break;
		case FDN_EDIT_EMPTY: {
			DataElement empty(tag);
			empty.SetVR(vr);
			if (is_sq) {
				gdcm::SmartPointer<gdcm::SequenceOfItems> none = new gdcm::SequenceOfItems;
				empty.SetValue(*none);
				empty.SetVLToUndefined();
			} else {
				empty.SetByteValue("", 0);
			}
			ds.Replace(empty);
			w.changed = true;
			break;
		}
		case FDN_EDIT_REPLACE: {
			if (is_sq)
				return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
					"%s is a sequence: it cannot take a value",
					fdn::tag_string(tag).c_str());
			std::string v(w.replacement.ptr ? w.replacement.ptr : "", w.replacement.size);
			pad_even(v, e.vr);
			DataElement nv(tag);
			nv.SetVR(vr);
			nv.SetByteValue(v.data(), static_cast<uint32_t>(v.size()));
			ds.Replace(nv);
			w.changed = true;
			break;
		}
		case FDN_EDIT_DESCEND: {
			if (!is_sq)
				break;
			gdcm::SequenceOfItems *items = fdn::mutable_sequence(ds, tag, false);
			if (!items)
				break;
			for (size_t i = 1; i <= items->GetNumberOfItems(); i++) {
				gdcm::Item &item = items->GetItem(i);
				item.SetVLToUndefined();
				rc = walk(w, item.GetNestedDataSet(), depth + 1, scs);
				if (rc != 0)
					return rc;
			}
			w.changed = true;
			break;
		}
		default:
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
				"edit callback gave unknown action %d", static_cast<int>(action));
		}
	}
	return 0;
}

} // namespace

extern "C" int fdn_dicom__edit(fdn_dataset *ds, fdn_edit_cb cb, void *payload)
{
	FDN__CHECK_ARG(ds, "ds");
	FDN__CHECK_ARG(cb, "cb");
	return fdn::guarded("fdn_dicom__edit", [&] {
		Walk w;
		w.cb = cb;
		w.payload = payload;
		int rc = walk(w, ds->file->GetDataSet(), 0, "");
		if (w.changed)
			ds->generation++;
		return rc;
	});
}
