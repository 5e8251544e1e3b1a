"""Max units (MaxPool, AdaptiveMaxPool, max/amax over dimensions, maxout) in
graph networks: conversion exactness against the model itself, patterns
against a brute-force argmax on the model's own tensors (ties to the lowest
position), exact maps against tests/maxout_reference.py, restriction, and
every refusal."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from maxout_reference import exact_max_forward, maxout_windows

import regiongeom as rg

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from regiongeom._exact_graph import ExactGraph  # noqa: E402


# ------------------------------------------------------------------ helpers ----
class Fn(nn.Module):
    """A module around a function (torch.fx traces into it; its hook sees the
    function's input, which is the tensor the max is taken of)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class Model(nn.Module):
    """pre -> max -> flatten -> Linear: ``max`` is a module (MaxPool) or an Fn."""

    def __init__(self, pre, mx, n_flat, n_out=3):
        super().__init__()
        self.pre, self.mx = pre, mx
        self.out = nn.LazyLinear(n_out) if n_flat is None else nn.Linear(n_flat, n_out)

    def forward(self, x):
        return self.out(self.mx(self.pre(x)).flatten(1))


def _build(pre, mx, shape, seed=0, integer=False):
    torch.manual_seed(seed)
    m = Model(pre, mx, None).double()
    with torch.no_grad():
        m(torch.zeros(1, *shape, dtype=torch.float64))  # materialise the lazy Linear
        if integer:  # integer weights: many exact ties
            for p in m.parameters():
                p.copy_(torch.randint(-2, 3, p.shape, dtype=torch.float64))
    return m.eval()


def _inputs(shape, n=9, seed=1, integer=False):
    g = torch.Generator().manual_seed(seed)
    if integer:  # small integer images: repeated pixels, so duplicate inputs in windows
        return torch.randint(0, 3, (n, *shape), generator=g).double()
    return torch.randn(n, *shape, dtype=torch.float64, generator=g)


def _captured(model, x):
    """The tensor the max module of ``model`` receives on ``x`` (a forward hook)."""
    seen = []
    h = model.mx.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach()))
    with torch.no_grad():
        y = model(x)
    h.remove()
    return seen[0], y.numpy()


def _brute_winners(z, out_shape, member):
    """(P, n_units) flat index into z[p] of each unit's winner, by brute force:
    ``member(out_index, in_index)`` says whether an entry is in a unit's
    window; the winner is the largest value, ties to the first in C order."""
    P = z.shape[0]
    zz = z.reshape(P, -1).numpy()
    in_idx = list(np.ndindex(*z.shape[1:]))
    out_idx = list(np.ndindex(*out_shape))
    win = np.empty((P, len(out_idx)), np.int64)
    for u, o in enumerate(out_idx):
        cols = [i for i, c in enumerate(in_idx) if member(o, c)]
        for p in range(P):
            vals = zz[p, cols]
            win[p, u] = cols[int(np.flatnonzero(vals == vals.max())[0])]
    return win


def _net_winners(net, stage, x):
    """(P, n_units) flat index into the stage's preactivations of each unit's winner."""
    st = net.stages[stage]
    pats = net.patterns(x)[:, st.offset : st.offset + st.n].astype(np.int64)
    return st.windows[np.arange(st.n)[None, :], pats]


def _pool_member(k, s, p, d):
    """Brute-force window membership of a max pool (per spatial axis, from torch's docs)."""

    def member(o, c):
        if o[0] != c[0]:
            return False
        for oi, ci, ki, si, pi, di in zip(o[1:], c[1:], k, s, p, d):
            if not any(oi * si - pi + j * di == ci for j in range(ki)):
                return False
        return True

    return member


def _n_ties(net, stage, flat):
    """How many (point, unit) pairs have two or more equal maxima in their window."""
    st = net.stages[stage]
    g = st._gathered(net.forward(flat)[1][stage])
    return int(((g == g.max(axis=2, keepdims=True)).sum(axis=2) > 1).sum())


