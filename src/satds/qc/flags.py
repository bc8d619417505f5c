"""QC flags: what each check is called, how severe it can be, and the row it writes to ``qc_flags``."""

from __future__ import annotations

from typing import Any

SEVERITIES = ("error", "warning", "info")

#: Every check's id (the ``check`` column) and one line saying what it finds.
CHECKS: dict[str, str] = {
    "label_outside_body": "labelled voxels where the image is air (outside the body mask)",
    "volume_outlier": "class volume far from the class's volumes across the collection (robust z of log volume)",
    "empty_class": "class annotated by the dataset but absent (0 voxels) in this scan",
    "one_voxel_class": "class with exactly one voxel (a stray click or a lost structure)",
    "lost_in_build": "class present at source but with no voxel after normalisation",
    "left_right_swapped": "a left/right class lies on the patient's other side (vs its counterpart or the midline)",
    "spacing_outlier": "voxel spacing far from the dataset's median",
    "oblique_affine": "voxel axes not aligned with the patient axes",
    "unusual_orientation": "axis codes differ from the dataset's usual ones",
    "anisotropic_spacing": "extreme ratio of the largest to the smallest voxel spacing",
    "intensity_range": "source intensities outside the modality's plausible range",
    "ct_without_air": "CT without any air: stored values without rescale slope/intercept?",
    "negative_intensity": "MRI/PET with clearly negative values",
    "constant_image": "an image channel holding a single value",
    "source_unreadable": "the source files could not be read for the intensity checks",
    "qc_failed": "QC of this scan raised an error",
    "preview": "the scan's preview image (one info row per built scan, so every preview is findable)",
}


def flag(check: str, severity: str, message: str, *, scan_id: str, dataset: str, class_id: str | None = None, value: float | None = None) -> dict[str, Any]:
    if check not in CHECKS:
        raise ValueError(f"unknown QC check {check!r}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    return {
        "scan_id": scan_id,
        "dataset": dataset,
        "class_id": class_id,
        "check": check,
        "severity": severity,
        "message": message,
        "value": None if value is None else float(value),
    }
