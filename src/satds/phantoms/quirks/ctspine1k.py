"""CTSpine1K sources phantom: TCIA DICOM series at Path.csv's folders, Decathlon/TCIA NIfTI, label download."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...ingest.quirks.ctspine1k import SHIPPED, read_path_csv
from ...resources import specs_dir
from ..generate import _cast, to_file_orientation
from ..hooks import writer
from ..writers import write_dicom_series, write_volume

COLLECTION = {"COLONOG": "CT COLONOGRAPHY", "HNSCC-3DCT-RT": "HNSCC-3DCT-RT"}


@writer("ctspine1k_sources")
def sources_case(spec, layout, root: Path, caps, body, onto) -> None:
    """One case as a user holding the sources has it: the image where its source puts it, the label from
    the label download (``labels/<SUB>/<id>_seg.nii.gz``)."""
    ph = spec.phantom
    case, sub = caps["case"], caps["sub"]
    arr, aff = to_file_orientation(body.image, body.affine, ph.orientation, False)
    if sub in COLLECTION:
        ref = read_path_csv(specs_dir() / SHIPPED / "Path.csv")[case]
        folder = root / "TCIA" / COLLECTION[sub] / case / ref.study / ref.series
        write_dicom_series(folder, arr, aff, patient_id=case, series_number=ref.number, description=ref.description)
    elif sub == "MSD-T10":
        write_volume(root / "Task03_Liver" / "imagesTr" / f"{case}.nii.gz", _cast(arr, ph.dtype), aff)
    else:
        write_volume(root / "CT Images in COVID-19" / f"{case[: -len('_ct')]}.nii.gz", _cast(arr, ph.dtype), aff)
    lab = np.zeros(body.shape, dtype=np.uint8)
    for key, mask in body.blobs.items():
        lab[mask] = int(key)
    larr, laff = to_file_orientation(lab, body.affine, ph.orientation, ph.slice_first)
    write_volume(root / "labels" / sub / f"{case}_seg.nii.gz", _cast(larr, ph.label_dtype), laff)
