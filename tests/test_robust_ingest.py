"""Bad names and bad release tables: one clear failure naming dataset, case and file; the rest goes on.

Each test first makes the failure happen on a phantom release, then checks the message, the `failures`
row, the good cases kept and the sources unchanged.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
from typer.testing import CliRunner

from satds.cli import app
from satds.ingest import ingest
from satds.phantoms import generate

from _robust import tree_digest

runner = CliRunner()


def rows(catalog, sql):
    con = catalog.connect()
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def liver(tmp_path):
    return generate("msd_liver", tmp_path / "Task03_Liver")


def test_non_utf8_file_name_is_one_failure_and_the_rest_is_ingested(liver, catalog):
    # A case copied from a Latin-1 system: its file names hold the byte 0xff (not UTF-8).
    root = os.fsencode(liver)
    for sub in (b"imagesTr", b"labelsTr"):
        shutil.copy(os.path.join(root, sub, b"liver_1.nii.gz"), os.path.join(root, sub, b"liver_\xff9.nii.gz"))
    before = tree_digest(liver)
    s = ingest("msd_liver", liver, catalog, workers=1)
    assert (s.scans, s.failed) == (3, 1)
    [(case, file, kind, msg)] = rows(catalog, 'SELECT "case", file, error_type, error FROM failures')
    assert (case, file, kind) == ("liver_\\xff9", "imagesTr/liver_\\xff9.nii.gz", "ReadError")
    assert msg.startswith("msd_liver/liver_\\xff9: imagesTr/liver_\\xff9.nii.gz: the file name is not valid UTF-8")
    assert sorted(r[0] for r in rows(catalog, "SELECT case_id FROM scans")) == ["liver_0", "liver_1", "liver_7"]
    assert tree_digest(liver) == before
    # The CLI prints the escaped name and exits 0: the good cases are in.
    r = runner.invoke(app, ["ingest", "msd_liver", "--root", str(liver), "-C", str(catalog.root), "-w", "1"])
    assert r.exit_code == 0, r.output
    assert "liver_\\xff9: imagesTr/liver_\\xff9.nii.gz: the file name is not valid UTF-8" in r.output


def test_corrupt_dataset_json_names_the_file(liver, catalog):
    good = ingest("msd_liver", liver, catalog, workers=1)
    assert good.scans == 3
    text = (liver / "dataset.json").read_text()
    (liver / "dataset.json").write_text(text[: len(text) // 2])  # a download cut short
    before = tree_digest(liver)
    s = ingest("msd_liver", liver, catalog, workers=1)
    assert (s.scans, s.failed) == (0, 1)
    [(case, file, kind, msg)] = rows(catalog, 'SELECT "case", file, error_type, error FROM failures')
    assert (case, file, kind) == ("", "dataset.json", "ReadError")
    assert msg.startswith("msd_liver: dataset.json: the release's label table is not valid JSON (")
    r = runner.invoke(app, ["ingest", "msd_liver", "--root", str(liver), "-C", str(catalog.root), "-w", "1"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "msd_liver: dataset.json: the release's label table is not valid JSON" in r.output
    assert tree_digest(liver) == before
    # A JSON file that is not a label table (a list) is named the same way.
    (liver / "dataset.json").write_text(json.dumps(["liver", "cancer"]))
    s = ingest("msd_liver", liver, catalog, workers=1)
    assert s.failed == 1 and "dataset.json: the release's label table is not valid JSON (expected an object" in s.failures[0]
    # Fixed: every case is back (read again: the label table is one of each case's inputs).
    (liver / "dataset.json").write_text(text)
    s = ingest("msd_liver", liver, catalog, workers=1)
    assert (s.scans, s.failed) == (3, 0)
    assert rows(catalog, "SELECT count(*) FROM failures") == [(0,)]


def test_split_table_in_another_encoding_names_the_file(tmp_path, catalog):
    root = generate("totalsegmentator", tmp_path / "Totalsegmentator_dataset_v201")
    meta = root / "meta.csv"
    meta.write_bytes(meta.read_bytes().replace(b";A;", ";Universitätsspital;".encode("latin-1"), 1))
    before = tree_digest(root)
    s = ingest("totalsegmentator", root, catalog, workers=1)
    assert (s.scans, s.failed) == (0, 1)
    [(file, kind, msg)] = rows(catalog, "SELECT file, error_type, error FROM failures")
    assert (file, kind) == ("meta.csv", "ReadError")
    assert msg.startswith("totalsegmentator: meta.csv: the release's split table cannot be read (UnicodeDecodeError")
    assert tree_digest(root) == before


def test_phantom_with_an_unknown_key_is_one_clear_line(tmp_path):
    r = runner.invoke(app, ["phantom", "msd_livr", "--out", str(tmp_path / "x")])
    assert r.exit_code == 1
    assert isinstance(r.exception, SystemExit) and "Traceback" not in r.output
    assert "error: unknown dataset 'msd_livr'" in r.output and "msd_liver" in r.output
    assert not (tmp_path / "x").exists()
