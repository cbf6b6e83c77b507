"""Node identities and the trust store (include/fednode/exchange.h)."""
import ctypes
import os
import time
from collections import namedtuple

from . import _lib, errors
from ._handle import Handle

lib = _lib.lib

ROLE_SITE = 1
ROLE_COORDINATOR = 2
_ROLES = {"site": ROLE_SITE, "coordinator": ROLE_COORDINATOR}
_ROLE_NAMES = {v: k for k, v in _ROLES.items()}


def _enc(s):
    return s.encode("utf-8") if isinstance(s, str) else s


def _opt(s):
    return None if s is None else _enc(s)


class Identity(Handle):
    """A node identity: node id, Ed25519 and X25519 key pairs.  The secret
    keys stay in the library's guarded memory; Python never sees them."""

    _closed_message = "the Identity is closed"

    def __init__(self, _ptr):
        self._own(_ptr, lib.fdn_identity_free)

    @classmethod
    def generate(cls, node_id):
        """A new identity with fresh keys."""
        ptr = ctypes.c_void_p()
        lib.fdn_identity_generate(ctypes.byref(ptr), _enc(node_id))
        return cls(ptr)

    @classmethod
    def load(cls, path, passphrase=None):
        """Loads a key file (must be 0600); ``passphrase`` for an encrypted one."""
        ptr = ctypes.c_void_p()
        lib.fdn_identity_load(ctypes.byref(ptr), os.fsencode(path), _opt(passphrase))
        return cls(ptr)

    def save(self, path, passphrase=None):
        """Writes a new key file, mode 0600; never replaces an existing one
        (ConflictError).  With ``passphrase`` the secret keys are encrypted."""
        lib.fdn_identity_save(self._handle(), os.fsencode(path), _opt(passphrase))

    @property
    def node_id(self):
        return lib.fdn_identity_node_id(self._handle()).decode("utf-8")

    def public(self, valid_until=None):
        """The public part as a JSON line, for a peer's :meth:`Trust.add`."""
        buf = _lib.Buf()
        lib.fdn_identity_public(ctypes.byref(buf), self._handle(), _opt(valid_until))
        return _lib.take_buf(buf).decode("utf-8")

    @property
    def fingerprint(self):
        """The short fingerprint of the public keys, "xxxx:xxxx:..."."""
        buf = _lib.Buf()
        lib.fdn_identity_fingerprint(ctypes.byref(buf), self._handle())
        return _lib.take_buf(buf).decode("ascii")


TrustPeer = namedtuple("TrustPeer", "node_id role fingerprint valid_until "
                                    "ed25519_public x25519_public")
TrustPeer.__doc__ = ("One trusted key: role is 'site' or 'coordinator', "
                     "valid_until '' or 'YYYY-MM-DD', the keys are bytes.")


class Trust(Handle):
    """The peers a node knows, kept in a JSON file.  Changes stay in memory
    until :meth:`save`."""

    _closed_message = "the Trust store is closed"

    def __init__(self, path):
        ptr = ctypes.c_void_p()
        lib.fdn_trust_open(ctypes.byref(ptr), os.fsencode(path))
        self._own(ptr, lib.fdn_trust_free)

    @classmethod
    def open(cls, path):
        """Opens (creating when absent) the trust store at ``path``."""
        return cls(path)

    def add(self, public_text, role, valid_until=""):
        """Trusts a peer key from its public text; ``role`` is 'site' or
        'coordinator' (or the ROLE_ constant)."""
        role = _ROLES[role] if isinstance(role, str) else role
        lib.fdn_trust_add(self._handle(), _enc(public_text), role, _opt(valid_until))

    def remove(self, node_id):
        """Forgets every key of ``node_id``."""
        lib.fdn_trust_remove(self._handle(), _enc(node_id))

    def __len__(self):
        return lib.fdn_trust_count(self._handle())

    def __getitem__(self, index):
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        info = _lib.TrustPeerInfo(version=_lib.TrustPeerInfo.VERSION)
        lib.fdn_trust_peer(ctypes.byref(info), self._handle(), index)
        return TrustPeer(info.node_id.decode("utf-8"),
                         _ROLE_NAMES.get(info.role, str(info.role)),
                         info.fingerprint.decode("ascii"),
                         info.valid_until.decode("ascii"),
                         bytes(info.ed25519_public), bytes(info.x25519_public))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def find_by_key(self, ed25519_public, when=None):
        """The :class:`TrustPeer` of a trusted Ed25519 key at ``when`` (Unix
        seconds; default now).  NotFoundError for an unknown key, AuthError
        for one whose end date has passed."""
        key = bytes(ed25519_public)
        if len(key) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        index = ctypes.c_size_t()
        lib.fdn_trust_find_by_key(ctypes.byref(index), self._handle(), key,
                                  int(time.time() if when is None else when))
        return self[index.value]

    def save(self):
        """Writes the store back to its file atomically."""
        lib.fdn_trust_save(self._handle())


