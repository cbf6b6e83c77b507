"""fednode.DeidProfile: de-identification, pseudonyms, dates, the burned-in
guard, cleaning, verification, site rules and key files."""
import datetime
import gc
import os
import stat

import pytest

import fednode
from fednode import deid

KEY = bytes(range(32))
OTHER_KEY = bytes(0xA5 ^ i for i in range(32))
CT = "1.2.840.10008.5.1.4.1.1.2"
NEST = "(0008,9215)"


def study_file(patient_id="PAT-1", sop_uid="1.2.826.0.1.3680043.10.5.100",
               study_date="20240110", referenced="1.2.826.0.1.3680043.10.5.99"):
    ds = fednode.Dataset.new()
    ds["SOPClassUID"] = CT
    ds["SOPInstanceUID"] = sop_uid
    ds["StudyInstanceUID"] = "1.2.826.0.1.3680043.10.5.1"
    ds["SeriesInstanceUID"] = "1.2.826.0.1.3680043.10.5.1.1"
    ds["PatientID"] = patient_id
    ds["PatientName"] = "Smithson^Johanna"
    ds["PatientBirthDate"] = "19610302"
    ds["PatientAddress"] = "12 Elm Street, Springfield"
    ds["InstitutionName"] = "Springfield General"
    ds["ReferringPhysicianName"] = "Hibbert^Julius"
    ds["AccessionNumber"] = "ACC12345"
    ds["StudyDate"] = study_date
    ds["StudyTime"] = "101010"
    ds["SeriesDate"] = "20200229"
    ds["StudyDescription"] = "CT chest for Smithson"
    ds["Modality"] = "CT"
    ds["BurnedInAnnotation"] = "NO"
    ds["PixelSpacing"] = [0.5, 0.5]
    # Derivation Code Sequence has no row in Table E.1-1: kept, and the
    # profile applies inside it.
    ds[NEST + "[0]/ReferencedSOPClassUID"] = CT
    ds[NEST + "[0]/ReferencedSOPInstanceUID"] = referenced
    ds["Rows"] = 2
    ds["Columns"] = 2
    ds.set_bytes("PixelData", "OW", b"\x01\x00\x02\x00\x03\x00\x04\x00")
    return ds


def day(value):
    return datetime.date(int(value[:4]), int(value[4:6]), int(value[6:8]))


@pytest.fixture
def profile():
    with fednode.DeidProfile(key=KEY) as p:
        yield p


def test_basic_profile_removes_phi(profile):
    ds = study_file()
    report = profile.apply(ds)
    assert isinstance(report, fednode.DeidReport) and report.ok
    assert report.refusal is None and report.leaks == []
    data = ds.to_bytes()
    for phi in (b"Smithson", b"Johanna", b"19610302", b"Elm Street", b"Hibbert",
                b"Springfield", b"ACC12345", b"PAT-1", b"1.2.826.0.1.3680043.10.5"):
        assert phi not in data, phi
    assert ds["PatientID"].startswith("FDN-")
    assert ds["StudyDate"] == ""
    assert ds["SOPClassUID"] == CT  # not in the table: kept
    assert ds["StudyInstanceUID"].startswith("2.25.")
    assert ds["PixelSpacing"] == [0.5, 0.5]
    assert ds["PixelData"] == b"\x01\x00\x02\x00\x03\x00\x04\x00"
    # Marking (PS3.15 E.1.1).
    assert ds["PatientIdentityRemoved"] == "YES"
    assert "PS3.15 2026c" in ds[(0x0012, 0x0063)]
    assert ds["(0012,0064)[0]/(0008,0100)"] == "113100"
    assert ds[(0x0028, 0x0303)] == "REMOVED"
    # The report.
    assert set(report.counts) == set(deid.ACTIONS)
    assert report.counts["uid_replaced"] >= 3
    assert report.counts["pseudonymized"] == 2
    assert report.counts["removed"] >= 1
    paths = dict(report.entries)
    assert paths["(0010,1040)"] == "X"          # Patient's Address
    assert paths["(0020,000D)"] == "U"          # Study Instance UID
    assert paths["(0008,9215)/(0008,1155)"] == "U"
    assert paths["(0008,9215)/(0008,1150)"] == "K"
    assert "ok" in repr(report)


