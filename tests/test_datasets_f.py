"""Behaviour of this batch's plain specs (no hooks) and the framework fixes they needed."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from satds.errors import CaseError
from satds.ingest import dataset_classes, discover, ingest
from satds.ingest.hooks import _HOOKS, get_hook
from satds.io import read_volume
from satds.ontology import load_ontology
from satds.phantoms import generate
from satds.phantoms.writers import write_volume
from satds.specs import get_spec


@pytest.mark.parametrize("name", ["x.nrrd", "x.mha", "x.mhd"])
def test_itk_phantom_writer_round_trips_geometry(tmp_path, name):
    """write_itk used to leave its temp file unrenamed (NRRD/MHA) and to fail the rename after an .mhd."""
    arr = np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2)
    aff = np.array([[-1.5, 0, 0, 10.0], [0, -2.0, 0, 20.0], [0, 0, 3.0, -5.0], [0, 0, 0, 1]])
    write_volume(tmp_path / name, arr, aff)
    vol = read_volume(tmp_path / name)
    assert np.array_equal(vol.array, arr) and np.allclose(vol.affine, aff)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name] + (["x.raw"] if name.endswith(".mhd") else []))


def test_derived_class_source_keys(tmp_path):
    """A derived class's source values are its parts' values (it used to recurse on itself forever)."""
    classes = dataset_classes("pddca", "")
    onto = load_ontology()
    annotated = set(classes.all_classes())
    assert classes.source_keys_of("optic_nerve", onto, annotated) == ["OpticNerve_L", "OpticNerve_R"]


def test_discover_hook_case_errors_become_failures(tmp_path, catalog, monkeypatch):
    """A discover hook may return CaseErrors: each is that case's failure, the other cases go on."""
    root = generate("dap_atlas", tmp_path / "dap")
    real = get_hook("dap_atlas", "discover")  # also registers the quirk hooks

    def with_problem(spec, layout, root, cache=None):
        return [*real(spec, layout, root, cache=cache), CaseError("made-up problem", case="PETCT_x_1", file="x.nii.gz")]

    monkeypatch.setitem(_HOOKS["dap_atlas"], "discover", with_problem)
    s = ingest("dap_atlas", root, catalog, workers=1)
    assert (s.scans, s.failed) == (2, 1)
    [(case, file, msg)] = catalog.connect().execute('SELECT "case", file, error FROM failures').fetchall()
    assert (case, file, msg) == ("PETCT_x_1", "x.nii.gz", "dap_atlas/PETCT_x_1: x.nii.gz: made-up problem")


def test_ribfrac_every_fracture_instance_is_rib_fracture(tmp_path, catalog):
    root = generate("ribfrac", tmp_path / "rf")
    p = root / "Part1/RibFrac1-label.nii.gz"
    img = nib.load(p)
    arr = np.asarray(img.dataobj).astype(np.int16)
    free = np.argwhere(arr == 0)
    arr[tuple(free[:5].T)] = 2  # a second and a third instance
    arr[tuple(free[5:8].T)] = 7
    nib.save(nib.Nifti1Image(arr, img.affine), p)
    ingest("ribfrac", root, catalog, workers=1)
    voxels = dict(catalog.connect().execute("SELECT scan_id, voxels FROM annotations").fetchall())
    assert voxels["ribfrac/RibFrac1"] == int((arr != 0).sum())
    splits = dict(catalog.connect().execute("SELECT case_id, official_split FROM scans").fetchall())
    assert splits == {"RibFrac1": "train", "RibFrac301": "train", "RibFrac421": "validation"}


def test_atm22_skips_the_misaligned_case_with_its_reason(tmp_path):
    root = generate("atm22", tmp_path / "atm")
    cases, problems, skipped = discover(get_spec("atm22"), root)
    assert sorted(c.case_id for c in cases) == ["ATM_001", "ATM_301", "ATM_302"] and problems == []
    assert {c.case_id: c.label for c in cases}["ATM_302"] is None  # an image without a label: unlabelled
    assert [s[0] for s in skipped] == ["ATM_164"] and "misaligned" in skipped[0][1]
    assert {c.case_id: c.sat_id for c in cases}["ATM_001"] == "ATM_001_0000"


def test_lndb_nodule_is_the_union_of_the_readers(tmp_path, catalog):
    root = generate("lndb", tmp_path / "lndb")
    union = None
    for r in (1, 2, 3):
        m = read_volume(root / f"masks/LNDb-0001_rad{r}.mhd").array != 0
        union = m if union is None else union | m
    ingest("lndb", root, catalog, workers=1)
    voxels = dict(catalog.connect().execute("SELECT scan_id, voxels FROM annotations").fetchall())
    assert voxels["lndb/LNDb-0001"] == int(union.sum()) > 0
    (root / "masks/LNDb-0002_rad1.mhd").unlink()
    (root / "masks/LNDb-0002_rad1.raw").unlink()
    cases, problems, _ = discover(get_spec("lndb"), root)
    assert problems == [] and {c.case_id: c.label_files for c in cases}["LNDb-0002"] == {}  # unlabelled, not failed
