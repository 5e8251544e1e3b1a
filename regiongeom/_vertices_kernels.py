"""numba kernels of :mod:`regiongeom.vertices`: Theorem 6 with k = 2.

The reference (``fast=False``, :func:`_pair_density`): one (noise sample,
point) pair at a time, a sampled forward pass, then for every neuron ``i``
near a breakpoint a forward pass with ``i`` pinned there (the pre-bias value
``z_j`` of every later neuron and its input gradient with ``i``'s output
frozen), then for every partner ``j`` near a breakpoint the pass with both
pinned, which decides whether both are good.

The fast path (:func:`_pair_density_fast`) computes the same sum:

- the transfer matrices ``T[m, l] = dZ_m / dH_l`` of the sampled pattern
  are kept across the points of a chunk, by one rank-1 update per neuron
  whose slope changed (neighbouring points share most of their pattern);
- pinning ``i`` moves every later layer by ``delta_i`` times a column of
  ``T``; a neuron that changes piece adds its own column (its output change
  beyond the linear one), and its slope change times its determinant to the
  determinants of the layers after it (``det[grad z_i; grad zhat_j]`` is the
  sampled determinant when nothing changes piece, as the identity in
  :mod:`regiongeom.vertices` shows);
- the terms of a layer ``j`` runs over are summed in one vectorised loop,
  with ``exp`` as plain arithmetic (:func:`_expneg`) and, for ``j`` in
  ``i``'s own layer, the Gaussian factors of the sampled pass;
- goodness is screened for dense weights in two rigorous steps (a bound per
  layer, then per widest neuron), and decided by the reference's pass with
  both pinned when neither is certain;
- for simple networks (dense, one breakpoint per activation, the last layer
  linear: ReLU, LeakyReLU, abs MLPs) one call, :func:`_pair_lite`, does all
  the pins of a (sample, point) pair with only what the terms need (numba
  passes these tuples of arrays by value, so a call per pin and row cost
  more than the work); the few pins it cannot decide go to the general path.

The network is a :class:`_Net` of flat arrays (``W^T`` of every layer
row-major, so that column ``c`` of ``W_l`` is contiguous at
``woff[l] + c * rows[l]``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

CHUNK = 64  # (sample, point) pairs per chunk
_SLACK = 1e-9  # relative safety margin of the screen's bounds against rounding
_FM = {"reassoc", "contract", "nsz", "arcp"}  # vectorised loops; changes only the rounding


class _Net(NamedTuple):
    wT: np.ndarray  # every W_l^T, row-major, concatenated
    woff: np.ndarray  # (L + 1,) start of each layer in wT
    rows: np.ndarray  # (L,) units per layer
    b: np.ndarray  # every layer's noise-free bias, concatenated
    boff: np.ndarray  # (L + 1,)
    has_act: np.ndarray  # (L,) bool
    bp: np.ndarray  # breakpoints of every layer's activation, concatenated
    bpoff: np.ndarray  # (L + 1,)
    sl: np.ndarray  # slopes (K + 1 per activated layer), concatenated
    ic: np.ndarray  # intercepts, same layout
    sloff: np.ndarray  # (L + 1,)
    noff: np.ndarray  # (L + 1,) first neuron of each layer
    cinv: np.ndarray  # 1 / (C[l, m] (1 + _SLACK)) for the bounds C[l, m] = |W_m| S ... S |W_{l+1}|
    coff: np.ndarray  # (L, L) start of C[l, m] (rows[m], rows[l]) in cinv
    cminv: np.ndarray  # the same for the column maxima of every C[l, m] (the whole layer's bound)
    cmoff: np.ndarray  # (L, L) start of those in cminv
    dense: bool  # every weight after the first layer nonzero
    toff: np.ndarray  # (L, L) start of the transposed transfer matrix T[m, l] (l < m) in _Pins.TT
    tsize: int  # their total size
    maxflips: int  # above this many slope changes a fresh build of them is cheaper
    simple: bool  # dense, one breakpoint per activation, every layer activated but the linear last one


class _State(NamedTuple):
    Z: np.ndarray  # (L, maxw) pre-bias values W_l h_{l-1}
    V: np.ndarray  # (L, maxw) preactivations Z + b + noise (pinned: the breakpoint)
    H: np.ndarray  # (L, maxw) outputs
    SL: np.ndarray  # (L, maxw) slope used by the gradient (0 for a pinned neuron)
    OP: np.ndarray  # (L, maxw) bool: open (nonzero slope, or pinned)
    J: np.ndarray  # (L, 2, maxw) input gradients of Z


@njit(cache=True)
def _copy_state(src, dst, l0):
    """Layers l0.. of src into dst (earlier layers are not read again)."""
    L = src.Z.shape[0]
    for ly in range(l0, L):
        dst.Z[ly, :] = src.Z[ly, :]
        dst.V[ly, :] = src.V[ly, :]
        dst.H[ly, :] = src.H[ly, :]
        dst.SL[ly, :] = src.SL[ly, :]
        dst.OP[ly, :] = src.OP[ly, :]
        dst.J[ly, :, :] = src.J[ly, :, :]


@njit(cache=True)
def _forward(net, x, noise, st, l0, grad):
    """Recompute layers l0.. of st from layer l0 - 1's outputs (or x)."""
    L = net.rows.shape[0]
    for ly in range(l0, L):
        m, base = net.rows[ly], net.woff[ly]
        nin = x.shape[0] if ly == 0 else net.rows[ly - 1]
        for j in range(m):
            st.Z[ly, j] = 0.0
        for c in range(nin):
            a = x[c] if ly == 0 else st.H[ly - 1, c]
            if a != 0.0:
                o = base + c * m
                for j in range(m):
                    st.Z[ly, j] += a * net.wT[o + j]
        if grad:
            for dd in range(2):
                for j in range(m):
                    st.J[ly, dd, j] = 0.0
                for c in range(nin):
                    if ly == 0:
                        a = 1.0 if c == dd else 0.0
                    else:
                        a = st.J[ly - 1, dd, c] * st.SL[ly - 1, c]
                    if a != 0.0:
                        o = base + c * m
                        for j in range(m):
                            st.J[ly, dd, j] += a * net.wT[o + j]
        b0 = net.boff[ly]
        if not net.has_act[ly]:
            for j in range(m):
                v = st.Z[ly, j] + net.b[b0 + j]
                st.V[ly, j], st.H[ly, j], st.SL[ly, j], st.OP[ly, j] = v, v, 1.0, True
            continue
        n0, k0, s0 = net.noff[ly], net.bpoff[ly], net.sloff[ly]
        K = net.bpoff[ly + 1] - k0
        for j in range(m):
            v = st.Z[ly, j] + net.b[b0 + j] + noise[n0 + j]
            k = 0
            while k < K and v >= net.bp[k0 + k]:
                k += 1
            s = net.sl[s0 + k]
            st.V[ly, j], st.H[ly, j], st.SL[ly, j], st.OP[ly, j] = v, s * v + net.ic[s0 + k], s, s != 0.0


