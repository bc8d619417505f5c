"""Corrections found in review: scan counts, overlap notes and official splits that the specs had wrong."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from satds.ingest.discover import discover
from satds.specs import get_spec
from satds.split.groups import make_groups


def _release(root: Path, cases: range, labelled) -> Path:
    """A skeleton of a KiTS release: empty files at the documented paths (discovery reads no voxels)."""
    for i in cases:
        d = root / f"case_{i:05d}"
        d.mkdir(parents=True)
        (d / "imaging.nii.gz").touch()
        if labelled(i):
            (d / "segmentation.nii.gz").touch()
    return root


def test_kits19_scans_count_the_unlabelled_test_cases(tmp_path):
    """KiTS19 ships 300 imaging volumes (cases 0-299); only 0-209 have a segmentation. The layout reads all 300."""
    root = tmp_path / "kits19"
    _release(root / "data", range(300), lambda i: i < 210)
    cases, problems, skipped = discover(get_spec("kits19"), root)
    assert not problems and not skipped
    assert len(cases) == get_spec("kits19").scans == 300
    assert Counter(c.official_split for c in cases) == {"train": 210, "test": 90}
    assert sum(c.label is not None for c in cases) == 210


def test_kits23_scans_match_its_release(tmp_path):
    """KiTS23's training release: cases 00000-00299 (KiTS19's images) and 00400-00588, all labelled."""
    root = tmp_path / "kits23"
    _release(root / "dataset", [*range(300), *range(400, 589)], lambda i: True)
    cases, problems, _ = discover(get_spec("kits23"), root)
    assert not problems
    assert len(cases) == get_spec("kits23").scans == 489


def test_kits23_overlap_covers_kits19_test_cases():
    """Cases 00210-00299 were KiTS19's test cases: KiTS23's copies must join them in one leakage group."""
    [ov] = [o for o in get_spec("kits23").overlaps if o.dataset == "kits19"]
    assert "00000-00299" in ov.note and "00210-00299" in ov.note

    def scan(ds, case):
        return {"scan_id": f"{ds}/{case}", "dataset": ds, "case_id": case, "patient_id": case, "fingerprint": f"{ds}-{case}", "case_files": None}

    groups = make_groups([scan("kits19", "case_00250"), scan("kits23", "case_00250"), scan("kits23", "case_00400")])
    assert groups.group_of["kits19/case_00250"] == groups.group_of["kits23/case_00250"] != groups.group_of["kits23/case_00400"]


def test_han_seg_public_cases_are_the_training_set(tmp_path):
    """HaN-Seg's 42 public cases are the challenge's training set (as FLARE22's and ISLES 2022's are)."""
    spec = get_spec("han_seg")
    assert spec.official_split == "train"
    for key in ("flare22", "isles2022"):
        assert get_spec(key).official_split == "train"
    root = tmp_path / "HaN-Seg"
    for n in (1, 2, 42):
        d = root / "set_1" / f"case_{n:02d}"
        d.mkdir(parents=True)
        (d / f"case_{n:02d}_IMG_CT.nrrd").touch()
        (d / f"case_{n:02d}_OAR_Brainstem.seg.nrrd").touch()
    cases, problems, _ = discover(spec, root)
    assert not problems and {c.official_split for c in cases} == {"train"} and len(cases) == 3
