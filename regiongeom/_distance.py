"""Exact distance from points to the nonlinear locus (``Locus.distance``).

1D: the locus is a sorted array of points; a binary search finds the two
neighbours. 2D: the segments are put in a uniform grid of square cells (each
segment in every cell its bounding box touches), and each query point looks
at rings of cells around its own, nearest first, keeping the smallest exact
point-to-segment distance; it stops once that distance is no larger than the
distance to the edge of the square of cells already searched, beyond which
every segment lies. The answer is the exact minimum over all segments (the
grid only decides which ones to look at).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


def distance_1d(points, x):
    """(P,) ``min_k |x_p - points_k|``; ``points`` sorted; inf when empty."""
    if points.size == 0:
        return np.full(x.shape[0], np.inf)
    i = np.searchsorted(points, x)
    left = np.abs(x - points[np.clip(i - 1, 0, points.size - 1)])
    right = np.abs(points[np.clip(i, 0, points.size - 1)] - x)
    return np.minimum(left, right)


def distance_2d(segments, x):
    """(P,) exact distance from each point of ``x`` (P, 2) to the nearest of
    ``segments`` (S, 2, 2); inf when there are none."""
    if len(segments) == 0:
        return np.full(x.shape[0], np.inf)
    seg = np.ascontiguousarray(segments, dtype=np.float64)
    # the grid covers the segments and the points, so every point is in a cell
    lo = np.minimum(seg.reshape(-1, 2).min(axis=0), x.min(axis=0))
    hi = np.maximum(seg.reshape(-1, 2).max(axis=0), x.max(axis=0))
    span = np.maximum(hi - lo, 1e-300)
    # about one cell per segment, square cells
    h = max(math.sqrt(span[0] * span[1] / len(seg)), max(span) / 4096.0, 1e-300)
    nx, ny = int(span[0] // h) + 1, int(span[1] // h) + 1
    start, ids = _bucket(seg, lo[0], lo[1], h, nx, ny)
    out = np.empty(x.shape[0])
    _query(seg, start, ids, np.ascontiguousarray(x, dtype=np.float64), lo[0], lo[1], h, nx, ny, out)
    return out


@njit(cache=True)
def _cells_of(s, seg, x0, y0, h, nx, ny):
    """The cell rectangle [i0, i1] x [j0, j1] of segment s's bounding box."""
    ax, ay, bx, by = seg[s, 0, 0], seg[s, 0, 1], seg[s, 1, 0], seg[s, 1, 1]
    i0 = min(max(int((min(ax, bx) - x0) / h), 0), nx - 1)
    i1 = min(max(int((max(ax, bx) - x0) / h), 0), nx - 1)
    j0 = min(max(int((min(ay, by) - y0) / h), 0), ny - 1)
    j1 = min(max(int((max(ay, by) - y0) / h), 0), ny - 1)
    return i0, i1, j0, j1


@njit(cache=True)
def _bucket(seg, x0, y0, h, nx, ny):
    """CSR of cell (j * nx + i) -> segments whose bounding box touches it."""
    count = np.zeros(nx * ny + 1, np.int64)
    for s in range(seg.shape[0]):
        i0, i1, j0, j1 = _cells_of(s, seg, x0, y0, h, nx, ny)
        for j in range(j0, j1 + 1):
            for i in range(i0, i1 + 1):
                count[j * nx + i + 1] += 1
    start = np.cumsum(count)
    fill = start[:-1].copy()
    ids = np.empty(start[-1], np.int64)
    for s in range(seg.shape[0]):
        i0, i1, j0, j1 = _cells_of(s, seg, x0, y0, h, nx, ny)
        for j in range(j0, j1 + 1):
            for i in range(i0, i1 + 1):
                ids[fill[j * nx + i]] = s
                fill[j * nx + i] += 1
    return start, ids


@njit(cache=True, inline="always")
def _seg_dist2(px, py, seg, s):
    ax, ay = seg[s, 0, 0], seg[s, 0, 1]
    dx, dy = seg[s, 1, 0] - ax, seg[s, 1, 1] - ay
    wx, wy = px - ax, py - ay
    L2 = dx * dx + dy * dy
    t = 0.0
    if L2 > 0.0:
        t = min(max((wx * dx + wy * dy) / L2, 0.0), 1.0)
    ex, ey = wx - t * dx, wy - t * dy
    return ex * ex + ey * ey


@njit(cache=True)
def _query(seg, start, ids, x, x0, y0, h, nx, ny, out):  # pragma: no cover
    for p in range(x.shape[0]):
        out[p] = _nearest(seg, start, ids, x[p, 0], x[p, 1], x0, y0, h, nx, ny)


@njit(cache=True)
def _nearest(seg, start, ids, px, py, x0, y0, h, nx, ny):
    """Rings of cells around the point's cell (cx, cy), nearest first."""
    fx, fy = (px - x0) / h, (py - y0) / h
    cx = min(max(int(math.floor(fx)), 0), nx - 1)
    cy = min(max(int(math.floor(fy)), 0), ny - 1)
    best = np.inf
    rmax = max(cx, nx - 1 - cx, cy, ny - 1 - cy)
    for r in range(rmax + 1):
        for j in range(cy - r, cy + r + 1):
            if j < 0 or j >= ny:
                continue
            step = 1 if (j == cy - r or j == cy + r) else 2 * r
            i = cx - r
            while i <= cx + r:
                if 0 <= i < nx:
                    c = j * nx + i
                    for k in range(start[c], start[c + 1]):
                        d2 = _seg_dist2(px, py, seg, ids[k])
                        if d2 < best:
                            best = d2
                i += step
        # every segment outside the searched square is at least this far
        edge = min(px - (x0 + (cx - r) * h), x0 + (cx + r + 1) * h - px,
                   py - (y0 + (cy - r) * h), y0 + (cy + r + 1) * h - py)  # fmt: skip
        if edge > 0.0 and best <= edge * edge:
            break
    return math.sqrt(best)
