"""The 1D engine's filtered exact predicates.

Every sign and every order of crossings is decided by a float filter with a
rigorous error bound, and exactly (``regiongeom._exact``) when the filter
cannot tell; these tests check the results against the forward pass and the
exact reference (tests/exact_reference.py) on networks whose scales differ
wildly between layers and neurons, that the exact fallback runs where it
must, and that the results do not depend on the helper thread or on numba.
"""

import json
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from common import ACTIVATIONS, TESTS_DIR
from exact_compare import compare
from exact_reference import exact_forward, exact_layers, exact_regions

import regiongeom as rg
from regiongeom._engine import line1d as E
from regiongeom._engine.core import BOUNDARY


def scaled_net(seed, act="relu", widths=(5, 6, 5), layer_scales=True, neuron_scales=True):
    """A 1-input Gaussian network with per-layer scales 10^-8..10^8 and per-neuron
    scales 10^-6..10^6 on incoming rows (with the bias) and outgoing columns."""
    rng = np.random.default_rng(seed)
    ws, bs, d = [], [], 1
    for w in [*widths, 1]:
        W = rng.normal(size=(w, d))
        b = rng.normal(size=w) * 0.5
        if layer_scales:
            s = 10.0 ** rng.uniform(-8, 8)
            W, b = W * s, b * s
        if neuron_scales:
            s = 10.0 ** rng.uniform(-6, 6, size=w)
            W, b = W * s[:, None], b * s
        if neuron_scales and d > 1:
            W = W * 10.0 ** rng.uniform(-6, 6, size=d)[None, :]
        ws.append(W)
        bs.append(b)
        d = w
    return rg.Network.from_arrays(ws, bs, [ACTIVATIONS[act]] * len(widths) + [None])


def wrong_patterns(rm, net, x):
    """Indices of the points whose located pattern is not the exact forward pass's."""
    idx = rm.locate(x)
    assert np.all(idx >= 0)
    sus = np.nonzero(np.any(rm.patterns[idx] != net.patterns(x), axis=1))[0]
    layers = exact_layers(net) if sus.size else None
    return [i for i in sus if tuple(rm.patterns[idx[i]].tolist()) != exact_forward(None, x[i], layers)[1]]


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("seed", range(4))
def test_locate_agrees_with_the_forward_pass_on_scaled_networks(act, seed):
    net = scaled_net(seed, act)
    rm = rg.activation_regions(net, (-2.0, 2.0))
    x = np.random.default_rng(seed).uniform(-2.0, 2.0, size=(3000, 1))
    assert wrong_patterns(rm, net, x) == []
    # and inside every interval, however short (where the float midpoint is strictly inside)
    lo, hi = rm.intervals[:, 0], rm.intervals[:, 1]
    mid = lo + (hi - lo) * 0.5
    inner = mid[(lo < mid) & (mid < hi)][:, None]
    assert wrong_patterns(rm, net, inner) == []


LOCUS_KINDS = ("locus", "locus-neuron", "linear")


@pytest.mark.parametrize("seed", range(6))
def test_scaled_networks_match_the_exact_reference(seed):
    """Regions, patterns, lengths, ``net(x) == J x + c`` and ``rm.locate``.
    (The locus and the linear regions compare Jacobians, a test of their
    own, in regiongeom/locus.py: not checked here.)"""
    net = scaled_net(seed, ["relu", "hardtanh", "leaky_relu"][seed % 3], widths=(3, 4, 3))
    found = compare(net, (-1.0, 1.5), n_points=300)
    assert [d for d in found if d.split(":")[0] not in LOCUS_KINDS] == []


def test_reproducer_b_keeps_the_constant_neuron_off():
    """A neuron exactly -1 on [-1, 0] next to a layer 1e11 larger is not snapped onto its breakpoint."""
    net = rg.Network.from_arrays([[[1e11]], [[1.0]], [[1.0]]], [[0.0], [-1.0], [0.0]], ["relu", "relu", None])
    rm = rg.activation_regions(net, (-1.0, 1.0))
    np.testing.assert_array_equal(rm.patterns, [[0, 0], [1, 0], [1, 1]])
    np.testing.assert_array_equal(rm.vertices, [-1.0, 0.0, 1e-11, 1.0])
    assert rm.offsets[0, 0] == 0.0


