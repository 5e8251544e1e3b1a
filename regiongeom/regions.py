"""Activation regions: ``activation_regions`` and the ``RegionMap`` it returns.

An *activation region* is a maximal connected set of inputs on which every
neuron stays on the same linear piece of its activation. Inside a convex
domain every activation region is convex (an intersection of half-planes);
in a non-convex polygon domain, a region is one connected piece of a convex
activation region inside the domain - pieces are joined across shared edges,
so two pieces that touch only at a point are separate regions - and two
regions may carry the same pattern.

The result is a conforming planar subdivision (a conforming partition of
the interval in 1D): regions share vertices and edges, every interior edge
knows its two regions and the neuron (and breakpoint) whose hyperplane it
lies on. Everything later (locus, linear regions, exact measures) reads
these arrays with no geometric search.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ._engine.core import DEFAULT_MAX_REGIONS, RegionLimitError, Subdivision
from ._engine.line1d import enumerate_1d
from ._engine.mesh2d import enumerate_2d
from ._validate import as_domain, as_points, integer_at_least
from .network import Network

__all__ = ["activation_regions", "RegionMap", "RegionLimitError", "DEFAULT_MAX_REGIONS"]


def activation_regions(net: Network, domain, *, max_regions: int = DEFAULT_MAX_REGIONS) -> RegionMap:
    """Enumerate the activation regions of ``net`` inside ``domain`` exactly.

    Parameters
    ----------
    net : Network or GraphNetwork
        A network with 1 or 2 inputs. Graph networks with max units
        (maxout, MaxPool, ``max``/``amax``) on 1 input (a line:
        ``net.restrict(rg.Line.through(x0, x1))``) for now; their patterns
        hold each max unit's winning position (ties to the lowest).
    domain : (lo, hi), (xmin, ymin, xmax, ymax) or shapely.Polygon
        An interval (1 input), a box, or any polygon, possibly non-convex and
        with holes (2 inputs).
    max_regions : int, keyword-only
        Stop with :class:`RegionLimitError` once this many regions exist.

    Returns
    -------
    RegionMap

    Notes
    -----
    On a machine with two or more cores, a 1D enumeration shares its large
    matrix products with one helper thread (the next layer's product runs
    while a layer is cut). The result is the same bit for bit either way;
    ``REGIONGEOM_NUM_THREADS=1`` in the environment keeps all the work on the
    calling thread (``lc_density``'s worker processes set it to their share
    of the cores).

    Examples
    --------
    Telgarsky's sawtooth of depth 3 has 2**3 pieces on [0, 1]:

    >>> import regiongeom as rg
    >>> len(rg.activation_regions(rg.sawtooth(3), (0.0, 1.0)))
    8
    """
    from .graph import GraphNetwork

    if not isinstance(net, (Network, GraphNetwork)):
        raise TypeError(
            f"activation_regions expects an rg.Network or rg.GraphNetwork, got {type(net).__name__}"
        )
    dom = as_domain(domain, net.n_in)
    max_regions = integer_at_least(max_regions, 1, "max_regions")
    if isinstance(net, GraphNetwork) and dom.dim == 1:
        from ._engine.line1d_graph import enumerate_1d_graph

        return RegionMap(net, dom, enumerate_1d_graph(net, dom, max_regions))
    if dom.dim == 1:
        return RegionMap(net, dom, enumerate_1d(net, dom, max_regions))
    return RegionMap(net, dom, enumerate_2d(net, dom, max_regions))


class RegionMap:
    """The activation regions of a network over a domain.

    Attributes
    ----------
    net : Network
    dim : int
        1 or 2.
    patterns : (R, n_neurons) ndarray of int8
        Index of the linear piece each neuron is on (ReLU: 1 active, 0 not).
    measures : (R,) ndarray of float64
        Lengths (1D) or areas (2D).
    intervals : (R, 2) ndarray of float64
        Sorted intervals (1D only).
    polygons : list of (k_r, 2) ndarray of float64
        Counter-clockwise vertex cycles (2D only); vertices created by
        neighbouring regions on a straight side are kept, so neighbours
        share vertices exactly. For a region of a non-convex domain that
        encloses a hole, this is its outer ring (see ``shapes``).
    vertices : (V, 2) or (V,) ndarray of float64
    edges : (E, 2) ndarray of int64
        Vertex indices of every edge (2D) or of every interior point as a
        degenerate edge ``(v, v)`` (1D).
    edge_regions : (E, 2) ndarray of int64
        The regions on both sides; -1 where the edge is on the domain's
        boundary (2D: the left region first, along ``edges[e, 0] -> edges[e, 1]``).
    edge_neurons : (E,) ndarray of int64
        The neuron whose breakpoint hyperplane the edge lies on (-1: domain
        boundary). When several neurons share the hyperplane, the first one.
    edge_breakpoints : (E,) ndarray of int64
        Which of that neuron's activation breakpoints.
    """

    def __init__(self, net, domain, sub: Subdivision):
        self.net = net
        self.domain = domain
        self.dim = domain.dim
        self.vertices = sub.vertices
        self.patterns = sub.patterns
        self.measures = sub.measures
        self.edges, self.edge_regions = sub.edges, sub.edge_regions
        self.edge_neurons, self.edge_breakpoints = sub.edge_neurons, sub.edge_breakpoints
        if self.dim == 1:
            self.intervals = np.stack([sub.vertices[:-1], sub.vertices[1:]], axis=1)
        self._indptr, self._ids, self._merged_shapes = sub.indptr, sub.ids, sub.shapes
        self._derived = {}  # results computed from this map by later modules (the locus decision)

    # -- basic views ------------------------------------------------------
    def __len__(self) -> int:
        return self.patterns.shape[0]

    def __repr__(self):
        return f"RegionMap({len(self)} activation regions of {self.net!r}, dim={self.dim})"

    @cached_property
    def polygons(self) -> list:
        if self.dim != 2:
            raise AttributeError("polygons exist for 2D region maps only; use intervals")
        if not self.domain.convex:
            import shapely

            rings = [shapely.get_exterior_ring(_largest(m)).coords for m in self._merged_shapes]
            rings = [np.asarray(r)[:-1] for r in rings]
            return [r if _signed_area(r) > 0 else r[::-1].copy() for r in rings]
        v = self.vertices
        return [v[self._ids[a:b]] for a, b in zip(self._indptr[:-1], self._indptr[1:])]

    @cached_property
    def shapes(self):
        """(R,) array of shapely Polygons (2D only), holes included."""
        import shapely

        if self.dim != 2:
            raise AttributeError("shapes exist for 2D region maps only")
        if self.domain.convex:
            counts = np.diff(self._indptr)
            rings = shapely.linearrings(
                self.vertices[self._ids], indices=np.repeat(np.arange(len(self)), counts)
            )
            return shapely.polygons(rings)
        out = np.empty(len(self._merged_shapes), dtype=object)
        out[:] = self._merged_shapes
        return out

    @property
    def n_in(self) -> int:
        return self.dim

    # -- affine maps ------------------------------------------------------
    def _affine(self, rows=None):
        """Per-region affine maps of the output (of the regions ``rows``, or
        all), from the exact patterns.

        Kept as (n_units, R * n_in) matrices so every layer is one BLAS product.
        """
        patterns = self.patterns if rows is None else self.patterns[rows]
        if hasattr(self.net, "stages"):  # a GraphNetwork: through its operators
            from ._graph_maps import affine_maps

            return affine_maps(self.net, patterns)
        net, R, k = self.net, len(patterns), self.dim
        J = np.repeat(np.eye(k)[:, None, :], R, axis=1).reshape(k, R * k)
        c = np.zeros((k, R))
        offs = net.neuron_offsets
        for i, (w, b, a) in enumerate(zip(net.weights, net.biases, net.activations)):
            J = w @ J
            c = w @ c + b[:, None]
            if a is not None:
                piece = patterns[:, offs[i] : offs[i + 1]].T  # (n, R)
                slope = a.slopes[piece]
                J = (J.reshape(-1, R, k) * slope[:, :, None]).reshape(-1, R * k)
                c = c * slope + a.intercepts[piece]
        n_out = J.shape[0]
        jac = np.ascontiguousarray(J.reshape(n_out, R, k).transpose(1, 0, 2))
        return jac, np.ascontiguousarray(c.T)

    @cached_property
    def _affine_maps(self):
        return self._affine()

    def _affine_of(self, rows):
        """``(jacobians, offsets)`` of the regions ``rows`` only (from the
        full maps when they are already computed)."""
        if "_affine_maps" in self.__dict__:
            return self._affine_maps[0][rows], self._affine_maps[1][rows]
        return self._affine(rows)

    @property
    def jacobians(self) -> np.ndarray:
        """(R, n_out, n_in) the output's slope on each region.

        Computed (on first use) in float64 from each region's exact pattern:
        the products of the weights and the pieces' slopes, rounded; no
        tolerance is involved. The locus does not need them (it decides each
        edge from the edge's own neuron)."""
        return self._affine_maps[0]

    @property
    def offsets(self) -> np.ndarray:
        """(R, n_out) with ``net(x) == jacobians[r] @ x + offsets[r]`` on region r."""
        return self._affine_maps[1]

    # -- point queries ----------------------------------------------------
    def interior_points(self) -> np.ndarray:
        """(R, n_in) one point strictly inside every region (1D: midpoints;
        2D: the centroid, or a representative point for non-convex pieces)."""
        if self.dim == 1:
            return self.intervals.mean(axis=1)[:, None]
        if self.domain.convex:
            return np.array([_centroid(p) for p in self.polygons])
        import shapely

        return shapely.get_coordinates(shapely.point_on_surface(self.shapes))

    def locate(self, points) -> np.ndarray:
        """(P,) index of the region holding each point, -1 outside the domain.

        A point on a shared edge or vertex gets the lowest-numbered region.
        The point is compared with the regions' float64 vertices (1D: the
        interval ends; 2D: the polygons): a point closer to a region's
        boundary than the rounding of its vertices may be given the
        neighbouring region. The patterns, adjacency and affine maps are
        exact; only these coordinates are rounded.
        """
        pts = as_points(points, self.dim, "points")
        if self.dim == 1:
            x = pts[:, 0]
            idx = np.searchsorted(self.vertices, x, side="right") - 1
            idx = np.clip(idx, 0, len(self) - 1)
            # on a vertex: the lower region number is idx-1 when x == left end
            on = (x == self.vertices[idx]) & (idx > 0)
            idx = np.where(on, idx - 1, idx)
            return np.where((x < self.vertices[0]) | (x > self.vertices[-1]), -1, idx)
        import shapely

        tree = self._tree
        p_idx, r_idx = tree.query(shapely.points(pts), predicate="intersects")
        out = np.full(len(pts), -1, np.int64)
        order = np.lexsort((r_idx, p_idx))[::-1]  # so the lowest region is written last
        out[p_idx[order]] = r_idx[order]
        return out

    @cached_property
    def _tree(self):
        import shapely

        return shapely.STRtree(self.shapes)


def _centroid(poly: np.ndarray) -> np.ndarray:
    o = poly[0]
    p = poly - o
    q = np.roll(p, -1, axis=0)
    cr = p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]
    a = cr.sum()
    if a <= 0:
        return poly.mean(axis=0)
    return o + ((p + q) * cr[:, None]).sum(axis=0) / (3 * a)


def _largest(geom):
    if geom.geom_type == "Polygon":
        return geom
    return max(geom.geoms, key=lambda g: g.area)


def _signed_area(r):
    x, y = r[:, 0], r[:, 1]
    return 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
