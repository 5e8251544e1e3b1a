"""Exact enumeration of activation regions on an interval, one layer at a time.

The points of the subdivision are kept sorted, each with the current layer's
preactivations (a row of ``z``). On every interval all of a layer's
preactivations are affine, so all the layer's crossings are found at once
(:func:`_cut_layer`: three numba calls). The next layer's preactivations
are then

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
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import NamedTuple

import numpy as np

from .._jit import compile_notice
from ..tolerance import REL_TOL
from . import _line1d_kernels as K
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

_BLOCK = 128  # points per block of the products (see _line1d_kernels.product_1d)
_CHUNK = 1  # blocks a thread takes at a time
_PAR_MIN = 1 << 22  # multiply-adds of a layer's product below which no helper is used
_NO_BPS = np.zeros(0)

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
    (in the order of the points) into rows ``off + rows`` of ``out``, handed
    out in chunks of whole blocks to whichever thread asks next."""

    def __init__(self, Z, rows, off, act, wt, b, nbps, out):
        self.args = (Z, rows, off)
        self.rest = (*act, wt, b, nbps, out)
        self.n = rows.size
        self.next = 0
        self.lock = threading.Lock()
        self.shape = (nbps.size, wt.shape[1])

    def work(self):
        """Run chunks until none is left; returns this thread's scales."""
        sc = np.zeros(self.shape)
        step = _CHUNK * _BLOCK
        while True:
            with self.lock:
                q0 = self.next
                self.next = min(q0 + step, self.n)
            if q0 >= self.n:
                return sc
            K.product_1d(*self.args, q0, min(q0 + step, self.n), *self.rest, sc, _BLOCK)


def enumerate_1d(net, domain, max_regions=DEFAULT_MAX_REGIONS) -> Subdivision:
    """Exact 1D enumeration; see :func:`regiongeom.activation_regions`."""
    compile_notice("the 1D engine", *_ENTRY_KERNELS, seconds=7)
    with one_blas_thread():
        return _enumerate_1d(net, domain, max_regions)


_ENTRY_KERNELS = (K.scales_1d, K.crossings_1d, K.split_1d, K.corrections_1d, K.product_1d, K.fill_new_rows_1d)


class Points(NamedTuple):
    """The sorted points of the subdivision (V,): positions ``x``, the neuron
    and breakpoint each is a crossing of (BOUNDARY at the ends), and the row
    of the current layer's values ``z`` holding each one's values."""

    x: np.ndarray
    neuron: np.ndarray
    bp: np.ndarray
    row: np.ndarray


class LayerCut(NamedTuple):
    """A layer's cut (:func:`_cut_layer`): the points after it; for each new
    interval the old one holding it (``parent``) and the piece of each of
    the layer's neurons (``pieces``); and for each crossing ``e`` (a new
    point, row ``V + e``) its old interval ``interval[e]``, its place (0..1)
    in it, its interpolated values, and either its index in ``direct`` (the
    next layer's values are computed) or the neurons
    ``fix_neuron[fix_ptr[e]:fix_ptr[e + 1]]`` whose activation departs from
    the interpolation along its interval, by ``fix_value``."""

    points: Points
    parent: np.ndarray
    pieces: np.ndarray
    interval: np.ndarray
    place: np.ndarray
    values: np.ndarray
    direct: np.ndarray
    fix_ptr: np.ndarray
    fix_neuron: np.ndarray
    fix_value: np.ndarray


def _enumerate_1d(net, domain, max_regions):
    lo, hi = domain.interval
    tol = REL_TOL * (hi - lo)  # crossings closer than this are merged
    pts = Points(
        np.array([lo, hi], np.float64), np.full(2, BOUNDARY, np.int64), np.zeros(2, np.int64), np.arange(2)
    )
    stack = list(layers(net))
    blocks = []  # (first neuron, parent interval, pieces) of each layer
    z, scale = affine(pts.x[:, None], *stack[0][:2]) if stack else None, None
    for i, (_, _, act, first) in enumerate(stack):
        nxt = stack[i + 1] if i + 1 < len(stack) else None
        if act is None:
            z, scale = affine(z, *nxt[:2]) if nxt else None, None
            continue
        if scale is None:
            scale = K.scales_1d(z, act.breakpoints)
        cut = (pts, z, scale, act, tol, first, max_regions)
        if nxt is None:
            res = _cut_layer(*cut)
        else:
            res, z, scale = _cut_and_next(net, i, nxt, cut)
        if res is None:
            raise limit_error(None, max_regions, net)
        pts = res.points
        blocks.append((first, res.parent, res.pieces))
    x = pts.x
    pat = assemble_patterns(blocks, x.size - 1, net.n_neurons)
    inner = np.arange(1, x.size - 1)
    return Subdivision(
        vertices=x, edges=np.stack([inner, inner], axis=1), edge_regions=np.stack([inner - 1, inner], axis=1),
        edge_neurons=pts.neuron[1:-1], edge_breakpoints=pts.bp[1:-1], patterns=pat, measures=np.diff(x),
    )  # fmt: skip


