"""Previews: deterministic class colours, the legend, slice placement and the written PNG."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from satds.qc import class_color, class_hex
from satds.qc.preview import display, legend_entries, panel_sizes, preview_centre, render_preview
from satds.qc.scan import BuiltScan, ClassInfo


def test_class_colours_are_fixed_and_pairs_differ():
    assert class_color("liver") == class_color("liver")
    assert class_hex("liver").startswith("#") and len(class_hex("liver")) == 7
    for left, right in [("kidney_left", "kidney_right"), ("autochthon_left", "autochthon_right"), ("rib_left_7", "rib_right_7")]:
        a, b = np.array(class_color(left)), np.array(class_color(right))
        assert np.abs(a - b).max() > 0.3, (left, right)


def test_legend_lists_the_drawn_classes_by_name():
    classes = [
        ClassInfo("kidney_left", "left kidney", [1], 100, 90),
        ClassInfo("spleen", "spleen", [2], 300, 280),
        ClassInfo("kidney_tumor", "kidney tumor", [], 0, 0),  # absent: not drawn
        ClassInfo("kidney", "kidney", [1, 3], 150, 140, derived=True),  # a union: not drawn
    ]
    entries = legend_entries(classes, visible={"spleen"})
    assert [e.name for e in entries] == ["left kidney", "spleen"]
    assert [e.label for e in entries] == ["left kidney (not in these slices)", "spleen"]
    assert entries[1].color == class_color("spleen")


def test_preview_centre_is_the_label_bbox_centre():
    lab = np.zeros((20, 30, 10), dtype=np.uint8)
    lab[2:5, 10:21, 4] = 1
    lab[8, 12, 8] = 2
    assert preview_centre(lab, lab.shape) == (5, 15, 6)
    assert preview_centre(np.zeros((20, 30, 10)), (20, 30, 10)) == (10, 15, 5)


def test_display_is_radiological():
    # an axial slice [x, y]: patient's right (large x) on the viewer's left, anterior (large y) on top
    plane = np.zeros((4, 3))
    plane[3, 2] = 1  # most right, most anterior
    d = display(plane)
    assert d.shape == (3, 4) and d[0, 0] == 1


@pytest.fixture
def scan():
    img = np.full((60, 48, 16), -1.0, dtype=np.float32)
    img[8:52, 6:42, :] = 0.4
    lab = np.zeros(img.shape, dtype=np.uint8)
    lab[12:24, 14:30, 4:12] = 1  # "right" kidney side? no: small x is the patient's left
    lab[36:48, 14:30, 4:12] = 2
    aff = np.diag([1.0, 1.0, 3.0, 1.0])
    classes = [ClassInfo("kidney_left", "left kidney", [1], 1536, 1536), ClassInfo("kidney_right", "right kidney", [2], 1536, 1536)]
    return BuiltScan("demo/case_1", "demo", "CT", img, lab, aff), classes


def test_render_preview_writes_a_png_with_the_class_colours(tmp_path, scan):
    b, classes = scan
    info = render_preview(b, classes, tmp_path / "p" / "case_1.png")
    assert info.path.exists() and info.path.stat().st_size > 5_000
    assert [e.name for e in info.legend] == ["left kidney", "right kidney"] and all(e.visible for e in info.legend)
    with Image.open(info.path) as im:
        w, h = im.size
        assert 600 <= w <= 2000 and 250 <= h <= 700
        px = np.asarray(im.convert("RGB")).reshape(-1, 3).astype(int)
    for cid in ("kidney_left", "kidney_right"):
        want = np.round(np.array(class_color(cid)) * 255).astype(int)
        assert (np.abs(px - want).max(axis=1) <= 3).sum() > 20, cid  # outline pixels in the exact colour


def test_panels_have_physical_aspect():
    """A 16-slice 3 mm grid is 48 mm tall: panels are sized in mm, not in voxels."""
    axial, coronal, sagittal = panel_sizes((60, 48, 16), (1.0, 1.0, 3.0))
    assert axial == (60.0, 48.0) and coronal == (60.0, 48.0) and sagittal == (48.0, 48.0)


def test_render_preview_draws_panels_in_mm(tmp_path, scan, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.axes

    extents = []
    orig = matplotlib.axes.Axes.imshow

    def spy(self, X, *a, **kw):
        extents.append((np.shape(X)[:2], kw.get("extent"), kw.get("aspect")))
        return orig(self, X, *a, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "imshow", spy)
    b, classes = scan
    render_preview(b, classes, tmp_path / "a.png")
    (ax_shape, ax_ext, asp), _, (co_shape, co_ext, _), *_ = extents
    assert asp == "equal"
    assert ax_shape == (48, 60) and ax_ext == (0.0, 60.0, 48.0, 0.0)
    assert co_shape == (16, 60) and co_ext == (0.0, 60.0, 48.0, 0.0)  # 16 rows drawn 48 mm tall
