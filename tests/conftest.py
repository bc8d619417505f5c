"""Shared fixtures: the real scans in ../shared/realdata (skipped with a reason when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from satds.resources import realdata_dir


@pytest.fixture(scope="session")
def realdata() -> Path:
    d = realdata_dir()
    if d is None:
        pytest.skip("../shared/realdata is absent (set SATDS_SHARED to the shared folder to run real-scan tests)")
    return d / "totalsegmentator-examples"


@pytest.fixture
def catalog(tmp_path):
    from satds.catalog import Catalog

    return Catalog(tmp_path / "catalog")
