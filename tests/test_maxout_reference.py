"""The exact reference for max units (tests/maxout_reference.py) checked on
its own: against the ReLU reference through max(z, 0), against exact forward
passes at interior points, and on hand-made cases."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from exact_reference import exact_regions
from maxout_reference import exact_max_forward, exact_max_regions, maxout_windows

import regiongeom as rg


def _relu_as_maxout(seed, n_in, widths):
    """A ReLU network and the same network with every ReLU written max(z, 0):
    each unit's second input has a zero row and a zero bias."""
    rng = np.random.default_rng(seed)
    ws, bs, spec = [], [], []
    prev = n_in
    for n in widths:
        W, b = rng.normal(size=(n, prev)), rng.normal(size=n) * 0.5
        ws.append(W)
        bs.append(b)
        W2 = np.zeros((2 * n, prev))
        W2[0::2] = W
        b2 = np.zeros(2 * n)
        b2[0::2] = b
        spec.append(("max", W2, b2, maxout_windows(n, 2)))
        prev = n
    Wo, bo = rng.normal(size=(1, prev)), rng.normal(size=1)
    spec.append(("affine", Wo, bo))
    net = rg.Network.from_arrays(ws + [Wo], bs + [bo], ["relu"] * len(widths) + [None])
    return net, spec


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dim", [1, 2])
def test_max_with_zero_is_relu(seed, dim):
    net, spec = _relu_as_maxout(seed, dim, [3, 3])
    domain = (-2.0, 2.0) if dim == 1 else (-2.0, -2.0, 2.0, 2.0)
    relu, mx = exact_regions(net, domain), exact_max_regions(spec, domain)
    # max(z, 0): position 0 (z) wins where z >= 0, where the ReLU's piece is 1
    a = sorted((tuple(r.pattern), r.measure) for r in relu.regions)
    b = sorted((tuple(1 - p for p in r.pattern), r.measure) for r in mx.regions)
    assert a == b
    assert relu.n_linear == mx.n_linear
    assert sum(e.locus for e in relu.edges) == sum(e.locus for e in mx.edges)


def _random_max_spec(seed, dim, k=3):
    rng = np.random.default_rng(seed)
    spec = [
        (
            "max",
            rng.integers(-2, 3, size=(3 * k, dim)),
            rng.integers(-2, 3, size=3 * k) / 2,
            maxout_windows(3, k),
        ),
        # overlapping windows with a repeated index, as a max pool with stride < kernel
        ("max", rng.normal(size=(4, 3)), rng.normal(size=4), np.array([[0, 1, 2], [1, 2, 3], [3, 3, 0]])),
        ("units", rng.normal(size=(2, 3)), rng.normal(size=2), [0.0], [0.1, 1.0], [0.0, 0.0]),
        ("affine", rng.normal(size=(2, 2)), rng.normal(size=2)),
    ]
    return spec


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dim", [1, 2])
def test_cells_agree_with_forward_passes(seed, dim):
    spec = _random_max_spec(seed, dim)
    domain = (-3.0, 3.0) if dim == 1 else (-3.0, -3.0, 3.0, 3.0)
    ex = exact_max_regions(spec, domain)
    assert len(ex.regions) > 3
    for r in ex.regions:
        out, pat = exact_max_forward(spec, r.interior_point())
        assert pat == r.pattern
        x = r.interior_point()
        affine = [
            sum(j * v for j, v in zip(row, x, strict=True)) + c
            for row, c in zip(r.jacobian, r.offset, strict=True)
        ]
        assert out == affine
    # the last window [3, 3, 0] repeats input 3: its position 1 never wins
    assert not any(r.pattern[5] == 1 for r in ex.regions)


def test_three_planes_meet_at_the_origin():
    """max(x, y, -x - y) on [-1, 1]^2: three cells meeting at 0, three locus edges."""
    spec = [
        ("max", [[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], [0.0, 0.0, 0.0], [[0, 1, 2]]),
        ("affine", [[1.0]], [0.0]),
    ]
    ex = exact_max_regions(spec, (-1.0, -1.0, 1.0, 1.0))
    assert sorted(r.pattern for r in ex.regions) == [(0,), (1,), (2,)]
    assert len(ex.edges) == 3 and all(e.locus for e in ex.edges)
    # the cell of x: x >= y and 2x + y >= 0 inside the box; by symmetry x <-> y the first two agree
    areas = {r.pattern[0]: r.measure for r in ex.regions}
    assert areas[0] == areas[1] and sum(areas.values()) == 4


def test_identical_inputs_go_to_the_lowest_position():
    spec = [
        ("max", [[1.0, 2.0], [1.0, 2.0], [0.0, 0.0]], [0.5, 0.5, 0.0], [[1, 0, 2]]),
        ("affine", [[1.0]], [0.0]),
    ]
    ex = exact_max_regions(spec, (-1.0, -1.0, 1.0, 1.0))
    assert sorted(r.pattern for r in ex.regions) == [(0,), (2,)]  # input 0 (position 1) never wins
    _, pat = exact_max_forward(spec, (Fraction(1), Fraction(1)))
    assert pat == (0,)
