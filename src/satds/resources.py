"""Where satds finds its data files, whether it runs from a checkout or from an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _first_existing(*candidates: Path) -> Path:
    for c in candidates:
        if c.exists():
            return c
    return candidates[0]


def repo_root() -> Path | None:
    """The checkout root when running from source (src layout), else None."""
    root = _PKG.parents[1]
    return root if (root / "pyproject.toml").exists() else None


def ontology_path() -> Path:
    root = repo_root()
    return _first_existing(*(([root / "label_ontology.yaml"] if root else []) + [_PKG / "_data" / "label_ontology.yaml"]))


def pipelines_dir() -> Path:
    root = repo_root()
    return _first_existing(*(([root / "pipelines"] if root else []) + [_PKG / "_data" / "pipelines"]))


def specs_dir() -> Path:
    return _PKG / "specs"


def shared_dir() -> Path | None:
    """The project's ``../shared`` folder (real scans, facts) when it sits beside the checkout.

    ``SATDS_SHARED`` names it explicitly; set to a folder that does not exist it means "no shared folder"
    (nothing beside the checkout is looked at), which is how a fresh clone is simulated.
    """
    import os

    env = os.environ.get("SATDS_SHARED")
    if env:
        p = Path(env)
        return p if p.exists() else None
    root = repo_root()
    for cand in ([root.parent / "shared", root / "shared"] if root else []):
        if cand.exists():
            return cand
    return None


def vendored_realdata_dir() -> Path:
    """The real example scans that ship with satds (TotalSegmentator's test files, Apache-2.0; see its README)."""
    return _PKG / "_realdata"


def realdata_dir() -> Path:
    """The folder holding ``totalsegmentator-examples/``: the shared folder's ``realdata`` when present, else the
    copy vendored in the package, so real-scan tests and ``satds demo`` use real anatomy on any machine."""
    s = shared_dir()
    if s and (s / "realdata" / "totalsegmentator-examples").exists():
        return s / "realdata"
    return vendored_realdata_dir()
