"""TCIA DICOM collections: a CT series (plus a distractor series) and a DICOM-SEG written with highdicom."""

from __future__ import annotations

import warnings

import numpy as np

from ..generate import to_file_orientation, write_case
from ..hooks import writer
from ..writers import write_dicom_series

# Type 2 attributes a DICOM-SEG copies from its source images (the generic series writer leaves them out).
_TYPE2 = {"PatientBirthDate": "", "PatientSex": "", "StudyTime": "120000", "StudyID": "1", "AccessionNumber": "", "ReferringPhysicianName": ""}


def _uid_ending(digits: str, rng: np.random.Generator) -> str:
    """A UID under pydicom's root whose last digits are ``digits`` (TCIA names study folders by them)."""
    return "1.2.826.0.1.3680043.8.498." + "".join(str(d) for d in rng.integers(1, 10, 20)) + digits


@writer("tcia_dicom_seg")
def tcia_seg_phantom(spec, layout, root, caps, body, onto) -> None:
    """Write <patient>/<study>/<ct_series>/1-NNN.dcm (the CT), <other_series>/ (another CT series of the same
    study that no SEG references) and <seg_series>/1-1.dcm, a BINARY DICOM-SEG of the painted lesion that
    keeps only its non-empty frames and references the CT series. Another arrangement's layout (SAT-DS's
    NIfTI conversion, CT.nii.gz + SEG.nii.gz) is written by the generic writer at its own templates."""
    if layout.hook != "tcia_dicom_seg":
        return write_case(spec, layout, root, caps, body, onto)
    import pydicom
    from pydicom.sr.codedict import codes

    rng = np.random.default_rng(abs(hash(caps["patient"])) % (2**32))
    study = root / caps.get("collection", "") / caps["patient"] / caps["study"]
    study_uid = _uid_ending(caps["study"].rsplit("-", 1)[-1], rng)
    ph = spec.phantom
    arr, aff = to_file_orientation(body.image, body.affine, ph.orientation, False)

    def series(folder: str, number: int, description: str) -> list:
        paths = write_dicom_series(study / folder, arr, aff, modality="CT", patient_id=caps["patient"], series_number=number, description=description, name_pattern="1-{n:03d}.dcm")
        out = []
        for p in paths:
            ds = pydicom.dcmread(p)
            ds.StudyInstanceUID = study_uid
            for k, v in _TYPE2.items():
                setattr(ds, k, v)
            ds.save_as(p, enforce_file_format=True)
            out.append(ds)
        return out

    ct = series(caps["ct_series"], 2, "AXIAL PORTAL")
    if caps.get("other_series"):
        series(caps["other_series"], 3, "AXIAL DELAYED")
    lab = np.zeros(body.shape, dtype=np.uint8)
    for mask in body.blobs.values():
        lab[mask] = 1
    lab_file, _ = to_file_orientation(lab, body.affine, ph.orientation, False)
    frames = np.stack([lab_file[:, :, k].T for k in range(lab_file.shape[2])])  # (slices, rows, columns)
    write_seg(ct, frames, [("Tumor", codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Neoplasm)], study / caps["seg_series"] / "1-1.dcm")


def write_seg(ct: list, frames: np.ndarray, segments: list[tuple], out, *, seg_type: str = "BINARY"):
    """A DICOM-SEG written with highdicom over the CT slices ``ct`` (pydicom datasets in stacking order).

    ``frames`` is (slices, rows, columns) with the segment numbers as values (0: none); ``segments`` lists
    (SegmentLabel, category code, property type code) for segments 1, 2, ...; ``seg_type`` is BINARY or
    LABELMAP. Empty frames are left out, as TCIA's SEGs do.
    """
    import highdicom as hd

    descs = [
        hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=label,
            segmented_property_category=category,
            segmented_property_type=prop,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for n, (label, category, prop) in enumerate(segments, start=1)
    ]
    with warnings.catch_warnings():  # TCIA's PatientName is the one-component subject id, as here
        warnings.simplefilter("ignore", UserWarning)
        seg = hd.seg.Segmentation(
            source_images=ct,
            pixel_array=frames.astype(np.uint8),
            segmentation_type=hd.seg.SegmentationTypeValues[seg_type],
            segment_descriptions=descs,
            series_instance_uid=hd.UID(),
            series_number=300,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="satds",
            manufacturer_model_name="phantom",
            software_versions="0",
            device_serial_number="0",
            omit_empty_frames=True,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(str(out))
    return out
