"""Comparing, aligning and resampling voxel grids by physical space.

Two grids are *the same* when they hold the same voxel centres in world space, whatever the order of the
axes: a prediction stored with its axes permuted or flipped relative to the reference is the same grid,
and :func:`align_to` puts its array in the reference's voxel order. "The same" allows a small tolerance:
every voxel centre of one grid must lie within ``tol`` voxels (default 0.01) of a voxel centre of the
other. Anything else is a different grid: an error unless resampling is asked for
(:func:`resample_nearest`, nearest neighbour in physical space, through SimpleITK).

Evaluation uses a tighter tolerance than ingest (0.01 voxel instead of :data:`satds.geometry.GRID_TOLERANCE`):
a prediction must sit on its reference's grid, not on a header-rounded copy of it.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..geometry import spacing_of  # noqa: F401  (re-exported for the runner and tests)

DEFAULT_TOL_VOXELS = 0.01


def _corners(shape) -> np.ndarray:
    return np.array(list(itertools.product(*[(0, n - 1) for n in shape])), float)


def alignment(src_shape, src_affine, dst_shape, dst_affine, tol: float = DEFAULT_TOL_VOXELS):
    """How ``src`` maps onto ``dst`` voxel for voxel: ``(perm, flip)`` or None when the grids differ.

    ``dst_array = src_array.transpose(perm)`` then flipped along every axis ``i`` with ``flip[i]``.
    """
    src_shape, dst_shape = tuple(src_shape), tuple(dst_shape)
    if len(src_shape) != 3 or len(dst_shape) != 3:
        return None
    m = np.linalg.solve(np.asarray(dst_affine, float), np.asarray(src_affine, float))  # src index -> dst index
    r = m[:3, :3]
    p = np.round(r)
    if not (np.all(np.abs(p).sum(axis=0) == 1) and np.all(np.abs(p).sum(axis=1) == 1)):
        return None
    perm = tuple(int(np.argmax(np.abs(p[i]))) for i in range(3))
    flip = tuple(bool(p[i, perm[i]] < 0) for i in range(3))
    if tuple(src_shape[perm[i]] for i in range(3)) != dst_shape:
        return None
    t = np.array([dst_shape[i] - 1 if flip[i] else 0 for i in range(3)], float)
    corners = _corners(src_shape)
    mapped = corners @ r.T + m[:3, 3]
    expected = corners @ p.T + t
    if np.max(np.abs(mapped - expected)) > tol:
        return None
    return perm, flip


def grid_mismatch(shape_a, affine_a, shape_b, affine_b, tol: float = DEFAULT_TOL_VOXELS) -> str | None:
    """None when grid b is grid a (up to axis order), else a short description of the difference."""
    if alignment(shape_b, affine_b, shape_a, affine_a, tol) is not None:
        return None
    a, b = np.asarray(affine_a, float), np.asarray(affine_b, float)
    parts = []
    if sorted(shape_a) != sorted(shape_b):
        parts.append(f"shape {tuple(shape_b)} vs {tuple(shape_a)}")
    sa, sb = spacing_of(a), spacing_of(b)
    if not np.allclose(np.sort(sa), np.sort(sb), rtol=1e-4, atol=1e-6):
        parts.append(f"spacing {np.round(sb, 4).tolist()} vs {np.round(sa, 4).tolist()}")
    if not np.allclose(a[:3, 3], b[:3, 3], atol=1e-3):
        parts.append(f"origin {np.round(b[:3, 3], 3).tolist()} vs {np.round(a[:3, 3], 3).tolist()}")
    da, db = a[:3, :3] / sa, b[:3, :3] / sb
    if not np.allclose(np.sort(np.abs(da), axis=None), np.sort(np.abs(db), axis=None), atol=1e-4):
        parts.append("direction differs")
    return "; ".join(parts) or "voxel centres differ"


def align_to(array: np.ndarray, affine, ref_shape, ref_affine, tol: float = DEFAULT_TOL_VOXELS) -> np.ndarray:
    """``array`` (on the grid ``affine``) in the voxel order of the reference grid; raises when the grids differ."""
    al = alignment(array.shape, affine, ref_shape, ref_affine, tol)
    if al is None:
        raise ValueError(grid_mismatch(ref_shape, ref_affine, array.shape, affine, tol))
    perm, flip = al
    out = array.transpose(perm) if perm != (0, 1, 2) else array
    sl = tuple(slice(None, None, -1) if f else slice(None) for f in flip)
    out = out[sl]
    return np.ascontiguousarray(out)


def c_order(array: np.ndarray, affine) -> tuple[np.ndarray, np.ndarray]:
    """The same image with its array C-contiguous, without copying when the array is Fortran-ordered.

    NIfTI stores voxels in Fortran order, so a C-order copy of a large label map costs more than scoring
    it; its transpose is C-contiguous for free, and the affine follows the reversed axes.
    """
    if array.flags.c_contiguous:
        return array, np.asarray(affine, float)
    if array.flags.f_contiguous:
        aff = np.asarray(affine, float).copy()
        aff[:, :3] = aff[:, 2::-1]
        return array.T, aff
    return np.ascontiguousarray(array), np.asarray(affine, float)


def resample_nearest(array: np.ndarray, affine, ref_shape, ref_affine) -> np.ndarray:
    """``array`` resampled onto the reference grid by physical space, nearest neighbour, 0 outside."""
    from ..geometry import resample_to_grid

    return resample_to_grid(array, affine, ref_shape, ref_affine, nearest=True)
