"""DICOM datasets and directory scans (include/fednode/dicom.h)."""
import ctypes
import os
from collections import namedtuple

from . import _lib, errors
from ._handle import Handle

lib = _lib.lib

READ_FULL = 0
READ_HEADER_ONLY = 1
READ_SUMMARY = 2
FOREACH_RECURSIVE = 1
JSON_PRETTY = 1
JSON_SKIP_BINARY = 2

UNKNOWN, NO, YES = -1, 0, 1

_INT_VRS = {"IS", "US", "SS", "UL", "SL", "UV", "SV"}
_FLOAT_VRS = {"DS", "FL", "FD"}
_BYTES_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}

Element = namedtuple("Element", "tag vr length vm depth path keyword")
InstanceInfo = namedtuple("InstanceInfo", _lib.InstanceInfo.STRINGS + (
    "series_number", "instance_number", "rows", "columns", "frames",
    "burned_in_annotation", "recognizable_visual_features", "file_size"))
ScanStats = namedtuple("ScanStats", "files instances not_dicom dicomdirs errors bytes elapsed")


def _enc(s):
    return s.encode("utf-8") if isinstance(s, str) else s


def _path(key):
    """A path for the C API from a keyword/path string, an int tag or a
    (group, element) pair."""
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, int):
        return b"(%04X,%04X)" % (key >> 16, key & 0xFFFF)
    if isinstance(key, tuple) and len(key) == 2:
        return b"(%04X,%04X)" % key
    raise TypeError(f"a DICOM key is a keyword, path, int tag or (group, element), not {key!r}")


def tag_from_keyword(keyword):
    """The tag (int) of a PS3.6 keyword; NotFoundError for an unknown one."""
    tag = ctypes.c_uint32()
    lib.fdn_tag_from_keyword(ctypes.byref(tag), _enc(keyword))
    return tag.value


def keyword_for_tag(tag):
    """The keyword of a tag, or None (private or unknown)."""
    kw = lib.fdn_tag_keyword(tag)
    return kw.decode() if kw else None


def vr_for_tag(tag):
    """The dictionary VR of a tag, or None."""
    vr = lib.fdn_tag_vr(tag)
    return vr.decode() if vr else None


class Item:
    """One item of a sequence: a view into its dataset, indexed like one."""

    def __init__(self, dataset, prefix):
        self._dataset = dataset
        self._prefix = prefix

    def _key(self, key):
        return self._prefix + b"/" + _path(key)

    def __getitem__(self, key):
        return self._dataset[self._key(key).decode()]

    def __setitem__(self, key, value):
        self._dataset[self._key(key).decode()] = value

    def __delitem__(self, key):
        del self._dataset[self._key(key).decode()]

    def __contains__(self, key):
        return self._key(key).decode() in self._dataset

    def get(self, key, default=None):
        return self._dataset.get(self._key(key).decode(), default)

    def elements(self, recursive=False):
        return self._dataset.elements(self._prefix.decode(), recursive)

    def __repr__(self):
        return f"<fednode.dicom.Item {self._prefix.decode()}>"


