"""Max units in the 2D engine against the exact rational reference
(tests/maxout_reference.py): maxout MLPs (k = 2, 3, 4), ReLU and max stages
mixed, CNNs with MaxPool2d on a plane (overlapping windows, padding,
ceil_mode), exact ties (duplicate entries, repeated indices, integer
weights); regions, patterns, areas, locus length (per unit), linear regions,
``net(x) == J x + c`` (exactly), ``rm.locate`` against the forward pass; a
maxout network computing max(z, 0) has the ReLU network's regions."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from fractions import Fraction as F
from pathlib import Path

import numpy as np
import pytest
from exact_compare import _compare_locus, _compare_regions, _sample
from maxout_reference import exact_max_forward, exact_max_regions, maxout_windows, relu_maxout_twins

import regiongeom as rg

torch = pytest.importorskip("torch")
nn = torch.nn

HERE = Path(__file__).parent


# ------------------------------------------------------------------ helpers ----
def spec_of(net):
    """The reference's layers for a chain :class:`GraphNetwork` (every stage
    reads the previous tensor only), from its operators' dense matrices (exact
    for dense maps, lifted maps and gathers)."""
    spec = []
    for s, st in enumerate(net.stages):
        op = st.operator
        assert tuple(op.sources) == (s,), "spec_of takes chains only"
        W, b = op.matrix(), np.asarray(op.bias, np.float64)
        if st.is_max:
            spec.append(("max", W, b, np.asarray(st.windows)))
        else:
            a = st.activation
            assert a is not None
            spec.append(("units", W, b, a.breakpoints, a.slopes, a.intercepts))
    op = net.output
    assert tuple(op.sources) == (len(net.stages),)
    spec.append(("affine", op.matrix(), np.asarray(op.bias, np.float64)))
    return spec


def max_graph(layers, out_w, out_b):
    """A GraphNetwork of max stages from arrays: ``layers`` [(W, b, windows)]."""
    from regiongeom import _graph_ops as g
    from regiongeom.graph import GraphNetwork, Operator, Stage

    stages, offset = [], 0
    x = g.Source(0, (np.asarray(layers[0][0]).shape[1],))
    for i, (w, b, win) in enumerate(layers):
        node = g.Linear(x, torch.from_numpy(np.array(w, np.float64)), torch.from_numpy(np.array(b, np.float64)))
        node.shape = (len(w),)
        n = len(win)
        stages.append(Stage(Operator(node), None, None, None, offset, (n,), f"max{i}", windows=np.asarray(win)))
        offset += n
        x = g.Source(len(stages), (n,))
    node = g.Linear(x, torch.from_numpy(np.array(out_w, np.float64)), torch.from_numpy(np.array(out_b, np.float64)))
    node.shape = (len(out_w),)
    return GraphNetwork((np.asarray(layers[0][0]).shape[1],), tuple(stages), Operator(node))


def _affine_errors(rm, spec, ex):
    """``J x + c`` against the exact output at every region's interior point
    (or, for a region of float area 0, the exact region of its pattern)."""
    by_pattern = {tuple(r.pattern): r for r in ex.regions}
    out = []
    for r, x in enumerate(rm.interior_points()):
        pat = tuple(int(v) for v in rm.patterns[r])
        if rm.measures[r] == 0.0:
            ref = by_pattern[pat]
            x = np.array([float(v) for v in ref.interior_point()])
        y, got = exact_max_forward(spec, x)
        if got != pat and rm.measures[r] != 0.0:
            ref = by_pattern.get(pat)
            if ref is None or not _near_cell(x, ref.cell):
                out.append(f"affine: region {r}'s interior point has pattern {got}, region {pat}")
                continue
            # a sliver thinner than the float vertices' rounding (its float
            # polygon may even have a negative area): the exact region's point
            x = np.array([float(v) for v in ref.interior_point()])
            y, got = exact_max_forward(spec, x)
        eng = rm.jacobians[r] @ x + rm.offsets[r]
        err = max(abs(F(float(e)) - v) for e, v in zip(eng, y))
        scale = max(1.0, max(abs(float(v)) for v in y))
        if err > F(1e-9) * F(scale):
            out.append(f"affine: region {r} off by {float(err):.3g}")
    return out[:3]


def _near_cell(x, cell, tol=1e-9):
    """Whether the float point ``x`` is within ``tol`` (relative to its size)
    of the exact 2D cell (CCW Fraction vertices)."""
    from shapely.geometry import Point, Polygon

    poly = Polygon([(float(a), float(b)) for a, b in cell])
    return poly.distance(Point(float(x[0]), float(x[1]))) <= tol * max(1.0, float(np.abs(x).max()))


def compare_max(net, spec, domain, n_points=300, seed=0):
    """Every disagreement of the engine with the exact reference (empty: none)."""
    ex = exact_max_regions(spec, domain)
    rm = rg.activation_regions(net, domain)
    out = _compare_regions(rm, ex)
    loc = rg.nonlinear_locus(rm)
    out += _compare_locus(loc, ex)
    n_lin = len(rg.linear_regions(rm))
    if n_lin != ex.n_linear:
        out.append(f"linear: {n_lin} linear regions, exact {ex.n_linear}")
    out += _affine_errors(rm, spec, ex)
    pts = _sample(domain, n_points, np.random.default_rng(seed))
    idx = rm.locate(pts)
    fwd = net.patterns(pts)
    bad = np.nonzero(np.any(rm.patterns[idx] != fwd, axis=1))[0]
    wrong = [i for i in bad if tuple(rm.patterns[idx[i]].tolist()) != exact_max_forward(spec, pts[i])[1]]
    if wrong:
        out.append(f"locate: {len(wrong)} of {n_points} points located in the wrong region")
    return out, rm, ex


BOX = (-2.0, -2.0, 2.0, 2.0)


# ------------------------------------------------------------------ maxout ----
@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("seed", range(3))
def test_random_maxout(k, seed):
    rng = np.random.default_rng(seed)
    widths = [4, 3] if seed != 2 else [3, 3, 2]
    ws, bs, prev = [], [], 2
    for n in widths:
        ws.append(rng.normal(size=(n * k, prev)))
        bs.append(rng.normal(size=n * k) * 0.5)
        prev = n
    ws.append(rng.normal(size=(2, prev)))
    bs.append(rng.normal(size=2))
    net = rg.Network.maxout(ws, bs, k)
    out, rm, ex = compare_max(net, spec_of(net), BOX)
    assert out == []
    assert len(rm) > 5
    assert rm.patterns.dtype == np.int8


def test_max_with_zero_equals_relu():
    """k = 2 with a second piece of zero row and bias: max(z, 0), the ReLU
    network's regions (piece 0 of the max unit is the ReLU's active piece)."""
    rng = np.random.default_rng(5)
    relu, mx = relu_maxout_twins(rng, 2, (5, 4), bias_scale=0.5)
    a, b = rg.activation_regions(relu, BOX), rg.activation_regions(mx, BOX)
    assert len(a) == len(b)
    pa = {tuple(p): m for p, m in zip(a.patterns.tolist(), a.measures)}
    pb = {tuple(1 - v for v in p): m for p, m in zip(b.patterns.tolist(), b.measures)}
    assert pa.keys() == pb.keys()
    assert max(abs(pa[p] - pb[p]) for p in pa) < 1e-12
    la, lb = rg.nonlinear_locus(a), rg.nonlinear_locus(b)
    assert abs(la.volume() - lb.volume()) < 1e-9
    assert len(rg.linear_regions(a)) == len(rg.linear_regions(b))


# ------------------------------------------------------------------ ties ----
def test_exact_ties_duplicates_and_repeats():
    """Integer weights with duplicate rows (entries equal everywhere), windows
    that overlap and repeat an index, an absent entry."""
    rng = np.random.default_rng(3)
    W1 = rng.integers(-2, 3, size=(6, 2)).astype(float)
    b1 = rng.integers(-2, 3, size=6) / 2
    W1[3], b1[3] = W1[1], b1[1]  # entries 1 and 3 are one function
    win1 = np.array([[0, 1, 2], [1, 3, 4], [2, 2, 5], [5, -1, 0]])
    W2 = rng.integers(-2, 3, size=(4, 4)).astype(float)
    b2 = rng.integers(-1, 2, size=4).astype(float)
    win2 = np.array([[0, 1], [1, 2], [3, 3]])
    Wo, bo = rng.normal(size=(2, 3)), rng.normal(size=2)
    net = max_graph([(W1, b1, win1), (W2, b2, win2)], Wo, bo)
    spec = [("max", W1, b1, win1), ("max", W2, b2, win2), ("affine", Wo, bo)]
    out, rm, _ = compare_max(net, spec, (-3.0, -3.0, 3.0, 3.0))
    assert out == []
    assert len(rm) > 5


@pytest.mark.parametrize("seed", range(3))
def test_integer_maxout_many_ties(seed):
    rng = np.random.default_rng(10 + seed)
    ws = [rng.integers(-2, 3, size=(9, 2)).astype(float), rng.integers(-2, 3, size=(6, 3)).astype(float)]
    bs = [rng.integers(-2, 3, size=9).astype(float), rng.integers(-2, 3, size=6).astype(float)]
    ws.append(rng.integers(-2, 3, size=(1, 2)).astype(float))
    bs.append(np.zeros(1))
    net = rg.Network.maxout(ws, bs, 3)
    out, rm, _ = compare_max(net, spec_of(net), (-2.0, -2.0, 2.0, 2.0))
    assert out == []


# ------------------------------------------------------------------ torch ----
class _Amax(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x):
        return x.view(x.shape[0], -1, self.k).amax(-1)


@pytest.mark.parametrize("seed", range(2))
def test_relu_and_max_mixed(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 8), _Amax(2), nn.Linear(4, 5), nn.ReLU(),
                      nn.Linear(5, 2)).double()  # fmt: skip
    net = rg.from_torch(m, input_shape=(2,))
    assert net.has_max_units
    out, rm, _ = compare_max(net, spec_of(net), BOX)
    assert out == []


def _cnn(pool, seed, shape=(1, 6, 6), channels=2):
    torch.manual_seed(seed)
    conv = nn.Conv2d(shape[0], channels, 3)
    with torch.no_grad():
        y = pool(conv(torch.zeros(1, *shape)))
    m = nn.Sequential(conv, nn.ReLU(), pool, nn.Flatten(), nn.Linear(y.numel(), 3)).double().eval()
    return m


def _plane_net(m, shape, seed):
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(3,) + shape)
    net = rg.from_torch(m, input_shape=shape)
    return net.restrict(rg.Plane.through(*pts))


@pytest.mark.parametrize(
    "pool",
    [
        dict(kernel_size=3, stride=2),
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
        dict(kernel_size=2, stride=1),
    ],
)
def test_cnn_maxpool_on_a_plane(pool):
    m = _cnn(nn.MaxPool2d(**pool), 0)
    net = _plane_net(m, (1, 6, 6), 1)
    spec = spec_of(net)
    out, rm, ex = compare_max(net, spec, (-1.0, -1.0, 1.0, 1.0), n_points=200)
    assert out == []
    assert len(rm) > 10
    stage = [st for st in net.stages if st.is_max][0]
    tie = (rm.edge_neurons >= stage.offset) & (rm.edge_neurons < stage.offset + stage.n)
    assert tie.any()  # some edges are max-pool ties


def test_no_jit_tiny_case():
    """The max kernels without numba's JIT (pure Python) agree with the jitted run."""
    if os.environ.get("NUMBA_DISABLE_JIT") == "1":
        pytest.skip("already running without JIT")
    code = (
        "import sys; sys.path.insert(0, 'tests');"
        "import numpy as np, regiongeom as rg;"
        "from test_max_engine_2d import compare_max, spec_of;"
        "rng = np.random.default_rng(1);"
        "net = rg.Network.maxout([rng.normal(size=(6, 2)), rng.normal(size=(4, 3)), rng.normal(size=(1, 2))],"
        " [rng.normal(size=6), rng.normal(size=4), rng.normal(size=1)], [2, 2]);"
        "out, rm, ex = compare_max(net, spec_of(net), (-2.0, -2.0, 2.0, 2.0), n_points=50);"
        "assert out == [], out; print(len(rm))"
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=HERE.parent)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert int(r.stdout.split()[-1]) > 3


