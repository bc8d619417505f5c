"""Hammers atlas phantom: label files whose header is translated from their T1's (the release's bug).

A case with ``_header_shift_mm: "dx,dy,dz"`` gets its ``-seg`` file rewritten with the same voxels and
an affine moved by that many millimetres; other cases keep matching headers.
"""

from __future__ import annotations

import numpy as np

from ...ingest.patterns import fill
from ...io import read_volume, write_nifti
from ..generate import write_case
from ..hooks import writer


@writer("hammers")
def hammers_writer(spec, layout, root, caps, body, onto):
    caps = dict(caps)
    shift = caps.pop("_header_shift_mm", None)
    write_case(spec, layout, root, caps, body, onto)
    if shift:
        path = root / fill(layout.label, caps)
        vol = read_volume(path)
        aff = vol.affine.copy()
        aff[:3, 3] += np.array([float(x) for x in shift.split(",")])
        write_nifti(path, np.asarray(vol.array), aff)
