"""Derived classes record the source values they are made of (a derived class is not its own leaf)."""

from __future__ import annotations

import pytest

from satds.ingest import ingest
from satds.phantoms import generate


@pytest.mark.parametrize(
    "key,expected",
    [
        ("myops2020", {"heart ventricle": ["500", "600"], "myocardium": ["200", "1220", "2221"], "myocardial scar": ["2221"]}),
        ("brats2023_ssa", {"brain tumor": ["1", "2", "3"], "brain edema": ["2"]}),
    ],
)
def test_source_values_of_derived_and_lesion_classes(tmp_path, catalog, key, expected):
    root = generate(key, tmp_path / key)
    s = ingest(key, root, catalog, workers=1)
    assert s.failed == 0
    rows = catalog.connect().execute("SELECT DISTINCT class_name, source_values, rule FROM annotations").fetchall()
    got = {name: (sorted(values), rule) for name, values, rule in rows if list(values)}
    for name, values in expected.items():
        assert got[name][0] == sorted(values), name
    derived = {n: r for n, (_, r) in got.items() if n in ("heart ventricle", "brain tumor")}
    assert set(derived.values()) == {"partition"}
