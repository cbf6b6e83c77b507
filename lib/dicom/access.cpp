/*
 * fdn_dataset access by path: values as UTF-8 text, numbers and bytes;
 * setting and removing; iteration; the instance summary.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <gdcmItem.h>
#include <gdcmSequenceOfFragments.h>
#include <gdcmSequenceOfItems.h>

#include "charset.h"
#include "dataset_impl.hpp"

namespace {

using gdcm::DataElement;
using gdcm::DataSet;
using gdcm::Tag;
using fdn::Kind;
using fdn::VrInfo;
using fdn::vr_info;

/* --- resolving paths ------------------------------------------------------ */

/* What a path leads to.  Temporary sequences parsed from bytes are kept
 * alive here while the caller uses what they contain. */
struct Resolved {
	const DataSet *parent = nullptr;       /* dataset holding the element */
	const DataElement *de = nullptr;       /* the element (last step) */
	const gdcm::Item *item = nullptr;      /* with a final "[N]" */
	std::string scs;                       /* character set in force */
	std::vector<gdcm::SmartPointer<gdcm::SequenceOfItems>> hold;
};

/* The items of a sequence element, also when GDCM kept an implicit-VR
 * sequence as bytes (parsed then, and held in @p r while in use). */
const gdcm::SequenceOfItems *sequence_of(const DataElement &de, Resolved &r)
{
	const gdcm::SequenceOfItems *sq = fdn::sequence_value(de);
	if (sq)
		return sq;
	gdcm::SmartPointer<gdcm::SequenceOfItems> parsed = fdn::parse_item_bytes(de);
	if (!parsed)
		return nullptr;
	r.hold.push_back(parsed);
	return parsed;
}

int not_found(const char *path)
{
	return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_DICOM, "no element '%s'", path);
}

int resolve(const fdn_dataset *ds, const char *path, Resolved &r)
{
	std::vector<fdn::PathStep> steps;
	int rc = fdn::parse_path(steps, path);
	if (rc != 0)
		return rc;
	const DataSet *cur = &ds->file->GetDataSet();
	r.scs = fdn::scs_of(*cur, "");
	for (size_t i = 0; i < steps.size(); i++) {
		const fdn::PathStep &s = steps[i];
		if (!cur->FindDataElement(s.tag))
			return not_found(path);
		const DataElement &de = cur->GetDataElement(s.tag);
		bool last = i + 1 == steps.size();
		if (last && s.item < 0) {
			r.parent = cur;
			r.de = &de;
			return 0;
		}
		const gdcm::SequenceOfItems *sq = sequence_of(de, r);
		if (!sq)
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
				"'%s': %s is not a sequence", path, fdn::tag_string(s.tag).c_str());
		if (static_cast<size_t>(s.item) >= sq->GetNumberOfItems())
			return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_DICOM,
				"'%s': %s has %zu items", path, fdn::tag_string(s.tag).c_str(),
				static_cast<size_t>(sq->GetNumberOfItems()));
		const gdcm::Item &item = sq->GetItem(static_cast<size_t>(s.item) + 1);
		if (last) {
			r.parent = cur;
			r.de = &de;
			r.item = &item;
			return 0;
		}
		cur = &item.GetNestedDataSet();
		r.scs = fdn::scs_of(*cur, r.scs);
	}
	return not_found(path);
}

/* --- values as text --------------------------------------------------------- */

void trim_right(std::string &s, const char *chars)
{
	size_t e = s.find_last_not_of(chars);
	s.erase(e == std::string::npos ? 0 : e + 1);
}

/* Strips each value's padding: leading and trailing spaces where PS3.5
 * says they are insignificant. */
