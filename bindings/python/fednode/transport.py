"""Transports: the blob stores envelopes travel through
(include/fednode/transport.h).

A key is a relative path of 1 to 16 segments of ``[A-Za-z0-9._-]``
(neither ``.`` nor ``..``), at most 1024 bytes, e.g.
``"fed-1/rounds/3/update-site-a.fdne"``.  Puts are atomic: a reader sees
the old object or the new one, never a mix.
"""
import ctypes
import os
from collections import namedtuple

from . import _lib, errors
from ._handle import Handle

lib = _lib.lib


def _enc(s):
    return s.encode("utf-8") if isinstance(s, str) else s


def _opt(s):
    return None if s is None else os.fsencode(s)


class ObjectInfo(namedtuple("ObjectInfo", "size mtime etag not_modified")):
    """What is known about a stored object: ``size`` in bytes, ``mtime``
    in seconds since 1970 (0 if unknown), ``etag`` (a str, "" if the store
    gives none) and ``not_modified`` (True when a get found the object
    still had the entity tag given as ``if_none_match``)."""

    @classmethod
    def from_c(cls, info):
        return cls(info.size, info.mtime, info.etag.decode("ascii", "replace"),
                   bool(info.not_modified))


def _new_info():
    return _lib.ObjectInfo(version=_lib.ObjectInfo.VERSION)


def _https_options(ca_file=None, client_cert=None, client_key=None, proxy=None,
                   connect_timeout_ms=0, stall_timeout_ms=0, retries=0, backoff_ms=0):
    opts = _lib.HttpsOptions()
    lib.fdn_https_options_init(ctypes.byref(opts), _lib.HttpsOptions.VERSION)
    opts.ca_file = _opt(ca_file)
    opts.client_cert = _opt(client_cert)
    opts.client_key = _opt(client_key)
    opts.proxy = None if proxy is None else _enc(proxy)
    opts.connect_timeout_ms = connect_timeout_ms
    opts.stall_timeout_ms = stall_timeout_ms
    opts.retries = retries
    opts.backoff_ms = backoff_ms
    return opts


