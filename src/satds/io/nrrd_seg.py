"""Slicer segmentation files (``.seg.nrrd``): labels plus the segment table that names them.

A ``.seg.nrrd`` is an NRRD whose header carries ``SegmentN_Name``, ``SegmentN_LabelValue`` and
``SegmentN_Layer``; overlapping segments are stored as extra layers (a 4D file). SimpleITK drops that
table, so these files are read with pynrrd.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ReadError
from .limits import check_declared
from .volume import LPS_TO_RAS, Volume

_SPACES = {
    "left-posterior-superior": np.diag([1.0, 1.0, 1.0]),
    "right-anterior-superior": np.diag([-1.0, -1.0, 1.0]),  # RAS → LPS
    "left-anterior-superior": np.diag([1.0, -1.0, 1.0]),
    "right-posterior-superior": np.diag([-1.0, 1.0, 1.0]),
}


@dataclass(frozen=True)
class Segment:
    name: str
    value: int
    layer: int


def read_nrrd(path: str | os.PathLike) -> tuple[Volume, list[Segment]]:
    """Volume (``[i, j, k]`` or ``[i, j, k, layer]``) and the segment table (empty for plain NRRD)."""
    import nrrd

    path = Path(path)
    if not path.exists():
        raise ReadError("file not found", file=str(path))
    try:
        sizes = nrrd.read_header(str(path)).get("sizes")
    except Exception as e:
        raise ReadError(f"cannot read NRRD header ({e})", file=str(path)) from e
    if sizes is not None:
        check_declared(sizes, None, str(path))  # before any voxel is inflated
    try:
        data, hdr = nrrd.read(str(path), index_order="F")
    except Exception as e:  # pynrrd raises several types for broken files
        raise ReadError(f"cannot read NRRD ({e})", file=str(path)) from e
    dirs = hdr.get("space directions")
    if dirs is None:
        raise ReadError("NRRD without 'space directions': no geometry", file=str(path))
    dirs = np.array([[np.nan] * 3 if d is None else list(d) for d in dirs], dtype=np.float64)
    spatial = [i for i, row in enumerate(dirs) if np.all(np.isfinite(row))]
    other = [i for i in range(data.ndim) if i not in spatial]
    if len(spatial) != 3:
        raise ReadError(f"NRRD has {len(spatial)} spatial axes, expected 3", file=str(path))
    data = np.transpose(data, spatial + other)
    if data.ndim == 5:
        raise ReadError("NRRD with more than one non-spatial axis", file=str(path))
    space = str(hdr.get("space", "left-posterior-superior")).lower()
    to_lps = _SPACES.get(space)
    if to_lps is None:
        raise ReadError(f"unsupported NRRD space {space!r}", file=str(path))
    origin = np.asarray(hdr.get("space origin", [0.0, 0.0, 0.0]), dtype=np.float64)
    aff = np.eye(4)
    aff[:3, :3] = to_lps @ dirs[spatial].T
    aff[:3, 3] = to_lps @ origin
    aff = LPS_TO_RAS @ aff
    segments = []
    for key, value in hdr.items():
        m = re.fullmatch(r"Segment(\d+)_Name", key)
        if m:
            i = m.group(1)
            segments.append(
                Segment(
                    name=str(value),
                    value=int(hdr.get(f"Segment{i}_LabelValue", 1)),
                    layer=int(hdr.get(f"Segment{i}_Layer", 0)),
                )
            )
    return Volume(data, aff, {"format": "nrrd", "path": str(path)}), segments
