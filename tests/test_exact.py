"""The engine against an exact rational reference (tests/exact_reference.py).

Three parts: the reference itself on cases with known answers; reproducers
of exactness failures with their exact answers; a hypothesis fuzzer by
family (tests/exact_strategies.py). The engine must agree with the
reference on every one: regions, patterns, measures, locus, linear regions
and ``net(x) == J x + c``.

The fuzzer is derandomised with a fixed number of examples per family;
``REGIONGEOM_FUZZ_EXAMPLES=N`` runs N random examples per family instead
(shrinking failures, so it reports the counterexamples). ``python tests/exact_strategies.py N [family ...]`` prints
the disagreement rate of N random examples per family, by kind.
"""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest
from exact_compare import compare
from exact_reference import exact_forward, exact_regions
from exact_strategies import coincidence_nets, gaussian_nets, scaled_nets
from hypothesis import HealthCheck, Phase, given, settings
from reference import regions_1d, regions_2d
from shapely.geometry import Polygon

import regiongeom as rg

F = Fraction
BOX = (-1.0, -1.0, 1.0, 1.0)


def net_of(weights, biases, acts):
    return rg.Network.from_arrays(weights, biases, acts)


def areas(ex):
    return {r.pattern: r.measure for r in ex.regions}


# ------------------------------------------------ the reference itself ----
def test_reference_one_line_through_a_box():
    ex = exact_regions(net_of([[[1.0, 0.0]], [[1.0]]], [[-0.25], [0.0]], ["relu", None]), BOX)
    assert areas(ex) == {(0,): F(5, 2), (1,): F(3, 2)}
    assert ex.locus_volume() == 2.0 and ex.n_linear == 2
    diag = exact_regions(net_of([[[1.0, 1.0]], [[1.0]]], [[0.0], [0.0]], ["relu", None]), BOX)
    assert areas(diag) == {(0,): F(2), (1,): F(2)}
    assert diag.locus_volume() == pytest.approx(2 * np.sqrt(2), rel=1e-15)


def test_reference_two_crossing_lines():
    ex = exact_regions(net_of([np.eye(2), [[1.0, 1.0]]], [[0.0, 0.0], [0.0]], ["relu", None]), BOX)
    assert areas(ex) == {(0, 0): 1, (0, 1): 1, (1, 0): 1, (1, 1): 1}
    assert ex.locus_volume() == 4.0 and ex.n_linear == 4
    assert sorted(e.neurons for e in ex.edges) == [(0,), (0,), (1,), (1,)]
    # only neuron 0 reaches the output: its line is locus, neuron 1's is not
    ex = exact_regions(net_of([np.eye(2), [[1.0, 0.0]]], [[0.0, 0.0], [0.0]], ["relu", None]), BOX)
    assert len(ex.regions) == 4 and ex.locus_volume() == 2.0 and ex.n_linear == 2


def test_reference_sawtooth():
    ex = exact_regions(rg.sawtooth(3), (0.0, 1.0))
    assert sorted(r.cell for r in ex.regions) == [(F(k, 8), F(k + 1, 8)) for k in range(8)]
    assert ex.locus_points() == [F(k, 8) for k in range(1, 8)]
    assert ex.n_linear == 8


def test_reference_parallel_and_duplicate_neurons():
    dup = net_of(
        [[[1.0, 0.0], [1.0, 0.0], [2.0, 0.0]], [[1.0, 1.0, 1.0]]], [[0.0, 0.0, 0.0], [0.0]], ["relu", None]
    )
    ex = exact_regions(dup, BOX)
    assert areas(ex) == {(0, 0, 0): 2, (1, 1, 1): 2}
    assert [e.neurons for e in ex.edges] == [(0, 1, 2)]
    par = net_of([[[1.0, 0.0], [1.0, 0.0]], [[1.0, 1.0]]], [[0.0, -0.5], [0.0]], ["relu", None])
    assert areas(exact_regions(par, BOX)) == {(0, 0): 2, (1, 0): 1, (1, 1): 1}


