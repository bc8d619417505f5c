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

# dataset → the other arrangement it is written in (besides the publisher's)
OTHER = {"abdomenct1k": "sat_ds", "msd_liver": "nnunet", "kits19": "nnunet", "totalsegmentator": "nnunet"}


@pytest.fixture(scope="module")
def catalogs(realdata, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("real_arrangements")
    names = ts_classes(realdata, "seg_small_total.nii.gz")
    out = {}
    for which in ("release", "other"):
        cat = Catalog(tmp / f"catalog-{which}")
        for key, other in OTHER.items():
            arrangement = "release" if which == "release" else other
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
    release, other = rows(catalogs["release"], sql), rows(catalogs["other"], sql)
    assert release == other
    assert {d for d, *_ in release} == set(OTHER)
    assert len([r for r in release if r[2] > 0]) >= 20  # real organs, not empty masks
    sql = "SELECT scan_id, case_id, patient_id, fingerprint FROM scans ORDER BY scan_id"
    assert rows(catalogs["release"], sql) == rows(catalogs["other"], sql)


def test_all_copies_form_one_leakage_group(catalogs):
    prints = {fp for cat in catalogs.values() for (fp,) in rows(cat, "SELECT DISTINCT fingerprint FROM scans")}
    assert len(prints) == 1
    for cat in catalogs.values():
        run_split(cat, seed=0)
        assert rows(cat, "SELECT count(DISTINCT group_id), count(DISTINCT split), count(*) FROM splits") == [(1, 1, len(OTHER))]
