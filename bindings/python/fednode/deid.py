"""De-identification to DICOM PS3.15 2026c Annex E (include/fednode/deid.h).

A :class:`DeidProfile` holds the options of Table E.1-1, the site rules and
the site key (in the library's guarded memory); :meth:`DeidProfile.apply`
de-identifies a :class:`fednode.Dataset` in place and returns a
:class:`DeidReport`.
"""
import ctypes
import json
import os

from . import _lib, errors
from ._handle import Handle

lib = _lib.lib

KEY_BYTES = lib.fdn_deid_key_bytes()

# fdn_deid_option_flag, by the names of PS3.15 Table E.1-1.
OPTIONS = {
    "retain_safe_private": 1 << 0,
    "retain_uids": 1 << 1,
    "retain_device_identity": 1 << 2,
    "retain_institution_identity": 1 << 3,
    "retain_patient_characteristics": 1 << 4,
    "retain_long_full_dates": 1 << 5,
    "retain_long_modified_dates": 1 << 6,
    "clean_descriptors": 1 << 7,
    "clean_structured_content": 1 << 8,
    "clean_graphics": 1 << 9,
}

# fdn_deid_action_kind, in value order.
ACTIONS = ("kept", "removed", "emptied", "dummied", "cleaned", "uid_replaced",
           "date_shifted", "pseudonymized")


def _flags(options):
    """The fdn_deid_option_flag bits of an int, or of an iterable of option
    names (``"retain_uids"`` or ``"retain-uids"``)."""
    if options is None:
        return 0
    if isinstance(options, int):
        return options
    if isinstance(options, (str, bytes)):
        raise TypeError("options is a set or list of option names, or an int of flags")
    flags = 0
    for name in options:
        key = str(name).replace("-", "_").lower()
        if key not in OPTIONS:
            raise errors.InvalidError(
                f"unknown de-identification option {name!r} (known: "
                + ", ".join(sorted(OPTIONS)) + ")", errors.EINVALID)
        flags |= OPTIONS[key]
    return flags


class DeidReport:
    """What :meth:`DeidProfile.apply` or :meth:`DeidProfile.verify` found.

    ``counts`` maps each action (``kept``, ``removed``, ``emptied``,
    ``dummied``, ``cleaned``, ``uid_replaced``, ``date_shifted``,
    ``pseudonymized``) to the number of attributes that got it;
    ``entries`` lists ``(path, action)`` per element visited, the path as
    tags (``"(0008,1140)/(0008,1155)"``) and the action as its Table E.1-1
    code; ``refusal`` is the reason an image was refused (or None);
    ``leaks`` the findings of a verification (they never contain values).
    A plain Python object: it holds no library memory.
    """

    def __init__(self, counts=None, entries=None, refusal=None, leaks=None):
        self.counts = dict(counts or {name: 0 for name in ACTIONS})
        self.entries = list(entries or [])
        self.refusal = refusal
        self.leaks = list(leaks or [])

    @property
    def ok(self):
        """True when nothing was refused and no leak was found."""
        return self.refusal is None and not self.leaks

    @classmethod
    def _take(cls, ptr):
        """Copies a fdn_deid_report out and frees it (NULL gives None)."""
        if not ptr:
            return None
        try:
            counts = {name: lib.fdn_deid_report_count(ptr, i) for i, name in enumerate(ACTIONS)}
            entries = []
            path, action = ctypes.c_char_p(), ctypes.c_char_p()
            for i in range(lib.fdn_deid_report_entry_count(ptr)):
                lib.fdn_deid_report_entry(ptr, i, ctypes.byref(path), ctypes.byref(action))
                entries.append((path.value.decode() if path.value else "",
                                action.value.decode() if action.value else ""))
            refusal = lib.fdn_deid_report_refusal(ptr)
            leaks = [lib.fdn_deid_report_leak(ptr, i).decode("utf-8", "replace")
                     for i in range(lib.fdn_deid_report_leak_count(ptr))]
            return cls(counts, entries,
                       refusal.decode("utf-8", "replace") if refusal else None, leaks)
        finally:
            lib.fdn_deid_report_free(ptr)

    def __repr__(self):
        state = ("refused" if self.refusal else
                 f"{len(self.leaks)} leak(s)" if self.leaks else "ok")
        done = ", ".join(f"{k}={v}" for k, v in self.counts.items() if v)
        return f"<fednode.DeidReport {state}: {done}>"


def deid_key_generate(path):
    """Creates a new random site key file at ``path`` (mode 0600).  Never
    overwrites: :class:`fednode.ConflictError` if the file exists."""
    lib.fdn_deid_key_generate(os.fsencode(path))


def deid_key_load(path):
    """Returns the site key in file ``path`` as ``bytes``.

    The library refuses a file readable by group or others
    (:class:`fednode.InvalidError`, the message says to chmod 600) and a
    missing one (:class:`fednode.NotFoundError`).

    Beware: a Python ``bytes`` object cannot be wiped; the key stays in the
    process memory until the object is garbage-collected and its memory
    reused.  Prefer ``DeidProfile(key_file=path)``, which loads the key
    straight into the profile's guarded memory.
    """
    buf = (ctypes.c_ubyte * KEY_BYTES)()
    try:
        lib.fdn_deid_key_load(buf, KEY_BYTES, os.fsencode(path))
        return bytes(buf)
    finally:
        ctypes.memset(buf, 0, KEY_BYTES)


