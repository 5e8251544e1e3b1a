"""numba kernels of :mod:`regiongeom.locus`: the length of segments inside
disks, with a uniform grid; and the pattern comparisons and per-piece scaling
of the per-edge locus decision (:mod:`regiongeom._locus_exact`)."""

from __future__ import annotations

import numpy as np
from numba import njit

GROW = 2.0**-30  # relative margin of the search grid's cells, far above their rounding


@njit(cache=True, nogil=True)
def _chord_in_disk(x0, y0, x1, y1, cx, cy, r2):
    """Length of the part of segment (x0,y0)-(x1,y1) inside the closed disk."""
    dx = x1 - x0
    dy = y1 - y0
    fx = x0 - cx
    fy = y0 - cy
    a = dx * dx + dy * dy
    if a == 0.0:
        return 0.0
    b = fx * dx + fy * dy
    c = fx * fx + fy * fy - r2
    disc = b * b - a * c
    if disc <= 0.0:
        return 0.0
    sq = np.sqrt(disc)
    # numerically stable roots of a t^2 + 2 b t + c = 0
    if b >= 0.0:
        q = -(b + sq)
    else:
        q = -(b - sq)
    t1 = q / a
    t2 = c / q if q != 0.0 else t1
    if t1 > t2:
        t1, t2 = t2, t1
    lo = t1 if t1 > 0.0 else 0.0
    hi = t2 if t2 < 1.0 else 1.0
    if hi <= lo:
        return 0.0
    return (hi - lo) * np.sqrt(a)


@njit(cache=True, nogil=True)
def segments_in_disks(seg, centers, eps, x0, y0, h, nx, ny):
    """(P,) total length of the segments ``seg`` (S, 2, 2) inside each disk.

    The centers are sorted into the cells of an ``nx`` x ``ny`` grid (origin
    ``x0, y0``, cell size ``h``) that covers every segment's bounding box
    grown by ``eps``; each segment then visits the centers of the cells its
    grown bounding box touches. A center outside the grid misses every
    segment. Every center's sum runs over the segments in their order, so
    the result does not depend on the grid.
    """
    S = seg.shape[0]
    P = centers.shape[0]
    ncell = nx * ny
    # the centers by cell (counting sort)
    cell = np.full(P, -1, np.int64)
    counts = np.zeros(ncell + 1, np.int64)
    for p in range(P):
        fi = np.floor((centers[p, 0] - x0) / h)
        fj = np.floor((centers[p, 1] - y0) / h)
        if fi >= 0 and fj >= 0 and fi < nx and fj < ny:  # (false for a NaN)
            c = int(fj) * nx + int(fi)
            cell[p] = c
            counts[c + 1] += 1
    indptr = np.cumsum(counts)
    fill = indptr[:-1].copy()
    order = np.empty(indptr[ncell], np.int64)
    for p in range(P):
        c = cell[p]
        if c >= 0:
            order[fill[c]] = p
            fill[c] += 1
    out = np.zeros(P, np.float64)
    r2 = eps * eps
    for s in range(S):
        ax, ay, bx, by = seg[s, 0, 0], seg[s, 0, 1], seg[s, 1, 0], seg[s, 1, 1]
        xa, xb = min(ax, bx) - eps, max(ax, bx) + eps
        ya, yb = min(ay, by) - eps, max(ay, by) + eps
        # the cell coordinates are rounded: grow them by far more than that
        # rounding (the grid only narrows the search, so a margin costs time,
        # never a center)
        gx = GROW * (1.0 + (abs(xa) + abs(xb) + abs(x0) + eps) / h)
        gy = GROW * (1.0 + (abs(ya) + abs(yb) + abs(y0) + eps) / h)
        i0 = max(0, min(nx - 1, int(np.floor((xa - x0) / h - gx))))
        i1 = max(0, min(nx - 1, int(np.floor((xb - x0) / h + gx))))
        j0 = max(0, min(ny - 1, int(np.floor((ya - y0) / h - gy))))
        j1 = max(0, min(ny - 1, int(np.floor((yb - y0) / h + gy))))
        for j in range(j0, j1 + 1):
            for k in range(indptr[j * nx + i0], indptr[j * nx + i1 + 1]):
                p = order[k]
                out[p] += _chord_in_disk(ax, ay, bx, by, centers[p, 0], centers[p, 1], r2)
    return out


@njit(cache=True, nogil=True)
def edge_differences(patterns, words, a, b):
    """How many neurons differ between the patterns of regions ``a[e]`` and
    ``b[e]`` (0, 1, or 2 meaning "two or more") and, when exactly one does,
    which (else -1).

    ``words`` is ``patterns`` (``(R, N)`` int8) zero padded to a multiple of
    8 columns and viewed as uint64 words: equal words are skipped at once,
    a differing word is read byte by byte from ``patterns``.
    """
    E = a.shape[0]
    N = patterns.shape[1]
    count = np.zeros(E, np.int64)
    neuron = np.empty(E, np.int64)  # (-1 by a loop, not np.full: one numba overload less to compile)
    for e in range(E):
        neuron[e] = -1
    for e in range(E):
        ra, rb = a[e], b[e]
        c = 0
        for w in range(words.shape[1]):
            if words[ra, w] == words[rb, w]:
                continue
            for k in range(8 * w, min(8 * w + 8, N)):
                if patterns[ra, k] != patterns[rb, k]:
                    c += 1
                    neuron[e] = k
            if c > 1:
                break
        if c > 1:
            neuron[e] = -1
            c = 2
        count[e] = c
    return count, neuron


def scale_by_pieces(v, patterns, regions, first, slopes):
    """In place: ``v[s, i] *= slopes[patterns[regions[s], first + i]]`` (row
    ``s`` of ``v`` times the slopes of region ``regions[s]``'s pieces of one
    layer, whose neurons start at ``first``). A read-only ``slopes`` (an
    activation's own) is copied first: numba types a read-only array apart
    and would compile the kernel once more for it."""
    if not slopes.flags.writeable:
        slopes = slopes.copy()
    _scale_by_pieces(v, patterns, regions, first, slopes)


@njit(cache=True, nogil=True)
def _scale_by_pieces(v, patterns, regions, first, slopes):
    """:func:`scale_by_pieces` (``slopes`` writable)."""
    for s in range(v.shape[0]):
        r = regions[s]
        for i in range(v.shape[1]):
            v[s, i] *= slopes[patterns[r, first + i]]


@njit(cache=True, nogil=True)
def first_difference(patterns, words, a, b):
    """(E,) the first neuron where the patterns of regions ``a[e]`` and
    ``b[e]`` differ (the number of neurons when they are equal); ``words`` as
    in :func:`edge_differences`."""
    E = a.shape[0]
    N = patterns.shape[1]
    out = np.full(E, N, np.int64)
    for e in range(E):
        ra, rb = a[e], b[e]
        for w in range(words.shape[1]):
            if words[ra, w] != words[rb, w]:
                for k in range(8 * w, min(8 * w + 8, N)):
                    if patterns[ra, k] != patterns[rb, k]:
                        out[e] = k
                        break
                break
    return out
