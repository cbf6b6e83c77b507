"""fednode.Transport: the directory transport through the binding (the
HTTPS one is exercised by the 'net' suite, tests/net/)."""
import io
import os

import pytest

import fednode


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    with fednode.Transport.dir(root) as t:
        yield t, root


def test_key_rules():
    assert fednode.Transport.key_valid("fed-1/rounds/3/update-site-a.fdne")
    for bad in ("", "/abs", "a/../b", "a//b", "sp ace", "a/", "x" * 129, "é"):
        assert not fednode.Transport.key_valid(bad), bad


def test_buffer_round_trip(store):
    t, root = store
    info = t.put("fed/rounds/1/global.fdne", b"hello")
    assert info.size == 5 and info.etag.startswith('"') and info.mtime > 0
    assert (root / "fed" / "rounds" / "1" / "global.fdne").read_bytes() == b"hello"
    data, got = t.get("fed/rounds/1/global.fdne")
    assert data == b"hello" and got.etag == info.etag and not got.not_modified
    data, got = t.get("fed/rounds/1/global.fdne", if_none_match=info.etag)
    assert data is None and got.not_modified
    assert t.head("fed/rounds/1/global.fdne").size == 5
    assert t.exists("fed/rounds/1/global.fdne")
    t.put("fed/rounds/1/global.fdne", bytearray(b"changed"))
    data, got = t.get("fed/rounds/1/global.fdne", if_none_match=info.etag)
    assert data == b"changed" and got.etag != info.etag
    t.delete("fed/rounds/1/global.fdne")
    assert not t.exists("fed/rounds/1/global.fdne")
    with pytest.raises(fednode.NotFoundError):
        t.get("fed/rounds/1/global.fdne")
    with pytest.raises(fednode.NotFoundError):
        t.delete("fed/rounds/1/global.fdne")
    with pytest.raises(fednode.InvalidError, match="invalid key"):
        t.put("../escape", b"x")
    t.put("big", b"x" * 100)
    with pytest.raises(fednode.BufferTooSmallError):
        t.get("big", max_size=99)


def test_files_and_streams(store, tmp_path):
    t, root = store
    payload = os.urandom(3 * 1024 * 1024 + 5)
    src = tmp_path / "src.bin"
    src.write_bytes(payload)
    assert t.put("f/obj", src).size == len(payload)
    assert t.put("f/obj2", str(src)).size == len(payload)
    dst = tmp_path / "dst.bin"
    info = t.get_file("f/obj", dst)
    assert dst.read_bytes() == payload
    assert t.get_file("f/obj", dst, if_none_match=info.etag).not_modified

    assert t.put("s/obj", io.BytesIO(payload)).size == len(payload)
    out = io.BytesIO()
    t.get_stream("s/obj", out)
    assert out.getvalue() == payload
    pieces = []
    t.get_stream("s/obj", pieces.append)
    assert b"".join(pieces) == payload and len(pieces) > 1


def test_callback_exceptions_propagate(store):
    t, root = store
    t.put("k", b"old")

    class Broken(io.RawIOBase):
        calls = 0

        def read(self, n):
            self.calls += 1
            if self.calls > 2:
                raise RuntimeError("disk on fire")
            return b"y" * min(n, 1000)

    with pytest.raises(RuntimeError, match="disk on fire"):
        t.put("k", Broken())
    assert t.get("k")[0] == b"old"  # atomic: the old object is intact
    assert [p.name for p in root.iterdir()] == ["k"]  # no temporary file left

    def refuse(data):
        raise KeyError("stop")
    with pytest.raises(KeyError):
        t.get_stream("k", refuse)


def test_cancel(store):
    t, root = store
    t.put("k", b"v")
    token = fednode.CancelToken()
    t.set_cancel(token)
    token.request()
    with pytest.raises(fednode.CancelledError):
        t.get("k")
    token.reset()
    assert t.get("k")[0] == b"v"
    t.set_cancel(None)


def test_open_url(tmp_path):
    with fednode.Transport.open(f"file://{tmp_path}") as t:
        t.put("via/url", b"u")
    assert (tmp_path / "via" / "url").read_bytes() == b"u"
    with pytest.raises(fednode.UnsupportedError, match="http://"):
        fednode.Transport.open("http://example.org/store")
    with pytest.raises(fednode.UnsupportedError):
        fednode.Transport.open("ftp://example.org/")
    with pytest.raises(fednode.NotFoundError):
        fednode.Transport.dir(tmp_path / "missing")
    with pytest.raises(fednode.InvalidError, match="credentials"):
        fednode.Transport.https("https://user:secret@example.org/")
    t = fednode.Transport.https("https://example.org/store", proxy="", retries=1)
    t.close()
    with pytest.raises(fednode.InvalidError, match="closed"):
        t.head("k")
