"""Exact enumeration of activation regions on an interval, one layer at a time.

The points of the subdivision are kept sorted, each with the current layer's
preactivations (a row of ``z``). On every interval all of a layer's
preactivations are affine, so all the layer's crossings are found at once
(:func:`_cut_layer`). The next layer's preactivations are then

- computed (``act(z) @ w.T + b``, :func:`._line1d_kernels.product_1d`) at the
  old points, which does not need the cut: the product runs on a helper
  thread *while* the cut runs, and the two threads share what is left of it;
- interpolated at the new points (:func:`._line1d_kernels.fill_new_rows_1d`),
  exact up to rounding: their activations are affine along their old
  interval except for the few neurons that cross it, corrected one by one;
- computed as well at the new points of old intervals that many neurons
  cross (``direct``), where the corrections would cost more.

The products go block by block (``_BLOCK``) in the order of the points, and
blocks never depend on which thread runs them: the result is the same, bit
for bit, with or without the helper.

**Exactness.** The combinatorics are exactly those of the float64 weights:
which intervals exist, their patterns, and which neuron each point belongs
to. Only positions (and so lengths) are rounded. Every sign and every order
is decided by a filter with an exact fallback (:class:`LayerBounds` gives
the error bounds and their derivation, :class:`Fallback` the fallback): an
interval exists iff its exact length is positive. Its float end points may
still coincide (two crossings closer than the rounding of their positions):
it is then reported with length 0.0. Counts of the decisions and of the
exact fallbacks are kept in :data:`STATS`.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import NamedTuple

import numpy as np

from .._jit import compile_notice
from . import _line1d_kernels as K
from .. import _exact as X
from .core import (
    BOUNDARY,
    DEFAULT_MAX_REGIONS,
    Subdivision,
    affine,
    assemble_patterns,
    buffer,
    layers,
    limit_error,
    one_blas_thread,
)

__all__ = ["enumerate_1d", "STATS"]

_BLOCK = 128  # points per block of the products (see _line1d_kernels.product_1d)
_CHUNK = 1  # blocks a thread takes at a time
_PAR_MIN = 1 << 22  # multiply-adds of a layer's product below which no helper is used

_pool_lock = threading.Lock()
_pool_state = {"pool": None}
# a forked child has the pool but not its thread: it makes its own
os.register_at_fork(after_in_child=lambda: _pool_state.update(pool=None))


def _helper():
    """The helper thread the products share their work with, or None (one
    core, or ``REGIONGEOM_NUM_THREADS=1``)."""
    with _pool_lock:
        if _pool_state["pool"] is None:
            env = os.environ.get("REGIONGEOM_NUM_THREADS", "").strip()
            n = int(env) if env.isdigit() else (os.cpu_count() or 1)
            if n < 2:
                return None
            from concurrent.futures import ThreadPoolExecutor

            _pool_state["pool"] = ThreadPoolExecutor(1, thread_name_prefix="regiongeom")
        return _pool_state["pool"]


class _Product:
    """One product (:func:`._line1d_kernels.product_1d`) over the values ``Z[rows]``
    (in the order of the points) into rows ``off + rows`` of ``out`` (and
    their bounds), handed out in chunks of whole blocks to whichever thread
    asks next."""

    def __init__(self, Z, rows, off, act, wt, b, ein, consts, out, bounds):
        self.args = (Z, rows, off)
        self.rest = (*act, wt, b, ein, consts, out, *bounds)
        self.n = rows.size
        self.next = 0
        self.lock = threading.Lock()

    def work(self):
        """Run chunks until none is left."""
        step = _CHUNK * _BLOCK
        while True:
            with self.lock:
                q0 = self.next
                self.next = min(q0 + step, self.n)
            if q0 >= self.n:
                return
            K.product_1d(*self.args, q0, min(q0 + step, self.n), *self.rest, _BLOCK)


def enumerate_1d(net, domain, max_regions=DEFAULT_MAX_REGIONS) -> Subdivision:
    """Exact 1D enumeration; see :func:`regiongeom.activation_regions`."""
    compile_notice("the 1D engine", *_ENTRY_KERNELS, seconds=7)
    with one_blas_thread():
        return _enumerate_1d(net, domain, max_regions)


_ENTRY_KERNELS = (K.signs_1d, K.crossings_1d, K.split_1d, K.corrections_1d, K.product_1d, K.fill_new_rows_1d)


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


class Rows(NamedTuple):
    """A layer's values at the points (rows of ``z``) with their bounds ``A,
    C, H`` and the layer's :class:`LayerBounds`."""

    z: np.ndarray
    A: np.ndarray
    C: np.ndarray
    H: np.ndarray
    lb: LayerBounds


