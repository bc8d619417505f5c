"""Surfel codes and areas: hand-computed values, brute force, and the surface-distance package's table."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from _evaluate_testlib import box, package_area_table
from satds.evaluate.surfels import neighbour_codes, pad_mask, surfel_area_table

SPACINGS = [(1.0, 1.0, 1.0), (0.7, 1.3, 3.0), (3.0, 0.5, 0.8), (0.78, 0.78, 1.0), (2.0, 2.0, 5.0)]


@pytest.mark.parametrize("spacing", SPACINGS)
def test_area_table_equals_package_table(spacing):
    ours = surfel_area_table(spacing)
    theirs = package_area_table(spacing)
    np.testing.assert_allclose(ours, theirs, rtol=1e-14, atol=0)


def test_area_table_random_spacings_match_package():
    rng = np.random.default_rng(7)
    for _ in range(25):
        s = rng.uniform(0.1, 6.0, 3)
        np.testing.assert_allclose(surfel_area_table(s), package_area_table(s), rtol=1e-14, atol=0)


def test_hand_computed_areas():
    s0, s1, s2 = 0.7, 1.3, 3.0
    t = surfel_area_table((s0, s1, s2))
    # one voxel inside: the corner triangle through three edge midpoints
    corner = math.sqrt((s1 * s2) ** 2 + (s0 * s2) ** 2 + (s0 * s1) ** 2) / 8
    for bit in range(8):
        assert t[1 << bit] == pytest.approx(corner, rel=1e-14)
        assert t[255 ^ (1 << bit)] == pytest.approx(corner, rel=1e-14)
    # four voxels on one face (a = 0): a flat square normal to axis 0
    assert t[0b11110000] == pytest.approx(s1 * s2, rel=1e-14)
    assert t[0b11001100] == pytest.approx(s0 * s2, rel=1e-14)
    assert t[0b10101010] == pytest.approx(s0 * s1, rel=1e-14)
    # two voxels along axis 2 (offsets (1,1,0), (1,1,1)): a chamfer of length s2 and width |(s0, s1)| / 2
    assert t[0b00000011] == pytest.approx(s2 * math.hypot(s0, s1) / 2, rel=1e-14)
    assert t[0] == t[255] == 0


def test_neighbour_codes_brute_force():
    rng = np.random.default_rng(3)
    m = rng.random((5, 6, 4)) > 0.5
    codes = neighbour_codes(pad_mask(m))
    p = np.pad(m, 1)
    assert codes.shape == (6, 7, 5)
    for i, j, k in itertools.product(*[range(n) for n in codes.shape]):
        want = 0
        for bit, (a, b, c) in enumerate(itertools.product((0, 1), repeat=3)):
            want |= int(p[i + a, j + b, k + c]) << (7 - bit)
        assert codes[i, j, k] == want


@pytest.mark.parametrize("spacing", SPACINGS[:3])
def test_box_surface_area_by_hand(spacing):
    """Total surfel area of an axis-aligned box: flat faces, chamfered edges, cut corners."""
    s0, s1, s2 = spacing
    n0, n1, n2 = 4, 6, 3
    m = box((8, 9, 7), (2, 1, 2), (2 + n0 - 1, 1 + n1 - 1, 2 + n2 - 1))
    codes = neighbour_codes(pad_mask(m))
    total = surfel_area_table(spacing)[codes].sum()
    faces = 2 * ((n1 - 1) * (n2 - 1) * s1 * s2 + (n0 - 1) * (n2 - 1) * s0 * s2 + (n0 - 1) * (n1 - 1) * s0 * s1)
    edges = 4 * ((n2 - 1) * s2 * math.hypot(s0, s1) / 2 + (n1 - 1) * s1 * math.hypot(s0, s2) / 2 + (n0 - 1) * s0 * math.hypot(s1, s2) / 2)
    corners = 8 * math.sqrt((s1 * s2) ** 2 + (s0 * s2) ** 2 + (s0 * s1) ** 2) / 8
    assert total == pytest.approx(faces + edges + corners, rel=1e-12)
