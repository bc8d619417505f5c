"""VerSe: the release's vertebra centroid files, cross-checked against the masks.

Each ``derivatives/<subject>/<stem>_seg-vert_msk.nii.gz`` has a ``<stem>_seg-subreg_ctd.json``: a list whose
first element is ``{"direction": [three axis codes]}`` and whose others are ``{"label", "X", "Y", "Z"}``, the
centroid of vertebra ``label`` in voxels of the image reoriented to those axis codes (VerSe README; the
release's ``data_utilities.py`` reorients centroids by these codes). A label map cannot say whether the two
agree, so this hook reads the mask as usual and records every vertebra whose centroid and mask disagree.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...io import Volume, read_volume
from ...labels import LabelPiece
from ..hooks import hook
from ..read import align_or_fail

#: A centroid further than this from its vertebra's mask centre of mass (world mm) is a disagreement.
TOLERANCE_MM = 3.0

NAMES = {**{i: f"C{i}" for i in range(1, 8)}, **{i: f"T{i - 7}" for i in range(8, 20)}, **{i: f"L{i - 19}" for i in range(20, 26)}, 26: "sacrum", 27: "coccyx", 28: "T13"}


def centroid_file(mask_path: str) -> str:
    return mask_path.replace("_seg-vert_msk.nii.gz", "_seg-subreg_ctd.json")


def affine_in_codes(affine: np.ndarray, shape, codes) -> np.ndarray:
    """The affine of the same grid with its axes permuted/flipped to ``codes`` (what the centroids index)."""
    import nibabel.orientations as nio

    t = nio.ornt_transform(nio.io_orientation(affine), nio.axcodes2ornt(tuple(codes)))
    return np.asarray(affine, dtype=np.float64) @ nio.inv_ornt_aff(t, tuple(shape[:3]))


def read_centroids(path: Path, mask: Volume) -> dict[int, np.ndarray]:
    """Label → centroid in world mm (RAS+) from a VerSe ``*_ctd.json`` (NaN entries skipped)."""
    items = json.loads(path.read_text())
    if not isinstance(items, list) or not items or "direction" not in items[0]:
        raise ValueError("expected a list whose first element gives the axis 'direction'")
    codes = [str(c).upper() for c in items[0]["direction"]]
    axis = {"L": 0, "R": 0, "A": 1, "P": 1, "S": 2, "I": 2}
    if len(codes) != 3 or any(c not in axis for c in codes) or len({axis[c] for c in codes}) != 3:
        raise ValueError(f"bad axis codes {codes}")
    aff = affine_in_codes(mask.affine, mask.spatial_shape, codes)
    out: dict[int, np.ndarray] = {}
    for d in items[1:]:
        xyz = np.array([d.get("X"), d.get("Y"), d.get("Z")], dtype=np.float64)
        if not np.isfinite(xyz).all():
            continue
        out[int(d["label"])] = aff[:3, :3] @ xyz + aff[:3, 3]
    return out


def mask_centroids(mask: Volume) -> dict[int, np.ndarray]:
    """Label → centre of mass in world mm of every non-zero value of the mask."""
    import scipy.ndimage as ndi

    arr = np.asarray(mask.array)
    values = [int(v) for v in np.unique(arr) if v != 0]
    if not values:
        return {}
    com = ndi.center_of_mass(np.ones(arr.shape, dtype=np.uint8), labels=arr, index=values)
    return {v: mask.affine[:3, :3] @ np.asarray(c) + mask.affine[:3, 3] for v, c in zip(values, com)}


def centroid_notes(root: Path, mask_path: str, mask: Volume, tolerance: float = TOLERANCE_MM) -> list[str]:
    """One note per disagreement between the centroid file and the mask (none when they agree)."""
    ctd = centroid_file(mask_path)
    if not (root / ctd).exists():
        return [f"{ctd}: no centroid file beside the mask"]
    try:
        given = read_centroids(root / ctd, mask)
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
        return [f"{ctd}: centroid file unreadable ({e})"]
    found = mask_centroids(mask)
    notes = []
    for v in sorted(set(given) | set(found)):
        name = f"{NAMES.get(v, 'label')} (label {v})"
        if v not in found:
            notes.append(f"{ctd}: centroid of {name} but the mask has no voxels of it")
        elif v not in given:
            notes.append(f"{ctd}: {name} is in the mask but has no centroid")
        else:
            d = float(np.linalg.norm(given[v] - found[v]))
            if d > tolerance:
                notes.append(f"{ctd}: {name} centroid is {d:.1f} mm from the mask's centre of mass (tolerance {tolerance:g} mm)")
    return notes


@hook("verse", "read_labels")
def verse_labels(case, spec, root: Path, image: Volume) -> list[LabelPiece]:
    """The vertebra mask, plus notes where its centroid file disagrees with it (see the module docstring)."""
    mask = read_volume(root / case.label, ndim=3)
    arr = align_or_fail(mask.array, mask.affine, image, case.label)
    return [LabelPiece(arr, case.label, None, centroid_notes(root, case.label, mask))]
