"""The grid walk of Theorem 2 (regiongeom._theorem2_grid and its kernels) against the
per-point kernels (to 1e-12 relative at every pair) and, on small
networks, against the brute force of test_complexity (finite differences
and the good indicator recomputed layer by layer)."""

from __future__ import annotations

import numpy as np
import pytest
from common import random_net
from test_complexity import BRUTE_NETS, brute_f

import regiongeom as rg
from regiongeom import _theorem2 as T
from regiongeom import _theorem2_grid as G
from regiongeom import _theorem2_grid_kernels as GK


def per_pair(net, x, noise, route, **opts):
    opts = dict(dict(sigma=0.3, good=True, rho=True, by_layer=False), **opts, route=route)
    return T.theorem2_samples(net, x, noise, opts)


NETS = {
    "relu": lambda: random_net([12, 10, 8], activation="relu", seed=11, scale=1.5),
    "leaky": lambda: random_net([10, 10], activation=rg.leaky_relu, seed=12, scale=1.5),
    "hardtanh": lambda: random_net([10, 8, 6], activation=rg.hardtanh, seed=13, scale=1.5),
    "abs": lambda: random_net([10, 8], activation="abs", seed=14, scale=1.5),
    "mixed-last-relu": lambda: random_net(
        [8, 8], activation=["relu", rg.Activation.hardtanh(-0.5, 0.5)], seed=15, last_activation="relu"
    ),
    "linear-middle": lambda: random_net([8, 6, 8], activation=["relu", None, "relu"], seed=16, scale=1.5),
    "bottleneck": lambda: random_net([8, 1, 8], activation="relu", seed=17),
    "deep": lambda: random_net([10] * 6, activation="relu", seed=18, scale=1.5),  # moves' rounding, 6 layers
}


@pytest.mark.parametrize("name", list(NETS))
@pytest.mark.parametrize("good, rho, by_layer", [(True, True, False), (True, True, True), (False, True, False),
                                                 (True, False, False), (False, False, True)])  # fmt: skip
def test_walk_equals_per_point(name, good, rho, by_layer):
    net = NETS[name]()
    x = rg.grid_points((-1.5, -1.2, 1.5, 1.2), (37, 41))
    assert G.is_grid(x)
    noise = np.random.default_rng(1).normal(0, 0.3, size=(3, net.n_neurons))
    kw = dict(good=good, rho=rho, by_layer=by_layer)
    assert_same(per_pair(net, x, noise, "grid", **kw), per_pair(net, x, noise, "points", **kw))


@pytest.mark.parametrize("name", ["relu", "deep"])
def test_walk_equals_per_point_at_a_small_sigma(name):
    """At sigma 0.05 a term's weight is about 20 times as sensitive to the
    rounding of the moved values as at 0.3 (the exponent's derivative,
    u / sigma^2): the walk's moves between recomputations (``REFRESH``)
    still keep every pair within 1e-12 (about 5e-14 here)."""
    net = NETS[name]()
    x = rg.grid_points((-1.5, -1.2, 1.5, 1.2), (37, 41))
    noise = np.random.default_rng(1).normal(0, 0.05, size=(3, net.n_neurons))
    assert_same(per_pair(net, x, noise, "grid", sigma=0.05), per_pair(net, x, noise, "points", sigma=0.05))


def assert_same(walk, ref):
    """Equal to 1e-12 relative; a layer's share (trailing axis) to 1e-12 of
    the pair's total: both paths may leave out terms that together stay
    below half an ulp of the total, so a layer made only of such terms can
    differ by that much."""
    if walk.ndim == 3:
        np.testing.assert_allclose(walk.sum(-1), ref.sum(-1), rtol=1e-12, atol=0)
        tol = 1e-12 * ref.sum(-1, keepdims=True)
        assert np.all(np.abs(walk - ref) <= tol + 1e-12 * np.abs(ref))
    else:
        np.testing.assert_allclose(walk, ref, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", [n for n in BRUTE_NETS if n not in ("zero-weights", "zero-slope-pieces",
                                                                     "linear-middle-sparse")])  # fmt: skip
