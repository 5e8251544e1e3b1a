"""Local complexity: theorem2 and the definition against closed forms, against
each other, and the good indicator against a brute-force recomputation.

Statistical checks are z-scores with fixed seeds, |z| < 4 (never loosened).
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from common import random_net
from hypothesis import given, settings
from hypothesis import strategies as st

import regiongeom as rg
from regiongeom import closed_form as cf
from regiongeom._theorem2 import Packed, theorem2_block
from regiongeom.complexity import Estimate, lc_density, local_complexity

Z_MAX = 4.0


def neuron_net(w, b, *, v=1.0):
    """relu(w . x + b) read out by v (torch convention: beta = -b)."""
    w = np.atleast_1d(np.asarray(w, float))
    return rg.Network.from_arrays([w[None, :], [[v]]], [[b], [0.3]], ["relu", None])


def chain_net(w1, w2, beta1, beta2):
    """Appendix A.2: N(x) = relu(w2 relu(w1 x - beta1) - beta2)."""
    return rg.Network.from_arrays([[[w1]], [[w2]]], [[-beta1], [-beta2]], ["relu", "relu"])


def rand_net(widths, acts, *, n_in=2, seed=0, zero_frac=0.0, last_act=None, scale=1.0):
    return random_net(
        widths,
        activation=acts,
        n_in=n_in,
        seed=seed,
        zero_frac=zero_frac,
        last_activation=last_act,
        scale=scale,
    )


def zscores(est, exact):
    return (est.mean - exact) / est.stderr


# ----------------------------------------------------------------------------
# brute force: the theorem's formula term by term, written independently
# ----------------------------------------------------------------------------
def _noisy_biases(net, row):
    offs = net.neuron_offsets
    return [b + row[offs[i] : offs[i + 1]] if a is not None else b
            for i, (b, a) in enumerate(zip(net.biases, net.activations, strict=True))]  # fmt: skip


def brute_good(net, row, x):
    """good[i, k]: put neuron i on breakpoint t_k, recompute every later layer,
    then search a path to the output through nonzero weights and open neurons."""
    bs, L, offs = _noisy_biases(net, row), net.n_layers, net.neuron_offsets
    hs = [np.asarray(x, float)]
    for w, b, a in zip(net.weights, bs, net.activations, strict=True):
        v = w @ hs[-1] + b
        hs.append(a(v) if a is not None else v)
    kmax = max(a.breakpoints.size for a in net.activations if a is not None)
    good = np.zeros((net.n_neurons, kmax), np.int8)
    for ly, a in enumerate(net.activations):
        if a is None:
            continue
        for j in range(net.weights[ly].shape[0]):
            for k, t in enumerate(a.breakpoints):
                h = hs[ly + 1].copy()
                h[j] = a(np.array([t]))[0]
                opened = {}
                for m in range(ly + 1, L):
                    v = net.weights[m] @ h + bs[m]
                    am = net.activations[m]
                    opened[m] = np.ones(v.size, bool) if am is None else am.slopes[am.piece(v)] != 0
                    h = v if am is None else am(v)

                def path(m, u, opened=opened):
                    if m == L - 1:
                        return True
                    W = net.weights[m + 1]
                    return any(
                        W[r, u] != 0 and opened[m + 1][r] and path(m + 1, r) for r in range(W.shape[0])
                    )

                good[offs[ly] + j, k] = path(ly, j)
    return good


def brute_f(net, row, x, sigma, *, good=True, rho=True, by_layer=False, h=1e-6):
    """eq. (6) for one noise sample at one point; gradients by central
    differences. ``by_layer``: the (L,) sums over each layer's neurons."""
    bs = _noisy_biases(net, row)

    def pre_bias(xx):  # z_i = W_i h (pre-bias) of every neuron
        hh, out = np.asarray(xx, float), []
        for w, b, a in zip(net.weights, bs, net.activations, strict=True):
            z = w @ hh
            if a is not None:
                out.append(z)
            hh = a(z + b) if a is not None else z + b
        return np.concatenate(out)

    z0 = pre_bias(x)
    grads = np.stack([(pre_bias(x + h * e) - pre_bias(x - h * e)) / (2 * h) for e in np.eye(len(x))], axis=1)
    gn = np.linalg.norm(grads, axis=1)
    gd = brute_good(net, row, x) if good else None
    b0 = np.concatenate([b for b, a in zip(net.biases, net.activations, strict=True) if a is not None])
    shares, i = np.zeros(net.n_layers), 0
    for ly, a in enumerate(net.activations):
        if a is None:
            continue
        for _ in range(net.weights[ly].shape[0]):
            for k, t in enumerate(a.breakpoints):
                w = gn[i]
                if rho:
                    u = t - b0[i] - z0[i]
                    w *= math.exp(-0.5 * (u / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma)
                shares[ly] += w * (gd[i, k] if good else 1)
            i += 1
    return shares if by_layer else shares.sum()


BRUTE_NETS = {
    "relu-3x2x3": lambda: rand_net([3, 2, 3], ["relu"] * 3, seed=1),
    "bottleneck-1": lambda: rand_net([4, 1, 4], ["relu"] * 3, seed=2),
    "mixed-acts": lambda: rand_net([3, 2, 2], ["relu", rg.hardtanh, rg.leaky_relu], seed=3),
    "zero-weights": lambda: rand_net([4, 4, 4], ["relu"] * 3, seed=4, zero_frac=0.4),
    "abs-pl-last-relu": lambda: rand_net(
        [3, 3], ["abs", rg.Activation("flat-ends", [-0.5, 0.5], [0.0, 1.0, 0.0])], seed=5, last_act="relu"
    ),
    "zero-slope-pieces": lambda: rand_net(
        [2, 2, 2],
        [rg.Activation("step", [-0.5, 0.5], [0.0, 1.0, 0.0])] * 3,
        seed=6,
        zero_frac=0.3,
        last_act="hardtanh",
    ),  # fmt: skip
    "1d-width-1": lambda: rand_net([5, 1, 1, 5], ["relu"] * 4, n_in=1, seed=7),
    "linear-middle": lambda: rand_net([3, 2, 3], ["relu", None, "relu"], seed=8),
    "linear-middle-sparse": lambda: rand_net(
        [4, 3, 2], [rg.leaky_relu, None, "abs"], seed=9, zero_frac=0.3, last_act="relu"
    ),
    "3-inputs": lambda: rand_net([6, 6], ["relu", "relu"], n_in=3, seed=10),
    "linear-first": lambda: rand_net([3, 4, 3], [None, "relu", "relu"], seed=3),
}


@pytest.mark.parametrize("name", list(BRUTE_NETS))
@pytest.mark.parametrize("screen", [True, False])
def test_good_indicator_is_exactly_the_theorems(name, screen):
    """Every (point, sample, neuron, breakpoint) indicator equals the brute-force
    on-locus recomputation, with the screen (decided + recomputed cases) and
    without it (all recomputed); f equals the brute-force sum."""
    net = BRUTE_NETS[name]()
    pk = Packed(net)
    rng = np.random.default_rng(11)
    sigma, S, P = 0.4, 4, 30
    x = rng.uniform(-1.5, 1.5, size=(P, net.n_in))
    noise = rng.normal(0, sigma, size=(S, net.n_neurons))
    opts = dict(sigma=sigma, good=True, rho=True)
    f, (good, n_undecided) = theorem2_block(pk, x, noise, opts, screen=screen, return_good=True)
    good = good.reshape(S, P, net.n_neurons, pk.kmax)
    for s in range(S):
        for p in range(P):
            ref = brute_good(net, noise[s], x[p])
            np.testing.assert_array_equal(good[s, p, :, : ref.shape[1]], ref, err_msg=f"sample {s} point {p}")
    ref_f = [brute_f(net, noise[s], x[p], sigma) for s in range(S) for p in range(P)]
    np.testing.assert_allclose(f, ref_f, rtol=1e-7, atol=1e-9)  # finite-difference gradients
    n_terms = S * P * pk.n_terms
    assert n_undecided < n_terms if screen else n_undecided == n_terms  # both paths: see the next test


def test_grid_order_reuse_matches_brute_force():
    """Consecutive grid points reuse gradients and update values along the
    shared affine map: f still equals the brute force at every point, and
    equals the result on shuffled points (no reuse) to rounding."""
    net = rand_net([6, 5, 4], ["relu", rg.Activation.hardtanh(-0.5, 0.5), "relu"], seed=21, scale=1.5)
    g = np.linspace(-1.2, 1.2, 23)
    x = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    noise = np.random.default_rng(4).normal(0, 0.3, size=(2, net.n_neurons))
    pk, opts = Packed(net), dict(sigma=0.3, good=True, rho=True)
    f, _ = theorem2_block(pk, x, noise, opts)
    ref = [brute_f(net, noise[s], x[p], 0.3) for s in range(2) for p in range(len(x))]
    np.testing.assert_allclose(f, ref, rtol=1e-7, atol=1e-9)
    perm = np.random.default_rng(0).permutation(len(x))
    fp, _ = theorem2_block(pk, x[perm], noise, opts)
    np.testing.assert_allclose(fp.reshape(2, -1), f.reshape(2, -1)[:, perm], rtol=1e-12, atol=1e-300)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    n_in=st.sampled_from([1, 2]),
    widths=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    act=st.sampled_from(["relu", "abs", "hardtanh"]),
    last_act=st.sampled_from([None, "relu"]),
)
def test_good_indicator_with_exact_ties(seed, n_in, widths, act, last_act):
    """Small integer weights, half-integer biases, noise and points: every
    product is exact, so neurons sit exactly on breakpoints and margins tie
    with bounds. The indicator still equals the brute force."""
    rng = np.random.default_rng(seed)
    ws, bs, d = [], [], n_in
    for w in widths + [1]:
        ws.append(rng.integers(-2, 3, size=(w, d)).astype(float))
        bs.append(rng.integers(-2, 3, size=w) / 2)
        d = w
    acts = [act] * len(widths) + [last_act]
    net = rg.Network.from_arrays(ws, bs, [rg.hardtanh if a == "hardtanh" else a for a in acts])
    x = rng.integers(-2, 3, size=(12, n_in)).astype(float)
    noise = rng.integers(-2, 3, size=(3, net.n_neurons)) / 2
    pk = Packed(net)
    _, (good, _) = theorem2_block(pk, x, noise, dict(sigma=0.5, good=True, rho=True), return_good=True)
    good = good.reshape(3, 12, net.n_neurons, pk.kmax)
    for s in range(3):
        for p in range(12):
            ref = brute_good(net, noise[s], x[p])
            np.testing.assert_array_equal(good[s, p, :, : ref.shape[1]], ref)


