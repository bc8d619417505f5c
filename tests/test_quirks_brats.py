"""BraTS 2023: the MEN correction patch replaces whole case folders, MET's corrupt case is skipped,
timepoints of one patient form one leakage group."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from satds.errors import ReadError
from satds.ingest import discover, ingest, ingest_case
from satds.phantoms import generate
from satds.specs import get_spec
from satds.split.engine import scan_rows
from satds.split.groups import make_groups

FIX = "BraTS-MEN-TRAIN-FIX-V4/BraTS-MEN-01198-004"
ORIG = "BraTS-MEN-Train/BraTS-MEN-01198-004"


@pytest.fixture
def men(tmp_path):
    return generate("brats2023_men", tmp_path / "men")


def scans(catalog):
    con = catalog.connect()
    return {r[0]: (r[1], list(r[2]), list(r[3])) for r in con.execute("SELECT case_id, patient_id, image_paths, label_paths FROM scans").fetchall()}


def failures(catalog):
    return catalog.connect().execute('SELECT "case", file, error_type, error FROM failures').fetchall()


def test_men_patch_replaces_the_whole_case_folder(men, catalog):
    # The phantom's two copies differ: the patched seg is not the original seg.
    fix_seg = np.asarray(nib.load(men / f"{FIX}/BraTS-MEN-01198-004-seg.nii.gz").dataobj)
    orig_seg = np.asarray(nib.load(men / f"{ORIG}/BraTS-MEN-01198-004-seg.nii.gz").dataobj)
    assert not np.array_equal(fix_seg, orig_seg)
    s = ingest("brats2023_men", men, catalog, workers=1)
    assert (s.scans, s.failed) == (3, 0)
    got = scans(catalog)
    _, images, labels = got["BraTS-MEN-01198-004"]
    assert labels == [f"{FIX}/BraTS-MEN-01198-004-seg.nii.gz"]
    assert images == [f"{FIX}/BraTS-MEN-01198-004-{s}.nii.gz" for s in ("t1n", "t1c", "t2w", "t2f")]
    assert got["BraTS-MEN-01198-013"][2] == ["BraTS-MEN-Train/BraTS-MEN-01198-013/BraTS-MEN-01198-013-seg.nii.gz"]
    edema = catalog.connect().execute(
        "SELECT voxels FROM annotations WHERE scan_id = 'brats2023_men/BraTS-MEN-01198-004' AND class_name = 'brain edema'"
    ).fetchone()[0]
    assert edema == int((fix_seg == 2).sum()) != int((orig_seg == 2).sum())


def test_men_broken_patch_does_not_fall_back(men, catalog):
    (men / f"{FIX}/BraTS-MEN-01198-004-seg.nii.gz").unlink()
    s = ingest("brats2023_men", men, catalog, workers=1)
    assert (s.scans, s.failed) == (2, 1)
    [(case, file, kind, msg)] = failures(catalog)
    assert (case, file, kind) == ("BraTS-MEN-01198-004", f"{FIX}/BraTS-MEN-01198-004-seg.nii.gz", "CaseError")
    assert msg.endswith("label file is missing")
    assert "BraTS-MEN-01198-004" not in scans(catalog)


def test_men_defect_of_a_replaced_original_is_not_reported(men, catalog):
    (men / f"{ORIG}/BraTS-MEN-01198-004-t2f.nii.gz").unlink()
    s = ingest("brats2023_men", men, catalog, workers=1)
    assert (s.scans, s.failed) == (3, 0)
    assert scans(catalog)["BraTS-MEN-01198-004"][2] == [f"{FIX}/BraTS-MEN-01198-004-seg.nii.gz"]


def test_met_corrupt_case_is_skipped_not_failed(tmp_path, catalog):
    root = generate("brats2023_met", tmp_path / "met")
    s = ingest("brats2023_met", root, catalog, workers=1)
    assert (s.scans, s.failed, s.skipped) == (2, 0, 1)
    # Without the skip, the released t2w would fail the case on read.
    spec = get_spec("brats2023_met")
    skipped = spec.model_copy(update={"skip": []})
    [case] = [c for c in discover(skipped, root)[0] if c.case_id == "BraTS-MET-00232-000"]
    with pytest.raises(ReadError) as e:
        ingest_case("brats2023_met", str(root), case)
    assert e.value.file.endswith("BraTS-MET-00232-000/BraTS-MET-00232-000-t2w.nii.gz")


def test_gli_timepoints_are_one_patient_and_one_group(tmp_path, catalog):
    root = generate("brats2023_gli", tmp_path / "gli")
    ingest("brats2023_gli", root, catalog, workers=1)
    groups = make_groups(scan_rows(catalog))
    a, b, c = (groups.group_of[f"brats2023_gli/{x}"] for x in ("BraTS-GLI-00547-000", "BraTS-GLI-00547-001", "BraTS-GLI-01461-000"))
    assert a == b != c
    assert groups.reasons[a] == {"same patient BraTS-GLI-00547 in brats2023_gli"}