@pytest.mark.parametrize("good, by_layer", [(True, False), (True, True), (False, False)])
def test_walk_equals_per_point_on_the_brute_force_nets(name, good, by_layer):
    """The dense networks of test_complexity (width-1 layers, linear first and
    middle layers, closed paths: gradients exactly 0), the route forced; 3
    inputs: points sorted along one axis."""
    net = BRUTE_NETS[name]()
    if net.n_in == 1:
        x = rg.grid_points((-2, 2), 300)
    elif net.n_in == 2:
        x = rg.grid_points((-2, -2, 2, 2), 25)
    else:
        x = np.random.default_rng(0).uniform(-1, 1, (300, 3))
        x = x[np.argsort(x[:, 0])]
    noise = np.random.default_rng(1).normal(0, 0.3, size=(3, net.n_neurons))
    kw = dict(good=good, by_layer=by_layer)
    assert_same(per_pair(net, x, noise, "grid", **kw), per_pair(net, x, noise, "points", **kw))


def test_walk_equals_per_point_1d_and_rows_of_one():
    net = random_net([9, 9, 9], activation=rg.hardtanh, n_in=1, seed=18, scale=2.0)
    noise = np.random.default_rng(2).normal(0, 0.2, size=(3, net.n_neurons))
    x = rg.grid_points((-2.0, 2.0), 500)
    np.testing.assert_allclose(per_pair(net, x, noise, "grid", sigma=0.2),
                               per_pair(net, x, noise, "points", sigma=0.2), rtol=1e-12, atol=0)  # fmt: skip
    net2 = random_net([7, 7], activation="relu", seed=19, scale=1.5)
    x2 = rg.grid_points((-1, -1, 1, 1), (30, 1))  # a column: rows of one point
    noise2 = np.random.default_rng(3).normal(0, 0.3, size=(2, net2.n_neurons))
    assert G.is_grid(x2)
    np.testing.assert_allclose(per_pair(net2, x2, noise2, "grid"), per_pair(net2, x2, noise2, "points"),
                               rtol=1e-12, atol=0)  # fmt: skip


@pytest.mark.parametrize("name", ["relu", "hardtanh", "mixed-last-relu", "bottleneck"])
def test_walk_matches_brute_force(name):
    net = NETS[name]()
    x = rg.grid_points((-1.2, -1.2, 1.2, 1.2), 9)
    noise = np.random.default_rng(4).normal(0, 0.3, size=(2, net.n_neurons))
    f = per_pair(net, x, noise, "grid")
    ref = [[brute_f(net, noise[s], x[p], 0.3) for p in range(len(x))] for s in range(2)]
    np.testing.assert_allclose(f, ref, rtol=1e-7, atol=1e-9)  # finite-difference gradients


def test_every_branch_of_the_walk_is_taken(monkeypatch):
    """With a huge tau every moved pixel is recomputed from scratch, with
    RANK = 0 every change recomputes the next layers, and (the huge tau
    again) the walk's exact decision leaves terms open, so that some pairs
    go to the per-point kernels: the result stays the same."""
    net = NETS["relu"]()
    x = rg.grid_points((-1.5, -1.5, 1.5, 1.5), 30)
    noise = np.random.default_rng(5).normal(0, 0.3, size=(2, net.n_neurons))
    ref = per_pair(net, x, noise, "points")
    pk = T.Packed(net)
    opt = T.kernel_options(dict(sigma=0.3, good=True, rho=True))
    _, n_redone = G.theorem2_grid(net, pk, x, noise, opt, False)
    assert n_redone == 0  # every term the column bound leaves open is decided in the walk
    import numba

    if numba.config.DISABLE_JIT:  # the module constants are read at run time only without the JIT
        monkeypatch.setattr(GK, "RANK", 0)
        np.testing.assert_allclose(per_pair(net, x, noise, "grid"), ref, rtol=1e-12, atol=0)
        monkeypatch.setattr(G, "TAU", 1.0)
    else:
        monkeypatch.setattr(G, "margins", lambda *a: np.full(net.n_layers, 10.0))
    np.testing.assert_allclose(per_pair(net, x, noise, "grid"), ref, rtol=1e-12, atol=0)
    _, n_redone = G.theorem2_grid(net, pk, x, noise, opt, False)
    assert 0 < n_redone < x.shape[0] * 2


