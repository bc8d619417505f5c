"""satds build: outputs, physical alignment, statistics, incremental runs, resume, failures, Dask."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from satds.build import BuildConfig, build
from satds.ingest import ingest
from satds.phantoms import generate


@pytest.fixture
def built(tmp_path, catalog):
    for key in ("msd_liver", "kits23"):
        ingest(key, generate(key, tmp_path / key), catalog, workers=1)
    s = build(catalog, workers=1)
    assert (s.built, s.failed) == (6, 0), s.failures
    return catalog


def rows(catalog, sql):
    return catalog.connect().execute(sql).fetchall()


def test_outputs_are_ras_at_target_spacing_and_normalised(built):
    for img_path, lab_path, spacing in rows(built, "SELECT normalised_image, normalised_label, target_spacing FROM scans"):
        img, lab = nib.load(img_path), nib.load(lab_path)
        assert "".join(nib.aff2axcodes(img.affine)) == "RAS"
        assert np.allclose(img.header.get_zooms()[:3], spacing) and tuple(spacing) == (1.0, 1.0, 3.0)
        assert np.allclose(img.affine, lab.affine) and img.shape == lab.shape
        a = np.asarray(img.dataobj)
        assert a.dtype == np.float32
        assert abs(float(a.mean())) < 1e-3 and abs(float(a.std()) - 1) < 1e-3  # CT: clipped then z-scored


def test_normalised_labels_are_physically_aligned_with_the_source(built):
    """Each class's centroid in the normalised label equals its source centroid within half an output voxel."""
    for scan_id, lab_path in rows(built, "SELECT scan_id, normalised_label FROM scans"):
        lab = nib.load(lab_path)
        arr = np.asarray(lab.dataobj)
        for cls, values, centroid in rows(built, f"SELECT class_name, label_values, centroid_mm FROM annotations WHERE scan_id = '{scan_id}' AND voxels > 20"):
            ijk = np.argwhere(np.isin(arr, values)).mean(axis=0)
            c = (lab.affine @ np.r_[ijk, 1])[:3]
            assert np.all(np.abs(c - np.asarray(centroid)) <= [0.5, 0.5, 1.5]), (scan_id, cls, c, centroid)


def test_annotation_volumes_at_source_and_target(built):
    for name, v, vt, ml, mlt in rows(built, "SELECT class_name, voxels, voxels_target, volume_ml, volume_ml_target FROM annotations WHERE voxels > 100"):
        assert vt > 0 and mlt == pytest.approx(vt * 3.0 / 1000)
        assert ml == pytest.approx(v * 1.5 * 1.5 * 3.0 / 1000)
        assert abs(mlt / ml - 1) < 0.15, name  # small phantom blobs: one boundary layer of slack
    # An absent class stays a row with zero voxels on both grids.
    assert rows(built, "SELECT voxels, voxels_target FROM annotations WHERE scan_id = 'msd_liver/liver_7' AND class_name = 'liver tumor'") == [(0, 0)]


def test_sidecar_names_atoms_and_crop(built):
    [(lab_path, crop)] = rows(built, "SELECT normalised_label, crop_box FROM scans WHERE scan_id = 'kits23/case_00000'")
    meta = json.loads((__import__("pathlib").Path(lab_path).parent / "meta.json").read_text())
    assert meta["atoms"][0] == [] and ["kidney", "kidney_left", "kidney_tumor"] in meta["atoms"]  # the tumour lies in the left kidney
    assert meta["crop"]["start"] + meta["crop"]["stop"] == crop


def test_rebuild_is_incremental(built):
    s = build(built, workers=1)
    assert (s.built, s.skipped) == (0, 6)
    s = build(built, BuildConfig(spacing=(1.5, 1.5, 3.0)), workers=1)
    assert s.built == 6
    assert {tuple(r[0]) for r in rows(built, "SELECT target_spacing FROM scans")} == {(1.5, 1.5, 3.0)}


