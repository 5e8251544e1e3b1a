"""Exact enumeration of activation regions on an interval, one layer at a time.

The points of the subdivision are kept sorted, each with the current layer's
preactivations (a row of ``z``). On every interval all of a layer's
preactivations are affine, so all the layer's crossings are found at once
(:func:`_cut_layer`). The next layer's preactivations are then

- computed (``act(z) @ w.T + b``, :func:`._line1d_products.product_1d`) at the
  old points, which does not need the cut: the product runs on a helper
  thread *while* the cut runs, and the two threads share what is left of it;
- interpolated at the new points (:func:`._line1d_products.fill_new_rows_1d`),
  exact up to rounding: their activations are affine along their old
  interval except for the few neurons that cross it, corrected one by one;
- computed as well at the new points of old intervals that many neurons
  cross (``direct``), where the corrections would cost more.

The products go block by block (``_BLOCK``) in the order of the points, and
blocks never depend on which thread runs them: the result is the same, bit
for bit, with or without the helper. With the helper, both threads go on
from the old points' product to the crossings' (the direct product, then the
fill, chunk by chunk as the rows it reads are written: :mod:`._line1d_share`).
The products' error bounds stay in factored form (a number per row, two
vectors per block: see :func:`._line1d_products.product_1d`); the
crossings' rows store theirs whole.

**Exactness.** The combinatorics are exactly those of the float64 weights:
which intervals exist, their patterns, and which neuron each point belongs
to; only positions (and so lengths) are rounded. Every sign and every order
of two crossings is decided by a filter with an exact fallback: each value
carries a rigorous bound of its distance to the exact value at the point's
exact position (:class:`._line1d_bounds.Bounds` derives them); a sign is certain when the
value clears its bound; otherwise a second filter recomputes it from
float64 affine maps of the interval's pattern with their own, much tighter,
bounds (:mod:`._line1d_refine`), and only what that leaves is decided in
exact rational arithmetic (:class:`regiongeom._exact.Fallback1D`), as is the
order of two crossings whose position bounds overlap. A value found exactly on a
breakpoint is set to it. An interval exists iff its exact length is
positive; its float end points may still coincide (two crossings closer
than the rounding of their positions): it is then reported, with length
0.0. A crossing whose place in its interval is known to worse than 1/16
(its values cancel) gets its exact position, rounded; every other position
is an interpolation in float64. No tolerance is involved. Counts of the
decisions and of the exact fallbacks are kept in :data:`STATS`.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import NamedTuple

import numpy as np

from .._exact import Fallback1D
from .._jit import compile_notice
from . import _line1d_kernels as K
from . import _line1d_products as P
from . import _line1d_refine as R
from ._line1d_share import Product as _Product
from ._line1d_share import ProductThenFill as _ProductThenFill
from ._line1d_share import Shared as _Shared
from ._line1d_share import fill_chunks as _fill_chunks
from ._line1d_share import finish as _finish
from ._line1d_share import join as _join
from ._line1d_share import product_alone as _product_alone
from ._line1d_bounds import (
    _gamma,
    _layer_plan,
    _plans_of,
    _transposes_lock,
    affine_rows,
    first_rows,
    stored_whole,
    whole_rows,
)
from .core import (
    BOUNDARY,
    DEFAULT_MAX_REGIONS,
    Subdivision,
    assemble_patterns,
    buffer,
    layers,
    limit_error,
    one_blas_thread,
)

__all__ = ["enumerate_1d", "STATS"]

_BLOCK = 128  # points per block of the products (see _line1d_products.product_1d)
_CHUNK = 1  # blocks a thread takes at a time
_PAR_MIN = 1 << 22  # multiply-adds of a layer's product below which no helper is used
# a fill after the products (when the pipeline below does not apply: no shared product of
# the old points, more points than the buffers hold, or rows not in point order):
_FILL_PAR_MIN = 100_000  # values of the crossings' rows below which the helper does not fill any (D1,
# about 50,000 a layer: the same wall time alone, 6% less CPU; [512] * 4, about 200,000: 4% less wall shared)
_FILL_CHUNKS = 4  # chunks of the crossings' rows that the two threads share
_INORDER = True  # the old points' rows of the next layer in point order (the products write in place)
_PIPELINE = True  # shared products go on to fill the crossings' rows (_ProductThenFill)

_pool_lock = threading.Lock()
_pool_state = {"pool": None}
# a forked child has the pool but not its thread: it makes its own
os.register_at_fork(after_in_child=lambda: _pool_state.update(pool=None))


def _helper():
    """The helper thread the products share their work with, or None (one
    core, or ``REGIONGEOM_NUM_THREADS=1``)."""
    pool = _pool_state["pool"]
    if pool is not None:  # (set once, under the lock; a fork resets it)
        return pool
    with _pool_lock:
        if _pool_state["pool"] is None:
            env = os.environ.get("REGIONGEOM_NUM_THREADS", "").strip()
            n = int(env) if env.isdigit() else (os.cpu_count() or 1)
            if n < 2:
                return None
            from concurrent.futures import ThreadPoolExecutor

            _pool_state["pool"] = ThreadPoolExecutor(1, thread_name_prefix="regiongeom")
        return _pool_state["pool"]


def enumerate_1d(net, domain, max_regions=DEFAULT_MAX_REGIONS) -> Subdivision:
    """Exact 1D enumeration; see :func:`regiongeom.activation_regions`."""
    compile_notice("the 1D engine", *_ENTRY_KERNELS, seconds=12)
    with one_blas_thread():
        return _enumerate_1d(net, domain, max_regions)


_ENTRY_KERNELS = (K.signs_1d, K.crossings_1d, K.split_1d, K.corrections_1d, P.product_1d, P.fill_new_rows_1d)
# (the second filter's K.unsure_1d and R.layer_map compile on first use: rarely needed)


class Points(NamedTuple):
    """The sorted points of the subdivision (V,): positions ``x`` and the
    bounds ``ex`` of their errors, the neuron and breakpoint each is a
    crossing of (BOUNDARY at the ends, exact positions: ``ex`` 0), and the
    row of the current layer's values ``z`` holding each one's values."""

    x: np.ndarray
    ex: np.ndarray
    neuron: np.ndarray
    bp: np.ndarray
    row: np.ndarray


class LayerCut(NamedTuple):
    """A layer's cut (:func:`_cut_layer`): the points after it; for each new
    interval the old one holding it (``parent``) and the piece of each of
    the layer's neurons (``pieces``); and for each crossing ``e`` (a new
    point, row ``V + e``) its old interval ``interval[e]``, its place (0..1)
    in it and the bound of that place's error, its interpolated values and
    the bounds ``err`` of their errors (the largest of each: ``err_max``),
    and either its index in ``direct``
    (the next layer's values are computed) or the neurons
    ``fix_neuron[fix_ptr[e]:fix_ptr[e + 1]]`` whose activation departs from
    the interpolation along its interval, by ``fix_value`` (rounding bounds
    ``fix_bound``); the neurons whose piece changes along old interval ``c``
    are ``changed[changed_ptr[c]:changed_ptr[c + 1]]``."""

    points: Points
    parent: np.ndarray
    pieces: np.ndarray
    interval: np.ndarray
    place: np.ndarray
    place_error: np.ndarray
    values: np.ndarray
    err: np.ndarray
    err_max: np.ndarray
    direct: np.ndarray
    fix_ptr: np.ndarray
    fix_neuron: np.ndarray
    fix_value: np.ndarray
    fix_bound: np.ndarray
    changed_ptr: np.ndarray
    changed: np.ndarray


def _enumerate_1d(net, domain, max_regions):
    lo, hi = domain.interval
    pts = Points(
        np.array([lo, hi], np.float64),
        np.zeros(2),
        np.full(2, BOUNDARY, np.int64),
        np.zeros(2, np.int64),
        np.arange(2),
    )
    run = _Run(net)
    stack = run.layers()
    blocks = []  # (first neuron, parent interval, pieces) of each layer
    fb = Fallback1D(net, blocks, unsure=K.UNSURE, boundary=BOUNDARY)
    z, err, em = first_rows(net, pts.x, stack[0]) if stack else (None, None, None)
    fac = None if z is None else whole_rows(z.shape[0])
    for i, (_, _, act, first) in enumerate(stack):
        nxt = stack[i + 1] if i + 1 < len(stack) else None
        if act is None:
            z, err, em = affine_rows(net, i + 1, z, err, nxt, fac) if nxt else (None, None, None)
            fac = None if z is None else whole_rows(z.shape[0])
            continue
        cut = (pts, z, err, act, first, max_regions, fb)
        if nxt is None:
            S = _decide_signs(pts, z, err, act, first, fb, z.shape[1], em, fac)
            res = _cut_layer(*cut, S=S, fac=fac, values=False)
        else:
            res, z, err, fac, em = _cut_and_next(run, i, nxt, cut, em, fac)
        if res is None:
            raise limit_error(None, max_regions, net)
        pts = res.points
        blocks.append((first, res.parent, res.pieces))
    fb.flush()
    return subdivision_1d(pts, assemble_patterns(blocks, pts.x.size - 1, net.n_neurons))


def subdivision_1d(pts, patterns) -> Subdivision:
    """The :class:`Subdivision` of the final :class:`Points` (every interior
    point an edge between the intervals next to it)."""
    x = pts.x
    inner = np.arange(1, x.size - 1)
    # (as np.stack([inner, inner], axis=1) and np.stack([inner - 1, inner], axis=1))
    edges = np.empty((inner.size, 2), inner.dtype)
    edges[:, 0] = inner
    edges[:, 1] = inner
    regions = edges - np.array([1, 0], inner.dtype)
    return Subdivision(
        vertices=x, edges=edges, edge_regions=regions, edge_neurons=pts.neuron[1:-1],
        edge_breakpoints=pts.bp[1:-1], patterns=patterns, measures=np.diff(x),
    )  # fmt: skip


def _decide_signs(pts, z, err, act, first, fb, n_cut, em=None, fac=None):
    """The exact signs ``S`` (V, K n_cut) of every neuron at every point:
    the filter first, then the second filter (:func:`_refine_signs`) and the
    exact fallback for the signs it leaves. Values found exactly on a
    breakpoint are set to it (their bound to 0). ``em``: the largest bound of each row of
    ``z``, if known (the filter reads ``err`` only where it is needed);
    ``fac``: the bounds' factors (:func:`whole_rows` when None)."""
    fac = whole_rows(z.shape[0]) if fac is None else fac
    S, nu = _filter_signs(pts, z, err, act, first, fb, n_cut, em, fac)
    if nu:
        fb.signs(S, pts, z, stored_whole(err, fac), act[0], first, n_cut)
    return S


def _filter_signs(pts, z, err, act, first, fb, n_cut, em, fac):
    """The first two steps of :func:`_decide_signs` (which reads and
    changes nothing but ``S``): the signs ``S``, and the number left
    ``UNSURE`` in it for the exact fallback."""
    bps = act[0]
    S = np.empty((pts.x.size, bps.size * n_cut), np.int8)
    urow = np.empty(pts.x.size, np.int64)
    nu = K.signs_1d(z, err, *fac, _NO_ROWMAX if em is None else em, pts.row, bps, n_cut, S, urow)
    STATS.add(signs=S.size)
    if nu:
        nu = _refine_signs(S, urow, nu, pts, bps, first, n_cut, fb)
        STATS.add(exact_signs=nu)
    return S, nu


_NO_ROWMAX = np.empty(0)
_NO_FIXES = (np.empty(0, np.int64), np.zeros(1, np.int64), np.empty(0, np.int64), np.empty(0), np.empty(0))


_maps = weakref.WeakKeyDictionary()  # the FloatMaps of each enumeration's fallback


def _refine_signs(S, urow, nu, pts, bps, first, n_cut, fb):
    """The second filter (:mod:`._line1d_refine`) on the signs ``S == UNSURE``:
    decides those it can (counted as ``refined_signs``) and returns how
    many are left to the exact fallback (all of them for a graph network,
    whose float maps it does not form)."""
    if hasattr(fb.net, "stages"):
        return nu
    maps = _maps.get(fb)
    if maps is None:
        maps = _maps[fb] = R.FloatMaps(fb.net)
    V = pts.x.size
    left = done = 0
    for c, i in zip(*K.unsure_1d(S, urow, nu), strict=True):
        k, j = divmod(int(i), n_cut)
        pat = fb.pattern(c if c < V - 1 else c - 1)
        if pts.neuron[c] == BOUNDARY:
            s = R.sign_by_maps(maps, pat, first + j, bps[k], None, None, pts.x[c])
        else:
            nk = int(pts.neuron[c])
            pt = maps.breakpoint(nk, int(pts.bp[c]))
            s = R.sign_by_maps(maps, pat, first + j, bps[k], nk, pt, None)
        if s is None:
            left += 1
        else:
            S[c, i] = s
            done += 1
    STATS.add(refined_signs=done)
    return left


def _cut_layer(
    pts, z, err, act, first, max_regions, fb, S=None, n_cut=None, fac=None, values=True, inorder=False
):
    """Cut the :class:`Points` ``pts`` by every neuron of a layer, whose
    values at point ``i`` are ``z[pts.row[i]]`` (bounds ``err``, and their
    factors ``fac``: :func:`whole_rows` when None). ``S``: the signs if
    already decided (:func:`_decide_signs`). Only the first ``n_cut``
    columns of ``z`` are neurons (default all); the others are carried:
    interpolated at the new points, never cut. Without ``values`` (the
    last layer's cut: nothing reads its values at the new points), the
    crossings' values, bounds and corrections and the changed neurons are
    left empty. With
    ``inorder``, old point ``c`` gets row ``c`` in the returned points
    (where :func:`_cut_and_next`'s product writes it). Returns a
    :class:`LayerCut`, or None when the intervals would exceed ``max_regions``."""
    bps = act[0]
    n_cut = z.shape[1] if n_cut is None else n_cut
    fac = whole_rows(z.shape[0]) if fac is None else fac
    if S is None:
        S = _decide_signs(pts, z, err, act, first, fb, n_cut, fac=fac)
    x, rowof = pts.x, pts.row
    cstart, cr, ck, ca, cda, cpos, cex, sure, nunsure = K.crossings_1d(
        x, pts.ex, rowof, z, err, *fac, _G3, S, bps, n_cut
    )
    keep = sure  # (the first crossing of each interval is sure)
    cda_max, n_crossed, nk = K.cut_counts(cstart, cda, keep)
    if cda_max > _PLACE_EXACT:
        STATS.add(exact_positions=fb.positions(cstart, cr, ck, cda, cpos, cex, first, _PLACE_EXACT))
    STATS.add(orders=max(cr.size - n_crossed, 0), exact_orders=nunsure)
    if nunsure:
        fb.order(cstart, cr, ck, ca, cda, cpos, cex, keep, first)
        nk = int(np.count_nonzero(keep))  # (the exact order may merge crossings)
    if x.size + nk - 1 > max_regions:
        return None
    xn, exn, neun, bpn, rown, parent, pieces, cnew, anew, znew, errn, emn, dptr, dj = K.split_1d(
        x, pts.ex, rowof, z, err, *fac, S, cstart, cr, ck, ca, cda, cpos, cex, keep, nk, pts.neuron, pts.bp,
        bps, first, n_cut, _G3, values, inorder,
    )  # fmt: skip
    fixes = K.corrections_1d(rowof, z, cstart, cnew, anew, znew, dptr, dj, *act) if values else _NO_FIXES
    danew = cda[keep]
    return LayerCut(
        Points(xn, exn, neun, bpn, rown), parent, pieces, cnew, anew, danew, znew, errn, emn, *fixes, dptr, dj
    )


class _Run:
    """What one enumeration of ``net`` looks up once: the helper thread
    (:func:`_helper`, asked the first time a product is large enough), the
    layers and the constants of each layer's product (:func:`_layer_plan`;
    these two kept per network)."""

    __slots__ = ("net", "plans", "asked", "pool")

    def __init__(self, net):
        self.net = net
        self.plans = _plans_of(net)
        self.asked = False
        self.pool = None

    def helper(self):
        if not self.asked:
            self.pool = _helper()
            self.asked = True
        return self.pool

    def layers(self):
        """``layers(net)`` as a tuple, made once per network (the weights
        are read-only, as for :func:`_transposed`)."""
        stack = self.plans.get("layers")
        if stack is None:
            stack = tuple(layers(self.net))
            with _transposes_lock:
                stack = self.plans.setdefault("layers", stack)
        return stack

    def plan(self, i, act):
        p = self.plans.get(i)
        return _layer_plan(self.net, self.plans, i, act) if p is None else p


def _cut_and_next(run, i, nxt, cut, em, fac):
    """Cut layer ``i`` (``_cut_layer(*cut)``; ``fac``: the factors of its
    bounds) and compute the next layer's
    (``nxt``) values at the points after it (``em``: the largest bound of
    each row of layer ``i``'s values). Returns the :class:`LayerCut` (None
    past ``max_regions``) and the next layer's values, their bounds (the
    rows stored whole), the bounds' factors (the products' rows: see
    :func:`._line1d_products.product_1d`) and the largest of each row (rows
    as in its points' ``row``)."""
    pts, z, err, act, first, _, fb = cut
    rowof = pts.row
    b = nxt[1]
    V, n = z.shape
    wt, nlb, consts = run.plan(i, act)
    m = wt.shape[1]
    # room for the old points and, most likely, the crossings: the rows of
    # the old points are written before the number of crossings is known
    cap = 2 * V + n * act[0].size
    out = buffer(i % 2, (cap, m))
    eout = buffer(2 + i % 2, (cap, m))
    emout = np.empty(cap)
    ef, eb = np.empty(cap), np.empty(cap, np.int64)
    n_old = -(-rowof.size // _BLOCK)  # the old points' blocks
    EB = np.empty((n_old + -(-(cap - V) // _BLOCK), 2, m))  # and room for the crossings' (direct) ones
    helper = run.helper() if V * n * m >= _PAR_MIN else None
    shared = helper is not None
    # the old point c's row is c (inorder): the products write in place
    inorder = _INORDER
    step = _CHUNK * _BLOCK
    prod = (
        z, err, fac, em, rowof, 0, act, wt, b, nlb, consts, out, (ef, eb, EB), 0, emout, shared, inorder,
        _BLOCK, step,
    )  # fmt: skip
    # the product starts before the signs, which read the same values; the
    # exact fallback (rare) may set some onto their breakpoints: the product
    # then starts again once it is done (alone, it runs after the cut)
    Product = _ProductThenFill if inorder and _PIPELINE else _Product
    old = Product(*prod) if shared else None
    fut = helper.submit(old.work) if shared else None
    filled = False
    try:
        S, nu = _filter_signs(pts, z, err, act, first, fb, n, em, fac)
        if nu:
            if fut is not None:
                _finish(old, fut)
                old = Product(*prod)
            fb.signs(S, pts, z, stored_whole(err, fac), act[0], first, n)
            fut = helper.submit(old.work) if shared else None
        res = _cut_layer(*cut, S=S, fac=fac, inorder=inorder)
        if old is None:
            if res is not None:
                _product_alone(*prod)
        else:
            if res is None:  # past max_regions: stop the product too
                old.stop()
            elif Product is _ProductThenFill and V < res.points.x.size <= cap:
                # the crossings' rows follow the product's on both threads
                n_points = res.points.x.size
                views = (v[:n_points] for v in (out, eout, ef, eb))
                fill = _fill_args(res, *views, EB, emout[:n_points], rowof, z, em, wt, nlb, act, consts)
                dprod = _direct_args(res, V, act, wt, b, nlb, consts, out, (ef, eb, EB), n_old, emout, True)
                direct = _Product(*dprod) if res.direct.size else None
                old.add_fill(fill, (inorder,), _fill_chunks(res.interval, V, res.direct, step), direct)
                filled = True
            old.work()
    finally:
        _join(fut)
    if res is None:
        return None, None, None, None, None
    n_points, n_new = res.points.x.size, res.interval.size
    if filled:
        out, eout, emout, ef, eb = (v[:n_points] for v in (out, eout, emout, ef, eb))
        return res, out, eout, (ef, eb, EB), emout
    if n_points > cap:
        out, eout = (np.concatenate([v[:V], np.empty((n_points - V, m))]) for v in (out, eout))
        emout = np.concatenate([emout[:V], np.empty(n_points - V)])
        ef = np.concatenate([ef[:V], np.empty(n_points - V)])
        eb = np.concatenate([eb[:V], np.empty(n_points - V, np.int64)])
    out, eout, emout, ef, eb = out[:n_points], eout[:n_points], emout[:n_points], ef[:n_points], eb[:n_points]
    if res.direct.size:
        more = n_old + -(-res.direct.size // _BLOCK) - EB.shape[0]
        if more > 0:  # (past cap)
            EB = np.concatenate([EB, np.empty((more, 2, m))])
        if helper is None and res.direct.size * n * m >= _PAR_MIN:  # (a few old points, many crossings)
            helper = run.helper()
        shared = helper is not None and res.direct.size > _CHUNK * _BLOCK
        prod = _direct_args(res, V, act, wt, b, nlb, consts, out, (ef, eb, EB), n_old, emout, shared)
        if not shared:
            _product_alone(*prod)
        else:
            new = _Product(*prod)
            fut = helper.submit(new.work)
            try:
                new.work()
            finally:
                _join(fut)
    fill = _fill_args(res, out, eout, ef, eb, EB, emout, rowof, z, em, wt, nlb, act, consts)
    # the crossings' rows are independent: with the helper, in a few chunks shared with it
    shared = helper is not None and n_new * m >= _FILL_PAR_MIN
    fstep = -(-n_new // _FILL_CHUNKS) if shared else n_new
    if not shared:  # (one call, no chunks to hand out)
        if n_new:
            P.fill_new_rows_1d(*fill, 0, n_new, inorder)
        return res, out, eout, (ef, eb, EB), emout
    filling = _Shared(P.fill_new_rows_1d, fill, (inorder,), n_new, fstep)
    fut = helper.submit(filling.work)
    try:
        filling.work()
    finally:
        _join(fut)
    return res, out, eout, (ef, eb, EB), emout


def _fill_args(res, out, eout, ef, eb, EB, emout, rowof, z, em, wt, nlb, act, consts):
    """The arguments of :func:`._line1d_products.fill_new_rows_1d` before its
    crossings' range: the :class:`LayerCut` ``res``, the next layer's rows
    ``out`` (bounds ``eout``, factors ``ef, eb, EB``, largest ``emout``, all
    ``n_points`` long) and the layer's values ``z`` at the old points (rows
    ``rowof``; largest bounds ``em``), ``wt``, ``nlb``, ``act``, ``consts``
    as in :func:`_cut_and_next`."""
    isdirect = np.zeros(res.interval.size, np.bool_)
    isdirect[res.direct] = True
    return (
        out, eout, ef, eb, EB, emout, rowof, res.interval, res.place, res.place_error, res.fix_ptr,
        res.fix_neuron, res.fix_value, res.fix_bound, isdirect, res.changed_ptr, res.changed, z, em, wt,
        nlb.nabs, res.values, res.err, res.err_max, *act, consts,
    )  # fmt: skip


def _direct_args(res, V, act, wt, b, nlb, consts, out, fac, n_old, emout, shared):
    """The arguments of the product at the crossings of ``res`` computed
    directly (:class:`._line1d_share.Product`): their values into rows ``V +
    e`` of ``out``, their bounds' blocks numbered from ``n_old``."""
    return (
        res.values, res.err, whole_rows(res.values.shape[0]), res.err_max, res.direct, V, act, wt, b, nlb,
        consts, out, fac, n_old, emout, shared, False, _BLOCK, _CHUNK * _BLOCK,
    )  # fmt: skip


class _Stats:
    """Counts of the 1D engine's decisions (``signs``: a neuron's side of a
    breakpoint at a point; ``orders``: two crossings of one interval), of the
    signs made by the second filter (``refined_signs``) and of those made by
    the exact fallback (``exact_signs``, ``exact_orders``), and
    of the crossings whose position was computed exactly because their
    values cancel (``exact_positions``), over every enumeration since the
    last :meth:`reset`."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(
            ("signs", "refined_signs", "exact_signs", "orders", "exact_orders", "exact_positions"), 0
        )

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                self.counts[k] += int(v)

    def reset(self):
        with self.lock:
            for k in self.counts:
                self.counts[k] = 0

    def snapshot(self) -> dict:
        with self.lock:
            return dict(self.counts)


STATS = _Stats()


_PLACE_EXACT = 2.0**-4
_G3 = _gamma(3)
