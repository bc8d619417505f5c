"""Intensity normalisation: pure functions of an array (float32 in, float32 out)."""

from __future__ import annotations

import numpy as np

from .config import Intensity


def zscore(a: np.ndarray) -> np.ndarray:
    m = float(a.mean(dtype=np.float64))
    s = float(a.std(dtype=np.float64))
    a -= np.float32(m)
    if s > 1e-6:
        a /= np.float32(s)
    return a


def normalise(a: np.ndarray, modality: str, cfg: Intensity) -> np.ndarray:
    """Normalise ``a`` (modified in place when it is float32) by the modality's rule."""
    a = a.astype(np.float32, copy=False)
    kind = modality.split()[0].upper() if modality else "CT"
    if kind == "CT":
        np.clip(a, cfg.ct_window[0], cfg.ct_window[1], out=a)
        return zscore(a)
    if kind == "PET" and cfg.pet == "suv":
        np.clip(a, cfg.pet_suv_window[0], cfg.pet_suv_window[1], out=a)
        a -= np.float32(cfg.pet_shift)
        a /= np.float32(cfg.pet_scale)
        return a
    lo, hi = np.percentile(a, cfg.mri_percentiles) if a.size else (0.0, 0.0)
    np.clip(a, lo, hi, out=a)
    return zscore(a)
