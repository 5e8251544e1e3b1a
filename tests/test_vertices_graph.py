"""Theorem 6 (k = 2) on graph networks (:mod:`regiongeom._vertices_graph`):
against the dense estimator on dense twins, against a brute-force sum over
pairs (dense matrices, full recomputations, no pushes) with zero weights and
a dead channel, and against the definition (exact vertex counts) on a CNN
plane and a residual MLP plane."""

from __future__ import annotations

import math

import numpy as np
import pytest

import regiongeom as rg

torch = pytest.importorskip("torch")
nn = torch.nn

from test_graph_measures import graph_twin, res_cnn, sparse_dense_net  # noqa: E402
from test_torch_slices import _conv_and_dense_twins  # noqa: E402
from test_vertices import Z_BOUND, z_scores  # noqa: E402

from regiongeom._vertices_graph import theorem6_graph_samples  # noqa: E402
from regiongeom.vertices import _ECUT, _theorem6_samples  # noqa: E402


# -------------------------------------------------------------- dense twins ----
@pytest.mark.parametrize(
    "seed, acts, zero",
    [(0, ("relu",) * 3, 0.3), (1, ("leaky_relu", "abs", "relu"), 0.5), (2, ("hardtanh",) * 3, 0.2)],
)
def test_equals_the_dense_estimator_on_a_twin(seed, acts, zero):
    net = sparse_dense_net(seed, sizes=(2, 12, 10, 8, 2), acts=acts, zero=zero)
    twin = graph_twin(net)
    gen = np.random.default_rng(seed)
    x = gen.normal(size=(15, 2))
    noise = gen.normal(0.0, 0.5, size=(3, net.n_neurons))
    got = theorem6_graph_samples(twin, x, noise, 0.5, _ECUT)
    assert got.max() > 0
    for fast in (True, False):
        want = _theorem6_samples(net, x, noise, 0.5, fast=fast)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("seed", range(2))
def test_conv1d_twin_through_the_graph_path_on_a_plane(seed):
    """A Sequential MLP whose first layer is written as a Conv1d converts
    through the graph path; on the same plane, same seed, the public
    function equals the dense network's."""
    conv, dense = _conv_and_dense_twins(seed)
    g, d = rg.from_torch(conv, input_shape=(1, 5)), rg.from_torch(dense)
    assert isinstance(g, rg.GraphNetwork) and isinstance(d, rg.Network)
    plane = rg.Plane.through(*np.random.default_rng(seed).normal(size=(3, 5)))
    uv = np.random.default_rng(seed + 1).uniform(-2, 2, size=(20, 2))
    a = rg.vertex_density(g.restrict(plane), uv, sigma=0.3, n_samples=4, rng=2)
    b = rg.vertex_density(d.restrict(plane), uv, sigma=0.3, n_samples=4, rng=2)
    assert b.mean.max() > 0
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12, atol=1e-12 * b.mean.max())
    np.testing.assert_allclose(a.stderr, b.stderr, rtol=1e-9, atol=1e-12 * b.mean.max())


