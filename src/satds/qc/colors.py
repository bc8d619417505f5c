"""One fixed colour per ontology class, derived from the class id alone.

The same class has the same colour in every preview, in the report and in every run, whatever the
dataset or the order in which classes appear: a hash of the id, not a position in a palette. The hash
picks one of 20 hues, 2 saturations and 3 brightness levels (120 clearly different colours). The side
words of an id (``left``/``right``) are left out of the hash and a right structure gets the opposite hue
of its left counterpart, so a pair (kidney_left / kidney_right) never shares a colour.
"""

from __future__ import annotations

import colorsys
import hashlib

HUES = 20
SATURATIONS = (0.9, 0.6)
VALUES = (0.98, 0.8, 0.62)


def _side(class_id: str) -> tuple[str, str | None]:
    parts = class_id.split("_")
    side = "left" if "left" in parts else ("right" if "right" in parts else None)
    return "_".join(p for p in parts if p not in ("left", "right")), side


def class_color(class_id: str) -> tuple[float, float, float]:
    """RGB in [0, 1]: a bright, saturated colour (so it shows over a grey image)."""
    base, side = _side(class_id)
    n = int.from_bytes(hashlib.blake2b(base.encode(), digest_size=8).digest(), "big")
    hue = n % HUES
    if side == "right":
        hue = (hue + HUES // 2) % HUES
    sat = SATURATIONS[(n // HUES) % len(SATURATIONS)]
    val = VALUES[(n // (HUES * len(SATURATIONS))) % len(VALUES)]
    return colorsys.hsv_to_rgb(hue / HUES, sat, val)


def class_hex(class_id: str) -> str:
    r, g, b = class_color(class_id)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
