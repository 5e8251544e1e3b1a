"""numba kernels of the Theorem-2 estimator, wrapped by :mod:`regiongeom.complexity`."""

from __future__ import annotations

import math
import os

import numba
import numpy as np
from numba import njit, prange

# The one parallel kernel (Theorem 2) runs on numba's "workqueue" threads unless
# the user chose a threading layer: OpenMP's threads spin after a parallel
# region and can slow down torch training steps run in the same process.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"


# ---------------------------------------------------------------------------
# local complexity (Theorem 2) kernels
#
# Wrapped by regiongeom.complexity (_theorem2_block), which calls _t2_kernel
# under numba.parallel_chunksize(1).
# ---------------------------------------------------------------------------
_SLACK = 1e-9  # relative safety margin of the screen's bounds against rounding
_REFRESH = 16  # theorem2: preactivations recomputed from scratch at least every 16 pairs
_CHUNK = 4096  # theorem2: pairs per parallel task (a multiple of _REFRESH)


@njit(cache=True, parallel=True)
def _t2_kernel(X, noise, wT, woff, rows, bflat, boff, has_act, last_act, bp, bpoff, sl, ic, sloff, actval, noff,
               toff, cflat, coff, cmax, cmoff, dense, sigma, use_rho, use_good, screen, want_all, f, status,
               und):  # pragma: no cover  # fmt: skip
    """Eq. (6) for the pairs n = s * P + p (sample s, point p), in chunks of
    ``_CHUNK`` contiguous pairs run in parallel. (The work is in a function of
    its own: numba may hoist allocations out of a parallel loop's body and
    share them between threads.)"""
    N = f.shape[0]
    for c in prange(und.shape[0]):
        und[c] = _t2_chunk(c * _CHUNK, min(N, (c + 1) * _CHUNK), X, noise, wT, woff, rows, bflat, boff, has_act,
                           last_act, bp, bpoff, sl, ic, sloff, actval, noff, toff, cflat, coff, cmax, cmoff, dense,
                           sigma, use_rho, use_good, screen, want_all, f, status)  # fmt: skip