# ------------------------------------------------------------- brute force ----
def brute_theorem6(net, x, noise_row, sigma, ecut=_ECUT):
    """The sum of Theorem 6 at one point, from scratch: every operator as its
    dense matrix, the network recomputed with the pins for every term, input
    gradients as products of matrices and slopes, paths searched through the
    nonzero entries and open units. Returns (value, good terms, not good terms)."""
    stages = net.stages
    ops = [st.operator for st in stages] + [net.output]
    mats = [op.matrix() for op in ops]
    inv, c2 = 0.5 / sigma**2, 1.0 / (2 * math.pi * sigma**2)

    def block(i, t):
        op = ops[i]
        pos = op.sources.index(t)
        c0 = sum(op.source_sizes[:pos])
        return mats[i][:, c0 : c0 + op.source_sizes[pos]]

    blocks = {(i, t): block(i, t) for i, op in enumerate(ops) for t in op.sources}
    nonzero = {k: b != 0 for k, b in blocks.items()}

    def run(pins):
        """u (own noise-free bias), input gradients of u, open units."""
        h, D = {0: x}, {0: np.eye(2)}
        us, Js, opened = [], [], []
        for s, st in enumerate(stages):
            op = st.operator
            u = sum(blocks[s, t] @ h[t] for t in op.sources) + op.bias
            J = sum(blocks[s, t] @ D[t] for t in op.sources)
            v = u + noise_row[st.offset : st.offset + st.n]
            piece = st.piece(v[None])[0]
            slope = st.slopes[np.arange(st.n), piece].copy()
            out = st.apply(v[None])[0]
            op_ = slope != 0
            for ps, pj, pk in pins:
                if ps == s:
                    out[pj] = st.slopes[pj, pk] * st.breakpoints[pk] + st.intercepts[pj, pk]
                    slope[pj], op_[pj] = 0.0, True
            h[s + 1], D[s + 1] = out, slope[:, None] * J
            us.append(u)
            Js.append(J)
            opened.append(op_)
        return us, Js, opened

    def reaches(opened, s, j):
        reach = {}
        for m in range(len(stages) - 1, s - 1, -1):
            r = np.zeros(stages[m].n, bool)
            for i in range(m + 1, len(ops)):
                if m + 1 in ops[i].sources:
                    tgt = np.ones(ops[i].n_out, bool) if i == len(stages) else reach[i] & opened[i]
                    r |= nonzero[i, m + 1][tgt].any(axis=0)
            reach[m] = r
        return reach[s][j]

    u0, J0, _ = run([])
    total, n_good, n_bad = 0.0, 0, 0
    for s, st in enumerate(stages):
        for i in range(st.n):
            for a, ta in enumerate(st.breakpoints):
                ei = (ta - u0[s][i]) ** 2 * inv
                if ei > ecut:
                    continue
                uh, Jh, _ = run([(s, i, a)])
                for m in range(s, len(stages)):
                    for j in range(i + 1 if m == s else 0, stages[m].n):
                        for c, tc in enumerate(stages[m].breakpoints):
                            e = ei + (tc - uh[m][j]) ** 2 * inv
                            det = np.linalg.det(np.stack([J0[s][i], Jh[m][j]]))
                            if e > ecut or det == 0:
                                continue
                            _, _, opened = run([(s, i, a), (m, j, c)])
                            if reaches(opened, m, j) and reaches(opened, s, i):
                                total += abs(det) * c2 * math.exp(-e)
                                n_good += 1
                            else:
                                n_bad += 1
    return total, n_good, n_bad


@pytest.mark.slow
@pytest.mark.parametrize("seed, act", [(0, torch.relu), (1, nn.functional.hardtanh)])
def test_against_brute_force_with_zero_weights_and_a_dead_channel(seed, act):
    net = rg.from_torch(res_cnn(seed, side=4, act=act), input_shape=(1, 4, 4))
    gen = np.random.default_rng(seed)
    plane = rg.Plane.through(*gen.normal(size=(3, 16)))
    n2 = net.restrict(plane)
    x = gen.uniform(-1, 1, size=(1, 2))
    noise = gen.normal(0.0, 0.5, size=(1, n2.n_neurons))
    got = theorem6_graph_samples(n2, x, noise, 0.5, _ECUT)
    bad = 0
    for p in range(len(x)):
        want, n_good, n_bad = brute_theorem6(n2, x[p], noise[0], 0.5)
        assert n_good > 0
        bad += n_bad
        # det by np.linalg.det (LU) against the 2x2 formula, sums in another order: rounding only
        assert got[0, p] == pytest.approx(want, rel=1e-12)
    assert bad > 0  # zero weights and the dead channel cut paths of some terms


