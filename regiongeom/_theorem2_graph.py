"""Theorem 2 (eq. 6) of Patel & Montúfar on graph networks.

The dense estimator (:mod:`regiongeom._theorem2`) walks weight matrices; a
:class:`~regiongeom.graph.GraphNetwork` only offers its operators (see the
module docstring of :mod:`regiongeom.graph`). Everything here goes through
them, vectorised over (sample, point) pairs:

values
    one forward pass per pair: ``u_i = op(h)_i``, the preactivation with the
    neuron's own noise-free bias and the other neurons' noisy outputs (the
    dense ``z_i + b_i``), ``v_i = u_i + noise_i`` its noisy value, the piece
    and slope of every unit;
gradients
    forward-mode pushes of the input directions through ``op.linear`` (two
    for a plane; blocks of unit vectors for many inputs), keeping only the
    squared norm of every neuron's gradient;
terms
    one per (neuron, breakpoint ``t_k``), weighing ``||grad u_i||
    phi_sigma(t_k - u_i)`` (``rho=False``: the norm alone), counted when the
    neuron, pinned at ``t_k``, is *good*.

The good indicator is the dense one on the graph: neuron ``i`` is put on its
breakpoint (its output ``act(t_k)``), the later stages are recomputed with
that (a later unit whose new value is on its sampled piece changes by
``slope * dv``, else by its new value minus the sampled one, both as the
dense code does), and ``i`` is good when a path reaches the network's output
through nonzero coefficients and open units (on a piece of nonzero slope) of
every later stage. "Nonzero coefficients" are those of the primitives the
operators are made of (Linear and convolution weights, folded BatchNorm
scales, constant factors, additions of branches, pooling): a path through an
exact zero weight is cut, a weight of 1e-300 keeps it, exactly as the dense
path does with its weight matrices (two consecutive linear maps with no unit
between them are two primitives, as they are two layers there). Reachability
is computed backwards through the transposed 0/1 pattern of the primitives
(:func:`regiongeom._graph_support.support_t`), re-binarised after every
operator, so it is exact.

Recomputing the later stages for every term costs a forward pass per term,
so a screen decides almost every term from the sampled pass with rigorous
bounds: moving neuron ``j`` of stage ``s`` by ``delta`` moves every unit of
a later stage ``m`` by at most ``B[j, m] delta`` (``B`` propagated with the
operators' absolute values and the units' largest slopes, once per network).
With ``T_m`` the largest such move among a pair's terms, a later unit with
margin above ``T_m`` keeps its piece; a neuron with a path through open
units of such margins is good, one with no path even through every unit
that is open or might change is not good. The rest are recomputed exactly
(``_fallback``), in batches. As in the dense estimator, terms whose weights
all together stay below half an ulp of the point's density may be left
undecided.
"""

from __future__ import annotations

import math
import weakref

import numpy as np

from ._graph_support import support_t

__all__ = ["theorem2_graph_samples", "check_graph", "good_table"]

SLACK = 1e-9  # relative room of the screen's bounds for their rounding (as the dense screen)
HALF_ULP = 2.0**-53
_BUDGET = 1 << 23  # float64 entries of the per-pair arrays held at once (64 MiB each kind)
_LEVELS = tuple(4.0**-i for i in range(8))  # screen thresholds, as fractions of a pair's largest move
_PLANS = weakref.WeakKeyDictionary()


def check_graph(net, what="lc_density"):
    """A one-line TypeError if an operator holds a primitive the good
    indicator does not know (checked before any heavy work)."""
    from . import _graph_ops as g

    known = (g.Source, g.Linear, g.Conv, g.Pad, g.ChannelAffine, g.Rearrange, g.Add, g.Scale, g.Shift, g.Neg,
             g.MatmulConst)  # fmt: skip
    for op in [st.operator for st in net.stages] + [net.output]:
        base = getattr(op, "rest", op) if hasattr(op, "M") else op
        for node in getattr(base, "order", ()) if base is not None else ():
            if not isinstance(node, known):
                raise TypeError(
                    f"{what} does not support the graph primitive {type(node).__name__} "
                    f"({getattr(node, 'kind', '?')}) yet"
                )


