"""Tests of the region engine: rg.activation_regions and RegionMap.

Invariants (tiling, distinct patterns, affine on each region, edge structure,
1D slices of 2D maps), exact answers (sawtooth, standard networks) and
agreement with the slow shapely reference in ``reference.py``.
"""

import numpy as np
import pytest
import shapely
from common import (
    ACT_IDS,
    ACTIVATIONS,
    BOX,
    CONVEX,
    DOMAINS_2D,
    INTERVAL,
    NONCONVEX,
    check_convex_ccw,
    check_edges,
    check_patterns_and_affine,
    check_tiling,
    compare_with_reference,
    random_net,
    scale_of,
    small_net,
    standard,
)
from hypothesis import given
from hypothesis import strategies as st
from shapely.geometry import Polygon, box

import regiongeom as rg

SEEDS = [0, 1, 2]


def domain_params():
    return [
        pytest.param("box", id="box"),
        pytest.param("convex", id="convex"),
        pytest.param("nonconvex", id="nonconvex"),
    ]


# ----------------------------------------------------------------- tiling ----
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("act", ACT_IDS)
def test_tiling_1d(act, seed):
    rm = rg.activation_regions(small_net(act, seed, n_in=1), INTERVAL)
    assert rm.dim == 1
    check_tiling(rm, INTERVAL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("act", ["relu", "hardtanh", "pl3"])
@pytest.mark.parametrize("dname", domain_params())
def test_tiling_2d(dname, act, seed):
    domain = DOMAINS_2D[dname]
    rm = rg.activation_regions(small_net(act, seed), domain)
    assert rm.dim == 2
    check_tiling(rm, domain)


# --------------------------------------------------- patterns and affinity ----
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("act", ACT_IDS)
def test_patterns_and_affine_1d(act, seed):
    net = small_net(act, seed, n_in=1)
    rm = rg.activation_regions(net, INTERVAL)
    # 1D: the same pattern may come back on a later interval (e.g. abs, hardtanh)
    check_patterns_and_affine(rm, distinct=False)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("act", ACT_IDS)
@pytest.mark.parametrize("dname", domain_params())
def test_patterns_and_affine_2d(dname, act, seed):
    net = small_net(act, seed)
    rm = rg.activation_regions(net, DOMAINS_2D[dname])
    check_patterns_and_affine(rm, distinct=dname != "nonconvex")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_in", [1, 2])
def test_affine_at_random_located_points(n_in, seed):
    """Several outputs, a last layer with an activation, random points."""
    net = random_net([6, 5], n_in=n_in, n_out=3, seed=seed, activation=ACTIVATIONS[ACT_IDS[seed]],
                     last_activation=ACTIVATIONS["leaky_relu"])  # fmt: skip
    rng = np.random.default_rng(seed)
    if n_in == 1:
        domain, x = INTERVAL, rng.uniform(*INTERVAL, size=(2000, 1))
    else:
        domain, x = BOX, rng.uniform(-1, 1, size=(2000, 2))
    rm = rg.activation_regions(net, domain)
    r = rm.locate(x)
    assert np.all(r >= 0)
    np.testing.assert_array_equal(rm.patterns[r], net.patterns(x))
    y = net(x)
    pred = np.einsum("poi,pi->po", rm.jacobians[r], x) + rm.offsets[r]
    np.testing.assert_allclose(pred, y, rtol=1e-9, atol=1e-10 * scale_of(y))


def test_affine_on_nonconvex_domain_points():
    net = small_net("abs", 0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(3000, 2))
    inside = shapely.contains_xy(NONCONVEX, x[:, 0], x[:, 1])
    rm = rg.activation_regions(net, NONCONVEX)
    r = rm.locate(x)
    np.testing.assert_array_equal(r >= 0, inside)
    x, r = x[inside], r[inside]
    np.testing.assert_array_equal(rm.patterns[r], net.patterns(x))
    pred = np.einsum("poi,pi->po", rm.jacobians[r], x) + rm.offsets[r]
    np.testing.assert_allclose(pred, net(x), rtol=1e-9, atol=1e-10)


# ------------------------------------------------------------------ locate ----
def test_locate_outside_1d():
    rm = rg.activation_regions(small_net("relu", 0, n_in=1), INTERVAL)
    r = rm.locate(np.array([-2.5, -2.0, 0.3, 2.0, 2.000001, 10.0]))
    assert r[0] == -1 and r[-1] == -1 and r[-2] == -1
    assert r[1] == 0 and r[3] == len(rm) - 1 and r[2] >= 0


def test_locate_outside_2d():
    rm = rg.activation_regions(small_net("relu", 1), BOX)
    pts = np.array([[2.0, 0.0], [0.0, -1.5], [1.0 + 1e-9, 0.5], [5.0, 5.0], [0.1, 0.2]])
    r = rm.locate(pts)
    np.testing.assert_array_equal(r[:4], -1)
    assert r[4] >= 0


def test_locate_outside_nonconvex():
    rm = rg.activation_regions(small_net("relu", 1), NONCONVEX)
    pts = np.array([[-0.4, 0.0], [0.6, 0.6], [0.9, 0.0], [-0.8, 0.0]])  # hole, notch, inside, inside
    r = rm.locate(pts)
    np.testing.assert_array_equal(r[:2], -1)
    assert np.all(r[2:] >= 0)


# -------------------------------------------------- agreement with reference ----
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("act", ACT_IDS)
def test_reference_1d(act, seed):
    net = small_net(act, seed, n_in=1)
    compare_with_reference(rg.activation_regions(net, INTERVAL), INTERVAL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("act", ACT_IDS)
@pytest.mark.parametrize("dname", domain_params())
def test_reference_2d(dname, act, seed):
    domain = DOMAINS_2D[dname]
    net = small_net(act, seed)
    compare_with_reference(rg.activation_regions(net, domain), domain)


@pytest.mark.parametrize("seed", [3, 4])
def test_reference_2d_deeper_mixed(seed):
    """Every activation in one network, several outputs, last layer with activation."""
    acts = [ACTIVATIONS[a] for a in ("relu", "pl3", "abs", "hardtanh")]
    net = random_net(
        [4, 3, 3, 3], activation=acts, n_out=2, last_activation=ACTIVATIONS["leaky_relu"], seed=seed
    )
    rm = rg.activation_regions(net, CONVEX)
    compare_with_reference(rm, CONVEX)
    check_patterns_and_affine(rm)


def test_region_enclosing_a_hole():
    """relu(x - 0.8) on a box with a square hole: the left region surrounds the hole."""
    dom = Polygon(
        [(-1, -1), (1, -1), (1, 1), (-1, 1)], holes=[[(-0.2, -0.2), (0.2, -0.2), (0.2, 0.2), (-0.2, 0.2)]]
    )
    net = rg.Network.from_arrays([[[1.0, 0.0]], [[1.0]]], [[-0.8], [0.0]], ["relu", None])
    rm = rg.activation_regions(net, dom)
    assert len(rm) == 2
    left = int(np.argmin(rm.patterns[:, 0]))
    np.testing.assert_allclose(rm.measures[[left, 1 - left]], [1.8 * 2 - 0.16, 0.4], rtol=1e-12)
    assert len(rm.shapes[left].interiors) == 1
    assert (
        rm.shapes[left].symmetric_difference(box(-1, -1, 0.8, 1).difference(box(-0.2, -0.2, 0.2, 0.2))).area
        < 1e-12
    )
    assert rm.locate(np.array([[0.0, 0.0]]))[0] == -1
    compare_with_reference(rm, dom)
    check_edges(rm, dom)


# -------------------------------------------------------- edge structure ----
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("act", ACT_IDS)
def test_edges_1d(act, seed):
    net = small_net(act, seed, n_in=1)
    check_edges(rg.activation_regions(net, INTERVAL), INTERVAL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("act", ACT_IDS)
@pytest.mark.parametrize("dname", domain_params())
def test_edges_2d(dname, act, seed):
    domain = DOMAINS_2D[dname]
    net = small_net(act, seed)
    check_edges(rg.activation_regions(net, domain), domain)


def test_shared_hyperplane_edges_name_the_first_neuron():
    """Neurons 0, 2 and 4 share one hyperplane (x + y/2 = 0.125, exactly in
    float64: with 0.1, 0.2 and 0.3 neuron 4's line would be 1.7e-17 away and
    the exact map has a sliver between them, see test_exact_2d); neuron 3 is another."""
    W = np.array([[1.0, 0.5], [0.3, -1.0], [2.0, 1.0], [1.0, 1.0], [-3.0, -1.5]])
    b = np.array([-0.125, 0.2, -0.25, 0.0, 0.375])
    net = rg.Network.from_arrays([W, np.ones((1, 5))], [b, [0.0]], ["relu", None])
    rm = rg.activation_regions(net, BOX)
    check_edges(rm, BOX)
    compare_with_reference(rm, BOX)
    shared = [e for e in range(len(rm.edges)) if rm.edge_regions[e, 1] >= 0
              and np.sum(rm.patterns[rm.edge_regions[e, 0]] != rm.patterns[rm.edge_regions[e, 1]]) == 3]  # fmt: skip
    assert shared and all(rm.edge_neurons[e] == 0 for e in shared)


def test_shared_crossing_1d_names_the_first_neuron():
    """x - 0.625 and 5x - 3.125 vanish at the same point (exactly in float64:
    0.64 and 3.2 would not); the 2D engine names neuron 0."""
    W, b = np.array([[1.0], [5.0]]), np.array([-0.625, -3.125])
    net1 = rg.Network.from_arrays([W, np.ones((1, 2))], [b, np.zeros(1)], ["relu", None])
    net2 = rg.Network.from_arrays(
        [np.hstack([W, np.zeros((2, 1))]), np.ones((1, 2))], [b, np.zeros(1)], ["relu", None]
    )
    rm2 = rg.activation_regions(net2, (-1, 0, 1, 1))
    assert set(rm2.edge_neurons[rm2.edge_regions[:, 1] >= 0].tolist()) == {0}
    rm1 = rg.activation_regions(net1, (-1, 1))
    assert len(rm1) == 2
    assert rm1.edge_neurons.tolist() == [0]


def test_nearly_shared_crossing_1d_keeps_the_exact_interval():
    """x - 0.64 and 5x - 3.2 vanish at the same point only up to rounding: in float64
    the roots differ (fl(0.64) - fl(3.2) / 5 = -2.2e-17), and the exact 1D engine keeps
    the interval between them, of float length 0.0, with neuron 0 on and 1 off."""
    W, b = np.array([[1.0], [5.0]]), np.array([-0.64, -3.2])
    net1 = rg.Network.from_arrays([W, np.ones((1, 2))], [b, np.zeros(1)], ["relu", None])
    rm1 = rg.activation_regions(net1, (-1, 1))
    assert rm1.patterns.tolist() == [[0, 0], [1, 0], [1, 1]]
    assert rm1.edge_neurons.tolist() == [0, 1] and rm1.measures[1] == 0.0


def test_neuron_at_its_breakpoint_on_an_interval_1d_matches_2d():
    """On x < -1/3, z = relu(1 - 2x) + relu(-x) - relu(-3x - 1) - 2 is identically 0
    (it rounds to -2.2e-16 at the vertex x = -1/3). abs's piece at 0 is 1, as net.patterns
    and the 2D engine say."""
    W1, b1 = np.array([[-2.0], [-1.0], [-3.0]]), np.array([1.0, 0.0, -1.0])
    W2, b2 = np.array([[1.0, 1.0, -1.0]]), np.array([-2.0])
    net1 = rg.Network.from_arrays([W1, W2], [b1, b2], ["relu", "abs"])
    net2 = rg.Network.from_arrays([np.hstack([W1, np.zeros((3, 1))]), W2], [b1, b2], ["relu", "abs"])
    rm2 = rg.activation_regions(net2, (-2, 0, 2, 1))
    p2 = rm2.patterns[rm2.locate(np.array([[-1.0, 0.5]]))[0]]
    np.testing.assert_array_equal(p2, net1.patterns(np.array([-1.0]))[0])
    rm1 = rg.activation_regions(net1, (-2, 2))
    np.testing.assert_array_equal(rm1.patterns[rm1.locate(np.array([-1.0]))[0]], p2)


# ---------------------------------------------------- polygons convex, CCW ----
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("act", ACT_IDS)
@pytest.mark.parametrize("domain", [BOX, CONVEX], ids=["box", "convex"])
def test_polygons_convex_ccw(domain, act, seed):
    check_convex_ccw(rg.activation_regions(small_net(act, seed), domain), domain)


# ------------------------------------------------------ 2D restricted to a line ----
def _restrict(net, p0, d):
    """The 1-input network s -> net(p0 + s d)."""
    w0, b0 = net.weights[0], net.biases[0]
    ws = [(w0 @ d)[:, None]] + list(net.weights[1:])
    bs = [w0 @ p0 + b0] + list(net.biases[1:])
    return rg.Network.from_arrays(ws, bs, list(net.activations))


def _line_crossings(rm, p0, d):
    """Parameters s in (0, 1) where p0 + s d crosses an interior edge, with its neuron."""
    V = rm.vertices
    out = []
    for e in np.nonzero(rm.edge_regions[:, 1] >= 0)[0]:
        p, q = V[rm.edges[e]]
        A = np.column_stack([q - p, -d])
        if abs(np.linalg.det(A)) < 1e-14:
            continue
        u, s = np.linalg.solve(A, p0 - p)
        if 0 <= u <= 1 and 0 < s < 1:
            out.append((s, int(rm.edge_neurons[e])))
    out.sort()
    return np.array([s for s, _ in out]), np.array([j for _, j in out], dtype=int)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("act", ACT_IDS)
def test_line_restriction_agrees_with_1d(act, seed):
    net = random_net([6, 5, 4], n_in=2, activation=ACTIVATIONS[act], seed=10 + seed)
    rm2 = rg.activation_regions(net, BOX)
    rng = np.random.default_rng(seed)
    for _ in range(20):  # a line from the left side to the right side, away from vertices
        y0, y1 = rng.uniform(-0.9, 0.9, size=2)
        p0, d = np.array([-1.0, y0]), np.array([2.0, y1 - y0])
        n = np.array([-d[1], d[0]]) / np.hypot(*d)
        if np.min(np.abs((rm2.vertices - p0) @ n)) > 1e-6:
            break
    else:
        pytest.fail("no line avoids the vertices")
    s2, neu2 = _line_crossings(rm2, p0, d)
    rm1 = rg.activation_regions(_restrict(net, p0, d), (0.0, 1.0))
    s1 = rm1.vertices[1:-1]
    assert len(rm1) == len(s2) + 1
    np.testing.assert_allclose(s1, s2, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(rm1.edge_neurons, neu2)
    # the patterns along the line are those of the 2D regions it crosses
    mids = rm1.interior_points()[:, 0]
    r2 = rm2.locate(p0 + mids[:, None] * d)
    np.testing.assert_array_equal(rm1.patterns, rm2.patterns[r2])
    np.testing.assert_allclose(rm1.jacobians[:, :, 0], np.einsum("roi,i->ro", rm2.jacobians[r2], d),
                               rtol=1e-9, atol=1e-12)  # fmt: skip


# ------------------------------------------------------ exact answers ----
@pytest.mark.parametrize("k", range(1, 9))
def test_sawtooth_has_2_to_the_k_pieces(k):
    net = rg.sawtooth(k)
    rm = rg.activation_regions(net, (0.0, 1.0))
    assert len(rm) == 2**k
    n = 2**k
    np.testing.assert_allclose(rm.intervals[:, 0], np.arange(n) / n, atol=1e-12)
    np.testing.assert_allclose(rm.intervals[:, 1], np.arange(1, n + 1) / n, atol=1e-12)
    np.testing.assert_allclose(rm.jacobians[:, 0, 0], n * (-1.0) ** np.arange(n), rtol=1e-12)
    np.testing.assert_allclose(net(np.arange(n + 1) / n)[:, 0], np.arange(n + 1) % 2, atol=1e-12)


def test_one_neuron_box():
    """relu(x - 0.25) on the unit box: two rectangles, exact areas and one edge."""
    net = rg.Network.from_arrays([[[1.0, 0.0]], [[1.0]]], [[-0.25], [0.0]], ["relu", None])
    rm = rg.activation_regions(net, (0, 0, 1, 1))
    assert len(rm) == 2
    order = np.argsort(rm.patterns[:, 0])
    np.testing.assert_array_equal(rm.patterns[order, 0], [0, 1])
    np.testing.assert_allclose(rm.measures[order], [0.25, 0.75], rtol=1e-15)
    inner = np.nonzero(rm.edge_regions[:, 1] >= 0)[0]
    assert inner.size == 1 and rm.edge_neurons[inner[0]] == 0
    np.testing.assert_allclose(rm.vertices[rm.edges[inner[0]], 0], 0.25)


@pytest.mark.parametrize("factor", [1e-6, 1e-3, 1e3, 1e6])
def test_scale_invariance(factor):
    """Scaling a ReLU layer's weights and biases by c > 0 (and the next layer's
    weights by 1/c) changes neither the function nor any decision."""
    net = random_net([6, 5], seed=7)
    base = rg.activation_regions(net, BOX)
    ws, bs = list(net.weights), list(net.biases)
    ws[0], bs[0], ws[1] = ws[0] * factor, bs[0] * factor, ws[1] / factor
    scaled = rg.activation_regions(rg.Network.from_arrays(ws, bs, net.activations), BOX)
    assert len(scaled) == len(base)
    key = lambda rm: sorted(zip(map(bytes, rm.patterns), np.round(rm.measures, 10), strict=True))  # noqa: E731
    assert [p for p, _ in key(scaled)] == [p for p, _ in key(base)]
    np.testing.assert_allclose([m for _, m in key(scaled)], [m for _, m in key(base)], rtol=1e-8)


def test_hyperplanes_through_corners_and_along_sides():
    """Lines through the box's corners, along its sides and through one point."""
    W = np.array([[1.0, 1.0], [1.0, -1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 2.0]])
    b = np.array([0.0, 0.0, -1.0, 1.0, 0.0])  # x+y=0, x-y=0 (diagonals), x=1, y=-1 (sides)
    net = rg.Network.from_arrays([W, np.ones((1, 5))], [b, [0.0]], ["relu", None])
    rm = rg.activation_regions(net, BOX)
    assert len(rm) == 6  # the two diagonals and x + 2y = 0, all through the origin
    np.testing.assert_allclose(rm.measures.sum(), 4.0, rtol=1e-14)
    # on a side, the neuron is on its right piece: x = 1 (x - 1 >= 0 only on the side) -> 0
    assert np.all(rm.patterns[:, 2] == 0) and np.all(rm.patterns[:, 3] == 1)
    check_edges(rm, BOX)
    compare_with_reference(rm, BOX)


# hypothesis: arrangements of lines with small integer coefficients on a box, so
# that many lines meet in one point, pass through corners or coincide
_coef = st.integers(-2, 2)
_line = st.tuples(_coef, _coef, _coef).filter(lambda t: t[0] != 0 or t[1] != 0)


@given(
    lines=st.lists(_line, min_size=1, max_size=7),
    second=st.lists(st.tuples(st.lists(_coef, min_size=7, max_size=7), _coef), max_size=3),
)
def test_degenerate_arrangements_match_reference(lines, second):
    ws = [np.array([[a, c] for a, c, _ in lines], float)]
    bs = [np.array([e for _, _, e in lines], float)]
    acts = ["relu"]
    if second:  # a second layer (abs) with small integer weights: bent lines
        ws.append(np.array([w[: len(lines)] for w, _ in second], float))
        bs.append(np.array([e for _, e in second], float))
        acts.append("abs")
    ws.append(np.ones((1, ws[-1].shape[0])))
    bs.append(np.zeros(1))
    acts.append(None)
    net = rg.Network.from_arrays(ws, bs, acts)
    dom = (-2.0, -2.0, 2.0, 2.0)
    rm = rg.activation_regions(net, dom)
    compare_with_reference(rm, dom)
    check_patterns_and_affine(rm)
    check_edges(rm, dom)


# ------------------------------------------------------ standard networks ----
@pytest.mark.parametrize("name", ["S", "M", "D1"])
def test_standard_network_counts(name):
    net, domain, count = standard(name)
    rm = rg.activation_regions(net, domain)
    assert len(rm) == count
    dom_measure = (
        domain[1] - domain[0] if len(domain) == 2 else (domain[2] - domain[0]) * (domain[3] - domain[1])
    )
    assert rm.measures.sum() == pytest.approx(dom_measure, rel=1e-10)
    assert np.all(rm.measures > 0)
    if name in ("S", "D1"):
        check_patterns_and_affine(rm, distinct=name == "S")


def test_standard_network_L():
    net, domain, count = standard("L")
    rm = rg.activation_regions(net, domain)
    assert len(rm) == count
    assert rm.measures.sum() == pytest.approx(16.0, rel=1e-10)
    assert rm.measures.min() == pytest.approx(5.7e-15, rel=0.05)


# ------------------------------------------------------ input checking ----
def test_bad_domains_raise():
    net2, net1 = small_net("relu", 0), small_net("relu", 0, n_in=1)
    for bad in [(1.0, 0.0), (0, 0, 1), (0, 1, 1, 0)]:
        with pytest.raises(ValueError):
            rg.activation_regions(net2 if len(bad) != 2 else net1, bad)
    with pytest.raises(ValueError):
        rg.activation_regions(net1, BOX)
    with pytest.raises(ValueError):
        rg.activation_regions(net1, CONVEX)
    with pytest.raises(ValueError):  # a self-intersecting polygon
        rg.activation_regions(net2, Polygon([(0, 0), (1, 1), (1, 0), (0, 1)]))
    with pytest.raises(TypeError):
        rg.activation_regions("net", BOX)


def test_region_limit():
    net = small_net("relu", 2)
    with pytest.raises(rg.RegionLimitError):
        rg.activation_regions(net, BOX, max_regions=3)
    assert len(rg.activation_regions(net, BOX, max_regions=10_000)) > 3
