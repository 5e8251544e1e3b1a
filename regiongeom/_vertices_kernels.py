"""numba kernels of :mod:`regiongeom.vertices`: Theorem 6 with k = 2.

One (noise sample, point) pair at a time: a sampled forward pass, then for
every neuron ``i`` near a breakpoint a forward pass with ``i`` pinned there
(the pre-bias value ``z_j`` of every later neuron and its input gradient with
``i``'s output frozen), then for every partner ``j`` near a breakpoint the
pass with both pinned, which decides whether both are good. The network is a
:class:`_Net` of flat arrays (``W^T`` of every layer row-major, so that column
``c`` of ``W_l`` is contiguous at ``woff[l] + c * rows[l]``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

CHUNK = 64  # (sample, point) pairs per chunk
_SLACK = 1e-9  # relative safety margin of the screen's bounds against rounding


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
    cflat: np.ndarray  # bounds C[l, m] = |W_m| S ... S |W_{l+1}| (rows[m], rows[l]), flattened
    coff: np.ndarray  # (L, L) start of C[l, m] in cflat
    cmax: np.ndarray  # column maxima of every C[l, m], flattened
    cmoff: np.ndarray  # (L, L) start of those in cmax
    dense: bool  # every weight after the first layer nonzero


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
                            _copy_state(s1, s2, lj)
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


@njit(cache=True)
def _widest(net, st, l0, wid, marg, anyopen):
    """Per activated layer m >= l0 of st: the open neuron farthest from the
    ends of its piece (wid), that distance (marg, -1: none open), and
    whether the layer has an open neuron."""
    L = net.rows.shape[0]
    for m in range(l0, L):
        wid[m], marg[m], anyopen[m] = -1, -1.0, True
        if not net.has_act[m]:
            continue
        k0, K = net.bpoff[m], net.bpoff[m + 1] - net.bpoff[m]
        anyopen[m] = False
        for r in range(net.rows[m]):
            if not st.OP[m, r]:
                continue
            anyopen[m] = True
            v = st.V[m, r]
            k = 0
            while k < K and v >= net.bp[k0 + k]:
                k += 1
            g = min(v - net.bp[k0 + k - 1] if k > 0 else np.inf, net.bp[k0 + k] - v if k < K else np.inf)
            if g > marg[m]:
                wid[m], marg[m] = r, g


@njit(cache=True)
def _caps(net, li, wid, marg, anyopen, cap):
    """The screen of both-good for dense weights, from the state with i
    pinned, as one number per later neuron j (layer lj, unit v): dense
    weights make both good iff every activated layer after l_i keeps an open
    neuron (j counts as open in its own layer). Layers up to l_j do not see
    j's pin: ``cap[lj, v] = -1`` when one between l_i and l_j has no open
    neuron (not good). A layer m after l_j keeps its widest open neuron k
    when j's output moves by less than ``marg[m] / C[l_j, m][k, v]`` (C
    bounds how far it moves unit k): ``cap[lj, v]`` is the smallest of
    these (-2: a later layer has no open neuron to screen with)."""
    L = net.rows.shape[0]
    closed = False  # a layer strictly between l_i and the current one has no open neuron
    for lj in range(li, L):
        if not net.has_act[lj]:
            continue
        for v in range(net.rows[lj]):
            if closed:
                cap[lj, v] = -1.0
                continue
            c = np.inf
            for m in range(lj + 1, L):
                if not net.has_act[m]:
                    continue
                k = wid[m]
                if k < 0:
                    c = -2.0
                    break
                w = net.cflat[net.coff[lj, m] + k * net.rows[lj] + v]
                if w > 0.0:
                    c = min(c, marg[m] / (w * (1.0 + _SLACK)))
            cap[lj, v] = c
        if lj > li and not anyopen[lj]:
            closed = True


@njit(cache=True)
def _pair_density_fast(net, x, noise, sigma, ecut, s0, s1, s2, reach, new, dh, dn, wid, marg, anyopen, cap):
    """As :func:`_pair_density`, with i's pin pushed through by
    :func:`_propagate` and the pair's goodness screened for dense nets."""
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
                first = _propagate(net, noise, s0, s1, li, u, a, dh, dn)
                if first < L:
                    _grad_from(net, s1, first + 1)
                if net.dense:
                    _widest(net, s1, li + 1, wid, marg, anyopen)
                    _caps(net, li, wid, marg, anyopen, cap)
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
                            r = 2
                            if net.dense:
                                cp = cap[lj, v]
                                if cp == -1.0:
                                    continue
                                t = net.bp[net.bpoff[lj] + c]
                                k = net.sloff[lj] + c
                                if abs(net.sl[k] * t + net.ic[k] - s1.H[lj, v]) < cp:
                                    r = 1
                            if r == 2:
                                _copy_state(s1, s2, lj)
                                _pin(net, s2, lj, v, c)
                                _forward(net, x, noise, s2, lj + 1, False)
                                good = _reaches(net, s2, lj, v, reach, new) and _reaches(
                                    net, s2, li, u, reach, new
                                )
                                r = 1 if good else 0
                            if r == 1:
                                acc += abs(det) * c2 * math.exp(-e)
    return acc


@njit(cache=True, nogil=True)
def theorem6_kernel(net, X, noise, sigma, ecut, fast, out, c0, c1):  # pragma: no cover
    """out[s * P + p]: Theorem 6 (k = 2) at point p for noise row s, for the
    pairs of chunks ``c0 .. c1 - 1`` (``CHUNK`` pairs each)."""
    P = X.shape[0]
    N = out.shape[0]
    for c in range(c0, c1):
        _theorem6_chunk(net, X, noise, sigma, ecut, fast, out, c * CHUNK, min(N, (c + 1) * CHUNK), P)


@njit(cache=True)
def _theorem6_chunk(net, X, noise, sigma, ecut, fast, out, n0, n1, P):
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
    wid, marg, anyopen = np.zeros(L, np.int64), np.zeros(L), np.zeros(L, np.bool_)
    cap = np.zeros((L, maxw))
    for n in range(n0, n1):
        s = n // P
        x = X[n - s * P]
        if fast:
            out[n] = _pair_density_fast(net, x, noise[s], sigma, ecut, s0, s1, s2, reach, new, dh, dn, wid, marg,
                                        anyopen, cap)  # fmt: skip
        else:
            out[n] = _pair_density(net, x, noise[s], sigma, ecut, s0, s1, s2, reach, new)
