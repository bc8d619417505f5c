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


# CTPelvic1K: the release's train/validation/test division (readme Table 1 = fold 0 of splits_final.pkl).

def _ctpelvic1k_splits(root: Path) -> dict[str, str]:
    cases, problems, _ = discover(get_spec("ctpelvic1k"), root)
    assert not problems, problems
    return {c.case_id: c.official_split for c in cases}


def test_ctpelvic1k_split_from_the_repository_pickle(tmp_path):
    """The phantom root holds the repository's splits_final.pkl (nnU-Net v1: numpy name arrays); its fold 0 decides."""
    import pickle

    from satds.phantoms import generate

    root = generate("ctpelvic1k", tmp_path / "ctpelvic1k")
    assert _ctpelvic1k_splits(root) == {
        "dataset1_img0001": "train",
        "dataset2_1.3.6.1.4.1.9328.50.4.0001_3": "train",
        "dataset3_colon_001": "validation",
        "dataset4_case_00014": "train",
        "dataset5_0507688": "train",
        "dataset6_CLINIC_0001": "test",
        "dataset7_CLINIC_metal_0004": "test",  # not in the file: readme Table 1 (0(61)/0/14)
    }
    # The release's file wins over the shipped copy: a pickle that moves img0001 to test is obeyed, and one
    # written by numpy 1 (numpy.core, like the repository's) reads as well as numpy 2's.
    pkl = root / "CTPelvic1K" / "splits_final.pkl"
    folds = pickle.loads(pkl.read_bytes())
    folds[0]["test"] = folds[0]["test"].tolist() + ["train_dataset1_img0001"]
    folds[0]["train"] = [n for n in folds[0]["train"].tolist() if n != "train_dataset1_img0001"]
    import numpy as np

    folds[0] = {k: np.array(v) for k, v in folds[0].items()}
    data = pickle.dumps(folds, protocol=3)
    assert b"numpy._core.multiarray\n_reconstruct" in data
    pkl.write_bytes(data.replace(b"numpy._core.multiarray\n_reconstruct", b"numpy.core.multiarray\n_reconstruct"))
    assert _ctpelvic1k_splits(root)["dataset1_img0001"] == "test"


def test_ctpelvic1k_split_from_the_shipped_fold_matches_table_1(tmp_path):
    """Without the repository's file, the shipped copy of fold 0 gives the same roles, and its counts are Table 1's."""
    from satds.ingest.nnunet_splits import read_nnunet_splits
    from satds.phantoms import generate
    from satds.resources import specs_dir

    root = generate("ctpelvic1k", tmp_path / "ctpelvic1k")
    (root / "CTPelvic1K" / "splits_final.pkl").unlink()
    got = _ctpelvic1k_splits(root)
    assert got["dataset3_colon_001"] == "validation" and got["dataset6_CLINIC_0001"] == "test" and got["dataset1_img0001"] == "train"
    assert got["dataset7_CLINIC_metal_0004"] == "test"
    [fold] = read_nnunet_splits(specs_dir() / "data" / "ctpelvic1k" / "splits_final_fold0.json")
    counts = Counter((n.split("_")[1], split) for split, names in fold.items() for n in names)
    table_1 = {"dataset1": (21, 7, 7), "dataset2": (440, 146, 145), "dataset3": (93, 31, 31), "dataset4": (26, 9, 9), "dataset5": (24, 8, 9), "dataset6": (61, 21, 21)}
    assert {d: (counts[(d, "train")], counts[(d, "val")], counts[(d, "test")]) for d in table_1} == table_1
    assert sum(counts.values()) == 1109


def test_a_splits_pickle_cannot_run_code(tmp_path):
    """A splits_final.pkl is untrusted: any global outside the list/dict/numpy-string types is refused, unexecuted."""
    import os
    import pickle

    import pytest

    from satds.errors import SpecError
    from satds.phantoms import generate

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    root = generate("ctpelvic1k", tmp_path / "ctpelvic1k")
    (root / "CTPelvic1K" / "splits_final.pkl").write_bytes(pickle.dumps([{"train": [Payload()]}]))
    with pytest.raises(SpecError, match="not allowed"):
        _ctpelvic1k_splits(root)
    assert not marker.exists()


def test_an_unreadable_splits_file_is_a_read_error_naming_it(tmp_path):
    import pytest

    from satds.errors import ReadError
    from satds.ingest.nnunet_splits import read_nnunet_splits

    path = tmp_path / "splits_final.pkl"
    path.mkdir()  # read_bytes() raises IsADirectoryError, an OSError
    with pytest.raises(ReadError, match=r"the nnU-Net splits file cannot be read \(IsADirectoryError") as e:
        read_nnunet_splits(path)
    assert e.value.file == str(path)
