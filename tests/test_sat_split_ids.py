"""sat_id templates give SAT-DS's own ids: every phantom case of these specs (named after real cases) is
found in SAT-DS's published split file, unless the spec skips it."""

from __future__ import annotations

import json

import pytest

from satds.ingest.discover import _skipped
from satds.ingest.patterns import fill
from satds.specs import get_spec

# Specs whose phantom cases are real case ids of the release.
KEYS = [
    "atlas", "btcv_cervix", "brats2023_gli", "brats2023_men", "brats2023_met", "brats2023_ped", "brats2023_ssa",
    "crossmoda2021", "fumpe", "instance22", "kipa22", "myops2020", "pancreas_ct", "sega",
]


@pytest.mark.parametrize("key", KEYS)
def test_phantom_sat_ids_are_in_sat_ds_splits(sat_ds_dir, key):
    spec = get_spec(key)
    d = json.loads((sat_ds_dir / "split_json" / f"{spec.sat_key}.json").read_text())
    ids = set(d["train"]) | set(d["val"]) | set(d["test"])
    checked = 0
    for caps in spec.phantom.cases:
        caps = dict(caps)
        name = caps.pop("_layout", spec.layout[0].name)
        layout = next(lay for lay in spec.layout if lay.name == name)
        for var, tpl in layout.vars.items():
            caps.setdefault(var, fill(tpl, caps))
        case_id = fill(spec.case_id, caps)
        if _skipped(spec, case_id):
            continue
        assert fill(spec.sat_id, caps) in ids, case_id
        checked += 1
    assert checked >= 2
