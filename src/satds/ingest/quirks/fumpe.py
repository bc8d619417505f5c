"""FUMPE: pulmonary embolism masks shipped as MATLAB files beside a DICOM series."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import GeometryError, LabelError, ReadError
from ...io import Volume
from ...labels import LabelPiece
from ...specs.model import DatasetSpec
from ..discover import CaseFiles
from ..hooks import hook


def instance_numbers(folder: Path, files: list[str]) -> list[int]:
    """InstanceNumber of each DICOM file (header only)."""
    import pydicom

    out = []
    for name in files:
        ds = pydicom.dcmread(folder / name, stop_before_pixels=True, specific_tags=["InstanceNumber"])
        if "InstanceNumber" not in ds:
            raise ReadError("DICOM slice without InstanceNumber: cannot place the mask's slices", file=str(folder / name))
        out.append(int(ds.InstanceNumber))
    return out


def load_mat_mask(path: Path, rel: str) -> np.ndarray:
    """The 3D array of a .mat mask file: variable ``Mask``, or the file's only array."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
    except NotImplementedError as e:  # MATLAB v7.3 (HDF5) files
        raise ReadError(f"cannot read MATLAB file ({e})", file=rel) from None
    except (ValueError, OSError, TypeError) as e:
        raise ReadError(f"cannot read MATLAB file ({e})", file=rel) from None
    arrays = {k: v for k, v in mat.items() if not k.startswith("__") and isinstance(v, np.ndarray)}
    if "Mask" in arrays:
        m = arrays["Mask"]
    elif len(arrays) == 1:
        m = next(iter(arrays.values()))
    else:
        raise LabelError(f"no variable 'Mask' and not exactly one array in the file (found {sorted(arrays)})", file=rel)
    if m.ndim != 3:
        raise GeometryError(f"mask array has shape {m.shape}, expected (rows, columns, slices)", file=rel)
    return m


@hook("fumpe_mat", "read_labels")
def fumpe_mat_labels(case: CaseFiles, spec: DatasetSpec, root: Path, image: Volume) -> list[LabelPiece]:
    """FUMPE's GroundTruth/PATNNN.mat holds a MATLAB array ``Mask`` of (rows, columns, slices) without any
    geometry: slice s belongs to the (s+1)-th DICOM file in InstanceNumber order, pixel (r, c) to its row r and
    column c. The image grid comes from SimpleITK (columns, rows, slices sorted by position), so each mask
    slice is transposed onto the image slice that holds its instance.
    """
    rel = case.label
    mask = load_mat_mask(root / rel, rel)
    files = image.meta.get("files")
    if not files:
        raise ReadError("the image was not read as a DICOM series: cannot place the mask's slices", file=case.images[0])
    instances = instance_numbers(root / case.images[0], files)
    if len(set(instances)) != len(instances):
        raise ReadError("duplicate InstanceNumbers in the DICOM series: cannot place the mask's slices", file=case.images[0])
    nx, ny, nz = image.spatial_shape
    if mask.shape != (ny, nx, nz):
        raise GeometryError(f"mask shape {mask.shape} is not the series' (rows, columns, slices) = {(ny, nx, nz)}", file=rel)
    rank = np.argsort(np.argsort(instances))  # image slice k holds the rank[k]-th instance
    out = np.empty((nx, ny, nz), dtype=mask.dtype)
    for k in range(nz):
        out[:, :, k] = mask[:, :, rank[k]].T
    return [LabelPiece(out, rel)]
