"""The 1D engine's products write the old points' rows in point order
(``line1d._INORDER``: old point ``c`` gets row ``c`` of the next layer, so
the matrix product writes in place): the results must be those of the rows
kept where they were, bit for bit, and with the helper thread forced on.
Also the new kernel ``cut_counts`` against numpy."""

import numpy as np
import pytest
from common import ACT_IDS, ACTIVATIONS, random_net

import regiongeom as rg
from regiongeom._engine import _line1d_kernels as LK
from regiongeom._engine import line1d as E

_FIELDS = ("vertices", "edges", "edge_regions", "edge_neurons", "edge_breakpoints", "patterns", "measures")


def _run(net, dom, inorder, forced):
    saved = E._INORDER, E._PAR_MIN, E._FILL_PAR_MIN, E._BLOCK
    E._INORDER = inorder
    if forced:  # every shared path, small blocks
        E._PAR_MIN, E._FILL_PAR_MIN, E._BLOCK = 0, 0, 8
    try:
        E.STATS.reset()
        sub = rg.activation_regions(net, dom)
        return sub, E.STATS.snapshot()
    finally:
        E._INORDER, E._PAR_MIN, E._FILL_PAR_MIN, E._BLOCK = saved


@pytest.mark.parametrize("act_id", ACT_IDS)
@pytest.mark.parametrize("forced", [False, True])
def test_rows_in_point_order_same_bits(act_id, forced):
    act = ACTIVATIONS[act_id]
    nets = [
        (random_net([24, 20, 16], n_in=1, activation=act, seed=5), (-3.0, 3.0)),
        (random_net([12, 10], n_in=1, activation=[act, None], seed=6, scale=2.0), (-4.0, 1.0)),
    ]
    for net, dom in nets:
        a, sa = _run(net, dom, True, forced)
        b, sb = _run(net, dom, False, forced)
        assert sa == sb
        for f in _FIELDS:
            x, y = np.asarray(getattr(a, f)), np.asarray(getattr(b, f))
            assert x.dtype == y.dtype and x.shape == y.shape, f
            assert x.tobytes() == y.tobytes(), f
        assert len(a) > 3


def test_cut_counts():
    rng = np.random.default_rng(2)
    for V, nc in ((2, 0), (2, 5), (9, 0), (40, 30)):
        cstart = np.concatenate([[0], np.sort(rng.integers(0, nc + 1, V - 2)), [nc]]).astype(np.int64)
        cda = rng.random(nc) * 0.2
        keep = rng.random(nc) < 0.7
        mx, ncut, nk = LK.cut_counts(cstart, cda, keep)
        assert mx == (cda.max() if nc else 0.0)
        assert ncut == np.count_nonzero(cstart[1:] > cstart[:-1])
        assert nk == np.count_nonzero(keep)
    cda = np.array([0.01, np.nan, 0.5])
    assert np.isnan(LK.cut_counts(np.array([0, 3], np.int64), cda, np.ones(3, np.bool_))[0])