def test_screen_decides_and_defers_both_ways():
    """On the networks above, the screen proves some indicators good, some not
    good, and leaves some to the recomputation (so every path is exercised)."""
    seen = set()
    for name in ["bottleneck-1", "1d-width-1", "zero-weights"]:
        net = BRUTE_NETS[name]()
        pk = Packed(net)
        rng = np.random.default_rng(3)
        x = rng.uniform(-1.5, 1.5, size=(200, net.n_in))
        noise = rng.normal(0, 0.4, size=(2, net.n_neurons))
        _, (g, n_und) = theorem2_block(pk, x, noise, dict(sigma=0.4, good=True, rho=True), return_good=True)
        _, (g0, _) = theorem2_block(pk, x, noise, dict(sigma=0.4, good=True, rho=True), return_good=True,
                                     screen=False)  # fmt: skip
        np.testing.assert_array_equal(g, g0)
        seen |= {"good"} if (g == 1).any() else set()
        seen |= {"not good"} if (g[..., 0] == 0).any() else set()
        seen |= {"deferred"} if n_und else set()
    assert seen == {"good", "not good", "deferred"}


@pytest.mark.parametrize("good, rho", [(False, True), (True, False), (False, False)])
def test_variants_match_brute_force(good, rho):
    net = BRUTE_NETS["bottleneck-1"]()
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, size=(20, 2))
    noise = rng.normal(0, 0.3, size=(3, net.n_neurons))
    f, _ = theorem2_block(Packed(net), x, noise, dict(sigma=0.3, good=good, rho=rho))
    ref = [brute_f(net, noise[s], x[p], 0.3, good=good, rho=rho) for s in range(3) for p in range(20)]
    np.testing.assert_allclose(f, ref, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", ["mixed-acts", "zero-weights", "abs-pl-last-relu", "linear-middle"])
@pytest.mark.parametrize("good, rho", [(True, True), (False, True), (True, False)])
def test_by_layer_matches_brute_force(name, good, rho):
    """Each layer's share equals the brute-force sum over its neurons, and
    the shares add up to the total (which by_layer leaves bit for bit)."""
    net = BRUTE_NETS[name]()
    rng = np.random.default_rng(8)
    x = rng.uniform(-1.2, 1.2, size=(25, net.n_in))
    noise = rng.normal(0, 0.4, size=(3, net.n_neurons))
    opts = dict(sigma=0.4, good=good, rho=rho)
    shares, _ = theorem2_block(Packed(net), x, noise, dict(opts, by_layer=True))
    assert shares.shape == (3 * 25, net.n_layers)
    ref = [
        brute_f(net, noise[s], x[p], 0.4, good=good, rho=rho, by_layer=True)
        for s in range(3)
        for p in range(25)
    ]
    np.testing.assert_allclose(shares, ref, rtol=1e-7, atol=1e-9)
    total, _ = theorem2_block(Packed(net), x, noise, opts)
    np.testing.assert_allclose(shares.sum(axis=1), total, rtol=1e-13, atol=1e-300)
    unactivated = [ly for ly, a in enumerate(net.activations) if a is None]
    assert np.all(shares[:, unactivated] == 0.0)


def test_lc_density_by_layer():
    """The public option: (P, L) mean and stderr whose sum over layers is the
    total; the total itself unchanged."""
    net = rand_net([6, 5, 4], ["relu", rg.Activation.hardtanh(-0.5, 0.5), "abs"], seed=30)
    x = np.random.default_rng(2).uniform(-1, 1, size=(300, 2))
    kw = dict(sigma=0.3, n_samples=4, rng=5, progress=False)
    est = lc_density(net, x, by_layer=True, **kw)
    total = lc_density(net, x, **kw)
    assert est.by_layer and not total.by_layer
    assert est.mean.shape == est.stderr.shape == (300, net.n_layers)
    np.testing.assert_allclose(est.mean.sum(axis=1), total.mean, rtol=1e-13)
    assert np.all(est.mean[:, -1] == 0.0) and np.all(est.mean >= 0.0)
    assert np.all(est.mean[:, :3].sum(axis=0) > 0.0)  # every activated layer contributes


def test_unresolved_negligible_terms_change_nothing():
    """Undecided terms below half an ulp of f are left unresolved: f agrees with
    the fully resolved sum to rounding."""
    net = rand_net([32, 32, 32], ["relu"] * 3, seed=12, scale=2.0)
    pk = Packed(net)
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(500, 2))
    noise = rng.normal(0, 0.05, size=(2, net.n_neurons))
    opts = dict(sigma=0.05, good=True, rho=True)
    fast, _ = theorem2_block(pk, x, noise, opts)
    full, _ = theorem2_block(pk, x, noise, opts, return_good=True)
    np.testing.assert_allclose(fast, full, rtol=1e-14, atol=0)


