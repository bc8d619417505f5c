"""Surface elements ("surfels") of a binary mask: neighbour codes on the voxel-corner grid and their areas.

A surfel sits on every voxel *corner* whose 2x2x2 neighbourhood of voxels is neither all inside nor all
outside the mask. Its 8-bit *neighbour code* says which of the 8 voxels are inside; the voxel at offset
``(a, b, c)`` (``a, b, c`` in {0, 1}, along array axes 0, 1, 2) contributes the bit ``1 << (7 - (4a+2b+c))``.
This is the coding of DeepMind's ``surface-distance`` package, so codes and areas are interchangeable.

The area of a surfel is the area of the marching-cubes surface inside that 2x2x2 cell, built here from
first principles:

* vertices are the midpoints of the cell edges whose two voxels differ;
* on a face with two diagonal inside voxels (the ambiguous case) the *minority* corners are cut off
  individually (the inside ones when at most four voxels are inside, otherwise the outside ones);
* the face segments chain into closed polygons, and each polygon is split into the triangulation of
  largest total area (unique up to triangulations with equal area vectors).

A triangle with area vector ``v`` (in voxel units) has area ``|(v0 s1 s2, v1 s0 s2, v2 s0 s1)|`` on a grid of
spacing ``s``; a surfel's area is the sum over its triangles. The resulting table equals the package's
table to rounding for every spacing (``tests/test_evaluate_surfels.py`` checks it).
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

#: The 8 voxels of a cell; voxel ``i`` is offset ``CORNERS[i]`` and sets bit ``1 << (7 - i)`` of the code.
CORNERS: tuple[tuple[int, int, int], ...] = tuple(itertools.product((0, 1), repeat=3))

BORDER_CODES = (0, 255)


def _faces() -> list[list[tuple[int, int, int]]]:
    """The 6 faces of the unit cell, each as its 4 corners in cyclic order."""
    faces = []
    for axis in range(3):
        u, w = (d for d in range(3) if d != axis)
        for side in (0, 1):
            ring = []
            for pu, pw in ((0, 0), (1, 0), (1, 1), (0, 1)):
                p = [0, 0, 0]
                p[axis], p[u], p[w] = side, pu, pw
                ring.append(tuple(p))
            faces.append(ring)
    return faces


def _midpoint(p, q) -> tuple[float, float, float]:
    return tuple((a + b) / 2 for a, b in zip(p, q))


def _polygons(inside: frozenset) -> list[list[tuple[float, float, float]]]:
    """Closed polygons of the marching-cubes surface of one cell (vertices at edge midpoints)."""
    cut_inside = len(inside) <= 4
    segments = []
    for ring in _faces():
        marks = [p in inside for p in ring]
        crossings = [i for i in range(4) if marks[i] != marks[(i + 1) % 4]]
        if len(crossings) == 2:
            i, j = crossings
            segments.append((_midpoint(ring[i], ring[(i + 1) % 4]), _midpoint(ring[j], ring[(j + 1) % 4])))
        elif len(crossings) == 4:  # diagonal pair: cut off each minority corner on its own
            for i in range(4):
                if marks[i] == cut_inside:
                    segments.append((_midpoint(ring[i], ring[i - 1]), _midpoint(ring[i], ring[(i + 1) % 4])))
    neighbours: dict = {}
    for a, b in segments:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    polygons, seen = [], set()
    for start in sorted(neighbours):
        if start in seen:
            continue
        loop, prev, cur = [start], None, start
        seen.add(start)
        while True:
            a, b = neighbours[cur]
            nxt = b if a == prev else a
            if nxt == start:
                break
            loop.append(nxt)
            seen.add(nxt)
            prev, cur = cur, nxt
        polygons.append(loop)
    return polygons


def _area_vector(a, b, c) -> tuple[float, float, float]:
    """Half the cross product of the triangle's edges: its area times its unit normal."""
    u = (b[0] - a[0], b[1] - a[1], b[2] - a[2])
    v = (c[0] - a[0], c[1] - a[1], c[2] - a[2])
    return ((u[1] * v[2] - u[2] * v[1]) / 2, (u[2] * v[0] - u[0] * v[2]) / 2, (u[0] * v[1] - u[1] * v[0]) / 2)


