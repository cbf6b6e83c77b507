/*
 * fdn_dataset: reading (guard first, then GDCM), copying and writing.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <istream>
#include <ostream>
#include <set>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gdcmFileMetaInformation.h>
#include <gdcmReader.h>
#include <gdcmSequenceOfItems.h>
#include <gdcmTransferSyntax.h>
#include <gdcmWriter.h>

#include "dataset_impl.hpp"
#include "guard.h"
#include "streams.hpp"

namespace {

/* The first read of a file: enough for almost every header, so that a
 * header-only read is one system call. */
const size_t FIRST_READ = 16 * 1024;

const char NOT_DICOM[] = ": not a DICOM file";

bool is_not_dicom_error(const char *name)
{
	const char *msg = fdn_error_last()->message;
	size_t n = strlen(name);
	return strncmp(msg, name, n) == 0 && strncmp(msg + n, NOT_DICOM, sizeof(NOT_DICOM) - 1) == 0;
}

const char *ts_uid_of(const gdcm::TransferSyntax &ts)
{
	const char *uid = gdcm::TransferSyntax::GetTSString(ts);
	return uid ? uid : "";
}

/* The elements a summary read keeps: what fdn_instance_info reports, and
 * the character set its strings need.  GDCM then skips every other value
 * without allocating it, and stops after the last of these. */
const std::set<gdcm::Tag> &summary_tags()
{
	static const std::set<gdcm::Tag> tags = {
		gdcm::Tag(0x0008, 0x0005), gdcm::Tag(0x0008, 0x0016), gdcm::Tag(0x0008, 0x0018),
		gdcm::Tag(0x0008, 0x0020), gdcm::Tag(0x0008, 0x0060), gdcm::Tag(0x0008, 0x0070),
		gdcm::Tag(0x0008, 0x1030), gdcm::Tag(0x0008, 0x103E), gdcm::Tag(0x0010, 0x0010),
		gdcm::Tag(0x0010, 0x0020), gdcm::Tag(0x0010, 0x0040), gdcm::Tag(0x0010, 0x1010),
		gdcm::Tag(0x0018, 0x0015), gdcm::Tag(0x0020, 0x000D), gdcm::Tag(0x0020, 0x000E),
		gdcm::Tag(0x0020, 0x0011), gdcm::Tag(0x0020, 0x0013), gdcm::Tag(0x0028, 0x0008),
		gdcm::Tag(0x0028, 0x0010), gdcm::Tag(0x0028, 0x0011), gdcm::Tag(0x0028, 0x0301),
		gdcm::Tag(0x0028, 0x0302),
	};
	return tags;
}

void prune_to_summary(gdcm::DataSet &d)
{
	std::vector<gdcm::Tag> drop;
	for (auto it = d.Begin(); it != d.End(); ++it)
		if (!summary_tags().count(it->GetTag()))
			drop.push_back(it->GetTag());
	for (const gdcm::Tag &t : drop)
		d.Remove(t);
}

