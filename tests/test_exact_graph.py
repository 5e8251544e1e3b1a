"""ExactGraph: exact affine maps of graph networks on activation patterns.

Checked against an independent rational evaluation (every primitive's
coefficients read off by torch on unit vectors, composed in
``fractions.Fraction`` with each neuron's slope and intercept), against the
float network at points, and row by row (``line``) against whole stages.
"""

from fractions import Fraction

import numpy as np
import pytest

import regiongeom as rg

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from test_torch_graph import (  # noqa: E402
    Concat,
    Conv1dNet,
    Functional,
    Residual,
    Shapes,
    SmallCNN,
    TinyResNet,
    _ready,
)

from regiongeom import _graph_ops as g  # noqa: E402
from regiongeom._exact import ExactNet  # noqa: E402
from regiongeom._exact_graph import ExactGraph, exact_for  # noqa: E402
from regiongeom.graph import GraphNetwork, LiftedOperator, Operator, Stage  # noqa: E402


class Pads(nn.Module):
    """Replicate/reflect/constant padding, 'same' with an even kernel, a strided grouped conv."""

    def __init__(self):
        super().__init__()
        self.pad = nn.ReplicationPad2d((1, 0, 2, 1))
        self.c1 = nn.Conv2d(1, 4, (2, 3), padding="same", padding_mode="replicate")
        self.c2 = nn.Conv2d(4, 4, 3, stride=(2, 1), groups=2, padding=(1, 2), padding_mode="reflect")
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        h = F.relu(self.c1(self.pad(x)))
        h = F.leaky_relu(self.c2(F.pad(h, (0, 1, 1, 0), value=-0.25)), 0.2)
        h = h.sum(dim=(2, 3)) / 3.0
        return self.head(-h)


class Conv3dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv3d(1, 2, (2, 2, 1), stride=(1, 2, 1), padding=(1, 0, 1))
        self.head = nn.Linear(2 * 4 * 2 * 4, 2)

    def forward(self, x):
        return self.head(F.relu(self.c(x)).flatten(1))


MODELS = [
    (lambda: SmallCNN("avg"), (2, 6, 6)),
    (lambda: SmallCNN("adaptive"), (2, 6, 6)),
    (Conv1dNet, (2, 9)),
    (Residual, (1, 5, 5)),
    (Concat, (4,)),
    (Shapes, (6,)),
    (Functional, (1, 3, 4)),
    (TinyResNet, (1, 6, 6)),
    (Pads, (1, 4, 3)),
    (Conv3dNet, (1, 3, 4, 2)),
]
IDS = [
    "cnn-avgpool",
    "cnn-adaptive",
    "conv1d",
    "residual",
    "concat",
    "shapes",
    "functional",
    "resnet",
    "pads",
    "conv3d",
]


def _net(make, shape, seed=0):
    torch.manual_seed(seed)
    net = rg.from_torch(_ready(make(), seed), input_shape=shape)
    assert isinstance(net, GraphNetwork)
    return net


def _frac(d):
    """A Dyadic as an object array of Fractions."""
    scale = Fraction(2) ** d.e
    return np.vectorize(lambda v: Fraction(v) * scale, otypes=[object])(d.m)


def _fr(a):
    return np.vectorize(Fraction, otypes=[object])(np.asarray(a, dtype=np.float64))


# --------------------------------------------- the rational reference ----
def _node_matrix(node):
    """``(A, b)`` float64 of one primitive: its coefficients as torch computes
    them on unit vectors, and its constant on zeros."""
    sizes = [int(np.prod(i.shape)) for i in node.inputs]
    n = sum(sizes)
    E = torch.cat([torch.eye(n, dtype=torch.float64), torch.zeros(1, n, dtype=torch.float64)])
    xs, at = [], 0
    for i, k in zip(node.inputs, sizes):
        xs.append(E[:, at : at + k].reshape(n + 1, *i.shape))
        at += k
    with torch.no_grad():
        lin = node.run(xs, "linear").reshape(n + 1, -1).numpy()[:n].T
        const = node.run([x[n:] for x in xs], "affine").reshape(-1).numpy()
    return lin, const


def _ref_dag(op, tensors, n_cols, linear, zero_input):
    """Rows ``(n_out, n_cols)`` of an Operator's DAG from the tensors' rows."""
    vals = {}
    for node in op.order:
        if isinstance(node, g.Source):
            if zero_input and node.tensor == 0:
                vals[id(node)] = np.zeros((int(np.prod(node.shape)), n_cols), dtype=object)
            else:
                vals[id(node)] = tensors[node.tensor]
            continue
        A, b = _node_matrix(node)
        X = np.vstack([vals[id(i)] for i in node.inputs])
        out = np.zeros((A.shape[0], n_cols), dtype=object)
        for i in range(A.shape[0]):  # row by row over the nonzero coefficients
            for j in np.flatnonzero(A[i]):
                out[i] = out[i] + Fraction(A[i, j]) * X[j]
            if not linear:
                out[i, -1] += Fraction(b[i])
        vals[id(node)] = out
    return vals[id(op.root)]


