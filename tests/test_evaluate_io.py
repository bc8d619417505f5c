"""Pairing, grids (mismatch, resampling, permuted/flipped axes), labels sources, vertebrae end to end."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from _evaluate_testlib import affine_for, blob, permute_flip
from satds.errors import SpecError
from satds.evaluate.grids import alignment, grid_mismatch, spacing_of
from satds.evaluate.labels import ClassSpec, from_dataset_json, from_task, parse_ranges, with_ontology
from satds.evaluate.metrics import score_label_maps
from satds.evaluate.runner import Options, evaluate
from satds.evaluate.volumes import read_label_map, write_label_map

SPACING = (0.8, 1.1, 2.5)
SHAPE = (24, 20, 12)


def _maps(seed=0):
    ref = np.zeros(SHAPE, np.uint8)
    pred = np.zeros(SHAPE, np.uint8)
    for label in (1, 2, 3):
        ref[blob(SHAPE, seed + label, level=0.54)] = label
        pred[blob(SHAPE, seed + 50 + label, level=0.54)] = label
    pred[ref == 2] = 2
    return ref, pred


@pytest.fixture
def folders(tmp_path):
    aff = affine_for(SPACING, origin=(-10.0, 5.0, 30.0))
    aff[0, :] *= -1  # x flipped, like a RAS+ affine of an LPS file
    ref, pred = _maps()
    (tmp_path / "ref").mkdir()
    (tmp_path / "pred").mkdir()
    write_label_map(tmp_path / "ref" / "c1.nii.gz", ref, aff)
    write_label_map(tmp_path / "pred" / "c1.nii.gz", pred, aff)
    ref2, _ = _maps(seed=10)
    write_label_map(tmp_path / "ref" / "c2.nii.gz", ref2, aff)  # no prediction
    write_label_map(tmp_path / "pred" / "c3.nii.gz", pred, aff)  # no reference
    (tmp_path / "pred" / "plans.json").write_text("{}")  # nnU-Net leaves such files beside predictions
    return SimpleNamespace(root=tmp_path, ref=tmp_path / "ref", pred=tmp_path / "pred", aff=aff, ref_arr=ref, pred_arr=pred, ref2=ref2)


def _scores(ev, case):
    return ev.scores[ev.scores["case"] == case].set_index("label")


def test_folder_evaluation_and_missing_cases(folders):
    ev = evaluate(folders.pred, folders.ref)
    assert ev.missing_predictions == ["c2"]
    assert ev.missing_references == ["c3"]
    spacing = spacing_of(read_label_map(folders.ref / "c1.nii.gz")[1])  # as stored (float32 header)
    direct = score_label_maps(folders.ref_arr, folders.pred_arr, spacing)
    c1 = _scores(ev, "c1")
    for label, s in direct.items():  # evaluate() works in the file's memory order: equal up to rounding
        assert c1.loc[label, "dsc"] == s.dsc
        for m in ("nsd", "hd95", "hd", "ref_ml", "pred_ml"):
            assert c1.loc[label, m] == pytest.approx(getattr(s, m), rel=1e-12)
    c2 = _scores(ev, "c2")
    assert set(c2["flag"]) == {"pred_missing"}
    assert (c2["dsc"] == 0).all() and c2["hd"].isna().all()
    assert sorted(c2.index) == sorted(set(np.unique(folders.ref2)) - {0})
    assert ev.grids == {"c1": "same", "c2": "missing"}


def test_grid_mismatch_names_the_case(folders):
    other = affine_for((0.8, 1.1, 2.0))
    write_label_map(folders.pred / "c1.nii.gz", folders.pred_arr, other)
    ev = evaluate(folders.pred, folders.ref)  # the case is an error row; the others are still scored
    assert list(ev.errors) == ["c1"] and ev.grids["c1"] == "error"
    assert ev.errors["c1"].startswith("c1: ") and "--resample" in ev.errors["c1"]
    assert set(_scores(ev, "c2")["flag"]) == {"pred_missing"}


def test_resample_onto_reference_grid(folders):
    fine = np.repeat(np.repeat(np.repeat(folders.ref_arr, 2, 0), 2, 1), 2, 2)  # the reference at half the spacing
    aff = folders.aff.copy()
    aff[:3, :3] /= 2
    aff[:3, 3] = folders.aff[:3, :3] @ np.array([-0.25, -0.25, -0.25]) + folders.aff[:3, 3]
    write_label_map(folders.pred / "c1.nii.gz", fine, aff)
    assert alignment(fine.shape, aff, SHAPE, folders.aff) is None
    assert list(evaluate(folders.pred, folders.ref).errors) == ["c1"]
    ev = evaluate(folders.pred, folders.ref, Options(resample=True))
    assert not ev.errors
    assert ev.grids["c1"] == "resampled"
    c1 = _scores(ev, "c1")
    assert (c1["dsc"] == 1.0).all() and (c1["hd"] == 0.0).all()


@pytest.mark.parametrize("perm,flip", [((2, 0, 1), (True, False, False)), ((0, 1, 2), (False, True, True)), ((1, 0, 2), (True, True, False))])
def test_permuted_flipped_prediction_scores_identically(folders, perm, flip):
    base = evaluate(folders.pred, folders.ref)
    arr, aff = permute_flip(folders.pred_arr, folders.aff, perm, flip)
    assert grid_mismatch(SHAPE, folders.aff, arr.shape, aff) is None
    write_label_map(folders.pred / "c1.nii.gz", arr, aff)
    ev = evaluate(folders.pred, folders.ref)
    assert ev.grids["c1"] == "aligned"
    cols = ["dsc", "nsd", "hd95", "hd", "ref_ml", "pred_ml"]
    np.testing.assert_array_equal(_scores(ev, "c1")[cols].to_numpy(), _scores(base, "c1")[cols].to_numpy())


def test_mha_and_nrrd_predictions(folders):
    base = _scores(evaluate(folders.pred, folders.ref), "c1")
    for suffix in (".mha", ".nrrd"):
        (folders.pred / "c1.nii.gz").unlink(missing_ok=True)
        for p in folders.pred.glob("c1.*"):
            p.unlink()
        arr, aff = permute_flip(folders.pred_arr, folders.aff, (0, 2, 1), (False, False, True))
        write_label_map(folders.pred / f"c1{suffix}", arr, aff)
        back, back_aff = read_label_map(folders.pred / f"c1{suffix}")
        np.testing.assert_array_equal(back, arr)
        np.testing.assert_allclose(back_aff, aff, atol=1e-6)
        got = _scores(evaluate(folders.pred, folders.ref), "c1")
        np.testing.assert_array_equal(got[["dsc", "nsd", "hd"]].to_numpy(), base[["dsc", "nsd", "hd"]].to_numpy())


def test_dataset_json_labels(tmp_path, folders):
    p = tmp_path / "dataset.json"
    p.write_text(json.dumps({"labels": {"background": 0, "liver": 1, "spleen": 2, "ignore": 4}, "file_ending": ".nii.gz"}))
    specs = from_dataset_json(p)
    assert [(s.label, s.values, s.name) for s in specs] == [(1, (1,), "liver"), (2, (2,), "spleen")]
    ev = evaluate(folders.pred, folders.ref, Options(classes=specs))
    c1 = _scores(ev, "c1")
    assert list(c1.index) == [1, 2]
    assert list(c1["class"]) == ["liver", "spleen"]
    assert list(c1["class_id"]) == ["liver", "spleen"]  # names resolved through the ontology
    assert ev.unknown_values == {"c1": [3], "c2": [3]}
    p.write_text(json.dumps({"labels": {"0": "background", "1": "liver", "2": "spleen"}}))  # nnU-Net v1 / Decathlon
    assert from_dataset_json(p) == specs


def test_dataset_json_regions(tmp_path, folders):
    p = tmp_path / "dataset.json"
    p.write_text(json.dumps({"labels": {"background": 0, "whole": [1, 2, 3], "core": [2, 3], "enhancing": 3}, "regions_class_order": [1, 2, 3]}))
    specs = from_dataset_json(p)
    assert [(s.label, s.values) for s in specs] == [(1, (1, 2, 3)), (2, (2, 3)), (3, (3,))]
    ev = evaluate(folders.pred, folders.ref, Options(classes=specs))
    whole = _scores(ev, "c1").loc[1]
    spacing = spacing_of(read_label_map(folders.ref / "c1.nii.gz")[1])
    want = score_label_maps((folders.ref_arr > 0).astype(np.uint8), (folders.pred_arr > 0).astype(np.uint8), spacing)[1]
    assert whole["dsc"] == want.dsc and whole["hd"] == pytest.approx(want.hd, rel=1e-12)
    p.write_text(json.dumps({"labels": {"background": 0, "whole": [1, 2]}}))
    with pytest.raises(SpecError, match="regions_class_order"):
        from_dataset_json(p)
    p.write_text(json.dumps({"labels": {"background": 0, "bad": "x"}}))
    with pytest.raises(SpecError, match="bad"):
        from_dataset_json(p)


def test_task_recipe_classes(tmp_path):
    p = tmp_path / "toy.yaml"
    p.write_text("name: toy\nclasses:\n  - liver\n  - spleen\n  - left kidney\nother: ignored\n")
    specs = from_task(str(p))
    assert [(s.label, s.name) for s in specs] == [(1, "liver"), (2, "spleen"), (3, "left kidney")]
    p.write_text("classes: liver\n")
    with pytest.raises(SpecError, match="classes"):
        from_task(str(p))
    with pytest.raises(SpecError, match="no task recipe"):
        from_task("no_such_task_xyz")


def test_ontology_lookup_is_optional():
    concept = SimpleNamespace(id="liver", name="liver", region="abdomen", kind="anatomy")
    onto = SimpleNamespace(try_resolve=lambda n: concept if n.lower() == "liver" else None)
    specs = with_ontology([ClassSpec(1, (1,), "Liver"), ClassSpec(2, (2,), "thing")], onto)
    assert (specs[0].class_id, specs[0].class_name, specs[0].region, specs[0].display) == ("liver", "liver", "abdomen", "liver")
    assert specs[1].class_id is None and specs[1].display == "thing"
    assert ClassSpec(7, (7,)).display == "7"


def test_parse_ranges():
    assert parse_ranges("1-3,5, 7-7") == [1, 2, 3, 5, 7]
    assert parse_ranges("1-25") == list(range(1, 26))
    with pytest.raises(ValueError):
        parse_ranges("3-1")
    with pytest.raises(ValueError):
        parse_ranges("a-b")


def test_vertebrae_end_to_end(tmp_path):
    """Four vertebrae 30 mm apart; the prediction moves L2 by 25 mm onto L3's side and misses L4."""
    shape = (20, 20, 70)
    aff = affine_for((1.0, 1.0, 2.0), origin=(5.0, -3.0, 100.0))
    aff[1, :] *= -1
    ref = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    for i, label in enumerate((20, 21, 22, 23)):  # L1-L4
        z = 5 + i * 15  # 15 voxels * 2 mm = 30 mm apart
        ref[8:12, 8:12, z : z + 4] = label
        if label in (20, 22):
            pred[8:12, 8:12, z : z + 4] = label
    # L2 moved 12 voxels (24 mm) in z and 7 voxels (7 mm) in y: 25 mm, next to L3 (L4 is not predicted)
    pred[8:12, 15:19, 32:36] = 21
    (tmp_path / "r").mkdir()
    (tmp_path / "p").mkdir()
    write_label_map(tmp_path / "r" / "s.nii.gz", ref, aff)
    write_label_map(tmp_path / "p" / "s.nii.gz", pred, aff)
    ev = evaluate(tmp_path / "p", tmp_path / "r", Options(vertebrae=tuple(range(1, 26))))
    v = ev.vertebrae.set_index("label")
    assert list(v.index) == [20, 21, 22, 23]
    assert v.loc[20, "identified"] and v.loc[22, "identified"]
    assert v.loc[21, "distance"] == pytest.approx(25.0)
    assert not v.loc[21, "identified"]
    assert not v.loc[23, "predicted"] and math.isnan(v.loc[23, "distance"])
    # centroids are in world mm (the affine flips y and offsets the origin)
    want = aff @ np.array([9.5, 9.5, 6.5, 1.0])
    assert (v.loc[20, "ref_x"], v.loc[20, "ref_y"], v.loc[20, "ref_z"]) == pytest.approx(tuple(want[:3]))
    from satds.evaluate.vertebrae import summarise

    s = summarise(ev.vertebrae.to_dict("records"))
    assert s["id_rate"] == pytest.approx(0.5)
    assert s["d"] == pytest.approx(25.0 / 3)


def test_c_order_view_keeps_world_positions():
    from satds.evaluate.grids import c_order

    arr = np.asfortranarray(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    aff = affine_for((0.5, 1.0, 2.0), origin=(3.0, 4.0, 5.0))
    out, out_aff = c_order(arr, aff)
    assert out.flags.c_contiguous and np.shares_memory(out, arr)
    for i, j, k in [(0, 0, 0), (1, 2, 3), (1, 0, 2)]:
        assert out[k, j, i] == arr[i, j, k]
        np.testing.assert_allclose(out_aff @ [k, j, i, 1], aff @ [i, j, k, 1])
    same, same_aff = c_order(np.ascontiguousarray(arr), aff)
    assert same.flags.c_contiguous and np.array_equal(same_aff, aff)
