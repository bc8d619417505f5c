"""DICOM-SEG: segments matched to classes by label/code (not by number), LABELMAP SEGs, unknown types named,
and a SEG paired with the series it references when a folder holds several."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from _dicom_testlib import pixel_world, series, source_digest, voxel_of
from satds.errors import LabelError
from satds.ingest import discover, ingest
from satds.ingest.quirks.tcia_seg import Segment, match_segments
from satds.ingest.read import load_channels
from satds.phantoms import generate
from satds.phantoms.quirks.tcia_seg import write_seg
from satds.specs import LabelEntry, clear_cache, get_spec

STUDY1 = "Adrenal-ACC-Ki67-Seg/Adrenal_Ki67_Seg_001/08-22-2000-NA-CT ABDOMEN-56266"
CT1 = f"{STUDY1}/2.000000-AXIAL PORTAL-21436"
OTHER1 = f"{STUDY1}/3.000000-AXIAL DELAYED-88127"
SEG1 = f"{STUDY1}/300.000000-Segmentation-30411/1-1.dcm"
STUDY2 = "Adrenal-ACC-Ki67-Seg/Adrenal_Ki67_Seg_002/01-14-2003-NA-CT CHEST ABDOMEN PELVIS-93304"
CASE1, CASE2 = "Adrenal_Ki67_Seg_001_56266", "Adrenal_Ki67_Seg_002_93304"

# A release whose SEGs hold a liver and a spleen segment, named in the spec (a local spec, as users add them).
ORGANS_SPEC = """\
key: adrenal_organs
extends: adrenal_acc_ki67
sat_key: null
sat_id: null
title: TCIA DICOM-SEG release with organ segments (test)
labels:
  - {value: 1, segment: [Liver, "SCT:10200004"], classes: [liver]}
  - {value: 2, segment: Spleen, classes: [spleen]}
"""


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return generate("adrenal_acc_ki67", tmp_path_factory.mktemp("adrenal") / "root")


@pytest.fixture
def root(pristine, tmp_path):
    return shutil.copytree(pristine, tmp_path / "root")


@pytest.fixture
def organs_spec(tmp_path, monkeypatch):
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "adrenal_organs.yaml").write_text(ORGANS_SPEC)
    monkeypatch.setenv("SATDS_SPEC_PATH", str(folder))
    clear_cache()
    yield get_spec("adrenal_organs")
    monkeypatch.delenv("SATDS_SPEC_PATH")
    clear_cache()


def _organ_frames(ct: list) -> np.ndarray:
    """(slices, rows, columns) with segment 1 (the spleen) and segment 2 (the liver) painted as boxes."""
    frames = np.zeros((len(ct), int(ct[0].Rows), int(ct[0].Columns)), dtype=np.uint8)
    frames[14:18, 20:30, 22:32] = 1
    frames[5:9, 4:10, 6:14] = 2
    return frames


def _expected(ct: list, frames: np.ndarray, value: int, affine: np.ndarray, shape) -> np.ndarray:
    """Where DICOM puts the pixels of ``value``, as voxels of the image grid."""
    out = np.zeros(shape, dtype=bool)
    for ds, frame in zip(ct, frames):
        r, c = np.nonzero(frame == value)
        idx, off = voxel_of(pixel_world(ds)[r, c], affine)
        assert off < 1e-3
        out[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    return out


@pytest.mark.parametrize("seg_type", ["BINARY", "LABELMAP"])
def test_segments_in_another_order_land_on_their_own_classes(root, organs_spec, catalog, seg_type):
    """Case 1's SEG numbers the spleen 1 and the liver 2, the spec the other way round: each lands on its own
    class. Case 2's SEG holds only a 'Tumor' segment, which the spec does not know: a failures row naming it."""
    ct = series(root / CT1)
    frames = _organ_frames(ct)
    write_seg(ct, frames, [("Spleen", codes.SCT.Organ, codes.SCT.Spleen), ("Liver", codes.SCT.Organ, codes.SCT.Liver)], root / SEG1, seg_type=seg_type)
    seg = pydicom.dcmread(root / SEG1)
    assert str(seg.SegmentationType) == seg_type
    assert [(int(s.SegmentNumber), str(s.SegmentLabel)) for s in seg.SegmentSequence if int(s.SegmentNumber)] == [(1, "Spleen"), (2, "Liver")]
    assert {int(e.value): e.classes for e in organs_spec.labels} == {1: ["liver"], 2: ["spleen"]}  # by number: swapped
    digest = source_digest(root)

    s = ingest("adrenal_organs", root, catalog, workers=1)
    assert (s.scans, s.failed) == (1, 1)
    assert any("segment 1 'Spleen'" in n and "matched by its name, not its number" in n for n in s.notes)
    con = catalog.connect()
    [(case, kind, file, msg)] = con.execute('SELECT "case", error_type, file, error FROM failures').fetchall()
    assert (case, kind) == (CASE2, "LabelError") and file.endswith("1-1.dcm") and file.startswith(STUDY2)
    assert "segment 1 'Tumor' (SCT:108369006 Neoplasm) is none of the spec's segments" in msg
    voxels = dict(con.execute("SELECT class_name, voxels FROM annotations WHERE scan_id LIKE '%' || ?", [CASE1]).fetchall())
    assert source_digest(root) == digest

    case = next(c for c in discover(organs_spec, root)[0] if c.case_id == CASE1)
    [image] = load_channels(organs_spec, case, root)
    from satds.ingest.read import load_labels
    from satds.labels import resolve_classes
    from satds.ontology import load_ontology

    onto = load_ontology()
    labels = load_labels(organs_spec, resolve_classes(organs_spec, onto), onto, case, root, image)
    liver = _expected(ct, frames, 2, image.affine, image.spatial_shape)
    spleen = _expected(ct, frames, 1, image.affine, image.spatial_shape)
    assert np.array_equal(labels.mask("liver"), liver) and np.array_equal(labels.mask("spleen"), spleen)
    assert voxels == {"liver": int(liver.sum()), "spleen": int(spleen.sum())} and liver.sum() != spleen.sum()


