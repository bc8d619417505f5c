"""Surface distances between two masks, as defined by DeepMind's ``surface-distance`` package.

Both surfaces are sets of surfels on the voxel-corner grid (:mod:`.surfels`). The distance of a surfel of
one surface to the other surface is the Euclidean distance, in mm, from its corner to the nearest surfel
corner of the other surface (what the package reads from a Euclidean distance transform of the other
surface's corners). Percentiles and tolerances are weighted by surfel area.

How it is computed, exactly and in time proportional to the surfaces rather than to the volume:

1. a surfel both surfaces share is at distance 0;
2. every other surfel looks at the corner offsets within a small radius, nearest first, and stops at the
   first corner of the other surface it meets (that is its nearest one: every closer offset was looked at);
3. the few surfels with nothing in that radius ask a k-d tree of the other surface's corners.

Each distance is computed from integer corner offsets the way the distance transform computes it,
``sqrt((di*si)² + (dj*sj)² + (dk*sk)²)``, so the values equal the package's to the last bit.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .empty import VALUES, empty_case
from .surfels import neighbour_codes, surfel_area_table


@dataclass(frozen=True)
class Directed:
    """Distances from the surfels of one surface (the *source*) to another surface.

    ``zero_counts[code]`` counts the source surfels of each neighbour code that lie on the other surface
    (distance 0); the other source surfels are listed in ``distances`` (mm, ascending) with their
    ``areas`` (mm²). Distances are ``inf`` when the other surface is empty. ``table`` is the surfel area
    per code.
    """

    zero_counts: np.ndarray
    distances: np.ndarray
    areas: np.ndarray
    table: np.ndarray

    @property
    def zero_count(self) -> int:
        return int(self.zero_counts.sum())

    @property
    def zero_area(self) -> float:
        return float(self.zero_counts @ self.table)

    @property
    def count(self) -> int:
        return self.zero_count + len(self.distances)

    @property
    def total_area(self) -> float:
        return self.zero_area + float(self.areas.sum())

    def area_within(self, tolerance_mm: float) -> float:
        """Area of the source surfels at most ``tolerance_mm`` from the other surface."""
        k = int(np.searchsorted(self.distances, tolerance_mm, side="right"))
        return self.zero_area + float(self.areas[:k].sum())

    def percentile(self, percent: float) -> float:
        """The package's area-weighted percentile of the distances.

        Surfels ordered by distance, it is the distance of the first surfel at which the cumulative area
        over the total area is ``>= percent / 100`` (the last surfel if rounding never gets there).
        ``nan`` for an empty source surface.
        """
        if self.count == 0:
            return float("nan")
        zero = self.zero_area
        total = zero + float(self.areas.sum())
        q = percent / 100.0
        if len(self.distances) == 0 or (self.zero_count and zero / total >= q):
            return 0.0
        cum = (zero + np.cumsum(self.areas)) / total
        k = int(np.searchsorted(cum, q, side="left"))
        return float(self.distances[min(k, len(self.distances) - 1)])

    def max(self) -> float:
        if self.count == 0:
            return float("nan")
        return float(self.distances[-1]) if len(self.distances) else 0.0


@dataclass(frozen=True)
class SurfaceDistances:
    """Both directed distance sets of a (reference, prediction) pair."""

    ref_to_pred: Directed
    pred_to_ref: Directed

    @property
    def empty(self) -> str | None:
        """The empty-mask case (:mod:`.empty`): a mask has surfels exactly when it has voxels."""
        return empty_case(self.ref_to_pred.count == 0, self.pred_to_ref.count == 0)

    def surface_dice(self, tolerance_mm: float) -> float:
        """NSD: area of both surfaces within the tolerance of the other, over the total area."""
        if self.empty:
            return VALUES[self.empty][1]
        total = self.ref_to_pred.total_area + self.pred_to_ref.total_area
        return (self.ref_to_pred.area_within(tolerance_mm) + self.pred_to_ref.area_within(tolerance_mm)) / total

    def hausdorff(self, percent: float = 100.0) -> float:
        """The larger of the two directed area-weighted percentiles (100: the Hausdorff distance).

        NaN when either mask is empty, whichever (the empty-mask rule of :mod:`.empty`)."""
        if self.empty:
            return VALUES[self.empty][3 if percent >= 100 else 2]
        if percent >= 100:
            return max(self.ref_to_pred.max(), self.pred_to_ref.max())
        return max(self.ref_to_pred.percentile(percent), self.pred_to_ref.percentile(percent))

    def as_arrays(self) -> dict[str, np.ndarray]:
        """Every surfel's distance and area sorted by (distance, area), keyed like the package's dict."""
        out = {}
        for src, dst, d in (("gt", "pred", self.ref_to_pred), ("pred", "gt", self.pred_to_ref)):
            dist = np.concatenate([np.zeros(d.zero_count), d.distances])
            area = np.concatenate([np.repeat(d.table, d.zero_counts), d.areas])
            order = np.lexsort((area, dist))
            out[f"distances_{src}_to_{dst}"] = dist[order]
            out[f"surfel_areas_{src}"] = area[order]
        return out


# ------------------------------------------------------------------------------------------ search radius


def search_radius(spacing) -> np.ndarray:
    """Voxel offsets per axis looked at before the k-d tree: ``ceil(3 * min(spacing) / s_i)``."""
    spacing = np.asarray(spacing, float)
    return np.ceil(3.0 * spacing.min() / spacing - 1e-9).astype(int)


def margin(spacing) -> np.ndarray:
    """Empty voxels a mask needs on each side of its box: one for the corners, plus the search radius."""
    return search_radius(spacing) + 1


@functools.lru_cache(maxsize=64)
def _offsets(spacing: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Integer offsets within the search radius (a ball in mm), nearest first, and their distances."""
    s = np.asarray(spacing)
    r = search_radius(s)
    grid = np.stack(np.meshgrid(*[np.arange(-k, k + 1) for k in r], indexing="ij"), -1).reshape(-1, 3)
    grid = grid[np.any(grid != 0, axis=1)]
    d = _distance(grid, s)
    keep = d <= 3.0 * s.min() + 1e-9
    grid, d = grid[keep], d[keep]
    order = np.lexsort((grid[:, 2], grid[:, 1], grid[:, 0], d))
    return grid[order], d[order]


