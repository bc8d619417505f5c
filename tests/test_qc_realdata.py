"""Acceptance on real anatomy: TotalSegmentator's example CT laid out as a small local dataset.

Three cases share ``ct_small.nii.gz``: the original ``seg_small_total`` label map, the same map mirrored
left↔right in world space, and the map with the left kidney erased. QC must flag the mirrored case as
left/right swapped (naming the classes), the erased kidney as an empty class, and neither on the original.
"""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
import yaml

from satds.catalog import Catalog

#: The classes the local spec maps (every other TotalSegmentator value is a known value without a class).
CLASSES = [
    "kidney_left", "kidney_right", "liver", "spleen", "adrenal_gland_left", "adrenal_gland_right",
    "autochthon_left", "autochthon_right", "lung_lower_lobe_left", "lung_lower_lobe_right",
    "lung_upper_lobe_left", "lung_middle_lobe_right",
]  # fmt: skip


@pytest.fixture(scope="module")
def real_qc(realdata, tmp_path_factory):
    from satds.build import build
    from satds.ingest import ingest
    from satds.qc import run_qc
    from satds.specs import clear_cache

    tmp = tmp_path_factory.mktemp("realqc")
    total = json.loads((realdata / "classmaps.json").read_text())["total"]
    spec = {
        "key": "qc_real_ct",
        "title": "TotalSegmentator example CT (QC acceptance)",
        "modality": "CT",
        "region": "abdomen",
        "layout": {"match": "images/{case}.nii.gz", "label": "labels/{case}.nii.gz"},
        "official_split": "train",
        "labels": {int(v): (name if name in CLASSES else None) for v, name in total.items()},
    }
    (tmp / "specs").mkdir()
    (tmp / "specs" / "qc_real_ct.yaml").write_text(yaml.safe_dump(spec))
    root = tmp / "release"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    seg = nib.load(realdata / "seg_small_total.nii.gz")
    lab = np.asarray(seg.dataobj)
    x_axis = int(np.argmax(np.abs(seg.affine[0, :3])))  # the array axis along world x
    value = {name: int(v) for v, name in total.items()}
    cases = {
        "original": lab,
        "mirrored": np.flip(lab, axis=x_axis),
        "emptied": np.where(lab == value["kidney_left"], 0, lab).astype(lab.dtype),
    }
    for case, arr in cases.items():
        shutil.copy(realdata / "ct_small.nii.gz", root / "images" / f"{case}.nii.gz")
        nib.save(nib.Nifti1Image(np.ascontiguousarray(arr), seg.affine, seg.header), root / "labels" / f"{case}.nii.gz")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SATDS_SPEC_PATH", str(tmp / "specs"))
        clear_cache()
        try:
            cat = Catalog(tmp / "catalog")
            s = ingest("qc_real_ct", root, cat, workers=1)
            assert (s.scans, s.failed) == (3, 0), s.failures
            b = build(cat, workers=1)
            assert b.failed == 0, b.failures
            run_qc(cat, workers=1)
            rows = cat.connect().execute('SELECT scan_id, class_id, "check", severity, message FROM qc_flags').fetchall()
        finally:
            clear_cache()
    return cat, rows


def of(rows, case, check=None):
    return [r for r in rows if r[0] == f"qc_real_ct/{case}" and (check is None or r[2] == check)]


def test_mirrored_label_map_is_flagged_left_right_swapped(real_qc):
    _, rows = real_qc
    swapped = of(rows, "mirrored", "left_right_swapped")
    pairs = {r[1] for r in swapped if r[3] == "error"}
    assert {"kidney_left", "kidney_right", "adrenal_gland_left", "adrenal_gland_right", "autochthon_left", "autochthon_right"} <= pairs
    msg = next(r[4] for r in swapped if r[1] == "kidney_left")
    assert "left kidney" in msg and "right kidney" in msg
    # a lobe whose counterpart is absent (the right upper lobe) is caught against the body midline
    assert ("lung_upper_lobe_left", "warning") in {(r[1], r[3]) for r in swapped}


def test_emptied_class_is_flagged(real_qc):
    _, rows = real_qc
    empty = of(rows, "emptied", "empty_class")
    assert [r[1] for r in empty] == ["kidney_left"]
    assert "left kidney" in empty[0][4] and "0 voxels" in empty[0][4]
    assert of(rows, "emptied", "left_right_swapped") == []


def test_original_real_scan_is_clean(real_qc):
    _, rows = real_qc
    got = {(r[2], r[1]) for r in of(rows, "original") if r[2] != "preview"}
    # The one real finding: TotalSegmentator labels a single voxel of the right middle lobe in this crop.
    assert got == {("one_voxel_class", "lung_middle_lobe_right")}