class LayerCut(NamedTuple):
    """A layer's cut (:func:`_cut_layer`): the points after it; for each new
    interval the old one holding it (``parent``) and the piece of each of
    the layer's neurons (``pieces``); and for each crossing ``e`` (a new
    point, row ``V + e``) its old interval ``interval[e]``, its place (0..1)
    in it, its interpolated values and the bound ``E`` of their errors, and either
    its index in ``direct`` (the next layer's values are computed) or the
    neurons ``fix_neuron[fix_ptr[e]:fix_ptr[e + 1]]`` whose activation
    departs from the interpolation along its interval, by ``fix_value``."""

    points: Points
    parent: np.ndarray
    pieces: np.ndarray
    interval: np.ndarray
    place: np.ndarray
    values: np.ndarray
    E: np.ndarray
    direct: np.ndarray
    fix_ptr: np.ndarray
    fix_neuron: np.ndarray
    fix_value: np.ndarray


def _enumerate_1d(net, domain, max_regions):
    lo, hi = domain.interval
    pts = Points(
        np.array([lo, hi], np.float64), np.zeros(2), np.full(2, BOUNDARY, np.int64), np.zeros(2, np.int64), np.arange(2)
    )
    stack = list(layers(net))
    blocks = []  # (first neuron, parent interval, pieces) of each layer
    fb = Fallback(net, blocks)
    rows = first_rows(net, pts.x, stack[0]) if stack else None
    for i, (_, _, act, first) in enumerate(stack):
        nxt = stack[i + 1] if i + 1 < len(stack) else None
        if act is None:
            rows = affine_rows(net, i + 1, rows, nxt) if nxt else None
            continue
        cut = (pts, rows, act, first, max_regions, fb)
        if nxt is None:
            res = _cut_layer(*cut)
        else:
            res, rows = _cut_and_next(net, i, nxt, cut)
        if res is None:
            raise limit_error(None, max_regions, net)
        pts = res.points
        blocks.append((first, res.parent, res.pieces))
    fb.flush()
    x = pts.x
    pat = assemble_patterns(blocks, x.size - 1, net.n_neurons)
    inner = np.arange(1, x.size - 1)
    return Subdivision(
        vertices=x, edges=np.stack([inner, inner], axis=1), edge_regions=np.stack([inner - 1, inner], axis=1),
        edge_neurons=pts.neuron[1:-1], edge_breakpoints=pts.bp[1:-1], patterns=pat, measures=np.diff(x),
    )  # fmt: skip


def _decide_signs(pts, rows, act, first, fb, n_cut):
    """The exact signs ``S`` (V, K n_cut) of every neuron at every point:
    the filter first, then the exact fallback for the signs it leaves.
    Values found exactly on a breakpoint are set to it."""
    bps = act[0]
    lb = rows.lb
    S = np.empty((pts.x.size, bps.size * n_cut), np.int8)
    nu = K.signs_1d(rows.z, pts.row, rows.A, rows.C, lb.N, lb.B, lb.safe, lb.T, bps, n_cut, S)
    STATS.add(signs=S.size, exact_signs=nu)
    if nu:
        fb.signs(S, pts, rows.z, bps, first, n_cut)
    return S


