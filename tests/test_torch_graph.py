"""Tests of from_torch on general models (torch.fx) and of graph networks.

Every conversion is checked against the model itself run in float64; the
graph interface is checked by an independent stage-by-stage evaluation that
uses only what the module docstring of regiongeom.graph documents.
"""

import copy
import re
import subprocess
import sys

import numpy as np
import pytest

import regiongeom as rg

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from regiongeom.graph import GraphNetwork, LiftedOperator  # noqa: E402


# ------------------------------------------------------------------ helpers ----
def _ready(model, seed=0):
    """Random BatchNorm statistics (so folding is visible), eval mode."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 2 - 1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if m.weight is not None:
                m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)
        if isinstance(m, nn.PReLU):
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) * 0.6 - 0.3)
    return model.eval()


def _reference(model, x, shape):
    """model(x) in float64, flattened to (P, n_out)."""
    md = copy.deepcopy(model).double()
    with torch.no_grad():
        return md(torch.from_numpy(x).reshape(len(x), *shape)).reshape(len(x), -1).numpy()


def _close(got, want):
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * scale)


def _convert(model, shape, seed=0, n=7):
    torch.manual_seed(seed)
    model = _ready(model, seed)
    net = rg.from_torch(model, input_shape=shape)
    x = np.random.default_rng(seed).normal(size=(n, int(np.prod(shape))))
    _close(net(x), _reference(model, x, shape))
    return net, x


# ------------------------------------------------------------------- models ----
class CustomMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(5, 7), nn.Linear(7, 6), nn.Linear(6, 3)

    def forward(self, x):
        return self.out(F.relu(self.fc2(torch.relu(self.fc1(x)))))


class ListMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(5, 6), nn.Linear(6, 6), nn.Linear(6, 4)])
        self.drop, self.ident = nn.Dropout(0.3), nn.Identity()

    def forward(self, x):
        x = x.flatten(1)
        for layer in self.layers[:-1]:
            x = self.drop(self.ident(layer(x))).relu()
        return self.layers[-1](x)


class BatchNormMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn0, self.fc1, self.bn1 = nn.BatchNorm1d(5), nn.Linear(5, 8, bias=False), nn.BatchNorm1d(8)
        self.act, self.fc2 = nn.PReLU(), nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(F.dropout(self.act(self.bn1(self.fc1(self.bn0(x)))), 0.5, training=self.training))


class Activations(nn.Module):
    """One layer per unit, as functions, methods and modules."""

    def __init__(self, which):
        super().__init__()
        self.which = which
        self.fcs = nn.ModuleList([nn.Linear(5 if i == 0 else 6, 6) for i in range(4)])
        self.head = nn.Linear(6, 2)
        self.mods = nn.ModuleList([nn.ReLU6(), nn.LeakyReLU(0.2), nn.Hardtanh(-0.5, 0.7), nn.PReLU()])

    def forward(self, x):
        fc = self.fcs
        if self.which == "functional":
            x = F.relu6(fc[0](x))
            x = F.leaky_relu(fc[1](x), 0.2)
            x = F.hardtanh(fc[2](x), -0.5, 0.7)
            x = torch.abs(fc[3](x))
        elif self.which == "methods":
            x = fc[0](x).clamp(0, 6)
            x = torch.clamp(fc[1](x), min=-0.5, max=0.7)
            x = fc[2](x).clamp(min=0.1)
            x = fc[3](x).abs()
        else:
            x = self.mods[0](fc[0](x))
            x = self.mods[1](fc[1](x))
            x = self.mods[2](fc[2](x))
            x = self.mods[3](fc[3](x))
        return self.head(x)


class SmallCNN(nn.Module):
    """Conv2d with 'same' padding, dilation, groups and stride; BatchNorm2d; pooling."""

    def __init__(self, pool="avg"):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(2, 4, 3, padding="same", dilation=2),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False),
            nn.ReLU(),
        )
        self.pool = nn.AvgPool2d(2, stride=1) if pool == "avg" else nn.AdaptiveAvgPool2d((2, 1))
        self.head = nn.Linear(6 * (2 * 2 if pool == "avg" else 2), 3)

    def forward(self, x):
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


class Conv1dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(2, 4, 3, stride=2, padding=2, dilation=2)
        self.c2 = nn.Conv1d(4, 4, 3, padding=1, groups=4, padding_mode="circular")
        self.c3 = nn.Conv1d(4, 2, 2, padding="same", padding_mode="reflect")
        self.bn = nn.BatchNorm1d(4)
        self.pool = nn.AdaptiveAvgPool1d(3)
        self.avg = nn.AvgPool1d(2, ceil_mode=True)

    def forward(self, x):
        h = F.leaky_relu(self.c1(x), 0.1)
        h = self.bn(F.relu(self.c2(h)))  # a BatchNorm after a unit stays a per-channel affine map
        h = self.avg(torch.abs(self.c3(h)))
        return self.pool(h).reshape(-1, 6)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 3, 3, padding=1)
        self.a = nn.Conv2d(3, 3, 3, padding=1)
        self.b = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.act = nn.PReLU(3)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        h = F.relu(self.stem(x))
        r = self.bn(self.b(F.relu(self.a(h))))
        h = self.act(h + r)
        return self.head(F.adaptive_avg_pool2d(h, 1).view(x.size(0), -1))


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.l, self.r = nn.Linear(4, 3), nn.Linear(4, 5)
        self.mix = nn.Linear(8, 4)
        self.register_buffer("scale", torch.tensor([0.5, -2.0, 1.5, 3.0]))

    def forward(self, x):
        a, b = F.relu(self.l(x)), torch.relu(self.r(x))
        h = torch.cat([a, 2 * b - 1.0], dim=1)
        h = F.relu(self.mix(h) * self.scale / 3 + x)  # the input skips ahead
        return 1.5 - h.sum(dim=1, keepdim=True) + h.mean(1, keepdim=True)


class Shapes(nn.Module):
    """view, reshape, permute, transpose, unsqueeze and a conv after them."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.conv = nn.Conv2d(2, 2, (2, 1))

    def forward(self, x):
        h = F.relu(self.fc(x.view(x.shape[0], -1)))
        h = h.reshape(-1, 3, 2).permute(0, 2, 1).unsqueeze(-1)  # (B, 2, 3, 1)
        h = torch.transpose(F.relu(self.conv(h)), 2, 3)
        return h.flatten(1)


