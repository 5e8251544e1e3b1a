"""The 1D engine's crossings' product shared with its helper thread on a
layer with few old points (the first layer: two end points, every crossing
computed directly); ``gemm_add``, the products' BLAS call that adds into the
constant row (``beta = 1``); ``core._take_rows`` into a column slice."""

import numba
import numpy as np
import pytest
from common import ACT_IDS, ACTIVATIONS, random_net

import regiongeom as rg
from regiongeom._engine import _line1d_products as P
from regiongeom._engine import core as C
from regiongeom._engine import line1d as E


@numba.njit
def _gemm_add_compiled(a, b, c):
    P.gemm_add(a, b, c)


@pytest.mark.parametrize("shape", [(5, 7, 3), (1, 1, 1), (128, 200, 64), (4, 0, 6), (0, 3, 2), (3, 5, 0)])
def test_gemm_add_is_c_plus_the_product(shape):
    m, k, n = shape
    rng = np.random.default_rng(sum(shape))
    a, b, c = rng.normal(size=(m, k)), rng.normal(size=(k, n)), rng.normal(size=(m, n))
    want = c + a @ b
    for f in (_gemm_add_compiled, P.gemm_add):
        got = c.copy()
        f(a, b, got)
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13 * max(k, 1))
    # with c zero, the product itself (one rounding per value): numba's np.dot
    got = np.zeros((m, n))
    _gemm_add_compiled(a, b, got)
    np.testing.assert_array_equal(got, _dot_compiled(a, b) if m and n and k else np.zeros((m, n)))


@numba.njit
def _dot_compiled(a, b):
    return np.dot(a, b)


def _fresh_helper(monkeypatch):
    monkeypatch.setattr(E, "_pool_state", {"pool": None})
    monkeypatch.delenv("REGIONGEOM_NUM_THREADS", raising=False)
    monkeypatch.setattr(E.os, "cpu_count", lambda: 2)


@pytest.mark.parametrize("act_id", ACT_IDS)
def test_first_layer_crossings_shared_same_bits(act_id, monkeypatch):
    """The first layer has two old points and many crossings, each computed
    directly: the helper takes part in that product when it is large
    (``_PAR_MIN`` between the two sizes here), with the same bits."""
    net = random_net([40, 40], n_in=1, activation=ACTIVATIONS[act_id], seed=8, scale=3.0)
    dom = (-6.0, 6.0)
    monkeypatch.setattr(E, "_BLOCK", 4)
    monkeypatch.setattr(E, "_PAR_MIN", 1 << 62)
    one = rg.activation_regions(net, dom)
    # above the old points' product (2 x 40 x 40) and below the crossings' one
    monkeypatch.setattr(E, "_PAR_MIN", 2 * 40 * 40 + 1)
    _fresh_helper(monkeypatch)
    shared = []
    real = E._Product.__init__

    def spy(self, *args):
        real(self, *args)
        shared.append((args[4].size, args[-2]))  # (rows, shared)

    monkeypatch.setattr(E._Product, "__init__", spy)
    two = rg.activation_regions(net, dom)
    assert E._pool_state["pool"] is not None
    E._pool_state["pool"].shutdown()
    assert shared and shared[0][0] > 20 and shared[0][1]  # the first layer's crossings, shared
    for f in ("vertices", "patterns", "edge_neurons", "measures"):
        assert np.asarray(getattr(one, f)).tobytes() == np.asarray(getattr(two, f)).tobytes(), f


def test_take_rows_into_a_column_slice():
    rng = np.random.default_rng(1)
    src = rng.integers(0, 3, (9, 4)).astype(np.int8)
    idx = rng.integers(0, 9, 6)
    pat = np.full((6, 10), -1, np.int8)
    C._take_rows(src, idx, pat[:, 3:7])
    np.testing.assert_array_equal(pat[:, 3:7], src[idx])
    assert np.all(pat[:, :3] == -1) and np.all(pat[:, 7:] == -1)


def test_gemm_add_refuses_a_strided_output():
    if numba.config.DISABLE_JIT:
        pytest.skip("the layout check is made when the call compiles")
    a, b = np.ones((2, 3)), np.ones((3, 4))
    c = np.zeros((2, 8))[:, ::2]
    with pytest.raises(Exception, match="C-contiguous"):
        _gemm_add_compiled(a, b, c)
