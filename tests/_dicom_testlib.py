"""Helpers for the DICOM tests: tilt a series the way a gantry does, read where DICOM puts each pixel."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pydicom

from _robust import tree_digest

source_digest = tree_digest  # the DICOM tests' name: every file under a folder → its content hash


def series(folder: Path) -> list[pydicom.Dataset]:
    """The slices of a one-series folder, ordered along their plane normal (as GDCM stacks them)."""
    dss = [pydicom.dcmread(p) for p in sorted(folder.iterdir()) if p.is_file()]
    iop = np.asarray(dss[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    return sorted(dss, key=lambda d: float(np.asarray(d.ImagePositionPatient, dtype=float) @ normal))


def shear_series(folder: Path, rows_per_slice: float) -> float:
    """Tilt a series in place by moving each slice along its columns: slice k shifts ``k * rows_per_slice``
    rows (ImageOrientationPatient unchanged, GantryDetectorTilt set). Returns the tilt in degrees."""
    dss = series(folder)
    iop = np.asarray(dss[0].ImageOrientationPatient, dtype=float)
    dy = float(dss[0].PixelSpacing[0])
    pos = [np.asarray(d.ImagePositionPatient, dtype=float) for d in dss]
    dz = float(np.linalg.norm(pos[-1] - pos[0])) / (len(pos) - 1)
    angle = math.degrees(math.atan2(rows_per_slice * dy, dz))
    for k, (ds, p) in enumerate(zip(dss, pos)):
        ds.ImagePositionPatient = [f"{v:.6f}" for v in p + k * rows_per_slice * dy * iop[3:]]
        ds.GantryDetectorTilt = f"{angle:.4f}"
        ds.save_as(ds.filename)
    return angle


def gantry_series(src: Path, out: Path, angle_deg: float, *, ascending: bool = True) -> None:
    """A copy of an axial series as a tilted gantry writes it (the GE examples of dcm_qa_ct): the column
    direction leans by ``angle_deg`` about the row direction while the slices keep their table positions;
    InstanceNumber runs with the table position (``ascending``) or against it."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    dss = series(src)
    t = math.radians(angle_deg)
    iop = np.asarray(dss[0].ImageOrientationPatient, dtype=float)
    col = math.cos(t) * iop[3:] - math.sin(t) * np.cross(iop[:3], iop[3:])
    for k, ds in enumerate(dss):
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*iop[:3], *col)]
        ds.GantryDetectorTilt = f"{angle_deg:.4f}"
        ds.InstanceNumber = k + 1 if ascending else len(dss) - k
        ds.save_as(out / Path(ds.filename).name)


def pixel_world(ds: pydicom.Dataset) -> np.ndarray:
    """RAS+ world position of every pixel (rows, columns, 3) of a slice, straight from its DICOM header."""
    ipp = np.asarray(ds.ImagePositionPatient, dtype=float)
    iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
    dy, dx = (float(v) for v in ds.PixelSpacing)
    r, c = np.meshgrid(np.arange(int(ds.Rows)), np.arange(int(ds.Columns)), indexing="ij")
    lps = ipp + c[..., None] * dx * iop[:3] + r[..., None] * dy * iop[3:]
    return lps * np.array([-1.0, -1.0, 1.0])


def hu(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))


def voxel_of(world: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, float]:
    """Integer voxel indices of world points on a grid, and how far (in voxels) they are from a centre."""
    inv = np.linalg.inv(affine)
    # Written out: a BLAS matrix product of (n, 3) points is slow on a busy machine.
    ijk = np.stack([world[:, 0] * inv[a, 0] + world[:, 1] * inv[a, 1] + world[:, 2] * inv[a, 2] + inv[a, 3] for a in range(3)], axis=-1)
    idx = np.rint(ijk)
    return idx.astype(np.int64), float(np.abs(ijk - idx).max(initial=0.0))


def stored_affine(folder: Path) -> np.ndarray:
    """RAS+ affine of a series' stored slices (column, row, slice) from its headers: sheared when tilted."""
    slices = series(folder)
    p0 = np.asarray(slices[0].ImagePositionPatient, dtype=float)
    iop = np.asarray(slices[0].ImageOrientationPatient, dtype=float)
    dy, dx = (float(v) for v in slices[0].PixelSpacing)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1] = iop[:3] * dx, iop[3:] * dy
    lps[:3, 2] = (np.asarray(slices[-1].ImagePositionPatient, dtype=float) - p0) / (len(slices) - 1)
    lps[:3, 3] = p0
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
