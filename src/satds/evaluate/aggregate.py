"""Averaging per-case scores the papers' ways.

All functions take the per-case table (one row per case × class; columns ``case``, ``class``,
``dataset``, ``flag`` and the metrics) and skip NaN values. Which rows count:

* ``both_empty`` rows never count (their metrics are NaN anyway);
* ``ref_empty`` rows (a structure predicted where the reference has none) do not count unless
  ``include_ref_empty=True`` (then their DSC/NSD of 0 do; their distances are NaN);
* ``pred_empty``/``pred_missing`` rows count (DSC/NSD 0; distances NaN, so absent from HD means);
* ``error`` rows (a case that could not be scored) never count.

Definitions, with ``m(c, k, x)`` the metric of class ``c`` in case ``x`` of dataset ``k``:

* class-wise (SAT §8.3, macro): ``class(c) = mean_k [ mean_{x in k} m(c, k, x) ]`` over the datasets ``k``
  that have class ``c``, each dataset weighing the same;
* region-wise: ``region(r) = mean_{c in r} class(c)``; a class's region is the ontology concept's region
  (classes found in several regions are "whole body" there), lesions form the region ``lesion``;
* dataset-wise: ``dataset(k) = mean_c [ mean_{x in k} m(c, k, x) ]`` over the classes of dataset ``k``;
* CTSpine1K: Dice per case and label only where the label is in the reference (NaN otherwise);
  ``label(l) = nanmean_x``, ``overall = nanmean_l label(l)``.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .metrics import BOTH_EMPTY, ERROR, REF_EMPTY

METRICS = ("dsc", "nsd", "hd95", "hd")
NO_DATASET = ""


def counted(df: pd.DataFrame, include_ref_empty: bool = False) -> pd.DataFrame:
    """The rows that enter averages."""
    drop = {BOTH_EMPTY, ERROR} if include_ref_empty else {BOTH_EMPTY, REF_EMPTY, ERROR}
    flags = df["flag"] if "flag" in df else pd.Series(None, index=df.index)
    return df[~flags.isin(drop)]


def _prepared(df: pd.DataFrame, include_ref_empty: bool, metrics: Sequence[str]) -> pd.DataFrame:
    d = counted(df, include_ref_empty).copy()
    if "dataset" not in d:
        d["dataset"] = NO_DATASET
    d["dataset"] = d["dataset"].fillna(NO_DATASET)
    for m in metrics:
        d[m] = pd.to_numeric(d[m], errors="coerce").astype(float)
    return d


def class_means(
    df: pd.DataFrame,
    metrics: Sequence[str] = METRICS,
    *,
    by: Sequence[str] = ("class",),
    include_ref_empty: bool = False,
) -> pd.DataFrame:
    """Class-wise macro average: mean over cases within each dataset, then over datasets equally.

    ``by`` names the columns that make a class (add e.g. ``"modality"`` to keep CT and MR liver apart).
    Returns one row per class with the metrics, ``n_cases`` and ``n_datasets``.
    """
    d = _prepared(df, include_ref_empty, metrics)
    keys = list(by)
    per_ds = d.groupby(keys + ["dataset"], sort=False, dropna=False)[list(metrics)].mean()
    out = per_ds.groupby(level=list(range(len(keys))), sort=False, dropna=False).mean()
    counts = d.groupby(keys, sort=False, dropna=False).agg(n_cases=("case", "size"), n_datasets=("dataset", "nunique"))
    return out.join(counts).reset_index()


def region_of(region: str | None, kind: str | None) -> str:
    """The region a class is averaged in: ``lesion`` for lesions, else its ontology region."""
    if kind == "lesion":
        return "lesion"
    return region or "unassigned"


def region_means(
    classes: pd.DataFrame,
    regions: Mapping[str, str] | None = None,
    metrics: Sequence[str] = METRICS,
) -> pd.DataFrame:
    """Region-wise: mean of the class-wise scores of the classes in each region.

    ``classes`` is :func:`class_means` output; ``regions`` maps a class to its region (default: the
    table's ``region`` column, ``unassigned`` where missing).
    """
    c = classes.copy()
    if regions is not None:
        c["region"] = c["class"].map(regions)
    if "region" not in c:
        c["region"] = None
    c["region"] = c["region"].fillna("unassigned")
    metrics = [m for m in metrics if m in c]
    out = c.groupby("region", sort=True)[metrics].mean()
    out["n_classes"] = c.groupby("region", sort=True)["class"].nunique()
    return out.reset_index()


def class_regions(df: pd.DataFrame) -> dict[str, str]:
    """Class → region from a per-case table's ``region``/``kind`` columns (ontology values)."""
    out: dict[str, str] = {}
    if "class" not in df:
        return out
    for cls, grp in df.groupby("class", sort=False):
        region = grp["region"].dropna().iloc[0] if "region" in grp and grp["region"].notna().any() else None
        kind = grp["kind"].dropna().iloc[0] if "kind" in grp and grp["kind"].notna().any() else None
        out[cls] = region_of(region, kind)
    return out


def dataset_means(
    df: pd.DataFrame,
    metrics: Sequence[str] = METRICS,
    *,
    by: Sequence[str] = ("class",),
    include_ref_empty: bool = False,
) -> pd.DataFrame:
    """Dataset-wise: per dataset, the mean over its classes of each class's mean over the cases."""
    d = _prepared(df, include_ref_empty, metrics)
    per_cls = d.groupby(["dataset"] + list(by), sort=False, dropna=False)[list(metrics)].mean()
    out = per_cls.groupby(level=0, sort=True).mean()
    out["n_classes"] = per_cls.groupby(level=0, sort=True).size()
    out["n_cases"] = d.groupby("dataset", sort=True)["case"].nunique()
    return out.reset_index()


def ctspine1k(
    df: pd.DataFrame,
    labels: Iterable[int] = range(1, 26),
    metric: str = "dsc",
) -> tuple[pd.Series, float]:
    """The CTSpine1K protocol: per-label nanmean over cases, then the nanmean over labels.

    A case × label value counts only where the label is in the reference (``ref_ml > 0``, i.e. not
    ``ref_empty``/``both_empty``); false positives on absent labels are not penalised. Returns the
    per-label means (NaN for a label no reference contains) and the overall mean.
    """
    labels = list(labels)
    d = df[df["label"].isin(labels)].copy()
    present = ~d["flag"].isin([BOTH_EMPTY, REF_EMPTY])
    d["value"] = np.where(present, pd.to_numeric(d[metric], errors="coerce"), np.nan)
    table = d.pivot_table(index="case", columns="label", values="value", aggfunc="first", dropna=False)
    table = table.reindex(columns=labels)
    with np.errstate(all="ignore"):
        per_label = table.mean(axis=0, skipna=True)
    overall = float(np.nanmean(per_label.to_numpy())) if per_label.notna().any() else float("nan")
    return per_label, overall
