"""Label atoms: one integer map whose values stand for *sets* of classes.

Overlapping classes (per-class files, derived parents, organs that include their lesions) cannot share
one plain label map. Here each voxel holds an atom index and ``atoms[v]`` is the set of class ids
covering it. Renames and unions become rewrites of the atom sets (no voxel is touched); only splits by
geometry (laterality) refine atoms through masks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

EMPTY: frozenset[str] = frozenset()


@dataclass
class ClassStats:
    voxels: int
    centroid_ijk: np.ndarray | None
    bbox_lo: np.ndarray | None
    bbox_hi: np.ndarray | None


@dataclass
class AtomLabels:
    array: np.ndarray  # integer, atom index per voxel, aligned to the scan's image grid
    atoms: list[frozenset[str]]  # atoms[0] is always the empty set (background)
    annotated: set[str] = field(default_factory=set)  # classes this scan annotates (present or absent)
    notes: list[str] = field(default_factory=list)
    sources_present: list[str] = field(default_factory=list)  # source values / file keys with voxels

    # ------------------------------------------------------------------ construction
    @classmethod
    def empty(cls, shape) -> "AtomLabels":
        return cls(np.zeros(shape, dtype=np.uint16), [EMPTY])

    def _index(self, atom: frozenset[str]) -> int:
        try:
            return self.atoms.index(atom)
        except ValueError:
            if len(self.atoms) > np.iinfo(self.array.dtype).max:
                raise OverflowError(f"more than {np.iinfo(self.array.dtype).max} distinct class combinations")
            self.atoms.append(atom)
            return len(self.atoms) - 1

    def add_mask(self, mask: np.ndarray, cls_id: str, offset: tuple[int, int, int] | None = None) -> None:
        """Add ``cls_id`` to every voxel of a boolean mask (optionally a sub-box at ``offset``)."""
        if offset is None:
            target = self.array
        else:
            sl = tuple(slice(o, o + s) for o, s in zip(offset, mask.shape))
            target = self.array[sl]
        if not mask.any():
            return
        old = target[mask]
        uniq, inv = np.unique(old, return_inverse=True)
        new_vals = np.array([self._index(self.atoms[int(u)] | {cls_id}) for u in uniq], dtype=self.array.dtype)
        target[mask] = new_vals[inv]

    def rewrite(self, fn: Callable[[frozenset[str]], frozenset[str]]) -> None:
        """Replace every atom set by ``fn(set)``; equal results merge into one value."""
        new_atoms = [fn(a) for a in self.atoms]
        self.atoms = new_atoms
        self._dedupe()

    def _dedupe(self) -> None:
        uniq: dict[frozenset[str], int] = {EMPTY: 0}
        lut = np.zeros(len(self.atoms), dtype=np.int64)
        for i, a in enumerate(self.atoms):
            lut[i] = uniq.setdefault(a, len(uniq))
        if len(uniq) != len(self.atoms) or np.any(lut != np.arange(len(lut))):
            self.array = _apply_lut(self.array, lut)
            self.atoms = sorted(uniq, key=uniq.get)

    def canonicalise(self, order: dict[str, int]) -> None:
        """Renumber atoms by their sorted class lists (ontology order), dropping atoms no voxel holds.

        Makes the stored array a function of the masks alone, whatever the source coding.
        """
        import fastremap

        present = {int(v) for v in fastremap.unique(self.array)}
        used = [i for i in range(len(self.atoms)) if i in present and self.atoms[i]]

        def key(i: int) -> tuple:
            return tuple(sorted(order.get(c, 10**9) for c in self.atoms[i])) + (0,), tuple(sorted(self.atoms[i]))

        used.sort(key=key)
        lut = np.zeros(len(self.atoms), dtype=np.int64)
        for new, old in enumerate(used, start=1):
            lut[old] = new
        self.array = _apply_lut(self.array, lut)
        self.atoms = [EMPTY] + [self.atoms[i] for i in used]
        dtype = np.uint8 if len(self.atoms) <= 256 else (np.uint16 if len(self.atoms) <= 65536 else np.uint32)
        if self.array.dtype != dtype:
            self.array = self.array.astype(dtype)

    # ------------------------------------------------------------------ queries
    def values_of(self, cls_id: str) -> list[int]:
        return [i for i, a in enumerate(self.atoms) if cls_id in a]

    def mask(self, cls_id: str) -> np.ndarray:
        lut = np.zeros(len(self.atoms), dtype=bool)
        lut[self.values_of(cls_id)] = True
        return lut[self.array]

    def classes_present(self) -> set[str]:
        return set().union(*self.atoms) if self.atoms else set()

    def stats(self, classes: Iterable[str] | None = None) -> dict[str, ClassStats]:
        """Voxels, centroid and bounding box (voxel indices) per class, from one pass over the array."""
        from .boxes import label_boxes

        arr = self.array
        flat = arr.reshape(-1, order="A")
        counts = np.bincount(flat, minlength=len(self.atoms))
        boxes = label_boxes(arr) if arr.size else {}
        per_atom: dict[int, tuple[int, np.ndarray, np.ndarray, np.ndarray]] = {}
        for v in range(1, len(self.atoms)):
            if v not in boxes or counts[v] == 0:
                continue
            sl = tuple(slice(int(a), int(b) + 1) for a, b in zip(*boxes[v]))
            sub = arr[sl] == v
            n = int(counts[v])
            cen = np.empty(3)
            for ax in range(3):
                other = tuple(a for a in range(3) if a != ax)
                proj = sub.sum(axis=other, dtype=np.int64)
                cen[ax] = (proj * np.arange(sl[ax].start, sl[ax].stop)).sum() / n
            lo = np.array([s.start for s in sl], dtype=np.int64)
            hi = np.array([s.stop - 1 for s in sl], dtype=np.int64)
            per_atom[v] = (n, cen, lo, hi)
        out = {}
        wanted = set(classes) if classes is not None else self.classes_present()
        for c in wanted:
            vals = [v for v in self.values_of(c) if v in per_atom]
            n = sum(per_atom[v][0] for v in vals)
            if n == 0:
                out[c] = ClassStats(0, None, None, None)
                continue
            cen = sum(per_atom[v][0] * per_atom[v][1] for v in vals) / n
            lo = np.min([per_atom[v][2] for v in vals], axis=0)
            hi = np.max([per_atom[v][3] for v in vals], axis=0)
            out[c] = ClassStats(n, cen, lo, hi)
        return out

    def sidecar(self) -> dict:
        return {"atoms": [sorted(a) for a in self.atoms]}


def _apply_lut(array: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``lut[array]`` in the smallest unsigned dtype, through fastremap (one pass, no int64 temporaries)."""
    import fastremap

    dtype = np.uint8 if lut.max(initial=0) < 256 else (np.uint16 if lut.max() < 65536 else np.uint32)
    if np.array_equal(lut, np.arange(len(lut))):
        return array if array.dtype == dtype else array.astype(dtype)
    mapping = {int(i): int(v) for i, v in enumerate(lut)}
    out = fastremap.remap(array, mapping, preserve_missing_labels=True, in_place=False)
    return out if out.dtype == dtype else out.astype(dtype)