# --- envelopes ------------------------------------------------------------

KINDS = {"data": 1, "manifest": 2, "global": 3, "update": 4, "result": 5, "latest": 6}
_KIND_NAMES = {v: k for k, v in KINDS.items()}

EnvelopeInfo = namedtuple("EnvelopeInfo", "kind round federation sender sender_ed25519 "
                                          "payload_bytes stored_bytes recipients compressed")
EnvelopeInfo.__doc__ = ("What an envelope says about itself: kind is a name ('global', ...), "
                        "sender the signer's node id, sender_ed25519 bytes.  From "
                        ":func:`inspect` it is NOT verified and payload_bytes is 0.")


def _kind(kind):
    if isinstance(kind, str):
        if kind not in KINDS:
            raise errors.InvalidError(f"unknown envelope kind '{kind}' (known: "
                                      + ", ".join(KINDS) + ")", errors.EINVALID)
        return KINDS[kind]
    return int(kind)


def _info(c):
    return EnvelopeInfo(_KIND_NAMES.get(c.kind, str(c.kind)), c.round,
                        c.federation.decode("utf-8"), c.sender.decode("utf-8"),
                        bytes(c.sender_ed25519), c.payload_bytes, c.stored_bytes,
                        c.recipients, bool(c.compressed))


def _progress(on_progress, keep):
    if not on_progress:
        return _lib.PROGRESS_CB()
    from . import Progress

    def progress(p, payload):
        return on_progress(Progress.from_c(p.contents)) or 0
    cb = _lib.PROGRESS_CB(errors.guard(progress, errors.EUSER))
    keep.append(cb)
    return cb


def _seal_options(kind, federation, round, compression_level, shuffle, threads,
                  on_progress, cancel, keep):
    o = _lib.SealOptions()
    lib.fdn_seal_options_init(ctypes.byref(o), _lib.SealOptions.VERSION)
    o.kind = _kind(kind)
    o.federation = _enc(federation)
    o.round = round
    o.compression_level = compression_level
    o.shuffle = shuffle
    o.threads = threads
    o.progress = _progress(on_progress, keep)
    o.cancel = cancel._handle() if cancel is not None else None
    return o


def _open_options(kind, federation, round, sender, sender_role, max_payload, when,
                  temp_dir, threads, on_progress, cancel, keep):
    o = _lib.OpenOptions()
    lib.fdn_open_options_init(ctypes.byref(o), _lib.OpenOptions.VERSION)
    o.kind = _kind(kind)
    o.federation = _enc(federation)
    o.round = round
    o.sender = _opt(sender)
    o.sender_role = (_ROLES[sender_role] if isinstance(sender_role, str)
                     else int(sender_role or 0))
    o.max_payload = max_payload
    o.when = int(when or 0)
    o.temp_dir = None if temp_dir is None else os.fsencode(temp_dir)
    o.threads = threads
    o.progress = _progress(on_progress, keep)
    o.cancel = cancel._handle() if cancel is not None else None
    return o


def _recipients(recipients):
    names = [recipients] if isinstance(recipients, str) else list(recipients)
    arr = (ctypes.c_char_p * len(names))(*[_enc(n) for n in names])
    return arr, len(names)


def _trust_handle(trust):
    return trust._handle() if trust is not None else None


