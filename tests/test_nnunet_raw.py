"""A dataset kept as an nnU-Net raw folder: labels from that folder's own dataset.json (v2, v1, regions) through
the ontology, never from assumed values; channels as its channel_names say."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from satds.catalog import Catalog
from satds.ingest import ingest
from satds.ingest.roots import locate
from satds.phantoms import generate
from satds.specs import get_spec
from satds.specs.model import NNUNET


def annotations(cat: Catalog) -> list:
    return cat.connect().sql("SELECT scan_id, class_name, voxels, centroid_mm FROM annotations ORDER BY ALL").fetchall()


def release_rows(key: str, tmp_path) -> list:
    cat = Catalog(tmp_path / "cat-release")
    s = ingest(key, generate(key, tmp_path / "release"), cat, workers=1)
    assert s.failed == 0, s.failures
    return annotations(cat)


def nnunet_copy(key: str, tmp_path, **dataset_json):
    root = generate(key, tmp_path / "Dataset001_X", arrangement=NNUNET)
    if dataset_json:
        (root / "dataset.json").write_text(json.dumps(dataset_json))
    return root


def test_kits23_as_nnunets_own_conversion_writes_it(tmp_path):
    """Dataset220_KiTS2023's dataset.json: region labels; 'tumor' names value 2 alone, the others keep the
    spec's meaning (kidney 1, cyst 3), with a note."""
    expected = release_rows("kits23", tmp_path)
    root = nnunet_copy(
        "kits23", tmp_path,
        channel_names={"0": "CT"}, labels={"background": 0, "kidney": [1, 2, 3], "masses": [2, 3], "tumor": 2},
        regions_class_order=[1, 3, 2], numTraining=3, file_ending=".nii.gz", name="KiTS2023",
    )
    cat = Catalog(tmp_path / "cat")
    s = ingest("kits23", root, cat, workers=1)
    assert (s.arrangement, s.failed) == ("nnunet", 0), s.failures
    assert annotations(cat) == expected
    assert any("region labels" in n and "[1, 3]" in n for n in s.notes)


def test_v1_dataset_json_with_the_releases_own_spellings(tmp_path):
    """nnU-Net v1's Task040_KiTS: {value: name}, 'Kidney' / 'Tumor' capitalised, 'modality' for channels."""
    expected = release_rows("kits19", tmp_path)
    root = nnunet_copy("kits19", tmp_path, labels={"0": "background", "1": "Kidney", "2": "Tumor"}, modality={"0": "CT"}, name="KiTS")
    cat = Catalog(tmp_path / "cat")
    s = ingest("kits19", root, cat, workers=1)
    assert (s.arrangement, s.failed) == ("nnunet", 0), s.failures
    assert annotations(cat) == expected


def test_values_come_from_the_copys_dataset_json_not_the_spec(tmp_path):
    """A conversion that renumbered the labels (tumour 1, liver 2): read as its dataset.json says."""
    expected = release_rows("msd_liver", tmp_path)
    root = nnunet_copy("msd_liver", tmp_path)
    for p in (root / "labelsTr").iterdir():
        img = nib.load(p)
        a = np.asarray(img.dataobj)
        swapped = np.where(a == 1, 2, np.where(a == 2, 1, a)).astype(a.dtype)
        nib.save(nib.Nifti1Image(swapped, img.affine, img.header), p)
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": {"background": 0, "cancer": 1, "liver": 2}, "file_ending": ".nii.gz"}))
    cat = Catalog(tmp_path / "cat")
    s = ingest("msd_liver", root, cat, workers=1)
    assert s.failed == 0, s.failures
    assert annotations(cat) == expected


def test_a_label_name_nobody_knows_is_an_error_naming_it(tmp_path, catalog):
    root = nnunet_copy("msd_liver", tmp_path, channel_names={"0": "CT"}, labels={"background": 0, "liver": 1, "blob": 2}, file_ending=".nii.gz")
    s = ingest("msd_liver", root, catalog, workers=1)
    assert s.scans == 0 and s.failed == 1
    assert "dataset.json names value 2 'blob'" in s.failures[0] and "neither a label of the spec" in s.failures[0]


def test_no_dataset_json_no_guessing(tmp_path, catalog):
    root = nnunet_copy("msd_spleen", tmp_path)
    (root / "dataset.json").unlink()
    s = ingest("msd_spleen", root, catalog, workers=1)
    assert s.scans == 0 and "does not guess values" in s.failures[0]


