"""Hanin & Rolnick's Corollaries 7 and 8: both sides, on random and trained networks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from common import ACT_IDS, ACTIVATIONS, random_net

import regiongeom as rg
from regiongeom.vertices import _noisy_biases

BOX = (-1.0, -1.0, 1.0, 1.0)


def gradient_norms(net, x, slopes):
    """||grad z_j|| at x for every neuron, each neuron on the piece given by
    ``slopes`` (a callable layer -> slopes) or, with None, on its own piece."""
    h, J, out = np.asarray(x, float), np.eye(2), []
    for ly, (w, b, a) in enumerate(zip(net.weights, net.biases, net.activations, strict=True)):
        Jz = w @ J
        v = w @ h + b
        if a is None:
            h, J = v, Jz
            continue
        out.append(np.linalg.norm(Jz, axis=1))
        k = (v[:, None] >= a.breakpoints).sum(1)
        s = a.slopes[k] if slopes is None else slopes(ly, a)
        h, J = s * v + a.intercepts[k], s[:, None] * Jz
    return np.concatenate(out)


@pytest.mark.parametrize("act_id", ACT_IDS)
def test_gradient_bound_holds_for_every_pattern(act_id):
    net = random_net([5, 4, 3], activation=ACTIVATIONS[act_id], seed=2)
    C = rg.gradient_bound(net)
    gen = np.random.default_rng(0)
    seen = 0.0
    for _ in range(300):
        # sampled pieces, or any slope of the activation for every neuron
        pick = lambda ly, a: gen.choice(a.slopes, size=net.weights[ly].shape[0])  # noqa: E731
        g = gradient_norms(net, gen.uniform(-2, 2, 2), pick if gen.random() < 0.5 else None)
        seen = max(seen, g.max())
    assert seen <= C * (1 + 1e-12)
    assert seen > 0.05 * C  # not absurdly loose on a small net


def test_gradient_bound_one_layer_is_the_largest_row():
    W = np.array([[3.0, 4.0], [1.0, -1.0]])
    net = rg.Network.from_arrays([W, [[1.0, 1.0]]], [[0.0, 0.0], [0.0]], ["relu", None])
    assert rg.gradient_bound(net) == 5.0


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("act_id", ACT_IDS)
def test_corollary7_on_random_nets(act_id, k):
    net = random_net([6, 5], activation=ACTIVATIONS[act_id], seed=3)
    b = rg.corollary7_bound(net, BOX, sigma=0.4, k=k, n_points=64, n_samples=8, rng=1)
    assert b.kind == "upper" and b.constants["k"] == k and b.lhs > 0 and b.holds
    assert b.lhs <= b.rhs
    T = len(ACTIVATIONS[act_id].breakpoints) if not isinstance(ACTIVATIONS[act_id], str) else 1
    want = math.comb(net.n_neurons, k) * (T * b.constants["c_grad"] / (math.sqrt(2 * math.pi) * 0.4)) ** k
    assert b.rhs == pytest.approx(want, rel=1e-14)


def test_corollary7_is_tight_for_one_neuron_and_wide_noise():
    """One neuron, sigma much larger than the box: f(x) ~ ||w|| rho(0) = C_grad C_bias."""
    net = rg.Network.from_arrays([[[3.0, 4.0]], [[1.0]]], [[0.1], [0.0]], ["relu", None])
    b = rg.corollary7_bound(net, BOX, sigma=50.0, k=1, n_points=64, n_samples=4, rng=0)
    assert 0.99 < b.lhs / b.rhs <= 1.0


def test_corollary7_k2_is_tight_for_two_orthogonal_neurons():
    net = rg.Network.from_arrays([np.eye(2), [[1.0, 1.0]]], [[0.0, 0.0], [0.0]], ["relu", None])
    b = rg.corollary7_bound(net, BOX, sigma=50.0, k=2, n_points=16, n_samples=2, rng=0)
    assert 0.99 < b.lhs / b.rhs <= 1.0


@pytest.mark.slow
def test_corollaries_on_the_trained_bunny():
    net = rg.default_network()
    dom = (-1.0, -1.0, 1.0, 1.0)
    for k in (1, 2):
        b = rg.corollary7_bound(net, dom, sigma=0.05, k=k, n_points=64, n_samples=4, rng=0)
        assert 0 < b.lhs <= b.rhs
    b = rg.corollary8_bound(net, dom, sigma=0.05, n_points=256, n_samples=4, rng=0)
    assert b.lhs >= b.rhs > 0


@pytest.mark.parametrize("act_id", ["relu", "hardtanh", "pl3"])
def test_corollary8_on_random_nets(act_id):
    net = random_net([6, 5], activation=ACTIVATIONS[act_id], seed=4)
    b = rg.corollary8_bound(net, BOX, sigma=0.4, n_points=128, n_samples=6, rng=2)
    assert b.kind == "lower" and b.constants["eps"] > 0
    assert b.lhs >= b.rhs > 0


@pytest.mark.parametrize("act_id", ["relu", "abs"])
def test_tube_step_of_corollary8(act_id):
    """The step of the proof, per noisy network: the share of the box within
    eps of the locus is at most (2 eps len + pi eps^2 #vertices) / area,
    length and vertices counted in the box grown by eps (z-score of the
    share of uniform points); and the share is not far below it for small eps."""
    net = random_net([6, 5], activation=ACTIVATIONS[act_id], seed=5)
    gen = np.random.default_rng(3)
    n = 20000
    pts = gen.uniform(-1, 1, (n, 2))
    for eps in (0.002, 0.01, 0.03):
        noisy = net.with_biases(_noisy_biases(net, gen.normal(0, 0.3, net.n_neurons)))
        grown = (-1 - eps, -1 - eps, 1 + eps, 1 + eps)
        far = (-3.0, -3.0, 3.0, 3.0)
        loc_g = rg.nonlinear_locus(rg.activation_regions(noisy, grown))
        bound = (2 * eps * loc_g.volume() + math.pi * eps**2 * len(rg.locus_vertices(loc_g))) / 4.0
        share = np.mean(rg.nonlinear_locus(rg.activation_regions(noisy, far)).distance(pts) < eps)
        assert bound < 1
        assert (share - bound) / math.sqrt(bound * (1 - bound) / n) < 4.5
        if eps == 0.002:
            assert share > 0.8 * bound


def test_bounds_refuse_bad_input():
    net = random_net([3], seed=0)
    with pytest.raises(ValueError, match="k must be 1 or 2"):
        rg.corollary7_bound(net, BOX, sigma=0.1, k=3)
    from shapely.geometry import Polygon

    with pytest.raises(ValueError, match="box"):
        rg.corollary8_bound(net, Polygon([(0, 0), (1, 0), (0, 1)]), sigma=0.1)