def _cut_layer(pts, rows, act, first, max_regions, fb, S=None, n_cut=None):
    """Cut the :class:`Points` ``pts`` by every neuron of a layer, whose
    values at point ``i`` are ``rows.z[pts.row[i]]``. ``S``: the signs if
    already decided (:func:`_decide_signs`). Only the first ``n_cut``
    columns of ``z`` are neurons (default all); the others are carried:
    interpolated at the new points, never cut. Returns a :class:`LayerCut`,
    or None when the intervals would exceed ``max_regions``."""
    bps = act[0]
    n_cut = rows.z.shape[1] if n_cut is None else n_cut
    if S is None:
        S = _decide_signs(pts, rows, act, first, fb, n_cut)
    lb = rows.lb
    z, x, rowof = rows.z, pts.x, pts.row
    cstart, cr, ck, ca, cda, cpos, cex, sure, nunsure = K.crossings_1d(
        x, pts.ex, rowof, z, rows.A, rows.C, lb.N, lb.B, lb.safe, lb.T, lb.G3, S, bps, n_cut
    )
    keep = sure  # (the first crossing of each interval is sure)
    if cda.size and cda.max() > _PLACE_EXACT:
        STATS.add(exact_positions=fb.positions(cstart, cr, ck, cda, cpos, cex, first))
    STATS.add(orders=max(cr.size - int(np.count_nonzero(cstart[1:] > cstart[:-1])), 0), exact_orders=nunsure)
    if nunsure:
        fb.order(cstart, cr, ck, ca, cda, cpos, cex, keep, first)
    nk = int(np.count_nonzero(keep))
    if x.size + nk - 1 > max_regions:
        return None
    xn, exn, neun, bpn, rown, parent, pieces, cnew, anew, znew, En, dptr, dj = K.split_1d(
        x, pts.ex, rowof, z, rows.A, rows.C, lb.N, lb.B, lb.safe, lb.T, S, cstart, cr, ck, ca, cda, cpos, cex,
        keep, nk, pts.neuron, pts.bp, bps, first, n_cut, lb.G3,
    )  # fmt: skip
    direct, cptr, cj, cv = K.corrections_1d(rowof, z, cstart, cnew, anew, znew, dptr, dj, *act)
    return LayerCut(Points(xn, exn, neun, bpn, rown), parent, pieces, cnew, anew, znew, En, direct, cptr, cj, cv)


def _cut_and_next(net, i, nxt, cut):
    """Cut layer ``i`` (``_cut_layer(*cut)``) and compute the next layer's
    (``nxt``) values at the points after it. Returns the :class:`LayerCut`
    (None past ``max_regions``) and the next layer's :class:`Rows` (rows as
    in its points' ``row``)."""
    pts, rows, act, first, _, fb = cut
    z = rows.z
    rowof = pts.row
    w, b = nxt[:2]
    V, n = z.shape
    m = w.shape[0]
    wt = _transposed(net, i + 1)
    nlb = LayerBounds.of(net, i + 1)
    consts = act_constants(act, nlb)
    # the signs first: an exact fallback may set values onto their breakpoints
    S = _decide_signs(pts, rows, act, first, fb, n)
    # room for the old points and, most likely, the crossings: the rows of
    # the old points are written before the number of crossings is known
    cap = 2 * V + n * act[0].size
    out = buffer(i % 2, (cap, m))
    bnd = tuple(np.empty(cap) for _ in range(3))
    lb = rows.lb
    ein = lb.safe * (lb.Nmax * rows.A + lb.Bmax * rows.C) + lb.T  # the largest error of each row
    old = _Product(z, rowof, 0, act, wt, b, ein, consts, out, bnd)
    helper = _helper() if V * n * m >= _PAR_MIN else None
    fut = helper.submit(old.work) if helper is not None else None
    try:
        res = _cut_layer(*cut, S=S)
        if res is None:  # past max_regions: stop the product too
            with old.lock:
                old.next = old.n
        old.work()
    finally:
        if fut is not None:
            fut.result()
    if res is None:
        return None, None
    n_points, n_new = res.points.x.size, res.interval.size
    if n_points > cap:
        grown = np.empty((n_points, m))
        grown[:V] = out[:V]
        out = grown
        bnd = tuple(np.concatenate([v[:V], np.empty(n_points - V)]) for v in bnd)
    out = out[:n_points]
    bnd = tuple(v[:n_points] for v in bnd)
    if res.direct.size:
        new = _Product(res.values, res.direct, V, act, wt, b, res.E, consts, out, bnd)
        fut = helper.submit(new.work) if helper is not None and res.direct.size > _CHUNK * _BLOCK else None
        new.work()
        if fut is not None:
            fut.result()
    isdirect = np.zeros(n_new, np.bool_)
    isdirect[res.direct] = True
    K.fill_new_rows_1d(
        out, rowof, res.interval, res.place, res.fix_ptr, res.fix_neuron, res.fix_value, isdirect, wt,
        res.values, res.E, consts, *bnd,
    )  # fmt: skip
    return res, Rows(out, *bnd, nlb)


