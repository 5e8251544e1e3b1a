"""Regions of torch graph networks (convolutions, residual blocks) on lines
through their inputs: against a reference that runs the model itself
(tests/torch_slice_reference.py), and against the exact rational reference of
the same network written densely."""

from __future__ import annotations

import numpy as np
import pytest

import regiongeom as rg

torch = pytest.importorskip("torch")
nn = torch.nn

from test_torch_slices import _conv_and_dense_twins, _SmallCNN  # noqa: E402
from test_torch_slices import _Residual as _ResidualReLU  # noqa: E402
from torch_slice_reference import line_intervals  # noqa: E402


class _Residual(_ResidualReLU):
    """The residual MLP of test_torch_slices.py with a Hardtanh in its first block."""

    def __init__(self):
        super().__init__()
        self.u1 = nn.Hardtanh(-0.3, 0.4)


def _compare(model, shape, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    n_in = int(np.prod(shape))
    net = rg.from_torch(model.eval(), input_shape=shape)
    assert isinstance(net, rg.GraphNetwork)
    line = rg.Line.through(*(scale * rng.normal(size=(2, n_in))))
    lo, hi = line.bounds()
    net1 = net.restrict(line)
    rm = rg.activation_regions(net1, (lo, hi))
    pats, lengths = line_intervals(model, line.lift, shape, (lo, hi))
    assert len(rm) == len(pats) > 3
    np.testing.assert_array_equal(rm.patterns, pats)  # intervals in order along the line
    np.testing.assert_allclose(rm.measures, lengths, rtol=1e-9, atol=1e-12)
    t = rng.uniform(lo, hi, size=2000)
    np.testing.assert_array_equal(rm.patterns[rm.locate(t)], net1.patterns(t[:, None]))
    # the offsets and slopes are the network's: net(t) == J t + c on every interval
    mid = (rm.vertices[:-1] + rm.vertices[1:]) / 2
    J, c = rm.jacobians, rm.offsets
    np.testing.assert_allclose(np.einsum("rij,r->ri", J, mid) + c, net1(mid[:, None]), rtol=1e-9, atol=1e-9)
    with torch.no_grad():
        direct = model(torch.from_numpy(line.lift(mid)).reshape(-1, *shape)).numpy()
    np.testing.assert_allclose(net1(mid[:, None]), direct, rtol=1e-12, atol=1e-12)
    return rm


@pytest.mark.parametrize("seed", range(3))
def test_residual_mlp_line_against_model_reference(seed):
    torch.manual_seed(seed)
    model = _Residual().double()
    with torch.no_grad():
        model.u2.weight.copy_(torch.linspace(-0.5, 0.8, 7))
    _compare(model, (5,), seed, scale=3.0)


@pytest.mark.parametrize("seed", range(2))
def test_small_cnn_line_against_model_reference(seed):
    torch.manual_seed(3 + seed)
    model = _SmallCNN().double()
    with torch.no_grad():
        model.bn.running_mean.copy_(torch.tensor([0.1, -0.2, 0.05]))
        model.bn.running_var.copy_(torch.tensor([0.5, 2.0, 1.5]))
    _compare(model, (1, 6, 6), seed, scale=2.0)


def _dense_twin(net):
    """A chain graph network (no carried tensors) written as an rg.Network: the
    matrix of each stage's operator holds its float weights exactly."""
    assert all(not st.carry for st in net.stages)
    layers = [(st.operator.matrix(), st.operator.bias, st.activation) for st in net.stages]
    layers.append((net.output.matrix(), net.output.bias, None))
    return rg.Network.from_arrays(*zip(*layers))


def _check_exact(rm, dense, interval):
    from exact_reference import exact_regions

    ex = exact_regions(dense, interval)
    regions = sorted(ex.regions, key=lambda r: r.cell[0])
    pats = np.array([r.pattern for r in regions])
    assert len(rm) == len(pats)
    np.testing.assert_array_equal(rm.patterns, pats)
    span = float(interval[1] - interval[0])
    lengths = np.array([float(r.measure) for r in regions])
    np.testing.assert_allclose(rm.measures, lengths, rtol=1e-12, atol=1e-13 * span)
    exact_points = np.sort([float(e.ends[0]) for e in ex.locus_edges])
    np.testing.assert_allclose(rg.nonlinear_locus(rm).points, exact_points, rtol=1e-12, atol=1e-13 * span)
    return ex


@pytest.mark.parametrize("seed", range(4))
def test_cnn_line_with_exact_coincidences_is_exact(seed):
    """Integer conv weights, half-integer biases, integer images and a line along
    four pixels (a direction of norm 2, so the restriction is exact): neurons
    cross at the same points and later neurons vanish exactly at earlier
    crossings. The exact fallback decides those signs and orders, and the
    intervals and locus equal the exact rational reference of the same network
    written densely."""
    from regiongeom._engine import line1d

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.Conv2d(2, 2, 2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(2 * 3 * 3, 2)).double().eval()  # fmt: skip
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model:
            if hasattr(mod, "weight"):
                mod.weight.copy_(torch.randint(-2, 3, mod.weight.shape, generator=gen).double())
                mod.bias.copy_(torch.randint(-2, 3, mod.bias.shape, generator=gen).double() / 2)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 3, size=25).astype(float)
    d = np.zeros(25)
    d[rng.choice(25, 4, replace=False)] = rng.choice([-1.0, 1.0], 4)
    line = rg.Line.through(a, a + 3 * d)
    net = rg.from_torch(model, input_shape=(1, 5, 5)).restrict(line)
    line1d.STATS.reset()
    rm = rg.activation_regions(net, (-4.0, 10.0))
    stats = line1d.STATS.snapshot()
    assert stats["exact_signs"] + stats["exact_orders"] > 0, stats
    _check_exact(rm, _dense_twin(net), (-4.0, 10.0))


