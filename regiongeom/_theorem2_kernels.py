"""numba kernels of the Theorem-2 estimator, wrapped by :mod:`regiongeom._theorem2`.

:func:`theorem2_chunk` evaluates eq. (6) for a run of (sample, point) pairs,
one pair at a time, with every intermediate in a per-thread :class:`Scratch`.
The network arrives as a :class:`Net` and the estimator's switches as an
:class:`Options`, all built in plain Python by :mod:`regiongeom._theorem2`.

A *term* is one (neuron, breakpoint of its activation): its weight is
``||grad z_i|| phi_sigma(t_k - b_i - z_i)`` and it counts when the neuron,
put on that breakpoint, is good. Terms are numbered layer by layer, neuron by
neuron: term ``q`` of layer ``l`` is ``term_off[l] + j * K_l + k``.

Compile time: the helpers are called only from :func:`theorem2_chunk`, so
they are compiled without a Python wrapper (``no_cpython_wrapper``: each
wrapper would unbox every array of ``Net`` and ``Scratch``), and they avoid
array slicing and literal-typed arguments (each adds an implementation or a
second signature to compile). Speed: a helper's loops are kept simple
enough that numba drops the reference counting of the NamedTuples' arrays
on every call; one that branched between two loops is split in two.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

# the good indicator of one term, as decided by the screen or the recomputation
NOT_GOOD = 0
GOOD = 1
UNDECIDED = 2  # the screen could not decide: recomputed by _fallback

# relative room of the screen's bounds for their rounding (at most a few thousand ulps
# for any network that fits in memory); bound_abs in Net adds what underflow can lose
SLACK = 1e-9
REFRESH = 16  # pre-bias values recomputed from scratch at least every REFRESH pairs
CHUNK = 4096  # pairs per call of theorem2_chunk (a multiple of REFRESH)
HALF_ULP = 2.0**-53  # terms below HALF_ULP * f / n_terms may be left unresolved
GROUP = 256  # undecided terms recomputed together by _fallback_dense, at most


class Net(NamedTuple):
    """The network as flat arrays. ``L`` layers; ``(L + 1,)`` offsets.

    ``w_t`` holds every ``W_l^T`` row-major: ``W_l[j, c]`` is
    ``w_t[w_off[l] + c * rows[l] + j]`` (column ``c`` of ``W_l`` contiguous).
    Layer ``l``'s activation has breakpoints ``bps[bp_off[l] : bp_off[l + 1]]``
    (``K_l`` of them), slopes and intercepts ``slopes[sl_off[l] : sl_off[l + 1]]``
    (``K_l + 1``) and values at the breakpoints ``act_at_bp`` (indexed like
    ``bps``). ``bound[bound_off[l, m] + k * rows[l] + j]`` bounds how far unit
    ``k`` of layer ``m`` moves per unit move of neuron ``j`` of layer ``l``;
    ``bound_max[bound_max_off[l, m] + j]`` is the largest over ``k``.
    """

    w_t: np.ndarray  # (sum of the weights' sizes,) float64
    w_off: np.ndarray  # (L + 1,) int64
    rows: np.ndarray  # (L,) int64: units per layer
    width: int  # the largest of rows
    bias: np.ndarray  # (sum of rows,) float64: the noise-free biases
    b_off: np.ndarray  # (L + 1,) int64
    has_act: np.ndarray  # (L,) bool
    last_act: int  # the last layer with an activation
    bps: np.ndarray  # float64
    bp_off: np.ndarray  # (L + 1,) int64
    slopes: np.ndarray  # float64
    icpts: np.ndarray  # float64
    sl_off: np.ndarray  # (L + 1,) int64
    act_at_bp: np.ndarray  # float64
    noise_off: np.ndarray  # (L + 1,) int64: first neuron of each layer in a noise row
    term_off: np.ndarray  # (L + 1,) int64: first term of each layer
    bound: np.ndarray  # float64
    bound_off: np.ndarray  # (L, L) int64
    bound_max: np.ndarray  # float64
    bound_max_off: np.ndarray  # (L, L) int64
    dense: bool  # every weight after the first layer nonzero
    bound_abs: float  # what underflow can take from any bound (0 unless weights are tiny)


class Options(NamedTuple):
    """What to compute: ``phi0 = phi_sigma(0)`` and ``inv2var = 1 / (2 sigma^2)``."""

    phi0: float
    inv2var: float
    use_rho: bool  # weigh the terms by phi_sigma
    use_good: bool  # count only the good terms
    screen: bool  # decide the indicator from the sampled pass where possible
    want_all: bool  # decide every term and record it in ``status``
    by_layer: bool  # record each layer's share of f in ``f_layer``


class Scratch(NamedTuple):
    """One thread's working arrays. ``W``: the widest layer; ``d``: inputs.

    Per pair and layer ``l`` (rows ``[l, :rows[l]]``): ``z`` the pre-bias
    values ``W_l h_{l-1}``, ``grad`` their input gradients (``(L, d, W)``;
    on the BLAS path ``(L, D, W)``, in the coordinates of ``Blas.first_t``,
    each layer's ``(D, rows[l])`` packed), ``grad_norm``, ``v`` the noisy
    preactivations, ``h`` the outputs, ``slope``/``piece`` the linear piece,
    ``margin`` the distance to its ends; the widest open neuron
    (``widest_j``, margin ``widest``; -inf when none is open), the second
    widest, the smallest margin and whether any neuron is open.
    ``reaches[l, j]``: the neuron reaches the output in the sampled pass.
    ``weight``/``undecided``: the pair's term weights and the terms the
    screen left; ``layer_f``: its sum per layer. ``dh``, ``dv``, ``opened``,
    ``reach``, ``reach_next``: the recomputation's.
    """

    z: np.ndarray  # (L, W)
    grad: np.ndarray  # (L, d, W)
    grad_norm: np.ndarray  # (L, W)
    v: np.ndarray  # (L, W)
    h: np.ndarray  # (L, W)
    slope: np.ndarray  # (L, W)
    piece: np.ndarray  # (L, W) int64
    margin: np.ndarray  # (L, W)
    widest: np.ndarray  # (L,)
    widest_j: np.ndarray  # (L,) int64
    second: np.ndarray  # (L,)
    second_j: np.ndarray  # (L,) int64
    smallest: np.ndarray  # (L,)
    any_open: np.ndarray  # (L,) bool
    reaches: np.ndarray  # (L, W) bool, initially True
    weight: np.ndarray  # (n_terms,)
    undecided: np.ndarray  # (n_terms,) int64
    layer_f: np.ndarray  # (L,)
    dh: np.ndarray  # (W,)
    dv: np.ndarray  # (W,)
    opened: np.ndarray  # (L, W) bool
    reach: np.ndarray  # (W,) bool
    reach_next: np.ndarray  # (W,) bool


class Blas(NamedTuple):
    """The BLAS path, for many inputs (``None`` elsewhere: its branches are
    then pruned at compile time, and compiled only when first used): the
    first layer's factor and one thread's buffers. ``D``: the factor's
    columns; ``U``: the terms recomputed together."""

    first_t: np.ndarray  # (D, rows[0]): F^T for a factor F F^T = W_0 W_0^T
    first_norm: np.ndarray  # (rows[0],): the row norms of W_0
    wg: np.ndarray  # (W * W,): rows of W_l^T of the open (or changed) units, gathered
    jg: np.ndarray  # (D * W,): columns of grad z_{l-1} S of the open units, gathered
    cols: np.ndarray  # (W,) int64: those units
    dvb: np.ndarray  # (U * W,): _fallback_dense's dv, one row per term
    dhb: np.ndarray  # (U * W,): and its dh
    decided: np.ndarray  # (n_terms,) int64: _fallback_dense's indicators


@njit(cache=True, nogil=True)
def theorem2_chunk(net, opt, X, noise, n0, n1, scr, f, f_layer, status, bl, pairs):  # pragma: no cover
    """Eq. (6) for the pairs ``n = s * P + p`` (sample ``s``, point ``p``),
    ``n0 <= n < n1``, into ``f[n]``; with ``opt.by_layer`` each layer's
    share into ``f_layer[n, l]``; with ``opt.want_all`` every term's
    indicator into ``status[n, q]``. Returns how many terms went to the
    recomputation. With a non-empty ``pairs`` (int64), the pairs are
    ``pairs[n0:n1]`` instead, each from scratch (as one call per pair:
    :func:`theorem2_pairs`); the one entry point serves both, so that numba
    compiles the kernels once.

    While consecutive pairs keep every neuron of the earlier layers on the
    same piece (neighbouring grid points), the gradients are reused bit for
    bit, and within one noise sample the values move along the shared affine
    map, ``z += grad z . (x_n - x_{n-1})`` (exact up to rounding; recomputed
    from scratch every ``REFRESH`` pairs). The result depends on ``n0`` but
    not on what ``scr`` held before. ``bl``: a :class:`Blas` (gradients and
    recomputations by BLAS products; no moving values), or ``None``.
    """
    P = X.shape[0]
    n_fallback = 0
    by_pairs = pairs.shape[0] > 0
    for i in range(n0, n1):
        n = pairs[i] if by_pairs else i
        s = n // P
        p = n - s * P
        have_prev = i > n0 and not by_pairs
        same = have_prev  # every neuron of the layers so far on the previous pair's piece
        move = p > 0 and n % REFRESH != 0 and bl is None  # the previous pair: point p - 1, same sample
        for ly in range(net.last_act + 1):
            if ly > 0 and same and move:
                _move_values(net, scr, ly, X, p, p - 1)
            else:
                _values(net, scr, ly, X, p)
            if not (same or (ly == 0 and have_prev)):  # the first layer's gradients are its weights
                if bl is not None:
                    _gradients_blas(net, scr, bl, ly)
                else:
                    _gradients(net, scr, ly)
            if net.has_act[ly]:
                if net.bp_off[ly + 1] - net.bp_off[ly] == 1:
                    diff = _activate_step(net, scr, ly, noise, s)
                else:
                    diff = _activate_pieces(net, scr, ly, noise, s)
                _widest_margins(scr, ly, net.rows[ly])
                same = same and not diff
            else:
                _affine(net, scr, ly)
        if opt.use_good and not net.dense:
            _sampled_reach(net, scr)
        acc, n_undecided = _screen_terms(net, opt, scr, n, status, _weigh_terms(net, opt, scr))
        n_fallback += n_undecided
        if bl is not None:
            if net.dense:
                _fallback_dense(net, scr, bl, n_undecided)
        for t in range(n_undecided):
            q = scr.undecided[t]
            if bl is not None:
                r = bl.decided[t] if net.dense else _fallback(net, scr, q)
            else:
                r = _fallback(net, scr, q)
            if opt.want_all:
                status[n, q] = r
            if r == GOOD:
                acc += scr.weight[q]
                if opt.by_layer:
                    scr.layer_f[_layer_of(net, q)] += scr.weight[q]
        f[n] = acc
        if opt.by_layer:
            for ly in range(scr.layer_f.shape[0]):
                f_layer[n, ly] = scr.layer_f[ly]
    return n_fallback


NO_PAIRS = np.zeros(0, np.int64)  # theorem2_chunk's ``pairs`` for a run of consecutive pairs
PAIRS_TICKET = 128  # pairs per thread ticket of theorem2_pairs


def theorem2_pairs(net, opt, X, noise, pairs, scr, f, f_layer, status, bl):
    """:func:`theorem2_chunk` for each pair ``n`` in ``pairs``, each from
    scratch (the grid walk of :mod:`regiongeom._theorem2_grid` hands over
    the pairs its screen leaves open), on a few threads (tickets of
    ``PAIRS_TICKET`` pairs; the other threads work on copies of ``scr`` and
    ``bl``): every pair is computed alone, so the result does not depend on
    the threads. Returns how many terms went to the recomputation. (Called
    also with no pairs: then it compiles the kernels, for the warm-up of
    :mod:`regiongeom._jit`.)"""
    import threading

    from ._threads import run_tickets

    pairs = np.ascontiguousarray(pairs, np.int64)
    n = pairs.shape[0]
    if n == 0:
        return theorem2_chunk(net, opt, X, noise, 0, 0, scr, f, f_layer, status, bl, NO_PAIRS)
    n_tickets = -(-n // PAIRS_TICKET)
    counts = np.zeros(n_tickets, np.int64)
    local = threading.local()
    caller = threading.get_ident()

    def work(t):
        if not hasattr(local, "scr"):
            if threading.get_ident() == caller:
                local.scr, local.bl = scr, bl
            else:
                local.scr = type(scr)(*(a.copy() for a in scr))
                local.bl = None if bl is None else type(bl)(*(a.copy() for a in bl))
        i0, i1 = t * PAIRS_TICKET, min(n, (t + 1) * PAIRS_TICKET)
        counts[t] = theorem2_chunk(net, opt, X, noise, i0, i1, local.scr, f, f_layer, status, local.bl, pairs)

    run_tickets(n_tickets, work, name="regiongeom-t2pairs")
    return int(counts.sum())


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _values(net, scr, ly, X, p):  # pragma: no cover
    """``z_l = W_l h_{l-1}`` (``h_{-1} = x_p``), skipping zero inputs."""
    m, base = net.rows[ly], net.w_off[ly]
    n_in = X.shape[1] if ly == 0 else net.rows[ly - 1]
    z = scr.z
    for j in range(m):
        z[ly, j] = 0.0
    for c in range(n_in):
        a = X[p, c] if ly == 0 else scr.h[ly - 1, c]
        if a != 0.0:
            o = base + c * m
            for j in range(m):
                z[ly, j] += a * net.w_t[o + j]


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _move_values(net, scr, ly, X, p, p_prev):  # pragma: no cover
    """``z_l += grad z_l . (x_p - x_{p_prev})``: ``z_l`` is affine on the
    region the two points share."""
    m, z, grad = net.rows[ly], scr.z, scr.grad
    for dd in range(X.shape[1]):
        dx = X[p, dd] - X[p_prev, dd]
        for j in range(m):
            z[ly, j] += grad[ly, dd, j] * dx


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _gradients(net, scr, ly):  # pragma: no cover
    """Input gradients of ``z_l``: ``W_l S_{l-1} grad z_{l-1}`` (``W_0`` for
    the first layer), and their norms."""
    m, base, grad = net.rows[ly], net.w_off[ly], scr.grad
    d = grad.shape[1]
    n_in = d if ly == 0 else net.rows[ly - 1]
    for dd in range(d):
        for j in range(m):
            grad[ly, dd, j] = 0.0
        for c in range(n_in):
            if ly == 0:
                a = 1.0 if c == dd else 0.0
            else:
                a = grad[ly - 1, dd, c] * (scr.slope[ly - 1, c] if net.has_act[ly - 1] else 1.0)
            if a != 0.0:
                o = base + c * m
                for j in range(m):
                    grad[ly, dd, j] += a * net.w_t[o + j]
    for j in range(m):
        g2 = 0.0
        for dd in range(d):
            g2 += grad[ly, dd, j] * grad[ly, dd, j]
        scr.grad_norm[ly, j] = math.sqrt(g2)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _gradients_blas(net, scr, bl, ly):  # pragma: no cover
    """As :func:`_gradients`, for many inputs: ``J_l^T = J_{l-1}^T S_{l-1}
    W_l^T`` (``J_0^T = Blas.first_t``: the row norms of ``J_0`` are those of
    ``W_0``) as one BLAS product over the open neurons of layer ``l - 1``.
    ``J_l^T`` is ``(D, rows[l])``, packed at the start of ``scr.grad[l]``."""
    m, D, wg, jg, cols = net.rows[ly], scr.grad.shape[1], bl.wg, bl.jg, bl.cols
    g = scr.grad[ly].reshape(D * scr.grad.shape[2])
    if ly == 0:
        for e in range(D):
            for j in range(m):
                g[e * m + j] = bl.first_t[e, j]
        for j in range(m):
            scr.grad_norm[0, j] = bl.first_norm[j]
        return
    n_in, a = net.rows[ly - 1], 0
    gp = scr.grad[ly - 1].reshape(D * scr.grad.shape[2])
    for c in range(n_in):
        if not net.has_act[ly - 1] or scr.slope[ly - 1, c] != 0.0:
            cols[a] = c
            o = net.w_off[ly] + c * m
            for j in range(m):
                wg[a * m + j] = net.w_t[o + j]
            a += 1
    for e in range(D):
        for i in range(a):
            c = cols[i]
            jg[e * a + i] = gp[e * n_in + c] * (scr.slope[ly - 1, c] if net.has_act[ly - 1] else 1.0)
    _gemm(jg[: D * a].reshape((D, a)), wg[: a * m].reshape((a, m)), g[: D * m].reshape((D, m)))
    for j in range(m):
        scr.grad_norm[ly, j] = 0.0
    for e in range(D):  # contiguous in j: vectorises
        for j in range(m):
            scr.grad_norm[ly, j] += g[e * m + j] * g[e * m + j]
    for j in range(m):
        scr.grad_norm[ly, j] = math.sqrt(scr.grad_norm[ly, j])


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _affine(net, scr, ly):  # pragma: no cover
    """A layer without activation: ``h_l = z_l + b_l``."""
    b0 = net.b_off[ly]
    for j in range(net.rows[ly]):
        scr.h[ly, j] = scr.z[ly, j] + net.bias[b0 + j]


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _activate_step(net, scr, ly, noise, s):  # pragma: no cover
    """Layer ``l``'s activation for noise sample ``s`` when it has one
    breakpoint: ``v``, ``h``, ``piece``, ``slope``, ``margin``. Returns
    whether any neuron changed piece since the previous pair. Selects, no
    branches, so that the loop vectorises."""
    m, b0, n0, t0, s0 = net.rows[ly], net.b_off[ly], net.noise_off[ly], net.bp_off[ly], net.sl_off[ly]
    t, a0, a1, c0, c1 = net.bps[t0], net.slopes[s0], net.slopes[s0 + 1], net.icpts[s0], net.icpts[s0 + 1]
    z, v, h, slope, piece, margin = scr.z, scr.v, scr.h, scr.slope, scr.piece, scr.margin
    diff = False
    for j in range(m):
        u = z[ly, j] + net.bias[b0 + j] + noise[s, n0 + j]
        up = u >= t
        diff |= up != piece[ly, j]
        piece[ly, j], v[ly, j], slope[ly, j] = up, u, a1 if up else a0
        h[ly, j] = (a1 if up else a0) * u + (c1 if up else c0)
        margin[ly, j] = abs(u - t)
    return diff


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _activate_pieces(net, scr, ly, noise, s):  # pragma: no cover
    """As :func:`_activate_step`, for any number of breakpoints."""
    m, b0, n0, t0, s0 = net.rows[ly], net.b_off[ly], net.noise_off[ly], net.bp_off[ly], net.sl_off[ly]
    K = net.bp_off[ly + 1] - t0
    z, v, h, slope, piece, margin = scr.z, scr.v, scr.h, scr.slope, scr.piece, scr.margin
    diff = False
    for j in range(m):
        u = z[ly, j] + net.bias[b0 + j] + noise[s, n0 + j]
        k = 0
        while k < K and u >= net.bps[t0 + k]:
            k += 1
        diff |= k != piece[ly, j]
        piece[ly, j], v[ly, j], slope[ly, j] = k, u, net.slopes[s0 + k]
        h[ly, j] = net.slopes[s0 + k] * u + net.icpts[s0 + k]
        below = u - net.bps[t0 + k - 1] if k > 0 else np.inf
        margin[ly, j] = min(below, net.bps[t0 + k] - u if k < K else np.inf)
    return diff


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _widest_margins(scr, ly, m):  # pragma: no cover
    """The widest and second widest open neurons of layer ``l`` (on a piece
    of nonzero slope) with their margins, the smallest margin, any open."""
    m1, k1, smallest = -np.inf, 0, np.inf
    for j in range(m):
        smallest = min(smallest, scr.margin[ly, j])
        if scr.slope[ly, j] != 0.0 and scr.margin[ly, j] > m1:
            m1, k1 = scr.margin[ly, j], j
    m2, k2 = -np.inf, 0
    for j in range(m):
        if scr.slope[ly, j] != 0.0 and scr.margin[ly, j] > m2 and j != k1:
            m2, k2 = scr.margin[ly, j], j
    scr.widest[ly], scr.second[ly], scr.smallest[ly], scr.any_open[ly] = m1, m2, smallest, m1 > -np.inf
    scr.widest_j[ly], scr.second_j[ly] = k1, k2


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _weigh_terms(net, opt, scr):  # pragma: no cover
    """Every term's weight into ``scr.weight`` (exp skipped where it
    underflows to 0); returns their sum. Without the indicator, the sums
    per layer go to ``scr.layer_f`` (with ``opt.by_layer``)."""
    total = 0.0
    per_layer = opt.by_layer and not opt.use_good
    for ly in range(scr.layer_f.shape[0]):
        scr.layer_f[ly] = 0.0
    for ly in range(net.last_act + 1):
        K, t0, b0 = net.bp_off[ly + 1] - net.bp_off[ly], net.bp_off[ly], net.b_off[ly]
        for j in range(net.rows[ly] if net.has_act[ly] else 0):
            for k in range(K):
                w = scr.grad_norm[ly, j]
                if opt.use_rho:
                    u = net.bps[t0 + k] - net.bias[b0 + j] - scr.z[ly, j]
                    e = u * u * opt.inv2var
                    w = w * opt.phi0 * math.exp(-e) if e < 746.0 else 0.0
                scr.weight[net.term_off[ly] + j * K + k] = w
                total += w
                if per_layer:
                    scr.layer_f[ly] += w
    return total


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _screen_terms(net, opt, scr, n, status, total):  # pragma: no cover
    """The sum of the pair's terms decided good, and how many are left
    undecided (listed in ``scr.undecided``). Without the indicator: ``total``.

    First the terms above ``HALF_ULP * total / n_terms``, the smaller ones only
    if needed; undecided terms are kept only if needed. A term is left out
    (taken as not good) only when every left-out term is below ``HALF_ULP * f
    / n_terms``, so all of them together change ``f`` by less than half an
    ulp. ``opt.want_all`` decides every term.
    """
    if not opt.use_good:
        return total, 0
    nt = net.term_off[net.last_act + 1]
    acc, w_undecided, w_skipped, n_undecided = 0.0, 0.0, 0.0, 0
    thr = -1.0 if opt.want_all else total * HALF_ULP / nt
    for rnd in range(2):  # round 0: w > thr; round 1 (if needed): 0 < w <= thr
        if rnd == 1 and not w_skipped * nt > acc * HALF_ULP:
            break
        for ly in range(net.last_act + 1):
            K = net.bp_off[ly + 1] - net.bp_off[ly]
            for j in range(net.rows[ly] if net.has_act[ly] else 0):
                for k in range(K):
                    q = net.term_off[ly] + j * K + k
                    w = scr.weight[q]
                    if rnd == 0 and not w > thr:
                        if w > 0.0:
                            w_skipped = max(w_skipped, w)
                        continue
                    if rnd == 1 and not (0.0 < w <= thr):
                        continue
                    r = UNDECIDED
                    if opt.screen:
                        r = _screen(net, scr, ly, j, abs(net.act_at_bp[net.bp_off[ly] + k] - scr.h[ly, j]))
                    if opt.want_all:
                        status[n, q] = r
                    if r == GOOD:
                        acc += w
                        if opt.by_layer:
                            scr.layer_f[ly] += w
                    elif r == UNDECIDED:
                        scr.undecided[n_undecided] = q
                        n_undecided += 1
                        w_undecided = max(w_undecided, w)
    if not (opt.want_all or w_undecided * nt > acc * HALF_ULP):
        n_undecided = 0  # every undecided term is negligible
    return acc, n_undecided


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _sampled_reach(net, scr):  # pragma: no cover
    """``scr.reaches[l, j]``: neuron ``j`` of layer ``l`` reaches the output
    through nonzero weights and open later neurons in the sampled pass
    (nothing moved)."""
    L, rows, reach, nxt = net.rows.shape[0], net.rows, scr.reach, scr.reach_next
    last_open = net.has_act[L - 1] and L - 1 <= net.last_act
    for r in range(rows[L - 1]):
        reach[r] = scr.slope[L - 1, r] != 0.0 if last_open else True
    for m in range(L - 2, -1, -1):
        nr = rows[m + 1]
        for c in range(rows[m]):
            conn = False
            o = net.w_off[m + 1] + c * nr
            for r in range(nr):
                if reach[r] and net.w_t[o + r] != 0.0:
                    conn = True
                    break
            if net.has_act[m]:
                scr.reaches[m, c] = conn
            nxt[c] = conn and (not net.has_act[m] or scr.slope[m, c] != 0.0)
        for c in range(rows[m]):
            reach[c] = nxt[c]


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _screen(net, scr, ly, j, delta):  # pragma: no cover
    """Good indicator of neuron ``j`` of layer ``l`` put on a breakpoint, from
    the sampled pass when possible: GOOD, NOT_GOOD or UNDECIDED.

    Its output moves by ``delta``; unit ``k`` of a later layer ``m`` then
    moves by at most ``bound[l, m][k, j] delta`` and keeps its linear piece if
    its margin is larger. Dense weights: good iff every later activated layer
    keeps an open neuron, so one of the two widest open neurons staying open
    in every such layer proves good, and a layer with no open neuron and
    every margin larger than the layer's bound proves not good. Otherwise,
    when no later neuron can change piece, the sampled reachability is exact.
    """
    r = GOOD if (net.dense or scr.reaches[ly, j]) else NOT_GOOD
    stride = net.rows[ly]
    for m in range(ly + 1, net.rows.shape[0]):
        if not net.has_act[m]:
            continue
        base = net.bound_off[ly, m] + j
        if net.dense and scr.widest[m] > _moved(net, net.bound[base + scr.widest_j[m] * stride], delta):
            continue
        layer_bound = _moved(net, net.bound_max[net.bound_max_off[ly, m] + j], delta)
        if not net.dense:
            if not scr.smallest[m] > layer_bound:
                return UNDECIDED
            continue
        if scr.second[m] > _moved(net, net.bound[base + scr.second_j[m] * stride], delta):
            continue
        if not scr.any_open[m] and scr.smallest[m] > layer_bound:
            return NOT_GOOD
        r = UNDECIDED
    return r


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _moved(net, c, delta):  # pragma: no cover
    """A rigorous upper bound of how far a later unit moves when its bound
    per unit move is ``c`` (computed) and the neuron moves by ``delta``: room
    for the rounding and underflow of ``c``, of the product, and of
    ``delta`` itself."""
    return (c * (1.0 + SLACK) + net.bound_abs) * delta * (1.0 + SLACK) + 5e-324


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _fallback(net, scr, q):  # pragma: no cover
    """The exact good indicator of term ``q``: its neuron put on its
    breakpoint, the change propagated through the later layers
    (``dv_m = W_m dh_{m-1}`` over the changed units, ``v_m`` = sampled
    ``v_m + dv_m``), then a path to the output through nonzero weights and
    open neurons searched backwards."""
    rows, L = net.rows, net.rows.shape[0]
    ly = _layer_of(net, q)
    K = net.bp_off[ly + 1] - net.bp_off[ly]
    j0, k = (q - net.term_off[ly]) // K, (q - net.term_off[ly]) % K
    if ly == L - 1:
        return GOOD
    dh, dv, opened = scr.dh, scr.dv, scr.opened
    for r in range(dh.shape[0]):
        dh[r] = 0.0
    dh[j0] = net.act_at_bp[net.bp_off[ly] + k] - scr.h[ly, j0]
    for m in range(ly + 1, net.last_act + 1):
        nr, nc = rows[m], rows[m - 1]
        for r in range(nr):
            dv[r] = 0.0
        for c in range(nc):
            hc = dh[c]
            if hc != 0.0:
                o = net.w_off[m] + c * nr
                for r in range(nr):
                    dv[r] += net.w_t[o + r] * hc
        if net.has_act[m]:
            t0, s0, Km = net.bp_off[m], net.sl_off[m], net.bp_off[m + 1] - net.bp_off[m]
            for r in range(nr):
                u = scr.v[m, r] + dv[r]
                km = 0
                while km < Km and u >= net.bps[t0 + km]:
                    km += 1
                opened[m, r] = net.slopes[s0 + km] != 0.0
                if km == scr.piece[m, r]:  # same piece: the change itself, not a difference of values
                    dh[r] = net.slopes[s0 + km] * dv[r]
                else:
                    dh[r] = net.slopes[s0 + km] * u + net.icpts[s0 + km] - scr.h[m, r]
        else:
            for r in range(nr):
                dh[r] = dv[r]
                opened[m, r] = True
        for r in range(nr, dh.shape[0]):
            dh[r] = 0.0
    return GOOD if _path_to_output(net, scr, ly, j0) else NOT_GOOD


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _fallback_dense(net, scr, bl, nu):  # pragma: no cover
    """:func:`_fallback` for the ``nu`` terms in ``scr.undecided`` (sorted)
    into ``bl.decided``, with dense weights: the terms of one layer move
    together (``GROUP`` at a time), row ``u`` of ``dv``/``dh`` (``(U,
    rows)``) holding term ``u``'s change, each later product one BLAS call
    over the changed units. Dense: good iff every later activated layer keeps an
    open unit."""
    t0 = 0
    while t0 < nu:
        ly = _layer_of(net, scr.undecided[t0])
        t1 = t0
        while t1 < nu and t1 - t0 < GROUP and scr.undecided[t1] < net.term_off[ly + 1]:
            t1 += 1
        U, K, rows = t1 - t0, net.bp_off[ly + 1] - net.bp_off[ly], net.rows
        dv, dh = bl.dvb, bl.dhb
        for u in range(U):
            bl.decided[t0 + u] = GOOD
        for m in range(ly + 1, net.last_act + 1):
            nr = rows[m]
            if m == ly + 1:  # one changed unit per term
                for u in range(U):
                    jk = scr.undecided[t0 + u] - net.term_off[ly]
                    j0, k = jk // K, jk % K
                    delta = net.act_at_bp[net.bp_off[ly] + k] - scr.h[ly, j0]
                    for r in range(nr):
                        dv[u * nr + r] = net.w_t[net.w_off[m] + j0 * nr + r] * delta
            else:  # dv = dh W_m^T over the changed units (columns of dh packed in place)
                nc, a = rows[m - 1], 0
                for c in range(nc):
                    nz = False
                    for u in range(U):
                        nz |= dh[u * nc + c] != 0.0
                    if nz:
                        bl.cols[a] = c
                        for r in range(nr):
                            bl.wg[a * nr + r] = net.w_t[net.w_off[m] + c * nr + r]
                        a += 1
                for u in range(U):  # writes never pass the reads: u * a + i <= u * nc + cols[i]
                    for i in range(a):
                        dh[u * a + i] = dh[u * nc + bl.cols[i]]
                _gemm(
                    dh[: U * a].reshape((U, a)),
                    bl.wg[: a * nr].reshape((a, nr)),
                    dv[: U * nr].reshape((U, nr)),
                )
            if not net.has_act[m]:
                for i in range(U * nr):
                    dh[i] = dv[i]
                continue
            for u in range(U):
                if not _pieces_moved(net, scr, bl, m, u):
                    bl.decided[t0 + u] = NOT_GOOD
        t0 = t1


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _pieces_moved(net, scr, bl, m, u):  # pragma: no cover
    """Term ``u`` of :func:`_fallback_dense`: layer ``m``'s pieces at ``v_m +
    dv``, its ``dh`` as :func:`_fallback` computes it; returns whether any
    unit of the layer is open."""
    t, s0, K, nr = net.bp_off[m], net.sl_off[m], net.bp_off[m + 1] - net.bp_off[m], net.rows[m]
    dv, dh, kept = bl.dvb, bl.dhb, False
    for r in range(nr):
        x = dv[u * nr + r]
        v = scr.v[m, r] + x
        k = 0
        while k < K and v >= net.bps[t + k]:
            k += 1
        kept |= net.slopes[s0 + k] != 0.0
        if k == scr.piece[m, r]:  # same piece: the change itself, not a difference of values
            dh[u * nr + r] = net.slopes[s0 + k] * x
        else:
            dh[u * nr + r] = net.slopes[s0 + k] * v + net.icpts[s0 + k] - scr.h[m, r]
    return kept


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _gemm(a, b, out):  # pragma: no cover
    """``out = a b`` by BLAS (every caller passes 2D C-contiguous float64
    arrays: one implementation to compile)."""
    np.dot(a, b, out)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _layer_of(net, q):  # pragma: no cover
    """The layer of term ``q``."""
    ly = 0
    while net.term_off[ly + 1] <= q:
        ly += 1
    return ly


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _path_to_output(net, scr, ly, j0):  # pragma: no cover
    """Whether neuron ``j0`` of layer ``l`` reaches the output through nonzero
    weights and the units ``scr.opened`` of every later activated layer."""
    rows, L, reach, nxt = net.rows, net.rows.shape[0], scr.reach, scr.reach_next
    for r in range(rows[L - 1]):
        reach[r] = scr.opened[L - 1, r] if L - 1 <= net.last_act else True
    for m in range(L - 2, ly, -1):  # units of layer m that reach the output
        nr = rows[m + 1]
        for c in range(rows[m]):
            nxt[c] = False
            if m > net.last_act or scr.opened[m, c]:
                o = net.w_off[m + 1] + c * nr
                for r in range(nr):
                    if reach[r] and net.w_t[o + r] != 0.0:
                        nxt[c] = True
                        break
        for c in range(rows[m]):
            reach[c] = nxt[c]
    o = net.w_off[ly + 1] + j0 * rows[ly + 1]
    for r in range(rows[ly + 1]):
        if reach[r] and net.w_t[o + r] != 0.0:
            return True
    return False
