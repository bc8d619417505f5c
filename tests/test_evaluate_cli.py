"""``satds evaluate`` through typer's CliRunner: outputs, catalog rows, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from _evaluate_testlib import affine_for, blob
from satds.catalog import Catalog, now
from satds.cli import app
from satds.evaluate import METRICS_VERSION
from satds.evaluate.volumes import write_label_map

runner = CliRunner()
SHAPE = (20, 18, 10)
AFF = affine_for((0.9, 0.9, 2.0), origin=(1.0, 2.0, 3.0))


@pytest.fixture
def data(tmp_path):
    (tmp_path / "ref").mkdir()
    (tmp_path / "pred").mkdir()
    for i, case in enumerate(["case1", "case2"]):
        ref = np.zeros(SHAPE, np.uint8)
        pred = np.zeros(SHAPE, np.uint8)
        for label in (1, 2):
            ref[blob(SHAPE, 10 * i + label, level=0.54)] = label
            pred[blob(SHAPE, 10 * i + label + 5, level=0.54)] = label
        write_label_map(tmp_path / "ref" / f"{case}.nii.gz", ref, AFF)
        write_label_map(tmp_path / "pred" / f"{case}.nii.gz", pred, AFF)
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "liver": 1, "spleen": 2}}))
    return tmp_path


def _run(*args):
    res = runner.invoke(app, ["evaluate", *map(str, args)])
    return res


def test_csv_columns_exactly(data):
    out = data / "scores.csv"
    res = _run("--pred", data / "pred", "--ref", data / "ref", "--labels", data / "dataset.json", "--out", out)
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out)
    assert list(df.columns) == ["case", "label", "class", "dsc", "nsd", "hd95", "hd", "ref_ml", "pred_ml", "flag", "error"]
    assert df["error"].isna().all()
    assert len(df) == 4
    assert set(df["class"]) == {"liver", "spleen"}
    assert "class means" in res.output and "liver" in res.output


def test_parquet_has_all_columns(data):
    out = data / "scores.parquet"
    res = _run("--pred", data / "pred", "--ref", data / "ref", "--out", out, "--dataset", "toy", "--tolerance", "2")
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(out)
    for c in ("case", "label", "class", "dsc", "nsd", "hd95", "hd", "ref_ml", "pred_ml", "flag", "dataset", "tolerance_mm", "class_id"):
        assert c in df.columns
    assert set(df["dataset"]) == {"toy"} and set(df["tolerance_mm"]) == {2.0}


def _toy_catalog(root):
    """A catalog that knows case1 as scan toy:case1 of dataset toy, with one liver annotation."""
    cat = Catalog(root)
    t = now()
    cat.write("datasets", [{"dataset": "toy", "ingest_id": "ing-1", "ingested_at": t}])
    cat.write("scans", [{"scan_id": "toy:case1", "dataset": "toy", "case_id": "case1", "ingest_id": "ing-1", "gen": 1, "updated_at": t}])
    cat.write("annotations", [{"scan_id": "toy:case1", "dataset": "toy", "class_id": "liver", "class_name": "liver", "voxels": 10, "volume_ml": 1.0, "ingest_id": "ing-1", "gen": 1}])
    return cat


def test_catalog_rows_queryable(data):
    root = data / "catalog"
    cat = _toy_catalog(root)
    res = _run("--pred", data / "pred", "--ref", data / "ref", "--labels", data / "dataset.json", "--catalog", root)
    assert res.exit_code == 0, res.output
    con = cat.connect()
    rows = con.execute("SELECT run_id, \"case\", label, dataset, scan_id, dsc, metrics_version, tolerance_mm FROM evaluations ORDER BY \"case\", label").df()
    assert len(rows) == 4
    assert rows["run_id"].nunique() == 1
    assert set(rows["metrics_version"]) == {METRICS_VERSION}
    assert rows.loc[rows["case"] == "case1", "scan_id"].tolist() == ["toy:case1", "toy:case1"]
    assert rows.loc[rows["case"] == "case1", "dataset"].tolist() == ["toy", "toy"]
    assert rows.loc[rows["case"] == "case2", "scan_id"].isna().all()
    # scores join the scan's annotations
    joined = con.execute(
        "SELECT e.dsc, a.volume_ml FROM evaluations e JOIN annotations a ON a.scan_id = e.scan_id AND e.label = 1"
    ).fetchall()
    assert len(joined) == 1
    runs = con.execute("SELECT command, summary FROM runs").fetchall()
    assert runs[0][0] == "evaluate" and json.loads(runs[0][1])["cases"] == 2
    con.close()
    # a second invocation is a second run (views list the part files when connecting)
    assert _run("--pred", data / "pred", "--ref", data / "ref", "--catalog", root).exit_code == 0
    con = cat.connect()
    assert con.execute("SELECT count(DISTINCT run_id) FROM evaluations").fetchone()[0] == 2
    con.close()


def test_grid_mismatch_exits_non_zero_and_names_case(data):
    arr = np.zeros((10, 9, 10), np.uint8)
    arr[2:5, 2:5, 2:5] = 1
    write_label_map(data / "pred" / "case2.nii.gz", arr, affine_for((1.8, 1.8, 2.0), origin=(1.0, 2.0, 3.0)))
    res = _run("--pred", data / "pred", "--ref", data / "ref")
    assert res.exit_code == 1
    assert "case2" in res.output and "--resample" in res.output
    res = _run("--pred", data / "pred", "--ref", data / "ref", "--resample", "--out", data / "s.csv")
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(data / "s.csv")) >= 3


def test_vertebrae_and_lcc_options(data):
    out = data / "v.csv"
    res = _run("--pred", data / "pred", "--ref", data / "ref", "--vertebra-labels", "1-2", "--lcc-labels", "1", "--out", out)
    assert res.exit_code == 0, res.output
    assert "id.rate" in res.output and "CTSpine1K" in res.output
    v = pd.read_csv(data / "v.vertebrae.csv")
    assert {"case", "label", "distance", "identified", "ref_x", "pred_z"} <= set(v.columns)
    assert len(v) == 4


def test_bad_options(data):
    res = _run("--pred", data / "pred", "--ref", data / "ref", "--labels", data / "dataset.json", "--task", "x")
    assert res.exit_code == 1
    res = _run("--pred", data / "pred", "--ref", data / "ref", "--lcc-labels", "5-1")
    assert res.exit_code == 1
    res = _run("--pred", data / "pred", "--ref", data / "ref", "--out", data / "s.txt")
    assert res.exit_code == 1 and ".csv" in res.output


def test_workers(data):
    out = data / "w.csv"
    res = _run("--pred", data / "pred", "--ref", data / "ref", "--out", out, "--workers", "2")
    assert res.exit_code == 0, res.output
    res1 = _run("--pred", data / "pred", "--ref", data / "ref", "--out", data / "s.csv")
    assert res1.exit_code == 0
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(data / "s.csv"))