@njit(cache=True)
def _t2_chunk(n0, n1, X, noise, wT, woff, rows, bflat, boff, has_act, last_act, bp, bpoff, sl, ic, sloff, actval,
              noff, toff, cflat, coff, cmax, cmoff, dense, sigma, use_rho, use_good, screen, want_all, f,
              status):  # pragma: no cover  # fmt: skip
    """Pairs n0..n1-1, one at a time, everything in small scratch arrays.

    Forward: every activated layer's pre-bias values ``z`` (``Z``), their
    input gradients (``Jz``: rows of ``W_l S_{l-1} W_{l-1} ... W_0``) and
    norms ``G``, noisy preactivations ``V``, outputs ``H``, slopes ``SL``
    and per layer ``st`` = (two largest margins of open neurons, smallest
    margin, any open) with the two neurons in ``tp`` (a margin: the distance
    to the ends of the neuron's linear piece). Products skip zero inputs
    (closed ReLUs). While consecutive pairs keep every neuron of the earlier
    layers on the same piece (neighbouring grid points), the gradients are
    reused bit for bit, and within one noise sample the values are updated
    along the shared affine map, ``z += Jz (x_n - x_{n-1})`` (exact up to
    rounding; recomputed from scratch every ``_REFRESH`` pairs).

    Terms: ``w = ||grad z_i|| phi_sigma(t_k - b_i - z_i)``; the good indicator
    from :func:`_screen`, else recomputed exactly by :func:`_fallback` --
    unless all the undecided terms of the pair together stay below half an
    ulp of its decided sum (2**-53 of it): then they are left (not good).
    Returns how many terms went to the recomputation.
    """
    P, d = X.shape
    L = rows.shape[0]
    maxw = rows.max()
    nt = toff[L]
    c0 = 1.0 / (math.sqrt(2.0 * math.pi) * sigma)
    inv = 0.5 / (sigma * sigma)
    H, V, Z, G = np.zeros((L, maxw)), np.zeros((L, maxw)), np.zeros((L, maxw)), np.zeros((L, maxw))
    SL, PC = np.zeros((L, maxw)), np.zeros((L, maxw), np.int64)
    Jz = np.zeros((L, d, maxw))
    st, tp = np.zeros((L, 4)), np.zeros((L, 2), np.int64)
    gsc = np.ones((L, maxw), np.int8)
    Wq, uq = np.zeros(nt), np.zeros(nt + 1, np.int64)
    dh, dv, opened = np.zeros(maxw), np.zeros(maxw), np.ones((L, maxw), np.bool_)
    reach, new, MG = np.zeros(maxw, np.bool_), np.zeros(maxw, np.bool_), np.zeros((L, maxw))
    n_fallback = 0
    have_prev, s_prev, p_prev = False, -1, -1
    for n in range(n0, n1):
        s = n // P
        p = n - s * P
        same = have_prev  # every neuron of the layers so far on the previous pair's piece
        for ly in range(last_act + 1):
            m, nin, base = rows[ly], (d if ly == 0 else rows[ly - 1]), woff[ly]
            if ly > 0 and same and s == s_prev and n % _REFRESH != 0:
                # z_l is affine on the region the two points share: z += Jz dx
                for dd in range(d):
                    dx = X[p, dd] - X[p_prev, dd]
                    for j in range(m):
                        Z[ly, j] += Jz[ly, dd, j] * dx
            else:
                for j in range(m):
                    Z[ly, j] = 0.0
                for c in range(nin):  # z = W_l h (W_l^T row-major: column c of W_l is contiguous)
                    a = X[p, c] if ly == 0 else H[ly - 1, c]
                    if a != 0.0:
                        o = base + c * m
                        for j in range(m):
                            Z[ly, j] += a * wT[o + j]
            if not (same or (ly == 0 and have_prev)):  # gradients of z
                for dd in range(d):
                    for j in range(m):
                        Jz[ly, dd, j] = 0.0
                    for c in range(nin):
                        if ly == 0:
                            a = 1.0 if c == dd else 0.0
                        else:
                            a = Jz[ly - 1, dd, c] * (SL[ly - 1, c] if has_act[ly - 1] else 1.0)
                        if a != 0.0:
                            o = base + c * m
                            for j in range(m):
                                Jz[ly, dd, j] += a * wT[o + j]
                for j in range(m):
                    g2 = 0.0
                    for dd in range(d):
                        g2 += Jz[ly, dd, j] * Jz[ly, dd, j]
                    G[ly, j] = math.sqrt(g2)
            if not has_act[ly]:
                for j in range(m):
                    H[ly, j] = Z[ly, j] + bflat[boff[ly] + j]
                continue
            same = _activate(ly, m, Z, V, H, SL, PC, MG, st, tp, bflat[boff[ly] : boff[ly] + m],
                             noise[s, noff[ly] :], bp[bpoff[ly] : bpoff[ly + 1]], sl[sloff[ly] : sloff[ly + 1]],
                             ic[sloff[ly] : sloff[ly + 1]], same)  # fmt: skip
        if use_good and not dense:
            _sampled_reach(L, last_act, rows, woff, wT, has_act, SL, gsc, reach, new)
        acc = _terms(n, last_act, rows, has_act, bp, bpoff, bflat, boff, actval, toff, Z, G, H, st, tp, gsc, cflat,
                     coff, cmax, cmoff, dense, c0, inv, use_rho, use_good, screen, want_all, status, Wq, uq)  # fmt: skip
        n_und = int(uq[0])
        if n_und > 0:
            n_fallback += n_und
            for t in range(1, n_und + 1):
                q = uq[t]
                ly = 0
                while toff[ly + 1] <= q:
                    ly += 1
                K = bpoff[ly + 1] - bpoff[ly]
                j, k = (q - toff[ly]) // K, (q - toff[ly]) % K
                r = _fallback(ly, j, actval[bpoff[ly] + k], V, H, wT, woff, rows, has_act, last_act, bp, bpoff, sl, ic,
                              sloff, dh, dv, opened, reach, new)  # fmt: skip
                if want_all:
                    status[n, q] = r
                if r == 1:
                    acc += Wq[q]
        f[n] = acc
        have_prev, s_prev, p_prev = True, s, p
    return n_fallback


