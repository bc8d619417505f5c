"""HECKTOR 2022 phantom: a CT and a PET of one patient on different grids, the label on the CT grid.

The release ships each patient's CT (``__CT``) and PET (``__PT``) as separate files with their own
voxel grids (PET voxels about 4 mm, CT about 1 mm); the label map follows the CT. Here the PET is
written on a grid with twice the CT's spacing (2x2x2 CT voxels averaged per PET voxel, the PET voxel
centre at the centre of its block) so that ingest and build must align it by physical space.
"""

from __future__ import annotations

import numpy as np

from ...ingest.patterns import fill
from ..generate import _cast, to_file_orientation, write_case
from ..hooks import writer
from ..writers import write_volume


def block_mean(array: np.ndarray, factor: int = 2) -> np.ndarray:
    """Mean over factor^3 blocks (edge-padded), the PET's coarser sampling of the same anatomy."""
    pad = [(0, (-s) % factor) for s in array.shape]
    a = np.pad(array, pad, mode="edge")
    s = [n // factor for n in a.shape]
    return a.reshape(s[0], factor, s[1], factor, s[2], factor).mean(axis=(1, 3, 5))


def coarse_affine(affine: np.ndarray, factor: int = 2) -> np.ndarray:
    out = np.asarray(affine, dtype=np.float64).copy()
    out[:3, :3] = affine[:3, :3] * factor
    out[:3, 3] = affine[:3, :3] @ np.full(3, (factor - 1) / 2.0) + affine[:3, 3]
    return out


@writer("hecktor")
def hecktor_writer(spec, layout, root, caps, body, onto):
    ph = spec.phantom
    write_case(spec, layout, root, caps, body, onto)  # the label map (CT grid); channel files replaced below
    lesion = np.zeros(body.shape, dtype=bool)
    for mask in body.blobs.values():
        lesion |= mask
    inside = body.image > body.image.min() + 1.0
    ct = np.where(inside, 40.0, -1000.0) + np.where(lesion, 25.0, 0.0)
    suv = np.where(inside, 1.2, 0.05) + np.where(lesion, 9.0, 0.0)
    by_name = {c.name: c for c in layout.channels}
    arr, aff = to_file_orientation(ct, body.affine, ph.orientation, ph.slice_first)
    write_volume(root / fill(by_name["CT"].file, caps), _cast(arr, "int16"), aff)
    arr, aff = to_file_orientation(block_mean(suv), coarse_affine(body.affine), ph.orientation, ph.slice_first)
    write_volume(root / fill(by_name["PET"].file, caps), _cast(arr, "float32"), aff)
