"""Small networks, domains and region invariants shared by the tests."""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import reference
import shapely
from shapely.geometry import Polygon, box

import regiongeom as rg

TESTS_DIR = Path(__file__).resolve().parent
BENCH_DIR = TESTS_DIR.parent / "benchmarks"

# every supported kind of activation, by a short id
ACTIVATIONS = {
    "relu": "relu",
    "leaky_relu": rg.Activation.leaky_relu(0.1),
    "hardtanh": rg.Activation.hardtanh(-0.5, 0.7),
    "abs": "abs",
    "pl3": rg.Activation("pl3", [-0.6, 0.1, 0.8], [0.3, -1.2, 0.5, 2.0], value_at_first=0.2),
}
ACT_IDS = list(ACTIVATIONS)

BOX = (-1.0, -1.0, 1.0, 1.0)
INTERVAL = (-2.0, 2.0)
# a convex polygon (not a box) and a non-convex polygon with a hole
CONVEX = Polygon([(-1.0, -0.8), (0.3, -1.1), (1.2, -0.2), (0.9, 0.9), (-0.4, 1.0), (-1.2, 0.2)])
NONCONVEX = Polygon(
    [(-1.0, -1.0), (1.0, -1.0), (1.0, 0.1), (0.2, 0.1), (0.2, 1.0), (-1.0, 1.0)],
    holes=[[(-0.6, -0.6), (-0.6, 0.4), (-0.2, 0.4), (-0.2, -0.6)]],
)
DOMAINS_2D = {"box": BOX, "convex": CONVEX, "nonconvex": NONCONVEX}


def random_net(
    widths, *, n_in=2, n_out=1, activation="relu", seed=0, last_activation=None, scale=1.0, zero_frac=0.0
):
    """The tests' random MLP ``n_in -> widths... -> n_out``.

    Gaussian weights (std ``scale / sqrt(fan_in)``, the last layer's
    ``1 / sqrt(fan_in)``) and biases (std ``0.5 * scale``, the last layer's
    0.5). ``activation``: one for every hidden layer, or a list with one per
    hidden layer (None: affine). The last layer is affine unless
    ``last_activation`` is given. ``zero_frac``: the expected fraction of the
    hidden layers' weights set to exactly 0.
    """
    rng = np.random.default_rng(seed)
    acts = list(activation) if isinstance(activation, (list, tuple)) else [activation] * len(widths)
    if len(acts) != len(widths):
        raise ValueError(f"{len(acts)} activations for {len(widths)} hidden layers")
    ws, bs = [], []
    d = n_in
    for w in widths:
        W = rng.normal(size=(w, d)) * scale / np.sqrt(d)
        if zero_frac > 0:
            W[rng.random(W.shape) < zero_frac] = 0.0
        ws.append(W)
        bs.append(rng.normal(size=w) * 0.5 * scale)
        d = w
    ws.append(rng.normal(size=(n_out, d)) / np.sqrt(d))
    bs.append(rng.normal(size=n_out) * 0.5)
    return rg.Network.from_arrays(ws, bs, acts + [last_activation])


def small_net(act_id, seed, n_in=2):
    """A small random network of the given activation, sized for the slow reference."""
    widths = [5, 4] if n_in == 2 else [6, 5, 4]
    return random_net(widths, n_in=n_in, activation=ACTIVATIONS[act_id], seed=seed)


def manual_forward(net, x):
    """The network's output by explicit numpy (no package code), ``(P, n_in) -> (P, n_out)``."""
    h = np.asarray(x, float)
    for w, b, a in zip(net.weights, net.biases, net.activations, strict=True):
        z = h @ np.asarray(w).T + np.asarray(b)
        if a is None:
            h = z
        else:
            bp, sl, ic = np.asarray(a.breakpoints), np.asarray(a.slopes), np.asarray(a.intercepts)
            k = (z[..., None] >= bp).sum(-1)
            h = sl[k] * z + ic[k]
    return h


def preactivations(net, x, magnitudes=False):
    """(P, n_neurons) preactivation of every neuron, by explicit numpy.

    With ``magnitudes=True`` also returns ``|W| @ |h| + |b|`` for every neuron:
    the size of the terms summed, which bounds the rounding error of ``z``.
    """
    h = np.asarray(x, float)
    cols, mags = [], []
    for w, b, a in zip(net.weights, net.biases, net.activations, strict=True):
        w, b = np.asarray(w), np.asarray(b)
        z = h @ w.T + b
        if a is not None:
            cols.append(z)
            mags.append(np.abs(h) @ np.abs(w).T + np.abs(b))
            bp, sl, ic = np.asarray(a.breakpoints), np.asarray(a.slopes), np.asarray(a.intercepts)
            k = (z[..., None] >= bp).sum(-1)
            z = sl[k] * z + ic[k]
        h = z
    Z = np.concatenate(cols, axis=1) if cols else np.zeros((len(h), 0))
    if magnitudes:
        return Z, (np.concatenate(mags, axis=1) if mags else Z.copy())
    return Z


