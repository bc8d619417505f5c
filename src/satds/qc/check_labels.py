"""Checks on the annotation table: empty and one-voxel classes, volume outliers, left/right sides.

Every function is pure: it takes a DataFrame of ``annotations`` rows (columns as in the catalog) and
returns flag rows (:func:`satds.qc.flags.flag`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..ontology import Ontology
from .config import QCConfig
from .flags import flag

Flags = list[dict[str, Any]]


def _name(row) -> str:
    return str(row.class_name or row.class_id)


def empty_and_tiny(ann: pd.DataFrame, onto: Ontology | None, cfg: QCConfig) -> Flags:
    """``empty_class`` (0 voxels), ``one_voxel_class`` (1 voxel), ``lost_in_build`` (present, 0 after build).

    An absent class is normal (a tumour a patient does not have) and only ``info``; an absent *anatomy*
    class that most other scans of the dataset have is a ``warning``.
    """
    out: Flags = []
    if ann.empty:
        return out
    src = ann[~ann["derived"].fillna(False).astype(bool)]
    present = src.assign(p=src["voxels"] > 0).groupby(["dataset", "class_id"])["p"].agg(["sum", "count"])
    for r in src.itertuples(index=False):
        v = int(r.voxels) if r.voxels is not None and not pd.isna(r.voxels) else 0
        if v == 0:
            tot = present.loc[(r.dataset, r.class_id)]
            others, others_have = int(tot["count"]) - 1, int(tot["sum"])
            kind = onto[r.class_id].kind if onto is not None and r.class_id in onto.concepts else "anatomy"
            severity = "info"
            why = "annotated by the dataset but absent from this scan"
            if kind == "anatomy" and others >= cfg.empty_min_others and others_have >= cfg.empty_warning_presence * others:
                severity = "warning"
                why += f", although {others_have} of the dataset's {others} other scans have it"
            out.append(flag("empty_class", severity, f"{_name(r)}: 0 voxels ({why})", scan_id=r.scan_id, dataset=r.dataset, class_id=r.class_id, value=0))
        elif v == 1:
            out.append(flag("one_voxel_class", "warning", f"{_name(r)}: a single voxel (a stray label, or a structure cut by the field of view?)", scan_id=r.scan_id, dataset=r.dataset, class_id=r.class_id, value=1))
        vt = getattr(r, "voxels_target", None)
        if v > 0 and vt is not None and not pd.isna(vt) and int(vt) == 0:
            out.append(flag("lost_in_build", "warning", f"{_name(r)}: {v} voxels at source, none after normalisation", scan_id=r.scan_id, dataset=r.dataset, class_id=r.class_id, value=v))
    return out


def robust_z(values: np.ndarray) -> np.ndarray | None:
    """Modified z-scores 0.6745 (x - median) / MAD; None when the spread is zero.

    When the MAD is 0 (more than half the values equal) the mean absolute deviation stands in
    (scaled by 0.7979 so both estimate the same sigma for normal data).
    """
    x = np.asarray(values, dtype=np.float64)
    med = float(np.median(x))
    mad = float(np.median(np.abs(x - med)))
    if mad > 0:
        return 0.6745 * (x - med) / mad
    mean_ad = float(np.mean(np.abs(x - med)))
    if mean_ad > 0:
        return 0.7979 * (x - med) / mean_ad
    return None


def volume_outliers(ann: pd.DataFrame, cfg: QCConfig, datasets: set[str] | None = None) -> Flags:
    """``volume_outlier``: |robust z of log(volume_ml)| > ``volume_z`` among all scans annotating the class.

    Statistics use every scan of the collection (``ann``); flags are emitted for ``datasets`` only.
    Derived classes are skipped (a union repeats its parts' outliers).
    """
    out: Flags = []
    if ann.empty:
        return out
    a = ann[(ann["voxels"] > 0) & (ann["volume_ml"] > 0) & ~ann["derived"].fillna(False).astype(bool)]
    for cid, g in a.groupby("class_id"):
        if len(g) < cfg.volume_min_scans:
            continue
        z = robust_z(np.log(g["volume_ml"].to_numpy(dtype=np.float64)))
        if z is None:
            continue
        med = float(np.exp(np.median(np.log(g["volume_ml"].to_numpy(dtype=np.float64)))))
        for r, zi in zip(g.itertuples(index=False), z):
            if abs(zi) > cfg.volume_z and (datasets is None or r.dataset in datasets):
                word = "large" if zi > 0 else "small"
                out.append(
                    flag(
                        "volume_outlier",
                        "warning",
                        f"{_name(r)}: {r.volume_ml:.3g} ml is unusually {word} (median {med:.3g} ml over {len(g)} scans; robust z {zi:+.1f}, limit ±{cfg.volume_z:g})",
                        scan_id=r.scan_id,
                        dataset=r.dataset,
                        class_id=r.class_id,
                        value=float(zi),
                    )
                )
    return out


def _x(c) -> float | None:
    if c is None or (isinstance(c, float) and math.isnan(c)):
        return None
    try:
        v = float(c[0])
    except (TypeError, IndexError, ValueError):
        return None
    return None if math.isnan(v) else v


def laterality(ann: pd.DataFrame, onto: Ontology, cfg: QCConfig, midlines: dict[str, float | None] | None = None) -> Flags:
    """``left_right_swapped``, from world x of class centroids (RAS+: the patient's left has smaller x).

    - **Pair** (error): a "left" class and its "right" counterpart both present, and the left one's
      centroid has the larger world x. Both classes of the pair get a row.
    - **Midline** (warning): a sided class whose centroid lies on the other side of the body midline
      (``midlines``: scan id → world x) by more than ``midline_margin_mm``. Used for classes whose
      counterpart is absent or not annotated, and for classes the pair test did not flag (both labels on
      one side). Parts of asymmetric organs (``midline_exempt_ancestors``) are exempt.
    """
    from ..geometry import patient_side

    out: Flags = []
    if ann.empty:
        return out
    midlines = midlines or {}
    exempt: dict[str, bool] = {}

    def is_exempt(cid: str) -> bool:
        if cid not in exempt:
            anc = set(onto.ancestors(cid)) | {cid}
            exempt[cid] = bool(anc & set(cfg.midline_exempt_ancestors))
        return exempt[cid]

    a = ann[ann["voxels"] > 0]
    for scan_id, g in a.groupby("scan_id"):
        rows = {r.class_id: r for r in g.itertuples(index=False)}
        flagged: set[str] = set()
        for cid, r in rows.items():
            con = onto.concepts.get(cid)
            if con is None or con.laterality != "left" or not con.counterpart or con.counterpart not in rows:
                continue
            other = rows[con.counterpart]
            xl, xr = _x(r.centroid_mm), _x(other.centroid_mm)
            if xl is None or xr is None or xl <= xr:
                continue
            d = xl - xr
            msg = f"{_name(r)} (centroid x {xl:+.1f} mm) lies {d:.1f} mm to the patient's right of {_name(other)} (x {xr:+.1f} mm): left and right swapped?"
            for row in (r, other):
                out.append(flag("left_right_swapped", "error", msg, scan_id=scan_id, dataset=row.dataset, class_id=row.class_id, value=d))
                flagged.add(row.class_id)
        mid = midlines.get(scan_id)
        if mid is None:
            continue
        for cid, r in rows.items():
            con = onto.concepts.get(cid)
            if con is None or con.laterality not in ("left", "right") or cid in flagged or is_exempt(cid):
                continue
            x = _x(r.centroid_mm)
            if x is None:
                continue
            wrong = (x - mid) if con.laterality == "left" else (mid - x)  # > 0: on the other side
            if wrong > cfg.midline_margin_mm:
                out.append(
                    flag(
                        "left_right_swapped",
                        "warning",
                        f"{_name(r)} is a {con.laterality} structure but its centroid (x {x:+.1f} mm) lies {wrong:.1f} mm on the patient's {patient_side(x, mid)} of the body midline (x {mid:+.1f} mm)",
                        scan_id=scan_id,
                        dataset=r.dataset,
                        class_id=cid,
                        value=wrong,
                    )
                )
    return out