@njit(cache=True)
def _pin(net, st, ly, u, k):
    """Put neuron u of layer ly on breakpoint k: open, output act(t_k), and
    slope 0 so that later gradients leave its own contribution out."""
    t = net.bp[net.bpoff[ly] + k]
    s0 = net.sloff[ly]
    st.V[ly, u] = t
    st.H[ly, u] = net.sl[s0 + k] * t + net.ic[s0 + k]
    st.SL[ly, u] = 0.0
    st.OP[ly, u] = True


@njit(cache=True)
def _reaches(net, st, ly, u, reach, new):
    """Whether unit u of layer ly has a path to the output through nonzero
    weights and open units of every later layer."""
    L = net.rows.shape[0]
    if ly == L - 1:
        return True
    for r in range(net.rows[L - 1]):
        reach[r] = st.OP[L - 1, r]
    for m in range(L - 2, ly, -1):
        nr = net.rows[m + 1]
        for c in range(net.rows[m]):
            new[c] = False
            if st.OP[m, c]:
                o = net.woff[m + 1] + c * nr
                for r in range(nr):
                    if reach[r] and net.wT[o + r] != 0.0:
                        new[c] = True
                        break
        for c in range(net.rows[m]):
            reach[c] = new[c]
    nr = net.rows[ly + 1]
    o = net.woff[ly + 1] + u * nr
    for r in range(nr):
        if reach[r] and net.wT[o + r] != 0.0:
            return True
    return False


@njit(cache=True)
def _pair_density(net, x, noise, sigma, ecut, s0, s1, s2, reach, new):
    """The k = 2 sum of Theorem 6 at one point for one noise row."""
    L = net.rows.shape[0]
    inv = 0.5 / (sigma * sigma)
    c2 = 1.0 / (2.0 * math.pi * sigma * sigma)
    _forward(net, x, noise, s0, 0, True)
    acc = 0.0
    for li in range(L):
        if not net.has_act[li]:
            continue
        Ki = net.bpoff[li + 1] - net.bpoff[li]
        for u in range(net.rows[li]):
            for a in range(Ki):
                d = net.bp[net.bpoff[li] + a] - s0.Z[li, u] - net.b[net.boff[li] + u]
                ei = d * d * inv
                if ei > ecut:
                    continue
                _copy_state(s0, s1, li)
                _pin(net, s1, li, u, a)
                _forward(net, x, noise, s1, li + 1, True)
                gx, gy = s0.J[li, 0, u], s0.J[li, 1, u]
                for lj in range(li, L):
                    if not net.has_act[lj]:
                        continue
                    Kj = net.bpoff[lj + 1] - net.bpoff[lj]
                    for v in range(u + 1 if lj == li else 0, net.rows[lj]):
                        for c in range(Kj):
                            dj = net.bp[net.bpoff[lj] + c] - s1.Z[lj, v] - net.b[net.boff[lj] + v]
                            e = ei + dj * dj * inv
                            if e > ecut:
                                continue
                            det = gx * s1.J[lj, 1, v] - gy * s1.J[lj, 0, v]
                            if det == 0.0:
                                continue
                            _copy_state(s1, s2, li)
                            _pin(net, s2, lj, v, c)
                            _forward(net, x, noise, s2, lj + 1, False)
                            if _reaches(net, s2, lj, v, reach, new) and _reaches(net, s2, li, u, reach, new):
                                acc += abs(det) * c2 * math.exp(-e)
    return acc