@pytest.mark.parametrize("name", ["relu", "hardtanh", "mixed-last-relu", "linear-middle", "bottleneck"])
@pytest.mark.parametrize("good, by_layer", [(True, False), (True, True), (False, False)])
def test_one_sample_walks_the_first_layer_directly(name, good, by_layer):
    """With one noise sample (lc_density's calls on a large grid) the walk
    computes the first layer itself instead of from a table: the same
    helpers, the same bits as with the table."""
    net = NETS[name]()
    x = rg.grid_points((-1.5, -1.2, 1.5, 1.2), (37, 41))
    noise = np.random.default_rng(6).normal(0, 0.3, size=(3, net.n_neurons))
    pk = T.Packed(net)
    opt = T.kernel_options(dict(sigma=0.3, good=good, rho=True, by_layer=by_layer))
    table, _ = G.theorem2_grid(net, pk, x, noise, opt, by_layer)
    direct = [G.theorem2_grid(net, pk, x, noise[s : s + 1], opt, by_layer)[0] for s in range(3)]
    assert np.array_equal(np.concatenate(direct), table)
    ref = per_pair(net, x, noise, "points", good=good, by_layer=by_layer)
    assert_same(np.concatenate(direct).reshape(ref.shape), ref)


def test_same_seed_same_numbers_and_threads(monkeypatch):
    net = NETS["relu"]()
    x = rg.grid_points((-1, -1, 1, 1), 64)  # four blocks of 1024 points
    kw = dict(sigma=0.3, n_samples=3, rng=7, progress=False)
    a = rg.lc_density(net, x, **kw).mean
    monkeypatch.setenv("REGIONGEOM_NUM_THREADS", "1")
    b = rg.lc_density(net, x, **kw).mean
    monkeypatch.setattr(G, "BLOCK", 1000)  # blocks cut rows: still the same to rounding
    c = rg.lc_density(net, x, **kw).mean
    assert np.array_equal(a, b)
    np.testing.assert_allclose(c, a, rtol=1e-12, atol=0)


def test_lc_density_routes_grids_only(monkeypatch):
    calls = []
    real = G.theorem2_grid
    monkeypatch.setattr(G, "theorem2_grid", lambda *a: calls.append(1) or real(*a))
    net = NETS["relu"]()
    x = rg.grid_points((-1, -1, 1, 1), 20)
    kw = dict(sigma=0.3, n_samples=2, rng=0, progress=False)
    grid = rg.lc_density(net, x, **kw).mean
    assert len(calls) == 1
    perm = np.random.default_rng(0).permutation(len(x))
    scattered = rg.lc_density(net, x[perm], **kw).mean
    assert len(calls) == 1  # scattered points: the per-point kernels
    np.testing.assert_allclose(scattered, grid[perm], rtol=1e-12, atol=0)
    rg.lc_density(net, x, rho=False, **kw)  # every term weighs alike: per point
    rg.lc_density(random_net([6, 6], activation="relu", seed=1, zero_frac=0.4), x, **kw)  # not dense
    assert len(calls) == 1


def test_is_grid():
    assert G.is_grid(rg.grid_points((0, 0, 1, 2), (3, 4)))
    assert G.is_grid(rg.grid_points((0, 1), 5))
    x = rg.grid_points((0, 0, 1, 1), 4)
    assert not G.is_grid(x[::-1])
    assert not G.is_grid(x[np.r_[0:5, 6, 5, 7:16]])
    assert not G.is_grid(x[:-1])
    assert not G.is_grid(np.zeros((1, 2)))
    assert not G.is_grid(np.zeros((4, 3)))


