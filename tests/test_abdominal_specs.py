"""AMOS (CT vs MRI by case number, value 15 unlabelled) and AbdomenCT-1K (images without masks) on their phantoms."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np

from satds.ingest import ingest
from satds.phantoms import generate


def q(catalog, sql):
    return catalog.connect().execute(sql).fetchall()


def test_amos_ct_and_mri_specs_split_one_download_by_case_number(tmp_path, catalog):
    root = generate("amos22_ct", tmp_path / "amos22")
    # Replace the phantom's empty MRI placeholder by a readable scan: only the MRI spec may take it.
    for folder in ("imagesTr", "labelsTr"):
        shutil.copy(root / folder / "amos_0001.nii.gz", root / folder / "amos_0507.nii.gz")
    shutil.copy(root / "imagesTr" / "amos_0001.nii.gz", root / "imagesTs" / "amos_0600.nii.gz")
    s = ingest("amos22_ct", root, catalog, workers=1)
    assert (s.scans, s.failed) == (3, 0), s.failures
    s = ingest("amos22_mri", root, catalog, workers=1)
    assert (s.scans, s.failed) == (2, 0), s.failures
    got = sorted(q(catalog, "SELECT dataset, case_id, official_split, sat_id FROM scans"))
    assert got == [
        ("amos22_ct", "amos_0001", "train", "amos_0001.nii.gz"),
        ("amos22_ct", "amos_0008", "validation", "amos_0008.nii.gz"),
        ("amos22_ct", "amos_0111", "test", "amos_0111.nii.gz"),
        ("amos22_mri", "amos_0507", "train", "amos_0507.nii.gz"),
        ("amos22_mri", "amos_0600", "test", "amos_0600.nii.gz"),
    ]


def test_amos_value_15_is_unlabelled_and_an_unknown_value_fails(tmp_path, catalog):
    root = generate("amos22_ct", tmp_path / "amos22")
    p = root / "labelsTr" / "amos_0001.nii.gz"
    img = nib.load(p)
    lab = np.asarray(img.dataobj).copy()
    before = {v: int((lab == v).sum()) for v in range(1, 15)}
    lab[:3, :3, :3] = 15  # a corner outside the body: no organ voxel changes
    nib.save(nib.Nifti1Image(lab, img.affine), p)
    s = ingest("amos22_ct", root, catalog, workers=1)
    assert (s.scans, s.failed) == (3, 0), s.failures
    [(src,)] = q(catalog, "SELECT source_values FROM scans WHERE case_id = 'amos_0001'")
    assert "15" in src
    vox = dict(q(catalog, "SELECT class_name, voxels FROM annotations WHERE scan_id = 'amos22_ct/amos_0001'"))
    assert vox["spleen"] == before[1] and vox["aorta"] == before[8] and vox["urinary bladder"] == before[14]
    assert vox["kidney"] == before[2] + before[3]
    assert sum(v for k, v in vox.items() if k not in ("kidney", "adrenal gland")) == sum(before.values())
    lab[0, 0, 0] = 16
    nib.save(nib.Nifti1Image(lab, img.affine), p)
    s = ingest("amos22_ct", root, catalog, workers=1)
    assert s.failed == 1
    assert s.failures[0].startswith("amos22_ct/amos_0001: labelsTr/amos_0001.nii.gz: label value(s) [16] are not in the spec")


def test_abdomenct1k_image_without_mask_is_ingested_unlabelled(tmp_path, catalog):
    root = generate("abdomenct1k", tmp_path / "abdomenct1k")
    assert (root / "AbdomenCT-1K-ImagePart3" / "Case_01050_0000.nii.gz").exists()
    (root / "Mask" / "Case_01050.nii.gz").unlink()
    s = ingest("abdomenct1k", root, catalog, workers=1)
    assert (s.scans, s.failed) == (3, 0), s.failures
    got = dict((r[0], (r[1], r[2])) for r in q(catalog, "SELECT case_id, label_kind, sat_id FROM scans"))
    assert got == {"Case_00001": ("labelmap", "Case_00001_0000.nii.gz"), "Case_00433": ("labelmap", "Case_00433_0000.nii.gz"),
                   "Case_01050": ("none", "Case_01050_0000.nii.gz")}
    assert q(catalog, "SELECT count(*) FROM annotations WHERE scan_id = 'abdomenct1k/Case_01050'") == [(0,)]