def _cut_layer(pts, z, scale, act, tol, first, max_regions):
    """Cut the :class:`Points` ``pts`` by every neuron of a layer, whose
    preactivations at point ``i`` are ``z[pts.row[i]]``; signs are snapped at
    ``REL_TOL`` times each (neuron, breakpoint)'s largest ``|z - t|``
    (``scale``), and crossings closer than ``tol`` are merged. Returns a
    :class:`LayerCut`, or None when the intervals would exceed
    ``max_regions``."""
    bps, slopes, icpts = act
    thr = REL_TOL * scale
    x, rowof = pts.x, pts.row
    S, cstart, cr, ck, ca, cpos, keep, nk = K.crossings_1d(x, rowof, z, thr, bps, tol)
    if x.size + nk - 1 > max_regions:
        return None
    xn, neun, bpn, rown, parent, pieces, cnew, anew, znew, dptr, dj = K.split_1d(
        x, rowof, z, thr, S, cstart, cr, ck, ca, cpos, keep, nk, pts.neuron, pts.bp, bps, first
    )
    direct, cptr, cj, cv = K.corrections_1d(rowof, z, cstart, cnew, anew, znew, dptr, dj, bps, slopes, icpts)
    return LayerCut(Points(xn, neun, bpn, rown), parent, pieces, cnew, anew, znew, direct, cptr, cj, cv)


def _cut_and_next(net, i, nxt, cut):
    """Cut layer ``i`` (``_cut_layer(*cut)``) and compute the next layer's
    (``nxt``) values at the points after it. Returns the :class:`LayerCut`
    (None past ``max_regions``), the values (rows as in its points' ``row``)
    and their scales (None if the next layer has no activation)."""
    pts, z, _, act = cut[:4]
    rowof = pts.row
    w, b, nact = nxt[:3]
    V, n = z.shape
    m = w.shape[0]
    wt = _transposed(net, i + 1)
    nbps = nact[0] if nact is not None else _NO_BPS
    # room for the old points and, most likely, the crossings: the rows of
    # the old points are written before the number of crossings is known
    cap = 2 * V + n * act[0].size
    out = buffer(i % 2, (cap, m))
    old = _Product(z, rowof, 0, act, wt, b, nbps, out)
    helper = _helper() if V * n * m >= _PAR_MIN else None
    fut = helper.submit(old.work) if helper is not None else None
    scales = []
    try:
        res = _cut_layer(*cut)
        if res is None:  # past max_regions: stop the product too
            with old.lock:
                old.next = old.n
        scales.append(old.work())
    finally:
        if fut is not None:
            scales.append(fut.result())
    if res is None:
        return None, None, None
    n_points, n_new = res.points.x.size, res.interval.size
    if n_points > cap:
        grown = np.empty((n_points, m))
        grown[:V] = out[:V]
        out = grown
    out = out[:n_points]
    if res.direct.size:
        new = _Product(res.values, res.direct, V, act, wt, b, nbps, out)
        fut = helper.submit(new.work) if helper is not None and res.direct.size > _CHUNK * _BLOCK else None
        scales.append(new.work())
        if fut is not None:
            scales.append(fut.result())
    scale = np.maximum.reduce(scales) if len(scales) > 1 else scales[0]
    isdirect = np.zeros(n_new, np.bool_)
    isdirect[res.direct] = True
    K.fill_new_rows_1d(
        out,
        rowof,
        res.interval,
        res.place,
        res.fix_ptr,
        res.fix_neuron,
        res.fix_value,
        isdirect,
        wt,
        nbps,
        scale,
    )
    return res, out, (scale if nact is not None else None)


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
