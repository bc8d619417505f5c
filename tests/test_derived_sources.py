"""Derived classes list the source values they come from (MM-WHS's non-consecutive codes, 421 included)."""

from __future__ import annotations

from satds.ingest import ingest
from satds.phantoms import generate


def test_derived_rows_name_their_source_values(tmp_path, catalog):
    root = generate("mm_whs_mri", tmp_path / "mmwhs")
    s = ingest("mm_whs_mri", root, catalog, workers=1)
    assert (s.scans, s.failed) == (3, 0)
    rows = catalog.connect().execute(
        "SELECT a.class_name, a.source_values, a.derived, a.rule, a.voxels FROM annotations a JOIN scans s USING (scan_id) WHERE s.case_id = 'mr_train_1001'"
    ).fetchall()
    got = {r[0]: (list(r[1]), r[2], r[3], r[4]) for r in rows}
    assert got["left heart atrium"][:3] == (["420", "421"], False, "source")
    assert got["heart atrium"][:3] == (["420", "421", "550"], True, "partition")
    assert got["heart ventricle"][:3] == (["500", "600"], True, "partition")
    assert got["heart atrium"][3] == got["left heart atrium"][3] + got["right heart atrium"][3] > 0
    assert got["heart ventricle"][3] == got["left heart ventricle"][3] + got["right heart ventricle"][3] > 0
