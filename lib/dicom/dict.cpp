/*
 * The data dictionary (GDCM's public PS3.6 dictionary) and path syntax.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

#include <gdcmDict.h>
#include <gdcmDicts.h>
#include <gdcmGlobal.h>

#include "dataset_impl.hpp"

namespace {

const gdcm::Dict &public_dict()
{
	return gdcm::Global::GetInstance().GetDicts().GetPublicDict();
}

/* GDCM looks keywords up by a linear search over ~4,000 entries; a hash
 * map built once (thread-safe static initialisation) makes it O(1). */
const std::unordered_map<std::string, uint32_t> &keyword_map()
{
	static const std::unordered_map<std::string, uint32_t> map = [] {
		std::unordered_map<std::string, uint32_t> m;
		const gdcm::Dict &d = public_dict();
		/* Current keywords first: a retired entry never shadows one. */
		for (int retired = 0; retired < 2; retired++)
			for (auto it = d.Begin(); it != d.End(); ++it) {
				const char *kw = it->second.GetKeyword();
				if (kw && *kw && it->second.GetRetired() == (retired == 1))
					m.emplace(kw, it->first.GetElementTag());
			}
		return m;
	}();
	return map;
}

bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit(static_cast<unsigned char>(s[i])))
			return false;
	return true;
}

/* One component's tag: "(gggg,eeee)", "gggg,eeee", "ggggeeee" or a keyword. */
bool parse_tag(const std::string &c, gdcm::Tag &out)
{
	std::string s = c;
	if (s.size() == 11 && s[0] == '(' && s[10] == ')')
		s = s.substr(1, 9);
	if (s.size() == 9 && s[4] == ',' && is_hex(s.c_str(), 4) && is_hex(s.c_str() + 5, 4)) {
		out = gdcm::Tag(static_cast<uint16_t>(strtoul(s.substr(0, 4).c_str(), nullptr, 16)),
			static_cast<uint16_t>(strtoul(s.substr(5, 4).c_str(), nullptr, 16)));
		return true;
	}
	if (s.size() == 8 && is_hex(s.c_str(), 8)) {
		out.SetElementTag(static_cast<uint32_t>(strtoul(s.c_str(), nullptr, 16)));
		return true;
	}
	auto it = keyword_map().find(c);
	if (it == keyword_map().end())
		return false;
	out.SetElementTag(it->second);
	return true;
}

} // namespace

namespace fdn {

static const VrInfo VR_TABLE[] = {
	{"AE", Kind::Ascii, 0, true}, {"AS", Kind::Ascii, 0, true}, {"AT", Kind::Binary, 4, true},
	{"CS", Kind::Ascii, 0, true}, {"DA", Kind::Ascii, 0, true}, {"DS", Kind::Ascii, 0, true},
	{"DT", Kind::Ascii, 0, true}, {"FD", Kind::Binary, 8, true}, {"FL", Kind::Binary, 4, true},
	{"IS", Kind::Ascii, 0, true}, {"LO", Kind::Text, 0, true}, {"LT", Kind::Text, 0, false},
	{"OB", Kind::Bytes, 0, false}, {"OD", Kind::Bytes, 0, false}, {"OF", Kind::Bytes, 0, false},
	{"OL", Kind::Bytes, 0, false}, {"OV", Kind::Bytes, 0, false}, {"OW", Kind::Bytes, 0, false},
	{"PN", Kind::Text, 0, true}, {"SH", Kind::Text, 0, true}, {"SL", Kind::Binary, 4, true},
	{"SQ", Kind::Sequence, 0, false}, {"SS", Kind::Binary, 2, true}, {"ST", Kind::Text, 0, false},
	{"SV", Kind::Binary, 8, true}, {"TM", Kind::Ascii, 0, true}, {"UC", Kind::Text, 0, true},
	{"UI", Kind::Ascii, 0, true}, {"UL", Kind::Binary, 4, true}, {"UN", Kind::Bytes, 0, false},
	{"UR", Kind::Ascii, 0, false}, {"US", Kind::Binary, 2, true}, {"UT", Kind::Text, 0, false},
	{"UV", Kind::Binary, 8, true},
};

const VrInfo *vr_info(const char *name)
{
	for (const VrInfo &v : VR_TABLE)
		if (name && strcmp(v.name, name) == 0)
			return &v;
	return nullptr;
}

const VrInfo *vr_info(gdcm::VR vr)
{
	return vr_info(gdcm::VR::GetVRString(vr));
}

std::string tag_string(const gdcm::Tag &t)
{
	char s[16];
	snprintf(s, sizeof(s), "(%04X,%04X)", t.GetGroup(), t.GetElement());
	return s;
}

int parse_path(std::vector<PathStep> &steps, const char *path)
{
	steps.clear();
	if (!path || !*path)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID, "empty element path");
	std::string p(path);
	size_t start = 0;
	while (start <= p.size()) {
		size_t slash = p.find('/', start);
		std::string comp = p.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
		PathStep step;
		size_t br = comp.find('[');
		if (br != std::string::npos) {
			const char *num = comp.c_str() + br + 1;
			char *end = nullptr;
			long idx = strtol(num, &end, 10);
			if (!isdigit(static_cast<unsigned char>(*num)) || *end != ']' || end[1] != '\0' || idx < 0)
				return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
					"element path '%s': bad item index in '%s'", path, comp.c_str());
			step.item = idx;
			comp.resize(br);
		}
		if (!parse_tag(comp, step.tag))
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
				"element path '%s': '%s' is neither a tag nor a known keyword",
				path, comp.c_str());
		if (slash != std::string::npos && step.item < 0)
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
				"element path '%s': '%s' must select a sequence item, e.g. '%s[0]'",
				path, comp.c_str(), comp.c_str());
		steps.push_back(step);
		if (slash == std::string::npos)
			break;
		start = slash + 1;
	}
	return 0;
}