def test_reference_dead_and_constant_neurons():
    # neuron 1 has a zero row: constant -1, inactive everywhere; neuron 2 constant 0: active (right-continuous)
    net = net_of(
        [[[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]], [[1.0, 1.0, 1.0]]], [[0.0, -1.0, 0.0], [0.0]], ["relu", None]
    )
    assert areas(exact_regions(net, BOX)) == {(0, 0, 1): 2, (1, 0, 1): 2}
    # a neuron whose outgoing weight is zero: an activation boundary, not locus
    off = exact_regions(net_of([[[1.0, 0.0]], [[0.0]]], [[0.0], [1.0]], ["relu", None]), BOX)
    assert len(off.regions) == 2 and off.locus_volume() == 0.0 and off.n_linear == 1


def test_reference_lines_touching_the_domain():
    # a dead ReLU, a line along the box's left side and a line through its corner: one region each
    for w, b in [([1.0, 0.0], -5.0), ([1.0, 0.0], 1.0), ([1.0, 1.0], 2.0)]:
        ex = exact_regions(net_of([[w], [[1.0]]], [[b], [0.0]], ["relu", None]), BOX)
        assert areas(ex) == {(0 if b < 0 else 1,): 4} and ex.edges == []


def test_reference_convex_polygon_and_every_activation_1d():
    tri = Polygon([(0.0, 0.0), (2.0, 0.0), (0.0, 2.0)])
    ex = exact_regions(net_of([[[1.0, 0.0]], [[1.0]]], [[-1.0], [0.0]], ["relu", None]), tri)
    assert areas(ex) == {(0,): F(3, 2), (1,): F(1, 2)}
    pl3 = rg.Activation("pl3", [-0.5, 0.25, 1.0], [0.25, -1.0, 0.5, 2.0], value_at_first=0.25)
    for act, cuts in [
        ("relu", [0]),
        (rg.Activation.leaky_relu(0.25), [0]),
        ("hardtanh", [-1, 1]),
        ("abs", [0]),
        (pl3, [F(-1, 2), F(1, 4), 1]),
    ]:
        ex = exact_regions(net_of([[[1.0]], [[1.0]]], [[0.0], [0.0]], [act, None]), (-2.0, 2.0))
        assert [r.cell[0] for r in ex.regions][1:] == cuts
        assert [r.pattern for r in ex.regions] == [(k,) for k in range(len(cuts) + 1)]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dim", [1, 2])
def test_reference_self_consistent_and_matches_shapely_reference(seed, dim):
    """Exact forward pass at each region's exact interior point gives its pattern
    and J x + c; the float shapely reference finds the same regions."""
    rng = np.random.default_rng(seed)
    acts = ["relu", rg.Activation.leaky_relu(0.1), "hardtanh", "abs"]
    ws, bs, d = [], [], dim
    for w in (4, 3):
        ws.append(rng.normal(size=(w, d)))
        bs.append(rng.normal(size=w) * 0.5)
        d = w
    ws.append(rng.normal(size=(2, d)))
    bs.append(rng.normal(size=2))
    net = net_of(ws, bs, [acts[seed], acts[seed], None])
    dom = BOX if dim == 2 else (-2.0, 2.0)
    ex = exact_regions(net, dom)
    for r in ex.regions:
        x = r.interior_point()
        y, pat = _exact_at_fraction(net, x)
        assert pat == r.pattern
        assert y == [sum(a * xi for a, xi in zip(row, x)) + c for row, c in zip(r.jacobian, r.offset)]
    ref = regions_2d(net, dom) if dim == 2 else regions_1d(net, dom)
    meas = {p: (g.area if dim == 2 else g[1] - g[0]) for p, g in ref}
    assert set(meas) == set(areas(ex))
    for p, m in areas(ex).items():
        assert meas[p] == pytest.approx(float(m), rel=1e-9, abs=1e-12)


