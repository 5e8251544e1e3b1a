"""Vertices of the locus: Theorem 6 (k = 2) against the definition and closed forms."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely
from common import ACT_IDS, ACTIVATIONS, random_net

import regiongeom as rg
from regiongeom import closed_form
from regiongeom.vertices import _noisy_biases, _theorem6_samples

Z_BOUND = 4.5
BOX = (-1.0, -1.0, 1.0, 1.0)


def one_layer(act_id, seed, m=6):
    """One hidden layer of m neurons with nonzero read-out weights."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(m, 2))
    b = rng.normal(size=m) * 0.5
    v = rng.choice([-1.0, 1.0], size=(1, m)) * rng.uniform(0.5, 1.5, size=(1, m))
    return rg.Network.from_arrays([W, v], [b, [0.3]], [ACTIVATIONS[act_id], None])


def breakpoints(net):
    return np.asarray(net.activations[0].breakpoints)


def uniform_in_disks(rng, centers, eps, q):
    """(P, q, 2) uniform points in the disks."""
    r = eps * np.sqrt(rng.random((len(centers), q)))
    t = 2 * np.pi * rng.random((len(centers), q))
    return centers[:, None, :] + np.stack([r * np.cos(t), r * np.sin(t)], axis=-1)


def z_scores(m1, s1, m2, s2):
    return np.abs(m1 - m2) / np.sqrt(s1**2 + s2**2)


# ----------------------------------------------------------------------------
# closed form (one hidden layer): exact, every noise sample gives the same value
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("act_id", ACT_IDS)
def test_one_layer_theorem6_is_the_closed_form(act_id):
    net = one_layer(act_id, seed=3)
    pts = np.stack(np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-1, 1, 9)), -1).reshape(-1, 2)
    est = rg.vertex_density(net, pts, sigma=0.4, n_samples=3, rng=0)
    cf = closed_form.one_layer_vertex_density(
        pts, W=net.weights[0], beta=-net.biases[0], sigma=0.4, breakpoints=breakpoints(net)
    )
    assert cf.min() > 0
    np.testing.assert_allclose(est.mean, cf, rtol=1e-12, atol=1e-300)
    assert est.stderr.max() <= 1e-12 * cf.max()


def test_closed_form_coordinate_lines():
    x = np.array([[0.3, -0.2], [1.0, 2.0]])
    sig = 0.7
    got = closed_form.one_layer_vertex_density(x, W=[[2.0, 0.0], [0.0, 3.0]], beta=[0.1, -0.4], sigma=sig)
    phi = lambda u: np.exp(-0.5 * (u / sig) ** 2) / (sig * np.sqrt(2 * np.pi))  # noqa: E731
    want = 6.0 * phi(2 * x[:, 0] - 0.1) * phi(3 * x[:, 1] + 0.4)
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_closed_form_integrates_to_pair_count():
    """Over the plane, each pair of non-parallel lines crosses once."""
    W, beta, sig = np.array([[1.0, 0.2], [-0.3, 1.0], [0.7, 0.7]]), np.array([0.1, 0.0, -0.2]), 0.5
    g = np.linspace(-14, 14, 1401)
    pts = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    v = closed_form.one_layer_vertex_density(pts, W=W, beta=beta, sigma=sig, breakpoints=(-0.5, 0.5))
    total = v.sum() * (g[1] - g[0]) ** 2
    assert abs(total - 3 * 4) < 1e-6  # 3 pairs of neurons, 2 x 2 pairs of lines


# ----------------------------------------------------------------------------
# the upstream pin: a closed form that the sampled z_j would get wrong
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("w", [0.0, 0.4, 1.5, -2.0])
def test_upstream_neuron_is_pinned(w):
    """Neuron A = relu(x + a), a carrier relu(y + 50) that never switches,
    and B = relu(w A + carrier + c - 50) read out. A's line x = -a and B's
    curve meet at (-a, -c) for every w, so the density is
    phi(x + alpha) phi(y + gamma); reading B's density at its sampled
    z_B (instead of with A pinned) would depend on w and A's noise. With
    w = 0, A reaches the output through nothing: no locus, no vertex."""
    sig, alpha, gamma = 0.3, 0.2, -0.1
    net = rg.Network.from_arrays(
        [np.eye(2), [[w, 1.0]], [[1.0]]], [[alpha, 50.0], [gamma - 50.0], [0.0]], ["relu", "relu", None]
    )
    pts = np.array([[-0.2, 0.1], [0.0, 0.0], [-0.5, 0.3], [0.1, 0.4]])
    noise = np.random.default_rng(1).normal(0.0, sig, size=(16, 3))
    got = _theorem6_samples(net, pts, noise, sig)
    phi = lambda u: np.exp(-0.5 * (u / sig) ** 2) / (sig * np.sqrt(2 * np.pi))  # noqa: E731
    # per noise row: the carrier's noise n_c shifts B's line, B's and A's own are integrated
    want = phi(pts[:, 0] + alpha) * phi(pts[:, 1] + gamma + noise[:, 1:2]) * (w != 0)
    np.testing.assert_allclose(got, want, rtol=1e-12)


