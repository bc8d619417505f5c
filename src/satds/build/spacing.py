"""The target spacings ``satds build`` accepts: one check for the configuration model and the CLI.

A module of its own, without pydantic, because the CLI's help text reads :data:`SPACING_RANGE_MM` when
any ``satds`` command starts.
"""

from __future__ import annotations

import math
from typing import Iterable

#: Target spacings satds accepts, in mm. Below 0.01 mm (10 µm: beyond any CT, MRI or PET in the collection,
#: whose finest scans are ~0.1 mm) or above 100 mm a typo is far likelier than intent, and such a grid
#: would fail every scan (too many voxels, or none).
SPACING_RANGE_MM = (0.01, 100.0)


def check_spacing(value: str | Iterable[float]) -> tuple[float, float, float]:
    """A target spacing, ``"x,y,z"`` text or three numbers, as three floats in mm; a ValueError saying what
    is wrong unless each is a finite number within :data:`SPACING_RANGE_MM`."""
    try:
        parts = [float(x) for x in (value.split(",") if isinstance(value, str) else value)]
    except (TypeError, ValueError):
        parts = []
    if len(parts) != 3:
        raise ValueError(f"target spacing {value!r}: give three numbers in mm, e.g. 1,1,3")
    lo, hi = SPACING_RANGE_MM
    bad = [x for x in parts if not (math.isfinite(x) and lo <= x <= hi)]
    if bad:
        raise ValueError(f"target spacing {parts} mm: each value must be a finite number from {lo:g} to {hi:g} mm (got {', '.join(map(str, bad))})")
    return parts[0], parts[1], parts[2]
