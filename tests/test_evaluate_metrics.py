"""DSC, NSD, HD95, HD: brute force, the surface-distance package, hand-worked values, empty-mask rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from _evaluate_testlib import blob, box, brute_scores, package_scores
from satds.evaluate import (
    BOTH_EMPTY,
    PRED_EMPTY,
    REF_EMPTY,
    largest_component,
    score_label_maps,
    score_masks,
    surface_distances,
)

ANISO = (0.7, 1.3, 3.0)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _cases():
    """(name, ref, pred, spacing) on tiny volumes."""
    shape = (12, 10, 8)
    out = []
    for seed in range(4):
        out.append((f"blobs-{seed}", blob(shape, seed), blob(shape, seed + 100), ANISO))
    a = blob(shape, 11)
    out.append(("dilated", a, ndimage.binary_dilation(a), ANISO))
    out.append(("shifted", a, np.roll(a, 1, axis=2), (1.0, 1.0, 1.0)))
    out.append(("eroded-iso", blob(shape, 12, level=0.5), ndimage.binary_erosion(blob(shape, 12, level=0.5)), (1.5, 1.5, 1.5)))
    one = np.zeros(shape, bool)
    one[5, 4, 3] = True
    out.append(("one-voxel-same", one, one.copy(), ANISO))
    other = np.zeros(shape, bool)
    other[7, 6, 3] = True
    out.append(("one-voxel-apart", one, other, ANISO))
    border = np.zeros(shape, bool)
    border[0:4, :, 0:3] = True  # touches five faces of the volume
    border2 = np.zeros(shape, bool)
    border2[0:5, 2:, 0:2] = True
    out.append(("border", border, border2, ANISO))
    out.append(("border-corner", box(shape, (0, 0, 0), (2, 2, 2)), box(shape, (9, 7, 5), (11, 9, 7)), (0.9, 1.1, 2.0)))
    return out


CASES = _cases()


@pytest.mark.parametrize("name,ref,pred,spacing", CASES, ids=[c[0] for c in CASES])
def test_against_brute_force_and_package(name, ref, pred, spacing):
    ours = score_masks(ref, pred, spacing, tolerance_mm=1.0)
    brute = brute_scores(ref, pred, spacing, 1.0)
    pkg = package_scores(ref, pred, spacing, 1.0)
    diag = math.sqrt(sum(s * s for s in spacing))
    assert ours.dsc == pkg["dsc"]  # exactly the same formula
    assert ours.dsc == pytest.approx(brute["dsc"], abs=1e-12)
    for m in ("nsd", "hd95", "hd"):
        value = getattr(ours, m)
        tol = 1e-9 if m == "nsd" else diag  # acceptance: within one voxel diagonal of brute force
        assert value == pytest.approx(brute[m], abs=tol), m
        assert value == pytest.approx(pkg[m], rel=1e-12, abs=1e-12), m
    # distances are in fact identical to the brute force, not just within a voxel
    assert ours.hd == pytest.approx(brute["hd"], rel=1e-12)
    assert ours.hd95 == pytest.approx(brute["hd95"], rel=1e-12)


@pytest.mark.parametrize("tolerance", [0.5, 1.0, 2.0, 3.0, 5.0])
def test_nsd_tolerances_match_package(tolerance):
    ref, pred = blob((14, 12, 9), 21), blob((14, 12, 9), 22)
    ours = score_masks(ref, pred, ANISO, tolerance_mm=tolerance)
    assert ours.nsd == pytest.approx(package_scores(ref, pred, ANISO, tolerance)["nsd"], rel=1e-12)


def test_surface_distances_arrays_match_package():
    import surface_distance as sd

    ref, pred = blob((14, 12, 9), 31), blob((14, 12, 9), 32)
    ours = surface_distances(ref, pred, ANISO).as_arrays()
    theirs = sd.compute_surface_distances(ref, pred, np.array(ANISO))
    for key in theirs:
        assert len(ours[key]) == len(theirs[key]), key
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-12, atol=1e-12, err_msg=key)


def test_far_apart_uses_tree_fallback_and_matches_package():
    """Distances beyond the local search radius go through the k-d tree."""
    shape = (40, 12, 10)
    ref = box(shape, (1, 2, 2), (5, 8, 6))
    pred = box(shape, (30, 3, 1), (36, 9, 7)) | box(shape, (2, 2, 2), (4, 7, 6))
    ours = score_masks(ref, pred, ANISO)
    pkg = package_scores(ref, pred, ANISO)
    for m in ("dsc", "nsd", "hd95", "hd"):
        assert getattr(ours, m) == pytest.approx(pkg[m], rel=1e-12), m
    assert ours.hd > 20


def test_identical_masks():
    a = blob((12, 10, 8), 5)
    s = score_masks(a, a, ANISO)
    assert (s.dsc, s.nsd, s.hd, s.hd95) == (1.0, 1.0, 0.0, 0.0)
    assert s.flag is None
    assert s.ref_ml == s.pred_ml == pytest.approx(a.sum() * 0.7 * 1.3 * 3.0 / 1000)


def test_shifted_boxes_hausdorff_by_hand():
    """Two boxes shifted by k voxels along one axis: HD = k * spacing of that axis."""
    shape = (14, 9, 8)
    for axis, k in [(0, 2), (1, 1), (2, 3)]:
        ref = box(shape, (2, 2, 1), (7, 5, 4))
        pred = np.roll(ref, k, axis=axis)
        s = score_masks(ref, pred, ANISO)
        assert s.hd == pytest.approx(k * ANISO[axis], rel=1e-12)
        assert s.hd95 == pytest.approx(package_scores(ref, pred, ANISO)["hd95"], rel=1e-12)


def test_single_voxels_one_apart_by_hand():
    """One voxel vs its neighbour along axis 2 (3 mm): 4 of 8 corners shared, all 8 of equal area."""
    shape = (5, 5, 6)
    ref = np.zeros(shape, bool)
    pred = np.zeros(shape, bool)
    ref[2, 2, 2] = True
    pred[2, 2, 3] = True
    s = score_masks(ref, pred, ANISO, tolerance_mm=1.0)
    assert s.dsc == 0.0
    assert s.nsd == pytest.approx(0.5, rel=1e-12)
    assert s.hd == pytest.approx(3.0)
    assert s.hd95 == pytest.approx(3.0)
    assert score_masks(ref, pred, ANISO, tolerance_mm=3.0).nsd == pytest.approx(1.0)


def test_empty_mask_rule():
    shape = (6, 6, 6)
    empty = np.zeros(shape, bool)
    a = box(shape, (1, 1, 1), (3, 3, 3))
    both = score_masks(empty, empty, ANISO)
    assert both.flag == BOTH_EMPTY
    assert all(math.isnan(getattr(both, m)) for m in ("dsc", "nsd", "hd95", "hd"))
    ref_empty = score_masks(empty, a, ANISO)
    assert ref_empty.flag == REF_EMPTY
    assert (ref_empty.dsc, ref_empty.nsd) == (0.0, 0.0)
    assert math.isnan(ref_empty.hd) and math.isnan(ref_empty.hd95)
    assert ref_empty.ref_ml == 0 and ref_empty.pred_ml > 0
    pred_empty = score_masks(a, empty, ANISO)
    assert pred_empty.flag == PRED_EMPTY
    assert (pred_empty.dsc, pred_empty.nsd) == (0.0, 0.0)
    assert math.isnan(pred_empty.hd) and math.isnan(pred_empty.hd95)
    # the package's DSC agrees (its distances for an empty mask use np.Inf, gone in NumPy 2)
    import surface_distance as sd

    assert sd.compute_dice_coefficient(a, empty) == 0.0


def test_label_maps_equal_per_mask_scores():
    shape = (24, 20, 14)
    ref = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    for label in range(1, 6):
        ref[blob(shape, 40 + label, level=0.55)] = label
        pred[blob(shape, 60 + label, level=0.55)] = label
    pred[ref == 3] = 3
    pred[pred == 4] = 0  # class 4: prediction empty
    ref[ref == 5] = 0  # class 5: reference empty
    ref[0, 0, 0] = 7  # class 7 only in the reference, at the volume corner
    spacing = (0.8, 1.1, 2.5)
    scores = score_label_maps(ref, pred, spacing, tolerance_mm=1.5)
    assert sorted(scores) == [1, 2, 3, 4, 5, 7]
    for label, s in scores.items():
        want = score_masks(ref == label, pred == label, spacing, tolerance_mm=1.5)
        for m in ("dsc", "nsd", "hd95", "hd", "ref_ml", "pred_ml"):
            a, b = getattr(s, m), getattr(want, m)
            assert (math.isnan(a) and math.isnan(b)) or a == b, (label, m)
        assert s.flag == want.flag
    assert scores[4].flag == PRED_EMPTY and scores[5].flag == REF_EMPTY
    # every class against the package too
    for label in (1, 2, 3):
        pkg = package_scores(ref == label, pred == label, spacing, 1.5)
        assert scores[label].nsd == pytest.approx(pkg["nsd"], rel=1e-12)
        assert scores[label].hd95 == pytest.approx(pkg["hd95"], rel=1e-12)
        assert scores[label].hd == pytest.approx(pkg["hd"], rel=1e-12)
    # classes requested explicitly, including one absent from both maps, and a region
    sel = score_label_maps(ref, pred, spacing, {1: (1,), 9: (9,), 10: (1, 2)})
    assert sel[9].flag == BOTH_EMPTY
    want = score_masks(np.isin(ref, (1, 2)), np.isin(pred, (1, 2)), spacing)
    assert sel[10].dsc == want.dsc and sel[10].hd == want.hd and sel[10].nsd == want.nsd


def test_largest_component_post_processing():
    shape = (20, 12, 10)
    ref = np.zeros(shape, np.uint8)
    ref[2:8, 2:8, 2:6] = 1
    pred = ref.copy()
    pred[15:17, 9:11, 7:9] = 1  # a far stray island
    pred[8, 8, 6] = 1  # touches the main body diagonally: 26-connected, kept
    plain = score_label_maps(ref, pred, ANISO)[1]
    post = score_label_maps(ref, pred, ANISO, lcc=True)[1]
    kept = pred == 1
    kept[15:17, 9:11, 7:9] = False
    want = score_masks(ref == 1, kept, ANISO)
    assert post.hd == want.hd and post.dsc == want.dsc and post.pred_ml == want.pred_ml
    assert plain.hd > post.hd
    assert score_label_maps(ref, pred, ANISO, lcc=(2,))[1].hd == plain.hd  # only label 2 post-processed
    np.testing.assert_array_equal(largest_component(pred == 1), kept)


def test_centroids_in_voxel_indices():
    shape = (10, 10, 10)
    ref = np.zeros(shape, np.uint8)
    ref[2:4, 3:6, 5:9] = 2
    pred = np.zeros(shape, np.uint8)
    pred[3:5, 3:6, 5:9] = 2
    s = score_label_maps(ref, pred, (1, 1, 1), centroids=True)[2]
    assert s.ref_centroid == pytest.approx((2.5, 4.0, 6.5))
    assert s.pred_centroid == pytest.approx((3.5, 4.0, 6.5))


def test_box_confined_work_is_exact_for_far_classes():
    """Classes far apart in a larger volume: the per-class boxes give the full-volume answer."""
    shape = (60, 40, 30)
    ref = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    ref[5:12, 5:12, 3:9] = 1
    pred[6:13, 5:11, 3:9] = 1
    ref[45:55, 25:35, 20:28] = 2
    pred[44:55, 26:35, 20:27] = 2
    pred[2:4, 30:33, 1:3] = 2  # stray island far from class 2's body
    scores = score_label_maps(ref, pred, ANISO)
    for label in (1, 2):
        pkg = package_scores(ref == label, pred == label, ANISO)
        for m in ("dsc", "nsd", "hd95", "hd"):
            assert getattr(scores[label], m) == pytest.approx(pkg[m], rel=1e-12), (label, m)


def test_label_boxes_equal_find_objects():
    from scipy import ndimage

    from satds.evaluate.metrics import label_boxes

    rng = np.random.default_rng(9)
    for _ in range(200):
        shape = tuple(int(x) for x in rng.integers(1, 9, 3))
        lab = (rng.integers(0, 6, shape) * (rng.random(shape) < rng.random())).astype(rng.choice([np.uint8, np.uint16, np.int32]))
        want = {
            i + 1: ([s.start for s in sl], [s.stop - 1 for s in sl]) for i, sl in enumerate(ndimage.find_objects(lab)) if sl is not None
        }
        for arr in (lab, np.asfortranarray(lab)):  # runs (C order) and find_objects (otherwise)
            got = label_boxes(arr)
            assert {k: (v[0].tolist(), v[1].tolist()) for k, v in got.items()} == want


def test_boxed_distances_need_their_margin():
    from satds.evaluate.distances import embed, margin, surface_distances_boxed

    m = np.ones((3, 3, 3), bool)
    with pytest.raises(ValueError, match="empty voxels"):
        surface_distances_boxed(embed(m, 1), embed(m, 1), ANISO)
    sd = surface_distances_boxed(embed(m, margin(ANISO)), embed(m, margin(ANISO)), ANISO)
    assert sd.hausdorff() == 0.0 and sd.surface_dice(1.0) == 1.0