def test_no_jit_one_pass_stages():
    """The one-pass forming kernels (a max pool's copy stage; a convolution
    reading it through its sparse columns, forced on this small one) without
    numba's JIT agree with the exact reference."""
    code = textwrap.dedent(
        """
        import sys; sys.path.insert(0, 'tests')
        import numpy as np, torch, torch.nn as nn, regiongeom as rg
        from regiongeom._engine import _graph_form, graph_plan
        from test_max_engine_2d import compare_max, spec_of, _sparse_images
        _graph_form._SPARSE_DENSITY = 1.0
        seen, orig = set(), graph_plan.stage_spec
        def spy(*a):
            spec = orig(*a)
            if spec is not None:
                seen.add(spec.form.__name__)
            return spec
        graph_plan.stage_spec = spy
        torch.manual_seed(3)
        m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2, stride=1), nn.Conv2d(2, 2, 2), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 2)).double().eval()
        imgs = _sparse_images(np.random.default_rng(0), (1, 6, 6))
        net = rg.from_torch(m, input_shape=(1, 6, 6)).restrict(rg.Plane.through(*imgs))
        out, rm, ex = compare_max(net, spec_of(net), (-0.3, -0.3, 1.3, 1.3), n_points=50)
        assert out == [], out
        print(sorted(seen), len(rm))
        """
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=HERE.parent)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "['form_gather', 'form_sparse']" in r.stdout
    assert int(r.stdout.split()[-1]) > 20