def test_channels_follow_channel_names(tmp_path):
    """A conversion that wrote ADC as _0000 and T2 as _0001 (and says so) is read as T2, ADC."""
    spec = get_spec("msd_prostate")
    root = nnunet_copy("msd_prostate", tmp_path)
    ref = {c.case_id: c.images for c in locate(spec, root).copy.cases}
    for folder in ("imagesTr", "imagesTs"):
        for p in sorted((root / folder).glob("*_0000.nii.gz")):
            q = p.with_name(p.name.replace("_0000", "_0001"))
            tmp = p.with_name("swap.nii.gz")
            p.rename(tmp)
            q.rename(p)
            tmp.rename(q)
    data = json.loads((root / "dataset.json").read_text())
    data["channel_names"] = {"0": "ADC", "1": "T2"}
    (root / "dataset.json").write_text(json.dumps(data))
    got = {c.case_id: c.images for c in locate(spec, root).copy.cases}
    assert got == {k: [v[1], v[0]] for k, v in ref.items()}
    data["channel_names"] = {"0": "T2", "1": "ADC", "2": "DWI"}
    (root / "dataset.json").write_text(json.dumps(data))
    cat = Catalog(tmp_path / "cat")
    s = ingest("msd_prostate", root, cat, workers=1)
    assert s.scans == 0 and "lists 3 channels" in s.failures[0]


@pytest.mark.parametrize("key", ["totalsegmentator", "msd_braintumour"])
def test_nnunet_copy_layout_as_conversions_write_it(key, tmp_path):
    """Per-class masks become one label map numbered by dataset.json; 4D Decathlon images become _000N files."""
    root = nnunet_copy(key, tmp_path)
    assert {p.name for p in root.iterdir()} >= {"imagesTr", "labelsTr", "dataset.json"}
    names = sorted(p.name for p in (root / "imagesTr").iterdir())
    spec = get_spec(key)
    n_channels = len(spec.layout[0].channels) or 1
    assert all(n.endswith(tuple(f"_{i:04d}.nii.gz" for i in range(n_channels))) for n in names)
    data = json.loads((root / "dataset.json").read_text())
    assert data["labels"]["background"] == 0 and len(data["channel_names"]) == n_channels
    lab = next((root / "labelsTr").iterdir())
    assert nib.load(lab).ndim == 3 and set(np.unique(np.asarray(nib.load(lab).dataobj))) <= set(data["labels"].values())


def test_detect_tells_kits19s_copy_from_kits23_by_its_dataset_json(tmp_path):
    """KiTS19's and KiTS23's nnU-Net copies both name cases case_NNNNN; dataset.json says which it is."""
    from satds.ingest.detect import detect

    root = nnunet_copy("kits19", tmp_path, channel_names={"0": "CT"}, labels={"background": 0, "Kidney": 1, "Tumor": 2}, file_ending=".nii.gz")
    for p in (root / "imagesTs").iterdir():  # only the labelled training cases, as nnU-Net's conversions keep
        p.unlink()
    assert [d.key for d in detect(tmp_path).found] == ["kits19"]
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": {"background": 0, "kidney": [1, 2, 3], "masses": [2, 3], "tumor": 2}, "regions_class_order": [1, 3, 2], "file_ending": ".nii.gz"}))
    assert sorted(d.key for d in detect(tmp_path).found) == ["kits23"]


def test_label_kind_is_the_arrangements_own(tmp_path):
    """TotalSegmentator's release stores one file per class; its nnU-Net copy one label map per case: each
    scan row says which kind its own files are."""
    for arrangement, kind in (("release", "class_files"), (NNUNET, "labelmap")):
        cat = Catalog(tmp_path / f"cat-{arrangement}")
        s = ingest("totalsegmentator", generate("totalsegmentator", tmp_path / arrangement, arrangement=arrangement), cat, workers=1)
        assert (s.arrangement, s.failed) == (arrangement, 0), s.failures
        assert s.scans > 0
        assert {k for (k,) in cat.connect().sql("SELECT DISTINCT label_kind FROM scans").fetchall()} == {kind}


def test_a_broken_dataset_json_is_one_failure_naming_it(tmp_path, catalog):
    root = nnunet_copy("kits19", tmp_path)
    (root / "dataset.json").write_text("{")
    s = ingest("kits19", root, catalog, workers=1)
    assert (s.scans, s.failed) == (0, 1)
    [(file, kind, msg)] = catalog.connect().sql("SELECT file, error_type, error FROM failures").fetchall()
    assert (file, kind) == ("dataset.json", "ReadError")
    assert msg.startswith("kits19: dataset.json: not valid JSON (")