class Transport(Handle):
    """A blob store: a directory (:meth:`dir`), an HTTPS server
    (:meth:`https`), or either from a URL (:meth:`open`).  Use it from one
    thread at a time; a :class:`fednode.CancelToken` given to
    :meth:`set_cancel` may be signalled from any thread."""

    _closed_message = "the Transport is closed"

    def __init__(self, _ptr):
        self._own(_ptr, lib.fdn_transport_free)
        self._cancel = None

    @classmethod
    def dir(cls, path):
        """The directory transport rooted at the existing folder ``path``."""
        ptr = ctypes.c_void_p()
        lib.fdn_transport_dir_new(ctypes.byref(ptr), os.fsencode(path))
        return cls(ptr)

    @classmethod
    def https(cls, url, **options):
        """The HTTPS transport for ``https://host[:port][/path]``.  Options:
        ``ca_file``, ``client_cert``, ``client_key`` (PEM paths), ``proxy``
        (None: from the environment, "": never), ``connect_timeout_ms``,
        ``stall_timeout_ms``, ``retries``, ``backoff_ms`` (0: defaults)."""
        opts = _https_options(**options)
        ptr = ctypes.c_void_p()
        lib.fdn_transport_https_new(ctypes.byref(ptr), _enc(url), ctypes.byref(opts))
        return cls(ptr)

    @classmethod
    def open(cls, url, **options):
        """``file:///abs/folder`` or ``https://...`` (with the options of
        :meth:`https`)."""
        opts = _https_options(**options)
        ptr = ctypes.c_void_p()
        lib.fdn_transport_open_url(ctypes.byref(ptr), _enc(url), ctypes.byref(opts))
        return cls(ptr)

    @staticmethod
    def key_valid(key):
        """True when ``key`` follows the key rules."""
        return bool(lib.fdn_transport_key_valid(_enc(key)))

    def set_cancel(self, token):
        """Uses ``token`` (a CancelToken, or None) for every later call."""
        lib.fdn_transport_set_cancel(self._handle(), token._handle() if token else None)
        self._cancel = token  # it must outlive its use

    def put(self, key, data):
        """Stores ``data`` under ``key``, replacing any object: bytes-like,
        a path (str or os.PathLike) of a file to send, or a binary file
        object (anything with ``read(n)``), streamed.  Returns an
        :class:`ObjectInfo`."""
        info = _new_info()
        if isinstance(data, (bytes, bytearray, memoryview)):
            buf = bytes(data)
            lib.fdn_transport_put_buffer(self._handle(), _enc(key), buf, len(buf),
                                         ctypes.byref(info))
        elif isinstance(data, (str, os.PathLike)):
            lib.fdn_transport_put_file(self._handle(), _enc(key), os.fsencode(data),
                                       ctypes.byref(info))
        elif hasattr(data, "read"):
            def read(buf, capacity, got, payload):
                chunk = data.read(capacity)
                if chunk is None:
                    chunk = b""
                n = min(len(chunk), capacity)
                ctypes.memmove(buf, bytes(chunk[:n]), n)
                got[0] = n
                return 0
            cb = _lib.READ_CB(errors.guard(read, errors.EUSER))
            lib.fdn_transport_put_stream(self._handle(), _enc(key), cb, None,
                                         2 ** 64 - 1, ctypes.byref(info))
        else:
            raise TypeError("put() takes bytes, a path or a binary file object")
        return ObjectInfo.from_c(info)

    def get(self, key, if_none_match=None, max_size=0):
        """Fetches ``key``: returns ``(data, info)``.  With
        ``if_none_match`` (an etag from an earlier call) and an unchanged
        object, ``data`` is None and ``info.not_modified`` is True.
        ``max_size`` (0: 1 GiB) bounds the object (BufferTooSmallError)."""
        buf = _lib.Buf()
        info = _new_info()
        lib.fdn_transport_get_buffer(self._handle(), _enc(key), ctypes.byref(buf), max_size,
                                     _opt(if_none_match), ctypes.byref(info))
        data = _lib.take_buf(buf)
        result = ObjectInfo.from_c(info)
        return (None if result.not_modified else data), result

    def get_file(self, key, path, if_none_match=None):
        """Fetches ``key`` into the file ``path`` (replaced atomically; left
        alone when not modified).  Returns an :class:`ObjectInfo`."""
        info = _new_info()
        lib.fdn_transport_get_file(self._handle(), _enc(key), os.fsencode(path),
                                   _opt(if_none_match), ctypes.byref(info))
        return ObjectInfo.from_c(info)

    def get_stream(self, key, write, if_none_match=None):
        """Fetches ``key``, passing its bytes to ``write`` (a callable taking
        bytes, or an object with ``write``).  Returns an :class:`ObjectInfo`."""
        sink = write.write if hasattr(write, "write") else write

        def on_data(data, length, payload):
            sink(ctypes.string_at(data, length))
            return 0
        cb = _lib.WRITE_CB(errors.guard(on_data, errors.EUSER))
        info = _new_info()
        lib.fdn_transport_get_stream(self._handle(), _enc(key), cb, None,
                                     _opt(if_none_match), ctypes.byref(info))
        return ObjectInfo.from_c(info)

    def head(self, key):
        """An :class:`ObjectInfo` about ``key`` (NotFoundError if none)."""
        info = _new_info()
        lib.fdn_transport_head(self._handle(), _enc(key), ctypes.byref(info))
        return ObjectInfo.from_c(info)

    def exists(self, key):
        """True when there is an object under ``key``."""
        try:
            self.head(key)
        except errors.NotFoundError:
            return False
        return True

    def delete(self, key):
        """Removes ``key`` (NotFoundError if none)."""
        lib.fdn_transport_delete(self._handle(), _enc(key))