/* Parses @p len guard-checked bytes with GDCM into a new dataset. */
int parse(fdn_dataset **out, const void *data, size_t len, const fdn_guard_result &g,
	unsigned int flags, const char *name, uint64_t total_size)
{
	fdn::MemReadBuf mb(data, len);
	std::istream is(&mb);
	gdcm::Reader reader;
	fdn_dataset *ds = new fdn_dataset;
	bool ok;

	ds->file = new gdcm::File;
	reader.SetFile(*ds->file);
	reader.SetStream(is);
	fdn::gdcm_error_clear();
	/* GDCM's selective reader asserts on a deflated stream (pydicom's
	 * image_dfl.dcm); such input is read whole and pruned below. */
	bool selective = (flags & FDN_READ_SUMMARY) && g.encoding != FDN_GUARD_DEFLATED_LE;
	if (selective)
		ok = reader.ReadSelectedTags(summary_tags());
	else if (flags & FDN_READ_HEADER_ONLY)
		ok = reader.ReadUpToTag(gdcm::Tag(0x7fe0, 0x0010));
	else
		ok = reader.Read();
	if (!ok) {
		std::string why = fdn::gdcm_error_last();
		delete ds;
		return fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
			"%s: GDCM could not parse the dataset%s%s", name,
			why.empty() ? "" : ": ", why.c_str());
	}
	/* Deflated input reaches GDCM whole (the Pixel Data offset is inside
	 * the compressed stream), and GDCM's stop tag is inclusive. */
	if (flags & FDN_READ_HEADER_ONLY)
		ds->file->GetDataSet().Remove(gdcm::Tag(0x7fe0, 0x0010));
	if ((flags & FDN_READ_SUMMARY) && !selective)
		prune_to_summary(ds->file->GetDataSet());
	const gdcm::TransferSyntax &ts = ds->file->GetHeader().GetDataSetTransferSyntax();
	ds->ts_uid = ts.IsValid() ? ts_uid_of(ts) : "";
	if (ds->ts_uid.empty() && g.transfer_syntax[0])
		ds->ts_uid = g.transfer_syntax;
	ds->file_size = total_size;
	ds->header_only = (flags & FDN_READ_HEADER_ONLY) != 0;
	*out = ds;
	return 0;
}

/* True when the top-level Pixel Data is the dataset's first element. */
bool pixels_first(const fdn_guard_result &g)
{
	return g.encoding != FDN_GUARD_DEFLATED_LE && g.pixel_data_offset != SIZE_MAX &&
	       g.pixel_data_offset <= g.dataset_start;
}

/* Each thread keeps its read buffer between files: a scan reads thousands
 * of headers, and allocating a fresh buffer per file cost a sixth of the
 * work (malloc_consolidate).  Memory above RETAIN is given back after
 * each file.  This scratch memory bypasses the host allocator hook, like
 * GDCM's own allocations, because it outlives fdn_shutdown(). */
const size_t RETAIN = 4u << 20;

struct ReadBuffer {
	uint8_t *data = nullptr;
	size_t size = 0;
	~ReadBuffer() { free(data); }

	uint8_t *reserve(size_t n)
	{
		if (n <= size)
			return data;
		uint8_t *p = static_cast<uint8_t *>(realloc(data, n));
		if (!p)
			return nullptr;
		data = p;
		size = n;
		return data;
	}

	void trim()
	{
		if (size > RETAIN) {
			free(data);
			data = nullptr;
			size = 0;
		}
	}
};

thread_local ReadBuffer read_buffer;

/* Reads the part of the file the guard asks for, growing geometrically,
 * into the thread's read buffer. */
int read_checked(int fd, const char *path, uint64_t size, unsigned int flags,
	uint8_t **buf_out, size_t *len_out, fdn_guard_result *g, bool *not_dicom)
{
	unsigned int gflags = (flags & FDN_READ_HEADER_ONLY) ? FDN_GUARD_STOP_AT_PIXELS : 0;
	uint64_t want = (flags & FDN_READ_HEADER_ONLY) && size > FIRST_READ ? FIRST_READ : size;
	uint8_t *buf = nullptr;
	size_t have = 0;
	int rc;

	if (size > SIZE_MAX / 2)
		return fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_DICOM,
			"%s: file too large for this platform", path);
	for (;;) {
		uint8_t *grown = read_buffer.reserve(static_cast<size_t>(want ? want : 1));
		size_t got = 0;
		if (!grown) {
			read_buffer.trim();
			return fdn__error_oom();
		}
		buf = grown;
		rc = fdn__pread_all(fd, buf + have, static_cast<size_t>(want) - have, have, &got, path);
		if (rc == 0 && got < want - have)
			rc = fdn__error_set(FDN_EIO, FDN_ERRCLASS_DICOM,
				"%s: the file shrank while it was being read", path);
		if (rc != 0)
			break;
		have = static_cast<size_t>(want);
		rc = fdn_dicom__guard(g, buf, have, size, gflags, path);
		if (rc == 0 && gflags && pixels_first(*g)) {
			/* Nothing but File Meta before the Pixel Data: GDCM
			 * aborts on a meta-only stream, so it gets the whole
			 * file, checked whole. */
			gflags = 0;
			want = size;
			if (want > have)
				continue;
			rc = fdn_dicom__guard(g, buf, have, size, gflags, path);
		}
		if (rc != FDN_EBUFS)
			break;
		/* Ask for what the guard needs, but at least double. */
		want = g->needed > 2 * want ? g->needed : 2 * want;
		if (want > size)
			want = size;
		if (want <= have) {
			rc = fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
				"%s: structure check asked for bytes it already had", path);
			break;
		}
	}
	if (rc != 0) {
		*not_dicom = rc == FDN_EFORMAT && is_not_dicom_error(path);
		read_buffer.trim();
		return rc;
	}
	*buf_out = buf;
	*len_out = have;
	return 0;
}

