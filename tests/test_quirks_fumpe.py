"""FUMPE's .mat masks land on their DICOM slices by InstanceNumber, whatever the series' slice order."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import scipy.io

from satds.ingest import discover, ingest
from satds.ingest.quirks.fumpe import fumpe_mat_labels
from satds.ingest.read import load_channels
from satds.phantoms import generate
from satds.geometry import reorient
from satds.ontology import load_ontology
from satds.phantoms.generate import make_body, ras_affine, to_file_orientation
from satds.phantoms.writers import write_dicom_series
from satds.specs import get_spec


def write_case(root, orientation: str, instance_base: int = 1):
    """A 6x5x4 series whose voxels all differ; the mask marks values divisible by 7, stored like FUMPE:
    (rows, columns, slices) with slice s = the (s+1)-th instance."""
    shape = (6, 5, 4)
    vol = (np.arange(np.prod(shape)).reshape(shape) * 3 + 100).astype(np.float32)
    arr, aff = to_file_orientation(vol, ras_affine(shape, (0.7, 0.8, 2.5)), orientation, False)
    folder = root / "CT_scans" / "PAT001"
    paths = write_dicom_series(folder, arr, aff, patient_id="PAT001", name_pattern="D{n:04d}.dcm")
    for p in paths:  # instance numbers need not start at 1
        ds = pydicom.dcmread(p)
        ds.InstanceNumber = int(ds.InstanceNumber) - 1 + instance_base
        ds.save_as(p)
    mask = (np.rint(arr).astype(int) % 7 == 0).astype(np.uint8)  # file order [column, row, instance]
    (root / "GroundTruth").mkdir(parents=True)
    scipy.io.savemat(root / "GroundTruth" / "PAT001.mat", {"Mask": np.transpose(mask, (1, 0, 2))})
    return int(mask.sum())


@pytest.mark.parametrize("orientation,base", [("LPI", 1), ("LPS", 1), ("LPI", 101), ("RAI", 1)])
def test_mask_slices_follow_instance_numbers(tmp_path, orientation, base):
    n = write_case(tmp_path, orientation, base)
    spec = get_spec("fumpe")
    [case], problems, _ = discover(spec, tmp_path)
    assert not problems
    [image] = load_channels(spec, case, tmp_path)
    [piece] = fumpe_mat_labels(case, spec, tmp_path, image)
    assert piece.file == "GroundTruth/PAT001.mat"
    assert piece.array.shape == image.spatial_shape == (6, 5, 4)
    expected = (np.rint(image.array).astype(int) % 7 == 0)
    assert np.array_equal(piece.array.astype(bool), expected)
    assert int(piece.array.sum()) == n == int(expected.sum())


def test_phantom_mask_is_the_drawn_lesion(tmp_path):
    """The phantom is craniocaudal (instance order opposite to the sorted series): the mask read back is the
    lesion blob the phantom drew, voxel for voxel in world space, not its mirror image."""
    root = generate("fumpe", tmp_path / "fumpe")
    spec = get_spec("fumpe")
    onto = load_ontology()
    cases, _, _ = discover(spec, root)
    for n, caps in enumerate(spec.phantom.cases):
        case = next(c for c in cases if c.case_id == caps["case"])
        body = make_body(spec, onto, dict(caps), n, set())
        [image] = load_channels(spec, case, root)
        [piece] = fumpe_mat_labels(case, spec, root, image)
        got, aff = reorient(piece.array.astype(bool), image.affine, "RAS")
        assert np.allclose(aff, body.affine)
        assert got.sum() > 50
        assert np.array_equal(got, body.blobs["1"])
        assert not np.array_equal(got[:, :, ::-1], body.blobs["1"])


def failures(catalog):
    return catalog.connect().execute('SELECT "case", file, error_type, error FROM failures').fetchall()


def test_mask_with_wrong_slice_count(tmp_path, catalog):
    write_case(tmp_path, "LPI")
    p = tmp_path / "GroundTruth" / "PAT001.mat"
    m = scipy.io.loadmat(p)["Mask"]
    scipy.io.savemat(p, {"Mask": m[:, :, :3]})
    s = ingest("fumpe", tmp_path, catalog, workers=1)
    assert (s.scans, s.failed) == (0, 1)
    [(case, file, kind, msg)] = failures(catalog)
    assert (case, file, kind) == ("PAT001", "GroundTruth/PAT001.mat", "GeometryError")
    assert msg == "fumpe/PAT001: GroundTruth/PAT001.mat: mask shape (5, 6, 3) is not the series' (rows, columns, slices) = (5, 6, 4)"


def test_mat_without_mask_variable(tmp_path, catalog):
    write_case(tmp_path, "LPI")
    p = tmp_path / "GroundTruth" / "PAT001.mat"
    m = scipy.io.loadmat(p)["Mask"]
    scipy.io.savemat(p, {"A": m, "B": m})
    ingest("fumpe", tmp_path, catalog, workers=1)
    [(case, file, kind, msg)] = failures(catalog)
    assert (case, file, kind) == ("PAT001", "GroundTruth/PAT001.mat", "LabelError")
    assert "no variable 'Mask' and not exactly one array in the file (found ['A', 'B'])" in msg


def test_unreadable_mat(tmp_path, catalog):
    write_case(tmp_path, "LPI")
    (tmp_path / "GroundTruth" / "PAT001.mat").write_bytes(b"MATLAB 7.3 MAT-file" + b"\0" * 200)
    ingest("fumpe", tmp_path, catalog, workers=1)
    [(case, file, kind, msg)] = failures(catalog)
    assert (case, file, kind) == ("PAT001", "GroundTruth/PAT001.mat", "ReadError")
    assert "cannot read MATLAB file" in msg
