"""The nonlinear locus, linear regions, and exact locus measures in balls.

The *nonlinear locus* of a network (Patel & Montúfar, eq. (2)) is the set
where its gradient - the whole Jacobian when there are several outputs - is
discontinuous. Inside an activation region the network is affine, so the
locus is made of edges of the region map: an edge between two activation
regions belongs to it exactly when the two regions' Jacobians differ. An
edge where a neuron switches but nothing downstream sees it (the neuron is
not "good") is an activation boundary but not locus; both are kept in
:class:`Locus` (``boundary_*`` arrays and the ``in_locus`` mask) so users can
see what the good-neuron condition removes.

Every such decision is exact for the float64 weights, at any scale: whether
an edge is locus (the two Jacobians differ), hence which activation regions
merge into linear regions, and whether two locus pieces meeting at a vertex
lie on one line (:attr:`Locus.vertices`). Each is computed in floating point
with a rigorous bound on its rounding error and recomputed in exact integer
arithmetic in the rare cases within the bound (:mod:`regiongeom._locus_exact`);
no threshold relative to other regions is involved, so a jump of slope 1e-6
next to slopes of 1e6 is locus and an output weight of 1e-300 keeps its
neuron's lines. Only coordinates are rounded: the points and segment ends
are the region map's vertices, and lengths and ball measures are computed
from them in float64.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from . import _locus_kernels as K
from ._engine.core import one_blas_thread
from ._jit import compile_notice
from ._locus_exact import collinear, edge_jumps
from ._validate import as_points, positive
from .regions import RegionMap

__all__ = ["nonlinear_locus", "linear_regions", "Locus", "LinearRegions"]


def _check_rm(rm, fname):
    if not isinstance(rm, RegionMap):
        raise TypeError(
            f"{fname} expects the RegionMap returned by rg.activation_regions, got {type(rm).__name__}"
        )


def _jumps(rm: RegionMap) -> np.ndarray:
    """(E,) True where the Jacobian jumps across an interior edge, decided
    exactly (:mod:`regiongeom._locus_exact`). Its matrix products are many
    and small (rows of ``n_units`` columns): on one BLAS thread, whose helper
    threads would only spin between them (3x the CPU time on network M)."""
    with one_blas_thread():
        return edge_jumps(rm)


def nonlinear_locus(rm: RegionMap) -> Locus:
    """The nonlinear locus of ``rm.net`` inside ``rm``'s domain.

    Parameters
    ----------
    rm : RegionMap
        From :func:`activation_regions`.

    Returns
    -------
    Locus

    Examples
    --------
    One hidden layer: every neuron's line inside the domain is locus.

    >>> import numpy as np, regiongeom as rg
    >>> net = rg.Network.from_arrays([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0]]],
    ...                              [[0.0, 0.0], [0.0]], ["relu", None])
    >>> loc = rg.nonlinear_locus(rg.activation_regions(net, (-1, -1, 1, 1)))
    >>> float(loc.volume())
    4.0
    """
    _check_rm(rm, "nonlinear_locus")
    return Locus(rm)


class Locus:
    """The nonlinear locus as points (1D) or segments (2D).

    Attributes
    ----------
    dim : int
    points : (S,) ndarray of float64
        1D only: the locus points, sorted.
    segments : (S, 2, 2) ndarray of float64
        2D only: the locus segments (edges of the region map).
    neurons : (S,) ndarray of int64
        The neuron whose breakpoint each piece lies on.
    breakpoints : (S,) ndarray of int64
        Which breakpoint of that neuron's activation.
    regions : (S, 2) ndarray of int64
        The two activation regions each piece separates.
    vertices : (K, 2) ndarray of float64
        2D: junctions and bends of the locus (see the property); 1D: empty.
    boundary_segments / boundary_points, boundary_neurons, in_locus
        Every interior activation boundary (edge between two activation
        regions), its neuron, and whether it is locus (the gradient jumps).
    """

    def __init__(self, rm: RegionMap):
        self.region_map = rm
        self.dim = rm.dim
        inner = rm.edge_regions[:, 1] >= 0
        jump = _jumps(rm)[inner]
        edges = rm.edges[inner]
        self.in_locus = jump
        self.boundary_neurons = rm.edge_neurons[inner]
        self.boundary_regions = rm.edge_regions[inner]
        if self.dim == 1:
            self.boundary_points = rm.vertices[edges[:, 0]]
            self.points = self.boundary_points[jump]
        else:
            self.boundary_segments = rm.vertices[edges]
            self.segments = self.boundary_segments[jump]
            self._edges = edges[jump]
            self._edge_ids = np.flatnonzero(inner)[jump]  # their rows in rm.edges
        self.neurons = self.boundary_neurons[jump]
        self.breakpoints = rm.edge_breakpoints[inner][jump]
        self.regions = self.boundary_regions[jump]

    def __len__(self):
        return self.neurons.size

    def __repr__(self):
        what = "points" if self.dim == 1 else "segments"
        return f"Locus({len(self)} {what}, volume={self.volume():.6g})"

    # -- volumes ----------------------------------------------------------
    @cached_property
    def lengths(self) -> np.ndarray:
        """(S,) length of each piece (2D); ones in 1D (a point counts 1)."""
        if self.dim == 1:
            return np.ones(self.points.size)
        d = self.segments[:, 1] - self.segments[:, 0]
        return np.hypot(d[:, 0], d[:, 1])

    def volume(self) -> float:
        """Number of locus points (1D) or total locus length (2D) in the domain."""
        return float(self.lengths.sum())

    def volume_per_neuron(self) -> np.ndarray:
        """(n_neurons,) locus volume lying on each neuron's breakpoints."""
        n = self.region_map.net.n_neurons
        return np.bincount(self.neurons, weights=self.lengths, minlength=n)

    def volume_per_layer(self) -> np.ndarray:
        """(n_layers,) locus volume per layer (0 for layers without activation)."""
        net = self.region_map.net
        return np.bincount(net.neuron_layer[self.neurons], weights=self.lengths, minlength=net.n_layers)

    def volume_in_balls(self, centers, eps) -> np.ndarray:
        """(P,) exact ``vol(locus ∩ B_eps(c))`` for every center ``c``.

        In 1D the count of locus points ``p`` with ``|p - c| <= eps``, decided
        exactly for the float points (not from the rounded ``c - eps`` and
        ``c + eps``); in 2D the total length inside the closed disk, from the
        closed-form segment–disk intersection (never a polygonised disk),
        computed in float64. Only the locus inside the domain exists, so a
        ball sticking out of the domain measures just what lies inside. The
        locus points and segment ends are the region map's vertices: exact
        points rounded to float64.

        Parameters
        ----------
        centers : (P, n_in) array-like (flat (P,) accepted in 1D)
        eps : float > 0
        """
        eps = positive(eps, "eps")
        c = as_points(centers, self.dim, "centers")
        return _in_balls(self.points if self.dim == 1 else self.segments, c, eps)

    # -- structure --------------------------------------------------------
    @cached_property
    def vertices(self) -> np.ndarray:
        """Points where two or more locus pieces meet other than as a straight
        continuation: junctions of 3 or more pieces and bends (2D: (K, 2);
        1D: the locus has no such points, shape (0,))."""
        if self.dim == 1:
            return np.zeros(0)
        e = self._edges
        nv = len(self.region_map.vertices)
        deg = np.bincount(e.ravel(), minlength=nv)
        junction = deg >= 3
        two = np.nonzero(deg == 2)[0]
        if two.size:
            # the two pieces at each degree-2 vertex: a bend unless they lie on one line
            flat = e.ravel()
            order = np.argsort(flat, kind="stable")
            starts = np.searchsorted(flat[order], two)
            first, second = order[starts] // 2, order[starts + 1] // 2
            straight = collinear(self.region_map, self._edge_ids[first], self._edge_ids[second])
            junction[two[~straight]] = True
        return self.region_map.vertices[junction]

    def distance(self, points) -> np.ndarray:
        """(P,) exact Euclidean distance from each point to the locus.

        The locus is known inside the region map's domain only, so this is
        the distance to the part of the locus inside the domain, for points
        inside or outside it (near the domain's edge, the network's whole
        locus may be closer). ``inf`` when the locus is empty.

        Parameters
        ----------
        points : (P, n_in) array-like (flat (P,) accepted in 1D)

        Examples
        --------
        >>> import numpy as np, regiongeom as rg
        >>> net = rg.Network.from_arrays([[[1.0, 0.0]], [[1.0]]], [[0.0], [0.0]], ["relu", None])
        >>> loc = rg.nonlinear_locus(rg.activation_regions(net, (-1, -1, 1, 1)))
        >>> loc.distance([[0.5, 0.0], [-2.0, 3.0]])  # the locus: x = 0, -1 <= y <= 1
        array([0.5       , 2.82842712])
        """
        from ._distance import distance_1d, distance_2d

        c = as_points(points, self.dim, "points")
        if self.dim == 1:
            return distance_1d(self.points, c[:, 0])
        return distance_2d(self.segments, c)


