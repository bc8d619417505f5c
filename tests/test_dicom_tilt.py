"""Gantry tilt: a tilted CT series (slices stacked with an in-plane shear) is resampled onto an orthogonal
grid exactly as dcm2niix does, its labels follow, the catalog records it, and nothing lands off its place."""

from __future__ import annotations

import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _dicom_testlib import gantry_series, hu, pixel_world, series, shear_series, source_digest, stored_affine, voxel_of
from satds.errors import GeometryError
from satds.geometry import corners, deshear, grid_mismatch, reorient, shear_of
from satds.ingest import dataset_classes, discover, ingest
from satds.ingest.read import load_channels, load_labels
from satds.io import read_volume
from satds.io.itk import dicom_series, from_sitk
from satds.ontology import load_ontology
from satds.phantoms import generate
from satds.specs import get_spec


def test_a_tilted_real_series_lands_where_dcm2niix_puts_it(realdata, tmp_path):
    """The real series tilted 15 degrees the way a gantry does (GE-style headers): same voxel centres as
    dcm2niix's tilt-corrected output, same HU."""
    dcm2niix = pytest.importorskip("dcm2niix")
    src = tmp_path / "tilted"
    gantry_series(realdata / "ct_dicom", src, 15.0)
    out = tmp_path / "nii"
    out.mkdir()
    run = subprocess.run([dcm2niix.bin, "-z", "n", "-b", "n", "-f", "ct", "-o", str(out), str(src)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    ref = nib.load(next(out.glob("ct_Tilt*.nii")))
    vol = read_volume(src)
    assert vol.meta["gantry_tilt_deg"] == pytest.approx(15.0, abs=1e-3)
    assert grid_mismatch(vol.spatial_shape, vol.affine, ref.shape, ref.affine) is None
    ref_arr, ref_aff = reorient(np.asarray(ref.dataobj, dtype=np.float64), ref.affine, vol.axcodes)
    assert ref_arr.shape == vol.shape == (512, 512 + 11, 20)  # grown by the total shift, rounded up
    assert np.abs(corners(vol.shape, vol.affine) - corners(ref_arr.shape, ref_aff)).max() < 0.5  # mm
    # HU where both hold data (dcm2niix pads with the darkest voxel and extends its edge by part of a row).
    fill = float(vol.array.min())
    both = (vol.array > fill) & (ref_arr > fill)
    diff = np.abs(vol.array[both] - ref_arr[both])
    assert both.sum() > 0.5 * vol.array.size  # the body and the table (air is the darkest value)
    assert np.median(diff) == 0 and (diff <= 1).mean() > 0.9999


def test_every_pixel_of_a_tilted_series_sits_at_its_dicom_position(realdata, tmp_path):
    """The real series tilted by one row per slice (ImagePositionPatient moved, as the issue's recipe): SimpleITK
    alone stacks it orthogonally and misplaces the top slice by 18 mm; satds puts every pixel exactly where its
    header says, with its exact HU (a whole-row shift needs no interpolation)."""
    import SimpleITK as sitk

    src = shutil.copytree(realdata / "ct_dicom", tmp_path / "ct")
    angle = shear_series(src, rows_per_slice=1.0)
    slices = series(src)
    # The failure: read as an orthogonal stack, the last slice's first pixel is a long way from its position.
    reader = sitk.ImageSeriesReader()
    [files] = dicom_series(src).values()
    reader.SetFileNames(files)
    naive = from_sitk(reader.Execute())
    top = pixel_world(slices[-1])[0, 0]
    assert np.linalg.norm(naive.affine @ [0, 0, len(slices) - 1, 1] - np.r_[top, 1]) > 15.0

    vol = read_volume(src)
    assert vol.meta["gantry_tilt_deg"] == pytest.approx(angle, abs=1e-3)
    assert vol.shape == (512, 512 + 19, 20)
    assert shear_of(vol.shape, vol.affine).angle_deg < 1e-6  # stored orthogonal, and now it is
    for k, ds in enumerate(slices):
        idx, off = voxel_of(pixel_world(ds).reshape(-1, 3), vol.affine)
        assert off < 1e-3
        assert (idx[:, 2] == k).all()
        assert np.array_equal(vol.array[idx[:, 0], idx[:, 1], idx[:, 2]], hu(ds).reshape(-1))


def test_deshear_interpolates_linearly_and_labels_follow_by_nearest():
    arr = np.zeros((3, 4, 3), dtype=np.int16)
    arr[:, :, :] = (np.arange(4) * 100)[None, :, None]  # row value = 100 * row
    aff = np.eye(4)
    aff[1, 2] = 0.3  # each slice 0.3 voxel further along axis 1
    out, out_aff = deshear(arr, aff, fill=-1)
    assert out.shape == (3, 5, 3) and np.allclose(out_aff[:3, 2], [0, 0, 1])
    # Output voxel j of slice k lies at input row j - 0.3 k: linear between rows, nothing beyond the ends.
    assert out[0, :, 0].tolist() == [0, 100, 200, 300, -1]
    assert out[0, :, 2].tolist() == [-1, 40, 140, 240, -1]
    lab, lab_aff = deshear((arr == 200).astype(np.uint8), aff, nearest=True)
    assert np.allclose(lab_aff, out_aff)
    # Input row 2 lies at output row 2, 2.3, 2.6: the nearest output rows.
    assert [np.flatnonzero(lab[0, :, k]).tolist() for k in range(3)] == [[2], [2], [3]]


def test_header_rounding_is_not_a_tilt(tmp_path):
    from satds.phantoms.writers import write_dicom_series

    arr = np.random.default_rng(0).integers(-1000, 1000, (12, 10, 8)).astype(np.int16)
    aff = np.diag([0.8, 0.8, 2.5, 1.0])
    write_dicom_series(tmp_path / "s", arr, aff)
    for k, ds in enumerate(series(tmp_path / "s")):
        p = np.asarray(ds.ImagePositionPatient, dtype=float) + [0.004 * (-1) ** k, 0.003, 0]  # a few µm of noise
        ds.ImagePositionPatient = [f"{v:.3f}" for v in p]
        ds.save_as(ds.filename)
    vol = read_volume(tmp_path / "s")
    assert "gantry_tilt_deg" not in vol.meta
    assert np.array_equal(vol.array, arr)


STUDY = "Adrenal-ACC-Ki67-Seg/Adrenal_Ki67_Seg_001/08-22-2000-NA-CT ABDOMEN-56266"


def test_tilted_ct_with_its_seg_is_corrected_recorded_and_the_seg_follows(tmp_path, catalog):
    """A TCIA CT series tilted by one row per slice with the DICOM-SEG drawn on its slices: the scan is
    ingested on the orthogonal grid, ``scans.gantry_tilt_deg`` says so, the SEG's voxels sit where its frames'
    positions say, the other case is untouched and the sources are byte-identical."""
    from pydicom.sr.codedict import codes

    from satds.phantoms.quirks.tcia_seg import write_seg

    root = generate("adrenal_acc_ki67", tmp_path / "root")
    ct_dir = root / STUDY / "2.000000-AXIAL PORTAL-21436"
    seg_file = root / STUDY / "300.000000-Segmentation-30411" / "1-1.dcm"
    old = pydicom.dcmread(seg_file)
    frames_by_pos = {tuple(np.round([float(v) for v in fg.PlanePositionSequence[0].ImagePositionPatient], 3)): f for fg, f in zip(old.PerFrameFunctionalGroupsSequence, old.pixel_array)}
    before = series(ct_dir)
    painted = np.stack([frames_by_pos.get(tuple(np.round([float(v) for v in d.ImagePositionPatient], 3)), np.zeros((d.Rows, d.Columns), np.uint8)) for d in before])
    angle = shear_series(ct_dir, rows_per_slice=1.0)
    tilted = series(ct_dir)
    write_seg(tilted, painted, [("Tumor", codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Neoplasm)], seg_file)
    digest = source_digest(root)

    s = ingest("adrenal_acc_ki67", root, catalog, workers=1)
    assert (s.scans, s.failed) == (2, 0)
    rows = dict(catalog.connect().execute("SELECT case_id, gantry_tilt_deg FROM scans").fetchall())
    assert rows["Adrenal_Ki67_Seg_001_56266"] == pytest.approx(angle, abs=1e-3)
    assert rows["Adrenal_Ki67_Seg_002_93304"] is None
    assert source_digest(root) == digest

    spec = get_spec("adrenal_acc_ki67")
    case = next(c for c in discover(spec, root)[0] if c.case_id == "Adrenal_Ki67_Seg_001_56266")
    [image] = load_channels(spec, case, root)
    labels = load_labels(spec, dataset_classes(spec.key, str(root)), load_ontology(), case, root, image)
    expected = np.zeros(image.spatial_shape, dtype=bool)
    for ds, frame in zip(tilted, painted):
        r, c = np.nonzero(frame)
        idx, off = voxel_of(pixel_world(ds)[r, c], image.affine)
        assert off < 1e-3
        expected[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    assert expected.sum() == (painted > 0).sum() > 0
    assert np.array_equal(labels.mask("adrenocortical_carcinoma"), expected)

    # A scans part written before the column existed still reads (the column is null there).
    part = next((catalog.root / "scans").glob("*.parquet"))
    t = pq.read_table(part)
    old = t.drop_columns(["gantry_tilt_deg"])
    old_rows = old.to_pylist()[:1]
    old_rows[0]["scan_id"] += "-old"
    # Named and typed as satds wrote parts before the column (and before parts carried a footer entry).
    pq.write_table(pa.Table.from_pylist(old_rows, schema=old.schema.remove_metadata()), catalog.root / "scans" / "part-00000000000000000001-0123abcd.parquet")
    got = catalog.connect().execute("SELECT gantry_tilt_deg FROM scans WHERE scan_id LIKE '%-old'").fetchall()
    assert got == [(None,)]


def test_a_mask_on_the_sheared_grid_follows_and_one_on_neither_grid_is_refused(tmp_path, catalog):
    """Pancreas-CT with both series tilted: a label NIfTI whose header places it on the stored (sheared)
    slices is moved with the image; one still on the untilted grid is a failure naming the file and the tilt."""
    spec = get_spec("pancreas_ct")
    root = generate("pancreas_ct", tmp_path / "root")
    cases = {c.case_id: c for c in discover(spec, root)[0]}
    sheared_case, stale_case = cases["PANCREAS_0001"], cases["PANCREAS_0082"]
    # The sheared case's label: same voxels, header moved with the slices it was drawn on.
    [untilted] = load_channels(spec, sheared_case, root)
    angle = [shear_series(root / c.images[0], rows_per_slice=1.0) for c in (sheared_case, stale_case)][1]
    sheared = stored_affine(root / sheared_case.images[0])
    label_path = root / sheared_case.label
    lab = nib.load(label_path)
    lab_arr = np.asarray(lab.dataobj)
    new_aff = sheared @ np.linalg.inv(untilted.affine) @ lab.affine
    img = nib.Nifti1Image(lab_arr, new_aff)
    img.set_sform(new_aff, code=1)
    nib.save(img, label_path)
    digest = source_digest(root)

    s = ingest("pancreas_ct", root, catalog, workers=1)
    assert (s.scans, s.failed) == (1, 1)
    [(case, kind, file, msg)] = catalog.connect().execute('SELECT "case", error_type, file, error FROM failures').fetchall()
    assert (case, kind, file) == ("PANCREAS_0082", "GeometryError", stale_case.label)
    assert "mask is not on its image's grid" in msg and f"gantry tilt of {round(angle, 4):g} degrees" in msg
    assert source_digest(root) == digest

    [image] = load_channels(spec, sheared_case, root)
    got = load_labels(spec, dataset_classes(spec.key, str(root)), load_ontology(), sheared_case, root, image).mask("pancreas")
    ijk = np.argwhere(lab_arr > 0)
    world = (new_aff @ np.c_[ijk, np.ones(len(ijk))].T).T[:, :3]
    idx, off = voxel_of(world, image.affine)
    assert off < 1e-3
    assert got.sum() == len(ijk) > 0
    assert got[idx[:, 0], idx[:, 1], idx[:, 2]].all()


def test_plethora_masks_of_a_tilted_ct_follow_it(tmp_path):
    """NSCLC-Radiomics with a tilted CT: PleThora masks on the stored slices (dcm2niix's uncorrected array, in
    RPI order) land where those slices are; a mask of any other shape is refused naming the tilt."""
    from satds.ingest.quirks.nsclc import MASK_AXCODES, read_plethora

    spec = get_spec("nsclc")
    root = generate("nsclc", tmp_path / "root")
    case = discover(spec, root)[0][0]
    angle = shear_series(root / case.images[0], rows_per_slice=1.0)
    [image] = load_channels(spec, case, root)
    assert image.meta["gantry_tilt_deg"] == pytest.approx(angle, abs=1e-3) and angle > 10
    # The stored slices' grid from the headers, in the masks' RPI voxel order.
    stored, rpi = reorient(np.empty((40, 36, 20), dtype=np.uint8), stored_affine(root / case.images[0]), MASK_AXCODES)
    pieces = {p.key: p.array for p in read_plethora(case, spec, root, image)}
    for key, rel in case.label_files.items():
        arr = np.asarray(nib.load(root / rel).dataobj)
        assert arr.shape == stored.shape != image.spatial_shape
        ijk = np.argwhere(arr > 0)
        idx, off = voxel_of((rpi @ np.c_[ijk, np.ones(len(ijk))].T).T[:, :3], image.affine)
        assert off < 1e-3 and len(ijk) > 0
        assert pieces[key].sum() == len(ijk) and pieces[key][idx[:, 0], idx[:, 1], idx[:, 2]].all()
    rel = next(iter(case.label_files.values()))
    nib.save(nib.Nifti1Image(np.zeros((7, 7, 7), np.uint8), np.eye(4)), root / rel)
    with pytest.raises(GeometryError, match=r"mask shape \(7, 7, 7\) is not the CT's .* gantry tilt of"):
        read_plethora(case, spec, root, image)