def test_tau_bounds_the_values():
    """tau is far above the rounding but far below the values' own size: a
    bound of |z| over the box, times 2^-28."""
    net = NETS["hardtanh"]()
    x = rg.grid_points((-1, -1, 1, 1), 20)
    noise = np.random.default_rng(0).normal(0, 0.3, size=net.n_neurons)
    tau = G.margins(net, x, noise)
    offs, h = net.neuron_offsets, x.T
    for ly, (w, b, a) in enumerate(zip(net.weights, net.biases, net.activations, strict=True)):
        v = w @ h + (b + noise[offs[ly] : offs[ly + 1]] if a is not None else b)[:, None]
        assert np.abs(v).max() <= tau[ly] * 2.0**28
        assert tau[ly] > 1e-12
        h = a(v) if a is not None else v


def test_noalias_contract_holds():
    """The kernels are compiled with every array argument marked noalias
    (G.NoAlias): the arrays they write (the scratch, f, f_layer, flag) must
    not share memory with each other or with any array they read."""
    from itertools import combinations

    net = NETS["relu"]()
    pk = T.Packed(net)
    g = G.make_grid_scratch(pk.L, pk.kernel_net.width, 2)
    scratch = list(g)
    net_arrays = [a for a in pk.kernel_net if isinstance(a, np.ndarray)]
    for a, b in combinations(scratch, 2):
        assert not np.shares_memory(a, b)
    for a in scratch:
        assert not any(np.shares_memory(a, b) for b in net_arrays)
    # and numba really compiles grid_chunk with the flag (its noalias argument attributes)
    import numba

    if numba.config.DISABLE_JIT:
        return
    x = rg.grid_points((-1, -1, 1, 1), 4)
    noise = np.zeros((1, net.n_neurons))
    opt = T.kernel_options(dict(sigma=0.3, good=True, rho=True))
    f, flag = np.empty(16), np.zeros(16, np.bool_)
    kn, m0 = pk.kernel_net, pk.rows[0]
    tz, tw, tb = np.zeros((16, m0)), np.zeros((16, pk.nbp[0] * m0)), np.zeros((16, pk.nbp[0]))
    G.layer0_table(kn, opt, x, 0, 16, g, tz, tw, tb)
    G.grid_chunk(kn, opt, x, noise, 0, 0, 16, g, G.margins(net, x, noise[0]), G.screen_bounds(kn), tz, tw, tb, False,
                 f, np.zeros((0, pk.L)), flag)  # fmt: skip
    for kernel in (G.grid_chunk, G.layer0_table):
        assert all(cres.fndesc.noalias for cres in kernel.overloads.values())


def test_lc_density_hands_the_walk_several_samples_per_task(monkeypatch):
    """A grid takes GRID_SAMPLES noise samples per call of the walk whatever
    batch_size says (they share its first layer); other points keep
    batch_size's split; the numbers are those of one sample per call."""
    net = NETS["relu"]()
    x = rg.grid_points((-1.5, -1.2, 1.5, 1.2), (23, 19))
    opts = dict(good=True, rho=True, route="auto")
    assert T.samples_per_task(net, x, opts, 1) == T.GRID_SAMPLES
    assert T.samples_per_task(net, x, opts, 40) == 40
    assert T.samples_per_task(net, x[::-1].copy(), opts, 1) == 1  # not in grid order: per-point kernels
    assert T.samples_per_task(net, x, dict(opts, route="points"), 1) == 1
    calls = []
    real = T.theorem2_samples

    def spy(net, x, noise, opts, **kw):
        calls.append(noise.shape[0])
        return real(net, x, noise, opts, **kw)

    import regiongeom.complexity as C

    monkeypatch.setattr(C, "theorem2_samples", spy)
    kw = dict(sigma=0.3, n_samples=20, rng=4, progress=False)
    est = rg.lc_density(net, x, batch_size=len(x), **kw)
    assert calls == [T.GRID_SAMPLES, 20 - T.GRID_SAMPLES]
    noise = np.random.default_rng(4).normal(0.0, 0.3, size=(20, net.n_neurons))
    one = np.concatenate([per_pair(net, x, noise[s : s + 1], "grid") for s in range(20)])
    np.testing.assert_array_equal(est.mean, one.mean(axis=0))


