"""Formats read through SimpleITK (NRRD, MHA/MHD, DICOM series), converted to RAS+ volumes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import GeometryError, ReadError
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
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        ncomp = reader.GetNumberOfComponents()
        check_declared(tuple(reader.GetSize()) + ((ncomp,) if ncomp > 1 else ()), None, str(path))  # before any voxel is read
        img = reader.Execute()
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
    """One DICOM series from a folder; with several series, ``series_uid`` picks one (else an error).

    A series whose slices step off their plane normal (a tilted CT gantry) is resampled onto an
    orthogonal grid exactly as dcm2niix does (:func:`satds.geometry.deshear`): ``meta`` then holds
    ``gantry_tilt_deg`` and the true sheared grid of the stored slices (``source_affine``,
    ``source_shape``), so that labels drawn on those slices can follow the same transform.
    """
    import SimpleITK as sitk

    from .dicom_geometry import series_geometry

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
    first = _check_series_size(files, str(folder))
    geo = series_geometry(files, str(folder), {files[0]: first} if first is not None else None)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        img = reader.Execute()
    except RuntimeError as e:
        raise ReadError(f"cannot read DICOM series ({e})", file=str(folder)) from e
    vol = from_sitk(img, {"format": "dicom", "path": str(folder), "series_uid": series_uid, "files": [Path(f).name for f in files]})
    return untilt(vol, geo, str(folder))


def _check_series_size(files: list[str], where: str):
    """The size a series declares (rows × columns × frames × files, samples, bits) against the voxel cap,
    before any pixel is decoded: a folder of tiny files that declare huge frames is refused by name.

    Returns the first file's header (with the fields :func:`series_geometry` reads, so it is read once),
    or None when it cannot be read."""
    import pydicom

    from .dicom_geometry import GEOMETRY_TAGS

    bad = (AttributeError, TypeError, ValueError, OSError, pydicom.errors.InvalidDicomError)
    try:
        ds = pydicom.dcmread(files[0], stop_before_pixels=True, specific_tags=[*GEOMETRY_TAGS, "NumberOfFrames", "SamplesPerPixel", "BitsAllocated"])
    except bad:
        return None  # no usable image header: the reader says what is wrong
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.get("BitsAllocated", 16) or 16)
    except bad:
        return ds
    shape = (cols, rows, frames * len(files)) + ((samples,) if samples > 1 else ())
    check_declared(shape, max(bits // 8, 1), where)
    return ds


def untilt(vol: Volume, geo, where: str) -> Volume:
    """``vol`` as read by SimpleITK, resampled onto an orthogonal grid when ``geo`` (its
    :class:`~satds.io.dicom_geometry.SeriesGeometry`) says its slices are tilted; unchanged otherwise."""
    from ..geometry import deshear

    if geo is None or not geo.tilted:
        return vol
    if vol.array.ndim != 3 or vol.spatial_shape != geo.shape:
        raise GeometryError(f"tilted DICOM series ({geo.shear.angle_deg:.2f} degrees) whose pixel data is not one slice per file: cannot correct the tilt", file=where)
    if np.abs(vol.affine[:3, 3] - geo.affine[:3, 3]).max() > 1e-3:  # SimpleITK's first slice is the headers' first
        raise GeometryError(f"tilted DICOM series ({geo.shear.angle_deg:.2f} degrees) read in another slice order than its positions: cannot correct the tilt", file=where)
    # dcm2niix pads with PixelPaddingValue, else the darkest voxel, and never blends padding into tissue.
    fill = geo.padding if geo.padding is not None else (float(vol.array.min()) if vol.array.size else 0.0)
    arr, aff = deshear(vol.array, geo.affine, fill=fill, padding=geo.padding)
    meta = {**vol.meta, "gantry_tilt_deg": round(geo.shear.angle_deg, 4), "source_affine": geo.affine, "source_shape": geo.shape}
    return Volume(arr, aff, meta)


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