def test_a_segment_matching_two_labels_is_ambiguous():
    spec = SimpleNamespace(labels=[LabelEntry(value=1, segment=["Liver"], classes=["liver"]), LabelEntry(value=2, segment=["SCT:10200004"], classes=["liver"])])
    seg = Segment(3, "liver", "SCT:10200004", "Liver")
    with pytest.raises(LabelError, match=r"segment 3 'liver' \(SCT:10200004 Liver\) matches several labels of the spec \(\['1', '2'\]\): ambiguous"):
        match_segments([seg], spec, "x.dcm")
    # Case, spaces and punctuation do not matter; a code matches the code, not the label.
    one = SimpleNamespace(labels=[LabelEntry(value=1, segment=["left kidney"], classes=["kidney"])])
    assert match_segments([Segment(4, "Left_Kidney", "", "")], one, "x.dcm") == {4: ("1", "segment 4 'Left_Kidney' is label 1 in the spec: matched by its name, not its number")}
    with pytest.raises(LabelError, match="is none of the spec's segments"):
        match_segments([Segment(1, "SCT:10200004", "SCT:99", "x")], SimpleNamespace(labels=[LabelEntry(value=1, segment=["SCT:10200004"])]), "x.dcm")


def test_a_seg_of_an_unknown_type_is_named(root, catalog):
    ds = pydicom.dcmread(root / SEG1)
    ds.SegmentationType = "HEATMAP"
    ds.save_as(root / SEG1)
    digest = source_digest(root)
    s = ingest("adrenal_acc_ki67", root, catalog, workers=1)
    assert (s.scans, s.failed) == (1, 1)
    assert source_digest(root) == digest
    [(case, kind, file, msg)] = catalog.connect().execute('SELECT "case", error_type, file, error FROM failures').fetchall()
    assert (case, kind, file) == (CASE1, "ReadError", SEG1)
    assert "unsupported SEG type HEATMAP (satds reads BINARY, FRACTIONAL, LABELMAP)" in msg


def test_the_referenced_series_is_chosen_when_a_folder_holds_two(root, catalog):
    """A user's copy with the other CT series moved into the case's CT folder, its files sorting first, and
    case 2's SEG among its CT slices: both scans pair with the series their SEG references."""
    ct_uid = str(pydicom.dcmread(root / SEG1).ReferencedSeriesSequence[0].SeriesInstanceUID)
    for f in sorted((root / OTHER1).iterdir()):
        f.rename(root / CT1 / f"0-{f.name}")
    (root / OTHER1).rmdir()
    first = sorted((root / CT1).iterdir())[0]
    assert str(pydicom.dcmread(first, stop_before_pixels=True).SeriesInstanceUID) != ct_uid  # the trap: first file
    seg2 = next((root / STUDY2).glob("300.*/1-1.dcm"))
    ct2 = next(p for p in (root / STUDY2).iterdir() if p.name.startswith("4."))
    seg2.rename(ct2 / "9-seg.dcm")  # sorts after the slices
    digest = source_digest(root)

    s = ingest("adrenal_acc_ki67", root, catalog, workers=1)
    assert (s.scans, s.failed) == (2, 0)
    assert source_digest(root) == digest
    spec = get_spec("adrenal_acc_ki67")
    cases = {c.case_id: c for c in discover(spec, root)[0]}
    assert cases[CASE1].images == [CT1] and cases[CASE1].extra["series_uid"] == ct_uid
    assert cases[CASE2].label == f"{ct2.relative_to(root).as_posix()}/9-seg.dcm"
    [image] = load_channels(spec, cases[CASE1], root)
    assert image.meta["series_uid"] == ct_uid and image.spatial_shape[2] == 24
    assert catalog.connect().execute("SELECT sum(voxels) FROM annotations").fetchone()[0] > 0