def ambiguous_pieces(net, x, rtol=1e-10):
    """(P, n_neurons) bool: the neuron's preactivation at x is so close to one of
    its breakpoints that rounding may decide its piece."""
    Z, M = preactivations(net, x, magnitudes=True)
    bps = neuron_breakpoints(net)
    out = np.zeros(Z.shape, bool)
    for j, t in enumerate(bps):
        out[:, j] = np.min(np.abs(Z[:, j, None] - t), axis=1) <= rtol * (M[:, j] + np.max(np.abs(t)))
    return out


def neuron_breakpoints(net):
    """List, per neuron, of its activation's breakpoints."""
    out = []
    for w, a in zip(net.weights, net.activations, strict=True):
        if a is not None:
            out += [np.asarray(a.breakpoints)] * w.shape[0]
    return out


def standard(name):
    """(net, domain, expected region count) of a standard benchmark network
    (built with torch: the test skips without it)."""
    pytest.importorskip("torch", reason="the standard networks are built with torch")
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    import nets

    return nets.standard(name)


# ------------------------------------------------------ region invariants ----
# One set of checks of a RegionMap, used by every test of the engine. Each takes
# the domain as the user gave it: a (lo, hi) interval, an (xmin, ymin, xmax, ymax)
# box or a shapely Polygon.
def domain_polygon(domain):
    """The 2D domain as a shapely Polygon."""
    return domain if isinstance(domain, shapely.Geometry) else box(*domain)


def domain_is_convex(domain):
    if not isinstance(domain, shapely.Geometry):
        return True  # an interval or a box
    return len(domain.interiors) == 0 and domain.convex_hull.area - domain.area <= 1e-14 * domain.area


def scale_of(vals):
    return max(float(np.max(np.abs(vals))), 1.0)


def check_tiling(rm, domain):
    """The regions tile the domain: positive measures summing to its measure,
    consecutive intervals (1D), valid polygons without overlaps whose union is
    the domain (2D)."""
    assert np.all(rm.measures > 0)
    if rm.dim == 1:
        lo, hi = domain
        iv = rm.intervals
        assert len(rm) == rm.patterns.shape[0] == iv.shape[0]
        assert iv[0, 0] == lo and iv[-1, 1] == hi
        np.testing.assert_array_equal(iv[1:, 0], iv[:-1, 1])  # consecutive, no gaps, no overlaps
        assert np.all(iv[:, 1] > iv[:, 0])
        np.testing.assert_allclose(rm.measures, iv[:, 1] - iv[:, 0], rtol=1e-14)
        assert rm.measures.sum() == pytest.approx(hi - lo, rel=1e-12)
        return
    dom = domain_polygon(domain)
    shapes = rm.shapes
    assert len(shapes) == len(rm) == len(rm.measures)
    assert rm.measures.sum() == pytest.approx(dom.area, rel=1e-10)
    np.testing.assert_allclose(shapely.area(shapes), rm.measures, rtol=1e-9, atol=1e-14)
    assert all(g.geom_type == "Polygon" and g.is_valid for g in shapes)  # connected pieces
    assert shapely.union_all(shapes).symmetric_difference(dom).area <= 1e-10 * dom.area
    left, right = shapely.STRtree(shapes).query(shapes, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(shapely.intersection(shapes[left[pairs]], shapes[right[pairs]]))
    assert overlap.sum() <= 1e-10 * dom.area


def check_convex_ccw(rm, domain):
    """On a convex domain every region is a convex polygon, counter-clockwise,
    without repeated vertices (straight angles allowed: neighbours' vertices)."""
    x0, y0, x1, y1 = domain_polygon(domain).bounds
    diam = max(x1 - x0, y1 - y0)
    polys = rm.polygons
    assert len(polys) == len(rm)
    for r, p in enumerate(polys):
        assert p.ndim == 2 and p.shape[1] == 2 and p.shape[0] >= 3
        q = np.roll(p, -1, axis=0)
        area = 0.5 * np.sum(p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1])
        assert area > 0 and area == pytest.approx(rm.measures[r], rel=1e-9)
        d1 = q - p
        d2 = np.roll(d1, -1, axis=0)
        cross = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
        assert np.all(cross >= -1e-12 * diam * diam), f"region {r} is not convex"
        assert len({tuple(v) for v in p}) == len(p), f"region {r} repeats a vertex"
        assert shapely.Polygon(p).is_valid


