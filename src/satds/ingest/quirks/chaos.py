"""CHAOS (Combined CT-MR Healthy Abdominal Organ Segmentation): DICOM slice folders with PNG slice masks.

The release ships each series as a folder of single-slice DICOM files and its ground truth as a folder of PNGs,
one per slice, with no geometry of their own. Which PNG belongs to which slice is a naming convention:
MR masks carry the stem of their DICOM file (``IMG-0002-00001.png`` for ``IMG-0002-00001.dcm``; the T1-DUAL
masks those of one of the two phases), CT masks are numbered like the slices (``liver_GT_000.png`` for
``i0000,0000b.dcm``): the k-th mask in name order is the k-th slice in name order, which is how CHAOS's own
evaluation pairs them. Each PNG is then placed by the physical position of its paired DICOM slice, never by
array index (the CT files run head to foot, the opposite of position order).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ...errors import GeometryError, LabelError, ReadError
from ...io import Volume
from ...labels import LabelPiece
from ..hooks import hook

#: Grey level (the spec's label value) → (low, high]: the ranges the CHAOS documentation gives for MR masks.
MR_GREY = {63: (55, 70), 126: (110, 135), 189: (175, 200), 252: (240, 255)}
#: CT masks are the liver alone: any non-zero grey is the liver (255).
CT_GREY = {255: (0, 255)}


def natural_key(name: str) -> list:
    """Sort key reading digit runs as numbers (``IMG-0002-00010`` after ``IMG-0002-00009``)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def dicom_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.glob("*.dcm") if not p.name.startswith(".")), key=lambda p: natural_key(p.name))


def _header(path: Path):
    import pydicom

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as e:  # pydicom raises several types on a truncated or non-DICOM file
        raise ReadError(f"cannot read DICOM header ({type(e).__name__}: {e})", file=str(path)) from e


@hook("chaos", "read_image")
def chaos_image(case, spec, root: Path) -> list[Volume]:
    """Every channel folder is one series: all its slice files, ordered along the slice normal.

    CHAOS folders hold exactly one series each, so the slices are taken by folder rather than by series UID
    (which the anonymisation is reported to leave inconsistent across the files of one folder).
    """
    return [_read_folder(root, rel) for rel in case.images]


def _read_folder(root: Path, rel: str) -> Volume:
    import SimpleITK as sitk

    from ...io.dicom_geometry import series_geometry
    from ...io.itk import from_sitk, untilt

    folder = root / rel
    files = dicom_files(folder)
    if not files:
        raise ReadError("no DICOM files in the series folder", file=rel)
    heads = [_header(f) for f in files]
    iop = np.array([[float(v) for v in h.ImageOrientationPatient] for h in heads])
    if np.abs(iop - iop[0]).max() > 1e-4:
        raise GeometryError("slices of one series have different orientations", file=rel)
    normal = np.cross(iop[0, :3], iop[0, 3:])
    order = np.argsort([np.dot([float(v) for v in h.ImagePositionPatient], normal) for h in heads], kind="stable")
    ordered = [str(files[i]) for i in order]
    geo = series_geometry(ordered, rel, {str(f): h for f, h in zip(files, heads)})
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(ordered)
    try:
        img = reader.Execute()
    except RuntimeError as e:
        raise ReadError(f"cannot read DICOM series ({str(e).strip().splitlines()[-1]})", file=rel) from e
    return untilt(from_sitk(img, {"format": "dicom", "path": str(folder), "files": [Path(f).name for f in ordered]}), geo, rel)