# -- error bounds ----------------------------------------------------------------
_U = 2.0**-53  # unit roundoff


def _gamma(k):
    """``gamma_k = k u / (1 - k u)``: a sum of ``k`` rounded terms errs by at
    most ``gamma_k`` times the sum of their magnitudes (Higham, Accuracy and
    Stability of Numerical Algorithms, 2002, section 3.1), in any order."""
    return k * _U / (1.0 - k * _U)


class LayerBounds(NamedTuple):
    """The constants of a layer's error bounds.

    Every row ``r`` of a layer's values carries three numbers ``A[r], C[r],
    H[r]`` such that, for every neuron ``j`` (weights ``W_j``, bias ``b_j``,
    ``N_j = ||W_j||_1``, ``B_j = |b_j|``),

    - ``|z[r, j] - z_j(x_r)| <= safe (N_j A[r] + B_j C[r]) + T``, where
      ``z_j(x_r)`` is the exact value at the point's exact position ``x_r``;
    - ``|z[r, j]| <= safe (N_j H[r] + B_j)``.

    They are set as follows (u = 2^-53, ``gamma_k = k u / (1 - k u)``, ``n``
    the layer's fan-in, ``G = gamma_{n+8}``; ``lip`` and ``cact`` the
    largest ``|slope|`` and ``|intercept|`` of the previous activation):

    - a computed row ``z = act(h) @ W.T + b`` (:func:`._line1d_kernels.product_1d`):
      with ``h`` the largest ``|act|`` at the row plus ``cact``, the
      activations err by at most ``E = lip (safe' (N'max A' + B'max C') +
      T'') + gamma_2 (h + 2 cact) + 8 eta`` (the previous layer's error,
      through the activation's Lipschitz constant, plus the rounding of
      ``slope z + intercept``; ``eta = 2^-1074`` for underflow), and the sum
      of ``n + 1`` rounded products errs by at most ``G (N_j h + B_j)``
      whatever its order (BLAS, and the constant neurons summed apart):
      ``A = E + G h``, ``C = G``, ``H = h``, ``T = (n + 8) eta``;
    - the first layer (``z = w x + b`` at the domain's ends, exact): ``E =
      0``, ``h = |x|``;
    - a crossing at place ``a`` of its old interval (ends ``0`` and ``1``,
      interpolated ``z = z0 + a (z1 - z0)``): the exact place ``a*`` of the
      root of ``d = z_r - t`` with float values ``d0, d1`` of exact signs and
      errors at most ``e0, e1`` (``e`` plus the rounding of ``z - t``) is
      ``d0* / (d0* - d1*)``, so ``|a - a*| <= max(e0, e1) / (|d0| + |d1| - e0
      - e1) + gamma_2`` (``da``, and 1 when the denominator is not
      positive). Then ``|z - z_j(x*)| <= max(err0, err1) + da (|z1 - z0| +
      err0 + err1) + gamma_3 (2 |z0| + |z1|)``, as ``z_j`` is affine on the
      interval: ``A = max(A0, A1) + da (H0 + H1 + A0 + A1) + 3 gamma_3
      max(H0, H1)``, ``C = max(C0, C1) + da (2 + C0 + C1) + 3 gamma_3``, ``H
      = max(H0, H1)``, ``T`` becomes ``3 T``. The crossing neurons are set
      to their breakpoint exactly. The same bound with ``x`` for ``z`` (no
      ``H``) bounds the crossing's position;
    - an interpolated next-layer row (:func:`._line1d_kernels.fill_new_rows_1d`):
      in exact arithmetic the interpolation plus the corrections equals the
      product at the crossing's (float) values, up to the interpolation's
      rounding, which ``E`` already covers; the rounding of the two products
      interpolated, of the interpolation and of the corrections add at most
      ``8 G (N_j (H0 + H1 + h + 2 cact) + B_j)``: ``A = 2 E + 8 G (H0 + H1 + h
      + 2 cact)``, ``C = 8 G``, ``H = h + A``.

    ``safe = 1 + 64 G + 2^-40`` covers the factors ``1 + G`` dropped above and
    the rounding of the bounds' own few operations. The bounds factor each
    neuron's error through ``N_j`` and one number per row, so they are loose
    when a layer's neurons have very different scales: a loose bound only
    sends more decisions to the exact fallback.
    """

    N: np.ndarray
    B: np.ndarray
    Nmax: float
    Bmax: float
    G: float
    G3: float
    safe: float
    T: float

    @staticmethod
    def of(net, i):
        """The bounds of layer ``i`` of ``net`` (made once per network)."""
        with _transposes_lock:
            per_net = _bounds.setdefault(net, {})
            lb = per_net.get(i)
            if lb is None:
                w = np.asarray(net.weights[i], np.float64)
                n = w.shape[1]
                N, B = np.abs(w).sum(axis=1) * (1.0 + _gamma(n)), np.abs(np.asarray(net.biases[i], np.float64))
                G = _gamma(n + 8)
                lb = per_net[i] = LayerBounds(
                    N, B, float(N.max(initial=0.0)), float(B.max(initial=0.0)), G, _gamma(4),
                    1.0 + 64.0 * G + 2.0**-40, (n + 8) * K.ETA,
                )  # fmt: skip
        return lb


