"""Planes and lines through inputs, and networks restricted to them."""

from __future__ import annotations

import numpy as np
import pytest
from common import ACTIVATIONS, random_net

import regiongeom as rg


def _points(k, n_in, seed):
    return list(np.random.default_rng(seed).normal(size=(k, n_in)))


def _rel_close(a, b, rtol=1e-12):
    scale = max(np.abs(a).max(), np.abs(b).max(), 1e-300)
    return np.abs(a - b).max() <= rtol * scale


# -- the frame ---------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", [(784,), (1, 28, 28), (5,)])
def test_plane_frame_is_orthonormal_and_maps_the_points(seed, shape):
    x0, x1, x2 = (p.reshape(shape) for p in _points(3, int(np.prod(shape)), seed))
    plane = rg.Plane.through(x0, x1, x2)
    f0, f1, f2 = (x.reshape(-1) for x in (x0, x1, x2))
    assert plane.n_in == f0.size and plane.dim == 2 and plane.input_shape == shape
    assert plane.basis.shape == (f0.size, 2)
    assert np.abs(plane.basis.T @ plane.basis - np.eye(2)).max() < 1e-14
    # x0 -> (0, 0) and x1 -> (|x1 - x0|, 0) exactly, x2 above the first axis
    assert plane.points[0].tolist() == [0.0, 0.0]
    assert plane.points[1, 0] == np.linalg.norm(f1 - f0) and plane.points[1, 1] == 0.0
    assert plane.points[2, 1] > 0
    # the stored coordinates are the projections, and lift inverts them
    assert np.allclose(plane.coords(np.stack([x0, x1, x2])), plane.points, rtol=0, atol=1e-12)
    assert _rel_close(plane.lift(plane.points), np.stack([f0, f1, f2]))
    # lift(uv) reshaped is a model-shaped input
    assert plane.lift(plane.points).reshape(-1, *plane.input_shape).shape == (3, *shape)


@pytest.mark.parametrize("seed", [0, 1])
def test_plane_coords_lift_roundtrip_and_projection(seed):
    rng = np.random.default_rng(seed)
    plane = rg.Plane.through(*_points(3, 50, seed))
    uv = rng.normal(size=(100, 2)) * 3
    assert np.abs(plane.coords(plane.lift(uv)) - uv).max() < 1e-13
    # coords is the orthogonal projection: the residual is orthogonal to the plane
    x = rng.normal(size=(20, 50))
    resid = x - plane.lift(plane.coords(x))
    assert np.abs(resid @ plane.basis).max() < 1e-13
    # a single input (flat) gives one row
    assert plane.coords(x[0]).shape == (1, 2) and plane.lift(uv[0]).shape == (1, 50)


def test_plane_lengths_and_areas_are_input_space_ones():
    x0, x1, x2 = _points(3, 784, 3)
    plane = rg.Plane.through(x0, x1, x2)
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 40, 2))
    dist_in = np.linalg.norm(plane.lift(a) - plane.lift(b), axis=1)
    assert np.allclose(dist_in, np.linalg.norm(a - b, axis=1), rtol=1e-12)
    # area of the triangle x0 x1 x2: in plane coordinates and by Lagrange's identity in R^784
    p = plane.points
    area_uv = 0.5 * abs((p[1, 0] - p[0, 0]) * (p[2, 1] - p[0, 1]) - (p[1, 1] - p[0, 1]) * (p[2, 0] - p[0, 0]))
    d1, d2 = x1 - x0, x2 - x0
    area_in = 0.5 * np.sqrt((d1 @ d1) * (d2 @ d2) - (d1 @ d2) ** 2)
    assert area_uv == pytest.approx(area_in, rel=1e-12)


def test_plane_nearly_collinear_points_keep_an_orthonormal_frame():
    x0, x1, perp = _points(3, 200, 4)
    x2 = x0 + 0.7 * (x1 - x0) + 1e-7 * perp
    plane = rg.Plane.through(x0, x1, x2)
    assert np.abs(plane.basis.T @ plane.basis - np.eye(2)).max() < 1e-14
    assert plane.points[2, 1] > 0


