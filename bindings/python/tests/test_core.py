"""The core binding: loading, version, errors, logging, callbacks, tokens."""
import ctypes
import logging
import os
import re
import threading

import pytest

import fednode
from fednode import _lib, errors

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def exported_symbols():
    text = open(os.path.join(ROOT, "lib", "libfednode.map")).read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    names = set()
    for body in re.findall(r"\{(.*?)\}", text, re.S):
        names.update(re.findall(r"(fdn_[a-z0-9_]+)\s*;", body.split("local:")[0]))
    return names


def test_every_exported_function_has_a_prototype():
    assert set(_lib.PROTOTYPES) == exported_symbols()
    for name in _lib.PROTOTYPES:
        fn = getattr(_lib.lib, name)
        assert fn.argtypes is not None, name
        # A pointer-returning function left at the c_int default would be
        # truncated on 64-bit.
        if name in ("fdn_error_last", "fdn_strerror", "fdn_version_string"):
            assert fn.restype is not ctypes.c_int, name


def test_version():
    major, minor, patch = fednode.version_info()
    assert fednode.version() == f"{major}.{minor}.{patch}"
    assert major == 1


def test_library_path_override(tmp_path):
    # FEDNODE_LIBRARY wins over every other location, and a bad one is a
    # clear ImportError naming what was tried.
    import subprocess
    import sys
    env = dict(os.environ, FEDNODE_LIBRARY=str(tmp_path / "nope.so"))
    pkg = os.path.dirname(os.path.dirname(fednode.__file__))
    r = subprocess.run([sys.executable, "-c", "import fednode"], env=dict(env, PYTHONPATH=pkg),
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "FEDNODE_LIBRARY" in r.stderr and "nope.so" in r.stderr


def test_error_becomes_exception_with_message():
    with pytest.raises(fednode.InvalidError) as info:
        _lib.lib.fdn_cancel_new(None)
    exc = info.value
    assert exc.code == errors.EINVALID == -4
    assert "fdn_cancel_new" in exc.message
    assert "fdn_cancel_new" in str(exc)
    assert isinstance(exc, ValueError) and isinstance(exc, fednode.FednodeError)


def test_exception_class_per_code():
    codes = [v for k, v in vars(errors).items() if re.fullmatch(r"E[A-Z]+|ERROR", k)]
    assert len(codes) == 13
    for code in codes:
        assert errors.CODE_TO_EXCEPTION[code].code == code
        assert fednode.strerror(code) != "unknown error"
    assert len(set(errors.CODE_TO_EXCEPTION.values())) == len(codes)


def test_init_options_version_checked():
    opts = _lib.InitOptions()
    with pytest.raises(fednode.InvalidError, match="version"):
        _lib.lib.fdn_init_options_init(ctypes.byref(opts), 99)


def test_init_shutdown_pair():
    fednode.init()
    assert fednode.shutdown() >= 1  # the import's reference remains


def test_log_records_reach_python_logging(caplog):
    fednode.set_log_level(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG, logger="fednode"):
            fednode.init()
            fednode.shutdown()
    finally:
        fednode.set_log_level(logging.WARNING)
    records = [r for r in caplog.records if r.name == "fednode.core"]
    assert records and "initialised again" in records[0].getMessage()
    assert records[0].levelno == logging.DEBUG


def test_log_level_filters_in_the_library(caplog):
    fednode.set_log_level(logging.WARNING)
    with caplog.at_level(logging.DEBUG, logger="fednode"):
        fednode.init()
        fednode.shutdown()
    assert not [r for r in caplog.records if r.name == "fednode.core"]


class Boom(Exception):
    pass


class RaisingHandler(logging.Handler):
    def emit(self, record):
        raise Boom("from the log handler")


def test_exception_in_log_callback_is_not_swallowed():
    log = logging.getLogger("fednode.core")
    handler = RaisingHandler()
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    fednode.set_log_level(logging.DEBUG)
    try:
        with pytest.raises(Boom):
            fednode.init()
    finally:
        log.removeHandler(handler)
        log.setLevel(logging.NOTSET)
        fednode.set_log_level(logging.WARNING)
        fednode.shutdown()
    # Relayed once, then gone.
    fednode.init()
    fednode.shutdown()


def test_guarded_callback_returns_euser_and_relays():
    calls = []

    def bad(progress, payload):
        calls.append(1)
        raise KeyError("callback failure")

    cb = _lib.PROGRESS_CB(errors.guard(bad, errors.EUSER))
    assert cb(None, None) == errors.EUSER
    assert calls == [1]
    with pytest.raises(KeyError):
        errors.raise_pending()
    errors.raise_pending()  # nothing left


def test_cancel_token():
    with fednode.CancelToken() as tok:
        assert not tok.requested
        t = threading.Thread(target=tok.request)
        t.start()
        t.join()
        assert tok.requested
        tok.reset()
        assert not tok.requested
    with pytest.raises(fednode.InvalidError):
        tok.request()
    tok.close()  # twice is fine
