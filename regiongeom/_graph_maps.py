"""Affine maps and locus decisions of a graph network's regions.

For a :class:`~regiongeom.graph.GraphNetwork` the per-region maps are
propagated through its operators, a block of regions at a time (convolutions
stay convolutions): with the pieces of a region fixed, every stage is affine,
so ``k + 1`` homogeneous columns (the input directions and the constant) go
through ``op.linear`` / ``op`` and each neuron's slope and intercept.

The locus: across an edge where only neuron ``j`` changes piece, the two
Jacobians differ by ``beta_j (s_a - s_b) g_j^T``, with ``g_j`` neuron
``j``'s gradient (nonzero: its hyperplane cuts the face) and ``beta_j`` the
output's derivative with respect to ``j``'s output on the region's pattern.
A max unit ``j`` whose winner changes from entry ``p`` to ``q`` gives
``beta_j (g_p - g_q)^T`` in the same way, with ``g_p - g_q`` nonzero (the
tie ``z_p - z_q`` changes sign across the edge): a jump iff ``beta_j != 0``.
``beta_j`` is a unit impulse at ``j`` pushed through the later stages with
the pattern's slopes, computed in float64 together with its magnitude (the
same push through ``|A|`` and ``|slopes|``): every term of ``beta_j`` is a
product along a path, so a magnitude of exactly 0 means ``beta_j == 0``
exactly, and ``|beta_j| > gamma * magnitude`` means it is certainly
nonzero (``gamma`` bounds the relative rounding of the whole chain). The
rest, and edges where several neurons change piece at once, are decided by
comparing the two regions' exact maps (:class:`regiongeom._exact_graph.ExactGraph`).
"""

from __future__ import annotations

import numpy as np

_U = 2.0**-53
_BLOCK = 1 << 21  # float64 entries held per propagated block


def _slopes(st, pieces):
    """(B, n) slopes and intercepts of stage ``st`` on the pieces (B, n)."""
    idx = np.arange(st.n)[None, :]
    return st.slopes[idx, pieces], st.intercepts[idx, pieces]


def _selected(st, z, pieces, per=1):
    """Max stage ``st``: the winners' entries of ``z`` ``(B * per, n_pre)``
    on the pieces ``(B, n)`` (each row of pieces serves ``per`` rows of ``z``)."""
    sel = st.windows[np.arange(st.n)[None, :], pieces.astype(np.int64)]
    if (sel < 0).any():
        raise ValueError(f"a pattern selects an absent (padding) entry of max stage {st.name!r}")
    return np.take_along_axis(z, np.repeat(sel, per, axis=0), axis=1)


