"""Tests of regiongeom.network: Network, activations, from_torch, persistence."""

import numpy as np
import pytest
from common import ACT_IDS, ACTIVATIONS, manual_forward, random_net

import regiongeom as rg

try:  # torch is optional: only the from_torch tests need it
    import torch
    from torch import nn
except ImportError:
    torch = nn = None

needs_torch = pytest.mark.skipif(torch is None, reason="needs torch (pip install torch)")


# ------------------------------------------------------------ from_arrays ----
def test_from_arrays_shapes_and_dtypes():
    ws = [np.arange(6).reshape(3, 2), np.ones((4, 3)), np.ones((2, 4))]
    bs = [[1, 2, 3], np.zeros(4), [0.5, -0.5]]
    net = rg.Network.from_arrays(ws, bs, ["relu", "abs", None])
    assert (net.n_in, net.n_out, net.n_neurons) == (2, 2, 7)
    assert net.layer_sizes == (3, 4, 0)
    for w in net.weights + net.biases:
        assert w.dtype == np.float64
        assert not w.flags.writeable
    np.testing.assert_array_equal(net.weights[0], ws[0])
    assert net.activations[0] == rg.relu and net.activations[1] == rg.absolute
    assert net.activations[2] is None


def test_from_arrays_copies_its_inputs():
    w = np.ones((2, 2))
    net = rg.Network.from_arrays([w, np.ones((1, 2))], [np.zeros(2), np.zeros(1)], ["relu", None])
    w[0, 0] = 5.0
    assert net.weights[0][0, 0] == 1.0


@pytest.mark.parametrize(
    "ws, bs, acts",
    [
        ([np.ones((2, 2)), np.ones((1, 3))], [np.zeros(2), np.zeros(1)], ["relu", None]),  # no chain
        ([np.ones((2, 2))], [np.zeros(3)], ["relu"]),  # bias length
        ([np.ones((2, 2))], [np.zeros(2)], ["relu", None]),  # counts differ
        ([np.ones((2, 2)) * np.nan], [np.zeros(2)], ["relu"]),  # NaN
        ([], [], []),
    ],
)
def test_from_arrays_rejects_bad_layers(ws, bs, acts):
    with pytest.raises(ValueError):
        rg.Network.from_arrays(ws, bs, acts)


def test_unknown_activation_name_is_named():
    with pytest.raises(ValueError, match="tanh"):
        rg.Network.from_arrays([np.ones((1, 1))], [np.zeros(1)], ["tanh"])


# ---------------------------------------------------------------- forward ----
@pytest.mark.parametrize("act", ACT_IDS)
@pytest.mark.parametrize("n_in, n_out", [(1, 1), (2, 1), (2, 3)])
def test_forward_matches_manual_numpy(act, n_in, n_out):
    net = random_net([7, 5], n_in=n_in, n_out=n_out, activation=ACTIVATIONS[act], seed=3)
    x = np.random.default_rng(0).uniform(-3, 3, size=(200, n_in))
    y = net(x)
    assert y.shape == (200, n_out) and y.dtype == np.float64
    np.testing.assert_allclose(y, manual_forward(net, x), rtol=1e-13, atol=1e-13)


def test_forward_small_exact():
    # relu(x - 1) * 2 + relu(-x) ... by hand
    net = rg.Network.from_arrays([[[1.0], [-1.0]], [[2.0, 1.0]]], [[-1.0, 0.0], [0.5]], ["relu", None])
    np.testing.assert_array_equal(net(np.array([-2.0, 0.0, 3.0])), [[2.5], [0.5], [4.5]])


def test_one_input_accepts_flat_points():
    net = random_net([4], n_in=1, seed=1)
    x = np.linspace(-1, 1, 9)
    np.testing.assert_array_equal(net(x), net(x[:, None]))


def test_forward_rejects_wrong_point_shape():
    net = random_net([4], n_in=2, seed=1)
    with pytest.raises(ValueError):
        net(np.zeros((5, 3)))


def test_last_layer_with_activation_and_several_outputs():
    net = random_net([6], n_in=2, n_out=3, seed=2, last_activation="relu")
    assert net.n_out == 3 and net.n_neurons == 9
    x = np.random.default_rng(1).normal(size=(300, 2))
    y = net(x)
    assert y.shape == (300, 3)
    assert np.all(y >= 0) and np.any(y == 0) and np.any(y > 0)
    np.testing.assert_allclose(y, manual_forward(net, x), rtol=1e-13, atol=1e-13)
    # the patterns include the last layer's neurons
    pat = net.patterns(x)
    assert pat.shape == (300, 9)
    np.testing.assert_array_equal(pat[:, 6:], (y > 0).astype(np.int8))


