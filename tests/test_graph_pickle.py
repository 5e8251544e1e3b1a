"""Graph networks survive pickle: converted models of every supported kind,
torch.export programs, max stages, maxout, restrictions and noisy copies give
networks whose outputs and patterns are bit-equal to the original's; and
``lc_density(..., n_jobs=2)`` (worker processes) equals ``n_jobs=1`` bit for bit."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import regiongeom as rg

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import test_torch_graph as TG  # noqa: E402
from test_graph_measures import res_cnn  # noqa: E402
from test_max_units import Maxout  # noqa: E402

from regiongeom._graph_calls import BATCH, SLOT  # noqa: E402
from regiongeom.graph import GraphNetwork  # noqa: E402


class MaxCNN(nn.Module):
    """conv -> PReLU -> MaxPool -> Hardtanh -> amax over channels -> Linear."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 3, 3, padding=1)
        self.act = nn.PReLU(3)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(9, 2)

    def forward(self, x):
        h = F.hardtanh(self.pool(self.act(self.c(x))))
        return self.fc(torch.amax(h, dim=1).flatten(1))


class MeanMLP(nn.Module):
    """A residual MLP with a mean, a view by x.size(0), a division and a cat."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(8, 2)

    def forward(self, x):
        h = F.relu(self.a(x))
        h = h + F.relu(self.b(h)) / 3.0
        m = h.view(x.size(0), 2, 3).mean(dim=2)
        return self.c(torch.cat([h, m], dim=1))


def _export(model, shape):
    batch = torch.export.Dim("batch")
    prog = torch.export.export(model, (torch.randn(2, *shape),), dynamic_shapes={"x": {0: batch}})
    return prog.module()


CASES = {
    "cnn-avgpool": (TG.SmallCNN, (2, 6, 6)),
    "cnn-adaptive": (lambda: TG.SmallCNN("adaptive"), (2, 6, 6)),
    "conv1d": (TG.Conv1dNet, (2, 11)),
    "residual": (TG.Residual, (1, 5, 5)),
    "concat": (TG.Concat, (4,)),
    "shapes": (TG.Shapes, (6,)),
    "functional": (TG.Functional, (1, 3, 4)),
    "resnet": (TG.TinyResNet, (1, 6, 6)),
    "mean-mlp": (MeanMLP, (6,)),
    "max-cnn": (MaxCNN, (1, 6, 6)),
    "maxout": (lambda: Maxout(3, [4, 5], 3, "view"), (3,)),
    "maxout-unflatten": (lambda: Maxout(3, [4, 5], 3, "unflatten"), (3,)),
    "export-cnn": (lambda: _export(TG._ready(TG.ExportMe()), (1, 4, 4)), (1, 4, 4)),
    "export-resnet": (lambda: _export(TG._ready(TG.TinyResNet()), (1, 6, 6)), (1, 6, 6)),
    "export-max": (lambda: _export(TG._ready(MaxCNN()), (1, 6, 6)), (1, 6, 6)),
}


def _same(a, b, x):
    """Bit-equal outputs and patterns."""
    np.testing.assert_array_equal(b(x), a(x))
    np.testing.assert_array_equal(b.patterns(x), a.patterns(x))
    assert b.neuron_names == a.neuron_names and b.layer_sizes == a.layer_sizes


@pytest.mark.parametrize("name", list(CASES))
def test_pickle_round_trip_is_bit_equal(name):
    make, shape = CASES[name]
    torch.manual_seed(0)
    model = make() if name.startswith("export") else TG._ready(make())  # export: ready before exporting
    net = rg.from_torch(model, input_shape=shape)
    assert isinstance(net, GraphNetwork)
    x = np.random.default_rng(1).normal(size=(9, net.n_in))
    back = pickle.loads(pickle.dumps(net))
    _same(net, back, x)
    ops = [[s.operator for s in n.stages] + [n.output] for n in (net, back)]
    for a, b in zip(*ops):  # the operators' other modes too
        X = np.abs(np.random.default_rng(2).normal(size=(3, a.n_in)))
        np.testing.assert_array_equal(b.absolute(X), a.absolute(X))
        np.testing.assert_array_equal(b.linear(X), a.linear(X))
    # a copy keeps working after the original's caches were filled
    _same(net, copy.deepcopy(back), x)
    # restrictions to a plane and a line, and their noisy copies
    pts = np.random.default_rng(3).normal(size=(3, net.n_in))
    uv = np.random.default_rng(4).normal(size=(11, 2))
    for sl, u in ((rg.Plane.through(*pts), uv), (rg.Line.through(pts[0], pts[1]), uv[:, :1])):
        r = net.restrict(sl)
        _same(r, pickle.loads(pickle.dumps(r)), u)
        if not net.has_max_units:
            noisy = r.with_bias_noise(np.random.default_rng(5).normal(size=net.n_neurons))
            _same(noisy, pickle.loads(pickle.dumps(noisy)), u)


def test_sentinels_pickle_as_themselves():
    for s in (BATCH, SLOT):
        assert pickle.loads(pickle.dumps(s)) is s
        assert copy.deepcopy(s) is s and copy.copy(s) is s


def test_network_maxout_pickles():
    net = rg.Network.maxout(
        [np.random.default_rng(0).normal(size=(6, 2)), np.ones((1, 3))], [np.zeros(6), np.zeros(1)], k=2
    )
    x = np.random.default_rng(1).normal(size=(20, 2))
    _same(net, pickle.loads(pickle.dumps(net)), x)


class ResMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp, self.b1, self.b2 = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, x):
        h = self.inp(x)
        h = h + self.b2(F.relu(self.b1(F.relu(h))))
        return self.out(F.relu(h))


@pytest.mark.slow
def test_n_jobs_on_graph_networks_equals_one_process():
    """Worker processes (spawn, plain pickle) give the n_jobs=1 numbers bit
    for bit: a residual CNN (Theorem 2) and a residual MLP's plane (both methods)."""
    torch.manual_seed(0)
    cnn = rg.from_torch(res_cnn(0), input_shape=(1, 6, 6))
    mlp = rg.from_torch(ResMLP().eval(), input_shape=(4,))
    assert isinstance(mlp, GraphNetwork)
    gen = np.random.default_rng(0)
    plane = rg.Plane.through(*gen.normal(size=(3, 4)))
    runs = [
        (cnn, gen.normal(size=(6, 36)), dict()),
        (mlp.restrict(plane), gen.normal(size=(6, 2)), dict(method="definition", eps=0.3)),
    ]
    for net, x, extra in runs:
        kw = dict(sigma=0.2, n_samples=4, rng=3, progress=False, batch_size=len(x), **extra)
        a = rg.lc_density(net, x, n_jobs=1, **kw)
        b = rg.lc_density(net, x, n_jobs=2, **kw)
        np.testing.assert_array_equal(b.mean, a.mean)
        np.testing.assert_array_equal(b.stderr, a.stderr)
        assert np.all(np.isfinite(a.mean)) and a.mean.max() > 0
