"""HECKTOR 2022: one scan, CT + PET channels on different grids, the PET brought onto the CT grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from satds.build.task import onto_grid
from satds.ingest import dataset_classes, ingest
from satds.ingest.discover import discover
from satds.ingest.read import load_channels, load_labels
from satds.io import read_volume
from satds.ontology import load_ontology
from satds.phantoms import generate
from satds.phantoms.quirks.hecktor import block_mean, coarse_affine
from satds.specs import get_spec


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return generate("hecktor2022", tmp_path_factory.mktemp("hecktor"))


def test_coarse_grid_keeps_block_centres():
    aff = np.diag([1.0, 1.5, 2.0, 1.0])
    aff[:3, 3] = (-10.0, 4.0, 7.0)
    c = coarse_affine(aff)
    # PET voxel (0,0,0) is the centre of CT voxels 0..1 on each axis.
    assert np.allclose(c[:3, 3], aff[:3, :3] @ [0.5, 0.5, 0.5] + aff[:3, 3])
    assert np.allclose(np.diag(c)[:3], [2.0, 3.0, 4.0])
    assert block_mean(np.arange(8, dtype=float).reshape(2, 2, 2)).tolist() == [[[3.5]]]


def test_pet_is_resampled_onto_the_ct_grid_by_physical_space(release):
    root = Path(release)
    pt = read_volume(root / "hecktor2022_training/hecktor2022/imagesTr/CHUM-001__PT.nii.gz")
    ct = read_volume(root / "hecktor2022_training/hecktor2022/imagesTr/CHUM-001__CT.nii.gz")
    assert pt.spatial_shape == (20, 18, 12) and ct.spatial_shape == (40, 36, 24)
    spec = get_spec("hecktor2022")
    cases, problems, _ = discover(spec, root)
    assert not problems
    case = next(c for c in cases if c.case_id == "CHUM-001")
    channels = load_channels(spec, case, root)
    assert [v.spatial_shape for v in channels] == [(40, 36, 24), (20, 18, 12)]
    labels = load_labels(spec, dataset_classes("hecktor2022", str(root)), load_ontology(), case, root, channels[0])
    pet_on_ct = onto_grid(channels[1], channels[0])
    assert pet_on_ct.shape == (40, 36, 24)
    tumour = labels.mask("head_and_neck_tumor")
    node = labels.mask("lymph_node")
    background = (labels.array == 0) & (np.asarray(channels[0].array) > -500)
    # Hot lesions sit on their labels once the PET is aligned by world coordinates (block means blur edges).
    assert pet_on_ct[tumour].mean() > 5.0 and pet_on_ct[node].mean() > 5.0
    assert np.median(pet_on_ct[background]) < 2.0


def test_scan_has_two_channels_and_the_test_case_no_label(release, catalog):
    s = ingest("hecktor2022", release, catalog, workers=1)
    assert (s.scans, s.failed) == (3, 0)
    rows = catalog.connect().execute("SELECT case_id, channels, channel_modalities, shape, label_kind, official_split FROM scans ORDER BY case_id").fetchall()
    assert [(r[0], list(r[1]), list(r[2]), list(r[3]), r[4], r[5]) for r in rows] == [
        ("CHUM-001", ["CT", "PET"], ["CT", "PET"], [40, 36, 24], "labelmap", "train"),
        ("MDA-192", ["CT", "PET"], ["CT", "PET"], [40, 36, 24], "labelmap", "train"),
        ("USZ-001", ["CT", "PET"], ["CT", "PET"], [40, 36, 24], "none", "test"),
    ]
