"""Heat maps of the local complexity: the ball measures of the definition route
(``lc_density(method="definition")``) on grids and scattered centers, against
an all-pairs reference summed in the same order (so the sums agree bit for bit).

The chord length itself is checked against sampling and closed forms in
``test_locus.py``; here the search (which centers each segment visits) and
the order of the sums are on trial.
"""

import numpy as np
import pytest
import shapely
from common import random_net

import regiongeom as rg
from regiongeom import _locus_kernels as K
from regiongeom.complexity import _noisy_biases
from regiongeom.locus import locus_in_balls

L_SHAPE = shapely.Polygon([(-1, -1), (1, -1), (1, 0), (0, 0), (0, 1), (-1, 1)])


def all_pairs(seg, centers, eps):
    """(P,) every segment against every center, segments in order: the sum the
    kernel must reproduce exactly (it adds the same chords in the same order
    and skips only zeros)."""
    out = np.zeros(len(centers))
    for s in seg:
        for p, c in enumerate(centers):
            out[p] += K._chord_in_disk(s[0, 0], s[0, 1], s[1, 0], s[1, 1], c[0], c[1], eps * eps)
    return out


def kernel(seg, centers, eps, h):
    """The kernel with cell size ``h`` over the segments' box grown by eps."""
    x0, y0 = seg[:, :, 0].min() - eps, seg[:, :, 1].min() - eps
    w, hgt = seg[:, :, 0].max() + eps - x0, seg[:, :, 1].max() + eps - y0
    nx, ny = int(w // h) + 1, int(hgt // h) + 1
    return K.segments_in_disks(
        np.ascontiguousarray(seg), np.ascontiguousarray(centers), eps, x0, y0, h, nx, ny
    )


def awkward_segments(rng, n):
    """Random segments plus horizontal, vertical, zero-length and long ones."""
    a = rng.uniform(-1, 1, size=(n, 2))
    b = a + rng.normal(0, 0.2, size=(n, 2))
    seg = np.stack([a, b], axis=1)
    extra = np.array([
        [[-0.5, 0.1], [0.7, 0.1]],  # horizontal
        [[0.2, -0.9], [0.2, 0.8]],  # vertical
        [[0.3, 0.3], [0.3, 0.3]],  # a point
        [[-1.0, -1.0], [1.0, 1.0]],  # long diagonal
        [[0.0, 0.0], [1e-9, 0.0]],  # tiny
    ])  # fmt: skip
    return np.concatenate([seg, extra])


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("eps", [0.01, 0.07, 0.5])
def test_segments_in_disks_equals_all_pairs(seed, eps):
    rng = np.random.default_rng(seed)
    seg = awkward_segments(rng, 40)
    grid = rg.grid_points((-1.2, -1.2, 1.2, 1.2), 12)
    scattered = rng.uniform(-1.5, 1.5, size=(60, 2))
    on_ends = seg[:8, 0] + np.array([eps, 0.0])  # disks through segment ends
    centers = np.concatenate([grid, scattered, on_ends, [[50.0, 50.0]]])
    ref = all_pairs(seg, centers, eps)
    assert ref.max() > 0 and ref[-1] == 0.0
    for h in (0.5 * eps, eps, 0.37, 3.0, 10.0):  # the cell size changes the search only
        np.testing.assert_array_equal(kernel(seg, centers, eps, h), ref)


@pytest.mark.parametrize("seed", range(2))
def test_volume_in_balls_equals_all_pairs_on_a_grid(seed):
    net = random_net([10, 10], seed=seed)
    loc = rg.nonlinear_locus(rg.activation_regions(net, (-1, -1, 1, 1)))
    centers = rg.grid_points((-1.1, -1.1, 1.1, 1.1), 15)
    for eps in (0.03, 0.2):
        np.testing.assert_array_equal(
            loc.volume_in_balls(centers, eps), all_pairs(loc.segments, centers, eps)
        )


@pytest.mark.parametrize(
    "net, domain",
    [
        (random_net([6, 6], seed=3), (-1, -1, 1, 1)),
        (random_net([5, 4, 5], seed=4, n_in=1), (-2.0, 2.0)),
        (random_net([6, 6], seed=5), L_SHAPE),  # non-convex
    ],
)
def test_locus_in_balls_equals_the_locus(net, domain):
    rm = rg.activation_regions(net, domain)
    centers = rg.grid_points(domain, 9 if net.n_in == 2 else 40)
    for eps in (0.05, 0.4):
        want = rg.nonlinear_locus(rm).volume_in_balls(centers, eps)
        np.testing.assert_array_equal(locus_in_balls(rm, centers, eps), want)


@pytest.mark.parametrize("n_in", [1, 2])
def test_definition_route_equals_a_plain_loop(n_in):
    """lc_density(method="definition") on a grid: the same numbers as the
    definition written out (the noisy network's locus, measured pair by pair)."""
    net = random_net([6, 5], seed=7, n_in=n_in)
    domain = (-1.0, 1.0) if n_in == 1 else (-1, -1, 1, 1)
    x = rg.grid_points(domain, 30 if n_in == 1 else 8)
    sigma, eps, S = 0.1, 0.15, 3
    est = rg.lc_density(
        net, x, sigma=sigma, n_samples=S, method="definition", eps=eps, rng=11, progress=False
    )
    noise = np.random.default_rng(11).normal(0.0, sigma, size=(S, net.n_neurons))
    box = (x.min(axis=0) - eps, x.max(axis=0) + eps)
    dom = (box[0][0], box[1][0]) if n_in == 1 else (box[0][0], box[0][1], box[1][0], box[1][1])
    F = np.empty((S, len(x)))
    for s in range(S):
        loc = rg.nonlinear_locus(rg.activation_regions(net.with_biases(_noisy_biases(net, noise[s])), dom))
        if n_in == 1:
            F[s] = [np.sum(np.abs(loc.points - c) <= eps) / (2 * eps) for c in x[:, 0]]
        else:
            F[s] = all_pairs(loc.segments, x, eps) / (np.pi * eps * eps)
    np.testing.assert_array_equal(est.mean, F.mean(axis=0))


def test_definition_route_does_not_depend_on_threads(monkeypatch):
    net = random_net([6, 6], seed=8)
    x = rg.grid_points((-1, -1, 1, 1), 10)
    kw = dict(sigma=0.1, n_samples=5, method="definition", eps=0.2, rng=3, progress=False)
    runs = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("REGIONGEOM_NUM_THREADS", threads)
        runs.append(rg.lc_density(net, x, **kw).mean)
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])


def test_thin_locus_with_a_tiny_radius_keeps_the_grid_small():
    """Segments along one line and eps = 1e-12: the cells are bounded by the
    number of segments and centers, not by the radius."""
    xs = np.linspace(-1.0, 1.0, 201)
    seg = np.stack([np.stack([xs[:-1], np.zeros(200)], 1), np.stack([xs[1:], np.zeros(200)], 1)], axis=1)
    centers = np.stack([np.linspace(-1.0, 1.0, 57), np.zeros(57)], axis=1)
    from regiongeom.locus import _in_balls

    got = _in_balls(seg, centers, 1e-12)
    np.testing.assert_array_equal(got, all_pairs(seg, centers, 1e-12))
    assert got.max() > 0
