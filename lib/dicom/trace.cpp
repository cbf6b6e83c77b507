/*
 * Routes GDCM's diagnostics (gdcm::Trace) into the libfednode log, so
 * that they never reach the host's stderr.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#include <cstring>
#include <ostream>
#include <streambuf>
#include <string>

#include <gdcmTrace.h>

#include "../core/core_private.h"
#include "../core/log_private.h"

namespace {

thread_local std::string last_gdcm_error;

/*
 * GDCM writes one diagnostic as "Warning: In FILE, line N, function F\n
 * MESSAGE\n\n" followed by std::endl.  The buffer has no put area, so
 * every character reaches overflow()/xsputn(); the text is gathered per
 * thread and handed to the log at each flush.  Threads parsing files in
 * parallel therefore never mix their messages.
 */
class LogBuf : public std::streambuf {
public:
	explicit LogBuf(fdn_log_level level) : level_(level) {}

protected:
	int_type overflow(int_type ch) override
	{
		if (!traits_type::eq_int_type(ch, traits_type::eof()))
			pending().push_back(traits_type::to_char_type(ch));
		return traits_type::not_eof(ch);
	}

	std::streamsize xsputn(const char *s, std::streamsize n) override
	{
		pending().append(s, static_cast<size_t>(n));
		return n;
	}

	int sync() override
	{
		std::string &text = pending();
		if (!text.empty()) {
			try {
				emit(text);
			} catch (...) {
				/* A diagnostic lost to low memory is no reason to fail. */
			}
			text.clear();
		}
		return 0;
	}

private:
	std::string &pending()
	{
		static thread_local std::string per_level[FDN_LOG_DEBUG + 1];
		return per_level[level_];
	}

	static std::string trim(const std::string &s)
	{
		size_t b = s.find_first_not_of(" \t\r\n");
		size_t e = s.find_last_not_of(" \t\r\n");
		return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
	}

	/* "Warning: In /path/gdcmReader.cxx, line 123, function ...\nmsg"
	 * becomes "msg (gdcmReader.cxx:123)". */
	void emit(const std::string &raw) const
	{
		std::string text = trim(raw), where, body = text;
		size_t nl = text.find('\n');
		size_t in = text.find(": In ");
		if (nl != std::string::npos && in != std::string::npos && in < nl) {
			std::string head = text.substr(in + 5, nl - in - 5);
			size_t comma = head.find(", line ");
			if (comma != std::string::npos) {
				std::string file = head.substr(0, comma);
				size_t slash = file.rfind('/');
				std::string line = head.substr(comma + 7);
				line = line.substr(0, line.find(','));
				where = (slash == std::string::npos ? file : file.substr(slash + 1)) + ":" + line;
			}
			body = trim(text.substr(nl + 1));
		}
		for (char &c : body)
			if (c == '\n' || c == '\r')
				c = ' ';
		if (!where.empty())
			body += " (" + where + ")";
		if (level_ == FDN_LOG_ERROR)
			last_gdcm_error = body;
		fdn_log__emit(level_, "gdcm", body.c_str());
	}

	fdn_log_level level_;
};

struct Bridge {
	LogBuf error_buf{FDN_LOG_ERROR}, warning_buf{FDN_LOG_WARN}, debug_buf{FDN_LOG_DEBUG};
	std::ostream error{&error_buf}, warning{&warning_buf}, debug{&debug_buf};
	std::ostream *old_error = nullptr, *old_warning = nullptr, *old_debug = nullptr;
};

/* Never destroyed: GDCM may still hold the streams while the process
 * exits, after static destructors have run. */
Bridge *bridge;

} // namespace

namespace fdn {

void gdcm_error_clear()
{
	last_gdcm_error.clear();
}

const std::string &gdcm_error_last()
{
	return last_gdcm_error;
}

} // namespace fdn

extern "C" void fdn_dicom__trace_install(void)
{
	try {
		if (!bridge)
			bridge = new Bridge;
		bridge->old_error = &gdcm::Trace::GetErrorStream();
		bridge->old_warning = &gdcm::Trace::GetWarningStream();
		bridge->old_debug = &gdcm::Trace::GetDebugStream();
		gdcm::Trace::SetErrorStream(bridge->error);
		gdcm::Trace::SetWarningStream(bridge->warning);
		gdcm::Trace::SetDebugStream(bridge->debug);
	} catch (...) {
		/* Without the bridge (out of memory) silence GDCM rather than
		 * let it write to the host's stderr. */
		gdcm::Trace::SetError(false);
		gdcm::Trace::SetWarning(false);
		gdcm::Trace::SetDebug(false);
	}
}

extern "C" void fdn_dicom__trace_uninstall(void)
{
	if (!bridge || !bridge->old_error)
		return;
	gdcm::Trace::SetErrorStream(*bridge->old_error);
	gdcm::Trace::SetWarningStream(*bridge->old_warning);
	gdcm::Trace::SetDebugStream(*bridge->old_debug);
	bridge->old_error = bridge->old_warning = bridge->old_debug = nullptr;
}
