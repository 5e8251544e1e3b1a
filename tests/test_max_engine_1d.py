"""The 1D engine on networks with max units (maxout MLPs, CNNs with MaxPool on a
line) against the exact rational reference tests/maxout_reference.py: regions
in order, patterns (the winner's position), lengths, locus points, linear
regions, ``net(x) == J x + c`` and ``rm.locate`` against ``net.patterns``."""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from maxout_reference import exact_max_forward, exact_max_regions, maxout_windows, relu_maxout_twins

import regiongeom as rg

torch = pytest.importorskip("torch")
nn = torch.nn

_ABSENT = -1e300  # a padding entry of the reference: a constant that never wins


def chain_spec(net):
    """The reference's layers for a chain graph network (each stage reads the
    previous tensor only): every operator written densely (its matrix and
    constant: the same float coefficients), max pools' absent entries as a
    constant row of -1e300."""
    spec = []
    for s, st in enumerate(net.stages):
        op = st.operator
        assert tuple(op.sources) == (s,), "chain networks only"
        W, b = op.matrix(), np.array(op.bias, np.float64)
        if st.is_max:
            w = st.windows.copy()
            if (w < 0).any():
                W = np.vstack([W, np.zeros((1, W.shape[1]))])
                b = np.append(b, _ABSENT)
                w[w < 0] = W.shape[0] - 1
            spec.append(("max", W, b, w))
        else:
            a = st.activation
            spec.append(("units", W, b, a.breakpoints, a.slopes, a.intercepts))
    assert tuple(net.output.sources) == (len(net.stages),)
    spec.append(("affine", net.output.matrix(), np.array(net.output.bias, np.float64)))
    return spec


def check_line(net1, spec, interval, rng=0, min_regions=2):
    """Every disagreement between the engine and the reference, as assertions."""
    lo, hi = interval
    rm = rg.activation_regions(net1, interval)
    ex = exact_max_regions(spec, interval)
    regs = sorted(ex.regions, key=lambda r: r.cell[0])
    assert len(rm) == len(regs) >= min_regions
    assert [tuple(p) for p in rm.patterns.tolist()] == [r.pattern for r in regs]
    # positions are floats: rounded relative to their size, lengths too
    width = hi - lo
    tol = 1e-9 * width + 1e-15 * max(abs(lo), abs(hi))
    assert np.abs(rm.measures - [float(r.measure) for r in regs]).max() <= tol
    # the float vertices are within rounding of the exact ends
    ends = [float(r.cell[1]) for r in regs[:-1]]
    assert np.abs(rm.vertices[1:-1] - ends).max(initial=0.0) <= 1e-9 * max(1.0, abs(lo), abs(hi))
    loc = rg.nonlinear_locus(rm)
    want = ex.locus_points()
    assert len(loc.points) == len(want)
    assert np.abs(np.sort(loc.points) - [float(v) for v in want]).max(initial=0.0) <= tol
    assert len(rg.linear_regions(rm)) == ex.n_linear
    # net(x) == J x + c at every interval's exact midpoint, against the exact map
    for r, reg in enumerate(regs):
        x = float(reg.interior_point()[0])
        if not regs[r].cell[0] < Fraction(x) < regs[r].cell[1]:
            continue
        y = rm.jacobians[r] @ [x] + rm.offsets[r]
        exact = [float(j[0] * Fraction(x) + c) for j, c in zip(reg.jacobian, reg.offset)]
        np.testing.assert_allclose(y, exact, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(net1(np.array([[x]])), [exact], rtol=1e-9, atol=1e-9)
    # rm.locate against the forward pass at random points; a disagreement must be
    # the float forward pass's (confirmed exactly), or a point on a float vertex
    # (which goes to the lower region, as documented)
    t = np.random.default_rng(rng).uniform(lo, hi, size=500)
    got = rm.patterns[rm.locate(t)]
    for i in np.nonzero((got != net1.patterns(t[:, None])).any(axis=1))[0]:
        if t[i] not in rm.vertices:
            assert tuple(got[i].tolist()) == exact_max_forward(spec, [t[i]])[1]
    return rm, ex


def _maxout(seed, widths, k, scale=1.0, integer=False):
    rng = np.random.default_rng(seed)
    ks = [k] * len(widths) if np.isscalar(k) else list(k)
    ws, bs, spec, prev = [], [], [], 1
    for n, kk in zip(widths, ks):
        if integer:
            W, b = rng.integers(-2, 3, size=(n * kk, prev)).astype(float), rng.integers(-2, 3, size=n * kk) / 2
        else:
            W, b = scale * rng.normal(size=(n * kk, prev)), rng.normal(size=n * kk)
        ws.append(W)
        bs.append(b)
        spec.append(("max", W, b, maxout_windows(n, kk)))
        prev = n
    Wo, bo = rng.normal(size=(2, prev)), rng.normal(size=2)
    spec.append(("affine", Wo, bo))
    return rg.Network.maxout(ws + [Wo], bs + [bo], ks), spec


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [2, 3, 5])
def test_random_maxout_lines(seed, k):
    net, spec = _maxout(seed, [4, 3], k)
    check_line(net, spec, (-3.0, 3.0), rng=seed, min_regions=4)


