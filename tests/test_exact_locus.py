"""The locus decision against exact rational Jacobians, edge by edge.

The engine's regions are taken as given: for every interior edge, the two
regions' Jacobians are recomputed from their patterns with Fractions, and
``nonlinear_locus`` must call the edge locus exactly when they differ;
``linear_regions`` must then be the connected components of the edges that
are not locus. This checks the locus decision on networks whose regions the
engine may still get wrong (per-neuron scales 1e-6..1e6, duplicated, scaled
and sign-flipped neurons, zero and 1e-300 weights); tests/test_exact.py
checks whole maps against the exact reference. The locus vertices (bends
and junctions) are checked the same way. A map where the engine made an edge
that cannot exist (one neuron differs and its preactivation is exactly
constant there) is skipped and counted; the locus decision assumes real
edges. ``REGIONGEOM_FUZZ_EXAMPLES=N`` runs N random examples per family.

Also: ``volume_in_balls`` in 1D against exact Fraction counts.
"""

from __future__ import annotations

import os
from fractions import Fraction as F

import numpy as np
import pytest
from exact_reference import exact_layers
from exact_strategies import coincidence_nets, gaussian_nets, scaled_nets
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import regiongeom as rg

BOX = (-1.0, -1.0, 1.0, 1.0)
RANDOM = bool(os.environ.get("REGIONGEOM_FUZZ_EXAMPLES"))
INVALID = []  # examples skipped because the engine made an edge that cannot exist


