"""The report's plots (matplotlib, Agg), returned as PNG bytes ready to embed."""

from __future__ import annotations

import io

import numpy as np

from .colors import class_color
from .mpl import pyplot

SEVERITY_COLORS = {"error": "#c62828", "warning": "#ef8f00", "info": "#1e6fb8"}


def _png(fig, dpi: int = 90) -> bytes:
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def overview(scans_per_dataset: dict[str, int], flags_per_dataset: dict[str, dict[str, int]]) -> bytes:
    """Scans per dataset, and error/warning flags per dataset (stacked)."""
    plt = pyplot()
    names = sorted(scans_per_dataset)
    h = max(2.2, 0.28 * len(names) + 1.0)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, h), sharey=True)
    y = np.arange(len(names))
    a1.barh(y, [scans_per_dataset[n] for n in names], color="#5b8db8")
    a1.set_yticks(y, names, fontsize=8)
    a1.invert_yaxis()
    a1.set_title("scans per dataset", fontsize=10)
    left = np.zeros(len(names))
    for sev in ("error", "warning"):
        vals = np.array([flags_per_dataset.get(n, {}).get(sev, 0) for n in names], dtype=float)
        a2.barh(y, vals, left=left, color=SEVERITY_COLORS[sev], label=sev)
        left += vals
    a2.set_title("QC flags per dataset", fontsize=10)
    a2.legend(fontsize=8, loc="lower right")
    for a in (a1, a2):
        a.grid(axis="x", alpha=0.3)
        a.tick_params(labelsize=8)
    fig.tight_layout()
    return _png(fig)


def dataset_plots(spacings: np.ndarray, volumes: dict[str, tuple[str, list[float]]], max_classes: int = 40) -> bytes:
    """Left: world spacing (x, y, z) of every scan. Right: class volumes (ml, log scale), one box per class.

    ``spacings``: (n, 3) array; ``volumes``: class id → (name, volumes of the scans that have it).
    """
    plt = pyplot()
    items = sorted(volumes.items(), key=lambda kv: -float(np.median(kv[1][1])) if kv[1][1] else 0.0)
    shown = items[:max_classes]
    h = max(2.8, 0.24 * len(shown) + 1.2)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, h), gridspec_kw={"width_ratios": [1, 2.2]})
    rng = np.random.default_rng(0)
    sp = np.asarray(spacings, dtype=float).reshape(-1, 3)
    if len(sp):
        for ax in range(3):
            v = sp[:, ax]
            v = v[np.isfinite(v)]
            a1.scatter(ax + rng.uniform(-0.18, 0.18, len(v)), v, s=14, alpha=0.6, color=("#d1495b", "#00798c", "#edae49")[ax])
            if len(v):
                a1.hlines(np.median(v), ax - 0.3, ax + 0.3, color="black", linewidth=1.5)
        a1.set_xticks([0, 1, 2], ["x (R-L)", "y (A-P)", "z (S-I)"])
    else:
        a1.text(0.5, 0.5, "no scans", ha="center", transform=a1.transAxes)
    a1.set_ylabel("source spacing (mm)", fontsize=9)
    a1.set_title(f"voxel spacing of {len(sp)} scan(s)", fontsize=10)
    a1.grid(axis="y", alpha=0.3)
    if shown:
        data = [np.asarray(v, dtype=float) for _, (_, v) in shown]
        pos = np.arange(len(shown))
        import matplotlib

        horiz = {"orientation": "horizontal"} if tuple(int(x) for x in matplotlib.__version__.split(".")[:2]) >= (3, 10) else {"vert": False}
        bp = a2.boxplot(data, positions=pos, widths=0.6, patch_artist=True, showfliers=False, **horiz)
        for patch, (cid, _) in zip(bp["boxes"], shown):
            patch.set_facecolor(class_color(cid))
            patch.set_alpha(0.8)
        for p, d in zip(pos, data):
            a2.scatter(d, p + rng.uniform(-0.15, 0.15, len(d)), s=8, color="black", alpha=0.5, zorder=3)
        a2.set_yticks(pos, [n for _, (n, _) in shown], fontsize=8)
        a2.invert_yaxis()
        a2.set_xscale("log")
        a2.set_xlabel("volume (ml, source grid, log scale)", fontsize=9)
        more = len(items) - len(shown)
        a2.set_title("class volumes" + (f" (largest {len(shown)}; {more} more not shown)" if more else ""), fontsize=10)
        a2.grid(axis="x", alpha=0.3)
    else:
        a2.axis("off")
        a2.text(0.5, 0.5, "no labelled classes", ha="center", transform=a2.transAxes)
    fig.tight_layout()
    return _png(fig)
