"""Bad input never loses data: one clear error naming dataset, case and file, the rest goes on."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest

from satds.ingest import ingest
from satds.phantoms import generate


@pytest.fixture
def liver(tmp_path):
    """A three-case Decathlon Liver phantom."""
    return generate("msd_liver", tmp_path / "Task03_Liver")


def failures(catalog):
    con = catalog.connect()
    return con.execute("SELECT \"case\", file, error_type, error FROM failures ORDER BY \"case\"").fetchall()


def scan_ids(catalog):
    return sorted(r[0] for r in catalog.connect().execute("SELECT case_id FROM scans").fetchall())


def test_missing_mask(liver, catalog):
    (liver / "labelsTr/liver_1.nii.gz").unlink()
    s = ingest("msd_liver", liver, catalog, workers=1)
    assert s.scans == 2 and s.failed == 1
    [(case, file, kind, msg)] = failures(catalog)
    assert (case, file, kind) == ("liver_1", "labelsTr/liver_1.nii.gz", "CaseError")
    assert msg == "msd_liver/liver_1: labelsTr/liver_1.nii.gz: label file is missing"
    assert scan_ids(catalog) == ["liver_0", "liver_7"]


def test_mask_on_another_grid(liver, catalog):
    p = liver / "labelsTr/liver_0.nii.gz"
    img = nib.load(p)
    aff = img.affine.copy()
    aff[0, 3] += 4.0  # shifted by more than two voxels
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), aff), p)
    s = ingest("msd_liver", liver, catalog, workers=1)
    assert s.scans == 2
    [(case, file, kind, msg)] = failures(catalog)
    assert (case, kind) == ("liver_0", "GeometryError")
    assert file.endswith("labelsTr/liver_0.nii.gz")
    assert "mask is not on its image's grid" in msg and "differ by up to 4" in msg


def test_unknown_label_value(liver, catalog):
    p = liver / "labelsTr/liver_7.nii.gz"
    img = nib.load(p)
    arr = np.asarray(img.dataobj).copy()
    arr[0, 0, 0] = 5
    nib.save(nib.Nifti1Image(arr, img.affine), p)
    s = ingest("msd_liver", liver, catalog, workers=1)
    assert s.scans == 2
    [(case, file, kind, msg)] = failures(catalog)
    assert (case, kind) == ("liver_7", "LabelError")
    assert file.endswith("labelsTr/liver_7.nii.gz")
    assert "label value(s) [5] are not in the spec (known: [1, 2])" in msg


def test_truncated_gzip(liver, catalog):
    p = liver / "imagesTr/liver_1.nii.gz"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    s = ingest("msd_liver", liver, catalog, workers=1)
    assert s.scans == 2
    [(case, file, kind, msg)] = failures(catalog)
    assert (case, kind) == ("liver_1", "ReadError")
    assert file.endswith("imagesTr/liver_1.nii.gz")
    assert "truncated" in msg


def test_nan_in_image_and_4d_image(liver, catalog):
    p = liver / "imagesTr/liver_0.nii.gz"
    img = nib.load(p)
    arr = np.asarray(img.dataobj).astype(np.float32)
    arr[1, 1, 1] = np.nan
    nib.save(nib.Nifti1Image(arr, img.affine), p)
    q = liver / "imagesTr/liver_1.nii.gz"
    img = nib.load(q)
    nib.save(nib.Nifti1Image(np.stack([np.asarray(img.dataobj)] * 2, axis=-1), img.affine), q)
    s = ingest("msd_liver", liver, catalog, workers=1)
    assert s.scans == 1
    rows = failures(catalog)
    assert [r[0] for r in rows] == ["liver_0", "liver_1"]
    assert "1 NaN/inf voxels" in rows[0][3]
    assert rows[1][2] == "GeometryError" and "expected a 3D image, found shape" in rows[1][3]


def test_nan_in_label(liver, catalog):
    p = liver / "labelsTr/liver_0.nii.gz"
    img = nib.load(p)
    arr = np.asarray(img.dataobj).astype(np.float32)
    arr[2, 2, 2] = np.nan
    nib.save(nib.Nifti1Image(arr, img.affine), p)
    ingest("msd_liver", liver, catalog, workers=1)
    [(case, file, kind, msg)] = failures(catalog)
    assert (case, kind) == ("liver_0", "LabelError") and "NaN" in msg


def test_empty_folder_and_wrong_root(tmp_path, catalog):
    (tmp_path / "empty").mkdir()
    s = ingest("msd_liver", tmp_path / "empty", catalog, workers=1)
    assert s.scans == 0 and s.failed == 1
    assert "no scans of msd_liver found under the root" in s.failures[0] and "imagesTr/liver_*.nii.gz" in s.failures[0]
    s = ingest("msd_liver", tmp_path / "nowhere", catalog, workers=1)
    assert s.failed == 1 and "dataset root does not exist" in s.failures[0]
    assert failures(catalog)[0][3].startswith("msd_liver: ")


def test_source_data_is_never_written(liver, catalog):
    before = {p: p.stat().st_mtime_ns for p in liver.rglob("*")}
    ingest("msd_liver", liver, catalog, workers=1)
    after = {p: p.stat().st_mtime_ns for p in liver.rglob("*")}
    assert before == after


def test_reingest_is_idempotent_and_reuses_unchanged_cases(liver, catalog):
    s1 = ingest("msd_liver", liver, catalog, workers=1)
    con = catalog.connect()
    a1 = con.execute("SELECT scan_id, class_id, voxels FROM annotations ORDER BY 1, 2").fetchall()
    s2 = ingest("msd_liver", liver, catalog, workers=1)
    assert (s1.scans, s2.scans, s2.reused) == (3, 3, 3)
    con = catalog.connect()
    assert con.execute("SELECT scan_id, class_id, voxels FROM annotations ORDER BY 1, 2").fetchall() == a1
    assert con.execute("SELECT count(*) FROM scans").fetchone()[0] == 3
    # A changed file is re-read; a removed case disappears from the current view.
    shutil.copy(liver / "labelsTr/liver_0.nii.gz", liver / "labelsTr/liver_1.nii.gz")
    (liver / "imagesTr/liver_7.nii.gz").unlink()
    (liver / "labelsTr/liver_7.nii.gz").unlink()
    s3 = ingest("msd_liver", liver, catalog, workers=1)
    assert (s3.scans, s3.reused) == (2, 1)
    assert scan_ids(catalog) == ["liver_0", "liver_1"]


def test_parallel_ingest_gives_the_same_rows(liver, tmp_path):
    from satds.catalog import Catalog

    a, b = Catalog(tmp_path / "a"), Catalog(tmp_path / "b")
    ingest("msd_liver", liver, a, workers=1)
    ingest("msd_liver", liver, b, workers=2)
    q = "SELECT scan_id, class_id, voxels, centroid_mm FROM annotations ORDER BY 1, 2"
    assert a.connect().execute(q).fetchall() == b.connect().execute(q).fetchall()
