"""CTSpine1K from its sources: Path.csv picks the DICOM series; labels align by physical space; official split."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import nibabel as nib
import numpy as np
import pydicom
import pytest

from satds.ingest import ingest
from satds.ingest.discover import SplitResolver
from satds.ingest.quirks.ctspine1k import parse_series_dir, read_path_csv
from satds.phantoms.realdata import VERSE_CODE
from satds.resources import specs_dir
from satds.specs import get_spec

STUDY = "12-22-2009-RTHEADNECK Adult-30310"
SERIES = "3.000000-HEADNECK  2.0  B30s-90520"  # Path.csv's entry for HN_P001


def test_shipped_path_csv():
    refs = read_path_csv(specs_dir() / "data/ctspine1k/Path.csv")
    assert len(refs) == 815
    assert sum(p.startswith("HN_P") for p in refs) == 31
    assert sum(p.startswith("CTC-") for p in refs) == 34
    r = refs["HN_P001"]
    assert (r.study, r.series, r.number, r.description) == (STUDY, SERIES, 3, "HEADNECK  2.0  B30s")
    assert (refs["1.3.6.1.4.1.9328.50.4.0001"].number, refs["1.3.6.1.4.1.9328.50.4.0001"].description) == (4, "Coloprone  1.0  B30f")
    assert (refs["CTC-1018399231"].number, refs["CTC-1018399231"].description) == (4, "")
    assert parse_series_dir("3.000000-NA-HEADNECK 2.0 B30s-90520") == (3, "HEADNECK 2.0 B30s")
    assert parse_series_dir("1.000000-NA-92237") == (1, "")


def test_official_split_from_shipped_copy(tmp_path):
    """No data_split.txt in the root: the shipped verbatim copy gives 610 train and 197 + 198 test."""
    spec = get_spec("ctspine1k")
    split = SplitResolver(spec, tmp_path)
    assert len(split.table) == 1005
    got = Counter(split({"case": name[: -len(".nii.gz")]}, "") for name in split.table)
    assert got == {"train": 610, "test": 395}
    assert split({"case": "HN_P029"}, "") == "test" and split({"case": "liver_0"}, "") == "train"
    assert split({"case": "not_a_case"}, "") == "unknown"


def test_release_copy_of_data_split_wins(tmp_path):
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata/data_split.txt").write_bytes(b"trainset:\r\n\r\ntest_public:\r\nliver_0.nii.gz\r\n")
    split = SplitResolver(get_spec("ctspine1k"), tmp_path)
    assert split.table == {"liver_0.nii.gz": "test_public"}




@pytest.fixture(scope="module")
def hnscc(realdata, tmp_path_factory):
    """The real DICOM series as HNSCC patient HN_P001 (headers as TCIA's), and its label in VerSe coding."""
    base = tmp_path_factory.mktemp("hnscc")
    series = base / "dicom"
    series.mkdir()
    for f in sorted((realdata / "ct_dicom").iterdir()):
        ds = pydicom.dcmread(f)
        ds.PatientID, ds.SeriesNumber, ds.SeriesDescription = "HN_P001", 3, "HEADNECK  2.0  B30s"
        ds.save_as(series / f.name)
    cm = json.loads((realdata / "classmaps.json").read_text())["total"]
    seg = nib.load(realdata / "seg_dicom_total.nii.gz")
    src = np.asarray(seg.dataobj)
    lab = np.zeros(src.shape, np.uint8)
    for value, name in cm.items():
        if name in VERSE_CODE:
            lab[src == int(value)] = VERSE_CODE[name]
    label = base / "HN_P001_seg.nii.gz"
    nib.save(nib.Nifti1Image(lab, seg.affine), label)
    return series, label, lab, seg.affine


def _root(tmp_path, hnscc, study=STUDY, series=SERIES):
    dicom, label, _, _ = hnscc
    root = tmp_path / "sources"
    shutil.copytree(dicom, root / "manifest-1/HNSCC-3DCT-RT/HN_P001" / study / series)
    (root / "CTSpine1K_labels/HNSCC-3DCT-RT").mkdir(parents=True)
    shutil.copy(label, root / "CTSpine1K_labels/HNSCC-3DCT-RT/HN_P001_seg.nii.gz")
    return root


def test_real_dicom_case_aligns_through_the_flip(tmp_path, hnscc, catalog):
    """seg_dicom_total is stored y-flipped against the DICOM pixel array: after ingest every vertebra has the
    source label map's voxel count and world centroid."""
    _, _, lab, aff = hnscc
    root = _root(tmp_path, hnscc)
    s = ingest("ctspine1k_sources", root, catalog, workers=1)
    assert (s.scans, s.failed) == (1, 0), s.failures
    con = catalog.connect()
    [(case, pid, split, images, labels, shape)] = con.execute("SELECT case_id, patient_id, official_split, image_paths, label_paths, shape FROM scans").fetchall()
    assert (case, pid, split) == ("HN_P001", "HN_P001", "train")
    assert list(images) == [f"manifest-1/HNSCC-3DCT-RT/HN_P001/{STUDY}/{SERIES}"]
    assert list(labels) == ["CTSpine1K_labels/HNSCC-3DCT-RT/HN_P001_seg.nii.gz"]
    assert list(shape) == [512, 512, 20]
    rows = {r[0]: r[1:] for r in con.execute("SELECT class_name, voxels, centroid_mm FROM annotations WHERE voxels > 0 AND NOT derived").fetchall()}
    present = {int(v) for v in np.unique(lab) if v}
    assert present == {18, 19}  # T11, T12
    names = {18: "thoracic vertebrae 11 (t11)", 19: "thoracic vertebrae 12 (t12)"}
    assert set(rows) == set(names.values())
    for v, name in names.items():
        ijk = np.argwhere(lab == v).mean(axis=0)
        world = aff[:3, :3] @ ijk + aff[:3, 3]
        voxels, centroid = rows[name]
        assert voxels == int((lab == v).sum())
        assert np.allclose(centroid, world, atol=1e-6)


def test_newer_nbia_folder_names(tmp_path, hnscc, catalog):
    root = _root(tmp_path, hnscc, study="12-22-2009-NA-RTHEADNECK Adult-30310", series="3.000000-NA-HEADNECK 2.0 B30s-90520")
    s = ingest("ctspine1k_sources", root, catalog, workers=1)
    assert (s.scans, s.failed) == (1, 0), s.failures


def test_classic_uid_folder_names_match_on_headers(tmp_path, hnscc, catalog):
    """Bare-UID folders say nothing: the DICOM header's series number and description pick the series, and a
    second series of the patient (another number) is not taken."""
    root = _root(tmp_path, hnscc, study="1.3.6.1.4.1.14519.5.2.1.1", series="1.3.6.1.4.1.14519.5.2.1.2")
    other = root / "manifest-1/HNSCC-3DCT-RT/HN_P001/1.3.6.1.4.1.14519.5.2.1.1/1.3.6.1.4.1.14519.5.2.1.9"
    other.mkdir()
    for f in sorted(hnscc[0].iterdir())[:3]:
        ds = pydicom.dcmread(f)
        ds.SeriesNumber, ds.SeriesDescription = 2, "Topogram  0.6  T20s"
        ds.save_as(other / f.name)
    s = ingest("ctspine1k_sources", root, catalog, workers=1)
    assert (s.scans, s.failed) == (1, 0), s.failures
    [(images,)] = catalog.connect().execute("SELECT image_paths FROM scans").fetchall()
    assert list(images) == ["manifest-1/HNSCC-3DCT-RT/HN_P001/1.3.6.1.4.1.14519.5.2.1.1/1.3.6.1.4.1.14519.5.2.1.2"]


def test_missing_series_and_wrong_grid_fail_their_case(tmp_path, hnscc, catalog):
    root = _root(tmp_path, hnscc, series="5.000000-HEADNECK  2.0  B30s-11111")
    for f in (root / "manifest-1/HNSCC-3DCT-RT/HN_P001" / STUDY / "5.000000-HEADNECK  2.0  B30s-11111").iterdir():
        ds = pydicom.dcmread(f)
        ds.SeriesNumber = 5
        ds.save_as(f)
    s = ingest("ctspine1k_sources", root, catalog, workers=1)
    assert (s.scans, s.failed) == (0, 1)
    assert s.failures == [
        f"ctspine1k_sources/HN_P001: HN_P001/{STUDY}/{SERIES}: DICOM series 3 'HEADNECK  2.0  B30s' of patient HN_P001 "
        f"(Path.csv: 'HN_P001/{STUDY}/{SERIES}') not found under the root"
    ]
    # The right series, but the label drawn on another grid (shifted 5 mm): the ingest's geometry check fails it.
    root2 = _root(tmp_path / "b", hnscc)
    p = root2 / "CTSpine1K_labels/HNSCC-3DCT-RT/HN_P001_seg.nii.gz"
    img = nib.load(p)
    aff = img.affine.copy()
    aff[2, 3] += 5.0
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), aff), p)
    s2 = ingest("ctspine1k_sources", root2, catalog, workers=1)
    assert (s2.scans, s2.failed) == (0, 1)
    assert "HN_P001_seg.nii.gz" in s2.failures[0] and "mask is not on its image's grid" in s2.failures[0]


def test_label_without_image_and_unknown_id(tmp_path, catalog):
    root = tmp_path / "r"
    (root / "labels").mkdir(parents=True)
    lab = nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4))
    nib.save(lab, root / "labels/liver_5_seg.nii.gz")
    nib.save(lab, root / "labels/somebody_seg.nii.gz")
    s = ingest("ctspine1k_sources", root, catalog, workers=1)
    assert s.scans == 0
    assert sorted(s.failures) == [
        "ctspine1k_sources/liver_5: liver_5.nii.gz: image liver_5.nii.gz not found under the root",
        "ctspine1k_sources/somebody: labels/somebody_seg.nii.gz: not a CTSpine1K case id (not in Path.csv, not liver_N, not volume-covid19-A-NNNN[_N]_ct)",
    ]