class Functional(nn.Module):
    """Functional conv, pad, pooling, linear and matmul with the model's own parameters."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(5)
        self.w = nn.Parameter(torch.randn(3, 1, 2, 2, generator=g))
        self.b = nn.Parameter(torch.randn(3, generator=g))
        self.log_gate = nn.Parameter(torch.randn(3, 1, 1, generator=g))
        self.m = nn.Parameter(torch.randn(24, 4, generator=g))
        self.fw = nn.Parameter(torch.randn(2, 4, generator=g))

    def forward(self, x):
        h = F.conv2d(F.pad(x, (1, 0, 0, 1), value=0.5), self.w, self.b, stride=(1, 2))
        h = F.hardtanh(h * torch.sigmoid(self.log_gate), -0.3, 0.4)  # a constant gate: sigmoid of a parameter
        h = F.avg_pool2d(h, (2, 1), stride=1, padding=(1, 0), count_include_pad=False)
        h = F.leaky_relu(torch.matmul(h.reshape(h.size(0), -1), self.m), 0.3)
        return F.linear(h, self.fw) - torch.div(h[:, 1:3], 4.0)


class BasicBlock(nn.Module):
    """torchvision's ResNet block: in-place ReLU, `out += identity`, a downsampling branch."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1, self.relu = nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = self.downsample(x)
        out += identity
        return self.relu(out)


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(inplace=True))
        self.layer = BasicBlock(2, 3, 2)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.layer(self.stem(x)), (1, 1)), 1))


# ------------------------------------------------------------------- tests ----
@pytest.mark.parametrize(
    "make, shape",
    [
        (CustomMLP, (5,)),
        (ListMLP, (5,)),
        (BatchNormMLP, (5,)),
        (lambda: Activations("functional"), (5,)),
        (lambda: Activations("methods"), (5,)),
        (lambda: Activations("modules"), (5,)),
    ],
    ids=["custom", "modulelist", "batchnorm", "functional", "methods", "modules"],
)
def test_mlps_become_dense_networks(make, shape):
    net, x = _convert(make(), shape)
    assert type(net) is rg.Network
    assert len(net.neuron_names) == net.n_neurons
    assert len(rg.activation_regions(net.restrict(rg.Plane.through(*x[:3])), (-1, -1, 1, 1))) >= 1