def _check(model, shape, x, member=None, stage=None, ties=False):
    net = rg.from_torch(model, input_shape=shape)
    flat = x.reshape(len(x), -1).numpy()
    if ties:  # integer data: the tie rule is exercised
        assert _n_ties(net, stage, flat) > 0
    z, y = _captured(model, x)
    np.testing.assert_array_equal(net(flat), y)
    if member is not None:
        st = net.stages[stage]
        assert st.is_max
        with torch.no_grad():
            out_shape = model.mx(z[:1]).shape[1:]
        np.testing.assert_array_equal(_net_winners(net, stage, flat), _brute_winners(z, out_shape, member))
    return net


# ----------------------------------------------------------- conversion ----
POOL2D = [  # kernel, stride, padding, dilation, ceil_mode
    (2, 2, 0, 1, False),
    (3, 1, 1, 1, False),  # overlapping windows, padding
    (3, 2, 1, 1, True),  # overlapping, padding, ceil_mode
    ((3, 2), (2, 1), (1, 0), (1, 2), False),  # anisotropic, dilation
    (2, 3, 1, 2, True),  # dilation, stride > kernel, ceil_mode
]


@pytest.mark.parametrize("integer", [False, True], ids=["random", "ties"])
@pytest.mark.parametrize("args", POOL2D)
@pytest.mark.parametrize("functional", [False, True], ids=["module", "F"])
def test_max_pool2d(args, functional, integer):
    k, s, p, d, ceil = args
    mx = (
        Fn(lambda h: F.max_pool2d(h, k, s, p, d, ceil_mode=ceil))
        if functional
        else nn.MaxPool2d(k, s, p, d, ceil_mode=ceil)
    )
    pre = nn.Sequential(nn.Conv2d(2, 3, 2), nn.ReLU())
    shape = (2, 7, 8)
    m = _build(pre, mx, shape, seed=len(str(args)), integer=integer)
    two = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    member = _pool_member(two(k), two(s), two(p), two(d))
    _check(m, shape, _inputs(shape, integer=integer), member, stage=1, ties=integer)


@pytest.mark.parametrize("seed", range(8))
def test_max_pool2d_random_shapes_and_options(seed):
    rng = np.random.default_rng(seed)
    k = tuple(int(v) for v in rng.integers(2, 5, size=2))
    s = tuple(int(rng.integers(1, kk + 1)) for kk in k)  # mostly stride < kernel: overlapping windows
    p = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
    d = tuple(int(v) for v in rng.integers(1, 3, size=2))
    ceil = bool(rng.integers(2))
    C, H, W = int(rng.integers(1, 4)), int(rng.integers(7, 11)), int(rng.integers(7, 11))
    shape = (C, H, W)
    m = _build(
        nn.Sequential(nn.Conv2d(C, 2, 2), nn.ReLU()), nn.MaxPool2d(k, s, p, d, ceil_mode=ceil), shape, seed
    )
    integer = seed % 2 == 1
    x = _inputs(shape, n=5, seed=seed, integer=integer)
    _check(m, shape, x, _pool_member(k, s, p, d), stage=1)


@pytest.mark.parametrize("integer", [False, True], ids=["random", "ties"])
@pytest.mark.parametrize(
    "args", [(2, 2, 0, 1, False), (3, 1, 1, 1, False), (3, 2, 1, 2, True), (4, 3, 2, 1, True)]
)
@pytest.mark.parametrize("functional", [False, True], ids=["module", "F"])
def test_max_pool1d(args, functional, integer):
    k, s, p, d, ceil = args
    mx = (
        Fn(lambda h: F.max_pool1d(h, k, s, p, d, ceil_mode=ceil))
        if functional
        else nn.MaxPool1d(k, s, p, d, ceil_mode=ceil)
    )
    pre = nn.Sequential(nn.Conv1d(2, 3, 2), nn.LeakyReLU(0.1))
    shape = (2, 11)
    m = _build(pre, mx, shape, seed=k + s, integer=integer)
    _check(
        m, shape, _inputs(shape, integer=integer), _pool_member((k,), (s,), (p,), (d,)), stage=1, ties=integer
    )


