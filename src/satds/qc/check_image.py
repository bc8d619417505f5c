"""``label_outside_body``: labelled voxels where the normalised image is air (see :mod:`.body`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .body import dilate_in_plane
from .config import QCConfig
from .flags import flag
from .scan import ClassInfo

Flags = list[dict[str, Any]]


def outside_body(label: np.ndarray, body: np.ndarray, spacing, classes: list[ClassInfo], cfg: QCConfig, *, scan_id: str, dataset: str, modality: str = "CT") -> Flags:
    """Per source class: the fraction of its voxels outside the body mask grown by ``outside_tolerance_mm``.

    ``warning`` from ``outside_warning_fraction``, ``error`` from ``outside_error_fraction`` (CT only:
    without an absolute air value other modalities stay warnings), with at least ``outside_min_voxels``.
    """
    out: Flags = []
    if label is None or not classes:
        return out
    grown = dilate_in_plane(body, spacing, cfg.outside_tolerance_mm)
    n_atoms = int(label.max()) + 1
    total = np.bincount(label.reshape(-1).astype(np.int64), minlength=n_atoms)
    outside = np.bincount(label[~grown].astype(np.int64), minlength=n_atoms)
    is_ct = (modality or "CT").split()[0].upper() == "CT"
    for c in classes:
        if c.derived or not c.label_values:
            continue
        vals = [v for v in c.label_values if 0 <= v < n_atoms]
        n = int(total[vals].sum()) if vals else 0
        k = int(outside[vals].sum()) if vals else 0
        if n == 0 or k < cfg.outside_min_voxels:
            continue
        f = k / n
        if f < cfg.outside_warning_fraction:
            continue
        sev = "error" if (f >= cfg.outside_error_fraction and is_ct) else "warning"
        out.append(
            flag(
                "label_outside_body",
                sev,
                f"{c.name}: {k} of {n} voxels ({100 * f:.0f}%) lie where the image is air, outside the body"
                + ("" if is_ct else " (non-CT air level: a relative threshold)"),
                scan_id=scan_id,
                dataset=dataset,
                class_id=c.class_id,
                value=f,
            )
        )
    return out
