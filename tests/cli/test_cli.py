"""The fednode command-line tool: subcommand framework, `version`, `dump`
(text and DICOM JSON, cross-checked with pydicom's to_json_dict()) and
`scan` (summary counts, error listing, progress on a terminal, Ctrl-C)."""
import base64
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import time

import pytest

CLI = os.environ.get("FEDNODE_CLI")
pytestmark = pytest.mark.skipif(not CLI, reason="FEDNODE_CLI not set")


def run(*args):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60)


def test_version():
    r = run("version")
    assert r.returncode == 0
    assert r.stdout.startswith("fednode 1.")
    assert "libfednode 1." in r.stdout
    assert r.stderr == ""


def test_no_command_is_usage_error():
    r = run()
    assert r.returncode == 2
    assert "usage: fednode" in r.stderr


def test_unknown_command_and_option():
    r = run("frobnicate")
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr
    r = run("--frob", "version")
    assert r.returncode == 2 and "unknown option '--frob'" in r.stderr


@pytest.mark.parametrize("args", [("--help",), ("-h",), ("help",)])
def test_top_level_help_lists_every_command(args):
    r = run(*args)
    assert r.returncode == 0
    assert "Commands:" in r.stdout and "version" in r.stdout


@pytest.mark.parametrize("args", [("version", "--help"), ("help", "version"), ("version", "-h")])
def test_subcommand_help(args):
    r = run(*args)
    assert r.returncode == 0
    assert r.stdout.startswith("usage: fednode version")


def test_every_listed_command_has_help():
    listing = run("--help").stdout.split("Commands:")[1].split("\n\n")[0]
    names = [line.split()[0] for line in listing.strip().splitlines()]
    assert names
    for name in names:
        r = run(name, "--help")
        assert r.returncode == 0 and r.stdout.startswith(f"usage: fednode {name}"), name


def test_verbose_shows_library_log():
    r = run("-v", "version")
    assert r.returncode == 0
    assert "[core] libfednode" in r.stderr and "initialised" in r.stderr


def test_extra_argument_refused():
    r = run("version", "extra")
    assert r.returncode == 2 and "unexpected argument" in r.stderr


# ---------------------------------------------------------------------------
# DICOM files for `dump` and `scan`, written with pydicom.

try:
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import (DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian,
                             ExplicitVRLittleEndian, ImplicitVRLittleEndian)
except ImportError:  # the version and help tests still run
    pydicom = None

needs_pydicom = pytest.mark.skipif(pydicom is None, reason="pydicom not installed")

UID_ROOT = "1.2.826.0.1.3680043.2.1125.88."
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
YAMADA = "Yamada^Tarou=山田^太郎=やまだ^たろう"
LONG_TEXT = "0123456789" * 10


def save(ds, path, ts=None):
    """Writes @ds as a Part 10 file in transfer syntax @ts."""
    ts = ts or ExplicitVRLittleEndian
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.is_little_endian = ts != ExplicitVRBigEndian
    ds.is_implicit_VR = ts == ImplicitVRLittleEndian
    ds.save_as(str(path), write_like_original=False)
    return path