# ----------------------------------------------------------------------------
# theorem6 against the definition
# ----------------------------------------------------------------------------
def definition_box_counts(net, noise, box):
    """(S,) number of locus vertices of each noisy network in the box."""
    out = np.empty(len(noise))
    for s, row in enumerate(noise):
        noisy = net.with_biases(_noisy_biases(net, row))
        out[s] = len(rg.locus_vertices(rg.nonlinear_locus(rg.activation_regions(noisy, box))))
    return out


def theorem6_box_means(net, noise, box, sigma, q, rng):
    """(S,) area x mean of theorem6 over q fresh uniform points per noise row:
    unbiased for the expected number of vertices in the box."""
    x0, y0, x1, y1 = box
    out = np.empty(len(noise))
    for s in range(len(noise)):
        pts = np.column_stack([rng.uniform(x0, x1, q), rng.uniform(y0, y1, q)])
        out[s] = _theorem6_samples(net, pts, noise[s : s + 1], sigma).mean() * (x1 - x0) * (y1 - y0)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("act_id", ACT_IDS)
@pytest.mark.parametrize("widths", [[5, 4], [5, 2, 4], [4, 3, 3]], ids=["deep", "bottleneck", "three"])
def test_theorem6_expected_count_in_box_matches_definition(act_id, widths):
    """E[#vertices in the box] two ways: exact enumerations of noisy
    networks, and the integral of theorem6 (by uniform points)."""
    net = random_net(widths, activation=ACTIVATIONS[act_id], seed=11)
    sigma = 0.5
    gen = np.random.default_rng(5)
    noise_d = gen.normal(0.0, sigma, size=(300, net.n_neurons))
    noise_t = gen.normal(0.0, sigma, size=(300, net.n_neurons))
    d = definition_box_counts(net, noise_d, BOX)
    t = theorem6_box_means(net, noise_t, BOX, sigma, 40, gen)
    se = lambda a: a.std(ddof=1) / math.sqrt(len(a))  # noqa: E731
    assert d.mean() > 1.0  # the check has something to count
    assert z_scores(d.mean(), se(d), t.mean(), se(t)) < Z_BOUND


@pytest.mark.slow
@pytest.mark.parametrize(
    "act_id, widths",
    [("relu", [6]), ("hardtanh", [6]), ("relu", [5, 2, 4]), ("abs", [4, 4]), ("leaky_relu", [4, 4])],
)
def test_definition_in_disks_matches_theorem6(act_id, widths):
    """At every test point: the definition at radius eps against theorem6
    averaged over the disk (fresh uniform points per noise sample), which
    has the same expectation."""
    net = random_net(widths, activation=ACTIVATIONS[act_id], seed=2)
    sigma, eps, S = 0.4, 0.3, 300
    centers = np.array([[0.0, 0.0], [0.4, -0.3], [-0.5, 0.5], [0.6, 0.6]])
    d = rg.vertex_density(net, centers, sigma=sigma, n_samples=S, method="definition", eps=eps, rng=7)
    gen = np.random.default_rng(8)
    noise = gen.normal(0.0, sigma, size=(S, net.n_neurons))
    per = np.empty((S, len(centers)))
    for s in range(S):
        pts = uniform_in_disks(gen, centers, eps, 8)
        per[s] = (
            _theorem6_samples(net, pts.reshape(-1, 2), noise[s : s + 1], sigma)
            .reshape(len(centers), 8)
            .mean(1)
        )
    t_mean, t_se = per.mean(0), per.std(0, ddof=1) / math.sqrt(S)
    assert d.mean.min() > 0
    assert np.all(z_scores(d.mean, d.stderr, t_mean, t_se) < Z_BOUND)


