"""Degenerate geometry and numerical robustness (issue: bad input and degenerate geometry).

Exact coincidences (duplicated hyperplanes, lines through corners and
vertices, concurrent lines, zero rows, lines along the domain's edge) must
give exact answers; checked against the slow shapely reference and the
engine's own invariants.
"""

import numpy as np
import pytest
import shapely
from common import check_invariants, compare_with_reference, random_net
from hypothesis import given
from hypothesis import strategies as st
from reference import regions_2d

import regiongeom as rg

BOX = (-2.0, -2.0, 2.0, 2.0)


def net2(W1, b1, W2=None, b2=None, act="relu"):
    W1 = np.asarray(W1, float)
    ws, bs, acts = [W1], [b1], [act]
    if W2 is not None:
        ws.append(W2)
        bs.append(b2)
        acts.append(act)
    d = ws[-1].shape[0] if W2 is not None else W1.shape[0]
    ws.append(np.ones((1, d)))
    bs.append([0.0])
    acts.append(None)
    return rg.Network.from_arrays(ws, bs, acts)


DEGENERATE = {
    "duplicated rows": net2([[1, 1], [1, 1], [1, -1]], [0.5, 0.5, 0.0]),
    "multiples": net2([[1, 2], [2, 4], [-3, -6]], [0.5, 1.0, -1.5]),
    "through a corner": net2([[1, 1], [1, -1]], [-4.0, 0.0]),  # x + y = 4 touches (2, 2)
    "through two corners": net2([[1, -1], [1, 1]], [0.0, 0.0]),  # the diagonals
    "three through a point": net2([[1, 0], [0, 1], [1, 1]], [0, 0, 0]),
    "four through a point": net2([[1, 0], [0, 1], [1, 1], [1, -1]], [0, 0, 0, 0]),
    "zero row, kink exactly at 0": net2([[0, 0], [1, 0]], [0.0, 0.3]),
    "zero rows": net2([[0, 0], [0, 0], [1, 1]], [1.0, -1.0, 0.0]),
    "dead and always on": net2([[1, 0], [1, 0]], [-10.0, 10.0]),
    "along the domain edge": net2([[1, 0], [0, 1]], [-2.0, 2.0]),
    "through existing vertices, second layer": net2(
        [[1, 0], [0, 1]], [0.0, 0.0], np.array([[1.0, -1.0], [1.0, 1.0], [2.0, -2.0]]), np.zeros(3)
    ),
    "leaky duplicates": net2([[1, 1], [1, 1]], [0.0, 0.0], act="leaky_relu"),
    "hardtanh through corners": net2([[0.5, 0.5], [1, -1]], [0.0, 0.0], act="hardtanh"),
}


@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_degenerate_exact(name):
    net = DEGENERATE[name]
    rm = rg.activation_regions(net, BOX)
    check_invariants(rm, BOX, exact=True)
    compare_with_reference(rm, BOX)
    loc = rg.nonlinear_locus(rm)
    assert np.all(loc.lengths > 0)


@pytest.mark.parametrize(
    "name, areas",
    [
        # x = 0, y = 0, x + y = 0: six sectors, the two cut by the diagonal halved
        ("three through a point", [2, 2, 2, 2, 4, 4]),
        # and x - y = 0: eight triangles of area 2
        ("four through a point", [2] * 8),
    ],
)
def test_lines_through_a_point_cut_the_box_into_sectors(name, areas):
    rm = rg.activation_regions(DEGENERATE[name], BOX)
    assert len(rm) == len(areas)
    np.testing.assert_allclose(np.sort(rm.measures), areas, rtol=1e-14)
    loc = rg.nonlinear_locus(rm)
    np.testing.assert_allclose(loc.vertices, [[0.0, 0.0]], atol=1e-15)


@pytest.mark.parametrize("scale", [1e-6, 1e-3, 1.0, 1e3, 1e6])
def test_weight_scales(scale):
    base = random_net([6, 6], seed=3)
    # scale every layer: the regions do not change (ReLU is positively homogeneous)
    scaled = rg.Network.from_arrays(
        [w * scale for w in base.weights],
        [b * scale ** (i + 1) for i, b in enumerate(base.biases)],
        base.activations,
    )
    r0 = rg.activation_regions(base, BOX)
    r1 = rg.activation_regions(scaled, BOX)
    assert len(r1) == len(r0)
    np.testing.assert_array_equal(
        r1.patterns[np.lexsort(r1.patterns.T)], r0.patterns[np.lexsort(r0.patterns.T)]
    )
    check_invariants(r1, BOX, exact=True)


@pytest.mark.parametrize("center", [(1e4, -1e4), (1e6, 1e6)])
def test_domain_far_from_origin(center):
    base = random_net([6, 6], seed=4)
    cx, cy = center
    # shift the input: h = W (x - c) + b = W x + (b - W c)
    W0 = base.weights[0]
    shifted = rg.Network.from_arrays(
        base.weights, [base.biases[0] - W0 @ np.array(center)] + list(base.biases[1:]), base.activations
    )
    r0 = rg.activation_regions(base, BOX)
    r1 = rg.activation_regions(shifted, (cx - 2, cy - 2, cx + 2, cy + 2))
    assert len(r1) == len(r0)
    np.testing.assert_allclose(np.sort(r1.measures), np.sort(r0.measures), rtol=1e-6, atol=1e-9)
    l0 = rg.nonlinear_locus(r0).volume()
    l1 = rg.nonlinear_locus(r1).volume()
    assert l1 == pytest.approx(l0, rel=1e-8)


