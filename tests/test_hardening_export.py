"""Issue 13, item 14: `satds export nnunet` never deletes files satds did not write."""

from __future__ import annotations

import hashlib

import pytest
from _export_phantoms import build_catalog
from _robust import flat, tree_digest
from typer.testing import CliRunner

from satds.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory):
    return build_catalog(tmp_path_factory.mktemp("h14"), ["msd_liver"]).root


def _export(catalog_dir, out, *extra):
    args = ["export", "nnunet", "--classes", "liver", "--datasets", "msd_liver", "--name", "Liver", "--dataset-id", "514", "--out", str(out), "-C", str(catalog_dir), *extra]
    return runner.invoke(app, args, terminal_width=400)


def test_a_folder_satds_did_not_write_is_refused_then_kept_aside(catalog_dir, tmp_path):
    task = tmp_path / "Dataset514_Liver"
    (task / "imagesTr").mkdir(parents=True)
    (task / "notes.txt").write_text("my annotations protocol")
    (task / "imagesTr" / "mine_0000.nii.gz").write_bytes(b"user data")
    before = tree_digest(task)

    r = _export(catalog_dir, tmp_path)
    assert r.exit_code == 1, r.output
    assert "was not written by satds (no satds_export.json): imagesTr/mine_0000.nii.gz, notes.txt; use --overwrite" in flat(r)
    assert tree_digest(task) == before  # nothing touched
    r = _export(catalog_dir, tmp_path, "--dry-run")
    assert r.exit_code == 1 and "--overwrite" in flat(r)  # a dry run says so too

    r = _export(catalog_dir, tmp_path, "--overwrite")
    assert r.exit_code == 0, r.output
    assert (task / "satds_export.json").exists() and "mine_0000.nii.gz" not in str(list(task.rglob("*")))
    [kept] = [d for d in tmp_path.iterdir() if d.name.startswith("replaced-Dataset514_Liver-")]
    assert tree_digest(kept) == before  # the user's files, byte for byte, beside the new export
    assert kept.name in r.output.replace("\n", "")
    assert not [d for d in tmp_path.iterdir() if d.name.startswith(".")]  # no hidden leftovers


def test_satds_replaces_only_what_it_wrote(catalog_dir, tmp_path):
    task = tmp_path / "Dataset514_Liver"
    assert _export(catalog_dir, tmp_path).exit_code == 0
    first = tree_digest(task)
    assert _export(catalog_dir, tmp_path).exit_code == 0  # its own export: replaced silently
    assert set(tree_digest(task)) == set(first)

    (task / "labelsTr" / "fixed_by_hand.nii.gz").write_bytes(b"a corrected mask")
    r = _export(catalog_dir, tmp_path)
    assert r.exit_code == 1 and "holds files satds did not write: labelsTr/fixed_by_hand.nii.gz;" in flat(r)
    assert (task / "labelsTr" / "fixed_by_hand.nii.gz").read_bytes() == b"a corrected mask"

    r = _export(catalog_dir, tmp_path, "--overwrite")
    assert r.exit_code == 0, r.output
    [kept] = [d for d in tmp_path.iterdir() if d.name.startswith("replaced-")]
    assert tree_digest(kept) == {"labelsTr/fixed_by_hand.nii.gz": hashlib.sha256(b"a corrected mask").hexdigest()}
    assert set(tree_digest(task)) == set(first)