std::string trim_values(const std::string &s, bool leading)
{
	std::string out;
	size_t start = 0;
	for (;;) {
		size_t sep = s.find('\\', start);
		std::string v = s.substr(start, sep == std::string::npos ? std::string::npos : sep - start);
		while (!v.empty() && (v.back() == ' ' || v.back() == '\0'))
			v.pop_back();
		if (leading) {
			size_t b = v.find_first_not_of(' ');
			v.erase(0, b == std::string::npos ? v.size() : b);
		}
		out += v;
		if (sep == std::string::npos)
			break;
		out += '\\';
		start = sep + 1;
	}
	return out;
}

template <typename T> T load(const char *p)
{
	T v;
	memcpy(&v, p, sizeof(v));
	return v;
}

void format_binary(std::string &out, const VrInfo &vi, const char *p, size_t n)
{
	char tmp[40];
	size_t count = n / vi.size;
	for (size_t i = 0; i < count; i++, p += vi.size) {
		const std::string v = vi.name;
		if (v == "US")
			snprintf(tmp, sizeof(tmp), "%u", static_cast<unsigned>(load<uint16_t>(p)));
		else if (v == "SS")
			snprintf(tmp, sizeof(tmp), "%d", static_cast<int>(load<int16_t>(p)));
		else if (v == "UL")
			snprintf(tmp, sizeof(tmp), "%" PRIu32, load<uint32_t>(p));
		else if (v == "SL")
			snprintf(tmp, sizeof(tmp), "%" PRId32, load<int32_t>(p));
		else if (v == "UV")
			snprintf(tmp, sizeof(tmp), "%" PRIu64, load<uint64_t>(p));
		else if (v == "SV")
			snprintf(tmp, sizeof(tmp), "%" PRId64, load<int64_t>(p));
		else if (v == "FL")
			snprintf(tmp, sizeof(tmp), "%.9g", static_cast<double>(load<float>(p)));
		else if (v == "FD")
			snprintf(tmp, sizeof(tmp), "%.17g", load<double>(p));
		else /* AT: group then element, each 16-bit */
			snprintf(tmp, sizeof(tmp), "%04X%04X", load<uint16_t>(p), load<uint16_t>(p + 2));
		if (i)
			out += '\\';
		out += tmp;
	}
}

const VrInfo &info_of(const DataElement &de)
{
	const VrInfo *vi = vr_info(fdn::effective_vr(de));
	return vi ? *vi : *vr_info("UN");
}

/* The element's value as UTF-8 text. */
int element_text(std::string &out, const DataElement &de, const std::string &scs, const char *path)
{
	const VrInfo &vi = info_of(de);
	out.clear();
	if (vi.kind == Kind::Sequence || vi.kind == Kind::Bytes)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
			"'%s' has VR %s: read it with fdn_dataset_get_bytes()", path, vi.name);
	const gdcm::ByteValue *bv = de.GetByteValue();
	if (!bv || bv->GetLength() == 0)
		return 0;
	const char *p = bv->GetPointer();
	size_t n = bv->GetLength();
	if (vi.kind == Kind::Binary) {
		format_binary(out, vi, p, n);
		return 0;
	}
	if (vi.kind == Kind::Text) {
		fdn_buf b = FDN_BUF_INIT;
		int rc = fdn_charset__to_utf8(&b, scs.empty() ? nullptr : scs.c_str(), p, n, vi.name);
		if (rc == 0)
			out.assign(b.ptr ? b.ptr : "", b.size);
		fdn_buf_dispose(&b);
		if (rc != 0)
			return rc;
		if (vi.multi)
			out = trim_values(out, false);
		else
			trim_right(out, " ");
		/* Trailing NUL padding is common in the wild. */
		while (!out.empty() && out.back() == '\0')
			out.pop_back();
		return 0;
	}
	out.assign(p, n);
	if (vi.multi)
		out = trim_values(out, true);
	else
		trim_right(out, " ");
	while (!out.empty() && out.back() == '\0')
		out.pop_back();
	return 0;
}