def test_uids_consistent_across_files_and_keys(profile):
    a = study_file(sop_uid="1.2.826.0.1.3680043.10.5.100")
    b = study_file(sop_uid="1.2.826.0.1.3680043.10.5.101",
                   referenced="1.2.826.0.1.3680043.10.5.100")
    c = study_file()
    profile.apply(a)
    profile.apply(b)
    with fednode.DeidProfile(key=OTHER_KEY) as other:
        other.apply(c)
    assert a["StudyInstanceUID"] == b["StudyInstanceUID"]
    assert a["SOPInstanceUID"] != b["SOPInstanceUID"]
    # b's reference to a's instance follows the remapping.
    assert b[NEST][0]["ReferencedSOPInstanceUID"] == a["SOPInstanceUID"]
    assert c["StudyInstanceUID"] != a["StudyInstanceUID"]
    uid = a["SOPInstanceUID"]
    assert uid.startswith("2.25.") and uid[5:].isdigit() and len(uid) <= 64


def test_pseudonym_for_matches_output(profile):
    ds = study_file(patient_id="PAT-1")
    profile.apply(ds)
    pseudonym = profile.pseudonym_for("PAT-1")
    assert ds["PatientID"] == pseudonym
    assert ds["PatientName"] == pseudonym + "^"
    assert pseudonym.startswith("FDN-") and len(pseudonym) == 30
    assert profile.pseudonym_for("PAT-1  ") == pseudonym  # trailing padding ignored
    assert profile.pseudonym_for("PAT-2") != pseudonym
    with fednode.DeidProfile(key=OTHER_KEY) as other:
        assert other.pseudonym_for("PAT-1") != pseudonym


def test_modified_dates_shift_per_patient():
    with fednode.DeidProfile(key=KEY, options={"retain_long_modified_dates"}) as p:
        a = study_file("PAT-1", "1.2.826.0.1.3680043.10.5.100", "20240110")
        b = study_file("PAT-1", "1.2.826.0.1.3680043.10.5.101", "20240120")
        c = study_file("PAT-2", "1.2.826.0.1.3680043.10.5.102", "20240110")
        report = p.apply(a)
        p.apply(b)
        p.apply(c)
    assert report.counts["date_shifted"] >= 2
    sa, sb, sc = a["StudyDate"], b["StudyDate"], c["StudyDate"]
    assert (day(sb) - day(sa)).days == 10           # intervals kept
    shift = (day("20240110") - day(sa)).days
    assert 1 <= shift <= 3650                       # into the past
    assert (day("20200229") - day(a["SeriesDate"])).days == shift
    assert sc != sa                                 # another patient, another offset
    assert a["StudyTime"] == "101010"               # times unchanged
    assert a[(0x0028, 0x0303)] == "MODIFIED"


def test_options_by_name_or_flags():
    ds1, ds2 = study_file(), study_file()
    with fednode.DeidProfile(key=KEY, options=["retain-uids", "retain_institution_identity"]) as p:
        p.apply(ds1)
    flags = deid.OPTIONS["retain_uids"] | deid.OPTIONS["retain_institution_identity"]
    with fednode.DeidProfile(key=KEY, options=flags) as p:
        p.apply(ds2)
    for ds in (ds1, ds2):
        assert ds["StudyInstanceUID"] == "1.2.826.0.1.3680043.10.5.1"
        assert ds["InstitutionName"] == "Springfield General"
    assert ds1.to_bytes() == ds2.to_bytes()