# ----------------------------------------------------------------------------
# closed forms
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("w, b", [(2.0, -1.0), (-1.5, 0.4), (0.7, 0.0), (-3.0, -2.0)])
@pytest.mark.parametrize("sigma", [0.1, 0.6])
def test_single_neuron_1d_is_exact(w, b, sigma):
    x = np.linspace(-3, 3, 121)
    est = lc_density(neuron_net(w, b), x, sigma=sigma, n_samples=3, rng=0, progress=False)
    exact = cf.single_neuron_density(x, w=w, beta=-b, sigma=sigma)  # paper convention: beta = -b
    np.testing.assert_allclose(est.mean, exact, rtol=1e-12, atol=1e-300)
    # no noise upstream: every sample gives the same value (up to the rounding of the mean)
    assert np.all(est.stderr <= 1e-14 * est.mean)


def test_single_neuron_2d_is_exact():
    w, b, sigma = np.array([1.2, -0.7]), 0.3, 0.25
    x = np.random.default_rng(1).uniform(-1, 1, size=(200, 2))
    est = lc_density(neuron_net(w, b, v=-2.0), x, sigma=sigma, n_samples=2, rng=0)
    np.testing.assert_allclose(
        est.mean, cf.single_neuron_density_nd(x, w=w, beta=-b, sigma=sigma), rtol=1e-12
    )