def test_bounds():
    plane = rg.Plane.through([0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [1.0, 2.0, 0.0])
    assert plane.points.tolist() == [[0.0, 0.0], [4.0, 0.0], [1.0, 2.0]]
    assert plane.bounds() == (-1.0, -0.5, 5.0, 2.5)
    assert plane.bounds(margin=0) == (0.0, 0.0, 4.0, 2.0)
    line = rg.Line.through([1.0, 1.0], [4.0, 5.0])
    assert line.bounds() == (-1.25, 6.25)
    assert line.bounds(margin=0.0) == (0.0, 5.0)


@pytest.mark.parametrize("shape", [(784,), (1, 28, 28)])
def test_line_frame(shape):
    a, b = (p.reshape(shape) for p in _points(2, 784, 5))
    line = rg.Line.through(a, b)
    fa, fb = a.reshape(-1), b.reshape(-1)
    assert line.dim == 1 and line.basis.shape == (784, 1)
    assert abs(np.linalg.norm(line.basis) - 1) < 1e-15
    assert line.points[0] == 0.0 and line.points[1] == np.linalg.norm(fb - fa)
    assert np.allclose(line.coords(np.stack([a, b])), line.points, rtol=0, atol=1e-12)
    t = np.linspace(-2, 3, 11)
    assert np.abs(line.coords(line.lift(t)) - t).max() < 1e-13
    assert np.allclose(np.linalg.norm(line.lift(t) - fa, axis=1), np.abs(t), rtol=1e-12)
    assert line.lift(t[:, None]).shape == (11, 784)


# -- restriction -----------------------------------------------------------
@pytest.mark.parametrize("act", ["relu", "leaky_relu", "hardtanh", "pl3"])
@pytest.mark.parametrize("seed", [0, 1])
def test_restrict_is_exact_on_a_784_input_mlp(act, seed):
    net = random_net([64, 64, 64], n_in=784, n_out=10, activation=ACTIVATIONS[act], seed=seed)
    plane = rg.Plane.through(*_points(3, 784, 10 + seed))
    net2 = net.restrict(plane)
    assert net2.n_in == 2 and net2.n_out == 10 and net2.layer_sizes == net.layer_sizes
    assert net2.activations == net.activations
    assert all(w2 is w for w2, w in zip(net2.weights[1:], net.weights[1:]))
    uv = np.random.default_rng(seed).uniform(-1, 1, size=(500, 2)) * np.array(plane.bounds()[2:])
    assert _rel_close(net2(uv), net(plane.lift(uv)))
    assert np.array_equal(net2.patterns(uv), net.patterns(plane.lift(uv)))
    line = rg.Line.through(*_points(2, 784, 20 + seed))
    net1 = net.restrict(line)
    t = np.linspace(-1, 4, 300)
    assert net1.n_in == 1 and _rel_close(net1(t), net(line.lift(t)))


def _check_regions_against_full_net(net, slc, rm):
    """The regions, checked with forward passes of the full network only: each region's
    pattern is the full net's at its lifted interior point; (ReLU) every lifted vertex of a
    region lies in the closure of that pattern's cell; the regions tile the domain; and
    neighbours have different patterns."""
    assert len(rm) > 1
    assert np.array_equal(rm.patterns, net.patterns(slc.lift(rm.interior_points())))
    cells = rm.intervals if rm.dim == 1 else rm.polygons
    for r, cell in enumerate(cells):
        z = np.concatenate(net.forward(slc.lift(cell))[1][:-1], axis=1)
        sign = 2.0 * rm.patterns[r] - 1.0
        assert np.all(sign * z >= -1e-9 * np.abs(z).max())
    total = rm.domain.measure
    assert rm.measures.sum() == pytest.approx(total, rel=1e-12)
    inner = rm.edge_regions[(rm.edge_regions >= 0).all(axis=1)]
    assert np.all(np.any(rm.patterns[inner[:, 0]] != rm.patterns[inner[:, 1]], axis=1))


@pytest.mark.parametrize("seed", [0, 1])
def test_regions_of_the_restricted_net_are_the_full_nets(seed):
    net = random_net([16, 16], n_in=784, n_out=3, seed=seed)
    plane = rg.Plane.through(*_points(3, 784, 30 + seed))
    rm = rg.activation_regions(net.restrict(plane), plane.bounds())
    _check_regions_against_full_net(net, plane, rm)
    line = rg.Line.through(*_points(2, 784, 40 + seed))
    rm1 = rg.activation_regions(net.restrict(line), line.bounds())
    _check_regions_against_full_net(net, line, rm1)


def test_plane_through_three_digit_images():
    datasets = pytest.importorskip("sklearn.datasets")
    images = datasets.load_digits().images / 16.0  # (1797, 8, 8)
    net = random_net([24, 24], n_in=64, n_out=10, seed=7)
    plane = rg.Plane.through(images[0], images[1], images[2])
    assert plane.input_shape == (8, 8) and plane.n_in == 64
    assert np.allclose(plane.coords(images[:3]), plane.points, rtol=0, atol=1e-12)
    net2 = net.restrict(plane)
    # the three images' outputs are the restricted net's at their coordinates
    assert _rel_close(net2(plane.points), net(images[:3].reshape(3, 64)))
    rm = rg.activation_regions(net2, plane.bounds())
    _check_regions_against_full_net(net, plane, rm)


def test_restrict_keeps_extra_fields_and_order():
    net = random_net([8, 5], n_in=30, seed=2)
    plane = rg.Plane.through(*_points(3, 30, 2))
    net2 = net.restrict(plane)
    assert type(net2) is type(net)
    assert np.array_equal(net2.neuron_layer, net.neuron_layer)
    assert np.allclose(net2.weights[0], net.weights[0] @ plane.basis, rtol=1e-15)
    assert np.allclose(net2.biases[0], net.biases[0] + net.weights[0] @ plane.origin, rtol=1e-15)


# -- local complexity on a plane -----------------------------------------
@pytest.mark.parametrize("kind", ["plane", "line"])
def test_lc_density_on_a_slice_is_the_slices_own_locus_density(kind):
    """One hidden layer (no noise upstream): on a slice, f(uv) = sum_i ||B^T w_i|| phi(z_i)
    exactly, with B the slice's orthonormal basis (the gradient projected onto the slice);
    the 784-dimensional density at the same input uses ||w_i|| instead and is larger."""
    net = random_net([32], n_in=784, n_out=1, seed=9)
    pts = _points(3, 784, 9)
    slc = rg.Plane.through(*pts) if kind == "plane" else rg.Line.through(*pts[:2])
    sigma = 0.4
    uv = np.random.default_rng(9).uniform(-2, 2, size=(50, slc.dim))
    est = rg.lc_density(net.restrict(slc), uv, sigma=sigma, n_samples=4, rng=0)
    w, b = net.weights[0], net.biases[0]
    z = slc.lift(uv) @ w.T + b
    phi = np.exp(-0.5 * (z / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)
    on_slice = phi @ np.linalg.norm(w @ slc.basis, axis=1)
    assert np.allclose(est.mean, on_slice, rtol=1e-12) and est.stderr.max() < 1e-12
    full = phi @ np.linalg.norm(w, axis=1)
    assert np.all(full > 2 * on_slice)


def test_docstring_examples():
    import doctest

    import regiongeom.slices as mod

    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 2 and result.failed == 0


# -- errors ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: rg.Plane.through([1.0, 2, 3], [1.0, 2, 3], [0.0, 0, 1]), "x0 and x1 coincide"),
        (lambda: rg.Plane.through([0.0, 0, 0], [1.0, 1, 1], [2.0, 2, 2]), "collinear"),
        (lambda: rg.Plane.through([0.0, 0, 0], [1.0, 1, 1], [0.0, 0, 0]), "collinear"),
        (lambda: rg.Plane.through([0.0, 0, 0], [1.0, 0], [0.0, 1, 0]), "same number of entries"),
        (lambda: rg.Plane.through([0.0, np.nan, 0], [1.0, 0, 0], [0.0, 1, 0]), "NaN or inf"),
        (lambda: rg.Plane.through([], [], []), "empty"),
        (lambda: rg.Line.through([1.0, 2.0], [1.0, 2.0]), "a and b coincide"),
        (lambda: rg.Line.through([1.0, 2.0], [np.inf, 2.0]), "NaN or inf"),
        (lambda: rg.Line.through([1.0, 2.0], [1.0, 2.0, 3.0]), "same number of entries"),
        (
            lambda: rg.Plane.through([0.0, 0, 0], [1.0, 0, 0], [0.0, 1, 0]).coords(np.ones((4, 2))),
            "3 entries",
        ),
        (lambda: rg.Plane.through([0.0, 0, 0], [1.0, 0, 0], [0.0, 1, 0]).lift(np.ones((4, 3))), r"\(P, 2\)"),
        (lambda: rg.Line.through([0.0, 0], [1.0, 0]).lift(np.ones((4, 2))), r"\(P, 1\)"),
        (lambda: rg.Line.through([0.0, 0], [1.0, 0]).bounds(margin=-1), "margin"),
        (lambda: random_net([3], n_in=5).restrict(rg.Line.through([0.0, 0], [1.0, 0])), "5 inputs"),
        (lambda: random_net([3], n_in=5).restrict((0, 0, 1, 1)), "rg.Plane or rg.Line"),
    ],
)
def test_errors(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_activation_regions_on_many_inputs_says_to_restrict():
    net = random_net([4], n_in=784, seed=0)
    with pytest.raises(ValueError, match="restrict it to a Plane or a Line first"):
        rg.activation_regions(net, (0, 0, 1, 1))
