"""A real 117-class TotalSegmentator label map against a perturbed copy: every class agrees with the package."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from _evaluate_testlib import package_scores
from satds.evaluate import score_label_maps
from satds.evaluate.grids import spacing_of
from satds.evaluate.volumes import read_label_map

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def seg(realdata):
    return read_label_map(realdata / "seg_small_total.nii.gz")


def _perturb(ref: np.ndarray) -> np.ndarray:
    pred = ref.copy()
    present = [v for v in np.unique(ref) if v]
    eroded, shifted, dilated, dropped = present[0], present[5], present[10], present[-1]
    m = ref == eroded
    pred[m & ~ndimage.binary_erosion(m)] = 0
    m = ref == shifted
    pred[m] = 0
    pred[np.roll(m, 1, axis=1)] = shifted
    pred[ndimage.binary_dilation(ref == dilated) & (pred == 0)] = dilated
    pred[ref == dropped] = 0
    pred[2:4, 2:4, 1:3] = present[3]  # a stray false positive far from its class
    return pred


def test_real_label_map_matches_package_per_class(seg):
    ref, affine = seg
    spacing = spacing_of(affine)
    present = [int(v) for v in np.unique(ref) if v]
    assert len(present) == 41
    pred = _perturb(ref)
    scores = score_label_maps(ref, pred, spacing)
    checked = 0
    for label in present:
        s = scores[label]
        r, p = ref == label, pred == label
        if not p.any():
            assert s.flag == "pred_empty" and s.dsc == 0 and np.isnan(s.hd)
            continue
        pkg = package_scores(r, p, spacing, 1.0)
        assert s.dsc == pkg["dsc"], label
        for m in ("nsd", "hd95", "hd"):
            assert getattr(s, m) == pytest.approx(pkg[m], rel=1e-9, abs=1e-12), (label, m)
        checked += 1
    assert checked == 40
    # identical maps: perfect scores for all 41 classes
    same = score_label_maps(ref, ref, spacing)
    assert all(x.dsc == 1 and x.nsd == 1 and x.hd == 0 and x.hd95 == 0 for x in same.values())
