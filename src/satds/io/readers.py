"""One entry point for every image format satds reads: :func:`read_volume`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import GeometryError, ReadError
from .limits import check_declared
from .volume import Volume

NIFTI = (".nii", ".nii.gz")
ITK = (".mha", ".mhd", ".nhdr", ".nrrd", ".mnc", ".hdr")
#: Names that promise a single file: a folder so named is a mistake, not a DICOM series.
FILE_SUFFIXES = NIFTI + ITK + (".npy", ".png", ".seg.nrrd")


def _check_geometry(shape, affine, path: Path) -> None:
    """An empty shape or an affine that places no voxel (NaN, zero spacing, parallel axes) is refused here,
    with the file named, rather than deep in a library later."""
    from ..geometry import affine_problem

    if any(int(s) < 1 for s in tuple(shape)[:3]):
        raise ReadError(f"empty volume: shape {tuple(int(s) for s in shape)}", file=str(path))
    why = affine_problem(affine)
    if why:
        raise GeometryError(why, file=str(path))


def file_kind(path: str | os.PathLike) -> str:
    p = Path(path)
    name = p.name.lower()
    if p.is_dir():
        return "dicom"
    if name.endswith(NIFTI):
        return "nifti"
    if name.endswith(".seg.nrrd") or name.endswith(".nrrd") or name.endswith(".nhdr"):
        return "nrrd"
    if name.endswith(ITK):
        return "itk"
    if name.endswith(".npy"):
        return "npy"
    if name.endswith(".dcm") or name.endswith(".ima"):
        return "dicom-file"
    if name.endswith(".png"):
        return "png"
    return "unknown"


def read_volume(path: str | os.PathLike, *, series_uid: str | None = None, ndim: int | None = 3) -> Volume:
    """Read any supported image. ``ndim`` = 3 rejects 4D data (use ``None`` to allow channels)."""
    p = Path(path)
    if not p.exists():
        raise ReadError("file not found", file=str(p))
    kind = file_kind(p)
    if kind == "dicom" and p.name.lower().endswith(FILE_SUFFIXES):
        raise ReadError(f"a folder where a {_suffix(p.name)} file is expected", file=str(p))
    if kind == "dicom" and not any(x.is_file() for x in p.iterdir()):
        raise ReadError("a folder with no files where a DICOM series is expected", file=str(p))
    if kind == "nifti":
        from .nifti import read_nifti

        vol = read_nifti(p)
    elif kind == "nrrd":
        from .nrrd_seg import read_nrrd

        vol, segments = read_nrrd(p)
        vol.meta["segments"] = segments
    elif kind == "itk":
        from .itk import read_itk

        vol = read_itk(p)
    elif kind == "dicom":
        from .itk import read_dicom_series

        vol = read_dicom_series(p, series_uid)
    elif kind == "npy":
        try:
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
        except Exception as e:
            raise ReadError(f"cannot read .npy ({e})", file=str(p)) from e
        check_declared(arr.shape, arr.dtype.itemsize, str(p))
        vol = Volume(arr, np.eye(4), {"format": "npy", "path": str(p), "geometry": "missing"})
    else:
        raise ReadError(f"unsupported file type {p.suffix!r}", file=str(p))
    # Trailing singleton axes (x, y, z, 1) are 3D in all but name.
    while vol.array.ndim > 3 and vol.array.shape[-1] == 1:
        vol.array = vol.array[..., 0]
    if ndim is not None and vol.array.ndim != ndim:
        raise GeometryError(f"expected a {ndim}D volume, found shape {vol.shape}", file=str(p))
    _check_geometry(vol.array.shape, vol.affine, p)
    if np.issubdtype(vol.array.dtype, np.floating) and vol.array.size and not np.isfinite(vol.array).all():
        vol.meta["nonfinite"] = int((~np.isfinite(vol.array)).sum())
    return vol


def _suffix(name: str) -> str:
    name = name.lower()
    return next(s for s in sorted(FILE_SUFFIXES, key=len, reverse=True) if name.endswith(s))


def read_header(path: str | os.PathLike) -> tuple[tuple[int, ...], np.ndarray, str]:
    """(shape, RAS+ affine, dtype) without decoding voxels where the format allows it."""
    p = Path(path)
    kind = file_kind(p)
    if kind == "nifti":
        import nibabel as nib

        try:
            img = nib.load(str(p))
            shape, affine, dtype = tuple(int(s) for s in img.shape), img.affine, img.get_data_dtype()
        except Exception as e:
            raise ReadError(f"cannot read NIfTI header ({e})", file=str(p)) from e
        check_declared(shape, dtype.itemsize, str(p))
        _check_geometry(shape, affine, p)
        return shape, affine, str(dtype)
    if kind == "itk":
        import SimpleITK as sitk

        from .volume import affine_from_itk

        r = sitk.ImageFileReader()
        r.SetFileName(str(p))
        try:
            r.ReadImageInformation()
        except RuntimeError as e:
            raise ReadError(f"cannot read header ({e})", file=str(p)) from e
        size = tuple(int(s) for s in r.GetSize())
        numpy_types = {
            sitk.sitkUInt8: "uint8", sitk.sitkInt8: "int8", sitk.sitkUInt16: "uint16", sitk.sitkInt16: "int16",
            sitk.sitkUInt32: "uint32", sitk.sitkInt32: "int32", sitk.sitkUInt64: "uint64", sitk.sitkInt64: "int64",
            sitk.sitkFloat32: "float32", sitk.sitkFloat64: "float64",
        }
        dtype = numpy_types.get(r.GetPixelID(), str(sitk.GetPixelIDValueAsString(r.GetPixelID())))
        ncomp = r.GetNumberOfComponents()
        check_declared(size + ((ncomp,) if ncomp > 1 else ()), np.dtype(dtype).itemsize if dtype in numpy_types.values() else None, str(p))
        affine = affine_from_itk(r.GetDirection(), r.GetSpacing(), r.GetOrigin())
        _check_geometry(size, affine, p)
        return size, affine, dtype
    vol = read_volume(p, ndim=None)
    return vol.shape, vol.affine, str(vol.array.dtype)
