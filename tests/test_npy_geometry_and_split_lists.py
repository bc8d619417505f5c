"""Raw .npy releases placed by a layout's default geometry; official splits from a JSON of lists."""

from __future__ import annotations

import json

import numpy as np
import pytest

from satds.errors import SpecError
from satds.geometry import affine_from_axcodes, axcodes
from satds.ingest import ingest
from satds.ingest.discover import discover
from satds.phantoms import generate
from satds.specs import get_spec
from satds.specs.model import DefaultGeometry


def test_affine_from_axcodes():
    a = affine_from_axcodes("IPL", (0.3, 0.4, 0.5))
    assert axcodes(a) == "IPL"
    assert np.allclose(a[:3, :3] @ [1, 0, 0], [0, 0, -0.3])
    assert np.allclose(a[:3, :3] @ [0, 1, 0], [0, -0.4, 0])
    assert np.allclose(a[:3, :3] @ [0, 0, 1], [-0.5, 0, 0])
    assert axcodes(affine_from_axcodes("ras", (1, 1, 1))) == "RAS"


@pytest.mark.parametrize("bad", ["IP", "IPP", "XYZ", "IPLA"])
def test_default_geometry_rejects_bad_codes(bad):
    with pytest.raises(ValueError):
        DefaultGeometry(spacing=(1, 1, 1), orientation=bad)


@pytest.fixture
def toothfairy(tmp_path):
    return generate("toothfairy", tmp_path / "tf")


def test_npy_scans_get_the_documented_geometry(toothfairy, catalog):
    s = ingest("toothfairy", toothfairy, catalog, workers=1)
    assert (s.scans, s.failed) == (4, 0)
    con = catalog.connect()
    rows = con.execute("SELECT case_id, spacing, axcodes, shape, label_kind FROM scans ORDER BY case_id").fetchall()
    for case, spacing, codes, shape, kind in rows:
        assert np.allclose(spacing, [0.3, 0.3, 0.3]) and codes == "IPL", case
        assert list(shape) == [24, 40, 44]  # (slices, rows, columns) of the phantom's 44 x 40 x 24 RAS body
        assert kind == ("none" if case == "P548" else "labelmap"), case
    # The dense label lies on the image grid: its volume in ml uses the 0.3 mm voxels.
    [(vox, ml)] = con.execute("SELECT voxels, volume_ml FROM annotations a JOIN scans s USING (scan_id) WHERE s.case_id = 'P1'").fetchall()
    assert vox > 0 and ml == pytest.approx(vox * 0.027 / 1000)


def test_split_lists_and_a_case_listed_twice(toothfairy):
    spec = get_spec("toothfairy")
    cases, problems, _ = discover(spec, toothfairy)
    assert {c.case_id: c.official_split for c in cases} == {"P1": "train", "P2": "validation", "P62": "train", "P548": "train"}
    splits = toothfairy / "ToothFairy_Dataset/splits.json"
    splits.write_text(json.dumps({"train": ["P1", "P2"], "val": ["P2"], "test": [], "synthetic": []}))
    with pytest.raises(SpecError, match="'P2' is listed in both 'train' and 'val'"):
        discover(spec, toothfairy)
    splits.write_text(json.dumps({"train": ["P1"], "val": [], "test": [], "synthetic": []}))
    cases, _, _ = discover(spec, toothfairy)
    assert {c.case_id: c.official_split for c in cases}["P62"] == "unknown"  # in no list: not the previous case's