@pytest.mark.parametrize("seed", range(3))
def test_mixed_ranks_and_depth(seed):
    net, spec = _maxout(seed, [3, 4, 2], [2, 4, 3])
    check_line(net, spec, (-4.0, 4.0), rng=seed, min_regions=4)


@pytest.mark.parametrize("seed", range(4))
def test_integer_weights_exact_ties(seed):
    """Integer weights and half-integer biases on an integer interval: entries
    equal on whole intervals, ties at the ends and several entries tying at
    one point; duplicate rows make identical entries (lowest position wins)."""
    net, spec = _maxout(seed, [4, 3], 3, integer=True)
    check_line(net, spec, (-3.0, 3.0), rng=seed)


def test_duplicate_window_entries_and_three_way_ties():
    # unit 0: max(x, x, -x, 0) (a repeated entry); unit 1: max(x, 2x, 0) (all three tie at 0)
    W1 = np.array([[1.0], [-1.0], [0.0], [1.0], [2.0], [0.0]])
    b1 = np.zeros(6)
    windows = np.array([[0, 0, 1, 2], [3, 4, 5, 5]])
    spec = [("max", W1, b1, windows), ("affine", np.array([[1.0, -1.0]]), np.zeros(1))]
    from regiongeom import _graph_ops as g
    from regiongeom.graph import GraphNetwork, Operator, Stage

    node = g.Linear(g.Source(0, (1,)), torch.from_numpy(W1), torch.from_numpy(b1))
    node.shape = (6,)
    out = g.Linear(g.Source(1, (2,)), torch.tensor([[1.0, -1.0]], dtype=torch.float64), torch.zeros(1, dtype=torch.float64))
    out.shape = (1,)
    net = GraphNetwork((1,), (Stage(Operator(node), None, None, None, 0, (2,), "max", windows=windows),), Operator(out))
    rm, _ = check_line(net, spec, (-2.0, 2.0))
    # |x| - max(x, 2x, 0): one point at 0 where both units change winner
    assert rm.vertices.tolist() == [-2.0, 0.0, 2.0]
    assert rm.patterns.tolist() == [[2, 2], [0, 1]]


