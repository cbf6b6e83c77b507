"""Python binding for libfednode, the local node of a federated-learning
network for medical imaging.

Loads ``libfednode.so.1`` (``FEDNODE_LIBRARY`` overrides the path; a source
checkout's ``build/`` is found by itself), checks the runtime version and
initialises the library.  Library log records go to the Python loggers
``fednode.<module>`` (``fednode.core``, ``fednode.gdcm``, ...): choose the
level with :func:`set_log_level`.
"""
import atexit
import ctypes
import logging
from collections import namedtuple

from . import _lib
from ._handle import Handle
from .errors import (AuthError, BufferTooSmallError, CancelledError,  # noqa: F401
                     CertError, ConflictError, FednodeError, FednodeIOError,
                     FormatError, InvalidError, NotFoundError, PHIError,
                     UnsupportedError, UserError)

__all__ = [
    "version", "version_info", "strerror", "set_log_level", "init", "shutdown",
    "CancelToken", "Progress", "Dataset", "Item", "scan", "tag_from_keyword",
    "keyword_for_tag", "vr_for_tag", "FednodeError", "NotFoundError", "InvalidError", "AuthError",
    "CertError", "FednodeIOError", "CancelledError", "UserError",
    "BufferTooSmallError", "FormatError", "PHIError", "ConflictError",
    "UnsupportedError", "DeidProfile", "DeidReport", "deid_key_generate", "deid_key_load",
    "Model", "Identity", "Trust", "TrustPeer", "Transport", "ObjectInfo", "EnvelopeInfo",
    "seal", "seal_file", "open_envelope", "open_file", "inspect", "Aggregator",
    "Federation", "Client", "Coordinator", "Trainer", "TrainConfig",
]

lib = _lib.lib


def version_info():
    """The runtime library version as (major, minor, patch)."""
    major, minor, patch = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    lib.fdn_version(ctypes.byref(major), ctypes.byref(minor), ctypes.byref(patch))
    return (major.value, minor.value, patch.value)


def version():
    """The runtime library version as a string, e.g. ``"1.0.0"``."""
    return lib.fdn_version_string().decode()


if version_info()[0] != _lib.ABI_MAJOR:
    raise ImportError(f"libfednode {version()} is not ABI {_lib.ABI_MAJOR}.x, "
                      "which this binding was written for")


def strerror(code):
    """The library's description of an error code."""
    return lib.fdn_strerror(code).decode()


# --- logging -------------------------------------------------------------

_LEVEL_TO_PY = {1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG}
logger = logging.getLogger("fednode")


def _on_log(level, module, message, payload):
    name = module.decode("utf-8", "replace") if module else "core"
    logging.getLogger("fednode." + name).log(
        _LEVEL_TO_PY.get(level, logging.INFO), "%s",
        message.decode("utf-8", "replace"))


# One callback object for the life of the process: the library may still
# be running it on another thread after a change of level.
_log_callback = _lib.LOG_CB(_lib.errors.guard(_on_log, None))


def set_log_level(level):
    """Sets the most verbose library level passed to Python logging
    (a ``logging`` level such as ``logging.DEBUG``).  Filtering happens in
    the library, so records below it cost nothing."""
    if level <= logging.DEBUG:
        c_level = 4
    elif level <= logging.INFO:
        c_level = 3
    elif level <= logging.WARNING:
        c_level = 2
    elif level <= logging.ERROR:
        c_level = 1
    else:
        c_level = 0
    lib.fdn_log_set_callback(_log_callback, c_level, None)


# --- initialisation ------------------------------------------------------

def init():
    """Takes one more reference on the library's initialisation.  Importing
    the module already did; only pair this with :func:`shutdown`."""
    lib.fdn_init()


def shutdown():
    """Releases one reference taken by :func:`init`."""
    return lib.fdn_shutdown()


_opts = _lib.InitOptions()
lib.fdn_init_options_init(ctypes.byref(_opts), _lib.InitOptions.VERSION)
_opts.log_cb = ctypes.cast(_log_callback, ctypes.c_void_p)
_opts.log_level = 2
lib.fdn_init_opts(ctypes.byref(_opts))
atexit.register(lib.fdn_shutdown)


# --- progress ------------------------------------------------------------------


class Progress(namedtuple("Progress", "stage items_done items_total bytes_done "
                                      "bytes_total errors elapsed")):
    """Progress of a long operation, as passed to ``on_progress`` callbacks."""

    @classmethod
    def from_c(cls, p):
        return cls(p.stage.decode() if p.stage else "", p.items_done, p.items_total,
                   p.bytes_done, p.bytes_total, p.errors, p.elapsed)


# --- cancellation -----------------------------------------------------------

class CancelToken(Handle):
    """A cancellation token: pass it to long operations, call
    :meth:`request` from any thread (or a signal handler) to stop them."""

    _closed_message = "the CancelToken is closed"

    def __init__(self):
        ptr = ctypes.c_void_p()
        lib.fdn_cancel_new(ctypes.byref(ptr))
        self._own(ptr, lib.fdn_cancel_free)

    def request(self):
        """Signals the token."""
        lib.fdn_cancel_request(self._handle())

    @property
    def requested(self):
        """True once the token was signalled."""
        return bool(lib.fdn_cancel_requested(self._handle()))

    def reset(self):
        """Clears the signal so the token can be reused."""
        lib.fdn_cancel_reset(self._handle())


from .dicom import (Dataset, Item, keyword_for_tag, scan, tag_from_keyword,  # noqa: E402
                    vr_for_tag)
from .deid import DeidProfile, DeidReport, deid_key_generate, deid_key_load  # noqa: E402
from . import registry  # noqa: E402,F401
from .model import Model  # noqa: E402
from .transport import ObjectInfo, Transport  # noqa: E402
from .exchange import (EnvelopeInfo, Identity, Trust, TrustPeer, inspect,  # noqa: E402
                       open_envelope, open_file, seal, seal_file)
from . import fedavg  # noqa: E402,F401
from .fedavg import Aggregator  # noqa: E402
from .federation import Client, Coordinator, Federation, TrainConfig, Trainer  # noqa: E402