_bounds = weakref.WeakKeyDictionary()


def act_constants(act, nlb):
    """The constants ``(lip, cact, gamma_2, G)`` of a product
    (:func:`._line1d_kernels.product_1d`) through the activation ``act`` to
    the next layer (bounds ``nlb``)."""
    _, slopes, icpts = act
    lip, cact = float(np.abs(slopes).max()), float(np.abs(icpts).max())
    return np.array([lip, cact, _gamma(2), nlb.G])


def first_rows(net, x, layer):
    """The first layer's :class:`Rows` at the exact points ``x``."""
    lb = LayerBounds.of(net, 0)
    z = affine(x[:, None], *layer[:2])
    h = np.abs(x)
    return Rows(z, lb.G * h, np.full(x.size, lb.G), h, lb)


def affine_rows(net, i, rows, layer):
    """Layer ``i``'s :class:`Rows` after an affine layer (no activation)."""
    lb, nlb = rows.lb, LayerBounds.of(net, i)
    z = affine(rows.z, *layer[:2])
    h = np.abs(rows.z).max(axis=1, initial=0.0)
    E = lb.safe * (lb.Nmax * rows.A + lb.Bmax * rows.C) + 3.0 * lb.T
    return Rows(z, E + nlb.G * h, np.full(h.size, nlb.G), h, nlb)