def _largest_triangulation(poly: list) -> list[tuple[float, float, float]]:
    """Area vectors of the triangulation of ``poly`` with the largest total (isotropic) area.

    Classic interval dynamic programme over the polygon's vertices: ``best[i][j]`` triangulates the
    sub-polygon ``i..j`` closed by the chord ``(i, j)``.
    """
    n = len(poly)
    best: dict[tuple[int, int], tuple[float, list]] = {}
    for gap in range(1, n):
        for i in range(n - gap):
            j = i + gap
            if gap == 1:
                best[i, j] = (0.0, [])
                continue
            choice = None
            for k in range(i + 1, j):
                v = _area_vector(poly[i], poly[k], poly[j])
                area = best[i, k][0] + best[k, j][0] + math.sqrt(v[0] ** 2 + v[1] ** 2 + v[2] ** 2)
                if choice is None or area > choice[0] + 1e-12:
                    choice = (area, best[i, k][1] + best[k, j][1] + [v])
            best[i, j] = choice
    return best[0, n - 1][1]


@functools.lru_cache(maxsize=1)
def triangle_vectors() -> tuple[np.ndarray, ...]:
    """Per code, the absolute area vectors ``|v|`` (shape ``(t, 3)``, voxel units) of its triangles."""
    out = []
    for code in range(256):
        inside = frozenset(CORNERS[i] for i in range(8) if code >> (7 - i) & 1)
        vecs = [np.abs(v) for poly in _polygons(inside) for v in _largest_triangulation(poly)]
        out.append(np.array(vecs, float).reshape(-1, 3))
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _area_table(spacing: tuple[float, float, float]) -> np.ndarray:
    s0, s1, s2 = spacing
    scale = np.array([s1 * s2, s0 * s2, s0 * s1])
    table = np.zeros(256)
    for code, vecs in enumerate(triangle_vectors()):
        if len(vecs):
            table[code] = np.sqrt(((vecs * scale) ** 2).sum(axis=1)).sum()
    table.setflags(write=False)
    return table


def surfel_area_table(spacing) -> np.ndarray:
    """Area in mm² of the surfel of each of the 256 neighbour codes on a grid of ``spacing`` (mm)."""
    return _area_table(tuple(float(s) for s in spacing))


def _codes(x: np.ndarray) -> np.ndarray:
    c = (x[:-1] << 4) | x[1:]
    c = (c[:, :-1] << 2) | c[:, 1:]
    return (c[:, :, :-1] << 1) | c[:, :, 1:]


def neighbour_codes(padded: np.ndarray, slab: int = 16) -> np.ndarray:
    """Neighbour codes (uint8) on the corner grid of a mask padded with at least one empty voxel.

    ``padded`` has shape ``n + 2`` for a box of ``n`` voxels; the result has shape ``n + 1``: corner ``c``
    lies between voxels ``c - 1`` and ``c`` of the box. Computed separably, one axis at a time, in slabs
    of ``slab`` planes so the temporaries stay in cache.
    """
    x = padded.view(np.uint8) if padded.dtype == bool else padded.astype(np.uint8, copy=False)
    n = x.shape[0] - 1
    if n <= slab or x.size < (1 << 21):
        return _codes(x)
    out = np.empty((n, x.shape[1] - 1, x.shape[2] - 1), np.uint8)
    for s in range(0, n, slab):
        e = min(n, s + slab)
        out[s:e] = _codes(x[s : e + 1])
    return out


def pad_mask(mask: np.ndarray) -> np.ndarray:
    """``mask`` as uint8 with one empty voxel added on every side."""
    out = np.zeros(tuple(s + 2 for s in mask.shape), np.uint8)
    out[1:-1, 1:-1, 1:-1] = mask
    return out