def _distance(delta: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """``sqrt((d0*s0)² + (d1*s1)² + (d2*s2)²)`` for integer offsets, summed in the distance transform's order."""
    x = delta.astype(np.float64) * spacing
    x *= x
    return np.sqrt(x[:, 0] + x[:, 1] + x[:, 2])


def _is_surfel(codes: np.ndarray) -> np.ndarray:
    # codes 1..254: (code - 1) wraps 0 to 255, so one comparison does it
    return (codes - np.uint8(1)) < np.uint8(254)


def _directed(src_codes, src_surfel, other_surfel, spacing, table, threads, cache) -> Directed:
    """Distances from the source surfels to the other surface (flat corner-grid arrays)."""
    src_idx = np.flatnonzero(src_surfel)
    on_other = other_surfel[src_idx]
    zero_counts = np.bincount(src_codes[src_idx[on_other]], minlength=256)
    q = src_idx[~on_other]
    if len(q) == 0:
        return Directed(zero_counts, np.zeros(0), np.zeros(0), table)
    if not cache["other_any"]:
        d = np.full(len(q), np.inf)
        return Directed(zero_counts, d, table[src_codes[q]], table)
    shape = cache["shape"]
    strides = np.array([shape[1] * shape[2], shape[2], 1])
    offsets, off_d = _offsets(tuple(float(s) for s in spacing))
    found_idx, found_d = [], []
    rest = q
    for off, dist in zip(offsets @ strides, off_d):
        hit = other_surfel[rest + off]
        if hit.any():
            found_idx.append(rest[hit])
            found_d.append(np.full(int(hit.sum()), dist))
            rest = rest[~hit]
            if len(rest) == 0:
                break
    if len(rest):
        tree, other_flat = cache.get("tree") or _build_tree(other_surfel, shape, spacing, cache)
        pts = np.stack(np.unravel_index(rest, shape), axis=1)
        _, nn = tree.query(pts * spacing, k=1, workers=threads)
        d = _distance(pts - np.stack(np.unravel_index(other_flat[nn], shape), axis=1), spacing)
        order = np.argsort(d, kind="stable")
        found_idx.append(rest[order])
        found_d.append(d[order])
    idx = np.concatenate(found_idx)
    return Directed(zero_counts, np.concatenate(found_d), table[src_codes[idx]], table)


def _build_tree(surfel, shape, spacing, cache):
    from scipy.spatial import cKDTree

    flat = np.flatnonzero(surfel)
    pts = np.stack(np.unravel_index(flat, shape), axis=1) * spacing
    cache["tree"] = (cKDTree(pts, leafsize=32, balanced_tree=False, compact_nodes=False), flat)
    return cache["tree"]


def surface_distances_boxed(ref_b: np.ndarray, pred_b: np.ndarray, spacing, threads: int = 1) -> SurfaceDistances:
    """Surface distances of two uint8 masks on the same box, each with ``margin(spacing)`` empty voxels
    on every side (so every offset within the search radius of a surfel stays inside the corner grid)."""
    spacing = np.asarray(spacing, float)
    pad = margin(spacing)
    for m in (ref_b, pred_b):
        for axis, p in enumerate(pad):
            lead = m[(slice(None),) * axis + (slice(0, p),)]
            tail = m[(slice(None),) * axis + (slice(m.shape[axis] - p, None),)]
            if m.shape[axis] < 2 * p or lead.any() or tail.any():
                raise ValueError(f"masks need {pad.tolist()} empty voxels on each side (see margin())")
    table = surfel_area_table(spacing)
    rc, pc = neighbour_codes(ref_b), neighbour_codes(pred_b)
    shape = rc.shape
    rc, pc = rc.reshape(-1), pc.reshape(-1)
    rs, ps = _is_surfel(rc), _is_surfel(pc)
    r_cache = {"shape": shape, "other_any": bool(ps.any())}
    p_cache = {"shape": shape, "other_any": bool(rs.any())}
    return SurfaceDistances(
        _directed(rc, rs, ps, spacing, table, threads, r_cache),
        _directed(pc, ps, rs, spacing, table, threads, p_cache),
    )


def bounding_box(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Inclusive ``(lo, hi)`` voxel indices of the non-zero voxels, or None when there are none."""
    lo, hi = [], []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        nz = np.flatnonzero(mask.any(axis=other))
        if len(nz) == 0:
            return None
        lo.append(nz[0])
        hi.append(nz[-1])
    return np.array(lo), np.array(hi)


def embed(mask: np.ndarray, pad) -> np.ndarray:
    """``mask`` as uint8 with ``pad[i]`` empty voxels added on both sides of axis ``i``."""
    pad = np.broadcast_to(np.asarray(pad, int), (3,))
    out = np.zeros(tuple(int(s + 2 * p) for s, p in zip(mask.shape, pad)), np.uint8)
    out[tuple(slice(p, p + s) for p, s in zip(pad, mask.shape))] = mask
    return out


def surface_distances(ref: np.ndarray, pred: np.ndarray, spacing, threads: int = 1) -> SurfaceDistances:
    """Surface distances between two boolean masks of the same shape, ``spacing`` in mm per array axis."""
    ref = np.asarray(ref, bool)
    pred = np.asarray(pred, bool)
    if ref.shape != pred.shape or ref.ndim != 3:
        raise ValueError(f"masks must be 3D and of equal shape, got {ref.shape} and {pred.shape}")
    spacing = np.asarray(spacing, float)
    box = bounding_box(ref | pred)
    if box is None:
        empty = Directed(np.zeros(256, np.int64), np.zeros(0), np.zeros(0), surfel_area_table(spacing))
        return SurfaceDistances(empty, empty)
    sl = tuple(slice(a, b + 1) for a, b in zip(*box))
    m = margin(spacing)
    return surface_distances_boxed(embed(ref[sl], m), embed(pred[sl], m), spacing, threads)
