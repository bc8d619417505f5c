"""Shared fixtures: the real example scans (../shared/realdata, else the copy vendored in satds/_realdata) and
SAT-DS's published lists in ../shared/datasets/sat-ds (skipped with a reason when the shared folder is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from satds.resources import realdata_dir, shared_dir


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The real example scans: never skipped, satds vendors a copy."""
    return realdata_dir() / "totalsegmentator-examples"


@pytest.fixture(scope="session")
def sat_ds_dir() -> Path:
    """SAT-DS's published class lists and splits (``datasets/sat-ds`` of the project's shared folder)."""
    s = shared_dir()
    if s is None or not (s / "datasets" / "sat-ds").exists():
        pytest.skip("the shared folder's datasets/sat-ds is absent (../shared beside the checkout, or $SATDS_SHARED)")
    return s / "datasets" / "sat-ds"


@pytest.fixture
def catalog(tmp_path):
    from satds.catalog import Catalog

    return Catalog(tmp_path / "catalog")