@njit(cache=True)
def _propagate(net, noise, s0, s1, li, u, a, dh, dn):
    """s1 = s0 with neuron u of layer li pinned at breakpoint a, by pushing
    the change of its output through the later layers (only the units that
    changed feed the next layer). Returns the first later layer where a
    neuron changed piece (L if none): there the sampled gradients stop
    being valid for the determinant."""
    L = net.rows.shape[0]
    _copy_state(s0, s1, li)
    _pin(net, s1, li, u, a)
    nd = 1
    dn[0], dh[0] = u, s1.H[li, u] - s0.H[li, u]
    first = L
    for m in range(li + 1, L):
        rm, base = net.rows[m], net.woff[m]
        for t in range(nd):
            c, d = dn[t], dh[t]
            o = base + c * rm
            for r in range(rm):
                s1.Z[m, r] += d * net.wT[o + r]
        nd = 0
        act = net.has_act[m]
        k0, sl0, K = net.bpoff[m], net.sloff[m], net.bpoff[m + 1] - net.bpoff[m]
        for r in range(rm):
            v = s1.Z[m, r] + net.b[net.boff[m] + r] + (noise[net.noff[m] + r] if act else 0.0)
            if act:
                k = 0
                while k < K and v >= net.bp[k0 + k]:
                    k += 1
                sl = net.sl[sl0 + k]
                h = sl * v + net.ic[sl0 + k]
                if sl != s0.SL[m, r] and first == L:
                    first = m
                s1.SL[m, r], s1.OP[m, r] = sl, sl != 0.0
            else:
                h = v
            s1.V[m, r] = v
            if h != s0.H[m, r]:
                dn[nd], dh[nd] = r, h - s0.H[m, r]
                nd += 1
            s1.H[m, r] = h
    return first


@njit(cache=True)
def _grad_from(net, st, l0):
    """Input gradients of Z for layers l0.. from st's slopes."""
    L = net.rows.shape[0]
    for ly in range(max(l0, 1), L):
        m, base = net.rows[ly], net.woff[ly]
        for dd in range(2):
            for j in range(m):
                st.J[ly, dd, j] = 0.0
            for c in range(net.rows[ly - 1]):
                a = st.J[ly - 1, dd, c] * st.SL[ly - 1, c]
                if a != 0.0:
                    o = base + c * m
                    for j in range(m):
                        st.J[ly, dd, j] += a * net.wT[o + j]


# ----------------------------------------------------------------------------
# the fast path: transfer matrices, every pin pushed through by columns
# ----------------------------------------------------------------------------
class _Pins(NamedTuple):
    TT: np.ndarray  # T[m, l] = dZ_m / dH_l (sampled slopes), transposed, at toff[l, m]
    TS: np.ndarray  # (L, maxw) slopes TT is exact for
    built: np.ndarray  # (1,) bool
    PC: np.ndarray  # (L, maxw) int64 piece of every neuron in the sampled pass
    EJ: np.ndarray  # (L, maxK, maxw) (t_c - z_j - b_j)^2 / (2 sigma^2) in the sampled pass
    E: np.ndarray  # (L, maxK, maxw) exp(-EJ)
    Zh: np.ndarray  # (L, maxw) pre-bias values with i pinned
    Dh: np.ndarray  # (L, maxw) det[grad z_i; grad zhat_j]
    Hh: np.ndarray  # (L, maxw) outputs with i pinned
    Kh: np.ndarray  # (L, maxw) int64 pieces with i pinned
    Mg: np.ndarray  # (L, maxw) distance of an open neuron to the ends of its piece (-1: not open)
    fl: np.ndarray  # flipped neurons (changed piece when i is pinned): layer,
    fk: np.ndarray  # unit,
    fe: np.ndarray  # output change beyond the linear one,
    fd: np.ndarray  # slope change times det[grad z_i; grad zhat_k]
    marg: np.ndarray  # (L,) largest Mg of each layer (-1: none open)
    cap: np.ndarray  # (L, maxw) the screen (see _screen)
    KS: np.ndarray  # (L,) int64 the widest open neuron of each layer in the sampled pass
    FB: np.ndarray  # (L, maxw) bool: pins left by _pair_lite to the general path


_EXPTAB = np.exp(-np.arange(520) / 8.0)


@njit(cache=True, inline="always", fastmath=_FM)
def _expneg_tab(e):
    """exp(-e) for 0 <= e <= 64: exp(-n / 8) from a table times the Taylor
    polynomial of exp(r), |r| <= 1 / 16 (relative error about 2e-16)."""
    n = int(e * 8.0 + 0.5)
    r = n * 0.125 - e
    p = 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    return _EXPTAB[n] * p