/* How many of the checked bytes GDCM needs to see. */
size_t parse_length(const fdn_guard_result &g, size_t have, unsigned int flags)
{
	if ((flags & FDN_READ_HEADER_ONLY) && !pixels_first(g) &&
	    g.encoding != FDN_GUARD_DEFLATED_LE && g.pixel_data_offset < have)
		return g.pixel_data_offset;
	return have;
}

int check_read_args(fdn_dataset **out, unsigned int flags)
{
	FDN__CHECK_ARG(out, "out");
	*out = nullptr;
	if (flags & ~static_cast<unsigned int>(FDN_READ_HEADER_ONLY | FDN_READ_SUMMARY))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_INVALID,
			"unknown read flags 0x%x", flags);
	return fdn__check_init();
}

} // namespace

extern "C" int fdn_dicom__read_path(fdn_dataset **out, const char *path, unsigned int flags,
	uint64_t size_hint, bool *not_dicom)
{
	int rc = check_read_args(out, flags);

	if (flags & FDN_READ_SUMMARY)
		flags |= FDN_READ_HEADER_ONLY;
	bool nd = false;

	(void)size_hint;
	if (not_dicom)
		*not_dicom = false;
	if (rc != 0)
		return rc;
	FDN__CHECK_ARG(path, "path");
	/* O_NONBLOCK: a file swapped for a FIFO after the caller's stat must
	 * not block the open; it makes no difference to regular files. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return fdn__error_os(errno, "cannot open '%s'", path);
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = fdn__error_os(errno, "cannot stat '%s'", path);
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
			"%s: not a regular file", path);
	}
	uint8_t *buf = nullptr;
	size_t have = 0;
	fdn_guard_result g;
	rc = read_checked(fd, path, static_cast<uint64_t>(st.st_size), flags, &buf, &have, &g, &nd);
	close(fd);
	if (not_dicom)
		*not_dicom = nd;
	if (rc != 0)
		return rc;
	rc = fdn::guarded(path, [&] {
		int r = parse(out, buf, parse_length(g, have, flags), g, flags, path,
			static_cast<uint64_t>(st.st_size));
		if (r == 0)
			(*out)->source = path;
		return r;
	});
	read_buffer.trim();
	return rc;
}

extern "C" int fdn_dataset_read_file(fdn_dataset **out, const char *path, unsigned int flags)
{
	return fdn_dicom__read_path(out, path, flags, 0, nullptr);
}

extern "C" int fdn_dataset_read_buffer(fdn_dataset **out, const void *data, size_t size,
	unsigned int flags)
{
	int rc = check_read_args(out, flags);
	fdn_guard_result g;

	if (flags & FDN_READ_SUMMARY)
		flags |= FDN_READ_HEADER_ONLY;
	if (rc != 0)
		return rc;
	FDN__CHECK_ARG(data || size == 0, "data");
	unsigned int gflags = (flags & FDN_READ_HEADER_ONLY) ? FDN_GUARD_STOP_AT_PIXELS : 0;
	rc = fdn_dicom__guard(&g, static_cast<const uint8_t *>(data), size, size, gflags, "buffer");
	if (rc == 0 && gflags && pixels_first(g))
		rc = fdn_dicom__guard(&g, static_cast<const uint8_t *>(data), size, size, 0, "buffer");
	if (rc != 0)
		return rc == FDN_EBUFS ? fdn__error_set(FDN_EFORMAT, FDN_ERRCLASS_DICOM,
			"buffer: truncated") : rc;
	return fdn::guarded("buffer", [&] {
		return parse(out, data, parse_length(g, size, flags), g, flags, "buffer", size);
	});
}

namespace {

bool writable_transfer_syntax(const char *uid)
{
	static const char *const ok[] = { "1.2.840.10008.1.2", "1.2.840.10008.1.2.1",
		"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99" };
	for (const char *u : ok)
		if (strcmp(u, uid) == 0)
			return true;
	return false;
}

} // namespace

extern "C" int fdn_dataset_new(fdn_dataset **out, const char *transfer_syntax_uid)
{
	FDN__CHECK_ARG(out, "out");
	*out = nullptr;
	int rc = fdn__check_init();
	if (rc != 0)
		return rc;
	const char *uid = transfer_syntax_uid ? transfer_syntax_uid : "1.2.840.10008.1.2.1";
	if (!writable_transfer_syntax(uid))
		return fdn__error_set(FDN_EUNSUPPORTED, FDN_ERRCLASS_DICOM,
			"fdn_dataset_new: transfer syntax '%s' is not an uncompressed or deflated one", uid);
	return fdn::guarded("fdn_dataset_new", [&] {
		fdn_dataset *ds = new fdn_dataset;
		ds->file = new gdcm::File;
		ds->file->GetHeader().SetDataSetTransferSyntax(gdcm::TransferSyntax::GetTSType(uid));
		ds->ts_uid = uid;
		*out = ds;
		return 0;
	});
}

namespace fdn {

gdcm::DataSet deep_copy(const gdcm::DataSet &src)
{
	gdcm::DataSet dst;
	for (auto it = src.Begin(); it != src.End(); ++it) {
		const gdcm::SequenceOfItems *sq = fdn::sequence_value(*it);
		if (!sq) {
			dst.GetDES().insert(dst.GetDES().end(), *it);
			continue;
		}
		gdcm::SmartPointer<gdcm::SequenceOfItems> copy = new gdcm::SequenceOfItems;
		/* Lengths stay undefined (recomputed on write): GDCM asserts
		 * when items are added to a sequence of defined length. */
		for (auto item = sq->Begin(); item != sq->End(); ++item) {
			gdcm::Item ni(*item);
			ni.SetNestedDataSet(deep_copy(item->GetNestedDataSet()));
			ni.SetVLToUndefined();
			copy->AddItem(ni);
		}
		gdcm::DataElement de(*it);
		de.SetValue(*copy); /* takes the sequence's length */
		dst.GetDES().insert(dst.GetDES().end(), de);
	}
	return dst;
}

} // namespace fdn

