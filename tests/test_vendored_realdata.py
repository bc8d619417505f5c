"""A fresh clone has real scans: satds vendors TotalSegmentator's example CT/MR (Apache-2.0) and uses them
when the project's shared folder is absent, so `satds demo` and the real-scan tests show real anatomy anywhere."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

from satds.resources import realdata_dir, repo_root, vendored_realdata_dir

#: Git blob ids of the originals in TotalSegmentator's tests/reference_files (github.com/wasserth/TotalSegmentator).
UPSTREAM_BLOBS = {
    "ct_small.nii.gz": "ec5668e1e2f8983224f381b0fbd8847cd7de982f",  # example_ct_sm.nii.gz
    "mr_small.nii.gz": "913f726063c7d45127d1cdf86c8af7a3f527dbb2",  # example_mr_sm.nii.gz
    "seg_small_total.nii.gz": "2d67e0741ca00b09bff76c88ea21dc05b5f77f83",  # example_seg.nii.gz
    "seg_small_total_mr.nii.gz": "03232eac289607592803e40885bdbafef1e0c933",  # example_seg_mr.nii.gz
    "seg_dicom_total.nii.gz": "98226a819f45a23532131422d295e245485c50c0",  # example_seg_dicom.nii.gz
    "ct_dicom/CT.1.3.12.2.1107.5.1.4.60064.30000022120808113428000016573": "169953aec904871a442e655b7185998980e8a551",
}


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture
def no_shared(monkeypatch, tmp_path):
    """A machine without the project's shared folder: SATDS_SHARED names a folder that does not exist."""
    monkeypatch.setenv("SATDS_SHARED", str(tmp_path / "nonexistent-shared"))
    assert realdata_dir() == vendored_realdata_dir()


def test_vendored_files_are_totalsegmentators_with_its_licence():
    d = vendored_realdata_dir()
    ex = d / "totalsegmentator-examples"
    for name, blob in UPSTREAM_BLOBS.items():
        assert _blob_id((ex / name).read_bytes()) == blob, name
    assert len(list((ex / "ct_dicom").iterdir())) == 20
    assert "Apache License" in (d / "LICENSE").read_text() and "Version 2.0, January 2004" in (d / "LICENSE").read_text()
    assert "github.com/wasserth/TotalSegmentator" in (d / "NOTICE").read_text()
    assert "example_ct_sm.nii.gz" in (d / "README.md").read_text()


def test_binary_files_are_committed_as_binary():
    root = repo_root()
    if root is None or shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    files = [str((vendored_realdata_dir() / "totalsegmentator-examples" / n).relative_to(root)) for n in UPSTREAM_BLOBS]
    out = subprocess.run(["git", "check-attr", "binary", "--", *files], cwd=root, capture_output=True, text=True, check=True).stdout
    assert out.count(": binary: set") == len(files), out


def test_demo_real_scans_come_from_the_vendored_copy(no_shared, tmp_path):
    """The demo's real-scan step runs without the shared folder; the real liver is a liver (~1 l), not a phantom blob."""
    from satds.catalog import Catalog
    from satds.demo import add_real_scans
    from satds.ingest import ingest

    touched = dict(add_real_scans(tmp_path / "downloads"))
    assert set(touched) == {"totalsegmentator", "btcv", "totalsegmentator_mri", "ctspine1k_sources"}
    cat = Catalog(tmp_path / "catalog")
    s = ingest("btcv", touched["btcv"], cat, workers=1)
    assert (s.scans, s.failed) == (1, 0), s.failures
    rows = dict(cat.connect().execute("SELECT class_name, voxels FROM annotations WHERE voxels > 0").fetchall())
    # 38,634 liver voxels of 3 mm isotropic (27 mm^3 each): 1,043 ml.
    assert rows["liver"] == 38634 and rows["spleen"] == 9452
    [(ml,)] = cat.connect().execute("SELECT volume_ml FROM annotations WHERE class_name = 'liver'").fetchall()
    assert ml == pytest.approx(38634 * 27 / 1000)