@njit(cache=True, inline="always", fastmath=_FM)
def _expneg(e):
    """exp(-e) for 0 <= e <= 64 to a few 1e-14 relative, in plain arithmetic
    that vectorises: the Taylor polynomial of exp(-e / 256), squared 8 times."""
    y = e * (-1.0 / 256.0)
    p = 1.0 / 479001600.0
    p = p * y + 1.0 / 39916800.0
    p = p * y + 1.0 / 3628800.0
    p = p * y + 1.0 / 362880.0
    p = p * y + 1.0 / 40320.0
    p = p * y + 1.0 / 5040.0
    p = p * y + 1.0 / 720.0
    p = p * y + 1.0 / 120.0
    p = p * y + 1.0 / 24.0
    p = p * y + 1.0 / 6.0
    p = p * y + 0.5
    p = p * y + 1.0
    p = p * y + 1.0
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    return p * p


@njit(cache=True, fastmath=_FM)
def _forward_fast(net, x, noise, st, P, inv, ecut):
    """The sampled pass (values and input gradients in one sweep of the
    weights), every neuron's piece, and the Gaussian exponent (and factor)
    of every neuron at every breakpoint."""
    L = net.rows.shape[0]
    for ly in range(L):
        m, base = net.rows[ly], net.woff[ly]
        nin = x.shape[0] if ly == 0 else net.rows[ly - 1]
        for j in range(m):
            st.Z[ly, j], st.J[ly, 0, j], st.J[ly, 1, j] = 0.0, 0.0, 0.0
        for c in range(nin):
            if ly == 0:
                a0, a1, a2 = x[c], 1.0 if c == 0 else 0.0, 1.0 if c == 1 else 0.0
            else:
                a0, a1, a2 = (
                    st.H[ly - 1, c],
                    st.J[ly - 1, 0, c] * st.SL[ly - 1, c],
                    st.J[ly - 1, 1, c] * st.SL[ly - 1, c],
                )
            if a0 != 0.0 or a1 != 0.0 or a2 != 0.0:
                o = base + c * m
                for j in range(m):
                    w = net.wT[o + j]
                    st.Z[ly, j] += a0 * w
                    st.J[ly, 0, j] += a1 * w
                    st.J[ly, 1, j] += a2 * w
        b0 = net.boff[ly]
        if not net.has_act[ly]:
            for j in range(m):
                v = st.Z[ly, j] + net.b[b0 + j]
                st.V[ly, j], st.H[ly, j], st.SL[ly, j], st.OP[ly, j], P.PC[ly, j] = v, v, 1.0, True, 0
            continue
        n0, k0, s0 = net.noff[ly], net.bpoff[ly], net.sloff[ly]
        K = net.bpoff[ly + 1] - k0
        for j in range(m):
            v = st.Z[ly, j] + net.b[b0 + j] + noise[n0 + j]
            k = 0
            for q in range(K):
                k += v >= net.bp[k0 + q]
            s = net.sl[s0 + k]
            st.V[ly, j], st.H[ly, j], st.SL[ly, j], st.OP[ly, j], P.PC[ly, j] = (
                v,
                s * v + net.ic[s0 + k],
                s,
                s != 0.0,
                k,
            )
        for q in range(K):
            t = net.bp[k0 + q]
            for j in range(m):
                d = t - st.Z[ly, j] - net.b[b0 + j]
                e = d * d * inv
                P.EJ[ly, q, j], P.E[ly, q, j] = e, _expneg(min(e, ecut))


@njit(cache=True, fastmath=_FM)
def _transfer(net, st, P):
    """Bring the transfer matrices to st's slopes: one rank-1 update per
    neuron whose slope changed (exact: T[m, l] = T[m, l'] S_l' T[l', l] for
    l < l' < m, and neither factor involves layer l'), or a fresh build when
    that is cheaper."""
    L = net.rows.shape[0]
    nfl = 0
    if P.built[0]:
        for lp in range(1, L - 1):
            for k in range(net.rows[lp]):
                nfl += st.SL[lp, k] != P.TS[lp, k]
    if not P.built[0] or nfl > net.maxflips:
        for ly in range(L - 1):
            for m in range(ly + 1, L):
                rm, o = net.rows[m], net.toff[ly, m]
                if m == ly + 1:
                    for q in range(net.rows[ly] * rm):
                        P.TT[o + q] = net.wT[net.woff[m] + q]
                    continue
                rp, op, wb = net.rows[m - 1], net.toff[ly, m - 1], net.woff[m]
                for k in range(net.rows[ly]):
                    for q in range(rm):
                        P.TT[o + k * rm + q] = 0.0
                    for c in range(rp):
                        a = P.TT[op + k * rp + c] * st.SL[m - 1, c]
                        if a != 0.0:
                            for q in range(rm):
                                P.TT[o + k * rm + q] += a * net.wT[wb + c * rm + q]
        P.TS[:, :] = st.SL[:, :]
        P.built[0] = True
        return
    for lp in range(1, L - 1):
        rp = net.rows[lp]
        for k in range(rp):
            ds = st.SL[lp, k] - P.TS[lp, k]
            if ds == 0.0:
                continue
            for ly in range(lp):
                for m in range(lp + 1, L):
                    rm = net.rows[m]
                    o, o2 = net.toff[ly, m], net.toff[lp, m] + k * rm
                    for r in range(net.rows[ly]):
                        a = ds * P.TT[net.toff[ly, lp] + r * rp + k]
                        if a != 0.0:
                            for q in range(rm):
                                P.TT[o + r * rm + q] += a * P.TT[o2 + q]
            P.TS[lp, k] = st.SL[lp, k]