extern "C" int fdn_dataset_clone(fdn_dataset **out, const fdn_dataset *ds)
{
	FDN__CHECK_ARG(out, "out");
	*out = nullptr;
	FDN__CHECK_ARG(ds, "ds");
	return fdn::guarded("fdn_dataset_clone", [&] {
		fdn_dataset *c = new fdn_dataset;
		c->file = new gdcm::File;
		c->file->SetHeader(ds->file->GetHeader());
		c->file->SetDataSet(fdn::deep_copy(ds->file->GetDataSet()));
		c->source = ds->source;
		c->ts_uid = ds->ts_uid;
		c->file_size = ds->file_size;
		c->header_only = ds->header_only;
		*out = c;
		return 0;
	});
}

extern "C" void fdn_dataset_free(fdn_dataset *ds)
{
	delete ds;
}

extern "C" const char *fdn_dataset_transfer_syntax(const fdn_dataset *ds)
{
	return ds ? ds->ts_uid.c_str() : "";
}

extern "C" const char *fdn_dataset_source(const fdn_dataset *ds)
{
	return ds && !ds->source.empty() ? ds->source.c_str() : nullptr;
}

extern "C" int fdn_dataset_is_header_only(const fdn_dataset *ds)
{
	return ds && ds->header_only ? 1 : 0;
}