def exact_counts(net, domain):
    E.STATS.reset()
    rm = rg.activation_regions(net, domain)
    return rm, E.STATS.snapshot()


def test_exact_fallback_decides_coincidences():
    """Two neurons with the same root (one order decision left to the exact
    fallback, and merged into one point named after the lower neuron), and
    a second-layer neuron equal to its breakpoint on a whole interval (exact
    signs, counted as on the upper piece)."""
    net = rg.Network.from_arrays(
        [[[1.0], [3.0], [1.0]], [[1.0, 0.0, 0.0]], [[1.0]]],
        [[-0.5, -1.5, 0.25], [0.0], [0.0]],
        ["relu", "relu", None],
    )
    rm, st = exact_counts(net, (-1.0, 1.0))
    assert st["exact_orders"] >= 1 and st["exact_signs"] >= 1
    np.testing.assert_array_equal(rm.vertices, [-1.0, -0.25, 0.5, 1.0])
    np.testing.assert_array_equal(rm.edge_neurons, [2, 0])
    # neuron 3 is relu(x - 1/2) - 0: exactly 0 (on its breakpoint, upper piece) left of 1/2
    np.testing.assert_array_equal(rm.patterns[:, 3], [1, 1, 1])
    assert compare(net, (-1.0, 1.0)) == []


