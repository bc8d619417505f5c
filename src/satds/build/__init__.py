"""``satds build``: the normalisation engine (reorient, respace, crop, normalise, statistics).

The names below load on first use, so that importing a light submodule (``satds.build.spacing``, which the
CLI reads at start-up) does not load the engine (DuckDB, pyarrow) or the configuration model (pydantic).
"""

from __future__ import annotations

_LAZY = {
    "BuildConfig": ".config",
    "Intensity": ".config",
    "BuildSummary": ".engine",
    "build": ".engine",
}

__all__ = ["BuildConfig", "BuildSummary", "Intensity", "build"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