@pytest.mark.slow
def test_one_layer_definition_tends_to_closed_form():
    """Closed form = theorem6 = definition (small eps) at every test point."""
    net = one_layer("relu", seed=4, m=8)
    centers = np.array([[0.0, 0.0], [0.3, -0.2], [-0.4, 0.1]])
    sigma, eps = 0.5, 0.05
    cf = closed_form.one_layer_vertex_density(centers, W=net.weights[0], beta=-net.biases[0], sigma=sigma)
    d = rg.vertex_density(net, centers, sigma=sigma, n_samples=3000, method="definition", eps=eps, rng=3)
    assert np.all(np.abs(d.mean - cf) / d.stderr < Z_BOUND)


# ----------------------------------------------------------------------------
# locus vertices against brute-force pairwise crossings
# ----------------------------------------------------------------------------
def shapely_vertices(loc):
    """Points where the locus geometries of two distinct neurons intersect."""
    lines = {}
    for n in np.unique(loc.neurons):
        lines[n] = shapely.line_merge(shapely.multilinestrings(loc.segments[loc.neurons == n]))
    pts = []
    for a, b in itertools.combinations(lines, 2):
        inter = shapely.intersection(lines[a], lines[b])
        if not inter.is_empty:
            pts.append(shapely.get_coordinates(inter))
    if not pts:
        return np.zeros((0, 2))
    pts = np.concatenate(pts)
    # one point per cluster (an intersection may come back once per touching piece)
    keep = []
    for p in pts:
        if not any(np.hypot(*(p - k)) < 1e-9 for k in keep):
            keep.append(p)
    return np.array(keep)


