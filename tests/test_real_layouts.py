"""One real CT in six releases' layouts (codings, orientations, axis orders, dtypes) gives one anatomy.

ct_small + its TotalSegmentator label map are written as TotalSegmentator (per-class files, LAS),
BTCV (label map, LPS), KiTS19 (slice-first IPL, kidneys only: sides derived from the affine), the
Decathlon Liver and Spleen (float32 RAS), AMOS (LPS). Ingested, every class shared by two layouts has
the same voxels and centroid; built, the normalised images are bit-identical and the class masks equal;
split, the copies form one leakage group.
"""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest

from satds.build import build
from satds.catalog import Catalog
from satds.ingest import ingest
from satds.phantoms.realdata import ts_classes, write_real_as
from satds.specs import get_spec
from satds.split import run_split

LAYOUTS = ["totalsegmentator", "btcv", "kits19", "msd_liver", "msd_spleen", "amos22_ct"]


@pytest.fixture(scope="module")
def real_catalog(realdata, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("real_layouts")
    cat = Catalog(tmp / "catalog")
    names = ts_classes(realdata, "seg_small_total.nii.gz")
    for key in LAYOUTS:
        spec = get_spec(key)
        root = tmp / key
        write_real_as(key, root, realdata / "ct_small.nii.gz", realdata / "seg_small_total.nii.gz", names, dict(spec.phantom.cases[0]))
        s = ingest(key, root, cat, workers=1)
        assert (s.scans, s.failed) == (1, 0), s.failures
    b = build(cat, workers=1)
    assert (b.built, b.failed) == (len(LAYOUTS), 0), b.failures
    return cat


def table(cat, sql):
    return cat.connect().execute(sql).fetchall()


def test_shared_classes_have_identical_voxels_and_centroids(real_catalog):
    rows = table(real_catalog, "SELECT dataset, class_name, voxels, centroid_mm FROM annotations WHERE voxels > 0")
    by_class: dict[str, list] = {}
    for ds, cls, v, c in rows:
        by_class.setdefault(cls, []).append((ds, v, np.asarray(c)))
    shared = {c: v for c, v in by_class.items() if len(v) > 1}
    # The organs every abdominal layout carries must be among them, from several releases each.
    for cls, n in {"liver": 4, "spleen": 4, "left kidney": 4, "right kidney": 4, "pancreas": 3}.items():
        assert len(shared[cls]) >= n, (cls, shared.get(cls))
    for cls, entries in shared.items():
        voxels = {v for _, v, _ in entries}
        assert len(voxels) == 1, (cls, [(d, v) for d, v, _ in entries])
        for (_, _, a), (_, _, b) in itertools.combinations(entries, 2):
            assert np.allclose(a, b, atol=1e-6), cls


def test_kits_sides_from_the_affine_match_the_labelled_sides(real_catalog):
    """KiTS has one 'kidney' value; satds's left/right split equals TotalSegmentator's labelled sides."""
    got = dict(table(real_catalog, "SELECT class_name, voxels FROM annotations WHERE dataset = 'kits19' AND class_name LIKE '%kidney'"))
    ref = dict(table(real_catalog, "SELECT class_name, voxels FROM annotations WHERE dataset = 'totalsegmentator' AND class_name IN ('left kidney', 'right kidney')"))
    assert got["left kidney"] == ref["left kidney"] and got["right kidney"] == ref["right kidney"]
    assert got["kidney"] == ref["left kidney"] + ref["right kidney"]


def test_fingerprints_are_format_independent(real_catalog):
    prints = {fp for (fp,) in table(real_catalog, "SELECT fingerprint FROM scans")}
    assert len(prints) == 1


def test_normalised_images_are_bit_identical_and_masks_equal(real_catalog):
    rows = table(real_catalog, "SELECT scan_id, normalised_image, normalised_label FROM scans ORDER BY scan_id")
    images = {sid: nib.load(p) for sid, p, _ in rows}
    ref_id = rows[0][0]
    ref = images[ref_id]
    for sid, img in images.items():
        assert np.allclose(img.affine, ref.affine) and img.shape == ref.shape, sid
        assert np.array_equal(np.asarray(img.dataobj), np.asarray(ref.dataobj)), sid
    labels = {sid: np.asarray(nib.load(q).dataobj) for sid, _, q in rows}
    masks: dict[str, dict[str, np.ndarray]] = {}
    for sid, cls, values in table(real_catalog, "SELECT scan_id, class_name, label_values FROM annotations WHERE voxels > 0"):
        masks.setdefault(cls, {})[sid] = np.isin(labels[sid], values)
    for cls, per_scan in masks.items():
        first = next(iter(per_scan.values()))
        for sid, m in per_scan.items():
            assert np.array_equal(m, first), (cls, sid)


def test_copies_of_one_image_form_one_leakage_group(real_catalog):
    s = run_split(real_catalog, seed=3)
    groups = {g for (g,) in table(real_catalog, "SELECT DISTINCT group_id FROM splits")}
    sides = {x for (x,) in table(real_catalog, "SELECT DISTINCT split FROM splits")}
    assert len(groups) == 1 and len(sides) == 1
    assert len(next(iter(s.cross_groups.values()))) == len(LAYOUTS)


def test_large_organs_keep_their_volume_and_stay_aligned(real_catalog):
    """Normalised volumes within 2 % of the source for organs >= 50 ml; centroids within half a voxel."""
    rows = table(real_catalog, "SELECT a.class_name, a.volume_ml, a.volume_ml_target, a.label_values, a.centroid_mm, s.normalised_label FROM annotations a JOIN scans s USING (scan_id) WHERE s.dataset = 'totalsegmentator' AND a.volume_ml >= 50 AND NOT a.derived")
    assert len(rows) >= 4
    for cls, ml, mlt, values, centroid, lab_path in rows:
        assert abs(mlt / ml - 1) <= 0.02, (cls, ml, mlt)
        lab = nib.load(lab_path)
        ijk = np.argwhere(np.isin(np.asarray(lab.dataobj), values)).mean(axis=0)
        c = (lab.affine @ np.r_[ijk, 1])[:3]
        assert np.all(np.abs(c - np.asarray(centroid)) <= [0.5, 0.5, 1.5]), cls
