"""Local complexity and the paper's other measures on graph networks.

Each graph result is checked against something computed another way: the
dense estimator on the same network written densely (a dense twin), torch
autograd on the model itself, a brute-force good indicator that recomputes
the whole network with the neuron pinned and searches paths through the
operators' dense matrices, and the definition route (exact regions of the
noisy network) by z-score with a fixed seed.
"""

from __future__ import annotations

import numpy as np
import pytest

import regiongeom as rg

torch = pytest.importorskip("torch")
nn = torch.nn

from regiongeom import _graph_ops as g  # noqa: E402
from regiongeom import _theorem2_graph as T  # noqa: E402
from regiongeom._graph_support import support_t  # noqa: E402
from regiongeom._theorem2 import theorem2_samples  # noqa: E402
from regiongeom.graph import GraphNetwork, Operator, Stage  # noqa: E402

Z_MAX = 4.5


# ------------------------------------------------------------------ helpers ----
def graph_twin(net):
    """The dense ``net`` as a GraphNetwork of Linear primitives (same neurons, same order)."""
    stages, off, t, shape = [], 0, 0, (net.n_in,)
    for i, (w, b, a) in enumerate(zip(net.weights, net.biases, net.activations)):
        node = g.Linear(g.Source(t, shape), torch.from_numpy(w.copy()), torch.from_numpy(b.copy()))
        node.shape = (w.shape[0],)
        if a is None:
            assert i == net.n_layers - 1
            return GraphNetwork((net.n_in,), tuple(stages), Operator(node))
        n = w.shape[0]
        stages.append(Stage(Operator(node), a.breakpoints, np.tile(a.slopes, (n, 1)),
                            np.tile(a.intercepts, (n, 1)), off, (n,), f"l{i}", a))  # fmt: skip
        off, t, shape = off + n, t + 1, (n,)
    raise AssertionError("the twin needs a last layer without activation")