def _shifted(net, ly, c):
    """``net`` with layer ``ly``'s biases lowered by ``c``: ReLU layers that
    close entirely over part of the domain (as trained networks' do)."""
    bs = [b.copy() for b in net.biases]
    bs[ly] = bs[ly] - c
    return rg.Network.from_arrays(net.weights, bs, net.activations)


# networks whose later layers close (all or nearly all of their units) over
# parts of the domain: the column bound leaves many terms open there, and the
# walk decides them itself (it handed those pairs to the per-point kernels before)
OPEN_NETS = {
    "dead-middle": lambda: _shifted(random_net([12, 10, 8], activation="relu", seed=31, scale=1.5), 1, 1.2),
    "dead-last": lambda: _shifted(random_net([10, 10, 10], activation="relu", seed=32, scale=1.5), 2, 1.5),
    "hardtanh": NETS["hardtanh"],
    "bottleneck": NETS["bottleneck"],
    "leaky-then-dead-relu": lambda: _shifted(
        random_net([10, 10], activation=[rg.leaky_relu, "relu"], seed=33, scale=1.5), 1, 1.5),
    "abs-then-dead-relu": lambda: _shifted(
        random_net([10, 10], activation=["abs", "relu"], seed=34, scale=1.5), 1, 3.0),
    "hardtanh-linear-relu": lambda: _shifted(
        random_net([8, 6, 8], activation=[rg.hardtanh, None, "relu"], seed=35, scale=1.5), 2, 1.0),
}


def _pairs_left_open(net, x, noise, opt):
    """The terms the per-point kernels' screen leaves to their recomputation,
    over every pair: the open terms the walk now decides."""
    from regiongeom import _theorem2_kernels as K

    pk = T.Packed(net)
    N = noise.shape[0] * x.shape[0]
    f, fl = np.zeros(N), np.zeros((N if opt.by_layer else 0, pk.L))
    status = np.zeros((0, pk.n_terms), np.int8)
    scr = pk.scratch(x.shape[1])
    return K.theorem2_pairs(pk.kernel_net, opt, x, noise, np.arange(N), scr, f, fl, status, None)


@pytest.mark.parametrize("name", list(OPEN_NETS))
@pytest.mark.parametrize("by_layer", [False, True])
def test_walk_decides_the_open_terms(name, by_layer):
    """The terms the column bound leaves open are decided in the walk (the
    per-point screen's dead-layer test, then the exact recomputation): no
    pair goes to the per-point kernels, and the result is theirs."""
    net = OPEN_NETS[name]()
    x = rg.grid_points((-2, -2, 2, 2), (17, 14))
    noise = np.random.default_rng(1).normal(0, 0.3, size=(2, net.n_neurons))
    pk = T.Packed(net)
    opt = T.kernel_options(dict(sigma=0.3, good=True, rho=True, by_layer=by_layer))
    walk, n_redone = G.theorem2_grid(net, pk, x, noise, opt, by_layer)
    assert n_redone == 0
    assert _pairs_left_open(net, x, noise, opt) > 0  # there were open terms to decide
    ref = per_pair(net, x, noise, "points", by_layer=by_layer)
    assert_same(walk.reshape(ref.shape), ref)


