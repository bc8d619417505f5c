"""Dataset rules of ACDC, HaN-Seg, MRSpineSeg, LUNA16, WMH, COVID19 and the writers their phantoms need, checked
voxel by voxel against the phantom release's own label files."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from satds.ingest import dataset_classes, ingest
from satds.ingest.discover import discover
from satds.ingest.read import load_channels, load_labels
from satds.io import read_volume
from satds.labels.classes import UNLABELLED
from satds.ontology import load_ontology
from satds.phantoms import generate
from satds.phantoms.writers import write_volume
from satds.specs import get_spec


def labels_of(key: str, root: Path, case_id: str):
    spec = get_spec(key)
    cases, _, _ = discover(spec, root)
    case = next(c for c in cases if c.case_id == case_id)
    ref = load_channels(spec, case, root)[0]
    return case, ref, load_labels(spec, dataset_classes(key, str(root)), load_ontology(), case, root, ref)


def source_map(root: Path, rel: str, ref) -> np.ndarray:
    from satds.geometry import align_to

    v = read_volume(root / rel)
    return align_to(np.asarray(v.array), v.affine, ref.spatial_shape, ref.affine)


def test_covid19_lung_includes_the_infection_but_the_sides_do_not(tmp_path):
    root = generate("covid19", tmp_path / "c")
    case, ref, labels = labels_of("covid19", root, "coronacases_001")
    src = source_map(root, case.label, ref)
    assert np.array_equal(labels.mask("lung"), src > 0)
    assert np.array_equal(labels.mask("lung_left"), src == 1)
    assert np.array_equal(labels.mask("lung_right"), src == 2)
    assert np.array_equal(labels.mask("covid_19_infection"), src == 3)
    classes = dataset_classes("covid19", "")
    assert classes.lesion_organs == {"lung": {"covid_19_infection"}} and classes.rule_of("lung") == "partition"
    assert classes.source_keys_of("lung", load_ontology(), labels.annotated) == ["3", "1", "2"]


def test_wmh_other_pathology_is_unlabelled_not_wmh(tmp_path, catalog):
    root = generate("wmh_segmentation_challenge", tmp_path / "w")
    p = root / "training/Utrecht/0/wmh.nii.gz"
    img = nib.load(p)
    arr = np.asarray(img.dataobj).copy()
    wmh = int((arr == 1).sum())
    arr[:3, :3, :3] = 2
    nib.save(nib.Nifti1Image(arr, img.affine), p)
    case, ref, labels = labels_of("wmh_segmentation_challenge", root, "0")
    src = source_map(root, case.label, ref)
    assert np.array_equal(labels.mask(UNLABELLED), src == 2) and (src == 2).sum() == 27
    assert np.array_equal(labels.mask("white_matter_hyperintensities"), src == 1)
    s = ingest("wmh_segmentation_challenge", root, catalog, workers=1)
    assert (s.scans, s.failed) == (3, 0)
    [(voxels,)] = catalog.connect().execute("SELECT voxels FROM annotations WHERE scan_id = 'wmh_segmentation_challenge/0'").fetchall()
    assert voxels == wmh
    # The T1 channel is the registered pre/T1.nii.gz.
    assert case.images == ["training/Utrecht/0/orig/FLAIR.nii.gz", "training/Utrecht/0/pre/T1.nii.gz"]


def test_mrspineseg_unions_over_the_field_of_view(tmp_path):
    root = generate("mrspineseg", tmp_path / "m")
    case, ref, labels = labels_of("mrspineseg", root, "Case12")
    src = source_map(root, case.label, ref)
    assert np.array_equal(labels.mask("lumbar_vertebrae"), (src >= 2) & (src <= 6))
    assert np.array_equal(labels.mask("thoracic_vertebrae"), (src >= 7) & (src <= 10))
    assert np.array_equal(labels.mask("vertebrae"), (src >= 2) & (src <= 10))  # no sacrum (value 1)
    assert np.array_equal(labels.mask("intervertebral_discs"), src >= 11)
    # Classes outside the field of view are never listed as annotated.
    assert "cervical_vertebrae" not in labels.annotated and "thoracic_vertebra_8" not in labels.annotated


def test_han_seg_reads_slicer_segments_and_keeps_missing_oars_unknown(tmp_path, catalog):
    root = generate("han_seg", tmp_path / "h")
    seg = read_volume(root / "set_1/case_01/case_01_OAR_Arytenoid.seg.nrrd", ndim=None)
    assert seg.array.shape == (56, 52, 32) and [s.name for s in seg.meta["segments"]] == ["Arytenoid"]
    s = ingest("han_seg", root, catalog, workers=1)
    assert (s.scans, s.failed, s.skipped) == (3, 0, 1)
    con = catalog.connect()
    got = {r[0] for r in con.execute("SELECT class_name FROM annotations WHERE scan_id = 'han_seg/case_02'").fetchall()}
    full = {r[0] for r in con.execute("SELECT class_name FROM annotations WHERE scan_id = 'han_seg/case_01'").fetchall()}
    # case_02 lacks Glnd_Lacrimal_L and Eye_PR: those, and the unions needing them, are not annotated there.
    assert full - got == {"left lacrimal gland", "lacrimal gland", "right posterior eyeball", "posterior eyeball", "right eyeball", "eyeball"}
    assert len(full) == 41
    case, ref, labels = labels_of("han_seg", root, "case_01")
    eye_l = source_map(root, "set_1/case_01/case_01_OAR_Eye_AL.seg.nrrd", ref) | source_map(root, "set_1/case_01/case_01_OAR_Eye_PL.seg.nrrd", ref)
    assert eye_l.any() and np.array_equal(labels.mask("eyeball_left"), eye_l != 0)
    assert ref.axcodes == "LPS" and ref.spatial_shape == (56, 52, 32)


def test_acdc_frames_of_one_patient_are_one_leakage_group(tmp_path, catalog):
    from satds.split.groups import make_groups

    root = generate("acdc", tmp_path / "a")
    ingest("acdc", root, catalog, workers=1)
    scans = catalog.connect().execute("SELECT scan_id, dataset, case_id, patient_id, fingerprint, case_files FROM scans").fetchall()
    cols = ["scan_id", "dataset", "case_id", "patient_id", "fingerprint", "case_files"]
    g = make_groups([dict(zip(cols, r)) for r in scans])
    assert g.group_of["acdc/patient001_frame01"] == g.group_of["acdc/patient001_frame12"] != g.group_of["acdc/patient101_frame01"]


def test_luna16_masks_are_compressed_metaimages(tmp_path):
    root = generate("luna16", tmp_path / "l")
    uid = "1.3.6.1.4.1.14519.5.2.1.6279.6001.108197895896446896160048741492"
    header = (root / f"seg-lungs-LUNA16/{uid}.mhd").read_text()
    assert "CompressedData = True" in header and f"ElementDataFile = {uid}.zraw" in header
    assert not (root / f"seg-lungs-LUNA16/{uid}.raw").exists()
    v = read_volume(root / f"seg-lungs-LUNA16/{uid}.mhd")
    assert set(np.unique(v.array).tolist()) == {0, 3, 4, 5} and v.axcodes == "LPS"


@pytest.mark.parametrize("name", ["x.mha", "x.nrrd", "x.mhd"])
def test_itk_phantom_writers_round_trip(tmp_path, name):
    a = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    aff = np.array([[-1.0, 0, 0, 5], [0, -2.0, 0, 6], [0, 0, 3.0, -7], [0, 0, 0, 1]])
    write_volume(tmp_path / name, a, aff)
    v = read_volume(tmp_path / name)
    assert np.array_equal(v.array, a) and np.allclose(v.affine, aff)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["x.mhd", "x.raw"] if name == "x.mhd" else [name])
