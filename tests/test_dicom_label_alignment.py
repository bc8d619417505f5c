"""Pancreas-CT: the NIfTI label (voxels in DICOM instance order) lands on the DICOM series by physical
space, and the phantom's ITK writers (NRRD/MHA/MHD) round-trip their geometry."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from satds.geometry import reorient
from satds.ingest import dataset_classes, discover
from satds.ingest.read import load_channels, load_labels
from satds.io import read_volume
from satds.ontology import load_ontology
from satds.phantoms import generate
from satds.phantoms.generate import make_body, ras_affine
from satds.phantoms.writers import write_volume
from satds.specs import get_spec


def test_pancreas_label_is_the_drawn_organ(tmp_path):
    root = generate("pancreas_ct", tmp_path / "pct")
    spec = get_spec("pancreas_ct")
    onto = load_ontology()
    classes = dataset_classes("pancreas_ct", str(root))
    cases = {c.case_id: c for c in discover(spec, root)[0]}
    assert sorted(cases) == ["PANCREAS_0001", "PANCREAS_0082"]
    for n, caps in enumerate(spec.phantom.cases):
        if caps["case"] not in cases:
            continue
        case = cases[caps["case"]]
        label_file = nib.load(root / case.label)
        assert "".join(nib.aff2axcodes(label_file.affine)) == "LPI"  # instance order: superior first
        [image] = load_channels(spec, case, root)
        assert image.axcodes == "LPS"  # the series as SimpleITK sorts it
        atoms = load_labels(spec, classes, onto, case, root, image)
        got, aff = reorient(atoms.mask("pancreas"), image.affine, "RAS")
        body = make_body(spec, onto, dict(caps), n, set())
        assert np.allclose(aff, body.affine, atol=1e-4)
        assert got.sum() > 50
        assert np.array_equal(got, body.blobs["1"])
        assert not np.array_equal(got[:, :, ::-1], body.blobs["1"])


@pytest.mark.parametrize("name", ["x.nrrd", "x.seg.nrrd", "x.mha", "x.mhd"])
def test_itk_writers_round_trip(tmp_path, name):
    arr = np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2)
    aff = ras_affine(arr.shape, (0.8, 0.9, 2.0))
    aff = aff @ np.diag([-1.0, 1.0, -1.0, 1.0])  # an LAI grid
    write_volume(tmp_path / name, arr, aff)
    vol = read_volume(tmp_path / name)
    assert np.array_equal(np.asarray(vol.array), arr)
    assert np.allclose(vol.affine, aff)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["x.mhd", "x.raw"] if name == "x.mhd" else [name])