def check_patterns_and_affine(rm, *, distinct=True, exact=False):
    """Patterns are the forward pass's pieces at interior points, ``locate``
    finds the regions of their interior points, and ``jacobians``/``offsets``
    are the network's affine map on each region.

    ``distinct``: no two regions share a pattern (a convex 2D domain). In 1D
    neighbours always differ. ``exact``: also the neurons whose preactivation
    is a breakpoint up to rounding (right for exactly representable networks).
    """
    net = rm.net
    pts = rm.interior_points()
    assert pts.shape == (len(rm), net.n_in)
    pat = rm.patterns
    assert pat.dtype == np.int8 and pat.shape == (len(rm), net.n_neurons)
    if distinct:
        assert len({p.tobytes() for p in pat}) == len(rm)
    if rm.dim == 1:
        assert not np.any(np.all(pat[1:] == pat[:-1], axis=1))  # neighbours differ
    sure = np.ones(pat.shape, bool) if exact else ~ambiguous_pieces(net, pts)
    np.testing.assert_array_equal(net.patterns(pts)[sure], pat[sure])
    np.testing.assert_array_equal(rm.locate(pts), np.arange(len(rm)))
    J, c = rm.jacobians, rm.offsets
    assert J.shape == (len(rm), net.n_out, net.n_in) and c.shape == (len(rm), net.n_out)
    y = net(pts)
    pred = np.einsum("roi,ri->ro", J, pts) + c
    np.testing.assert_allclose(pred, y, rtol=1e-9, atol=1e-10 * scale_of(y))


def _hyperplane_tol(z, m, t):
    """Tolerance for 'z == t' at a vertex: relative to the neuron's range over the
    vertices, plus the rounding of the forward pass (m: size of the summed terms)."""
    return 1e-8 * float(np.max(np.abs(z - t))) + 1e-12 * (m + abs(t))


def check_edges(rm, domain):
    """Every interior edge separates patterns that differ exactly in neurons whose
    breakpoint hyperplane carries the edge; edge_neurons gives the first of them.
    Boundary edges cover the domain's boundary; the left region comes first."""
    net = rm.net
    V = rm.vertices if rm.dim == 2 else rm.vertices[:, None]
    Z, M = preactivations(net, V, magnitudes=True)  # (V, n_neurons)
    bps = neuron_breakpoints(net)
    E = rm.edges.shape[0]
    assert rm.edge_regions.shape == (E, 2) and rm.edge_neurons.shape == (E,)
    assert rm.edge_breakpoints.shape == (E,)
    assert np.all(rm.edge_regions[:, 0] >= 0)
    interior = rm.edge_regions[:, 1] >= 0
    np.testing.assert_array_equal(rm.edge_neurons[~interior], -1)
    for e in np.nonzero(interior)[0]:
        a, b = rm.edge_regions[e]
        pa, pb = rm.patterns[a].astype(int), rm.patterns[b].astype(int)
        differ = np.nonzero(pa != pb)[0]
        assert differ.size > 0, f"edge {e} separates regions of the same pattern"
        j0 = int(rm.edge_neurons[e])
        assert j0 == differ[0], f"edge {e}: edge_neurons {j0}, patterns differ at {differ}"
        assert rm.edge_breakpoints[e] == min(pa[j0], pb[j0])
        for j in differ:
            assert abs(pa[j] - pb[j]) == 1
            t = bps[j][min(pa[j], pb[j])]
            for v in rm.edges[e]:
                tol = _hyperplane_tol(Z[:, j], M[v, j], t)
                assert abs(Z[v, j] - t) <= tol, f"edge {e} is off neuron {j}'s hyperplane"
    if rm.dim == 2:
        _check_edges_2d(rm, domain_polygon(domain), interior)
    else:
        _check_edges_1d(rm, interior)


