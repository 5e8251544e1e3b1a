"""An exact rational reference for the activation regions of small networks.

Independent of the engine: it reads only the network's public attributes
(``weights``, ``biases``, ``activations[i].breakpoints``, ``.slopes``,
``.intercepts``) and converts every float exactly with ``fractions.Fraction``
(floats are dyadic rationals), so every sign, every coincidence and every
measure below is exact for the float64 network itself.

2D: the domain (a box or a convex polygon with float vertices) is one convex
rational polygon. Neurons are taken in network order; on every current cell
the layer's preactivations are exact affine maps ``z = a . x + c`` (from the
cell's pattern), and each neuron splits every cell into its activation pieces
``t_{k-1} <= z <= t_k`` by exact half-plane clipping (Sutherland-Hodgman in
Fractions); pieces of zero area are dropped. A neuron constant on a cell does
not split it. Every final cell is the closure of the set of inputs with one
pattern, so patterns are distinct. Edges are the shared boundary segments of
positive length between two cells (found per supporting line); an edge is
locus when the two cells' output Jacobians differ exactly; linear regions are
the connected components across the other edges.

1D: the same on intervals, with exact roots.

Patterns follow ``Network.patterns``: the piece of neuron ``j`` is the number
of its breakpoints ``<= z_j`` at an interior point of the region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = ["ExactMap", "exact_regions", "exact_forward", "exact_domain", "exact_layers"]

F = Fraction


# ------------------------------------------------------------ network ----
@dataclass(frozen=True)
class _Layer:
    W: tuple  # rows of Fractions
    b: tuple
    act: tuple | None  # (breakpoints, slopes, intercepts) as Fractions, or None


def _fractions(a) -> tuple:
    return tuple(F(float(v)) for v in np.asarray(a, dtype=np.float64).reshape(-1))


def exact_layers(net) -> list:
    """Every weight, bias and activation constant of ``net`` as exact Fractions."""
    out = []
    for w, b, a in zip(net.weights, net.biases, net.activations, strict=True):
        w = np.asarray(w, dtype=np.float64)
        rows = tuple(_fractions(r) for r in w)
        act = None
        if a is not None:
            act = (_fractions(a.breakpoints), _fractions(a.slopes), _fractions(a.intercepts))
        out.append(_Layer(rows, _fractions(b), act))
    return out


def _piece(bps, z) -> int:
    """Right-continuous piece index: how many breakpoints are ``<= z``."""
    return sum(1 for t in bps if t <= z)


def _affine(layer, J, c):
    """Preactivations ``z = zJ x + zc`` of ``layer`` given its input ``h = J x + c``."""
    n_in = len(J[0]) if J else 0
    zJ = [tuple(sum((w * Jk[i] for w, Jk in zip(row, J)), F(0)) for i in range(n_in)) for row in layer.W]
    zc = [sum((w * ck for w, ck in zip(row, c)), F(0)) + bj for row, bj in zip(layer.W, layer.b)]
    return zJ, zc


def _activate(layer, zJ, zc, pieces):
    """The layer's output map ``h = J x + c`` on the given pieces (None: affine layer)."""
    if layer.act is None:
        return zJ, zc
    _, sl, ic = layer.act
    J = [tuple(sl[k] * v for v in row) for row, k in zip(zJ, pieces)]
    c = [sl[k] * z + ic[k] for z, k in zip(zc, pieces)]
    return J, c


def exact_forward(net, x, layers=None):
    """Exact output and pattern of ``net`` at one float point ``x``.

    Returns
    -------
    out : list of Fraction, (n_out,)
    pattern : tuple of int, (n_neurons,)
    """
    layers = exact_layers(net) if layers is None else layers
    h = [F(float(v)) for v in np.asarray(x, dtype=np.float64).reshape(-1)]
    pattern = []
    for layer in layers:
        z = [sum((w * v for w, v in zip(row, h)), F(0)) + bj for row, bj in zip(layer.W, layer.b)]
        if layer.act is None:
            h = z
            continue
        bps, sl, ic = layer.act
        ks = [_piece(bps, v) for v in z]
        pattern += ks
        h = [sl[k] * v + ic[k] for v, k in zip(z, ks)]
    return h, tuple(pattern)


# ------------------------------------------------------------- domain ----
def exact_domain(domain):
    """``(lo, hi)`` -> ``(1, (lo, hi))``; a box or a convex shapely Polygon ->
    ``(2, [CCW vertices])``, all Fractions, exactly collinear vertices removed."""
    import shapely

    if isinstance(domain, shapely.Geometry):
        pts = np.asarray(domain.exterior.coords, dtype=np.float64)[:-1]
        if len(domain.interiors) or abs(domain.convex_hull.area - domain.area) > 0:
            raise ValueError("the exact reference handles boxes and convex polygons only")
        poly = [(F(float(x)), F(float(y))) for x, y in pts]
        if _area2(poly) < 0:
            poly = poly[::-1]
        return 2, _drop_collinear(poly)
    vals = [F(float(v)) for v in np.asarray(domain, dtype=np.float64).reshape(-1)]
    if len(vals) == 2:
        return 1, (vals[0], vals[1])
    x0, y0, x1, y1 = vals
    return 2, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


