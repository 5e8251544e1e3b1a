"""The bounds hold on random and trained networks; the pieces they are built
from agree with the library's own local complexity; the paper's printed
forms fail where the derivation says they can."""

from __future__ import annotations

import numpy as np
import pytest
from common import ACTIVATIONS, random_net

import regiongeom as rg
from regiongeom import bounds as bd

CASES = [  # (widths, n_in, n_out, activation, sigma)
    ([8, 8], 2, 1, "relu", 0.3),
    ([12, 6, 12], 5, 2, "relu", 1.0),
    ([10, 10, 10], 3, 3, "leaky_relu", 0.5),
    ([6, 6], 4, 1, "hardtanh", 0.2),
    ([7, 5], 1, 2, "abs", 0.8),
]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{c[3]}-{len(c[0])}x" for c in CASES])
def test_every_bound_holds_on_random_networks(case, seed):
    widths, n_in, n_out, act, sigma = CASES[case]
    net = random_net(widths, n_in=n_in, n_out=n_out, activation=ACTIVATIONS[act], seed=seed, scale=1.5)
    x = np.random.default_rng(seed + 10).normal(size=(60, n_in))
    for eps in (0.05, 0.5):
        for b in bd.theorem5(net, x, sigma=sigma, eps=eps, eta=0.5 * sigma, n_samples=4, rng=seed):
            assert b.holds, b
    assert bd.corollary14(net, x, sigma=sigma, n_samples=4, rng=seed).holds
    for eta in (0.5 * sigma, sigma, 3 * sigma):
        b = bd.theorem7(net, x, sigma=sigma, eta=eta, n_samples=4, rng=seed)
        assert b.holds, b
    b = bd.representation_cost(net, x, sigma=sigma, n_samples=4, rng=seed)
    assert b.holds and b.rhs <= b.constants["rhs_theta"] * (1 + 1e-12), b


def test_pieces_match_the_local_complexity_without_good_and_rho():
    # G = E[sum_i K_i ||grad z_i||] is eq. (41): lc_density with good=False, rho=False
    # on the same noise; and C_bias G bounds LC (eq. 7), on the same samples
    net = random_net([9, 9], n_in=3, activation=ACTIVATIONS["hardtanh"], seed=4)
    x = np.random.default_rng(0).normal(size=(50, 3))
    st, _ = bd._stats(net, x, 0.4, 5, 7, 0.1, 1.0)
    g41 = rg.local_complexity(net, x, sigma=0.4, n_samples=5, rng=7, good=False, rho=False, progress=False)
    assert st.G.sum() == pytest.approx(g41.mean, rel=1e-10)
    assert st.lc <= bd.c_bias(0.4) * st.G.sum()
    np.testing.assert_allclose(st.lr, rg.local_rank(net, x, sigma=0.4, n_samples=5, rng=7))
    np.testing.assert_allclose(st.lr_eps, rg.local_rank(net, x, 0.1, sigma=0.4, n_samples=5, rng=7))
    assert st.tv == pytest.approx(rg.total_variation(net, x, sigma=0.4, n_samples=5, rng=7).mean, rel=1e-12)
    assert st.B == rg.not_good_count(net, x, sigma=0.4, n_samples=5, rng=7).mean


def test_lower_bound_of_corollary3_is_tight_enough_to_fail_with_a_bigger_window():
    # eq. (8) with the exact xi: c_eta G - xi is the density mass within eta;
    # it never exceeds LC + B C_grad C_bias (Theorem 7 uses it), and a
    # Theorem 7 left side that is positive shows the bound is not vacuous
    net = random_net([16, 16], n_in=2, seed=1, scale=0.5)
    x = np.random.default_rng(2).normal(size=(100, 2)) * 0.3
    b = bd.theorem7(net, x, sigma=1.0, eta=1.0, n_samples=4, rng=0)
    assert b.holds and b.lhs > 0, b
    assert b.constants["xi_eta"] <= b.constants["xi_markov"]


def test_paper_claim2_fails_and_the_corrected_bound_holds():
    # n_0 = 1 and 20 identical rows: sum_i ||grad z_i|| = sqrt(20) ||J||_F, so
    # the paper's (11) (constant n_0 = 1) fails, the sqrt(n_l) form holds
    w1 = np.ones((20, 1))
    net = rg.Network.from_arrays([w1, np.ones((1, 20))], [np.zeros(20), [0.0]], ["relu", None])
    x = np.zeros((1, 1))
    eq11, _ = bd.theorem5(net, x, sigma=1.0, eps=1e-3, n_samples=4, rng=0)
    assert eq11.holds
    assert eq11.lhs > eq11.constants["paper_rhs"]
    c14 = bd.corollary14(net, x, sigma=1.0, n_samples=4, rng=0)
    assert c14.holds and c14.lhs > c14.constants["paper_rhs"]


def test_paper_eq12_without_c_grad_fails():
    # one neuron with gradient 3 and eps = 2: rank_eps = 1, but the printed
    # right side is about G / eps^2 = 3/4 when eta is small (c_eta G ~ LC + xi)
    net = rg.Network.from_arrays([[[3.0]], [[1.0]]], [[0.0], [0.0]], ["relu", None])
    x = np.linspace(1e-4, 2e-3, 20)[:, None]  # every point within eta of the breakpoint
    _, eq12 = bd.theorem5(net, x, sigma=1.0, eps=2.0, eta=0.01, n_samples=4, rng=0)
    assert eq12.lhs == 1.0
    assert eq12.holds and eq12.lhs > eq12.constants["paper_rhs"], eq12


def test_c_bias_and_validation():
    assert bd.c_bias(2.0) == pytest.approx(1 / (np.sqrt(2 * np.pi) * 2))
    assert bd.c_bias(0.5, eta=0.5) == pytest.approx(bd.c_bias(0.5) * np.exp(-0.5))
    net = random_net([3], n_in=2)
    with pytest.raises(ValueError, match="sigma"):
        bd.theorem7(net, np.zeros((3, 2)), sigma=None)
    with pytest.raises(ValueError, match="eta"):
        bd.theorem7(net, np.zeros((3, 2)), sigma=1.0, eta=0.0)
    with pytest.raises(ValueError, match="eps"):
        bd.theorem5(net, np.zeros((3, 2)), sigma=1.0, eps=-1.0)


@pytest.mark.slow
def test_bounds_hold_on_a_trained_network():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: the intra-op pool only adds contention
    try:
        model, x = _train(torch)
    finally:
        torch.set_num_threads(threads)
    net = rg.from_torch(model)
    xs = x[:80]
    for sigma in (0.1, 1.0):
        for b in (*bd.theorem5(net, xs, sigma=sigma, eps=0.1, eta=sigma, n_samples=4, rng=1),
                  bd.corollary14(net, xs, sigma=sigma, n_samples=4, rng=1),
                  bd.theorem7(net, xs, sigma=sigma, eta=sigma, n_samples=4, rng=1),
                  bd.representation_cost(net, xs, sigma=sigma, n_samples=4, rng=1)):  # fmt: skip
            assert b.holds, b


def _train(torch):
    g = np.random.default_rng(0)
    x = g.normal(size=(256, 4))
    y = np.sin(x @ g.normal(size=(4, 2)))
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(),
        torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2),
    )  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    with torch.no_grad():
        loss0 = float(((model(xt) - yt) ** 2).mean())
    for _ in range(300):
        opt.zero_grad()
        loss = ((model(xt) - yt) ** 2).mean()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * loss0  # it did train
    return model, x
