/*
 * Sequence and item helpers shared by reading, modifying and editing.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <string>

#include <gdcmItem.h>
#include <gdcmSequenceOfItems.h>

#include "dataset_impl.hpp"

namespace fdn {

std::string scs_of(const gdcm::DataSet &ds, const std::string &inherited)
{
	const gdcm::Tag scs(0x0008, 0x0005);
	if (!ds.FindDataElement(scs))
		return inherited;
	const gdcm::ByteValue *bv = ds.GetDataElement(scs).GetByteValue();
	std::string s = bv ? std::string(bv->GetPointer(), bv->GetLength()) : std::string();
	while (!s.empty() && (s.back() == ' ' || s.back() == '\0'))
		s.pop_back();
	return s;
}

/* GDCM keeps implicit-VR sequences of defined length as bytes.  They are
 * parsed as items only when the VR allows a sequence and the bytes start
 * with an item tag: the guard has checked the structure of exactly
 * those, so GDCM never parses unchecked bytes as items. */
gdcm::SmartPointer<gdcm::SequenceOfItems> parse_item_bytes(const gdcm::DataElement &de)
{
	const gdcm::ByteValue *bv = de.GetByteValue();
	gdcm::VR vr = effective_vr(de);
	if (!bv || bv->GetLength() < 8 || !(vr == gdcm::VR::SQ || vr == gdcm::VR::UN))
		return nullptr;
	const unsigned char *p = reinterpret_cast<const unsigned char *>(bv->GetPointer());
	if (!(p[0] == 0xFE && p[1] == 0xFF && p[2] == 0x00 && p[3] == 0xE0))
		return nullptr;
	return de.GetValueAsSQ();
}

gdcm::SequenceOfItems *mutable_sequence(gdcm::DataSet &ds, const gdcm::Tag &tag, bool create)
{
	if (!ds.FindDataElement(tag)) {
		if (!create)
			return nullptr;
		gdcm::DataElement de(tag);
		de.SetVR(gdcm::VR::SQ);
		gdcm::SmartPointer<gdcm::SequenceOfItems> sq = new gdcm::SequenceOfItems;
		de.SetValue(*sq);
		de.SetVLToUndefined();
		ds.Replace(de);
	}
	gdcm::DataElement &de = const_cast<gdcm::DataElement &>(ds.GetDataElement(tag));
	gdcm::SequenceOfItems *sq = sequence_value(de);
	if (!sq) {
		gdcm::SmartPointer<gdcm::SequenceOfItems> parsed = parse_item_bytes(de);
		if (!parsed)
			return nullptr;
		gdcm::DataElement copy(tag);
		copy.SetVR(gdcm::VR::SQ);
		copy.SetValue(*parsed);
		ds.Replace(copy);
		return mutable_sequence(ds, tag, false);
	}
	/* The content is about to change: lengths are recomputed on write. */
	sq->SetLengthToUndefined();
	de.SetVLToUndefined();
	return sq;
}

} // namespace fdn
