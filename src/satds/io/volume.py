"""A volume is an array plus the affine that places its voxel centres in RAS+ world millimetres."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Volume:
    """``array[i, j, k]`` (or ``[i, j, k, c]``) with ``affine @ (i, j, k, 1)`` = voxel centre in RAS+ mm.

    Readers may return read-only arrays that share the decoded file buffer; copy before writing into them.
    """

    array: np.ndarray
    affine: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got {self.affine.shape}")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.array.shape)

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.array.shape[:3])  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))  # type: ignore[return-value]

    @property
    def axcodes(self) -> str:
        import nibabel as nib

        return "".join(nib.aff2axcodes(self.affine))

    @property
    def voxel_volume_ml(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3]))) / 1000.0

    def __repr__(self) -> str:
        sp = "x".join(f"{s:.3g}" for s in self.spacing)
        return f"Volume(shape={self.shape}, dtype={self.array.dtype}, spacing={sp} mm, axcodes={self.axcodes})"


LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def affine_from_itk(direction, spacing, origin) -> np.ndarray:
    """RAS+ affine from ITK's LPS direction (row-major 3x3), spacing and origin."""
    d = np.asarray(direction, dtype=np.float64).reshape(3, 3)
    aff = np.eye(4)
    aff[:3, :3] = d @ np.diag(np.asarray(spacing, dtype=np.float64))
    aff[:3, 3] = np.asarray(origin, dtype=np.float64)
    return LPS_TO_RAS @ aff


def itk_geometry(affine: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """(direction row-major, spacing, origin) in ITK's LPS convention for a RAS+ affine."""
    lps = LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)
    spacing = np.sqrt((lps[:3, :3] ** 2).sum(axis=0))
    direction = lps[:3, :3] / spacing
    return tuple(direction.ravel().tolist()), tuple(spacing.tolist()), tuple(lps[:3, 3].tolist())
