"""Reading label maps and pairing prediction and reference files by case name.

Label maps are returned as ``(array, affine)``: ``array[i, j, k]``, ``affine`` the RAS+ voxel-centre
affine (satds's convention). NIfTI is read with nibabel (gzip through ISA-L when available); MHA/MHD/NRRD
with SimpleITK, whose LPS geometry is turned into RAS+. These few functions stand in for ``satds.io``
until evaluation can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ReadError

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


@dataclass(frozen=True)
class Grid:
    shape: tuple[int, int, int]
    affine: np.ndarray

    @property
    def spacing(self) -> np.ndarray:
        return np.linalg.norm(self.affine[:3, :3], axis=0)


def _lps_to_ras(direction, spacing, origin) -> np.ndarray:
    aff = np.eye(4)
    aff[:3, :3] = np.asarray(direction, float).reshape(3, 3) * np.asarray(spacing, float)
    aff[:3, 3] = origin
    aff[:2] *= -1
    return aff


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith((".nii", ".nii.gz"))


def read_grid(path: str | Path) -> Grid:
    """Shape and affine from the header only."""
    path = Path(path)
    try:
        if _is_nifti(path):
            import nibabel as nib

            img = nib.load(str(path))
            shape = img.shape
            affine = img.affine
        else:
            import SimpleITK as sitk

            r = sitk.ImageFileReader()
            r.SetFileName(str(path))
            r.ReadImageInformation()
            shape = r.GetSize()
            affine = _lps_to_ras(r.GetDirection(), r.GetSpacing(), r.GetOrigin())
    except Exception as e:
        raise ReadError(f"cannot read header: {e}", file=str(path)) from e
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
    """``(array, affine)`` of a label map file."""
    path = Path(path)
    try:
        if _is_nifti(path):
            import nibabel as nib

            if path.name.lower().endswith(".gz"):
                try:
                    from isal import igzip as gz
                except ImportError:  # pragma: no cover
                    import gzip as gz
                with gz.open(path, "rb") as f:
                    img = nib.Nifti1Image.from_bytes(f.read())
            else:
                img = nib.load(str(path))
            hdr = img.header
            slope, inter = hdr.get_slope_inter()
            if slope in (None, 1.0) and inter in (None, 0.0):
                arr = np.asanyarray(img.dataobj.get_unscaled())
            else:
                arr = np.asanyarray(img.dataobj)
            affine = img.affine
        else:
            import SimpleITK as sitk

            img = sitk.ReadImage(str(path))
            if img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
                raise ReadError(f"a label map must be a 3D scalar image, found {img.GetDimension()}D with {img.GetNumberOfComponentsPerPixel()} components", file=str(path))
            arr = sitk.GetArrayFromImage(img).transpose(2, 1, 0)
            affine = _lps_to_ras(img.GetDirection(), img.GetSpacing(), img.GetOrigin())
    except ReadError:
        raise
    except Exception as e:
        raise ReadError(f"cannot read: {e}", file=str(path)) from e
    return _as_labels(np.asarray(arr), path), np.asarray(affine, float)


def write_label_map(path: str | Path, array: np.ndarray, affine: np.ndarray) -> None:
    """Write a label map (NIfTI via nibabel, other formats via SimpleITK); used by tests and tools."""
    path = Path(path)
    if _is_nifti(path):
        import nibabel as nib

        img = nib.Nifti1Image(np.asarray(array), np.asarray(affine, float))
        img.set_qform(np.asarray(affine, float), code=1)
        img.set_sform(np.asarray(affine, float), code=1)
        nib.save(img, str(path))
        return
    import SimpleITK as sitk

    from .grids import to_sitk

    sitk.WriteImage(to_sitk(array, affine), str(path), useCompression=True)
