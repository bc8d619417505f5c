"""Issue 13, items 15 and 17: a catalog reads the same from any folder; options that cannot work fail at once;
only `satds ingest` creates a catalog; `build` exits non-zero whenever a scan failed."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from satds.catalog import Catalog
from satds.cli import app
from satds.phantoms import generate

from _robust import flat, tree_digest

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args], terminal_width=400)


@pytest.fixture
def ingested(tmp_path, monkeypatch):
    """msd_liver (3 scans) ingested into ./cat from tmp_path/a, with relative paths everywhere."""
    monkeypatch.delenv("SATDS_CATALOG", raising=False)
    monkeypatch.delenv("SATDS_MAX_VOXELS", raising=False)
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    generate("msd_liver", tmp_path / "a" / "raw")
    r = _run("ingest", "msd_liver", "--root", "raw", "-C", "cat", "-w", "1")
    assert r.exit_code == 0, r.output
    return tmp_path


def test_relative_build_out_reads_the_same_from_another_folder(ingested, monkeypatch):
    r = _run("build", "-C", "cat", "--out", "normalised_here", "-w", "1")
    assert r.exit_code == 0 and "3 built" in r.output, r.output
    paths = [p for (p,) in Catalog(ingested / "a" / "cat").connect().execute("SELECT normalised_image FROM scans").fetchall()]
    assert all(p.startswith(str(ingested / "a" / "normalised_here")) for p in paths), paths  # stored absolute

    (ingested / "b").mkdir()
    monkeypatch.chdir(ingested / "b")
    cat = ingested / "a" / "cat"
    r = _run("build", "-C", cat, "--out", "../a/normalised_here", "-w", "1")
    assert r.exit_code == 0 and "0 built, 3 up to date" in r.output, r.output  # nothing rebuilt
    r = _run("split", "-C", cat)
    assert r.exit_code == 0, r.output
    r = _run("export", "nnunet", "-C", cat, "--classes", "liver", "--datasets", "msd_liver", "--name", "L", "--dataset-id", "515", "--source", "normalised", "--out", "raw", "--dry-run")
    assert r.exit_code == 0 and "not built" not in r.output, r.output
    r = _run("qc", "-C", cat, "-w", "1", "--no-source")
    assert r.exit_code == 0 and "3 previews" in r.output, r.output
    previews = [p for (p,) in Catalog(cat).connect().execute("SELECT preview FROM qc_flags WHERE \"check\" = 'preview'").fetchall()]
    assert len(previews) == 3 and all(p.startswith(str(cat / "qc")) for p in previews)


@pytest.mark.parametrize("spacing", ["nan,1,1", "inf,1,1", "1e-6,1,1", "0,1,3", "-1,1,3", "1,1"])
def test_spacing_that_cannot_work_is_refused_before_anything_runs(ingested, spacing):
    cat = ingested / "a" / "cat"
    before = tree_digest(cat)
    r = _run("build", "-C", cat, "--spacing", spacing)
    assert r.exit_code == 2, r.output
    assert "Invalid value for '--spacing'" in flat(r) and ("from 0.01 to 100 mm" in flat(r) or "three numbers" in flat(r))
    assert tree_digest(cat) == before  # no run recorded, nothing written


def test_unknown_or_uningested_datasets_are_errors(ingested):
    cat = ingested / "a" / "cat"
    for cmd in (["build"], ["qc", "--no-source"]):
        r = _run(*cmd, "-C", cat, "--datasets", "nope")
        assert r.exit_code == 1 and "unknown dataset 'nope'" in flat(r), r.output
        r = _run(*cmd, "-C", cat, "--datasets", "msd_livr")
        assert r.exit_code == 1 and "did you mean msd_liver" in flat(r), r.output
        r = _run(*cmd, "-C", cat, "--datasets", "msd_liver,msd_spleen")
        assert r.exit_code == 1 and "dataset 'msd_spleen' is not in the catalog" in flat(r), r.output


def test_only_ingest_creates_a_catalog(ingested, monkeypatch):
    typo = ingested / "a" / "catt"
    for cmd in (["build"], ["qc"], ["split"], ["query", "SELECT 1"], ["report"], ["catalog", "info"],
                ["export", "nnunet", "--classes", "liver", "--datasets", "msd_liver", "--name", "L", "--dataset-id", "515", "--dry-run"]):
        r = _run(*cmd, "-C", typo)
        assert r.exit_code == 1, (cmd, r.output)
        assert f"no catalog at {typo} (from --catalog)" in flat(r), (cmd, r.output)
    monkeypatch.setenv("SATDS_CATALOG", str(typo))
    r = _run("build")
    assert r.exit_code == 1 and "(from SATDS_CATALOG)" in flat(r)
    (ingested / "ref").mkdir()
    r = _run("evaluate", "--pred", ingested / "ref", "--ref", ingested / "ref", "--catalog", typo)
    assert r.exit_code == 1 and "no catalog at" in flat(r)
    assert not typo.exists()
    (ingested / "a" / "empty").mkdir()
    r = _run("build", "-C", ingested / "a" / "empty")
    assert r.exit_code == 1 and "is not a satds catalog" in flat(r)
    assert not any((ingested / "a" / "empty").iterdir())


def test_build_exits_non_zero_when_scans_fail(ingested, monkeypatch):
    cat = ingested / "a" / "cat"
    raw = tree_digest(ingested / "a" / "raw")
    # A respaced grid larger than SATDS_MAX_VOXELS (the sources, 40x36x24, are under it) fails every scan
    # with one clear message each.
    monkeypatch.setenv("SATDS_MAX_VOXELS", "100000")
    r = _run("build", "-C", cat, "-w", "1", "--spacing", "0.1,0.1,0.1")
    assert r.exit_code == 1, r.output
    assert "0 built" in r.output and "3 failed" in r.output
    assert "respacing to [0.1, 0.1, 0.1] mm gives a grid of" in flat(r)
    assert "above the limit of 100,000 (choose a coarser --spacing, or set SATDS_MAX_VOXELS)" in flat(r)
    rows = Catalog(cat).connect().execute("SELECT \"case\", file, stage FROM failures ORDER BY \"case\"").fetchall()
    assert rows == [(c, "", "build") for c in ("liver_0", "liver_1", "liver_7")]
    # One failed scan out of three is still exit 1; the other two are built.
    monkeypatch.delenv("SATDS_MAX_VOXELS")
    bad = ingested / "a" / "raw" / "imagesTr" / "liver_7.nii.gz"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # the release is damaged on disk after ingest
    r = _run("build", "-C", cat, "-w", "1")
    assert r.exit_code == 1 and "2 built" in r.output and "1 failed" in r.output, r.output
    [(case, file, msg)] = Catalog(cat).connect().execute("SELECT \"case\", file, error FROM failures WHERE stage = 'build' ORDER BY gen DESC LIMIT 1").fetchall()
    assert (case, file) == ("liver_7", "imagesTr/liver_7.nii.gz")  # relative to the dataset root
    assert msg.startswith("msd_liver/liver_7: imagesTr/liver_7.nii.gz: ") and "truncated" in msg
    bad.write_bytes(data)
    assert tree_digest(ingested / "a" / "raw") == raw