def test_bad_options_raise_invalid():
    with pytest.raises(fednode.InvalidError, match="exclude each other"):
        fednode.DeidProfile(key=KEY, options={"retain_long_full_dates",
                                              "retain_long_modified_dates"})
    with pytest.raises(fednode.InvalidError, match="unknown"):
        fednode.DeidProfile(key=KEY, options={"retain_everything"})
    with pytest.raises(fednode.InvalidError, match="unknown option bits"):
        fednode.DeidProfile(key=KEY, options=1 << 20)
    with pytest.raises(fednode.InvalidError):
        fednode.DeidProfile(key=b"short")
    with pytest.raises(fednode.InvalidError):
        fednode.DeidProfile()
    with pytest.raises(fednode.InvalidError):
        fednode.DeidProfile(key=KEY, key_file="/nonexistent")


def test_rules_dict_and_text():
    rules = {"rules": [{"tag": "(0010,1010)", "action": "keep"},
                       {"tag": "PixelSpacing", "action": "remove"},
                       {"tag": "AccessionNumber", "action": "pseudonymize"}]}
    for given in (rules, __import__("json").dumps(rules)):
        ds = study_file()
        ds["PatientAge"] = "061Y"
        with fednode.DeidProfile(key=KEY, rules=given) as p:
            p.apply(ds)
        assert ds["PatientAge"] == "061Y"
        assert "PixelSpacing" not in ds
        assert ds["AccessionNumber"].startswith("FDN-") and len(ds["AccessionNumber"]) == 16
        assert "Site rules" in ds[(0x0012, 0x0063)]
    with pytest.raises(fednode.InvalidError, match="rule 0"):
        fednode.DeidProfile(key=KEY, rules={"rules": [{"tag": "PatientAge", "action": "zap"}]})
    with pytest.raises(fednode.InvalidError, match="private"):
        fednode.DeidProfile(key=KEY, rules={"rules": [{"tag": "(0029,1010)",
                                                       "action": "keep"}]})


