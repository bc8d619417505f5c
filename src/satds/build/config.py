"""Every normalisation policy in one place, hashed into each built scan's ``build_hash``."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .spacing import SPACING_RANGE_MM, check_spacing

__all__ = ["BUILD_VERSION", "SPACING_RANGE_MM", "BuildConfig", "Intensity", "check_spacing"]

BUILD_VERSION = "2"


class Intensity(BaseModel):
    """Intensity rules per modality (the scan's channel modality string starts with CT, MRI or PET).

    - CT: clip to ``ct_window`` HU, then z-score over the cropped volume (SAT-DS's rule).
    - MRI: clip to the ``mri_percentiles`` of the volume, then z-score (SAT-DS's rule).
    - PET: SUV is a physical scale, so a per-scan z-score (SAT-DS's choice) would make a lesion's
      uptake relative to each scan's average; satds clips to ``pet_suv_window`` and applies one fixed
      affine map ``(SUV - pet_shift) / pet_scale`` for every scan, so SUV stays comparable across
      patients. ``pet: zscore`` restores SAT-DS's behaviour.
    """

    model_config = ConfigDict(extra="forbid")
    ct_window: tuple[float, float] = (-500.0, 1000.0)
    mri_percentiles: tuple[float, float] = (0.5, 99.5)
    pet: Literal["suv", "zscore"] = "suv"
    pet_suv_window: tuple[float, float] = (0.0, 30.0)
    pet_shift: float = 1.0
    pet_scale: float = 2.0


class BuildConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    spacing: tuple[float, float, float] = (1.0, 1.0, 3.0)  # x, y, z in mm after reorientation
    orientation: str = "RAS"
    image_interpolation: Literal["linear", "cubic"] = "linear"
    label_interpolation: Literal["nearest", "linear"] = "linear"
    keep_small_structures: bool = True  # a class present at source keeps at least one voxel
    crop: bool = True
    ct_body_threshold: float = -500.0  # crop box: CT voxels above this HU (plus every labelled voxel)
    intensity: Intensity = Field(default_factory=Intensity)
    compression_level: int = 1  # gzip level for .nii.gz outputs (ISA-L, 0-3)

    @field_validator("spacing")
    @classmethod
    def _spacing_in_range(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        return check_spacing(v)

    def hash(self) -> str:
        blob = json.dumps({"v": BUILD_VERSION, **self.model_dump(mode="json", exclude={"compression_level"})}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
