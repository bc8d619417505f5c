"""Evaluation: DSC, NSD, HD95, HD (surface-distance compatible), vertebra identification, aggregation.

Modules:

* :mod:`.surfels` — neighbour codes on the voxel-corner grid and the surfel area of each code;
* :mod:`.distances` — surface distances between two masks (exact, surface-proportional cost);
* :mod:`.empty` — the empty-mask rule (what every metric is when a side is empty), in one place;
* :mod:`.metrics` — per-structure scores, all classes of two label maps at once;
* :mod:`.vertebrae` — vertebra identification rate and localisation distance;
* :mod:`.aggregate` — class-wise (macro over datasets), region-wise, dataset-wise, CTSpine1K protocol;
* :mod:`.labels` — which values are scored and their names (dataset.json, task recipe, ontology);
* :mod:`.volumes`, :mod:`.grids` — reading label maps, pairing cases, grid checks, alignment, resampling;
* :mod:`.runner` — a folder of predictions against a folder of references; outputs.

See ``docs/evaluation.md`` for the definitions and policies.
"""

from .distances import SurfaceDistances, surface_distances
from .metrics import (
    BOTH_EMPTY,
    ERROR,
    METRICS_VERSION,
    PRED_EMPTY,
    PRED_MISSING,
    REF_EMPTY,
    Scores,
    largest_component,
    score_label_maps,
    score_masks,
)

__all__ = [
    "BOTH_EMPTY",
    "ERROR",
    "METRICS_VERSION",
    "PRED_EMPTY",
    "PRED_MISSING",
    "REF_EMPTY",
    "Scores",
    "SurfaceDistances",
    "largest_component",
    "score_label_maps",
    "score_masks",
    "surface_distances",
]
