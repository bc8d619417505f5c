"""Where the body is in a normalised image: the air level, a body mask and the body midline.

Normalised images are z-scored per scan, so "air" cannot be a fixed number:

- **CT** is clipped to the build's ``ct_window`` (default [-500, 1000] HU) before the z-score, so every
  voxel at or below the lower bound holds exactly the image's minimum: a *floor plateau*. With the
  default window the floor *is* -500 HU, QC's air threshold. When both the floor and the ceiling plateau
  exist the z-score can be inverted exactly and any HU threshold mapped; with only the floor, the floor is
  used (conservative: only voxels at or below the window's lower bound count as air). A CT without a floor
  plateau has no air in its crop: the whole image is body.
- **MRI/PET** have no absolute air value: air is below floor + ``mri_air_fraction`` × (p99 − floor).

The body mask is the non-air voxels with holes filled slice by slice (axial), so air *inside* the body
(lungs, bowel gas, airways) counts as body; air connected to the slice border does not.
"""

from __future__ import annotations

import numpy as np

from .config import QCConfig

#: A value shared by at least this many voxels at the image minimum/maximum is a clipping plateau.
PLATEAU_VOXELS = 10


def _plateau(a: np.ndarray, value: float) -> bool:
    return int(np.count_nonzero(a == np.float32(value))) >= PLATEAU_VOXELS


def air_level(image: np.ndarray, *, is_ct: bool, ct_window: tuple[float, float], cfg: QCConfig) -> float | None:
    """The normalised value at or below which a voxel is air; None when the image holds no air."""
    a = np.asarray(image)
    if a.size == 0:
        return None
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return None
    if is_ct:
        if not _plateau(a, lo):
            return None
        w0, w1 = ct_window
        if w0 >= cfg.ct_air_hu or not _plateau(a, hi):
            return lo
        slope = (hi - lo) / (w1 - w0)  # z per HU
        return max(lo, lo + (cfg.ct_air_hu - w0) * slope)
    p99 = float(np.percentile(a[::2, ::2, ::2], 99))
    return lo + cfg.mri_air_fraction * max(p99 - lo, 0.0)


def body_mask(image: np.ndarray, level: float | None) -> np.ndarray:
    """Voxels above ``level`` with each axial slice's holes filled (everything when ``level`` is None)."""
    from scipy.ndimage import binary_fill_holes

    a = np.asarray(image)
    if level is None:
        return np.ones(a.shape, dtype=bool)
    tol = 1e-6 * max(1.0, float(np.abs(a).max()))
    m = a > level + tol
    for k in range(m.shape[2]):
        if m[:, :, k].any():
            m[:, :, k] = binary_fill_holes(m[:, :, k])
    return m


def dilate_in_plane(mask: np.ndarray, spacing, mm: float) -> np.ndarray:
    """``mask`` grown by ``mm`` within each axial slice (never across slices)."""
    from scipy.ndimage import binary_dilation

    n = int(round(mm / max(float(min(spacing[0], spacing[1])), 1e-6)))
    if n <= 0:
        return mask
    st = np.zeros((3, 3, 1), dtype=bool)
    st[1, :, 0] = st[:, 1, 0] = True
    return binary_dilation(mask, structure=st, iterations=n)


def midline_x(body: np.ndarray, affine: np.ndarray) -> float | None:
    """World x (RAS+ mm) of the body's centre: the mean x of the body mask."""
    n = int(np.count_nonzero(body))
    if n == 0:
        return None
    proj = [body.sum(axis=tuple(x for x in range(3) if x != ax), dtype=np.int64) for ax in range(3)]
    cen = np.array([(p * np.arange(len(p))).sum() / n for p in proj])
    return float(np.asarray(affine)[0, :3] @ cen + np.asarray(affine)[0, 3])