def test_functional_and_module_units_give_the_same_network():
    nets = []
    for which in ("functional", "modules"):
        torch.manual_seed(3)
        m = Activations(which)
        nets.append(rg.from_torch(_ready(m)))
    a, b = nets
    # the modules model ends its last hidden layer with PReLU(0.25-ish) instead of abs: compare the rest
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(wa, wb)
    assert a.activations[:3] == b.activations[:3]


class OneUnit(nn.Module):
    def __init__(self, unit):
        super().__init__()
        self.fc1, self.fc2, self.unit = nn.Linear(3, 4), nn.Linear(4, 2), unit

    def forward(self, x):
        return self.fc2(self.unit(self.fc1(x)))


@pytest.mark.parametrize(
    "unit, act",
    [
        (nn.ReLU(), rg.relu),
        (F.relu, rg.relu),
        (torch.relu, rg.relu),
        (lambda h: h.relu(), rg.relu),
        (lambda h: h.clamp(min=0), rg.relu),
        (lambda h: torch.clamp_min(h, 0.0), rg.relu),
        (nn.ReLU6(), rg.Activation.hardtanh(0, 6)),
        (F.relu6, rg.Activation.hardtanh(0, 6)),
        (nn.LeakyReLU(0.1), rg.Activation.leaky_relu(0.1)),
        (lambda h: F.leaky_relu(h, negative_slope=0.1), rg.Activation.leaky_relu(0.1)),
        (nn.Hardtanh(), rg.hardtanh),
        (F.hardtanh, rg.hardtanh),
        (torch.abs, rg.absolute),
        (lambda h: F.prelu(h, torch.tensor([0.25], dtype=h.dtype)), rg.Activation.leaky_relu(0.25)),
        (nn.PReLU(init=0.25), rg.Activation.leaky_relu(0.25)),
        (lambda h: h.abs(), rg.absolute),
    ],
)
def test_units_as_modules_functions_and_methods(unit, act):
    torch.manual_seed(0)
    model = OneUnit(unit)
    net = rg.from_torch(model)
    assert type(net) is rg.Network and net.activations == (act, None)
    torch.manual_seed(0)
    seq = rg.from_torch(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    for a, b in zip(net.weights + net.biases, seq.weights + seq.biases):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).normal(size=(20, 3)) * 5
    _close(net(x), _reference(model, x, (3,)))


def test_custom_mlp_names_and_auto_input_shape():
    torch.manual_seed(0)
    net = rg.from_torch(CustomMLP().eval())
    assert net.n_in == 5 and net.n_neurons == 13
    assert rg.from_torch(ListMLP().eval()).n_in == 5  # through x.flatten(1)
    assert net.neuron_names[:2] == ("fc1[0]", "fc1[1]") and net.neuron_names[7] == "fc2[0]"


def test_sequential_path_keeps_names_and_matches_fx_path():
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    net = rg.from_torch(seq)
    assert net.neuron_names == ("0[0]", "0[1]", "0[2]", "0[3]")

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = seq

        def forward(self, x):
            return self.body(x)

    other = rg.from_torch(Wrap())
    assert type(other) is rg.Network and other.neuron_names[0] == "body.0[0]"
    for wa, wb in zip(net.weights, other.weights):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize(
    "make, shape",
    [
        (SmallCNN, (2, 6, 6)),
        (lambda: SmallCNN("adaptive"), (2, 6, 6)),
        (Conv1dNet, (2, 11)),
        (Residual, (1, 5, 5)),
        (Concat, (4,)),
        (Shapes, (6,)),
        (Functional, (1, 3, 4)),
        (TinyResNet, (1, 6, 6)),
        (lambda: nn.Sequential(nn.Linear(3, 4), nn.PReLU(4), nn.Linear(4, 2)), (3,)),
    ],
    ids=[
        "cnn-avgpool",
        "cnn-adaptive",
        "conv1d",
        "residual",
        "concat",
        "shapes",
        "functional",
        "resnet",
        "prelu-channel",
    ],
)
def test_graph_networks_equal_the_model(make, shape):
    net, x = _convert(make(), shape)
    assert isinstance(net, GraphNetwork)
    assert net.n_in == int(np.prod(shape)) and net.input_shape == shape
    assert len(net.neuron_names) == net.n_neurons == len(set(net.neuron_names))
    assert all(re.fullmatch(r"[\w.]+\[\d+(, \d+)*\]", s) for s in net.neuron_names)
    # inputs in the model's own shape are accepted too
    _close(net(x.reshape(len(x), *shape)), net(x))
    _stage_by_stage(net, x)
    _operator_properties(net, x)
    _restrictions(net, x)


