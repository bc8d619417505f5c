"""autoPET family: DAP Atlas masks paired with autoPET CTs; autoPET's negative studies; DAP's label rules."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest

from satds.ingest import dataset_classes, discover, ingest
from satds.ingest.read import load_channels, load_labels
from satds.labels.classes import UNLABELLED
from satds.ontology import load_ontology
from satds.phantoms import generate
from satds.specs import get_spec

STUDY = "autoPET_nii/PETCT_0011f3deaf/03-23-2003-NA-PET-CT Ganzkoerper  primaer mit KM-10445"
MASK = "Atlas_final_dataset_V1_533/AutoPET_0011f3deaf_10445.nii.gz"


@pytest.fixture
def dap(tmp_path):
    return generate("dap_atlas", tmp_path / "dap")


def failures(catalog):
    return catalog.connect().execute('SELECT "case", file, error FROM failures').fetchall()


def test_dap_masks_pair_with_their_autopet_ct(dap):
    cases, problems, _ = discover(get_spec("dap_atlas"), dap)
    assert problems == []
    by_id = {c.case_id: c for c in cases}
    # The third phantom study (suffix 98651) has a CT but no DAP mask: not a DAP case.
    assert sorted(by_id) == ["PETCT_0011f3deaf_10445", "PETCT_01140d52d8_56839"]
    c = by_id["PETCT_0011f3deaf_10445"]
    assert c.images == [f"{STUDY}/CT.nii.gz"]
    assert c.label == MASK
    assert (c.patient_id, c.sat_id) == ("PETCT_0011f3deaf", "PETCT_0011f3deaf")


def test_dap_mask_without_its_ct_fails_alone(dap, catalog):
    shutil.rmtree(dap / STUDY)
    s = ingest("dap_atlas", dap, catalog, workers=1)
    assert (s.scans, s.failed) == (1, 1)
    [(case, file, msg)] = failures(catalog)
    assert (case, file) == ("PETCT_0011f3deaf_10445", MASK)
    assert "no autoPET study PETCT_0011f3deaf/*-10445/CT.nii.gz under the root" in msg


def test_dap_ambiguous_study_suffix_fails(dap, catalog):
    shutil.copytree(dap / STUDY, dap / "autoPET_nii/PETCT_0011f3deaf/01-01-2004-NA-PET-CT Ganzkoerper-10445")
    s = ingest("dap_atlas", dap, catalog, workers=1)
    assert (s.scans, s.failed) == (1, 1)
    [(case, _, msg)] = failures(catalog)
    assert case == "PETCT_0011f3deaf_10445" and "2 autoPET studies match" in msg


def _labels(root, case_id="PETCT_0011f3deaf_10445"):
    spec = get_spec("dap_atlas")
    cases, _, _ = discover(spec, root)
    case = next(c for c in cases if c.case_id == case_id)
    ref = load_channels(spec, case, root)[0]
    return load_labels(spec, dataset_classes("dap_atlas", str(root)), load_ontology(), case, root, ref)


def test_dap_unknown_and_rectum_voxels_are_unlabelled_not_background(dap):
    p = dap / MASK
    img = nib.load(p)
    arr = np.asarray(img.dataobj).copy()
    free = np.argwhere(arr == 0)
    arr[tuple(free[:7].T)] = 1  # "left to annotate"
    arr[tuple(free[7:10].T)] = 11  # rectum, a class SAT-DS's list lacks
    nib.save(nib.Nifti1Image(arr, img.affine), p)
    labels = _labels(dap)
    unl = [i for i, a in enumerate(labels.atoms) if a == frozenset({UNLABELLED})]
    assert len(unl) == 1 and int((labels.array == unl[0]).sum()) == 10
    assert "rectum" not in {c for a in labels.atoms for c in a}


def test_dap_heart_includes_its_parts_and_breasts_split_by_side(dap):
    arr = np.asarray(nib.load(dap / MASK).dataobj)
    labels = _labels(dap)
    assert int(labels.mask("heart").sum()) == int(np.isin(arr, range(105, 112)).sum())
    assert int(labels.mask("muscle").sum()) == int(np.isin(arr, [2, *range(32, 42)]).sum())
    left, right = int(labels.mask("breast_left").sum()), int(labels.mask("breast_right").sum())
    # Swap the two breast values: the sides come from the anatomy, not from the value.
    p = dap / MASK
    img = nib.load(p)
    swapped = arr.copy()
    swapped[arr == 22], swapped[arr == 23] = 23, 22
    nib.save(nib.Nifti1Image(swapped, img.affine), p)
    again = _labels(dap)
    assert (int(again.mask("breast_left").sum()), int(again.mask("breast_right").sum())) == (left, right)
    assert left > 0 and right > 0


def test_autopet_negative_study_is_kept_with_tumor_absent(tmp_path, catalog):
    root = generate("autopet", tmp_path / "ap")
    ingest("autopet", root, catalog, workers=1)
    rows = dict(catalog.connect().execute("SELECT scan_id, voxels FROM annotations WHERE class_name = 'tumor'").fetchall())
    assert rows["autopet/PETCT_01140d52d8_56839"] == 0
    assert rows["autopet/PETCT_0011f3deaf_10445"] > 0 and rows["autopet/PETCT_0011f3deaf_98651"] > 0
