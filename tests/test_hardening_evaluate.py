"""Issue 13, items 16 and 21: `satds evaluate` scores every case it can and records the others; the empty-mask
rule gives one answer whatever the argument order; label value 0 cannot make up a class."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from _evaluate_testlib import affine_for, blob
from _robust import tree_digest
from typer.testing import CliRunner

from satds.cli import app
from satds.errors import SatdsError
from satds.evaluate import score_label_maps, score_masks, surface_distances
from satds.evaluate.labels import ClassSpec
from satds.evaluate.runner import Options, evaluate
from satds.evaluate.volumes import write_label_map

runner = CliRunner()
SHAPE = (20, 18, 10)
AFF = affine_for((0.9, 0.9, 2.0), origin=(1.0, 2.0, 3.0))


def _pair(seed):
    ref = np.zeros(SHAPE, np.uint8)
    pred = np.zeros(SHAPE, np.uint8)
    for label in (1, 2):
        ref[blob(SHAPE, seed + label, level=0.54)] = label
        pred[blob(SHAPE, seed + label + 5, level=0.54)] = label
    return ref, pred


@pytest.fixture
def folders(tmp_path):
    """Five cases: good1, good2, and three bad predictions among them."""
    ref_dir, pred_dir = tmp_path / "ref", tmp_path / "pred"
    ref_dir.mkdir()
    pred_dir.mkdir()
    for i, case in enumerate(["a_good", "b_unreadable", "c_fractional", "d_offgrid", "e_good"]):
        ref, pred = _pair(10 * i)
        write_label_map(ref_dir / f"{case}.nii.gz", ref, AFF)
        if case == "c_fractional":
            write_label_map(pred_dir / f"{case}.nii.gz", pred.astype(np.float32) * 0.5, AFF)  # probabilities, not labels
        elif case == "d_offgrid":
            write_label_map(pred_dir / f"{case}.nii.gz", pred, affine_for((1.0, 1.0, 2.0)))
        else:
            write_label_map(pred_dir / f"{case}.nii.gz", pred, AFF)
    p = pred_dir / "b_unreadable.nii.gz"
    p.write_bytes(p.read_bytes()[:200])  # truncated download
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "liver": 1, "spleen": 2}}))
    return tmp_path


def test_bad_predictions_are_recorded_and_every_other_case_scored(folders, tmp_path):
    before = (tree_digest(folders / "ref"), tree_digest(folders / "pred"))
    out = tmp_path / "scores.csv"
    r = runner.invoke(app, ["evaluate", "--pred", str(folders / "pred"), "--ref", str(folders / "ref"), "--labels", str(folders / "dataset.json"), "--out", str(out)], terminal_width=400)
    assert r.exit_code == 1, r.output  # non-zero at the end...
    df = pd.read_csv(out)  # ...after writing every score
    good = df[df["case"].isin(["a_good", "e_good"])]
    assert len(good) == 4 and good["flag"].isna().all() and good["error"].isna().all() and (good["dsc"] > 0).all()
    bad = df[df["flag"] == "error"].set_index("case")
    assert sorted(bad.index) == ["b_unreadable", "c_fractional", "d_offgrid"] and bad["dsc"].isna().all()
    assert "b_unreadable: " in bad.loc["b_unreadable", "error"] and "b_unreadable.nii.gz" in bad.loc["b_unreadable", "error"]
    assert bad.loc["c_fractional", "error"].endswith("c_fractional.nii.gz: label map holds non-integer values")
    assert "prediction is on another grid than the reference" in bad.loc["d_offgrid", "error"] and "--resample" in bad.loc["d_offgrid", "error"]
    flat = " ".join(r.output.split())
    assert "3 case(s) could not be scored" in flat and all(c in flat for c in ("b_unreadable", "c_fractional", "d_offgrid"))
    assert "class means (2 cases)" in flat
    # the good cases score exactly as when evaluated alone
    for case in ("a_good", "e_good"):
        alone = tmp_path / case
        (alone / "ref").mkdir(parents=True)
        (alone / "pred").mkdir()
        for side in ("ref", "pred"):
            (alone / side / f"{case}.nii.gz").write_bytes((folders / side / f"{case}.nii.gz").read_bytes())
        ev = evaluate(alone / "pred", alone / "ref")
        assert not ev.errors
        np.testing.assert_array_equal(ev.scores[["dsc", "nsd", "hd95", "hd"]].to_numpy(), good[good["case"] == case][["dsc", "nsd", "hd95", "hd"]].to_numpy())
    assert (tree_digest(folders / "ref"), tree_digest(folders / "pred")) == before


def test_bad_cases_in_parallel_and_in_the_catalog(folders):
    from satds.catalog import Catalog, now
    from satds.evaluate import aggregate

    ev = evaluate(folders / "pred", folders / "ref", workers=2)
    assert sorted(ev.errors) == ["b_unreadable", "c_fractional", "d_offgrid"]
    assert sorted(set(ev.scores.loc[ev.scores["flag"] != "error", "case"])) == ["a_good", "e_good"]
    means = aggregate.class_means(ev.scores)
    assert set(means["class"]) == {"1", "2"} and (means["n_cases"] == 2).all()  # error rows never enter a mean

    cat = Catalog(folders / "catalog")
    cat.write("datasets", [{"dataset": "toy", "ingest_id": "ing-1", "ingested_at": now()}])
    r = runner.invoke(app, ["evaluate", "--pred", str(folders / "pred"), "--ref", str(folders / "ref"), "--catalog", str(cat.root)])
    assert r.exit_code == 1
    con = cat.connect()
    rows = con.execute("SELECT \"case\", label, flag FROM evaluations WHERE flag = 'error' ORDER BY \"case\"").fetchall()
    assert rows == [("b_unreadable", None, "error"), ("c_fractional", None, "error"), ("d_offgrid", None, "error")]
    [summary] = con.execute("SELECT summary FROM runs WHERE command = 'evaluate'").fetchone()
    assert sorted(json.loads(summary)["errors"]) == ["b_unreadable", "c_fractional", "d_offgrid"]


def test_hausdorff_of_an_empty_side_is_nan_in_either_order():
    a = np.zeros((8, 8, 8), bool)
    a[2:5, 2:5, 2:5] = True
    empty = np.zeros_like(a)
    for ref, pred, flag in ((a, empty, "pred_empty"), (empty, a, "ref_empty")):
        sd = surface_distances(ref, pred, (1.0, 1.0, 2.0))
        assert math.isnan(sd.hausdorff()) and math.isnan(sd.hausdorff(95))  # was inf one way, nan the other
        assert sd.surface_dice(1.0) == 0.0 and sd.empty == flag
        s = score_masks(ref, pred, (1.0, 1.0, 2.0))
        assert (s.flag, s.dsc, s.nsd) == (flag, 0.0, 0.0) and math.isnan(s.hd) and math.isnan(s.hd95)
    both = surface_distances(empty, empty, (1.0, 1.0, 1.0))
    assert both.empty == "both_empty" and math.isnan(both.hausdorff()) and math.isnan(both.surface_dice(1.0))


def test_label_value_zero_cannot_make_a_class(folders):
    ref = np.zeros(SHAPE, np.uint8)
    ref[2:6, 2:6, 2:6] = 1
    with pytest.raises(ValueError, match=r"class 7 is made of label value\(s\) \[0\]: 0 \(the background\)"):
        score_label_maps(ref, ref, (1.0, 1.0, 1.0), {7: (0,)})  # was scored as "both empty"
    with pytest.raises(SatdsError, match="class 1 is made of label value"):
        evaluate(folders / "pred", folders / "ref", Options(classes=[ClassSpec(1, (0, 1), "body")]))