def _stage_by_stage(net, x):
    """Independent evaluation through the documented interface, dropping tensors per `carry`."""
    tensors = {0: x}
    offsets = []
    for s, stage in enumerate(net.stages):
        op = stage.operator
        assert all(t <= s for t in op.sources) and op.n_out == stage.n == int(np.prod(stage.shape))
        z = op(np.hstack([tensors[t] for t in op.sources]))
        _close(z, op([tensors[t] for t in op.sources]))
        h = np.empty_like(z)
        k = np.searchsorted(stage.breakpoints, z, side="right")
        for j in range(stage.n):  # neuron by neuron, piece by piece
            for p in range(len(stage.breakpoints) + 1):
                on = k[:, j] == p
                h[on, j] = stage.slopes[j, p] * z[on, j] + stage.intercepts[j, p]
        tensors[s + 1] = h
        tensors = {t: v for t, v in tensors.items() if t == s + 1 or t in stage.carry}
        offsets.append(stage.offset)
    out = net.output(np.hstack([tensors[t] for t in net.output.sources]))
    _close(out, net(x))
    assert offsets == list(net.neuron_offsets[:-1])


def _operator_properties(net, x):
    rng = np.random.default_rng(1)
    for op in [s.operator for s in net.stages] + [net.output]:
        X = rng.normal(size=(4, op.n_in))
        A = op.matrix()
        _close(op.linear(X), X @ A.T)
        _close(op(X), X @ A.T + op.bias)
        np.testing.assert_allclose(op.row_l1, np.abs(A).sum(axis=1), rtol=1e-12, atol=1e-300)
        absA = np.abs(X) @ np.abs(A).T
        bound = op.absolute(np.abs(X))
        assert np.all(bound >= absA * (1 - 1e-12))
        if op.abs_exact:
            _close(bound, absA)
        assert np.all(op.absolute(np.abs(X), with_bias=True) >= bound + np.abs(op.bias) * (1 - 1e-12))


def _restrictions(net, x):
    plane = rg.Plane.through(x[0], x[1], x[2])
    net2 = net.restrict(plane)
    uv = np.random.default_rng(2).normal(size=(6, 2))
    _close(net2(uv), net(plane.lift(uv)))
    assert net2.n_in == 2 and net2.neuron_names == net.neuron_names
    np.testing.assert_array_equal(net2.patterns(uv), net.patterns(plane.lift(uv)))
    first = net2.stages[0].operator
    assert isinstance(first, LiftedOperator) and first.M.shape == (net.stages[0].n, 2)
    for s, s2 in zip(net.stages, net2.stages):  # operators not reading the input stay as they are
        assert (s2.operator is s.operator) == (0 not in s.operator.sources)
    _operator_properties(net2, None)
    line = rg.Line.through(x[3], x[4])
    t = np.linspace(-1, 2, 5)
    _close(net.restrict(line)(t), net(line.lift(t)))


def test_patterns_are_the_models_own_signs():
    torch.manual_seed(0)
    net, x = _convert(SmallCNN(), (2, 6, 6))
    model = _ready(SmallCNN())
    torch.manual_seed(0)
    model = _ready(SmallCNN())
    md = copy.deepcopy(model).double()
    with torch.no_grad():
        z1 = md.features[:2](torch.from_numpy(x).reshape(-1, 2, 6, 6)).reshape(len(x), -1).numpy()
    pat = net.patterns(x)
    np.testing.assert_array_equal(pat[:, : z1.shape[1]], (z1 >= 0).astype(np.int8))
    assert net.neuron_names[0] == "features.0[0, 0, 0]" and net.neuron_names[5] == "features.0[0, 0, 5]"


def test_per_channel_prelu_slopes_are_per_neuron():
    torch.manual_seed(0)
    net, _ = _convert(Residual(), (1, 5, 5))
    last = net.stages[-1]
    assert last.activation is None and last.slopes.shape == (75, 2)
    w = net  # slopes follow the channel: 25 neurons per channel
    np.testing.assert_array_equal(last.slopes[:25, 0], np.full(25, last.slopes[0, 0]))
    assert last.carry == () and w.stages[1].carry == (1,)


