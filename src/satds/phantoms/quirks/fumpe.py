"""FUMPE phantom: a DICOM series per patient and a MATLAB mask file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...ingest.patterns import fill
from ...ontology import Ontology
from ...specs.model import DatasetSpec, Layout
from ..generate import Body, to_file_orientation
from ..hooks import writer
from ..writers import write_dicom_series


@writer("fumpe_dicom_mat")
def write_fumpe_case(spec: DatasetSpec, layout: Layout, root: Path, caps: dict[str, str], body: Body, onto: Ontology) -> None:
    """CT_scans/PATNNN/ as a DICOM series (slice k = instance k+1) and GroundTruth/PATNNN.mat with ``Mask`` as
    (rows, columns, slices) in instance order, the way the release stores it."""
    import scipy.io

    ph = spec.phantom
    arr, aff = to_file_orientation(body.image - np.float32(layout.intensity_offset), body.affine, ph.orientation, False)
    write_dicom_series(root / fill(layout.image or layout.match, caps), arr, aff, modality="CT", patient_id=caps["case"], name_pattern=ph.dicom_name)
    lab = np.zeros(body.shape, dtype=np.uint8)
    for mask in body.blobs.values():
        lab[mask] = 1
    lab, _ = to_file_orientation(lab, body.affine, ph.orientation, False)
    path = root / fill(layout.label, caps)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {"Mask": np.ascontiguousarray(np.transpose(lab, (1, 0, 2)))})
