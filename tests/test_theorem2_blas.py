"""Theorem 2 with many inputs: gradients as Jacobian rows by BLAS products
(``Net.blas``) and the dense recomputation of undecided terms in batches
(``_fallback_dense``), against the scalar kernels and the brute force."""

from __future__ import annotations

import numpy as np
import pytest
from test_complexity import BRUTE_NETS, brute_f, brute_good, rand_net

import regiongeom as rg
from regiongeom import _theorem2
from regiongeom._theorem2 import Packed, first_factor, theorem2_block


def packed(net, *, blas):
    """``Packed(net)`` with the BLAS path forced on or off."""
    saved = _theorem2.BLAS_MIN_INPUTS
    _theorem2.BLAS_MIN_INPUTS = 1 if blas else 10**9
    try:
        pk = Packed(net)
    finally:
        _theorem2.BLAS_MIN_INPUTS = saved
    assert pk.blas == blas
    return pk


@pytest.mark.parametrize("name", list(BRUTE_NETS))
@pytest.mark.parametrize("screen", [True, False])
def test_blas_path_indicator_is_the_theorems(name, screen):
    """Forced onto the BLAS path, every indicator equals the brute force and
    the scalar path's, and f equals the scalar path's to rounding."""
    net = BRUTE_NETS[name]()
    rng = np.random.default_rng(11)
    sigma, S, P = 0.4, 4, 30
    x = rng.uniform(-1.5, 1.5, size=(P, net.n_in))
    noise = rng.normal(0, sigma, size=(S, net.n_neurons))
    opts = dict(sigma=sigma, good=True, rho=True)
    pk = packed(net, blas=True)
    f, (good, n_undecided) = theorem2_block(pk, x, noise, opts, screen=screen, return_good=True)
    f0, (good0, _) = theorem2_block(packed(net, blas=False), x, noise, opts, screen=screen, return_good=True)
    np.testing.assert_array_equal(good, good0)
    np.testing.assert_allclose(f, f0, rtol=1e-12, atol=1e-300)
    good = good.reshape(S, P, net.n_neurons, pk.kmax)
    for s in range(S):
        for p in range(P):
            ref = brute_good(net, noise[s], x[p])
            np.testing.assert_array_equal(good[s, p, :, : ref.shape[1]], ref, err_msg=f"sample {s} point {p}")
    assert n_undecided == (S * P * pk.n_terms if not screen else n_undecided)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("acts", [["relu"] * 3, [rg.leaky_relu, "abs", "relu"], ["relu", rg.hardtanh, None]])
def test_many_inputs_match_scalar_path(seed, acts):
    """40 inputs into 12 neurons (the QR factor of the first layer): f, its
    layer shares and every indicator as on the scalar path, all terms
    recomputed too (screen off), and f against finite differences."""
    net = rand_net([12, 10, 9], acts, n_in=40, seed=seed, last_act="relu" if acts[-1] is None else None)
    rng = np.random.default_rng(seed + 5)
    x = rng.uniform(-1, 1, size=(25, 40))
    noise = rng.normal(0, 0.5, size=(3, net.n_neurons))
    pk, pk0 = packed(net, blas=True), packed(net, blas=False)
    assert pk.first_t.shape == (12, 12)
    for screen in (True, False):
        for by_layer in (False, True):
            opts = dict(sigma=0.5, good=True, rho=True, by_layer=by_layer)
            f, (g, _) = theorem2_block(pk, x, noise, opts, screen=screen, return_good=True)
            f0, (g0, _) = theorem2_block(pk0, x, noise, opts, screen=screen, return_good=True)
            np.testing.assert_array_equal(g, g0)
            np.testing.assert_allclose(f, f0, rtol=1e-12, atol=1e-300)
    f, _ = theorem2_block(pk, x, noise, dict(sigma=0.5, good=True, rho=True))
    ref = [brute_f(net, noise[s], x[p], 0.5) for s in range(3) for p in range(25)]
    np.testing.assert_allclose(f, ref, rtol=1e-6, atol=1e-9)


def test_wide_layer_recomputed_in_groups():
    """A 300-neuron layer, every term recomputed (screen off): more terms
    than one group of _fallback_dense; indicators as on the scalar path."""
    net = rand_net([300, 6, 5], ["relu"] * 3, n_in=20, seed=4)
    rng = np.random.default_rng(4)
    x, noise = rng.uniform(-1, 1, size=(6, 20)), rng.normal(0, 0.5, size=(2, net.n_neurons))
    opts = dict(sigma=0.5, good=True, rho=True)
    pk = Packed(net)
    assert pk.blas and pk.kernel_net.dense and pk.n_terms > 256
    f, (g, n) = theorem2_block(pk, x, noise, opts, screen=False, return_good=True)
    f0, (g0, _) = theorem2_block(packed(net, blas=False), x, noise, opts, screen=False, return_good=True)
    assert n == 12 * pk.n_terms
    np.testing.assert_array_equal(g, g0)
    np.testing.assert_allclose(f, f0, rtol=1e-12, atol=1e-300)
    assert 0 < g.sum() < g.size  # both answers occur


@pytest.mark.parametrize("shape", [(5, 40), (12, 12), (12, 3)])
def test_first_factor(shape):
    """F F^T = W W^T with min(m, d) columns; the norms are W's row norms."""
    w = np.random.default_rng(0).normal(size=shape)
    F, norms = first_factor(w)
    assert F.shape == (shape[0], min(shape))
    np.testing.assert_allclose(F @ F.T, w @ w.T, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(norms, np.linalg.norm(w, axis=1), rtol=1e-15)


def test_lc_density_many_inputs_same_as_scalar(monkeypatch):
    """The public function: the same mean and stderr on both paths."""
    net = rand_net([16, 16, 16], ["relu"] * 3, n_in=64, seed=3)
    x = np.random.default_rng(1).random((40, 64))
    kw = dict(sigma=0.3, n_samples=4, rng=0, progress=False)
    est = rg.lc_density(net, x, **kw)
    monkeypatch.setattr(_theorem2, "BLAS_MIN_INPUTS", 10**9)
    ref = rg.lc_density(net, x, **kw)
    np.testing.assert_allclose(est.mean, ref.mean, rtol=1e-12)
    np.testing.assert_allclose(est.stderr, ref.stderr, rtol=1e-9, atol=1e-12 * ref.mean.max())