@pytest.mark.parametrize("setup", [
    {"BurnedInAnnotation": "YES"},
    {"RecognizableVisualFeatures": "YES"},
    {"BurnedInAnnotation": None, "Modality": "US", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.6.1"},
    {"BurnedInAnnotation": None, "Modality": "OT", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"},
])
def test_burned_in_refused_and_unchanged(profile, setup):
    ds = study_file()
    for key, value in setup.items():
        if value is None:
            del ds[key]
        else:
            ds[key] = value
    before = ds.to_bytes()
    with pytest.raises(fednode.PHIError) as info:
        profile.apply(ds)
    exc = info.value
    assert exc.report is not None and not exc.report.ok
    assert exc.report.refusal
    assert exc.report.refusal in str(exc)
    assert ("0028,030" in exc.report.refusal)
    assert ds.to_bytes() == before
    with fednode.DeidProfile(key=KEY, allow_burned_in=True) as allow:
        assert allow.apply(ds).ok
    assert b"Smithson" not in ds.to_bytes()


def test_clean_callback_used():
    calls = []

    def clean(path, vr, value):
        calls.append((path, vr, value.rstrip()))  # values keep their padding
        if "EMPTY" in value:
            return None
        return "CLEANED " + value.replace("Smithson", "").strip()

    ds = study_file()
    ds["SeriesDescription"] = "EMPTY me"
    with fednode.DeidProfile(key=KEY, options={"clean_descriptors"}, clean=clean) as p:
        report = p.apply(ds)
    assert ("(0008,1030)", "LO", "CT chest for Smithson") in calls
    assert ds["StudyDescription"] == "CLEANED CT chest for"
    assert ds["SeriesDescription"] == ""
    assert report.counts["cleaned"] >= 2
    assert "Host text cleaning" in ds[(0x0012, 0x0063)]
    # Non-ASCII text goes both ways as UTF-8.
    ds = study_file()
    ds["SpecificCharacterSet"] = "ISO_IR 192"
    ds["StudyDescription"] = "Thorax-CT für Müller"
    with fednode.DeidProfile(key=KEY, options={"clean_descriptors"},
                             clean=lambda path, vr, v: v.replace("Müller", "Ö")) as p:
        p.apply(ds)
    assert ds["StudyDescription"] == "Thorax-CT für Ö"


def test_without_clean_callback_text_is_emptied():
    ds = study_file()
    with fednode.DeidProfile(key=KEY, options={"clean_descriptors"}) as p:
        p.apply(ds)
    assert ds["StudyDescription"] == ""


def test_clean_callback_exception_propagates():
    class Boom(Exception):
        pass

    def clean(path, vr, value):
        raise Boom(path)

    with fednode.DeidProfile(key=KEY, options={"clean_descriptors"}, clean=clean) as p:
        with pytest.raises(Boom, match=r"\(0008,1030\)"):
            p.apply(study_file())
        # A wrong return type is an error too, not a silent keep.
        with fednode.DeidProfile(key=KEY, options={"clean_descriptors"},
                                 clean=lambda *a: 42) as q:
            with pytest.raises(TypeError, match="int"):
                q.apply(study_file())
    # Nothing is left pending for the next call.
    with fednode.DeidProfile(key=KEY) as p:
        assert p.apply(study_file()).ok


def test_verify_finds_planted_leak(profile):
    orig = study_file()
    out = orig.clone()
    profile.apply(out)
    report = profile.verify(orig, out)
    assert report.ok and report.leaks == []
    out["ImageComments"] = "seen by Smithson^Johanna"
    report = profile.verify(orig, out)
    assert not report.ok
    assert report.leaks
    assert any("(0010,0010)" in leak for leak in report.leaks)
    assert all("Smithson" not in leak for leak in report.leaks)


def test_key_files(tmp_path):
    path = tmp_path / "site.key"
    fednode.deid_key_generate(path)
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_size == 32
    key = fednode.deid_key_load(path)
    assert isinstance(key, bytes) and len(key) == 32
    with pytest.raises(fednode.ConflictError, match="never overwritten"):
        fednode.deid_key_generate(str(path))
    assert fednode.deid_key_load(path) == key
    with fednode.DeidProfile(key_file=path) as a, fednode.DeidProfile(key=key) as b:
        assert a.pseudonym_for("PAT-1") == b.pseudonym_for("PAT-1")
    os.chmod(path, 0o644)
    with pytest.raises(fednode.InvalidError, match="chmod 600"):
        fednode.deid_key_load(path)
    with pytest.raises(fednode.InvalidError, match="chmod 600"):
        fednode.DeidProfile(key_file=path)
    with pytest.raises(fednode.NotFoundError):
        fednode.deid_key_load(tmp_path / "missing.key")
    assert "cannot be wiped" in fednode.deid_key_load.__doc__


def test_close_and_finalizer():
    p = fednode.DeidProfile(key=KEY)
    p.close()
    p.close()
    with pytest.raises(fednode.InvalidError, match="closed"):
        p.pseudonym_for("x")
    assert "closed" in repr(p)
    # Garbage collection frees it (weakref.finalize) without a close().
    q = fednode.DeidProfile(key=KEY, clean=lambda *a: None)
    finalizer = q._finalizer
    del q
    gc.collect()
    assert not finalizer.alive


def test_profile_shared_by_threads():
    import threading
    results, failures = {}, []

    def clean(path, vr, value):
        return "T" + threading.current_thread().name

    def work(p, n):
        try:
            for i in range(20):
                ds = study_file(patient_id=f"PAT-{n}")
                p.apply(ds)
                assert ds["StudyDescription"] == "T" + threading.current_thread().name
                results.setdefault(n, set()).add(ds["PatientID"])
        except BaseException as exc:  # noqa: B902 - reported below
            failures.append(exc)

    with fednode.DeidProfile(key=KEY, options={"clean_descriptors"}, clean=clean) as p:
        threads = [threading.Thread(target=work, args=(p, n), name=f"w{n}") for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures, failures
        for n in range(4):
            assert results[n] == {p.pseudonym_for(f"PAT-{n}")}
