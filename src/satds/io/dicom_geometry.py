"""Where a DICOM series' voxels really are, from every slice's ImagePositionPatient and orientation.

SimpleITK stacks a series' slices along their plane normal, which is right only when the step from one
slice to the next is along that normal. A CT acquired with a tilted gantry steps along the table instead,
so its slices form a sheared grid: read as orthogonal, slice k lands ``k * step * sin(tilt)`` off in its
own plane (centimetres at the top of a long series). :func:`series_geometry` measures the step from the
positions themselves, so the reader can resample a tilted series onto an orthogonal grid
(:func:`satds.geometry.deshear`) instead of storing a sheared grid as orthogonal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import GeometryError, ReadError
from ..geometry import Shear, shear_of
from .volume import LPS_TO_RAS

#: A series is treated as tilted (and resampled) when its last slice sits more than this fraction of a
#: pixel away from where an orthogonal stack would put it; below, the orthogonal grid is exact to within
#: header rounding (IPP written with a few decimals) and nothing is resampled.
TILT_TOLERANCE = 0.1
#: The header fields :func:`series_geometry` reads from each slice.
GEOMETRY_TAGS = ["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns", "PixelPaddingValue", "PixelRepresentation", "RescaleSlope", "RescaleIntercept"]


@dataclass(frozen=True)
class SeriesGeometry:
    """The series' true grid: ``affine`` (RAS+) maps (column, row, slice) to the voxel centre, sheared
    when the slice step is not along the plane normal; ``shape`` is (columns, rows, slices)."""

    affine: np.ndarray
    shape: tuple[int, int, int]
    shear: Shear
    padding: float | None = None  # PixelPaddingValue in rescaled units (HU), when the series sets one

    @property
    def tilted(self) -> bool:
        pixel = float(min(np.linalg.norm(self.affine[:3, 0]), np.linalg.norm(self.affine[:3, 1])))
        return self.shear.displacement_mm > TILT_TOLERANCE * pixel


def _floats(ds, tag: str, n: int, name: str, where: str) -> np.ndarray | None:
    v = ds.get(tag)
    if v is None:
        return None
    try:
        out = np.asarray([float(x) for x in v], dtype=np.float64)
    except (TypeError, ValueError):
        raise ReadError(f"{tag} of {name} is not numeric ({v!r})", file=where) from None
    if out.shape != (n,) or not np.isfinite(out).all():
        raise ReadError(f"{tag} of {name} must be {n} finite numbers, found {v!r}", file=where)
    return out


def series_geometry(files: list[str], where: str, headers: dict | None = None) -> SeriesGeometry | None:
    """The true grid of a single-frame series whose ``files`` are in stacking order (as GDCM sorts them).

    None when the headers lack positions or orientation (SimpleITK's geometry then stands). A series
    with unevenly spaced slices (a missing or duplicate file) or slices of different orientations is a
    ReadError/GeometryError naming ``where``; a tilt is not an error (the reader corrects it).
    ``headers`` (file → pydicom dataset holding at least :data:`GEOMETRY_TAGS`) are headers the caller
    already read; the other files' headers are read here.
    """
    import pydicom

    headers = headers or {}
    pos, iops = [], []
    first = None
    for f in files:
        ds = headers.get(f)
        if ds is None:
            ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=GEOMETRY_TAGS)
        name = Path(f).name
        p = _floats(ds, "ImagePositionPatient", 3, name, where)
        o = _floats(ds, "ImageOrientationPatient", 6, name, where)
        if p is None or o is None:
            return None
        pos.append(p)
        iops.append(o)
        if first is None:
            first = ds
    pos, iops = np.asarray(pos), np.asarray(iops)
    if np.abs(iops - iops[0]).max() > 1e-3:
        raise GeometryError("slices of the DICOM series have different orientations (ImageOrientationPatient)", file=where)
    if len(files) > 2:
        steps = np.linalg.norm(np.diff(pos, axis=0), axis=1)
        if (steps.max() - steps.min()) > 0.01 * max(steps.mean(), 1e-6) + 1e-3:
            raise ReadError(
                f"uneven slice spacing in DICOM series ({steps.min():.3f}-{steps.max():.3f} mm): missing or duplicate slices",
                file=where,
            )
    spacing = _floats(first, "PixelSpacing", 2, Path(files[0]).name, where)
    if spacing is None or len(files) < 2 or "Rows" not in first or "Columns" not in first:
        return None
    u, v = iops[0][:3], iops[0][3:]
    step = (pos[-1] - pos[0]) / (len(files) - 1)
    lps = np.eye(4)
    lps[:3, 0] = u / np.linalg.norm(u) * spacing[1]  # along a row: column spacing
    lps[:3, 1] = v / np.linalg.norm(v) * spacing[0]  # down a column: row spacing
    lps[:3, 2] = step
    lps[:3, 3] = pos[0]
    affine = LPS_TO_RAS @ lps
    shape = (int(first.Columns), int(first.Rows), len(files))
    padding = None
    if first.get("PixelPaddingValue") is not None:
        try:
            padding = float(first.PixelPaddingValue) * float(first.get("RescaleSlope", 1) or 1) + float(first.get("RescaleIntercept", 0) or 0)
        except (TypeError, ValueError):
            padding = None
    return SeriesGeometry(affine, shape, shear_of(shape, affine), padding)


def stored_grid(image) -> tuple[tuple[int, int, int], np.ndarray]:
    """(shape, affine) of the grid an image's DICOM slices are stored on: its own grid, or the sheared
    grid a tilted series was resampled from. Labels drawn on those slices are placed here first."""
    if "source_affine" in image.meta:
        return tuple(image.meta["source_shape"]), np.asarray(image.meta["source_affine"])
    return image.spatial_shape, image.affine


def follow_tilt(labels: np.ndarray, image) -> np.ndarray:
    """A label array on :func:`stored_grid` moved onto the image's grid by the same resampling as the
    image's voxels (nearest neighbour); unchanged for an image that was not tilted."""
    from ..geometry import deshear

    if "source_affine" not in image.meta:
        return labels
    out, aff = deshear(labels, image.meta["source_affine"], nearest=True, fill=0)
    if out.shape[:3] != image.spatial_shape or not np.allclose(aff, image.affine, atol=1e-4):
        raise GeometryError("internal: labels of a tilted series did not land on its corrected grid")
    return out
