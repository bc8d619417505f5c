"""Helpers shared by the tests of bad input and faults (tests/test_robust_*.py, tests/test_hardening_*.py, the DICOM
tests): a folder's content digest, the CLI's output unwrapped, the satds command in its own process."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import satds as _package


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
    src = str(Path(_package.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def satds(*args, env: dict | None = None, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """The real command in its own process (its stderr is the real stderr, workers included), text captured."""
    return subprocess.run([sys.executable, "-m", "satds", *map(str, args)], capture_output=True, text=True, env=env or satds_env(), timeout=timeout, **kw)
