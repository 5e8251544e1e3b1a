"""Regions of torch models on planes against a reference that runs the model
itself (tests/torch_slice_reference.py) and needs no conversion."""

from __future__ import annotations

import numpy as np
import pytest

import regiongeom as rg

torch = pytest.importorskip("torch")
nn = torch.nn

from torch_slice_reference import slice_regions  # noqa: E402


def _compare(model, n_in, seed):
    rng = np.random.default_rng(seed)
    plane = rg.Plane.through(*rng.normal(size=(3, n_in)))
    box = plane.bounds()
    rm = rg.activation_regions(rg.from_torch(model).restrict(plane), box)
    pats, areas = slice_regions(model, plane.lift, (n_in,), box)
    assert len(rm) == len(pats)
    assert {tuple(p) for p in rm.patterns} == {tuple(p) for p in pats}
    order_a = np.lexsort(rm.patterns.T[::-1])
    order_b = np.lexsort(pats.T[::-1])
    np.testing.assert_allclose(rm.measures[order_a], areas[order_b], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_mlp_plane_against_model_reference(seed):
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 6), nn.Hardtanh(-0.5, 0.5), nn.Linear(6, 5),
        nn.LeakyReLU(0.1), nn.Linear(5, 2),
    ).double()  # fmt: skip
    _compare(model, 6, seed)


def test_reference_sees_every_unit_module():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU6(), nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1)).double()
    rng = np.random.default_rng(0)
    plane = rg.Plane.through(*rng.normal(size=(3, 4)))
    pats, areas = slice_regions(model, plane.lift, (4,), plane.bounds())
    assert pats.shape[1] == 6
    x0, y0, x1, y1 = plane.bounds()
    assert areas.sum() == pytest.approx((x1 - x0) * (y1 - y0), rel=1e-12)