def test_a_near_unit_leaves_a_later_closed_layer_undecided(monkeypatch):
    """In the walk's exact decision, a layer whose pieces rest on a unit
    within tau of a breakpoint may differ from the per-point kernels' by
    rounding, and so may every later layer's values: a later layer found
    closed then leaves the term open (the pair goes to the per-point
    kernels) instead of deciding it not good. Here tau is huge on the
    middle layer only, and the last layer is dead."""
    net = OPEN_NETS["dead-last"]()
    x = rg.grid_points((-2, -2, 2, 2), (17, 14))
    noise = np.random.default_rng(1).normal(0, 0.3, size=(2, net.n_neurons))
    pk = T.Packed(net)
    opt = T.kernel_options(dict(sigma=0.3, good=True, rho=True))
    margins = G.margins

    def near_middle(net_, x_, noise_row):
        tau = margins(net_, x_, noise_row)
        tau[1] = 1e3
        return tau

    monkeypatch.setattr(G, "margins", near_middle)
    walk, n_redone = G.theorem2_grid(net, pk, x, noise, opt, False)
    assert n_redone == 442  # 421 when the closed last layer decided those terms not good
    ref = per_pair(net, x, noise, "points")
    assert_same(walk.reshape(ref.shape), ref)


@pytest.mark.parametrize("by_layer", [False, True])
def test_walk_decides_the_open_terms_1d(by_layer):
    net = _shifted(random_net([9, 9, 9], activation="relu", n_in=1, seed=36, scale=2.0), 2, 1.5)
    x = rg.grid_points((-2.0, 2.0), 300)
    noise = np.random.default_rng(2).normal(0, 0.2, size=(2, net.n_neurons))
    pk = T.Packed(net)
    opt = T.kernel_options(dict(sigma=0.2, good=True, rho=True, by_layer=by_layer))
    walk, n_redone = G.theorem2_grid(net, pk, x, noise, opt, by_layer)
    assert n_redone == 0
    assert _pairs_left_open(net, x, noise, opt) > 0
    ref = per_pair(net, x, noise, "points", sigma=0.2, by_layer=by_layer)
    assert_same(walk.reshape(ref.shape), ref)


@pytest.mark.parametrize("by_layer", [False, True])
def test_demo_network_on_a_small_grid(by_layer):
    """The embedded demo network (as ``regiongeom demo`` estimates it, on a
    smaller grid): its walk handed about 30 % of the pairs to the per-point
    kernels for the terms its column bound left open; now none."""
    from regiongeom.datasets import DEFAULT_DOMAIN, DEFAULT_SIGMA, default_network

    net = default_network()
    x = rg.grid_points(DEFAULT_DOMAIN, (17, 14))
    noise = np.random.default_rng(1).normal(0, DEFAULT_SIGMA, size=(2, net.n_neurons))
    pk = T.Packed(net)
    opt = T.kernel_options(dict(sigma=DEFAULT_SIGMA, good=True, rho=True, by_layer=by_layer))
    walk, n_redone = G.theorem2_grid(net, pk, x, noise, opt, by_layer)
    assert n_redone == 0
    assert _pairs_left_open(net, x, noise, opt) > 0
    ref = per_pair(net, x, noise, "points", sigma=DEFAULT_SIGMA, by_layer=by_layer)
    assert_same(walk.reshape(ref.shape), ref)


def test_large_exponents_still_go_to_the_per_point_kernels():
    """Terms left out for their large exponents (a small sigma: at some
    pixels every term's exponent above 512) still send their pairs to
    the per-point kernels when they are not negligible (the same pairs as before)."""
    net = OPEN_NETS["dead-middle"]()
    x = rg.grid_points((-2, -2, 2, 2), (24, 20))
    noise = np.random.default_rng(1).normal(0, 0.01, size=(2, net.n_neurons))
    pk = T.Packed(net)
    opt = T.kernel_options(dict(sigma=0.01, good=True, rho=True))
    walk, n_redone = G.theorem2_grid(net, pk, x, noise, opt, False)
    assert n_redone == 17  # as the walk flagged them before
    ref = per_pair(net, x, noise, "points", sigma=0.01).ravel()
    # sigma = 0.01: a weight's relative rounding is about |u| 2^-53 |z| /
    # sigma^2 (the rounding of u = t - b - z, |z| up to 2 here), some 1e-12
    # for either route: compared to 1e-10
    np.testing.assert_allclose(walk, ref, rtol=1e-10, atol=0)
