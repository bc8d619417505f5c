"""``satds build``: the normalisation engine (reorient, respace, crop, normalise, statistics)."""

from .config import BuildConfig, Intensity
from .engine import BuildSummary, build

__all__ = ["BuildConfig", "BuildSummary", "Intensity", "build"]
