"""Whole-volume label maps from atoms: the rules of :mod:`.rules` applied through look-up tables (ignore and
background policies, the marginal policy with its per-case merge table, the pseudo-label merge)."""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi

from .rules import VoxelRules


def body_mask(image: np.ndarray, *, ct: bool, normalised: bool, threshold_hu: float = -500.0) -> np.ndarray:
    """Voxels inside the body: CT above ``threshold_hu`` (other modalities: non-zero; normalised images:
    above their minimum, i.e. the build's clipping floor), with holes (lungs, bowel gas) filled slice by slice
    along the last (superior) axis, so air inside the body counts as body."""
    img = np.asarray(image)
    if normalised:
        m = img > img.min() if img.size else np.zeros(img.shape, bool)
    elif ct:
        m = img > threshold_hu
    else:
        m = img != 0
    m = np.array(m, dtype=bool, copy=True)
    for k in range(m.shape[2]):
        sl = m[:, :, k]
        if sl.any():
            m[:, :, k] = ndi.binary_fill_holes(sl)
    return m


def known_lut(rules: VoxelRules, atom_sets: list[frozenset[str]], annotated: frozenset[str]) -> np.ndarray:
    """``lut[atom, inside]``: the label of a voxel holding ``atom`` outside (0) or inside (1) the body."""
    lut = np.zeros((len(atom_sets), 2), dtype=np.int64)
    for v, s in enumerate(atom_sets):
        here = frozenset(s) & annotated
        lut[v, 1] = rules.known(here, annotated, True)
        lut[v, 0] = rules.known(here, annotated, False)
    return lut


def known_labels(
    rules: VoxelRules,
    atoms: np.ndarray | None,
    atom_sets: list[frozenset[str]],
    annotated: frozenset[str],
    body: "np.ndarray | callable | None",
    shape: tuple[int, int, int],
    dtype=np.uint8,
) -> tuple[np.ndarray, dict]:
    """The label map from GT alone (ignore policy; background policy when nothing is unknown).

    ``body`` is the inside-body mask, or a function computing it (called only when the outside-body rule
    changes some label). Returns the map and statistics (GT voxels outside the body: a sanity check of the
    rule that no class lies in air).
    """
    if atoms is None:
        atoms = np.zeros(shape, dtype=np.uint8)
        atom_sets = [frozenset()]
    lut = known_lut(rules, atom_sets, annotated)
    stats: dict = {"outside_body_gt_voxels": 0}
    if np.array_equal(lut[:, 0], lut[:, 1]) or body is None:
        return lut[:, 1].astype(dtype)[atoms], stats
    inside = body() if callable(body) else body
    # np.where over two uint8 look-ups: no index arrays of the volume's size in int64
    out = np.where(inside, lut[:, 1].astype(dtype)[atoms], lut[:, 0].astype(dtype)[atoms])
    has_gt = np.array([bool(frozenset(s) & annotated & rules.recipe) for s in atom_sets])
    stats["outside_body_gt_voxels"] = int((has_gt[atoms] & ~inside).sum())
    return out, stats


def marginal_labels(
    rules: VoxelRules,
    atoms: np.ndarray | None,
    atom_sets: list[frozenset[str]],
    annotated: frozenset[str],
    shape: tuple[int, int, int],
    dtype=np.uint8,
) -> tuple[np.ndarray, dict[int, list[int]]]:
    """The label map of the marginal policy and, per label value, the values the marginal loss accepts there.

    Labels are the GT winners (background where no task class is certain), never the ignore value. The second
    result lists only labels that stand for more than themselves in this case (e.g. ``{0: [0, 2, 5]}``:
    background may be classes 2 and 5, which the case does not annotate), over the atoms present.
    """
    if atoms is None:
        atoms = np.zeros(shape, dtype=np.uint8)
        atom_sets = [frozenset()]
    heres = [frozenset(s) & annotated for s in atom_sets]
    lut = np.array([rules.marginal(h, annotated) for h in heres], dtype=np.int64)
    present = np.flatnonzero(np.bincount(atoms.reshape(-1), minlength=len(atom_sets))) if atoms.size else []
    admits: dict[int, set[int]] = {}
    for v in present:
        y = int(lut[v])
        admits.setdefault(y, {y}).update(rules.admitted(heres[v], annotated))
    return lut.astype(dtype)[atoms], {y: sorted(s) for y, s in sorted(admits.items()) if s != {y}}


def merged_labels(
    rules: VoxelRules,
    atoms: np.ndarray | None,
    atom_sets: list[frozenset[str]],
    annotated: frozenset[str],
    predicted: np.ndarray,
    dtype=np.uint8,
) -> np.ndarray:
    """The pseudo-label merge of GT atoms with a prediction in the recipe's label values (0..N)."""
    n = len(rules.classes)
    if atoms is None:
        atoms = np.zeros(predicted.shape, dtype=np.uint8)
        atom_sets = [frozenset()]
    pred_sets = [frozenset()] + [rules.closure(c) for c in rules.classes]
    lut = np.zeros((len(atom_sets), n + 1), dtype=np.int64)
    for v, s in enumerate(atom_sets):
        here = frozenset(s) & annotated
        for p in range(n + 1):
            lut[v, p] = rules.merged(here, annotated, pred_sets[p])
    lut = lut.astype(dtype)
    out = np.zeros(predicted.shape, dtype=dtype)
    present = np.flatnonzero(np.bincount(predicted.reshape(-1), minlength=n + 1)) if predicted.size else []
    for p in present:  # one pass per predicted value present: memory stays at a few bytes per voxel
        sel = predicted == p
        out[sel] = lut[:, p][atoms[sel]]
    return out