class Dataset(Handle):
    """A DICOM dataset.  Index it by keyword (``ds["PatientName"]``), tag
    (``ds[0x00100010]``, ``ds[(0x0010, 0x0010)]``) or path
    (``ds["ReferencedImageSequence[0]/ReferencedSOPInstanceUID"]``).

    Values come back typed by VR: ``str`` for text (UTF-8 decoded), ``int``
    or ``float`` for numbers, ``bytes`` for binary VRs, a list of
    :class:`Item` for sequences, and a list when there are several values.
    """

    _closed_message = ("the dataset is closed (or was lent to a callback that has "
                       "returned: clone() it to keep it)")

    def __init__(self, ptr, owned=True, parent=None):
        self._parent = parent
        self._own(ptr, lib.fdn_dataset_free if owned else None)

    # --- construction -------------------------------------------------------------

    @classmethod
    def read(cls, source, header_only=False, summary=False):
        """Reads a file (a path) or a DICOM byte string (``bytes``,
        ``bytearray``, ``memoryview``).  ``header_only`` stops before Pixel
        Data; ``summary`` also keeps only what :attr:`info` reports."""
        flags = READ_SUMMARY if summary else READ_HEADER_ONLY if header_only else READ_FULL
        ptr = ctypes.c_void_p()
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            lib.fdn_dataset_read_buffer(ctypes.byref(ptr), data, len(data), flags)
        else:
            lib.fdn_dataset_read_file(ctypes.byref(ptr), os.fsencode(source), flags)
        return cls(ptr)

    @classmethod
    def new(cls, transfer_syntax=None):
        """An empty dataset (explicit VR little endian unless given)."""
        ptr = ctypes.c_void_p()
        lib.fdn_dataset_new(ctypes.byref(ptr), _enc(transfer_syntax))
        return cls(ptr)

    def clone(self):
        """A deep copy that lives independently of this dataset."""
        ptr = ctypes.c_void_p()
        lib.fdn_dataset_clone(ctypes.byref(ptr), self._handle())
        return Dataset(ptr)


    # --- properties ---------------------------------------------------------------

    @property
    def transfer_syntax(self):
        return lib.fdn_dataset_transfer_syntax(self._handle()).decode()

    @property
    def source(self):
        s = lib.fdn_dataset_source(self._handle())
        return os.fsdecode(s) if s else None

    @property
    def header_only(self):
        return bool(lib.fdn_dataset_is_header_only(self._handle()))

    @property
    def info(self):
        """The :class:`InstanceInfo` summary."""
        raw = _lib.InstanceInfo()
        raw.version = _lib.InstanceInfo.VERSION
        lib.fdn_dataset_instance_info(ctypes.byref(raw), self._handle())
        return _info_tuple(raw)

    # --- access -----------------------------------------------------------------------

    def element(self, key):
        """The :class:`Element` description of one element."""
        raw = _lib.ElementInfo()
        raw.version = _lib.ElementInfo.VERSION
        lib.fdn_dataset_get_element(ctypes.byref(raw), self._handle(), _path(key))
        return _element_tuple(raw)

    def __contains__(self, key):
        return lib.fdn_dataset_contains(self._handle(), _path(key)) == 1

    def __getitem__(self, key):
        path = _path(key)
        e = self.element(key)
        if e.vr == "SQ":
            return [Item(self, path + b"[%d]" % i) for i in range(e.vm)]
        if e.vr in _BYTES_VRS:
            return self.get_bytes(key)
        if e.vr in _INT_VRS or e.vr in _FLOAT_VRS:
            if e.vm == 0:
                return None
            getter = self.get_int if e.vr in _INT_VRS else self.get_number
            values = [getter(key, i) for i in range(e.vm)]
            return values[0] if e.vm == 1 else values
        text = self.get_string(key)
        if e.vr in ("AT",) or e.vm > 1:
            return text.split("\\")
        return text

    def get(self, key, default=None):
        try:
            return self[key]
        except errors.NotFoundError:
            return default

    def get_string(self, key):
        """The value as UTF-8 text (several values joined with a backslash)."""
        buf = _lib.Buf()
        lib.fdn_dataset_get_string(ctypes.byref(buf), self._handle(), _path(key))
        return _lib.take_buf(buf).decode("utf-8")

    def get_number(self, key, index=0):
        out = ctypes.c_double()
        lib.fdn_dataset_get_number(ctypes.byref(out), self._handle(), _path(key), index)
        return out.value

    def get_int(self, key, index=0):
        out = ctypes.c_int64()
        lib.fdn_dataset_get_int(ctypes.byref(out), self._handle(), _path(key), index)
        return out.value

    def get_bytes(self, key):
        """The raw value bytes (encapsulated Pixel Data: the fragments)."""
        buf = _lib.Buf()
        lib.fdn_dataset_get_bytes(ctypes.byref(buf), self._handle(), _path(key))
        return _lib.take_buf(buf)

    def elements(self, item=None, recursive=False):
        """The :class:`Element` list of the dataset or of one sequence item
        (``item="Seq[0]"``), optionally descending into sequences."""
        found = []

        def visit(info, payload):
            found.append(_element_tuple(info.contents))
            return 0

        cb = _lib.ELEMENT_CB(errors.guard(visit, errors.EUSER))
        lib.fdn_dataset_foreach(self._handle(), _enc(item), FOREACH_RECURSIVE if recursive else 0,
                                cb, None)
        return found

    def keys(self):
        return [e.keyword or e.path for e in self.elements()]

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self.elements())

    # --- modification ---------------------------------------------------------------

    def __setitem__(self, key, value):
        if isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError("bytes need a VR: use set_bytes(key, vr, data)")
        if isinstance(value, (list, tuple)):
            value = "\\".join(str(v) for v in value)
        elif isinstance(value, float):
            value = repr(value)
        lib.fdn_dataset_set_string(self._handle(), _path(key), str(value).encode("utf-8"))

    def set_bytes(self, key, vr, data):
        """Sets raw bytes with an explicit VR (private tags, Pixel Data)."""
        data = bytes(data)
        lib.fdn_dataset_set_bytes(self._handle(), _path(key), _enc(vr), data, len(data))

    def __delitem__(self, key):
        lib.fdn_dataset_remove(self._handle(), _path(key))

    # --- output -------------------------------------------------------------------------

    def write(self, path):
        """Writes a Part 10 file atomically."""
        lib.fdn_dataset_write_file(self._handle(), os.fsencode(path), 0)

    def to_bytes(self):
        """The dataset as a Part 10 byte string."""
        buf = _lib.Buf()
        lib.fdn_dataset_write_buffer(ctypes.byref(buf), self._handle(), 0)
        return _lib.take_buf(buf)

    def to_json(self, pretty=False, skip_binary=False):
        """The DICOM JSON Model (PS3.18 F.2) text."""
        buf = _lib.Buf()
        flags = (JSON_PRETTY if pretty else 0) | (JSON_SKIP_BINARY if skip_binary else 0)
        lib.fdn_dataset_to_json(ctypes.byref(buf), self._handle(), flags)
        return _lib.take_buf(buf).decode("utf-8")

    def __repr__(self):
        if not self._ptr:
            return "<fednode.Dataset (closed)>"
        return f"<fednode.Dataset {self.source or 'in memory'} {self.transfer_syntax}>"


