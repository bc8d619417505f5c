"""Every dataset spec: its phantom release ingests with exactly the expected classes, ids and splits."""

from __future__ import annotations

import pytest

from satds.ingest import dataset_classes, ingest
from satds.ontology import load_ontology
from satds.phantoms import generate
from satds.specs import all_specs, get_spec, spec_keys

KEYS = [k for k in spec_keys() if get_spec(k).phantom.cases]


def test_every_spec_validates():
    """All specs load (unknown keys, bad templates and unresolvable class names are errors)."""
    onto = load_ontology()
    for spec in all_specs():
        classes = dataset_classes(spec.key, "")
        assert classes.all_classes(), spec.key
        for c in classes.all_classes():
            assert c in onto


@pytest.mark.parametrize("key", KEYS)
def test_phantom_ingests_as_expected(key, tmp_path, catalog):
    spec = get_spec(key)
    root = generate(key, tmp_path / key)
    summary = ingest(key, root, catalog, workers=1)
    exp = spec.expect
    assert summary.failed == exp.failures, summary.failures
    if exp.scans is not None:
        assert summary.scans == exp.scans
    onto = load_ontology()
    names = [onto[c].name for c in dataset_classes(key, str(root)).all_classes()]
    assert sorted(names) == sorted(exp.classes)
    con = catalog.connect()
    scans = {r[0]: r[1:] for r in con.execute("SELECT case_id, patient_id, official_split, channels FROM scans").fetchall()}
    for case, pid in exp.patients.items():
        assert scans[case][0] == pid, case
    for case, split in exp.splits.items():
        assert scans[case][1] == split, case
    if exp.channels:
        assert all(list(v[2]) == exp.channels for v in scans.values())
    # Every class the dataset can carry is annotated somewhere in the phantom (present or absent).
    seen = {r[0] for r in con.execute("SELECT DISTINCT class_name FROM annotations").fetchall()}
    assert seen == set(exp.classes)
