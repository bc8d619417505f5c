"""Geometry: orientation, grid identity, respacing grids and sides, checked in world millimetres."""

from __future__ import annotations

import numpy as np
import pytest

from satds.errors import GeometryError
from satds.geometry import align_to, grid_mismatch, patient_side, reorient, respacing
from satds.io import read_volume


def world(aff, ijk):
    return (np.asarray(aff) @ np.r_[np.asarray(ijk, float), 1.0])[:3]


def lps_affine(shape, spacing, origin=(10.0, -20.0, 5.0)):
    a = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    a[:3, 3] = origin
    return a


def test_reorient_keeps_every_voxel_at_its_world_position():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 1000, (5, 6, 7))
    aff = lps_affine(arr.shape, (0.8, 0.9, 2.5))
    out, out_aff = reorient(arr, aff, "RAS")
    assert "".join(__import__("nibabel").aff2axcodes(out_aff)) == "RAS"
    for ijk in [(0, 0, 0), (4, 5, 6), (2, 3, 1)]:
        p = world(aff, ijk)
        ijk2 = np.rint(np.linalg.solve(out_aff[:3, :3], p - out_aff[:3, 3])).astype(int)
        assert out[tuple(ijk2)] == arr[ijk]


def test_grid_mismatch_accepts_flips_and_rejects_shifts():
    aff = lps_affine((4, 5, 6), (1.0, 1.0, 2.0))
    arr = np.zeros((4, 5, 6))
    flipped, faff = reorient(arr, aff, "RAS")
    assert grid_mismatch(arr.shape, aff, flipped.shape, faff) is None
    shifted = faff.copy()
    shifted[:3, 3] += [0.5, 0, 0]
    assert "differ by" in grid_mismatch(arr.shape, aff, flipped.shape, shifted)
    assert "shape" in grid_mismatch(arr.shape, aff, (4, 5, 7), aff)
    with pytest.raises(GeometryError, match="grid does not match"):
        align_to(flipped, shifted, arr.shape, aff)


def test_align_to_undoes_a_flip_by_affine_not_index():
    arr = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    aff = lps_affine(arr.shape, (1.0, 1.0, 2.0))
    flipped, faff = reorient(arr, aff, "RAS")
    assert np.array_equal(align_to(flipped, faff, arr.shape, aff), arr)


def test_respacing_grid_has_exact_spacing_and_same_centre():
    aff = lps_affine((512, 512, 400), (0.78, 0.78, 1.0))
    canon_arr, canon = reorient(np.zeros((2, 2, 2)), aff, "RAS")  # only the affine matters
    r = respacing((512, 512, 400), aff, (1.0, 1.0, 3.0))
    assert r.out_shape == (399, 399, 133)
    out = r.out_affine()
    assert np.allclose(np.sqrt((out[:3, :3] ** 2).sum(0)), (1.0, 1.0, 3.0))
    centre_in = world(aff, (np.array((512, 512, 400)) - 1) / 2)
    centre_out = world(out, (np.array(r.out_shape) - 1) / 2)
    assert np.allclose(centre_in, centre_out)
    del canon_arr, canon


def test_patient_side_in_ras():
    assert patient_side(50.0, 0.0) == "right"
    assert patient_side(-50.0, 0.0) == "left"


def test_ras_right_kidney_has_larger_x_on_real_ct(realdata):
    """Pins the convention on real anatomy: in RAS+ the patient's right has larger world x."""
    import json

    seg = read_volume(realdata / "seg_small_total.nii.gz")
    names = {v: int(k) for k, v in json.loads((realdata / "classmaps.json").read_text())["total"].items()}

    def cx(name):
        ijk = np.argwhere(seg.array == names[name]).mean(axis=0)
        return world(seg.affine, ijk)[0]

    assert cx("kidney_right") > cx("kidney_left")
    assert cx("liver") > cx("spleen")  # the liver lies on the patient's right
    assert patient_side(cx("liver"), (cx("liver") + cx("spleen")) / 2) == "right"