@pytest.mark.parametrize("act_id", ACT_IDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_locus_vertices_are_the_pairwise_crossings(act_id, seed):
    widths = [[6, 5], [5, 2, 4], [4, 4, 3]][seed]
    net = random_net(widths, activation=ACTIVATIONS[act_id], seed=seed + 20)
    noise = np.random.default_rng(seed).normal(0, 0.3, size=net.n_neurons)
    noisy = net.with_biases(_noisy_biases(net, noise))
    loc = rg.nonlinear_locus(rg.activation_regions(noisy, (-1.5, -1.5, 1.5, 1.5)))
    mine = rg.locus_vertices(loc)
    ref = shapely_vertices(loc)
    # crossings exactly on the domain's boundary are not vertices of the locus inside
    inside = np.all(np.abs(ref) < 1.5 - 1e-9, axis=1)
    ref = ref[inside]
    assert len(mine) == len(ref) and len(ref) > 0
    d = np.hypot(*(mine[:, None, :] - ref[None, :, :]).transpose(2, 0, 1))
    assert d.min(axis=1).max() < 1e-9


# ----------------------------------------------------------------------------
# API
# ----------------------------------------------------------------------------
def test_estimate_fields_and_reproducible():
    net = random_net([4, 3], seed=1)
    pts = np.array([[0.0, 0.1], [0.2, -0.3]])
    a = rg.vertex_density(net, pts, sigma=0.3, n_samples=4, rng=5)
    b = rg.vertex_density(net, pts, sigma=0.3, n_samples=4, rng=np.random.default_rng(5))
    assert a.mean.shape == a.stderr.shape == (2,) and a.n_samples == 4 and a.method == "theorem6"
    np.testing.assert_array_equal(a.mean, b.mean)
    c = rg.vertex_density(net, pts, sigma=0.3, n_samples=2, method="definition", eps=0.1, rng=5)
    assert c.method == "definition" and c.eps == 0.1


def test_single_neuron_has_no_vertices():
    net = rg.Network.from_arrays([[[1.0, 2.0]], [[1.0]]], [[0.0], [0.0]], ["relu", None])
    est = rg.vertex_density(net, [[0.0, 0.0]], sigma=0.3, n_samples=2, rng=0)
    assert est.mean[0] == 0.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sigma=0.0), "sigma"),
        (dict(sigma=0.1, n_samples=1), "n_samples"),
        (dict(sigma=0.1, method="x"), "unknown method"),
        (dict(sigma=0.1, method="definition"), "needs a disk radius"),
        (dict(sigma=0.1, eps=0.1), "eps is only used"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    net = random_net([3], seed=0)
    with pytest.raises(ValueError, match=match):
        rg.vertex_density(net, [[0.0, 0.0]], **kwargs)


def test_bad_networks_raise():
    net1 = random_net([3], n_in=1, seed=0)
    with pytest.raises(ValueError, match="2 inputs"):
        rg.vertex_density(net1, [0.0], sigma=0.1)
    with pytest.raises(TypeError, match="rg.Network"):
        rg.vertex_density("net", [[0.0, 0.0]], sigma=0.1)
    with pytest.raises(ValueError, match="2D only"):
        closed_form.one_layer_vertex_density([[0.0]], W=[[1.0]], beta=[0.0], sigma=1.0)


# ----------------------------------------------------------------------------
# every term against a reference built from the locus definition
# ----------------------------------------------------------------------------
def _pass(ws, bs, acts, x):
    """Pre-bias values z, preactivations, and the output Jacobian at x, by
    plain numpy (the piece of every neuron read at x itself)."""
    h, J = np.asarray(x, float), np.eye(2)
    zs, Jzs, vs = [], [], []
    for w, b, a in zip(ws, bs, acts, strict=True):
        z, Jz = w @ h, w @ J
        v = z + b
        zs.append(z), Jzs.append(Jz), vs.append(v)
        if a is None:
            h, J = v, Jz
        else:
            k = (v[:, None] >= np.asarray(a.breakpoints)).sum(1)
            s = np.asarray(a.slopes)[k]
            h, J = s * v + np.asarray(a.intercepts)[k], s[:, None] * Jz
    return zs, Jzs, vs, J


def sectors(ws, bs, acts, x, pin_i, pin_j):
    """The output's Jacobian in each of the four sectors around x: (side of
    i's locus, side of j's locus) -> Jacobian, read on a small circle."""
    (li, u, ta), (lj, v, tc) = pin_i, pin_j
    gi = _pass(ws, bs, acts, x)[1][li][u]
    ray = math.atan2(gi[0], -gi[1])  # i's line through x runs along (-gi_y, gi_x)
    near = (
        ray
        + np.array([0.0, np.pi])[:, None]
        + np.array([-1.0, 1.0])[:, None, None] * 10.0 ** -np.arange(1, 7)
    )
    grads = {}
    for t in np.concatenate([np.linspace(0, 2 * np.pi, 64, endpoint=False), near.ravel()]):
        y = x + 1e-7 * np.array([np.cos(t), np.sin(t)])
        _, _, vs, J = _pass(ws, bs, acts, y)
        grads.setdefault((vs[li][u] >= ta, vs[lj][v] >= tc), J)
    assert len(grads) == 4, "a sector was missed"
    return grads


def reference_theorem6(net, x, noise_row, sigma):
    """Theorem 6 (k = 2) at x for one noise row, term by term: the biases of
    i and j are set so that both sit at their breakpoints at x (i first, then
    j's read from the network with i pinned), and the pair counts when the
    output's Jacobian, read in the four sectors around x, jumps across both
    neurons' loci (the definition of a vertex), with no notion of "good"."""
    ws = [np.asarray(w) for w in net.weights]
    bs0 = _noisy_biases(net, noise_row)
    acts = net.activations
    where = [(ly, u) for ly, a in enumerate(acts) if a is not None for u in range(ws[ly].shape[0])]
    phi = lambda u: np.exp(-0.5 * (u / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))  # noqa: E731
    total = 0.0
    for (li, u), (lj, v) in itertools.combinations(where, 2):
        for ta in acts[li].breakpoints:
            for tc in acts[lj].breakpoints:
                bs = [b.copy() for b in bs0]
                zs, _, _, _ = _pass(ws, bs, acts, x)
                bs[li][u] = ta - zs[li][u]
                zs, _, _, _ = _pass(ws, bs, acts, x)
                bs[lj][v] = tc - zs[lj][v]
                e = (ta - zs[li][u] - net.biases[li][u]) ** 2 + (tc - zs[lj][v] - net.biases[lj][v]) ** 2
                if e / (2 * sigma**2) > 50:
                    continue
                _, Jzs, _, _ = _pass(ws, bs, acts, x)
                jz = np.linalg.det(np.stack([Jzs[li][u], Jzs[lj][v]]))
                if abs(jz) <= 1e-12 * np.linalg.norm(Jzs[li][u]) * np.linalg.norm(Jzs[lj][v]):
                    continue  # parallel: no isolated crossing (a null event)
                grads = sectors(ws, bs, acts, x, (li, u, ta), (lj, v, tc))
                jump = lambda g1, g2: np.abs(g1 - g2).max() > 1e-9 * max(np.abs(g1).max(), np.abs(g2).max())  # noqa: E731
                i_locus = any(jump(grads[(True, s)], grads[(False, s)]) for s in (True, False))
                j_locus = any(jump(grads[(s, True)], grads[(s, False)]) for s in (True, False))
                if i_locus and j_locus:
                    total += (
                        abs(jz)
                        * phi(ta - zs[li][u] - net.biases[li][u])
                        * phi(tc - zs[lj][v] - net.biases[lj][v])
                    )
    return total


@pytest.mark.slow
@pytest.mark.parametrize("act_id", ACT_IDS)
@pytest.mark.parametrize("widths", [[4, 1, 3], [3, 2, 2]], ids=["bottleneck1", "narrow"])
def test_every_term_matches_the_definition_reference(act_id, widths):
    """Per noise row and point, theorem6 against the term-by-term reference
    (the pinned-upstream density and the four-sector jump test)."""
    net = random_net(widths, activation=ACTIVATIONS[act_id], seed=4)
    sigma = 0.6
    gen = np.random.default_rng(9)
    pts = gen.uniform(-0.8, 0.8, size=(3, 2))
    noise = gen.normal(0.0, sigma, size=(2, net.n_neurons))
    got = _theorem6_samples(net, pts, noise, sigma)
    want = np.array([[reference_theorem6(net, p, row, sigma) for p in pts] for row in noise])
    assert want.max() > 0
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-12 * want.max())


