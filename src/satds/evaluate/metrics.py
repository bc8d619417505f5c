"""Per-structure scores: DSC, NSD at a tolerance, HD95, HD, volumes; and the empty-mask rule.

Definitions (``R`` reference voxels, ``P`` predicted voxels, surfaces and distances as in
:mod:`.distances`):

* ``dsc = 2 |R ∩ P| / (|R| + |P|)``
* ``nsd`` (surface Dice at tolerance τ mm): area of the reference surface within τ of the predicted surface
  plus area of the predicted surface within τ of the reference surface, over the sum of both areas.
* ``hd95``: the larger of the two directed area-weighted 95th percentiles of surfel distances; ``hd``: the
  largest surfel distance in either direction.
* ``ref_ml``, ``pred_ml``: voxel count times voxel volume.

Empty masks follow the one rule of :mod:`.empty` (also in ``docs/evaluation.md``): DSC/NSD 0 and
distances NaN when exactly one side is empty, everything NaN when both are.

A false positive on a structure the reference does not contain has no surface to measure against, so
its distances are undefined; its DSC/NSD of 0 are stored, but the aggregates of :mod:`.aggregate` leave
such rows out unless asked (``include_ref_empty=True``), following the CTSpine1K and SAT protocols
(scores only for structures present in the reference). Distances of a missed structure are NaN and so
drop out of HD means, while its DSC/NSD of 0 do count.

Label value 0 is the background: a class made of it is an error (:func:`check_classes`), not a class
that is "empty on both sides".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..labels.boxes import label_boxes  # noqa: F401  (re-exported: one pass for all class boxes)

from .distances import SurfaceDistances, bounding_box, embed, margin, surface_distances_boxed

METRICS_VERSION = "satds-metrics/1 surface-distance-compatible"

from .empty import BOTH_EMPTY, ERROR, FLAGS, NAN, PRED_EMPTY, PRED_MISSING, REF_EMPTY, VALUES, empty_case  # noqa: F401


@dataclass
class Scores:
    dsc: float
    nsd: float
    hd95: float
    hd: float
    ref_voxels: int
    pred_voxels: int
    ref_ml: float
    pred_ml: float
    flag: str | None = None
    #: centre of mass in (fractional) voxel indices, when asked for
    ref_centroid: tuple[float, float, float] | None = None
    pred_centroid: tuple[float, float, float] | None = None


def _empty_scores(ref_n: int, pred_n: int, voxel_ml: float) -> Scores | None:
    """The scores the empty-mask rule (:mod:`.empty`) fixes, or None when both masks have voxels."""
    flag = empty_case(ref_n == 0, pred_n == 0)
    if flag is None:
        return None
    return Scores(*VALUES[flag], ref_voxels=ref_n, pred_voxels=pred_n, ref_ml=ref_n * voxel_ml, pred_ml=pred_n * voxel_ml, flag=flag)


def check_classes(classes: Mapping[int, Sequence[int]]) -> None:
    """Each class must be made of positive label values: 0 is the background, everywhere outside the classes."""
    for label, values in classes.items():
        vals = [int(v) for v in values]
        if not vals:
            raise ValueError(f"class {label} has no label values")
        if any(v <= 0 for v in vals):
            raise ValueError(f"class {label} is made of label value(s) {vals}: 0 (the background) and negative values cannot make up a class")


def _from_distances(sd: SurfaceDistances, inter: int, ref_n: int, pred_n: int, tolerance_mm: float, voxel_ml: float) -> Scores:
    return Scores(
        dsc=2 * inter / (ref_n + pred_n),
        nsd=sd.surface_dice(tolerance_mm),
        hd95=sd.hausdorff(95),
        hd=sd.hausdorff(100),
        ref_voxels=ref_n,
        pred_voxels=pred_n,
        ref_ml=ref_n * voxel_ml,
        pred_ml=pred_n * voxel_ml,
    )


def _centroid(boxed: np.ndarray, n: int, lo, pad) -> tuple[float, float, float] | None:
    """Centre of mass (voxel indices) of a box mask with ``pad`` empty voxels before voxel ``lo``."""
    if n == 0:
        return None
    out = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        counts = boxed.sum(axis=other, dtype=np.int64)
        pos = np.arange(len(counts)) - pad[axis] + lo[axis]
        out.append(float((counts * pos).sum() / n))
    return tuple(out)


def voxel_volume_ml(spacing) -> float:
    return float(np.prod(np.asarray(spacing, float))) / 1000.0


def score_masks(ref: np.ndarray, pred: np.ndarray, spacing, tolerance_mm: float = 1.0, *, centroids: bool = False, threads: int = 1) -> Scores:
    """Scores of one structure given as two boolean masks on the same grid (``spacing`` mm per axis)."""
    ref = np.asarray(ref, bool)
    pred = np.asarray(pred, bool)
    if ref.shape != pred.shape or ref.ndim != 3:
        raise ValueError(f"masks must be 3D and of equal shape, got {ref.shape} and {pred.shape}")
    box = bounding_box(ref | pred)
    lo, hi = box if box is not None else (np.zeros(3, int), np.full(3, -1))
    sl = tuple(slice(a, b + 1) for a, b in zip(lo, hi))
    pad = margin(spacing)
    return _score_box(embed(ref[sl], pad), embed(pred[sl], pad), lo, pad, spacing, tolerance_mm, centroids, threads)


def _score_box(ref_b, pred_b, lo, pad, spacing, tolerance_mm, centroids, threads) -> Scores:
    voxel_ml = voxel_volume_ml(spacing)
    ref_n, pred_n = int(np.count_nonzero(ref_b)), int(np.count_nonzero(pred_b))
    s = _empty_scores(ref_n, pred_n, voxel_ml)
    if s is None:
        inter = int(np.count_nonzero(ref_b & pred_b))
        sd = surface_distances_boxed(ref_b, pred_b, spacing, threads)
        s = _from_distances(sd, inter, ref_n, pred_n, tolerance_mm, voxel_ml)
    if centroids:
        s.ref_centroid = _centroid(ref_b, ref_n, lo, pad)
        s.pred_centroid = _centroid(pred_b, pred_n, lo, pad)
    return s


# ---------------------------------------------------------------------------------------------- label maps


def _union(boxes) -> tuple[np.ndarray, np.ndarray] | None:
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    return np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)


def _fill_mask(out_bool: np.ndarray, sub: np.ndarray, values: tuple[int, ...]) -> None:
    if len(values) == 1:
        np.equal(sub, values[0], out=out_bool)
    else:
        out_bool[...] = np.isin(sub, values)


def largest_component(mask: np.ndarray, connectivity: int = 26) -> np.ndarray:
    """Only the largest ``connectivity``-connected component of ``mask`` (ties: the first in array order)."""
    import cc3d

    cc, n = cc3d.connected_components(np.ascontiguousarray(mask, dtype=np.uint8), connectivity=connectivity, return_N=True)
    if n <= 1:
        return mask.astype(bool, copy=False)
    sizes = np.bincount(cc.reshape(-1), minlength=n + 1)
    sizes[0] = 0
    return cc == int(np.argmax(sizes))


def score_label_maps(
    ref: np.ndarray,
    pred: np.ndarray,
    spacing,
    classes: Mapping[int, Sequence[int]] | None = None,
    tolerance_mm: float = 1.0,
    *,
    lcc: Sequence[int] | bool = (),
    centroids: Sequence[int] | bool = (),
    boxes: tuple[dict, dict] | None = None,
    threads: int = 1,
) -> dict[int, Scores]:
    """Scores of every class of two label maps on the same grid.

    ``classes`` maps each reported label to the label-map values that make it up (one value, or several
    for an nnU-Net region); by default every positive value found in either map is a class of its own.
    ``lcc`` lists the labels (or True: all) whose prediction is reduced to its largest 26-connected
    component before scoring; ``centroids`` the labels (or True) whose centres of mass are wanted.

    One pass finds every value's bounding box in each map; each class's work is then confined to the
    union of its boxes plus a small empty margin (:func:`.distances.margin`), so a class costs in
    proportion to its size, not to the volume. ``threads`` > 1 scores classes side by side.
    """
    if ref.shape != pred.shape or ref.ndim != 3:
        raise ValueError(f"label maps must be 3D and of equal shape, got {ref.shape} and {pred.shape}")
    pool = None
    if threads > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(threads)
    try:
        if boxes is None:
            if pool is not None:
                rb_f, pb_f = pool.submit(label_boxes, ref), pool.submit(label_boxes, pred)
                boxes = (rb_f.result(), pb_f.result())
            else:
                boxes = (label_boxes(ref), label_boxes(pred))
        ref_boxes, pred_boxes = boxes
        if classes is None:
            classes = {v: (v,) for v in sorted(set(ref_boxes) | set(pred_boxes))}
        check_classes(classes)

        def one(item) -> Scores:
            label, values = item
            return _score_class(
                ref, pred, tuple(int(v) for v in values), ref_boxes, pred_boxes, spacing, tolerance_mm,
                lcc is True or label in lcc, centroids is True or label in centroids,
            )  # fmt: skip

        # numpy, cc3d and the k-d tree release the GIL: classes run side by side in threads
        items = list(classes.items())
        results = pool.map(one, items) if pool is not None else map(one, items)
        return {label: s for (label, _), s in zip(items, results)}
    finally:
        if pool is not None:
            pool.shutdown()


def _score_class(ref, pred, values, ref_boxes, pred_boxes, spacing, tolerance_mm, want_lcc, want_centroid) -> Scores:
    """One class: its masks in the union of its boxes (plus the margin), then :func:`_score_box`."""
    pad = margin(spacing)
    rb = _union(ref_boxes.get(v) for v in values)
    pb = _union(pred_boxes.get(v) for v in values)
    pred_lcc = None
    if want_lcc and pb is not None:
        sub = pred[tuple(slice(a, b + 1) for a, b in zip(*pb))]
        m = np.empty(sub.shape, bool)
        _fill_mask(m, sub, values)
        m = largest_component(m)
        kept = bounding_box(m)
        pred_lcc = m[tuple(slice(a, b + 1) for a, b in zip(*kept))]
        pb = (pb[0] + kept[0], pb[0] + kept[1])
    box = _union([rb, pb])
    if box is None:
        return _empty_scores(0, 0, voxel_volume_ml(spacing))
    lo, hi = box
    sl = tuple(slice(a, b + 1) for a, b in zip(lo, hi))
    n = hi - lo + 1
    shape = tuple(int(a + 2 * p) for a, p in zip(n, pad))
    inner = tuple(slice(p, p + a) for p, a in zip(pad, n))
    ref_b = np.zeros(shape, np.uint8)
    pred_b = np.zeros(shape, np.uint8)
    if rb is not None:
        _fill_mask(ref_b.view(bool)[inner], ref[sl], values)
    if pred_lcc is not None:
        off = pb[0] - lo + pad
        pred_b[tuple(slice(o, o + a) for o, a in zip(off, pred_lcc.shape))] = pred_lcc
    elif pb is not None:
        _fill_mask(pred_b.view(bool)[inner], pred[sl], values)
    return _score_box(ref_b, pred_b, lo, pad, spacing, tolerance_mm, want_centroid, 1)
