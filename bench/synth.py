"""Synthetic multi-class CT-like label maps for the evaluation benchmark (not a test)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# (name, centre in mm from the volume centre (x, y, z), semi-axes in mm)
ORGANS = [
    ("liver", (-60, -10, 40), (95, 75, 70)),
    ("spleen", (90, 40, 60), (55, 35, 50)),
    ("kidney_left", (70, 60, -10), (30, 28, 55)),
    ("kidney_right", (-70, 60, -20), (30, 28, 55)),
    ("pancreas", (10, 20, 10), (70, 15, 15)),
    ("stomach", (50, -20, 70), (55, 40, 45)),
    ("gallbladder", (-40, -40, 10), (20, 15, 35)),
    ("aorta", (15, 40, 0), (12, 12, 180)),
    ("ivc", (-20, 35, 0), (13, 13, 170)),
    ("duodenum", (-5, 0, -5), (40, 12, 14)),
    ("adrenal_left", (55, 50, 40), (8, 12, 20)),
    ("adrenal_right", (-45, 50, 35), (8, 12, 20)),
    ("bladder", (0, -20, -170), (40, 35, 30)),
]


def _ellipsoid(shape, spacing, centre_vox, axes_mm, rng, wobble):
    """A smooth, slightly irregular ellipsoid: a box-local boolean mask and its lower corner."""
    r = np.asarray(axes_mm) / np.asarray(spacing)
    lo = np.maximum(np.floor(centre_vox - r * 1.2 - 2).astype(int), 0)
    hi = np.minimum(np.ceil(centre_vox + r * 1.2 + 2).astype(int), np.asarray(shape) - 1)
    grids = np.ogrid[tuple(slice(a, b + 1) for a, b in zip(lo, hi))]
    d = sum(((g - c) / rr) ** 2 for g, c, rr in zip(grids, centre_vox, r))
    if wobble:
        noise = rng.standard_normal(tuple(int(s) for s in (hi - lo + 1) // 8 + 2))
        noise = ndimage.zoom(noise, np.array(d.shape) / np.array(noise.shape), order=1)[tuple(slice(0, s) for s in d.shape)]
        d = d + wobble * noise
    return d <= 1, lo


def make_case(shape=(512, 512, 400), spacing=(0.78, 0.78, 1.0), n_vertebrae=17, seed=0):
    """A reference label map with ``len(ORGANS) + n_vertebrae`` classes and a perturbed prediction."""
    rng = np.random.default_rng(seed)
    spacing = np.asarray(spacing, float)
    shape = np.asarray(shape)
    ref = np.zeros(tuple(shape), np.uint8)
    centre = (shape - 1) / 2
    structures = [(n, c, a) for n, c, a in ORGANS]
    # a column of vertebrae behind the organs
    z0 = -150.0
    for i in range(n_vertebrae):
        structures.append((f"vertebra_{i + 1}", (0, 95, z0 + i * 22.0), (22, 17, 9)))
    names = []
    for label, (name, c_mm, axes) in enumerate(structures, start=1):
        cv = centre + np.asarray(c_mm) / spacing
        m, lo = _ellipsoid(shape, spacing, cv, axes, rng, wobble=0.15)
        sl = tuple(slice(a, a + s) for a, s in zip(lo, m.shape))
        ref[sl][m] = label
        names.append(name)
    pred = perturb(ref, rng)
    return ref, pred, spacing, names


def perturb(ref: np.ndarray, rng) -> np.ndarray:
    """Per class one of: 1-voxel shift, dilation, erosion, boundary noise; plus a few stray blobs."""
    pred = np.zeros_like(ref)
    objs = ndimage.find_objects(ref)
    for label, sl in enumerate(objs, start=1):
        if sl is None:
            continue
        sl = tuple(slice(max(s.start - 3, 0), min(s.stop + 3, n)) for s, n in zip(sl, ref.shape))
        m = ref[sl] == label
        kind = label % 4
        if kind == 0:
            m = np.roll(m, 1 + label % 2, axis=label % 3)
        elif kind == 1:
            m = ndimage.binary_dilation(m)
        elif kind == 2:
            m = ndimage.binary_erosion(m)
        else:
            edge = m ^ ndimage.binary_erosion(m)
            m = m & ~(edge & (rng.random(m.shape) < 0.5))
        pred[sl][m] = label
    # stray false-positive blobs far from their class (they set the Hausdorff distance)
    for label in (1, 5, 9):
        c = rng.integers(40, np.array(ref.shape) - 40)
        pred[tuple(slice(x, x + 4) for x in c)] = label
    return pred