class _Residual(nn.Module):
    """A residual MLP: two blocks h + W2 relu(W1 h), per-channel PReLU in the second."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(5, 6)
        self.r0 = nn.ReLU()
        self.a1, self.b1, self.u1 = nn.Linear(6, 7), nn.Linear(7, 6), nn.ReLU()
        self.a2, self.b2, self.u2 = nn.Linear(6, 7), nn.Linear(7, 6), nn.PReLU(7)
        self.r2 = nn.ReLU()
        self.out = nn.Linear(6, 3)

    def forward(self, x):
        h = self.r0(self.inp(x))
        h = h + self.b1(self.u1(self.a1(h)))
        h = self.r2(h + self.b2(self.u2(self.a2(h))))
        return self.out(h)


class _SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.u1 = nn.ReLU()
        self.c2 = nn.Conv2d(3, 4, 3, stride=2)
        self.u2 = nn.LeakyReLU(0.1)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        h = self.u2(self.c2(self.u1(self.bn(self.c1(x)))))
        return self.fc(self.pool(h).flatten(1))


def _compare_graph(model, shape, seed):
    rng = np.random.default_rng(seed)
    n_in = int(np.prod(shape))
    net = rg.from_torch(model.eval(), input_shape=shape)
    assert isinstance(net, rg.GraphNetwork)
    plane = rg.Plane.through(*rng.normal(size=(3, n_in)))
    box = plane.bounds()
    rm = rg.activation_regions(net.restrict(plane), box)
    pats, areas = slice_regions(model, plane.lift, shape, box)
    assert len(rm) == len(pats)
    assert {tuple(p) for p in rm.patterns} == {tuple(p) for p in pats}
    order_a = np.lexsort(rm.patterns.T[::-1])
    order_b = np.lexsort(pats.T[::-1])
    np.testing.assert_allclose(rm.measures[order_a], areas[order_b], rtol=1e-9, atol=1e-12)
    uv = rng.uniform(box[:2], box[2:], size=(500, 2))
    np.testing.assert_array_equal(rm.patterns[rm.locate(uv)], net.restrict(plane).patterns(uv))


@pytest.mark.parametrize("seed", range(2))
def test_residual_mlp_plane_against_model_reference(seed):
    torch.manual_seed(seed)
    model = _Residual().double()
    with torch.no_grad():
        model.u2.weight.copy_(torch.linspace(-0.5, 0.8, 7))
    _compare_graph(model, (5,), seed)


def test_small_cnn_plane_against_model_reference():
    torch.manual_seed(3)
    model = _SmallCNN().double()
    with torch.no_grad():
        model.bn.running_mean.copy_(torch.tensor([0.1, -0.2, 0.05]))
        model.bn.running_var.copy_(torch.tensor([0.5, 2.0, 1.5]))
    _compare_graph(model, (1, 6, 6), 0)


def _conv_and_dense_twins(seed, n_in=5):
    """The same network as a Conv1d model (a GraphNetwork) and as a Linear one (a Network)."""
    torch.manual_seed(seed)
    dense = nn.Sequential(
        nn.Linear(n_in, 6), nn.ReLU(), nn.Linear(6, 5), nn.LeakyReLU(0.2), nn.Linear(5, 3)
    ).double()
    with torch.no_grad():
        dense[2].weight[:, 1] = 0.0  # neuron 1 has no path to the output: its lines are not locus
        dense[4].weight[:, 3] = 0.0
    conv = nn.Conv1d(1, 6, n_in)
    conv = conv.double()
    with torch.no_grad():
        conv.weight.copy_(dense[0].weight[:, None, :])
        conv.bias.copy_(dense[0].bias)

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.rest = conv, dense[1:]

        def forward(self, x):
            return self.rest(self.conv(x).flatten(1))

    return Twin().double(), dense


@pytest.mark.parametrize("seed", range(3))
def test_graph_locus_linear_regions_and_decision_boundary_equal_the_dense_twin(seed):
    twin, dense = _conv_and_dense_twins(seed)
    g, d = rg.from_torch(twin, input_shape=(1, 5)), rg.from_torch(dense)
    assert isinstance(g, rg.GraphNetwork) and isinstance(d, rg.Network)
    rng = np.random.default_rng(seed)
    plane = rg.Plane.through(*rng.normal(size=(3, 5)))
    box = plane.bounds()
    rg_, rd = rg.activation_regions(g.restrict(plane), box), rg.activation_regions(d.restrict(plane), box)
    assert len(rg_) == len(rd)
    np.testing.assert_allclose(np.sort(rg_.measures), np.sort(rd.measures), rtol=1e-12)
    np.testing.assert_allclose(
        rg_.jacobians[rg_.locate(rd.interior_points())], rd.jacobians, rtol=1e-12, atol=1e-12
    )
    lg, ld = rg.nonlinear_locus(rg_), rg.nonlinear_locus(rd)
    assert lg.volume() == pytest.approx(ld.volume(), rel=1e-12)
    assert len(rg.linear_regions(rg_)) == len(rg.linear_regions(rd))
    assert len(rg.decision_boundary(rg_)) == len(rg.decision_boundary(rd))


def test_graph_locus_decided_exactly_where_the_filter_cannot():
    """Every edge decision equals the comparison of the two regions' exact maps."""
    from regiongeom._exact_graph import exact_for
    from regiongeom._graph_maps import edge_jumps

    torch.manual_seed(1)
    model = _Residual().double()
    with torch.no_grad():
        model.b1.weight[:, :3] = 0.0  # paths that close
    net = rg.from_torch(model, input_shape=(5,))
    rng = np.random.default_rng(1)
    plane = rg.Plane.through(*rng.normal(size=(3, 5)))
    rm = rg.activation_regions(net.restrict(plane), plane.bounds())
    jumps = edge_jumps(rm)
    ex = exact_for(rm.net)
    for e in np.nonzero(rm.edge_regions[:, 1] >= 0)[0]:
        ma, mb = ex.output(rm.patterns[rm.edge_regions[e, 0]]), ex.output(rm.patterns[rm.edge_regions[e, 1]])
        emin = min(ma.e, mb.e)
        assert jumps[e] == bool(np.any(ma.aligned(emin)[:, :2] != mb.aligned(emin)[:, :2]))
    assert not jumps.all() and jumps[rm.edge_regions[:, 1] >= 0].any()


def test_vertex_density_on_a_graph_network_needs_a_plane():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2)).double()
    plane = rg.Plane.through(*np.random.default_rng(0).normal(size=(3, 16)))
    net = rg.from_torch(model, input_shape=(1, 4, 4))
    # both methods take 2-input graph networks now (tests/test_vertices_graph.py)
    with pytest.raises(ValueError, match="restrict it to a plane") as info:
        rg.vertex_density(net, np.zeros((3, 16)), sigma=0.1)
    assert "\n" not in str(info.value)
    est = rg.vertex_density(net.restrict(plane), np.zeros((3, 2)), sigma=0.1, n_samples=2, rng=0)
    assert est.mean.shape == (3,) and np.all(np.isfinite(est.mean)) and np.all(est.mean >= 0)


