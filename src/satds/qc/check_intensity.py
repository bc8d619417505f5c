"""Checks on the *source* intensities (the release's files, before normalisation).

The normalised image is clipped and z-scored, so a missing rescale slope/intercept or a pre-normalised
release is invisible there; these checks read the scan's channels with
:func:`satds.ingest.read.load_channels`. Percentiles use every ``intensity_stride``-th voxel per axis.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import QCConfig
from .flags import flag

Flags = list[dict[str, Any]]


def intensity(array: np.ndarray, modality: str, cfg: QCConfig, *, scan_id: str, dataset: str, channel: str = "") -> Flags:
    """Flags for one channel. ``modality`` is the channel's modality string (CT, MRI T2, PET SUV)."""
    out: Flags = []
    a = np.asarray(array)
    where = f"channel {channel}: " if channel else ""
    kw = dict(scan_id=scan_id, dataset=dataset)
    if a.size == 0:
        return [flag("constant_image", "error", f"{where}empty image", value=0, **kw)]
    lo_all, hi_all = float(a.min()), float(a.max())
    if hi_all == lo_all:
        return [flag("constant_image", "error", f"{where}every voxel is {lo_all:g}", value=lo_all, **kw)]
    st = max(1, int(cfg.intensity_stride))
    sub = a[::st, ::st, ::st] if a.ndim == 3 else a.reshape(-1)[::st]
    sub = np.asarray(sub, dtype=np.float32)
    kind = (modality or "CT").split()[0].upper()
    if kind == "CT":
        # Padding outside the reconstruction circle (-3024, -2048, -1024 ...) is one repeated minimum:
        # leave it out of the range test when it is at least 1% of the voxels.
        vals = sub
        pad = np.count_nonzero(sub == np.float32(lo_all)) >= 0.01 * sub.size
        if pad:
            vals = sub[sub != np.float32(lo_all)]
        if vals.size:
            p_lo, p_hi = np.percentile(vals, cfg.range_percentiles)
            r_lo, r_hi = cfg.ct_range
            if p_lo < r_lo:
                out.append(flag("intensity_range", "warning", f"{where}{cfg.range_percentiles[0]:g}th percentile {p_lo:.0f} HU is below {r_lo:.0f} HU" + (" (padding excluded)" if pad else ""), value=float(p_lo), **kw))
            if p_hi > r_hi:
                out.append(flag("intensity_range", "warning", f"{where}{cfg.range_percentiles[1]:g}th percentile {p_hi:.0f} HU is above {r_hi:.0f} HU (values not in HU?)", value=float(p_hi), **kw))
        if lo_all >= 0:
            out.append(flag("ct_without_air", "error", f"{where}minimum {lo_all:g} ≥ 0: no air (≈ -1000 HU) at all; stored values without rescale slope/intercept?", value=lo_all, **kw))
        elif lo_all > cfg.ct_air_hu:
            out.append(flag("ct_without_air", "warning", f"{where}minimum {lo_all:g} HU > {cfg.ct_air_hu:g} HU: no air in the field of view (tight crop, or an intercept not applied?)", value=lo_all, **kw))
    elif kind in ("MRI", "MR", "PET"):
        p_lo, p_hi = np.percentile(sub, cfg.range_percentiles)
        if p_hi > 0 and p_lo < -cfg.negative_fraction * p_hi:
            out.append(
                flag(
                    "negative_intensity",
                    "warning",
                    f"{where}{cfg.range_percentiles[0]:g}th percentile {p_lo:.3g} is negative (high percentile {p_hi:.3g}): {kind} magnitudes are ≥ 0; the release may be pre-normalised or filtered",
                    value=float(p_lo),
                    **kw,
                )
            )
    return out