def _exact_at_fraction(net, x):
    """Exact output and pattern at an exact rational point (exact_forward takes floats)."""
    h = list(x)
    pattern = []
    for w, b, a in zip(net.weights, net.biases, net.activations):
        z = [sum(F(float(wi)) * v for wi, v in zip(row, h)) + F(float(bj)) for row, bj in zip(w, b)]
        if a is not None:
            ks = [sum(1 for t in a.breakpoints if F(float(t)) <= v) for v in z]
            pattern += ks
            z = [F(float(a.slopes[k])) * v + F(float(a.intercepts[k])) for v, k in zip(z, ks)]
        h = z
    return h, tuple(pattern)


def test_compare_agrees_on_easy_cases():
    assert compare(rg.sawtooth(3), (0.0, 1.0)) == []
    assert compare(net_of([np.eye(2), [[1.0, 1.0]]], [[0.0, 0.0], [0.0]], ["relu", None]), BOX) == []
    y, pat = exact_forward(rg.sawtooth(2), [0.3])
    assert pat == (1, 0, 1, 1) and y == [2 - 4 * F(0.3)]  # 2 (2x) - 4 (2x - 1/2)


def test_compare_detects_each_kind(monkeypatch):
    """compare() reports a wrong reference, a wrong offset and a wrong pattern."""
    net = net_of([np.eye(2), [[1.0, 1.0]]], [[0.0, 0.0], [0.0]], ["relu", None])
    moved = net_of([np.eye(2), [[1.0, 1.0]]], [[1e-6, 0.0], [0.0]], ["relu", None])
    assert [d.split(":")[0] for d in compare(net, BOX, exact=exact_regions(moved, BOX))] == ["measure"]
    blind = net_of([np.eye(2), [[1.0, 0.0]]], [[0.0, 0.0], [0.0]], ["relu", None])
    kinds = {d.split(":")[0] for d in compare(net, BOX, exact=exact_regions(blind, BOX))}
    assert kinds == {"locus", "linear"}
    other = net_of([np.eye(2), [[0.0, 1.0]]], [[0.0, 0.0], [0.0]], ["relu", None])
    assert [d.split(":")[0] for d in compare(blind, BOX, exact=exact_regions(other, BOX))] == ["locus-neuron"]
    real = rg.activation_regions

    def tampered(what):
        def run(n, domain):
            rm = real(n, domain)
            if what == "offsets":
                rm.__dict__["_affine_maps"] = (rm.jacobians, rm.offsets + 1e-6)
            else:
                rm.patterns = rm.patterns.copy()
                rm.patterns[0, 0] = 1 - rm.patterns[0, 0]
            return rm

        return run

    monkeypatch.setattr(rg, "activation_regions", tampered("offsets"))
    assert [d.split(":")[0] for d in compare(net, BOX)] == ["affine"]
    monkeypatch.setattr(rg, "activation_regions", tampered("patterns"))
    assert {d.split(":")[0] for d in compare(net, BOX)} >= {"patterns", "locate"}


# ------------------------------------------------------- reproducers ----
def net_a_1d():
    """Output weights 1e6 and 1e-6: a real slope jump 0 -> 1e-6 at x = -0.5."""
    return net_of([[[1.0], [1.0]], [[1e6, 1e-6]]], [[-0.5, 0.5], [0.0]], ["relu", None])


def net_a_2d():
    return net_of([np.eye(2), [[1e6, 1e-6]]], [[0.0, 0.0], [0.0]], ["relu", None])


def net_b():
    """Neuron 1 is exactly -1 on [-1, 0], far from its breakpoint."""
    return net_of([[[1e11]], [[1.0]], [[1.0]]], [[0.0], [-1.0], [0.0]], ["relu", "relu", None])


