"""The empty-mask rule, in one place: what every metric is when a class's reference or prediction is empty.

=================  =====  =====  =============  ====================================================
case               dsc    nsd    hd95, hd       flag and use in aggregates
=================  =====  =====  =============  ====================================================
both empty         NaN    NaN    NaN            ``both_empty``: never counted
reference empty    0      0      NaN            ``ref_empty``: not counted by default
prediction empty   0      0      NaN            ``pred_empty``: counted (a missed structure)
no prediction file 0      0      NaN            ``pred_missing``: like ``pred_empty``
=================  =====  =====  =============  ====================================================

The rule is symmetric where it should be: a surface distance with one empty side is NaN whichever side it
is (no ``inf`` for one argument order and ``nan`` for the other). :func:`.metrics.score_masks`,
:func:`.metrics.score_label_maps` and :meth:`.distances.SurfaceDistances.hausdorff` / ``surface_dice``
all take their values from :func:`empty_case` and :data:`VALUES`. A case that could not be scored at all
(unreadable file, non-integer labels, another grid) is flagged ``error``, with its metrics NaN.
"""

from __future__ import annotations

BOTH_EMPTY = "both_empty"
REF_EMPTY = "ref_empty"
PRED_EMPTY = "pred_empty"
PRED_MISSING = "pred_missing"
ERROR = "error"
FLAGS = (BOTH_EMPTY, REF_EMPTY, PRED_EMPTY, PRED_MISSING, ERROR)

NAN = float("nan")

#: (dsc, nsd, hd95, hd) of each empty case.
VALUES: dict[str, tuple[float, float, float, float]] = {
    BOTH_EMPTY: (NAN, NAN, NAN, NAN),
    REF_EMPTY: (0.0, 0.0, NAN, NAN),
    PRED_EMPTY: (0.0, 0.0, NAN, NAN),
    PRED_MISSING: (0.0, 0.0, NAN, NAN),
}


def empty_case(ref_empty: bool, pred_empty: bool) -> str | None:
    """The flag of a (reference, prediction) pair with an empty side; None when both have voxels."""
    if ref_empty and pred_empty:
        return BOTH_EMPTY
    if ref_empty:
        return REF_EMPTY
    if pred_empty:
        return PRED_EMPTY
    return None
