"""Whether the gradient jumps across each edge of a region map, decided exactly.

Two neighbouring activation regions ``a`` and ``b`` are separated by a
piece of a neuron's breakpoint hyperplane. When their patterns differ in that
neuron ``j`` (of layer ``l``) only, the earlier layers and the later layers
are on the same pieces on both sides, so the Jacobians differ by a rank-one
matrix::

    J_a - J_b = (s_a - s_b) beta_j g_j^T

with ``s`` the slopes of the neuron's two pieces (they differ: the pieces
are neighbours), ``g_j`` the gradient of its preactivation (nonzero: its
sign changes across the edge) and ``beta_j = S_{L-1} W_{L-1} ... S_{l+1}
W_{l+1} e_j`` the derivative of the output with respect to the neuron's
output (``S_m``: the slopes of layer ``m``'s pieces on the regions). The
gradient jumps iff ``beta_j != 0``: a short product along the edge's own
neuron, not the two regions' full Jacobians.

Each ``beta_j`` is computed in float64 with a rigorous bound on its rounding
error. Stage 1 bounds it with the magnitudes of the weights alone
(``gamma_k |W_{L-1}| smax ... |W_{l+1}|``); stage 2, for the edges stage 1
leaves, with the magnitudes along the regions' own pieces, and decides the
zeros that the product's structure forces (no path of nonzero weights
through later neurons on pieces of nonzero slope); the rest is computed
exactly in integers (:func:`regiongeom._exact.sensitivity`). Edges whose
patterns differ in several neurons (hyperplanes that coincide) compare the
two full Jacobians the same way (float with a bound, then exactly).

The error bound: a product of length ``k`` computed in any order is off by
at most ``gamma_k`` times the same product of the magnitudes, ``gamma_k = k
u / (1 - k u)`` with ``u = 2**-53`` (Higham, *Accuracy and Stability of
Numerical Algorithms*, sec. 3.5), plus what underflow can lose: at most
``2**-1075`` per rounded product, carried forward by at most the largest
row sum of the later layers' ``|S W|``. Both are taken with a factor 2 of
room; a bound that is not finite just sends the decision on.
"""

from __future__ import annotations

import math

import numpy as np

from . import _locus_kernels as K
from ._jit import compile_notice

U = 2.0**-53
U32 = 2.0**-24


class _Bounds:
    """The network's rounding-error constants and per-neuron magnitude bounds."""

    def __init__(self, net):
        self.net = net
        smax = [1.0 if a is None else float(np.abs(a.slopes).max()) for a in net.activations]
        self.k = k = sum(w.shape[1] + 1 for w in net.weights) + 1
        self.gamma = 2.0 * k * U / (1.0 - k * U)
        # stage 1 runs in float32: the weights and slopes rounded to it too
        k32 = k + 2 * net.n_layers + 2
        self.gamma32 = 2.0 * k32 * U32 / (1.0 - k32 * U32)
        with np.errstate(over="ignore"):
            grow = 1.0
            for w, s in zip(net.weights, smax):
                rowsum = float(np.abs(w).sum(axis=1).max()) if w.size else 0.0
                grow *= max(1.0, s * rowsum)
            self.tiny = 2.0 * k * 2.0**-1074 * grow  # what underflow can lose
            self.tiny32 = 2.0 * k32 * 2.0**-149 * grow
            # stage 1 runs only when every weight and slope is 0 or in float32's normal range
            # with room to spare (else each edge goes to the float64 stage)
            vals = [np.abs(w).ravel() for w in net.weights]
            vals = np.concatenate(vals + [np.abs(a.slopes) for a in net.activations if a is not None])
            vals = vals[vals != 0]
            self.use32 = bool(np.all((vals > 2.0**-100) & (vals < 2.0**100)))
            self.weights32 = [w.astype(np.float32) for w in net.weights]
            self.slopes32 = [None if a is None else a.slopes.astype(np.float32) for a in net.activations]
        # (n_out, n_in) magnitudes bounding every region's Jacobian
        with np.errstate(over="ignore", under="ignore"):
            jup = np.eye(net.n_in)
            for w, s in zip(net.weights, smax):
                jup = s * (np.abs(w) @ jup)
        self.jacobian_upper = jup
        # per layer l: (n_out, n_l) magnitude bound of beta and its structure
        L = net.n_layers
        self.upper, self.reach = [None] * L, [None] * L
        up = np.eye(net.n_out)
        st = np.eye(net.n_out, dtype=bool)
        self.upper[L - 1], self.reach[L - 1] = up, st
        with np.errstate(over="ignore", under="ignore"):
            for m in range(L - 1, 0, -1):
                w = net.weights[m]
                up = (up * smax[m]) @ np.abs(w)
                st = ((st & (smax[m] != 0)).astype(np.float64) @ (w != 0).astype(np.float64)) > 0
                self.upper[m - 1], self.reach[m - 1] = up, st