@njit(cache=True, fastmath=_FM)
def _pin_pass(net, noise, st, P, li, u, a):
    """Neuron u of layer li pinned at breakpoint a: every later layer's
    pre-bias values, determinants, outputs and pieces, from the columns of
    the transfer matrices. A neuron that changes piece adds its own column
    (its output change beyond the linear one, and its slope change times its
    determinant) to the layers after it."""
    L = net.rows.shape[0]
    k = net.sloff[li] + a
    delta = net.sl[k] * net.bp[net.bpoff[li] + a] + net.ic[k] - st.H[li, u]
    gx, gy = st.J[li, 0, u], st.J[li, 1, u]
    nf = 0
    for m in range(li + 1, L):
        rm = net.rows[m]
        o = net.toff[li, m] + u * rm
        for r in range(rm):
            P.Zh[m, r] = st.Z[m, r] + delta * P.TT[o + r]
            P.Dh[m, r] = gx * st.J[m, 1, r] - gy * st.J[m, 0, r]
        for f in range(nf):
            o, fe, fd = net.toff[P.fl[f], m] + P.fk[f] * rm, P.fe[f], P.fd[f]
            for r in range(rm):
                P.Zh[m, r] += fe * P.TT[o + r]
                P.Dh[m, r] += fd * P.TT[o + r]
        b0, n0 = net.boff[m], net.noff[m]
        if not net.has_act[m]:
            for r in range(rm):
                P.Hh[m, r] = P.Zh[m, r] + net.b[b0 + r]
            P.marg[m] = 0.0
            continue
        k0, s0, K = net.bpoff[m], net.sloff[m], net.bpoff[m + 1] - net.bpoff[m]
        nflip, best = 0, -1.0
        if K == 1:  # one breakpoint: a branch-free loop
            t0, sa, sb, ia, ib = net.bp[k0], net.sl[s0], net.sl[s0 + 1], net.ic[s0], net.ic[s0 + 1]
            for r in range(rm):
                v = P.Zh[m, r] + net.b[b0 + r] + noise[n0 + r]
                up = v >= t0
                s = sb if up else sa
                P.Hh[m, r] = s * v + (ib if up else ia)
                P.Kh[m, r] = up
                g = abs(v - t0) if s != 0.0 else -1.0
                P.Mg[m, r] = g
                best = max(best, g)
                nflip += up != P.PC[m, r]
        else:
            for r in range(rm):
                v = P.Zh[m, r] + net.b[b0 + r] + noise[n0 + r]
                k = 0
                for q in range(K):
                    k += v >= net.bp[k0 + q]
                s = net.sl[s0 + k]
                P.Hh[m, r], P.Kh[m, r] = s * v + net.ic[s0 + k], k
                lo = v - net.bp[k0 + max(k - 1, 0)] if k > 0 else np.inf
                hi = net.bp[k0 + min(k, K - 1)] - v if k < K else np.inf
                g = min(lo, hi) if s != 0.0 else -1.0
                P.Mg[m, r] = g
                best = max(best, g)
                nflip += k != P.PC[m, r]
        P.marg[m] = best
        if nflip:
            for r in range(rm):
                if P.Kh[m, r] != P.PC[m, r]:
                    s = net.sl[s0 + P.Kh[m, r]]
                    P.fl[nf], P.fk[nf] = m, r
                    P.fe[nf] = P.Hh[m, r] - st.H[m, r] - st.SL[m, r] * (P.Zh[m, r] - st.Z[m, r])
                    P.fd[nf] = (s - st.SL[m, r]) * P.Dh[m, r]
                    nf += 1


@njit(cache=True, fastmath=_FM)
def _screen(net, li, P):
    """The screen of both-good, from the state with i pinned, as one number
    per later neuron j (layer lj, unit v). For dense weights both are good
    iff every activated layer after l_i keeps an open neuron (j counts as
    open in its own layer). Layers up to l_j do not see j's pin:
    ``cap[lj, v] = -1`` when one between l_i and l_j has no open neuron (not
    good). A layer m after l_j keeps its widest open neuron k when j's
    output moves by less than ``marg[m] / C[l_j, m][k, v]`` (C bounds how
    far it moves unit k); here C is taken at its largest over k (the tight
    bound with the widest k is :func:`_tight`'s), and ``cap[lj, v]`` is the
    smallest of these (-2: a later layer has no open neuron to screen with,
    or the weights are not dense: no screen)."""
    L = net.rows.shape[0]
    closed = False  # a layer strictly between l_i and the current one has no open neuron
    for lj in range(li, L):
        if not net.has_act[lj]:
            continue
        rl = net.rows[lj]
        fill = -1.0 if closed else (-2.0 if not net.dense else np.inf)
        for m in range(lj + 1, L):
            if fill == np.inf and net.has_act[m] and P.marg[m] < 0.0:
                fill = -2.0
        for v in range(rl):
            P.cap[lj, v] = fill
        if fill == np.inf:
            for m in range(lj + 1, L):
                if net.has_act[m]:
                    base, mg = net.cmoff[lj, m], P.marg[m]
                    for v in range(rl):
                        P.cap[lj, v] = min(P.cap[lj, v], mg * net.cminv[base + v])
        if lj > li and P.marg[lj] < 0.0:
            closed = True


