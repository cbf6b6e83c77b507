"""fednode.Dataset and fednode.scan, checked against pydicom where it helps."""
import glob
import os

import pytest

import fednode
from fednode import dicom

CORPUS = "/usr/lib/python3/dist-packages/pydicom/data/test_files"
CT_SMALL = os.path.join(CORPUS, "CT_small.dcm")


def make(uid="1.2.3.4", patient="Doe^Jane", modality="CT"):
    ds = fednode.Dataset.new()
    ds["SOPClassUID"] = "1.2.840.10008.5.1.4.1.1.2"
    ds["SOPInstanceUID"] = uid
    ds["StudyInstanceUID"] = "1.2.3"
    ds["SeriesInstanceUID"] = "1.2.3.1"
    ds["PatientName"] = patient
    ds["PatientID"] = "P1"
    ds["Modality"] = modality
    ds["Rows"] = 2
    ds["Columns"] = 2
    ds["PixelSpacing"] = [0.5, 0.75]
    ds["ReferencedImageSequence[0]/ReferencedSOPInstanceUID"] = "1.2.3.9"
    ds.set_bytes("PixelData", "OW", b"\x01\x00\x02\x00\x03\x00\x04\x00")
    return ds


def test_dictionary():
    assert fednode.tag_from_keyword("PatientName") == 0x00100010
    assert fednode.keyword_for_tag(0x0020000D) == "StudyInstanceUID"
    assert fednode.vr_for_tag(0x00280010) == "US"
    assert fednode.keyword_for_tag(0x00291001) is None
    with pytest.raises(fednode.NotFoundError):
        fednode.tag_from_keyword("NoSuchThing")


def test_typed_access_and_roundtrip(tmp_path):
    ds = make()
    data = ds.to_bytes()
    back = fednode.Dataset.read(data)
    assert back["PatientName"] == "Doe^Jane"
    assert back[0x00100020] == "P1"
    assert back[(0x0008, 0x0060)] == "CT"
    assert back["Rows"] == 2 and isinstance(back["Rows"], int)
    assert back["PixelSpacing"] == [0.5, 0.75]
    items = back["ReferencedImageSequence"]
    assert len(items) == 1 and items[0]["ReferencedSOPInstanceUID"] == "1.2.3.9"
    assert back["PixelData"] == b"\x01\x00\x02\x00\x03\x00\x04\x00"
    assert "PatientName" in back and "PatientBirthDate" not in back
    assert back.get("PatientBirthDate", "none") == "none"
    with pytest.raises(fednode.NotFoundError):
        back["PatientBirthDate"]
    path = tmp_path / "x.dcm"
    back.write(path)
    again = fednode.Dataset.read(path)
    assert again.source == str(path)
    assert again.transfer_syntax == "1.2.840.10008.1.2.1"
    assert again.to_bytes() == data


def test_header_only():
    ds = fednode.Dataset.read(make().to_bytes(), header_only=True)
    assert ds.header_only
    assert "PixelData" not in ds
    with pytest.raises(fednode.InvalidError, match="header-only"):
        ds.to_bytes()


def test_summary_read():
    ds = fednode.Dataset.read(make().to_bytes(), summary=True)
    assert ds.header_only and ds.info.sop_instance_uid == "1.2.3.4"
    assert "PixelSpacing" not in ds and "PatientName" in ds


def test_modify_and_clone():
    ds = make()
    copy = ds.clone()
    copy["ReferencedImageSequence[0]/ReferencedSOPInstanceUID"] = "9.9"
    del copy["PatientName"]
    copy["ReferencedImageSequence[1]/ReferencedSOPInstanceUID"] = "9.10"
    assert ds["ReferencedImageSequence"][0]["ReferencedSOPInstanceUID"] == "1.2.3.9"
    assert "PatientName" in ds and "PatientName" not in copy
    assert len(copy["ReferencedImageSequence"]) == 2
    with pytest.raises(fednode.InvalidError):
        copy["Rows"] = 70000
    with pytest.raises(TypeError):
        copy["PixelData"] = b"raw"


def test_elements_and_info():
    ds = make()
    flat = ds.elements()
    deep = ds.elements(recursive=True)
    assert len(deep) == len(flat) + 1
    assert any(e.path == "(0008,1140)[0]/(0008,1155)" and e.depth == 1 for e in deep)
    assert ds.element("PixelSpacing").vm == 2
    info = ds.info
    assert info.sop_instance_uid == "1.2.3.4" and info.modality == "CT"
    assert info.rows == 2 and info.frames == 1
    assert info.series_number == -1
    assert info.burned_in_annotation == dicom.UNKNOWN


