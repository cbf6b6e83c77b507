"""Exceptions for libfednode's error codes, and callback exception relay."""
import threading

# Frozen values of fdn_error_code (include/fednode/common.h).
OK = 0
ERROR = -1
ENOTFOUND = -3
EINVALID = -4
EAUTH = -5
ECERT = -6
EIO = -7
ECANCELLED = -8
EUSER = -9
EBUFS = -10
EFORMAT = -11
EPHI = -12
ECONFLICT = -13
EUNSUPPORTED = -14


class FednodeError(Exception):
    """A libfednode call failed.  ``code`` is the fdn_error_code,
    ``klass`` the fdn_error_class and ``message`` fdn_error_last()'s text."""

    code = ERROR

    def __init__(self, message, code=None, klass=0):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.klass = klass


class NotFoundError(FednodeError, LookupError):
    code = ENOTFOUND


class InvalidError(FednodeError, ValueError):
    code = EINVALID


class AuthError(FednodeError):
    code = EAUTH


class CertError(FednodeError):
    code = ECERT


class FednodeIOError(FednodeError, OSError):
    code = EIO


class CancelledError(FednodeError):
    code = ECANCELLED


class UserError(FednodeError):
    """A host callback returned FDN_EUSER (or another non-zero value)."""
    code = EUSER


class BufferTooSmallError(FednodeError):
    code = EBUFS


class FormatError(FednodeError, ValueError):
    code = EFORMAT


class PHIError(FednodeError):
    """Refused because the data may carry protected health information."""
    code = EPHI


class ConflictError(FednodeError):
    code = ECONFLICT


class UnsupportedError(FednodeError):
    code = EUNSUPPORTED


CODE_TO_EXCEPTION = {cls.code: cls for cls in (
    FednodeError, NotFoundError, InvalidError, AuthError, CertError,
    FednodeIOError, CancelledError, UserError, BufferTooSmallError,
    FormatError, PHIError, ConflictError, UnsupportedError)}


def from_last(code, lib):
    """The exception for status ``code``, carrying fdn_error_last()."""
    err = lib.fdn_error_last().contents
    message = err.message.decode("utf-8", "replace") if err.message else ""
    if err.code != code or not message or message == "no error":
        message = lib.fdn_strerror(code).decode()
        klass = 0
    else:
        klass = err.klass
    cls = CODE_TO_EXCEPTION.get(code, FednodeError)
    return cls(message, code, klass)


# --- exceptions raised inside callbacks ---------------------------------
#
# ctypes prints an exception raised in a callback and then ignores it.
# Every callback wrapper catches it here instead; the binding re-raises it
# when the library call returns (oldest first).  An exception from a
# callback that the library ran on another thread surfaces at the next
# library call on any thread.

_pending = []
_pending_lock = threading.Lock()


def stash(exc):
    with _pending_lock:
        _pending.append(exc)


def raise_pending():
    if not _pending:
        return
    with _pending_lock:
        if not _pending:
            return
        exc = _pending.pop(0)
    raise exc


def guard(fn, on_error):
    """Wraps a Python callback so that no exception escapes into C: it is
    stashed for re-raising and ``on_error`` is returned to the library."""
    def wrapper(*args):
        try:
            return fn(*args)
        except BaseException as exc:  # noqa: B902 - relayed, never dropped
            stash(exc)
            return on_error
    return wrapper
