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


# --- envelopes ----------------------------------------------------------------

@pytest.fixture
def federation(tmp_path):
    coord = fednode.Identity.generate("coord")
    site = fednode.Identity.generate("site-a")
    other = fednode.Identity.generate("site-b")
    trust = fednode.Trust(tmp_path / "trust.json")
    trust.add(coord.public(), "coordinator")
    trust.add(site.public(), "site")
    trust.add(other.public(), "site")
    yield coord, site, other, trust
    trust.close()


def test_envelope_round_trip(federation):
    coord, site, other, trust = federation
    payload = bytes(range(256)) * 1000
    env = fednode.seal(payload, coord, ["site-a", "coord"], "global", "fed", 3, trust,
                       compression_level=6)
    assert env[:4] == b"FDNE"
    data, info = fednode.open_envelope(env, site, trust, "global", "fed", 3,
                                       sender="coord", sender_role="coordinator")
    assert data == payload
    assert info.kind == "global" and info.round == 3 and info.federation == "fed"
    assert info.sender == "coord" and info.payload_bytes == len(payload)
    assert info.stored_bytes == len(env) and info.recipients == 2 and info.compressed
    # The sender kept a copy for itself.
    assert fednode.open_envelope(env, coord, trust, fednode.exchange.KINDS["global"],
                                 "fed", 3)[0] == payload
    # Empty payloads too.
    env = fednode.seal(b"", site, "coord", "update", "fed", 3, trust)
    assert fednode.open_envelope(env, coord, trust, "update", "fed", 3)[0] == b""


def test_envelope_files(federation, tmp_path):
    coord, site, other, trust = federation
    src = tmp_path / "model.safetensors"
    src.write_bytes(os.urandom(300000))
    fednode.seal_file(src, tmp_path / "update.fdne", site, "coord", "update", "fed", 1, trust)
    info = fednode.open_file(tmp_path / "update.fdne", tmp_path / "out", coord, trust,
                             "update", "fed", 1, sender="site-a")
    assert (tmp_path / "out").read_bytes() == src.read_bytes()
    assert info.sender == "site-a" and not info.compressed
    assert stat.S_IMODE(os.stat(tmp_path / "out").st_mode) == 0o600
    with pytest.raises(fednode.NotFoundError):
        fednode.seal_file(src, tmp_path / "x.fdne", site, "nobody", "update", "fed", 1, trust)
    assert not (tmp_path / "x.fdne").exists()


def test_envelope_tamper_rejected(federation, tmp_path):
    coord, site, other, trust = federation
    env = bytearray(fednode.seal(b"weights" * 100, coord, "site-a", "global", "fed", 2, trust))
    for at in (20, len(env) // 2, len(env) - 90, len(env) - 10):
        bad = bytearray(env)
        bad[at] ^= 0x40
        with pytest.raises((fednode.AuthError, fednode.FormatError)):
            fednode.open_envelope(bad, site, trust, "global", "fed", 2)
    bad = bytearray(env)
    bad[len(env) - 60] ^= 1  # inside the signature
    with pytest.raises(fednode.AuthError, match="signature"):
        fednode.open_envelope(bad, site, trust, "global", "fed", 2)
    with pytest.raises(fednode.FormatError):
        fednode.open_envelope(env[:-1], site, trust, "global", "fed", 2)
    with pytest.raises(fednode.FormatError, match="trailing"):
        fednode.open_envelope(env + b"x", site, trust, "global", "fed", 2)
    (tmp_path / "bad.fdne").write_bytes(bytes(bad))
    with pytest.raises(fednode.AuthError):
        fednode.open_file(tmp_path / "bad.fdne", tmp_path / "out", site, trust, "global",
                          "fed", 2)
    assert not (tmp_path / "out").exists()


def test_envelope_replay_and_trust(federation):
    coord, site, other, trust = federation
    env = fednode.seal(b"update", site, "coord", "update", "fed", 5, trust)
    with pytest.raises(fednode.AuthError, match="replay: expected round 6"):
        fednode.open_envelope(env, coord, trust, "update", "fed", 6)
    with pytest.raises(fednode.AuthError, match="replay: expected a 'global'"):
        fednode.open_envelope(env, coord, trust, "global", "fed", 5)
    with pytest.raises(fednode.AuthError, match="replay: expected federation"):
        fednode.open_envelope(env, coord, trust, "update", "other", 5)
    with pytest.raises(fednode.AuthError, match="expected from 'site-b'"):
        fednode.open_envelope(env, coord, trust, "update", "fed", 5, sender="site-b")
    with pytest.raises(fednode.AuthError, match="expected a coordinator"):
        fednode.open_envelope(env, coord, trust, "update", "fed", 5,
                              sender_role="coordinator")
    with pytest.raises(fednode.AuthError, match="not addressed"):
        fednode.open_envelope(env, other, trust, "update", "fed", 5)
    stranger = fednode.Identity.generate("site-x")
    env = fednode.seal(b"update", stranger, "coord", "update", "fed", 5, trust)
    with pytest.raises(fednode.AuthError, match="not trusted"):
        fednode.open_envelope(env, coord, trust, "update", "fed", 5)
    with pytest.raises(fednode.InvalidError):
        fednode.seal(b"x", site, "coord", "bogus-kind", "fed", 5, trust)


def test_envelope_inspect_and_progress(federation):
    coord, site, other, trust = federation
    seen = []
    env = fednode.seal(b"\0" * 3_000_000, coord, ["site-a", "site-b"], "result", "fed", 9,
                       trust, compression_level=1, on_progress=seen.append)
    assert seen and seen[-1].bytes_done == 3_000_000
    info = fednode.inspect(env)
    assert info.kind == "result" and info.round == 9 and info.sender == "coord"
    assert info.recipients == 2 and info.payload_bytes == 0 and info.compressed
    assert len(env) < 100_000
    with pytest.raises(fednode.FormatError):
        fednode.inspect(b"garbage that is not an envelope")

    def stop(progress):
        raise KeyError("stop here")
    with pytest.raises(KeyError, match="stop here"):
        fednode.open_envelope(env, site, trust, "result", "fed", 9, on_progress=stop)
    token = fednode.CancelToken()
    token.request()
    with pytest.raises(fednode.CancelledError):
        fednode.open_envelope(env, site, trust, "result", "fed", 9, cancel=token)
    with pytest.raises(fednode.FormatError, match="max_payload"):
        fednode.open_envelope(env, site, trust, "result", "fed", 9, max_payload=1000)