def test_killed_build_resumes_without_redoing_finished_scans(tmp_path, catalog):
    for key in ("msd_liver", "kits23"):
        ingest(key, generate(key, tmp_path / key), catalog, workers=1)
    seen = []

    def stop_after_two(done, total):
        seen.append(done)
        if done == 2:
            raise KeyboardInterrupt  # like Ctrl-C between two scans

    with pytest.raises(KeyboardInterrupt):
        build(catalog, workers=1, progress=stop_after_two)
    assert rows(catalog, "SELECT count(*) FROM scans WHERE status = 'built'") == [(0,)]  # nothing half-written
    s = build(catalog, workers=1)
    assert (s.recovered, s.built) == (2, 4)
    assert rows(catalog, "SELECT count(*) FROM scans WHERE status = 'built'") == [(6,)]


def test_a_failing_scan_is_recorded_and_the_rest_builds(tmp_path, catalog):
    root = generate("msd_liver", tmp_path / "liver")
    ingest("msd_liver", root, catalog, workers=1)
    p = root / "imagesTr/liver_1.nii.gz"
    p.write_bytes(p.read_bytes()[:2000])  # truncated after ingest
    s = build(catalog, workers=1)
    assert (s.built, s.failed) == (2, 1)
    [(case, stage, err)] = rows(catalog, 'SELECT "case", stage, error FROM failures')
    assert (case, stage) == ("liver_1", "build") and "imagesTr/liver_1.nii.gz" in err and "truncated" in err
    # Fixing the file and rebuilding clears the failure from the current view.
    generate("msd_liver", tmp_path / "liver")
    ingest("msd_liver", root, catalog, workers=1)
    build(catalog, workers=1)
    assert rows(catalog, "SELECT count(*) FROM failures") == [(0,)]


def test_parallel_and_serial_builds_give_identical_files(tmp_path):
    from satds.catalog import Catalog

    root = generate("kits23", tmp_path / "kits")
    outs = []
    for w in (1, 2):
        cat = Catalog(tmp_path / f"c{w}")
        ingest("kits23", root, cat, workers=1)
        build(cat, workers=w)
        outs.append(sorted((r[0], nib.load(r[1]).get_fdata().tobytes(), nib.load(r[2]).get_fdata().tobytes()) for r in cat.connect().execute("SELECT scan_id, normalised_image, normalised_label FROM scans").fetchall()))
    assert outs[0] == outs[1]


@pytest.mark.slow
def test_dask_local_cluster_build(tmp_path, catalog):
    pytest.importorskip("distributed")
    ingest("kits23", generate("kits23", tmp_path / "kits"), catalog, workers=1)
    s = build(catalog, workers=2, executor="dask")
    assert (s.built, s.failed) == (3, 0)
    assert rows(catalog, "SELECT count(*) FROM scans WHERE status = 'built'") == [(3,)]


def test_headers_only_ingest_defers_images_to_the_build(tmp_path, catalog):
    """--headers-only reads no image voxels at ingest; the build then fills the fingerprint and finds a
    corrupt image that ingest could not see."""
    root = generate("msd_liver", tmp_path / "liver")
    p = root / "imagesTr/liver_1.nii.gz"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 200])  # the header survives, the voxels do not
    s = ingest("msd_liver", root, catalog, workers=1, full=False)
    assert (s.scans, s.failed) == (3, 0)
    assert rows(catalog, "SELECT count(*) FROM scans WHERE fingerprint IS NULL") == [(3,)]
    assert rows(catalog, "SELECT dtype FROM scans WHERE case_id = 'liver_0'") == [("float32",)]
    b = build(catalog, workers=1)
    assert (b.built, b.failed) == (2, 1) and "truncated" in b.failures[0]
    assert rows(catalog, "SELECT count(*) FROM scans WHERE status = 'built' AND fingerprint IS NOT NULL") == [(2,)]
