"""numba kernels of the Theorem-2 grid walk (eq. 6 on a regular grid), driven
by :mod:`regiongeom._theorem2_grid`: each noise sample's grid walked in row
order, every neuron's value and gradient carried from pixel to pixel.

The per-point kernels (:mod:`regiongeom._theorem2_kernels`) already move the
values along a shared region, but recompute every later layer from scratch
whenever a neuron changes piece (about every other pixel of a 256 x 256 map
of network M), weigh every term with a libm ``exp`` and screen every term
one at a time. Here, per pixel:

* the first layer's values and term weights do not depend on the noise
  (it enters the pieces only): :func:`layer0_table` computes them once per
  block of points for every sample;
* a later layer's values are moved along its affine map, ``z += grad z .
  (x_p - x_{p-1})``, and every ``REFRESH`` pixels recomputed;
* when neurons of layer ``l`` change piece, the next layer gets the rank-k
  correction ``z_{l+1} += W_{l+1}[:, j] dh_j`` (and its gradients
  ``W_{l+1}[:, j] dslope_j grad z_l[j]``); only the layers after that are
  recomputed;
* a neuron's piece is taken from the moved value only when its distance to
  every breakpoint is larger than ``tau[l]``, a bound far above the rounding
  of the moved value (see :func:`regiongeom._theorem2_grid.margins`);
  otherwise the pixel is recomputed from scratch;
* every term is weighed with a table ``exp`` (relative error about 2e-16)
  in loops that vectorise; a term with an exponent of ``ECUT`` or more
  (weight below ``exp(-512)`` of the largest possible) is left out, and the
  pair goes to the per-point kernels unless all such terms are negligible;
* its good indicator is decided by the screen's column bound (the widest
  or second widest open neuron of each later layer stays open); when the
  bound leaves terms open that are not negligible, :func:`_decide` decides
  them after the pixel's sum (the per-point screen's dead-layer test, then
  the per-point ``_fallback``'s recomputation from the walk's state); a
  pair goes to the per-point kernels only for a term it leaves open (a
  later unit within ``tau`` of a breakpoint) or for the large exponents.

The result equals the per-point kernels' to rounding (a few 1e-16
relative). Dense networks only (every weight after the first layer
nonzero): good iff every later activated layer keeps an open unit.

Speed (numba): the kernels are compiled with every array argument marked
``noalias`` (:class:`NoAlias`), so that the loops over a layer's neurons
vectorise without run-time overlap checks; every offset into a flat array
is written ``_nn(offset)``, a select inlined in numba's IR (LLVM then knows
the index is not negative and drops numba's wraparound code, which otherwise
turns each loop into gathers; numba's ``max`` and ``min`` are calls LLVM does
not see through, so none is used in a kernel); no loop converts floats to
64-bit integers (AVX2 cannot vectorise it: the exp table's index is an
int32, and its gather vectorises); no operand of the screen's test is
subnormal (on Intel cores each such operation takes a microcode assist, some
40 cycles: with the bounds' room for underflow added in the loop, the test
took about 80 % of the walk's time).
LLVM inlines the helpers into :func:`grid_chunk`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit
from numba.core.compiler import Compiler

REFRESH = 32  # pixels between recomputations of the values from scratch (16: MAP-M's walk about 5% slower)
GRAD_REFRESH = 256  # and of the gradients (a multiple of REFRESH)
RANK = 8  # at most this many neurons changing piece in a layer: rank-k update of the next
ZERO = np.int64(0)  # layer 0 and counters as int64, not a literal: the helpers compile once
HALF_ULP = 2.0**-53
TINY = 2.0**-1022  # the smallest normal number: room for a product's underflow
ECUT = 512.0  # terms with exponents from this on are left out (negligible unless the whole sum is)
EXP_CUT = math.exp(-ECUT) * (1.0 + 2.0**-50)  # exp(-e) for e >= ECUT is below this
_FM = {"reassoc", "contract", "nsz", "arcp"}  # vectorised loops; changes only the rounding

_EXPTAB = np.exp(-np.arange(8 * int(ECUT) + 8) / 8.0)


class NoAlias(Compiler):
    """numba's compiler with every pointer argument of the compiled function
    marked ``noalias`` (numba has the flag, but no ``njit`` option for it),
    for every kernel of this file: ``@njit(pipeline_class=NoAlias, ...)``.

    Without it LLVM must assume that any two arrays may overlap: it guards
    each vectorised loop by run-time overlap checks and gives up
    vectorising a loop that writes more than a few arrays (about 35 % of
    the walk's time went to those checks and scalar loops; with the flag,
    MAP-M's walk takes about 0.6 times as long, same bits). The contract:
    no two array arguments (the arrays in ``Net`` and ``Grid`` included)
    share memory; :func:`make_grid_scratch`, ``Packed`` and
    :func:`theorem2_grid` allocate each separately."""

    def define_pipelines(self):
        self.state.flags.noalias = True
        return super().define_pipelines()


class Grid(NamedTuple):
    """One thread's working arrays (``W`` the widest layer, ``d`` inputs)."""

    z: np.ndarray  # (L, W) pre-bias values
    grad: np.ndarray  # (L, d, W) their input gradients
    gn: np.ndarray  # (L, W) gradient norms
    v: np.ndarray  # (L, W) noisy preactivations
    h: np.ndarray  # (L, W) outputs
    slope: np.ndarray  # (L, W)
    piece: np.ndarray  # (L, W) int64
    margin: np.ndarray  # (L, W) distance to the nearest breakpoint
    dh: np.ndarray  # (L, W) change of the output against the previous pixel's pieces
    ds: np.ndarray  # (L, W) change of the slope
    widest: np.ndarray  # (L,) widest margin of an open neuron (-inf: none open)
    widest_j: np.ndarray  # (L,) int64: that neuron
    second: np.ndarray  # (L,) the second widest (-inf: none)
    second_j: np.ndarray  # (L,) int64
    w: np.ndarray  # (W,) one layer's term weights
    ok: np.ndarray  # (W,) 1.0: their indicators decided good, else 0.0
    delta: np.ndarray  # (W,) how far the pinned neuron's output moves
    e: np.ndarray  # (W,) the Gaussian exponents (and _scan's open margins)
    idx: np.ndarray  # (W,) their table entries (integers, as floats)
    tab: np.ndarray  # (W,) scratch (:func:`_decide`)
    changed: np.ndarray  # (W,) int64


def make_grid_scratch(L, W, d):
    def lw(dtype=np.float64):
        return np.zeros((L, W), dtype)

    return Grid(z=lw(), grad=np.zeros((L, d, W)), gn=lw(), v=lw(), h=lw(), slope=lw(), piece=lw(np.int64),
                margin=lw(), dh=lw(), ds=lw(), widest=np.zeros(L), widest_j=np.zeros(L, np.int64), second=np.zeros(L),
                second_j=np.zeros(L, np.int64), w=np.zeros(W), ok=np.zeros(W),
                delta=np.zeros(W), e=np.zeros(W), idx=np.zeros(W), tab=np.zeros(W), changed=np.zeros(W, np.int64))  # fmt: skip


@njit(inline="always", cache=True)
def _nn(i):  # pragma: no cover
    """``max(i, 0)`` as a select that LLVM sees (numba's ``max`` is a call)."""
    return i if i > 0 else 0


@njit(pipeline_class=NoAlias, cache=True, nogil=True)
def grid_chunk(net, opt, X, noise, s, p0, p1, g, tau, cb, tz, tw, tb, direct, f, f_layer, flag):  # pragma: no cover
    """Eq. (6) for sample ``s`` at the points ``p0 <= p < p1`` (consecutive
    points near each other: a grid in row order), into ``f[s * P + p]`` (with
    ``opt.by_layer``, each layer's share into ``f_layer``); ``flag[s * P +
    p]`` set for the pairs to recompute with the per-point kernels. Starts
    from scratch at ``p0``: the result does not depend on what ``g`` held.

    Point ``p`` from the state at ``p - 1``: a layer's moved values are exact
    (to rounding) while every earlier layer keeps its pieces. At the first
    layer ``f`` where neurons change piece, the next layer's values and
    gradients get the rank-k correction of those neurons (listed in
    ``g.changed`` by :func:`_scan`, still there when layer ``f + 1`` is
    corrected); every later layer is computed from scratch. When a later
    layer's value is within ``tau`` of a breakpoint, the point is computed
    from scratch.

    The first layer's values and weights come from the table of
    :func:`layer0_table` (``tz``, ``tw``, ``tb``; it also left the first
    layer's gradients and norms in ``g``) or, with ``direct`` (a single
    noise sample: the table would be used once), are computed here by the
    same helpers (the same bits).

    Every helper is a leaf (it calls no other function): numba then drops
    the reference counting of the NamedTuples' arrays in it, which otherwise
    costs more than the helper's work.
    """
    P, la = X.shape[0], net.last_act
    if direct:
        _gradients(net, g, ZERO)
        _norms(net, g, ZERO)
    for p in range(p0, p1):
        n = s * P + p
        since = p - p0
        moved = since % REFRESH != 0  # else from scratch
        grads = since % GRAD_REFRESH == 0  # from scratch, also every gradient
        while True:
            first, n_first, ok = np.int64(-1), ZERO, True  # first: the first layer with a neuron changing piece
            fresh_from = la + 1 if moved else 1  # layers from here on recomputed from scratch
            for ly in range(la + 1):
                if ly == 0:
                    if direct:
                        _values(net, g, ZERO, X, p)
                    else:
                        _row(g.z, ZERO, tz, p - p0)
                elif ly >= fresh_from:
                    _values(net, g, ly, X, p)
                    if (moved and ly > 0) or grads or first >= 0:
                        _gradients(net, g, ly)
                        _norms(net, g, ly)
                else:
                    _move(net, g, ly, X, p)
                    if ly == first + 1:
                        _rank(net, g, first, ly, n_first)
                        _norms(net, g, ly)
                if net.has_act[ly]:
                    if net.bp_off[ly + 1] - net.bp_off[ly] == 1:
                        nd, n_small = _pieces_step(net, g, ly, noise, s, tau[ly], not moved or p == p0)
                    else:
                        nd, n_small = _pieces_many(net, g, ly, noise, s, tau[ly])
                    nc = _scan(net, g, ly, nd)
                else:
                    _affine(net, g, ly)
                    nc, n_small = 0, 0
                if moved and ly > 0 and n_small > 0:  # a value within tau of a breakpoint
                    ok = False
                    break
                if nc > 0 and first < 0:
                    first, n_first = ly, nc
                    if moved:  # the next layer takes a rank-k correction, the later ones start afresh
                        fresh_from = ly + 1 if nc > RANK else ly + 2
            if ok:
                break
            moved, grads = False, True  # the gradients may be half corrected
        acc, w_open, w_big = 0.0, 0.0, 0.0
        open_lo, open_hi = la + 1, ZERO  # the layers with open terms: open_lo <= l < open_hi
        for ly in range(la + 1):
            part = 0.0
            for k in range(net.bp_off[ly + 1] - net.bp_off[ly] if net.has_act[ly] else 0):
                if ly == 0 and not direct:
                    w_big += _weigh_row(net, g, k, tw, tb, p - p0)
                    total = 0.0
                else:
                    wb, total = _weigh(net, opt, g, ly, k)
                    w_big += wb
                if opt.use_good and ly < la:  # the last activated layer's test sums the terms too
                    for mm in range(ly + 1, la):
                        if net.has_act[mm]:
                            _bound_test(net, cb, g, ly, mm)
                    sk, wo = _bound_sum(net, cb, g, ly, la)
                elif ly > 0:  # every indicator 1 (or none): the weights' sum, from _weigh
                    sk, wo = total, 0.0
                else:  # (the first layer: the same bits with or without the table)
                    sk, wo = _sum_terms(g, net.rows[ly], opt.use_good)
                part += sk
                w_open = wo if wo > w_open else w_open
                open_lo = ly if (wo > 0.0 and ly < open_lo) else open_lo
                open_hi = ly + 1 if wo > 0.0 else open_hi
            acc += part
            if opt.by_layer:
                f_layer[n, ly] = part
        if opt.by_layer:
            for ly in range(la + 1, f_layer.shape[1]):
                f_layer[n, ly] = 0.0
        f[n] = acc
        # a term the column bound leaves open goes to the per-point kernels,
        # unless all such terms together stay below half an ulp of the sum
        # (w_open, a sum, bounds the largest such term from above: if
        # anything, more pairs go to the per-point kernels); so do the terms
        # left out for their large exponents (w_big bounds their sum)
        nt = net.term_off[la + 1]
        w_left = (w_open if opt.use_good else 0.0) + w_big
        if opt.use_good and w_left * nt > acc * HALF_ULP and w_open > 0.0 and not w_big * nt > acc * HALF_ULP:
            # the open terms decided here: each layer with such terms weighed
            # again (the same bits), then the exact indicator of those above HALF_ULP * acc
            # / nt (the smaller ones together stay below half an ulp of f);
            # only the terms _decide leaves open still send the pair over
            thr, w_und = acc * HALF_ULP / nt, 0.0
            for ly in range(open_lo, open_hi):
                part = 0.0
                for k in range(net.bp_off[ly + 1] - net.bp_off[ly] if net.has_act[ly] else 0):
                    if ly == 0 and not direct:
                        _weigh_row(net, g, k, tw, tb, p - p0)
                    else:
                        _weigh(net, opt, g, ly, k)
                    for mm in range(ly + 1, net.rows.shape[0]):
                        if net.has_act[mm]:
                            _bound_test(net, cb, g, ly, mm)
                    sk, wu = _decide(net, cb, g, tau, ly, k, thr)
                    part += sk
                    w_und += wu
                acc += part
                if opt.by_layer:
                    f_layer[n, ly] += part
            f[n] = acc
            w_left = w_und + w_big
        flag[n] = w_left > 0.0 and w_left * nt > acc * HALF_ULP


@njit(pipeline_class=NoAlias, cache=True, nogil=True)
def layer0_table(net, opt, X, p0, p1, g, tz, tw, tb):  # pragma: no cover
    """What the first layer gives at the points ``p0 <= p < p1``, the same
    for every noise sample (the noise enters its pieces, not its values,
    gradients or weights): its values into ``tz[p - p0]``, the weights of
    its terms, breakpoint by breakpoint, into ``tw[p - p0]`` and what
    :func:`_weigh` returns into ``tb[p - p0, k]`` (by :func:`_values` and
    :func:`_weigh`, as the walk would compute them: the same bits)."""
    m = net.rows[0]
    _gradients(net, g, ZERO)
    _norms(net, g, ZERO)
    nk = net.bp_off[1] - net.bp_off[0] if net.has_act[0] else 0
    for p in range(p0, p1):
        _values(net, g, ZERO, X, p)
        _row(tz, p - p0, g.z, ZERO)
        for k in range(nk):
            tb[p - p0, k] = _weigh(net, opt, g, ZERO, k)[0]
            _put(tw, p - p0, k * m, g.w, m)


@njit(pipeline_class=NoAlias, cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _row(dst, i, src, r):  # pragma: no cover
    """``dst[i, :n] = src[r, :n]``, ``n`` the shorter row."""
    n = src.shape[1] if src.shape[1] < dst.shape[1] else dst.shape[1]
    for j in range(n):
        dst[i, j] = src[r, j]


@njit(pipeline_class=NoAlias, cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _put(dst, i, o, src, m):  # pragma: no cover
    """``dst[i, o : o + m] = src[:m]``."""
    o = _nn(o)
    for j in range(m):
        dst[i, o + j] = src[j]


@njit(pipeline_class=NoAlias, cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, fastmath=_FM)
def _weigh_row(net, g, k, tw, tb, i):  # pragma: no cover
    """:func:`_weigh` for the first layer, from the table of
    :func:`layer0_table` (row ``i``): the weights, and from this sample's
    pieces the moves ``g.delta``; ``g.ok`` reset to 1."""
    m, at_bp = net.rows[0], net.act_at_bp[net.bp_off[0] + k]
    o = _nn(k * m)
    for j in range(m):
        g.w[j] = tw[i, o + j]
        g.delta[j] = abs(at_bp - g.h[0, j])
        g.ok[j] = 1.0
    return tb[i, k]


@njit(pipeline_class=NoAlias, cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _affine(net, g, ly):  # pragma: no cover
    """A layer without activation: ``h_l = z_l + b_l``."""
    b0 = _nn(net.b_off[ly])  # provably >= 0: no wraparound code per index
    for j in range(net.rows[ly]):
        g.h[ly, j] = g.z[ly, j] + net.bias[b0 + j]


@njit(pipeline_class=NoAlias, cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, fastmath=_FM)
def _pieces_step(net, g, ly, noise, s, tau_l, full):  # pragma: no cover
    """Layer ``l``'s outputs, margins and open margins (``g.e``, -inf where
    closed) at this pixel, for one breakpoint; where a neuron changes piece
    (or with ``full``: the pieces held may be another chunk's) also its
    pieces and slopes, and ``dh``/``ds`` against the pieces held before (0
    where unchanged; left as they were when none changes: read only for
    the neurons :func:`_scan` lists). Returns ``(number changed, number of
    margins not above tau_l)``. Selects, no branches, few arrays per loop:
    it vectorises (see :func:`_weigh`)."""
    m, t0, s0 = net.rows[ly], net.bp_off[ly], net.sl_off[ly]
    b0, n0 = _nn(net.b_off[ly]), _nn(net.noise_off[ly])
    t, a0, a1, c0, c1 = net.bps[t0], net.slopes[s0], net.slopes[s0 + 1], net.icpts[s0], net.icpts[s0 + 1]
    nd, n_small = 0, 0
    for j in range(m):
        u = g.z[ly, j] + net.bias[b0 + j] + noise[s, n0 + j]
        g.v[ly, j] = u
        up = u >= t
        nd += up != (g.piece[ly, j] == 1)
        g.h[ly, j] = (a1 * u + c1) if up else (a0 * u + c0)
        mg = abs(u - t)
        g.margin[ly, j] = mg
        n_small += not mg > tau_l
        g.e[j] = mg if (a1 if up else a0) != 0.0 else -np.inf
    if nd > 0 or full:
        for j in range(m):  # against the old pieces
            u = g.v[ly, j]
            up = u >= t
            old = g.piece[ly, j] == 1
            a, c = (a1 if up else a0), (c1 if up else c0)
            ao, co = (a1 if old else a0), (c1 if old else c0)
            g.dh[ly, j] = (a * u + c) - (ao * u + co)
            g.ds[ly, j] = a - ao
        for j in range(m):
            up = g.v[ly, j] >= t
            g.piece[ly, j] = 1 if up else 0
            g.slope[ly, j] = a1 if up else a0
    return nd, n_small


@njit(pipeline_class=NoAlias, cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _pieces_many(net, g, ly, noise, s, tau_l):  # pragma: no cover
    """:func:`_pieces_step` for any number of breakpoints (every array
    written)."""
    m, t0, s0 = net.rows[ly], _nn(net.bp_off[ly]), _nn(net.sl_off[ly])
    b0, n0 = _nn(net.b_off[ly]), _nn(net.noise_off[ly])
    K_ = net.bp_off[ly + 1] - t0
    nd = 0
    for j in range(m):
        u = g.z[ly, j] + net.bias[b0 + j] + noise[s, n0 + j]
        k = 0
        while k < K_ and u >= net.bps[t0 + k]:
            k += 1
        below = u - net.bps[t0 + k - 1] if k > 0 else np.inf
        above = net.bps[t0 + k] - u if k < K_ else np.inf
        g.margin[ly, j] = above if above < below else below
        a, c, ko = net.slopes[s0 + k], net.icpts[s0 + k], g.piece[ly, j]
        g.ds[ly, j], g.dh[ly, j] = 0.0, 0.0
        if k != ko:
            nd += 1
            g.ds[ly, j] = a - net.slopes[s0 + ko]
            g.dh[ly, j] = a * u + c - (net.slopes[s0 + ko] * u + net.icpts[s0 + ko])
        g.piece[ly, j], g.v[ly, j], g.slope[ly, j], g.h[ly, j] = k, u, a, a * u + c
    n_small = 0
    for j in range(m):
        mg = g.margin[ly, j]
        n_small += not mg > tau_l
        g.e[j] = mg if g.slope[ly, j] != 0.0 else -np.inf
    return nd, n_small


@njit(pipeline_class=NoAlias, cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, fastmath=_FM)
def _scan(net, g, ly, nd):  # pragma: no cover
    """Layer ``l``'s widest and second widest open margins into
    ``g.widest``/``g.second`` (and their neurons; not for layer 0, whose
    are never used: no earlier layer's terms test it) and, if ``nd > 0``,
    its changed neurons into ``g.changed`` (those with ``ds`` or ``dh``
    nonzero, or a new piece); returns the number listed.

    The open margins are in ``g.e`` (-inf where closed; written by the
    pieces' loop, which vectorises): the search for the two widest then
    branches predictably (the slope test, in it, mispredicted half the
    time)."""
    m = net.rows[ly]
    m1, k1, m2, k2 = -np.inf, 0, -np.inf, 0
    for j in range(m if ly > 0 else 0):
        mo = g.e[j]
        if mo > m2:  # rarely, after the first few
            if mo > m1:
                m2, k2, m1, k1 = m1, k1, mo, j
            else:
                m2, k2 = mo, j
    g.widest[ly], g.widest_j[ly], g.second[ly], g.second_j[ly] = m1, k1, m2, k2
    nc = 0
    if nd > 0:
        for j in range(m):  # no branch: an entry past the count is overwritten or not read
            g.changed[nc] = j
            nc += (g.ds[ly, j] != 0.0) | (g.dh[ly, j] != 0.0)
    return nc


@njit(pipeline_class=NoAlias, cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, fastmath=_FM)
def _values(net, g, ly, X, p):  # pragma: no cover
    """``z_l = W_l h_{l-1}`` from scratch."""
    m, base = net.rows[ly], net.w_off[ly]
    n_in = X.shape[1] if ly == 0 else net.rows[ly - 1]
    for j in range(m):
        g.z[ly, j] = 0.0
    for c in range(n_in):
        a = X[p, c] if ly == 0 else g.h[ly - 1, c]
        if a != 0.0:
            o = _nn(base + c * m)
            for j in range(m):
                g.z[ly, j] += a * net.w_t[o + j]


@njit(pipeline_class=NoAlias, cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, fastmath=_FM)
def _gradients(net, g, ly):  # pragma: no cover
    """Input gradients of ``z_l`` from scratch (norms: :func:`_norms`)."""
    m, base = net.rows[ly], net.w_off[ly]
    d = g.grad.shape[1]
    n_in = d if ly == 0 else net.rows[ly - 1]
    for dd in range(d):
        for j in range(m):
            g.grad[ly, dd, j] = 0.0
        for c in range(n_in):
            if ly == 0:
                a = 1.0 if c == dd else 0.0
            else:
                a = g.grad[ly - 1, dd, c] * (g.slope[ly - 1, c] if net.has_act[ly - 1] else 1.0)
            if a != 0.0:
                o = _nn(base + c * m)
                for j in range(m):
                    g.grad[ly, dd, j] += a * net.w_t[o + j]


@njit(pipeline_class=NoAlias, cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, fastmath=_FM)
def _norms(net, g, ly):  # pragma: no cover
    """The gradients' norms: on a plane in one loop (the same sums)."""
    m = net.rows[ly]
    if g.grad.shape[1] == 2:
        for j in range(m):
            a, b = g.grad[ly, 0, j], g.grad[ly, 1, j]
            g.gn[ly, j] = math.sqrt((0.0 + a * a) + b * b)
        return
    for j in range(m):
        g.gn[ly, j] = 0.0
    for dd in range(g.grad.shape[1]):
        for j in range(m):
            g.gn[ly, j] += g.grad[ly, dd, j] * g.grad[ly, dd, j]
    for j in range(m):
        g.gn[ly, j] = math.sqrt(g.gn[ly, j])


@njit(pipeline_class=NoAlias, cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, fastmath=_FM)
def _move(net, g, ly, X, p):  # pragma: no cover
    """``z_l += grad z_l . (x_p - x_{p-1})``: along the previous pixel's affine map."""
    m = net.rows[ly]
    for dd in range(X.shape[1]):
        dx = X[p, dd] - X[p - 1, dd]
        for j in range(m if dx != 0.0 else 0):  # along a row of the grid, y does not move
            g.z[ly, j] += g.grad[ly, dd, j] * dx


@njit(pipeline_class=NoAlias, cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, fastmath=_FM)
def _rank(net, g, first, ly, n_first):  # pragma: no cover
    """Layer ``l``'s values and gradients corrected for the ``n_first``
    neurons of layer ``first = l - 1`` that changed piece (``g.changed``):
    ``z_l += W_l[:, c] dh_c``, ``grad z_l += W_l[:, c] ds_c grad z_{l-1}[c]``.
    Layer ``l - 1`` has an activation (the rank-k correction follows a
    change of piece)."""
    m, base = net.rows[ly], net.w_off[ly]
    for i in range(n_first):
        c = g.changed[i]
        o = _nn(base + c * m)
        dhc, dsc = g.dh[first, c], g.ds[first, c]
        for j in range(m):
            g.z[ly, j] += net.w_t[o + j] * dhc
        if dsc != 0.0:
            for dd in range(g.grad.shape[1]):
                a = dsc * g.grad[first, dd, c]
                for j in range(m):
                    g.grad[ly, dd, j] += net.w_t[o + j] * a
    # every path closed (no open neuron of layer `first` with a nonzero
    # gradient): the gradients are exactly 0, as computed from scratch, not
    # the rounding left by the corrections
    live = False
    for c in range(net.rows[first]):
        if g.slope[first, c] != 0.0:
            for dd in range(g.grad.shape[1]):
                live = live or g.grad[first, dd, c] != 0.0
        if live:  # usually at the first open neuron
            break
    if not live:
        for dd in range(g.grad.shape[1]):
            for j in range(m):
                g.grad[ly, dd, j] = 0.0


@njit(pipeline_class=NoAlias, cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, fastmath=_FM)
def _weigh(net, opt, g, ly, k):  # pragma: no cover
    """The weights of breakpoint ``k``'s terms of layer ``l`` into ``g.w``
    (table exp), how far each pinned neuron's output moves into
    ``g.delta``, ``g.ok`` reset to 1. A term whose exponent is ``ECUT`` or
    more is left out (weight 0). Returns a bound of the sum of those left
    out, ``||grad z|| phi0 exp(-ECUT)`` each (the pair goes to the
    per-point kernels unless they are negligible), and the sum of the
    weights (the terms' sum when every indicator is 1). Two loops of few arrays
    each: they vectorise, the table's gather too (an int32 index: the
    weighing takes about a third less time than with a scalar gather in a
    loop of its own; same bits)."""
    m, t0, b0 = net.rows[ly], net.bp_off[ly], _nn(net.b_off[ly])
    t, at_bp = net.bps[t0 + k], net.act_at_bp[t0 + k]
    scale = opt.inv2var if opt.use_rho else 0.0
    for j in range(m):
        u = t - net.bias[b0 + j] - g.z[ly, j]
        e = u * u * scale
        e = ECUT if ECUT < e else e
        g.e[j] = e
        g.idx[j] = np.floor(e * 8.0 + 0.5)  # the table entry, as a float
        g.delta[j] = abs(at_bp - g.h[ly, j])
        g.ok[j] = 1.0
    phi0 = opt.phi0 if opt.use_rho else 1.0
    gn_big, total = 0.0, 0.0
    for j in range(m):
        # exp(-e) = exp(-n / 8) exp(r), |r| <= 1 / 16: the Taylor polynomial
        # of exp(r) (relative error about 2e-16); the table's gather
        # vectorises (an int32 index)
        fi, e = g.idx[j], g.e[j]
        r = fi * 0.125 - e
        q = 1.0 / 40320.0
        q = q * r + 1.0 / 5040.0
        q = q * r + 1.0 / 720.0
        q = q * r + 1.0 / 120.0
        q = q * r + 1.0 / 24.0
        q = q * r + 1.0 / 6.0
        q = q * r + 0.5
        q = q * r + 1.0
        q = q * r + 1.0
        w = g.gn[ly, j] * phi0 * ((_EXPTAB[np.int32(fi)] * q) if opt.use_rho else 1.0)
        big = e >= ECUT
        gn_big += g.gn[ly, j] if big else 0.0
        w = 0.0 if big else w
        g.w[j] = w
        total += w
    return gn_big * phi0 * EXP_CUT, total


@njit(pipeline_class=NoAlias, cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, fastmath=_FM)
def _bound_test(net, cb, g, ly, mm):  # pragma: no cover
    """``g.ok[j]`` stays 1 where the widest or the second widest open
    neuron of layer ``mm`` stays open however neuron ``j`` of layer ``l``,
    pinned, moves it, else 0: the per-point screen's bounds ``C[l, mm][k,
    j]`` with their room for rounding and underflow, ``cb``
    (:func:`screen_bounds`; rows ``k`` contiguous in ``j``), times the move,
    plus ``TINY`` for the product's underflow. No operand or result is
    subnormal (each costs a microcode assist on Intel cores, about 40
    cycles)."""
    stride = net.rows[ly]
    b1 = _nn(net.bound_off[ly, mm] + g.widest_j[mm] * stride)
    b2 = _nn(net.bound_off[ly, mm] + g.second_j[mm] * stride)
    w1, w2 = g.widest[mm], g.second[mm]
    for j in range(net.rows[ly]):
        dl = g.delta[j]
        moved1 = cb[b1 + j] * dl + TINY
        moved2 = cb[b2 + j] * dl + TINY
        g.ok[j] = g.ok[j] if (w1 > moved1 or w2 > moved2) else 0.0


@njit(pipeline_class=NoAlias, cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, fastmath=_FM)
def _bound_sum(net, cb, g, ly, mm):  # pragma: no cover
    """:func:`_bound_test` and then :func:`_sum_terms` (with the indicator)
    in one loop: one pass over the layer fewer. Written out, not calling
    them: every helper here is a leaf (see :func:`grid_chunk`)."""
    stride = net.rows[ly]
    b1 = _nn(net.bound_off[ly, mm] + g.widest_j[mm] * stride)
    b2 = _nn(net.bound_off[ly, mm] + g.second_j[mm] * stride)
    w1, w2 = g.widest[mm], g.second[mm]
    part, w_open = 0.0, 0.0
    for j in range(net.rows[ly]):
        dl = g.delta[j]
        moved1 = cb[b1 + j] * dl + TINY
        moved2 = cb[b2 + j] * dl + TINY
        ok = g.ok[j] if (w1 > moved1 or w2 > moved2) else 0.0
        g.ok[j] = ok
        w = g.w[j]
        part += w * ok
        w_open += w - w * ok
    return part, w_open


@njit(pipeline_class=NoAlias, cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, fastmath=_FM)
def _sum_terms(g, m, use_good):  # pragma: no cover
    """The sum of the good weights (all, without the indicator) and the sum
    of the weights left undecided, a bound of the largest (``g.ok`` is 1 or
    0: the products are exact). Two sums: the loop vectorises (a ``max``
    does not without ``nnan``)."""
    part, w_open = 0.0, 0.0
    w, ok = g.w, g.ok
    if use_good:
        for j in range(m):
            part += w[j] * ok[j]
            w_open += w[j] - w[j] * ok[j]
    else:
        for j in range(m):
            part += w[j]
    return part, w_open


@njit(pipeline_class=NoAlias, cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _decide(net, cb, g, tau, ly, k, thr):  # pragma: no cover
    """The good indicators of breakpoint ``k``'s terms of layer ``l`` that
    the column bound left open (``g.ok`` 0) and that weigh more than
    ``thr``: returns the sum of the weights of those found good and the sum
    of those still open. Dense weights: good iff every later activated
    layer keeps an open unit.

    First the per-point screen's NOT_GOOD test, on the first later
    activated layer with no open neuron: every margin there larger than
    how far the move can take a unit (``cb``'s second part, the bounds of
    :func:`regiongeom._theorem2_grid.screen_bounds` for the largest unit).
    Then the per-point ``_fallback``'s recomputation, the same operations
    (no fastmath): the pinned neuron's change ``dh`` propagated through the
    later layers from the walk's ``v``/``h``/``piece`` (``dv_m = W_m dh``
    over the changed units, the pieces at ``v_m + dv_m``), stopping at the
    first activated layer left with no open unit (not good). A layer whose
    openness rests on a unit within ``tau[m]`` of a breakpoint (where the
    walk's rounding might differ from the per-point kernels') leaves the
    term open. ``g.idx`` and ``g.tab`` serve as ``dh``/``dv``; a leaf."""
    la, m0, nbm = net.last_act, net.rows[ly], net.bound.shape[0]
    at_bp = net.act_at_bp[net.bp_off[ly] + k]
    dh, dv = g.idx, g.tab
    # the first later activated layer with no open neuron, its smallest margin
    dead, sm = np.int64(-1), np.inf
    for mm in range(ly + 1, la + 1):
        if net.has_act[mm] and not g.widest[mm] > -np.inf:
            dead = mm
            for r in range(net.rows[mm]):
                mg = g.margin[mm, r]
                sm = mg if mg < sm else sm
            break
    good, w_und = 0.0, 0.0
    for j0 in range(m0):
        w = g.w[j0]
        if g.ok[j0] != 0.0 or not w > thr:
            continue
        if dead >= 0 and sm > cb[_nn(nbm + net.bound_max_off[ly, dead] + j0)] * g.delta[j0] + TINY:
            continue  # not good
        hc = at_bp - g.h[ly, j0]
        decided, ok = True, True
        for m in range(ly + 1, la + 1):
            nr, nc = net.rows[m], net.rows[m - 1]
            wo = _nn(net.w_off[m])
            for r in range(nr):
                dv[r] = 0.0
            if m == ly + 1:
                if hc != 0.0:
                    o = _nn(wo + j0 * nr)
                    for r in range(nr):
                        dv[r] += net.w_t[o + r] * hc
            else:
                for c in range(nc):
                    dc = dh[c]
                    if dc != 0.0:
                        o = _nn(wo + c * nr)
                        for r in range(nr):
                            dv[r] += net.w_t[o + r] * dc
            if not net.has_act[m]:
                for r in range(nr):
                    dh[r] = dv[r]
            else:
                t0, s0, tm = _nn(net.bp_off[m]), _nn(net.sl_off[m]), tau[m]
                Km = net.bp_off[m + 1] - t0
                sure, near = False, False
                if Km == 1:  # one breakpoint: selects, no branches (the same operations)
                    t, a0, a1 = net.bps[t0], net.slopes[s0], net.slopes[s0 + 1]
                    c0, c1 = net.icpts[s0], net.icpts[s0 + 1]
                    for r in range(nr):
                        d = dv[r]
                        u = g.v[m, r] + d
                        up = u >= t
                        a, c = (a1 if up else a0), (c1 if up else c0)
                        mg = abs(u - t)
                        sure = sure | ((a != 0.0) & (mg > tm))
                        near = near | (not mg > tm)
                        dh[r] = (a * d) if up == (g.piece[m, r] == 1) else (a * u + c - g.h[m, r])
                for r in range(nr if Km != 1 else 0):
                    u = g.v[m, r] + dv[r]
                    km = 0
                    while km < Km and u >= net.bps[t0 + km]:
                        km += 1
                    below = u - net.bps[t0 + km - 1] if km > 0 else np.inf
                    above = net.bps[t0 + km] - u if km < Km else np.inf
                    mg = above if above < below else below
                    a = net.slopes[s0 + km]
                    sure = sure or (a != 0.0 and mg > tm)
                    near = near or not mg > tm
                    if km == g.piece[m, r]:  # same piece: the change itself, not a difference of values
                        dh[r] = a * dv[r]
                    else:
                        dh[r] = a * u + net.icpts[s0 + km] - g.h[m, r]
                if not sure:
                    if not near:  # every unit closed: not good (open if an earlier layer had a near unit)
                        if decided:
                            ok = False
                        break
                    decided = False  # perhaps closed: a later layer may still prove it not good
            # the widest open neuron of every later activated layer provably
            # stays open under this exact change (the column bound with
            # sum_c C[m, mm][k, c] |dh_c| in place of its bound): no later
            # layer closes, the recomputation stops here
            kept = True
            for mm in range(m + 1, la + 1):
                if net.has_act[mm] and kept:
                    w1 = g.widest[mm]
                    o = _nn(net.bound_off[m, mm] + g.widest_j[mm] * nr)
                    mv = TINY * nr
                    for c in range(nr if w1 > -np.inf else 0):
                        mv += cb[o + c] * abs(dh[c])
                    kept = w1 > mv
            if kept:
                break
        if ok:
            if decided:
                good += w
            else:
                w_und += w
    return good, w_und