# ----------------------------------------------------------------------------
# the network, prepared once
# ----------------------------------------------------------------------------
class _Plan:
    """Per-network constants: values at the breakpoints, largest slopes,
    the output's reach and (lazily) the screen's bounds."""

    def __init__(self, net):
        self.stages = net.stages
        self.L = len(net.stages)
        self.sizes = {0: net.n_in} | {s + 1: st.n for s, st in enumerate(net.stages)}
        # act(t_k) of every neuron, from the piece left of t_k (the activation is continuous)
        self.act_bp = [st.slopes[:, :-1] * st.breakpoints + st.intercepts[:, :-1] for st in net.stages]
        self.smax = [float(np.abs(st.slopes).max()) for st in net.stages]
        self.n_terms = int(sum(st.n * st.breakpoints.size for st in net.stages))
        self.nz = {}  # 0/1 coefficients of the primitives, for support_t
        out = support_t(net.output, np.ones((1, net.n_out)), self.nz)
        self.out_reach = {t: r > 0 for t, r in out.items()}
        self._bmax = None
        self.bound_abs = _bound_underflow(net, self.smax)

    @property
    def bmax(self):
        """Per stage ``s``, ``(n_s, L)``: ``B[j, m]``, how far any unit of stage
        ``m`` moves per unit move of neuron ``j`` of stage ``s`` (0 for ``m <= s``)."""
        if self._bmax is None:
            self._bmax = [_stage_bounds(self, s) for s in range(self.L)]
        return self._bmax


def _plan(net) -> _Plan:
    plan = _PLANS.get(net)
    if plan is None:
        plan = _PLANS[net] = _Plan(net)
    return plan