def test_torch_max_pool2d_builtin_and_pool_on_the_input():
    # torch.max_pool2d (the builtin) straight on the input, then a conv without a unit before a pool
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.out = nn.Linear(8, 2)

        def forward(self, x):
            h = torch.max_pool2d(x, 2, 1)  # 6x6 -> 5x5
            return self.out(F.max_pool2d(self.conv(h), 2, 1).flatten(1))

    torch.manual_seed(3)
    m = M().double().eval()
    x = _inputs((1, 6, 6), integer=True)
    net = rg.from_torch(m, input_shape=(1, 6, 6))
    assert [s.is_max for s in net.stages] == [True, True]
    assert net.stages[0].operator.sources == (0,)
    with torch.no_grad():
        np.testing.assert_array_equal(net(x.reshape(9, -1).numpy()), m(x).numpy())
    win = _brute_winners(x, (1, 5, 5), _pool_member((2, 2), (1, 1), (0, 0), (1, 1)))
    np.testing.assert_array_equal(_net_winners(net, 0, x.reshape(9, -1).numpy()), win)


def _adaptive_member(space, out):
    def rng_(i, L, n):
        return range((i * L) // n, -((-(i + 1) * L) // n))

    def member(o, c):
        return o[0] == c[0] and all(ci in rng_(oi, L, n) for oi, ci, L, n in zip(o[1:], c[1:], space, out))

    return member


@pytest.mark.parametrize("integer", [False, True], ids=["random", "ties"])
@pytest.mark.parametrize(
    "nd, out, functional",
    [(2, (3, 2), False), (2, (4, None), False), (2, 1, True), (1, 4, False), (1, 3, True)],
)
def test_adaptive_max_pool(nd, out, functional, integer):
    shape = (2, 7, 6) if nd == 2 else (2, 9)
    conv = nn.Conv2d(2, 2, 2) if nd == 2 else nn.Conv1d(2, 2, 2)
    fmod = F.adaptive_max_pool2d if nd == 2 else F.adaptive_max_pool1d
    mod = nn.AdaptiveMaxPool2d if nd == 2 else nn.AdaptiveMaxPool1d
    mx = Fn(lambda h: fmod(h, out)) if functional else mod(out)
    m = _build(nn.Sequential(conv, nn.ReLU()), mx, shape, integer=integer)
    space = (6, 5) if nd == 2 else (8,)
    o = (
        (out,) * nd
        if not isinstance(out, tuple)
        else tuple(L if v is None else v for v, L in zip(out, space))
    )
    _check(m, shape, _inputs(shape, integer=integer), _adaptive_member(space, o), stage=1, ties=integer)


def _reduce_member(dims, keepdim, ndim):
    kept = [i for i in range(ndim) if i not in dims]

    def member(o, c):
        if keepdim:
            return all(o[i] == c[i] for i in kept)
        return all(oi == c[i] for oi, i in zip(o, kept))

    return member


REDUCTIONS = [  # (function, per-sample reduced dims, keepdim)
    (lambda h: torch.max(h, 1)[0], (0,), False),
    (lambda h: h.max(dim=-1).values, (2,), False),
    (lambda h: torch.max(h, 2, keepdim=True).values, (1,), True),
    (lambda h: torch.amax(h, (1, 3)), (0, 2), False),
    (lambda h: h.amax(dim=(-2, -1), keepdim=True), (1, 2), True),
    (lambda h: h.amax(2), (1,), False),
]


@pytest.mark.parametrize("integer", [False, True], ids=["random", "ties"])
@pytest.mark.parametrize("case", range(len(REDUCTIONS)))
def test_max_and_amax_over_dimensions(case, integer):
    fn, dims, keep = REDUCTIONS[case]
    shape = (2, 5, 4)
    pre = nn.Sequential(nn.Conv2d(2, 3, 2, padding=1), nn.ReLU())  # -> (3, 6, 5)
    m = _build(pre, Fn(fn), shape, seed=case, integer=integer)
    _check(m, shape, _inputs(shape, integer=integer), _reduce_member(dims, keep, 3), stage=1, ties=integer)


class Maxout(nn.Module):
    """An MLP of maxout layers written as torch users do."""

    def __init__(self, n_in, widths, k, style):
        super().__init__()
        self.k, self.style = k, style
        dims = [n_in, *widths]
        self.fcs = nn.ModuleList(nn.Linear(a, b * k) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(dims[-1], 2)

    def forward(self, x):
        for fc in self.fcs:
            z = fc(x)
            if self.style == "view":
                x = z.view(z.shape[0], -1, self.k).amax(-1)
            else:
                x = z.unflatten(-1, (-1, self.k)).max(-1).values
        return self.out(x)


def _maxout_arrays(model):
    ws = [fc.weight.detach().numpy() for fc in model.fcs] + [model.out.weight.detach().numpy()]
    bs = [fc.bias.detach().numpy() for fc in model.fcs] + [model.out.bias.detach().numpy()]
    return ws, bs


@pytest.mark.parametrize("style", ["view", "unflatten"])
@pytest.mark.parametrize("integer", [False, True], ids=["random", "ties"])
def test_maxout_from_torch_and_from_arrays(style, integer):
    torch.manual_seed(5)
    m = Maxout(3, [4, 5], 3, style).double().eval()
    if integer:
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(torch.randint(-1, 2, p.shape, dtype=torch.float64))
    x = _inputs((3,), n=40, integer=integer)
    net = rg.from_torch(m)
    with torch.no_grad():
        y = m(x).numpy()
    np.testing.assert_array_equal(net(x.numpy()), y)
    arr = rg.Network.maxout(*_maxout_arrays(m), k=3)
    assert isinstance(arr, rg.GraphNetwork) and arr.layer_sizes == (4, 5) == net.layer_sizes
    np.testing.assert_array_equal(arr(x.numpy()), y)
    np.testing.assert_array_equal(arr.patterns(x.numpy()), net.patterns(x.numpy()))
    spec = _spec(arr)
    for xi, pat in zip(x.numpy(), arr.patterns(x.numpy())):
        assert exact_max_forward(spec, xi)[1] == tuple(pat)
    if integer:  # ties happened (and the reference's patterns, ties to the lowest, agree above)
        assert _n_ties(arr, 0, x.numpy()) > 0 and _n_ties(arr, 1, x.numpy()) > 0


def test_names_and_shapes():
    m = _build(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), nn.MaxPool2d(2), (1, 6, 6))
    net = rg.from_torch(m, input_shape=(1, 6, 6))
    st = net.stages[1]
    assert (st.name, st.shape, st.n, st.n_pre, st.windows.shape) == ("mx", (2, 2, 2), 8, 32, (8, 4))
    assert net.neuron_names[st.offset : st.offset + 2] == ("mx[0, 0, 0]", "mx[0, 0, 1]")
    assert st.breakpoints is None and st.activation is None and st.n_pieces == 4
    assert (
        net.has_max_units
        and not rg.from_torch(nn.Sequential(nn.Conv2d(1, 1, 2)), input_shape=(1, 3, 3)).has_max_units
    )
    # the window of unit (0, 0, 1): rows 0-1, columns 2-3 of channel 0 (4 x 4)
    assert st.windows[1].tolist() == [2, 3, 6, 7]


def test_large_windows_give_int16_patterns():
    m = _build(nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU()), nn.AdaptiveMaxPool2d(1), (1, 12, 12))
    net = rg.from_torch(m, input_shape=(1, 12, 12))
    x = _inputs((1, 12, 12))
    pats = net.patterns(x.reshape(9, -1).numpy())
    assert pats.dtype == np.int16
    z, _ = _captured(m, x)
    want = z.reshape(9, 2, -1).argmax(dim=2).numpy()
    np.testing.assert_array_equal(pats[:, -2:], want)


