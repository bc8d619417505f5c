"""A release kept in another arrangement (SAT-DS's folders) ingests to the same catalog rows."""

from __future__ import annotations

import re
import shutil

import pytest

from satds.catalog import Catalog
from satds.errors import SpecError
from satds.ingest import ingest
from satds.ingest.roots import locate
from satds.phantoms import generate
from satds.specs import get_spec


def _rows(cat: Catalog) -> tuple[list, list]:
    con = cat.connect()
    scans = con.sql("SELECT scan_id, case_id, patient_id, sat_id, official_split, fingerprint FROM scans ORDER BY scan_id").fetchall()
    ann = con.sql("SELECT scan_id, class_name, voxels, centroid_mm FROM annotations ORDER BY scan_id, class_name").fetchall()
    return scans, ann


def test_sat_ds_arrangement_gives_the_release_rows(tmp_path):
    release = generate("abdomenct1k", tmp_path / "release")
    sat = generate("abdomenct1k", tmp_path / "sat", arrangement="sat_ds")
    # The two copies really differ on disk: SAT-DS's Images/ + Masks/ against the publisher's parts + Mask/.
    assert sorted(p.name for p in sat.iterdir()) == ["Images", "Masks"]
    assert "Mask" in {p.name for p in release.iterdir()}
    got = {}
    for name, root in (("release", release), ("sat_ds", sat)):
        cat = Catalog(tmp_path / f"cat-{name}")
        s = ingest("abdomenct1k", root, cat, workers=1)
        assert (s.scans, s.failed, s.arrangement) == (3, 0, name), s.failures
        assert cat.connect().sql("SELECT arrangement FROM datasets").fetchall() == [(name,)]
        got[name] = _rows(cat)
    assert got["release"] == got["sat_ds"]
    assert len(got["release"][1]) == 3 * 4  # liver, kidney, spleen, pancreas in each of the 3 scans


def test_two_arrangements_side_by_side_are_an_error_naming_both(tmp_path):
    both = tmp_path / "both"
    generate("abdomenct1k", both)
    generate("abdomenct1k", both, arrangement="sat_ds")
    loc = locate(get_spec("abdomenct1k"), both)
    assert loc.ambiguous and [c.arrangement for c in loc.copies] == ["release", "sat_ds"]
    assert re.search(r"2 arrangements: release \(3 scans.*sat_ds \(3 scans.*--arrangement", loc.error())
    cat = Catalog(tmp_path / "cat")
    s = ingest("abdomenct1k", both, cat, workers=1)
    assert s.scans == 0 and s.failed == 1 and "--arrangement" in s.failures[0]
    # Naming the arrangement resolves it.
    s = ingest("abdomenct1k", both, cat, workers=1, arrangement="sat_ds")
    assert (s.scans, s.failed) == (3, 0)


def test_unknown_arrangement_names_the_known_ones(tmp_path):
    root = generate("abdomenct1k", tmp_path / "r")
    with pytest.raises(SpecError, match=r"known: \['release', 'sat_ds'\]"):
        locate(get_spec("abdomenct1k"), root, "nnunet")
    shutil.rmtree(root)