def test_max_of_zero_is_relu():
    """A maxout network whose units are max(z, 0) (k = 2, the second entry 0)
    has the ReLU network's breakpoints, patterns 1 - p and locus."""
    rng = np.random.default_rng(3)
    relu, mx = relu_maxout_twins(rng, 1, (5, 4))
    a, b = rg.activation_regions(relu, (-4.0, 4.0)), rg.activation_regions(mx, (-4.0, 4.0))
    assert len(a) == len(b) > 4
    # the same exact points (their floats differ by rounding: other operations)
    np.testing.assert_allclose(a.vertices, b.vertices, rtol=1e-13, atol=1e-14)
    np.testing.assert_array_equal(a.patterns, 1 - b.patterns)
    la, lb = rg.nonlinear_locus(a).points, rg.nonlinear_locus(b).points
    assert len(la) == len(lb) > 2
    np.testing.assert_allclose(la, lb, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(b.jacobians, a.jacobians, rtol=1e-12, atol=1e-14)


class _Pool1d(nn.Module):
    """Conv1d -> ReLU -> MaxPool1d(3, stride 2, padding 1, ceil_mode) -> Conv1d
    -> MaxPool1d(2) directly on the convolution -> Linear."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(1, 2, 3)
        self.p1 = nn.MaxPool1d(3, stride=2, padding=1, ceil_mode=True)
        self.c2 = nn.Conv1d(2, 2, 2)
        self.p2 = nn.MaxPool1d(2)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = self.p1(torch.relu(self.c1(x)))
        return self.fc(self.p2(self.c2(x)).flatten(1))


class _Pool2d(nn.Module):
    """Conv2d -> ReLU -> MaxPool2d(2, stride 1) (overlapping windows) -> Linear."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 2, 2)
        self.p = nn.MaxPool2d(2, stride=1)
        self.fc = nn.Linear(2 * 3 * 3, 2)

    def forward(self, x):
        return self.fc(self.p(torch.relu(self.c(x))).flatten(1))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", ["pool1d", "pool2d"])
def test_cnn_with_maxpool_on_a_line(seed, kind):
    torch.manual_seed(seed)
    model, shape = (_Pool1d(), (1, 10)) if kind == "pool1d" else (_Pool2d(), (1, 5, 5))
    model = model.double().eval()
    net = rg.from_torch(model, input_shape=shape)
    assert net.has_max_units
    rng = np.random.default_rng(seed)
    line = rg.Line.through(*(2.0 * rng.normal(size=(2, int(np.prod(shape))))))
    lo, hi = line.bounds()
    net1 = net.restrict(line)
    rm, _ = check_line(net1, chain_spec(net1), (lo, hi), rng=seed, min_regions=4)
    mid = (rm.vertices[:-1] + rm.vertices[1:]) / 2
    with torch.no_grad():
        direct = model(torch.from_numpy(line.lift(mid)).reshape(-1, *shape)).numpy()
    np.testing.assert_allclose(rm.jacobians[:, :, 0] * mid[:, None] + rm.offsets, direct, rtol=1e-9, atol=1e-9)


def test_cnn_with_integer_weights_ties():
    """A MaxPool over a ReLU conv whose weights are integers: many entries are
    0 on whole intervals (exact ties), as are equal neighbours."""
    torch.manual_seed(0)
    model = _Pool2d().double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.round(2 * p))
    net = rg.from_torch(model, input_shape=(1, 5, 5))
    x0, x1 = np.zeros(25), np.zeros(25)
    x0[::2], x1[1::3] = 1.0, -1.0
    line = rg.Line.through(x0, x1)
    net1 = net.restrict(line)
    check_line(net1, chain_spec(net1), (-3.0, 3.0), min_regions=3)


def test_volume_in_balls_on_maxout():
    net, spec = _maxout(1, [4, 3], 3)
    rm = rg.activation_regions(net, (-3.0, 3.0))
    loc = rg.nonlinear_locus(rm)
    c = np.array([-1.0, 0.0, 2.0])
    got = loc.volume_in_balls(c[:, None], 0.7)
    want = [np.count_nonzero(np.abs(loc.points - v) <= 0.7) for v in c]
    np.testing.assert_array_equal(got, want)


def test_max_regions_limit():
    net, _ = _maxout(0, [6, 6], 4)
    with pytest.raises(rg.RegionLimitError, match="max_regions=3"):
        rg.activation_regions(net, (-5.0, 5.0), max_regions=3)


def test_three_inputs_refused_with_a_clear_message():
    rng = np.random.default_rng(0)
    net = rg.Network.maxout([rng.normal(size=(6, 3)), rng.normal(size=(1, 3))], [np.zeros(6), np.zeros(1)], 2)
    with pytest.raises(ValueError, match=r"1 or 2 inputs; this one has 3: restrict it .*rg\.Plane\.through"):
        rg.activation_regions(net, (-1.0, -1.0, 1.0, 1.0))


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="already running without JIT")
def test_without_jit():
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", __file__,
           "-k", "duplicate_window or max_of_zero or (integer_weights_exact_ties and 0)"]  # fmt: skip
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]