def locus_in_balls(rm: RegionMap, centers, eps) -> np.ndarray:
    """(P,) ``nonlinear_locus(rm).volume_in_balls(centers, eps)``, the same
    numbers, without building the :class:`Locus` (for the definition route of
    :func:`~regiongeom.complexity.lc_density`, one region map per noise
    sample). ``centers`` (P, n_in) float64 and ``eps > 0`` are trusted."""
    keep = (rm.edge_regions[:, 1] >= 0) & _jumps(rm)
    edges = rm.edges[keep]
    pieces = rm.vertices[edges[:, 0]] if rm.dim == 1 else rm.vertices[edges]
    return _in_balls(pieces, centers, eps)


def _in_balls(pieces, c, eps) -> np.ndarray:
    """(P,) locus volume in the closed balls ``B_eps(c)``: ``pieces`` are the
    sorted locus points (S,) in 1D or the segments (S, 2, 2) in 2D."""
    if pieces.ndim == 1:
        return _count_in_intervals(pieces, c[:, 0], eps).astype(np.float64)
    if len(pieces) == 0:
        return np.zeros(len(c))
    seg = np.ascontiguousarray(pieces)
    x0 = seg[:, :, 0].min() - eps
    y0 = seg[:, :, 1].min() - eps
    w = seg[:, :, 0].max() + eps - x0
    hgt = seg[:, :, 1].max() + eps - y0
    # cell size: half the radius (a segment visits the centers of the few
    # cells its bounding box grown by eps touches), with at most ~12 (S + P)
    # cells even when the locus is long and thin
    n = 4.0 * (len(seg) + len(c))
    h = max(0.5 * eps, np.sqrt(w * hgt / n), max(w, hgt) / n)
    nx, ny = int(w // h) + 1, int(hgt // h) + 1
    compile_notice("the ball-measure kernels", K.segments_in_disks, seconds=2)
    return K.segments_in_disks(seg, np.ascontiguousarray(c), eps, x0, y0, h, nx, ny)


def _count_in_intervals(pts, c, eps) -> np.ndarray:
    """(P,) how many of the sorted floats ``pts`` satisfy ``-eps <= p - c <= eps``
    exactly. Rounding is monotone, so ``fl(p - c)`` is on the same side of the
    float ``eps`` as ``p - c`` unless it equals it; then the sign of the
    rounding error (Knuth's two-sum) decides. The float ``c -+ eps`` only
    give the first guess of where the points inside start and end."""
    n = pts.size
    if n == 0:
        return np.zeros(c.size, np.int64)

    def inside(i, upper):
        p = pts[np.clip(i, 0, n - 1)]
        s = p - c
        bb = s - p
        err = (p - (s - bb)) + (-c - bb)  # p - c == s + err exactly
        if upper:
            return (s < eps) | ((s == eps) & (err <= 0))
        return (s > -eps) | ((s == -eps) & (err >= 0))

    def settle(i, upper):
        """Move each guess to the first point that is not (upper: is) below the ball."""
        while True:
            if upper:  # i: one past the last point with p - c <= eps
                back, fwd = (i > 0) & ~inside(i - 1, True), (i < n) & inside(i, True)
            else:  # i: the first point with p - c >= -eps
                back, fwd = (i > 0) & inside(i - 1, False), (i < n) & ~inside(i, False)
            if not (back.any() or fwd.any()):
                return i
            i = i - back + fwd

    lo = settle(np.searchsorted(pts, c - eps, side="left").astype(np.int64), False)
    hi = settle(np.searchsorted(pts, c + eps, side="right").astype(np.int64), True)
    return np.maximum(hi - lo, 0)


def linear_regions(rm: RegionMap) -> LinearRegions:
    """Activation regions merged across the edges where the gradient does not jump.

    Examples
    --------
    >>> import regiongeom as rg
    >>> rm = rg.activation_regions(rg.sawtooth(2), (0.0, 1.0))
    >>> len(rg.linear_regions(rm))
    4
    """
    _check_rm(rm, "linear_regions")
    return LinearRegions(rm)


class LinearRegions:
    """Linear regions: maximal connected unions of activation regions on
    which the network is affine.

    Attributes
    ----------
    labels : (R,) ndarray of int64
        The linear region of each activation region (numbered in order of
        their lowest activation region).
    jacobians : (L, n_out, n_in), offsets : (L, n_out), measures : (L,)
    polygons : list of (k_l, 2) ndarray of float64
        2D: outer ring of each linear region, counter-clockwise.
    shapes : (L,) ndarray of shapely Polygons
        2D: the linear regions with their holes.
    intervals : (L, 2) ndarray of float64
        1D: the linear regions.
    """

    def __init__(self, rm: RegionMap):
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        self.region_map = rm
        inner = rm.edge_regions[:, 1] >= 0
        same = inner & ~_jumps(rm)
        a, b = rm.edge_regions[same, 0], rm.edge_regions[same, 1]
        R = len(rm)
        g = coo_matrix((np.ones(a.size), (a, b)), shape=(R, R))
        _, lab = connected_components(g, directed=False)
        # renumber by first appearance so labels are deterministic
        _, first = np.unique(lab, return_index=True)
        rank = np.empty(first.size, np.int64)
        rank[np.argsort(first)] = np.arange(first.size)
        self.labels = rank[lab]
        self._first = np.sort(first)

    def __len__(self):
        return self._first.size

    def __repr__(self):
        return f"LinearRegions({len(self)} linear regions from {len(self.region_map)} activation regions)"

    @cached_property
    def _maps(self):
        return self.region_map._affine_of(self._first)

    @property
    def jacobians(self) -> np.ndarray:
        """(L, n_out, n_in) the output's slope on each linear region."""
        return self._maps[0]

    @property
    def offsets(self) -> np.ndarray:
        """(L, n_out): ``net(x) == jacobians[l] @ x + offsets[l]`` on linear region l."""
        return self._maps[1]

    @cached_property
    def measures(self) -> np.ndarray:
        return np.bincount(self.labels, weights=self.region_map.measures, minlength=len(self))

    @cached_property
    def shapes(self):
        """(L,) shapely geometries of the merged regions (2D; possibly non-convex)."""
        import shapely

        rm = self.region_map
        if rm.dim != 2:
            raise AttributeError("shapes exist for 2D maps only; use intervals")
        order = np.argsort(self.labels, kind="stable")
        bounds = np.searchsorted(self.labels[order], np.arange(len(self) + 1))
        src = rm.shapes
        out = np.empty(len(self), dtype=object)
        out[:] = [shapely.union_all(src[order[s:e]]) for s, e in zip(bounds[:-1], bounds[1:])]
        return out

    @cached_property
    def polygons(self) -> list:
        """List of (k_l, 2) arrays: the outer ring of each linear region,
        counter-clockwise, as ``rm.polygons`` (2D only). Linear regions may be
        non-convex and hold holes: :attr:`shapes` keeps the holes."""
        import shapely

        from .regions import _largest, _signed_area

        rings = [np.asarray(shapely.get_exterior_ring(_largest(g)).coords)[:-1] for g in self.shapes]
        return [r if _signed_area(r) > 0 else r[::-1].copy() for r in rings]

    @cached_property
    def intervals(self) -> np.ndarray:
        """(L, 2) the merged intervals (1D only)."""
        rm = self.region_map
        if rm.dim != 1:
            raise AttributeError("intervals exist for 1D maps only")
        lo = np.full(len(self), np.inf)
        hi = np.full(len(self), -np.inf)
        np.minimum.at(lo, self.labels, rm.intervals[:, 0])
        np.maximum.at(hi, self.labels, rm.intervals[:, 1])
        return np.stack([lo, hi], axis=1)