def _sparse_images(rng, shape, n=3):
    """``n`` small integer "images" with a shared zero background and a few
    strokes, as digits have: on the plane through them many conv outputs are
    the same function, and many tie lines meet or coincide (exact ties)."""
    imgs = np.zeros((n,) + shape)
    c, h, w = shape
    for i in range(n):
        for _ in range(3):
            y, x = rng.integers(1, h - 1), rng.integers(1, w - 1)
            imgs[i, 0, y, x : x + 2] = rng.integers(1, 4)
    return imgs


@pytest.mark.slow
def test_cnn_two_maxpools_on_a_plane_through_sparse_images():
    """conv -> ReLU -> MaxPool -> conv -> ReLU -> MaxPool -> Linear on the plane
    through three sparse integer images: the first pool reads a stage of the
    plane's coordinates (its constant units are recomputed from them, "uv"
    mode; constant units whose winner changes piece get columns), ties are
    exact; against the exact reference."""
    from regiongeom._engine import _graph_max

    torch.manual_seed(3)
    m = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2, stride=1), nn.Conv2d(3, 2, 2), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 2)).double().eval()  # fmt: skip
    with torch.no_grad():
        m[0].weight.copy_(torch.round(m[0].weight * 8) / 8)
        m[0].bias.copy_(torch.round(m[0].bias * 8) / 8)
    shape = (1, 7, 7)
    imgs = _sparse_images(np.random.default_rng(0), shape)
    net = rg.from_torch(m, input_shape=shape).restrict(rg.Plane.through(*imgs))
    seen = {}
    form = _graph_max.form_max

    def spy(plan, s, *a):
        out = form(plan, s, *a)
        seen[s] = plan.info[s + 1]
        return out

    _graph_max.form_max = spy
    try:
        out, rm, ex = compare_max(net, spec_of(net), (-0.3, -0.3, 1.3, 1.3), n_points=200)
    finally:
        _graph_max.form_max = form
    assert out == []
    assert len(rm) > 50
    first = seen[1]
    assert first.mode == "uv" and first.live.size and first.uv_src.size == first.live.size
    assert seen[3].mode == "partial"


