"""Models as named tensors, read and written as safetensors
(include/fednode/model.h)."""
import ctypes
import os

import numpy as np

from . import _lib
from ._handle import Handle

lib = _lib.lib

READ_DEFAULT = 0
READ_COPY = 1

# fdn_dtype values <-> numpy.  BF16 has no numpy type: it is shown as
# uint16 holding the raw bits (pass dtype="BF16" to add() to write it).
_DTYPES = {
    1: ("BOOL", np.bool_), 2: ("U8", np.uint8), 3: ("I8", np.int8),
    4: ("I16", np.int16), 5: ("U16", np.uint16), 6: ("I32", np.int32),
    7: ("U32", np.uint32), 8: ("I64", np.int64), 9: ("U64", np.uint64),
    10: ("F16", np.float16), 11: ("BF16", np.uint16), 12: ("F32", np.float32),
    13: ("F64", np.float64),
}
_BY_NAME = {name: code for code, (name, _) in _DTYPES.items()}
_FROM_NUMPY = {np.dtype(t).newbyteorder("<"): code
               for code, (name, t) in _DTYPES.items() if name != "BF16"}


def _enc(s):
    return s.encode("utf-8") if isinstance(s, str) else s


class Model(Handle):
    """An ordered mapping of tensor names to numpy arrays, with a string
    ``metadata`` dict.  Arrays of a model read from a file are zero-copy,
    read-only views of the mapped file; each keeps the model alive."""

    _closed_message = "the Model is closed"

    def __init__(self, _ptr=None):
        if _ptr is None:
            _ptr = ctypes.c_void_p()
            lib.fdn_model_new(ctypes.byref(_ptr))
        self._own(_ptr, lib.fdn_model_free)

    @classmethod
    def new(cls):
        """An empty model."""
        return cls()

    @classmethod
    def read(cls, source, copy=False):
        """Reads safetensors from a path (mapped unless ``copy``) or from
        bytes (always copied)."""
        ptr = ctypes.c_void_p()
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            lib.fdn_model_read_buffer(ctypes.byref(ptr), data, len(data), 0)
        else:
            lib.fdn_model_read_file(ctypes.byref(ptr), os.fsencode(source),
                                    READ_COPY if copy else READ_DEFAULT)
        return cls(ptr)

    def __len__(self):
        return lib.fdn_model_tensor_count(self._handle())

    def _info(self, index):
        info = _lib.TensorInfo(version=_lib.TensorInfo.VERSION)
        lib.fdn_model_tensor(ctypes.byref(info), self._handle(), index)
        return info

    def keys(self):
        """Tensor names in model order."""
        return [self._info(i).name.decode("utf-8") for i in range(len(self))]

    def __iter__(self):
        return iter(self.keys())

    def __contains__(self, name):
        return name in self.keys()

    def _array(self, info):
        name, np_type = _DTYPES[info.dtype]
        shape = tuple(info.shape[i] for i in range(info.ndim))
        if info.nbytes == 0:
            return np.zeros(shape, dtype=np_type)
        raw = (ctypes.c_char * info.nbytes).from_address(info.data)
        # Keep the model alive as long as the buffer (and so the array).
        raw._fednode_model = self
        arr = np.frombuffer(raw, dtype=np.dtype(np_type).newbyteorder("<"))
        arr = arr.reshape(shape)
        arr.flags.writeable = False
        return arr

    def __getitem__(self, name):
        """The tensor ``name`` as a read-only numpy array (a view of the
        model's memory; copy it to modify it)."""
        index = ctypes.c_size_t()
        lib.fdn_model_find(ctypes.byref(index), self._handle(), _enc(name))
        return self._array(self._info(index.value))

    def dtype_of(self, name):
        """The safetensors dtype name ("F32", "BF16", ...) of a tensor."""
        index = ctypes.c_size_t()
        lib.fdn_model_find(ctypes.byref(index), self._handle(), _enc(name))
        return _DTYPES[self._info(index.value).dtype][0]

    def add(self, name, array, dtype=None):
        """Appends a copy of ``array`` (made C-contiguous little-endian);
        ``dtype`` overrides the type name, e.g. "BF16" for uint16 bits."""
        arr = np.asarray(array)
        if dtype is None:
            le = arr.dtype.newbyteorder("<") if arr.dtype.byteorder != "|" else arr.dtype
            if le not in _FROM_NUMPY:
                raise TypeError(f"no safetensors dtype for numpy {arr.dtype}")
            code = _FROM_NUMPY[le]
        else:
            code = _BY_NAME[dtype]
            if np.dtype(_DTYPES[code][1]).itemsize != arr.dtype.itemsize:
                raise TypeError(f"{dtype} needs {np.dtype(_DTYPES[code][1]).itemsize}-byte items")
        # (np.ascontiguousarray would turn a 0-dim scalar into 1-dim.)
        arr = arr.astype(arr.dtype.newbyteorder("<"), order="C", copy=False)
        shape = (ctypes.c_uint64 * max(arr.ndim, 1))(*arr.shape)
        data = arr.tobytes()
        lib.fdn_model_add_tensor(self._handle(), _enc(name), code, arr.ndim, shape,
                                 data, len(data))

    @property
    def metadata(self):
        """The metadata as a dict (a copy); assign a dict to replace it."""
        out = {}
        key, value = ctypes.c_char_p(), ctypes.c_char_p()
        for i in range(lib.fdn_model_metadata_count(self._handle())):
            lib.fdn_model_metadata_entry(ctypes.byref(key), ctypes.byref(value),
                                         self._handle(), i)
            out[key.value.decode("utf-8")] = value.value.decode("utf-8")
        return out

    @metadata.setter
    def metadata(self, mapping):
        for key in self.metadata:
            if key not in mapping:
                lib.fdn_model_set_metadata(self._handle(), _enc(key), None)
        for key, value in mapping.items():
            lib.fdn_model_set_metadata(self._handle(), _enc(key), _enc(value))

    def set_metadata(self, key, value):
        """Sets (or with None removes) one metadata entry."""
        lib.fdn_model_set_metadata(self._handle(), _enc(key),
                                   None if value is None else _enc(value))

    def write(self, path):
        """Writes the model to ``path`` atomically."""
        lib.fdn_model_write_file(self._handle(), os.fsencode(path))

    def to_bytes(self):
        """The model as safetensors bytes."""
        buf = _lib.Buf()
        lib.fdn_model_write_buffer(ctypes.byref(buf), self._handle())
        return _lib.take_buf(buf)
