"""Respacing on axis-aligned grids: pure functions of (array, :class:`~satds.geometry.Respacing`, box).

After reorientation the input and output grids share their axes, so linear interpolation is separable:
one 1-D pass per axis, each on the block that pass needs. The output box ``[start, stop)`` (output
voxel indices) restricts all work to the cropped region.
"""

from __future__ import annotations

import numpy as np

from ..geometry import Respacing


def _axis_weights(r: Respacing, axis: int, start: int, stop: int, n_in: int, offset: int):
    """Lower index (relative to ``offset``) and weight of the upper neighbour per output voxel."""
    x = r.coords(axis, start, stop)
    x = np.clip(x, 0.0, n_in - 1.0)
    i0 = np.floor(x).astype(np.int64)
    i0 = np.minimum(i0, max(n_in - 2, 0))
    w = (x - i0).astype(np.float32)
    return i0 - offset, w


def input_box(r: Respacing, start, stop, margin: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Input index box [lo, hi) that output box [start, stop) reads (plus ``margin``)."""
    lo = np.zeros(3, dtype=np.int64)
    hi = np.zeros(3, dtype=np.int64)
    for a in range(3):
        x = r.coords(a, start[a], stop[a])
        lo[a] = max(0, int(np.floor(x.min())) - margin)
        hi[a] = min(r.in_shape[a], int(np.ceil(x.max())) + 1 + margin)
    return lo, hi


def _interp_axis(block: np.ndarray, axis: int, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
    n = block.shape[axis]
    i1 = np.minimum(idx + 1, n - 1)
    shape = [1, 1, 1]
    shape[axis] = -1
    w = w.reshape(shape)
    a = np.take(block, idx, axis=axis)
    b = np.take(block, i1, axis=axis)
    a *= 1 - w
    b *= w
    a += b
    return a


def _itk_resample(array: np.ndarray, r: Respacing, start, stop, cubic: bool) -> np.ndarray:
    """Resample the block of ``array`` that output box [start, stop) reads, with ITK's interpolator.

    The block is handed to ITK in index units (origin = its first input index, spacing 1), and the output
    grid in the same units (origin = the first output voxel's input coordinate, spacing = ``r.scale``), so
    the mapping is exactly :class:`~satds.geometry.Respacing`'s. Outside the input, values repeat the edge.
    """
    import SimpleITK as sitk

    lo, hi = input_box(r, start, stop, margin=3 if cubic else 1)
    block = np.asarray(array[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], dtype=np.float32)
    # ITK indexes [k, j, i]: a Fortran-ordered block's transpose is C-contiguous without a copy.
    img = sitk.GetImageFromArray(block.T if block.flags.f_contiguous else np.ascontiguousarray(block.T))
    img.SetOrigin(tuple(float(x) for x in lo))
    ref = sitk.Image([int(stop[a] - start[a]) for a in range(3)], sitk.sitkFloat32)
    ref.SetSpacing(tuple(float(x) for x in r.scale))
    ref.SetOrigin(tuple(float(r.coords(a, int(start[a]), int(start[a]) + 1)[0]) for a in range(3)))
    interp = sitk.sitkBSpline if cubic else sitk.sitkLinear
    out = sitk.Resample(img, ref, sitk.Transform(), interp, 0.0, sitk.sitkFloat32, True)
    return sitk.GetArrayFromImage(out).T


def linear(array: np.ndarray, r: Respacing, start, stop) -> np.ndarray:
    """Trilinear resampling (float32) of ``array`` onto output box [start, stop)."""
    return _itk_resample(array, r, start, stop, cubic=False)


def cubic(array: np.ndarray, r: Respacing, start, stop) -> np.ndarray:
    """Cubic B-spline resampling (float32) onto output box [start, stop); slower, smoother."""
    return _itk_resample(array, r, start, stop, cubic=True)


def nearest_index(r: Respacing, axis: int, start: int, stop: int) -> np.ndarray:
    x = r.coords(axis, start, stop)
    # Round half away from the centre consistently (floor(x + 0.5)), clipped to the grid.
    return np.clip(np.floor(x + 0.5).astype(np.int64), 0, r.in_shape[axis] - 1)


def nearest(array: np.ndarray, r: Respacing, start, stop) -> np.ndarray:
    """Nearest-neighbour resampling (dtype kept) onto output box [start, stop)."""
    ix = [nearest_index(r, a, start[a], stop[a]) for a in range(3)]
    return np.asarray(array)[np.ix_(*ix)]


def _centroid_voxel(src: np.ndarray, box, v: int, r: Respacing, start, out_shape) -> tuple[int, ...] | None:
    sub = src[box] == v
    cen = np.array([s.start for s in box]) + np.argwhere(sub).mean(axis=0)
    t = np.floor((cen - r.centre) / r.scale + r.mid + 0.5).astype(int) - np.asarray(start)
    if np.all(t >= 0) and np.all(t < np.asarray(out_shape)):
        return tuple(int(x) for x in t)
    return None


def nearest_keep_small(array: np.ndarray, n_values: int, r: Respacing, start, stop, keep_small: bool = True) -> np.ndarray:
    """Nearest neighbour; with ``keep_small``, a value that vanishes gets the output voxel at its centroid."""
    out = nearest(array, r, start, stop)
    if not keep_small:
        return out
    import scipy.ndimage as ndi

    src = np.asarray(array)
    present = set(np.unique(out).tolist())
    boxes = ndi.find_objects(src, max_label=n_values - 1)
    for v, box in enumerate(boxes, start=1):
        if box is None or v in present:
            continue
        pos = _centroid_voxel(src, box, v, r, start, out.shape)
        if pos is not None:
            out[pos] = v
    return out


def classes_linear(atoms: np.ndarray, classes: dict[str, list[int]], r: Respacing, start, stop, keep_small: bool = True, boxes: dict | None = None):
    """Each class resampled on its own: its mask linearly interpolated, kept where the fraction >= 0.5.

    Yields ``(class, offset, mask)`` with ``mask`` a boolean block at ``offset`` in the output box. A
    class's output depends only on its own source mask, never on which other classes a release happens to
    annotate, so the same structure coded by two releases resamples identically. Overlaps this creates at
    boundaries are kept (the caller stores class sets per voxel). With ``keep_small`` a class present at
    source keeps at least its best voxel.
    """
    from ..labels.boxes import label_boxes

    atoms = np.asarray(atoms)
    boxes = label_boxes(atoms) if boxes is None else boxes
    for cls, values in classes.items():
        vb = [boxes[v] for v in values if v in boxes]
        if not vb:
            continue
        lo_in = np.min([b[0] for b in vb], axis=0) - 1
        hi_in = np.max([b[1] for b in vb], axis=0) + 1
        o_lo, o_hi = r.out_range(lo_in, hi_in)
        o_lo = np.maximum(o_lo, start)
        o_hi = np.minimum(o_hi, stop)
        if np.any(o_hi <= o_lo):
            continue
        i_lo, i_hi = input_box(r, o_lo, o_hi)
        src = atoms[i_lo[0] : i_hi[0], i_lo[1] : i_hi[1], i_lo[2] : i_hi[2]]
        block = np.isin(src, values).astype(np.float32)
        for a in range(3):
            idx, w = _axis_weights(r, a, o_lo[a], o_hi[a], r.in_shape[a], i_lo[a])
            block = _interp_axis(block, a, idx, w)
        mask = block >= 0.5 - 1e-6
        offset = o_lo - np.asarray(start)
        if keep_small and not mask.any():
            if block.max() > 0:
                mask[np.unravel_index(int(np.argmax(block)), block.shape)] = True
            else:
                sub = np.isin(atoms[tuple(slice(int(lo_in[a] + 1), int(hi_in[a])) for a in range(3))], values)
                if sub.any():
                    cen = lo_in + 1 + np.argwhere(sub).mean(axis=0)
                    t = np.floor((cen - r.centre) / r.scale + r.mid + 0.5).astype(int)
                    if np.all(t >= start) and np.all(t < stop):
                        mask = np.zeros((1, 1, 1), dtype=bool)
                        mask[0, 0, 0] = True
                        offset = t - np.asarray(start)
        if mask.any():
            yield cls, offset, mask