def edge_jumps(rm) -> np.ndarray:
    """(E,) bool: whether the Jacobian jumps across each edge of ``rm``
    (False on the domain's boundary)."""
    cache = rm._derived
    if "jumps" not in cache:
        keys = ("weights", "regions", "exact", "jacobians", "jacobians_exact")
        cache["jump_stages"] = stages = dict.fromkeys(keys, 0)
        if hasattr(rm.net, "stages"):  # a GraphNetwork: through its operators
            from ._graph_maps import edge_jumps as graph_edge_jumps

            cache["jumps"] = graph_edge_jumps(rm)
        else:
            cache["jumps"] = _edge_jumps(rm, stages)
    return cache["jumps"]


def _edge_jumps(rm, stages) -> np.ndarray:
    """The decision; ``stages`` counts the interior edges decided by the
    weight-magnitude filter, by the regions' own magnitudes and structure, by
    exact arithmetic, and by comparing whole Jacobians (coincident
    hyperplanes; ``jacobians_exact`` of them exactly)."""
    net = rm.net
    out = np.zeros(len(rm.edge_regions), bool)
    inner = np.nonzero(rm.edge_regions[:, 1] >= 0)[0]
    if inner.size == 0 or net.n_neurons == 0:
        return out
    a = np.ascontiguousarray(rm.edge_regions[inner, 0])
    b = np.ascontiguousarray(rm.edge_regions[inner, 1])
    P, words = _pattern_words(rm)
    compile_notice("the locus kernels", K.edge_differences, K.scale_by_pieces, seconds=1)
    count, neuron = K.edge_differences(P, words, a, b)
    bounds = _Bounds(net)
    one = np.nonzero(count == 1)[0]
    if one.size:
        out[inner[one]] = _single_neuron_jumps(net, P, a[one], b[one], neuron[one], bounds, stages)
    many = np.nonzero(count == 2)[0]
    if many.size:
        out[inner[many]] = _jacobian_jumps(net, P, a[many], b[many], bounds, stages)
        stages["jacobians"] += many.size
    return out


