"""NSCLC-Radiomics + PleThora hooks: the CT series is found by Modality, the NIfTI masks are placed on the CT in
ITK RPI voxel order whatever their header says."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest

from satds.geometry import align_to
from satds.ingest import ingest
from satds.ingest.discover import discover
from satds.ingest.quirks.nsclc import ct_series, mask_grid, read_plethora
from satds.ingest.read import load_channels
from satds.io import read_volume
from satds.ontology import load_ontology
from satds.phantoms import generate
from satds.phantoms.generate import make_body
from satds.specs import get_spec

SERIES = "manifest-1586193031612/NSCLC-Radiomics/LUNG1-001/09-18-2008-StudyID-NA-69331/0.000000-NA-82046"
CAVITY = "Thoracic_Cavities/LUNG1-001/LUNG1-001_thor_cav_primary_reviewer.nii.gz"


@pytest.fixture
def root(tmp_path):
    return generate("nsclc", tmp_path / "nsclc")


def phantom_body(index: int):
    spec = get_spec("nsclc")
    caps = dict(spec.phantom.cases[index])
    absent = set(spec.phantom.absent.get(caps["case"], []))
    return make_body(spec, load_ontology(), caps, index, absent)


def test_discovery_picks_the_ct_series_and_only_plethora_patients(root):
    spec = get_spec("nsclc")
    cases, problems, skipped = discover(spec, root)
    assert problems == [] and skipped == []
    # LUNG1-100 has DICOM but no PleThora mask: not a scan of this dataset.
    assert [c.case_id for c in cases] == ["LUNG1-001", "LUNG1-087"]
    c = cases[0]
    assert c.images == [SERIES] and c.patient_id == "LUNG1-001" and c.sat_id == "LUNG1-001"
    assert c.label_files == {"thor_cav_primary_reviewer": CAVITY, "effusion_first_reviewer": "Effusions/LUNG1-001/LUNG1-001_effusion_first_reviewer.nii.gz"}
    # LUNG1-087 has no effusion file: unknown, not absent.
    assert cases[1].missing_label_keys == ["effusion_first_reviewer"]
    # The RTSTRUCT folder beside the CT is not a candidate.
    assert [s.name for s in ct_series(root / SERIES.rsplit("/", 2)[0])] == ["0.000000-NA-82046"]


def test_masks_land_on_the_ct_voxels_they_were_drawn_on(root):
    spec = get_spec("nsclc")
    cases, _, _ = discover(spec, root)
    ct = load_channels(spec, cases[0], root)[0]
    assert ct.axcodes == "LPS" and ct.spatial_shape == (40, 36, 20)
    pieces = {p.key: p.array for p in read_plethora(cases[0], spec, root, ct)}
    body = phantom_body(0)
    for key in ("thor_cav_primary_reviewer", "effusion_first_reviewer"):
        expected = align_to(body.blobs[key].astype(np.uint8), body.affine, ct.spatial_shape, ct.affine)
        assert expected.sum() > 0
        assert np.array_equal(pieces[key] != 0, expected != 0), key


def test_the_mask_header_alone_would_flip_anterior_and_posterior(root):
    """Why the hook exists: the file's header describes the DICOM (RAI) order, its voxels are RPI."""
    spec = get_spec("nsclc")
    cases, _, _ = discover(spec, root)
    ct = load_channels(spec, cases[0], root)[0]
    by_header = read_volume(root / CAVITY)
    naive = align_to(np.asarray(by_header.array), by_header.affine, ct.spatial_shape, ct.affine) != 0
    right = read_plethora(cases[0], spec, root, ct)[0].array != 0
    assert naive.sum() == right.sum()
    assert np.array_equal(naive, right[:, ::-1, :])  # the CT's j axis runs anterior to posterior
    assert not np.array_equal(naive, right)
    shape, aff = mask_grid(ct)
    assert shape == (40, 36, 20) and "".join(nib.aff2axcodes(aff)) == "LAS"


def test_phantom_ingest_counts_the_effusion_in_the_cavity(root, catalog):
    s = ingest("nsclc", root, catalog, workers=1)
    assert (s.scans, s.failed) == (2, 0)
    rows = catalog.connect().execute("SELECT case_id, class_name, voxels, annotations.source_values FROM annotations JOIN scans USING (scan_id) ORDER BY case_id, class_name").fetchall()
    body = phantom_body(0)
    cav, eff = (int(body.blobs[k].sum()) for k in ("thor_cav_primary_reviewer", "effusion_first_reviewer"))
    union = int((body.blobs["thor_cav_primary_reviewer"] | body.blobs["effusion_first_reviewer"]).sum())
    assert eff > 0 and union >= cav
    assert rows == [
        ("LUNG1-001", "lung effusion", eff, ["effusion_first_reviewer"]),
        ("LUNG1-001", "thoracic cavity", union, ["thor_cav_primary_reviewer", "effusion_first_reviewer"]),
        ("LUNG1-087", "thoracic cavity", int(phantom_body(1).blobs["thor_cav_primary_reviewer"].sum()), ["thor_cav_primary_reviewer"]),
    ]


def test_two_ct_series_fail_that_patient_only(root, catalog):
    study = root / SERIES.rsplit("/", 1)[0]
    shutil.copytree(study / "0.000000-NA-82046", study / "4.000000-NA-99999")
    s = ingest("nsclc", root, catalog, workers=1)
    assert (s.scans, s.failed) == (1, 1)
    [(case, file, msg)] = catalog.connect().execute('SELECT "case", file, error FROM failures').fetchall()
    assert case == "LUNG1-001" and file == "manifest-1586193031612/NSCLC-Radiomics/LUNG1-001"
    assert "expected one CT series in the patient folder, found 0.000000-NA-82046, 4.000000-NA-99999" in msg


def test_mask_of_another_size_is_a_geometry_error(root, catalog):
    p = root / CAVITY
    img = nib.load(p)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:, :, :-1], img.affine), p)
    s = ingest("nsclc", root, catalog, workers=1)
    assert (s.scans, s.failed) == (1, 1)
    [(case, file, kind, msg)] = catalog.connect().execute('SELECT "case", file, error_type, error FROM failures').fetchall()
    assert (case, file, kind) == ("LUNG1-001", CAVITY, "GeometryError")
    assert "mask shape (40, 36, 19) is not the CT's (40, 36, 20)" in msg