@njit(cache=True)
def _tight(net, P, lj, v):
    """The screen's cap for j = (lj, v) with the bound of each later
    layer's widest open neuron itself (for dense weights, every later layer
    with an open neuron)."""
    L = net.rows.shape[0]
    rl = net.rows[lj]
    cap = np.inf
    for m in range(lj + 1, L):
        if net.has_act[m]:
            k = 0
            while P.Mg[m, k] != P.marg[m]:
                k += 1
            cap = min(cap, P.marg[m] * net.cinv[net.coff[lj, m] + k * rl + v])
    return cap


@njit(cache=True, fastmath=_FM)
def _row(net, P, li, u, lj, c, ei, inv, ecut):
    """The terms of pin (li, u) with every neuron v of layer lj at its
    breakpoint c, summed (without the factor 1 / (2 pi sigma^2)) when the
    screen decides every pair; else -1 (the row is then redone by
    :func:`_row_exact`)."""
    t = net.bp[net.bpoff[lj] + c]
    k = net.sloff[lj] + c
    hc = net.sl[k] * t + net.ic[k]
    b0 = net.boff[lj]
    acc, nund = 0.0, 0
    for v in range(u + 1 if lj == li else 0, net.rows[lj]):
        d = t - P.Zh[lj, v] - net.b[b0 + v]
        e = ei + d * d * inv
        det, cp = P.Dh[lj, v], P.cap[lj, v]
        live = (e <= ecut) & (det != 0.0) & (cp != -1.0)
        good = live & (abs(hc - P.Hh[lj, v]) < cp)
        acc += abs(det) * _expneg(min(e, ecut)) if good else 0.0
        nund += live & ~good
    return acc if nund == 0 else -1.0


@njit(cache=True, fastmath=_FM)
def _row_same(net, st, P, li, u, c, ei, ecut):
    """As :func:`_row` for the neurons after u in its own layer (not moved
    by the pin), times exp(ei)."""
    k = net.sloff[li] + c
    hc = net.sl[k] * net.bp[net.bpoff[li] + c] + net.ic[k]
    gx, gy = st.J[li, 0, u], st.J[li, 1, u]
    acc, nund = 0.0, 0
    for v in range(u + 1, net.rows[li]):
        e = ei + P.EJ[li, c, v]
        det, cp = gx * st.J[li, 1, v] - gy * st.J[li, 0, v], P.cap[li, v]
        live = (e <= ecut) & (det != 0.0) & (cp != -1.0)
        good = live & (abs(hc - st.H[li, v]) < cp)
        acc += abs(det) * P.E[li, c, v] if good else 0.0
        nund += live & ~good
    return acc if nund == 0 else -1.0


@njit(cache=True, fastmath=_FM)
def _row_exact(net, x, noise, s0, s1, s2, reach, new, dh, dn, full, P, li, u, a, lj, c, ei, inv, ecut):
    """As :func:`_row`, one pair at a time, the pairs the screen leaves
    undecided decided by a forward pass with both pinned and a path search
    (s1: the full state with i pinned, made when first needed; full[0]
    says it is there)."""
    t = net.bp[net.bpoff[lj] + c]
    k = net.sloff[lj] + c
    hc = net.sl[k] * t + net.ic[k]
    b0 = net.boff[lj]
    acc = 0.0
    for v in range(u + 1 if lj == li else 0, net.rows[lj]):
        d = t - P.Zh[lj, v] - net.b[b0 + v]
        e = ei + d * d * inv
        det, cp = P.Dh[lj, v], P.cap[lj, v]
        if e > ecut or det == 0.0 or cp == -1.0:
            continue
        if not abs(hc - P.Hh[lj, v]) < cp and not (
            cp >= 0.0 and abs(hc - P.Hh[lj, v]) < _tight(net, P, lj, v)
        ):
            if not full[0]:
                _propagate(net, noise, s0, s1, li, u, a, dh, dn)
                full[0] = True
            _copy_state(s1, s2, li)
            _pin(net, s2, lj, v, c)
            _forward(net, x, noise, s2, lj + 1, False)
            if not (_reaches(net, s2, lj, v, reach, new) and _reaches(net, s2, li, u, reach, new)):
                continue
        acc += abs(det) * _expneg(e)
    return acc