def sparse_dense_net(seed, sizes=(3, 12, 10, 8, 2), acts=("relu", "relu", "relu"), zero=0.5):
    gen = np.random.default_rng(seed)
    ws = [gen.normal(size=(o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [gen.normal(size=o) * 0.3 for o in sizes[1:]]
    for w in ws[1:-1]:
        w[gen.random(w.shape) < zero] = 0.0
    return rg.Network.from_arrays(ws, bs, list(acts) + [None])


class ResCNN(nn.Module):
    """conv -> relu -> (h + BN(conv(h))) -> relu -> avgpool -> linear, with
    exact zero weights and a dead channel."""

    def __init__(self, c=3, side=6, act=torch.relu):
        super().__init__()
        self.c1 = nn.Conv2d(1, c, 3, padding=1)
        self.c2 = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)
        self.c3 = nn.Conv2d(c, c, 1)
        self.fc = nn.Linear(c * (side // 2) ** 2, 2)
        self.act = act

    def preacts(self, x):
        """The inputs of the three unit stages, flattened and side by side."""
        u1 = self.c1(x)
        h = self.act(u1)
        u2 = h + self.bn(self.c2(h))
        u3 = self.c3(self.act(u2))
        return [u1, u2, u3]

    def forward(self, x):
        h = self.act(self.preacts(x)[-1])
        return self.fc(nn.functional.avg_pool2d(h, 2).flatten(1))


def res_cnn(seed=0, side=6, act=torch.relu):
    torch.manual_seed(seed)
    m = ResCNN(side=side, act=act)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        m.bn.running_mean.copy_(torch.rand(3, generator=gen) - 0.5)
        m.bn.running_var.copy_(torch.rand(3, generator=gen) + 0.5)
        m.c2.weight[torch.rand(m.c2.weight.shape, generator=gen) < 0.4] = 0.0  # exact zeros
        m.fc.weight[:, :5] = 0.0
        m.c1.bias[2] = -50.0  # a dead channel: its units never open
    return m.eval()


def plane_of(net, seed=0):
    pts = np.random.default_rng(seed).normal(size=(3, net.n_in))
    return rg.Plane.through(*pts)


# ------------------------------------------------------- Theorem 2: dense twin ----
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("good, rho", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("screen", [True, False])
def test_theorem2_equals_dense_twin(seed, good, rho, screen, monkeypatch):
    if not screen:  # every term through the exact recomputation
        monkeypatch.setattr(T, "_LEVELS", ())
    net = sparse_dense_net(seed)
    twin = graph_twin(net)
    gen = np.random.default_rng(seed + 10)
    x = gen.normal(size=(40, 3))
    noise = gen.normal(0.0, 0.4, size=(6, net.n_neurons))
    opts = dict(sigma=0.4, good=good, rho=rho, by_layer=True)
    want = theorem2_samples(net, x, noise, opts)[..., :3]  # the output layer's share is 0
    got = T.theorem2_graph_samples(twin, x, noise, opts)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    # the public function, same seed: the same noise draw (same neuron count and order)
    a = rg.lc_density(net, x[:5], sigma=0.4, n_samples=4, good=good, rho=rho, rng=3, progress=False)
    b = rg.lc_density(twin, x[:5], sigma=0.4, n_samples=4, good=good, rho=rho, rng=3, progress=False)
    np.testing.assert_allclose(b.mean, a.mean, rtol=1e-12)
    np.testing.assert_allclose(b.stderr, a.stderr, rtol=1e-9, atol=1e-14)


def test_theorem2_conv1d_twin_hardtanh():
    """A Conv1d over the whole input is a Linear layer: from_torch gives a
    graph network, the same weights a dense Network; units with two breakpoints."""
    torch.manual_seed(3)
    conv = nn.Sequential(nn.Conv1d(1, 6, 4), nn.Hardtanh(), nn.Flatten(), nn.Linear(6, 5), nn.Hardtanh(),
                         nn.Linear(5, 2)).eval()  # fmt: skip
    gnet = rg.from_torch(conv, input_shape=(1, 4))
    assert isinstance(gnet, GraphNetwork)
    c, l1, l2 = conv[0], conv[3], conv[5]
    dense = rg.Network.from_arrays(
        [c.weight.detach().double().numpy()[:, 0, :], l1.weight.detach().double().numpy(),
         l2.weight.detach().double().numpy()],
        [c.bias.detach().double().numpy(), l1.bias.detach().double().numpy(), l2.bias.detach().double().numpy()],
        ["hardtanh", "hardtanh", None],
    )  # fmt: skip
    x = np.random.default_rng(0).normal(size=(30, 4)) * 1.5
    for by_layer in (False, True):
        a = rg.lc_density(dense, x, sigma=0.5, n_samples=5, rng=2, by_layer=by_layer, progress=False)
        b = rg.lc_density(gnet, x, sigma=0.5, n_samples=5, rng=2, by_layer=by_layer, progress=False)
        want = a.mean[..., :2] if by_layer else a.mean
        np.testing.assert_allclose(b.mean, want, rtol=1e-12, atol=1e-13)
    lc_a = rg.local_complexity(dense, x, sigma=0.5, n_samples=5, rng=2, progress=False)
    lc_b = rg.local_complexity(gnet, x, sigma=0.5, n_samples=5, rng=2, progress=False)
    assert abs(lc_a.mean - lc_b.mean) <= 1e-12 * lc_a.mean


# ------------------------------------------------------- gradients: autograd ----
def preact_jacobian(md, z0, lift=None):
    """(n_neurons, d) Jacobian of every unit's input, by autograd."""

    def f(t):
        z = t if lift is None else lift(t)
        return torch.cat([u.reshape(-1) for u in md.preacts(z)])

    return torch.autograd.functional.jacobian(f, z0, vectorize=True).reshape(-1, z0.numel()).numpy()


def test_gradient_norms_match_autograd():
    model = res_cnn(1)
    net = rg.from_torch(model, input_shape=(1, 6, 6))
    x = np.random.default_rng(1).normal(size=(4, 36))
    # no noise, no density, no indicator: f = sum_i ||grad u_i(x)||
    zero = np.zeros((1, net.n_neurons))
    got = T.theorem2_graph_samples(net, x, zero, dict(sigma=1.0, good=False, rho=False))[0]
    md = model.double()
    want = [
        np.linalg.norm(preact_jacobian(md, torch.from_numpy(p).reshape(1, 1, 6, 6)), axis=1).sum() for p in x
    ]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # on a plane: the gradient is the projection onto the plane's two directions
    plane = plane_of(net, 2)
    net2 = net.restrict(plane)
    uv = np.random.default_rng(3).normal(size=(5, 2))
    got2 = T.theorem2_graph_samples(net2, uv, zero, dict(sigma=1.0, good=False, rho=False))[0]
    basis = torch.from_numpy(plane.basis.copy())
    want2 = []
    for x0 in plane.lift(uv):
        J = preact_jacobian(md, torch.zeros(2, dtype=torch.float64),
                            lambda t, x0=x0: (torch.from_numpy(x0) + basis @ t).reshape(1, 1, 6, 6))  # fmt: skip
        want2.append(np.linalg.norm(J, axis=1).sum())
    np.testing.assert_allclose(got2, want2, rtol=1e-12)


# ------------------------------------------------- the good indicator: brute force ----
def brute_good(net, x, noise_row):
    """Per stage (n_s, K) good indicator at one point: the network recomputed
    from scratch with the neuron pinned, paths searched through every
    operator's dense matrix (nonzero entries) and the open units."""
    stages = net.stages
    mats = [st.operator.matrix() for st in stages] + [net.output.matrix()]
    ops = [st.operator for st in stages] + [net.output]

    def run(pin=None):
        tensors, opened = {0: x[None]}, []
        for s, st in enumerate(stages):
            op = st.operator
            v = op([tensors[t] for t in op.sources]) + noise_row[st.offset : st.offset + st.n]
            h = st.apply(v)
            piece = st.piece(v)[0]
            opened.append(st.slopes[np.arange(st.n), piece] != 0)
            if pin is not None and pin[0] == s:
                j, k = pin[1], pin[2]
                h = h.copy()
                h[0, j] = st.slopes[j, k] * st.breakpoints[k] + st.intercepts[j, k]
            tensors[s + 1] = h
        return opened

    def block(i, t):  # columns of operator i reading tensor t
        op = ops[i]
        pos = op.sources.index(t)
        c0 = sum(op.source_sizes[:pos])
        return mats[i][:, c0 : c0 + op.source_sizes[pos]]

    out = []
    for s, st in enumerate(stages):
        res = np.zeros((st.n, st.breakpoints.size), np.int8)
        for j in range(st.n):
            for k in range(st.breakpoints.size):
                opened = run((s, j, k))
                # reach[t]: entries of tensor t with a path to the output
                reach = {}
                for m in range(len(stages) - 1, s - 1, -1):
                    r = np.zeros(stages[m].n, bool)
                    for i in range(m + 1, len(ops)):
                        if m + 1 in ops[i].sources:
                            tgt = np.ones(ops[i].n_out, bool) if i == len(stages) else reach[i] & opened[i]
                            r |= (block(i, m + 1)[tgt] != 0).any(axis=0)
                    reach[m] = r
                res[j, k] = reach[s][j]
        out.append(res)
    return out


@pytest.mark.parametrize("seed, act", [(0, "relu"), (1, "relu"), (2, "hardtanh")])
def test_good_indicator_against_brute_force(seed, act):
    fn = torch.relu if act == "relu" else nn.functional.hardtanh
    net = rg.from_torch(res_cnn(seed, side=4, act=fn), input_shape=(1, 4, 4))
    gen = np.random.default_rng(seed)
    x = gen.normal(size=(3, 16))
    noise = gen.normal(0.0, 0.5, size=(1, net.n_neurons))
    tables = [T.good_table(net, x, noise), T.good_table(net, x, noise, screen=False)]
    n_not = 0
    for n in range(3):
        want = brute_good(net, x[n % 3], noise[n // 3])
        for s in range(len(net.stages)):
            for tab in tables:
                np.testing.assert_array_equal(tab[s][n], want[s])
            n_not += int((want[s] == 0).sum())
    assert n_not > 0  # the zero weights and the dead channel cut paths


def test_lc_density_good_uses_the_indicator():
    """good=True is the good=False sum restricted to the good terms (zero weights cut paths)."""
    net = rg.from_torch(res_cnn(0), input_shape=(1, 6, 6))
    x = np.random.default_rng(0).normal(size=(3, 36))
    noise = np.random.default_rng(1).normal(0.0, 0.5, size=(2, net.n_neurons))
    opts = dict(sigma=0.5, rho=True)
    good = T.theorem2_graph_samples(net, x, noise, opts | dict(good=True))
    upper = T.theorem2_graph_samples(net, x, noise, opts | dict(good=False))
    assert np.all(good < upper)
    plan = T._plan(net)
    idx = np.arange(6)
    fw = T._Pass(plan, x[idx % 3], noise[idx // 3])
    w = T._weights(plan, fw, opts)
    tabs = T.good_table(net, x, noise)
    want = sum((wi * (t == 1)).sum(axis=(1, 2)) for wi, t in zip(w, tabs)).reshape(2, 3)
    np.testing.assert_allclose(good, want, rtol=1e-12)


# ------------------------------------------------- definition route on a plane ----
@pytest.mark.slow
def test_definition_meets_theorem2_on_a_cnn_plane():
    net = rg.from_torch(res_cnn(2), input_shape=(1, 6, 6))
    net2 = net.restrict(plane_of(net, 4))
    x = np.array([[0.2, 0.3], [0.9, 0.4], [0.5, 1.1]])
    sigma = 0.3
    t2 = rg.lc_density(net2, x, sigma=sigma, n_samples=2000, rng=1, progress=False)
    d = rg.lc_density(net2, x, sigma=sigma, n_samples=300, method="definition", eps=0.04, rng=2,
                      progress=False)  # fmt: skip
    z = (d.mean - t2.mean) / np.hypot(d.stderr, t2.stderr)
    assert np.all(np.abs(z) < Z_MAX), z


def test_definition_route_runs_the_noisy_graph():
    """The noisy graph network of one sample equals the model with its biases shifted."""
    model = res_cnn(3)
    net = rg.from_torch(model, input_shape=(1, 6, 6))
    plane = plane_of(net, 5)
    net2 = net.restrict(plane)
    row = np.random.default_rng(0).normal(size=net.n_neurons)
    noisy, noisy2 = net.with_bias_noise(row), net2.with_bias_noise(row)
    uv = np.random.default_rng(1).normal(size=(6, 2))
    xs = plane.lift(uv)
    # a pattern-wise reference: shift the preactivations of the model by hand
    md = model.double()
    c = torch.from_numpy(row)
    n1 = 3 * 36
    with torch.no_grad():
        z = torch.from_numpy(xs).reshape(-1, 1, 6, 6)
        h = torch.relu(md.c1(z) + c[:n1].reshape(1, 3, 6, 6))
        h = torch.relu(h + md.bn(md.c2(h)) + c[n1 : 2 * n1].reshape(1, 3, 6, 6))
        h = torch.relu(md.c3(h) + c[2 * n1 :].reshape(1, 3, 6, 6))
        want = md.fc(nn.functional.avg_pool2d(h, 2).flatten(1)).numpy()
    np.testing.assert_allclose(noisy(xs), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(noisy2(uv), want, rtol=1e-10, atol=1e-10)
    d = rg.lc_density(net2, uv[:2], sigma=0.3, n_samples=3, method="definition", eps=0.1, rng=0,
                      progress=False)  # fmt: skip
    assert d.mean.shape == (2,) and np.all(d.mean >= 0)


# ------------------------------------------------------------- other measures ----
def test_local_rank_and_tv_equal_dense_twin():
    net = sparse_dense_net(4, sizes=(5, 8, 3, 8, 2))
    twin = graph_twin(net)
    x = np.random.default_rng(0).normal(size=(30, 5))
    np.testing.assert_array_equal(rg.local_rank(twin, x), rg.local_rank(net, x))
    np.testing.assert_array_equal(rg.local_rank(twin, x, 0.5), rg.local_rank(net, x, 0.5))
    a, b = (
        rg.total_variation(net, x, sigma=0.2, n_samples=4, rng=1),
        rg.total_variation(twin, x, sigma=0.2, n_samples=4, rng=1),
    )
    np.testing.assert_allclose(b.mean, a.mean, rtol=1e-12)
    np.testing.assert_allclose(b.stderr, a.stderr, rtol=1e-9)
    ng_a = rg.not_good_count(net, x, sigma=0.3, n_samples=3, rng=2)
    ng_b = rg.not_good_count(twin, x, sigma=0.3, n_samples=3, rng=2)
    assert ng_a.mean == ng_b.mean and ng_a.mean > 0


def test_local_rank_and_tv_against_autograd():
    model = res_cnn(5)
    net = rg.from_torch(model, input_shape=(1, 6, 6))
    x = np.random.default_rng(2).normal(size=(4, 36))
    md = model.double()
    ranks, tv = np.zeros(3), 0.0
    for p in range(4):
        xt = torch.from_numpy(x[p]).reshape(1, 1, 6, 6)
        for s in range(3):
            Js = torch.autograd.functional.jacobian(
                lambda z, s=s: md.preacts(z)[s].reshape(-1), xt, vectorize=True
            )
            ranks[s] += np.linalg.matrix_rank(Js.reshape(-1, 36).numpy())
        Jn = torch.autograd.functional.jacobian(lambda z: md(z).reshape(-1), xt, vectorize=True).reshape(
            -1, 36
        )
        tv += float(torch.linalg.norm(Jn)) / 4
    np.testing.assert_array_equal(rg.local_rank(net, x), ranks / 4)
    np.testing.assert_allclose(rg.total_variation(net, x).mean, tv, rtol=1e-12)


# ------------------------------------------------------------------ refusals ----
def test_graph_refusals_are_one_line():
    net = rg.from_torch(res_cnn(0), input_shape=(1, 6, 6))
    x = np.zeros((2, 36))
    cases = [
        (lambda: rg.vertex_density(net, x, sigma=0.1), ValueError, "restrict it to a plane"),
        (lambda: rg.lc_density(net, x, sigma=0.1, method="definition", eps=0.1), ValueError, "restrict"),
        (lambda: rg.lc_density(net, x, sigma=0.1, device="cpu"), ValueError, "drop device"),
    ]
    for fn, exc, text in cases:
        with pytest.raises(exc, match=text) as info:
            fn()
        assert "\n" not in str(info.value)


# --------------------------------------------------- figure1, CLI and tracker ----
class SmallCNN(nn.Module):
    """A custom Module: conv -> relu -> strided conv -> relu -> flatten -> linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.conv2 = nn.Conv2d(4, 4, 3, stride=2)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        h = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.head(h.flatten(1))


def small_cnn():
    torch.manual_seed(0)
    return SmallCNN().double().eval()


def test_figure1_on_a_cnn_plane(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model = small_cnn()
    net = rg.from_torch(model, input_shape=(1, 7, 7))
    pts = np.random.default_rng(0).normal(size=(3, 1, 7, 7))
    plane = rg.Plane.through(*pts)
    net2 = net.restrict(plane)
    dom = plane.bounds()
    fig, axes = rg.figure1(net2, dom, sigma=0.1, n_samples=3, shape=20, rng=1, points=plane.points,
                           decision_boundary=True, progress=False)  # fmt: skip
    est = rg.lc_density(net2, rg.grid_points(dom, 20), sigma=0.1, n_samples=3, rng=1, progress=False)
    img = axes[1].images[0].get_array()
    np.testing.assert_allclose(np.sort(np.asarray(img).ravel()), np.sort(est.mean), rtol=1e-12)
    assert "Theorem 2" in axes[1].get_title()
    fig.savefig(tmp_path / "f1.png")
    plt.close(fig)


def test_cli_map_on_a_cnn_plane(tmp_path, capsys):
    from regiongeom.cli import main

    model = small_cnn()
    x = torch.randn(2, 1, 7, 7, dtype=torch.float64)
    torch.export.save(torch.export.export(model, (x,)), str(tmp_path / "cnn.pt2"))
    pts = np.random.default_rng(0).normal(size=(3, 1, 7, 7))
    np.save(tmp_path / "pts.npy", pts)
    argv = ["map", str(tmp_path / "cnn.pt2"), "--plane", str(tmp_path / "pts.npy"), "--out", str(tmp_path),
            "--shape", "16", "--samples", "3", "--sigma", "0.1", "--seed", "4", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    plane = rg.Plane.through(*pts)
    net2 = rg.from_torch(model, input_shape=(1, 7, 7)).restrict(plane)
    lc = rg.local_complexity(net2, rg.grid_points(plane.bounds(), 16), sigma=0.1, n_samples=3, rng=4,
                             progress=False)  # fmt: skip
    assert f"(Theorem 2, sigma=0.1, 3 samples, 16x16 points): {lc.mean:.6g}" in out
    assert "GraphNetwork(2 ->" in out and (tmp_path / "cnn.png").exists()
    # one-line errors stay one line
    assert main(argv[:4] + ["--method", "definition"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("regiongeom: error: ") and err.count("\n") == 1 and "--eps" in err


def test_tracker_with_a_custom_module_cnn():
    model = SmallCNN().double()
    model.train()
    data = np.random.default_rng(1).normal(size=(6, 1, 7, 7))
    pts = data[:3].reshape(3, -1)
    plane = rg.Plane.through(*pts)
    tr = rg.Tracker(data, every=1, sigma=0.2, n_samples=3, rng=2, plane=plane,
                    measures=("local_complexity", "local_rank", "total_variation", "not_good", "regions"))  # fmt: skip
    row = tr.log(model, 0)
    assert model.training  # restored
    net = rg.from_torch(model.eval(), input_shape=(1, 7, 7))
    x = data.reshape(6, -1)
    lc = rg.local_complexity(net, x, sigma=0.2, n_samples=3, rng=2, progress=False)
    assert row["local_complexity"] == lc.mean and row["local_complexity_stderr"] == lc.stderr
    assert [row["local_rank_1"], row["local_rank_2"]] == rg.local_rank(net, x).tolist()
    assert row["total_variation"] == rg.total_variation(net, x).mean
    assert row["not_good"] == rg.not_good_count(net, x).mean
    rm = rg.activation_regions(net.restrict(plane), plane.bounds())
    assert row["n_regions"] == len(rm)


@pytest.mark.slow
def test_measures_n_jobs_on_a_graph_network():
    """joblib's workers (cloudpickle) take graph networks: the same numbers."""
    net = rg.from_torch(small_cnn(), input_shape=(1, 7, 7))
    x = np.random.default_rng(0).normal(size=(5, 49))
    kw = dict(sigma=0.1, n_samples=3, rng=1)
    assert rg.total_variation(net, x, **kw).mean == rg.total_variation(net, x, **kw, n_jobs=2).mean
    np.testing.assert_array_equal(rg.local_rank(net, x, **kw), rg.local_rank(net, x, **kw, n_jobs=2))


class Zoo(nn.Module):
    """Strided, dilated, grouped and 'same' convolutions, BatchNorm, constant
    factors and a division, a residual sum, cat, reflect padding, pooling, permute."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 4, 3, stride=2, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding="same", groups=2, dilation=2)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(32, 3)

    def forward(self, x):
        h = torch.relu(self.a(x))
        h2 = torch.relu(self.bn(self.b(h)) * 0.5 + h / 3)
        z = nn.functional.pad(torch.cat([h2, h], 1), (1, 1, 1, 1), mode="reflect")
        return self.fc(nn.functional.avg_pool2d(z, 2).permute(0, 2, 3, 1).flatten(1))


def test_support_pattern_is_the_transposed_matrix_pattern():
    """The reachability pattern of every operator equals the nonzero pattern of its
    dense matrix (random weights with exact zeros: no sums cancel)."""
    torch.manual_seed(0)
    model = Zoo().eval()
    with torch.no_grad():
        model.b.weight[torch.rand(model.b.weight.shape) < 0.3] = 0.0
        model.fc.weight[torch.rand(model.fc.weight.shape) < 0.3] = 0.0
    net = rg.from_torch(model, input_shape=(2, 6, 6))
    for op in [st.operator for st in net.stages] + [net.output]:
        A = op.matrix()
        got = support_t(op, np.eye(op.n_out))
        c0 = 0
        for t, n in zip(op.sources, op.source_sizes):
            if t > 0:
                np.testing.assert_array_equal(got[t] > 0, A[:, c0 : c0 + n] != 0)
            c0 += n
    x = np.random.default_rng(0).normal(size=(3, 72))
    noise = np.random.default_rng(1).normal(0.0, 0.3, size=(2, net.n_neurons))
    for a, b in zip(T.good_table(net, x, noise), T.good_table(net, x, noise, screen=False)):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------- vertex density (definition) ----
def test_vertex_density_definition_equals_dense_twin():
    """The definition route of Hanin & Rolnick's vertex density on a graph
    network equals the dense network's, same draws: the same vertices in the
    same disks."""
    gen = np.random.default_rng(4)
    net = rg.Network.from_arrays(
        [gen.normal(size=(8, 2)), gen.normal(size=(6, 8)), gen.normal(size=(1, 6))],
        [gen.normal(size=8) * 0.3, gen.normal(size=6) * 0.3, [0.0]], ["relu", "leaky_relu", None],
    )  # fmt: skip
    twin = graph_twin(net)
    x = rg.grid_points((-1.0, -1.0, 1.0, 1.0), 7)
    a = rg.vertex_density(net, x, sigma=0.3, n_samples=4, method="definition", eps=0.4, rng=2)
    b = rg.vertex_density(twin, x, sigma=0.3, n_samples=4, method="definition", eps=0.4, rng=2)
    assert a.mean.max() > 0
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.stderr, b.stderr)


def test_vertex_density_definition_on_a_cnn_plane():
    """On a CNN's plane: every sample's count equals the vertices of the noisy
    network's own locus counted by hand."""
    from scipy.spatial import cKDTree

    net = rg.from_torch(res_cnn(0), input_shape=(1, 6, 6))
    plane = rg.Plane.through(*np.random.default_rng(1).normal(size=(3, 36)))
    n2 = net.restrict(plane)
    x = plane.points
    est = rg.vertex_density(n2, x, sigma=0.2, n_samples=3, method="definition", eps=0.5, rng=5)
    noise = np.random.default_rng(5).normal(0.0, 0.2, size=(3, n2.n_neurons))
    lo, hi = x.min(axis=0) - 0.5, x.max(axis=0) + 0.5
    counts = []
    for row in noise:
        rm = rg.activation_regions(n2.with_bias_noise(row), (lo[0], lo[1], hi[0], hi[1]))
        v = rg.locus_vertices(rg.nonlinear_locus(rm))
        counts.append(cKDTree(v).query_ball_point(x, 0.5, return_length=True) if len(v) else np.zeros(3))
    np.testing.assert_allclose(est.mean, np.mean(counts, axis=0) / (np.pi * 0.25), rtol=1e-15)
