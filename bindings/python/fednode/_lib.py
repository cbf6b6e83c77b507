"""Loading libfednode and declaring its C prototypes (internal).

Every exported function gets argtypes and restype here, and an errcheck
that turns a negative status into the matching exception.  The test suite
checks that this table covers exactly the symbols of lib/libfednode.map.
"""
import ctypes
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_double, c_int,
                    c_size_t, c_uint, c_uint64, c_void_p)

from . import errors

SONAME = "libfednode.so.1"
ABI_MAJOR = 1


def _candidates():
    env = os.environ.get("FEDNODE_LIBRARY")
    if env:
        return [env]
    # Straight from a source checkout: <repo>/build/lib next to this package.
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    found = []
    for build in ("build", "builddir"):
        path = os.path.join(repo, build, "lib", SONAME)
        if os.path.exists(path):
            found.append(path)
    return found + [SONAME]


def _load():
    tried = []
    for name in _candidates():
        try:
            return ctypes.CDLL(name)
        except OSError as exc:
            tried.append(f"{name}: {exc}")
    raise ImportError("cannot load libfednode (set FEDNODE_LIBRARY to its path); tried "
                      + "; ".join(tried))


lib = _load()


# --- types ---------------------------------------------------------------

class Error(Structure):
    _fields_ = [("code", c_int), ("klass", c_int), ("message", c_char_p)]


class Buf(Structure):
    _fields_ = [("ptr", c_void_p), ("size", c_size_t), ("reserved", c_size_t)]


class Progress(Structure):
    _fields_ = [("version", c_uint), ("stage", c_char_p),
                ("items_done", c_uint64), ("items_total", c_uint64),
                ("bytes_done", c_uint64), ("bytes_total", c_uint64),
                ("errors", c_uint64), ("elapsed", c_double)]


class InitOptions(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("allocator", c_void_p),
                ("log_cb", c_void_p), ("log_payload", c_void_p),
                ("log_level", c_int)]


LOG_CB = CFUNCTYPE(None, c_int, c_char_p, c_char_p, c_void_p)
PROGRESS_CB = CFUNCTYPE(c_int, POINTER(Progress), c_void_p)


# --- prototypes -------------------------------------------------------------

def _check_status(result, func, args):
    errors.raise_pending()
    if result < 0:
        raise errors.from_last(result, lib)
    return result


def _check_pending(result, func, args):
    errors.raise_pending()
    return result


STATUS = "status"  # int: 0 or a negative fdn_error_code

# name: (restype, argtypes)
PROTOTYPES = {
    # common.h
    "fdn_error_last": (POINTER(Error), []),
    "fdn_error_clear": (None, []),
    "fdn_strerror": (c_char_p, [c_int]),
    "fdn_buf_dispose": (None, [POINTER(Buf)]),
    "fdn_log_set_callback": (STATUS, [LOG_CB, c_int, c_void_p]),
    "fdn_init_options_init": (STATUS, [POINTER(InitOptions), c_uint]),
    "fdn_init": (STATUS, []),
    "fdn_init_opts": (STATUS, [POINTER(InitOptions)]),
    "fdn_init_checked": (STATUS, [c_int, c_int]),
    "fdn_shutdown": (STATUS, []),
    "fdn_version": (None, [POINTER(c_int), POINTER(c_int), POINTER(c_int)]),
    "fdn_version_string": (c_char_p, []),
    "fdn_cancel_new": (STATUS, [POINTER(c_void_p)]),
    "fdn_cancel_free": (None, [c_void_p]),
    "fdn_cancel_request": (None, [c_void_p]),
    "fdn_cancel_requested": (c_int, [c_void_p]),
    "fdn_cancel_reset": (None, [c_void_p]),
}


def _declare():
    for name, (restype, argtypes) in PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.argtypes = argtypes
        if restype == STATUS:
            fn.restype = c_int
            fn.errcheck = _check_status
        else:
            fn.restype = restype
            # The error functions themselves must not re-raise.
            if not name.startswith("fdn_error") and name != "fdn_strerror":
                fn.errcheck = _check_pending


_declare()


def take_buf(buf):
    """Copies an fdn_buf's bytes out and releases it."""
    try:
        return ctypes.string_at(buf.ptr, buf.size) if buf.ptr else b""
    finally:
        lib.fdn_buf_dispose(ctypes.byref(buf))