class DeidProfile(Handle):
    _closed_message = "the DeidProfile is closed"

    """A de-identification profile: the Basic Application Level
    Confidentiality Profile plus the chosen options, site rules and key.

    ``key`` (32 ``bytes``) or ``key_file`` (a path, see
    :func:`deid_key_generate`): exactly one is required.  With
    ``key_file`` the key goes from the file into the library's guarded
    memory through a scratch buffer that is zeroed at once; no Python
    ``bytes`` copy is made.

    ``options``: a set or list of option names (``{"retain_uids",
    "retain_long_modified_dates"}``, hyphens allowed) or an int of
    fdn_deid_option_flag bits.

    ``rules``: site rules as a dict (``{"rules": [{"tag": "PatientAge",
    "action": "keep"}]}``) or its JSON text.

    ``clean(path, vr, value) -> str | None``: cleans free text (action C);
    the returned text replaces the value, ``None`` or ``""`` empties it.
    Without it, text to clean is emptied.  It runs on the thread calling
    :meth:`apply`; an exception in it stops :meth:`apply` and is re-raised
    from there (the dataset must then be discarded).

    ``allow_burned_in``: de-identify images flagged or suspected of
    burned-in annotation instead of refusing them.

    The profile is immutable and may be shared by threads (then ``clean``
    must be thread-safe).
    """

    def __init__(self, key=None, key_file=None, options=None, rules=None, clean=None,
                 allow_burned_in=False):
        if (key is None) == (key_file is None):
            raise errors.InvalidError("DeidProfile needs exactly one of key= and key_file=",
                                      errors.EINVALID)
        opts = _lib.DeidOptions()
        lib.fdn_deid_options_init(ctypes.byref(opts), _lib.DeidOptions.VERSION)
        opts.options = _flags(options)
        if isinstance(rules, dict):
            rules = json.dumps(rules)
        if isinstance(rules, str):
            rules = rules.encode("utf-8")
        opts.rules_json = rules
        opts.allow_burned_in = 1 if allow_burned_in else 0
        self._clean_cb = None
        if clean is not None:
            if not callable(clean):
                raise TypeError("clean must be callable(path, vr, value)")
            self._clean_cb = _lib.DEID_CLEAN_CB(errors.guard(self._cleaner(clean),
                                                             errors.EUSER))
            opts.clean = self._clean_cb
        ptr = ctypes.c_void_p()
        scratch = (ctypes.c_ubyte * KEY_BYTES)()
        try:
            if key_file is not None:
                lib.fdn_deid_key_load(scratch, KEY_BYTES, os.fsencode(key_file))
            else:
                if not isinstance(key, (bytes, bytearray, memoryview)) or len(key) != KEY_BYTES:
                    raise errors.InvalidError(f"key must be {KEY_BYTES} bytes",
                                              errors.EINVALID)
                ctypes.memmove(scratch, bytes(key), KEY_BYTES)
            opts.key = ctypes.cast(scratch, ctypes.POINTER(ctypes.c_ubyte))
            lib.fdn_deid_profile_new(ctypes.byref(ptr), ctypes.byref(opts))
        finally:
            ctypes.memset(scratch, 0, KEY_BYTES)
        self._own(ptr, lib.fdn_deid_profile_free)

    def _cleaner(self, clean):
        def call(out, path, vr, value, payload):
            text = clean(path.decode("utf-8", "replace"), vr.decode(),
                         value.decode("utf-8", "replace") if value else "")
            if text is None or text == "":
                return 0
            if not isinstance(text, str):
                raise TypeError(f"the clean callback returned {type(text).__name__}, "
                                "not str or None")
            data = text.encode("utf-8")
            # The library copies the text into its own memory.
            lib.fdn_buf_set(out, data, len(data))
            return 0
        return call


    def apply(self, dataset):
        """De-identifies ``dataset`` in place and returns a :class:`DeidReport`.

        Raises :class:`fednode.PHIError` when the image is refused (burned-in
        annotation, recognizable visual features); the dataset is then
        unchanged and the exception's ``report`` holds the reason
        (``exc.report.refusal``).  After any other error the dataset may be
        partly changed and must be discarded.
        """
        rep = ctypes.c_void_p()
        try:
            lib.fdn_deid_apply(ctypes.byref(rep), self._handle(), dataset._handle())
        except errors.PHIError as exc:
            if rep:  # a refusal (not a PHIError raised by the clean callback)
                exc.report = DeidReport._take(rep)
            raise
        return DeidReport._take(rep)

    def pseudonym_for(self, patient_id):
        """The pseudonym this profile writes for Patient ID ``patient_id``
        (``"FDN-"`` and 26 base32 characters): finds a patient's data for a
        consent withdrawal without a re-identification table."""
        buf = _lib.Buf()
        pid = patient_id.encode("utf-8") if isinstance(patient_id, str) else patient_id
        lib.fdn_deid_pseudonym_for(ctypes.byref(buf), self._handle(), pid)
        return _lib.take_buf(buf).decode()

    def verify(self, original, deidentified):
        """Searches ``deidentified`` for values of ``original`` the profile
        should have removed or replaced.  Returns a :class:`DeidReport`
        whose ``leaks`` lists the findings (``report.ok`` when none); it
        does not raise for leaks."""
        rep = ctypes.c_void_p()
        try:
            lib.fdn_deid_verify(ctypes.byref(rep), self._handle(), original._handle(),
                                deidentified._handle())
        except errors.PHIError:
            if not rep:
                raise
        return DeidReport._take(rep)


    def __repr__(self):
        return "<fednode.DeidProfile%s>" % ("" if self._ptr else " (closed)")