class _Stats:
    """Counts of the 1D engine's decisions (``signs``: a neuron's side of a
    breakpoint at a point; ``orders``: two crossings of one interval) and of
    those made by the exact fallback (``exact_signs``, ``exact_orders``), and
    of the crossings whose position was computed exactly because their
    values cancel (``exact_positions``), over every enumeration since the
    last :meth:`reset`."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(("signs", "exact_signs", "orders", "exact_orders", "exact_positions"), 0)

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


# -- the exact fallback ---------------------------------------------------------
class Fallback:
    """The exact decisions the filter leaves (:mod:`regiongeom._exact`).

    Every point's exact position is exact: a domain end is a float; any
    other point is the root of one neuron's affine map (its ``neuron``,
    ``bp``) on the old interval it was created in, a map with a nonzero
    slope (its values had strictly opposite signs at that interval's ends).
    That map is read from the pattern of *either* interval next to the
    point, at any later layer: both lie inside that old interval, so their
    patterns agree on the layers before the point's neuron's, the only ones
    the map depends on. A neuron ``j`` of a later layer is continuous, and
    affine on each interval next to the point, so its map on either one
    gives its exact value at the point (continuity). The crossings of one
    old interval are roots of the current layer's maps on that interval's
    pattern, compared exactly as rationals.
    """

    def __init__(self, net, blocks):
        self.net = net
        self.blocks = blocks  # (first, parent, pieces) of the layers cut so far
        self._exact = None
        self._patterns = {}

    @property
    def exact(self):
        if self._exact is None:
            self._exact = X.ExactNet(self.net)
        return self._exact

    def flush(self):
        self._patterns = {}

    def pattern(self, q):
        """The pattern of current interval ``q`` on the layers cut so far."""
        key = (len(self.blocks), int(q))
        pat = self._patterns.get(key)
        if pat is None:
            pat = np.zeros(self.net.n_neurons, np.int8)
            idx = int(q)
            for first, parent, pieces in reversed(self.blocks):
                pat[first : first + pieces.shape[1]] = pieces[idx]
                idx = int(parent[idx])
            self._patterns[key] = pat
        return pat

    def signs(self, S, pts, z, bps, first, n_cut):
        """Decide the signs ``S == UNSURE`` exactly; set values exactly on a breakpoint to it."""
        V = pts.x.size
        for c, i in zip(*np.nonzero(S == K.UNSURE), strict=True):
            k, j = divmod(int(i), n_cut)
            pat = self.pattern(c if c < V - 1 else c - 1)
            line = self.exact.line(pat, first + j, k)
            if pts.neuron[c] == BOUNDARY:
                s = X.sign_at_float_1d(line, pts.x[c])
            else:
                s = X.sign_at_root(line, self.exact.line(pat, int(pts.neuron[c]), int(pts.bp[c])))
            S[c, i] = s
            if s == 0:
                z[pts.row[c], j] = bps[k]

    def order(self, cstart, cr, ck, ca, cda, cpos, cex, keep, first):
        """Order exactly each run of crossings of one interval whose error
        intervals overlap (``keep`` False after its first), and merge those
        at the same exact point (``keep`` stays False)."""
        for c in np.nonzero(cstart[1:] - cstart[:-1] > 1)[0]:
            i0, i1 = int(cstart[c]), int(cstart[c + 1])
            starts = np.nonzero(keep[i0:i1])[0] + i0
            for s, e in zip(starts.tolist(), [*starts[1:].tolist(), i1], strict=True):
                if e - s > 1:
                    self._order_run(int(c), s, e, cr, ck, ca, cda, cpos, cex, keep, first)

    def _order_run(self, c, i0, i1, cr, ck, ca, cda, cpos, cex, keep, first):
        """Sort crossings ``i0 .. i1 - 1`` of interval ``c`` by their exact
        roots; they get their exact positions rounded to the nearest float."""
        pat = self.pattern(c)
        roots = {i: X.root_1d(self.exact.line(pat, first + int(cr[i]), int(ck[i]))) for i in range(i0, i1)}
        order = sorted(range(i0, i1), key=lambda i: (roots[i], cr[i], ck[i]))
        for a in (cr, ck, ca, cda, cex):
            a[i0:i1] = a[order].copy()
        prev = None
        for s, i in enumerate(order):
            keep[i0 + s] = prev is None or roots[i] != prev
            cpos[i0 + s] = float(roots[i])
            cex[i0 + s] = abs(cpos[i0 + s]) * 2.0**-52
            prev = roots[i]

    def positions(self, cstart, cr, ck, cda, cpos, cex, first):
        """The exact positions (rounded) of the crossings whose place is known
        to worse than ``_PLACE_EXACT`` (cancellation in their values)."""
        bad = np.nonzero(cda > _PLACE_EXACT)[0]
        for i in bad.tolist():
            c = int(np.searchsorted(cstart, i, side="right") - 1)
            root = X.root_1d(self.exact.line(self.pattern(c), first + int(cr[i]), int(ck[i])))
            cpos[i] = float(root)
            cex[i] = abs(cpos[i]) * 2.0**-52
        return bad.size


_PLACE_EXACT = 2.0**-20


_transposes = weakref.WeakKeyDictionary()
_transposes_lock = threading.Lock()


def _transposed(net, i):
    """``net.weights[i].T`` as a C-contiguous array, made once per network
    (the weights are read-only; the products read whole rows of it)."""
    with _transposes_lock:
        per_net = _transposes.setdefault(net, {})
        wt = per_net.get(i)
        if wt is None:
            wt = per_net[i] = np.ascontiguousarray(net.weights[i].T, np.float64)
    return wt
