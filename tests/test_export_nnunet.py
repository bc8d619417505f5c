"""nnU-Net export from phantom catalogs: labels voxel by voxel, dataset.json, folds, problems, licences."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _export_phantoms import build_catalog, read, source_mask

from satds.errors import ExportError
from satds.export import adhoc_recipe, case_id_for, export_nnunet, plan_export

LIVER = {1, 2}  # msd_liver: liver + cancer
SPLEEN = {1}


@pytest.fixture(scope="module")
def cat(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    return build_catalog(tmp, ["msd_liver", "msd_spleen", "kits23"], duplicate=True, build=True)


@pytest.fixture(scope="module")
def raw(cat) -> Path:
    return cat.root.parent / "raw"


def recipe(**kw):
    base = dict(name="LiverSpleen", dataset_id=502, classes=["liver", "spleen"], datasets=["msd_liver", "msd_spleen"])
    return adhoc_recipe(**(base | kw))


@pytest.fixture(scope="module")
def keep(cat, tmp_path_factory):
    """liver + spleen, ignore policy, duplicates kept as separate cases."""
    return export_nnunet(cat, recipe(duplicates="keep"), tmp_path_factory.mktemp("out"))


def test_ignore_policy_exact_labels(keep, cat, raw):
    folder = keep.folder
    prov = json.loads((folder / "satds_export.json").read_text())
    con = cat.connect()
    voxels = {(r[0], r[1]): r[2] for r in con.execute("SELECT scan_id, class_id, voxels FROM annotations").fetchall()}
    checked = 0
    for cid, c in prov["cases"].items():
        ds, case = c["scans"][0].split("/")
        sub = "labelsTr" if c["split"] == "train" else "labelsTs"
        lab = read(folder / sub / f"{cid}.nii.gz")
        img = read(folder / ("imagesTr" if c["split"] == "train" else "imagesTs") / f"{cid}_0000.nii.gz")
        assert lab.dtype == np.uint8 and lab.shape == img.shape
        body = img > -500  # the phantom body is a solid ellipsoid
        if ds == "msd_liver":
            gt, own, other = source_mask(raw, ds, case, LIVER), 1, 2
            assert c["known"] == ["liver"] and c["unknown"] == ["spleen"]
        else:
            gt, own, other = source_mask(raw, ds, case, SPLEEN), 2, 1
            assert c["known"] == ["spleen"] and c["unknown"] == ["liver"]
        assert np.array_equal(lab == own, gt)
        assert not (lab == other).any()  # the unknown class is never labelled ...
        assert np.array_equal(lab == 3, body & ~gt)  # ... nor background inside the body: ignore
        assert np.array_equal(lab == 0, ~body & ~gt)  # air outside the body is background
        assert int((lab == own).sum()) == voxels[(c["scans"][0], "liver" if own == 1 else "spleen")]
        checked += 1
    assert checked == 6  # 3 liver + 3 spleen scans (spleen_99 included)


def test_dataset_json(keep):
    dj = json.loads((keep.folder / "dataset.json").read_text())
    assert dj["channel_names"] == {"0": "CT"}
    assert dj["labels"] == {"background": 0, "liver": 1, "spleen": 2, "ignore": 3}
    assert list(dj["labels"])[-1] == "ignore"
    n_tr = len(list((keep.folder / "imagesTr").glob("*_0000.nii.gz")))
    assert dj["numTraining"] == n_tr == len(list((keep.folder / "labelsTr").glob("*.nii.gz"))) == 4
    assert dj["file_ending"] == ".nii.gz"
    assert "CC-BY-SA 4.0" in dj["licence"] and dj["description"] and dj["reference"]
    assert len(list((keep.folder / "imagesTs").glob("*.nii.gz"))) == len(list((keep.folder / "labelsTs").glob("*.nii.gz"))) == 2
    img = read(keep.folder / "imagesTr" / "msd_liver__liver_0_0000.nii.gz")
    assert img.dtype == np.float32  # as the source


def test_splits_final_keeps_groups_together(keep, cat):
    splits = json.loads((keep.folder / "splits_final.json").read_text())
    prov = json.loads((keep.folder / "satds_export.json").read_text())
    train = {c for c, v in prov["cases"].items() if v["split"] == "train"}
    test = {c for c, v in prov["cases"].items() if v["split"] == "test"}
    dup = {"msd_liver__liver_0", "msd_spleen__spleen_99"}  # one image in two datasets
    assert dup <= train or dup <= test
    assert len(splits) == 5
    vals = [set(f["val"]) for f in splits]
    for f, v in zip(splits, vals):
        assert set(f["train"]) | v == train and not set(f["train"]) & v
        assert not (set(f["train"]) | v) & test
        assert dup <= v or not dup & v  # never split across folds
    assert sorted(c for v in vals for c in v) == sorted(train)  # each training case validated once
    # the same folds as the catalog's grouped folds
    fold = dict(cat.connect().execute("SELECT scan_id, fold FROM folds WHERE scheme = 'cv' AND role = 'val'").fetchall())
    for c in train:
        assert c in splits[fold[prov["cases"][c]["scans"][0]]]["val"]
    assert (keep.folder / "satds_export.json").exists()


def test_duplicate_images_are_merged_into_one_case(cat, raw, tmp_path):
    res = export_nnunet(cat, recipe(), tmp_path, workers=2)
    prov = json.loads((res.folder / "satds_export.json").read_text())
    c = prov["cases"]["msd_liver__liver_0"]
    assert c["scans"] == ["msd_liver/liver_0", "msd_spleen/spleen_99"]
    assert c["known"] == ["liver", "spleen"] and c["unknown"] == []
    assert "msd_spleen__spleen_99" not in prov["cases"]
    lab = read(res.folder / "labelsTr" / "msd_liver__liver_0.nii.gz")
    liver = source_mask(raw, "msd_liver", "liver_0", LIVER)
    spleen = source_mask(raw, "msd_spleen", "spleen_99", SPLEEN)
    assert np.array_equal(lab == 1, liver)
    assert np.array_equal(lab == 2, spleen & ~liver)  # disjoint classes: the earlier listed wins a tie
    assert not (lab == 3).any()  # everything is known: no ignore voxel
    assert json.loads((res.folder / "dataset.json").read_text())["numTraining"] == 3


def test_problems_are_collected_and_nothing_is_written(cat, tmp_path):
    r = recipe(partial_labels="background", datasets=["msd_liver", "msd_spleen", "btcv_missing"], duplicates="keep")
    with pytest.raises(ExportError) as e:
        export_nnunet(cat, r, tmp_path)
    probs = e.value.problems
    assert any("btcv_missing" in p for p in probs)
    assert sum("partial_labels: background" in p for p in probs) >= 4  # every partially labelled scan is named
    assert not any(tmp_path.iterdir())


def test_dry_run_writes_nothing(cat, tmp_path):
    res = export_nnunet(cat, recipe(), tmp_path, dry_run=True)
    assert not res.written and not any(tmp_path.iterdir())
    assert len(res.plan.train_case_ids()) == 3
    assert not any("dataset_id" in w for w in res.warnings)
    msd = export_nnunet(cat, recipe(dataset_id=3), tmp_path, dry_run=True)  # an nnU-Net matter, warned by its export only
    assert msd.warnings[0] == "dataset_id 3: nnU-Net keeps ids 1-10 for the Medical Segmentation Decathlon"
    assert not any("dataset_id" in w for w in plan_export(cat, recipe(dataset_id=3)).warnings)


def test_licence_warning_and_native_geometry(cat, raw, tmp_path):
    r = adhoc_recipe(name="Kidney", dataset_id=504, classes=["kidney"], datasets=["kits23"])
    res = export_nnunet(cat, r, tmp_path)
    assert any("kits23" in w and "CC BY-NC-SA" in w and "redistribut" in w for w in res.warnings)
    import nibabel as nib

    img = nib.load(str(res.folder / "imagesTr" / "kits23__case_00001_0000.nii.gz"))
    src = nib.as_closest_canonical(nib.load(str(raw / "kits23" / "dataset" / "case_00001" / "imaging.nii.gz")))
    assert "".join(nib.aff2axcodes(img.affine)) == "RAS"  # source is IPL: reoriented, not respaced
    assert np.array_equal(np.asarray(img.dataobj), np.asarray(src.dataobj)) and img.get_data_dtype() == np.int16
    assert np.allclose(img.affine, src.affine)


def test_regions_and_ignore_pass_nnunet_integrity_check(cat, tmp_path):
    pytest.importorskip("nnunetv2")
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    r = recipe(name="LiverTumorSpleen", dataset_id=505, classes=["liver", "liver tumor", "spleen"], overlap="regions")
    res = export_nnunet(cat, r, tmp_path)
    dj = json.loads((res.folder / "dataset.json").read_text())
    assert dj["labels"] == {"background": 0, "spleen": 3, "liver": [1, 2], "liver_tumor": 2, "ignore": 4}
    assert dj["regions_class_order"] == [3, 1, 2]
    verify_dataset_integrity(str(res.folder), num_processes=1)  # raises on any problem


def test_normalised_source(cat, tmp_path):
    res = export_nnunet(cat, recipe(source="normalised", name="LSNorm", dataset_id=506), tmp_path)
    dj = json.loads((res.folder / "dataset.json").read_text())
    assert dj["channel_names"] == {"0": "noNorm"}  # satds already normalised: nnU-Net must not again
    row = cat.connect().execute("SELECT normalised_image, target_shape FROM scans WHERE scan_id = 'msd_liver/liver_7'").fetchall()[0]
    img = read(res.folder / "imagesTr" / "msd_liver__liver_7_0000.nii.gz")
    assert list(img.shape) == list(row[1]) and np.array_equal(img, read(Path(row[0])))
    assert read(res.folder / "labelsTr" / "msd_liver__liver_7.nii.gz").shape == img.shape


def test_per_channel_view(cat, tmp_path):
    res = export_nnunet(cat, recipe(view="per_channel", name="LSPer", dataset_id=507), tmp_path)
    names = sorted(p.name for p in (res.folder / "imagesTr").iterdir())
    assert names[0] == "msd_liver__liver_0_c0_0000.nii.gz"
    splits = json.loads((res.folder / "splits_final.json").read_text())
    assert any("msd_liver__liver_0_c0" in f["val"] for f in splits)


def test_reexport_replaces_and_same_id_clash(cat, tmp_path):
    export_nnunet(cat, recipe(), tmp_path)
    res = export_nnunet(cat, recipe(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dataset502_LiverSpleen"]
    assert res.key == plan_export(cat, recipe()).export_key()
    with pytest.raises(ExportError, match="dataset id 502"):
        export_nnunet(cat, recipe(name="Other"), tmp_path)


def test_case_ids():
    assert case_id_for("msd_liver/liver_0") == "msd_liver__liver_0"
    a, b = case_id_for("totalseg/s0001/ct scan"), case_id_for("totalseg/s0001/ct_scan")
    assert a != b and " " not in a and b == "totalseg__s0001__ct_scan"


def test_dataset_json_rules():
    from satds.export.nnunet import check_dataset_json

    good = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 1, "ignore": 2}, "numTraining": 1, "file_ending": ".nii.gz"}
    assert check_dataset_json(good) == []
    bad = good | {"labels": {"background": 0, "a": 2, "ignore": 1}}
    probs = check_dataset_json(bad)
    assert any("consecutive" in p for p in probs) and any("highest" in p for p in probs)
    assert any("regions_class_order" in p for p in check_dataset_json(good | {"labels": {"background": 0, "a": [1, 2], "b": 2}}))
