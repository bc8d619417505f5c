"""The demo catalog (universal-33 phantoms + the real scans, built and split), made once per test session
and shared by tests/test_data*.py, tests/test_export_monai*.py and tests/test_universal33.py: they only read
it (exports go to folders of their own)."""

from __future__ import annotations

import functools
from pathlib import Path


@functools.cache
def demo_catalog(base: Path):
    from satds.demo import prepare

    return prepare(base / "satds-demo", workers=1)


def voxels_target(cat) -> dict[tuple[str, str], int]:
    con = cat.connect()
    try:
        return {(s, c): v for s, c, v in con.execute("SELECT scan_id, class_id, voxels_target FROM annotations").fetchall()}
    finally:
        con.close()


def coverage(cat) -> dict[tuple[str, str], str]:
    con = cat.connect()
    try:
        return {(s, c): st for s, c, st in con.execute("SELECT scan_id, class_id, status FROM coverage").fetchall()}
    finally:
        con.close()
