"""Nonlinear locus, linear regions and ball measures against slow references."""

import numpy as np
import pytest
import shapely
from common import random_net

import regiongeom as rg


def fd_gradient(net, p, h):
    """(n_out, n_in) central finite-difference Jacobian at p, by forward passes."""
    cols = []
    for k in range(net.n_in):
        e = np.zeros(net.n_in)
        e[k] = h
        cols.append((net(p + e)[0] - net(p - e)[0]) / (2 * h))
    return np.stack(cols, axis=1)


def reference_jumps_2d(rm):
    """For every interior edge: does the gradient jump? From forward passes at
    points inside both neighbouring regions (no use of rm.jacobians)."""
    net = rm.net
    shapes = rm.shapes
    grads = []
    for poly in shapes:
        c = shapely.get_coordinates(shapely.point_on_surface(poly))[0]
        r = shapely.distance(shapely.Point(c), poly.exterior)
        grads.append(fd_gradient(net, c, 0.25 * r))
    grads = np.array(grads)
    scale = np.abs(grads).max()
    inner = rm.edge_regions[:, 1] >= 0
    a, b = rm.edge_regions[inner, 0], rm.edge_regions[inner, 1]
    diff = np.abs(grads[a] - grads[b]).reshape(a.size, -1).max(axis=1)
    return diff > 1e-7 * scale, diff, scale


def bottleneck_net(seed, widths=(8, 1, 8), n_out=1):
    return random_net(list(widths), n_out=n_out, seed=seed)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("widths,n_out", [((8, 1, 8), 1), ((6, 2, 6), 1), ((10, 10), 3), ((5, 1, 1, 5), 2)])
def test_locus_edges_match_gradient_reference(seed, widths, n_out):
    net = bottleneck_net(seed, widths, n_out)
    rm = rg.activation_regions(net, (-2, -2, 2, 2))
    loc = rg.nonlinear_locus(rm)
    ref, diff, scale = reference_jumps_2d(rm)
    # no edge sits near the decision threshold, so the comparison is meaningful
    assert np.all((diff <= 1e-9 * scale) | (diff > 1e-6 * scale))
    np.testing.assert_array_equal(loc.in_locus, ref)
    assert len(loc) == ref.sum()
    # locus segments are exactly the jumping interior edges
    np.testing.assert_allclose(
        loc.volume(),
        np.sum(np.linalg.norm(loc.boundary_segments[ref][:, 1] - loc.boundary_segments[ref][:, 0], axis=1)),
    )


def test_bottleneck_removes_boundaries():
    """A width-1 layer switches parts of the domain off: fewer linear regions
    than activation regions, and activation boundaries that are not locus."""
    found = False
    for seed in range(20):
        rm = rg.activation_regions(bottleneck_net(seed), (-2, -2, 2, 2))
        lr = rg.linear_regions(rm)
        loc = rg.nonlinear_locus(rm)
        if len(lr) < len(rm):
            found = True
            assert not loc.in_locus.all()
            # merged regions: the network is affine on each (check at points)
            pts = np.random.default_rng(seed).uniform(-2, 2, size=(400, 2))
            r = rm.locate(pts)
            lab = lr.labels[r]
            pred = np.einsum("pij,pj->pi", lr.jacobians[lab], pts) + lr.offsets[lab]
            np.testing.assert_allclose(pred, rm.net(pts), atol=1e-12, rtol=1e-12)
            # merged areas add up; the shapes tile the domain
            assert np.isclose(lr.measures.sum(), 16.0)
            assert np.isclose(shapely.union_all(lr.shapes).area, 16.0)
    assert found


def test_linear_region_labels_consistent_with_jumps():
    rm = rg.activation_regions(bottleneck_net(3), (-2, -2, 2, 2))
    lr = rg.linear_regions(rm)
    loc = rg.nonlinear_locus(rm)
    a, b = loc.boundary_regions.T
    same = lr.labels[a] == lr.labels[b]
    # a locus edge never lies inside one linear region
    assert not np.any(same & loc.in_locus)
    # regions with the same label have equal Jacobians
    J = rm.jacobians
    for lab in range(len(lr)):
        members = np.nonzero(lr.labels == lab)[0]
        assert np.allclose(J[members], J[members[0]], atol=1e-12)