size_t element_vm(const DataElement &de, const VrInfo &vi, Resolved &r, const std::string &scs)
{
	if (vi.kind == Kind::Sequence) {
		const gdcm::SequenceOfItems *sq = sequence_of(de, r);
		return sq ? sq->GetNumberOfItems() : 0;
	}
	const gdcm::ByteValue *bv = de.GetByteValue();
	size_t n = bv ? static_cast<size_t>(bv->GetLength()) : 0;
	if (vi.kind == Kind::Binary)
		return n / vi.size;
	if (vi.kind == Kind::Bytes)
		return n || de.GetSequenceOfFragments() ? 1 : 0;
	if (n == 0)
		return 0;
	if (!vi.multi)
		return 1;
	std::string text;
	if (element_text(text, de, scs, "") != 0) {
		fdn_error_clear();
		text.assign(bv->GetPointer(), n);
	}
	size_t vm = 1;
	for (char c : text)
		vm += c == '\\';
	return vm;
}

/* Value @p index of a numeric element as a double, or as an exact integer. */
int element_number(const DataElement &de, const std::string &scs, const char *path,
	size_t index, double *d, int64_t *i)
{
	const VrInfo &vi = info_of(de);
	std::string v = vi.name;
	const gdcm::ByteValue *bv = de.GetByteValue();
	if (vi.kind == Kind::Binary && v != "AT") {
		size_t n = bv ? static_cast<size_t>(bv->GetLength()) / vi.size : 0;
		if (index >= n)
			return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_DICOM,
				"'%s' has %zu values, no value %zu", path, n, index);
		const char *p = bv->GetPointer() + index * vi.size;
		bool is_float = v == "FL" || v == "FD";
		double dv = v == "US" ? load<uint16_t>(p) : v == "SS" ? load<int16_t>(p)
			: v == "UL" ? load<uint32_t>(p) : v == "SL" ? load<int32_t>(p)
			: v == "UV" ? static_cast<double>(load<uint64_t>(p))
			: v == "SV" ? static_cast<double>(load<int64_t>(p))
			: v == "FL" ? load<float>(p) : load<double>(p);
		if (d)
			*d = dv;
		if (i) {
			if (is_float && (dv != std::floor(dv) || !std::isfinite(dv) ||
					 std::fabs(dv) > 9.2e18))
				return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
					"'%s' value %zu (%g) is not an integer", path, index, dv);
			*i = v == "UV" ? static_cast<int64_t>(load<uint64_t>(p))
				: v == "SV" ? load<int64_t>(p) : static_cast<int64_t>(dv);
		}
		return 0;
	}
	if (v != "IS" && v != "DS")
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
			"'%s' has VR %s, not a number", path, vi.name);
	std::string text;
	int rc = element_text(text, de, scs, path);
	if (rc != 0)
		return rc;
	size_t start = 0, k = 0;
	for (;;) {
		size_t sep = text.find('\\', start);
		if (k == index) {
			std::string one = text.substr(start, sep == std::string::npos ? std::string::npos : sep - start);
			const char *s = one.c_str();
			char *end = nullptr;
			errno = 0;
			if (v == "IS") {
				long long n = strtoll(s, &end, 10);
				if (end == s || *end || errno)
					return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
						"'%s' value %zu is not an integer string: '%s'", path, index, s);
				if (d)
					*d = static_cast<double>(n);
				if (i)
					*i = n;
				return 0;
			}
			double dv = strtod(s, &end);
			if (end == s || *end || errno)
				return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
					"'%s' value %zu is not a decimal string: '%s'", path, index, s);
			if (d)
				*d = dv;
			if (i) {
				if (dv != std::floor(dv) || std::fabs(dv) > 9.2e18)
					return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
						"'%s' value %zu (%s) is not an integer", path, index, s);
				*i = static_cast<int64_t>(dv);
			}
			return 0;
		}
		if (sep == std::string::npos || text.empty())
			return fdn__error_set(FDN_ENOTFOUND, FDN_ERRCLASS_DICOM,
				"'%s' has %zu values, no value %zu", path, text.empty() ? 0 : k + 1, index);
		start = sep + 1;
		k++;
	}
}

} // namespace

