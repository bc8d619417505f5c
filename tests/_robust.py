"""Helpers shared by the tests/test_robust_*.py files (bad input and faults)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import satds


def digest(root) -> dict:
    """Every file under ``root`` (names as bytes, so non-UTF-8 names count too) → its content hash."""
    out = {}
    for dirpath, _, files in os.walk(os.fsencode(root)):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.isfile(p):
                with open(p, "rb") as fh:
                    out[p] = hashlib.sha256(fh.read()).hexdigest()
    return out


def satds_env(**extra: str) -> dict:
    """The environment for a ``python -m satds`` subprocess: this satds first on the path."""
    src = str(Path(satds.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}
