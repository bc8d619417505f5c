"""What one voxel's label is, from the classes known there: the ignore, marginal, background and pseudo-label rules.

Everything here is pure and works on *sets of class ids*, so it can be tested voxel by voxel and applied to
whole volumes through look-up tables: a scan's label map stores atoms (sets of classes), hence the label
of every voxel follows from ``(atom, inside body)`` or ``(atom, predicted label)`` alone.

Terms, per scan:
- *annotated*: every class the scan's dataset annotates (recipe classes or not); the ground truth (GT) says
  where each is present and, as importantly, where it is absent.
- *unknown*: a recipe class the scan does not annotate.
- Two classes *may overlap* only when the ontology nests one in the other (a part in its whole, a lesion
  in its organ or in a part of that organ); otherwise their masks are taken as disjoint.
"""

from __future__ import annotations

import functools

from ..ontology import Ontology


class Relations:
    """Containment and possible overlap between ontology concepts (cached)."""

    def __init__(self, onto: Ontology):
        self.onto = onto

    @functools.lru_cache(maxsize=None)
    def contains(self, a: str, b: str) -> bool:
        """True when every voxel of ``b`` is also ``a`` (``a`` is an ancestor, or ``b`` a lesion located in ``a``)."""
        if a == b or a not in self.onto or b not in self.onto:
            return False
        if a in self.onto.ancestors(b):
            return True
        loc = self.onto[b].located_in
        return bool(loc) and (a == loc or a in self.onto.ancestors(loc))

    @functools.lru_cache(maxsize=None)
    def may_overlap(self, a: str, b: str) -> bool:
        if a == b or self.contains(a, b) or self.contains(b, a):
            return True
        for x, y in ((a, b), (b, a)):
            loc = self.onto[x].located_in if x in self.onto else None
            if loc and y in self.onto.descendants(loc):
                return True  # a lesion of an organ may lie in any part of it
        return False


class VoxelRules:
    """Label values for one recipe: ``classes`` (ids in label order), painting order and ignore value."""

    def __init__(self, classes: list[str], order: list[str], relations: Relations, ignore_value: int | None = None):
        self.classes = list(classes)
        self.value = {c: i + 1 for i, c in enumerate(self.classes)}
        self.rank = {c: i for i, c in enumerate(order)}  # higher wins
        self.rel = relations
        self.ignore_value = len(self.classes) + 1 if ignore_value is None else ignore_value
        self.recipe = frozenset(self.classes)

    @classmethod
    def of(cls, resolved) -> "VoxelRules":
        return cls(resolved.ids, resolved.order, resolved.rel, resolved.ignore_value)

    def winner(self, present) -> int:
        best = max((c for c in present if c in self.recipe), key=self.rank.__getitem__, default=None)
        return 0 if best is None else self.value[best]

    def _certain(self, here: frozenset[str], unknown) -> set[str]:
        """Recipe classes certainly at a voxel: its GT classes and unknown classes containing one of them."""
        out = set(here & self.recipe)
        out |= {u for u in unknown if any(self.rel.contains(u, a) for a in here)}
        return out

    def _absent(self, c: str, here: frozenset[str], annotated: frozenset[str], depth: int = 0) -> bool:
        """The GT says ``c`` is absent here: annotated and not here, or every part of a partition of it is."""
        if c in annotated:
            return c not in here
        if depth > 4 or c not in self.rel.onto:
            return False
        onto = self.rel.onto
        for part in onto[c].partitions:
            members = [m for m in part if m in onto and (not onto[m].variant or m in annotated)]
            if members and all(self._absent(m, here, annotated, depth + 1) for m in members):
                return True
        return False

    def _excluded(self, u: str, here: frozenset[str], annotated: frozenset[str]) -> bool:
        """The GT rules out unknown class ``u`` at a voxel holding exactly the classes ``here``."""
        if self._absent(u, here, annotated):
            return True  # its parts are annotated and all absent here
        if any(self.rel.contains(a, u) for a in annotated - here):
            return True  # u lies inside an annotated class that is absent here
        if any(not self.rel.may_overlap(a, u) for a in here):
            return True  # an annotated class present here cannot share voxels with u
        return False

    def known(self, here: frozenset[str], annotated: frozenset[str], inside: bool = True) -> int:
        """The label of a voxel from GT alone, or the ignore value when an unknown class could change it.

        ``here``: the annotated classes covering the voxel; ``annotated``: every class the scan annotates;
        ``inside``: False for a voxel outside the body where no recipe class can lie.

        The voxel gets the winner among the classes certainly there (background when none), unless an unknown
        recipe class that would beat that winner may be there too: then nobody knows the label and it is
        ignored. An unknown class may be at a voxel unless the voxel is outside the body, or an annotated class
        containing it is absent there, or an annotated class present there cannot overlap it. So background
        is only ever written where every class that could be there is known to be absent.
        """
        unknown = self.recipe - annotated
        certain = self._certain(here, unknown)
        w = self.winner(certain)
        w_rank = self.rank[self.classes[w - 1]] if w else -1
        for u in unknown - certain:
            if self.rank[u] <= w_rank or not inside:
                continue
            if not self._excluded(u, here, annotated):
                return self.ignore_value
        return w

    def marginal(self, here: frozenset[str], annotated: frozenset[str]) -> int:
        """Marginal policy: the winner among the classes certainly at the voxel, background when none.

        Where :meth:`known` would write the ignore value, this writes what the GT says; the label then stands
        for "this, or an unannotated class" (:meth:`admitted`), which the marginal loss reads per case.
        """
        return self.winner(self._certain(here, self.recipe - annotated))

    def admitted(self, here: frozenset[str], annotated: frozenset[str]) -> frozenset[int]:
        """Label values the marginal loss accepts at a voxel labelled :meth:`marginal`: that label, plus every
        unknown class that may be at the voxel and would win over it (the classes :meth:`known` would ignore it
        for). The two policies agree: the set has more than one value exactly where ``known`` gives ignore
        inside the body."""
        unknown = self.recipe - annotated
        certain = self._certain(here, unknown)
        w = self.winner(certain)
        w_rank = self.rank[self.classes[w - 1]] if w else -1
        out = {w}
        for u in unknown - certain:
            if self.rank[u] > w_rank and not self._excluded(u, here, annotated):
                out.add(self.value[u])
        return frozenset(out)

    def merged(self, here: frozenset[str], annotated: frozenset[str], predicted: frozenset[str]) -> int:
        """Pseudo-label merge: GT for annotated classes, the prediction for the others.

        ``predicted``: recipe classes the prediction puts at the voxel (with their containers). Predicted
        annotated classes are dropped (the GT is authoritative, about absence too); a predicted unknown class
        is kept unless the GT rules it out at this voxel (a GT class that cannot overlap it is present: GT
        wins the conflict; or an annotated class containing it is absent).
        """
        unknown = self.recipe - annotated
        members = self._certain(here, unknown)
        for u in predicted & unknown:
            if not self._excluded(u, here, annotated):
                members.add(u)
        return self.winner(members)

    def closure(self, cls_id: str) -> frozenset[str]:
        """A class with the recipe classes that contain it (what a predicted value says about a voxel)."""
        return frozenset({cls_id} | {o for o in self.classes if self.rel.contains(o, cls_id)})