# ----------------------------------------------------------- geometry ----
def _area2(P) -> Fraction:
    """Twice the signed area of a vertex cycle."""
    s = F(0)
    for i in range(len(P)):
        (x0, y0), (x1, y1) = P[i - 1], P[i]
        s += x0 * y1 - x1 * y0
    return s


def _drop_collinear(P):
    """The cycle without vertices lying on the segment between their neighbours."""
    changed = True
    while changed and len(P) >= 3:
        changed = False
        for i in range(len(P)):
            a, b, d = P[i - 1], P[i], P[(i + 1) % len(P)]
            if (b[0] - a[0]) * (d[1] - b[1]) - (b[1] - a[1]) * (d[0] - b[0]) == 0:
                P = P[:i] + P[i + 1 :]
                changed = True
                break
    return P


def _clip(P, a, c, t, side):
    """Sutherland-Hodgman: the part of convex ``P`` where ``side * (a . x + c - t) >= 0``."""
    f = [side * (a[0] * x + a[1] * y + c - t) for x, y in P]
    out = []
    n = len(P)
    for i in range(n):
        p, q, fp, fq = P[i], P[(i + 1) % n], f[i], f[(i + 1) % n]
        if fp >= 0:
            out.append(p)
        if (fp > 0 > fq) or (fp < 0 < fq):
            u = fp / (fp - fq)
            out.append((p[0] + u * (q[0] - p[0]), p[1] + u * (q[1] - p[1])))
    return out


def _split_2d(P, a, c, bps):
    """[(piece, polygon)] of positive area: ``P`` cut by ``a . x + c = t`` for every breakpoint."""
    if a[0] == 0 and a[1] == 0:
        return [(_piece(bps, c), P)]
    out = []
    for k in range(len(bps) + 1):
        Q = P
        if k > 0:
            Q = _clip(Q, a, c, bps[k - 1], 1)
        if k < len(bps) and len(Q) >= 3:
            Q = _clip(Q, a, c, bps[k], -1)
        if len(Q) >= 3 and _area2(Q) > 0:
            out.append((k, _drop_collinear(Q)))
    return out


def _split_1d(iv, a, c, bps):
    """[(piece, interval)] of positive length: ``iv`` cut at the roots of ``a x + c = t``."""
    lo, hi = iv
    if a == 0:
        return [(_piece(bps, c), iv)]
    cuts = sorted({r for t in bps if lo < (r := (t - c) / a) < hi})
    ends = [lo, *cuts, hi]
    return [(_piece(bps, a * (u + v) / 2 + c), (u, v)) for u, v in zip(ends[:-1], ends[1:])]


# ------------------------------------------------------------ regions ----
@dataclass
class ExactRegion:
    """One activation region: ``pattern``, ``cell`` (CCW vertex list of Fraction
    pairs in 2D, ``(lo, hi)`` in 1D), exact ``measure``, output ``jacobian``
    (n_out rows of n_in Fractions) and ``offset`` (n_out Fractions)."""

    pattern: tuple
    cell: object
    measure: Fraction
    jacobian: tuple
    offset: tuple

    def interior_point(self) -> tuple:
        """An exact point strictly inside (vertex mean in 2D, midpoint in 1D)."""
        if isinstance(self.cell, tuple):
            return ((self.cell[0] + self.cell[1]) / 2,)
        n = len(self.cell)
        return (sum(p[0] for p in self.cell) / n, sum(p[1] for p in self.cell) / n)


@dataclass
class ExactEdge:
    """A shared boundary of positive length (2D) or a shared endpoint (1D)
    between regions ``a < b``: its ends (two Fraction points, or one Fraction
    in 1D), the neurons whose piece differs across it (the first is the one the
    engine names), and whether it is in the nonlinear locus."""

    a: int
    b: int
    ends: tuple
    neurons: tuple
    locus: bool

    def length(self) -> float:
        if not isinstance(self.ends[0], tuple):
            return 1.0
        (x0, y0), (x1, y1) = self.ends
        return math.sqrt(float((x1 - x0) ** 2 + (y1 - y0) ** 2))


@dataclass
class ExactMap:
    """The exact activation regions, edges, locus and linear regions."""

    dim: int
    regions: list
    edges: list
    n_linear: int
    labels: list  # linear region of each activation region
    domain_measure: Fraction

    @property
    def patterns(self) -> list:
        return [r.pattern for r in self.regions]

    @property
    def locus_edges(self) -> list:
        return [e for e in self.edges if e.locus]

    def locus_volume(self) -> float:
        """Number of locus points (1D) or total locus length (2D)."""
        return float(sum(e.length() for e in self.locus_edges))

    def locus_points(self) -> list:
        """1D: the sorted exact locus points."""
        return sorted(e.ends[0] for e in self.locus_edges)