@pytest.mark.slow
def test_graph_engine_is_exact_where_images_repeat_pixels():
    """Images upsampled 2 x 2 make duplicate and concurrent conv neurons: the exact
    fallback decides them, and the regions equal the exact rational reference of the
    same network written densely (op.matrix() of each convolution holds its float
    weights exactly)."""
    from exact_reference import exact_regions

    from regiongeom._engine import filter2d

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.Conv2d(2, 2, 2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(2 * 4 * 4, 2)).double().eval()  # fmt: skip
    rng = np.random.default_rng(0)
    images = np.kron(rng.integers(0, 3, size=(3, 3, 3)).astype(float), np.ones((2, 2))).reshape(3, 1, 6, 6)
    plane = rg.Plane.through(*images)
    box = plane.bounds()
    net = rg.from_torch(model, input_shape=(1, 6, 6)).restrict(plane)
    before = filter2d.COUNTS["exact"]
    rm = rg.activation_regions(net, box)
    assert filter2d.COUNTS["exact"] > before
    layers = [(st.operator.matrix(), st.operator.bias, st.activation) for st in net.stages]
    layers.append((net.output.matrix(), net.output.bias, None))
    dense = rg.Network.from_arrays(*zip(*layers))
    exact = exact_regions(dense, box)
    assert {tuple(p) for p in rm.patterns} == {tuple(p) for p in np.asarray(exact.patterns)}
    assert len(rm) == len(exact.patterns)


class _Skips(nn.Module):
    """Stages that read the input again (a lifted operator with the rest of its
    sources), a tensor read by two later stages (carried, and partial sums for
    two readers) and units whose constant pieces are not 0 (LeakyReLU,
    Hardtanh, PReLU)."""

    def __init__(self):
        super().__init__()
        self.a, self.u1 = nn.Linear(6, 9), nn.ReLU()
        self.b, self.c, self.u2 = nn.Linear(9, 8), nn.Linear(6, 8), nn.LeakyReLU(0.1)
        self.d, self.e, self.u3 = nn.Linear(8, 7), nn.Linear(9, 7), nn.Hardtanh(-0.5, 0.5)
        self.f, self.g, self.u4 = nn.Linear(8, 5), nn.Linear(7, 5), nn.PReLU(5)
        self.out = nn.Linear(5, 2)

    def forward(self, x):
        h1 = self.u1(self.a(x))
        h2 = self.u2(self.b(h1) + self.c(x))
        h3 = self.u3(self.d(h2) + self.e(h1))
        return self.out(self.u4(self.f(h2) + self.g(h3)))


def _skips_slice(seed, shrink):
    torch.manual_seed(seed)
    model = _Skips().double().eval()
    with torch.no_grad():
        model.u4.weight.copy_(torch.tensor([0.3, -0.2, 1.0, 0.0, 2.0]))
    rng = np.random.default_rng(seed)
    plane = rg.Plane.through(*rng.normal(size=(3, 6)))
    x0, y0, x1, y1 = plane.bounds()
    (cx, cy), w, h = plane.points[0], shrink * (x1 - x0), shrink * (y1 - y0)
    return model, plane, (cx - w, cy - h, cx + w, cy + h)


@pytest.mark.parametrize("seed", range(3))
def test_constant_neurons_of_every_kind_against_model_reference(seed):
    """A small box around one point: in every stage some neurons change piece and
    some are constant (recomputed from the coordinates, summed into their
    readers, or 0); the regions equal the model reference's."""
    model, plane, box = _skips_slice(seed, 0.35)
    net = rg.from_torch(model, input_shape=(6,)).restrict(plane)
    rm = rg.activation_regions(net, box)
    pats, areas = slice_regions(model, plane.lift, (6,), box)
    assert len(rm) == len(pats)
    assert {tuple(p) for p in rm.patterns} == {tuple(p) for p in pats}
    order_a, order_b = np.lexsort(rm.patterns.T[::-1]), np.lexsort(pats.T[::-1])
    np.testing.assert_allclose(rm.measures[order_a], areas[order_b], rtol=1e-9, atol=1e-12)
    varies = (rm.patterns != rm.patterns[:1]).any(axis=0)
    offs = net.neuron_offsets
    n_const = [int((~varies[offs[s] : offs[s + 1]]).sum()) for s in range(len(net.stages))]
    assert sum(n_const) >= 5 and varies.sum() >= 5