def _element_tuple(raw):
    return Element(raw.tag, raw.vr.decode(), raw.length, raw.vm, raw.depth,
                   raw.path.decode("utf-8"), raw.keyword.decode() if raw.keyword else None)


def _info_tuple(raw):
    values = [getattr(raw, n).decode("utf-8") for n in _lib.InstanceInfo.STRINGS]
    values += [raw.series_number, raw.instance_number, raw.rows, raw.columns, raw.frames,
               raw.burned_in_annotation, raw.recognizable_visual_features, raw.file_size]
    return InstanceInfo(*values)


def scan(root, on_instance=None, on_progress=None, on_skip=None, workers=0,
         header_only=True, follow_symlinks=True, progress_interval=0.25, cancel=None,
         summary=False):
    """Scans a folder tree (or one file) for DICOM instances.

    ``on_instance(path, dataset, info)`` gets each instance; the
    :class:`Dataset` is lent for the duration of the call (``clone()`` it
    to keep it).  ``on_skip(path, code, reason)`` gets files that were not
    instances; ``on_progress(progress)`` a :class:`fednode.Progress`-like
    tuple.  ``summary=True`` reads only what ``info`` reports (fastest).  All callbacks run on the calling thread; an exception in one
    stops the scan and is re-raised here.  ``cancel`` is a
    :class:`fednode.CancelToken`.  Returns :class:`ScanStats`.
    """
    from . import Progress  # the package defines it

    opts = _lib.ScanOptions()
    lib.fdn_scan_options_init(ctypes.byref(opts), _lib.ScanOptions.VERSION)
    opts.read_flags = READ_SUMMARY if summary else READ_HEADER_ONLY if header_only else READ_FULL
    opts.workers = workers
    opts.follow_symlinks = 1 if follow_symlinks else 0
    opts.progress_interval = progress_interval
    keep = []

    if on_instance:
        def instance(path, ds_ptr, info, payload):
            ds = Dataset(ctypes.c_void_p(ds_ptr), owned=False)
            try:
                rc = on_instance(os.fsdecode(path), ds, _info_tuple(info.contents))
            finally:
                ds._ptr = ctypes.c_void_p()  # lent only for the call
            return rc or 0
        opts.on_instance = _lib.SCAN_INSTANCE_CB(errors.guard(instance, errors.EUSER))
        keep.append(opts.on_instance)
    if on_skip:
        def skip(path, code, reason, payload):
            return on_skip(os.fsdecode(path), code, reason.decode("utf-8", "replace")) or 0
        opts.on_skip = _lib.SCAN_SKIP_CB(errors.guard(skip, errors.EUSER))
        keep.append(opts.on_skip)
    if on_progress:
        def progress(p, payload):
            return on_progress(Progress.from_c(p.contents)) or 0
        opts.on_progress = _lib.PROGRESS_CB(errors.guard(progress, errors.EUSER))
        keep.append(opts.on_progress)
    if cancel is not None:
        opts.cancel = cancel._handle()
    stats = _lib.ScanStats()
    stats.version = _lib.ScanStats.VERSION
    lib.fdn_scan(ctypes.byref(stats), os.fsencode(root), ctypes.byref(opts))
    return ScanStats(stats.files, stats.instances, stats.not_dicom, stats.dicomdirs,
                     stats.errors, stats.bytes, stats.elapsed)
