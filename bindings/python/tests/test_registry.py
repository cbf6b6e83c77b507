"""fednode.registry: add, labels, consent, cohorts, audit."""
import os

import pytest

import fednode
from fednode import registry


def deid_instance(n, patient="FDN-PATIENT1", modality="CT"):
    ds = fednode.Dataset.new()
    ds["SOPClassUID"] = "1.2.840.10008.5.1.4.1.1.2"
    ds["SOPInstanceUID"] = f"2.25.{1000 + n}"
    ds["StudyInstanceUID"] = f"2.25.{2000 + (n % 2)}" if patient == "FDN-PATIENT1" else "2.25.3000"
    ds["SeriesInstanceUID"] = ds["StudyInstanceUID"] + ".1"
    ds["PatientID"] = patient
    ds["PatientIdentityRemoved"] = "YES"
    ds["Modality"] = modality
    ds["StudyDate"] = "20240115"
    ds["Rows"] = 2
    ds["Columns"] = 2
    ds.set_bytes("PixelData", "OW", bytes(8))
    return ds


def test_add_label_cohort_export_verify(tmp_path):
    records = []
    with registry.Registry(tmp_path / "reg", create=True, audit_sink=records.append) as reg:
        with reg.batch():
            for i in range(4):
                assert reg.add(deid_instance(i)) == "added"
        assert reg.add(deid_instance(0)) == "already present"
        reg.add(deid_instance(9, patient="FDN-PATIENT2", modality="MR"))
        reg.label("study", "2.25.2000", "diagnosis", "nodule")
        stats = reg.stats()
        assert stats.instances == 5 and stats.patients == 2
        assert reg.count("modality = 'CT'") == 4
        assert reg.count("label.diagnosis = 'nodule'") == 2
        snapshot = reg.create_cohort("ct", "modality = 'CT'")
        assert len(snapshot) == 64
        members = list(reg.cohort("ct", "unit test"))
        assert len(members) == 4 and members[0].sha256 and members[0].size > 0
        assert any(m.labels.get("diagnosis") == "nodule" for m in members)
        assert "sop_instance_uid" in reg.export("ct", "csv").splitlines()[0]
        assert reg.verify() is None
        log = reg.audit_log()
        assert [r for r in log if r["event"] == "cohort.create"]
    assert records and all("event" in r for r in records)


def test_withdrawal_and_refusals(tmp_path):
    with registry.Registry(tmp_path / "reg", create=True) as reg:
        for i in range(3):
            reg.add(deid_instance(i))
        reg.add(deid_instance(7, patient="FDN-PATIENT2"))
        reg.create_cohort("all", "")
        reg.withdraw("FDN-PATIENT1", "consent withdrawn by letter")
        assert reg.count("") == 1
        assert [m.patient for m in reg.cohort("all", "test")] == ["FDN-PATIENT2"]
        identified = deid_instance(20)
        identified["PatientIdentityRemoved"] = "NO"
        with pytest.raises(fednode.PHIError):
            reg.add(identified)
        with pytest.raises(fednode.ConflictError):
            reg.create_cohort("all", "")
    with pytest.raises(fednode.NotFoundError):
        registry.Registry(tmp_path / "missing")


def test_filter_errors_are_positioned():
    registry.filter_check("modality IN ('CT', 'MR') AND NOT label.x = 'y'")
    with pytest.raises(fednode.InvalidError) as info:
        registry.filter_check("modality = 'CT' AND AND")
    assert info.value.column == 21
    assert "column 21" in str(info.value)


def test_withdraw_by_original_id(tmp_path):
    profile = fednode.DeidProfile(key=os.urandom(32))
    pseudonym = profile.pseudonym_for("HOSPITAL-123")
    with registry.Registry(tmp_path / "reg", create=True) as reg:
        reg.add(deid_instance(1, patient=pseudonym))
        reg.withdraw("HOSPITAL-123", "withdrawn", profile=profile)
        assert reg.count("") == 0
        assert "HOSPITAL-123" not in str(reg.audit_log())
