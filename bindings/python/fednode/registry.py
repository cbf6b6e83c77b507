"""The dataset registry (include/fednode/registry.h)."""
import ctypes
import json
import os
from collections import namedtuple

from . import _lib, errors
from ._handle import Handle

lib = _lib.lib

STUDY, SERIES, INSTANCE = 0, 1, 2
ADDED, ALREADY_PRESENT = 0, 1
MANIFEST_JSON, MANIFEST_CSV = 0, 1
ADD_ALLOW_IDENTIFIED = 1

RegistryStats = namedtuple("RegistryStats", "patients studies series instances "
                                            "withdrawn_patients bytes cohorts audit_records")
CohortMember = namedtuple("CohortMember", _lib.CohortMember.STRINGS[:-1] + ("labels", "size"))


def _enc(s):
    return s.encode("utf-8") if isinstance(s, str) else s


def filter_check(text):
    """Checks a cohort filter; raises InvalidError ("filter column N: ...")
    with ``exc.column`` set on a syntax error."""
    column = ctypes.c_int()
    try:
        lib.fdn_registry_filter_check(ctypes.byref(column), _enc(text))
    except errors.InvalidError as exc:
        exc.column = column.value
        raise


class Registry(Handle):
    _closed_message = "the Registry is closed"

    """A registry folder: ``Registry(path, create=True)``.  One handle per
    thread; several processes may open the same registry."""

    def __init__(self, path, create=False, read_only=False, actor=None, audit_sink=None,
                 busy_timeout_ms=0):
        opts = _lib.RegistryOptions()
        lib.fdn_registry_options_init(ctypes.byref(opts), _lib.RegistryOptions.VERSION)
        opts.create = 1 if create else 0
        opts.read_only = 1 if read_only else 0
        opts.busy_timeout_ms = busy_timeout_ms
        opts.actor = _enc(actor)
        self._sink = None
        if audit_sink is not None:
            def sink(record, payload):
                audit_sink(json.loads(record.decode("utf-8")))
            self._sink = _lib.AUDIT_SINK_CB(errors.guard(sink, None))
            opts.audit_sink = self._sink
        ptr = ctypes.c_void_p()
        lib.fdn_registry_open(ctypes.byref(ptr), os.fsencode(path), ctypes.byref(opts))
        self._own(ptr, lib.fdn_registry_free)

    # --- content ---------------------------------------------------------------

    def add(self, dataset, allow_identified=False):
        """Registers a de-identified :class:`fednode.Dataset`; returns
        ``"added"`` or ``"already present"``."""
        result = ctypes.c_int()
        lib.fdn_registry_add(ctypes.byref(result), self._handle(), dataset._handle(),
                             ADD_ALLOW_IDENTIFIED if allow_identified else 0)
        return "added" if result.value == ADDED else "already present"

    def batch(self):
        """A context manager: the changes inside commit together."""
        registry = self

        class _Batch:
            def __enter__(self):
                lib.fdn_registry_begin(registry._handle())
                return registry

            def __exit__(self, kind, exc, tb):
                if kind is None:
                    lib.fdn_registry_commit(registry._handle())
                else:
                    lib.fdn_registry_rollback(registry._handle())
        return _Batch()

    def stats(self):
        raw = _lib.RegistryStats()
        raw.version = _lib.RegistryStats.VERSION
        lib.fdn_registry_stats_get(ctypes.byref(raw), self._handle())
        return RegistryStats(*(getattr(raw, f) for f in RegistryStats._fields))

    def label(self, level, uid, key, value):
        """Sets (or, with ``""``, removes) a label on a study, series or
        instance (``level`` is "study", "series" or "instance")."""
        levels = {"study": STUDY, "series": SERIES, "instance": INSTANCE}
        lib.fdn_registry_label(self._handle(), levels.get(level, level), _enc(uid),
                               _enc(key), _enc(value))

    def withdraw(self, patient, reason, profile=None, purge=False):
        """Records a consent withdrawal.  ``patient`` is the pseudonym, or
        with a :class:`fednode.DeidProfile` the original Patient ID."""
        lib.fdn_registry_withdraw(self._handle(), _enc(patient),
                                  profile._handle() if profile else None, _enc(reason),
                                  1 if purge else 0)

    def grant(self, patient, reason, profile=None):
        lib.fdn_registry_grant(self._handle(), _enc(patient),
                               profile._handle() if profile else None, _enc(reason))

    # --- cohorts ----------------------------------------------------------------

    def count(self, filter_text):
        """Instances of consenting patients that match a filter."""
        n = ctypes.c_uint64()
        lib.fdn_registry_query_count(ctypes.byref(n), self._handle(), _enc(filter_text))
        return n.value

    def create_cohort(self, name, filter_text):
        """Freezes the members of a filter as cohort ``name``; returns the
        snapshot hash."""
        out = ctypes.create_string_buffer(65)
        lib.fdn_cohort_create(out, self._handle(), _enc(name), _enc(filter_text))
        return out.value.decode()

    def cohort(self, name, purpose):
        """Iterates a cohort's current members (consent re-checked)."""
        it = ctypes.c_void_p()
        lib.fdn_cohort_iter_new(ctypes.byref(it), self._handle(), _enc(name), _enc(purpose))
        try:
            while True:
                raw = _lib.CohortMember()
                try:
                    lib.fdn_cohort_iter_next(ctypes.byref(raw), it)
                except errors.NotFoundError:
                    return
                values = [getattr(raw, f).decode("utf-8") if getattr(raw, f) else ""
                          for f in _lib.CohortMember.STRINGS[:-1]]
                labels = json.loads(raw.labels_json.decode("utf-8")) if raw.labels_json else {}
                yield CohortMember(*values, labels, raw.size)
        finally:
            lib.fdn_cohort_iter_free(it)

    def export(self, name, fmt="json"):
        """The manifest of a cohort as text ("json" or "csv")."""
        buf = _lib.Buf()
        lib.fdn_cohort_export(ctypes.byref(buf), self._handle(), _enc(name),
                              MANIFEST_CSV if fmt == "csv" else MANIFEST_JSON)
        return _lib.take_buf(buf).decode("utf-8")

    # --- audit --------------------------------------------------------------------

    def audit(self, event, details=None):
        lib.fdn_registry_audit(self._handle(), _enc(event),
                               _enc(json.dumps(details)) if details is not None else None)

    def verify(self):
        """None when the audit chain and every stored file are intact, else
        the description of the first problem."""
        buf = _lib.Buf()
        try:
            lib.fdn_registry_verify(ctypes.byref(buf), self._handle())
        except errors.AuthError:
            return _lib.take_buf(buf).decode("utf-8", "replace") or "verification failed"
        _lib.take_buf(buf)
        return None

    def audit_log(self, since=0):
        buf = _lib.Buf()
        lib.fdn_registry_audit_export(ctypes.byref(buf), self._handle(), since)
        return json.loads(_lib.take_buf(buf).decode("utf-8"))