@pytest.mark.slow
def test_stages_formed_in_one_pass_match_the_general_path():
    """Two kinds of stages are formed in one pass (``_graph_form``): a max
    pool's, a copy of the stage before it, from coordinates ("uv" mode, the
    first pool) and from partial sums ("partial" mode, the second); and a
    convolution reading a max pool in "uv" mode through its sparse columns
    (forced here on a small convolution, whose columns are not sparse). At
    every block the values agree with the general path's within the two
    certified bounds (the copy stages' bounds are the general path's); the
    regions agree with the exact reference; and the max stages' certain
    winners kept for the cut's first roots change nothing."""
    from regiongeom._engine import _graph_form, _graph_max, graph_plan

    torch.manual_seed(3)
    m = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2, stride=1), nn.Conv2d(3, 2, 2), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 2)).double().eval()  # fmt: skip
    shape = (1, 7, 7)
    imgs = _sparse_images(np.random.default_rng(0), shape)
    net = rg.from_torch(m, input_shape=shape).restrict(rg.Plane.through(*imgs))
    box = (-0.3, -0.3, 1.3, 1.3)
    block = graph_plan.GraphPlan._block
    seen = []

    def both(plan, s, values, lay, eps, a, b, consts):
        z, e = block(plan, s, values, lay, eps, a, b, consts)
        spec = plan._gather_spec(s, lay, consts)
        if spec is not None:
            plan._specs[s] = (lay, consts, None)  # the general path, once
            z0, e0 = block(plan, s, values, lay, eps, a, b, consts)
            plan._specs[s] = (lay, consts, spec)
            rn = np.asarray(plan.rn[s])
            assert np.all(np.abs(z - z0) <= (e + e0)[:, None] * rn[None, :])
            if spec.form is _graph_form.form_gather:
                assert np.allclose(e, e0, rtol=1e-12, atol=0)
            seen.append((s, spec.form.__name__, plan.info[s].mode, len(consts[4]) > 0))
        return z, e

    density = _graph_form._SPARSE_DENSITY
    graph_plan.GraphPlan._block = both
    _graph_form._SPARSE_DENSITY = 1.0
    try:
        rm = rg.activation_regions(net, box)
        out, rm_ex, _ = compare_max(net, spec_of(net), box, n_points=100)
    finally:
        graph_plan.GraphPlan._block = block
        _graph_form._SPARSE_DENSITY = density
    assert out == []
    assert {(1, "form_gather", "uv", False), (2, "form_sparse", "uv", False), (3, "form_gather", "partial", True)} <= set(seen)
    limit = _graph_max._KNOWN_BYTES
    _graph_max._KNOWN_BYTES = 0  # winners recomputed at the cut
    try:
        rm0 = rg.activation_regions(net, box)
    finally:
        _graph_max._KNOWN_BYTES = limit
    assert len(rm) == len(rm0) == len(rm_ex) > 50
    assert np.array_equal(rm.patterns, rm0.patterns)

    # a maxout network: its layers read the previous max stage's crossing units
    # (its constant units arrive as partial sums) through a dense operator
    rng = np.random.default_rng(5)
    ws, bs, prev = [], [], 2
    for n in (6, 5):
        ws.append(rng.normal(size=(n * 3, prev)))
        bs.append(rng.normal(size=n * 3) * 0.5)
        prev = n
    ws.append(rng.normal(size=(2, prev)))
    bs.append(rng.normal(size=2))
    net = rg.Network.maxout(ws, bs, 3)
    seen.clear()
    graph_plan.GraphPlan._block = both
    try:
        out, rm, _ = compare_max(net, spec_of(net), (-0.4, -0.4, 0.4, 0.4))  # small: some units constant
    finally:
        graph_plan.GraphPlan._block = block
    assert out == [] and len(rm) > 5
    assert (1, "form_dense", "partial", True) in set(seen)


