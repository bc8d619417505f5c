"""A real CT with its real label map, kept as the publisher released it, in SAT-DS's arrangement and as an
nnU-Net raw folder, gives identical annotations; every copy has the same image fingerprint, so all fall into
one leakage group."""

from __future__ import annotations

import pytest

from satds.catalog import Catalog
from satds.ingest import ingest
from satds.phantoms.realdata import ts_classes, write_real_as
from satds.specs import get_spec
from satds.split import run_split

# dataset → the other arrangements it is written in (besides the publisher's); AbdomenCT-1K in all three
OTHER = {"abdomenct1k": ["sat_ds", "nnunet"], "msd_liver": ["nnunet"], "kits19": ["nnunet"], "totalsegmentator": ["nnunet"]}
ROUNDS = ["release", *(f"other{i}" for i in range(max(map(len, OTHER.values()))))]


def arrangement_in(key: str, which: str) -> str | None:
    """The arrangement ``key`` is written in for catalog ``which`` (None: not in that catalog)."""
    if which == "release":
        return "release"
    i = int(which.removeprefix("other"))
    return OTHER[key][i] if i < len(OTHER[key]) else None


@pytest.fixture(scope="module")
def catalogs(realdata, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("real_arrangements")
    names = ts_classes(realdata, "seg_small_total.nii.gz")
    out = {}
    for which in ROUNDS:
        cat = Catalog(tmp / f"catalog-{which}")
        for key in OTHER:
            arrangement = arrangement_in(key, which)
            if arrangement is None:
                continue
            root = tmp / which / key / "copy"
            write_real_as(key, root, realdata / "ct_small.nii.gz", realdata / "seg_small_total.nii.gz", names, dict(get_spec(key).phantom.cases[0]), arrangement=arrangement)
            s = ingest(key, root.parent, cat, workers=1)  # named one level above the copy
            assert (s.scans, s.failed, s.arrangement) == (1, 0, arrangement), s.failures
        out[which] = cat
    return out


def rows(cat: Catalog, sql: str) -> list:
    return cat.connect().execute(sql).fetchall()


def test_every_arrangement_gives_the_release_annotations(catalogs):
    sql = "SELECT dataset, class_name, voxels, centroid_mm, bbox_min_mm, bbox_max_mm FROM annotations ORDER BY dataset, class_name"
    release = rows(catalogs["release"], sql)
    assert {d for d, *_ in release} == set(OTHER)
    assert len([r for r in release if r[2] > 0]) >= 20  # real organs, not empty masks
    scans = "SELECT scan_id, case_id, patient_id, fingerprint FROM scans ORDER BY scan_id"
    for which in ROUNDS[1:]:
        held = {k for k in OTHER if arrangement_in(k, which)}
        assert rows(catalogs[which], sql) == [r for r in release if r[0] in held], which
        assert rows(catalogs[which], scans) == [r for r in rows(catalogs["release"], scans) if r[0].split("/")[0] in held], which
    assert rows(catalogs["other1"], "SELECT dataset, arrangement FROM datasets") == [("abdomenct1k", "nnunet")]


def test_all_copies_form_one_leakage_group(catalogs):
    prints = {fp for cat in catalogs.values() for (fp,) in rows(cat, "SELECT DISTINCT fingerprint FROM scans")}
    assert len(prints) == 1
    for which, cat in catalogs.items():
        run_split(cat, seed=0)
        n = sum(arrangement_in(k, which) is not None for k in OTHER)
        assert rows(cat, "SELECT count(DISTINCT group_id), count(DISTINCT split), count(*) FROM splits") == [(1, 1, n)]
