"""The CTSpine1K release written from its sources: layout, verbatim files, label grids, round trip."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from satds.catalog import Catalog
from satds.errors import ExportError
from satds.export.ctspine1k import SHIPPED, export_ctspine1k, read_sections
from satds.ingest import ingest
from satds.phantoms import generate


def test_release_from_phantom_sources_round_trips(tmp_path, catalog):
    root = generate("ctspine1k_sources", tmp_path / "sources")
    s = ingest("ctspine1k_sources", root, catalog, workers=1)
    assert (s.scans, s.failed) == (5, 0), s.failures
    out = tmp_path / "CTSpine1K"
    rep = export_ctspine1k(catalog, out)
    assert rep.problems == []
    assert rep.written == {"COLONOG": 2, "HNSCC-3DCT-RT": 1, "MSD-T10": 1, "COVID-19": 1}
    assert rep.converted == 3 and rep.copied == 2  # DICOM series converted; NIfTI copied
    assert len(rep.missing) == 1005 - 5
    # Verbatim files (CRLF kept) and the release tree.
    assert (out / "data_split.txt").read_bytes() == (SHIPPED / "data_split.txt").read_bytes()
    assert (out / "metadata/data_split.txt").read_bytes().count(b"\r\n") > 1000
    assert (out / "Path.csv").read_bytes() == (SHIPPED / "Path.csv").read_bytes()
    assert "CC BY-NC-SA" in (out / "LICENSE.txt").read_text()
    con = catalog.connect()
    for case, sub, label_path in con.execute("SELECT case_id, json_extract_string(case_files, '$.captures.sub'), label_paths[1] FROM scans").fetchall():
        vol = nib.load(out / "raw_data/volumes" / sub / f"{case}.nii.gz")
        lab_out = out / "raw_data/labels" / sub / f"{case}_seg.nii.gz"
        assert lab_out.read_bytes() == (root / label_path).read_bytes()  # the official labels, byte for byte
        lab = nib.load(lab_out)
        assert vol.shape == lab.shape and np.allclose(vol.affine, lab.affine)  # same grid as its label
    sections = read_sections(out / "data_split.txt")
    expected = {}
    for (case,) in con.execute("SELECT case_id FROM scans").fetchall():
        expected[sections[case + ".nii.gz"]] = expected.get(sections[case + ".nii.gz"], 0) + 1
    assert rep.sections == expected and sum(expected.values()) == 5
    # Round trip: the written release ingests (release layout) to the same annotations.
    back = Catalog(tmp_path / "back")
    s2 = ingest("ctspine1k", out, back, workers=1)
    assert (s2.scans, s2.failed) == (5, 0), s2.failures
    q = "SELECT case_id, class_name, voxels, centroid_mm FROM annotations JOIN scans USING (scan_id) ORDER BY 1, 2"
    a = [(c, n, v, tuple(np.round(x, 4)) if x is not None else None) for c, n, v, x in con.execute(q).fetchall()]
    b = [(c, n, v, tuple(np.round(x, 4)) if x is not None else None) for c, n, v, x in back.connect().execute(q).fetchall()]
    assert a == b
    assert json.loads((out / "satds_export.json").read_text())["section_counts_expected"] == {"trainset": 610, "test_public": 197, "test_private": 198}


def test_strict_export_refuses_an_incomplete_release(tmp_path, catalog):
    ingest("ctspine1k", generate("ctspine1k", tmp_path / "rel"), catalog, workers=1)
    with pytest.raises(ExportError, match="1001 cases missing"):
        export_ctspine1k(catalog, tmp_path / "out", strict=True)


def test_without_ctspine1k_scans_the_error_says_what_to_ingest(catalog):
    with pytest.raises(ExportError, match="satds ingest ctspine1k"):
        export_ctspine1k(catalog, "unused")
