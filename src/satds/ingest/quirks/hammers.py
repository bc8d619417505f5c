"""Hammers adult brain atlas (brain-development.org, n30r95): label files with a displaced header.

The release's label volumes hold the same voxel array as their paired T1 (same shape, index-aligned
anatomy) but a historical header whose affine is translated by 16-30 mm from the T1's (sform_code 2
against 1). Aligned by physical space, every label would land 2-3 cm off its anatomy, so a label
whose grid differs from its image's by a pure translation is taken on the image's grid.
"""

from __future__ import annotations

import numpy as np

from ...errors import GeometryError
from ...geometry import grid_mismatch, spacing_of
from ...io import read_volume
from ...labels import LabelPiece
from ..hooks import hook
from ..read import align_or_fail

#: Largest header translation accepted as the known displacement (mm); the release's are 16-30 mm.
MAX_SHIFT_MM = 60.0


@hook("hammers_seg", "read_labels")
def hammers_labels(case, spec, root, image):
    """The atlas label map on its T1's grid; a pure header translation (the release's bug) is undone."""
    path = case.label
    vol = read_volume(root / path, ndim=None)
    arr = vol.array
    if arr.ndim != 3:
        raise GeometryError(f"expected a 3D label map, found shape {vol.shape}", file=path)
    if grid_mismatch(image.spatial_shape, image.affine, arr.shape, vol.affine) is None:
        return [LabelPiece(align_or_fail(arr, vol.affine, image, path), path)]
    shift = np.asarray(vol.affine)[:3, 3] - np.asarray(image.affine)[:3, 3]
    same_axes = np.allclose(np.asarray(vol.affine)[:3, :3], np.asarray(image.affine)[:3, :3], atol=1e-3 * float(spacing_of(image.affine).min()))
    if tuple(arr.shape) == tuple(image.spatial_shape) and same_axes and np.linalg.norm(shift) <= MAX_SHIFT_MM:
        return [LabelPiece(arr, path)]
    raise GeometryError(
        f"label grid differs from the T1's by more than the release's known header translation (shift {np.round(shift, 1).tolist()} mm, shapes {tuple(arr.shape)} vs {image.spatial_shape})",
        file=path,
    )