def _stage_bounds(plan, s):
    st = plan.stages[s]
    out = np.zeros((st.n, plan.L))
    later = sum(plan.sizes[t + 1] for t in range(s, plan.L))
    step = max(1, _BUDGET // 8 // max(1, later))
    for j0 in range(0, st.n, step):
        j1 = min(st.n, j0 + step)
        E = np.zeros((j1 - j0, st.n))
        E[np.arange(j1 - j0), np.arange(j0, j1)] = 1.0
        dh = {s + 1: E}
        for m in range(s + 1, plan.L):
            op = plan.stages[m].operator
            if not any(t in dh for t in op.sources):
                continue
            rows = [dh.get(t, np.zeros((j1 - j0, n))) for t, n in zip(op.sources, op.source_sizes)]
            dv = op.absolute(rows)
            out[j0:j1, m] = dv.max(axis=1) if dv.shape[1] else 0.0
            dh[m + 1] = plan.smax[m] * dv
    return out


def _bound_underflow(net, smax) -> float:
    """What underflow can take from a bound or add to a propagated change (as
    :func:`regiongeom._theorem2.bound_underflow`): tiny unless coefficients are huge."""
    k, grow = 1, 1.0
    with np.errstate(over="ignore"):
        for st, sm in zip(net.stages, smax):
            op = st.operator
            k += op.n_in * op.n_out if op.n_in * op.n_out < 1 << 62 else 1 << 62
            rows = float(op.absolute(np.ones((1, op.n_in)))[0].max()) if op.n_out else 0.0
            grow *= max(1.0, sm * rows)
        return float(min(k, 1e300) * 5e-324 * grow)


def _moved(plan, c, delta):
    """A rigorous bound of a later unit's move (see ``_theorem2_kernels._moved``)."""
    return (c * (1.0 + SLACK) + plan.bound_abs) * delta * (1.0 + SLACK) + 5e-324


# ----------------------------------------------------------------------------
# reachability
# ----------------------------------------------------------------------------
def _reach(plan, open_masks, B, first=0):
    """Backward reachability: ``acc[s + 1] > 0`` for every stage ``s >=
    first``: neuron ``j`` of stage ``s`` reaches the output through nonzero
    coefficients and units ``open_masks[m]`` (``(B, n_m)`` bool) of later
    stages. Returns ``{s: (B, n_s) bool}``."""
    acc = {t: np.zeros((B, plan.sizes[t])) for t in range(first + 1, plan.L + 1)}
    for t, r in plan.out_reach.items():
        if t in acc:
            acc[t] += r
    reach = {}
    for s in range(plan.L - 1, first - 1, -1):
        reach[s] = acc[s + 1] > 0
        if s == first:
            break
        passing = reach[s] & open_masks[s]
        if not passing.any():
            continue
        for t, c in support_t(plan.stages[s].operator, passing.astype(np.float64), plan.nz).items():
            if t in acc:
                acc[t] += c > 0
    return reach


# ----------------------------------------------------------------------------
# the sampled pass
# ----------------------------------------------------------------------------
class _Pass:
    """Per stage, ``(N, n_s)`` arrays of the sampled pass: ``u`` (own noise-free
    bias), ``v`` (noisy), ``piece``, ``slope``, ``h``, ``margin``, ``gn``."""

    def __init__(self, plan, X, noise, keep_gradients=False):
        self.u, self.v, self.piece, self.slope, self.h, self.margin = [], [], [], [], [], []
        # keep_gradients: also ``g``, per stage the (N, n_in, n_s) input gradients of ``u``
        tensors = {0: X}
        for s, st in enumerate(plan.stages):
            op = st.operator
            u = op([tensors[t] for t in op.sources])
            v = u + noise[:, st.offset : st.offset + st.n]
            piece = st.piece(v)
            cols = np.arange(st.n)[None, :]
            bps = st.breakpoints
            K = bps.size
            below = np.where(piece > 0, v - bps[np.maximum(piece.astype(np.int64) - 1, 0)], np.inf)
            above = np.where(piece < K, bps[np.minimum(piece.astype(np.int64), K - 1)] - v, np.inf)
            h = st.apply(v)
            tensors[s + 1] = h
            self.u.append(u)
            self.v.append(v)
            self.piece.append(piece)
            self.slope.append(st.slopes[cols, piece])
            self.h.append(h)
            self.margin.append(np.minimum(below, above))
        self.g = [] if keep_gradients else None
        self.gn = _gradient_norms(plan, self.slope, X.shape[0], X.shape[1], self.g)


def _gradient_norms(plan, slopes, N, d, keep=None):
    """Per stage ``(N, n_s)``: ``||grad_x u_i||`` by forward-mode pushes of
    the input directions, in blocks of directions (one block, every
    stage's ``(N, d, n_s)`` gradients appended to ``keep``, if given)."""
    widest = max([d] + [st.n for st in plan.stages])
    dc = d if keep is not None else max(1, min(d, _BUDGET // max(1, 4 * N * widest)))
    sq = [np.zeros((N, st.n)) for st in plan.stages]
    for d0 in range(0, d, dc):
        d1 = min(d, d0 + dc)
        k = d1 - d0
        E = np.zeros((k, d))
        E[np.arange(k), np.arange(d0, d1)] = 1.0
        dirs = {}  # tensor -> (N, k, size) post-activation directions
        for s, st in enumerate(plan.stages):
            op = st.operator
            g = None
            if 0 in op.sources:  # the same for every pair
                rows = [E if t == 0 else np.zeros((k, n)) for t, n in zip(op.sources, op.source_sizes)]
                g = op.linear(rows)[None]
            rest = [t for t in op.sources if t > 0]
            if rest:
                rows = [np.zeros((N * k, n)) if t == 0 else dirs[t].reshape(N * k, n)
                        for t, n in zip(op.sources, op.source_sizes)]  # fmt: skip
                gr = op.linear(rows).reshape(N, k, st.n)
                g = gr if g is None else gr + g
            if g.shape[0] == 1 and N > 1:
                g = np.broadcast_to(g, (N, k, st.n))
            sq[s] += np.einsum("nkj,nkj->nj", g, g)
            if keep is not None:
                keep.append(np.ascontiguousarray(g))
            dirs[s + 1] = slopes[s][:, None, :] * g
            for t in [t for t in dirs if t <= s and t not in st.carry]:
                del dirs[t]
    return [np.sqrt(q) for q in sq]


# ----------------------------------------------------------------------------
# the estimator
# ----------------------------------------------------------------------------
def theorem2_graph_samples(net, x, noise, opts):
    """(S, P) eq. (6) per noise sample (rows of ``noise``, ``(S, n_neurons)``);
    with ``opts["by_layer"]``, (S, P, L), each stage's share."""
    S, P = noise.shape[0], x.shape[0]
    L = len(net.stages)
    by_layer = bool(opts.get("by_layer", False))
    out = np.zeros((S * P, L))
    if net.n_neurons == 0:
        return out.sum(axis=1).reshape(S, P) if not by_layer else out.reshape(S, P, L)
    plan = _plan(net)
    per = max(1, _BUDGET // (10 * net.n_neurons + net.n_in))
    for n0 in range(0, S * P, per):
        n1 = min(S * P, n0 + per)
        idx = np.arange(n0, n1)
        X = np.ascontiguousarray(x[idx % P])
        out[n0:n1] = _block(plan, X, noise[idx // P], opts)
    if by_layer:
        return out.reshape(S, P, L)
    return out.sum(axis=1).reshape(S, P)


def good_table(net, x, noise, *, screen=True):
    """The exact good indicator of every term, for tests: per stage an
    ``(S * P, n_s, K_s)`` int8 array (1 good, 0 not), pairs sample-major.
    ``screen=False`` recomputes every term."""
    S, P = noise.shape[0], x.shape[0]
    plan = _plan(net)
    idx = np.arange(S * P)
    fw = _Pass(plan, np.ascontiguousarray(x[idx % P]), noise[idx // P])
    status = [np.full((S * P, st.n, st.breakpoints.size), 2, np.int8) for st in plan.stages]
    todo = [np.ones(st.shape, bool) for st in status]
    if screen:
        _screen(plan, fw, todo, status)
    _fallback(plan, fw, [st == 2 for st in status], status)
    return status


def _block(plan, X, noise, opts):
    """(N, L) each stage's share of eq. (6) for N pairs."""
    fw = _Pass(plan, X, noise)
    weights = _weights(plan, fw, opts)
    N = X.shape[0]
    if not opts["good"]:
        return np.stack([w.sum(axis=(1, 2)) for w in weights], axis=1)
    nt = plan.n_terms
    total = sum(w.sum(axis=(1, 2)) for w in weights)
    thr = total * HALF_ULP / nt
    status = [np.full(w.shape, 2, np.int8) for w in weights]  # 2: undecided
    todo = [w > thr[:, None, None] for w in weights]
    _screen(plan, fw, todo, status)
    acc = _good_sum(weights, status)
    # round 1: the small terms, where together they may matter (as the dense screen)
    skipped = np.zeros(N)
    for w, t in zip(weights, todo):
        skipped = np.maximum(skipped, np.where(t | (w <= 0), 0.0, w).max(axis=(1, 2)))
    need = skipped * nt > acc * HALF_ULP
    if need.any():
        todo1 = [(~t) & (w > 0) & need[:, None, None] for w, t in zip(weights, todo)]
        _screen(plan, fw, todo1, status)
        todo = [a | b for a, b in zip(todo, todo1)]
        acc = _good_sum(weights, status)
    # undecided terms go to the recomputation unless all of them are negligible
    w_und = np.zeros(N)
    for w, t, st in zip(weights, todo, status):
        w_und = np.maximum(w_und, np.where(t & (st == 2), w, 0.0).max(axis=(1, 2)))
    keep = w_und * nt > acc * HALF_ULP
    _fallback(plan, fw, [t & (st == 2) & keep[:, None, None] for t, st in zip(todo, status)], status)
    return np.stack([np.where(st == 1, w, 0.0).sum(axis=(1, 2)) for w, st in zip(weights, status)], axis=1)


def _good_sum(weights, status):
    return sum(np.where(st == 1, w, 0.0).sum(axis=(1, 2)) for w, st in zip(weights, status))


def _weights(plan, fw, opts):
    """Per stage ``(N, n_s, K_s)`` term weights, as the dense kernels compute them."""
    sigma = float(opts["sigma"])
    phi0, inv2var = 1.0 / (math.sqrt(2.0 * math.pi) * sigma), 0.5 / (sigma * sigma)
    out = []
    for s, st in enumerate(plan.stages):
        gn = fw.gn[s][:, :, None]
        if not opts["rho"]:
            out.append(np.repeat(gn, st.breakpoints.size, axis=2))
            continue
        d = st.breakpoints[None, None, :] - fw.u[s][:, :, None]
        e = d * d * inv2var
        with np.errstate(under="ignore"):
            out.append(np.where(e < 746.0, gn * phi0 * np.exp(-np.minimum(e, 746.0)), 0.0))
    return out


def _deltas(plan, fw, s):
    """(N, n_s, K) how far neuron j's output moves when pinned at t_k."""
    return np.abs(plan.act_bp[s][None] - fw.h[s][:, :, None])


def _screen(plan, fw, todo, status):
    """Decide the terms ``todo`` (per stage, (N, n_s, K) bool) where the
    sampled pass proves them, level by level (see the module docstring)."""
    L = plan.L
    if L < 2:  # the neurons of a single stage reach the output as they are
        _decide_as_sampled(plan, fw, todo, status)
        return
    bmax = plan.bmax
    N = fw.v[0].shape[0]
    T0 = None
    for level in _LEVELS:
        pending = [t & (st == 2) for t, st in zip(todo, status)]
        if not any(p.any() for p in pending):
            return
        deltas = [_deltas(plan, fw, s) if pending[s].any() else None for s in range(L)]
        # radius of every pending term at every later stage, and the pair's largest
        if T0 is None:
            T0 = np.zeros((N, L))
            for s in range(L):
                if deltas[s] is None:
                    continue
                for m in range(s + 1, L):
                    R = _moved(plan, bmax[s][None, :, m, None], deltas[s])
                    T0[:, m] = np.maximum(T0[:, m], np.where(pending[s], R, 0.0).max(axis=(1, 2)))
        cap = T0 * level
        T = np.zeros((N, L))
        eligible = []
        for s in range(L):
            if deltas[s] is None:
                eligible.append(None)
                continue
            ok = pending[s].copy()
            for m in range(s + 1, L):
                ok &= _moved(plan, bmax[s][None, :, m, None], deltas[s]) <= cap[:, m, None, None]
            eligible.append(ok)
            for m in range(s + 1, L):
                R = _moved(plan, bmax[s][None, :, m, None], deltas[s])
                T[:, m] = np.maximum(T[:, m], np.where(ok, R, 0.0).max(axis=(1, 2)))
        rows = np.zeros(N, bool)
        for ok in eligible:
            if ok is not None:
                rows |= ok.any(axis=(1, 2))
        if not rows.any():
            continue
        r = np.nonzero(rows)[0]
        Tr = T[r]
        sure = [(fw.slope[m][r] != 0) & (fw.margin[m][r] > Tr[:, m, None]) for m in range(L)]
        maybe = [(fw.slope[m][r] != 0) | ~(fw.margin[m][r] > Tr[:, m, None]) for m in range(L)]
        good = _reach(plan, sure, r.size)
        could = _reach(plan, maybe, r.size)
        for s, ok in enumerate(eligible):
            if ok is None:
                continue
            okr = ok[r]
            st = status[s][r]
            st[okr & good[s][:, :, None]] = 1
            st[okr & ~could[s][:, :, None]] = 0
            status[s][r] = st


def _decide_as_sampled(plan, fw, todo, status):
    """One stage: nothing after it can change; its neurons reach the output or not."""
    reach = _reach(plan, [], fw.v[0].shape[0])
    for s, t in enumerate(todo):
        status[s][t & reach[s][:, :, None]] = 1
        status[s][t & ~reach[s][:, :, None]] = 0


def _fallback(plan, fw, todo, status):
    """The exact indicator of the terms ``todo``: each neuron pinned at its
    breakpoint, the later stages recomputed, then a path searched backwards."""
    for s, t in enumerate(todo):
        n_idx, j_idx, k_idx = np.nonzero(t)
        if n_idx.size == 0:
            continue
        later = sum(plan.sizes[m + 1] for m in range(s, plan.L))
        step = max(1, _BUDGET // (6 * max(1, later)))
        for b0 in range(0, n_idx.size, step):
            n, j, k = n_idx[b0 : b0 + step], j_idx[b0 : b0 + step], k_idx[b0 : b0 + step]
            status[s][n, j, k] = _pinned_good(plan, fw, s, n, j, k)


def _pinned_good(plan, fw, s, n, j, k):
    """(B,) int8 good indicator of neuron ``j`` of stage ``s`` pinned at its
    ``k``-th breakpoint, in the pass of pair ``n`` (mirrors the dense
    ``_fallback`` and ``_path_to_output``)."""
    B = n.size
    stages = plan.stages
    dh0 = np.zeros((B, stages[s].n))
    dh0[np.arange(B), j] = plan.act_bp[s][j, k] - fw.h[s][n, j]
    dh = {s + 1: dh0}
    opened = {}
    for m in range(s + 1, plan.L):
        st = stages[m]
        op = st.operator
        if not any(t in dh for t in op.sources):
            opened[m] = fw.slope[m][n] != 0
            continue
        rows = [dh.get(t, np.zeros((B, size))) for t, size in zip(op.sources, op.source_sizes)]
        dv = op.linear(rows)
        u = fw.v[m][n] + dv
        km = st.piece(u)
        cols = np.arange(st.n)[None, :]
        sl, ic = st.slopes[cols, km], st.intercepts[cols, km]
        opened[m] = sl != 0
        same = km == fw.piece[m][n]
        dh[m + 1] = np.where(same, sl * dv, sl * u + ic - fw.h[m][n])
        for t in [t for t in dh if t <= m and t not in st.carry]:
            del dh[t]
    reach = _reach(plan, opened, B, first=s)
    return reach[s][np.arange(B), j].astype(np.int8)
