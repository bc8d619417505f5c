"""Split a bilateral mask (both kidneys, both hips) into the patient's left and right.

Decided from world coordinates only (the affine), never from array index: a component whose voxels lie
(almost) all on one side of the midline goes to that side; a component straddling the midline (a
horseshoe kidney) is cut at the midline plane.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A component with at least this fraction of its voxels on one side belongs to that side whole.
ONE_SIDE_FRACTION = 0.9


@dataclass
class SideSplit:
    left: np.ndarray
    right: np.ndarray
    components: int
    cut: int  # components cut at the midline
    midline_x: float


def world_x(affine: np.ndarray, shape) -> np.ndarray:
    """World x (RAS+ mm) of every voxel, as a broadcastable sum of per-axis terms (no full grid built)."""
    a = np.asarray(affine)
    xs = [a[0, ax] * np.arange(shape[ax]).reshape([-1 if i == ax else 1 for i in range(3)]) for ax in range(3)]
    return xs[0] + xs[1] + xs[2] + a[0, 3]


def split_sides(mask: np.ndarray, affine: np.ndarray, midline_x: float) -> SideSplit:
    import cc3d

    mask = np.asarray(mask, dtype=bool)
    left = np.zeros(mask.shape, dtype=bool)
    right = np.zeros(mask.shape, dtype=bool)
    if not mask.any():
        return SideSplit(left, right, 0, 0, midline_x)
    # Work inside the mask's bounding box.
    idx = np.nonzero(mask.any(axis=(1, 2)))[0], np.nonzero(mask.any(axis=(0, 2)))[0], np.nonzero(mask.any(axis=(0, 1)))[0]
    sl = tuple(slice(int(i[0]), int(i[-1]) + 1) for i in idx)
    sub = mask[sl]
    off = np.array([s.start for s in sl], dtype=np.float64)
    sub_aff = np.asarray(affine, dtype=np.float64).copy()
    sub_aff[:3, 3] = affine[:3, 3] + affine[:3, :3] @ off
    wx = world_x(sub_aff, sub.shape)
    is_right = np.broadcast_to(wx > midline_x, sub.shape)
    labels, n = cc3d.connected_components(sub, connectivity=26, return_N=True)
    cut = 0
    lsub, rsub = left[sl], right[sl]
    for comp in range(1, n + 1):
        cm = labels == comp
        total = int(cm.sum())
        n_right = int((cm & is_right).sum())
        if n_right >= ONE_SIDE_FRACTION * total:
            rsub |= cm
        elif total - n_right >= ONE_SIDE_FRACTION * total:
            lsub |= cm
        else:
            cut += 1
            rsub |= cm & is_right
            lsub |= cm & ~is_right
    return SideSplit(left, right, int(n), cut, float(midline_x))


def midline_from_image(image: np.ndarray, affine: np.ndarray, threshold: float) -> float | None:
    """World x of the body's centre: the mean x of voxels above ``threshold`` (HU for CT)."""
    body = np.asarray(image) > threshold
    n = int(body.sum())
    if n == 0:
        return None
    a = np.asarray(affine)
    proj = [body.sum(axis=tuple(x for x in range(3) if x != ax), dtype=np.int64) for ax in range(3)]
    cen = np.array([(p * np.arange(len(p))).sum() / n for p in proj])
    return float(a[0, :3] @ cen + a[0, 3])