def rich_dataset():
    """One element of most VRs, PN with three groups, nested sequences,
    empty values, multi-values, private elements and Pixel Data."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CT_IMAGE
    ds.SOPInstanceUID = UID_ROOT + "1.1.1"
    ds.StudyDate = "20240131"
    ds.StudyTime = "120000.5"
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.RetrieveAETitle = "STORESCP"
    ds.ReferringPhysicianName = "Müller^Hans^^Dr."
    ds.NameOfPhysiciansReadingStudy = ["Doe^John", "Roe^Jane"]
    ds.PatientName = YAMADA
    ds.PatientID = "PID-1"
    ds.PatientAge = "061Y"
    ds.PatientOrientation = ["A", "", "F"]
    ds.StudyInstanceUID = UID_ROOT + "1"
    ds.SeriesInstanceUID = UID_ROOT + "1.1"
    ds.InstanceNumber = "12"
    ds.ReferencedFrameNumber = [1, 2, 3]
    ds.SliceThickness = "0.6"
    ds.PixelSpacing = [0.5, 0.625]
    ds.RescaleIntercept = "-1024"
    ds.ImageComments = "first line\r\nsecond line"
    ds.AdditionalPatientHistory = LONG_TEXT
    ds.DerivationDescription = "C:\\one\\value"
    ds.FrameIncrementPointer = 0x00181063
    ds.Rows = 2
    ds.Columns = 2
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    code = Dataset()
    code.CodeValue = "121320"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Uncompressed predecessor"
    source = Dataset()
    source.ReferencedSOPClassUID = CT_IMAGE
    source.ReferencedSOPInstanceUID = UID_ROOT + "9"
    source.PurposeOfReferenceCodeSequence = Sequence([code])
    ds.SourceImageSequence = Sequence([source, Dataset()])
    ds.ReferencedImageSequence = Sequence([])
    ds.add_new(0x00290010, "LO", "FEDNODE TEST")
    ds.add_new(0x00291001, "OB", bytes(range(40)))
    ds.add_new(0x00291002, "FL", [1.5, 0.1])
    ds.add_new(0x00291003, "FD", [0.1 + 0.2, -1e-300])
    ds.add_new(0x00291004, "SS", [-32768, 32767])
    ds.add_new(0x00291005, "UL", [0, 4294967295])
    ds.add_new(0x00291006, "SL", [-2147483648, 7])
    ds.add_new(0x00291007, "UV", [1, 2 ** 60])
    ds.add_new(0x00291008, "SV", [-(2 ** 62), -5])
    ds.add_new(0x00291009, "OF", b"\x00\x00\x80\x3f")
    ds.PixelData = b"\x00\x00\x01\x00\x02\x00\x03\x00"
    ds["PixelData"].VR = "OW"
    return ds


def instance(patient, study, series, number, modality="CT"):
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE
    ds.SOPInstanceUID = f"{UID_ROOT}{study}.{series}.{number}"
    ds.PatientID = patient
    ds.PatientName = f"Patient^{patient}"
    ds.StudyInstanceUID = f"{UID_ROOT}{study}"
    ds.SeriesInstanceUID = f"{UID_ROOT}{study}.{series}"
    ds.InstanceNumber = number
    if modality:
        ds.Modality = modality
    return ds


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    if pydicom is None:
        pytest.skip("pydicom not installed")
    d = tmp_path_factory.mktemp("dicom")
    paths = {ts: save(rich_dataset(), d / f"rich-{ts}.dcm", ts) for ts in (
        ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian,
        DeflatedExplicitVRLittleEndian)}
    paths["rich"] = paths[ExplicitVRLittleEndian]
    (d / "text.txt").write_text("hello, this is not DICOM at all\n")
    paths["text"] = d / "text.txt"
    # Text not valid in the declared character set (UTF-8).
    bad = rich_dataset()
    bad.PatientID = "badXY"
    raw = save(bad, d / "tmp.dcm").read_bytes().replace(b"badXY", b"bad\xff\xfe")
    (d / "bad-charset.dcm").write_bytes(raw)
    paths["bad-charset"] = d / "bad-charset.dcm"
    return paths


def lines_with(text, needle):
    return [line for line in text.splitlines() if needle in line]


# ---------------------------------------------------------------------------
# fednode dump


def test_dump_text(files):
    r = run("dump", str(files["rich"]))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    out = r.stdout
    assert out.startswith(f"# File: {files['rich']}\n")
    assert "# Transfer Syntax: 1.2.840.10008.1.2.1 (Explicit VR Little Endian)" in out
    # One element per line: values never break the layout.
    for line in out.splitlines():
        assert line.startswith(("# ", "(")) or line.lstrip().startswith(("(", "item [")), line
    [pn] = lines_with(out, "(0010,0010)")
    assert pn.startswith("(0010,0010) PN PatientName ")
    assert f"[{YAMADA}]" in pn and pn.endswith("# VM 1, 46 bytes")
    assert "[ORIGINAL\\PRIMARY\\AXIAL]  # VM 3," in lines_with(out, "(0008,0008)")[0]
    assert "(no value)  # VM 0, 0 bytes" in lines_with(out, "(0008,0050) SH AccessionNumber")[0]
    assert "[first line\\r\\nsecond line]" in lines_with(out, "(0020,4000)")[0]
    # Long text is cut, the length still says it all.
    [lt] = lines_with(out, "(0010,21B0)")
    assert f"[{LONG_TEXT[:64]}...]" in lt and lt.endswith("# VM 1, 100 bytes")
    # Binary: the first bytes in hex and the length.
    [ob] = lines_with(out, "(0029,1001)")
    assert ob.startswith("(0029,1001) OB (private) ")
    assert "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f ... (40 bytes)" in ob
    assert "[FEDNODE TEST]" in lines_with(out, "(0029,0010) LO PrivateCreator")[0]
    assert "00 00 01 00 02 00 03 00 (8 bytes)" in lines_with(out, "(7FE0,0010) OW PixelData")[0]
    assert "[1\\1152921504606846976]" in lines_with(out, "(0029,1007) UV")[0]


def test_dump_text_nests_sequences(files):
    out = run("dump", str(files["rich"])).stdout.splitlines()
    start = out.index(next(l for l in out if l.startswith("(0008,2112) SQ SourceImageSequence")))
    assert "(2 items)" in out[start]
    assert out[start + 1] == "  item [0]"
    assert out[start + 2].startswith("  (0008,1150) UI ReferencedSOPClassUID")
    assert out[start + 4].startswith("  (0040,A170) SQ PurposeOfReferenceCodeSequence")
    assert out[start + 5] == "    item [0]"
    assert out[start + 6].startswith("    (0008,0100) SH CodeValue")
    assert "[121320]" in out[start + 6]
    assert out[start + 9] == "  item [1]"
    assert out[start + 10].startswith("(0010,0010)")  # back at the top level
    assert "(0 items)  # VM 0" in next(l for l in out if "ReferencedImageSequence" in l)


def test_dump_header_only(files):
    full = run("dump", str(files["rich"]))
    head = run("dump", "--header-only", str(files["rich"]))
    assert head.returncode == 0
    assert "\n(7FE0,0010) OW PixelData" in full.stdout
    assert "\n(7FE0,0010)" not in head.stdout
    assert "# Header only" in head.stdout and "# Header only" not in full.stdout
    assert "(0029,1009) OF" in head.stdout


@pytest.mark.parametrize("ts", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.2",
                                "1.2.840.10008.1.2.1.99"])
def test_dump_other_transfer_syntaxes(files, ts):
    r = run("dump", str(files[ts]))
    assert r.returncode == 0, r.stderr
    assert f"# Transfer Syntax: {ts} (" in r.stdout
    assert f"[{YAMADA}]" in r.stdout
    assert "[121320]" in r.stdout


def test_dump_json(files):
    r = run("dump", "--json", str(files["rich"]))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('{\n  "00080005": {\n    "vr": "CS",')
    doc = json.loads(r.stdout)
    assert list(doc) == sorted(doc)
    assert doc["00100010"] == {"vr": "PN", "Value": [{
        "Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎",
        "Phonetic": "やまだ^たろう"}]}
    assert doc["00080050"] == {"vr": "SH"}
    assert doc["00200020"]["Value"] == ["A", None, "F"]
    assert doc["00180050"]["Value"] == [0.6]
    assert doc["00081160"]["Value"] == [1, 2, 3]
    assert doc["00082111"]["Value"] == ["C:\\one\\value"]
    assert doc["00280009"]["Value"] == ["00181063"]
    assert doc["00291002"]["Value"] == [1.5, 0.1]
    assert doc["00291007"]["Value"] == [1, "1152921504606846976"]
    assert doc["00291001"] == {
        "vr": "OB", "InlineBinary": base64.b64encode(bytes(range(40))).decode()}
    source = doc["00082112"]["Value"]
    assert len(source) == 2 and source[1] == {}
    code = source[0]["0040A170"]["Value"][0]
    assert code["00080100"] == {"vr": "SH", "Value": ["121320"]}
    assert doc["00081140"] == {"vr": "SQ"}


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


WORD_SIZE = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def comparable(doc, swap_words=False):
    """A DICOM JSON document with the forms in which pydicom's
    to_json_dict() and fdn_dataset_to_json() legitimately differ made
    equal: group lengths (the model leaves them out, pydicom does not), an
    empty sequence (no "Value" / "Value": []), an empty value among
    several (null / ""), empty PN groups, UV/SV beyond 2^53 (strings /
    numbers), FL (shortest decimal of the float / the float as a double),
    and words of big-endian files (little endian / as stored)."""
    out = {}
    for key, attr in doc.items():
        if key.endswith("0000"):
            continue
        attr = dict(attr)
        vr = attr["vr"]
        if vr == "SQ":
            items = [comparable(item, swap_words) for item in attr.pop("Value", [])]
            if items:
                attr["Value"] = items
        elif "Value" in attr:
            attr["Value"] = [comparable_value(vr, v) for v in attr["Value"]]
        elif swap_words and vr in WORD_SIZE and "InlineBinary" in attr:
            raw, n = base64.b64decode(attr["InlineBinary"]), WORD_SIZE[vr]
            raw = b"".join(raw[i:i + n][::-1] for i in range(0, len(raw), n))
            attr["InlineBinary"] = base64.b64encode(raw).decode()
        out[key] = attr
    return out


def comparable_value(vr, v):
    if v == "" or v is None:
        return None
    if vr == "PN":
        return {group: name for group, name in v.items() if name}
    if vr in ("UV", "SV"):
        return int(v)
    if vr == "FL":
        return f32(v)
    return v


@needs_pydicom
@pytest.mark.parametrize("ts", ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2",
                                "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"])
def test_dump_json_matches_pydicom(files, ts):
    r = run("dump", "--json", str(files[ts]))
    assert r.returncode == 0, r.stderr
    ours = json.loads(r.stdout)
    theirs = pydicom.dcmread(str(files[ts])).to_json_dict()
    big_endian = ts == "1.2.840.10008.1.2.2"
    assert comparable(ours) == comparable(theirs, swap_words=big_endian)


@needs_pydicom
def test_dump_json_matches_pydicom_nested_and_names(tmp_path):
    """Deeper nesting, several names per element, a private sequence."""
    ds = instance("PID-7", 7, 1, 1)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.NameOfPhysiciansReadingStudy = ["Doe^John", "=山田^太郎", "Roe^Jane^^^=ロー=ろー"]
    level = ds
    for depth in range(4):
        item = Dataset()
        item.CodeValue = f"C{depth}"
        item.CodeMeaning = f"level {depth} — ünïcode"
        level.ConceptNameCodeSequence = Sequence([item, Dataset()])
        level = item
    private_item = Dataset()
    private_item.add_new(0x00091010, "LO", "inside")
    ds.add_new(0x00090010, "LO", "FEDNODE SQ")
    ds.add_new(0x00091001, "SQ", Sequence([private_item]))
    path = save(ds, tmp_path / "nested.dcm")
    ours = json.loads(run("dump", "--json", str(path)).stdout)
    assert comparable(ours) == comparable(pydicom.dcmread(str(path)).to_json_dict())
    names = ours["00081060"]["Value"]
    assert names[1] == {"Ideographic": "山田^太郎"}
    assert names[2] == {"Alphabetic": "Roe^Jane^^^", "Ideographic": "ロー", "Phonetic": "ろー"}
    deepest = ours
    for depth in range(4):
        deepest = deepest["0040A043"]["Value"][0]
    assert deepest["00080100"]["Value"] == ["C3"]


@needs_pydicom
def test_dump_json_leaves_out_group_length(files, tmp_path):
    raw = files["rich"].read_bytes()
    at = raw.index(b"\x20\x00\x0d\x00UI")
    raw = raw[:at] + b"\x20\x00\x00\x00UL\x04\x00" + struct.pack("<I", 0) + raw[at:]
    path = tmp_path / "group-length.dcm"
    path.write_bytes(raw)
    assert "00200000" in pydicom.dcmread(str(path)).to_json_dict()
    assert "00200000" not in json.loads(run("dump", "--json", str(path)).stdout)
    assert "(0020,0000) UL GroupLength" in run("dump", str(path)).stdout


@needs_pydicom
def test_dump_encapsulated_pixel_data(tmp_path):
    """Compressed Pixel Data is shown, not decoded; in JSON it has "vr" only,
    as its fragments cannot be told apart through the library's API."""
    from pydicom.encaps import encapsulate
    ds = instance("PID-9", 9, 1, 1)
    ds.PixelData = encapsulate([b"\xff\xd8frame-one\xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    path = save(ds, tmp_path / "jpeg.dcm", "1.2.840.10008.1.2.4.50")
    r = run("dump", str(path))
    assert r.returncode == 0, r.stderr
    assert "(JPEG Baseline)" in r.stdout
    [pixels] = lines_with(r.stdout, "(7FE0,0010) OB PixelData")
    assert "encapsulated: ff d8 66 72" in pixels and pixels.endswith("undefined length")
    doc = json.loads(run("dump", "--json", str(path)).stdout)
    assert doc["7FE00010"] == {"vr": "OB"}


def test_dump_missing_file(tmp_path):
    missing = tmp_path / "no-such-file.dcm"
    for args in (("dump", str(missing)), ("dump", "--json", str(missing))):
        r = run(*args)
        assert r.returncode == 1
        assert str(missing) in r.stderr and "not found" in r.stderr
        assert r.stdout == ""


def test_dump_not_dicom(files):
    r = run("dump", str(files["text"]))
    assert r.returncode == 1
    assert "not a DICOM file" in r.stderr and str(files["text"]) in r.stderr


def test_dump_bad_value_is_shown_and_fails(files):
    r = run("dump", str(files["bad-charset"]))
    assert r.returncode == 1
    assert "<error: " in lines_with(r.stdout, "(0010,0020)")[0]
    assert "[Yamada^Tarou" in r.stdout  # the rest is still shown
    assert "1 value could not be read" in r.stderr
    r = run("dump", "--json", str(files["bad-charset"]))
    assert r.returncode == 1 and r.stdout == ""
    assert "malformed data" in r.stderr


@pytest.mark.parametrize("args, message", [
    (("dump",), "no FILE given"),
    (("dump", "--jsn", "x.dcm"), "unknown option '--jsn'"),
    (("dump", "a.dcm", "b.dcm"), "unexpected argument 'b.dcm'"),
])
def test_dump_usage_errors(args, message):
    r = run(*args)
    assert r.returncode == 2
    assert message in r.stderr and "usage: fednode dump" in r.stderr


@pytest.mark.parametrize("command", ["dump", "scan"])
def test_dump_and_scan_help(command):
    for args in ((command, "--help"), ("help", command), (command, "-h", "whatever")):
        r = run(*args)
        assert r.returncode == 0
        assert r.stdout.startswith(f"usage: fednode {command} ")
    assert command in run("--help").stdout


# ---------------------------------------------------------------------------
# fednode scan

# (folder, patient, study, series, instances, modality, transfer syntax)
TREE = [
    ("p1/st1/se1", "P1", 1, 1, 3, "CT", None),
    ("p1/st1/se2", "P1", 1, 2, 2, "CT", "1.2.840.10008.1.2"),
    ("p1/st2/se1", "P1", 2, 1, 2, "MR", None),
    ("p2/st3/se1", "P2", 3, 1, 1, "CT", "1.2.840.10008.1.2.2"),
    ("p3/st4/se1", "P3", 4, 1, 1, "SR", "1.2.840.10008.1.2.1.99"),
    ("p4/st5/se1", "P4", 5, 1, 1, None, None),
]
# modality: (patients, studies, series, instances)
EXPECTED = {
    "(none)": (1, 1, 1, 1),
    "CT": (2, 2, 3, 6),
    "MR": (1, 1, 1, 2),
    "SR": (1, 1, 1, 1),
    "all": (4, 5, 6, 10),
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    if pydicom is None:
        pytest.skip("pydicom not installed")
    root = tmp_path_factory.mktemp("tree")
    for folder, patient, study, series, count, modality, ts in TREE:
        (root / folder).mkdir(parents=True)
        for n in range(1, count + 1):
            save(instance(patient, study, series, n, modality), root / folder / f"{n}.dcm", ts)
    (root / "misc").mkdir()
    (root / "misc" / "readme.txt").write_text("not DICOM\n")
    (root / "misc" / "empty").write_bytes(b"")
    whole = (root / "p1/st1/se1/1.dcm").read_bytes()
    (root / "misc" / "cut.dcm").write_bytes(whole[:len(whole) - 7])
    return root


def table(out):
    """The per-modality rows of the summary: {modality: (patients, ...)}."""
    rows = {}
    for line in out.split("  modality ")[1].split("\n\n")[0].splitlines()[1:]:
        m = re.fullmatch(r"  (\S+) +(\d+) +(\d+) +(\d+) +(\d+)", line)
        assert m, line
        rows[m.group(1)] = tuple(int(g) for g in m.groups()[1:])
    return rows


def field(out, name):
    m = re.search(rf"^  {name} +(\d+)", out, re.M)
    assert m, name
    return int(m.group(1))


def test_scan_summary(tree):
    r = run("scan", str(tree))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no progress line when stderr is not a terminal
    out = r.stdout
    assert out.startswith(f"Scan of {tree}\n")
    assert field(out, "files examined") == 13
    assert field(out, "DICOM instances") == 10
    assert field(out, "not DICOM") == 2
    assert field(out, "errors") == 1
    assert re.search(r"^  elapsed +\d+\.\d\d s \(\d+ files/s\)$", out, re.M)
    assert table(out) == EXPECTED
    errors = out.split("Errors (1):\n")[1].splitlines()
    assert len(errors) == 1
    assert errors[0].startswith(f"  {tree / 'misc' / 'cut.dcm'}: ")
    assert "offset" in errors[0]


@pytest.mark.parametrize("args", [("--full",), ("--workers", "1"), ("--workers=3", "--quiet")])
def test_scan_options_same_counts(tree, args):
    r = run("scan", *args, str(tree))
    assert r.returncode == 0, r.stderr
    assert table(r.stdout) == EXPECTED
    assert field(r.stdout, "errors") == 1


def test_scan_lists_first_20_errors(tmp_path):
    # A File Meta element whose length runs past the end of the file.
    cut = b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\x00"
    for i in range(25):
        (tmp_path / f"bad{i:02}.dcm").write_bytes(cut)
    r = run("scan", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert field(r.stdout, "errors") == 25
    listed = r.stdout.split("Errors (25):\n")[1].splitlines()
    assert len(listed) == 21
    assert all(line.startswith(f"  {tmp_path}/bad") for line in listed[:20])
    assert listed[20] == "  ... and 5 more"
    assert "modality" not in r.stdout  # no instances, no table


@pytest.mark.parametrize("args, message", [
    (("scan",), "no DIR given"),
    (("scan", "--workers", "many", "d"), "--workers needs a number"),
    (("scan", "--workers"), "--workers needs a number"),
    (("scan", "--workers=-1", "d"), "--workers needs a number"),
    (("scan", "--fast", "d"), "unknown option '--fast'"),
    (("scan", "d1", "d2"), "unexpected argument 'd2'"),
])
def test_scan_usage_errors(args, message):
    r = run(*args)
    assert r.returncode == 2
    assert message in r.stderr and "usage: fednode scan" in r.stderr


def test_scan_missing_folder(tmp_path):
    r = run("scan", str(tmp_path / "nowhere"))
    assert r.returncode == 1
    assert str(tmp_path / "nowhere") in r.stderr and "not found" in r.stderr
    assert r.stdout == ""


def read_available(fd, timeout):
    data = b""
    while select.select([fd], [], [], timeout)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the other end is closed
            break
        if not chunk:
            break
        data += chunk
    return data


def interrupt_scan(one, big):
    """Scans 40,000 copies of @one with stderr on a terminal, and sends
    SIGINT once the progress line shows.  Returns stdout, what the
    terminal received and the exit status."""
    # Hard links: many files to read, next to nothing to write.
    for i in range(40000):
        os.link(one, big / f"{i}.dcm")
    master, slave = pty.openpty()
    proc = subprocess.Popen([CLI, "scan", "--workers", "1", str(big)],
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen, deadline = b"", time.monotonic() + 60
    while b"files/s" not in seen and time.monotonic() < deadline and proc.poll() is None:
        seen += read_available(master, 0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    seen += read_available(master, 0.5)
    os.close(master)
    return out, seen, proc.returncode


@needs_pydicom
def test_scan_progress_and_ctrl_c(tree, tmp_path):
    """On a terminal the progress line is drawn on stderr and erased; Ctrl-C
    cancels the scan, prints the partial summary and exits with 130."""
    big = tmp_path / "big"
    big.mkdir()
    try:
        out, seen, returncode = interrupt_scan(tree / "p1/st1/se1/1.dcm", big)
    finally:
        shutil.rmtree(big)
    assert b"files/s" in seen, seen
    assert returncode == 130, (out, seen)
    out = out.decode()
    assert out.startswith(f"Scan of {big} (interrupted: partial results)\n")
    done = field(out, "DICOM instances")
    assert 0 < done < 40000
    assert table(out)["CT"] == (1, 1, 1, done)
    # The last progress line is erased before the closing message.
    assert seen.rstrip().endswith(b"\r\x1b[Kfednode scan: interrupted")


@needs_pydicom
def test_scan_progress_on_terminal_is_erased(tree):
    master, slave = pty.openpty()
    proc = subprocess.Popen([CLI, "scan", str(tree)], stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    out, _ = proc.communicate(timeout=60)
    seen = read_available(master, 0.5)
    os.close(master)
    assert proc.returncode == 0
    # The last call reports the whole walk: a full bar, then it is erased.
    assert re.search(rb"\[#{24}\] 100%  13/13 files  [\d.]+ MB  \d+ files/s  1 error", seen), seen
    assert seen.endswith(b"\r\x1b[K")
    assert table(out.decode()) == EXPECTED
    # --quiet: nothing on the terminal.
    master, slave = pty.openpty()
    proc = subprocess.Popen([CLI, "scan", "--quiet", str(tree)], stdout=subprocess.PIPE,
                            stderr=slave)
    os.close(slave)
    proc.communicate(timeout=60)
    assert read_available(master, 0.5) == b""
    os.close(master)


# ---------------------------------------------------------------------------
# `deid`: site keys, pseudonyms, file and tree modes, refusals.

def deid_instance(patient, number, burned_in="NO", modality="CT"):
    ds = instance(patient, 7, 1, number, modality)
    ds.PatientName = f"Smithson^{patient}"
    ds.PatientBirthDate = "19610302"
    ds.InstitutionName = "Springfield General"
    ds.StudyDate = "20240110"
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    return ds


@pytest.fixture
def key(tmp_path):
    path = tmp_path / "site.key"
    r = run("deid", "--init-key", str(path))
    assert r.returncode == 0, r.stderr
    return path


def test_deid_init_key(tmp_path):
    path = tmp_path / "site.key"
    r = run("deid", "--init-key", str(path))
    assert r.returncode == 0, r.stderr
    assert str(path) in r.stdout
    st = os.stat(path)
    assert st.st_mode & 0o777 == 0o600 and st.st_size == 32
    secret = path.read_bytes()
    r = run("deid", "--init-key", str(path))
    assert r.returncode == 1
    assert "already exists" in r.stderr and "never overwritten" in r.stderr
    assert path.read_bytes() == secret
    # The key is never printed, in any form.
    for text in (r.stdout + r.stderr, run("deid", "--init-key", str(tmp_path / "b")).stdout):
        assert secret.hex() not in text and base64.b64encode(secret).decode() not in text


def test_deid_missing_key_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope.key"
    r = run("deid", "--key-file", str(missing), str(tmp_path), str(tmp_path / "out"))
    assert r.returncode == 1
    assert f"no key file '{missing}'" in r.stderr
    assert f"fednode deid --init-key {missing}" in r.stderr
    assert not missing.exists() and not (tmp_path / "out").exists()  # never created silently
    r = run("deid", str(tmp_path), str(tmp_path / "out"))
    assert r.returncode == 2 and "--key-file" in r.stderr and "--init-key" in r.stderr


def test_deid_key_readable_by_others_refused(tmp_path, key):
    os.chmod(key, 0o644)
    r = run("deid", "--pseudonym", "P1", "--key-file", str(key))
    assert r.returncode == 1 and "chmod 600" in r.stderr


@pytest.mark.parametrize("args, message", [
    (("--option", "retain-everything"), "unknown de-identification option 'retain-everything'"),
    (("--frob",), "unknown option '--frob'"),
    (("--option",), "missing value"),
    (("--workers", "x"), "--workers needs a number"),
])
def test_deid_usage_errors(tmp_path, key, args, message):
    r = run("deid", "--key-file", str(key), str(tmp_path / "a"), str(tmp_path / "b"), *args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr


def test_deid_contradictory_options(tmp_path, key):
    r = run("deid", "--option", "retain-long-full-dates", "--option=retain-long-modified-dates",
            "--key-file", str(key), str(tmp_path), str(tmp_path / "out"))
    assert r.returncode == 1 and "exclude each other" in r.stderr


def test_deid_help():
    r = run("deid", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: fednode deid")
    for word in ("--init-key", "--pseudonym", "--key-file", "--allow-burned-in",
                 "retain-long-modified-dates", "clean-graphics", "--rules"):
        assert word in r.stdout, word
    assert "deid" in run("--help").stdout


@needs_pydicom
def test_deid_file(tmp_path, key):
    src = save(deid_instance("PAT-1", 1), tmp_path / "in.dcm")
    out = tmp_path / "out.dcm"
    r = run("deid", "--key-file", str(key), str(src), str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "de-identified     1" in r.stdout
    data = out.read_bytes()
    for phi in (b"Smithson", b"PAT-1", b"19610302", b"Springfield", UID_ROOT.encode()):
        assert phi not in data, phi
    ds = pydicom.dcmread(str(out))
    pseudonym = run("deid", "--pseudonym", "PAT-1", "--key-file", str(key)).stdout.strip()
    assert pseudonym.startswith("FDN-") and ds.PatientID == pseudonym
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.StudyInstanceUID.startswith("2.25.")
    # Options change the result.
    out2 = tmp_path / "out2.dcm"
    r = run("deid", "--option", "retain-institution-identity", "--option", "retain-uids",
            "--key-file", str(key), str(src), str(out2))
    assert r.returncode == 0, r.stderr
    ds2 = pydicom.dcmread(str(out2))
    assert ds2.InstitutionName == "Springfield General"
    assert ds2.StudyInstanceUID == f"{UID_ROOT}7"
    # OUT may not be IN.
    r = run("deid", "--key-file", str(key), str(src), str(src))
    assert r.returncode == 1


@needs_pydicom
def test_deid_rules_file(tmp_path, key):
    src = save(deid_instance("PAT-1", 1), tmp_path / "in.dcm")
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"tag": "InstitutionName", "action": "keep"}]}))
    r = run("deid", "--rules", str(rules), "--key-file", str(key), str(src),
            str(tmp_path / "o.dcm"))
    assert r.returncode == 0, r.stderr
    assert pydicom.dcmread(str(tmp_path / "o.dcm")).InstitutionName == "Springfield General"
    rules.write_text('{"rules": [{"tag": "PatientAge", "action": "zap"}]}')
    r = run("deid", "--rules", str(rules), "--key-file", str(key), str(src),
            str(tmp_path / "p.dcm"))
    assert r.returncode == 1 and "rule 0" in r.stderr
    assert not (tmp_path / "p.dcm").exists()


@needs_pydicom
def test_deid_tree(tmp_path, key):
    src = tmp_path / "in"
    (src / "a" / "b").mkdir(parents=True)
    save(deid_instance("PAT-1", 1), src / "a" / "1.dcm")
    save(deid_instance("PAT-1", 2), src / "a" / "b" / "2.dcm")
    save(deid_instance("PAT-2", 3), src / "3.dcm")
    save(deid_instance("PAT-3", 4, burned_in="YES"), src / "a" / "burned.dcm")
    save(deid_instance("PAT-4", 5, burned_in=None, modality="US"), src / "us.dcm")
    (src / "notes.txt").write_text("not DICOM\n")
    out = tmp_path / "out"
    r = run("deid", "--workers", "2", "--key-file", str(key), str(src), str(out))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "de-identified     3" in r.stdout
    assert "refused           2" in r.stdout
    assert "not DICOM         1" in r.stdout
    refused = r.stdout.split("Refused")[1]
    assert f"{src / 'a' / 'burned.dcm'}: Burned In Annotation (0028,0301) is YES" in refused
    assert str(src / "us.dcm") in refused and "'US'" in refused
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["3.dcm", "a/1.dcm", "a/b/2.dcm"]
    one, two, three = (pydicom.dcmread(str(out / p)) for p in ("a/1.dcm", "a/b/2.dcm", "3.dcm"))
    # One patient, one pseudonym and one study UID across files; shifted
    # or removed dates, never the original.
    assert one.PatientID == two.PatientID != three.PatientID
    assert one.StudyInstanceUID == two.StudyInstanceUID
    for p in out.rglob("*.dcm"):
        assert b"Smithson" not in p.read_bytes()
    # --allow-burned-in takes the refused ones too, and a rerun overwrites.
    r = run("deid", "--allow-burned-in", "--quiet", "--key-file", str(key), str(src), str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "de-identified     5" in r.stdout
    assert (out / "a" / "burned.dcm").exists() and (out / "us.dcm").exists()
    # OUT inside IN would read its own output.
    r = run("deid", "--key-file", str(key), str(src), str(src / "inner"))
    assert r.returncode == 1 and "contain each other" in r.stderr


@needs_pydicom
def test_deid_modified_dates_consistent(tmp_path, key):
    src = tmp_path / "in"
    src.mkdir()
    a, b = deid_instance("PAT-1", 1), deid_instance("PAT-1", 2)
    b.StudyDate = "20240120"
    save(a, src / "a.dcm")
    save(b, src / "b.dcm")
    out = tmp_path / "out"
    r = run("deid", "--option", "retain-long-modified-dates", "--key-file", str(key),
            str(src), str(out))
    assert r.returncode == 0, r.stderr
    import datetime

    def day(v):
        return datetime.date(int(v[:4]), int(v[4:6]), int(v[6:]))
    da, db = (pydicom.dcmread(str(out / n)).StudyDate for n in ("a.dcm", "b.dcm"))
    assert (day(db) - day(da)).days == 10
    assert 1 <= (day("20240110") - day(da)).days <= 3650


@needs_pydicom
def test_deid_not_dicom_file_fails(tmp_path, key):
    src = tmp_path / "x.txt"
    src.write_text("hello\n")
    r = run("deid", "--key-file", str(key), str(src), str(tmp_path / "o.dcm"))
    assert r.returncode == 1
    assert "not a DICOM instance" in r.stderr
    assert not (tmp_path / "o.dcm").exists()


@needs_pydicom
def test_deid_progress_on_terminal(tmp_path, key):
    src = tmp_path / "in"
    src.mkdir()
    for n in range(3):
        save(deid_instance("PAT-1", n), src / f"{n}.dcm")
    master, slave = pty.openpty()
    proc = subprocess.Popen([CLI, "deid", "--key-file", str(key), str(src),
                             str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    out, _ = proc.communicate(timeout=60)
    seen = read_available(master, 0.5)
    os.close(master)
    assert proc.returncode == 0, out
    assert b"3 files  3 de-identified  0 refused  0 errors" in seen, seen
    assert seen.endswith(b"\r\x1b[K")


# ---------------------------------------------------------------------------
# `import` and `registry`: scan → de-identify → register; stats, queries,
# labels, cohorts, consent withdrawal, manifests, audit log and its checks.

def registry_tree(root):
    """Two patients (three instances, two modalities), a burned-in image and
    a text file."""
    root.mkdir()
    save(deid_instance("PAT-1", 1), root / "1.dcm")
    save(deid_instance("PAT-1", 2), root / "2.dcm")
    mr = deid_instance("PAT-2", 3, modality="MR")
    mr.StudyInstanceUID = f"{UID_ROOT}8"
    mr.SeriesInstanceUID = f"{UID_ROOT}8.1"
    save(mr, root / "3.dcm")
    burned = deid_instance("PAT-3", 4, burned_in="YES")
    burned.StudyInstanceUID = f"{UID_ROOT}9"
    burned.SeriesInstanceUID = f"{UID_ROOT}9.1"
    save(burned, root / "burned.dcm")
    (root / "notes.txt").write_text("not DICOM\n")
    return root


def summary_count(out, name):
    m = re.search(rf"^  {name} +(\d+)$", out, re.M)
    assert m, (name, out)
    return int(m.group(1))


@pytest.fixture
def registry(tmp_path, key):
    """A registry holding the tree above: (registry folder, key, source)."""
    if pydicom is None:
        pytest.skip("pydicom not installed")
    src = registry_tree(tmp_path / "in")
    reg = tmp_path / "reg"
    r = run("import", "--create", "--registry", str(reg), "--key-file", str(key), str(src))
    assert r.returncode == 1, r.stdout + r.stderr  # the burned-in image is refused
    return reg, key, src, r


def reg(registry_dir, *args):
    return run("registry", str(registry_dir), *args)


@needs_pydicom
def test_import_counts_refusals_and_reimport(registry):
    regdir, key, src, r = registry
    for name, n in (("files examined", 5), ("imported", 3), ("already present", 0),
                    ("refused", 1), ("not DICOM", 1), ("errors", 0)):
        assert summary_count(r.stdout, name) == n, name
    refused = r.stdout.split("Refused")[1]
    assert f"{src / 'burned.dcm'}: Burned In Annotation (0028,0301) is YES" in refused
    # Again: nothing new, and without --create the registry must exist.
    r = run("import", "--registry", str(regdir), "--key-file", str(key), str(src / "1.dcm"),
            str(src / "2.dcm"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert summary_count(r.stdout, "imported") == 0
    assert summary_count(r.stdout, "already present") == 2
    # --allow-burned-in takes the refused one.
    r = run("import", "--allow-burned-in", "--quiet", "--registry", str(regdir),
            "--key-file", str(key), str(src))
    assert r.returncode == 0, r.stdout + r.stderr
    assert summary_count(r.stdout, "imported") == 1
    assert summary_count(r.stdout, "already present") == 3


@needs_pydicom
def test_import_missing_registry_names_create(tmp_path, key):
    src = registry_tree(tmp_path / "in")
    r = run("import", "--registry", str(tmp_path / "none"), "--key-file", str(key), str(src))
    assert r.returncode == 1 and "--create" in r.stderr
    assert not (tmp_path / "none" / "registry.db").exists()
    r = run("import", "--create", "--registry", str(tmp_path / "r"), "--key-file", str(key),
            str(tmp_path / "missing"))
    assert r.returncode == 1 and str(tmp_path / "missing") in r.stdout


@needs_pydicom
def test_import_progress_on_terminal(tmp_path, key):
    src = registry_tree(tmp_path / "in")
    master, slave = pty.openpty()
    proc = subprocess.Popen([CLI, "import", "--create", "--registry", str(tmp_path / "r"),
                             "--key-file", str(key), str(src)], stdout=subprocess.PIPE,
                            stderr=slave)
    os.close(slave)
    out, _ = proc.communicate(timeout=60)
    seen = read_available(master, 0.5)
    os.close(master)
    assert proc.returncode == 1, out
    assert b"5 files  3 imported  0 present  1 refused  0 errors" in seen, seen
    assert seen.endswith(b"\r\x1b[K")


@needs_pydicom
def test_registry_stats_query_label(registry):
    regdir, key, src, _ = registry
    r = reg(regdir, "stats")
    assert r.returncode == 0, r.stderr
    assert summary_count(r.stdout, "patients") == 2
    assert summary_count(r.stdout, "studies") == 2
    assert summary_count(r.stdout, "instances") == 3
    assert summary_count(r.stdout, "cohorts") == 0
    assert summary_count(r.stdout, "audit records") >= 3
    assert reg(regdir, "query", "modality = 'CT'").stdout.strip() == "2"
    assert reg(regdir, "query", "modality IN ('CT', 'MR')").stdout.strip() == "3"
    r = reg(regdir, "query", "modality = = 'CT'")
    assert r.returncode == 2 and "column" in r.stderr and "^" in r.stderr
    # Label the MR study (its de-identified UID, read back from the store).
    mr = [p for p in (regdir / "objects").rglob("*") if p.is_file()
          and pydicom.dcmread(str(p)).Modality == "MR"]
    assert len(mr) == 1
    study = pydicom.dcmread(str(mr[0])).StudyInstanceUID
    r = reg(regdir, "label", "study", study, "finding", "nodule")
    assert r.returncode == 0, r.stderr
    assert reg(regdir, "query", "label.finding = 'nodule'").stdout.strip() == "1"
    r = reg(regdir, "label", "study", "2.25.1", "finding", "x")
    assert r.returncode == 1 and "no study '2.25.1'" in r.stderr
    assert reg(regdir, "label", "planet", study, "k", "v").returncode == 2


@needs_pydicom
def test_registry_cohorts_withdraw_export(registry, tmp_path):
    regdir, key, src, _ = registry
    r = reg(regdir, "cohort", "list")
    assert r.returncode == 0 and "No cohorts" in r.stdout
    r = reg(regdir, "cohort", "create", "all", "modality IN ('CT', 'MR')")
    assert r.returncode == 0, r.stderr
    assert "3 members" in r.stdout
    snapshot = re.search(r"snapshot sha256 ([0-9a-f]{64})", r.stdout).group(1)
    assert reg(regdir, "cohort", "create", "all", "modality = 'CT'").returncode == 1
    r = reg(regdir, "cohort", "create", "ct", "modality = 'CT'")
    assert r.returncode == 0 and "2 members" in r.stdout
    r = reg(regdir, "cohort", "list")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()[1:]}
    assert rows["all"][1] == "3" and rows["all"][-1] == snapshot and rows["ct"][1] == "2"
    p1 = run("deid", "--pseudonym", "PAT-1", "--key-file", str(key)).stdout.strip()
    p2 = run("deid", "--pseudonym", "PAT-2", "--key-file", str(key)).stdout.strip()
    r = reg(regdir, "cohort", "show", "all")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(p1) == 2 and r.stdout.count(p2) == 1 and "3 members" in r.stdout
    # Withdraw PAT-2 by pseudonym and PAT-1 by the original ID.
    assert reg(regdir, "withdraw", p2).returncode == 2  # --reason is required
    r = reg(regdir, "withdraw", p2, "--reason", "letter of 2024-05-01")
    assert r.returncode == 0, r.stderr
    r = reg(regdir, "cohort", "show", "all")
    assert p2 not in r.stdout and r.stdout.count(p1) == 2
    r = reg(regdir, "withdraw", "PAT-1", "--key-file", str(key), "--reason", "phone call")
    assert r.returncode == 0, r.stderr
    assert "PAT-1" not in r.stdout and p1 in r.stdout
    r = reg(regdir, "cohort", "show", "all")
    assert p1 not in r.stdout and "0 members" in r.stdout
    assert summary_count(reg(regdir, "stats").stdout, "withdrawn") == 2
    r = reg(regdir, "withdraw", "NOBODY", "--reason", "x")
    assert r.returncode == 1 and "no patient NOBODY" in r.stderr
    # Manifests: to stdout and to a file.
    r = reg(regdir, "export", "all", "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["cohort"]["name"] == "all" and doc["members"] == []
    out = tmp_path / "m.csv"
    r = reg(regdir, "grant-not-a-command")
    assert r.returncode == 2
    r = reg(regdir, "export", "ct", "--format", "csv", "--output", str(out))
    assert r.returncode == 0 and r.stdout == "", r.stderr
    assert out.read_text().startswith("sop_instance_uid,")
    assert reg(regdir, "export", "ct", "--format", "xml").returncode == 2
    assert reg(regdir, "export", "nope").returncode == 1


@needs_pydicom
def test_registry_verify_audit_and_tamper(registry):
    import sqlite3
    regdir, key, src, _ = registry
    assert reg(regdir, "cohort", "create", "all", "modality != 'XX'").returncode == 0
    r = reg(regdir, "verify")
    assert r.returncode == 0 and "intact" in r.stdout, r.stdout + r.stderr
    r = reg(regdir, "audit")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["seq"] for x in records] == list(range(1, len(records) + 1))
    assert records[-1]["event"] == "cohort.create"
    r = reg(regdir, "audit", "--since", str(len(records)))
    assert [json.loads(line)["seq"] for line in r.stdout.splitlines()] == [len(records)]
    assert reg(regdir, "audit", "--since", "x").returncode == 2
    db = sqlite3.connect(str(regdir / "registry.db"))
    db.execute("UPDATE audit SET record = replace(record, 'cohort.create', 'cohort.crate') "
               "WHERE seq = ?", (len(records),))
    db.commit()
    db.close()
    r = reg(regdir, "verify")
    assert r.returncode == 1
    assert f"audit record {len(records)}" in r.stdout and "NOT intact" in r.stdout


def test_registry_usage_errors(tmp_path):
    for args in ((), (str(tmp_path),), (str(tmp_path), "frob"), (str(tmp_path), "cohort"),
                 (str(tmp_path), "cohort", "drop"), (str(tmp_path), "query"),
                 (str(tmp_path), "stats", "extra"), (str(tmp_path), "stats", "--purge"),
                 (str(tmp_path), "label", "study", "1.2", "k")):
        r = run("registry", *args)
        assert r.returncode == 2, (args, r.stderr)
        assert "fednode registry" in r.stderr
    r = run("registry", str(tmp_path / "none"), "stats")
    assert r.returncode == 1 and "no registry" in r.stderr
    for args in ((), ("--registry", "r"), ("--registry", "r", "--key-file", "k"),
                 ("--frob",), ("--option", "nope", "--registry", "r", "--key-file", "k", "p")):
        r = run("import", *args)
        assert r.returncode == 2, (args, r.stderr)


def test_import_and_registry_help():
    r = run("import", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: fednode import")
    for word in ("--registry", "--create", "--key-file", "--allow-burned-in", "--rules",
                 "--option", "already present"):
        assert word in r.stdout, word
    r = run("registry", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: fednode registry")
    for word in ("stats", "query FILTER", "label LEVEL UID KEY VALUE", "cohort create",
                 "cohort list", "cohort show", "withdraw PATIENT", "--purge", "export COHORT",
                 "verify", "audit [--since N]"):
        assert word in r.stdout, word
    top = run("--help").stdout
    assert "import" in top and "registry" in top


# --- push / pull ---------------------------------------------------------------


def test_push_pull_directory_store(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    url = f"file://{store}"
    src = tmp_path / "update.bin"
    src.write_bytes(os.urandom(300000))
    r = run("push", url, "fed-1/rounds/3/update-site-a.fdne", str(src))
    assert r.returncode == 0, r.stderr
    m = re.search(r"pushed 'fed-1/rounds/3/update-site-a.fdne': 300000 bytes, entity tag (\S+)",
                  r.stdout)
    assert m, r.stdout
    etag = m.group(1)
    assert (store / "fed-1" / "rounds" / "3" / "update-site-a.fdne").read_bytes() == \
        src.read_bytes()

    dst = tmp_path / "fetched.bin"
    r = run("pull", url, "fed-1/rounds/3/update-site-a.fdne", str(dst))
    assert r.returncode == 0, r.stderr
    assert dst.read_bytes() == src.read_bytes()
    assert f"entity tag {etag}" in r.stdout

    # Unchanged: nothing transferred, the file left alone.
    dst.write_bytes(b"local copy")
    r = run("pull", "--if-none-match", etag, url, "fed-1/rounds/3/update-site-a.fdne",
            str(dst))
    assert r.returncode == 0 and "not modified" in r.stdout, r.stdout + r.stderr
    assert dst.read_bytes() == b"local copy"
    # Changed: fetched.
    src.write_bytes(b"new round")
    assert run("push", url, "fed-1/rounds/3/update-site-a.fdne", str(src)).returncode == 0
    r = run("pull", f"--if-none-match={etag}", url, "fed-1/rounds/3/update-site-a.fdne",
            str(dst))
    assert r.returncode == 0 and "pulled" in r.stdout
    assert dst.read_bytes() == b"new round"


def test_push_pull_streams(tmp_path):
    url = f"file://{tmp_path}"
    data = os.urandom(100000)
    r = subprocess.run([CLI, "push", url, "s/obj", "-"], input=data, capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([CLI, "pull", url, "s/obj", "-"], capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout == data
    assert b"pulled 's/obj': 100000 bytes" in r.stderr


def test_push_pull_errors(tmp_path):
    url = f"file://{tmp_path}"
    src = tmp_path / "src"
    src.write_bytes(b"x")
    r = run("pull", url, "no/such/object", str(tmp_path / "out"))
    assert r.returncode == 1 and "no object 'no/such/object'" in r.stderr
    assert not (tmp_path / "out").exists()
    r = run("push", url, "../escape", str(src))
    assert r.returncode == 2 and "invalid key '../escape'" in r.stderr
    r = run("push", "http://example.org/store", "k", str(src))
    assert r.returncode == 1 and "http://" in r.stderr and "https://" in r.stderr
    r = run("push", f"file://{tmp_path}/missing", "k", str(src))
    assert r.returncode == 1 and "no such directory" in r.stderr
    r = run("push", url, "k")
    assert r.returncode == 2 and "needs URL KEY FILE" in r.stderr
    r = run("push", "--if-none-match", "x", url, "k", str(src))
    assert r.returncode == 2 and "unknown option" in r.stderr
    r = run("pull", "--ca", url, "k")
    assert r.returncode == 2
    r = run("push", "--ca", "/nonexistent/ca.pem", "https://127.0.0.1:9/store", "k",
            str(src))
    assert r.returncode == 1 and "/nonexistent/ca.pem" in r.stderr
# ---------------------------------------------------------------------------
# keygen, trust, seal, open, inspect


def run_env(*args, env=None, cwd=None):
    e = dict(os.environ)
    e.pop("FEDNODE_PASSPHRASE", None)
    e.update(env or {})
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60,
                          env=e, cwd=cwd)


@pytest.fixture
def nodes(tmp_path):
    """A coordinator (passphrase via the environment), a site (passphrase
    file) and a plain third node, each trusting the others."""
    (tmp_path / "pw").write_text("correct horse\n")
    r = run_env("keygen", "--id", "coord", "--out", str(tmp_path / "coord.key"),
                env={"FEDNODE_PASSPHRASE": "coord secret"})
    assert r.returncode == 0, r.stderr
    assert "passphrase-protected" in r.stdout and "fingerprint:" in r.stdout
    r = run_env("keygen", "--id", "site-a", "--out", str(tmp_path / "site-a.key"),
                "--passphrase-file", str(tmp_path / "pw"),
                "--public-out", str(tmp_path / "site-a.public"))
    assert r.returncode == 0, r.stderr
    assert str(tmp_path / "site-a.public") in r.stdout
    r = run_env("keygen", "--id", "site-b", cwd=tmp_path)
    assert r.returncode == 0 and "NOT passphrase-protected" in r.stdout
    assert (tmp_path / "site-b.key").exists() and (tmp_path / "site-b.key.pub").exists()
    trust = str(tmp_path / "trust.json")
    for pub, role in (("coord.key.pub", "coordinator"), ("site-a.public", "site"),
                      ("site-b.key.pub", "site")):
        r = run_env("trust", "add", "--trust", trust, "--role", role, str(tmp_path / pub))
        assert r.returncode == 0, r.stderr
    return tmp_path, trust


def test_keygen_never_overwrites(nodes):
    tmp, _ = nodes
    r = run_env("keygen", "--id", "site-b", cwd=tmp)
    assert r.returncode == 1 and "already exists" in r.stderr
    assert run_env("keygen").returncode == 2
    assert run_env("keygen", "--id", "x", "--passphrase", "oops").returncode == 2


def test_trust_list_remove(nodes):
    tmp, trust = nodes
    r = run_env("trust", "list", "--trust", trust)
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert len(lines) == 4 and "coordinator" in lines[1] and "site-a" in lines[2]
    r = run_env("trust", "add", "--trust", trust, "--role", "site", str(tmp / "site-a.public"))
    assert r.returncode == 1 and "already trusted" in r.stderr
    r = run_env("trust", "remove", "--trust", trust, "site-b")
    assert r.returncode == 0
    assert "site-b" not in run_env("trust", "list", "--trust", trust).stdout
    assert run_env("trust", "remove", "--trust", trust, "site-b").returncode == 1
    assert run_env("trust", "frob", "--trust", trust).returncode == 2
    assert run_env("trust", "add", "--trust", trust, "--role", "king",
                   str(tmp / "site-a.public")).returncode == 2


def seal_args(tmp, trust, *extra):
    return ["seal", "--identity", str(tmp / "coord.key"), "--trust", trust,
            "--kind", "global", "--federation", "lung", "--round", "3", *extra]


def open_args(tmp, trust, key="site-a.key", kind="global", round_="3", *extra):
    return ["open", "--identity", str(tmp / key), "--trust", trust, "--kind", kind,
            "--federation", "lung", "--round", round_, *extra]


def test_seal_open_inspect(nodes):
    tmp, trust = nodes
    model = tmp / "model.bin"
    model.write_bytes(bytes(range(256)) * 4000)
    coord_pw = {"FEDNODE_PASSPHRASE": "coord secret"}
    r = run_env(*seal_args(tmp, trust, "--to", "site-a,site-b", "--compress", "6"),
                str(model), str(tmp / "global.fdne"), env=coord_pw)
    assert r.returncode == 0, r.stderr
    assert "sealed" in r.stdout
    assert not [p for p in os.listdir(tmp) if ".tmp" in p]

    r = run_env("inspect", str(tmp / "global.fdne"))
    assert r.returncode == 0
    assert r.stdout.startswith("UNVERIFIED")
    assert "global" in r.stdout and "coord" in r.stdout and "2 keys" in r.stdout

    out = tmp / "opened.bin"
    r = run_env(*open_args(tmp, trust), "--passphrase-file", str(tmp / "pw"), "--from", "coord",
                str(tmp / "global.fdne"), str(out))
    assert r.returncode == 0, r.stderr
    assert "from coord" in r.stdout and f"{len(model.read_bytes())} bytes" in r.stdout
    assert out.read_bytes() == model.read_bytes()
    r = run_env(*open_args(tmp, trust, key="site-b.key"), str(tmp / "global.fdne"),
                str(tmp / "b.bin"))
    assert r.returncode == 0 and (tmp / "b.bin").read_bytes() == model.read_bytes()

    # Without the passphrase the key does not load.
    r = run_env(*open_args(tmp, trust), str(tmp / "global.fdne"), str(tmp / "x.bin"))
    assert r.returncode == 1 and "FEDNODE_PASSPHRASE" in r.stderr


def test_open_rejects_tamper_and_replay(nodes):
    tmp, trust = nodes
    (tmp / "update.bin").write_bytes(os.urandom(5000))
    r = run_env("seal", "--identity", str(tmp / "site-b.key"), "--trust", trust, "--to", "coord",
                "--kind", "update", "--federation", "lung", "--round", "4",
                str(tmp / "update.bin"), str(tmp / "u.fdne"))
    assert r.returncode == 0, r.stderr
    coord_pw = {"FEDNODE_PASSPHRASE": "coord secret"}
    base = ["open", "--identity", str(tmp / "coord.key"), "--trust", trust,
            "--federation", "lung"]
    out = tmp / "u.out"
    r = run_env(*base, "--kind", "update", "--round", "5", str(tmp / "u.fdne"), str(out),
                env=coord_pw)
    assert r.returncode == 1 and "replay: expected round 5, found round 4" in r.stderr
    assert not out.exists()
    r = run_env(*base, "--kind", "update", "--round", "4", "--from", "site-a",
                str(tmp / "u.fdne"), str(out), env=coord_pw)
    assert r.returncode == 1 and "expected from 'site-a'" in r.stderr
    data = bytearray((tmp / "u.fdne").read_bytes())
    data[len(data) // 2] ^= 1
    (tmp / "bad.fdne").write_bytes(bytes(data))
    r = run_env(*base, "--kind", "update", "--round", "4", str(tmp / "bad.fdne"), str(out),
                env=coord_pw)
    assert r.returncode == 1 and "nothing written" in r.stderr and "altered" in r.stderr
    assert not out.exists()
    r = run_env(*base, "--kind", "update", "--round", "4", str(tmp / "u.fdne"), str(out),
                env=coord_pw)
    assert r.returncode == 0 and out.read_bytes() == (tmp / "update.bin").read_bytes()
    # A recipient outside the trust store, a bad kind, garbage to inspect.
    r = run_env("seal", "--identity", str(tmp / "site-b.key"), "--trust", trust, "--to", "nobody",
                "--kind", "update", "--federation", "lung", "--round", "4",
                str(tmp / "update.bin"), str(tmp / "n.fdne"))
    assert r.returncode == 1 and "not in the trust store" in r.stderr
    assert not (tmp / "n.fdne").exists()
    assert run_env(*base, "--kind", "weird", "--round", "4", "a", "b").returncode == 2
    r = run_env("inspect", str(tmp / "update.bin"))
    assert r.returncode == 1 and "not an envelope" in r.stderr