@njit(cache=True, fastmath=_FM)
def _pair_lite(net, noise, st, P, inv, ecut):  # noqa: C901 (one function: calls with these tuples cost more than the work)
    """The Theorem-6 sum over the pins of simple networks (dense, one
    breakpoint, the last layer linear), without the factor 1 / (2 pi sigma^2).

    Per pin ``i``, only what its terms need: the pinned pre-bias values
    ``Zh`` and determinants ``Dh`` of the later hidden layers (flips pushed
    on where a later hidden layer sees them), the pinned outputs of the
    partners computed in the rows, and as the screen's margin of each later
    hidden layer that of its sampled widest open neuron (``P.KS``). A pin
    whose screen leaves a pair undecided, or which closes that neuron, is
    marked in ``P.FB`` and left to the general path. Returns -1 (nothing
    done) when a hidden layer has no open neuron in the sampled pass."""
    L = net.rows.shape[0]
    for m in range(1, L - 1):
        t0, best, q = net.bp[net.bpoff[m]], -1.0, -1
        for r in range(net.rows[m]):
            if st.SL[m, r] != 0.0 and abs(st.V[m, r] - t0) > best:
                best, q = abs(st.V[m, r] - t0), r
        if q < 0:
            return -1.0
        P.KS[m] = q
    acc = 0.0
    for li in range(L - 1):
        hci = net.sl[net.sloff[li]] * net.bp[net.bpoff[li]] + net.ic[net.sloff[li]]
        for u in range(net.rows[li]):
            P.FB[li, u] = False
            ei = P.EJ[li, 0, u]
            if ei > ecut:
                continue
            # the pin pushed through the later hidden layers
            delta = hci - st.H[li, u]
            gx, gy = st.J[li, 0, u], st.J[li, 1, u]
            nf, ok = 0, True
            for m in range(li + 1, L - 1):
                rm = net.rows[m]
                o = net.toff[li, m] + u * rm
                for r in range(rm):
                    P.Zh[m, r] = st.Z[m, r] + delta * P.TT[o + r]
                    P.Dh[m, r] = gx * st.J[m, 1, r] - gy * st.J[m, 0, r]
                for f in range(nf):
                    o, fe, fd = net.toff[P.fl[f], m] + P.fk[f] * rm, P.fe[f], P.fd[f]
                    for r in range(rm):
                        P.Zh[m, r] += fe * P.TT[o + r]
                        P.Dh[m, r] += fd * P.TT[o + r]
                b0, n0, s0 = net.boff[m], net.noff[m], net.sloff[m]
                t0, sa, sb, ia, ib = (
                    net.bp[net.bpoff[m]],
                    net.sl[s0],
                    net.sl[s0 + 1],
                    net.ic[s0],
                    net.ic[s0 + 1],
                )
                q = P.KS[m]
                vq = P.Zh[m, q] + net.b[b0 + q] + noise[n0 + q]
                if (sb if vq >= t0 else sa) == 0.0:
                    ok = False
                    break
                P.marg[m] = abs(vq - t0)
                if m == L - 2:
                    continue
                nflip = 0
                for r in range(rm):
                    nflip += (P.Zh[m, r] + net.b[b0 + r] + noise[n0 + r] >= t0) != P.PC[m, r]
                if nflip:
                    for r in range(rm):
                        v = P.Zh[m, r] + net.b[b0 + r] + noise[n0 + r]
                        up = v >= t0
                        if up != P.PC[m, r]:
                            sn = sb if up else sa
                            P.fl[nf], P.fk[nf] = m, r
                            P.fe[nf] = (
                                sn * v
                                + (ib if up else ia)
                                - st.H[m, r]
                                - st.SL[m, r] * (P.Zh[m, r] - st.Z[m, r])
                            )
                            P.fd[nf] = (sn - st.SL[m, r]) * P.Dh[m, r]
                            nf += 1
            if not ok:
                P.FB[li, u] = True
                continue
            # the screen: j's pin moves no unit of a later layer m by marg[m] or more
            for lj in range(li, L - 1):
                for v in range(net.rows[lj]):
                    P.cap[lj, v] = np.inf
                for m in range(lj + 1, L - 1):
                    base, mg = net.cmoff[lj, m], P.marg[m]
                    for v in range(net.rows[lj]):
                        P.cap[lj, v] = min(P.cap[lj, v], mg * net.cminv[base + v])
            # partners in i's own layer (not moved by the pin): the sampled values
            part, nund = 0.0, 0
            for v in range(u + 1, net.rows[li]):
                e = ei + P.EJ[li, 0, v]
                det = gx * st.J[li, 1, v] - gy * st.J[li, 0, v]
                live = (e <= ecut) & (det != 0.0)
                good = live & (abs(hci - st.H[li, v]) < P.cap[li, v])
                part += abs(det) * P.E[li, 0, v] if good else 0.0
                nund += live & ~good
            # partners in later layers
            lim = ecut - ei
            for lj in range(li + 1, L - 1):
                b0, n0, s0 = net.boff[lj], net.noff[lj], net.sloff[lj]
                t, sa, sb, ia, ib = (
                    net.bp[net.bpoff[lj]],
                    net.sl[s0],
                    net.sl[s0 + 1],
                    net.ic[s0],
                    net.ic[s0 + 1],
                )
                hc = sa * t + ia
                for v in range(net.rows[lj]):
                    zb = P.Zh[lj, v] + net.b[b0 + v]
                    d = t - zb
                    e = d * d * inv
                    w = zb + noise[n0 + v]
                    up = w >= t
                    hh = (sb if up else sa) * w + (ib if up else ia)
                    det = P.Dh[lj, v]
                    live = (e <= lim) & (det != 0.0)
                    good = live & (abs(hc - hh) < P.cap[lj, v])
                    part += abs(det) * _expneg_tab(min(e, ecut)) if good else 0.0
                    nund += live & ~good
            if nund:
                P.FB[li, u] = True
            else:
                acc += part * P.E[li, 0, u]
    return acc


