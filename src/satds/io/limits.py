"""How large a volume satds agrees to read, checked on the header before any voxel is inflated.

A few kilobytes of gzip can declare gigabytes (a "decompression bomb", or just a damaged header): readers
call :func:`check_declared` with the shape the header declares, so such a file is one clear error naming
the file and the size, not an exhausted machine. The cap is ``SATDS_MAX_VOXELS`` (default
:data:`DEFAULT_MAX_VOXELS`, 2^30 ≈ 1.07 billion voxels: a 1024³ volume; the largest scans of the
collection hold about half a billion).
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import ReadError, SatdsError

ENV = "SATDS_MAX_VOXELS"
DEFAULT_MAX_VOXELS = 2**30


def max_voxels() -> int:
    """The cap on the voxels (all axes, channels included) of one volume: ``$SATDS_MAX_VOXELS`` or the default."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return DEFAULT_MAX_VOXELS
    try:
        n = float(value)
    except ValueError:
        n = float("nan")
    if not np.isfinite(n) or n < 1:
        raise SatdsError(f"{ENV}={value!r} is not a positive number of voxels")
    return int(n)


def check_declared(shape, itemsize: int | None = None, file: str = "") -> None:
    """Refuse a header whose shape is empty or larger than :func:`max_voxels` (ReadError naming the file)."""
    shape = tuple(int(s) for s in shape)
    if not shape or min(shape) < 1:
        raise ReadError(f"empty volume: the header declares shape {shape}", file=file)
    n = int(np.prod(shape, dtype=object))
    cap = max_voxels()
    if n > cap:
        raise ReadError(
            f"the header declares shape {shape} = {n:,} voxels{f' ({n * itemsize / 1e9:.3g} GB)' if itemsize else ''}, above the limit of "
            f"{cap:,} voxels; refusing to read it (set {ENV} to raise the limit)",
            file=file,
        )