def test_screen_decides_terms_and_changes_nothing(monkeypatch):
    """The screen's decisions equal the exact recomputation's (bit-equal sums
    are not expected: the terms are added in another order)."""
    from regiongeom import _vertices_graph as VG

    net = rg.from_torch(res_cnn(0, side=4), input_shape=(1, 4, 4))
    gen = np.random.default_rng(2)
    n2 = net.restrict(rg.Plane.through(*gen.normal(size=(3, 16))))
    x = gen.uniform(-1, 1, size=(1, 2))
    noise = gen.normal(0.0, 0.2, size=(1, n2.n_neurons))
    exact_rows = []
    both_good = VG._both_good

    def counting(plan, fw, hat, s, m, n, i, r, j, c):
        exact_rows.append(r.size)
        return both_good(plan, fw, hat, s, m, n, i, r, j, c)

    monkeypatch.setattr(VG, "_both_good", counting)
    a = theorem6_graph_samples(n2, x, noise, 0.2, _ECUT)
    screened = sum(exact_rows)
    exact_rows.clear()
    b = theorem6_graph_samples(n2, x, noise, 0.2, _ECUT, screen=False)
    assert a.max() > 0.01 and screened < 0.8 * sum(exact_rows)
    np.testing.assert_allclose(a, b, rtol=1e-12)


# -------------------------------------------------------------- definition ----
class ResMLP(nn.Module):
    def __init__(self, n_in=6, w=6):
        super().__init__()
        self.a, self.b, self.out = nn.Linear(n_in, w), nn.Linear(w, w), nn.Linear(w, 2)

    def forward(self, x):
        h = torch.relu(self.a(x))
        h = h + torch.relu(self.b(h))
        return self.out(h)


class TinyResCNN(nn.Module):
    """1x4x4 -> conv 2 3x3 -> ReLU -> (h + BN(conv 1x1(h))) -> ReLU -> avgpool -> Linear."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.bn = nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2)
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        h = torch.relu(self.c1(x))
        h = torch.relu(h + self.bn(self.c2(h)))
        return self.fc(nn.functional.avg_pool2d(h, 2).flatten(1))


def _box_counts(n2, noise, box):
    out = np.empty(len(noise))
    for s, row in enumerate(noise):
        rm = rg.activation_regions(n2.with_bias_noise(row), box)
        out[s] = len(rg.locus_vertices(rg.nonlinear_locus(rm)))
    return out


def _theorem6_box(n2, noise, box, sigma, q, gen):
    x0, y0, x1, y1 = box
    out = np.empty(len(noise))
    for s in range(len(noise)):
        pts = np.column_stack([gen.uniform(x0, x1, q), gen.uniform(y0, y1, q)])
        per = theorem6_graph_samples(n2, pts, noise[s : s + 1], sigma, _ECUT)
        out[s] = per.mean() * (x1 - x0) * (y1 - y0)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("which", ["cnn", "resmlp"])
def test_expected_vertex_count_in_a_box_matches_the_definition(which):
    """E[#vertices in a box of the plane] two ways: the exact vertices of
    noisy networks, and theorem6 integrated by uniform points."""
    torch.manual_seed(4)
    model = TinyResCNN() if which == "cnn" else ResMLP()
    if which == "cnn":
        with torch.no_grad():
            model.bn.running_mean.uniform_(-0.5, 0.5)
            model.bn.running_var.uniform_(0.5, 1.5)
    net = rg.from_torch(model.eval(), input_shape=(1, 4, 4) if which == "cnn" else (6,))
    assert isinstance(net, rg.GraphNetwork)
    gen = np.random.default_rng(6)
    n2 = net.restrict(rg.Plane.through(*gen.normal(size=(3, net.n_in))))
    b = 2.0 if which == "cnn" else 1.0
    sigma, S, box = 0.3, 100, (-b, -b, b, b)
    d = _box_counts(n2, gen.normal(0.0, sigma, size=(S, n2.n_neurons)), box)
    t = _theorem6_box(n2, gen.normal(0.0, sigma, size=(S, n2.n_neurons)), box, sigma, 20, gen)
    se = lambda a: a.std(ddof=1) / math.sqrt(len(a))  # noqa: E731
    assert d.mean() > 1.0
    assert z_scores(d.mean(), se(d), t.mean(), se(t)) < Z_BOUND


# ---------------------------------------------------------------- refusals ----
def test_max_units_are_refused_in_one_line():
    net = rg.Network.maxout([np.eye(2).repeat(2, axis=0), np.ones((1, 2))], [np.zeros(4), np.zeros(1)], k=2)
    with pytest.raises(TypeError, match="max units.*Theorem 6 as stated") as info:
        rg.vertex_density(net, np.zeros((1, 2)), sigma=0.1)
    assert "\n" not in str(info.value)