@njit(cache=True)
def _pair_density_fast(net, x, noise, sigma, ecut, s0, s1, s2, reach, new, dh, dn, P):
    """As :func:`_pair_density`: pins pushed through by :func:`_pair_lite`
    or :func:`_pin_pass`, goodness screened and otherwise recomputed."""
    L = net.rows.shape[0]
    inv = 0.5 / (sigma * sigma)
    full = np.zeros(1, np.bool_)
    _forward_fast(net, x, noise, s0, P, inv, ecut)
    _transfer(net, s0, P)
    acc = _pair_lite(net, noise, s0, P, inv, ecut) if net.simple else -1.0
    lite = acc >= 0.0
    acc = max(acc, 0.0)
    for li in range(L):
        if not net.has_act[li]:
            continue
        Ki = net.bpoff[li + 1] - net.bpoff[li]
        for u in range(net.rows[li]):
            for a in range(Ki):
                d = net.bp[net.bpoff[li] + a] - s0.Z[li, u] - net.b[net.boff[li] + u]
                ei = d * d * inv
                if ei > ecut:
                    continue
                if lite and not P.FB[li, u]:
                    continue
                _pin_pass(net, noise, s0, P, li, u, a)
                _screen(net, li, P)
                full[0] = False
                for lj in range(li, L):
                    if not net.has_act[lj]:
                        continue
                    for c in range(net.bpoff[lj + 1] - net.bpoff[lj]):
                        if lj == li:
                            part = _row_same(net, s0, P, li, u, c, ei, ecut) * _expneg(ei)
                        else:
                            part = _row(net, P, li, u, lj, c, ei, inv, ecut)
                        if part < 0.0:
                            if lj == li:
                                for r in range(net.rows[li]):
                                    P.Zh[li, r], P.Hh[li, r] = s0.Z[li, r], s0.H[li, r]
                                    P.Dh[li, r] = (
                                        s0.J[li, 0, u] * s0.J[li, 1, r] - s0.J[li, 1, u] * s0.J[li, 0, r]
                                    )
                            part = _row_exact(net, x, noise, s0, s1, s2, reach, new, dh, dn, full, P, li, u, a, lj, c,
                                              ei, inv, ecut)  # fmt: skip
                        acc += part
    return acc / (2.0 * math.pi * sigma * sigma)


@njit(cache=True, nogil=True)
def theorem6_kernel(net, X, noise, sigma, ecut, fast, out, c0, c1):  # pragma: no cover
    """out[s * P + p]: Theorem 6 (k = 2) at point p for noise row s, for the
    pairs of chunks ``c0 .. c1 - 1`` (``CHUNK`` pairs each)."""
    P = X.shape[0]
    N = out.shape[0]
    for c in range(c0, c1):
        _theorem6_chunk(net, X, noise, sigma, ecut, fast, out, c * CHUNK, min(N, (c + 1) * CHUNK), P)


@njit(cache=True)
def _theorem6_chunk(net, X, noise, sigma, ecut, fast, out, n0, n1, P_):
    L = net.rows.shape[0]
    maxw = net.rows.max()
    s0 = _State(np.zeros((L, maxw)), np.zeros((L, maxw)), np.zeros((L, maxw)), np.zeros((L, maxw)),
                np.zeros((L, maxw), np.bool_), np.zeros((L, 2, maxw)))  # fmt: skip
    s1 = _State(np.zeros((L, maxw)), np.zeros((L, maxw)), np.zeros((L, maxw)), np.zeros((L, maxw)),
                np.zeros((L, maxw), np.bool_), np.zeros((L, 2, maxw)))  # fmt: skip
    s2 = _State(np.zeros((L, maxw)), np.zeros((L, maxw)), np.zeros((L, maxw)), np.zeros((L, maxw)),
                np.zeros((L, maxw), np.bool_), np.zeros((L, 2, maxw)))  # fmt: skip
    reach, new = np.zeros(maxw, np.bool_), np.zeros(maxw, np.bool_)
    dh, dn = np.zeros(maxw), np.zeros(maxw, np.int64)
    nt = net.rows.sum()
    maxk = (net.bpoff[1:] - net.bpoff[:-1]).max()
    P = _Pins(np.zeros(net.tsize), np.zeros((L, maxw)), np.zeros(1, np.bool_), np.zeros((L, maxw), np.int64),
              np.zeros((L, maxk, maxw)), np.zeros((L, maxk, maxw)),
              np.zeros((L, maxw)), np.zeros((L, maxw)), np.zeros((L, maxw)), np.zeros((L, maxw), np.int64),
              np.zeros((L, maxw)), np.zeros(nt, np.int64), np.zeros(nt, np.int64), np.zeros(nt), np.zeros(nt),
              np.zeros(L), np.zeros((L, maxw)), np.zeros(L, np.int64),
              np.zeros((L, maxw), np.bool_))  # fmt: skip
    for n in range(n0, n1):
        s = n // P_
        x = X[n - s * P_]
        if fast:
            out[n] = _pair_density_fast(net, x, noise[s], sigma, ecut, s0, s1, s2, reach, new, dh, dn, P)
        else:
            out[n] = _pair_density(net, x, noise[s], sigma, ecut, s0, s1, s2, reach, new)