def fuzz(ci_examples):
    return settings(
        max_examples=int(os.environ["REGIONGEOM_FUZZ_EXAMPLES"]) if RANDOM else ci_examples,
        derandomize=not RANDOM,
        database=None,
        deadline=None,
        phases=list(Phase) if RANDOM else [Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


def net_of(weights, biases, acts):
    return rg.Network.from_arrays(weights, biases, acts)


def exact_jacobian(layers, pattern, n_in):
    """(n_out, n_in) Jacobian on ``pattern`` with Fractions."""
    J = [tuple(F(int(i == k)) for k in range(n_in)) for i in range(n_in)]
    pos = 0
    for layer in layers:
        J = [tuple(sum((w * Jk[i] for w, Jk in zip(row, J)), F(0)) for i in range(n_in)) for row in layer.W]
        if layer.act is not None:
            sl = layer.act[1]
            J = [tuple(sl[int(k)] * v for v in row) for row, k in zip(J, pattern[pos : pos + len(J)])]
            pos += len(J)
    return J


def exact_gradient(layers, pattern, neuron, n_in):
    """The gradient of ``neuron``'s preactivation on ``pattern``, with Fractions."""
    J = [tuple(F(int(i == k)) for k in range(n_in)) for i in range(n_in)]
    pos = 0
    for layer in layers:
        J = [tuple(sum((w * Jk[i] for w, Jk in zip(row, J)), F(0)) for i in range(n_in)) for row in layer.W]
        if neuron < pos + len(J):
            return J[neuron - pos]
        sl = layer.act[1]
        J = [tuple(sl[int(k)] * v for v in row) for row, k in zip(J, pattern[pos : pos + len(J)])]
        pos += len(J)
    raise ValueError("not a neuron")


def exact_decision(rm):
    """(E_inner,) exact jumps across the interior edges and the exact number
    of linear regions, from the engine's patterns; None when the engine made
    an edge that cannot exist (the patterns differ in one neuron whose
    preactivation is exactly constant on both regions: the engine's
    enumeration, not the locus decision, is wrong there)."""
    layers = exact_layers(rm.net)
    jac = [exact_jacobian(layers, p, rm.net.n_in) for p in rm.patterns]
    inner = rm.edge_regions[:, 1] >= 0
    a, b = rm.edge_regions[inner].T
    for i, j in zip(a, b):
        (diff,) = np.nonzero(rm.patterns[i] != rm.patterns[j])
        if diff.size == 1 and not any(exact_gradient(layers, rm.patterns[i], int(diff[0]), rm.net.n_in)):
            return None, None
    jumps = np.array([jac[i] != jac[j] for i, j in zip(a, b)], dtype=bool)
    parent = list(range(len(rm)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, jump in zip(a, b, jumps):
        if not jump:
            parent[find(i)] = find(j)
    return jumps, len({find(i) for i in range(len(rm))})


def check_decision(net, domain):
    try:
        rm = rg.activation_regions(net, domain)
    except rg.RegionLimitError:
        return None
    loc = rg.nonlinear_locus(rm)
    jumps, n_linear = exact_decision(rm)
    if jumps is None:
        INVALID.append(1)
        return rm
    np.testing.assert_array_equal(loc.in_locus, jumps)
    assert len(rg.linear_regions(rm)) == n_linear
    if rm.dim == 2:
        np.testing.assert_array_equal(loc.vertices, exact_locus_vertices(rm, loc.in_locus))
    return rm


def exact_locus_vertices(rm, in_locus):
    """Locus vertices of the engine's map (degree 3 or more, or 2 where the two
    pieces' lines differ: the exact gradients of their neurons are not parallel)."""
    layers = exact_layers(rm.net)
    edges = np.flatnonzero(rm.edge_regions[:, 1] >= 0)[in_locus]
    at = {}
    for e in edges:
        for v in rm.edges[e]:
            at.setdefault(int(v), []).append(e)
    keep = []
    for v, es in sorted(at.items()):
        if len(es) == 1:
            continue
        if len(es) == 2:
            g = [
                exact_gradient(layers, rm.patterns[rm.edge_regions[e, 0]], int(rm.edge_neurons[e]), 2)
                for e in es
            ]
            if g[0][0] * g[1][1] == g[0][1] * g[1][0]:
                continue
        keep.append(v)
    return rm.vertices[np.array(keep, dtype=np.int64)].reshape(-1, 2)


@st.composite
def edited_nets(draw, base):
    """A network from ``base`` with hidden neurons duplicated (scaled by a power
    of two, possibly sign-flipped, with outgoing weights copied, negated or
    scaled) and outgoing weights set to 0 or 1e-300."""
    net, domain = draw(base)
    ws = [np.array(w) for w in net.weights]
    bs = [np.array(b) for b in net.biases]
    for _ in range(draw(st.integers(0, 2))):
        hidden = [i for i in range(len(ws) - 1) if net.activations[i] is not None]
        if not hidden:
            break
        i = draw(st.sampled_from(hidden))
        j = draw(st.integers(0, ws[i].shape[0] - 1))
        s = draw(st.sampled_from([1.0, 2.0, 0.5]))
        ws[i] = np.vstack([ws[i], s * ws[i][j]])
        bs[i] = np.append(bs[i], s * bs[i][j])
        col = ws[i + 1][:, j] * draw(st.sampled_from([1.0, -1.0, -1.0 / s, 3.0]))
        ws[i + 1] = np.hstack([ws[i + 1], col[:, None]])
    for _ in range(draw(st.integers(0, 2))):
        i = draw(st.integers(1, len(ws) - 1))
        c = draw(st.integers(0, ws[i].shape[1] - 1))
        ws[i][:, c] = draw(st.sampled_from([0.0, 1e-300]))
    return net_of(ws, bs, net.activations), domain


FAMILIES = {
    "gaussian_scales": scaled_nets(gaussian=True),
    "coincidence_scales": scaled_nets(),
    "coincidence": coincidence_nets(),
    "gaussian": gaussian_nets(),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_locus_decision_is_exact(family):
    INVALID.clear()
    checked = []

    @fuzz(150)
    @given(edited_nets(FAMILIES[family]))
    def run(case):
        checked.append(check_decision(*case) is not None)

    run()
    assert len(INVALID) < 0.1 * sum(checked)  # the comparison ran on nearly every example


def test_zero_and_tiny_outgoing_weights():
    """An outgoing weight of exactly 0 takes the neuron's line out of the
    locus; one of 1e-300 keeps it, next to a weight of 1e6."""
    for w, length, n_lin in [(0.0, 2.0, 2), (1e-300, 4.0, 4)]:
        rm = check_decision(net_of([np.eye(2), [[1e6, w]]], [[0.0, 0.0], [0.0]], ["relu", None]), BOX)
        assert rg.nonlinear_locus(rm).volume() == length and len(rg.linear_regions(rm)) == n_lin


def test_cancellation_is_decided_exactly():
    """Neuron 0 feeds two always-active neurons whose output weights cancel
    exactly (no locus at 0) or by 2**-52 (locus at 0): both need the exact
    fallback, since the float value is within its error bound of zero."""
    for w, points in [(-1.0, []), (-1.0 + 2.0**-52, [0.0])]:
        net = net_of(
            [[[1.0]], [[1.0], [-1.0]], [[1.0, -w]]], [[0.0], [5.0, 5.0], [0.0]], ["relu", "relu", None]
        )
        rm = check_decision(net, (-1.0, 1.0))
        assert rg.nonlinear_locus(rm).points.tolist() == points
        assert rm._derived["jump_stages"]["exact"] == 1


def test_duplicated_neurons_compare_whole_jacobians():
    """Two neurons on one line with output weights 1 and -1 (no jump) or 1 and -1/2 (a jump)."""
    for w, length in [(-1.0, 0.0), (-0.5, 2.0)]:
        net = net_of([[[1.0, 0.0], [1.0, 0.0]], [[1.0, w]]], [[0.0, 0.0], [0.0]], ["relu", None])
        rm = check_decision(net, BOX)
        assert rg.nonlinear_locus(rm).volume() == length
        assert rm._derived["jump_stages"]["jacobians"] == 1


def test_dead_layer_is_decided_by_structure():
    """A later layer that is off everywhere cuts every path: no locus, and no
    exact arithmetic is needed to see it."""
    net = net_of([np.eye(2), [[1.0, 1.0]], [[1.0]]], [[0.0, 0.0], [-10.0], [0.0]], ["relu", "relu", None])
    rm = check_decision(net, BOX)
    assert len(rg.nonlinear_locus(rm)) == 0 and len(rg.linear_regions(rm)) == 1
    stages = rm._derived["jump_stages"]
    assert stages["exact"] == 0 and stages["regions"] == 4


@pytest.mark.parametrize("seed", range(3))
def test_random_networks_need_no_exact_arithmetic(seed):
    """Generic weights: the float filters decide every edge."""
    from common import random_net

    rm = check_decision(random_net([8, 8, 8], n_out=2, seed=seed), (-2, -2, 2, 2))
    stages = rm._derived["jump_stages"]
    assert stages["exact"] == 0 and stages["jacobians"] == 0


def test_volume_in_balls_1d_counts_exactly():
    """Whether ``|p - c| <= eps`` is decided exactly for the float locus
    points, where the rounded ``c +- eps`` would decide wrongly."""
    near = np.array([-0.1, 0.1, 0.3, 0.7])
    net = net_of([np.ones((near.size, 1)), np.ones((1, near.size))], [-near, [0.0]], ["relu", None])
    loc = rg.nonlinear_locus(rg.activation_regions(net, (-1.0, 1.0)))
    pts = loc.points
    np.testing.assert_allclose(pts, near, rtol=1e-15)
    rng = np.random.default_rng(0)
    c = np.concatenate(
        [pts + d for d in (-0.4, -0.3, -0.2, -0.1, 0.1, 0.2, 0.3, 0.4)] + [rng.uniform(-1, 1, 50)]
    )
    for eps in (0.1, 0.2, 0.3, 0.4, 1e-17):
        got = loc.volume_in_balls(c, eps)
        want = [sum(abs(F(float(p)) - F(float(x))) <= F(eps) for p in pts) for x in c]
        np.testing.assert_array_equal(got, want)
    # the rounded interval ends get some of these wrong
    naive = np.searchsorted(pts, c + 0.1, side="right") - np.searchsorted(pts, c - 0.1, side="left")
    assert np.any(naive != loc.volume_in_balls(c, 0.1))