gdcm::VR dictionary_vr(const gdcm::Tag &tag)
{
	if (tag.IsPrivate() || tag.GetElement() == 0)
		return tag.GetElement() == 0 ? gdcm::VR::UL : gdcm::VR::UN;
	gdcm::VR vr = public_dict().GetDictEntry(tag).GetVR();
	switch (vr) {
	case gdcm::VR::OB_OW:
	case gdcm::VR::US_OW:
	case gdcm::VR::US_SS_OW:
		return gdcm::VR::OW;
	case gdcm::VR::US_SS:
		return gdcm::VR::US;
	case gdcm::VR::INVALID:
		return gdcm::VR::UN;
	default:
		return vr;
	}
}

gdcm::VR effective_vr(const gdcm::DataElement &de)
{
	gdcm::VR vr = de.GetVR();
	switch (vr) {
	case gdcm::VR::INVALID:
		if (de.GetTag().IsPrivateCreator())
			return gdcm::VR::LO;
		return dictionary_vr(de.GetTag());
	case gdcm::VR::OB_OW:
	case gdcm::VR::US_SS:
	case gdcm::VR::US_OW:
	case gdcm::VR::US_SS_OW:
		return dictionary_vr(de.GetTag());
	case gdcm::VR::UN:
		/* Implicit VR files give UN for everything GDCM did not resolve.
		 * A private creator is LO by definition (PS3.5 7.8.1); other
		 * private elements stay UN, their VR is unknowable. */
		if (de.GetTag().IsPrivateCreator())
			return gdcm::VR::LO;
		return de.GetTag().IsPrivate() ? vr : dictionary_vr(de.GetTag());
	default:
		return vr;
	}
}

} // namespace fdn

extern "C" int fdn_tag_from_keyword(uint32_t *out, const char *keyword)
{
	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(keyword, "keyword");
	return fdn::guarded("fdn_tag_from_keyword", [&] {
		auto it = keyword_map().find(keyword);
		if (it == keyword_map().end())
			return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_DICOM,
				"'%s' is not a DICOM keyword", keyword);
		*out = it->second;
		return 0;
	});
}

extern "C" const char *fdn_tag_keyword(uint32_t tag)
{
	try {
		gdcm::Tag t;
		t.SetElementTag(tag);
		if (t.IsPrivate())
			return nullptr;
		const char *kw = public_dict().GetDictEntry(t).GetKeyword();
		return kw && *kw ? kw : nullptr;
	} catch (...) {
		return nullptr;
	}
}

extern "C" const char *fdn_tag_vr(uint32_t tag)
{
	try {
		gdcm::Tag t;
		t.SetElementTag(tag);
		if (t.IsPrivate() || public_dict().GetDictEntry(t).GetVR() == gdcm::VR::INVALID)
			return nullptr;
		return gdcm::VR::GetVRString(fdn::dictionary_vr(t));
	} catch (...) {
		return nullptr;
	}
}
