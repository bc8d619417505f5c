"""The export, pseudolabel, train and predict commands: help, ad-hoc dry run, clear failures."""

from __future__ import annotations

import pytest
from _export_phantoms import build_catalog
from typer.testing import CliRunner

from satds.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "args, words",
    [
        (["export", "nnunet", "--help"], ["--task", "--classes", "--dataset-id", "--dry-run", "--policy", "--pseudo"]),
        (["pseudolabel", "--help"], ["--task", "--predictions", "--out"]),
        (["train", "--help"], ["--task", "--config", "--fold", "--trainer", "--device", "--root", "--no-plan"]),
        (["predict", "--help"], ["--task", "--input", "--split", "--out", "--disable-tta"]),
    ],
)
def test_help(args, words):
    r = runner.invoke(app, args, terminal_width=200)
    assert r.exit_code == 0, r.output
    for w in words:
        assert w in r.output


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory):
    return build_catalog(tmp_path_factory.mktemp("cli"), ["msd_liver", "msd_spleen"]).root


def test_adhoc_dry_run_and_export(catalog_dir, tmp_path):
    base = ["export", "nnunet", "--classes", "liver,spleen", "--datasets", "msd_liver,msd_spleen", "--name", "LiverSpleen", "--dataset-id", "502", "--out", str(tmp_path), "-C", str(catalog_dir)]
    r = runner.invoke(app, base + ["--dry-run"], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "dry run" in r.output and "3=ignore" in r.output and not any(tmp_path.iterdir())
    r = runner.invoke(app, base, terminal_width=200)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "Dataset502_LiverSpleen" / "dataset.json").exists()
    # the ad-hoc task is now found by name (train and predict use this)
    r = runner.invoke(app, ["export", "nnunet", "--task", "LiverSpleen", "--out", str(tmp_path), "-C", str(catalog_dir), "--dry-run"], terminal_width=200)
    assert r.exit_code == 0, r.output


def test_failures_exit_non_zero(catalog_dir, tmp_path):
    r = runner.invoke(app, ["export", "nnunet", "--classes", "liver,wombat", "--datasets", "msd_liver", "--name", "X", "--dataset-id", "520", "--out", str(tmp_path), "-C", str(catalog_dir)], terminal_width=200)
    assert r.exit_code == 1 and "wombat" in r.output
    r = runner.invoke(app, ["export", "nnunet", "--classes", "liver", "--datasets", "msd_liver", "--out", str(tmp_path)], terminal_width=200)
    assert r.exit_code == 1 and "--name" in r.output
    r = runner.invoke(app, ["export", "nnunet", "--task", "nosuchtask", "--out", str(tmp_path)], terminal_width=200)
    assert r.exit_code == 1 and "no task recipe" in r.output
    r = runner.invoke(app, ["predict", "--task", "universal33", "--split", "test", "--out", str(tmp_path / "p"), "--root", str(tmp_path)], terminal_width=200)
    assert r.exit_code == 1 and "does not exist; export the task first" in r.output
