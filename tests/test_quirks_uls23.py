"""ULS23 (LIDC_IDRI): labels as .nii.gz, .nii or .nii.gz.zip, zips read in memory, patients grouped."""

from __future__ import annotations

import gzip
import io
import zipfile

import nibabel as nib
import numpy as np
import pytest

from satds.ingest import discover, ingest
from satds.ingest.quirks.uls23 import label_candidates
from satds.phantoms import generate
from satds.specs import get_spec

LABELS = "LIDC-IDRI/labels"


@pytest.fixture
def uls(tmp_path):
    return generate("lidc_idri", tmp_path / "uls")


def test_label_candidates_order():
    assert label_candidates("a/x.nii.gz") == ["a/x.nii.gz", "a/x.nii", "a/x.nii.gz.zip"]


def test_each_scan_takes_the_first_label_form_present(uls):
    cases, problems, _ = discover(get_spec("lidc_idri"), uls)
    assert problems == []
    got = {c.case_id: c.label.rsplit("/", 1)[1] for c in cases}
    assert got == {
        "lidcidri_10_lesion_01_sample_0": "lidcidri_10_lesion_01_sample_0.nii.gz",
        "lidcidri_10_lesion_02_sample_0": "lidcidri_10_lesion_02_sample_0.nii.gz.zip",
        "lidcidri_102_lesion_01_sample_0": "lidcidri_102_lesion_01_sample_0.nii",
        "lidcidri_102_lesion_03_sample_0": "lidcidri_102_lesion_03_sample_0.nii.gz",  # plain wins over its zip
    }
    assert {c.case_id: c.patient_id for c in cases}["lidcidri_10_lesion_02_sample_0"] == "lidcidri_10"


def test_zipped_label_is_read_in_memory_and_the_folder_stays_untouched(uls, catalog):
    before = {p.relative_to(uls): p.stat().st_mtime_ns for p in uls.rglob("*")}
    s = ingest("lidc_idri", uls, catalog, workers=1)
    assert (s.scans, s.failed) == (4, 0)
    assert {p.relative_to(uls): p.stat().st_mtime_ns for p in uls.rglob("*")} == before
    with zipfile.ZipFile(uls / LABELS / "lidcidri_10_lesion_02_sample_0.nii.gz.zip") as z:
        arr = np.asanyarray(nib.Nifti1Image.from_bytes(gzip.decompress(z.read("lidcidri_10_lesion_02_sample_0.nii.gz"))).dataobj)
    voxels = dict(catalog.connect().execute("SELECT scan_id, voxels FROM annotations").fetchall())
    assert voxels["lidc_idri/lidcidri_10_lesion_02_sample_0"] == int((arr != 0).sum()) > 0


def test_scan_without_any_label_fails_alone(uls, catalog):
    (uls / LABELS / "lidcidri_102_lesion_01_sample_0.nii").unlink()
    s = ingest("lidc_idri", uls, catalog, workers=1)
    assert (s.scans, s.failed) == (3, 1)
    [(case, file, msg)] = catalog.connect().execute('SELECT "case", file, error FROM failures').fetchall()
    assert (case, file) == ("lidcidri_102_lesion_01_sample_0", f"{LABELS}/lidcidri_102_lesion_01_sample_0.nii.gz")
    assert "no label in any form" in msg


def test_corrupt_zip_is_a_read_error(uls, catalog):
    (uls / LABELS / "lidcidri_10_lesion_02_sample_0.nii.gz.zip").write_bytes(b"PK\x03\x04 not a zip")
    s = ingest("lidc_idri", uls, catalog, workers=1)
    assert (s.scans, s.failed) == (3, 1)
    [(case, kind, msg)] = catalog.connect().execute('SELECT "case", error_type, error FROM failures').fetchall()
    assert (case, kind) == ("lidcidri_10_lesion_02_sample_0", "ReadError")
    assert "cannot read the zipped NIfTI" in msg


def test_zip_with_two_niftis_is_refused(uls, catalog):
    p = uls / LABELS / "lidcidri_10_lesion_02_sample_0.nii.gz.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(p) as z, zipfile.ZipFile(buf, "w") as out:
        data = z.read(z.namelist()[0])
        out.writestr("a.nii.gz", data)
        out.writestr("b.nii.gz", data)
    p.write_bytes(buf.getvalue())
    s = ingest("lidc_idri", uls, catalog, workers=1)
    assert s.failed == 1
    [(msg,)] = catalog.connect().execute("SELECT error FROM failures").fetchall()
    assert "expected one NIfTI inside the zip, found 2" in msg