def net_depth(seed=5, homogeneous=False):
    """Four ReLU layers of width 4, integer weights times 1e4 in every layer;
    biases times 1e4 once (or 1e4**k in layer k: the same regions as unscaled)."""
    rng = np.random.default_rng(seed)
    ws, bs, d = [], [], 2
    for k in range(1, 5):
        ws.append(rng.integers(-2, 3, size=(4, d)) * 1e4)
        bs.append(rng.integers(-2, 3, size=4) * 1e4 ** (k if homogeneous else 1))
        d = 4
    ws.append(rng.integers(-2, 3, size=(1, d)).astype(float))
    bs.append(np.zeros(1))
    return net_of(ws, bs, ["relu"] * 4 + [None])


def net_neuron_scales(seed=1):
    """2 -> 6 -> 11 -> 6 -> 1 ReLU, Gaussian, each neuron's row and bias times 10^U(-4, 4)."""
    rng = np.random.default_rng(seed)
    ws, bs, d = [], [], 2
    for w in (6, 11, 6):
        s = 10.0 ** rng.uniform(-4, 4, size=w)
        ws.append(rng.normal(size=(w, d)) * s[:, None])
        bs.append(rng.normal(size=w) * 0.5 * s)
        d = w
    ws.append(rng.normal(size=(1, d)))
    bs.append(np.zeros(1))
    return net_of(ws, bs, ["relu"] * 3 + [None])


def net_hardtanh_1d(seed=2):
    """1 -> 3 -> 3 -> 3 -> 1 Hardtanh, integer weights times 1e4, integer biases."""
    rng = np.random.default_rng(seed)
    ws, bs, d = [], [], 1
    for w in (3, 3, 3):
        ws.append(rng.integers(-3, 4, size=(w, d)) * 1e4)
        bs.append(rng.integers(-3, 4, size=w) * 1.0)
        d = w
    ws.append(rng.integers(-3, 4, size=(1, d)) * 1.0)
    bs.append(np.zeros(1))
    return net_of(ws, bs, ["hardtanh"] * 3 + [None])


DEPTH_BOX = (-2.0, -1.5, 3.0, 1.5)  # area 15


def test_exact_answer_a():
    ex = exact_regions(net_a_1d(), (-1.0, 1.0))
    assert ex.patterns == [(0, 0), (0, 1), (1, 1)]
    assert ex.locus_points() == [F(-1, 2), F(1, 2)] and ex.n_linear == 3
    ex = exact_regions(net_a_2d(), BOX)
    assert len(ex.regions) == 4 and ex.locus_volume() == 4.0 and ex.n_linear == 4


def test_exact_answer_b():
    ex = exact_regions(net_b(), (-1.0, 1.0))
    assert [(r.pattern, r.cell) for r in ex.regions] == [
        ((0, 0), (-1, 0)),
        ((1, 0), (0, F(1, 10**11))),
        ((1, 1), (F(1, 10**11), 1)),
    ]
    assert ex.locus_points() == [F(1, 10**11)] and ex.n_linear == 2  # slopes 0, 0, 1e11


def test_exact_answer_scaled_cases():
    ex = exact_regions(net_depth(), DEPTH_BOX)
    assert (len(ex.regions), ex.n_linear) == (62, 44)
    assert ex.locus_volume() == pytest.approx(31.2551, abs=1e-4)
    # scaling layer k's bias by 1e4**k keeps the unscaled network's regions exactly
    hom = exact_regions(net_depth(homogeneous=True), DEPTH_BOX)
    rng = np.random.default_rng(5)
    ws, bs, d = [], [], 2
    for _ in range(4):
        ws.append(rng.integers(-2, 3, size=(4, d)).astype(float))
        bs.append(rng.integers(-2, 3, size=4).astype(float))
        d = 4
    ws.append(rng.integers(-2, 3, size=(1, d)).astype(float))
    bs.append(np.zeros(1))
    plain = exact_regions(net_of(ws, bs, ["relu"] * 4 + [None]), DEPTH_BOX)
    assert areas(hom) == areas(plain) and hom.n_linear == plain.n_linear
    ex = exact_regions(net_hardtanh_1d(), (-1.0, 1.0))
    assert (len(ex.regions), len(ex.locus_points()), ex.n_linear) == (19, 8, 9)