def _check_edges_2d(rm, dom, interior):
    boundary = dom.boundary
    V = rm.vertices
    diam = max(dom.bounds[2] - dom.bounds[0], dom.bounds[3] - dom.bounds[1])
    for e in np.nonzero(~interior)[0]:
        p, q = V[rm.edges[e]]
        for pt in (p, q, 0.5 * (p + q)):
            assert boundary.distance(shapely.Point(pt)) <= 1e-12 * diam
    # the boundary edges cover the whole boundary (holes included)
    lengths = np.hypot(*(V[rm.edges[~interior, 1]] - V[rm.edges[~interior, 0]]).T)
    assert lengths.sum() == pytest.approx(boundary.length, rel=1e-12)
    # interior edges are inside the domain
    mids = shapely.points(0.5 * (V[rm.edges[interior, 0]] + V[rm.edges[interior, 1]]))
    assert np.all(shapely.covers(dom, mids) | (shapely.distance(boundary, mids) <= 1e-12 * diam))
    # the left region first: a point just left of the edge's middle is in it
    shapes = rm.shapes
    for e in range(rm.edges.shape[0]):
        p, q = V[rm.edges[e]]
        d = q - p
        n = np.array([-d[1], d[0]]) / np.hypot(*d)
        m = 0.5 * (p + q)
        delta = 1e-7 * diam
        assert shapes[rm.edge_regions[e, 0]].distance(shapely.Point(m + delta * n)) <= 1e-12 * diam
        if interior[e]:
            assert shapes[rm.edge_regions[e, 1]].distance(shapely.Point(m - delta * n)) <= 1e-12 * diam


def _check_edges_1d(rm, interior):
    E = rm.edges.shape[0]
    lo, hi = rm.intervals[0, 0], rm.intervals[-1, 1]
    assert E == len(rm) - 1 and np.all(interior)
    np.testing.assert_array_equal(rm.edge_regions, np.stack([np.arange(E), np.arange(1, E + 1)], 1))
    np.testing.assert_array_equal(rm.edges[:, 0], rm.edges[:, 1])
    np.testing.assert_array_equal(rm.vertices[rm.edges[:, 0]], rm.intervals[1:, 0])
    if E:
        assert lo < rm.vertices[rm.edges[:, 0]].min() and rm.vertices[rm.edges[:, 0]].max() < hi


def check_invariants(rm, domain, *, exact=False):
    """All of the above: tiling, convex counter-clockwise polygons (convex 2D
    domains), patterns, affine maps and edges."""
    check_tiling(rm, domain)
    convex = domain_is_convex(domain)
    if rm.dim == 2 and convex:
        check_convex_ccw(rm, domain)
    check_patterns_and_affine(rm, distinct=convex and rm.dim == 2, exact=exact)
    check_edges(rm, domain)


def _by_pattern(patterns, geoms):
    out = defaultdict(list)
    for p, g in zip(patterns, geoms, strict=True):
        out[tuple(int(v) for v in p)].append(g)
    return out


def compare_with_reference(rm, domain):
    """The same regions as the slow reference: in 1D the same patterns on the same
    intervals; in 2D, per pattern, the same pieces (by area and place)."""
    if rm.dim == 1:
        expect = reference.regions_1d(rm.net, domain)
        assert len(rm) == len(expect)
        np.testing.assert_array_equal(rm.patterns, np.array([p for p, _ in expect]))
        np.testing.assert_allclose(rm.intervals, np.array([iv for _, iv in expect]), rtol=0, atol=1e-12)
        return
    dom = domain_polygon(domain)
    expect = reference.regions_2d(rm.net, domain)
    assert len(rm) == len(expect)
    got = _by_pattern(rm.patterns, rm.shapes)
    want = _by_pattern([p for p, _ in expect], [g for _, g in expect])
    assert sorted(got) == sorted(want)
    x0, y0, x1, y1 = dom.bounds
    diam = max(x1 - x0, y1 - y0)
    for p, pieces in want.items():
        a_want = sorted(g.area for g in pieces)
        a_got = sorted(g.area for g in got[p])
        np.testing.assert_allclose(a_got, a_want, rtol=1e-9, atol=1e-12 * dom.area)
        # and the same place. (Hausdorff distance of the boundaries, not an overlay:
        # GEOS overlays of two copies of a polygon that differ by rounding can be
        # wrong, e.g. an empty intersection of a triangle with itself.)
        d = shapely.hausdorff_distance(
            shapely.MultiPolygon(got[p]).boundary, shapely.MultiPolygon(pieces).boundary
        )
        assert d <= 1e-9 * diam, f"pattern {p}: the regions are {d:g} apart"
    np.testing.assert_allclose(rm.measures, shapely.area(rm.shapes), rtol=1e-9, atol=1e-14)
