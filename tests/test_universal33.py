"""universal33 from phantoms of all seven sources plus the real scans: a valid nnU-Net dataset, labels as
the recipe says, and no image or patient on both sides (copies of images across releases included)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from _data_catalog import demo_catalog

from satds.export.nnunet import export_nnunet
from satds.export.recipe import find_recipe
from satds.ontology import load_ontology

ORDER = (
    [f"cervical vertebrae {i} (c{i})" for i in range(1, 8)]
    + [f"thoracic vertebrae {i} (t{i})" for i in range(1, 13)]
    + [f"lumbar vertebrae {i} (l{i})" for i in range(1, 7)]
    + ["sacrum", "left hip", "right hip", "liver", "spleen", "pancreas", "left kidney", "right kidney"]
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, realdata):
    # The session's demo catalog, shared with tests/test_data.py and tests/test_export_monai.py: only read here
    # (the export writes outside it).
    cat = demo_catalog(tmp_path_factory.getbasetemp())
    res = export_nnunet(cat, find_recipe("universal33"), tmp_path_factory.mktemp("u33") / "raw")
    return cat, res.folder


def test_labels_are_exactly_the_recipe(exported):
    _, folder = exported
    dj = json.loads((folder / "dataset.json").read_text())
    onto = load_ontology()
    assert list(dj["labels"]) == ["background", *[onto.resolve(n).id for n in ORDER], "ignore"]
    assert list(dj["labels"].values()) == list(range(35))
    assert dj["channel_names"] == {"0": "CT"} and dj["file_ending"] == ".nii.gz"
    assert dj["numTraining"] == len(list((folder / "labelsTr").glob("*.nii.gz")))
    for p in [*(folder / "labelsTr").glob("*.nii.gz"), *(folder / "labelsTs").glob("*.nii.gz")]:
        assert set(np.unique(np.asarray(nib.load(p).dataobj)).tolist()) <= set(range(35)), p.name


def test_every_source_contributes_its_classes(exported):
    _, folder = exported
    prov = json.loads((folder / "satds_export.json").read_text())
    datasets = {d for c in prov["cases"].values() for d in c["datasets"]}
    assert {"btcv", "msd_liver", "msd_spleen", "msd_pancreas", "kits19", "ctpelvic1k", "ctspine1k"} <= datasets
    known = {k for c in prov["cases"].values() if c["split"] != "test" for k in c["known"]}
    onto = load_ontology()
    assert {onto.resolve(n).id for n in ORDER} <= known


def test_no_image_or_patient_on_both_sides(exported):
    cat, folder = exported
    prov = json.loads((folder / "satds_export.json").read_text())
    con = cat.connect()
    group_of = dict(con.execute("SELECT scan_id, group_id FROM splits").fetchall())
    fp_of = dict(con.execute("SELECT scan_id, fingerprint FROM scans").fetchall())
    sides: dict[str, set[str]] = {}
    prints: dict[str, set[str]] = {}
    for case, c in prov["cases"].items():
        side = "test" if c["split"] == "test" else "train"
        for sid in c["scans"]:
            sides.setdefault(group_of[sid], set()).add(side)
            for fp in fp_of[sid].split(","):
                prints.setdefault(fp, set()).add(side)
    assert all(len(s) == 1 for s in sides.values())
    assert all(len(s) == 1 for s in prints.values())
    # The deliberate duplicates are there: the real CT in BTCV and TotalSegmentator, MSD Liver images in
    # CTSpine1K, CTSpine1K's COLONOG case in CTPelvic1K, BTCV in CTPelvic1K.
    cross = con.execute("SELECT group_id FROM splits GROUP BY group_id HAVING count(DISTINCT dataset) > 1").fetchall()
    assert len(cross) >= 5
    # Folds: one group never spans two folds.
    folds = json.loads((folder / "splits_final.json").read_text())
    fold_of_case = {c: i for i, f in enumerate(folds) for c in f["val"]}
    for g in {c["group"] for c in prov["cases"].values()}:
        fs = {fold_of_case[k] for k, c in prov["cases"].items() if c["group"] == g and k in fold_of_case}
        assert len(fs) <= 1


@pytest.mark.slow
def test_nnunet_accepts_the_dataset(exported, tmp_path, monkeypatch):
    pytest.importorskip("nnunetv2")
    _, folder = exported
    monkeypatch.setenv("nnUNet_raw", str(folder.parent))
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "pre"))
    monkeypatch.setenv("nnUNet_results", str(tmp_path / "res"))
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    verify_dataset_integrity(str(folder), num_processes=1)  # raises on any problem