CHAIN_PARAMS = [  # (w1, w2, beta1, beta2, sigma): both signs, biases on both sides
    (1.5, -0.8, 0.3, -0.2, 0.4),
    (-2.0, 1.3, -0.5, 0.25, 0.3),
    (0.8, 2.0, 0.0, 0.6, 0.5),
    (-1.0, -1.7, 0.4, -0.5, 0.35),
]


@pytest.mark.parametrize("w1, w2, beta1, beta2, sigma", CHAIN_PARAMS)
def test_chain_neuron1_is_good_iff_b2_below_zero(w1, w2, beta1, beta2, sigma):
    """At neuron 1's breakpoint its output is 0, so it is good iff neuron 2 is
    open there: iff b2 < 0, whatever the sampled pass says (Appendix A.2).
    The naive indicator (neuron 2 open in the sampled pass) differs."""
    net = chain_net(w1, w2, beta1, beta2)
    rng = np.random.default_rng(2)
    x = np.concatenate([beta1 / w1 + np.linspace(-3, 3, 61) * sigma / abs(w1), [beta1 / w1]])
    noise = rng.normal(0, sigma, size=(50, 2))
    _, (good, _) = theorem2_block(Packed(net), x[:, None], noise, dict(sigma=sigma, good=True, rho=True),
                                   return_good=True)  # fmt: skip
    good = good.reshape(50, x.size, 2)
    # the paper's noisy biases: the noise is added to the torch bias -beta
    b1, b2 = beta1 - noise[:, 0], beta2 - noise[:, 1]
    np.testing.assert_array_equal(good[:, :, 0], np.broadcast_to((b2 < 0)[:, None], (50, x.size)))
    assert np.all(good[:, :, 1] == 1)  # the last layer's neuron is always good
    h1 = np.maximum(w1 * x[None, :] - b1[:, None], 0)
    naive = w2 * h1 - b2[:, None] > 0
    assert np.any(naive != good[:, :, 0].astype(bool))