def _ref_op(op, tensors, n_cols):
    if isinstance(op, LiftedOperator):
        out = np.hstack([_fr(op.M), _fr(op.const)[:, None]])
        if op.rest is not None:
            out = out + _ref_dag(op.rest, tensors, n_cols, True, True)
        return out
    return _ref_dag(op, tensors, n_cols, False, False)


def reference(gnet, pattern):
    """Every stage's preactivation rows and the output rows, in Fractions."""
    k = gnet.n_in + 1
    eye = np.zeros((gnet.n_in, k), dtype=object)
    for i in range(gnet.n_in):
        eye[i, i] = Fraction(1)
    tensors, pre = {0: eye * 1}, []
    for s, stage in enumerate(gnet.stages):
        z = _ref_op(stage.operator, tensors, k)
        pre.append(z)
        h = np.empty_like(z)
        for j in range(stage.n):
            p = int(pattern[stage.offset + j])
            h[j] = z[j] * Fraction(stage.slopes[j, p])
            h[j, -1] += Fraction(stage.intercepts[j, p])
        tensors[s + 1] = h
    return pre, _ref_op(gnet.output, tensors, k)


def _random_pattern(gnet, rng):
    return np.concatenate([rng.integers(0, len(s.breakpoints) + 1, s.n) for s in gnet.stages]).astype(np.int8)


def _slices(net, seed=0):
    x = np.random.default_rng(seed).normal(size=(5, net.n_in))
    return [net.restrict(rg.Plane.through(x[0], x[1], x[2])), net.restrict(rg.Line.through(x[3], x[4]))]


# -------------------------------------------------------------- tests ----
@pytest.mark.parametrize("make, shape", MODELS, ids=IDS)
def test_maps_equal_the_rational_reference(make, shape):
    _against_reference(make, shape)


@pytest.mark.parametrize("make, shape", [MODELS[i] for i in (3, 4, 6, 8)], ids=[IDS[i] for i in (3, 4, 6, 8)])
def test_maps_on_limbs_only_equal_the_rational_reference(make, shape, monkeypatch):
    """The same with every product on limbs (small ones use Python ints by default)."""
    import regiongeom._exact_graph as xg

    monkeypatch.setattr(xg, "_SMALL", 0)
    monkeypatch.setattr(xg, "_conv_limbs", lambda *a: None)  # convolutions through their rows too
    _against_reference(make, shape)


def _against_reference(make, shape):
    net = _net(make, shape)
    rng = np.random.default_rng(1)
    for gnet in [*_slices(net), net] if net.n_in <= 6 else _slices(net):
        ex = ExactGraph(gnet)
        pts = rng.normal(size=(1, gnet.n_in))
        pats = list(gnet.patterns(pts)) + [_random_pattern(gnet, rng)]
        for pat in pats:
            pre, out = reference(gnet, pat)
            for s in range(len(gnet.stages)):
                got = ex.maps(pat, s)
                assert got.m.shape == (gnet.stages[s].n, gnet.n_in + 1)
                assert (_frac(got) == pre[s]).all(), s
            assert (_frac(ex.output(pat)) == out).all()