@hook("chaos", "read_labels")
def chaos_labels(case, spec, root: Path, image: Volume) -> list[LabelPiece]:
    """The Ground folder's PNGs, each snapped to its grey code and put on its DICOM slice's place in the image grid."""
    if not case.label:
        return []
    grey = MR_GREY if spec.modality == "MRI" else CT_GREY
    pngs = sorted((p for p in (root / case.label).glob("*.png") if not p.name.startswith(".")), key=lambda p: natural_key(p.name))
    if not pngs:
        raise LabelError("no PNG masks in the Ground folder", file=case.label)
    from ...io.dicom_geometry import follow_tilt, stored_grid

    shape, affine = stored_grid(image)  # a tilted series: the slices as stored, then the image's resampling
    out = np.zeros(shape, dtype=np.uint8)
    done = np.zeros(shape, dtype=bool)
    inv = np.linalg.inv(affine)
    for png, dcm in pair_slices(pngs, [root / p for p in dict.fromkeys(case.images)], case.label):
        rel = str(png.relative_to(root))
        plane = snap_grey(_read_png(png, rel), grey, rel)
        i, j, k = slice_indices(_header(dcm), plane.shape, inv, shape, rel)
        if done[i, j, k].any():
            raise LabelError("two masks fall on the same image slice", file=rel)
        out[i, j, k] = plane
        done[i, j, k] = True
    return [LabelPiece(follow_tilt(out, image), case.label)]


def pair_slices(pngs: list[Path], folders: list[Path], label_rel: str) -> list[tuple[Path, Path]]:
    """(png, dicom) pairs: by file stem when one channel folder has every mask's stem, else by name order."""
    for folder in folders:
        by_stem = {p.stem: p for p in dicom_files(folder)}
        if all(p.stem in by_stem for p in pngs):
            return [(p, by_stem[p.stem]) for p in pngs]
    slices = dicom_files(folders[0])
    if len(slices) != len(pngs):
        raise LabelError(f"{len(pngs)} PNG masks for {len(slices)} DICOM slices, and their names do not pair them", file=label_rel)
    return list(zip(pngs, slices))


def _read_png(path: Path, rel: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("L") if im.mode in ("P", "LA", "RGB", "RGBA") else im)
    except Exception as e:
        raise ReadError(f"cannot read PNG ({type(e).__name__}: {e})", file=rel) from e
    if arr.ndim != 2:
        raise LabelError(f"expected a 2D grey mask, found shape {arr.shape}", file=rel)
    return arr


def snap_grey(plane: np.ndarray, table: dict[int, tuple[int, int]], rel: str) -> np.ndarray:
    """Grey levels → codes by the release's ranges; a non-zero grey outside every range is an error."""
    out = np.zeros(plane.shape, dtype=np.uint8)
    hit = plane == 0
    for code, (lo, hi) in table.items():
        m = (plane > lo) & (plane <= hi)
        out[m] = code
        hit |= m
    if not hit.all():
        bad = sorted({int(v) for v in np.unique(plane[~hit])})
        raise LabelError(f"grey level(s) {bad[:5]} are outside the mask codes' ranges {sorted(table.values())}", file=rel)
    return out


def slice_indices(ds, shape2d: tuple[int, int], inv_affine: np.ndarray, grid: tuple[int, int, int], rel: str):
    """Voxel indices (i, j, k arrays of the PNG's shape) of every pixel of a slice, from its DICOM geometry."""
    rows, cols = int(ds.Rows), int(ds.Columns)
    if shape2d != (rows, cols):
        raise GeometryError(f"mask is {shape2d[0]}x{shape2d[1]} pixels, its DICOM slice {rows}x{cols}", file=rel)
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    # DICOM: pixel (r, c) lies at IPP + c * column spacing * row direction + r * row spacing * column direction (LPS).
    lps = ipp + c[..., None] * col_spacing * iop[:3] + r[..., None] * row_spacing * iop[3:]
    ras = lps * np.array([-1.0, -1.0, 1.0])
    ijk = ras @ inv_affine[:3, :3].T + inv_affine[:3, 3]
    idx = np.rint(ijk)
    off = float(np.abs(ijk - idx).max())
    if off > 0.1 or (idx < 0).any() or (idx >= np.asarray(grid)).any():
        raise GeometryError(f"mask slice does not lie on the image grid (off by up to {off:.2f} voxel or outside it)", file=rel)
    idx = idx.astype(np.intp)
    return idx[..., 0], idx[..., 1], idx[..., 2]