# -------------------------------------------------------------- restrict ----
@pytest.mark.parametrize("seed", range(3))
def test_restriction_keeps_max_units(seed):
    m = _build(
        nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU()),
        nn.MaxPool2d(3, 2, 1, ceil_mode=True),
        (1, 8, 8),
        seed=seed,
    )
    net = rg.from_torch(m, input_shape=(1, 8, 8))
    x = _inputs((1, 8, 8), n=5, seed=seed).reshape(5, -1).numpy()
    plane = rg.Plane.through(x[0], x[1], x[2])
    net2 = net.restrict(plane)
    uv = np.random.default_rng(seed).normal(size=(20, 2))
    with torch.no_grad():
        want = m(torch.from_numpy(plane.lift(uv)).reshape(20, 1, 8, 8)).numpy()
    np.testing.assert_allclose(net2(uv), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(net2.patterns(uv), net.patterns(plane.lift(uv)))
    assert net2.neuron_names == net.neuron_names
    assert np.array_equal(net2.stages[1].windows, net.stages[1].windows)
    line = rg.Line.through(x[3], x[4])
    t = np.linspace(-1, 2, 7)
    np.testing.assert_array_equal(net.restrict(line).patterns(t), net.patterns(line.lift(t)))
    # a max pool reading the input itself: its operator becomes the lifted identity
    m0 = _build(nn.Identity(), nn.MaxPool2d(2, 1), (1, 4, 4))
    net0 = rg.from_torch(m0, input_shape=(1, 4, 4))
    x0 = _inputs((1, 4, 4), n=3).reshape(3, -1).numpy()
    plane0 = rg.Plane.through(*x0)
    np.testing.assert_array_equal(net0.restrict(plane0).patterns(uv), net0.patterns(plane0.lift(uv)))


# ----------------------------------------------------------------- exact ----
def _spec(net):
    """The maxout reference's spec of a maxout network from arrays."""
    spec = []
    for st in net.stages:
        W, b = st.operator.matrix(), st.operator.bias
        spec.append(("max", W, b, st.windows))
    spec.append(("affine", net.output.matrix(), net.output.bias))
    return spec


def _value(row, x):
    """Exact value of a Dyadic homogeneous row at the Fraction point x."""
    m, e = row
    return (sum(Fraction(int(a)) * xi for a, xi in zip(m[:-1], x)) + int(m[-1])) * Fraction(2) ** e


def _rand_maxout(seed, n_in, widths, k, integer):
    rng = np.random.default_rng(seed)
    ws, bs, prev = [], [], n_in
    for n in widths:
        W = (
            rng.integers(-2, 3, size=(n * k, prev)).astype(float)
            if integer
            else rng.normal(size=(n * k, prev))
        )
        ws.append(W)
        bs.append(rng.integers(-2, 3, size=n * k) / 2 if integer else rng.normal(size=n * k))
        prev = n
    ws.append(rng.normal(size=(2, prev)))
    bs.append(rng.normal(size=2))
    return ws, bs


@pytest.mark.parametrize("integer", [False, True], ids=["random", "ties"])
@pytest.mark.parametrize("seed", range(3))
def test_exact_maps_through_max_stages(seed, integer):
    ws, bs = _rand_maxout(seed, 2, [3, 4], 3, integer)
    net = rg.Network.maxout(ws, bs, k=3)
    spec = [("max", w, b, maxout_windows(w.shape[0] // 3, 3)) for w, b in zip(ws[:-1], bs[:-1])]
    spec.append(("affine", ws[-1], bs[-1]))
    ex = ExactGraph(net)
    rng = np.random.default_rng(seed + 10)
    pts = rng.integers(-3, 4, size=(12, 2)).astype(float) if integer else rng.normal(size=(12, 2))
    pats = net.patterns(pts)
    for x, pat in zip(pts, pats):
        out, ref_pat = exact_max_forward(spec, x)
        assert ref_pat == tuple(pat)
        X = [Fraction(float(v)) for v in x]
        M = ex.output(pat)
        assert [_value((M.m[o], M.e), X) for o in range(net.n_out)] == out
        # the stage maps: each preactivation's exact value, and the tie rows
        h = X
        for s, (w, b) in enumerate(zip(ws[:-1], bs[:-1])):
            z = [
                sum(Fraction(float(a)) * v for a, v in zip(row, h)) + Fraction(float(c))
                for row, c in zip(w, b)
            ]
            Z = ex.maps(pat, s)
            assert [_value((Z.m[i], Z.e), X) for i in range(len(z))] == z
            st = net.stages[s]
            for u in range(st.n):
                p = int(pat[st.offset + u])
                for q in range(3):
                    row = ex.line(pat, st.offset + u, q)
                    assert _value((row.m, row.e), X) == z[u * 3 + p] - z[u * 3 + q] >= 0
                    assert (q >= p) or z[u * 3 + p] > z[u * 3 + q]  # ties went to the lowest position
            h = [z[int(st.windows[u, pat[st.offset + u]])] for u in range(st.n)]


def test_exact_maps_through_a_padded_max_pool():
    m = _build(nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU()), nn.MaxPool2d(3, 2, 1), (1, 5, 5), integer=True)
    net = rg.from_torch(m, input_shape=(1, 5, 5))
    ex = ExactGraph(net)
    x = _inputs((1, 5, 5), n=4, integer=True).reshape(4, -1).numpy()
    for xi, pat in zip(x, net.patterns(x)):
        M = ex.output(pat)
        X = [Fraction(float(v)) for v in xi]
        got = [_value((M.m[o], M.e), X) for o in range(net.n_out)]
        np.testing.assert_array_equal(np.array(got, dtype=float), net(xi[None])[0])  # integer data: exact
    bad = net.patterns(x)[0].copy()
    st = net.stages[1]
    u = int(np.flatnonzero((st.windows < 0).any(axis=1))[0])
    bad[st.offset + u] = int(np.flatnonzero(st.windows[u] < 0)[0])
    with pytest.raises(ValueError, match="absent \\(padding\\) entry"):
        ex.output(bad)


# -------------------------------------------------------------- refusals ----
def _maxnet():
    return rg.Network.maxout([np.eye(2).repeat(2, axis=0), np.ones((1, 2))], [np.zeros(4), np.zeros(1)], k=2)


MAX_MSG = "max units .* are not supported here yet"
T2_MSG = "the network has max units .*Theorem 2 sums over neurons with a bias of their own and breakpoints.*method='definition'"


def test_downstream_refuses_max_units():
    net = _maxnet()
    pts = np.zeros((3, 2))
    assert len(rg.activation_regions(net, (-1, -1, 1, 1))) >= 1  # 2D: the engine cuts max units
    # on a line the 1D engine takes them (tests/test_max_engine_1d.py)
    line = net.restrict(rg.Line.through([0.0, 0.0], [1.0, 1.0]))
    rm = rg.activation_regions(line, (-1, 1))  # max(x, x), max(y, y): equal entries, the first wins
    assert rm.patterns.tolist() == [[0, 0]]
    with pytest.raises(TypeError, match="lc_density: " + T2_MSG):
        rg.lc_density(net, pts, sigma=0.1)
    with pytest.raises(TypeError, match="lc_density: " + T2_MSG):
        rg.lc_density(line, [0.0], sigma=0.1)
    assert rg.lc_density(net, pts, sigma=0.1, method="definition", eps=0.1, n_samples=2).mean.shape == (3,)
    with pytest.raises(TypeError, match="lc_density: " + T2_MSG):
        rg.local_complexity(net, pts, sigma=0.1)
    with pytest.raises(TypeError, match="local_rank.*" + MAX_MSG):
        rg.local_rank(net, pts)
    with pytest.raises(TypeError, match="total_variation.*" + MAX_MSG):
        rg.total_variation(net, pts)
    with pytest.raises(TypeError, match="vertex_density: the network has max units .*Theorem 6 as stated"):
        rg.vertex_density(net, pts, sigma=0.1)
    with pytest.raises(TypeError, match="vertex_density: " + MAX_MSG):
        rg.vertex_density(net, pts, sigma=0.1, method="definition", eps=0.1)
    with pytest.raises(TypeError, match="figure1: " + T2_MSG):
        rg.figure1(net, (-1, -1, 1, 1), sigma=0.1)


def test_cli_takes_max_units_on_planes_and_refuses_theorem2(tmp_path, capsys):
    from regiongeom.cli import main

    model = nn.Sequential(
        nn.Linear(4, 6), nn.Unflatten(1, (1, 6)), nn.MaxPool1d(2), nn.Flatten(), nn.Linear(3, 2)
    )
    path = tmp_path / "m.pt"
    torch.save(model, path)
    pts = np.random.default_rng(0).normal(size=(3, 4))
    np.save(tmp_path / "p.npy", pts)
    assert main(["regions", str(path), "--plane", str(tmp_path / "p.npy")]) == 0
    capsys.readouterr()
    code = main(["map", str(path), "--plane", str(tmp_path / "p.npy")])
    err = capsys.readouterr().err
    assert code != 0 and "regiongeom map: the network has max units" in err and "method='definition'" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "fn, msg",
    [
        (lambda h: F.max_pool2d(h, 2, return_indices=True)[0], "return_indices=True"),
        (lambda h: torch.max(h).expand(h.shape[0], 1), "every axis, including the batch axis"),
        (lambda h: h.amax().expand(h.shape[0], 1), "every axis, including the batch axis"),
        (lambda h: torch.amax(h, 0), "over the batch axis"),
        (lambda h: torch.max(h, 1)[1].double(), "indices of torch.max"),
        (lambda h: torch.max(h, 1).indices.double(), "indices of torch.max"),
        (lambda h: torch.maximum(h, -h), "max unit regiongeom does not convert"),
        (lambda h: torch.max(h, -h), "elementwise maximum of two tensors"),
        (lambda h: torch.max(h, torch.zeros(1, dtype=h.dtype)), "elementwise maximum of two tensors"),
        (lambda h: F.max_pool3d(h.unsqueeze(1), 2).flatten(1), "max unit regiongeom does not convert"),
    ],
)
def test_unsupported_max_calls_are_refused(fn, msg):
    m = _build(nn.Conv2d(1, 2, 2), Fn(fn), (1, 5, 5))
    with pytest.raises(
        TypeError,
        match=r"from_torch: .* at position 'mx' \(called at .*test_max_units.py:\d+: .*\) .*"
        + msg.replace("(", r"\("),
    ):
        rg.from_torch(m, input_shape=(1, 5, 5))


def test_return_indices_module_is_refused():
    model = nn.Sequential(nn.Conv2d(1, 2, 2), nn.MaxPool2d(2, return_indices=True)).eval()
    with pytest.raises(TypeError, match="MaxPool2d at position '1' .*return_indices=True"):
        rg.from_torch(model, input_shape=(1, 5, 5))


def test_maxout_constructor_validates():
    w, b = [np.ones((4, 2)), np.ones((1, 2))], [np.zeros(4), np.zeros(1)]
    with pytest.raises(ValueError, match="not a multiple of k=3"):
        rg.Network.maxout(w, b, k=3)
    with pytest.raises(ValueError, match="k must be one integer or one per maxout layer"):
        rg.Network.maxout(w, b, k=[2, 2])
    with pytest.raises(ValueError, match=r"k\[0\] must be an integer >= 1"):
        rg.Network.maxout(w, b, k=0)
    with pytest.raises(ValueError, match="layer shapes do not chain"):
        rg.Network.maxout([np.ones((4, 2)), np.ones((1, 3))], b, k=2)
    with pytest.raises(ValueError, match="at least one maxout layer"):
        rg.Network.maxout(w[:1], b[:1], k=2)
    with pytest.raises(ValueError, match="NaN or inf"):
        rg.Network.maxout([np.full((4, 2), np.nan), np.ones((1, 2))], b, k=2)


def test_stage_windows_are_validated():
    from regiongeom.graph import Stage

    op = (
        rg.Network.maxout([np.ones((4, 2)), np.ones((1, 2))], [np.zeros(4), np.zeros(1)], k=2)
        .stages[0]
        .operator
    )
    for w, msg in [
        (np.array([[0, 4], [1, 2]]), "must index the 4 preactivations"),
        (np.array([[0, 1], [-1, -1]]), "max unit 1 has an empty window"),
        (np.array([[0.0, 1.0], [2.0, 3.0]]), "integer array"),
        (np.array([[0, 1, 2, 3]]), "n_units=2"),
    ]:
        with pytest.raises(ValueError, match=msg):
            Stage(op, None, None, None, 0, (2,), "s", windows=w)


def test_hand_windows_with_repeats_and_absent_entries():
    """A stage built by hand (as the engine may): overlapping windows, a
    repeated index and an absent entry; pieces are the lowest winning position."""
    from dataclasses import replace

    base = rg.Network.maxout(
        [np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.ones((2, 1))], [np.zeros(3), np.zeros(2)], k=3
    )
    st = base.stages[0]
    windows = np.array([[0, 1, 2], [2, 2, -1], [-1, 1, 0]])
    out = rg.graph.Operator(_identity_node(3))
    stage = replace(st, shape=(3,), windows=windows)
    net = rg.GraphNetwork((2,), (stage,), out)
    x = np.array([[1.0, 1.0], [2.0, -1.0], [-1.0, -1.0], [0.0, 0.0]])
    z = np.stack([x[:, 0], x[:, 1], x.sum(1)], axis=1)
    want_out = np.stack([z.max(1), z[:, 2], np.maximum(z[:, 1], z[:, 0])], axis=1)
    np.testing.assert_array_equal(net(x), want_out)
    want_pat = []
    for zi in z:
        row = []
        for w in windows:
            vals = [zi[i] if i >= 0 else -np.inf for i in w]
            row.append(int(np.argmax(vals)))  # numpy's argmax: the first maximum
        want_pat.append(row)
    np.testing.assert_array_equal(net.patterns(x), want_pat)
    assert net.patterns(x)[:, 1].tolist() == [0, 0, 0, 0]  # the repeated index never wins at position 1
    # exact: the output through the selected entries
    ex = ExactGraph(net)
    for xi, pat in zip(x, net.patterns(x)):
        M = ex.output(pat)
        X = [Fraction(float(v)) for v in xi]
        assert [float(_value((M.m[o], M.e), X)) for o in range(3)] == net(xi[None])[0].tolist()


def _identity_node(n):
    from regiongeom import _graph_ops as g

    return g.Source(1, (n,))


def test_brute_force_helpers_can_fail():
    """The brute-force winner check notices a wrong tie rule (last instead of first)."""
    z = torch.tensor([[[1.0, 3.0, 3.0, 0.0]]], dtype=torch.float64)
    member = _reduce_member((1,), False, 2)
    assert _brute_winners(z, (1,), member).tolist() == [[1]]


def test_torch_export_program_with_max_units():
    """A torch.export program (aten.max_pool2d, aten.amax) converts like the module."""

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.pool, self.fc = nn.Conv2d(1, 2, 2), nn.MaxPool2d(2, 1), nn.Linear(18, 6)

        def forward(self, x):
            z = self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))
            return z.unflatten(1, (3, 2)).amax(-1)  # (a batch-size view would be specialised by export)

    torch.manual_seed(0)
    m = M().double().eval()
    x = _inputs((1, 5, 5), n=6, integer=True)
    prog = torch.export.export(m, (x,))
    net = rg.from_torch(prog.module(), input_shape=(1, 5, 5))
    ref = rg.from_torch(m, input_shape=(1, 5, 5))
    flat = x.reshape(6, -1).numpy()
    with torch.no_grad():
        np.testing.assert_array_equal(net(flat), m(x).numpy())
    np.testing.assert_array_equal(net.patterns(flat), ref.patterns(flat))
    assert [s.is_max for s in net.stages] == [False, True, True]


@pytest.mark.parametrize("seed", range(3))
def test_maxout_with_a_zero_piece_is_the_relu_network(seed):
    """max(z, 0) written as maxout with k = 2: the ReLU network's outputs, and
    its patterns with the pieces swapped (position 0, z, wins where z >= 0)."""
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(4, 2)), rng.normal(size=(3, 4)), rng.normal(size=(1, 3))]
    bs = [rng.normal(size=4), rng.normal(size=3), rng.normal(size=1)]
    relu = rg.Network.from_arrays(ws, bs, ["relu", "relu", None])
    w2, b2 = [], []
    for w, b in zip(ws[:-1], bs[:-1]):
        W, B = np.zeros((2 * w.shape[0], w.shape[1])), np.zeros(2 * w.shape[0])
        W[0::2], B[0::2] = w, b
        w2.append(W)
        b2.append(B)
    mx = rg.Network.maxout(w2 + ws[-1:], b2 + bs[-1:], k=2)
    x = np.concatenate([rng.normal(size=(50, 2)), np.zeros((1, 2))])
    # torch's F.linear and numpy's matmul may sum in different orders: equal up to rounding
    np.testing.assert_allclose(mx(x), relu(x), rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(mx.patterns(x), 1 - relu.patterns(x))
