"""A built scan as QC sees it: channel 0 of the normalised image and the atom map, both in RAS order."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..geometry import reorient, spacing_of


@dataclass
class ClassInfo:
    """One class a scan annotates: its atom values in the normalised label map and its size."""

    class_id: str
    name: str
    label_values: list[int]
    voxels: int  # source grid
    voxels_target: int  # normalised grid
    derived: bool = False
    centroid_mm: list[float] | None = None


@dataclass
class BuiltScan:
    scan_id: str
    dataset: str
    modality: str  # channel 0's modality string (CT, MRI T2, PET SUV)
    image: np.ndarray  # float32 [x, y, z] in RAS order
    label: np.ndarray | None  # atom map, same grid
    affine: np.ndarray  # RAS-ordered affine of both
    build_config: dict[str, Any] = field(default_factory=dict)

    @property
    def spacing(self) -> np.ndarray:
        return spacing_of(self.affine)

    @property
    def ct_window(self) -> tuple[float, float]:
        w = (self.build_config.get("intensity") or {}).get("ct_window")
        if w:
            return float(w[0]), float(w[1])
        from ..build.config import Intensity

        return Intensity().ct_window

    @property
    def is_ct(self) -> bool:
        return (self.modality or "CT").split()[0].upper() == "CT"


def load_built(scan: dict[str, Any]) -> BuiltScan:
    """Read a scan's normalised image (channel 0) and label; reorient both views to RAS."""
    from ..io import read_volume

    img = read_volume(scan["normalised_image"], ndim=None)
    arr = img.array if img.array.ndim == 3 else img.array[..., 0]
    image, affine = reorient(arr, img.affine, "RAS")
    label = None
    if scan.get("normalised_label"):
        lab = read_volume(scan["normalised_label"], ndim=None)
        label = reorient(lab.array, lab.affine, "RAS")[0]
        if label.shape != image.shape:
            raise ValueError(f"label grid {label.shape} differs from the image grid {image.shape}")
    cfg: dict[str, Any] = {}
    meta = Path(scan["normalised_image"]).parent / "meta.json"
    if meta.exists():
        try:
            cfg = json.loads(meta.read_text()).get("config") or {}
        except (OSError, ValueError):
            cfg = {}
    mods = scan.get("channel_modalities") or [scan.get("modality") or "CT"]
    return BuiltScan(scan["scan_id"], scan["dataset"], str(mods[0]), np.asarray(image, dtype=np.float32), label, affine, cfg)