@pytest.mark.parametrize("w1, w2, beta1, beta2, sigma", CHAIN_PARAMS)
def test_chain_theorem2_matches_closed_form(w1, w2, beta1, beta2, sigma):
    # points where both terms are well sampled: w1 x - beta1 >= -2 sigma
    a = np.linspace(-2.0, 3.0, 26) * sigma
    x = (a + beta1) / w1
    est = lc_density(chain_net(w1, w2, beta1, beta2), x, sigma=sigma, n_samples=20000, rng=7, progress=False)
    z = zscores(est, cf.two_layer_chain_density(x, w1=w1, w2=w2, beta1=beta1, beta2=beta2, sigma=sigma))
    assert np.all(np.abs(z) < Z_MAX), z


@pytest.mark.slow
@pytest.mark.parametrize("w1, w2, beta1, beta2, sigma", CHAIN_PARAMS[:2])
def test_chain_definition_matches_closed_form_at_finite_eps(w1, w2, beta1, beta2, sigma):
    """In 1D E[count in [x - eps, x + eps]] / (2 eps) is exact at finite eps."""
    eps = 0.1
    x = (np.linspace(-1.5, 2.0, 8) * sigma + beta1) / w1
    n = 3000
    est = lc_density(chain_net(w1, w2, beta1, beta2), x, sigma=sigma, n_samples=n, method="definition",
                     eps=eps, rng=3, progress=False)  # fmt: skip
    count = np.array(
        [
            cf.two_layer_chain_expected_count(
                w1=w1, w2=w2, beta1=beta1, beta2=beta2, sigma=sigma, lo=c - eps, hi=c + eps
            )
            for c in x
        ]
    )
    assert np.all(n * count >= 30)  # enough hits for the sample standard error to be trusted
    z = zscores(est, count / (2 * eps))
    assert np.all(np.abs(z) < Z_MAX), z


def test_single_neuron_definition_small_eps_meets_theorem2():
    """One breakpoint: the count in the ball is Bernoulli(p), p = 2 eps f_eps(x),
    so the z-score uses the exact binomial standard error."""
    w, b, sigma, eps, n = -1.3, 0.2, 0.3, 0.02, 4000
    net = neuron_net(w, b)
    x = -b / w + np.linspace(-1.5, 1.5, 9) * sigma / abs(w)  # where n p >= 30
    est = lc_density(net, x, sigma=sigma, n_samples=n, method="definition", eps=eps, rng=4, progress=False)
    p = np.array(
        [cf.single_neuron_expected_count(w=w, beta=-b, sigma=sigma, lo=c - eps, hi=c + eps) for c in x]
    )
    assert np.all(n * p >= 30)
    exact = p / (2 * eps)
    z = (est.mean - exact) / (np.sqrt(p * (1 - p) / n) / (2 * eps))
    assert np.all(np.abs(z) < Z_MAX), z
    # and the finite-eps exact value is the theorem2 value to O(eps^2)
    t2 = lc_density(net, x, sigma=sigma, n_samples=2, rng=0).mean
    np.testing.assert_allclose(exact, t2, rtol=(eps * w / sigma) ** 2)


def test_one_layer_2d_definition_matches_finite_eps_closed_form():
    rng = np.random.default_rng(8)
    W, beta, sigma, eps = rng.normal(size=(5, 2)), rng.normal(size=5) * 0.3, 0.3, 0.25
    net = rg.Network.from_arrays([W, [[1.0, -0.5, 0.8, 1.1, -0.9]]], [-beta, [0.0]], ["relu", None])
    x = rng.uniform(-0.6, 0.6, size=(6, 2))
    est = lc_density(net, x, sigma=sigma, n_samples=600, method="definition", eps=eps, rng=9, progress=False)
    z = zscores(est, cf.one_layer_2d_density_eps(x, W=W, beta=beta, sigma=sigma, eps=eps))
    assert np.all(np.abs(z) < Z_MAX), z
    # theorem2 is the eps -> 0 limit, exact for one layer with a nonzero read-out
    t2 = lc_density(net, x, sigma=sigma, n_samples=2, rng=0).mean
    np.testing.assert_allclose(t2, cf.one_layer_2d_density(x, W=W, beta=beta, sigma=sigma), rtol=1e-12)


@pytest.mark.slow
def test_definition_tends_to_theorem2_on_three_layers():
    """z-scores of definition - theorem2 at shrinking eps (three hidden layers, 2D)."""
    net = rand_net([6, 5, 4], ["relu"] * 3, seed=13, scale=1.5)
    x = np.array([[0.1, -0.2], [0.3, 0.25], [-0.35, 0.05]])
    sigma = 0.25
    t2 = lc_density(net, x, sigma=sigma, n_samples=20000, rng=1, progress=False)
    for i, eps in enumerate([0.1, 0.05, 0.025]):
        d = lc_density(
            net, x, sigma=sigma, n_samples=1500, method="definition", eps=eps, rng=20 + i, progress=False
        )
        z = (d.mean - t2.mean) / np.hypot(d.stderr, t2.stderr)
        assert np.all(np.abs(z) < Z_MAX), (eps, z)