@pytest.mark.parametrize("act_id", ACT_IDS)
@pytest.mark.parametrize(
    "widths",
    [[6, 5], [5, 2, 4], [8, 8, 8], [4, 1, 3], [7, 7, 7, 7]],
    ids=["two", "bottleneck", "three", "one", "deep"],
)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_fast_path_equals_full_recomputation(act_id, widths, sparse):
    """The pins pushed through by columns of the transfer matrices and the
    screened goodness give the sums of the full forward passes, up to
    rounding (zero weights: no screen), at scattered points (the transfer
    matrices mostly rebuilt)."""
    net = random_net(widths, activation=ACTIVATIONS[act_id], seed=6)
    if sparse:
        gen = np.random.default_rng(1)
        ws = [w * (gen.random(w.shape) < 0.6) if i > 0 else w for i, w in enumerate(net.weights)]
        net = rg.Network.from_arrays(ws, net.biases, net.activations)
    gen = np.random.default_rng(0)
    pts = gen.uniform(-1, 1, (40, 2))
    noise = gen.normal(0, 0.2, (3, net.n_neurons))
    fast = _theorem6_samples(net, pts, noise, 0.2)
    full = _theorem6_samples(net, pts, noise, 0.2, fast=False)
    assert full.max() > 0
    np.testing.assert_allclose(fast, full, rtol=1e-12, atol=1e-14 * full.max())


@pytest.mark.parametrize("act_id", ACT_IDS)
@pytest.mark.parametrize("widths", [[6, 2, 6], [6, 6, 6, 6]], ids=["bottleneck", "deep"])
def test_fast_path_along_neighbouring_points(act_id, widths):
    """On a fine grid consecutive points share most of their pattern, so the
    transfer matrices are carried from point to point by rank-1 updates:
    every (sample, point) still equals the full forward passes."""
    net = random_net(widths, activation=ACTIVATIONS[act_id], seed=8)
    pts = rg.grid_points((-0.6, -0.6, 0.6, 0.6), 16)
    noise = np.random.default_rng(2).normal(0, 0.3, (2, net.n_neurons))
    fast = _theorem6_samples(net, pts, noise, 0.3)
    full = _theorem6_samples(net, pts, noise, 0.3, fast=False)
    assert np.count_nonzero(full) > 0.9 * full.size
    np.testing.assert_allclose(fast, full, rtol=1e-12, atol=1e-14 * full.max())


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="already running without JIT")
def test_small_cases_without_jit():
    """The kernels of vertices and distance also run as plain Python."""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    here = Path(__file__).parent
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "-m", "not slow",
           str(here / "test_vertices.py"), str(here / "test_distance.py"),
           "-k", "upstream or closed_form or reproducible or pairwise or one_line or matches_shapely"]  # fmt: skip
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=here.parent)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]


