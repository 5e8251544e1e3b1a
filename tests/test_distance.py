"""Locus.distance against shapely and brute force."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from common import ACT_IDS, ACTIVATIONS, random_net, standard

import regiongeom as rg


def shapely_distance(loc, pts):
    return shapely.distance(shapely.points(pts), shapely.multilinestrings(loc.segments))


@pytest.mark.parametrize("act_id", ACT_IDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_distance_2d_matches_shapely(act_id, seed):
    net = random_net([6, 5], activation=ACTIVATIONS[act_id], seed=seed)
    loc = rg.nonlinear_locus(rg.activation_regions(net, (-1, -1, 1, 1)))
    gen = np.random.default_rng(seed)
    # inside, on the edge, outside and far outside the domain
    pts = np.concatenate(
        [gen.uniform(-1, 1, (300, 2)), gen.uniform(-4, 4, (200, 2)), [[1.0, 0.3], [50.0, -20.0]]]
    )
    np.testing.assert_allclose(loc.distance(pts), shapely_distance(loc, pts), rtol=1e-12, atol=1e-15)


def test_distance_is_zero_on_the_locus_and_at_segment_ends():
    net = random_net([5, 4], seed=3)
    loc = rg.nonlinear_locus(rg.activation_regions(net, (-1, -1, 1, 1)))
    mids = loc.segments.mean(axis=1)
    assert np.all(loc.distance(mids) <= 1e-15 * 4)
    assert np.all(loc.distance(loc.segments[:, 0]) == 0.0)


def test_distance_one_line():
    net = rg.Network.from_arrays([[[3.0, 4.0]], [[1.0]]], [[1.0], [0.0]], ["relu", None])
    loc = rg.nonlinear_locus(rg.activation_regions(net, (-2, -2, 2, 2)))
    pts = np.random.default_rng(0).uniform(-1, 1, (100, 2))
    # the line 3x + 4y + 1 = 0 crosses the whole box near these points
    np.testing.assert_allclose(loc.distance(pts), np.abs(pts @ [3.0, 4.0] + 1) / 5, rtol=1e-12, atol=1e-15)


def test_distance_1d():
    net = random_net([6, 5], n_in=1, activation=ACTIVATIONS["hardtanh"], seed=2)
    loc = rg.nonlinear_locus(rg.activation_regions(net, (-2, 2)))
    x = np.linspace(-3, 3, 401)
    want = np.abs(x[:, None] - loc.points[None, :]).min(axis=1)
    assert len(loc.points) > 2
    np.testing.assert_array_equal(loc.distance(x), want)


def test_empty_locus_is_infinitely_far():
    net = rg.Network.from_arrays([[[1.0, 0.0]], [[1.0]]], [[5.0], [0.0]], ["relu", None])
    loc = rg.nonlinear_locus(rg.activation_regions(net, (-1, -1, 1, 1)))
    assert len(loc) == 0 and np.all(np.isinf(loc.distance([[0.0, 0.0]])))


@pytest.mark.slow
def test_distance_on_network_m():
    net, dom, _ = standard("M")
    loc = rg.nonlinear_locus(rg.activation_regions(net, dom))
    pts = np.random.default_rng(0).uniform(-2.5, 2.5, (3000, 2))
    np.testing.assert_allclose(loc.distance(pts), shapely_distance(loc, pts), rtol=1e-12, atol=1e-15)


def test_bad_points_raise():
    net = random_net([3], seed=0)
    loc = rg.nonlinear_locus(rg.activation_regions(net, (-1, -1, 1, 1)))
    with pytest.raises(ValueError, match="shape"):
        loc.distance([[0.0, 0.0, 0.0]])
