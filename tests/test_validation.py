"""Bad input fails clearly, before any heavy work, naming the problem."""

import numpy as np
import pytest
import shapely
from common import random_net

import regiongeom as rg

NET2 = random_net([4, 4], seed=0)
NET1 = random_net([4], n_in=1, seed=0)


@pytest.mark.parametrize(
    "weights,biases,acts,match",
    [
        ([[[np.nan, 1.0]]], [[0.0]], [None], "NaN or inf"),
        ([[[np.inf, 1.0]]], [[0.0]], [None], "NaN or inf"),
        ([[[1.0, 1.0]]], [[np.nan]], [None], "NaN or inf"),
        ([[[1.0, 1.0]], [[1.0, 2.0]]], [[0.0], [0.0]], ["relu", None], "do not chain"),
        ([[[1.0, 1.0]]], [[0.0, 1.0]], [None], "biases\\[0\\] has 2 entries"),
        ([[[1.0, 1.0]]], [[0.0]], ["softplus"], "unsupported activation 'softplus'"),
        ([[[1.0, 1.0]]], [[0.0]], [], "one entry per layer"),
        ([], [], [], "at least one layer"),
        ([[1.0, 1.0]], [[0.0]], [None], "2D array"),
        ([[["a", "b"]]], [[0.0]], [None], "numeric"),
    ],
)
def test_bad_networks(weights, biases, acts, match):
    with pytest.raises((ValueError, TypeError), match=match):
        rg.Network.from_arrays(weights, biases, acts)


@pytest.mark.parametrize(
    "net,domain,match",
    [
        (NET2, (0.0, 1.0), "2-input network needs a box"),
        (NET1, (0.0, 0.0, 1.0, 1.0), "1-input network needs an interval"),
        (NET1, (1.0, 0.0), "lo < hi"),
        (NET1, (1.0, 1.0), "lo < hi"),
        (NET2, (0.0, 0.0, 0.0, 1.0), "xmin < xmax"),
        (NET2, (0.0, 1.0, 1.0, 0.0), "ymin < ymax"),
        (NET2, (0.0, np.nan, 1.0, 1.0), "NaN or inf"),
        (NET2, (0.0, 0.0, np.inf, 1.0), "NaN or inf"),
        (NET2, shapely.Point(0, 0), "non-empty Polygon"),
        (NET2, shapely.Polygon(), "non-empty Polygon"),
        (NET2, shapely.LineString([(0, 0), (1, 1)]), "non-empty Polygon"),
        (NET2, shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)]), "invalid"),
        (NET1, shapely.box(0, 0, 1, 1), "2-input network"),
        (random_net([3], n_in=3, seed=0), (0, 0, 1, 1), "1 or 2 inputs"),
        (NET2, "box", "numeric"),
    ],
)
def test_bad_domains(net, domain, match):
    with pytest.raises((ValueError, TypeError), match=match):
        rg.activation_regions(net, domain)


def test_not_a_network():
    with pytest.raises(TypeError, match="rg.Network"):
        rg.activation_regions("net", (0, 1))


def test_max_regions_guard():
    net = random_net([32, 32], seed=0)
    with pytest.raises(rg.RegionLimitError, match="max_regions=50"):
        rg.activation_regions(net, (-1, -1, 1, 1), max_regions=50)
    with pytest.raises(rg.RegionLimitError, match="max_regions=10"):
        rg.activation_regions(random_net([64, 64], n_in=1, seed=0), (-5, 5), max_regions=10)
    for bad in (0, -3, 2.5, "many"):
        with pytest.raises(ValueError, match="max_regions"):
            rg.activation_regions(net, (-1, -1, 1, 1), max_regions=bad)


def test_bad_points():
    with pytest.raises(ValueError, match=r"shape \(P, 2\)"):
        NET2(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN or inf"):
        NET2(np.array([[0.0, np.nan]]))
    rm = rg.activation_regions(NET2, (-1, -1, 1, 1))
    with pytest.raises(ValueError, match=r"shape \(P, 2\)"):
        rm.locate(np.zeros((2, 1)))
    # 1D accepts flat arrays
    assert NET1(np.array([0.0, 1.0])).shape == (2, 1)


def test_bad_activation_specs():
    with pytest.raises(ValueError, match="strictly increase"):
        rg.Activation("x", [1.0, 0.0], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="need 3 slopes"):
        rg.Activation("x", [0.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="neighbouring slopes must differ"):
        rg.Activation("x", [0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="min_val < max_val"):
        rg.Activation.hardtanh(1.0, -1.0)


def test_torch_unsupported_module_named():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    model = nn.Sequential(nn.Linear(2, 4), nn.Sequential(nn.ReLU(), nn.Linear(4, 3), nn.Sigmoid()))
    with pytest.raises(TypeError, match=r"Sigmoid at position '1.2'"):
        rg.from_torch(model)