def test_goodness_reads_both_pinned_layers_between():
    """Both-good is read in the network with both pinned, every layer after
    i's included: on this sparse deep net a pair whose layers are apart
    depends on the layers between them (the definition's four-sector test
    is the reference)."""
    net = random_net([7, 7, 7, 7], activation="relu", seed=6)
    gen = np.random.default_rng(1)
    ws = [w * (gen.random(w.shape) < 0.6) if i > 0 else w for i, w in enumerate(net.weights)]
    net = rg.Network.from_arrays(ws, net.biases, net.activations)
    gen = np.random.default_rng(0)
    pts = gen.uniform(-1, 1, (40, 2))[[5]]
    noise = gen.normal(0, 0.2, (3, net.n_neurons))[[2]]
    want = reference_theorem6(net, pts[0], noise[0], 0.2)
    for fast in (True, False):
        got = _theorem6_samples(net, pts, noise, 0.2, fast=fast)[0, 0]
        assert got == pytest.approx(want, rel=1e-9)


def test_simple_networks_take_the_one_call_path():
    """Dense networks with one breakpoint per activation and a linear last
    layer are summed by ``_pair_lite``; others (two breakpoints, zero
    weights, an activated last layer) by the general path."""
    from regiongeom.vertices import pack

    assert pack(random_net([5, 4], activation="relu", seed=0)).simple
    assert pack(random_net([5, 4], activation=ACTIVATIONS["leaky_relu"], seed=0)).simple
    assert pack(random_net([5, 4], activation="abs", seed=0)).simple
    assert not pack(random_net([5, 4], activation=ACTIVATIONS["hardtanh"], seed=0)).simple
    assert not pack(random_net([5, 4], activation="relu", seed=0, zero_frac=0.3)).simple
    assert not pack(random_net([5, 4], activation="relu", seed=0, last_activation="relu")).simple


@pytest.mark.parametrize("act_id", ["relu", "leaky_relu", "abs"])
@pytest.mark.parametrize(
    "widths, sigma",
    [([24, 24, 24], 0.03), ([6, 2, 6], 0.3), ([3, 3, 3, 3], 0.5)],
    ids=["wide-narrow-noise", "bottleneck", "narrow-deep"],
)
def test_one_call_path_and_its_fallbacks_equal_full_recomputation(act_id, widths, sigma):
    """The one-call path of simple networks against the full forward passes:
    wide layers with small noise (pins whose screen leaves pairs undecided,
    handed to the general path) and narrow layers (a whole layer closed, or
    the widest open neuron closed by a pin: the general path)."""
    net = random_net(widths, activation=ACTIVATIONS[act_id], seed=11)
    pts = rg.grid_points((-1.0, -1.0, 1.0, 1.0), 9)
    noise = np.random.default_rng(5).normal(0, sigma, (3, net.n_neurons))
    fast = _theorem6_samples(net, pts, noise, sigma)
    full = _theorem6_samples(net, pts, noise, sigma, fast=False)
    assert full.max() > 0
    np.testing.assert_allclose(fast, full, rtol=1e-12, atol=1e-14 * full.max())


def test_vertex_density_on_a_plane_of_a_three_input_network():
    """Through ``restrict``: on the plane z = 0.5 of a 3-input network the
    density is that of the 2-input network with the first layer's z column
    folded into its biases, for both methods (same seed, same noise)."""
    net3 = random_net([5, 4], n_in=3, activation="relu", seed=3)
    plane = rg.Plane.through([0.0, 0.0, 0.5], [1.0, 0.0, 0.5], [0.0, 1.0, 0.5])
    W0 = net3.weights[0]
    net2 = rg.Network.from_arrays(
        [W0[:, :2], *net3.weights[1:]],
        [net3.biases[0] + 0.5 * W0[:, 2], *net3.biases[1:]],
        net3.activations,
    )
    pts = np.array([[0.1, -0.2], [0.3, 0.4], [-0.5, 0.2]])
    for kw in ({"method": "theorem6"}, {"method": "definition", "eps": 0.3}):
        a = rg.vertex_density(net3.restrict(plane), pts, sigma=0.4, n_samples=8, rng=4, **kw)
        b = rg.vertex_density(net2, pts, sigma=0.4, n_samples=8, rng=4, **kw)
        assert b.mean.max() > 0
        np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12, atol=1e-12 * b.mean.max())