def seal(data, sender, recipients, kind, federation, round=0, trust=None,
         compression_level=0, shuffle=0, threads=0, on_progress=None, cancel=None):
    """Seals ``data`` (bytes) from the :class:`Identity` ``sender`` to the
    node ids ``recipients`` (one or a list; every valid key of each in
    ``trust``; the sender's own id means its own key) and returns the
    envelope as bytes.  ``kind`` is a name ('global', 'update', ...) or
    value; ``compression_level`` 1..9 enables shuffle+zlib where it pays."""
    keep = []
    opts = _seal_options(kind, federation, round, compression_level, shuffle, threads,
                         on_progress, cancel, keep)
    names, n = _recipients(recipients)
    data = bytes(data)
    buf = _lib.Buf()
    lib.fdn_envelope_seal_buffer(ctypes.byref(buf), data, len(data), sender._handle(),
                                 _trust_handle(trust), names, n, ctypes.byref(opts))
    return _lib.take_buf(buf)


def seal_file(in_path, out_path, sender, recipients, kind, federation, round=0,
              trust=None, compression_level=0, shuffle=0, threads=0, on_progress=None,
              cancel=None):
    """Seals the file ``in_path`` into a new envelope file ``out_path``
    (written beside it under a temporary name, renamed when complete)."""
    keep = []
    opts = _seal_options(kind, federation, round, compression_level, shuffle, threads,
                         on_progress, cancel, keep)
    names, n = _recipients(recipients)
    out_path = os.fspath(out_path)
    tmp = f"{out_path}.tmp{os.getpid()}"
    with open(in_path, "rb") as fin, open(tmp, "wb") as fout:
        try:
            lib.fdn_envelope_seal_fd(fin.fileno(), fout.fileno(), sender._handle(),
                                     _trust_handle(trust), names, n, ctypes.byref(opts))
            fout.flush()
            os.fsync(fout.fileno())
        except BaseException:
            os.unlink(tmp)
            raise
    os.replace(tmp, out_path)


def open_envelope(data, me, trust, kind, federation, round=0, sender=None,
                  sender_role=None, max_payload=0, when=None, threads=0,
                  on_progress=None, cancel=None):
    """Opens an envelope (bytes) addressed to the :class:`Identity` ``me``
    and returns ``(payload, info)`` once it is verified.  The sender must
    be in ``trust`` (:class:`Trust`) and the envelope must be of the
    expected ``kind``, ``federation`` and ``round`` (else AuthError: a
    replay); ``sender``/``sender_role`` narrow who may have sent it.
    AuthError on any alteration, FormatError on malformed input."""
    keep = []
    opts = _open_options(kind, federation, round, sender, sender_role, max_payload, when,
                         None, threads, on_progress, cancel, keep)
    data = bytes(data)
    info = _lib.EnvelopeInfo(version=_lib.EnvelopeInfo.VERSION)
    buf = _lib.Buf()
    lib.fdn_envelope_open_buffer(ctypes.byref(info), ctypes.byref(buf), data, len(data),
                                 me._handle(), trust._handle(), ctypes.byref(opts))
    return _lib.take_buf(buf), _info(info)


def open_file(in_path, out_path, me, trust, kind, federation, round=0, sender=None,
              sender_role=None, max_payload=0, when=None, threads=0, on_progress=None,
              cancel=None):
    """As :func:`open_envelope`, from the file ``in_path`` into ``out_path``
    (mode 0600, renamed into place only after verification); returns the
    :class:`EnvelopeInfo`."""
    keep = []
    opts = _open_options(kind, federation, round, sender, sender_role, max_payload, when,
                         None, threads, on_progress, cancel, keep)
    info = _lib.EnvelopeInfo(version=_lib.EnvelopeInfo.VERSION)
    lib.fdn_envelope_open_file(ctypes.byref(info), os.fsencode(in_path),
                               os.fsencode(out_path), me._handle(), trust._handle(),
                               ctypes.byref(opts))
    return _info(info)


def inspect(data):
    """The header of an envelope (bytes, or at least its first 128 KiB),
    UNVERIFIED: anyone can write any header.  For display only."""
    data = bytes(data)
    info = _lib.EnvelopeInfo(version=_lib.EnvelopeInfo.VERSION)
    lib.fdn_envelope_inspect(ctypes.byref(info), data, len(data))
    return _info(info)