# ----------------------------------------------------------------------------
# integral of f = expected number of breakpoints
# ----------------------------------------------------------------------------
def test_chain_integral_of_f_is_expected_count():
    w1, w2, beta1, beta2, sigma = CHAIN_PARAMS[0]
    lo, hi, n = -0.5, 1.2, 4000
    x = lo + (np.arange(n) + 0.5) * (hi - lo) / n  # midpoint rule
    lc = local_complexity(
        chain_net(w1, w2, beta1, beta2), x, sigma=sigma, n_samples=400, rng=5, progress=False
    )
    exact = cf.two_layer_chain_expected_count(
        w1=w1, w2=w2, beta1=beta1, beta2=beta2, sigma=sigma, lo=lo, hi=hi
    )
    assert abs(lc.mean * (hi - lo) - exact) < Z_MAX * lc.stderr * (hi - lo)


@pytest.mark.slow
def test_integral_of_f_is_mean_locus_count_deep_1d():
    """A three-layer 1D network: int f over [lo, hi] (theorem2, midpoint rule)
    against a direct count of the noisy networks' locus points."""
    net = rand_net([6, 5, 4], ["relu"] * 3, n_in=1, seed=14, scale=1.5)
    lo, hi, sigma, n = -1.0, 1.0, 0.3, 2000
    x = lo + (np.arange(n) + 0.5) * (hi - lo) / n
    lc = local_complexity(net, x, sigma=sigma, n_samples=300, rng=6, progress=False)
    rng = np.random.default_rng(7)
    counts = []
    for _ in range(600):
        noisy = net.with_biases(_noisy_biases(net, rng.normal(0, sigma, net.n_neurons)))
        counts.append(rg.nonlinear_locus(rg.activation_regions(noisy, (lo, hi))).volume())
    counts = np.array(counts, float)
    diff = lc.mean * (hi - lo) - counts.mean()
    se = np.hypot(lc.stderr * (hi - lo), counts.std(ddof=1) / np.sqrt(counts.size))
    assert abs(diff) < Z_MAX * se, (lc.mean * (hi - lo), counts.mean(), se)


def test_local_complexity_single_neuron_uniform():
    w, b, sigma, lo, hi, n = 1.7, -0.3, 0.2, -1.0, 2.0, 30000
    x = lo + (np.arange(n) + 0.5) * (hi - lo) / n
    lc = local_complexity(neuron_net(w, b), x, sigma=sigma, n_samples=2, rng=0)
    assert isinstance(lc.mean, float) and lc.stderr <= 1e-14 * lc.mean
    assert lc.mean == pytest.approx(
        cf.single_neuron_lc_uniform(w=w, beta=-b, sigma=sigma, lo=lo, hi=hi), rel=1e-6
    )


# ----------------------------------------------------------------------------
# the estimator's plumbing
# ----------------------------------------------------------------------------
def test_estimate_fields_and_shapes():
    net = rand_net([4, 4], ["relu"] * 2, seed=15)
    x = np.zeros((3, 2))
    est = lc_density(net, x, sigma=0.2, n_samples=5, rng=0)
    assert isinstance(est, Estimate)
    assert est.mean.shape == est.stderr.shape == (3,)
    assert (est.n_samples, est.method, est.sigma, est.eps, est.good, est.rho) == (
        5,
        "theorem2",
        0.2,
        None,
        True,
        True,
    )
    d = lc_density(net, x, sigma=0.2, n_samples=2, method="definition", eps=0.1, rng=0)
    assert (d.method, d.eps) == ("definition", 0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.mean = 0


def test_upper_bound_and_no_neurons():
    net = BRUTE_NETS["bottleneck-1"]()
    x = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    f = lc_density(net, x, sigma=0.3, n_samples=8, rng=1).mean
    upper = lc_density(net, x, sigma=0.3, n_samples=8, rng=1, good=False).mean
    assert np.all(upper >= f) and np.any(upper > f)
    linear = rg.Network.from_arrays([[[1.0, 2.0]]], [[0.5]], [None])
    assert np.all(lc_density(linear, x, sigma=0.3, n_samples=2).mean == 0)


@pytest.mark.parametrize("method, eps", [("theorem2", None), ("definition", 0.2)])
def test_reproducible_from_rng(method, eps):
    net = rand_net([5, 5], ["relu"] * 2, seed=16)
    x = np.random.default_rng(0).uniform(-1, 1, (20, 2))
    kw = dict(sigma=0.3, n_samples=4, method=method, eps=eps, progress=False)
    a = lc_density(net, x, rng=42, **kw)
    b = lc_density(net, x, rng=np.random.default_rng(42), **kw)
    c = lc_density(net, x, rng=43, **kw)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.stderr, b.stderr)
    assert not np.array_equal(a.mean, c.mean)


