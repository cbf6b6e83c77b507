"""fednode.Identity and fednode.Trust: key files, public text, trust store."""
import json
import os
import stat

import pytest

import fednode


def test_identity_round_trip(tmp_path):
    ident = fednode.Identity.generate("site-a")
    assert ident.node_id == "site-a"
    fp = ident.fingerprint
    assert len(fp) == 39 and fp.count(":") == 7
    for name, pw in (("plain.key", None), ("enc.key", "s3cret")):
        path = tmp_path / name
        ident.save(path, pw)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with fednode.Identity.load(path, pw) as back:
            assert back.public() == ident.public()
            assert back.fingerprint == fp
        with pytest.raises(fednode.ConflictError):
            ident.save(path, pw)
    with pytest.raises(fednode.AuthError):
        fednode.Identity.load(tmp_path / "enc.key", "wrong")
    os.chmod(tmp_path / "plain.key", 0o644)
    with pytest.raises(fednode.InvalidError):
        fednode.Identity.load(tmp_path / "plain.key")
    (tmp_path / "junk.key").write_bytes(b"not a key file at all")
    os.chmod(tmp_path / "junk.key", 0o600)
    with pytest.raises(fednode.FormatError):
        fednode.Identity.load(tmp_path / "junk.key")
    with pytest.raises(fednode.InvalidError):
        fednode.Identity.generate("no spaces")


def test_public_text():
    ident = fednode.Identity.generate("coord")
    doc = json.loads(ident.public("2027-06-30"))
    assert doc["node_id"] == "coord" and doc["valid_until"] == "2027-06-30"
    assert "valid_until" not in json.loads(ident.public())


def test_trust(tmp_path):
    path = tmp_path / "trust.json"
    old = fednode.Identity.generate("site-b")
    new = fednode.Identity.generate("site-b")
    with fednode.Trust(path) as trust:
        assert len(trust) == 0
        trust.add(old.public(), "site", "2026-01-31")
        trust.add(new.public(), "site")
        with pytest.raises(fednode.ConflictError):
            trust.add(new.public(), "site")
        trust.save()
    with fednode.Trust.open(path) as trust:
        peers = list(trust)
        assert [p.node_id for p in peers] == ["site-b", "site-b"]
        assert peers[0].valid_until == "2026-01-31" and peers[1].valid_until == ""
        assert peers[0].fingerprint == old.fingerprint
        feb1 = 1769904000
        assert trust.find_by_key(peers[0].ed25519_public, feb1 - 1) == peers[0]
        with pytest.raises(fednode.AuthError):
            trust.find_by_key(peers[0].ed25519_public, feb1)
        assert trust.find_by_key(peers[1].ed25519_public).fingerprint == new.fingerprint
        with pytest.raises(fednode.NotFoundError):
            trust.find_by_key(bytes(32))
        trust.remove("site-b")
        assert len(trust) == 0
        with pytest.raises(fednode.NotFoundError):
            trust.remove("site-b")
