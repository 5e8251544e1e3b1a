"""The 1D kernels' four-lane row maxima and the last layer's cut without values.

``_rowmax`` replaces chains of ``m = max(m, x)`` from ``m = 0.0`` (which do
not vectorise): it must give the same bits in every case (a NaN never
enters, -0.0 never replaces 0.0, infinities win). The last layer's cut
(``split_1d`` without ``values``) must give the points and pieces of the
full one.
"""

import numpy as np
import pytest

import regiongeom as rg
from regiongeom._engine import _line1d_kernels as LK
from regiongeom._engine import _line1d_products as LP
from regiongeom._engine import line1d as E


def chained(row):
    m = 0.0
    for x in row:
        m = max(m, float(x))
    return m


@pytest.mark.parametrize("rowmax", [LK._rowmax, LP._rowmax])
def test_rowmax_same_bits_as_a_chain(rowmax):
    rng = np.random.default_rng(0)
    specials = np.array([np.nan, -0.0, 0.0, np.inf, 5e-324, 1e308, 3.0, 3.0])
    for n in (0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 256, 257):
        for _ in range(20):
            row = rng.random(n) * 10.0 ** rng.integers(-300, 300)
            k = rng.integers(0, n + 1)
            row[rng.choice(n, size=k, replace=True) if n else []] = rng.choice(specials, size=k)
            a = np.stack([np.full(n, np.nan), row, -row])  # other rows ignored
            got = rowmax(a, 1)
            want = chained(row)
            assert np.float64(got).tobytes() == np.float64(want).tobytes(), (row, got, want)
    # all-zero and negative rows: +0.0, as from the chain
    assert np.float64(rowmax(np.array([[-0.0, -1.0, -0.0, -2.0, -0.0]]), 0)).tobytes() == np.float64(0.0).tobytes()
    assert rowmax(np.array([[np.nan] * 6]), 0) == 0.0


def test_last_cut_without_values_same_points():
    rng = np.random.default_rng(1)
    ws = [rng.normal(size=(9, 1)), rng.normal(size=(7, 9)), rng.normal(size=(1, 7))]
    bs = [rng.normal(size=9), rng.normal(size=7), rng.normal(size=1)]
    net = rg.Network.from_arrays(ws, bs, ["relu", "relu", None])
    seen = []
    orig = LK.split_1d

    def spy(*args):
        out = orig(*args)
        if len(args) > 24 and not args[24]:  # the last layer's cut: redo it with the values
            full = orig(*args[:24], True)
            for i in (0, 1, 2, 3, 4, 5, 6, 7, 8):
                np.testing.assert_array_equal(out[i], full[i])
            # (nothing reads the last layer's changed neurons: none are listed)
            assert not out[12].any() and out[13].size == 0 and full[12][-1] > 0
            assert out[9].shape[0] == out[10].shape[0] == out[11].shape[0] == 0
            seen.append(full[7].size)
        return out

    LK.split_1d = spy
    try:
        rm = rg.activation_regions(net, (-4.0, 4.0))
    finally:
        LK.split_1d = orig
    assert len(seen) == 1 and seen[0] > 0
    x = np.linspace(-3.9, 3.9, 2001)
    idx = rm.locate(x)
    np.testing.assert_array_equal(rm.patterns[idx], net.patterns(x)[:, : rm.patterns.shape[1]])
