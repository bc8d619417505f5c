"""Splits: patient level, official splits honoured, image copies across datasets grouped, reproducible."""

from __future__ import annotations

import json
import shutil

import pytest

from satds.ingest import ingest
from satds.phantoms import generate
from satds.split import assign_splits, make_groups, run_split


def scan(sid, ds, patient, split="unknown", fp=None, case=None):
    return {"scan_id": sid, "dataset": ds, "case_id": case or sid.split("/")[-1], "patient_id": patient, "fingerprint": fp or sid, "official_split": split, "case_files": None}


def test_scans_of_one_patient_share_a_side():
    scans = [scan(f"acdc/p{i}_f{f}", "acdc", f"p{i}") for i in range(20) for f in (1, 12)]
    res = assign_splits(scans, train_fraction=0.7, seed=1)
    for i in range(20):
        assert res.split_of[f"acdc/p{i}_f1"] == res.split_of[f"acdc/p{i}_f12"]
    assert sum(v == "test" for v in res.split_of.values()) == 2 * 6  # 20 patients, 70 % train → 6 test patients


def test_same_seed_same_split_other_seed_other_split():
    scans = [scan(f"d/c{i}", "d", f"c{i}") for i in range(50)]
    a = assign_splits(scans, seed=0).split_of
    assert a == assign_splits(list(reversed(scans)), seed=0).split_of  # order of input does not matter
    assert a != assign_splits(scans, seed=1).split_of


def test_official_test_wins_over_a_train_copy_in_another_dataset():
    scans = [
        scan("ctspine1k/liver_5", "ctspine1k", "liver_5", "test", fp="X"),
        scan("ctspine1k/liver_6", "ctspine1k", "liver_6", "train", fp="Y"),
        scan("msd_liver/liver_5", "msd_liver", "liver_5", "unknown", fp="X"),
        scan("msd_liver/liver_9", "msd_liver", "liver_9", "unknown", fp="Z"),
    ]
    res = assign_splits(scans, seed=0)
    assert res.split_of["msd_liver/liver_5"] == "test"  # the MSD copy of a CTSpine1K test image
    assert res.split_of["ctspine1k/liver_6"] == "train"
    assert "official test" in res.reason_of["msd_liver/liver_5"]


def test_leave_one_dataset_out_excludes_copies(tmp_path, catalog):
    """A deliberately duplicated image (same voxels, another dataset's layout) never leaks."""
    liver = generate("msd_liver", tmp_path / "liver")
    spleen = generate("msd_spleen", tmp_path / "spleen")
    # spleen_10's image is liver_1's image (a re-release), its label the spleen phantom's.
    shutil.copy(liver / "imagesTr/liver_1.nii.gz", spleen / "imagesTr/spleen_10.nii.gz")
    lab = spleen / "labelsTr/spleen_10.nii.gz"
    import nibabel as nib
    import numpy as np

    img = nib.load(spleen / "imagesTr/spleen_10.nii.gz")
    nib.save(nib.Nifti1Image(np.asarray(nib.load(lab).dataobj), img.affine), lab)
    for key, root in (("msd_liver", liver), ("msd_spleen", spleen)):
        s = ingest(key, root, catalog, workers=1)
        assert s.failed == 0, s.failures
    for seed in range(6):
        run_split(catalog, seed=seed, train_fraction=0.5)
        con = catalog.connect()
        sides = dict(con.execute("SELECT scan_id, split FROM splits").fetchall())
        assert sides["msd_liver/liver_1"] == sides["msd_spleen/spleen_10"]
        groups = dict(con.execute("SELECT scan_id, group_id FROM splits").fetchall())
        assert groups["msd_liver/liver_1"] == groups["msd_spleen/spleen_10"]
        # CV folds: the pair is never split across folds.
        folds = con.execute("SELECT scan_id, fold FROM folds WHERE scheme = 'cv'").fetchall()
        f = dict(folds)
        if "msd_liver/liver_1" in f:
            assert f["msd_liver/liver_1"] == f["msd_spleen/spleen_10"]
        # LODO: holding out msd_liver also excludes the spleen copy of liver_1 from training.
        lodo = con.execute("SELECT fold, scan_id, role FROM folds WHERE scheme = 'lodo' AND dataset = 'msd_spleen' AND scan_id = 'msd_spleen/spleen_10'").fetchall()
        roles = {r for _, _, r in lodo}
        assert roles == {"val", "exclude"}


def test_sat_ds_import_maps_ids_and_reports_leaks(tmp_path, catalog, sat_ds_dir):
    liver = generate("msd_liver", tmp_path / "liver")
    ingest("msd_liver", liver, catalog, workers=1)
    sat = tmp_path / "split_json"
    sat.mkdir()
    # A SAT-DS-style file that puts liver_0 in train and liver_1/liver_7 in test.
    (sat / "MSD_Liver.json").write_text(json.dumps({"train": ["liver_0.nii.gz"], "val": [], "test": ["liver_1.nii.gz", "liver_7.nii.gz"]}))
    s = run_split(catalog, from_sat_ds=sat)
    assert s.sat.matched == {"msd_liver": 3} and not s.sat.leaks
    con = catalog.connect()
    assert dict(con.execute("SELECT scan_id, split FROM splits").fetchall()) == {"msd_liver/liver_0": "train", "msd_liver/liver_1": "test", "msd_liver/liver_7": "test"}
    # The published files themselves map onto the phantom's ids.
    real = sat_ds_dir / "split_json"
    s = run_split(catalog, from_sat_ds=real)
    assert s.sat.matched == {"msd_liver": 3}


def test_groups_join_patients_prints_and_declared_overlaps():
    scans = [
        scan("a/1", "a", "p1", fp="f1"),
        scan("a/2", "a", "p1", fp="f2"),  # same patient as a/1
        scan("b/9", "b", "q9", fp="f2"),  # same image as a/2
        scan("c/5", "c", "z5", fp="f5"),
    ]
    g = make_groups(scans)
    assert g.group_of["a/1"] == g.group_of["a/2"] == g.group_of["b/9"] != g.group_of["c/5"]
    assert g.cross_dataset({s["scan_id"]: s["dataset"] for s in scans}) == {g.group_of["a/1"]: ["a/1", "a/2", "b/9"]}


@pytest.mark.parametrize("fraction", [0.5, 0.8])
def test_every_dataset_keeps_a_test_side(fraction):
    scans = [scan(f"d{d}/c{i}", f"d{d}", f"c{i}") for d in range(3) for i in range(5)]
    res = assign_splits(scans, train_fraction=fraction, seed=0)
    for d in range(3):
        assert any(res.split_of[f"d{d}/c{i}"] == "test" for i in range(5))
