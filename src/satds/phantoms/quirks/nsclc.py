"""NSCLC-Radiomics + PleThora: the CT is a TCIA DICOM download (patient/study/series/1-NNN.dcm) beside an
RTSTRUCT series; the PleThora masks are NIfTI files whose voxels are in ITK RPI order on the CT grid while their
header describes the DICOM's RAI order (TCIA's note), which the generic writer cannot reproduce."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np

from ...io import write_nifti
from ..generate import to_file_orientation
from ..hooks import writer
from ..writers import write_dicom_series

MANIFEST = "manifest-1586193031612/NSCLC-Radiomics"


def write_rtstruct(path: Path, patient_id: str, roi: str = "GTV-1") -> None:
    """A minimal RT Structure Set (one ROI, one closed contour): the extra series every patient folder holds."""
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, RTStructureSetStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTStructureSetStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = RTStructureSetStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    ds.PatientID = ds.PatientName = patient_id
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StructureSetLabel = "RTstruct"
    ds.StructureSetDate = _dt.date(2000, 1, 1).strftime("%Y%m%d")
    roi_ds = Dataset()
    roi_ds.ROINumber = 1
    roi_ds.ROIName = roi
    roi_ds.ROIGenerationAlgorithm = "MANUAL"
    ds.StructureSetROISequence = Sequence([roi_ds])
    contour = Dataset()
    contour.ContourGeometricType = "CLOSED_PLANAR"
    contour.NumberOfContourPoints = 3
    contour.ContourData = ["0", "0", "0", "5", "0", "0", "0", "5", "0"]
    rc = Dataset()
    rc.ReferencedROINumber = 1
    rc.ContourSequence = Sequence([contour])
    ds.ROIContourSequence = Sequence([rc])
    ds.save_as(str(path), enforce_file_format=True)


@writer("nsclc")
def nsclc_writer(spec, layout, root: Path, caps, body, onto) -> None:
    case = caps["case"]
    study = root / MANIFEST / case / caps["study"]
    ct, ct_aff = to_file_orientation(body.image, body.affine, spec.phantom.orientation, False)
    write_dicom_series(study / caps["series"], ct, ct_aff, modality="CT", patient_id=case, name_pattern="1-{n:03d}.dcm")
    write_rtstruct(study / caps["rtstruct"] / "1-1.dcm", case)
    files = {
        "thor_cav_primary_reviewer": f"Thoracic_Cavities/{case}/{case}_thor_cav_primary_reviewer.nii.gz",
        "effusion_first_reviewer": f"Effusions/{case}/{case}_effusion_first_reviewer.nii.gz",
    }
    for key, rel in files.items():
        mask = body.blobs.get(key)
        if mask is None:
            continue
        # Voxels in RPI (nibabel LAS) order, header copied from the CT in its DICOM (RAI) order.
        arr, _ = to_file_orientation(mask.astype(np.uint8), body.affine, "LAS", False)
        write_nifti(root / rel, arr, ct_aff)
        if key == "effusion_first_reviewer":  # the second reader's mask ships beside it (not read)
            write_nifti(root / rel.replace("first", "second"), arr, ct_aff)