def test_closed_dataset_is_refused():
    ds = make()
    ds.close()
    ds.close()
    with pytest.raises(fednode.InvalidError, match="closed"):
        ds["PatientName"]


def test_errors_carry_the_message(tmp_path):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"definitely not dicom")
    with pytest.raises(fednode.FormatError) as info:
        fednode.Dataset.read(bad)
    assert "not a DICOM file" in str(info.value) and str(bad) in str(info.value)
    with pytest.raises(fednode.NotFoundError):
        fednode.Dataset.read(tmp_path / "missing.dcm")
    with pytest.raises(fednode.FormatError):
        fednode.Dataset.read(make().to_bytes()[:-5])


pydicom = pytest.importorskip("pydicom")


def corpus_files():
    return sorted(glob.glob(os.path.join(CORPUS, "*.dcm")))


@pytest.mark.skipif(not os.path.isdir(CORPUS), reason="python3-pydicom corpus not installed")
def test_corpus_values_match_pydicom():
    """For every corpus file both read, the summary fields agree."""
    compared = 0
    for path in corpus_files():
        try:
            ref = pydicom.dcmread(path, force=True)
            ref_uid = str(ref.get("SOPInstanceUID", ""))
            ref_rows = ref.get("Rows")
            ref_modality = str(ref.get("Modality", ""))
        except Exception:
            continue
        try:
            ds = fednode.Dataset.read(path, header_only=True)
        except fednode.FednodeError as exc:
            # Refusing is allowed, but only with a message naming the file.
            assert path in str(exc), (path, str(exc))
            continue
        info = ds.info
        if ref_uid:
            assert info.sop_instance_uid == ref_uid, path
        if ref_rows is not None:
            assert info.rows == int(ref_rows), path
        assert info.modality == ref_modality, path
        compared += 1
    assert compared >= 40


@pytest.mark.skipif(not os.path.exists(CT_SMALL), reason="python3-pydicom corpus not installed")
def test_ct_small_against_pydicom():
    ref = pydicom.dcmread(CT_SMALL)
    ds = fednode.Dataset.read(CT_SMALL)
    assert ds["PatientName"] == str(ref.PatientName)
    assert ds["ImagePositionPatient"] == [float(v) for v in ref.ImagePositionPatient]
    assert ds["PixelData"] == ref.PixelData
    assert ds.info.study_instance_uid == ref.StudyInstanceUID


# --- scan -------------------------------------------------------------------------------

def tree(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for i in range(6):
        sub = tmp_path / ("a" if i % 2 else "a/b")
        make(uid=f"1.2.3.4.{i}", modality="MR" if i < 2 else "CT").write(sub / f"{i}.dcm")
    (tmp_path / "notes.txt").write_text("not dicom")
    return tmp_path


def test_scan_delivers_instances_and_skips(tmp_path):
    root = tree(tmp_path)
    seen, skipped, progress = {}, [], []

    def on_instance(path, ds, info):
        seen[info.sop_instance_uid] = (path, ds["Modality"])

    stats = fednode.scan(root, on_instance=on_instance,
                         on_skip=lambda p, code, why: skipped.append((p, code, why)),
                         on_progress=progress.append, workers=2, summary=True)
    assert sorted(seen) == [f"1.2.3.4.{i}" for i in range(6)]
    assert seen["1.2.3.4.0"][1] == "MR"
    assert stats.instances == 6 and stats.files == 7 and stats.not_dicom == 1
    assert skipped and skipped[0][0].endswith("notes.txt")
    assert skipped[0][1] == fednode.errors.EUNSUPPORTED
    # The reason says why without repeating the path it comes with.
    assert skipped[0][2].startswith("not a DICOM file"), skipped[0][2]
    assert progress and progress[-1].items_done == 7


def test_scan_callback_exception_is_raised(tmp_path):
    root = tree(tmp_path)

    class Stop(Exception):
        pass

    def on_instance(path, ds, info):
        raise Stop(path)

    with pytest.raises(Stop):
        fednode.scan(root, on_instance=on_instance)


def test_scan_lends_the_dataset(tmp_path):
    root = tree(tmp_path)
    kept, lent = [], []

    def on_instance(path, ds, info):
        lent.append(ds)
        kept.append(ds.clone())

    fednode.scan(root, on_instance=on_instance, workers=1)
    assert len(kept) == 6 and kept[0]["PatientName"] == "Doe^Jane"
    with pytest.raises(fednode.InvalidError, match="clone"):
        lent[0]["PatientName"]


def test_scan_cancel(tmp_path):
    root = tree(tmp_path)
    token = fednode.CancelToken()

    def on_instance(path, ds, info):
        token.request()

    with pytest.raises(fednode.CancelledError):
        fednode.scan(root, on_instance=on_instance, cancel=token)
