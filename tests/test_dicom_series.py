"""A case folder holding two DICOM series, the other one sorting first: CTSpine1K's source series is still
found (by number and description, on every file's header) and read by its SeriesInstanceUID."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pydicom
from pydicom.uid import generate_uid

from _dicom_testlib import source_digest
from satds.ingest import ingest

STUDY = "12-22-2009-RTHEADNECK Adult-30310"
SERIES = "3.000000-HEADNECK  2.0  B30s-90520"  # Path.csv's entry for HN_P001


def test_ctspine1k_series_is_found_and_read_among_another_series(realdata, tmp_path, catalog):
    root = tmp_path / "sources"
    folder = root / "manifest-1/HNSCC-3DCT-RT/HN_P001" / STUDY / SERIES
    folder.mkdir(parents=True)
    files = sorted((realdata / "ct_dicom").iterdir())
    for f in files:
        ds = pydicom.dcmread(f)
        ds.PatientID, ds.SeriesNumber, ds.SeriesDescription = "HN_P001", 3, "HEADNECK  2.0  B30s"
        ds.save_as(folder / f.name)
    uid = str(pydicom.dcmread(folder / files[0].name, stop_before_pixels=True).SeriesInstanceUID)
    other = generate_uid()
    for n, f in enumerate(files[:3]):  # a topogram-like second series, its files sorting first
        ds = pydicom.dcmread(f)
        ds.PatientID, ds.SeriesNumber, ds.SeriesDescription, ds.SeriesInstanceUID = "HN_P001", 2, "Topogram  0.6  T20s", other
        ds.SOPInstanceUID = generate_uid()
        ds.save_as(folder / f"0-{n}.dcm")
    assert str(pydicom.dcmread(sorted(folder.iterdir())[0], stop_before_pixels=True).SeriesInstanceUID) == other
    seg = nib.load(realdata / "seg_dicom_total.nii.gz")
    (root / "CTSpine1K_labels/HNSCC-3DCT-RT").mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.zeros(seg.shape, np.uint8), seg.affine), root / "CTSpine1K_labels/HNSCC-3DCT-RT/HN_P001_seg.nii.gz")
    digest = source_digest(root)

    s = ingest("ctspine1k_sources", root, catalog, workers=1)
    assert (s.scans, s.failed) == (1, 0), s.failures
    [(images, shape, case_files)] = catalog.connect().execute("SELECT image_paths, shape, case_files FROM scans").fetchall()
    assert list(images) == [f"manifest-1/HNSCC-3DCT-RT/HN_P001/{STUDY}/{SERIES}"]
    assert list(shape) == [512, 512, 20]  # the CT, not the three-slice series beside it
    assert f'"series_uid": "{uid}"' in case_files  # this anonymised series's UID is empty: GDCM's id is "" too
    assert source_digest(root) == digest
