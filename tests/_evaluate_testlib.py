"""Helpers for the evaluation tests: an independent brute-force scorer and small volume builders."""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage
from scipy.spatial.distance import cdist


def package_area_table(spacing) -> np.ndarray:
    from surface_distance import lookup_tables

    return lookup_tables.create_table_neighbour_code_to_surface_area(np.asarray(spacing, float))


def brute_surfels(mask: np.ndarray, spacing, table=None):
    """Every surfel of a mask by explicit enumeration of voxel corners: (corner positions in mm, areas).

    Corner ``c`` of the padded volume lies between voxels ``c - 1`` and ``c``; its code sets bit
    ``1 << (7 - (4a + 2b + c))`` for each inside voxel at offset ``(a, b, c)``. Areas come from the
    surface-distance package's table, so this does not rely on satds's own table.
    """
    table = package_area_table(spacing) if table is None else table
    m = np.pad(np.asarray(mask, bool), 1)
    pts, areas = [], []
    for i, j, k in itertools.product(*[range(n - 1) for n in m.shape]):
        code = 0
        for bit, (a, b, c) in enumerate(itertools.product((0, 1), repeat=3)):
            if m[i + a, j + b, k + c]:
                code |= 1 << (7 - bit)
        if code not in (0, 255):
            pts.append((i, j, k))
            areas.append(table[code])
    return np.array(pts, float).reshape(-1, 3) * np.asarray(spacing, float), np.array(areas)


def _weighted_percentile(d, a, q):
    order = np.argsort(d, kind="stable")
    cum = np.cumsum(a[order]) / a.sum()
    idx = int(np.searchsorted(cum, q))
    return d[order][min(idx, len(d) - 1)]


def brute_scores(ref: np.ndarray, pred: np.ndarray, spacing, tolerance=1.0) -> dict:
    """DSC, NSD, HD95, HD by brute force (all pairwise surfel distances). Non-empty masks only."""
    ref, pred = np.asarray(ref, bool), np.asarray(pred, bool)
    pr, ar = brute_surfels(ref, spacing)
    pp, ap = brute_surfels(pred, spacing)
    dist = cdist(pr, pp)
    d_rp, d_pr = dist.min(axis=1), dist.min(axis=0)
    return {
        "dsc": 2 * np.count_nonzero(ref & pred) / (np.count_nonzero(ref) + np.count_nonzero(pred)),
        "nsd": (ar[d_rp <= tolerance].sum() + ap[d_pr <= tolerance].sum()) / (ar.sum() + ap.sum()),
        "hd95": max(_weighted_percentile(d_rp, ar, 0.95), _weighted_percentile(d_pr, ap, 0.95)),
        "hd": max(d_rp.max(), d_pr.max()),
    }


def package_scores(ref: np.ndarray, pred: np.ndarray, spacing, tolerance=1.0) -> dict:
    import surface_distance as sd

    ref, pred = np.asarray(ref, bool), np.asarray(pred, bool)
    r = sd.compute_surface_distances(ref, pred, np.asarray(spacing, float))
    return {
        "dsc": sd.compute_dice_coefficient(ref, pred),
        "nsd": sd.compute_surface_dice_at_tolerance(r, tolerance),
        "hd95": sd.compute_robust_hausdorff(r, 95),
        "hd": sd.compute_robust_hausdorff(r, 100),
    }


def blob(shape, seed, sigma=1.5, level=0.55) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.random(shape), sigma) > level


def box(shape, lo, hi) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[tuple(slice(a, b + 1) for a, b in zip(lo, hi))] = True
    return m


def permute_flip(array: np.ndarray, affine: np.ndarray, perm, flip):
    """The same image stored with axes permuted then flipped: ``(array', affine')`` on the same world grid."""
    out = array.transpose(perm)
    out = out[tuple(slice(None, None, -1) if f else slice(None) for f in flip)]
    p4 = np.zeros((4, 4))
    for d, src in enumerate(perm):
        p4[src, d] = 1
    p4[3, 3] = 1
    f4 = np.eye(4)
    for d, f in enumerate(flip):
        if f:
            f4[d, d] = -1
            f4[d, 3] = out.shape[d] - 1
    return np.ascontiguousarray(out), np.asarray(affine, float) @ p4 @ f4


def affine_for(spacing, origin=(0.0, 0.0, 0.0)) -> np.ndarray:
    a = np.diag([*map(float, spacing), 1.0])
    a[:3, 3] = origin
    return a