small_ints = st.integers(min_value=-2, max_value=2)


@st.composite
def integer_networks(draw, n_in=2):
    widths = draw(st.lists(st.integers(1, 4), min_size=1, max_size=2))
    act = draw(st.sampled_from(["relu", "leaky_relu", "abs", "hardtanh"]))
    ws, bs, acts = [], [], []
    d = n_in
    for w in widths:
        ws.append(
            np.array(
                draw(st.lists(st.lists(small_ints, min_size=d, max_size=d), min_size=w, max_size=w)), float
            )
        )
        bs.append(np.array(draw(st.lists(small_ints, min_size=w, max_size=w)), float) / 2)
        acts.append(act)
        d = w
    ws.append(
        np.array(draw(st.lists(st.lists(small_ints, min_size=d, max_size=d), min_size=1, max_size=1)), float)
    )
    bs.append(np.zeros(1))
    acts.append(None)
    return rg.Network.from_arrays(ws, bs, acts)


# The property tests compare the patterns with the float forward pass only where
# it is sure (check_invariants(exact=False)): a neuron can be exactly at its
# breakpoint on a whole region, where the forward pass rounds to either side (see
# the regression below). The exact pieces are checked against the reference.
@given(integer_networks())
def test_hypothesis_integer_networks_2d(net):
    """Small-integer weights make exact coincidences likely."""
    for domain in (BOX, (-1.0, -1.0, 1.0, 1.0)):
        rm = rg.activation_regions(net, domain)
        check_invariants(rm, domain)
        compare_with_reference(rm, domain)
        loc = rg.nonlinear_locus(rm)
        assert np.all(loc.lengths > 0)


@given(integer_networks(n_in=1))
def test_hypothesis_integer_networks_1d(net):
    rm = rg.activation_regions(net, (-2.0, 2.0))
    check_invariants(rm, (-2.0, 2.0))
    compare_with_reference(rm, (-2.0, 2.0))


@given(integer_networks())
def test_hypothesis_nonconvex_domain(net):
    dom = shapely.Polygon(
        [(-2, -2), (2, -2), (2, 2), (0, 0.5), (-2, 2)], holes=[[(-1, -1.5), (-0.5, -1.5), (-0.5, -1)]]
    )
    rm = rg.activation_regions(net, dom)
    check_invariants(rm, dom)
    ref = regions_2d(net, dom)
    # regions are pieces joined across edges; shapely's reference joins pieces that
    # touch at a single point too (a pinched strip), so it may count fewer pieces
    assert len(rm) >= len(ref)
    got, exp = {}, {}
    for p, m in zip(rm.patterns.tolist(), rm.measures):
        got[tuple(p)] = got.get(tuple(p), 0.0) + m
    for p, g in ref:
        exp[tuple(int(v) for v in p)] = exp.get(tuple(int(v) for v in p), 0.0) + g.area
    assert sorted(got) == sorted(exp)
    np.testing.assert_allclose([got[k] for k in sorted(got)], [exp[k] for k in sorted(exp)], atol=1e-8)
    # pieces of one pattern never share an edge (else they would be one region)
    inner = rm.edge_regions[:, 1] >= 0
    a, b = rm.edge_regions[inner].T
    assert not np.any(np.all(rm.patterns[a] == rm.patterns[b], axis=1))


# ------------------------------------------------ found by the property tests ----
# Integer weights: on the region where the first layer's four ReLUs are all on,
# the second layer's preactivation is identically zero:
#   -2(2x - 2y) + (2x - y + 1) - 2y + (2x - y - 1/2) - 1/2 = 0 x + 0 y + 0.
# So that neuron sits exactly at its breakpoint on a region of area 7/16 in the
# box [-1, 1]^2 (the quadrilateral (1/2, 1/2), (1/4, 0), (1, 0), (1, 1)).
NEURON_AT_BREAKPOINT = rg.Network.from_arrays(
    [[[2, -2], [2, -1], [0, 2], [2, -1]], [[-2, 1, -1, 1]], [[0.0]]],
    [[0, 1, 0, -0.5], [-0.5], [0.0]],
    ["relu", "relu", None],
)
ALL_ON = shapely.Polygon([(0.5, 0.5), (0.25, 0.0), (1.0, 0.0), (1.0, 1.0)])


@pytest.mark.parametrize("domain", [(-2.0, -2.0, 2.0, 2.0), (-1.0, -1.0, 1.0, 1.0)])
def test_neuron_identically_at_its_breakpoint(domain):
    """The engine gives the exact piece: ReLU is right-continuous, so a
    preactivation that is exactly 0 on a region is on piece 1 (as the reference
    and ``net.patterns`` at an exact 0 say)."""
    net = NEURON_AT_BREAKPOINT
    rm = rg.activation_regions(net, domain)
    check_invariants(rm, domain)
    compare_with_reference(rm, domain)
    r = rm.locate(np.array([[0.75, 0.25]]))[0]
    np.testing.assert_array_equal(rm.patterns[r], [1, 1, 1, 1, 1])
    assert rm.measures[r] == pytest.approx(ALL_ON.area if domain[2] == 1.0 else 1.9375, rel=1e-14)
    np.testing.assert_array_equal(
        net.patterns(np.array([[0.5, 0.5], [0.75, 0.25]]))[:, 4], 1
    )  # z == 0 exactly