def test_patterns_are_piece_indices():
    act = ACTIVATIONS["pl3"]
    net = rg.Network.from_arrays([[[1.0]], [[1.0]]], [[0.0], [0.0]], [act, None])
    z = np.array([-5.0, -0.6, 0.0, 0.1, 0.5, 0.8, 9.0])
    np.testing.assert_array_equal(net.patterns(z)[:, 0], [0, 1, 1, 2, 2, 3, 3])


# ------------------------------------------------------------ activations ----
Z = np.linspace(-3, 3, 601)
EXPLICIT = {
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z >= 0, z, 0.1 * z),
    "hardtanh": lambda z: np.clip(z, -0.5, 0.7),
    "abs": np.abs,
}


@pytest.mark.parametrize("act", list(EXPLICIT))
def test_activation_values(act):
    a = rg.Network.from_arrays([np.ones((1, 1))], [np.zeros(1)], [ACTIVATIONS[act]]).activations[0]
    np.testing.assert_allclose(a(Z), EXPLICIT[act](Z), rtol=0, atol=1e-15)


def test_custom_activation_values_and_pieces():
    a = ACTIVATIONS["pl3"]
    assert a.n_pieces == 4
    # value at the first breakpoint and the slopes fix everything
    assert a(np.array([-0.6]))[0] == pytest.approx(0.2)
    bp, sl = a.breakpoints, a.slopes
    for k in range(4):
        lo = bp[k - 1] if k > 0 else bp[0] - 2
        hi = bp[k] if k < 3 else bp[-1] + 2
        z = np.linspace(lo, hi, 11)[1:-1]
        np.testing.assert_array_equal(a.piece(z), k)
        np.testing.assert_allclose(np.diff(a(z)) / np.diff(z), sl[k], rtol=1e-12)
        np.testing.assert_allclose(a(z), sl[k] * z + a.intercepts[k], rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("act", ACT_IDS)
def test_activation_continuity(act):
    a = rg.Network.from_arrays([np.ones((1, 1))], [np.zeros(1)], [ACTIVATIONS[act]]).activations[0]
    for k, t in enumerate(a.breakpoints):
        left = a.slopes[k] * t + a.intercepts[k]
        right = a.slopes[k + 1] * t + a.intercepts[k + 1]
        assert left == pytest.approx(right, abs=1e-14)
        assert a(np.array([t]))[0] == pytest.approx(left, abs=1e-14)
        eps = 1e-9
        assert a(np.array([t - eps, t + eps])) == pytest.approx([left, left], abs=1e-8)
        # right-continuous pieces: the breakpoint itself is on the piece to its right
        assert a.piece(np.array([t - eps, t, t + eps])).tolist() == [k, k + 1, k + 1]


@pytest.mark.parametrize(
    "bps, slopes",
    [([], [1.0]), ([0.0, 0.0], [0, 1, 2]), ([1.0, 0.0], [0, 1, 2]), ([0.0], [1.0, 1.0]), ([0.0], [1, 2, 3])],
)
def test_bad_activation_raises(bps, slopes):
    with pytest.raises(ValueError):
        rg.Activation("bad", bps, slopes)


def test_exported_activations_apply_to_arrays():
    z = np.array([[-2.0, -0.5], [0.0, 3.0]])
    np.testing.assert_array_equal(rg.relu(z), np.maximum(z, 0))
    np.testing.assert_allclose(rg.leaky_relu(z), np.where(z >= 0, z, 0.01 * z), rtol=1e-15)  # torch's default
    np.testing.assert_array_equal(rg.hardtanh(z), np.clip(z, -1, 1))
    np.testing.assert_array_equal(rg.absolute(z), np.abs(z))
    assert rg.relu([-1.0, 2.0]).tolist() == [0.0, 2.0]  # lists too
    for a in (rg.relu, rg.leaky_relu, rg.hardtanh, rg.absolute):
        assert isinstance(a, rg.Activation)


def test_activation_constructors_and_names_agree():
    assert rg.Activation.relu() == rg.relu and rg.Activation.absolute() == rg.absolute
    assert rg.Activation.leaky_relu() == rg.leaky_relu and rg.Activation.hardtanh() == rg.hardtanh
    np.testing.assert_allclose(rg.Activation.leaky_relu(negative_slope=0.2)([-1.0, 1.0]), [-0.2, 1.0])
    np.testing.assert_array_equal(
        rg.Activation.hardtanh(min_val=0.0, max_val=6.0)([-1.0, 3.0, 7.0]), [0, 3, 6]
    )
    net = rg.Network.from_arrays(
        [np.ones((1, 1))] * 4, [np.zeros(1)] * 4, ["relu", "leaky_relu", "hardtanh", "abs"]
    )
    assert net.activations == (rg.relu, rg.leaky_relu, rg.hardtanh, rg.absolute)


def test_hardtanh_needs_order():
    with pytest.raises(ValueError):
        rg.Activation.hardtanh(1.0, -1.0)


# -------------------------------------------------------------- from_torch ----
def _torch_net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(2, 8),
        nn.ReLU(),
        nn.Sequential(nn.Linear(8, 6), nn.LeakyReLU(0.2), nn.Dropout(0.5)),
        nn.Identity(),
        nn.Sequential(nn.Sequential(nn.Linear(6, 5), nn.Hardtanh(-0.3, 0.4))),
        nn.Linear(5, 4, bias=False),
        nn.ReLU6(),
        nn.Linear(4, 3),
    ).double()


