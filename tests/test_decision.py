"""The decision boundary against forward passes only: across every drawn
segment the argmax changes, and wherever the argmax of neighbouring grid
points differs a drawn segment lies between them."""

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon

import regiongeom as rg
from regiongeom.examples import random_network

BOX = (-1.0, -1.0, 1.0, 1.0)
ELL = Polygon([(-1, -1), (1, -1), (1, 0), (0, 0), (0, 1), (-1, 1)])


def classifier(n_out, seed):
    """A random 2 -> 8 -> 8 -> n_out ReLU net with small output biases, so that several
    classes share the box (unit-size output biases let one class win everywhere)."""
    net = random_network([8, 8], n_out=n_out, rng=seed, scale=2.0)
    small = np.random.default_rng(seed + 100).normal(size=n_out) * 0.05
    return net.with_biases([*net.biases[:-1], small])


def check_segments_separate_classes(net, segs, diameter):
    assert len(segs)
    mid = segs.mean(axis=1)
    d = segs[:, 1] - segs[:, 0]
    assert np.all(np.linalg.norm(d, axis=1) > 0)
    normal = np.column_stack([-d[:, 1], d[:, 0]]) / np.linalg.norm(d, axis=1)[:, None]
    delta = 1e-7 * diameter
    left = net(mid + delta * normal).argmax(axis=1)
    right = net(mid - delta * normal).argmax(axis=1)
    assert np.all(left != right)
    # at the midpoint the top two logits tie
    top2 = np.sort(net(mid), axis=1)[:, -2:]
    scale = np.abs(net(mid)).max()
    np.testing.assert_allclose(top2[:, 0], top2[:, 1], rtol=0, atol=1e-9 * scale)


def check_grid_changes_cross_segments(net, segs, domain, n=60):
    x0, y0, x1, y1 = domain.bounds
    xs, ys = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    cls = net(np.column_stack([xs.ravel(), ys.ravel()])).argmax(axis=1).reshape(n, n)
    boundary = shapely.multilinestrings(segs)
    pairs = []
    for a, b in (((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
                 ((slice(1, None), slice(None)), (slice(None, -1), slice(None)))):  # fmt: skip
        changed = cls[a] != cls[b]
        pa = np.column_stack([xs[a][changed], ys[a][changed]])
        pb = np.column_stack([xs[b][changed], ys[b][changed]])
        pairs.append(np.stack([pa, pb], axis=1))
    pairs = np.concatenate(pairs)
    lines = shapely.linestrings(pairs)
    inside = shapely.covered_by(lines, domain)  # only steps that stay in the domain
    assert inside.sum() > 10
    # a step along the domain's edge may cross where a segment ends on it: rounding-size gaps allowed
    assert np.all(shapely.distance(lines[inside], boundary) <= 1e-12)


@pytest.mark.parametrize("seed,n_out", [(0, 2), (1, 3), (2, 5)])
def test_decision_boundary_box(seed, n_out):
    net = classifier(n_out, seed)
    rm = rg.activation_regions(net, BOX)
    segs = rg.decision_boundary(rm)
    assert segs.ndim == 3 and segs.shape[1:] == (2, 2)
    check_segments_separate_classes(net, segs, 2.0)
    check_grid_changes_cross_segments(net, segs, shapely.box(*BOX))
    # every segment lies in the domain
    assert np.all(np.abs(segs) <= 1.0 + 1e-12)


def test_decision_boundary_skips_regions_where_the_logits_are_constant():
    # zero output biases: where every unit is off, all logits are 0 on the whole region
    net = random_network([8, 8], n_out=3, rng=1, scale=2.0)
    net = net.with_biases([*net.biases[:-1], np.zeros(3)])
    rm = rg.activation_regions(net, BOX)
    flat = np.flatnonzero(np.abs(rm.jacobians).max(axis=(1, 2)) == 0)
    assert flat.size
    segs = rg.decision_boundary(rm)
    assert len(segs)
    # segments along a flat region's edge are ties too (every logit is 0 there); none inside it
    # (a midpoint of an edge may fall inside the float polygon by a rounding-size distance)
    union = shapely.union_all([rm.shapes[r] for r in flat])
    mids = segs.mean(axis=1)
    in_flat = shapely.contains_xy(union, *mids.T)
    assert np.all(shapely.distance(union.boundary, shapely.points(mids[in_flat])) <= 1e-12)


def test_decision_boundary_nonconvex_domain():
    net = classifier(4, 3)
    rm = rg.activation_regions(net, ELL)
    segs = rg.decision_boundary(rm)
    check_segments_separate_classes(net, segs, 2.0)
    check_grid_changes_cross_segments(net, segs, ELL)
    assert np.all(shapely.covered_by(shapely.linestrings(segs), ELL.buffer(1e-12)))


def test_decision_boundary_of_a_linear_classifier_is_its_tie_lines():
    # logits x, y, -x: classes 0|1 meet on y = x (x > 0), 1|2 on y = -x (x < 0), 0|2 on x = 0 (y < 0)
    net = rg.Network.from_arrays([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]], [[0.0, 0.0, 0.0]], [None])
    segs = rg.decision_boundary(rg.activation_regions(net, BOX))
    ends = sorted(tuple(sorted(map(tuple, np.round(s, 12)))) for s in segs)
    assert ends == [((-1.0, 1.0), (0.0, 0.0)), ((0.0, -1.0), (0.0, 0.0)), ((0.0, 0.0), (1.0, 1.0))]


def test_decision_boundary_refusals():
    rm = rg.activation_regions(random_network([4], rng=0), BOX)
    with pytest.raises(ValueError, match="at least 2 outputs"):
        rg.decision_boundary(rm)
    with pytest.raises(ValueError, match="2D region map"):
        rg.decision_boundary(rg.activation_regions(random_network([4], n_in=1, n_out=2, rng=0), (0.0, 1.0)))
    with pytest.raises(TypeError, match="RegionMap"):
        rg.decision_boundary(np.zeros((3, 2)))


def test_doctests():
    import doctest

    import regiongeom.decision as mod

    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 1 and result.failed == 0


def test_tie_lines_of_tiny_gradients_next_to_steep_logits():
    """Logits 1e6 h0 +- 1e-9 h1 (biases 0 and 1e-10): they tie on y = 0.05
    wherever h1 is on, whatever the steepness elsewhere; where h1 is off the
    two are parallel (no line), which is decided exactly."""
    net = rg.Network.from_arrays(
        [np.eye(2), [[1e6, 1e-9], [1e6, -1e-9]]], [[0.0, 0.0], [0.0, 1e-10]], ["relu", None]
    )
    rm = rg.activation_regions(net, BOX)
    segs = rg.decision_boundary(rm)
    np.testing.assert_allclose(segs[:, :, 1], 0.05, rtol=1e-12)
    assert np.sum(np.linalg.norm(segs[:, 1] - segs[:, 0], axis=1)) == pytest.approx(2.0, rel=1e-12)
    assert len(segs) == 2  # one per region with h1 on (float forward passes cannot see 1e-9 y next to 1e6 x)
