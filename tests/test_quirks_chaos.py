"""CHAOS: DICOM slice folders read directly, PNG masks paired to slices by name and placed by slice position."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PIL import Image

from satds.errors import LabelError
from satds.ingest import ingest
from satds.ingest.quirks.chaos import snap_grey, MR_GREY, CT_GREY
from satds.ontology import load_ontology
from satds.phantoms import generate
from satds.phantoms.generate import make_body
from satds.specs import get_spec


def painted(key, n, caps):
    """The phantom's own blobs for case number n: (voxels, RAS centroid in mm) per source key."""
    spec = get_spec(key)
    body = make_body(spec, load_ontology(), caps, n, set())
    out = {}
    for k, m in body.blobs.items():
        ijk = np.argwhere(m)
        out[k] = (len(ijk), body.affine[:3, :3] @ ijk.mean(axis=0) + body.affine[:3, 3])
    return out


def annotations(catalog, scan_id):
    con = catalog.connect()
    return {r[0]: (r[1], np.array(r[2]) if r[2] is not None else None)
            for r in con.execute("SELECT class_name, voxels, centroid_mm FROM annotations WHERE scan_id = ?", [scan_id]).fetchall()}


@pytest.fixture
def ct(tmp_path):
    return generate("chaos_ct", tmp_path / "chaos")


@pytest.fixture
def mr(tmp_path):
    return generate("chaos_mri", tmp_path / "chaos")


def test_ct_files_run_head_to_foot_and_masks_land_on_their_slices(ct, catalog):
    dcm = ct / "Train_Sets/CT/1/DICOM_anon"
    z = [float(pydicom.dcmread(dcm / f"i{k:04d},0000b.dcm", stop_before_pixels=True).ImagePositionPatient[2]) for k in range(3)]
    assert z[0] > z[1] > z[2]  # name order is the reverse of position order, as in the release
    assert sorted(p.name for p in (ct / "Train_Sets/CT/1/Ground").iterdir())[:2] == ["liver_GT_000.png", "liver_GT_001.png"]
    s = ingest("chaos_ct", ct, catalog, workers=1)
    assert (s.scans, s.failed) == (3, 0), s.failures
    for n, case in enumerate(["1", "21"]):
        vox, cen = painted("chaos_ct", n, {"case": case})["255"]
        got = annotations(catalog, f"chaos_ct/{case}")
        assert got["liver"][0] == vox
        np.testing.assert_allclose(got["liver"][1], cen, atol=1e-3)
    con = catalog.connect()
    assert con.execute("SELECT label_kind FROM scans WHERE case_id = '3'").fetchone() == ("none",)


def test_ct_mask_count_must_match_the_slices(ct, catalog):
    (ct / "Train_Sets/CT/21/Ground/liver_GT_005.png").unlink()
    s = ingest("chaos_ct", ct, catalog, workers=1)
    assert (s.scans, s.failed) == (2, 1)
    [msg] = s.failures
    assert msg == "chaos_ct/21: Train_Sets/CT/21/Ground: 23 PNG masks for 24 DICOM slices, and their names do not pair them"


def test_ct_mask_of_the_wrong_size_is_a_geometry_error(ct, catalog):
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(ct / "Train_Sets/CT/1/Ground/liver_GT_007.png")
    s = ingest("chaos_ct", ct, catalog, workers=1)
    [msg] = s.failures
    assert msg == "chaos_ct/1: Train_Sets/CT/1/Ground/liver_GT_007.png: mask is 10x12 pixels, its DICOM slice 36x40"


def test_slices_with_different_series_uids_are_still_one_series(ct, catalog):
    p = ct / "Train_Sets/CT/1/DICOM_anon/i0004,0000b.dcm"
    ds = pydicom.dcmread(p)
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(p)
    s = ingest("chaos_ct", ct, catalog, workers=1)
    assert (s.scans, s.failed) == (3, 0), s.failures


def test_mr_scans_channels_and_sides(mr, catalog):
    t1 = mr / "Train_Sets/MR/5/T1DUAL"
    assert sorted(p.name for p in (t1 / "DICOM_anon/InPhase").iterdir())[:2] == ["IMG-0004-00002.dcm", "IMG-0004-00004.dcm"]
    assert sorted(p.name for p in (t1 / "DICOM_anon/OutPhase").iterdir())[:2] == ["IMG-0004-00001.dcm", "IMG-0004-00003.dcm"]
    s = ingest("chaos_mri", mr, catalog, workers=1)
    assert (s.scans, s.failed) == (5, 0), s.failures
    con = catalog.connect()
    scans = {r[0]: (list(r[1]), list(r[2]), r[3]) for r in con.execute("SELECT scan_id, channels, channel_modalities, patient_id FROM scans").fetchall()}
    assert scans == {
        "chaos_mri/1/T1DUAL": (["T1 in-phase", "T1 out-of-phase"], ["MRI T1", "MRI T1"], "1"),
        "chaos_mri/1/T2SPIR": (["T2 SPIR"], ["MRI T2"], "1"),
        "chaos_mri/5/T1DUAL": (["T1 in-phase", "T1 out-of-phase"], ["MRI T1", "MRI T1"], "5"),
        "chaos_mri/5/T2SPIR": (["T2 SPIR"], ["MRI T2"], "5"),
        "chaos_mri/4/T1DUAL": (["T1 in-phase", "T1 out-of-phase"], ["MRI T1", "MRI T1"], "4"),
    }
    # generate() draws the n-th phantom case with seed n: case 5's T1-DUAL is the third.
    want = painted("chaos_mri", 2, {"case": "5"})
    got = annotations(catalog, "chaos_mri/5/T1DUAL")
    for code, name in [("63", "liver"), ("126", "right kidney"), ("189", "left kidney"), ("252", "spleen")]:
        assert got[name][0] == want[code][0], name
        np.testing.assert_allclose(got[name][1], want[code][1], atol=1e-3)
    assert got["right kidney"][1][0] > 0 > got["left kidney"][1][0]  # RAS x: the patient's right is +x
    assert got["kidney"][0] == got["right kidney"][0] + got["left kidney"][0]


def test_t1_masks_named_after_the_out_of_phase_slices_pair_the_same(mr, catalog):
    ground = mr / "Train_Sets/MR/1/T1DUAL/Ground"
    for p in sorted(ground.iterdir()):
        n = int(p.stem.split("-")[-1])
        p.rename(ground / f"IMG-0004-{n - 1:05d}.png")
    ingest("chaos_mri", mr, catalog, workers=1)
    want = painted("chaos_mri", 0, {"case": "1"})
    assert annotations(catalog, "chaos_mri/1/T1DUAL")["spleen"][0] == want["252"][0]


def test_grey_levels_snap_to_the_documented_ranges():
    plane = np.array([[0, 56, 70, 111], [135, 176, 200, 241], [255, 0, 0, 0]], np.uint8)
    assert snap_grey(plane, MR_GREY, "x.png").tolist() == [[0, 63, 63, 126], [126, 189, 189, 252], [252, 0, 0, 0]]
    assert snap_grey(np.array([[0, 1, 255]], np.uint8), CT_GREY, "x.png").tolist() == [[0, 255, 255]]
    with pytest.raises(LabelError) as e:
        snap_grey(np.array([[0, 100, 55, 63]], np.uint8), MR_GREY, "T2SPIR/Ground/IMG-0002-00003.png")
    assert str(e.value) == "T2SPIR/Ground/IMG-0002-00003.png: grey level(s) [55, 100] are outside the mask codes' ranges [(55, 70), (110, 135), (175, 200), (240, 255)]"
