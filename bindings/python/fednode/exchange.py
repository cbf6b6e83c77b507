"""Node identities and the trust store (include/fednode/exchange.h)."""
import ctypes
import os
import time
from collections import namedtuple

from . import _lib
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