@njit(cache=True)
def _activate(ly, m, Z, V, H, SL, PC, MG, st, tp, b, noise, bp, sl, ic, same):  # pragma: no cover
    """Activation of layer l for one pair: V, H, pieces PC, slopes SL,
    margins MG (the distance to the ends of the neuron's linear piece), the
    widest open neuron ``tp[l, 0]`` with its margin ``st[l, 0]`` (-inf: none
    open), the second widest (``tp[l, 1]``, ``st[l, 1]``), the smallest
    margin ``st[l, 2]`` and whether any is open ``st[l, 3]``. Returns whether
    every neuron so far stays on the previous pair's piece. Simple loops
    (selects for one-breakpoint activations) so that they vectorise."""
    K = bp.shape[0]
    diff = False
    if K == 1:
        t0, s0, s1, i0, i1 = bp[0], sl[0], sl[1], ic[0], ic[1]
        for j in range(m):
            v = Z[ly, j] + b[j] + noise[j]
            up = v >= t0
            diff |= up != PC[ly, j]
            PC[ly, j], V[ly, j], SL[ly, j] = up, v, s1 if up else s0
            H[ly, j] = (s1 if up else s0) * v + (i1 if up else i0)
            MG[ly, j] = abs(v - t0)
    else:
        for j in range(m):
            v = Z[ly, j] + b[j] + noise[j]
            k = 0
            while k < K and v >= bp[k]:
                k += 1
            diff |= k != PC[ly, j]
            PC[ly, j], V[ly, j], SL[ly, j] = k, v, sl[k]
            H[ly, j] = sl[k] * v + ic[k]
            MG[ly, j] = min(v - bp[k - 1] if k > 0 else np.inf, bp[k] - v if k < K else np.inf)
    m1, k1, mm = -np.inf, 0, np.inf
    for j in range(m):
        mm = min(mm, MG[ly, j])
        if SL[ly, j] != 0.0 and MG[ly, j] > m1:
            m1, k1 = MG[ly, j], j
    m2, k2 = -np.inf, 0
    for j in range(m):
        if SL[ly, j] != 0.0 and MG[ly, j] > m2 and j != k1:
            m2, k2 = MG[ly, j], j
    st[ly, 0], st[ly, 1], st[ly, 2], st[ly, 3] = m1, m2, mm, (1.0 if m1 > -np.inf else 0.0)
    tp[ly, 0], tp[ly, 1] = k1, k2
    return same and not diff


@njit(cache=True)
def _terms(n, last_act, rows, has_act, bp, bpoff, bflat, boff, actval, toff, Z, G, H, st, tp, gsc, cflat, coff, cmax,
           cmoff, dense, c0, inv, use_rho, use_good, screen, want_all, status, Wq, uq):  # pragma: no cover  # fmt: skip
    """The terms of one pair: returns the sum of those decided good and lists
    the undecided ones in ``uq[1 : uq[0] + 1]`` (weights in ``Wq``).

    Weights first (exp skipped where it underflows to 0). Then the screen:
    first the terms above ``2**-53 * sum(w) / n_terms``, the smaller ones
    only if needed; undecided terms are listed only if needed. A term is
    left out (taken as not good) only when every left-out term is below
    ``2**-53 * f / n_terms``, so all of them together change f by less than
    half an ulp. ``want_all`` decides every term.
    """
    nt = toff[last_act + 1]
    wsum = 0.0
    for ly in range(last_act + 1):
        K = bpoff[ly + 1] - bpoff[ly]
        for j in range(rows[ly] if has_act[ly] else 0):
            for k in range(K):
                w = G[ly, j]
                if use_rho:
                    u = bp[bpoff[ly] + k] - bflat[boff[ly] + j] - Z[ly, j]
                    e = u * u * inv
                    w = w * c0 * math.exp(-e) if e < 746.0 else 0.0
                Wq[toff[ly] + j * K + k] = w
                wsum += w
    uq[0] = 0
    if not use_good:
        return wsum
    acc, wu, wd = 0.0, 0.0, 0.0
    thr = -1.0 if want_all else wsum * 2.0**-53 / nt
    for rnd in range(2):  # round 0: w > thr; round 1 (if needed): 0 < w <= thr
        if rnd == 1 and not wd * nt > acc * 2.0**-53:
            break
        for ly in range(last_act + 1):
            K = bpoff[ly + 1] - bpoff[ly]
            for j in range(rows[ly] if has_act[ly] else 0):
                for k in range(K):
                    q = toff[ly] + j * K + k
                    w = Wq[q]
                    if rnd == 0 and not w > thr:
                        if w > 0.0:
                            wd = max(wd, w)
                        continue
                    if rnd == 1 and not (0.0 < w <= thr):
                        continue
                    r = 2
                    if screen:
                        delta = abs(actval[bpoff[ly] + k] - H[ly, j])
                        r0 = 1 if dense else gsc[ly, j]
                        r = _screen(ly, j, delta, has_act, st, tp, cflat, coff, cmax, cmoff, rows, r0, dense)
                    if want_all:
                        status[n, q] = r
                    if r == 1:
                        acc += w
                    elif r == 2:
                        uq[0] += 1
                        uq[uq[0]] = q
                        wu = max(wu, w)
    if not (want_all or wu * nt > acc * 2.0**-53):
        uq[0] = 0  # every undecided term is negligible
    return acc