@pytest.mark.slow
def test_exact_answer_neuron_scales():
    ex = exact_regions(net_neuron_scales(), BOX)
    assert (len(ex.regions), ex.n_linear) == (225, 225)
    assert ex.locus_volume() == pytest.approx(52.5955, abs=1e-4)


def test_engine_a_1d():
    assert compare(net_a_1d(), (-1.0, 1.0)) == []


def test_engine_a_2d():
    assert compare(net_a_2d(), BOX) == []


def test_engine_b():
    assert compare(net_b(), (-1.0, 1.0)) == []


def test_engine_depth_compounded():
    assert compare(net_depth(), DEPTH_BOX) == []


def test_engine_depth_homogeneous():
    assert compare(net_depth(homogeneous=True), DEPTH_BOX) == []


@pytest.mark.slow
def test_engine_neuron_scales():
    assert compare(net_neuron_scales(), BOX) == []


@pytest.mark.slow
def test_engine_neuron_scales_regions():
    """The regions, patterns, measures, affine maps and located points (the
    locus and linear regions are checked by test_engine_neuron_scales)."""
    found = compare(net_neuron_scales(), BOX)
    assert [d for d in found if d.split(":")[0] not in ("locus", "locus-neuron", "linear")] == []


def test_engine_hardtanh_1d():
    assert compare(net_hardtanh_1d(), (-1.0, 1.0)) == []


# ------------------------------------------------------------- fuzzer ----
RANDOM = bool(os.environ.get("REGIONGEOM_FUZZ_EXAMPLES"))


def fuzz_settings(ci_examples):
    """Derandomised with ``ci_examples`` in CI; ``REGIONGEOM_FUZZ_EXAMPLES=N``: N random examples, shrunk."""
    return settings(
        max_examples=int(os.environ["REGIONGEOM_FUZZ_EXAMPLES"]) if RANDOM else ci_examples,
        derandomize=not RANDOM,
        database=None,
        deadline=None,
        phases=list(Phase) if RANDOM else [Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


def check(case):
    net, domain = case
    disagreements = compare(net, domain, n_points=200)
    assert not disagreements, f"{net!r} on {domain}: {disagreements}\n" + "\n".join(
        f"  W{i} = {w.tolist()}, b{i} = {b.tolist()}, {a}"
        for i, (w, b, a) in enumerate(zip(net.weights, net.biases, net.activations))
    )


@pytest.mark.slow
@fuzz_settings(250)
@given(coincidence_nets(dim=2, dyadic=True))
def test_fuzz_dyadic_coincidences_2d(case):
    check(case)


@pytest.mark.slow
@fuzz_settings(250)
@given(coincidence_nets(dim=1, dyadic=True))
def test_fuzz_dyadic_coincidences_1d(case):
    check(case)


@fuzz_settings(150)
@given(coincidence_nets(dim=2))
def test_fuzz_near_coincidences_2d(case):
    check(case)


@fuzz_settings(150)
@given(coincidence_nets(dim=1))
def test_fuzz_near_coincidences_1d(case):
    check(case)


@fuzz_settings(150)
@given(scaled_nets(dim=1))
def test_fuzz_scales_1d(case):
    check(case)


@fuzz_settings(100)
@given(scaled_nets(dim=1, gaussian=True))
def test_fuzz_gaussian_scales_1d(case):
    check(case)


@fuzz_settings(150)
@given(scaled_nets())
def test_fuzz_scales(case):
    check(case)


@pytest.mark.slow
@fuzz_settings(150)
@given(gaussian_nets())
def test_fuzz_gaussian(case):
    check(case)


@fuzz_settings(100)
@given(scaled_nets(gaussian=True))
def test_fuzz_gaussian_scales(case):
    check(case)
