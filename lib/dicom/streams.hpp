/*
 * std::streambuf adapters that let GDCM read from and write to our own
 * memory and file descriptors without copies.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_DICOM_STREAMS_HPP
#define FDN_DICOM_STREAMS_HPP

#include <streambuf>

#include "../core/core_private.h"

namespace fdn {

/* Reads a caller's memory in place (GDCM seeks, so seeking is supported). */
class MemReadBuf : public std::streambuf {
public:
	MemReadBuf(const void *data, size_t size)
	{
		char *p = static_cast<char *>(const_cast<void *>(data));
		setg(p, p, p + size);
	}

protected:
	pos_type seekoff(off_type off, std::ios_base::seekdir dir,
		std::ios_base::openmode which) override
	{
		if (!(which & std::ios_base::in))
			return pos_type(off_type(-1));
		off_type base = dir == std::ios_base::beg ? 0
			: dir == std::ios_base::cur ? gptr() - eback()
			: egptr() - eback();
		off_type target = base + off;
		if (target < 0 || target > egptr() - eback())
			return pos_type(off_type(-1));
		setg(eback(), eback() + target, egptr());
		return pos_type(target);
	}

	pos_type seekpos(pos_type pos, std::ios_base::openmode which) override
	{
		return seekoff(off_type(pos), std::ios_base::beg, which);
	}
};

/* Appends everything written to an fdn_buf.  A failed allocation makes
 * the stream bad; the error is kept for the caller. */
class BufWriteBuf : public std::streambuf {
public:
	explicit BufWriteBuf(fdn_buf *out) : out_(out) {}
	int error() const { return error_; }

protected:
	int_type overflow(int_type ch) override
	{
		if (traits_type::eq_int_type(ch, traits_type::eof()))
			return traits_type::not_eof(ch);
		char c = traits_type::to_char_type(ch);
		return xsputn(&c, 1) == 1 ? ch : traits_type::eof();
	}

	std::streamsize xsputn(const char *s, std::streamsize n) override
	{
		if (error_ || (error_ = fdn_buf__put(out_, s, static_cast<size_t>(n))) != 0)
			return 0;
		return n;
	}

private:
	fdn_buf *out_;
	int error_ = 0;
};

/* Buffers writes to an atomic file. */
class AtomicWriteBuf : public std::streambuf {
public:
	explicit AtomicWriteBuf(fdn_atomic_file *af) : af_(af)
	{
		setp(buf_, buf_ + sizeof(buf_));
	}
	int error() const { return error_; }

	int flush_all()
	{
		sync();
		return error_;
	}

protected:
	int_type overflow(int_type ch) override
	{
		if (drain() != 0)
			return traits_type::eof();
		if (!traits_type::eq_int_type(ch, traits_type::eof())) {
			*pptr() = traits_type::to_char_type(ch);
			pbump(1);
		}
		return traits_type::not_eof(ch);
	}

	int sync() override { return drain() == 0 ? 0 : -1; }

private:
	int drain()
	{
		size_t n = static_cast<size_t>(pptr() - pbase());
		if (!error_ && n)
			error_ = fdn__atomic_write(af_, pbase(), n);
		setp(buf_, buf_ + sizeof(buf_));
		return error_;
	}

	fdn_atomic_file *af_;
	int error_ = 0;
	char buf_[1 << 16];
};

} // namespace fdn

#endif