def _pattern_words(rm):
    """The patterns as contiguous int8 and as zero-padded uint64 words."""
    P = np.ascontiguousarray(rm.patterns, dtype=np.int8)
    pad = np.zeros((P.shape[0], -(-P.shape[1] // 8) * 8), np.int8)
    pad[:, : P.shape[1]] = P
    return P, pad.view(np.uint64)


def _single_neuron_jumps(net, P, a, b, neuron, bounds, stages) -> np.ndarray:
    """Edges whose patterns differ in ``neuron`` only: ``beta_j != 0``."""
    out = np.zeros(a.size, bool)
    layer = net.neuron_layer[neuron]
    offs = net.neuron_offsets
    for ly in np.unique(layer):
        sel = np.nonzero(layer == ly)[0]
        act = net.activations[ly]
        j = neuron[sel] - offs[ly]
        slopes_differ = act.slopes[P[a[sel], neuron[sel]]] != act.slopes[P[b[sel], neuron[sel]]]
        if ly == net.n_layers - 1:  # an output neuron: beta = e_j
            out[sel] = slopes_differ
            stages["weights"] += sel.size
            continue
        if bounds.use32:
            up = bounds.upper[ly][:, j].T  # (S, n_out)
            with np.errstate(over="ignore", invalid="ignore"):
                beta = _forward_from(net, P, a[sel], ly, j, bounds=bounds)
                # a product that overflows float32 decides nothing (inf - x stays inf)
                sure = np.any(np.abs(beta) > bounds.gamma32 * up + bounds.tiny32, axis=1)
                sure &= np.all(np.isfinite(beta), axis=1)
        else:
            sure = np.zeros(sel.size, bool)
        zero = ~np.any(bounds.reach[ly][:, j], axis=0)
        left = np.nonzero(~sure & ~zero)[0]
        stages["weights"] += sel.size - left.size
        if left.size:
            sure[left], zero[left] = _stage2(net, P, a[sel[left]], ly, j[left], bounds)
        n_left, left = left.size, np.nonzero(~sure & ~zero)[0]
        stages["regions"] += n_left - left.size
        stages["exact"] += left.size
        if left.size:
            from . import _exact as X

            ex, memo = X.ExactNet(net), {}
            for i in left:
                r, jj = a[sel[i]], int(neuron[sel[i]])
                key = (jj, P[r, offs[ly + 1] :].tobytes())
                if key not in memo:
                    memo[key] = not X.is_zero(X.sensitivity(ex, P[r], jj))
                sure[i] = memo[key]
        out[sel] = slopes_differ & sure
    return out


def _forward_from(net, P, regions, ly, j, *, magnitude=False, bounds=None):
    """(S, n_out) float ``beta`` of neuron ``j[s]`` of layer ``ly`` on the
    later pieces of region ``regions[s]``; with ``magnitude`` also the same
    product of magnitudes and its structure (nonzero weights, nonzero slopes).
    With ``bounds`` (and no ``magnitude``): in float32, with its weights."""
    offs = net.neuron_offsets
    weights = net.weights if bounds is None else bounds.weights32
    slopes = [None if a is None else a.slopes for a in net.activations] if bounds is None else bounds.slopes32
    v = np.ascontiguousarray(weights[ly + 1].T[j])
    if magnitude:
        mag, st = np.abs(v), (v != 0).astype(np.float64)
    for m in range(ly + 1, net.n_layers):
        if m > ly + 1:
            wt = weights[m].T
            v = v @ wt
            if magnitude:
                mag = mag @ np.abs(wt)
                st = ((st @ (wt != 0).astype(np.float64)) > 0).astype(np.float64)
        sl = slopes[m]
        if sl is not None:
            K.scale_by_pieces(v, P, regions, offs[m], sl)
            if magnitude:
                K.scale_by_pieces(mag, P, regions, offs[m], np.abs(sl))
                K.scale_by_pieces(st, P, regions, offs[m], (sl != 0).astype(np.float64))
    return (v, mag, st > 0) if magnitude else v


def _stage2(net, P, regions, ly, j, bounds):
    """(sure nonzero, sure zero) from the regions' own magnitudes and structure."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        v, mag, st = _forward_from(net, P, regions, ly, j, magnitude=True)
        sure = np.any(np.abs(v) > bounds.gamma * mag + bounds.tiny, axis=1)
    return sure, ~np.any(st, axis=1)


def _jacobian_jumps(net, P, a, b, bounds, stages) -> np.ndarray:
    """Edges whose patterns differ in several neurons: ``J_a != J_b``."""
    ra, rb = _jacobians(net, P[a], bounds), _jacobians(net, P[b], bounds)
    with np.errstate(over="ignore", invalid="ignore"):
        diff = np.abs(ra[0] - rb[0]).reshape(a.size, -1)
        room = (bounds.gamma * (ra[1] + rb[1]) + 2.0 * bounds.tiny).reshape(a.size, -1)
        sure = np.any(diff > room, axis=1)
    left = np.nonzero(~sure)[0]
    stages["jacobians_exact"] += left.size
    if left.size:
        from . import _exact as X

        ex = X.ExactNet(net)
        for i in left:
            sure[i] = not X.is_zero(X.difference(X.jacobian(ex, P[a[i]]), X.jacobian(ex, P[b[i]])))
    return sure


def _jacobians(net, patterns, bounds):
    """(S, n_out, n_in) float Jacobians on ``patterns`` and the same products of magnitudes."""
    S, k = patterns.shape[0], net.n_in
    offs = net.neuron_offsets
    J = np.repeat(np.eye(k)[:, None, :], S, axis=1)  # (n, S, k)
    M = J.copy()
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        for i, (w, a) in enumerate(zip(net.weights, net.activations)):
            J = np.einsum("ij,jsk->isk", w, J)
            M = np.einsum("ij,jsk->isk", np.abs(w), M)
            if a is not None:
                s = a.slopes[patterns[:, offs[i] : offs[i + 1]].T][:, :, None]
                J, M = J * s, M * np.abs(s)
    if not math.isfinite(bounds.gamma):
        M[:] = np.inf
    return J.transpose(1, 0, 2), M.transpose(1, 0, 2)


# ---------------------------------------------------------------- bends ----
def collinear(rm, edges1, edges2) -> np.ndarray:
    """(K,) bool: whether edges ``edges1[k]`` and ``edges2[k]`` of ``rm``,
    which share a vertex, lie on one line, decided exactly.

    Edge ``e`` lies on ``z_j(x) = t`` with ``z_j`` its neuron's preactivation
    on either neighbouring region, so two edges meeting at a point are
    collinear iff the gradients of those maps are parallel. The same neuron
    on regions whose patterns agree on every earlier layer has the very same
    map (collinear, no arithmetic); otherwise the cross product of the two
    gradients is computed in float64 with a rounding-error bound, and
    exactly when it is within the bound.
    """
    net = rm.net
    out = np.zeros(len(edges1), bool)
    if out.size == 0:
        return out
    r1, r2 = rm.edge_regions[edges1, 0], rm.edge_regions[edges2, 0]
    n1, n2 = rm.edge_neurons[edges1], rm.edge_neurons[edges2]
    P, words = _pattern_words(rm)
    first = K.first_difference(P, words, np.ascontiguousarray(r1), np.ascontiguousarray(r2))
    lay1 = net.neuron_layer[n1]
    same = (n1 == n2) & (first >= net.neuron_offsets[lay1])
    out[same] = True
    rest = np.flatnonzero(~same)
    if rest.size == 0:
        return out
    bounds = _Bounds(net)
    g1, e1 = _gradients(net, P, r1[rest], n1[rest], bounds)
    g2, e2 = _gradients(net, P, r2[rest], n2[rest], bounds)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        cross = g1[:, 0] * g2[:, 1] - g1[:, 1] * g2[:, 0]
        room = (
            e1[:, 0] * (np.abs(g2[:, 1]) + e2[:, 1]) + np.abs(g1[:, 0]) * e2[:, 1]
            + e1[:, 1] * (np.abs(g2[:, 0]) + e2[:, 0]) + np.abs(g1[:, 1]) * e2[:, 0]
            + 4 * U * (np.abs(g1[:, 0] * g2[:, 1]) + np.abs(g1[:, 1] * g2[:, 0])) + 2.0**-1072
        ) * (1 + 8 * U)  # fmt: skip
        apart = np.abs(cross) > room
    left = rest[~apart]
    if left.size:
        from . import _exact as X

        ex = X.ExactNet(net)
        for k in left:
            l1 = ex.line(P[r1[k]], int(n1[k]), int(rm.edge_breakpoints[edges1[k]]))
            l2 = ex.line(P[r2[k]], int(n2[k]), int(rm.edge_breakpoints[edges2[k]]))
            out[k] = X.meet(l1, l2)[2] == 0
    return out


def _gradients(net, P, regions, neurons, bounds):
    """(K, n_in) float gradients of each neuron's preactivation on its region,
    and (K, n_in) bounds on their rounding errors (from the weights'
    magnitudes, or the regions' own where those are too loose)."""
    layer = net.neuron_layer[neurons]
    offs = net.neuron_offsets
    g = np.zeros((neurons.size, net.n_in))
    err = np.zeros((neurons.size, net.n_in))
    for ly in np.unique(layer):
        sel = np.flatnonzero(layer == ly)
        v = np.ascontiguousarray(net.weights[ly][neurons[sel] - offs[ly]])
        mag = np.abs(v)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            for m in range(ly - 1, -1, -1):
                act = net.activations[m]
                if act is not None:
                    K.scale_by_pieces(v, P, regions[sel], offs[m], act.slopes)
                    K.scale_by_pieces(mag, P, regions[sel], offs[m], np.abs(act.slopes))
                v, mag = v @ net.weights[m], mag @ np.abs(net.weights[m])
        g[sel] = v
        err[sel] = bounds.gamma * mag + bounds.tiny
    return g, err