/* --- public getters ------------------------------------------------------------ */

extern "C" int fdn_dataset_contains(const fdn_dataset *ds, const char *path)
{
	FDN__CHECK_ARG(ds, "ds");
	return fdn::guarded("fdn_dataset_contains", [&] {
		Resolved r;
		int rc = resolve(ds, path, r);
		if (rc == FDN_ENOTFOUND) {
			fdn_error_clear();
			return 0;
		}
		return rc ? rc : 1;
	});
}

extern "C" int fdn_dataset_get_string(fdn_buf *out, const fdn_dataset *ds, const char *path)
{
	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(ds, "ds");
	fdn_buf__clear(out);
	return fdn::guarded("fdn_dataset_get_string", [&] {
		Resolved r;
		int rc = resolve(ds, path, r);
		if (rc == 0 && r.item)
			rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
				"'%s' is a sequence item, not a value", path);
		std::string text;
		if (rc == 0)
			rc = element_text(text, *r.de, r.scs, path);
		if (rc == 0)
			rc = fdn_buf__put(out, text.data(), text.size());
		return rc;
	});
}

extern "C" int fdn_dataset_get_number(double *out, const fdn_dataset *ds, const char *path,
	size_t index)
{
	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(ds, "ds");
	return fdn::guarded("fdn_dataset_get_number", [&] {
		Resolved r;
		int rc = resolve(ds, path, r);
		if (rc == 0 && r.item)
			rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM, "'%s' is a sequence item", path);
		return rc ? rc : element_number(*r.de, r.scs, path, index, out, nullptr);
	});
}

extern "C" int fdn_dataset_get_int(int64_t *out, const fdn_dataset *ds, const char *path,
	size_t index)
{
	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(ds, "ds");
	return fdn::guarded("fdn_dataset_get_int", [&] {
		Resolved r;
		int rc = resolve(ds, path, r);
		if (rc == 0 && r.item)
			rc = fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM, "'%s' is a sequence item", path);
		return rc ? rc : element_number(*r.de, r.scs, path, index, nullptr, out);
	});
}

extern "C" int fdn_dataset_get_bytes(fdn_buf *out, const fdn_dataset *ds, const char *path)
{
	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(ds, "ds");
	fdn_buf__clear(out);
	return fdn::guarded("fdn_dataset_get_bytes", [&] {
		Resolved r;
		int rc = resolve(ds, path, r);
		if (rc != 0)
			return rc;
		if (r.item || info_of(*r.de).kind == Kind::Sequence)
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
				"'%s' is a sequence: it has no bytes of its own", path);
		if (const gdcm::SequenceOfFragments *sf = r.de->GetSequenceOfFragments()) {
			/* Encapsulated Pixel Data: the fragments, concatenated. */
			for (size_t f = 0; f < sf->GetNumberOfFragments(); f++) {
				const gdcm::ByteValue *bv = sf->GetFragment(f).GetByteValue();
				if (bv && (rc = fdn_buf__put(out, bv->GetPointer(), bv->GetLength())) != 0)
					return rc;
			}
			return 0;
		}
		const gdcm::ByteValue *bv = r.de->GetByteValue();
		return bv ? fdn_buf__put(out, bv->GetPointer(), bv->GetLength()) : fdn_buf__put(out, "", 0);
	});
}