@needs_torch
def test_from_torch_matches_torch_forward():
    mod = _torch_net().eval()
    net = rg.from_torch(mod)
    assert (net.n_in, net.n_out, net.n_neurons) == (2, 3, 8 + 6 + 5 + 4)
    x = np.random.default_rng(0).uniform(-2, 2, size=(500, 2))
    with torch.no_grad():
        expect = mod(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net(x), expect, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(manual_forward(net, x), expect, rtol=1e-12, atol=1e-12)


@needs_torch
def test_from_torch_float32_module():
    torch.manual_seed(1)
    mod = nn.Sequential(nn.Linear(1, 5), nn.ReLU(), nn.Linear(5, 2))
    net = rg.from_torch(mod)
    assert net.weights[0].dtype == np.float64
    x = np.linspace(-2, 2, 50)[:, None]
    with torch.no_grad():
        expect = mod(torch.from_numpy(x).float()).double().numpy()
    np.testing.assert_allclose(net(x), expect, rtol=1e-5, atol=1e-5)


@needs_torch
@pytest.mark.parametrize(
    "mod, name, pos",
    [
        (lambda: nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)), "Tanh", "1"),
        (
            lambda: nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 3), nn.Sigmoid())),
            "Sigmoid",
            "2.1",
        ),
        (lambda: nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)), "BatchNorm1d", "1"),
    ],
)
def test_from_torch_unsupported_module_is_named(mod, name, pos):
    with pytest.raises(TypeError) as info:
        rg.from_torch(mod())
    msg = str(info.value)
    assert name in msg and pos in msg


@needs_torch
def test_from_torch_rejects_non_modules_and_empty():
    with pytest.raises(TypeError):
        rg.from_torch([nn.Linear(2, 2)])
    with pytest.raises(TypeError):
        rg.from_torch(nn.Sequential(nn.ReLU()))


# ------------------------------------------------------------- persistence ----
@pytest.mark.parametrize("last", [None, "relu"])
def test_save_load_round_trip(tmp_path, last):
    ws = [np.ones((3, 2)) * 0.5, np.eye(3)[:2] + 0.1, np.ones((2, 2))]
    bs = [np.array([0.1, -0.2, 0.3]), np.zeros(2), np.array([1.0, -1.0])]
    net = rg.Network.from_arrays(ws, bs, [ACTIVATIONS["pl3"], rg.Activation.hardtanh(-0.5, 0.7), last])
    path = tmp_path / "net.npz"
    net.save(path)
    back = rg.Network.load(path)
    assert back.n_layers == net.n_layers
    for a, b in zip(net.weights + net.biases, back.weights + back.biases, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(net.activations, back.activations, strict=True):
        assert a == b
        if a is not None:
            assert a.name == b.name
            np.testing.assert_array_equal(a.intercepts, b.intercepts)
    x = np.random.default_rng(0).normal(size=(50, 2))
    np.testing.assert_array_equal(net(x), back(x))


def test_load_rejects_foreign_file(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(ValueError):
        rg.Network.load(path)


def test_with_biases_changes_only_biases():
    net = random_net([4, 3], seed=0)
    new = [b + 1 for b in net.biases]
    other = net.with_biases(new)
    for a, b in zip(net.weights, other.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(new, other.biases, strict=True):
        np.testing.assert_array_equal(a, b)


def test_neuron_names_survive_save_load_and_new_biases(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = torch.nn.Linear(2, 3)
            self.out = torch.nn.Linear(3, 1)

        def forward(self, x):
            return self.out(torch.relu(self.hidden(x)))

    net = rg.from_torch(MLP().double())
    assert net.neuron_names == ("hidden[0]", "hidden[1]", "hidden[2]")
    net.save(tmp_path / "m.npz")
    back = rg.Network.load(tmp_path / "m.npz")
    assert back.neuron_names == net.neuron_names
    assert net.with_biases([np.zeros(3), np.zeros(1)]).neuron_names == net.neuron_names
    plain = rg.Network.from_arrays(
        [np.ones((2, 2)), np.ones((1, 2))], [np.zeros(2), np.zeros(1)], ["relu", None]
    )
    plain.save(tmp_path / "p.npz")
    assert rg.Network.load(tmp_path / "p.npz").neuron_names == plain.neuron_names
