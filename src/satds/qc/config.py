"""Every QC threshold in one place, with why it has the value it has (see docs/qc.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class QCConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # ---- previews
    #: Display window of the normalised (z-scored) image. CT is clipped to [-500, 1000] HU before the
    #: z-score, so a typical scan maps air to about -1.2, soft tissue to about 0.3 and bone to 2-3;
    #: MRI z-scores of tissue lie in about [-1.5, 3]. One fixed window keeps previews comparable.
    window: tuple[float, float] = (-1.5, 2.5)
    overlay_alpha: float = 0.45
    preview_dpi: int = 100

    # ---- label outside the body
    #: A CT voxel is air below this HU value (the build's crop threshold; fat is about -100 HU, lung -800).
    ct_air_hu: float = -500.0
    #: Non-CT images have no absolute air value: air is below floor + this fraction of (p99 - floor).
    mri_air_fraction: float = 0.05
    #: The body mask is dilated by this many mm in-plane before testing, so partial-volume voxels on the
    #: skin surface (linear label interpolation) never count as outside.
    outside_tolerance_mm: float = 2.0
    #: Flag a class when at least this fraction of its voxels (and ``outside_min_voxels``) lie outside.
    outside_warning_fraction: float = 0.10
    outside_error_fraction: float = 0.50
    outside_min_voxels: int = 5

    # ---- volume outliers (robust z-score of log volume per class over the whole collection)
    #: Iglewicz & Hoaglin's modified z-score 0.6745 (x - median) / MAD; 3.5 is their recommended cut-off.
    volume_z: float = 3.5
    #: Classes annotated (with voxels) in fewer scans are skipped: a median/MAD of a handful is noise.
    volume_min_scans: int = 8

    # ---- empty classes
    #: An absent anatomy class is a warning (not info) when at least this fraction of the other scans of
    #: its dataset that annotate it have it, and there are at least ``empty_min_others`` such scans.
    empty_warning_presence: float = 0.8
    empty_min_others: int = 4

    # ---- laterality
    #: Only-one-side test: the class centroid must lie on the wrong side of the body midline by more than
    #: this (mm) to be flagged. The midline is the mean world x of the body mask, which a partial field
    #: of view biases, hence a margin and warning severity.
    midline_margin_mm: float = 10.0
    #: Sided parts of organs that are not mirror-symmetric (heart chambers, liver lobes) are judged only
    #: against their counterpart, never against the body midline: the right ventricle lies left of it.
    midline_exempt_ancestors: tuple[str, ...] = ("heart", "liver")

    # ---- source geometry
    #: A scan whose spacing along a world axis differs from its dataset's median by this factor.
    spacing_factor: float = 2.0
    #: Datasets with fewer scans get no spacing/orientation comparison.
    geometry_min_scans: int = 3
    #: Angle (degrees) between a voxel axis and the nearest world axis above which the affine is oblique.
    oblique_degrees: float = 1.0
    #: max(spacing) / min(spacing) above which a scan is extremely anisotropic.
    anisotropy: float = 10.0
    #: A scan's axis codes are unusual when they differ from the codes of at least this fraction of its
    #: dataset's scans.
    orientation_majority: float = 0.75

    # ---- source intensity
    ct_range: tuple[float, float] = (-2048.0, 4096.0)
    #: Percentiles used for the range test (single hot voxels, e.g. metal, do not count).
    range_percentiles: tuple[float, float] = (0.1, 99.9)
    #: MRI/PET: flag when the low percentile is below -this fraction of the high percentile.
    negative_fraction: float = 0.01
    #: Read every n-th voxel along each axis for percentiles (the minimum uses every voxel).
    intensity_stride: int = 2