@njit(cache=True)
def _sampled_reach(L, last_act, rows, woff, wT, has_act, SL, gsc, reach, new):  # pragma: no cover
    """gsc[l, j] = 1 if neuron j of layer l reaches the output through nonzero
    weights and open later neurons in the sampled pass (nothing moved)."""
    for r in range(rows[L - 1]):
        reach[r] = SL[L - 1, r] != 0.0 if (has_act[L - 1] and L - 1 <= last_act) else True
    for m in range(L - 2, -1, -1):
        nr = rows[m + 1]
        for c in range(rows[m]):
            conn = False
            o = woff[m + 1] + c * nr
            for r in range(nr):
                if reach[r] and wT[o + r] != 0.0:
                    conn = True
                    break
            if has_act[m]:
                gsc[m, c] = conn
            new[c] = conn and (not has_act[m] or SL[m, c] != 0.0)
        for c in range(rows[m]):
            reach[c] = new[c]


@njit(cache=True)
def _screen(ly, j, delta, has_act, st, tp, cflat, coff, cmax, cmoff, rows, r0, dense):  # pragma: no cover
    """Good indicator of neuron j of layer l put on a breakpoint, decided from
    the sampled pass when possible: 1 good, 0 not good, 2 undecided.

    Its output moves by ``delta``; unit k of a later layer m then moves by at
    most ``C[l, m][k, j] delta`` and keeps its linear piece if its margin is
    larger. Dense weights: good iff every later activated layer keeps an open
    neuron, so one of the two widest open neurons staying open in every such
    layer proves good, and a layer with no open neuron and every margin larger
    than the layer's bound proves not good. Otherwise, when no later neuron
    can change piece, the sampled pass's reachability ``r0`` is exact.
    """
    L = has_act.shape[0]
    r = r0
    for m in range(ly + 1, L):
        if not has_act[m]:
            continue
        base = coff[ly, m] + j
        if dense and st[m, 0] > cflat[base + tp[m, 0] * rows[ly]] * delta * (1.0 + _SLACK):
            continue
        bmax = cmax[cmoff[ly, m] + j] * delta * (1.0 + _SLACK)
        if not dense:
            if not st[m, 2] > bmax:
                return 2
            continue
        if st[m, 1] > cflat[base + tp[m, 1] * rows[ly]] * delta * (1.0 + _SLACK):
            continue
        if st[m, 3] == 0.0 and st[m, 2] > bmax:
            return 0
        r = 2
    return r


@njit(cache=True)
def _fallback(ly, j0, act_t, V, H, wT, woff, rows, has_act, last_act, bp, bpoff, sl, ic, sloff, dh, dv, opened, reach,
              new):  # pragma: no cover  # fmt: skip
    """The exact good indicator of neuron j0 of layer l put on a breakpoint
    (output ``act_t``): propagate the change through the later layers
    (``dv_m = W_m dh_{m-1}`` over the changed units, ``v_m`` = sampled
    ``v_m + dv_m``), then search a path to the output through nonzero weights
    and open neurons, backwards."""
    L = rows.shape[0]
    if ly == L - 1:
        return 1
    dh[:] = 0.0
    dh[j0] = act_t - H[ly, j0]
    for m in range(ly + 1, last_act + 1):
        nr, nc = rows[m], rows[m - 1]
        dv[:nr] = 0.0
        for c in range(nc):
            hc = dh[c]
            if hc != 0.0:
                o = woff[m] + c * nr
                for r in range(nr):
                    dv[r] += wT[o + r] * hc
        if has_act[m]:
            K = bpoff[m + 1] - bpoff[m]
            for r in range(nr):
                v = V[m, r] + dv[r]
                k = 0
                while k < K and v >= bp[bpoff[m] + k]:
                    k += 1
                slope = sl[sloff[m] + k]
                opened[m, r] = slope != 0.0
                dh[r] = slope * v + ic[sloff[m] + k] - H[m, r]
        else:
            dh[:nr] = dv[:nr]
            opened[m, :nr] = True
        dh[nr:] = 0.0
    for r in range(rows[L - 1]):
        reach[r] = opened[L - 1, r] if L - 1 <= last_act else True
    for m in range(L - 2, ly, -1):  # units of layer m that reach the output
        nr = rows[m + 1]
        for c in range(rows[m]):
            new[c] = False
            if m > last_act or opened[m, c]:
                o = woff[m + 1] + c * nr
                for r in range(nr):
                    if reach[r] and wT[o + r] != 0.0:
                        new[c] = True
                        break
        for c in range(rows[m]):
            reach[c] = new[c]
    o = woff[ly + 1] + j0 * rows[ly + 1]
    for r in range(rows[ly + 1]):
        if reach[r] and wT[o + r] != 0.0:
            return 1
    return 0