@pytest.mark.slow
def test_locus_edges_where_a_conv_neuron_and_its_pool_change_together():
    """conv -> ReLU -> MaxPool(2) (windows apart) -> Linear on planes: across
    many edges a conv neuron turns on and becomes its window's winner, two
    neurons changing piece at once. Those edges are decided from the pool
    unit's impulse and the two winners' gradients
    (``_graph_maps._pool_pairs``): jumps (seed 0) and non-jumps (seed 3: the
    unit is read by zero weights) both occur, and the locus and linear regions
    agree with the exact reference and with the path that compares the two
    regions' maps."""
    from regiongeom import _graph_maps

    pairs = _graph_maps._pool_pairs
    kinds = set()
    for seed in (0, 3):
        torch.manual_seed(seed)
        m = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(18, 2))
        m = m.double().eval()
        with torch.no_grad():
            m[4].weight[:, :6] = 0.0  # units read by nothing: their impulses are exactly 0
        pts = np.random.default_rng(seed).normal(size=(3, 1, 7, 7))
        net = rg.from_torch(m, input_shape=(1, 7, 7)).restrict(rg.Plane.through(*pts))
        decided = []

        def spy(*a):
            d = pairs(*a)
            decided.append(d)
            return d

        _graph_maps._pool_pairs = spy
        try:
            out, rm, ex = compare_max(net, spec_of(net), (-1.0, -1.0, 2.0, 2.0), n_points=100)
            fast = _graph_maps.edge_jumps(rm)
            _graph_maps._pool_pairs = lambda net, P, a, b, j: np.zeros(len(a), np.int8)
            slow = _graph_maps.edge_jumps(rm)
        finally:
            _graph_maps._pool_pairs = pairs
        assert out == []
        assert np.array_equal(fast, slow)
        kinds |= set(np.concatenate(decided).tolist())
    assert {1, -1} <= kinds
