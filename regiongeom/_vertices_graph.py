"""Theorem 6 (k = 2) of Hanin & Rolnick on 2-input graph networks.

The same estimator as the dense one (:mod:`regiongeom.vertices`, whose
docstring derives it), written against the operators of a
:class:`~regiongeom.graph.GraphNetwork` (planes through CNNs and residual
networks, ``net.restrict(rg.Plane.through(x0, x1, x2))``). Per (noise
sample, point) pair, the sum over unordered pairs of distinct neurons ``i``
(stage ``s``), ``j`` (stage ``m >= s``; ``j > i`` within a stage) and
breakpoints ``t_a``, ``t_c`` of

    |det[grad u_i; grad uhat_j]| phi_sigma(t_a - u_i) phi_sigma(t_c - uhat_j) 1{both good},

``u`` the preactivations with the neuron's own noise-free bias (the dense
``z + b``), ``uhat_j`` and its gradient computed with ``i`` *pinned* at
``t_a`` (output ``act(t_a)``, slope 0 in the gradient, every later unit on
the piece it has then). Terms whose Gaussian exponent
``((t_a - u_i)^2 + (t_c - uhat_j)^2) / (2 sigma^2)`` exceeds ``ecut`` (50)
are left out, as in the dense estimator.

Steps, vectorised over the candidate pins of a block of pairs (the pieces of
:mod:`regiongeom._theorem2_graph` reused: its plan, sampled pass with input
gradients, and backward reachability through the primitives' 0/1 pattern):

1. the sampled pass (``_Pass``) with the two input gradients of every ``u``;
2. for every ``(i, t_a)`` within the cut: ``i`` pinned, its change of
   output and of gradient pushed through the later stages with
   ``op.linear`` (the piece rule of ``_theorem2_graph._pinned_good``);
3. for every partner ``(j, t_c)`` within the cut and with a nonzero
   determinant: the *exact* both-good indicator, with no screen: ``j``
   pinned on top of ``i``'s pass, the stages after ``j`` recomputed, then
   one backward reachability from the output: ``j`` must reach it through
   nonzero coefficients and open units, and so must ``i`` with ``j`` counted
   open (:func:`regiongeom._theorem2_graph._reach`).

Cost: per (sample, point) pair, one forward pass and two gradient pushes;
per candidate ``(i, t_a)`` (``i`` within ``sqrt(2 ecut) sigma`` of a
breakpoint), a value push and a two-direction gradient push through the
stages after ``i``; per term, a value push through the stages after ``j``
and one backward pass of 0/1 patterns through every stage after ``i``. The
last is the largest part on CNNs; no screen decides goodness from bounds
yet (the dense path has one), so the cost grows with the number of terms.
"""

from __future__ import annotations

import math

import numpy as np

from ._theorem2_graph import _BUDGET, SLACK, _moved, _Pass, _plan, _reach

__all__ = ["theorem6_graph_samples"]