@pytest.mark.parametrize("seed", range(3))
def test_graph_line_matches_exact_reference_and_dense_engine(seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv1d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv1d(3, 2, 3, stride=2), nn.Hardtanh(),
                          nn.Flatten(), nn.Linear(2 * 2, 2)).double().eval()  # fmt: skip
    rng = np.random.default_rng(seed)
    line = rg.Line.through(*(2.0 * rng.normal(size=(2, 6))))
    lo, hi = line.bounds()
    net = rg.from_torch(model, input_shape=(1, 6)).restrict(line)
    rm = rg.activation_regions(net, (lo, hi))
    dense = _dense_twin(net)
    _check_exact(rm, dense, (lo, hi))
    rd = rg.activation_regions(dense, (lo, hi))
    np.testing.assert_array_equal(rm.patterns, rd.patterns)
    np.testing.assert_allclose(rm.vertices, rd.vertices, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        rg.nonlinear_locus(rm).points, rg.nonlinear_locus(rd).points, rtol=1e-12, atol=1e-12
    )
    assert len(rg.linear_regions(rm)) == len(rg.linear_regions(rd))


@pytest.mark.parametrize("seed", range(2))
def test_graph_locus_on_lines_equals_the_dense_twin(seed):
    """A Conv1d model and the same network written with Linear layers: the same
    locus points (a neuron with no path to the output makes none) and linear regions."""
    twin, dense = _conv_and_dense_twins(seed)
    g, d = rg.from_torch(twin.eval(), input_shape=(1, 5)), rg.from_torch(dense)
    assert isinstance(g, rg.GraphNetwork) and isinstance(d, rg.Network)
    rng = np.random.default_rng(seed)
    line = rg.Line.through(*(3.0 * rng.normal(size=(2, 5))))
    dom = line.bounds()
    rg_, rd = (rg.activation_regions(n.restrict(line), dom) for n in (g, d))
    np.testing.assert_array_equal(rg_.patterns, rd.patterns)
    lg, ld = rg.nonlinear_locus(rg_), rg.nonlinear_locus(rd)
    np.testing.assert_allclose(lg.points, ld.points, rtol=1e-12, atol=1e-12)  # rounding only
    assert len(lg.points) < len(rg_) - 1  # the dead-path neurons' points are not locus
    assert len(rg.linear_regions(rg_)) == len(rg.linear_regions(rd))


def test_graph_line_respects_max_regions():
    torch.manual_seed(0)
    model = _Residual().double().eval()
    net = rg.from_torch(model, input_shape=(5,))
    line = rg.Line.through(*(3.0 * np.random.default_rng(0).normal(size=(2, 5))))
    with pytest.raises(rg.RegionLimitError, match="max_regions"):
        rg.activation_regions(net.restrict(line), line.bounds(), max_regions=2)


def test_cli_regions_of_an_exported_cnn_on_a_line(tmp_path, capsys):
    from regiongeom.cli import main

    torch.manual_seed(0)
    model = _SmallCNN().double().eval()
    program = torch.export.export(model, (torch.zeros(1, 1, 6, 6, dtype=torch.float64),))
    torch.export.save(program, str(tmp_path / "cnn.pt2"))
    two = np.random.default_rng(0).normal(size=(2, 1, 6, 6))
    np.save(tmp_path / "two.npy", two)
    assert main(["regions", str(tmp_path / "cnn.pt2"), "--line", str(tmp_path / "two.npy")]) == 0
    line = rg.Line.through(*two)
    rm = rg.activation_regions(rg.from_torch(model, input_shape=(1, 6, 6)).restrict(line), line.bounds())
    out = capsys.readouterr().out
    assert f"activation regions: {len(rm):,}" in out