def affine_maps(net, patterns):
    """``(jacobians (R, n_out, k), offsets (R, n_out))`` of a graph network on
    the regions with these patterns (float64, rounded)."""
    R, k = len(patterns), net.n_in
    sizes = [net.n_in] + [st.n for st in net.stages]
    per = (k + 1) * max(sum(sizes), 1)
    block = max(1, _BLOCK // per)
    jac, off = np.empty((R, net.n_out, k)), np.empty((R, net.n_out))
    for r0 in range(0, R, block):
        P = patterns[r0 : r0 + block]
        B = len(P)
        # rows: region-major, k directions then the constant
        x = np.zeros((B * (k + 1), k))
        for i in range(k):
            x[i :: k + 1, i] = 1.0
        tensors = {0: x}
        lin = np.tile(np.r_[np.ones(k, bool), False], B)
        for s, st in enumerate(net.stages):
            op = st.operator
            src = [tensors[t] for t in op.sources]
            z = op.linear(src)
            z[~lin] = op(src)[~lin] if src else z[~lin]  # the constant row is affine
            if st.is_max:
                tensors[s + 1] = _selected(st, z, P[:, st.offset : st.offset + st.n], k + 1)
                keep = set(st.carry) | {s + 1}
                tensors = {t: v for t, v in tensors.items() if t in keep}
                continue
            sl, ic = _slopes(st, P[:, st.offset : st.offset + st.n])
            sl, ic = np.repeat(sl, k + 1, axis=0), np.repeat(ic, k + 1, axis=0)
            h = z * sl
            h[~lin] += ic[~lin]
            tensors[s + 1] = h
            keep = set(st.carry) | {s + 1}
            tensors = {t: v for t, v in tensors.items() if t in keep}
        src = [tensors[t] for t in net.output.sources]
        y = net.output.linear(src)
        y[~lin] = net.output(src)[~lin]
        y = y.reshape(B, k + 1, net.n_out)
        jac[r0 : r0 + B] = y[:, :k].transpose(0, 2, 1)
        off[r0 : r0 + B] = y[:, k]
    return jac, off


def _n_terms(op):
    from ._engine.graph_plan import _n_terms as n

    return n(op)


def _impulses(net, s, units, P):
    """``(beta, magnitude)`` (B, n_out): unit impulses at stage ``s``'s
    neurons ``units`` (B,) pushed through the later stages on patterns
    ``P`` (B, n_neurons), in float and through ``|A|``; and ``gamma``."""
    B = len(units)
    st = net.stages[s]
    imp = np.zeros((B, st.n))
    imp[np.arange(B), units] = 1.0
    val, mag = {s + 1: imp}, {s + 1: imp.copy()}
    n_terms = 0
    for t in range(s + 1, len(net.stages)):
        st2 = net.stages[t]
        op = st2.operator
        src = [val[q] if q in val else np.zeros((B, _size(net, q))) for q in op.sources]
        srcm = [mag[q] if q in mag else np.zeros((B, _size(net, q))) for q in op.sources]
        pieces = P[:, st2.offset : st2.offset + st2.n]
        if st2.is_max:
            val[t + 1] = _selected(st2, op.linear(src), pieces)
            mag[t + 1] = _selected(st2, op.absolute(srcm), pieces)
        else:
            sl, _ = _slopes(st2, pieces)
            val[t + 1] = op.linear(src) * sl
            mag[t + 1] = op.absolute(srcm) * np.abs(sl)
        n_terms += _n_terms(op) + 2
    op = net.output
    src = [val[q] if q in val else np.zeros((B, _size(net, q))) for q in op.sources]
    srcm = [mag[q] if q in mag else np.zeros((B, _size(net, q))) for q in op.sources]
    n_terms += _n_terms(op) + 2
    gamma = 2.0 * n_terms * _U / (1.0 - 2.0 * n_terms * _U)
    return op.linear(src), op.absolute(srcm), gamma


def _size(net, t):
    return net.n_in if t == 0 else net.stages[t - 1].n


def edge_jumps(rm) -> np.ndarray:
    """(E,) bool: whether the Jacobian jumps across each edge (graph networks)."""
    from ._exact_graph import exact_for

    net, P = rm.net, rm.patterns
    out = np.zeros(len(rm.edge_regions), bool)
    inner = np.nonzero(rm.edge_regions[:, 1] >= 0)[0]
    if inner.size == 0:
        return out
    a, b = rm.edge_regions[inner, 0], rm.edge_regions[inner, 1]
    count, first_diff = _differences(P, a, b)
    two = np.nonzero(count == 2)[0]
    exact_rows = list(np.nonzero((count != 1) & (count != 2))[0])
    if two.size:  # a first-stage neuron and the max unit over it: the unit's impulse
        d = _pool_pairs(net, P, a[two], b[two], first_diff[two])
        out[inner[two[d == 1]]] = True
        exact_rows += list(two[d == 0])
    one = np.nonzero(count == 1)[0]
    if one.size:
        j = first_diff[one]
        offs = np.asarray(net.neuron_offsets)
        stage = np.searchsorted(offs, j, side="right") - 1
        for s in np.unique(stage):
            sel = one[stage == s]
            js = j[stage == s]
            st = net.stages[s]
            u = js - st.offset
            pa, pb = P[a[sel], js], P[b[sel], js]
            if st.is_max:  # J_a - J_b = beta_u (g_pa - g_pb)^T, and g_pa != g_pb on a tie edge
                slopes_differ = pa != pb
            else:
                slopes_differ = st.slopes[u, pa] != st.slopes[u, pb]
            d = _impulse_decisions(net, s, u, P[a[sel]])
            out[inner[sel]] = slopes_differ & (d == 1)
            exact_rows += list(one[np.nonzero(slopes_differ & (d == 0))[0]])
    rows = np.asarray(exact_rows, np.int64)
    if rows.size:  # several neurons at once, or a push too close to 0: the two maps first
        jump = _jacobians_differ(net, P, a[rows], b[rows])
        out[inner[rows[jump]]] = True
        rows = rows[~jump]
    if rows.size:
        ex = exact_for(net)
        k = net.n_in
        maps = {}  # region -> its exact map (a region borders several such edges)
        for e in rows.tolist():
            for r in (a[e], b[e]):
                if r not in maps:
                    maps[r] = ex.output(P[r])
            ma, mb = maps[a[e]], maps[b[e]]
            exp = min(ma.e, mb.e)
            out[inner[e]] = bool(np.any(ma.aligned(exp)[:, :k] != mb.aligned(exp)[:, :k]))
    return out


def _impulse_decisions(net, s, u, Pa) -> np.ndarray:
    """(B,) int8: whether the output's derivative with respect to stage
    ``s``'s neuron ``u`` is certainly nonzero (1), exactly 0 (-1) or
    undecided (0) on the patterns ``Pa`` (B, n_neurons): one impulse push
    (:func:`_impulses`) per (neuron, pattern of the later stages)."""
    offs = np.asarray(net.neuron_offsets)
    later = Pa[:, offs[s + 1] :] if s + 1 < len(offs) else np.zeros((len(Pa), 0), np.int8)
    uniq, first, inv = _unique_rows(u, later)
    per = max(1, _BLOCK // max(1, sum(_size(net, t) for t in range(len(net.stages) + 1))))
    decided = np.zeros(len(uniq), np.int8)
    for c0 in range(0, len(uniq), per):
        idx = first[c0 : c0 + per]
        beta, mag, gamma = _impulses(net, s, u[idx], Pa[idx])
        nonzero = np.any(np.abs(beta) > gamma * mag * (1.0 + 1e-6), axis=1)
        structural_zero = ~np.any(mag != 0.0, axis=1)
        decided[c0 : c0 + per] = np.where(nonzero, 1, np.where(structural_zero, -1, 0))
    return decided[inv]


def _pool_pairs(net, P, a, b, j):
    """(E,) int8 for edges across which exactly two neurons change piece: 1
    jump, -1 none, 0 undecided here. Decided: a neuron ``j`` of a first stage
    that reads only the coordinates (ReLU-like: slopes 0 and 1) and the unit
    ``u`` of a max stage right after it whose window is the only one holding
    ``j`` (a max pool after conv -> ReLU, where ``j`` turning on makes it its
    window's winner). Nothing else reads the first stage, and every other
    neuron keeps its piece, so the Jacobians differ by ``beta_u (g_a -
    g_b)^T``: ``beta_u`` the unit's impulse through the later stages (as for
    single-neuron edges) and ``g`` the gradient of the unit's winner in each
    region, ``slope * M[w]`` for the first stage's row ``M[w]``, exact."""
    d = np.zeros(len(a), np.int8)
    if len(net.stages) < 2:
        return d
    st0, st1 = net.stages[0], net.stages[1]
    op0, op1 = st0.operator, st1.operator
    readers = [st.operator.sources for st in net.stages[2:]] + [net.output.sources]
    if (
        st0.is_max or not st1.is_max or tuple(op0.sources) != (0,) or not hasattr(op0, "M")
        or getattr(op0, "rest", None) is not None or tuple(op1.sources) != (1,) or any(1 in r for r in readers)
        or not np.all((st0.slopes == 0.0) | (st0.slopes == 1.0))
    ):  # fmt: skip
        return d
    from ._engine._graph_max import _is_copy

    if not _is_copy(op1):
        return d
    src = op1.linear(np.arange(st0.n, dtype=np.float64)[None, :])[0]  # the stage-0 neuron each entry copies
    if not (np.all(src == np.round(src)) and np.all((src >= 0) & (src < st0.n))):
        return d
    src = src.astype(np.int64)
    win = np.where(st1.windows >= 0, src[np.maximum(st1.windows, 0)], -1)  # (n1, k) stage-0 neurons
    holders = np.zeros(st0.n, np.int64)  # how many units' windows hold each stage-0 neuron
    for p in range(win.shape[1]):
        first = (win[:, p] >= 0) & ~(win[:, :p] == win[:, p : p + 1]).any(axis=1)
        np.add.at(holders, win[first, p], 1)
    j2 = np.empty(len(a), np.int64)  # the second (last) neuron that differs, a block of edges at a time
    step = max(1, (1 << 24) // max(P.shape[1], 1))
    for e0 in range(0, len(a), step):
        diff = P[a[e0 : e0 + step], ::-1] != P[b[e0 : e0 + step], ::-1]
        j2[e0 : e0 + step] = P.shape[1] - 1 - diff.argmax(axis=1)
    u = j2 - st1.offset
    ok = (j < st0.n) & (u >= 0) & (u < st1.n)
    ok[ok] &= holders[j[ok]] == 1
    ok[ok] &= (win[u[ok]] == j[ok, None]).any(axis=1)
    sel = np.nonzero(ok)[0]
    if sel.size == 0:
        return d
    us, js = u[sel], j2[sel]
    M = np.asarray(op0.M, np.float64)
    wa = win[us, P[a[sel], js].astype(np.int64)]
    wb = win[us, P[b[sel], js].astype(np.int64)]
    ga = st0.slopes[wa, P[a[sel], st0.offset + wa].astype(np.int64)][:, None] * M[wa]
    gb = st0.slopes[wb, P[b[sel], st0.offset + wb].astype(np.int64)][:, None] * M[wb]
    same = np.all(ga == gb, axis=1)  # exact: slopes are 0 or 1
    d[sel[same]] = -1
    sel, us = sel[~same], us[~same]
    if sel.size:
        d[sel] = _impulse_decisions(net, 1, us, P[a[sel]])
    return d


def _differences(P, a, b):
    """``(count, first)`` (E,): how many neurons differ between the patterns
    of regions ``a`` and ``b``, and the first that does (a block of edges at
    a time: the full ``(E, n_neurons)`` comparison can be gigabytes)."""
    count, first = np.empty(len(a), np.int64), np.empty(len(a), np.int64)
    step = max(1, (1 << 24) // max(P.shape[1], 1))
    for e0 in range(0, len(a), step):
        diff = P[a[e0 : e0 + step]] != P[b[e0 : e0 + step]]
        count[e0 : e0 + step] = diff.sum(axis=1)
        first[e0 : e0 + step] = diff.argmax(axis=1)
    return count, first


def _unique_rows(u, later):
    """``np.unique`` of the rows ``(u, later)`` (``u`` (B,) int, ``later`` (B, L)
    int8) with ``return_index`` and ``return_inverse``, comparing each row as
    one byte string (far faster than ``axis=0`` on wide rows)."""
    keys = np.concatenate([u.astype("<i8")[:, None].view(np.int8), later.astype(np.int8)], axis=1)
    keys = np.ascontiguousarray(keys).view(np.dtype((np.void, keys.shape[1]))).reshape(-1)
    uniq, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    return uniq, first, inv.reshape(-1)


def _jacobians_differ(net, P, ra, rb):
    """(E,) bool: the Jacobians of the regions ``ra`` and ``rb`` certainly
    differ: some float entries differ by more than their rounding bounds
    (:func:`jacobian_magnitudes`). False decides nothing."""
    regs, inv = np.unique(np.concatenate([ra, rb]), return_inverse=True)
    jac, _ = affine_maps(net, P[regs])
    mag, gamma = jacobian_magnitudes(net, P[regs])
    ia, ib = inv[: len(ra)], inv[len(ra) :]
    with np.errstate(over="ignore", invalid="ignore"):
        room = gamma * (mag[ia] + mag[ib]) * (1.0 + 1e-6) + 2.0**-1000
        return np.any(np.abs(jac[ia] - jac[ib]) > room, axis=(1, 2))


def jacobian_magnitudes(net, patterns):
    """``(magnitude (R, n_out, k), gamma)``: the Jacobians pushed through
    ``|A|`` and ``|slopes|``, so that each float Jacobian entry is within
    ``gamma * magnitude`` of the exact one (plus underflow)."""
    R, k = len(patterns), net.n_in
    sizes = [net.n_in] + [st.n for st in net.stages]
    block = max(1, _BLOCK // (k * max(sum(sizes), 1)))
    mag = np.empty((R, net.n_out, k))
    n_terms = sum(_n_terms(st.operator) + 2 for st in net.stages) + _n_terms(net.output)
    for r0 in range(0, R, block):
        P = patterns[r0 : r0 + block]
        B = len(P)
        x = np.zeros((B * k, k))
        for i in range(k):
            x[i::k, i] = 1.0
        tensors = {0: x}
        for s, st in enumerate(net.stages):
            op = st.operator
            a = op.absolute([tensors[t] for t in op.sources])
            if st.is_max:
                tensors[s + 1] = _selected(st, a, P[:, st.offset : st.offset + st.n], k)
            else:
                sl, _ = _slopes(st, P[:, st.offset : st.offset + st.n])
                tensors[s + 1] = a * np.repeat(np.abs(sl), k, axis=0)
            keep = set(st.carry) | {s + 1}
            tensors = {t: v for t, v in tensors.items() if t in keep}
        y = net.output.absolute([tensors[t] for t in net.output.sources])
        mag[r0 : r0 + B] = y.reshape(B, k, net.n_out).transpose(0, 2, 1)
    return mag, 2.0 * n_terms * _U / (1.0 - 2.0 * n_terms * _U)