def _cells(net, domain, layers):
    """The final cells: [(pattern, cell, J, c)] with the output ``J x + c`` on each."""
    dim, start = exact_domain(domain)
    if net.n_in != dim:
        raise ValueError(f"a {dim}D domain needs a {dim}-input network; this one has {net.n_in}")
    eye = [tuple(F(int(i == k)) for k in range(dim)) for i in range(dim)]
    cells = [((), start, eye, [F(0)] * dim)]
    split = _split_2d if dim == 2 else _split_1d
    for layer in layers:
        new = []
        for pat, cell, J, c in cells:
            zJ, zc = _affine(layer, J, c)
            if layer.act is None:
                new.append((pat, cell, zJ, zc))
                continue
            bps = layer.act[0]
            parts = [((), cell)]
            for j in range(len(zc)):
                a = zJ[j] if dim == 2 else zJ[j][0]
                parts = [(lp + (k,), g) for lp, cell_j in parts for k, g in split(cell_j, a, zc[j], bps)]
            for lp, g in parts:
                hJ, hc = _activate(layer, zJ, zc, lp)
                new.append((pat + lp, g, hJ, hc))
        cells = new
    return dim, start, cells


def exact_regions(net, domain) -> ExactMap:
    """The exact activation regions of ``net`` over ``domain``.

    Parameters
    ----------
    net : rg.Network
        1 or 2 inputs; keep it small (a few layers of width <= 5).
    domain : (lo, hi), (xmin, ymin, xmax, ymax) or a convex shapely Polygon

    Returns
    -------
    ExactMap
    """
    layers = exact_layers(net)
    return exact_map(*_cells(net, domain, layers))


def exact_map(dim, start, cells) -> ExactMap:
    """The :class:`ExactMap` of the final cells ``[(pattern, cell, J, c)]`` of
    a ``dim``-D domain ``start``: measures, edges, locus, linear regions."""
    regions = []
    for pat, cell, J, c in cells:
        meas = cell[1] - cell[0] if dim == 1 else _area2(cell) / 2
        regions.append(ExactRegion(pat, cell, meas, tuple(tuple(r) for r in J), tuple(c)))
    dom_meas = start[1] - start[0] if dim == 1 else _area2(start) / 2
    assert sum(r.measure for r in regions) == dom_meas, "the exact cells do not tile the domain"
    assert len({r.pattern for r in regions}) == len(regions), "two exact cells share a pattern"
    edges = _edges_1d(regions) if dim == 1 else _edges_2d(regions)
    labels = _components(len(regions), [(e.a, e.b) for e in edges if not e.locus])
    return ExactMap(dim, regions, edges, len(set(labels)), labels, dom_meas)


def _edge(regions, a, b, ends) -> ExactEdge:
    a, b = min(a, b), max(a, b)
    pa, pb = regions[a].pattern, regions[b].pattern
    diff = tuple(j for j, (u, v) in enumerate(zip(pa, pb)) if u != v)
    return ExactEdge(a, b, ends, diff, regions[a].jacobian != regions[b].jacobian)


def _edges_1d(regions) -> list:
    order = sorted(range(len(regions)), key=lambda r: regions[r].cell[0])
    return [_edge(regions, a, b, (regions[b].cell[0],)) for a, b in zip(order[:-1], order[1:])]


def _line_key(p, q):
    """Canonical exact key of the line through ``p != q`` and the coordinate along it."""
    nx, ny = q[1] - p[1], p[0] - q[0]
    off = nx * p[0] + ny * p[1]
    if nx != 0:
        return (F(1), ny / nx, off / nx), 1  # not horizontal: parametrise by y
    return (F(0), F(1), off / ny), 0


def _edges_2d(regions) -> list:
    """Shared segments of positive length, found per supporting line."""
    by_line = {}
    for r, reg in enumerate(regions):
        P = reg.cell
        for i in range(len(P)):
            p, q = P[i], P[(i + 1) % len(P)]
            key, axis = _line_key(p, q)
            lo, hi = (p, q) if p[axis] < q[axis] else (q, p)
            by_line.setdefault(key, []).append((r, lo, hi, axis))
    edges = []
    for segs in by_line.values():
        for i in range(len(segs)):
            for k in range(i + 1, len(segs)):
                (ra, lo_a, hi_a, ax), (rb, lo_b, hi_b, _) = segs[i], segs[k]
                lo = lo_a if lo_a[ax] >= lo_b[ax] else lo_b
                hi = hi_a if hi_a[ax] <= hi_b[ax] else hi_b
                if ra != rb and lo[ax] < hi[ax]:
                    edges.append(_edge(regions, ra, rb, (lo, hi)))
    return edges


def _components(n, pairs) -> list:
    """Connected-component label of each of ``n`` nodes (union-find)."""
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        parent[find(a)] = find(b)
    return [find(i) for i in range(n)]