namespace {

void fill_info(fdn_element_info *out, const DataElement &de, const VrInfo &vi, size_t vm,
	size_t depth, const std::string &path)
{
	out->tag = de.GetTag().GetElementTag();
	memcpy(out->vr, vi.name, 3);
	out->vr[3] = '\0';
	out->length = static_cast<uint32_t>(de.GetVL());
	out->vm = vm;
	out->depth = depth;
	out->path = path.c_str();
	out->keyword = fdn_tag_keyword(out->tag);
}

struct Walk {
	fdn_element_cb cb;
	void *payload;
	bool recursive;
	Resolved r;
};

int visit(Walk &w, const DataSet &ds, const std::string &prefix, size_t depth,
	const std::string &scs_in)
{
	std::string scs = fdn::scs_of(ds, scs_in);
	for (auto it = ds.Begin(); it != ds.End(); ++it) {
		const DataElement &de = *it;
		const VrInfo &vi = info_of(de);
		std::string path = prefix + fdn::tag_string(de.GetTag());
		fdn_element_info info;
		info.version = FDN_ELEMENT_INFO_VERSION;
		fill_info(&info, de, vi, element_vm(de, vi, w.r, scs), depth, path);
		int rc = w.cb(&info, w.payload);
		if (rc != 0)
			return fdn__error_callback(rc, "element");
		if (!w.recursive || vi.kind != Kind::Sequence)
			continue;
		const gdcm::SequenceOfItems *sq = sequence_of(de, w.r);
		if (!sq)
			continue;
		for (size_t i = 0; i < sq->GetNumberOfItems(); i++) {
			std::string item_prefix = path + "[" + std::to_string(i) + "]/";
			rc = visit(w, sq->GetItem(i + 1).GetNestedDataSet(), item_prefix, depth + 1, scs);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

} // namespace

extern "C" int fdn_dataset_get_element(fdn_element_info *out, const fdn_dataset *ds,
	const char *path)
{
	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(ds, "ds");
	FDN__CHECK_VERSION(out, FDN_ELEMENT_INFO_VERSION, "fdn_element_info");
	return fdn::guarded("fdn_dataset_get_element", [&] {
		Resolved r;
		int rc = resolve(ds, path, r);
		if (rc != 0)
			return rc;
		if (r.item)
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
				"'%s' is a sequence item, not an element", path);
		const VrInfo &vi = info_of(*r.de);
		fdn_dataset *mds = const_cast<fdn_dataset *>(ds);
		mds->element_path = path;
		size_t depth = 0;
		for (const char *p = path; *p; p++)
			depth += *p == '/';
		fill_info(out, *r.de, vi, element_vm(*r.de, vi, r, r.scs), depth, mds->element_path);
		return 0;
	});
}

extern "C" int fdn_dataset_foreach(const fdn_dataset *ds, const char *path, unsigned int flags,
	fdn_element_cb cb, void *payload)
{
	FDN__CHECK_ARG(ds, "ds");
	FDN__CHECK_ARG(cb, "cb");
	FDN__CHECK_ARG(!(flags & ~static_cast<unsigned>(FDN_FOREACH_RECURSIVE)), "flags");
	return fdn::guarded("fdn_dataset_foreach", [&] {
		Walk w{cb, payload, (flags & FDN_FOREACH_RECURSIVE) != 0, {}};
		if (!path || !*path)
			return visit(w, ds->file->GetDataSet(), "", 0, "");
		Resolved r;
		int rc = resolve(ds, path, r);
		if (rc != 0)
			return rc;
		if (!r.item)
			return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
				"'%s' must name a sequence item, e.g. 'Sequence[0]'", path);
		size_t depth = 1;
		for (const char *p = path; *p; p++)
			depth += *p == '/';
		return visit(w, r.item->GetNestedDataSet(), std::string(path) + "/", depth, r.scs);
	});
}

/* --- the instance summary ----------------------------------------------------- */

namespace {

std::string top_text(const DataSet &ds, uint16_t g, uint16_t e, const std::string &scs)
{
	Tag t(g, e);
	if (!ds.FindDataElement(t))
		return std::string();
	std::string s;
	if (element_text(s, ds.GetDataElement(t), scs, "") != 0) {
		/* A summary never fails on one bad string: it is left empty. */
		fdn_error_clear();
		return std::string();
	}
	return s;
}

int64_t top_int(const DataSet &ds, uint16_t g, uint16_t e, int64_t absent)
{
	Tag t(g, e);
	int64_t v;
	if (!ds.FindDataElement(t) ||
	    element_number(ds.GetDataElement(t), "", "", 0, nullptr, &v) != 0) {
		fdn_error_clear();
		return absent;
	}
	return v;
}

int tristate(const std::string &s)
{
	return s == "YES" ? FDN_YES : s == "NO" ? FDN_NO : FDN_UNKNOWN;
}

uint32_t clamp_u32(int64_t v)
{
	return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(v);
}

} // namespace

extern "C" int fdn_dataset_instance_info(fdn_instance_info *out, const fdn_dataset *ds)
{
	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(ds, "ds");
	FDN__CHECK_VERSION(out, FDN_INSTANCE_INFO_VERSION, "fdn_instance_info");
	return fdn::guarded("fdn_dataset_instance_info", [&] {
		fdn_dataset *m = const_cast<fdn_dataset *>(ds);
		const DataSet &d = ds->file->GetDataSet();
		std::string scs = fdn::scs_of(d, "");
		/* Strings are computed once per version of the dataset, so that
		 * pointers handed out earlier stay valid until it changes. */
		if (m->info_generation != ds->generation) {
			static const uint16_t tags[][2] = {
				{0x0008, 0x0016}, {0x0008, 0x0018}, {0x0020, 0x000D}, {0x0020, 0x000E},
				{0x0008, 0x0060}, {0x0010, 0x0020}, {0x0010, 0x0010}, {0x0010, 0x0040},
				{0x0010, 0x1010}, {0x0008, 0x0020}, {0x0008, 0x1030}, {0x0008, 0x103E},
				{0x0018, 0x0015}, {0x0008, 0x0070}, {0x0028, 0x0301}, {0x0028, 0x0302},
			};
			std::vector<std::string> s;
			for (const auto &t : tags)
				s.push_back(top_text(d, t[0], t[1], scs));
			/* A DICOMDIR names its SOP class only in File Meta. */
			if (s[0].empty())
				s[0] = top_text(ds->file->GetHeader(), 0x0002, 0x0002, "");
			if (s[1].empty())
				s[1] = top_text(ds->file->GetHeader(), 0x0002, 0x0003, "");
			m->info_strings = std::move(s);
			m->info_generation = ds->generation;
		}
		const std::vector<std::string> &s = m->info_strings;
		unsigned int version = out->version;
		memset(out, 0, sizeof(*out));
		out->version = version;
		out->sop_class_uid = s[0].c_str();
		out->sop_instance_uid = s[1].c_str();
		out->study_instance_uid = s[2].c_str();
		out->series_instance_uid = s[3].c_str();
		out->transfer_syntax_uid = ds->ts_uid.c_str();
		out->modality = s[4].c_str();
		out->patient_id = s[5].c_str();
		out->patient_name = s[6].c_str();
		out->patient_sex = s[7].c_str();
		out->patient_age = s[8].c_str();
		out->study_date = s[9].c_str();
		out->study_description = s[10].c_str();
		out->series_description = s[11].c_str();
		out->body_part_examined = s[12].c_str();
		out->manufacturer = s[13].c_str();
		out->series_number = top_int(d, 0x0020, 0x0011, -1);
		out->instance_number = top_int(d, 0x0020, 0x0013, -1);
		out->rows = clamp_u32(top_int(d, 0x0028, 0x0010, 0));
		out->columns = clamp_u32(top_int(d, 0x0028, 0x0011, 0));
		bool image = out->rows && out->columns;
		out->frames = image ? clamp_u32(top_int(d, 0x0028, 0x0008, 1)) : 0;
		out->burned_in_annotation = tristate(s[14]);
		out->recognizable_visual_features = tristate(s[15]);
		out->file_size = ds->file_size;
		return 0;
	});
}
