"""Patch placement and extraction: pure functions of shapes, a random generator and arrays.

Placement follows nnU-Net's sampler: with probability ``foreground`` the patch is centred on a random
voxel of a random class present in the scan (classes uniformly, then voxels uniformly within the class),
else it is placed uniformly. A patch never leaves the volume along an axis where the volume is at least as
long as the patch; along a shorter axis the volume lies inside the patch and the rest is padding, which
the item's ``valid`` mask marks (nnU-Net pads its label with -1 there).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _bounds(size: int, patch: int) -> tuple[int, int]:
    """Lowest and highest allowed patch start along one axis."""
    return (0, size - patch) if size >= patch else (size - patch, 0)


def uniform_start(shape: Sequence[int], patch: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    return np.array([rng.integers(lo, hi + 1) for lo, hi in (_bounds(s, p) for s, p in zip(shape, patch))], dtype=np.int64)


def centred_start(shape: Sequence[int], patch: Sequence[int], voxel: Sequence[int]) -> np.ndarray:
    out = []
    for s, p, v in zip(shape, patch, voxel):
        lo, hi = _bounds(s, p)
        out.append(min(max(int(v) - p // 2, lo), hi))
    return np.array(out, dtype=np.int64)


def pick_foreground_voxel(
    label_values: Sequence[Sequence[int]],
    candidates: Sequence[int],
    locations: dict[str, np.ndarray],
    shape: Sequence[int],
    rng: np.random.Generator,
) -> np.ndarray | None:
    """A random voxel of a random class among ``candidates`` (indices into ``label_values``) that has voxels.

    A class is a union of label atoms; an atom is drawn with probability proportional to its voxel count,
    then one of its stored locations uniformly, so the voxel is (near) uniform over the class.
    """
    values = locations["values"]
    pos = {int(v): i for i, v in enumerate(values)}
    usable = []
    for k in candidates:
        atoms = [pos[v] for v in label_values[k] if v in pos]
        if atoms:
            usable.append(atoms)
    if not usable:
        return None
    atoms = usable[int(rng.integers(len(usable)))]
    w = locations["counts"][atoms].astype(np.float64)
    a = atoms[int(rng.choice(len(atoms), p=w / w.sum()))]
    lo, hi = locations["offsets"][a], locations["offsets"][a + 1]
    flat = locations["flat"][int(rng.integers(lo, hi))]
    return np.array(np.unravel_index(int(flat), tuple(shape)), dtype=np.int64)


def extract(array: np.ndarray, start: Sequence[int], patch: Sequence[int], pad, *, lead: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """``array[..., start:start+patch]`` over the last three axes, padded where the patch leaves the volume.

    ``lead`` leading axes (channels) are kept whole; ``pad`` is a scalar or one value per leading index.
    Only the part inside the volume is read (from a memory map: only its pages). ``out``: write into this
    array (of the patch's shape) instead of a new one.
    """
    spatial = array.shape[lead:]
    out_shape = tuple(array.shape[:lead]) + tuple(int(p) for p in patch)
    src, dst = [], []
    for s, st, p in zip(spatial, start, patch):
        a, b = max(int(st), 0), min(int(st) + int(p), s)
        src.append(slice(a, max(a, b)))
        dst.append(slice(a - int(st), a - int(st) + max(0, b - a)))
    inner = array[(slice(None),) * lead + tuple(src)]
    if out is None:
        if inner.shape == out_shape:
            return np.ascontiguousarray(inner)
        out = np.empty(out_shape, dtype=array.dtype)
    if inner.shape == out_shape:
        out[...] = inner
        return out
    if lead and np.ndim(pad):
        for c, v in enumerate(pad):
            out[c] = v
    else:
        out[...] = pad
    out[(slice(None),) * lead + tuple(dst)] = inner
    return out


def valid_mask(shape: Sequence[int], start: Sequence[int], patch: Sequence[int]) -> np.ndarray:
    """1 where the patch holds scan voxels, 0 on padding (1×patch, uint8)."""
    m = np.zeros((1, *[int(p) for p in patch]), dtype=np.uint8)
    sl = []
    for s, st, p in zip(shape, start, patch):
        a, b = max(int(st), 0), min(int(st) + int(p), s)
        sl.append(slice(a - int(st), a - int(st) + max(0, b - a)))
    m[(slice(None), *sl)] = 1
    return m
