"""A release kept in another arrangement (SAT-DS's folders, conversions SAT-DS asks for) ingests to the
same catalog rows as the publisher's arrangement, for every arrangement every spec declares; and the files
SAT-DS's processor writes into a release's folders leave its ingest unchanged."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from satds.catalog import Catalog
from satds.errors import SpecError
from satds.ingest import ingest
from satds.ingest.discover import discover_arrangement
from satds.phantoms import generate
from satds.specs import all_specs, get_spec
from satds.specs.model import RELEASE

# Every (spec, alternative arrangement) pair whose spec has a phantom.
PAIRS = [(s.key, name) for s in all_specs() if s.phantom.cases for name in s.arrangements]


def catalog_rows(cat: Catalog) -> tuple[list, list]:
    """The rows two ingests of one release must share: scans (ids, patient, split, fingerprint) and
    annotations (class voxels and centroids), in a stable order."""
    con = cat.connect()
    scans = con.sql("SELECT scan_id, case_id, patient_id, sat_id, official_split, fingerprint FROM scans ORDER BY scan_id").fetchall()
    ann = con.sql("SELECT scan_id, class_name, voxels, centroid_mm FROM annotations ORDER BY scan_id, class_name").fetchall()
    return scans, ann


def ingest_rows(key: str, root: Path, catalog_dir: Path, arrangement: str | None = None) -> tuple[str, tuple[list, list]]:
    """(the arrangement ingest found, the catalog rows) of ingesting ``root``; any failure fails the test."""
    cat = Catalog(catalog_dir)
    s = ingest(key, root, cat, workers=1, arrangement=arrangement)
    assert s.failed == get_spec(key).expect.failures, s.failures
    assert s.scans > 0
    return s.arrangement, catalog_rows(cat)


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def release_rows(tmp_path_factory):
    """Catalog rows of each spec's phantom in the publisher's arrangement, ingested once per module."""
    cache: dict[str, tuple[Path, tuple[list, list]]] = {}

    def get(key: str) -> tuple[Path, tuple[list, list]]:
        if key not in cache:
            tmp = tmp_path_factory.mktemp(f"release-{key}")
            root = generate(key, tmp / "root")
            found, rows = ingest_rows(key, root, tmp / "catalog")
            assert found == RELEASE
            cache[key] = (root, rows)
        return cache[key]

    return get


@pytest.mark.parametrize(("key", "arrangement"), PAIRS, ids=[f"{k}-{a}" for k, a in PAIRS])
def test_arrangement_gives_the_release_rows(key, arrangement, tmp_path, release_rows):
    release_root, expected = release_rows(key)
    root = generate(key, tmp_path / "root", arrangement=arrangement)
    # The copies really differ on disk, and ingest finds the arrangement by itself.
    assert files_under(root) != files_under(release_root)
    found, rows = ingest_rows(key, root, tmp_path / "catalog")
    assert found == arrangement
    assert rows == expected
    assert len(rows[0]) == get_spec(key).expect.scans


def test_arrangements_are_listed():
    """The SAT-DS arrangements this test covers (a spec that loses its arrangement fails here)."""
    assert {k for k, _ in PAIRS} >= {"abdomenct1k", "ct_org", "pancreas_ct"}


def test_two_arrangements_side_by_side_are_an_error_naming_both(tmp_path):
    both = tmp_path / "both"
    generate("abdomenct1k", both)
    generate("abdomenct1k", both, arrangement="sat_ds")
    with pytest.raises(SpecError, match=r"2 arrangements: release \(3 scans.*sat_ds \(3 scans.*--arrangement"):
        discover_arrangement(get_spec("abdomenct1k"), both)
    cat = Catalog(tmp_path / "cat")
    s = ingest("abdomenct1k", both, cat, workers=1)
    assert s.scans == 0 and s.failed == 1 and "--arrangement" in s.failures[0]
    # Naming the arrangement resolves it.
    s = ingest("abdomenct1k", both, cat, workers=1, arrangement="sat_ds")
    assert (s.scans, s.failed) == (3, 0)
    assert cat.connect().sql("SELECT arrangement FROM datasets").fetchall() == [("sat_ds",)]


def test_unknown_arrangement_names_the_known_ones(tmp_path):
    root = generate("abdomenct1k", tmp_path / "r")
    with pytest.raises(SpecError, match=r"known: \['release', 'sat_ds'\]"):
        discover_arrangement(get_spec("abdomenct1k"), root, "nnunet")
    shutil.rmtree(root)
