"""The command line: help text, the `satds datasets` JSON interface, `satds query` output formats."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from satds.cli import app

runner = CliRunner()


def test_help_lists_every_stage():
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    for cmd in ("ingest", "build", "split", "export", "train", "predict", "pseudolabel", "evaluate", "qc", "report", "query", "datasets", "ontology", "demo", "phantom", "catalog"):
        assert cmd in r.output, cmd


def test_datasets_json_is_the_documented_interface():
    r = runner.invoke(app, ["datasets", "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert len(rows) >= 79
    for row in rows:
        assert {"key", "title", "modality", "region", "licence", "implemented", "scans", "classes"} <= set(row)
        assert row["modality"] in ("CT", "MRI", "PET") and isinstance(row["implemented"], bool) and row["classes"]
    kits = next(r for r in rows if r["key"] == "kits19")
    assert set(kits["classes"]) == {"kidney", "kidney tumor", "left kidney", "right kidney"}
    assert next(r for r in rows if r["key"] == "ctspine1k")["redistributable"] is False


def test_unknown_dataset_key_suggests_close_ones(tmp_path):
    r = runner.invoke(app, ["ingest", "msd_livr", "--root", str(tmp_path)])
    assert r.exit_code == 1
    assert "unknown dataset 'msd_livr'" in r.output and "msd_liver" in r.output


def test_query_formats(tmp_path):
    from satds.catalog import Catalog
    from satds.ingest import ingest
    from satds.phantoms import generate

    cat = Catalog(tmp_path / "cat")
    ingest("msd_spleen", generate("msd_spleen", tmp_path / "spleen"), cat, workers=1)
    sql = "SELECT s.case_id, a.class_name, a.voxels FROM annotations a JOIN scans s USING (scan_id) ORDER BY s.case_id"
    r = runner.invoke(app, ["query", sql, "-C", str(cat.root), "--format", "csv"])
    assert r.exit_code == 0 and r.output.splitlines()[0] == "case_id,class_name,voxels"
    assert [line.split(",")[0] for line in r.output.splitlines()[1:]] == ["spleen_10", "spleen_2"]
    r = runner.invoke(app, ["query", sql, "-C", str(cat.root), "--format", "json"])
    assert [row["class_name"] for row in json.loads(r.output)] == ["spleen", "spleen"]
    out = tmp_path / "a.parquet"
    r = runner.invoke(app, ["query", sql, "-C", str(cat.root), "--format", "parquet", "--out", str(out)])
    assert r.exit_code == 0 and out.exists()
    r = runner.invoke(app, ["query", "SELECT nope FROM scans", "-C", str(cat.root)])
    assert r.exit_code == 1 and "nope" in r.output
