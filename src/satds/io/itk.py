"""Formats read through SimpleITK (NRRD, MHA/MHD, DICOM series), converted to RAS+ volumes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ReadError
from .limits import check_declared
from .volume import Volume, affine_from_itk


def from_sitk(img, meta: dict | None = None) -> Volume:
    """SimpleITK image → Volume with ``[i, j, k(, c)]`` indexing and a RAS+ affine."""
    import SimpleITK as sitk

    if img.GetDimension() == 4:
        # 4D scalar image (e.g. a time/channel axis stored as the 4th dimension): keep it as channels.
        arr = sitk.GetArrayFromImage(img)  # (t, z, y, x)
        arr = np.transpose(arr, (3, 2, 1, 0))
        d4 = np.asarray(img.GetDirection()).reshape(4, 4)[:3, :3]
        aff = affine_from_itk(d4.ravel(), img.GetSpacing()[:3], img.GetOrigin()[:3])
        return Volume(arr, aff, meta or {})
    if img.GetDimension() == 2:
        raise ReadError("2D image where a 3D volume is expected")
    arr = sitk.GetArrayFromImage(img)  # (z, y, x) or (z, y, x, c)
    arr = np.transpose(arr, (2, 1, 0, 3)) if arr.ndim == 4 else np.transpose(arr, (2, 1, 0))
    aff = affine_from_itk(img.GetDirection(), img.GetSpacing(), img.GetOrigin())
    return Volume(arr, aff, meta or {})


def read_itk(path: str | os.PathLike) -> Volume:
    """NRRD, MHA/MHD (and anything else SimpleITK reads)."""
    import SimpleITK as sitk

    path = Path(path)
    if not path.exists():
        raise ReadError("file not found", file=str(path))
    try:
        info = sitk.ImageFileReader()
        info.SetFileName(str(path))
        info.ReadImageInformation()
        ncomp = info.GetNumberOfComponents()
        check_declared(tuple(info.GetSize()) + ((ncomp,) if ncomp > 1 else ()), None, str(path))  # before any voxel is read
        img = sitk.ReadImage(str(path))
    except RuntimeError as e:
        raise ReadError(f"cannot read image ({str(e).strip().splitlines()[-1] if str(e).strip() else e})", file=str(path)) from e
    return from_sitk(img, {"format": path.suffix.lstrip(".").lower(), "path": str(path)})


def dicom_series(folder: str | os.PathLike) -> dict[str, list[str]]:
    """Series instance UID → slice files (sorted by position) for every series in ``folder``."""
    import SimpleITK as sitk

    folder = str(folder)
    reader = sitk.ImageSeriesReader()
    out = {}
    for uid in reader.GetGDCMSeriesIDs(folder) or ():
        out[uid] = list(reader.GetGDCMSeriesFileNames(folder, uid))
    return out


def read_dicom_series(folder: str | os.PathLike, series_uid: str | None = None) -> Volume:
    """One DICOM series from a folder; with several series, ``series_uid`` picks one (else an error)."""
    import SimpleITK as sitk

    folder = Path(folder)
    if not folder.is_dir():
        raise ReadError("DICOM folder not found", file=str(folder))
    series = dicom_series(folder)
    if not series:
        raise ReadError("no DICOM series in folder", file=str(folder))
    if series_uid is None:
        if len(series) > 1:
            raise ReadError(f"{len(series)} DICOM series in one folder; the spec must select one", file=str(folder))
        series_uid = next(iter(series))
    if series_uid not in series:
        raise ReadError(f"series {series_uid} not in folder", file=str(folder))
    files = series[series_uid]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        img = reader.Execute()
    except RuntimeError as e:
        raise ReadError(f"cannot read DICOM series ({e})", file=str(folder)) from e
    vol = from_sitk(img, {"format": "dicom", "path": str(folder), "series_uid": series_uid, "files": [Path(f).name for f in files]})
    if len(files) > 2:
        _check_uniform_slices(files, folder)
    return vol


def _check_uniform_slices(files: list[str], folder: Path) -> None:
    """SimpleITK assumes evenly spaced slices; a gap (missing file) would silently misplace anatomy."""
    import pydicom

    pos = []
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["ImagePositionPatient", "ImageOrientationPatient"])
        if "ImagePositionPatient" not in ds:
            return
        pos.append([float(v) for v in ds.ImagePositionPatient])
    pos = np.asarray(pos)
    steps = np.linalg.norm(np.diff(pos, axis=0), axis=1)
    if steps.size and (steps.max() - steps.min()) > 0.01 * max(steps.mean(), 1e-6) + 1e-3:
        raise ReadError(
            f"uneven slice spacing in DICOM series ({steps.min():.3f}-{steps.max():.3f} mm): missing or duplicate slices",
            file=str(folder),
        )


def to_sitk(array: np.ndarray, affine: np.ndarray, dtype=None):
    """A SimpleITK image of a RAS+ ``(array, affine)`` (SimpleITK works in LPS and indexes [k, j, i])."""
    import SimpleITK as sitk

    from .volume import itk_geometry

    arr = np.asarray(array) if dtype is None else np.asarray(array, dtype=dtype)
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr.transpose(2, 1, 0)))
    d, s, o = itk_geometry(affine)
    img.SetDirection(d)
    img.SetSpacing(s)
    img.SetOrigin(o)
    return img