/* --- writing ------------------------------------------------------------ */

namespace {

int check_writable(const fdn_dataset *ds, const char *what)
{
	if (ds->header_only)
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
			"%s: the dataset was read header-only (without Pixel Data) and cannot be written",
			what);
	const gdcm::DataSet &d = ds->file->GetDataSet();
	if (!d.FindDataElement(gdcm::Tag(0x0008, 0x0016)) || !d.FindDataElement(gdcm::Tag(0x0008, 0x0018)))
		return fdn__error_set(FDN_EINVALID, FDN_ERRCLASS_DICOM,
			"%s: SOPClassUID (0008,0016) and SOPInstanceUID (0008,0018) are required", what);
	return 0;
}

/* Writes @p ds to @p os with a File Meta group rebuilt from the dataset:
 * what another implementation put there (its identity, a stale group
 * length or SOP Instance UID) must not survive into our file. */
int write_to(const fdn_dataset *ds, std::ostream &os, const char *what)
{
	/* On the heap: the writer holds a counted reference to it. */
	gdcm::SmartPointer<gdcm::File> copy = new gdcm::File;
	gdcm::FileMetaInformation meta;
	meta.SetDataSetTransferSyntax(gdcm::TransferSyntax::GetTSType(ds->ts_uid.c_str()));
	copy->SetHeader(meta);
	copy->SetDataSet(ds->file->GetDataSet());

	gdcm::Writer w;
	w.SetFile(*copy);
	w.SetStream(os);
	w.SetCheckFileMetaInformation(true);
	fdn::gdcm_error_clear();
	if (!w.Write()) {
		const std::string &why = fdn::gdcm_error_last();
		return fdn__error_set(FDN_ERROR, FDN_ERRCLASS_DICOM, "%s: GDCM could not write the dataset%s%s",
			what, why.empty() ? "" : ": ", why.c_str());
	}
	return 0;
}

} // namespace

extern "C" int fdn_dataset_write_buffer(fdn_buf *out, const fdn_dataset *ds, unsigned int flags)
{
	FDN__CHECK_ARG(out, "out");
	FDN__CHECK_ARG(ds, "ds");
	FDN__CHECK_ARG(flags == 0, "flags");
	fdn_buf__clear(out);
	int rc = check_writable(ds, "fdn_dataset_write_buffer");
	if (rc != 0)
		return rc;
	rc = fdn::guarded("fdn_dataset_write_buffer", [&] {
		fdn::BufWriteBuf bb(out);
		std::ostream os(&bb);
		int r = write_to(ds, os, "fdn_dataset_write_buffer");
		return r ? r : bb.error();
	});
	if (rc != 0)
		fdn_buf_dispose(out);
	return rc;
}

extern "C" int fdn_dataset_write_file(const fdn_dataset *ds, const char *path, unsigned int flags)
{
	FDN__CHECK_ARG(ds, "ds");
	FDN__CHECK_ARG(path && *path, "path");
	FDN__CHECK_ARG(flags == 0, "flags");
	int rc = check_writable(ds, path);
	if (rc != 0)
		return rc;
	fdn_atomic_file af;
	if ((rc = fdn__atomic_open(&af, path)) != 0)
		return rc;
	rc = fdn::guarded(path, [&] {
		fdn::AtomicWriteBuf ab(&af);
		std::ostream os(&ab);
		int r = write_to(ds, os, path);
		int f = ab.flush_all();
		return r ? r : f;
	});
	if (rc != 0) {
		fdn__atomic_abort(&af);
		return rc;
	}
	return fdn__atomic_commit(&af);
}
