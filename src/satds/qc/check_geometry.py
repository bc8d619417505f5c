"""Checks on the source geometry recorded at ingest (``scans.spacing``, ``affine``, ``axcodes``).

All pure functions of a DataFrame of scans. Spacing is compared per *world* axis (x, y, z), so a dataset
whose files come in different axis orders is still compared like with like.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from .config import QCConfig
from .flags import flag

Flags = list[dict[str, Any]]


def _affine(row) -> np.ndarray | None:
    a = row.affine
    if a is None or (isinstance(a, float) and math.isnan(a)) or len(a) != 16:
        return None
    return np.asarray(a, dtype=np.float64).reshape(4, 4)


def world_spacing(affine: np.ndarray) -> np.ndarray:
    """Voxel spacing along world x, y, z (the voxel axis closest to each world axis)."""
    import nibabel.orientations as nio

    sp = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    ornt = nio.io_orientation(affine)
    out = np.full(3, np.nan)
    for ax, (world, _) in enumerate(ornt):
        if not np.isnan(world):
            out[int(world)] = sp[ax]
    return out


def obliquity_degrees(affine: np.ndarray) -> float:
    """Largest angle between a voxel axis and its nearest world axis."""
    m = affine[:3, :3]
    norms = np.sqrt((m**2).sum(axis=0))
    if np.any(norms == 0):
        return 90.0
    cos = np.abs(m / norms).max(axis=0)
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))).max())


def geometry(scans: pd.DataFrame, cfg: QCConfig) -> Flags:
    out: Flags = []
    if scans.empty:
        return out
    rows = []
    for r in scans.itertuples(index=False):
        aff = _affine(r)
        rows.append((r, aff, world_spacing(aff) if aff is not None else None))
    by_ds: dict[str, list] = {}
    for item in rows:
        by_ds.setdefault(item[0].dataset, []).append(item)
    for ds, items in by_ds.items():
        sps = np.array([s for _, _, s in items if s is not None]) if any(s is not None for _, _, s in items) else np.zeros((0, 3))
        enough = len(sps) >= cfg.geometry_min_scans
        med = np.nanmedian(sps, axis=0) if enough else None
        aniso_all = [float(np.nanmax(s) / np.nanmin(s)) for s in sps if np.nanmin(s) > 0]
        med_aniso = float(np.median(aniso_all)) if aniso_all else None
        codes = Counter(str(r.axcodes) for r, _, _ in items if r.axcodes)
        common, n_common = codes.most_common(1)[0] if codes else (None, 0)
        for r, aff, s in items:
            if aff is None or s is None:
                continue
            sid = r.scan_id
            fmt = "x".join(f"{v:.3g}" for v in s)
            if enough and med is not None:
                ratio = s / med
                worst = int(np.nanargmax(np.maximum(ratio, 1 / ratio)))
                f = float(max(ratio[worst], 1 / ratio[worst]))
                if f >= cfg.spacing_factor:
                    out.append(
                        flag("spacing_outlier", "warning", f"spacing {fmt} mm (x, y, z): {'xyz'[worst]} is {f:.1f}x {'larger' if ratio[worst] > 1 else 'smaller'} than the dataset's median {'x'.join(f'{v:.3g}' for v in med)} mm", scan_id=sid, dataset=ds, value=f)
                    )
            deg = obliquity_degrees(aff)
            if deg > cfg.oblique_degrees:
                out.append(flag("oblique_affine", "warning", f"voxel axes are {deg:.1f}° off the patient axes (oblique acquisition or a broken header); satds reorients to the nearest axes", scan_id=sid, dataset=ds, value=deg))
            if np.nanmin(s) > 0:
                an = float(np.nanmax(s) / np.nanmin(s))
                if an > cfg.anisotropy:
                    typical = med_aniso is not None and len(aniso_all) >= cfg.geometry_min_scans and med_aniso > cfg.anisotropy
                    sev = "info" if typical else "warning"
                    note = f" (typical of the dataset: median ratio {med_aniso:.1f})" if typical else ""
                    out.append(flag("anisotropic_spacing", sev, f"spacing {fmt} mm: largest/smallest = {an:.1f} (limit {cfg.anisotropy:g}){note}", scan_id=sid, dataset=ds, value=an))
            if common and len(items) >= cfg.geometry_min_scans and r.axcodes and str(r.axcodes) != common and n_common >= cfg.orientation_majority * len(items):
                out.append(flag("unusual_orientation", "warning", f"axis codes {r.axcodes}, while {n_common} of the dataset's {len(items)} scans are {common} (a flipped or rewritten header?)", scan_id=sid, dataset=ds))
    return out
