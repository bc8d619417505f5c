"""Source label files → one atom map of ontology classes on the image grid.

Order of the rules (each a data-level rule from the spec and the ontology): source values and mask files
→ classes; organs absorb their lesions (``lesions_in_organ``); bilateral classes split into left/right
(``lateralize``); derived parents join their parts (``derived``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dataclasses

import numpy as np

from ..errors import LabelError
from ..ontology import Ontology
from .atoms import AtomLabels
from .classes import UNLABELLED, DatasetClasses
from .laterality import split_sides

NONZERO = "nonzero"


@dataclass
class LabelPiece:
    """One source label array already aligned to the image grid."""

    array: np.ndarray
    file: str
    key: str | None = None  # per-class file: its key in the spec's labels; None for a label map
    notes: list[str] = field(default_factory=list)  # what a reading hook found worth recording (ingest notes)


def as_integer_labels(array: np.ndarray, file: str) -> np.ndarray:
    """Integer view of a label array; NaNs and non-integer values are errors naming the file."""
    if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        return array
    if not np.isfinite(array).all():
        raise LabelError(f"label map holds {int((~np.isfinite(array)).sum())} NaN/inf voxels", file=file)
    rounded = np.rint(array)
    if np.abs(array - rounded).max(initial=0) > 1e-3:
        raise LabelError("label map holds non-integer values (is this an image, not a mask?)", file=file)
    if rounded.min(initial=0) < 0:
        raise LabelError(f"label map holds negative values ({rounded.min():g})", file=file)
    return rounded.astype(np.int32 if rounded.max(initial=0) > 65535 else np.uint16)


def compose(
    pieces: list[LabelPiece],
    classes: DatasetClasses,
    onto: Ontology,
    shape: tuple[int, int, int],
    affine: np.ndarray,
    *,
    midline_x: float | None = None,
    missing: set[str] = frozenset(),
) -> AtomLabels:
    """Build the scan's atom map. ``missing`` are source keys (class files) absent for this case.

    A single label map whose classes need no geometry (no laterality) is composed on its distinct values
    first, and the voxels are then remapped once: the same result as composing voxel by voxel, in one
    pass over the volume.
    """
    import fastremap

    if len(pieces) == 1 and pieces[0].key is None and not classes.lateral:
        piece = pieces[0]
        arr = as_integer_labels(piece.array, piece.file)
        if arr.shape[:3] != tuple(shape):
            raise LabelError(f"label shape {arr.shape} differs from the image {tuple(shape)}", file=piece.file)
        values = np.array([0] + [int(v) for v in fastremap.unique(arr) if v != 0], dtype=arr.dtype).reshape(-1, 1, 1)
        proxy = _compose([dataclasses.replace(piece, array=values)], classes, onto, values.shape, affine, midline_x=midline_x, missing=missing)
        mapping = {int(v): int(a) for v, a in zip(values.ravel(), proxy.array.ravel())}
        out = fastremap.remap(np.asarray(arr), mapping, preserve_missing_labels=False, in_place=False)
        dtype = proxy.array.dtype
        proxy.array = out if out.dtype == dtype else out.astype(dtype)
        return proxy
    return _compose(pieces, classes, onto, shape, affine, midline_x=midline_x, missing=missing)


def _compose(
    pieces: list[LabelPiece],
    classes: DatasetClasses,
    onto: Ontology,
    shape: tuple[int, int, int],
    affine: np.ndarray,
    *,
    midline_x: float | None = None,
    missing: set[str] = frozenset(),
) -> AtomLabels:
    import fastremap

    labels = AtomLabels.empty(shape)
    annotated: set[str] = set()
    present: list[str] = []
    for piece in pieces:
        labels.notes += piece.notes
        arr = as_integer_labels(piece.array, piece.file)
        if arr.shape[:3] != tuple(shape):
            raise LabelError(f"label shape {arr.shape} differs from the image {tuple(shape)}", file=piece.file)
        if piece.key is None:
            values = [int(v) for v in fastremap.unique(arr) if v != 0]
            unknown = [v for v in values if str(v) not in classes.value_map and v not in classes.unlabelled and NONZERO not in classes.value_map]
            if unknown:
                known = sorted(int(k) for k in classes.value_map if k.lstrip("-").isdigit())
                raise LabelError(f"label value(s) {unknown} are not in the spec (known: {known})", file=piece.file)
            present += [str(v) for v in values]
            lut: dict[int, int] = {0: 0}
            for v in values:
                if v in classes.unlabelled:
                    atom = frozenset({UNLABELLED})
                else:
                    atom = frozenset(classes.value_map.get(str(v), classes.value_map.get(NONZERO, ())))
                lut[v] = labels._index(atom) if atom else 0
            if labels.array.any():
                # A second label map on the same scan: add its classes mask by mask.
                for v, a in lut.items():
                    if a:
                        for c in labels.atoms[a]:
                            labels.add_mask(arr == v, c)
            else:
                labels.array = fastremap.remap(np.asarray(arr), lut, preserve_missing_labels=False, in_place=False).astype(np.uint16)
            annotated |= {c for k, ids in classes.value_map.items() for c in ids}
        else:
            ids = classes.value_map.get(piece.key)
            if ids is None:
                raise LabelError(f"mask file {piece.key!r} is not in the spec", file=piece.file)
            mask = arr != 0
            if mask.any():
                present.append(piece.key)
            for c in ids:
                labels.add_mask(mask, c)
            annotated |= set(ids)
    # Classes whose files exist for no piece of this case stay unknown.
    for key in missing:
        for c in classes.value_map.get(key, ()):
            annotated.discard(c)

    # Organs absorb the lesions that lie in them (derived organs after their derivation, below).
    for organ, lesions in classes.lesion_organs.items():
        if organ in classes.derived:
            continue
        if organ in annotated and lesions <= annotated:
            labels.rewrite(lambda a, o=organ, ls=lesions: a | {o} if a & ls else a)
        elif organ in annotated:
            labels.notes.append(f"{organ}: lesions {sorted(lesions - annotated)} not annotated; organ kept without them")

    # Bilateral classes split into the patient's left and right.
    for concept, (left_id, right_id) in classes.lateral.items():
        if concept not in annotated:
            continue
        mask = labels.mask(concept)
        if midline_x is None:
            raise LabelError(f"cannot split {concept} into sides: no body midline")
        split = split_sides(mask, affine, midline_x)
        labels.add_mask(split.left, left_id)
        labels.add_mask(split.right, right_id)
        annotated |= {left_id, right_id}
        if split.cut:
            labels.notes.append(f"{concept}: {split.cut} component(s) straddled the midline and were cut there")

    # Derived parents: union of their parts, where every part is annotated in this scan (classes outside
    # the release's field of view count as annotated and absent).
    annotated |= classes.outside_fov
    for d in classes.derived:
        try:
            parts = onto.leaves_of(d, annotated)
        except Exception:
            labels.notes.append(f"{d}: not derived (parts not annotated in this scan)")
            continue
        labels.rewrite(lambda a, dd=d, ps=frozenset(parts - classes.outside_fov): a | {dd} if a & ps else a)
        annotated.add(d)
        lesions = classes.lesion_organs.get(d)
        if lesions and lesions <= annotated:
            labels.rewrite(lambda a, dd=d, ls=lesions: a | {dd} if a & ls else a)
        elif lesions:
            labels.notes.append(f"{d}: lesions {sorted(lesions - annotated)} not annotated; organ kept without them")

    labels.annotated = annotated - classes.outside_fov
    labels.sources_present = present
    labels.canonicalise(onto.order)
    return labels

