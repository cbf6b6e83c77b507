"""The base of every binding object that owns a library handle."""
import ctypes
import weakref

from . import errors


class Handle:
    """Owns one C handle: freed by :meth:`close`, by ``with``, or when the
    object is garbage-collected (weakref.finalize, so also at exit)."""

    _closed_message = "the object is closed"

    def _own(self, ptr, free):
        """Takes ownership of @p ptr, released with @p free; with
        ``free=None`` the handle is only lent (never freed here)."""
        self._ptr = ptr if isinstance(ptr, ctypes.c_void_p) else ctypes.c_void_p(ptr)
        self._finalizer = weakref.finalize(self, free, self._ptr) if free else None

    def _handle(self):
        if not self._ptr:
            raise errors.InvalidError(self._closed_message, errors.EINVALID)
        return self._ptr

    def close(self):
        """Frees the handle now; closing twice is harmless."""
        if self._finalizer:
            self._finalizer()
        self._ptr = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