def test_chunking_does_not_change_the_result():
    net = rand_net([5, 5], ["relu"] * 2, seed=16)
    x = np.random.default_rng(0).uniform(-1, 1, (37, 2))
    a = lc_density(net, x, sigma=0.3, n_samples=6, rng=1, batch_size=4096)
    b = lc_density(net, x, sigma=0.3, n_samples=6, rng=1, batch_size=10)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-13)


@pytest.mark.slow
@pytest.mark.parametrize("method, eps", [("theorem2", None), ("definition", 0.2)])
def test_n_jobs_gives_the_same_result(method, eps):
    net = rand_net([5, 5], ["relu"] * 2, seed=17)
    x = np.random.default_rng(0).uniform(-1, 1, (30, 2))
    kw = dict(sigma=0.3, n_samples=4, method=method, eps=eps, rng=3, progress=False, batch_size=30)
    a = lc_density(net, x, n_jobs=1, **kw)
    b = lc_density(net, x, n_jobs=2, **kw)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.stderr, b.stderr)


def test_no_global_numba_state_changed():
    """Importing the package and running theorem2 leave numba's threading
    layer and thread count alone (theorem2 runs on plain Python threads)."""
    code = textwrap.dedent(
        """
        import numba
        layer, threads = numba.config.THREADING_LAYER, numba.config.NUMBA_NUM_THREADS
        import regiongeom as rg
        assert numba.config.THREADING_LAYER == layer
        net = rg.Network.from_arrays([[[1.0, -1.0], [0.5, 2.0]], [[1.0, 1.0]]], [[0.0, 0.1], [0.0]], ["relu", None])
        rg.lc_density(net, [[0.1, 0.2], [0.3, 0.4]], sigma=0.5, n_samples=2, rng=0, progress=False)
        assert numba.config.THREADING_LAYER == layer and numba.config.NUMBA_NUM_THREADS == threads
        try:
            numba.threading_layer()
        except ValueError:  # numba's threads were never launched
            print("untouched")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["untouched"]


def test_progress_bar_on_and_off(capsys):
    net = neuron_net(1.0, 0.0)
    lc_density(net, [0.0, 1.0], sigma=0.5, n_samples=3, progress=False)
    assert capsys.readouterr().err == ""
    lc_density(net, [0.0, 1.0], sigma=0.5, n_samples=3, progress=True)
    assert "sample" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sigma=0.0), "sigma"),
        (dict(sigma=-1.0), "sigma"),
        (dict(sigma=float("nan")), "sigma"),
        (dict(sigma=0.1, n_samples=1), "n_samples"),
        (dict(sigma=0.1, n_samples=2.5), "n_samples"),
        (dict(sigma=0.1, method="exact"), "unknown method.*theorem2.*definition"),
        (dict(sigma=0.1, method="definition"), "eps"),
        (dict(sigma=0.1, method="definition", eps=0.0), "eps"),
        (dict(sigma=0.1, method="definition", eps=0.1, good=False), "method='theorem2' only"),
        (
            dict(sigma=0.1, method="definition", eps=0.1, by_layer=True),
            "by_layer=True apply to method='theorem2'",
        ),
        (dict(sigma=0.1, by_layer=1), "by_layer must be True or False"),
        (dict(sigma=0.1, eps=0.1), "eps is only used by method='definition'"),
        (dict(sigma=0.1, good="yes"), "good"),
        (dict(sigma=0.1, n_jobs=0), "n_jobs"),
        (dict(sigma=0.1, batch_size=0), "batch_size"),
        (dict(sigma=0.1, progress="auto"), "progress"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    net = rand_net([3], ["relu"], seed=0)
    with pytest.raises(ValueError, match=match):
        lc_density(net, np.zeros((2, 2)), **kwargs)


def test_bad_points_and_networks_raise():
    net = rand_net([3], ["relu"], seed=0)
    with pytest.raises(ValueError, match=r"points must have shape \(P, 2\)"):
        lc_density(net, np.zeros((4, 3)), sigma=0.1)
    with pytest.raises(ValueError, match="NaN or inf"):
        lc_density(net, [[0.0, np.nan]], sigma=0.1)
    with pytest.raises(ValueError, match="data"):
        local_complexity(net, np.zeros((4, 1)), sigma=0.1)
    with pytest.raises(ValueError, match="empty"):
        lc_density(net, np.zeros((0, 2)), sigma=0.1)
    with pytest.raises(TypeError, match="rg.Network"):
        lc_density("net", np.zeros((2, 2)), sigma=0.1)
    with pytest.raises(TypeError, match="rng"):
        lc_density(net, np.zeros((2, 2)), sigma=0.1, rng="seed")
    net3 = rand_net([3], ["relu"], n_in=3, seed=0)
    with pytest.raises(ValueError, match="1 or 2 inputs"):
        lc_density(net3, np.zeros((2, 3)), sigma=0.1, method="definition", eps=0.1)
    assert lc_density(net3, np.zeros((2, 3)), sigma=0.1, n_samples=2).mean.shape == (2,)  # theorem2: any n_in


# ----------------------------------------------------------------------------
# the good indicator decides zero weights exactly: 0 cuts a path, 1e-300 does not
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("w", [0.0, 1e-300])
def test_zero_and_tiny_read_out_one_layer(w):
    """One layer read out by ``[1, w]``: neuron 1 is good iff ``w != 0``, next
    to a read-out weight of 1 (theorem2 exactly; the definition route, whose
    locus is decided exactly, by z-score against the finite-eps closed form)."""
    W, beta, sigma, eps = np.array([[1.0, 0.5], [-0.3, 1.0]]), np.array([0.1, -0.2]), 0.3, 0.25
    net = rg.Network.from_arrays([W, [[1.0, w]]], [-beta, [0.0]], ["relu", None])
    rows = slice(None) if w else slice(0, 1)
    x = np.random.default_rng(2).uniform(-0.5, 0.5, size=(6, 2))
    t2 = lc_density(net, x, sigma=sigma, n_samples=2, rng=0, progress=False).mean
    np.testing.assert_allclose(
        t2, cf.one_layer_2d_density(x, W=W[rows], beta=beta[rows], sigma=sigma), rtol=1e-12
    )
    est = lc_density(net, x, sigma=sigma, n_samples=600, method="definition", eps=eps, rng=9, progress=False)
    z = zscores(est, cf.one_layer_2d_density_eps(x, W=W[rows], beta=beta[rows], sigma=sigma, eps=eps))
    assert np.all(np.abs(z) < Z_MAX), z


@pytest.mark.parametrize("w", [0.0, 1e-300])
def test_zero_and_tiny_weights_into_a_later_layer(w):
    """Neuron 1 of the first layer reaches the second layer through weights
    ``w``: never good with 0; with 1e-300 good whenever a second-layer neuron
    is open (the brute force, term by term); the indicators differ."""
    net = rg.Network.from_arrays(
        [np.eye(2), [[1.0, w], [-1.0, w]], [[1.0, 1.0]]],
        [[0.0, 0.0], [0.5, 0.5], [0.0]],
        ["relu", "relu", None],
    )
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=(40, 2))
    noise = rng.normal(0, 0.3, size=(3, net.n_neurons))
    for screen in (True, False):
        f, (good, _) = theorem2_block(Packed(net), x, noise, dict(sigma=0.3, good=True, rho=True),
                                      screen=screen, return_good=True)  # fmt: skip
        good = good.reshape(3, 40, net.n_neurons, -1)
        for s in range(3):
            for p in range(40):
                np.testing.assert_array_equal(good[s, p, :, :1], brute_good(net, noise[s], x[p]))
        assert good[:, :, 1, 0].any() == (w != 0) and good[:, :, 0, 0].all()
        ref = [brute_f(net, noise[s], x[p], 0.3) for s in range(3) for p in range(40)]
        np.testing.assert_allclose(f, ref, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_good_indicator_with_tiny_and_zero_columns(seed):
    """Random nets with some neurons' outgoing columns set to 0 and others to
    1e-300 (and their scale mixed with 1e6): the indicator equals the brute
    force with the screen and without; tiny columns keep paths."""
    net = rand_net([4, 4, 3], ["relu", rg.leaky_relu, "relu"], seed=30 + seed)
    rng = np.random.default_rng(seed)
    ws = [np.array(w) for w in net.weights]
    for i in (1, 2):
        cols = rng.permutation(ws[i].shape[1])
        ws[i][:, cols[0]] = 0.0
        ws[i][:, cols[1]] *= 1e-300
        ws[i][:, cols[2]] *= 1e6
    net = rg.Network.from_arrays(ws, net.biases, net.activations)
    x = rng.uniform(-1.5, 1.5, size=(25, 2))
    noise = rng.normal(0, 0.4, size=(3, net.n_neurons))
    pk = Packed(net)
    for screen in (True, False):
        _, (good, _) = theorem2_block(pk, x, noise, dict(sigma=0.4, good=True, rho=True),
                                      screen=screen, return_good=True)  # fmt: skip
        good = good.reshape(3, 25, net.n_neurons, pk.kmax)
        for s in range(3):
            for p in range(25):
                ref = brute_good(net, noise[s], x[p])
                np.testing.assert_array_equal(good[s, p, :, : ref.shape[1]], ref)
