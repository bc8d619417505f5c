"""One PNG per built scan: three orthogonal slices through the labelled region, labels overlaid.

Slices pass through the centre of the bounding box of all labelled voxels. Display follows the
radiological convention (patient's right on the viewer's left; anterior/superior up; sagittal with
anterior on the left) and every panel carries its orientation letters. Pixels are drawn at their
physical size, so a 1 x 1 x 3 mm grid is not squashed. Class colours come from :mod:`.colors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .colors import class_color
from .config import QCConfig
from .scan import BuiltScan, ClassInfo

#: (name, fixed axis, letters at left, right, top, bottom) of the three panels.
PANELS = (
    ("axial", 2, "R", "L", "A", "P"),
    ("coronal", 1, "R", "L", "S", "I"),
    ("sagittal", 0, "A", "P", "S", "I"),
)


@dataclass
class LegendEntry:
    class_id: str
    name: str
    color: tuple[float, float, float]
    visible: bool  # drawn in at least one of the three slices

    @property
    def label(self) -> str:
        return self.name if self.visible else f"{self.name} (not in these slices)"


@dataclass
class PreviewInfo:
    path: Path
    centre: tuple[int, int, int]
    legend: list[LegendEntry]


def drawn_classes(classes: list[ClassInfo]) -> list[ClassInfo]:
    """Classes painted in a preview: source (not derived) classes with voxels, largest first."""
    out = [c for c in classes if not c.derived and c.voxels_target > 0 and c.label_values]
    return sorted(out, key=lambda c: (-c.voxels_target, c.class_id))


def legend_entries(classes: list[ClassInfo], visible: set[str] | None = None) -> list[LegendEntry]:
    """The legend of a preview: every drawn class by name with its colour, sorted by name."""
    drawn = drawn_classes(classes)
    return sorted(
        (LegendEntry(c.class_id, c.name, class_color(c.class_id), visible is None or c.class_id in visible) for c in drawn),
        key=lambda e: (e.name.lower(), e.class_id),
    )


def preview_centre(label: np.ndarray | None, shape) -> tuple[int, int, int]:
    """Centre of the bounding box of the labelled voxels (the grid centre when nothing is labelled)."""
    if label is None or not np.any(label):
        return tuple(int(s) // 2 for s in shape[:3])  # type: ignore[return-value]
    c = []
    for ax in range(3):
        nz = np.flatnonzero(np.any(label != 0, axis=tuple(a for a in range(3) if a != ax)))
        c.append(int((nz[0] + nz[-1]) // 2))
    return tuple(c)  # type: ignore[return-value]


def display(plane: np.ndarray) -> np.ndarray:
    """A RAS-ordered slice (axes: first, second remaining world axis) in display order.

    Rows run from the largest second coordinate (A or S) down; columns from the largest first coordinate
    (R, or A for sagittal) to the smallest: the radiological convention.
    """
    return plane[::-1, ::-1].T


def panel_sizes(shape, spacing) -> list[tuple[float, float]]:
    """Physical (width, height) in mm of the axial, coronal and sagittal panels of a RAS grid."""
    other = {0: (1, 2), 1: (0, 2), 2: (0, 1)}
    out = []
    for _, ax, *_ in PANELS:
        a0, a1 = other[ax]
        out.append((float(shape[a0] * spacing[a0]), float(shape[a1] * spacing[a1])))
    return out


def _slices(a: np.ndarray, centre) -> list[np.ndarray]:
    return [np.take(a, centre[ax], axis=ax) for _, ax, *_ in PANELS]


def render_preview(scan: BuiltScan, classes: list[ClassInfo], path: str | Path, cfg: QCConfig | None = None) -> PreviewInfo:
    """Write the scan's preview PNG to ``path``."""
    from .mpl import pyplot

    plt = pyplot()
    from matplotlib.patches import Patch

    cfg = cfg or QCConfig()
    path = Path(path)
    img, lab = scan.image, scan.label
    centre = preview_centre(lab, img.shape)
    sp = scan.spacing
    drawn = drawn_classes(classes)
    img_planes = _slices(img, centre)
    lab_planes = _slices(lab, centre) if lab is not None else [None] * 3
    visible: set[str] = set()
    overlays = []
    for lp in lab_planes:
        if lp is None:
            overlays.append(None)
            continue
        d = display(lp)
        rgba = np.zeros(d.shape + (4,), dtype=np.float32)
        for c in drawn:  # largest first, so small structures stay on top
            m = np.isin(d, c.label_values)
            if m.any():
                visible.add(c.class_id)
                rgba[m, :3] = class_color(c.class_id)
                rgba[m, 3] = cfg.overlay_alpha
                # Opaque outline: mask voxels with a 4-neighbour outside the mask.
                inner = m.copy()
                inner[1:, :] &= m[:-1, :]
                inner[:-1, :] &= m[1:, :]
                inner[:, 1:] &= m[:, :-1]
                inner[:, :-1] &= m[:, 1:]
                rgba[m & ~inner, 3] = 1.0
        overlays.append(rgba)
    legend = legend_entries(classes, visible)
    sizes = panel_sizes(img.shape, sp)
    height_mm = max(h for _, h in sizes)
    panel_h_in = 3.6
    widths = [w / height_mm * panel_h_in for w, _ in sizes]
    ncol_leg = 1 if len(legend) <= 18 else (2 if len(legend) <= 40 else 3)
    legend_w = 0.4 + 2.3 * ncol_leg if legend else 0.2
    fig_w = sum(widths) + legend_w + 0.6
    fig = plt.figure(figsize=(fig_w, panel_h_in + 0.9), dpi=cfg.preview_dpi, facecolor="white")
    gs = fig.add_gridspec(1, 4, width_ratios=[*widths, legend_w], left=0.01, right=0.99, top=0.86, bottom=0.04, wspace=0.08)
    vmin, vmax = cfg.window
    for n, ((name, ax, l_, r_, t_, b_), p, ov, (w_mm, h_mm)) in enumerate(zip(PANELS, img_planes, overlays, sizes)):
        axp = fig.add_subplot(gs[0, n])
        extent = (0.0, w_mm, h_mm, 0.0)
        axp.imshow(display(p), cmap="gray", vmin=vmin, vmax=vmax, extent=extent, interpolation="nearest", aspect="equal")
        if ov is not None:
            axp.imshow(ov, extent=extent, interpolation="nearest", aspect="equal")
        axp.set_facecolor("black")
        axp.set_xticks([])
        axp.set_yticks([])
        idx = centre[ax]
        axp.set_title(f"{name} ({'xyz'[ax]} index {idx})", fontsize=9)
        style = dict(color="yellow", fontsize=11, fontweight="bold", transform=axp.transAxes)
        axp.text(0.02, 0.5, l_, ha="left", va="center", **style)
        axp.text(0.98, 0.5, r_, ha="right", va="center", **style)
        axp.text(0.5, 0.98, t_, ha="center", va="top", **style)
        axp.text(0.5, 0.02, b_, ha="center", va="bottom", **style)
    lax = fig.add_subplot(gs[0, 3])
    lax.axis("off")
    if legend:
        handles = [Patch(facecolor=e.color, edgecolor="black", linewidth=0.5, label=e.label) for e in legend]
        lax.legend(handles=handles, loc="upper left", fontsize=7.5, ncol=ncol_leg, frameon=False, title="classes", title_fontsize=8, borderaxespad=0.0, handlelength=1.2, columnspacing=0.8)
    else:
        lax.text(0, 1, "no labelled classes", va="top", fontsize=8)
    spacing = "x".join(f"{s:g}" for s in np.round(sp, 2))
    fig.suptitle(f"{scan.scan_id}   ·   {scan.modality}   ·   {img.shape[0]}x{img.shape[1]}x{img.shape[2]} @ {spacing} mm", fontsize=10, x=0.01, ha="left")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=cfg.preview_dpi, facecolor="white")
    plt.close(fig)
    tmp.replace(path)
    return PreviewInfo(path, centre, legend)
