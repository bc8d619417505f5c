"""Small catalogs of phantom datasets for the export, pseudo-label and nnU-Net tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np


def build_catalog(tmp: Path, datasets: list[str], *, duplicate: bool = False, build: bool = False, folds: int = 5):
    """Phantoms → ingest → (build) → split. ``duplicate``: msd_spleen gets ``spleen_99``, the image of
    msd_liver's ``liver_0`` with the spleen label of ``spleen_2`` (one image in two datasets)."""
    from satds.build import build as build_all
    from satds.catalog import Catalog
    from satds.ingest import ingest
    from satds.phantoms import generate
    from satds.split import run_split

    cat = Catalog(tmp / "catalog")
    roots = {k: generate(k, tmp / "raw" / k) for k in datasets}
    if duplicate:
        s, li = roots["msd_spleen"], roots["msd_liver"]
        shutil.copyfile(li / "imagesTr" / "liver_0.nii.gz", s / "imagesTr" / "spleen_99.nii.gz")
        shutil.copyfile(s / "labelsTr" / "spleen_2.nii.gz", s / "labelsTr" / "spleen_99.nii.gz")
    for k, root in roots.items():
        res = ingest(k, root, cat, workers=1)
        assert res.failed == 0, res.failures
    if build:
        b = build_all(cat, workers=1)
        assert b.failed == 0, b.failures
    run_split(cat, folds=folds)
    return cat


def read(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj)


def source_mask(raw: Path, dataset: str, case: str, values: set[int]) -> np.ndarray:
    """A class mask from a phantom's own label file, in RAS voxel order."""
    img = nib.as_closest_canonical(nib.load(str(raw / dataset / "labelsTr" / f"{case}.nii.gz")))
    return np.isin(np.asarray(img.dataobj), list(values))
