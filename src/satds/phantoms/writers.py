"""Write volumes in the formats releases ship: NIfTI, NRRD, MHA/MHD, NumPy, DICOM series, PNG slices."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np

from ..io import itk_geometry, write_nifti
from ..io.atomic import atomic_path


def write_volume(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
    """Write by file extension; ``array`` is ``[i, j, k(, c)]`` with a RAS+ ``affine``."""
    name = path.name.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if name.endswith((".nii", ".nii.gz")):
        write_nifti(path, array, affine)
    elif name.endswith((".nrrd", ".nhdr", ".mha", ".mhd")):
        write_itk(path, array, affine)
    elif name.endswith(".npy"):
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, array)
    else:
        raise ValueError(f"no phantom writer for {path.name}")


def write_itk(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
    import SimpleITK as sitk

    arr = np.asarray(array)
    if arr.ndim == 4:
        img = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(arr, (2, 1, 0, 3))), isVector=True)
    else:
        img = sitk.GetImageFromArray(np.ascontiguousarray(arr.T))
    direction, spacing, origin = itk_geometry(affine)
    img.SetDirection(direction)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if path.name.lower().endswith(".mhd"):
        # A .mhd header points at its .raw data file by name: write both under the final names.
        path.parent.mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(img, str(path), useCompression=False)
        return
    with atomic_path(path) as tmp:
        itk_tmp = tmp.with_name(tmp.name + path.suffix)  # ITK picks the writer by extension
        try:
            sitk.WriteImage(img, str(itk_tmp), useCompression=True)
            itk_tmp.replace(tmp)
        finally:
            if itk_tmp.exists():
                itk_tmp.unlink()


def write_dicom_series(folder: Path, array: np.ndarray, affine: np.ndarray, *, modality: str = "CT", patient_id: str = "ANON", series_uid: str | None = None, series_number: int = 1, description: str = "phantom", name_pattern: str = "{i:04d}.dcm") -> list[Path]:
    """One axial DICOM series (int16 stored values, rescale to HU) from a RAS+ volume.

    The array is written slice by slice along its third axis, with ImagePositionPatient and
    ImageOrientationPatient derived from the affine (converted to DICOM's LPS).
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    direction, spacing, origin = itk_geometry(affine)
    d = np.asarray(direction).reshape(3, 3)  # columns: LPS direction of array axes i, j, k
    series_uid = series_uid or generate_uid()
    study_uid = generate_uid()
    frame_uid = generate_uid()
    arr = np.asarray(array)
    intercept = -1024.0 if modality == "CT" else 0.0
    stored = np.clip(np.rint(arr - intercept), -32768, 32767).astype(np.int16)
    paths = []
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    for k in range(arr.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        p = folder / name_pattern.format(i=k, n=k + 1)
        ds = FileDataset(str(p), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = modality
        ds.PatientID = patient_id
        ds.PatientName = patient_id
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.SeriesNumber = series_number
        ds.SeriesDescription = description
        ds.InstanceNumber = k + 1
        ds.StudyDate = _dt.date(2000, 1, 1).strftime("%Y%m%d")
        pos = np.asarray(origin) + d[:, 2] * spacing[2] * k
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
        # Rows run along array axis j, columns along axis i: row direction = axis i, column direction = axis j.
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*d[:, 0], *d[:, 1])]
        ds.PixelSpacing = [f"{spacing[1]:.6f}", f"{spacing[0]:.6f}"]
        ds.SliceThickness = f"{spacing[2]:.6f}"
        ds.Rows, ds.Columns = int(arr.shape[1]), int(arr.shape[0])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = f"{intercept:g}"
        ds.RescaleSlope = "1"
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        ds.save_as(str(p), enforce_file_format=True)
        paths.append(p)
    return paths


def write_png(path: Path, plane: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(plane, dtype=np.uint8)).save(path)
