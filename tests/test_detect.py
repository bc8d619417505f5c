"""``satds detect``: a folder of downloads, each release found once, copies reported, and --ingest; the error
when nothing matches names the arrangements tried and the nearest files."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from satds.catalog import Catalog
from satds.cli import app
from satds.ingest import ingest
from satds.ingest.detect import detect
from satds.phantoms import generate
from satds.specs import get_spec

runner = CliRunner()

# 20 releases: three at the top, the others one and two folders down, two as SAT-DS's or nnU-Net's arrangement.
TREE = {
    "msd_liver": "downloads/Task03_Liver",
    "msd_spleen": "Task09_Spleen",
    "kits19": "downloads/kits/kits19",
    "btcv": "downloads/BTCV",
    "abdomenct1k": "AbdomenCT-1K",
    "totalsegmentator": "downloads/more/Totalsegmentator_dataset_v201",
    "totalsegmentator_v1": "downloads/more/Totalsegmentator_dataset",
    "word": "downloads/WORD-V0.1.0",
    "flare22": "downloads/FLARE22",
    "verse": "spine/verse",
    "ctspine1k": "spine/CTSpine1K",
    "ribfrac": "downloads/ribfrac",
    "ct_org": "downloads/CT-ORG",
    "luna16": "lung/LUNA16",
    "pddca": "downloads/PDDCA",
    "hecktor2022": "downloads/hecktor",
    "brats2023_gli": "brain",
    "acdc": "downloads/ACDC/database",
    "covid19": "lung/COVID-19-CT-Seg_20cases",
    "sega": "downloads/SegA",
}
ARRANGED = {"kits19": "nnunet", "abdomenct1k": "sat_ds"}  # an nnU-Net raw folder, SAT-DS's Images/ + Masks/


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    root = tmp_path_factory.mktemp("detect") / "data"
    for key, where in TREE.items():
        generate(key, root / where, arrangement=ARRANGED.get(key) or "release")
    # One release twice: a second copy of the Decathlon liver task in another folder.
    generate("msd_liver", root / "backup" / "Task03_Liver")
    return root


def test_detect_finds_each_release_once_and_reports_the_copy(downloads):
    found = detect(downloads)
    by_key = {d.key: d for d in found.found}
    assert set(by_key) == set(TREE)  # each dataset once, no spec claiming another's files
    dup = by_key["msd_liver"]
    assert dup.ambiguous and sorted(found.index.where(c.anchor) for c in dup.location.copies) == ["backup/Task03_Liver", "downloads/Task03_Liver"]
    for key, where in TREE.items():
        if key == "msd_liver":
            continue
        d = by_key[key]
        assert not d.ambiguous and d.resolved, key
        c = d.copy
        assert c.folder == downloads / where or c.folder.parent == downloads / where, (key, c.folder)
        assert c.arrangement == (ARRANGED.get(key) or "release"), key
        assert c.scans == get_spec(key).expect.scans and not c.found.problems, key
    assert by_key["totalsegmentator_v1"].views == ["totalsegmentator_cardiac", "totalsegmentator_muscles", "totalsegmentator_organs", "totalsegmentator_ribs", "totalsegmentator_vertebrae"]
    assert by_key["totalsegmentator"].views == ["totalsegmentator_v2"]


def test_detect_cli_then_ingest_builds_the_catalog(downloads, tmp_path):
    r = runner.invoke(app, ["detect", str(downloads), "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = {x["dataset"]: x for x in json.loads(r.output)}
    assert rows["kits19"]["arrangement"] == "nnunet" and rows["kits19"]["relative_root"] == "downloads/kits/kits19"
    assert rows["msd_liver"]["ambiguous"] and "2 copies of the release" in rows["msd_liver"]["error"]
    cat = tmp_path / "catalog"
    r = runner.invoke(app, ["detect", str(downloads), "--ingest", "-C", str(cat), "-w", "1"])
    assert r.exit_code == 0, r.output
    assert "not ingested (several copies): msd_liver" in r.output
    con = Catalog(cat).connect()
    got = dict(con.sql("SELECT dataset, count(*) FROM scans GROUP BY ALL").fetchall())
    assert got == {k: get_spec(k).expect.scans for k in TREE if k != "msd_liver"}
    roots = dict(con.sql("SELECT dataset, root FROM datasets").fetchall())
    assert roots["verse"] == str(downloads / "spine" / "verse")
    assert con.sql("SELECT count(*) FROM failures").fetchall() == [(0,)]


def test_ingest_all_is_detect_ingest(tmp_path):
    generate("msd_spleen", tmp_path / "data" / "Task09_Spleen")
    generate("btcv", tmp_path / "data" / "x" / "BTCV")
    r = runner.invoke(app, ["ingest", "--all", "--root", str(tmp_path / "data"), "-C", str(tmp_path / "cat"), "-w", "1"])
    assert r.exit_code == 0, r.output
    assert "msd_spleen: 2 scans ingested" in r.output and "btcv: 3 scans ingested" in r.output
    r = runner.invoke(app, ["ingest", "msd_spleen", "--all", "--root", str(tmp_path / "data")])
    assert r.exit_code != 0 and "--all finds the datasets" in r.output


def test_no_match_names_the_arrangements_and_the_nearest_files(tmp_path, catalog):
    """AbdomenCT-1K's files moved into folders of the user's own naming: the error says what satds reads and
    where the nearest files are, so the user knows what to move or which option to pass."""
    release = generate("abdomenct1k", tmp_path / "release")
    mine = tmp_path / "mine"
    (mine / "CT").mkdir(parents=True)
    (mine / "seg").mkdir()
    n = 0
    for p in release.rglob("*_0000.nii.gz"):
        shutil.copy(p, mine / "CT" / p.name)
        n += 1
    for p in (release / "Mask").iterdir():
        shutil.copy(p, mine / "seg" / p.name)
    s = ingest("abdomenct1k", mine, catalog, workers=1)
    assert (s.scans, s.failed) == (0, 1)
    msg = s.failures[0]
    assert "no scans of abdomenct1k found under the root" in msg
    assert "AbdomenCT-1K-ImagePart*/Case_*_0000.nii.gz + Mask/Case_*.nii.gz (release)" in msg
    assert "Images/Case_*_0000.nii.gz + Masks/Case_*.nii.gz (sat_ds)" in msg
    assert f"{n} files like Case_00001_0000.nii.gz under CT/" in msg
    # A folder with nothing alike says so.
    (tmp_path / "empty" / "notes").mkdir(parents=True)
    (tmp_path / "empty" / "notes" / "readme.txt").write_text("hello")
    s = ingest("abdomenct1k", tmp_path / "empty", catalog, workers=1)
    assert "No file under it looks like the release's files" in s.failures[0]


def test_a_crashing_discovery_hook_is_that_copys_problem_not_the_runs(tmp_path, monkeypatch, catalog):
    """A hook that raises on odd files (PermissionError here) fails its own release, naming the file; detect
    goes on with every other spec, and ingest records one failure."""
    from satds.ingest import hooks

    root = tmp_path / "data"
    generate("adrenal_acc_ki67", root / "tcia")
    generate("msd_spleen", root / "Task09_Spleen")
    locked = root / "tcia" / "Adrenal-ACC-Ki67-Seg" / "LICENSE"

    def unreadable(spec, layout, folder, **kw):
        raise PermissionError(13, "Permission denied", str(locked))

    hooks.get_hook("tcia_dicom_seg", "discover")  # registers the built-in hooks
    monkeypatch.setitem(hooks._HOOKS["tcia_dicom_seg"], "discover", unreadable)
    found = {d.key: d for d in detect(root).found}
    assert found["msd_spleen"].resolved and found["msd_spleen"].copy.scans == get_spec("msd_spleen").expect.scans
    bad = found["adrenal_acc_ki67"]
    assert not bad.resolved
    [problem] = bad.copy.found.problems
    assert (type(problem).__name__, problem.file) == ("ReadError", "Adrenal-ACC-Ki67-Seg/LICENSE")
    assert "cannot discover the cases (PermissionError: [Errno 13] Permission denied" in str(problem)
    s = ingest("adrenal_acc_ki67", root / "tcia", catalog, workers=1)
    assert (s.scans, s.failed) == (0, 1)
    assert catalog.connect().execute("SELECT file, error_type FROM failures").fetchall() == [("Adrenal-ACC-Ki67-Seg/LICENSE", "ReadError")]


def test_detect_ingest_reads_the_copy_it_reported(tmp_path):
    """Named: one image part of AbdomenCT-1K, whose release starts a level up. detect reports the one scan
    under the named folder, and --ingest ingests that copy as reported, not the whole release."""
    part = generate("abdomenct1k", tmp_path / "AbdomenCT-1K") / "AbdomenCT-1K-ImagePart1"
    [d] = detect(part).found
    assert [c.case_id for c in d.copy.cases] == ["Case_00001"] and d.copy.anchor.up == 1
    r = runner.invoke(app, ["detect", str(part), "--ingest", "-C", str(tmp_path / "cat"), "-w", "1"])
    assert r.exit_code == 0, r.output
    assert Catalog(tmp_path / "cat").connect().sql("SELECT case_id FROM scans").fetchall() == [("Case_00001",)]
