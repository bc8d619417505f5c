"""TCIA DICOM-SEG (Adrenal_ACC_Ki67): SEG paired with the CT series it references, frames placed by position."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from satds.ingest import dataset_classes, discover, ingest
from satds.ingest.read import load_channels, load_labels
from satds.ontology import load_ontology
from satds.phantoms import generate
from satds.phantoms.generate import make_body, to_file_orientation
from satds.specs import get_spec

STUDY = "Adrenal-ACC-Ki67-Seg/Adrenal_Ki67_Seg_001/08-22-2000-NA-CT ABDOMEN-56266"
SEG = f"{STUDY}/300.000000-Segmentation-30411/1-1.dcm"
CASE = "Adrenal_Ki67_Seg_001_56266"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return generate("adrenal_acc_ki67", tmp_path_factory.mktemp("adrenal") / "root")


@pytest.fixture
def adrenal(pristine, tmp_path):
    import shutil

    return shutil.copytree(pristine, tmp_path / "root")


def _case(root, case_id=CASE):
    cases, problems, _ = discover(get_spec("adrenal_acc_ki67"), root)
    return next(c for c in cases if c.case_id == case_id), problems


def _edit_seg(root, fn):
    ds = pydicom.dcmread(str(root / SEG))
    fn(ds)
    ds.save_as(str(root / SEG))


def test_seg_pairs_with_the_series_it_references_not_the_other_one(pristine):
    case, problems = _case(pristine)
    assert problems == []
    assert case.images == [f"{STUDY}/2.000000-AXIAL PORTAL-21436"]
    assert case.label == SEG
    assert case.patient_id == "Adrenal_Ki67_Seg_001" and case.sat_id == "Adrenal_Ki67_Seg_001"
    ref_uid = pydicom.dcmread(str(pristine / SEG)).ReferencedSeriesSequence[0].SeriesInstanceUID
    assert case.extra["series_uid"] == ref_uid


def test_seg_frames_land_on_the_painted_voxels(pristine):
    spec = get_spec("adrenal_acc_ki67")
    case, _ = _case(pristine)
    ref = load_channels(spec, case, pristine)[0]
    labels = load_labels(spec, dataset_classes(spec.key, str(pristine)), load_ontology(), case, pristine, ref)
    body = make_body(spec, load_ontology(), spec.phantom.cases[0], 0, set())
    painted, aff = to_file_orientation(body.blobs["nonzero"].astype(np.uint8), body.affine, "LPS", False)
    assert np.allclose(aff, ref.affine, atol=1e-4)
    got = labels.mask("adrenocortical_carcinoma")
    assert got.sum() == painted.sum() > 0
    assert np.array_equal(got, painted.astype(bool))
    # The SEG stores only the slices holding the lesion.
    assert int(pydicom.dcmread(str(pristine / SEG)).NumberOfFrames) == int(painted.any(axis=(0, 1)).sum())


def test_frame_off_the_voxel_centres_is_a_geometry_error(adrenal, catalog):
    def shift(ds):
        for fg in ds.PerFrameFunctionalGroupsSequence:
            p = [float(v) for v in fg.PlanePositionSequence[0].ImagePositionPatient]
            fg.PlanePositionSequence[0].ImagePositionPatient = [p[0] + 0.75, p[1], p[2]]  # half a voxel (1.5 mm)

    _edit_seg(adrenal, shift)
    s = ingest("adrenal_acc_ki67", adrenal, catalog, workers=1)
    assert (s.scans, s.failed) == (1, 1)
    [(case, kind, file, msg)] = catalog.connect().execute('SELECT "case", error_type, file, error FROM failures').fetchall()
    assert (case, kind, file) == (CASE, "GeometryError", SEG)
    assert "0.50 voxel off the image's voxel centres" in msg


def test_seg_with_another_pixel_spacing_is_refused(adrenal, catalog):
    def coarser(ds):
        ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing = [3.0, 3.0]

    _edit_seg(adrenal, coarser)
    ingest("adrenal_acc_ki67", adrenal, catalog, workers=1)
    [(kind, msg)] = catalog.connect().execute("SELECT error_type, error FROM failures").fetchall()
    assert kind == "GeometryError" and "not one voxel along an axis" in msg


def test_seg_of_another_frame_of_reference_is_refused(adrenal, catalog):
    _edit_seg(adrenal, lambda ds: setattr(ds, "FrameOfReferenceUID", "1.2.3.4"))
    ingest("adrenal_acc_ki67", adrenal, catalog, workers=1)
    [(kind, msg)] = catalog.connect().execute("SELECT error_type, error FROM failures").fetchall()
    assert kind == "GeometryError" and "frame of reference 1.2.3.4 differs" in msg


def test_seg_whose_series_is_missing_fails_alone(adrenal, catalog):
    import shutil

    shutil.rmtree(adrenal / STUDY / "2.000000-AXIAL PORTAL-21436")
    s = ingest("adrenal_acc_ki67", adrenal, catalog, workers=1)
    assert (s.scans, s.failed) == (1, 1)
    [(case, file, msg)] = catalog.connect().execute('SELECT "case", file, error FROM failures').fetchall()
    assert (case, file) == (CASE, SEG)
    assert "cannot pair the DICOM-SEG with its image series" in msg and "none of them under the root" in msg
    # The other scan is labelled by its SEG (the layout names no label file: the hook finds it).
    assert catalog.connect().execute("SELECT label_kind FROM scans").fetchall() == [("labelmap",)]


def test_discovery_opens_only_the_releases_series_folders(adrenal, monkeypatch):
    """The release anchors at the folder holding Adrenal-ACC-Ki67-Seg/, often a folder of many downloads:
    discovery reads headers in the series folders the layout matches, never a sibling release's files."""
    from pathlib import Path

    other = adrenal / "Other-Release" / "case_001"
    other.mkdir(parents=True)
    for i in range(5):
        (other / f"1-{i:03d}.dcm").write_bytes(b"not a DICOM file")
    opened: list[Path] = []
    real = pydicom.dcmread

    def counting(fp, *args, **kwargs):
        opened.append(Path(str(fp)).relative_to(adrenal))
        return real(fp, *args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", counting)
    cases, problems, _ = discover(get_spec("adrenal_acc_ki67"), adrenal)
    assert len(cases) == 2 and problems == []
    assert opened and {p.parts[0] for p in opened} == {"Adrenal-ACC-Ki67-Seg"}
    assert all(len(p.parts) == 5 for p in opened)  # collection/patient/study/series/file: no LICENSE, no metadata.csv
