"""Respacing keeps physical alignment: a world-coordinate ramp resampled linearly stays that ramp."""

from __future__ import annotations

import numpy as np

from satds.build import resample
from satds.geometry import reorient, respacing


def ramp(shape, aff, axis):
    idx = np.indices(shape, dtype=np.float64)
    return (aff[axis, 0] * idx[0] + aff[axis, 1] * idx[1] + aff[axis, 2] * idx[2] + aff[axis, 3]).astype(np.float32)


def test_linear_resampling_of_a_world_ramp_is_exact_inside():
    shape = (30, 26, 40)
    aff = np.diag([0.78, 0.9, 1.0, 1.0])
    aff[:3, 3] = (-11.0, 4.0, 7.5)
    r = respacing(shape, aff, (1.0, 1.0, 3.0))
    start, stop = np.zeros(3, int), np.asarray(r.out_shape)
    out_aff = r.out_affine(start)
    for axis in range(3):
        out = resample.linear(ramp(shape, aff, axis), r, start, stop)
        expect = ramp(out.shape, out_aff, axis)
        inner = (slice(1, -1),) * 3  # the edges are clamped (edge mode)
        assert np.allclose(out[inner], expect[inner], atol=1e-3)


def test_cropped_box_equals_the_same_box_of_the_full_output():
    rng = np.random.default_rng(1)
    arr = rng.normal(size=(31, 27, 19)).astype(np.float32)
    aff = np.diag([0.7, 0.7, 1.2, 1.0])
    r = respacing(arr.shape, aff, (1.0, 1.0, 3.0))
    full = resample.linear(arr, r, np.zeros(3, int), np.asarray(r.out_shape))
    start, stop = np.array([3, 2, 1]), np.array([15, 11, 6])
    part = resample.linear(arr, r, start, stop)
    assert np.allclose(part, full[3:15, 2:11, 1:6], atol=1e-5)
    lab = (arr > 1).astype(np.uint8)
    assert np.array_equal(resample.nearest(lab, r, start, stop), resample.nearest(lab, r, np.zeros(3, int), np.asarray(r.out_shape))[3:15, 2:11, 1:6])


def test_nearest_puts_a_voxel_where_it_is_in_the_world():
    shape = (20, 20, 30)
    aff = np.diag([0.5, 0.5, 1.0, 1.0])
    lab = np.zeros(shape, np.uint8)
    lab[10, 10, 15] = 1
    lab[9:12, 9:12, 14:17] = 1
    r = respacing(shape, aff, (1.0, 1.0, 3.0))
    out = resample.nearest(lab, r, np.zeros(3, int), np.asarray(r.out_shape))
    out_aff = r.out_affine()
    ijk = np.argwhere(out == 1).mean(axis=0)
    c_out = (out_aff @ np.r_[ijk, 1])[:3]
    c_in = (aff @ np.r_[np.argwhere(lab == 1).mean(axis=0), 1])[:3]
    assert np.all(np.abs(c_out - c_in) <= np.array([1.0, 1.0, 3.0]) / 2)  # within half an output voxel


def per_class(lab, n, r, full, keep_small):
    out = np.zeros(r.out_shape, dtype=np.uint8)
    for cls, off, m in resample.classes_linear(lab, {v: [v] for v in range(1, n)}, r, *full, keep_small=keep_small):
        sl = tuple(slice(int(off[a]), int(off[a]) + m.shape[a]) for a in range(3))
        out[sl][m] = cls
    return out


def test_linear_labels_keep_a_one_voxel_structure():
    lab = np.zeros((30, 30, 30), np.uint8)
    lab[5:20, 5:20, 5:20] = 1
    lab[26, 26, 26] = 2  # 1 voxel between the 3 mm sample positions (25, 28): vanishes without keep_small
    aff = np.eye(4)
    r = respacing(lab.shape, aff, (3.0, 3.0, 3.0))
    full = (np.zeros(3, int), np.asarray(r.out_shape))
    kept = per_class(lab, 3, r, full, keep_small=True)
    lost = per_class(lab, 3, r, full, keep_small=False)
    assert (kept == 2).sum() == 1 and (lost == 2).sum() == 0
    # The large cube keeps its volume within one boundary layer.
    assert abs((kept == 1).sum() * 27 - 15**3) / 15**3 < 0.15
    nn = resample.nearest_keep_small(lab, 3, r, *full, keep_small=True)
    assert (nn == 2).sum() == 1


def test_a_class_resamples_the_same_whatever_its_neighbours():
    """Per-class resampling: a structure's output does not depend on the other classes annotated."""
    rng = np.random.default_rng(5)
    a = np.zeros((24, 24, 30), np.uint8)
    a[4:14, 5:15, 3:20] = 1
    a[14:20, 5:15, 3:20] = 2  # touches class 1
    a[rng.random(a.shape) < 0.02] = 3
    r = respacing(a.shape, np.diag([0.8, 0.8, 1.0, 1.0]), (1.0, 1.0, 3.0))
    full = (np.zeros(3, int), np.asarray(r.out_shape))
    both = dict((c, (o, m)) for c, o, m in resample.classes_linear(a, {1: [1], 2: [2]}, r, *full))
    alone = dict((c, (o, m)) for c, o, m in resample.classes_linear(np.where(a == 1, 1, 0), {1: [1]}, r, *full))
    assert np.array_equal(both[1][0], alone[1][0]) and np.array_equal(both[1][1], alone[1][1])


def test_reorient_then_resample_is_identical_for_flipped_inputs():
    """The same image stored LPS or RAS gives bit-identical normalised arrays."""
    rng = np.random.default_rng(2)
    arr = rng.normal(size=(17, 15, 13)).astype(np.float32)
    aff = np.diag([-0.8, -0.8, 2.0, 1.0])
    aff[:3, 3] = (6.4, 5.6, -12)
    ras, ras_aff = reorient(arr, aff, "RAS")
    outs = []
    for a, f in [(arr, aff), (np.ascontiguousarray(ras), ras_aff)]:
        c, caff = reorient(a, f, "RAS")
        r = respacing(c.shape, caff, (1.0, 1.0, 3.0))
        outs.append((resample.linear(c, r, np.zeros(3, int), np.asarray(r.out_shape)), r.out_affine()))
    assert np.array_equal(outs[0][0], outs[1][0])
    assert np.allclose(outs[0][1], outs[1][1])