def test_graph_engine_blocks_and_recomputation_give_the_same_regions(monkeypatch):
    """Forming a stage a few vertices at a time, recomputing it instead of
    keeping it, gives the same regions (patterns exactly, areas to rounding)."""
    from regiongeom._engine import graph_plan

    model, plane, box = _skips_slice(1, 0.3)
    net = rg.from_torch(model, input_shape=(6,)).restrict(plane)
    a = rg.activation_regions(net, box)
    monkeypatch.setattr(graph_plan, "_BLOCK_ENTRIES", 40)
    monkeypatch.setattr(graph_plan, "_KEEP_BYTES", 0)
    b = rg.activation_regions(net, box)
    assert len(a) == len(b) and np.array_equal(a.patterns, b.patterns)
    np.testing.assert_allclose(a.measures, b.measures, rtol=1e-9, atol=1e-15)


def test_first_stage_estimate_is_the_arrangement_count():
    """With one unit stage, the estimate of the max_regions guard (1 + lines +
    crossings inside) is the number of regions, for lines in general position."""
    from regiongeom._engine._first_stage import first_stage_regions
    from regiongeom._engine.graph_plan import GraphPlan
    from regiongeom._validate import as_domain

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 2), nn.ReLU(), nn.Flatten(), nn.Linear(27, 2)).double()
    rng = np.random.default_rng(0)
    plane = rg.Plane.through(*rng.normal(size=(3, 16)))
    net = rg.from_torch(model, input_shape=(1, 4, 4)).restrict(plane)
    for box in (plane.bounds(), (-1.0, -0.5, 0.5, 1.0)):
        dom = as_domain(box, 2)
        plan = GraphPlan(net)
        corners = np.asarray(dom.pieces[0], np.float64)
        plan.form(0, corners.copy(), len(corners), len(corners), np.zeros(len(corners)))
        est, lines = first_stage_regions(plan, dom.pieces)
        assert 0 < lines <= 27
        assert est == len(rg.activation_regions(net, box))


def _digits_cnn_plane():
    """CNN-MNIST of benchmarks/bench_planes.py on the plane through three digit images."""
    datasets = pytest.importorskip("sklearn.datasets")
    imgs = np.kron(datasets.load_digits().images[:3] / 16.0, np.ones((3, 3)))
    imgs = np.pad(imgs, ((0, 0), (2, 2), (2, 2))).reshape(3, 784)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2), nn.ReLU(), nn.Flatten(),
        nn.Linear(32 * 12 * 12, 128), nn.ReLU(), nn.Linear(128, 10),
    ).double().eval()  # fmt: skip
    plane = rg.Plane.through(*imgs)
    return rg.from_torch(model, input_shape=(1, 28, 28)).restrict(plane), plane


def test_max_regions_stops_a_digits_cnn_before_the_first_cut():
    """On the box around all three images the first conv alone makes about 1.5
    million regions: the guard says so at once, and nothing has been cut."""
    import re

    from regiongeom._engine import filter2d

    net, plane = _digits_cnn_plane()
    before = filter2d.COUNTS["decisions"]
    with pytest.raises(rg.RegionLimitError, match="first layer alone cuts this domain into about") as err:
        rg.activation_regions(net, plane.bounds(), max_regions=100_000)
    assert filter2d.COUNTS["decisions"] == before
    msg = str(err.value)
    n = int(re.search(r"about ([\d,]+) regions", msg).group(1).replace(",", ""))
    assert 1_300_000 < n < 1_700_000
    assert "max_regions=100,000" in msg and "smaller domain" in msg and "\n" not in msg


