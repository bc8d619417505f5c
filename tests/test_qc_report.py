"""satds qc + satds report on phantom releases: flags in the catalog, the HTML page, and a real browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from satds.catalog import Catalog
from satds.qc import run_qc
from satds.qc.report import write_report

DATASETS = ("msd_spleen", "kits23")


@pytest.fixture(scope="module")
def qc_catalog(tmp_path_factory):
    from satds.build import build
    from satds.ingest import ingest
    from satds.phantoms import generate
    from satds.split import run_split

    tmp = tmp_path_factory.mktemp("qc")
    cat = Catalog(tmp / "catalog")
    for key in DATASETS:
        ingest(key, generate(key, tmp / key), cat, workers=1)
    b = build(cat, workers=1)
    assert b.failed == 0, b.failures
    run_split(cat)
    # A failure for the report's failures table: a dataset whose only case has a broken image.
    bad = generate("msd_liver", tmp / "msd_liver")
    img = next((bad / "imagesTr").glob("*.nii.gz"))
    img.write_bytes(b"not a nifti")
    ingest("msd_liver", bad, cat, workers=1)
    summary = run_qc(cat, workers=1)
    return cat, summary, tmp


def flags(cat, where="TRUE"):
    return cat.connect().execute(f'SELECT scan_id, dataset, class_id, "check", severity, message, preview FROM qc_flags WHERE {where}').fetchall()


def test_qc_writes_a_preview_per_built_scan(qc_catalog):
    cat, s, _ = qc_catalog
    con = cat.connect()
    built = {r[0] for r in con.execute("SELECT scan_id FROM scans WHERE status = 'built'").fetchall()}
    rows = flags(cat, "\"check\" = 'preview'")
    assert {r[0] for r in rows} == built and s.previews == len(built)
    for r in rows:
        p = Path(r[6])
        assert p.exists() and p.suffix == ".png"
        with Image.open(p) as im:
            assert im.width > 600
    # every flag of a scan carries its preview path
    assert all(r[6] for r in flags(cat) if r[0] in built)
    # one run: every row shares run_id
    assert con.execute("SELECT count(DISTINCT run_id) FROM qc_flags").fetchall()[0][0] == 1
    assert con.execute("SELECT count(*) FROM runs WHERE command = 'qc'").fetchall()[0][0] >= 1


def test_qc_flags_the_absent_phantom_class(qc_catalog):
    cat, _, _ = qc_catalog
    # kits23's phantom leaves the cyst out of case_00001
    rows = flags(cat, "\"check\" = 'empty_class'")
    assert ("kits23/case_00001", "kits23", "kidney_cyst") in {r[:3] for r in rows}


def test_qc_on_some_datasets_keeps_the_others(qc_catalog):
    cat, _, _ = qc_catalog
    before = {(r[0], r[3], r[2]) for r in flags(cat)}
    s = run_qc(cat, datasets=["kits23"], workers=1, source=False)
    assert s.carried > 0
    after = {(r[0], r[3], r[2]) for r in flags(cat)}
    assert {x for x in before if x[0].startswith("msd_spleen")} == {x for x in after if x[0].startswith("msd_spleen")}
    with pytest.raises(ValueError, match="not in the catalog"):
        run_qc(cat, datasets=["nope"], workers=1)


@pytest.fixture(scope="module")
def report(qc_catalog):
    cat, _, tmp = qc_catalog
    return write_report(cat, tmp / "out" / "report.html")


def test_report_names_every_dataset_and_embeds_its_images(report, qc_catalog):
    cat, _, _ = qc_catalog
    text = report.read_text()
    keys = [r[0] for r in cat.connect().execute("SELECT dataset FROM datasets").fetchall()]
    assert sorted(keys) == ["kits23", "msd_liver", "msd_spleen"]
    for k in keys:
        assert f'<section class="dataset" id="ds-{k}"' in text
    # self-contained: every image is a data URI, nothing fetched from elsewhere
    srcs = re.findall(r'<img[^>]* src="([^"]+)"', text)
    assert srcs and all(s.startswith("data:image/") for s in srcs)
    assert len([s for s in srcs if s.startswith("data:image/jpeg")]) >= 4  # previews
    assert len([s for s in srcs if s.startswith("data:image/png")]) >= 1 + len(keys)  # overview + a plot per dataset
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org", "")
    # summary, flags, failures, splits
    for sec in ('id="summary"', 'id="flags"', 'id="failures"', 'id="splits"', 'class="datasets"', 'class="classes"', 'class="failures"', 'class="splits"'):
        assert sec in text, sec
    assert "empty_class" in text and "kidney cyst" in text and "msd_liver" in text
    assert report.stat().st_size < 5_000_000


def test_report_without_qc_run(tmp_path, qc_catalog):
    cat = Catalog(tmp_path / "empty")
    p = write_report(cat, tmp_path / "r.html")
    assert "satds qc" in p.read_text()


def test_cli_qc_and_report(qc_catalog, tmp_path):
    from satds.cli import app

    cat, _, _ = qc_catalog
    r = CliRunner().invoke(app, ["qc", "--catalog", str(cat.root), "--datasets", "msd_spleen", "-w", "1", "--no-source", "--out", str(tmp_path / "qc")])
    assert r.exit_code == 0, r.output
    assert "QC run" in r.output and (tmp_path / "qc" / "previews" / "msd_spleen").is_dir()
    r = CliRunner().invoke(app, ["report", "--catalog", str(cat.root), "--out", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "r.html").exists() and "report:" in r.output
    r = CliRunner().invoke(app, ["qc", "--catalog", str(cat.root), "--datasets", "nope"])
    assert r.exit_code != 0


# ---------------------------------------------------------------- a real browser
def chromium() -> str | None:
    env = os.environ.get("SATDS_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def _chrome(args: list[str], tmp: Path, timeout: float = 120.0) -> subprocess.CompletedProcess:
    exe = chromium()
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars", f"--user-data-dir={tmp}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(report, tmp_path):
    if chromium() is None:
        pytest.skip("no chromium binary on PATH (apt-get install chromium, or set SATDS_CHROMIUM); .ci/run installs it")
    shot = tmp_path / "shot.png"
    r = _chrome([f"--screenshot={shot}", "--window-size=1400,2000", report.resolve().as_uri()], tmp_path / "profile")
    assert shot.exists(), r.stderr[-2000:]
    with Image.open(shot) as im:
        assert im.size == (1400, 2000)
        px = np.asarray(im.convert("RGB")).astype(int)
    flat = px.reshape(-1, 3)
    non_white = (flat.min(axis=1) < 235).mean()
    assert non_white > 0.08, non_white  # not a blank page
    colours = len(np.unique(flat[:, 0] * 65536 + flat[:, 1] * 256 + flat[:, 2]))
    assert colours > 1000, colours  # images rendered, not just text
    # The plots and previews are colourful: saturated pixels where the images are (the lower part of the page).
    body = px[300:]
    sat = body.max(axis=2) - body.min(axis=2)
    assert (sat > 80).sum() > 5000

    r = _chrome(["--dump-dom", report.resolve().as_uri()], tmp_path / "profile2")
    dom = r.stdout
    assert "<html" in dom, r.stderr[-2000:]
    for k in ("kits23", "msd_liver", "msd_spleen"):
        assert re.search(rf'<section[^>]*id="ds-{k}"', dom), k
    imgs = re.findall(r'<img[^>]*src="data:image/(?:png|jpeg);base64,', dom)
    assert len(imgs) >= 8
    assert "<table" in dom and "QC flags" in dom


def test_unreadable_source_and_failed_scan_are_flagged(qc_catalog, tmp_path, monkeypatch):
    from satds.qc import engine

    job = engine.ScanJob({"scan_id": "x/y", "dataset": "msd_spleen", "case_files": "{}"}, str(tmp_path / "gone"), [], None, {}, True)
    res = engine.qc_scan(job)
    assert [f["check"] for f in res["flags"]] == ["source_unreadable"] and res["preview"] is None

    cat, _, _ = qc_catalog
    copy = Catalog(tmp_path / "cat")
    shutil.copytree(cat.root, copy.root, ignore=shutil.ignore_patterns("normalised", "qc"))

    def boom(job):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(engine, "qc_scan", boom)
    s = run_qc(copy, workers=1, datasets=["msd_spleen"])
    assert s.failed == s.scans > 0
    rows = flags(copy, "\"check\" = 'qc_failed'")
    assert rows and all("disk on fire" in r[5] and r[4] == "error" for r in rows)