def test_memory_of_operators_does_not_expand_convolutions():
    torch.manual_seed(0)
    model = _ready(nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(), nn.Flatten()))
    net = rg.from_torch(model, input_shape=(1, 30, 30))
    net2 = net.restrict(rg.Plane.through(*np.random.default_rng(0).normal(size=(3, 900))))
    assert net2.stages[0].operator.M.shape == (8 * 28 * 28, 2)
    assert net2.stages[1].operator.root.kind == "conv"  # still a convolution, never a dense matrix


# ---------------------------------------------------------------- refusals ----
class Block(nn.Module):
    def __init__(self, act):
        super().__init__()
        self.fc, self.act = nn.Linear(3, 3), act

    def forward(self, x):
        return self.act(self.fc(x))


class Outer(nn.Module):
    def __init__(self, act):
        super().__init__()
        self.block = Block(act)

    def forward(self, x):
        return self.block(x)


class FunctionalGelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        return F.gelu(self.fc(x))


def test_not_piecewise_linear_names_operation_path_and_line():
    with pytest.raises(TypeError) as info:
        rg.from_torch(Outer(nn.GELU()).eval())
    msg = str(info.value)
    assert "GELU at position 'block.act'" in msg and "not piecewise linear" in msg
    assert "test_torch_graph.py" in msg and "self.act(self.fc(x))" in msg and "\n" not in msg
    with pytest.raises(TypeError, match=r"gelu\(\) at position '<model>'.*F\.gelu\(self\.fc\(x\)\)"):
        rg.from_torch(FunctionalGelu())
    for act in (nn.SiLU(), nn.Softplus(), nn.Sigmoid(), nn.Tanh(), nn.LayerNorm(3)):
        with pytest.raises(TypeError, match=f"{type(act).__name__} at position 'block.act'"):
            rg.from_torch(Outer(act))


def test_products_of_input_dependent_tensors_are_refused():
    class Square(nn.Module):
        def forward(self, x):
            return x * x

    with pytest.raises(TypeError, match="two input-dependent tensors"):
        rg.from_torch(Square(), input_shape=(3,))


@pytest.mark.parametrize(
    "model",
    [
        lambda: nn.Sequential(nn.Conv3d(1, 2, 3), nn.MaxPool3d(2)),
        lambda: Outer(lambda x: torch.amin(x, dim=1, keepdim=True)),
        lambda: Outer(lambda x: x.min(dim=1).values),
    ],
    ids=["maxpool3d", "amin", "min"],
)
def test_unsupported_max_units_are_refused(model):
    # MaxPool1d/2d, max and amax convert (tests/test_max_units.py); these do not yet
    m = model()
    if isinstance(m, Outer):
        m = _as_module(m)
    with pytest.raises(TypeError, match="max unit regiongeom does not convert; supported max units"):
        rg.from_torch(m.eval(), input_shape=(1, 6, 6, 6) if isinstance(m, nn.Sequential) else (3,))


def _as_module(outer):
    fn = outer.block.act

    class Fn(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return fn(self.fc(x))

    return Fn()


@pytest.mark.parametrize(
    "model, what",
    [
        (lambda: nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU()), "BatchNorm1d at position '1'"),
        (lambda: Outer(nn.Dropout(0.2)), "Dropout at position 'block.act'"),
        (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)), "BatchNorm2d"),
    ],
)
def test_training_mode_is_refused(model, what):
    m = model()
    with pytest.raises(TypeError, match=re.escape(what) + ".*training mode.*model.eval()"):
        rg.from_torch(m, input_shape=(1, 5, 5))
    assert rg.from_torch(_ready(m), input_shape=(1, 5, 5) if "2d" in what else None).n_neurons >= 0