@pytest.mark.parametrize("seed", range(3))
def test_zoom_onto_a_breakpoint(seed):
    """Exact at every scale: a window of width 2e-13 around a breakpoint of the
    network (the float of an exact tie) against the reference."""
    net, spec = _maxout(seed, [4, 3], 3)
    rm = rg.activation_regions(net, (-3.0, 3.0))
    x0 = float(rm.vertices[len(rm.vertices) // 2])
    check_line(net, spec, (x0 - 1e-13, x0 + 1e-13), rng=seed, min_regions=1)


@pytest.mark.parametrize("scale", [2.0**-600, 2.0**400])
def test_scaled_weights_and_biases(scale):
    """The first layer's weights and biases scaled by a power of two (exactly):
    the same regions and patterns as unscaled, against the reference too."""
    net, spec = _maxout(4, [4, 3], 3)
    W1, b1 = spec[0][1] * scale, spec[0][2] * scale
    W2 = spec[1][1] / scale
    spec2 = [("max", W1, b1, spec[0][3]), ("max", W2, spec[1][2], spec[1][3]), spec[2]]
    net2 = rg.Network.maxout([W1, W2, spec[2][1]], [b1, spec[1][2], spec[2][2]], 3)
    a, b = rg.activation_regions(net, (-3.0, 3.0)), rg.activation_regions(net2, (-3.0, 3.0))
    np.testing.assert_array_equal(a.patterns, b.patterns)
    np.testing.assert_allclose(a.vertices, b.vertices, rtol=1e-12)
    check_line(net2, spec2, (-3.0, 3.0), min_regions=4)


class _AmaxAdaptive(nn.Module):
    """Conv1d -> ReLU -> amax over the channels (keepdim) -> AdaptiveMaxPool1d(3)
    (windows of unequal sizes, padded with absent entries) -> Linear."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(1, 3, 3)
        self.p = nn.AdaptiveMaxPool1d(3)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(self.p(torch.relu(self.c(x)).amax(dim=1, keepdim=True)).flatten(1))


@pytest.mark.parametrize("seed", range(2))
def test_amax_and_adaptive_pool_on_a_line(seed):
    torch.manual_seed(seed)
    model = _AmaxAdaptive().double().eval()
    net = rg.from_torch(model, input_shape=(1, 9))
    assert sum(st.is_max for st in net.stages) == 2
    rng = np.random.default_rng(seed)
    line = rg.Line.through(*(2.0 * rng.normal(size=(2, 9))))
    lo, hi = line.bounds()
    net1 = net.restrict(line)
    rm, _ = check_line(net1, chain_spec(net1), (lo, hi), rng=seed, min_regions=4)
    mid = (rm.vertices[:-1] + rm.vertices[1:]) / 2
    with torch.no_grad():
        direct = model(torch.from_numpy(line.lift(mid)).reshape(-1, 1, 9)).numpy()
    np.testing.assert_allclose(rm.jacobians[:, :, 0] * mid[:, None] + rm.offsets, direct, rtol=1e-9, atol=1e-9)


def test_cli_regions_on_a_line(tmp_path, capsys):
    """``regiongeom regions MODEL --line POINTS.npy`` on a CNN with MaxPool."""
    from regiongeom.cli import main

    torch.manual_seed(1)
    model = _Pool1d().double().eval()
    path = tmp_path / "m.pt2"  # an exported program carries its input shape
    torch.export.save(torch.export.export(model, (torch.zeros(1, 1, 10, dtype=torch.float64),)), str(path))
    pts = np.random.default_rng(1).normal(size=(2, 1, 10))
    np.save(tmp_path / "p.npy", pts)
    assert main(["regions", str(path), "--line", str(tmp_path / "p.npy")]) == 0
    out = capsys.readouterr().out
    line = rg.Line.through(*pts.reshape(2, -1))
    rm = rg.activation_regions(rg.from_torch(model, input_shape=(1, 10)).restrict(line), line.bounds())
    assert f"activation regions: {len(rm):,}" in out
    assert f"linear regions: {len(rg.linear_regions(rm)):,}" in out


@pytest.mark.parametrize("seed", range(2))
def test_pool_on_the_input_then_hardtanh(seed):
    """A MaxPool2d right on the input (its entries are the line's coordinates'
    affine maps), then a convolution with a Hardtanh (two breakpoints)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.MaxPool2d(2, stride=1, padding=1), nn.Conv2d(1, 2, 2), nn.Hardtanh(-0.3, 0.4),
                          nn.Flatten(), nn.Linear(2 * 4 * 4, 2)).double().eval()  # fmt: skip
    net = rg.from_torch(model, input_shape=(1, 4, 4))
    rng = np.random.default_rng(seed)
    line = rg.Line.through(*rng.normal(size=(2, 16)))
    net1 = net.restrict(line)
    check_line(net1, chain_spec(net1), line.bounds(), rng=seed, min_regions=4)
