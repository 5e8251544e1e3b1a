"""Local rank, total variation and the not-good count, each against an
independent computation: finite differences or autograd Jacobians, explicit
SVDs, exact rational ranks, exact 2D region sums, a brute-force good test."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from common import ACT_IDS, ACTIVATIONS, random_net

import regiongeom as rg


def fd_jacobians(net, x, h=1e-6):
    """(P, n_layers) list of per-layer pre-activation Jacobians by central
    differences (points away from the breakpoints)."""
    P, n = x.shape
    out = []
    for p in range(P):
        cols = []
        for k in range(n):
            e = np.zeros(n)
            e[k] = h
            _, up = net.forward(x[p : p + 1] + e)
            _, dn = net.forward(x[p : p + 1] - e)
            cols.append([(u - d)[0] / (2 * h) for u, d in zip(up, dn)])
        out.append([np.stack([c[layer] for c in cols], axis=1) for layer in range(net.n_layers)])
    return out


def hidden(net):
    return [i for i, a in enumerate(net.activations) if a is not None]


def far_from_breakpoints(net, x, margin=1e-4):
    _, pre = net.forward(x)
    ok = np.ones(len(x), bool)
    for v, a in zip(pre, net.activations):
        if a is not None:
            ok &= np.min(np.abs(v[:, :, None] - a.breakpoints[None, None]), axis=(1, 2)) > margin
    return x[ok]


@pytest.mark.parametrize("act", ACT_IDS)
@pytest.mark.parametrize("n_in", [1, 2, 5])
def test_local_rank_matches_finite_difference_svd(act, n_in):
    net = random_net([6, 4, 7], n_in=n_in, n_out=2, activation=ACTIVATIONS[act], seed=n_in)
    x = far_from_breakpoints(net, np.random.default_rng(1).normal(size=(40, n_in)))
    assert len(x) > 20
    jac = fd_jacobians(net, x)
    for eps in (None, 0.3):
        want = []
        for layer in hidden(net):
            ranks = []
            for p in range(len(x)):
                J = jac[p][layer]
                s = np.linalg.svd(J, compute_uv=False)
                # finite differences err by ~1e-9: a clean gap separates zero from nonzero
                ranks.append(np.count_nonzero(s > (1e-6 if eps is None else eps)))
            want.append(np.mean(ranks))
        np.testing.assert_array_equal(rg.local_rank(net, x, eps), want)


@pytest.mark.slow
def test_local_rank_against_torch_autograd():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 9), torch.nn.ReLU(), torch.nn.Linear(9, 3), torch.nn.ReLU(),
        torch.nn.Linear(3, 9), torch.nn.LeakyReLU(0.2), torch.nn.Linear(9, 2),
    ).double()  # fmt: skip
    net = rg.from_torch(model)
    x = np.random.default_rng(2).normal(size=(30, 4))
    want = [[], [], []]
    tot = []
    for p in range(len(x)):
        xt = torch.tensor(x[p])
        for j, k in enumerate((1, 3, 5)):
            J = torch.autograd.functional.jacobian(lambda v, k=k: model[:k](v), xt).numpy()
            want[j].append(np.linalg.matrix_rank(J))
        tot.append(np.linalg.norm(torch.autograd.functional.jacobian(model, xt).numpy()))
    np.testing.assert_array_equal(rg.local_rank(net, x), np.mean(want, axis=1))
    assert rg.total_variation(net, x).mean == pytest.approx(np.mean(tot), rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_bottleneck_gives_rank_at_most_two(seed):
    g = np.random.default_rng(seed)
    sizes = [6, 12, 2, 12, 12, 1]
    ws = [g.normal(size=(o, i)) * 3 for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [np.abs(g.normal(size=o)) + 2.0 for o in sizes[1:]]  # mostly open units
    net = rg.Network.from_arrays(ws, bs, ["relu"] * 4 + [None])
    x = g.normal(size=(100, 6))
    lr = rg.local_rank(net, x)
    assert lr[0] == 6.0  # 12 x 6 Gaussian rows, open: full rank
    assert np.all(lr[1:] <= 2.0)
    # generic weights: the rank after the bottleneck is its number of open units
    _, pre = net.forward(x)
    assert lr[2] == np.mean((pre[1] > 0).sum(axis=1)) and lr[2] > 0.5
    assert lr[3] <= lr[2]
    # the wide layers' computed Jacobians have 10 singular values of rounding size
    fwd_J = rg.measures._forward(net, x[:5], np.zeros(net.n_neurons))[3][2]
    s = np.linalg.svd(fwd_J, compute_uv=False)
    assert np.all(s[:, 2:] <= 1e-12 * s[:, :1])


def exact_rank(rows):
    """Rank of a rational matrix by fraction-exact Gaussian elimination."""
    m = [[Fraction(int(v)) for v in r] for r in rows]
    rank, cols = 0, len(m[0]) if m else 0
    for c in range(cols):
        piv = next((r for r in range(rank, len(m)) if m[r][c] != 0), None)
        if piv is None:
            continue
        m[rank], m[piv] = m[piv], m[rank]
        for r in range(len(m)):
            if r != rank and m[r][c] != 0:
                f = m[r][c] / m[rank][c]
                m[r] = [a - f * b for a, b in zip(m[r], m[rank])]
        rank += 1
    return rank


@pytest.mark.parametrize("seed", range(3))
def test_rank_of_integer_networks_is_exact(seed):
    # integer weights with built-in dependencies: duplicated and summed rows
    g = np.random.default_rng(seed)
    W1 = g.integers(-3, 4, size=(5, 7)).astype(float)
    W1 = np.vstack([W1, W1[0] + W1[1], 2 * W1[2]])  # rank <= 5
    W2 = g.integers(-3, 4, size=(4, 7)).astype(float)
    W2 = np.vstack([W2, W2[0] - W2[3], W2[1]])
    W3 = g.integers(-2, 3, size=(1, 6)).astype(float)
    net = rg.Network.from_arrays(
        [W1, W2, W3], [np.full(7, 0.5), np.full(6, 0.5), [0.0]], ["relu", "relu", None]
    )
    x = g.normal(size=(40, 7)) * 3  # only the patterns depend on x
    _, pre = net.forward(x)
    assert np.all(pre[0] != 0)
    want = [[], []]
    for p in range(len(x)):
        D1 = np.diag((pre[0][p] > 0).astype(float))
        J1, J2 = W1, W2 @ D1 @ W1
        want[0].append(exact_rank(J1))
        want[1].append(exact_rank(J2))
    np.testing.assert_array_equal(rg.local_rank(net, x), np.mean(want, axis=1))
    assert rg.local_rank(net, x)[0] <= 5


def test_local_rank_and_tv_with_noise_average_the_noisy_networks():
    net = random_net([5, 5], n_in=3, n_out=2, seed=3)
    x = np.random.default_rng(4).normal(size=(25, 3))
    sigma, S = 0.4, 6
    noise = np.random.default_rng(11).normal(0.0, sigma, size=(S, net.n_neurons))
    lrs, tvs = [], []
    for row in noise:
        offs = net.neuron_offsets
        bs = [b + row[offs[i] : offs[i + 1]] if a is not None else b
              for i, (b, a) in enumerate(zip(net.biases, net.activations))]  # fmt: skip
        noisy = net.with_biases(bs)
        lrs.append(rg.local_rank(noisy, x, eps=0.2))
        tvs.append(rg.total_variation(noisy, x).mean)
    np.testing.assert_allclose(
        rg.local_rank(net, x, 0.2, sigma=sigma, n_samples=S, rng=11), np.mean(lrs, axis=0)
    )
    est = rg.total_variation(net, x, sigma=sigma, n_samples=S, rng=11)
    assert est.mean == pytest.approx(np.mean(tvs), rel=1e-12)
    assert est.stderr == pytest.approx(np.std(tvs, ddof=1) / math.sqrt(S), rel=1e-9)
    assert est.n_samples == S and est.sigma == sigma


@pytest.mark.parametrize("act", ["relu", "abs", "pl3"])
def test_total_variation_matches_finite_differences(act):
    net = random_net([7, 7], n_in=3, n_out=3, activation=ACTIVATIONS[act], seed=5)
    x = far_from_breakpoints(net, np.random.default_rng(6).normal(size=(30, 3)))
    jac = fd_jacobians(net, x)
    want = np.mean([np.linalg.norm(j[-1]) for j in jac])
    est = rg.total_variation(net, x)
    assert est.mean == pytest.approx(want, rel=1e-7)
    assert est.stderr == 0.0


@pytest.mark.slow
def test_total_variation_in_2d_against_the_exact_region_sum():
    # E over uniform points of ||J(x)|| equals sum_r ||J_r|| area_r / area
    net = random_net([8, 8], n_in=2, n_out=2, seed=7)
    rm = rg.activation_regions(net, (-1.0, -1.0, 1.0, 1.0))
    norms = np.linalg.norm(rm.jacobians, axis=(1, 2))
    exact = float((norms * rm.measures).sum() / rm.measures.sum())
    x = np.random.default_rng(8).uniform(-1, 1, size=(20000, 2))
    per = norms[rm.locate(x)]  # each point's region's Jacobian norm
    est = rg.total_variation(net, x).mean
    assert est == pytest.approx(per.mean(), rel=1e-10)
    z = (est - exact) / (per.std(ddof=1) / math.sqrt(len(x)))
    assert abs(z) < 4, (est, exact, z)


def reference_not_good(net, x, row):
    """Brute force: for every neuron and breakpoint, put the neuron on it,
    recompute the later layers, search a path of nonzero weights and open
    neurons to the output."""
    offs = net.neuron_offsets
    bs = [b + row[offs[i] : offs[i + 1]] if a is not None else b
          for i, (b, a) in enumerate(zip(net.biases, net.activations))]  # fmt: skip
    count = 0
    for p in range(len(x)):
        hs, h = [], x[p]
        for w, b, a in zip(net.weights, bs, net.activations):
            h = w @ h + b if a is None else a(w @ h + b)
            hs.append(h)
        for ly in hidden(net):
            a = net.activations[ly]
            for j in range(net.weights[ly].shape[0]):
                for t in a.breakpoints:
                    h = hs[ly].copy()
                    h[j] = a(np.array([t]))[0]
                    opened = []
                    for m in range(ly + 1, net.n_layers):
                        v = net.weights[m] @ h + bs[m]
                        am = net.activations[m]
                        opened.append(np.ones(v.size, bool) if am is None else am.slopes[am.piece(v)] != 0)
                        h = v if am is None else am(v)
                    reach = opened[-1] if net.activations[-1] is not None else np.ones(net.n_out, bool)
                    for m in range(net.n_layers - 2, ly, -1):
                        reach = opened[m - ly - 1] & ((net.weights[m + 1] != 0).T @ reach)
                    good = (
                        bool(((net.weights[ly + 1][:, j] != 0) & reach).any())
                        if ly + 1 < net.n_layers
                        else True
                    )
                    count += not good
    return count / len(x)


@pytest.mark.parametrize("seed", range(3))
def test_not_good_count_against_brute_force(seed):
    g = np.random.default_rng(seed)
    sizes = [2, 4, 2, 2, 1]
    ws = [g.normal(size=(o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
    ws[2][0, 1] = 0.0  # a zero weight that cuts paths
    bs = [g.normal(size=o) - 0.7 for o in sizes[1:]]  # narrow, often closed layers
    net = rg.Network.from_arrays(ws, bs, ["relu", "relu", "relu", None])
    x = g.normal(size=(60, 2))
    est = rg.not_good_count(net, x)
    want = reference_not_good(net, x, np.zeros(net.n_neurons))
    assert est.mean == pytest.approx(want, abs=1e-12) and want > 0
    noise = np.random.default_rng(5).normal(0.0, 0.3, size=(4, net.n_neurons))
    est = rg.not_good_count(net, x, sigma=0.3, n_samples=4, rng=5)
    per = [reference_not_good(net, x, row) for row in noise]
    assert est.mean == pytest.approx(np.mean(per), abs=1e-12)
    assert est.stderr == pytest.approx(np.std(per, ddof=1) / 2, abs=1e-12)


def test_not_good_count_with_several_breakpoints_counts_terms():
    net = random_net([3, 2], n_in=2, activation=ACTIVATIONS["hardtanh"], seed=9)
    x = np.random.default_rng(9).normal(size=(30, 2)) * 3
    assert rg.not_good_count(net, x).mean == pytest.approx(reference_not_good(net, x, np.zeros(5)), abs=1e-12)


def test_bad_input_fails_early():
    net = random_net([3], n_in=2)
    with pytest.raises(ValueError, match="data"):
        rg.local_rank(net, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="eps"):
        rg.local_rank(net, np.zeros((4, 2)), eps=-1.0)
    with pytest.raises(ValueError, match="sigma"):
        rg.total_variation(net, np.zeros((4, 2)), sigma=0.0)
    with pytest.raises(TypeError, match="from_torch"):
        rg.not_good_count("net", np.zeros((4, 2)))
    with pytest.raises(ValueError, match="empty"):
        rg.total_variation(net, np.zeros((0, 2)))


@pytest.mark.slow
def test_n_jobs_gives_identical_results():
    pytest.importorskip("joblib")
    net = random_net([6, 6], n_in=3, n_out=2, seed=12)
    x = np.random.default_rng(3).normal(size=(30, 3))
    kw = dict(sigma=0.3, n_samples=4, rng=9)
    np.testing.assert_array_equal(rg.local_rank(net, x, **kw, n_jobs=2), rg.local_rank(net, x, **kw))
    assert rg.total_variation(net, x, **kw, n_jobs=2) == rg.total_variation(net, x, **kw)
    assert rg.not_good_count(net, x, **kw, n_jobs=2) == rg.not_good_count(net, x, **kw)
    with pytest.raises(ValueError, match="n_jobs"):
        rg.local_rank(net, x, n_jobs=0)


@pytest.mark.slow
def test_dask_cluster_backend_gives_identical_results():
    joblib = pytest.importorskip("joblib")
    distributed = pytest.importorskip("dask.distributed")
    from regiongeom import bounds as bd

    net = random_net([6, 6], n_in=3, n_out=2, seed=13)
    x = np.random.default_rng(4).normal(size=(30, 3))
    kw = dict(sigma=0.3, n_samples=4, rng=2)
    want = (rg.local_rank(net, x, 0.1, **kw), rg.total_variation(net, x, **kw), rg.not_good_count(net, x, **kw),
            bd.theorem7(net, x, **kw).lhs)  # fmt: skip
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cl:
        with distributed.Client(cl), joblib.parallel_config(backend="dask"):
            got = (rg.local_rank(net, x, 0.1, **kw, n_jobs=-1), rg.total_variation(net, x, **kw, n_jobs=-1),
                   rg.not_good_count(net, x, **kw, n_jobs=-1), bd.theorem7(net, x, **kw, n_jobs=-1).lhs)  # fmt: skip
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1:] == want[1:]


def test_docstring_examples():
    import doctest

    from regiongeom import bounds, measures

    for mod in (measures, bounds):
        result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0 and result.attempted > 0, mod.__name__
