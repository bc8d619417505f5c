"""Vertebra identification rate and localisation distance (VerSe's definition, as in the universal-33 paper).

* A vertebra's centroid is the centre of mass of its mask, in world mm.
* A reference (GT) vertebra ``v`` is *identified* when the prediction has label ``v``, the GT centroid
  closest to the predicted centroid of ``v`` (among all GT vertebrae of the case) is ``v`` itself, and that
  distance is below 20 mm.
* ``id.rate`` = identified ÷ all GT vertebrae, pooled over the whole test set.
* ``d`` = mean distance between the predicted and GT centroids of the same label, pooled over the test set.

Policies: a GT vertebra missing from the prediction counts as not identified and is left out of ``d``;
predicted labels absent from the GT are ignored by both. Labels 1–25 (C1–L6, the VerSe/CTSpine1K coding)
are vertebrae by default.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

VERTEBRA_LABELS: tuple[int, ...] = tuple(range(1, 26))
MAX_DISTANCE_MM = 20.0


def to_world(index_xyz: Sequence[float], affine: np.ndarray) -> tuple[float, float, float]:
    v = np.asarray(affine, float) @ np.array([*index_xyz, 1.0])
    return tuple(float(x) for x in v[:3])


def identify(
    ref: Mapping[int, Sequence[float]],
    pred: Mapping[int, Sequence[float]],
    max_distance_mm: float = MAX_DISTANCE_MM,
) -> list[dict]:
    """One row per GT vertebra of a case: label, distance (mm, NaN when not predicted), identified."""
    labels = sorted(ref)
    gt = np.array([ref[v] for v in labels], float).reshape(-1, 3)
    rows = []
    for v, g in zip(labels, gt):
        p = pred.get(v)
        if p is None:
            rows.append({"label": v, "distance": float("nan"), "identified": False, "predicted": False})
            continue
        p = np.asarray(p, float)
        dists = np.linalg.norm(gt - p, axis=1)
        own = float(dists[labels.index(v)])
        nearest = labels[int(np.argmin(dists))]
        rows.append({"label": v, "distance": own, "identified": bool(nearest == v and own < max_distance_mm), "predicted": True})
    return rows


def summarise(rows: Iterable[Mapping]) -> dict:
    """``id_rate`` (fraction), ``d`` (mm) and counts over pooled :func:`identify` rows."""
    rows = list(rows)
    n = len(rows)
    ident = sum(bool(r["identified"]) for r in rows)
    dists = [r["distance"] for r in rows if r["predicted"]]
    return {
        "id_rate": ident / n if n else float("nan"),
        "d": float(np.mean(dists)) if dists else float("nan"),
        "n_ref": n,
        "n_identified": ident,
        "n_missing": sum(not r["predicted"] for r in rows),
    }
