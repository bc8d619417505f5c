"""The pseudo-label folder written by ``satds pseudolabel`` and read by the export: its index and label maps.

Reading lives here, below both the merge (:mod:`.pseudolabel`) and the export (:mod:`.cases`,
:mod:`.nnunet`), so neither needs the other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

PSEUDO_JSON = "pseudolabels.json"


def read_pseudo_index(folder: str | Path) -> dict[str, Any]:
    return json.loads((Path(folder) / PSEUDO_JSON).read_text())


def pseudo_stamp(folder: str | Path | None) -> str:
    """The stamp of a pseudo-label folder (changes whenever ``satds pseudolabel`` rewrites it); '' if none."""
    if not folder:
        return ""
    p = Path(folder) / PSEUDO_JSON
    return json.loads(p.read_text()).get("stamp", "") if p.exists() else ""


def read_pseudo_label(folder: Path, case_id: str, shape, affine, problems: list[str]) -> np.ndarray | None:
    """A merged label map, checked against the exported case's grid."""
    from ..geometry import align_to, grid_mismatch
    from ..io import read_volume

    p = folder / "labels" / f"{case_id}.nii.gz"
    if not p.exists():
        problems.append(f"{case_id}: no pseudo-label {p}")
        return None
    vol = read_volume(p)
    why = grid_mismatch(shape, affine, vol.shape, vol.affine)
    if why:
        problems.append(f"{case_id}: pseudo-label grid differs from the exported image ({why}); was it made with another source or build?")
        return None
    return np.asarray(align_to(vol.array, vol.affine, shape, affine))
