"""Helpers shared by the tests of bad input and faults (tests/test_robust_*.py, tests/test_hardening_*.py, the DICOM
tests): a folder's content digest, the CLI's output unwrapped, the satds command in its own process."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import satds


def tree_digest(root) -> dict[str, str]:
    """Every regular file under ``root``, by its path relative to ``root``, → the SHA-256 of its bytes (to
    show a folder stayed byte-identical). Names are walked as bytes, so a name that is not UTF-8 counts too
    (its key carries the undecodable bytes as surrogate escapes); pipes and sockets are left alone."""
    base = os.fsencode(root)
    out = {}
    for dirpath, _, files in os.walk(base):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.isfile(p):
                with open(p, "rb") as fh:
                    out[os.fsdecode(os.path.relpath(p, base))] = hashlib.sha256(fh.read()).hexdigest()
    return out


def flat(result) -> str:
    """A CliRunner result's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def satds_env(**extra: str) -> dict:
    """The environment for a ``python -m satds`` subprocess: this satds first on the path."""
    src = str(Path(satds.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}