@pytest.mark.parametrize("make, shape", MODELS, ids=IDS)
def test_maps_at_points_are_the_float_network(make, shape):
    net = _net(make, shape)
    for gnet in [net, *_slices(net, 3)]:
        ex = ExactGraph(gnet)
        pts = np.random.default_rng(2).normal(size=(3, gnet.n_in))
        out, pre = gnet.forward(pts)
        for p, (x, pat) in enumerate(zip(pts, gnet.patterns(pts))):
            for s, z in enumerate(pre):
                A = ex.maps(pat, s).to_float()
                np.testing.assert_allclose(A[:, :-1] @ x + A[:, -1], z[p], rtol=1e-12, atol=1e-12)
            out_map = ex.output(pat).to_float()
            np.testing.assert_allclose(out_map[:, :-1] @ x + out_map[:, -1], out[p], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make, shape", MODELS, ids=IDS)
def test_line_is_the_row_of_maps(make, shape):
    net = _net(make, shape)
    gnet = _slices(net, 4)[0]
    rng = np.random.default_rng(3)
    pat = _random_pattern(gnet, rng)
    whole = ExactGraph(gnet)
    for s, stage in enumerate(gnet.stages):
        rows = _frac(whole.maps(pat, s))
        for j in rng.choice(stage.n, size=min(stage.n, 4), replace=False):
            for b, t in enumerate(stage.breakpoints):
                want = rows[j].copy()
                want[-1] -= Fraction(t)
                cone = ExactGraph(gnet)  # a fresh one: only the neuron's cone is computed
                assert (_frac(cone.line(pat, stage.offset + j, b)) == want).all()
                assert (_frac(whole.line(pat, stage.offset + j, b)) == want).all()


def test_cone_of_a_row_is_only_its_receptive_field():
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 8 * 8, 1)
    )
    net = _net(lambda: model, (1, 12, 12))
    gnet = _slices(net)[0]
    ex = ExactGraph(gnet)
    pat = np.ones(gnet.n_neurons, np.int8)
    ex.line(pat, gnet.stages[1].offset, 0)  # corner neuron of the second conv: 3x3 window, 2 channels
    part = ex._cache[(0, pat[:0].tobytes())]
    assert part.known.sum() == 2 * 3 * 3
    assert (_frac(ex.maps(pat, 1)) == reference(gnet, pat)[0][1]).all()


def _dense_rows(rows, n_in):
    A = np.zeros((rows.idx.shape[0], n_in + 1))
    coef = np.ones(rows.idx.shape) if rows.rowsel is None else rows.table.to_float()[rows.rowsel]
    np.add.at(A, (np.arange(len(A))[:, None].repeat(rows.idx.shape[1], 1), rows.idx), coef)
    b = np.zeros(len(A)) if rows.const is None else rows.const.to_float()
    return A[:, :n_in], b


@pytest.mark.parametrize("make, shape", MODELS, ids=IDS)
def test_index_structure_equals_the_coefficients_torch_computes(make, shape):
    """Each primitive's rows from its index structure (convolutions, padding,
    reshapes, ...) against the same rows read off unit vectors."""
    from regiongeom._exact_graph import _probe, compile_node

    net = _net(make, shape)
    for op in [s.operator for s in net.stages] + [net.output]:
        for node in op.order:
            if isinstance(node, g.Source):
                continue
            n_in = sum(int(np.prod(i.shape)) for i in node.inputs)
            A, b = _dense_rows(compile_node(node), n_in)
            A2, b2 = _dense_rows(_probe(node), n_in)
            np.testing.assert_array_equal(A, A2)
            np.testing.assert_array_equal(b, b2)


@pytest.mark.parametrize("bits", [3, 60, 200])
def test_limb_products_are_exact(bits):
    from regiongeom._exact_graph import _int_dot, _limbs, _n_limbs

    rng = np.random.default_rng(bits)

    def ints(shape):
        v = [
            int(rng.integers(-(2**62), 2**62)) << int(rng.integers(0, bits))
            for _ in range(int(np.prod(shape)))
        ]
        v[0] = -(1 << (bits + 61))  # the most negative power of two: the top limb's edge
        return np.array(v, dtype=object).reshape(shape)

    Xp, C = ints((3, 41)), ints((6, 9))
    P = rng.integers(0, 41, size=(6, 9))
    CL = _limbs(C, _n_limbs(C))
    want = np.array([[sum(Xp[c, P[j, q]] * C[j, q] for q in range(9)) for j in range(6)] for c in range(3)])
    assert (_int_dot(Xp, P, CL) == want).all()
    ones = np.array([[sum(Xp[c, P[j, q]] for q in range(9)) for j in range(6)] for c in range(3)])
    assert (_int_dot(Xp, P, None) == ones).all()
    Ps = np.broadcast_to(P[0], P.shape)  # every row reads the same entries
    want = np.array([[sum(Xp[c, Ps[j, q]] * C[j, q] for q in range(9)) for j in range(6)] for c in range(3)])
    assert (_int_dot(Xp, np.ascontiguousarray(Ps), CL, shared=True) == want).all()


def test_a_cache_emptied_mid_computation_gives_the_same_maps():
    gnet = _slices(_net(Residual, (1, 5, 5)))[0]
    pat = _random_pattern(gnet, np.random.default_rng(7))
    small, whole = ExactGraph(gnet), ExactGraph(gnet)
    small._MAX_CACHED = 60  # fewer than one stage's rows: emptied on every store
    for s in range(len(gnet.stages)):
        assert (_frac(small.maps(pat, s)) == _frac(whole.maps(pat, s))).all()
    assert (_frac(small.output(pat)) == _frac(whole.output(pat))).all()
    assert small._cached <= 60 + gnet.stages[0].n * 3


