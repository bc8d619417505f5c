"""Sides from the affine on real anatomy, for every release whose one bilateral value satds splits.

The real example CT (ct_small, whose TotalSegmentator label map names each side) is written in the native
layouts of KiTS23, AbdomenCT-1K, CT-ORG and WORD, where both kidneys, both lungs or both adrenal glands
share one value. Ingested, satds's left and right classes equal TotalSegmentator's labelled sides voxel for
voxel. The MR path (its own body threshold) is checked the same way on the real MR, written as a crossMoDA
case whose cochlea value holds the two kidneys (a stand-in: the example scans have no inner ears).
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from satds.catalog import Catalog
from satds.ingest import ingest
from satds.phantoms.realdata import ts_classes, write_real_as
from satds.specs import get_spec

#: release → {satds class: the TotalSegmentator classes it must equal}
CT_SIDES = {
    "kits23": {"left kidney": ["kidney_left"], "right kidney": ["kidney_right"]},
    "abdomenct1k": {"left kidney": ["kidney_left"], "right kidney": ["kidney_right"]},
    "ct_org": {
        "left kidney": ["kidney_left"],
        "right kidney": ["kidney_right"],
        "left lung": ["lung_upper_lobe_left", "lung_lower_lobe_left"],
        "right lung": ["lung_upper_lobe_right", "lung_middle_lobe_right", "lung_lower_lobe_right"],
    },
    "word": {"left adrenal gland": ["adrenal_gland_left"], "right adrenal gland": ["adrenal_gland_right"]},
}


def _voxels(seg: np.ndarray, ids: dict[str, int], names: list[str]) -> int:
    return int(np.isin(seg, [ids[n] for n in names if n in ids]).sum())


@pytest.fixture(scope="module")
def ct_catalog(realdata, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sides_real")
    cat = Catalog(tmp / "catalog")
    names = ts_classes(realdata, "seg_small_total.nii.gz")
    for key in CT_SIDES:
        write_real_as(key, tmp / key, realdata / "ct_small.nii.gz", realdata / "seg_small_total.nii.gz", names, dict(get_spec(key).phantom.cases[0]))
        s = ingest(key, tmp / key, cat, workers=1)
        assert (s.scans, s.failed) == (1, 0), s.failures
    return cat


@pytest.mark.parametrize("key", sorted(CT_SIDES))
def test_sides_from_the_affine_equal_the_labelled_sides(key, ct_catalog, realdata):
    seg = np.asarray(nib.load(realdata / "seg_small_total.nii.gz").dataobj)
    ids = {v: int(k) for k, v in json.loads((realdata / "classmaps.json").read_text())["total"].items()}
    rows = dict(ct_catalog.connect().execute("SELECT class_name, voxels FROM annotations WHERE dataset = ?", [key]).fetchall())
    for cls, ts_names in CT_SIDES[key].items():
        assert rows[cls] == _voxels(seg, ids, ts_names) > 0, (key, cls)
    # Both sides together are the release's one value (e.g. KiTS23's 'kidney'), nothing lost or doubled.
    for organ in {c.split(" ", 1)[1] for c in CT_SIDES[key]}:
        assert rows[organ] == rows[f"left {organ}"] + rows[f"right {organ}"], (key, organ)


def test_left_lies_at_smaller_world_x(ct_catalog):
    rows = ct_catalog.connect().execute("SELECT dataset, class_name, centroid_mm FROM annotations WHERE class_name LIKE 'left %' OR class_name LIKE 'right %'").fetchall()
    cen = {(d, c): np.asarray(x) for d, c, x in rows}
    pairs = {(d, c[5:]) for d, sides in CT_SIDES.items() for c in sides if c.startswith("left ")}
    assert len(pairs) == 5
    for d, organ in pairs:
        assert cen[(d, f"left {organ}")][0] < cen[(d, f"right {organ}")][0], (d, organ)


def test_mri_sides_on_the_real_mr(realdata, tmp_path, catalog):
    """crossMoDA's cochlea value split on real MR anatomy: the MR midline comes from its own intensity threshold."""
    mr = nib.load(realdata / "mr_small.nii.gz")
    seg = np.asarray(nib.load(realdata / "seg_small_total_mr.nii.gz").dataobj)
    ids = {v: int(k) for k, v in json.loads((realdata / "classmaps.json").read_text())["total_mr"].items()}
    left, right = seg == ids["kidney_left"], seg == ids["kidney_right"]
    lab = np.zeros(seg.shape, np.uint8)
    lab[left | right] = 2  # crossMoDA's value 2: both cochleas
    src = tmp_path / "crossmoda_training" / "source_training"
    src.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.asarray(mr.dataobj, np.float32), mr.affine), src / "crossmoda_7_ceT1.nii.gz")
    nib.save(nib.Nifti1Image(lab, mr.affine), src / "crossmoda_7_Label.nii.gz")
    s = ingest("crossmoda2021", tmp_path / "crossmoda_training", catalog, workers=1)
    assert (s.scans, s.failed) == (1, 0), s.failures
    rows = dict(catalog.connect().execute("SELECT class_name, voxels FROM annotations").fetchall())
    assert rows["left cochlea"] == int(left.sum()) > 0 and rows["right cochlea"] == int(right.sum()) > 0
    assert rows["cochlea"] == rows["left cochlea"] + rows["right cochlea"]