def test_linear_region_polygons_are_rings_of_the_shapes():
    rm = rg.activation_regions(bottleneck_net(5), (-2, -2, 2, 2))
    lr = rg.linear_regions(rm)
    assert len(lr.polygons) == len(lr) < len(rm)
    for ring, shape in zip(lr.polygons, lr.shapes):
        assert isinstance(ring, np.ndarray) and ring.ndim == 2 and ring.shape[1] == 2
        outer = shapely.Polygon(ring)
        assert outer.exterior.is_ccw
        assert outer.area == pytest.approx(shapely.Polygon(shape.exterior).area, rel=1e-12)


def box_chord(w, b, box):
    """Length of the line w.x + b = 0 inside the box, analytically."""
    x0, y0, x1, y1 = box
    pts = []
    if abs(w[1]) > 0:
        for x in (x0, x1):
            y = -(b + w[0] * x) / w[1]
            if y0 <= y <= y1:
                pts.append((x, y))
    if abs(w[0]) > 0:
        for y in (y0, y1):
            x = -(b + w[1] * y) / w[0]
            if x0 <= x <= x1:
                pts.append((x, y))
    pts = np.unique(np.round(np.array(pts), 12), axis=0) if pts else np.zeros((0, 2))
    if len(pts) < 2:
        return 0.0
    return (
        float(np.linalg.norm(pts.max(axis=0) - pts.min(axis=0)))
        if len(pts) == 2
        else float(max(np.linalg.norm(p - q) for p in pts for q in pts))
    )


