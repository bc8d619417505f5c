"""Reading label maps and pairing prediction and reference files by case name.

Label maps are returned as ``(array, affine)``: ``array[i, j, k]``, ``affine`` the RAS+ voxel-centre
affine (satds's convention), read through :mod:`satds.io` (NIfTI through ISA-L; MHA/MHD/NRRD through
SimpleITK and pynrrd, their LPS geometry turned into RAS+).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ReadError
from ..geometry import Grid

SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd")


def case_name(path: str | Path) -> str | None:
    """The case a file holds (its name without the image suffix), or None for other files."""
    name = Path(path).name
    for suf in SUFFIXES:
        if name.lower().endswith(suf) and len(name) > len(suf):
            return name[: -len(suf)]
    return None


def list_cases(folder: str | Path) -> dict[str, Path]:
    """Case name → file for every label map directly in ``folder`` (other files are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReadError(f"not a folder: {folder}")
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        c = case_name(p)
        if c is None or not p.is_file():
            continue
        if c in out:
            raise ReadError(f"case {c!r} has two files: {out[c].name} and {p.name}", case=c)
        out[c] = p
    return out


def read_grid(path: str | Path) -> Grid:
    """Shape and affine from the header only (:func:`satds.io.read_header`)."""
    from ..io import read_header

    shape, affine, _ = read_header(path)
    shape = tuple(int(s) for s in shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise ReadError(f"a label map must be 3D, found shape {shape}", file=str(path))
    return Grid(shape, np.asarray(affine, float))


def _as_labels(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise ReadError(f"a label map must be 3D, found shape {arr.shape}", file=str(path))
    if arr.dtype == bool:
        return arr.view(np.uint8)
    if arr.dtype.kind == "f":
        r = np.rint(arr)
        if not np.array_equal(r, arr, equal_nan=False):
            raise ReadError("label map holds non-integer values", file=str(path))
        arr = r.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise ReadError(f"label map of type {arr.dtype} is not a label map", file=str(path))
    if arr.dtype.kind == "i" and arr.size and arr.min() < 0:
        raise ReadError("label map holds negative values", file=str(path))
    if arr.dtype.itemsize > 2 or arr.dtype.kind == "i":
        top = int(arr.max()) if arr.size else 0
        arr = arr.astype(np.min_scalar_type(top), copy=False)  # smallest unsigned type that holds them
    return arr  # memory order as stored (NIfTI: Fortran); see grids.c_order


def read_label_map(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(array, affine)`` of a label map file, read through :func:`satds.io.read_volume`."""
    from ..io import read_volume

    path = Path(path)
    vol = read_volume(path, ndim=None)
    return _as_labels(np.asarray(vol.array), path), vol.affine


def write_label_map(path: str | Path, array: np.ndarray, affine: np.ndarray) -> None:
    """Write a label map (NIfTI or any SimpleITK format by extension); used by tests and tools."""
    from ..phantoms.writers import write_volume

    write_volume(Path(path), np.asarray(array), np.asarray(affine, float))