def theorem6_graph_samples(net, x, noise, sigma, ecut, *, screen=True):
    """(S, P) Theorem 6 (k = 2) per noise row (``noise`` ``(S, n_neurons)``).
    ``screen=False``: every term's indicator by the exact recomputation."""
    S, P = noise.shape[0], x.shape[0]
    out = np.zeros(S * P)
    if net.n_neurons < 2:
        return out.reshape(S, P)
    plan = _plan(net)
    per = max(1, _BUDGET // (16 * (net.n_neurons + net.n_in)))  # pairs per block
    for n0 in range(0, S * P, per):
        idx = np.arange(n0, min(S * P, n0 + per))
        fw = _Pass(plan, np.ascontiguousarray(x[idx % P]), noise[idx // P], keep_gradients=True)
        out[idx] = _block(plan, fw, noise[idx // P], float(sigma), float(ecut), screen)
    return out.reshape(S, P)


def _block(plan, fw, noise, sigma, ecut, screen):
    """(N,) the sum for the N pairs of the sampled pass ``fw``."""
    N = fw.u[0].shape[0]
    inv = 0.5 / (sigma * sigma)
    c2 = 1.0 / (2.0 * math.pi * sigma * sigma)
    acc = np.zeros(N)
    pins = []
    for s, st in enumerate(plan.stages):
        d = st.breakpoints[None, None, :] - fw.u[s][:, :, None]
        ei = d * d * inv
        # a pin whose own gradient is zero has a zero determinant with every partner
        n, i, a = np.nonzero((ei <= ecut) & (fw.g[s] != 0).any(axis=1)[:, :, None])
        pins.append((n, i, a, ei[n, i, a]))
    decided = _screen(plan, fw, noise, sigma, ecut, pins) if screen and plan.L > 1 else None
    for s, (n, i, a, ei) in enumerate(pins):
        if n.size == 0:
            continue
        later = sum(plan.sizes[m + 1] for m in range(s, plan.L))
        step = max(1, _BUDGET // (12 * later))
        for b0 in range(0, n.size, step):
            b = slice(b0, b0 + step)
            _pins(plan, fw, s, n[b], i[b], a[b], ei[b], inv, c2, ecut, acc, decided)
    return acc


def _screen(plan, fw, noise, sigma, ecut, pins):
    """Per pair, rigorous bounds ``T[n, k]`` of how far any unit of stage
    ``k`` moves for any term of the pair: ``i``'s pin moves it by at most
    ``B[i, k] |act(t_a) - h_i|``; ``j``'s pin, on top, by at most ``B[j, k]
    |act(t_c) - hhat_j|``, and a kept term has ``|t_c - uhat_j| <= sqrt(2
    ecut) sigma``, so ``|act(t_c) - hhat_j| <= smax (sqrt(2 ecut) sigma +
    |noise_j|)``. A unit open with a margin above ``T`` stays open; a unit
    on a zero slope with such a margin stays closed. Returns the
    reachability through the sure-open units (both reach: good) and through
    every unit that may be open (``j`` cannot reach: not good), per stage
    ``(N, n_s)``; the rest of the terms go to the exact recomputation."""
    N, L = fw.u[0].shape[0], plan.L
    bmax = plan.bmax
    T = np.zeros((N, L))
    for s, (n, i, a, _) in enumerate(pins):  # the first pin
        if n.size:
            delta = np.abs(plan.act_bp[s][i, a] - fw.h[s][n, i])
            for k in range(s + 1, L):
                np.maximum.at(T[:, k], n, _moved(plan, bmax[s][i, k], delta))
    reach_d = math.sqrt(2.0 * ecut) * sigma
    Tj = np.zeros((N, L))
    for m, st in enumerate(plan.stages):  # the second pin: any neuron of a stage before k
        delta = plan.smax[m] * (reach_d + np.abs(noise[:, st.offset : st.offset + st.n])) * (1.0 + SLACK)
        for k in range(m + 1, L):
            Tj[:, k] = np.maximum(Tj[:, k], _moved(plan, bmax[m][None, :, k], delta).max(axis=1))
    T = (T + Tj) * (1.0 + SLACK)
    sure = [(fw.slope[k] != 0) & (fw.margin[k] > T[:, k, None]) for k in range(L)]
    maybe = [(fw.slope[k] != 0) | ~(fw.margin[k] > T[:, k, None]) for k in range(L)]
    return _reach(plan, sure, N), _reach(plan, maybe, N)


def _pins(plan, fw, s, n, i, a, ei, inv, c2, ecut, acc, decided):
    """Add to ``acc`` the good terms of the pins ``(i, t_a)`` of stage ``s``
    in pairs ``n`` (``(B,)`` each; ``ei`` their Gaussian exponents)."""
    hat = _pin_pass(plan, fw, s, n, i, a)
    gi = fw.g[s][n, :, i]  # (B, 2) grad u_i
    for m in range(s, plan.L):
        st = plan.stages[m]
        u, g = (hat[m][0], hat[m][5]) if m in hat else (fw.u[m][n], fw.g[m][n])
        det = gi[:, 0, None] * g[:, 1, :] - gi[:, 1, None] * g[:, 0, :]
        dj = st.breakpoints[None, None, :] - u[:, :, None]
        e = ei[:, None, None] + dj * dj * inv
        keep = (e <= ecut) & (det != 0.0)[:, :, None]
        if m == s:  # unordered pairs within a stage: j > i
            keep &= (np.arange(st.n)[None, :] > i[:, None])[:, :, None]
        r, j, c = np.nonzero(keep)
        if r.size == 0:
            continue
        w = np.abs(det[r, j]) * c2 * np.exp(-e[r, j, c])
        if decided is not None:
            sure, could = decided
            nr = n[r]
            good = sure[s][nr, i[r]] & sure[m][nr, j]
            np.add.at(acc, nr[good], w[good])
            open_ = ~good & could[m][nr, j]  # the rest: j cannot reach the output, not good
            r, j, c, w = r[open_], j[open_], c[open_], w[open_]
        later = sum(plan.sizes[k + 1] for k in range(s, plan.L))
        step = max(1, _BUDGET // (8 * later))
        for t0 in range(0, r.size, step):
            t = slice(t0, t0 + step)
            good = _both_good(plan, fw, hat, s, m, n, i, r[t], j[t], c[t])
            np.add.at(acc, n[r[t]], np.where(good, w[t], 0.0))


def _pin_pass(plan, fw, s, n, i, a):
    """The pass with neuron ``i[b]`` of stage ``s`` pinned at breakpoint
    ``a[b]`` in pair ``n[b]``: for every later stage ``m`` it moves,
    ``hat[m] = (u, v, piece, slope, h, g)`` ``(B, n_m)`` (``g`` ``(B, 2,
    n_m)``: the input gradients of ``uhat``, with ``i``'s slope 0)."""
    B = n.size
    rows_b = np.arange(B)
    st = plan.stages[s]
    dh0 = np.zeros((B, st.n))
    dh0[rows_b, i] = plan.act_bp[s][i, a] - fw.h[s][n, i]
    dg0 = np.zeros((B, 2, st.n))
    dg0[rows_b, :, i] = -fw.slope[s][n, i][:, None] * fw.g[s][n, :, i]
    dh, dg, hat = {s + 1: dh0}, {s + 1: dg0}, {}
    for m in range(s + 1, plan.L):
        stm = plan.stages[m]
        op = stm.operator
        if not any(t in dh for t in op.sources):
            continue
        sizes = list(zip(op.sources, op.source_sizes))
        dv = op.linear([dh[t] if t in dh else np.zeros((B, k)) for t, k in sizes])
        dgv = op.linear([dg[t].reshape(2 * B, k) if t in dg else np.zeros((2 * B, k)) for t, k in sizes])
        v = fw.v[m][n] + dv
        km = stm.piece(v)
        cols = np.arange(stm.n)[None, :]
        sl, ic = stm.slopes[cols, km], stm.intercepts[cols, km]
        h0, sl0, g0 = fw.h[m][n], fw.slope[m][n], fw.g[m][n]
        dh[m + 1] = np.where(km == fw.piece[m][n], sl * dv, sl * v + ic - h0)
        g = g0 + dgv.reshape(B, 2, stm.n)
        dg[m + 1] = sl[:, None, :] * g - sl0[:, None, :] * g0
        hat[m] = (fw.u[m][n] + dv, v, km, sl, h0 + dh[m + 1], g)
        for t in [t for t in dh if t <= m and t not in stm.carry]:
            del dh[t], dg[t]
    return hat


def _both_good(plan, fw, hat, s, m, n, i, r, j, c):
    """(T,) bool: with ``i[r]`` pinned (the pass ``hat``) and ``j`` of stage
    ``m`` pinned at breakpoint ``c``, ``j`` reaches the output through nonzero
    coefficients and open units, and so does ``i`` with ``j`` counted open."""
    T = r.size
    rows_t = np.arange(T)
    nr = n[r]

    def base(k, field):  # the i-pinned value of stage k for the terms' rows
        idx = {"v": 1, "piece": 2, "slope": 3, "h": 4}[field]
        if k in hat:
            return hat[k][idx][r]
        return {"v": fw.v, "piece": fw.piece, "slope": fw.slope, "h": fw.h}[field][k][nr]

    opened = {k: base(k, "slope") != 0 for k in range(s + 1, m + 1)}
    if m > s:
        opened[m][rows_t, j] = True
    stm = plan.stages[m]
    dh0 = np.zeros((T, stm.n))
    dh0[rows_t, j] = plan.act_bp[m][j, c] - base(m, "h")[rows_t, j]
    dh = {m + 1: dh0}
    for k in range(m + 1, plan.L):
        st = plan.stages[k]
        op = st.operator
        if not any(t in dh for t in op.sources):
            opened[k] = base(k, "slope") != 0
            continue
        sizes = zip(op.sources, op.source_sizes)
        dv = op.linear([dh[t] if t in dh else np.zeros((T, size)) for t, size in sizes])
        v = base(k, "v") + dv
        km = st.piece(v)
        cols = np.arange(st.n)[None, :]
        sl, ic = st.slopes[cols, km], st.intercepts[cols, km]
        opened[k] = sl != 0
        dh[k + 1] = np.where(km == base(k, "piece"), sl * dv, sl * v + ic - base(k, "h"))
        for t in [t for t in dh if t <= k and t not in st.carry]:
            del dh[t]
    reach = _reach(plan, opened, T, first=s)
    return reach[s][rows_t, i[r]] & reach[m][rows_t, j]