def test_averages_and_divisions_multiply_by_the_rounded_reciprocal():
    class Avg(nn.Module):
        def forward(self, x):
            return torch.cat([F.avg_pool2d(F.relu(x), 3).flatten(1), x.mean(dim=(1, 2, 3))[:, None] / 3.0], 1)

    net = rg.from_torch(Avg(), input_shape=(1, 3, 3))
    # integer inputs: every sum is exact, so only the coefficients round
    x = np.random.default_rng(5).integers(-9, 10, size=(40, 9)).astype(np.float64)
    s_relu, s = np.maximum(x, 0).sum(1), x.sum(1)
    got = net(x)
    np.testing.assert_array_equal(got[:, 0], s_relu * (1.0 / 9))
    np.testing.assert_array_equal(got[:, 1], s * (1.0 / 9) * (1.0 / 3))
    assert (s_relu * (1.0 / 9) != s_relu / 9).any()  # the two evaluations differ on these inputs
    ex = ExactGraph(net)
    third, ninth = Fraction(1.0 / 3), Fraction(1.0 / 9)
    for pat in net.patterns(x[:5]):
        out_map = _frac(ex.output(pat))
        assert (out_map[:, -1] == 0).all()
        assert (out_map[0, :-1] == np.where(pat == 1, ninth, 0)).all()
        assert (out_map[1, :-1] == ninth * third).all()


def test_exact_for_dispatches_on_the_network_type():
    dense = rg.Network.from_arrays([np.eye(2), [[1.0, 1.0]]], [[0.0, 0.0], [0.0]], ["relu", None])
    assert isinstance(exact_for(dense), ExactNet)
    gnet = _net(Concat, (4,))
    assert isinstance(exact_for(gnet), ExactGraph)
    assert isinstance(exact_for(gnet.restrict(rg.Plane.through(*np.eye(4)[:3]))), ExactGraph)
    with pytest.raises(TypeError, match="rg.Network or a GraphNetwork"):
        exact_for(object())


def test_dense_networks_agree_with_exact_net():
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 4), nn.LeakyReLU(0.1), nn.Linear(4, 2))
    torch.manual_seed(0)
    dense = rg.from_torch(model.double().eval(), input_shape=(3,))
    stages, output = [], None
    ops = [g.Source(0, (3,))]
    for i, lin in enumerate([model[0], model[2]]):  # the same network as a GraphNetwork
        node = g.Linear(ops[-1], lin.weight.detach().double(), lin.bias.detach().double())
        node.shape = (lin.out_features,)
        act = dense.activations[i]
        n = lin.out_features
        sl = np.broadcast_to(act.slopes, (n, act.slopes.size))
        ic = np.broadcast_to(act.intercepts, (n, act.intercepts.size))
        stages.append(Stage(Operator(node), act.breakpoints, sl, ic, 5 * i, (n,), f"s{i}", act))
        ops.append(g.Source(i + 1, (n,)))
    last = g.Linear(ops[-1], model[4].weight.detach().double(), model[4].bias.detach().double())
    last.shape = (2,)
    output = Operator(last)
    gnet = GraphNetwork((3,), tuple(stages), output)
    a, b = ExactNet(dense), ExactGraph(gnet)
    np.testing.assert_array_equal(a.offsets[:-1], b.offsets)  # a Network counts its output layer too
    pat = np.array([1, 0, 1, 1, 0, 0, 1, 1, 0], np.int8)
    for s in range(2):
        assert (_frac(a.maps(pat, s)) == _frac(b.maps(pat, s))).all()
    assert (_frac(a.output(pat)) == _frac(b.output(pat))).all()
    assert (_frac(a.line(pat, 6, 0)) == _frac(b.line(pat, 6, 0))).all()


def test_mnist_shaped_cnn_on_a_plane():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2), nn.ReLU(), nn.Flatten(),
        nn.Linear(32 * 12 * 12, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip
    net = rg.from_torch(model.double().eval(), input_shape=(1, 28, 28))
    x = np.random.default_rng(0).random((3, 784))
    gnet = net.restrict(rg.Plane.through(*x))
    uv = np.array([[0.3, 0.1]])
    ex = ExactGraph(gnet)
    pat = gnet.patterns(uv)[0]
    out, pre = gnet.forward(uv)
    for s in range(3):
        A = ex.maps(pat, s).to_float()
        np.testing.assert_allclose(A[:, :2] @ uv[0] + A[:, 2], pre[s][0], rtol=1e-12, atol=1e-12)
    out_map = ex.output(pat).to_float()
    np.testing.assert_allclose(out_map[:, :2] @ uv[0] + out_map[:, 2], out[0], rtol=1e-12, atol=1e-12)
