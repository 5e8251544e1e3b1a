"""Tests of the 1D engine's fast paths: the block-sparse products, their
split over two threads, and the interpolated crossings.

The products skip, block by block, the neurons whose activation is one
constant on the whole block; these tests check them against the plain
product ``act(z) @ w.T + b`` (an independent numpy computation) and force
small blocks and the two-thread split onto the networks of the reference
tests, so that every path runs on every activation.
"""

import numba
import numpy as np
import pytest
from common import ACT_IDS, ACTIVATIONS, INTERVAL, compare_with_reference, random_net, small_net, standard

import regiongeom as rg
from regiongeom._engine import _line1d_products as K
from regiongeom._engine import line1d as E


def _act_arrays(act_id):
    a = rg.network.as_activation(ACTIVATIONS[act_id])
    return tuple(np.array(v, np.float64) for v in (a.breakpoints, a.slopes, a.intercepts)), a


def _product(Z, Zerr, rows, off, arrays, wt, b, out, errout, B, G=1e-14):
    """The block product with its bounds; ReLU takes its one-pass path (an exact activation)."""
    lip = float(np.abs(arrays[1]).max())
    exact = np.all(arrays[2] == 0.0) and np.all((arrays[1] == 0.0) | (arrays[1] == 1.0))
    consts = np.array([lip, 0.0 if exact else 2.0**-51, G, 0.0])
    emax = np.full(out.shape[0], np.nan)
    # the bounds come out factored (a number per row, two vectors per block): written out whole here
    fac = (np.full(out.shape[0], np.nan), np.full(out.shape[0], -1, np.int64), np.empty((-(-rows.size // B), 2, out.shape[1])))
    args = (wt, b, np.abs(b), consts, out, *fac, 0, emax, B)
    K.product_1d(Z, Zerr, *E.whole_rows(Z.shape[0]), Zerr.max(axis=1), rows, off, 0, rows.size, *arrays, *args)
    written = off + rows
    assert np.all(fac[0][written] >= 0.0) and np.all(fac[1][written] == np.arange(rows.size) // B)
    fac[0][np.setdiff1d(np.arange(out.shape[0]), written)] = -1.0
    E.stored_whole(errout, fac)
    rowmax = errout[written].max(axis=1)
    assert np.all(emax[written] >= rowmax) and np.all(emax[written] <= 2.0 * rowmax)


@pytest.mark.parametrize("act_id", ACT_IDS)
@pytest.mark.parametrize("B", [1, 3, 8, 128])
def test_block_product_equals_dense_product(act_id, B):
    rng = np.random.default_rng(7)
    arrays, act = _act_arrays(act_id)
    V, n_new, n, m = 37, 9, 24, 11
    # values along a line: smooth in the point index, so that whole blocks
    # share a piece; some columns on a constant piece everywhere
    t = np.linspace(0, 1, V + n_new)[:, None]
    zall = rng.normal(size=(1, n)) * 2 + t * rng.normal(size=(1, n)) * 3
    zall[:, :4] = -5.0 + 0.1 * t  # ReLU-dead, hardtanh-saturated
    zall[:, 4:6] = 5.0 + 0.1 * t
    order = rng.permutation(V + n_new)  # the points' order along the line
    old, new = order[order < V], order[order >= V] - V
    wt = rng.normal(size=(n, m))
    b = rng.normal(size=m)
    out = np.full((V + n_new, m), np.nan)
    err = np.full((V + n_new, m), np.nan)
    zerr = np.abs(rng.normal(size=zall.shape)) * 1e-9
    # the old points' values from one array, the crossings' (rows V + e) from another
    _product(zall[:V].copy(), zerr[:V].copy(), old, 0, arrays, wt, b, out, err, B)
    _product(zall[V:].copy(), zerr[V:].copy(), new, V, arrays, wt, b, out, err, B)
    want = act(zall) @ wt + b
    np.testing.assert_allclose(out, want, rtol=1e-13, atol=1e-13)
    # the bounds are not absurd (their validity: test_block_product_bounds_cover_perturbed_inputs)
    lip = float(np.abs(arrays[1]).max())
    assert np.all(err <= 2.0 * (lip * zerr.max(axis=1, keepdims=True) * np.abs(wt).sum(axis=0) + 1e-12))


def test_block_product_bounds_cover_perturbed_inputs():
    """Moving every input within its bound moves the product by less than the output bound."""
    rng = np.random.default_rng(3)
    for act_id in ACT_IDS:
        arrays, act = _act_arrays(act_id)
        z = rng.normal(size=(40, 12))
        zerr = np.abs(rng.normal(size=z.shape)) * 1e-3
        wt, b = rng.normal(size=(12, 5)), rng.normal(size=5)
        out, err = np.empty((40, 5)), np.empty((40, 5))
        _product(z, zerr, np.arange(40), 0, arrays, wt, b, out, err, 8)
        for _ in range(20):
            moved = act(z + zerr * rng.uniform(-1, 1, size=z.shape)) @ wt + b
            assert np.all(np.abs(moved - out) <= err)


def test_block_product_all_constant_block():
    """A block on which every neuron is dead is only the bias (no BLAS call)."""
    arrays, act = _act_arrays("relu")
    z = -np.ones((5, 4))
    wt = np.arange(12.0).reshape(4, 3)
    b = np.array([1.0, -2.0, 3.0])
    out = np.zeros((5, 3))
    err = np.zeros((5, 3))
    _product(z, np.zeros((5, 4)), np.arange(5), 0, arrays, wt, b, out, err, 4)
    np.testing.assert_array_equal(out, np.tile(b, (5, 1)))


def _fresh_helper_on_two_cores(monkeypatch):
    """No helper yet, a 2-core machine, and no REGIONGEOM_NUM_THREADS."""
    monkeypatch.setattr(E, "_pool_state", {"pool": None})
    monkeypatch.delenv("REGIONGEOM_NUM_THREADS", raising=False)
    monkeypatch.setattr(E.os, "cpu_count", lambda: 2)


@pytest.fixture
def small_blocks_two_threads(monkeypatch):
    """Blocks of 3 points, and every product split over the helper thread."""
    monkeypatch.setattr(E, "_BLOCK", 3)
    monkeypatch.setattr(E, "_PAR_MIN", 0)
    monkeypatch.setattr(E, "_FILL_PAR_MIN", 0)
    _fresh_helper_on_two_cores(monkeypatch)
    yield
    if E._pool_state["pool"] is not None:
        E._pool_state["pool"].shutdown()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("act", ACT_IDS)
def test_reference_1d_small_blocks_two_threads(act, seed, small_blocks_two_threads):
    net = small_net(act, seed, n_in=1)
    rm = rg.activation_regions(net, INTERVAL)
    assert E._pool_state["pool"] is not None  # the split ran
    compare_with_reference(rm, INTERVAL)


@pytest.mark.parametrize("act", ACT_IDS)
def test_two_threads_give_the_same_bits(act, monkeypatch):
    """The split falls on a block boundary: the same result, bit for bit."""
    net = random_net([48] * 4, n_in=1, activation=ACTIVATIONS[act], seed=3)
    dom = (-6.0, 6.0)
    monkeypatch.setattr(E, "_BLOCK", 16)
    monkeypatch.setattr(E, "_PAR_MIN", 1 << 62)
    one = rg.activation_regions(net, dom)
    monkeypatch.setattr(E, "_PAR_MIN", 0)
    monkeypatch.setattr(E, "_FILL_PAR_MIN", 0)  # the crossings' rows filled in two halves too
    _fresh_helper_on_two_cores(monkeypatch)
    two = rg.activation_regions(net, dom)
    assert E._pool_state["pool"] is not None
    E._pool_state["pool"].shutdown()
    assert len(one) > 8 * 16  # many blocks
    np.testing.assert_array_equal(one.vertices, two.vertices)
    np.testing.assert_array_equal(one.patterns, two.patterns)
    np.testing.assert_array_equal(one.edge_neurons, two.edge_neurons)


def test_one_thread_when_asked(monkeypatch):
    monkeypatch.setattr(E, "_pool_state", {"pool": None})
    monkeypatch.setenv("REGIONGEOM_NUM_THREADS", "1")
    assert E._helper() is None
    monkeypatch.setenv("REGIONGEOM_NUM_THREADS", "2")
    assert E._helper() is not None
    E._pool_state["pool"].shutdown()


def test_d1_with_the_split_and_without(monkeypatch):
    """The standard deep network, whose products are large enough to split."""
    net, dom, count = standard("D1")
    _fresh_helper_on_two_cores(monkeypatch)
    two = rg.activation_regions(net, dom)
    assert E._pool_state["pool"] is not None
    E._pool_state["pool"].shutdown()
    monkeypatch.setenv("REGIONGEOM_NUM_THREADS", "1")
    monkeypatch.setattr(E, "_pool_state", {"pool": None})
    one = rg.activation_regions(net, dom)
    assert len(one) == len(two) == count
    np.testing.assert_array_equal(one.vertices, two.vertices)
    np.testing.assert_array_equal(one.patterns, two.patterns)
    # every region's pattern is the forward pass's at its midpoint
    mid = one.intervals.mean(axis=1)
    np.testing.assert_array_equal(net.patterns(mid[:, None]), one.patterns)


@pytest.mark.parametrize("which", ["D1", "small"])
def test_forked_child_makes_its_own_helper(which, monkeypatch):
    """A child forked after the helper started (multiprocessing's default on
    Linux) has the pool but not its thread; it must not wait for it. D1
    starts the helper with the engine's own thresholds; a small network
    does with every product split (and runs without the JIT too)."""
    import multiprocessing

    if which == "D1" and numba.config.DISABLE_JIT:
        pytest.skip("D1 in pure Python takes minutes; the small case covers this without the JIT")
    _fresh_helper_on_two_cores(monkeypatch)
    if which == "D1":
        net, dom, count = standard("D1")
    else:
        monkeypatch.setattr(E, "_BLOCK", 3)
        monkeypatch.setattr(E, "_PAR_MIN", 0)
        monkeypatch.setattr(E, "_FILL_PAR_MIN", 0)
        net, dom = random_net([12] * 3, n_in=1, seed=5), INTERVAL
        count = len(rg.activation_regions(net, dom))
    rg.activation_regions(net, dom)
    assert E._pool_state["pool"] is not None  # the helper is running
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        res = pool.apply_async(_count_regions, (net, dom))
        assert res.get(timeout=30) == (count, True)
    E._pool_state["pool"].shutdown()


def _count_regions(net, dom):
    """The count, and whether this (forked) process runs a helper thread of its own."""
    import threading

    n = len(rg.activation_regions(net, dom))
    return n, any(t.name.startswith("regiongeom") for t in threading.enumerate())


@pytest.mark.parametrize("seed", range(6))
def test_mixed_layers_with_an_affine_one(seed, small_blocks_two_threads):
    """Leaky ReLU, an affine layer, ReLU, Hardtanh (two breakpoints: the
    products' scales for several breakpoints) against the reference."""
    widths = [int(v) for v in np.random.default_rng(seed).integers(3, 30, size=4)]
    acts = [ACTIVATIONS["leaky_relu"], None, "relu", ACTIVATIONS["hardtanh"]]
    net = random_net(widths, n_in=1, activation=acts, seed=seed, scale=2.0)
    rm = rg.activation_regions(net, (-3.0, 3.0))
    compare_with_reference(rm, (-3.0, 3.0))


def _blas_threads():
    from threadpoolctl import ThreadpoolController

    return [lib.get_num_threads() for lib in ThreadpoolController().select(user_api="blas").lib_controllers]


def test_one_blas_thread_nests_and_restores():
    from regiongeom._engine.core import one_blas_thread

    before = _blas_threads()
    with one_blas_thread():
        with one_blas_thread():
            assert set(_blas_threads()) <= {1}
        assert set(_blas_threads()) <= {1}  # the inner block does not restore early
    assert _blas_threads() == before


def test_concurrent_enumerations_agree_and_restore_the_limits():
    """Enumerations in several threads at once (2D and 1D, overlapping
    BLAS limits) give the sequential results and leave the limits as they were."""
    from concurrent.futures import ThreadPoolExecutor

    before = _blas_threads()
    cases = [
        (random_net([24, 24, 24], n_in=1, seed=1), (-4.0, 4.0)),
        (random_net([16, 16], n_in=2, seed=2), (-2.0, -2.0, 2.0, 2.0)),
    ] * 3
    expect = [rg.activation_regions(net, dom) for net, dom in cases]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda c: rg.activation_regions(*c), cases))
    for a, b in zip(expect, got, strict=True):
        np.testing.assert_array_equal(a.vertices, b.vertices)
        np.testing.assert_array_equal(a.patterns, b.patterns)
    assert _blas_threads() == before


@pytest.mark.parametrize("n_bps", [1, 2])
def test_signs_with_row_bounds_equal_signs_with_each_bound(n_bps):
    """``signs_1d`` decides a row with its largest bound first and reads the
    values' own bounds only for the rows that leaves open: the signs are
    those of the values' own bounds everywhere, checked against numpy, on
    rows far from every breakpoint, rows with a value within the row's
    largest bound (but not its own), values exactly on a breakpoint with
    bound 0 and values left open by their own bound."""
    from regiongeom._engine import _line1d_kernels as LK

    rng = np.random.default_rng(3)
    V, n = 40, 19
    bps = np.array([0.0, 1.0][:n_bps])
    z = rng.normal(size=(V + 5, n)) * 3
    err = np.abs(rng.normal(size=z.shape)) * 1e-6
    err[::7, 3] = 0.5  # one large bound: the row's largest bound covers the other values
    z[1::7, 5] = 1e-7  # within the row's largest bound, not within its own
    err[1::7, 5] = 1e-9
    err[1::7, 0] = 1e-6 * 50
    z[2::7, 2] = 0.0  # exactly on a breakpoint, bound 0
    err[2::7, 2] = 0.0
    z[3::7, 4] = 1e-7  # left open by its own bound
    err[3::7, 4] = 1e-6
    rowof = rng.permutation(V + 5)[:V]
    want = np.empty((V, n_bps * n), np.int8)
    for k, t in enumerate(bps):
        d = (z[rowof] - t) * LK.CERT
        e = err[rowof]
        want[:, k * n : (k + 1) * n] = np.where(d > e, 1, np.where(-d > e, -1, LK.UNSURE))
    for em in (err.max(axis=1), 2.0 * err.max(axis=1), np.empty(0)):
        S = np.full((V, n_bps * n), 7, np.int8)
        urow = np.full(V, -1, np.int64)
        nu = LK.signs_1d(z, err, *E.whole_rows(z.shape[0]), em, rowof, bps, n, S, urow)
        np.testing.assert_array_equal(S, want)
        np.testing.assert_array_equal(urow, (want == LK.UNSURE).sum(axis=1))
        assert nu == int((want == LK.UNSURE).sum()) > 0


@pytest.mark.parametrize("act_id", ["relu", "hardtanh"])
def test_factored_bounds_read_as_stored_whole(act_id):
    """The products keep their bounds factored (a number per row, two
    vectors per block); every kernel that reads bounds (signs, crossings,
    split, the next product, the fill) gives the same bits from the factors
    as from the bounds written out whole (``line1d.stored_whole``), on rows
    of both kinds mixed (product rows, rows stored whole), and the fill in
    two ranges gives the bits of one call."""
    from regiongeom._engine import _line1d_kernels as LK

    rng = np.random.default_rng(5)
    arrays, act = _act_arrays(act_id)
    bps = arrays[0]
    V, n, m, B = 30, 12, 40, 4
    t = np.linspace(-1, 1, V)[:, None]
    z = rng.normal(size=(1, n)) + t * rng.normal(size=(1, n)) * 2
    zerr = np.abs(rng.normal(size=z.shape)) * 1e-3
    wt, b = rng.normal(size=(n, m)), rng.normal(size=m)
    lip = float(np.abs(arrays[1]).max())
    exact = np.all(arrays[2] == 0.0) and np.all((arrays[1] == 0.0) | (arrays[1] == 1.0))
    consts = np.array([lip, 0.0 if exact else 2.0**-51, 1e-14, 0.0])
    # layer 1 at V points: even rows from a product (factored), odd rows stored whole
    z1, e1 = np.empty((V, m)), np.full((V, m), np.nan)
    fac = (np.full(V, -1.0), np.zeros(V, np.int64), np.empty((-(-V // B), 2, m)))
    em1 = np.empty(V)
    K.product_1d(z, zerr, *E.whole_rows(V), zerr.max(axis=1), np.arange(V), 0, 0, V, *arrays, wt, b, np.abs(b),
                 consts, z1, *fac, 0, em1, B)  # fmt: skip
    whole = E.stored_whole(e1.copy(), tuple(a.copy() for a in fac))
    odd = np.arange(1, V, 2)
    fac[0][odd] = -1.0
    e1[odd] = whole[odd] * (1.0 + rng.random((odd.size, m)))  # rows of another kind, bounds of their own
    dense = E.stored_whole(e1.copy(), tuple(a.copy() for a in fac))
    assert np.all(fac[0][::2] >= 0.0) and not np.isnan(dense).any()
    z1[5:9, :3] += rng.normal(size=(4, 3)) * 1e-3  # some values within their bounds of a breakpoint
    z1[4, 2] = bps[0] + 0.5 * dense[4, 2]  # (a product row: its sign left open)
    rowof = rng.permutation(V)
    nd = E.whole_rows(V)

    def same(f, *args, fac_at):
        """``f`` called with the factored bounds and with the whole ones: the same bits."""
        outs = []
        for err, fc in ((e1.copy(), fac), (dense.copy(), nd)):
            a = list(args)
            a[fac_at:fac_at] = [err, *fc]
            r = f(*a)
            r = list(r) if isinstance(r, tuple) else [r]
            if f is LK.split_1d:  # (dj is filled up to dptr[-1] only)
                r[-1] = r[-1][: r[-2][-1]]
            outs.append(tuple(np.copy(x) for x in r))
        for x, y in zip(*outs, strict=True):
            np.testing.assert_array_equal(x, y)
        return outs[0]

    S1 = np.empty((V, bps.size * m), np.int8)
    for em in (em1, np.empty(0)):
        S = np.empty_like(S1)
        same(LK.signs_1d, z1, em, rowof, bps, m, S, np.empty(V, np.int64), fac_at=1)
    LK.signs_1d(z1, dense, *nd, np.empty(0), rowof, bps, m, S1, np.empty(V, np.int64))
    S1[S1 == LK.UNSURE] = 1  # (any exact sign will do for the kernels below)
    x = np.linspace(-1, 1, V)
    ex = np.zeros(V)
    cstart, cr, ck, ca, cda, cpos, cex, sure, _ = same(
        LK.crossings_1d, x, ex, rowof, z1, LK_G3 := 3 * 2.0**-53, S1, bps, m, fac_at=4
    )
    assert cr.size > 0
    keep = np.ones(cr.size, np.bool_)
    keep[1:] = sure[1:] | (cpos[1:] > cpos[:-1])
    split = same(
        LK.split_1d, x, ex, rowof, z1, S1, cstart, cr, ck, ca, cda, cpos, cex, keep, int(keep.sum()),
        np.full(V, -1, np.int64), np.zeros(V, np.int64), bps, 0, m, LK_G3, fac_at=4,
    )  # fmt: skip
    # the next product reads the bounds of its inputs
    w2, b2 = rng.normal(size=(m, 7)), rng.normal(size=7)
    outs = []
    for err, fc in ((e1, fac), (dense, nd)):
        z2, f2 = np.empty((V, 7)), (np.empty(V), np.empty(V, np.int64), np.empty((-(-V // B), 2, 7)))
        em2 = np.empty(V)
        K.product_1d(z1, err, *fc, em1, rowof, 0, 0, V, *arrays, w2, b2, np.abs(b2), consts, z2, *f2, 0, em2, B)
        outs.append((z2, E.stored_whole(np.empty((V, 7)), f2), em2))
    for a, c in zip(*outs, strict=True):
        np.testing.assert_array_equal(a, c)
    # the fill reads the product's factored rows; two ranges give the bits of one call
    nk = split[7].size
    assert nk > 2
    xn_rows = split[4]
    cnew, anew, znew, errn, emn, dptr, dj = split[7], split[8], split[9], split[10], split[11], split[12], split[13]
    direct, cptr, cj, cv, cb = LK.corrections_1d(rowof, z1, cstart, cnew, anew, znew, dptr, dj, *arrays)
    isdirect = np.zeros(nk, np.bool_)
    isdirect[direct] = True
    danew = cda[keep]
    nabs = np.abs(w2).sum(axis=0) * (1.0 + 1e-14)
    results = []
    nb_old = -(-V // B)
    for ranges in ([(0, nk)], [(0, nk // 2), (nk // 2, nk)]):
        for whole_first in (False, True):
            # as in the engine: the old points' rows and the crossings computed directly from products
            z2, e2, em2 = np.empty((V + nk, 7)), np.full((V + nk, 7), np.nan), np.empty(V + nk)
            f2 = (np.full(V + nk, -1.0), np.zeros(V + nk, np.int64), np.empty((nb_old + -(-direct.size // B), 2, 7)))
            K.product_1d(z1, e1, *fac, em1, rowof, 0, 0, V, *arrays, w2, b2, np.abs(b2), consts, z2, *f2, 0, em2, B)
            K.product_1d(znew, errn, *E.whole_rows(nk), emn, direct, V, 0, direct.size, *arrays, w2, b2, np.abs(b2),
                         consts, z2, *f2, nb_old, em2, B)  # fmt: skip
            if whole_first:
                E.stored_whole(e2, f2)
            args = (z2, e2, *f2, em2, rowof, cnew, anew, danew, cptr, cj, cv, cb, isdirect, dptr, dj, z1, em1, w2,
                    nabs, znew, errn, emn, *arrays, consts)  # fmt: skip
            for e0, e1_ in ranges:
                K.fill_new_rows_1d(*args, e0, e1_)
            assert np.all(f2[0][V:] == -1.0)  # every crossing's row stored whole
            results.append((z2, E.stored_whole(e2, f2), em2))
    assert 0 < direct.size < nk and cptr[-1] > 0 and not np.isnan(results[0][1]).any()  # both kinds of rows
    for r in results[1:]:
        for a, c in zip(results[0], r, strict=True):
            np.testing.assert_array_equal(a, c)
    assert xn_rows.size == V + nk
