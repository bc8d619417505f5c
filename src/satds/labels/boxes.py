"""Bounding boxes of every value of a label map, in one pass (used by build, statistics and evaluation)."""

from __future__ import annotations

import numpy as np


def label_boxes(labels: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Inclusive voxel bounding box ``(lo, hi)`` of every positive value of a label map, in one pass.

    For a C-contiguous map the boxes come from the runs along the last axis: one vectorised comparison
    of neighbours finds where runs start and end, and only those (a small fraction of the voxels) are
    looked at. Otherwise ``scipy.ndimage.find_objects`` does it.
    """
    if labels.dtype == bool:
        labels = labels.view(np.uint8)
    if labels.dtype.kind not in "iu":
        raise ValueError(f"a label map must hold integers, not {labels.dtype}")
    if labels.ndim == 3 and labels.flags.c_contiguous and labels.shape[2] > 1 and labels.size:
        return _boxes_from_runs(labels)
    if labels.ndim == 3 and labels.flags.f_contiguous and labels.shape[0] > 1 and labels.size:
        # NIfTI's Fortran order: the transpose is C-contiguous for free; boxes come back with axes reversed.
        return {k: (lo[::-1].copy(), hi[::-1].copy()) for k, (lo, hi) in _boxes_from_runs(labels.T).items()}
    from scipy import ndimage

    out = {}
    for i, sl in enumerate(ndimage.find_objects(labels)):
        if sl is not None:
            out[i + 1] = (np.array([s.start for s in sl]), np.array([s.stop - 1 for s in sl]))
    return out


def _boxes_from_runs(labels: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    nx, ny, nz = labels.shape
    flat = labels.reshape(-1)
    top = int(labels.max())
    if top <= 0:
        return {}
    # a change between voxels z and z + 1 of a line ends a run of the first value and starts one of the second
    pos = np.flatnonzero(labels[:, :, 1:] != labels[:, :, :-1])
    line, z = np.divmod(pos, nz - 1)
    at = line * nz + z
    before, after = flat[at], flat[at + 1]
    first, last = labels[:, :, 0].reshape(-1), labels[:, :, -1].reshape(-1)
    f_lines, l_lines = np.flatnonzero(first), np.flatnonzero(last)
    s_ok, e_ok = after != 0, before != 0
    s_line = np.concatenate([line[s_ok], f_lines])
    s_z = np.concatenate([z[s_ok] + 1, np.zeros(len(f_lines), np.int64)])
    s_val = np.concatenate([after[s_ok], first[f_lines]]).astype(np.intp)
    e_z = np.concatenate([z[e_ok], np.full(len(l_lines), nz - 1, np.int64)])
    e_val = np.concatenate([before[e_ok], last[l_lines]]).astype(np.intp)
    sx, sy = np.divmod(s_line, ny)
    lo = np.full((top + 1, 3), np.iinfo(np.int64).max, np.int64)
    hi = np.full((top + 1, 3), -1, np.int64)
    for axis, v in ((0, sx), (1, sy), (2, s_z)):
        np.minimum.at(lo[:, axis], s_val, v)
    for axis, v in ((0, sx), (1, sy)):
        np.maximum.at(hi[:, axis], s_val, v)
    np.maximum.at(hi[:, 2], e_val, e_z)
    return {k: (lo[k].copy(), hi[k].copy()) for k in range(1, top + 1) if hi[k, 0] >= 0}
