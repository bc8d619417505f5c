"""Sides from world x on real anatomy: KiTS19's kidneys (slice-first arrays) and CTPelvic1K's disputed hip values.

The scans are real (ct_small + TotalSegmentator's labels, which name the side): a KiTS19 case is its kidneys
as one label stored slice-first like KiTS, a CTPelvic1K case uses the iliopsoas pair as its two 'hip' values.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from satds.geometry import reorient
from satds.ingest import ingest


@pytest.fixture(scope="module")
def real(realdata):
    cm = {v: int(k) for k, v in json.loads((realdata / "classmaps.json").read_text())["total"].items()}
    ct = nib.load(realdata / "ct_small.nii.gz")
    seg = nib.load(realdata / "seg_small_total.nii.gz")
    return np.asarray(ct.dataobj), np.asarray(seg.dataobj), ct.affine, cm


def _save(path, arr, aff, codes):
    a, f = reorient(arr, aff, codes)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.ascontiguousarray(a), f), path)


def _rows(catalog):
    return {r[0]: r[1:] for r in catalog.connect().execute("SELECT class_name, voxels, centroid_mm FROM annotations").fetchall()}


def test_kits19_kidneys_split_by_world_x(tmp_path, catalog, real):
    ct, seg, aff, cm = real
    left, right = seg == cm["kidney_left"], seg == cm["kidney_right"]
    lab = (left | right).astype(np.uint8)
    lab[right & (np.arange(seg.shape[2]) < 14)[None, None, :]] = 2  # lower part of the right kidney as 'tumour'
    case = tmp_path / "kits19/data/case_00007"
    _save(case / "imaging.nii.gz", ct, aff, "IPL")  # KiTS stores (slices, rows, columns)
    _save(case / "segmentation.nii.gz", lab, aff, "IPL")
    assert nib.load(case / "imaging.nii.gz").shape[0] == ct.shape[2]
    s = ingest("kits19", tmp_path / "kits19", catalog, workers=1)
    assert (s.scans, s.failed) == (1, 0), s.failures
    rows = _rows(catalog)
    assert rows["left kidney"][0] == int(left.sum()) and rows["right kidney"][0] == int(right.sum())
    assert rows["kidney"][0] == int((left | right).sum())
    assert rows["kidney tumor"][0] == int((lab == 2).sum()) > 0
    # The patient's left has the smaller world x (RAS+).
    assert rows["left kidney"][1][0] < rows["right kidney"][1][0]
    world_left = aff[:3, :3] @ np.argwhere(left).mean(axis=0) + aff[:3, 3]
    assert np.allclose(rows["left kidney"][1], world_left, atol=1e-6)


@pytest.mark.parametrize("right_value", [2, 3])
def test_ctpelvic1k_hip_values_follow_the_geometry(tmp_path, catalog, real, right_value):
    """Whichever of 2/3 a case puts on the patient's right, 'right hip' is the right-hand structure."""
    ct, seg, aff, cm = real
    right, left = seg == cm["iliopsoas_right"], seg == cm["iliopsoas_left"]
    lab = np.zeros(seg.shape, np.uint8)
    lab[seg == cm["vertebrae_L1"]] = 4
    lab[right] = right_value
    lab[left] = 5 - right_value
    root = tmp_path / "ctpelvic1k"
    _save(root / "CTPelvic1K_dataset6_data/dataset6_CLINIC_0042_data.nii.gz", ct, aff, "LPS")
    _save(root / "CTPelvic1K_dataset6_Anonymized_mask/ipcai2021_dataset6_Anonymized/dataset6_CLINIC_0042_mask_4label.nii.gz", lab, aff, "LPS")
    s = ingest("ctpelvic1k", root, catalog, workers=1)
    assert (s.scans, s.failed) == (1, 0), s.failures
    rows = _rows(catalog)
    assert rows["right hip"][0] == int(right.sum()) and rows["left hip"][0] == int(left.sum())
    assert rows["hip"][0] == int((left | right).sum())
    assert rows["lumbar vertebrae"][0] == int((seg == cm["vertebrae_L1"]).sum())
    assert rows["sacrum"][0] == 0
    [(case, pid, sat_id)] = catalog.connect().execute("SELECT case_id, patient_id, sat_id FROM scans").fetchall()
    assert (case, pid, sat_id) == ("dataset6_CLINIC_0042", "dataset6_CLINIC_0042", "dataset6_CLINIC_0042_data.nii.gz")
