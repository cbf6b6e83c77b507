"""fednode.Transport.https against the real nginx of the 'net' suite
(tests/net/run-net.sh sets FDN_NET_*); skipped elsewhere."""
import os

import pytest

import fednode

BASE = os.environ.get("FDN_NET_BASE")
DIR = os.environ.get("FDN_NET_DIR")
pytestmark = pytest.mark.skipif(not BASE, reason="needs tests/net/run-net.sh")


def transport(who="coordinator", ca="ca", **options):
    certs = {}
    if who:
        certs = dict(client_cert=f"{DIR}/{who}.pem", client_key=f"{DIR}/{who}.key")
    return fednode.Transport.https(f"{BASE}/store", ca_file=f"{DIR}/{ca}.pem",
                                   backoff_ms=10, **certs, **options)


def test_round_trip():
    payload = os.urandom(2 * 1024 * 1024 + 1)
    with transport() as t:
        info = t.put("py/rounds/1/global.fdne", payload)
        assert info.size == len(payload) and info.etag
        data, got = t.get("py/rounds/1/global.fdne")
        assert data == payload and got.etag == info.etag
        data, got = t.get("py/rounds/1/global.fdne", if_none_match=info.etag)
        assert data is None and got.not_modified
        assert t.head("py/rounds/1/global.fdne").size == len(payload)
        t.delete("py/rounds/1/global.fdne")
        with pytest.raises(fednode.NotFoundError):
            t.head("py/rounds/1/global.fdne")


def test_refusals():
    with transport(who=None) as t:
        with pytest.raises(fednode.AuthError):
            t.head("py/x")
    with transport(ca="other-ca") as t:
        with pytest.raises(fednode.CertError):
            t.head("py/x")
    with transport(who="site-a") as t:
        t.put("py/rounds/2/update-site-a.fdne", b"mine")
        with pytest.raises(fednode.AuthError):
            t.put("py/rounds/2/update-site-b.fdne", b"not mine")
    with fednode.Transport.open(f"{BASE}/store", ca_file=f"{DIR}/ca.pem",
                                client_cert=f"{DIR}/coordinator.pem",
                                client_key=f"{DIR}/coordinator.key") as t:
        assert t.get("py/rounds/2/update-site-a.fdne")[0] == b"mine"
