"""Regions of torch models on planes against a reference that runs the model
itself (tests/torch_slice_reference.py) and needs no conversion."""

from __future__ import annotations

import numpy as np
import pytest

import regiongeom as rg

torch = pytest.importorskip("torch")
nn = torch.nn

from torch_slice_reference import slice_regions  # noqa: E402


def _compare(model, n_in, seed):
    rng = np.random.default_rng(seed)
    plane = rg.Plane.through(*rng.normal(size=(3, n_in)))
    box = plane.bounds()
    rm = rg.activation_regions(rg.from_torch(model).restrict(plane), box)
    pats, areas = slice_regions(model, plane.lift, (n_in,), box)
    assert len(rm) == len(pats)
    assert {tuple(p) for p in rm.patterns} == {tuple(p) for p in pats}
    order_a = np.lexsort(rm.patterns.T[::-1])
    order_b = np.lexsort(pats.T[::-1])
    np.testing.assert_allclose(rm.measures[order_a], areas[order_b], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_mlp_plane_against_model_reference(seed):
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 6), nn.Hardtanh(-0.5, 0.5), nn.Linear(6, 5),
        nn.LeakyReLU(0.1), nn.Linear(5, 2),
    ).double()  # fmt: skip
    _compare(model, 6, seed)


def test_reference_sees_every_unit_module():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU6(), nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1)).double()
    rng = np.random.default_rng(0)
    plane = rg.Plane.through(*rng.normal(size=(3, 4)))
    pats, areas = slice_regions(model, plane.lift, (4,), plane.bounds())
    assert pats.shape[1] == 6
    x0, y0, x1, y1 = plane.bounds()
    assert areas.sum() == pytest.approx((x1 - x0) * (y1 - y0), rel=1e-12)