def test_exact_fallback_on_a_later_neuron_through_an_earlier_crossing():
    """Layer 2's neuron ``2 relu(x) - 1`` is exactly 0 at layer 1's crossing
    ``x = 1/2`` (of ``relu(2 x - 1)``): an exact sign 0 there, no new point."""
    net = rg.Network.from_arrays(
        [[[1.0], [2.0]], [[2.0, 0.0]], [[1.0]]], [[0.0, -1.0], [-1.0], [0.0]], ["relu", "relu", None]
    )
    rm, st = exact_counts(net, (-1.0, 1.0))
    assert st["exact_signs"] > 0
    np.testing.assert_array_equal(rm.vertices, [-1.0, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(rm.edge_neurons, [0, 1])
    assert compare(net, (-1.0, 1.0)) == []


def test_no_fallback_on_a_plain_network():
    """Gaussian weights of one scale: the filter decides everything."""
    net = rg.examples.random_network([32, 32, 32], n_in=1, rng=0)
    _, st = exact_counts(net, (-3.0, 3.0))
    assert st["signs"] > 1000 and st["exact_signs"] == st["exact_orders"] == st["exact_positions"] == 0


def test_equal_float_positions_keep_a_region_of_length_zero():
    """The roots ``fl(1/3)`` (of ``x - fl(1/3)``) and ``1/3`` (of ``3 x -
    1``) are less than an ulp apart and both round to ``fl(1/3)``: the
    interval between them exists exactly, so it is reported, with length 0.0."""
    net = rg.Network.from_arrays([[[1.0], [3.0]], [[1.0, 1.0]]], [[-1.0 / 3.0, -1.0], [0.0]], ["relu", None])
    rm, st = exact_counts(net, (0.0, 1.0))
    ex = exact_regions(net, (0.0, 1.0))
    assert ex.patterns == [(0, 0), (1, 0), (1, 1)] and ex.regions[1].measure == Fraction(1, 3) - Fraction(
        1.0 / 3.0
    )
    assert rm.patterns.tolist() == [[0, 0], [1, 0], [1, 1]] and st["exact_orders"] == 1
    assert rm.measures[1] == 0.0 and rm.vertices[1] == rm.vertices[2] == 1.0 / 3.0


def _result_bits(net, dom):
    rm = rg.activation_regions(net, dom)
    return [rm.vertices.tolist(), rm.patterns.tolist(), rm.edge_neurons.tolist()]


NOJIT_SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
from test_exact_1d import _nojit_cases, _result_bits
print(json.dumps([_result_bits(n, d) for n, d in _nojit_cases()]))
"""


def _nojit_cases():
    return [
        (scaled_net(1, "hardtanh", widths=(3, 3)), (-1.0, 1.0)),
        (scaled_net(2, "relu", widths=(4, 3)), (-2.0, 2.0)),
    ]


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="already running without JIT")
def test_same_results_without_jit():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=str(TESTS_DIR.parent))
    r = subprocess.run(
        [sys.executable, "-c", NOJIT_SCRIPT.format(tests=str(TESTS_DIR))],
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == [_result_bits(n, d) for n, d in _nojit_cases()]


def test_helper_thread_gives_the_same_bits_and_decisions(monkeypatch):
    """The products split over the helper thread: the same points, patterns
    and exact-fallback counts, bit for bit, on a network that needs the fallback."""
    net = rg.Network.from_arrays(
        [np.ones((40, 1)), np.eye(40)[:30] * 1e8, np.ones((1, 30))],
        [np.linspace(-1, 1, 40), np.zeros(30), np.zeros(1)],
        ["relu", "relu", None],
    )
    monkeypatch.setattr(E, "_BLOCK", 4)
    monkeypatch.setattr(E, "_PAR_MIN", 1 << 62)
    one, st1 = exact_counts(net, (-2.0, 2.0))
    monkeypatch.setattr(E, "_PAR_MIN", 0)
    monkeypatch.setattr(E, "_pool_state", {"pool": None})
    monkeypatch.delenv("REGIONGEOM_NUM_THREADS", raising=False)
    monkeypatch.setattr(E.os, "cpu_count", lambda: 2)
    two, st2 = exact_counts(net, (-2.0, 2.0))
    assert E._pool_state["pool"] is not None
    assert compare(net, (-2.0, 2.0)) == []
    E._pool_state["pool"].shutdown()
    assert st1 == st2 and st1["exact_signs"] > 0
    np.testing.assert_array_equal(one.vertices, two.vertices)
    np.testing.assert_array_equal(one.patterns, two.patterns)


def test_cut_carries_extra_columns():
    """Columns past ``n_cut`` are interpolated at the new points and never cut."""
    z = np.array([[-1.0, 10.0, 5.0], [3.0, -10.0, 9.0]])  # neuron 0 crosses at 1/4; columns 1, 2 are carried
    err = np.zeros_like(z)
    pts = E.Points(
        np.array([0.0, 1.0]), np.zeros(2), np.full(2, BOUNDARY), np.zeros(2, np.int64), np.arange(2)
    )
    act = tuple(np.array(v, np.float64) for v in ([0.0], [0.0, 1.0], [0.0, 0.0]))
    net = rg.Network.from_arrays(
        [[[4.0], [0.0], [0.0]], [[1.0, 1.0, 1.0]]], [[-1.0, 10.0, 5.0], [0.0]], ["relu", None]
    )
    res = E._cut_layer(pts, z, err, act, 0, 100, E.Fallback1D(net, [], E.K.UNSURE, BOUNDARY), n_cut=1)
    np.testing.assert_array_equal(res.points.x, [0.0, 0.25, 1.0])
    np.testing.assert_array_equal(res.pieces, [[0], [1]])
    np.testing.assert_array_equal(res.values, [[0.0, 5.0, 6.0]])
    full = E._cut_layer(pts, z, err, act, 0, 100, E.Fallback1D(net, [], E.K.UNSURE, BOUNDARY))
    assert full.points.x.size == 4  # cut by column 1 too (at 1/2)


# -- the second filter (regiongeom/_engine/_line1d_refine.py) ------------------
def _coincident_net():
    """Forced coincidences: a duplicate, a scaled duplicate and a dead neuron,
    and second-layer neurons exactly 0 at first-layer crossings."""
    w1 = np.array([[1.0], [2.0], [1.0], [3.0], [0.0]])
    b1 = np.array([-0.5, -1.0, 0.25, -1.5, -1.0])
    w2 = np.array([[2.0, 0.0, 0.0, 0.0, 1.0], [1.0, -1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, -1.0, 0.0]])
    b2 = np.array([-1.0, 0.0, 0.5])
    return rg.Network.from_arrays([w1, w2, [[1.0, 1.0, 1.0]]], [b1, b2, [0.0]], ["relu", "relu", None])


def _affine_middle_net():
    """An affine hidden layer between two activations (its neurons cut nothing)."""
    rng = np.random.default_rng(7)
    ws = [
        rng.normal(size=(6, 1)) * 1e4,
        rng.normal(size=(4, 6)),
        rng.normal(size=(5, 4)) * 1e-5,
        rng.normal(size=(1, 5)),
    ]
    bs = [rng.normal(size=6) * 1e4, rng.normal(size=4), rng.normal(size=5) * 1e-5, np.zeros(1)]
    return rg.Network.from_arrays(ws, bs, ["relu", None, "hardtanh", None])


@pytest.mark.parametrize(
    "net, dom, coincident",
    [
        (scaled_net(s, a), (-2.0, 2.0), False)
        for s, a in [(1, "hardtanh"), (4, "hardtanh"), (0, "relu"), (2, "leaky_relu")]
    ]
    + [(_coincident_net(), (-1.0, 1.0), True), (_affine_middle_net(), (-2.0, 2.0), False)],
)
def test_second_filter_signs_are_exact(net, dom, coincident):
    """At every point of the subdivision (an end, or the exact root of its
    neuron), the second filter's sign of every later neuron, when it gives
    one, is the exact sign (``regiongeom._exact``); it never decides an
    exact zero."""
    from regiongeom import _exact as X
    from regiongeom._engine import _line1d_refine as R

    rm = rg.activation_regions(net, dom)
    maps, ex = R.FloatMaps(net), X.ExactNet(net)
    offs = np.asarray(net.neuron_offsets)
    decided = zeros = 0
    for v in range(rm.vertices.size):
        q = min(v, len(rm) - 1)  # an interval next to point v
        pat = rm.patterns[q]
        if 0 < v < rm.vertices.size - 1:
            pn, pb = int(rm.edge_neurons[v - 1]), int(rm.edge_breakpoints[v - 1])
            pt, root = maps.breakpoint(pn, pb), ex.line(pat, pn, pb)
            start = int(offs[np.searchsorted(offs, pn, side="right")])  # the layers after the point's
        else:
            pn = pt = root = None
            start = 0
        for j in range(start, net.n_neurons):
            layer = int(np.searchsorted(offs, j, side="right") - 1)
            act = net.activations[layer]
            if act is None:
                continue
            for k, t in enumerate(np.asarray(act.breakpoints, np.float64)):
                line = ex.line(pat, j, k)
                want = X.sign_at_float_1d(line, rm.vertices[v]) if pn is None else X.sign_at_root(line, root)
                got = R.sign_by_maps(maps, pat, j, t, pn, pt, rm.vertices[v] if pn is None else None)
                zeros += want == 0
                if got is not None:
                    assert got == want, (v, j, k)
                    decided += 1
    assert decided > 0
    if coincident:  # exact zeros, left to the exact fallback
        assert zeros > 0


@pytest.mark.parametrize("seed", [1, 4])
def test_second_filter_gives_the_same_results_as_the_exact_fallback(seed, monkeypatch):
    """With the second filter switched off, its signs go to the exact
    fallback: the same points and patterns, bit for bit."""
    from regiongeom._engine import _line1d_refine as R

    net = scaled_net(seed, "hardtanh")
    on, st_on = exact_counts(net, (-2.0, 2.0))
    monkeypatch.setattr(R, "sign_by_maps", lambda *a: None)
    off, st_off = exact_counts(net, (-2.0, 2.0))
    assert st_on["refined_signs"] > 0 and st_off["refined_signs"] == 0
    assert st_off["exact_signs"] == st_on["exact_signs"] + st_on["refined_signs"]
    np.testing.assert_array_equal(on.vertices, off.vertices)
    np.testing.assert_array_equal(on.patterns, off.patterns)
    np.testing.assert_array_equal(on.edge_neurons, off.edge_neurons)


def test_region_below_float_resolution_keeps_its_exact_map():
    """A fuzz case (Hardtanh, weights up to 1e13): the exact reference has a
    region of positive length whose float end points coincide; the engine
    reports it with length 0.0 and the exact map of its pattern."""
    W0 = [[-0.0005649246058351461], [1.9999999918721205], [-9098.587234515124]]
    b0 = [0.0007061557572939326, 0.0, 15012.668936949953]
    W1 = [[10321068.851987977, -5160534.425993988, 10321068.851987977],
          [10321068851987.977, -5160534425993.988, 10321068851987.977],
          [10321068.851987977, -5160534.425993988, 10321068.851987977]]  # fmt: skip
    b1 = [1720178.141997996, 5160534425993.988, 1720178.141997996]
    acts = [rg.Activation.hardtanh(-1, 1), rg.Activation.hardtanh(-0.5, 0.75)]
    net = rg.Network.from_arrays([W0, W1], [b0, b1], acts)
    rm = rg.activation_regions(net, (0.5, 2.25))
    assert np.any(rm.measures == 0.0)
    assert compare(net, (0.5, 2.25), n_points=200) == []
