"""VerSe: centroid files are read in their own axis codes and disagreements become notes naming the vertebra."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from satds.ingest import ingest
from satds.ingest.quirks.verse import affine_in_codes, centroid_notes, read_centroids
from satds.io import read_volume
from satds.phantoms import generate

MASK = "dataset-verse19training/derivatives/sub-verse004/sub-verse004_seg-vert_msk.nii.gz"
CTD = MASK.replace("_seg-vert_msk.nii.gz", "_seg-subreg_ctd.json")


@pytest.fixture
def verse(tmp_path):
    return generate("verse", tmp_path / "verse")


def _notes(summary, case="sub-verse004"):
    return [n for n in summary.notes if n.startswith(case + ":")]


def test_phantom_centroids_agree(verse, catalog):
    s = ingest("verse", verse, catalog, workers=1)
    assert (s.scans, s.failed) == (5, 0)
    assert [n for n in s.notes if "centroid" in n] == []


def test_shifted_centroid_is_a_note_naming_the_vertebra(verse, catalog):
    items = json.loads((verse / CTD).read_text())
    assert items[0] == {"direction": ["P", "I", "R"]}
    t9 = next(d for d in items if d.get("label") == 16)
    t9["Y"] += 5.0  # 5 voxels along I: the phantom's RAS spacing is (1.0, 1.0, 1.2), so 6 mm
    (verse / CTD).write_text(json.dumps(items))
    s = ingest("verse", verse, catalog, workers=1)
    assert s.failed == 0
    [note] = _notes(s)
    head = f"sub-verse004: {CTD}: T9 (label 16) centroid is "
    assert note.startswith(head) and note.endswith(" mm from the mask's centre of mass (tolerance 3 mm)")
    # 5 voxels of 1.2 mm, less the file's 0.1-voxel rounding.
    assert 5.8 <= float(note[len(head) :].split(" ")[0]) <= 6.2


def test_missing_entry_missing_file_and_extra_label(verse, catalog):
    items = [d for d in json.loads((verse / CTD).read_text()) if d.get("label") != 28]
    items.append({"label": 26, "X": 1.0, "Y": 1.0, "Z": 1.0})
    (verse / CTD).write_text(json.dumps(items))
    other = "dataset-01training/derivatives/sub-gl003/sub-gl003_dir-ax_seg-subreg_ctd.json"
    (verse / other).unlink()
    s = ingest("verse", verse, catalog, workers=1)
    assert s.failed == 0
    assert _notes(s) == [
        f"sub-verse004: {CTD}: centroid of sacrum (label 26) but the mask has no voxels of it",
        f"sub-verse004: {CTD}: T13 (label 28) is in the mask but has no centroid",
    ]
    assert _notes(s, "sub-gl003_dir-ax") == [f"sub-gl003_dir-ax: {other}: no centroid file beside the mask"]


def test_centroids_in_other_axis_codes(verse):
    """A file written in ASL voxels (the MICCAI-era convention) gives the same world points as the PIR file."""
    mask = read_volume(verse / MASK)
    pir = read_centroids(verse / CTD, mask)
    arr, aff = np.asarray(mask.array), mask.affine
    import nibabel.orientations as nio

    t = nio.ornt_transform(nio.io_orientation(aff), nio.axcodes2ornt(("A", "S", "L")))
    asl = nio.apply_orientation(arr, t)
    items = [{"direction": ["A", "S", "L"]}]
    for v in sorted(pir):
        idx = np.argwhere(asl == v).mean(axis=0)
        items.append({"label": v, "X": float(idx[0]), "Y": float(idx[1]), "Z": float(idx[2])})
    (verse / CTD).write_text(json.dumps(items))
    asl_points = read_centroids(verse / CTD, mask)
    assert sorted(asl_points) == sorted(pir) and len(pir) == 26
    for v in pir:
        assert np.allclose(asl_points[v], pir[v], atol=0.1)
    assert centroid_notes(verse, MASK, mask) == []
    # The same numbers under the wrong codes put every vertebra elsewhere: all 26 are reported.
    items[0] = {"direction": ["P", "I", "R"]}
    (verse / CTD).write_text(json.dumps(items))
    assert len(centroid_notes(verse, MASK, mask)) == 26


def test_affine_in_codes_keeps_world_positions():
    aff = np.array([[0, 0, -1.5, 30], [-2.0, 0, 0, 10], [0, 3.0, 0, -5], [0, 0, 0, 1]])
    shape = (10, 12, 14)
    new = affine_in_codes(aff, shape, "RAS")
    assert "".join(nib.aff2axcodes(new)) == "RAS"
    # The RAS-ordered voxel (i', j', k') of original voxel (i, j, k): i' = 13 - k, j' = 9 - i, k' = j.
    i, j, k = 2, 5, 7
    assert np.allclose(aff @ [i, j, k, 1], new @ [13 - k, 9 - i, j, 1])


def test_real_vertebrae_with_centroids_in_pir(realdata, tmp_path, catalog):
    """Real CT and vertebrae (TotalSegmentator T11-L2 on ct_small) as a VerSe case; centroids computed the way
    VerSe's notebook does (mask reoriented to P, I, R). No notes, and world centroids match nibabel's."""
    cm = {v: int(k) for k, v in json.loads((realdata / "classmaps.json").read_text())["total"].items()}
    verse_code = {"vertebrae_T11": 18, "vertebrae_T12": 19, "vertebrae_L1": 20, "vertebrae_L2": 21}
    seg = nib.load(realdata / "seg_small_total.nii.gz")
    src = np.asarray(seg.dataobj)
    lab = np.zeros(src.shape, np.uint8)
    for name, code in verse_code.items():
        lab[src == cm[name]] = code
    root = tmp_path / "VerSe19" / "dataset-verse19validation"
    (root / "rawdata/sub-verse153").mkdir(parents=True)
    (root / "derivatives/sub-verse153").mkdir(parents=True)
    shutil.copy(realdata / "ct_small.nii.gz", root / "rawdata/sub-verse153/sub-verse153_ct.nii.gz")
    m = nib.Nifti1Image(lab, seg.affine)
    nib.save(m, root / "derivatives/sub-verse153/sub-verse153_seg-vert_msk.nii.gz")
    import nibabel.orientations as nio
    from scipy.ndimage import center_of_mass

    t = nio.ornt_transform(nio.io_orientation(seg.affine), nio.axcodes2ornt(("P", "I", "R")))
    pir = nio.apply_orientation(lab, t)
    items = [{"direction": ["P", "I", "R"]}]
    for code in verse_code.values():
        c = center_of_mass(pir == code)
        items.append({"label": code, "X": round(c[0], 1), "Y": round(c[1], 1), "Z": round(c[2], 1)})
    (root / "derivatives/sub-verse153/sub-verse153_seg-subreg_ctd.json").write_text(json.dumps(items))
    s = ingest("verse", tmp_path, catalog, workers=1)
    assert (s.scans, s.failed) == (1, 0)
    assert [n for n in s.notes if "centroid" in n] == []
    con = catalog.connect()
    assert con.execute("SELECT case_id, patient_id, official_split FROM scans").fetchall() == [("sub-verse153", "sub-verse153", "validation")]
    rows = dict(con.execute("SELECT class_name, centroid_mm FROM annotations WHERE voxels > 0").fetchall())
    for name, code in verse_code.items():
        ijk = np.argwhere(lab == code).mean(axis=0)
        world = seg.affine[:3, :3] @ ijk + seg.affine[:3, 3]
        vname = {"vertebrae_T11": "thoracic vertebrae 11 (t11)", "vertebrae_T12": "thoracic vertebrae 12 (t12)", "vertebrae_L1": "lumbar vertebrae 1 (l1)", "vertebrae_L2": "lumbar vertebrae 2 (l2)"}[name]
        assert np.allclose(rows[vname], world, atol=1e-6)