def test_graph_locus_where_several_neurons_change_at_once_equals_the_exact_maps():
    """Images upsampled 2 x 2 make duplicate conv neurons, so several neurons
    change piece across one edge; the float comparison of the two regions'
    Jacobians decides those edges when it can, the exact maps the rest: every
    decision equals the exact comparison."""
    from regiongeom._exact_graph import exact_for
    from regiongeom._graph_maps import edge_jumps

    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.Conv2d(2, 2, 2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(2 * 6 * 6, 2)).double().eval()  # fmt: skip
    with torch.no_grad():
        model[5].weight[:, ::3] = 0.0  # some paths end: jumps that are exactly 0
    rng = np.random.default_rng(2)
    images = 10.0 * np.kron(rng.integers(0, 2, size=(3, 4, 4)), np.ones((2, 2))).reshape(3, 1, 8, 8)
    plane = rg.Plane.through(*images)
    rm = rg.activation_regions(rg.from_torch(model, input_shape=(1, 8, 8)).restrict(plane), plane.bounds())
    jumps = edge_jumps(rm)
    inner = np.nonzero(rm.edge_regions[:, 1] >= 0)[0]
    a, b = rm.edge_regions[inner, 0], rm.edge_regions[inner, 1]
    several = (rm.patterns[a] != rm.patterns[b]).sum(axis=1) > 1
    assert several.sum() >= 5
    ex = exact_for(rm.net)
    for e in inner[several]:
        ma, mb = ex.output(rm.patterns[rm.edge_regions[e, 0]]), ex.output(rm.patterns[rm.edge_regions[e, 1]])
        emin = min(ma.e, mb.e)
        assert jumps[e] == bool(np.any(ma.aligned(emin)[:, :2] != mb.aligned(emin)[:, :2]))
    assert jumps[inner].any() and not jumps[inner].all()


class _WideResidual(nn.Module):
    """RES-784 of benchmarks/bench_planes.py, narrower: a wide input, then two
    residual blocks h + B relu(A h) between ReLUs (the first stage's output
    and the coordinates are carried through each block's inner stage)."""

    def __init__(self, n_in=120, w=16):
        super().__init__()
        self.inp, self.out = nn.Linear(n_in, w), nn.Linear(w, 3)
        self.a1, self.b1 = nn.Linear(w, w), nn.Linear(w, w)
        self.a2, self.b2 = nn.Linear(w, w), nn.Linear(w, w)
        self.units = nn.ModuleList(nn.ReLU() for _ in range(5))

    def forward(self, x):
        u = self.units
        h = u[0](self.inp(x))
        h = u[2](h + self.b1(u[1](self.a1(h))))
        h = u[4](h + self.b2(u[3](self.a2(h))))
        return self.out(h)


def test_balanced_spreads_raise_factors_and_keep_the_regions(monkeypatch):
    """The graph plan raises the factors of widely varying columns ("Balanced
    spreads" in graph_plan): the regions equal the model reference's and those
    found with the operators' factors alone, with fewer exact decisions."""
    from regiongeom._engine import filter2d, graph_plan

    torch.manual_seed(0)
    model = _WideResidual().double().eval()
    rng = np.random.default_rng(0)
    plane = rg.Plane.through(*rng.uniform(0, 1, size=(3, 120)))
    x0, y0, x1, y1 = plane.bounds()
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, 1.5 * (x1 - x0), 1.5 * (y1 - y0)
    box = (cx - w, cy - h, cx + w, cy + h)
    net = rg.from_torch(model).restrict(plane)
    raised = []
    spread_out = graph_plan.GraphPlan._spread_out

    def spy(self, s, *args):
        before = (self.rn[s].copy(), self.rn_uv, self.info[s].scale if s else 1.0)
        rn = spread_out(self, s, *args)
        raised.append(
            (rn > before[0]).any() or self.rn_uv > before[1] or (s and self.info[s].scale > before[2])
        )
        return rn

    monkeypatch.setattr(graph_plan.GraphPlan, "_spread_out", spy)
    n0 = filter2d.COUNTS["exact"]
    a = rg.activation_regions(net, box)
    n_balanced = filter2d.COUNTS["exact"] - n0
    assert any(raised)
    monkeypatch.setattr(graph_plan.GraphPlan, "_spread_out", lambda self, s, *args: args[-1])
    n0 = filter2d.COUNTS["exact"]
    b = rg.activation_regions(net, box)
    n_plain = filter2d.COUNTS["exact"] - n0
    assert len(a) == len(b) and np.array_equal(a.patterns, b.patterns)
    np.testing.assert_allclose(a.measures, b.measures, rtol=1e-9, atol=1e-15)
    assert n_balanced <= n_plain and len(a) > 500
    pats, areas = slice_regions(model, plane.lift, (120,), box)
    assert {tuple(p) for p in a.patterns} == {tuple(p) for p in pats} and len(a) == len(pats)
    order_a, order_b = np.lexsort(a.patterns.T[::-1]), np.lexsort(pats.T[::-1])
    np.testing.assert_allclose(a.measures[order_a], areas[order_b], rtol=1e-9, atol=1e-12)