@pytest.mark.parametrize("seed", range(5))
def test_one_hidden_layer_every_line_is_locus(seed):
    n = 12
    net = random_net([n], seed=seed)
    W, b = net.weights[0], net.biases[0]
    box = (-1.5, -1.0, 2.0, 1.0)
    loc = rg.nonlinear_locus(rg.activation_regions(net, box))
    expect = sum(box_chord(W[i], b[i], box) for i in range(n))
    assert loc.volume() == pytest.approx(expect, rel=1e-12)
    per = loc.volume_per_neuron()
    for i in range(n):
        assert per[i] == pytest.approx(box_chord(W[i], b[i], box), rel=1e-12, abs=1e-12)
    assert loc.volume_per_layer()[0] == pytest.approx(expect, rel=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_1d_locus_counts(seed):
    net = random_net([6, 3, 6], n_in=1, seed=seed)
    rm = rg.activation_regions(net, (-3.0, 3.0))
    loc = rg.nonlinear_locus(rm)
    # reference: gradient on each interval by forward passes at its midpoint
    g = []
    for lo, hi in rm.intervals:
        m, h = 0.5 * (lo + hi), 0.25 * (hi - lo)
        g.append(((net(np.array([m + h])) - net(np.array([m - h]))) / (2 * h))[0, 0])
    g = np.array(g)
    jumps = np.abs(np.diff(g)) > 1e-7 * np.abs(g).max()
    np.testing.assert_array_equal(loc.in_locus, jumps)
    assert loc.volume() == jumps.sum()
    np.testing.assert_allclose(loc.points, rm.intervals[1:, 0][jumps])
    # counts in balls (closed intervals) against a direct count
    centers = np.linspace(-3.5, 3.5, 57)
    got = loc.volume_in_balls(centers, 0.4)
    ref = [np.sum(np.abs(loc.points - c) <= 0.4) for c in centers]
    np.testing.assert_array_equal(got, ref)


def sampled_length_in_disk(segments, c, eps, n=20001):
    """Brute force: sample each segment densely, count samples in the disk."""
    t = (np.arange(n) + 0.5) / n
    total = 0.0
    for p, q in segments:
        pts = p + t[:, None] * (q - p)
        inside = np.sum((pts - c) ** 2, axis=1) <= eps * eps
        total += inside.mean() * np.linalg.norm(q - p)
    return total


@pytest.mark.parametrize("seed", range(3))
def test_volume_in_balls_against_sampling(seed):
    net = random_net([10, 10], seed=seed)
    loc = rg.nonlinear_locus(rg.activation_regions(net, (-1, -1, 1, 1)))
    rng = np.random.default_rng(100 + seed)
    centers = rng.uniform(-1.3, 1.3, size=(12, 2))  # some balls stick out of the domain
    for eps in (0.05, 0.3, 1.0):
        got = loc.volume_in_balls(centers, eps)
        for c, g in zip(centers, got):
            near = np.array(
                [s for s in loc.segments if shapely.distance(shapely.LineString(s), shapely.Point(c)) <= eps]
            )
            ref = sampled_length_in_disk(near, c, eps) if len(near) else 0.0
            # the sampling error is at most one sample spacing at each end of each chord
            bound = 2 * sum(np.linalg.norm(q - p) for p, q in near) / 20001 if len(near) else 0.0
            assert abs(g - ref) <= bound + 1e-12


def test_volume_in_balls_large_ball_is_whole_locus():
    net = random_net([8, 8], seed=1)
    loc = rg.nonlinear_locus(rg.activation_regions(net, (-1, -1, 1, 1)))
    got = loc.volume_in_balls(np.array([[0.0, 0.0], [10.0, 10.0]]), 2.0)
    assert got[0] == pytest.approx(loc.volume(), rel=1e-12)
    assert got[1] == 0.0


def test_volume_in_balls_exact_chord():
    # one neuron: the line x = 0.3 in the box; chord of a disk centred at the origin
    net = rg.Network.from_arrays([[[1.0, 0.0]], [[1.0]]], [[-0.3], [0.0]], ["relu", None])
    loc = rg.nonlinear_locus(rg.activation_regions(net, (-1, -1, 1, 1)))
    eps = 0.5
    got = loc.volume_in_balls([[0.0, 0.0], [0.3, 0.95]], eps)
    assert got[0] == pytest.approx(2 * np.sqrt(eps**2 - 0.3**2), rel=1e-14)
    # the disk sticks out of the domain at the top: only y <= 1 counts
    assert got[1] == pytest.approx(eps + 0.05, rel=1e-14)


def test_locus_vertices():
    # two crossing lines: one junction; plus a line ending where it stops being good
    net = rg.Network.from_arrays(
        [[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]], ["relu", None]
    )
    loc = rg.nonlinear_locus(rg.activation_regions(net, (-1, -1, 1, 1)))
    np.testing.assert_allclose(loc.vertices, [[0.0, 0.0]])


def test_several_outputs_locus_is_union():
    """With two outputs the gradient jumps where either output's does."""
    rng = np.random.default_rng(5)
    W1, b1 = rng.normal(size=(6, 2)), rng.normal(size=6) * 0.3
    V = np.zeros((2, 6))
    V[0, :3] = 1.0
    V[1, 3:] = 1.0
    both = rg.Network.from_arrays([W1, V], [b1, np.zeros(2)], ["relu", None])
    first = rg.Network.from_arrays([W1, V[:1]], [b1, np.zeros(1)], ["relu", None])
    box = (-2, -2, 2, 2)
    lb = rg.nonlinear_locus(rg.activation_regions(both, box))
    lf = rg.nonlinear_locus(rg.activation_regions(first, box))
    assert set(np.unique(lb.neurons)) == set(range(6))
    assert set(np.unique(lf.neurons)) == {0, 1, 2}
    assert lf.volume() < lb.volume()
    assert lb.volume() == pytest.approx(sum(box_chord(W1[i], b1[i], box) for i in range(6)), rel=1e-12)


def test_bad_inputs():
    net = random_net([4], seed=0)
    rm = rg.activation_regions(net, (-1, -1, 1, 1))
    loc = rg.nonlinear_locus(rm)
    with pytest.raises(TypeError, match="RegionMap"):
        rg.nonlinear_locus(net)
    with pytest.raises(ValueError, match="eps"):
        loc.volume_in_balls([[0, 0]], 0.0)
    with pytest.raises(ValueError, match="shape"):
        loc.volume_in_balls([[0, 0, 0]], 0.1)
    with pytest.raises(ValueError, match="NaN"):
        loc.volume_in_balls([[np.nan, 0]], 0.1)
