"""QC checks: each one fires on a fixture made to trip it and stays quiet on a clean one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from satds.ontology import load_ontology
from satds.qc import QCConfig
from satds.qc.body import air_level, body_mask, midline_x
from satds.qc.check_geometry import geometry, obliquity_degrees, world_spacing
from satds.qc.check_image import outside_body
from satds.qc.check_intensity import intensity
from satds.qc.check_labels import empty_and_tiny, laterality, robust_z, volume_outliers
from satds.qc.scan import ClassInfo

CFG = QCConfig()


@pytest.fixture(scope="module")
def onto():
    return load_ontology()


# ---------------------------------------------------------------- label outside the body
def ct_phantom(shape=(60, 50, 12)):
    """A z-scored-looking CT: air clipped to one floor value, an elliptic body with a lung-like air hole."""
    x, y = np.ogrid[: shape[0], : shape[1]]
    body2d = ((x - 30) / 24.0) ** 2 + ((y - 25) / 18.0) ** 2 <= 1
    lung2d = ((x - 20) / 6.0) ** 2 + ((y - 25) / 6.0) ** 2 <= 1
    img = np.full(shape, -1.1, dtype=np.float32)  # the clip floor (-500 HU after z-score)
    img[body2d] = 0.3
    img[lung2d] = -1.1  # air inside the body: must count as body
    img[35:38, 24:27, :] = 2.6  # bone, at the clip ceiling
    affine = np.diag([1.0, 1.0, 3.0, 1.0])
    return img, affine, body2d, lung2d


def atom_label(shape, masks):
    lab = np.zeros(shape, dtype=np.uint8)
    for v, m in enumerate(masks, start=1):
        lab[m] = v
    return lab


def test_air_level_is_the_ct_floor_and_body_fills_inner_air():
    img, aff, body2d, lung2d = ct_phantom()
    level = air_level(img, is_ct=True, ct_window=(-500.0, 1000.0), cfg=CFG)
    assert level == pytest.approx(-1.1)
    body = body_mask(img, level)
    assert body[..., 5][lung2d].all()  # the lung is inside the body
    assert not body[0, 0, 0] and body[30, 25, 5]
    assert midline_x(body, aff) == pytest.approx(29.5, abs=0.6)


def test_air_level_inverts_the_zscore_when_both_plateaus_exist():
    # window [-1000, 1000] HU: floor -2, ceiling 2 → -500 HU is -1.0
    img = np.zeros((20, 20, 4), dtype=np.float32)
    img[:5] = -2.0
    img[-5:] = 2.0
    assert air_level(img, is_ct=True, ct_window=(-1000.0, 1000.0), cfg=CFG) == pytest.approx(-1.0)
    # no floor plateau: no voxel reached the clip floor, so the crop holds no air
    rng = np.random.default_rng(0)
    assert air_level(rng.normal(size=(10, 10, 4)).astype(np.float32), is_ct=True, ct_window=(-500.0, 1000.0), cfg=CFG) is None


def test_label_outside_body_fires():
    img, aff, body2d, _ = ct_phantom()
    body = body_mask(img, air_level(img, is_ct=True, ct_window=(-500.0, 1000.0), cfg=CFG))
    stray = np.zeros(img.shape, dtype=bool)
    stray[0:4, 0:10, 2:6] = True  # a block in the air, well away from the skin
    inside = np.zeros(img.shape, dtype=bool)
    inside[28:33, 20:30, 2:6] = True
    lab = atom_label(img.shape, [stray, inside])
    classes = [ClassInfo("spleen", "spleen", [1], 160, 160), ClassInfo("liver", "liver", [2], 200, 200)]
    flags = outside_body(lab, body, (1.0, 1.0, 3.0), classes, CFG, scan_id="d/s", dataset="d")
    assert [(f["class_id"], f["severity"]) for f in flags] == [("spleen", "error")]
    assert "spleen" in flags[0]["message"] and flags[0]["value"] == pytest.approx(1.0)


def test_label_outside_body_quiet_for_inner_air_and_skin_partial_volume():
    img, aff, body2d, lung2d = ct_phantom()
    body = body_mask(img, air_level(img, is_ct=True, ct_window=(-500.0, 1000.0), cfg=CFG))
    lung = np.repeat(lung2d[:, :, None], img.shape[2], axis=2)
    # A "skin" class: the body rim, one voxel too wide (linear interpolation spill-over).
    from scipy.ndimage import binary_dilation, binary_erosion

    rim2d = binary_dilation(body2d) & ~binary_erosion(body2d, iterations=2)
    skin = np.repeat(rim2d[:, :, None], img.shape[2], axis=2)
    lab = atom_label(img.shape, [lung, skin])
    classes = [ClassInfo("lung_left", "left lung", [1], 1, 1), ClassInfo("skin", "skin", [2], 1, 1)]
    assert outside_body(lab, body, (1.0, 1.0, 3.0), classes, CFG, scan_id="d/s", dataset="d") == []


# ---------------------------------------------------------------- volume outliers
def ann_rows(volumes, class_id="liver", dataset="d", derived=False):
    return pd.DataFrame(
        [
            {"scan_id": f"{dataset}/s{i}", "dataset": dataset, "class_id": class_id, "class_name": class_id, "derived": derived, "voxels": 1000, "voxels_target": 900, "volume_ml": v, "centroid_mm": [0.0, 0.0, 0.0]}
            for i, v in enumerate(volumes)
        ]
    )


def test_volume_outlier_fires_on_a_tiny_liver():
    vols = [1500, 1400, 1650, 1550, 1300, 1700, 1450, 1600, 1520, 3.0]
    flags = volume_outliers(ann_rows(vols), CFG)
    assert [(f["scan_id"], f["class_id"]) for f in flags] == [("d/s9", "liver")]
    assert flags[0]["value"] < -CFG.volume_z and "small" in flags[0]["message"]


def test_volume_outlier_quiet_on_normal_spread_few_scans_and_derived():
    assert volume_outliers(ann_rows([1500, 1400, 1650, 1550, 1300, 1700, 1450, 1600, 1520, 1800]), CFG) == []
    assert volume_outliers(ann_rows([1500, 1400, 1650, 3.0]), CFG) == []  # too few scans for statistics
    assert volume_outliers(ann_rows([1500, 1400, 1650, 1550, 1300, 1700, 1450, 1600, 1520, 3.0], derived=True), CFG) == []
    # statistics over the collection, flags only for the datasets asked for
    assert volume_outliers(ann_rows([1500, 1400, 1650, 1550, 1300, 1700, 1450, 1600, 1520, 3.0]), CFG, datasets={"other"}) == []


def test_robust_z_zero_mad_falls_back():
    assert robust_z(np.array([1.0, 1.0, 1.0, 1.0])) is None
    z = robust_z(np.log(np.array([10.0, 10, 10, 10, 10, 10, 1000])))
    assert z is not None and z[-1] > 3.5 and abs(z[0]) < 1e-9


# ---------------------------------------------------------------- empty and one-voxel classes
def test_empty_one_voxel_and_lost_fire(onto):
    df = pd.DataFrame(
        [
            {"scan_id": "d/a", "dataset": "d", "class_id": "kidney_tumor", "class_name": "kidney tumor", "derived": False, "voxels": 0, "voxels_target": 0},
            {"scan_id": "d/a", "dataset": "d", "class_id": "kidney_cyst", "class_name": "kidney cyst", "derived": False, "voxels": 1, "voxels_target": 1},
            {"scan_id": "d/a", "dataset": "d", "class_id": "kidney", "class_name": "kidney", "derived": False, "voxels": 40, "voxels_target": 0},
        ]
    )
    got = {(f["check"], f["class_id"], f["severity"]) for f in empty_and_tiny(df, onto, CFG)}
    assert got == {("empty_class", "kidney_tumor", "info"), ("one_voxel_class", "kidney_cyst", "warning"), ("lost_in_build", "kidney", "warning")}


def test_empty_anatomy_most_scans_have_is_a_warning_and_normal_rows_are_quiet(onto):
    rows = [{"scan_id": f"d/s{i}", "dataset": "d", "class_id": "spleen", "class_name": "spleen", "derived": False, "voxels": 500, "voxels_target": 400} for i in range(5)]
    assert empty_and_tiny(pd.DataFrame(rows), onto, CFG) == []
    rows[0] = {**rows[0], "voxels": 0, "voxels_target": 0}
    [f] = empty_and_tiny(pd.DataFrame(rows), onto, CFG)
    assert (f["check"], f["severity"], f["scan_id"]) == ("empty_class", "warning", "d/s0")


# ---------------------------------------------------------------- left/right
def lat_rows(items, scan="d/s"):
    return pd.DataFrame([{"scan_id": scan, "dataset": "d", "class_id": c, "class_name": c, "derived": False, "voxels": 100, "voxels_target": 100, "volume_ml": 1.0, "centroid_mm": [x, 0.0, 0.0]} for c, x in items])


def test_left_right_swap_of_a_pair_fires_for_both_classes(onto):
    flags = laterality(lat_rows([("kidney_left", 60.0), ("kidney_right", -55.0)]), onto, CFG)
    assert {(f["class_id"], f["severity"]) for f in flags} == {("kidney_left", "error"), ("kidney_right", "error")}
    assert flags[0]["value"] == pytest.approx(115.0)


def test_left_right_correct_pair_is_quiet(onto):
    assert laterality(lat_rows([("kidney_left", -60.0), ("kidney_right", 55.0)]), onto, CFG, {"d/s": 0.0}) == []


def test_left_right_single_side_against_the_midline(onto):
    flags = laterality(lat_rows([("kidney_left", 70.0)]), onto, CFG, {"d/s": 0.0})
    assert [(f["check"], f["class_id"], f["severity"]) for f in flags] == [("left_right_swapped", "kidney_left", "warning")]
    # within the margin, on the right side, or without a midline: quiet
    assert laterality(lat_rows([("kidney_left", 5.0)]), onto, CFG, {"d/s": 0.0}) == []
    assert laterality(lat_rows([("kidney_right", 70.0)]), onto, CFG, {"d/s": 0.0}) == []
    assert laterality(lat_rows([("kidney_left", 70.0)]), onto, CFG, {}) == []
    # the right ventricle lies left of the body midline: heart parts are judged against their pair only
    assert laterality(lat_rows([("heart_ventricle_right", -30.0)]), onto, CFG, {"d/s": 0.0}) == []


# ---------------------------------------------------------------- geometry
def scan_rows(spacings, codes=None, oblique=None):
    rows = []
    for i, sp in enumerate(spacings):
        aff = np.diag([*sp, 1.0])
        if oblique is not None and i == oblique:
            t = np.radians(10)
            rot = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
            aff[:3, :3] = rot @ aff[:3, :3]
        c = codes[i] if codes else "RAS"
        if c == "LPS":
            aff[:2] *= -1
        rows.append({"scan_id": f"d/s{i}", "dataset": "d", "spacing": list(sp), "affine": aff.ravel().tolist(), "axcodes": c})
    return pd.DataFrame(rows)


def test_world_spacing_and_obliquity():
    aff = np.array([[0, 0, -3.0, 0], [0, -1.5, 0, 0], [-0.8, 0, 0, 0], [0, 0, 0, 1]])  # IPL-ish
    assert np.allclose(world_spacing(aff), [3.0, 1.5, 0.8])
    assert obliquity_degrees(np.diag([1.0, 1, 1, 1])) == pytest.approx(0.0)


def test_geometry_checks_fire():
    sp = [(0.8, 0.8, 2.5)] * 5 + [(0.8, 0.8, 7.5)]
    got = {(f["check"], f["scan_id"]) for f in geometry(scan_rows(sp, codes=["RAS"] * 5 + ["LPS"], oblique=2), CFG)}
    assert ("spacing_outlier", "d/s5") in got
    assert ("unusual_orientation", "d/s5") in got
    assert ("oblique_affine", "d/s2") in got
    aniso = geometry(scan_rows([(0.5, 0.5, 8.0)] + [(0.8, 0.8, 2.5)] * 3), CFG)
    assert [(f["check"], f["severity"]) for f in aniso if f["check"] == "anisotropic_spacing"] == [("anisotropic_spacing", "warning")]
    # a dataset acquired that way: info, not a warning
    typical = geometry(scan_rows([(0.5, 0.5, 8.0)] * 4), CFG)
    assert {f["severity"] for f in typical if f["check"] == "anisotropic_spacing"} == {"info"}


def test_geometry_checks_quiet_on_a_consistent_dataset():
    assert geometry(scan_rows([(0.8, 0.8, 2.5), (0.75, 0.75, 2.5), (0.9, 0.9, 3.0), (0.8, 0.8, 2.0)]), CFG) == []
    # too few scans to compare: only absolute checks apply
    assert geometry(scan_rows([(0.8, 0.8, 2.5), (0.8, 0.8, 6.0)], codes=["RAS", "LPS"]), CFG) == []


# ---------------------------------------------------------------- source intensity
def ct_source(offset=0.0, pad=None):
    rng = np.random.default_rng(1)
    a = np.full((40, 40, 10), -1000.0) + rng.normal(0, 5, (40, 40, 10))
    a[10:30, 10:30] = 40 + rng.normal(0, 10, (20, 20, 10))
    a[18:22, 18:22] = 900
    if pad is not None:
        a[:3] = pad
    return (a + offset).astype(np.float32)


def test_ct_intensity_quiet_on_hu_and_padding():
    assert intensity(ct_source(), "CT", CFG, scan_id="d/s", dataset="d") == []
    assert intensity(ct_source(pad=-3024.0), "CT", CFG, scan_id="d/s", dataset="d") == []


def test_ct_without_rescale_fires():
    flags = intensity(ct_source(offset=1024.0), "CT", CFG, scan_id="d/s", dataset="d")  # stored values, intercept not applied
    assert [(f["check"], f["severity"]) for f in flags] == [("ct_without_air", "error")]
    big = ct_source()
    big[10:30, 10:30] = 20000.0  # not HU at all
    assert "intensity_range" in {f["check"] for f in intensity(big, "CT", CFG, scan_id="d/s", dataset="d")}


def test_mri_negative_and_constant():
    rng = np.random.default_rng(2)
    mr = np.abs(rng.normal(300, 50, (30, 30, 8))).astype(np.float32)
    assert intensity(mr, "MRI T2", CFG, scan_id="d/s", dataset="d") == []
    prenorm = (mr - mr.mean()) / mr.std()
    assert [f["check"] for f in intensity(prenorm, "MRI T2", CFG, scan_id="d/s", dataset="d")] == ["negative_intensity"]
    assert [f["check"] for f in intensity(np.zeros((5, 5, 5)), "MRI", CFG, scan_id="d/s", dataset="d")] == ["constant_image"]