def test_functional_dropout_in_training_is_refused():
    class D(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return F.dropout(self.fc(x), 0.5)

    with pytest.raises(TypeError, match="training=self.training"):
        rg.from_torch(D().eval())


def test_untraceable_control_flow_is_one_clear_line():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            h = self.fc(x)
            if h.sum() > 0:
                return h
            return -h

    with pytest.raises(TypeError) as info:
        rg.from_torch(Branchy())
    msg = str(info.value)
    assert "cannot trace Branchy.forward" in msg and "control flow" in msg and "torch.where" in msg
    assert "if h.sum() > 0" in msg and "\n" not in msg


def test_input_shape_needed_for_convolutions_and_checked():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    with pytest.raises(ValueError, match=r"pass input_shape.*\(1, 28, 28\)"):
        rg.from_torch(model)
    with pytest.raises(ValueError, match="check input_shape"):
        rg.from_torch(model, input_shape=(2, 5, 5))
    with pytest.raises(ValueError, match="input_shape"):
        rg.from_torch(nn.Sequential(nn.Linear(3, 2)), input_shape=(4,))


@pytest.mark.slow
def test_importing_regiongeom_does_not_import_torch():
    code = "import sys, regiongeom; assert 'torch' not in sys.modules, 'torch was imported'"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


def test_in_place_change_of_a_shared_tensor_is_refused():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            h = self.fc(x)
            return F.relu(h, inplace=True) + h

    with pytest.raises(TypeError, match="in place a tensor that is also used elsewhere"):
        rg.from_torch(Shared())


def test_reshapes_across_the_batch_are_refused():
    class Mix(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x).view(-1, 2).relu()

    with pytest.raises(TypeError, match="mixes the samples of a batch"):
        rg.from_torch(Mix())


def test_absolute_operator_is_exact_only_without_cancellation():
    conv = nn.Conv1d(1, 1, 3, padding=1, padding_mode="reflect", bias=False)
    conv.weight.data = torch.tensor([[[1.0, 0.5, -1.0]]])  # reflected x[1] meets itself: 1 - 1 = 0
    net = rg.from_torch(nn.Sequential(conv, nn.ReLU()), input_shape=(1, 3))
    op = net.stages[0].operator
    A = op.matrix()
    np.testing.assert_array_equal(A[0], [0.5, 0.0, 0.0])
    assert not op.abs_exact
    np.testing.assert_array_equal(op.row_l1, np.abs(A).sum(axis=1))
    assert op.absolute(np.ones((1, 3)))[0, 0] == 2.5  # the chain's bound, above |A| 1 = 0.5
    plain = rg.from_torch(nn.Sequential(nn.Conv1d(1, 2, 2), nn.ReLU()), input_shape=(1, 3))
    assert plain.stages[0].operator.abs_exact


class ExportMe(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.AvgPool2d(2))
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        h = self.f(x)
        return F.leaky_relu(self.fc(h.view(h.size(0), -1)), 0.1) + 0.5 * torch.flatten(h, 1)[:, :3]


def test_torch_export_programs_convert():
    model = _ready(ExportMe())
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (torch.randn(2, 1, 4, 4),), dynamic_shapes={"x": {0: batch}})
    net = rg.from_torch(program.module(), input_shape=(1, 4, 4))
    assert isinstance(net, GraphNetwork) and [s.name for s in net.stages] == ["f.0", "fc"]
    x = np.random.default_rng(0).normal(size=(5, 16))
    _close(net(x), _reference(model, x, (1, 4, 4)))
    _close(net(x[:1]), _reference(model, x[:1], (1, 4, 4)))
    assert net.neuron_names == rg.from_torch(model, input_shape=(1, 4, 4)).neuron_names


def test_image_shaped_mlp_with_batchnorm_is_a_dense_network():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    net, x = _convert(model, (3, 2, 2))
    assert type(net) is rg.Network and net.n_in == 12 and net.layer_sizes == (4, 0)
    assert net.neuron_names == ("1[0]", "1[1]", "1[2]", "1[3]")


def test_concatenating_a_constant_is_refused():
    class CatConst(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.register_buffer("pad", torch.ones(1, 2))

        def forward(self, x):
            return torch.cat([F.relu(self.fc(x)), self.pad], dim=1)

    with pytest.raises(TypeError, match="constants"):
        rg.from_torch(CatConst())


@pytest.mark.parametrize("seed", range(8))
def test_random_convolution_configurations(seed):
    rng = np.random.default_rng(seed)
    dim = 1 + seed % 2
    groups = int(rng.choice([1, 2]))
    cin, cout = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    k, dil = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    stride = int(rng.integers(1, 3))
    padding = "same" if stride == 1 and rng.random() < 0.5 else int(rng.integers(0, 3))
    mode = str(rng.choice(["zeros", "reflect", "replicate", "circular"])) if padding != "same" else "zeros"
    Conv = nn.Conv1d if dim == 1 else nn.Conv2d
    torch.manual_seed(seed)
    conv = Conv(cin, cout, k, stride=stride, padding=padding, dilation=dil, groups=groups, padding_mode=mode)
    model = nn.Sequential(conv, nn.LeakyReLU(0.3), Conv(cout, 2, 1), nn.Flatten())
    shape = (cin,) + (int(rng.integers(6, 9)),) * dim
    net, x = _convert(model, shape)
    _operator_properties(net, x)
    _restrictions(net, x)
