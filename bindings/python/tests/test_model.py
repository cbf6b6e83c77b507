"""fednode.Model: safetensors interop with tiny pure-Python readers and
writers, zero-copy views, metadata and errors."""
import gc
import json
import struct

import numpy as np
import pytest

import fednode

_NP = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I8": "i1", "I16": "<i2",
       "I32": "<i4", "I64": "<i8", "U8": "u1", "U16": "<u2", "U32": "<u4",
       "U64": "<u8", "BOOL": "?"}
_NAME = {np.dtype(v): k for k, v in _NP.items()}


def py_write(tensors, metadata=None):
    """A minimal safetensors writer (no padding, metadata first)."""
    header, blobs, pos = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": _NAME[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [pos, pos + len(data)]}
        blobs.append(data)
        pos += len(data)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def py_read(data):
    """A minimal safetensors reader."""
    (n,) = struct.unpack_from("<Q", data)
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(data[base + b:base + e], dtype=_NP[t["dtype"]]).reshape(tuple(t["shape"]))
    return out, meta, n


def sample():
    rng = np.random.default_rng(7)
    return {
        "w1": rng.standard_normal((3, 4)).astype(np.float32),
        "b1": rng.standard_normal(4).astype(np.float64),
        "h": rng.standard_normal((2, 2, 2)).astype(np.float16),
        "i8": rng.integers(-128, 127, 5, dtype=np.int8),
        "i16": rng.integers(-999, 999, 3, dtype=np.int16),
        "i32": rng.integers(-9, 9, (1, 3), dtype=np.int32),
        "i64": rng.integers(-9, 9, 2, dtype=np.int64),
        "u8": rng.integers(0, 255, 7, dtype=np.uint8),
        "mask": np.array([True, False, True]),
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }


def test_read_python_written(tmp_path):
    tensors = sample()
    data = py_write(tensors, {"format": "pt", "round": "3"})
    path = tmp_path / "py.safetensors"
    path.write_bytes(data)
    for model in (fednode.Model.read(str(path)), fednode.Model.read(data),
                  fednode.Model.read(path, copy=True)):
        with model:
            assert model.metadata == {"format": "pt", "round": "3"}
            assert sorted(model.keys()) == sorted(tensors)
            for name, arr in tensors.items():
                got = model[name]
                assert got.dtype == arr.dtype
                assert got.shape == arr.shape
                np.testing.assert_array_equal(got, arr)


def test_write_read_with_python(tmp_path):
    tensors = sample()
    model = fednode.Model.new()
    for name, arr in tensors.items():
        model.add(name, arr)
    model.metadata = {"format": "pt", "site": "h\u00e9"}
    path = tmp_path / "lib.safetensors"
    model.write(path)
    for data in (path.read_bytes(), model.to_bytes()):
        out, meta, n = py_read(data)
        assert n % 8 == 0
        assert meta == {"format": "pt", "site": "h\u00e9"}
        assert list(out) == list(tensors)  # insertion order
        for name, arr in tensors.items():
            np.testing.assert_array_equal(out[name], arr)
            assert out[name].shape == arr.shape


def test_zero_copy_view_outlives_model_object(tmp_path):
    path = tmp_path / "z.safetensors"
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    path.write_bytes(py_write({"w": arr}))
    model = fednode.Model.read(path)
    view = model["w"]
    assert not view.flags.writeable
    assert not view.flags.owndata
    del model
    gc.collect()
    np.testing.assert_array_equal(view, arr)  # the view kept the mapping


def test_bf16_and_big_endian():
    model = fednode.Model.new()
    bits = np.array([0x3F80, 0x4000], dtype=np.uint16)  # 1.0, 2.0
    model.add("bf", bits, dtype="BF16")
    model.add("be", np.arange(3, dtype=">i4"))
    again = fednode.Model.read(model.to_bytes())
    assert again.dtype_of("bf") == "BF16"
    np.testing.assert_array_equal(again["bf"], bits)
    np.testing.assert_array_equal(again["be"], [0, 1, 2])


def test_errors():
    with pytest.raises(fednode.FormatError, match="tensor 'w1'"):
        h = b'{"w1":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}  '
        fednode.Model.read(struct.pack("<Q", len(h)) + h + b"\0" * 4)
    with pytest.raises(fednode.FormatError, match="duplicate"):
        h = b'{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},' \
            b'"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}'
        fednode.Model.read(struct.pack("<Q", len(h)) + h)
    model = fednode.Model.new()
    model.add("x", np.zeros(2, dtype=np.float32))
    with pytest.raises(fednode.ConflictError):
        model.add("x", np.zeros(2, dtype=np.float32))
    with pytest.raises(fednode.NotFoundError):
        model["nope"]
    with pytest.raises(TypeError):
        model.add("c", np.zeros(2, dtype=np.complex64))
    with pytest.raises(fednode.NotFoundError):
        fednode.Model.read("/nonexistent/x.safetensors")
