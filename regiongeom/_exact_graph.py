"""Exact affine maps of graph networks (the exact fallback for convolutional nets).

:class:`ExactGraph` is :class:`~regiongeom._exact.ExactNet` for a
:class:`~regiongeom.graph.GraphNetwork`: on an activation pattern every
tensor of the network is an affine function of the inputs, and it computes
those functions exactly, as :class:`~regiongeom._exact.Dyadic` arrays of
homogeneous rows ``(n, n_in + 1)`` (Python integers times a power of two).

The network's coefficients are the float64 numbers its float evaluation
multiplies by (weights, biases, folded BatchNorm scales, ``fl(1 / k)`` of an
average over ``k`` values, ``fl(1 / c)`` of a division by ``c``): the exact
network is the float network with every operation done without rounding.

Every primitive of :mod:`regiongeom._graph_ops` is compiled once into a
sparse row form (:class:`_Rows`): output entry ``r`` is ``sum_k coef[r, k] *
x[idx[r, k]] + const[r]`` over the node's inputs side by side. Convolutions,
dense maps, padding, reshapes and elementwise maps get it from their index
structure; averages and unusual calls from :func:`~regiongeom._graph_ops.linear_entries`.
The same form gives the receptive field of any set of outputs, so a single
row (``line``) is computed only on its cone: the entries of earlier tensors
it depends on. Rows are cached per stage and pattern prefix, so the rows of
one face are computed once whatever asks for them.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from ._engine.core import one_blas_thread
from ._exact import (
    _CHUNK,
    _LIMB,
    _SMALL,
    Dyadic,
    ExactNet,
    _align_rows,
    _cat_aligned,
    _int_dot,
    _limbs,
    _n_limbs,
    _shift,
    dyadic,
)

__all__ = ["ExactGraph", "exact_for"]


def exact_for(net):
    """:class:`ExactNet` for a :class:`~regiongeom.Network`, :class:`ExactGraph`
    for a :class:`~regiongeom.graph.GraphNetwork`."""
    from .graph import GraphNetwork
    from .network import Network

    if isinstance(net, GraphNetwork):
        return ExactGraph(net)
    if isinstance(net, Network):
        return ExactNet(net)
    raise TypeError(f"exact_for expects an rg.Network or a GraphNetwork, got {type(net).__name__}")


class _Rows(NamedTuple):
    """A primitive as sparse rows over its inputs side by side (flattened).

    ``idx`` ``(n_out, K)`` input indices, ``n_in`` (one past the end) for an
    empty slot; ``rowsel`` ``(n_out,)`` the row of ``table`` (``(U, K)``
    Dyadic) holding each output's coefficients, or None when they are all
    one; ``const`` ``(n_out,)`` Dyadic or None.
    """

    idx: np.ndarray
    rowsel: np.ndarray | None
    table: Dyadic | None
    const: Dyadic | None


def _tensor(t):
    return t.detach().cpu().double().numpy()


def _broadcast_index(in_shape, out_shape):
    """(n_out,) flat input index of each output entry of a broadcast."""
    a = np.arange(int(np.prod(in_shape, dtype=np.int64))).reshape((1, *in_shape))
    return np.broadcast_to(a, (1, *out_shape)).reshape(-1)


def _elementwise(node, coef, const):
    """x * coef + const with broadcasting (``coef``/``const``: torch tensors or None)."""
    shape = tuple(node.shape)
    n = int(np.prod(shape, dtype=np.int64))
    idx = _broadcast_index(node.inputs[0].shape, shape)[:, None]
    table = rowsel = c = None
    if coef is not None:
        vals = np.broadcast_to(_tensor(coef), (1, *shape)).reshape(n, 1)
        table, rowsel = dyadic(vals), np.arange(n)
    if const is not None:
        c = dyadic(np.broadcast_to(_tensor(const), (1, *shape)).reshape(n))
    return _Rows(np.ascontiguousarray(idx), rowsel, table, c)


def _dense_last(x_shape, w, b):
    """``x @ w.T + b`` on the last axis (``w`` ``(o, i)`` float64)."""
    o, i = w.shape
    lead = int(np.prod(x_shape[:-1], dtype=np.int64))
    if lead == 1:  # every row reads the whole input: a read-only view, no copy
        idx = np.broadcast_to(np.arange(i), (o, i))
    else:
        idx = (np.arange(lead)[:, None, None] * i + np.arange(i)[None, None, :]).repeat(o, axis=1)
    rowsel = np.tile(np.arange(o), lead)
    const = None
    if b is not None:
        d = dyadic(b)
        const = Dyadic(d.m[rowsel], d.e)
    return _Rows(idx.reshape(lead * o, i) if lead > 1 else idx, rowsel, dyadic(w), const)


def _tuple(v, nd):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd


def _conv(node):
    stride, padding, dilation, groups = node.args
    w = _tensor(node.w)
    nd = w.ndim - 2
    cout, cpg, kern = w.shape[0], w.shape[1], w.shape[2:]
    cin, space = node.inputs[0].shape[0], tuple(node.inputs[0].shape[1:])
    stride, dilation = _tuple(stride, nd), _tuple(dilation, nd)
    if padding == "valid":
        pads = [(0, 0)] * nd
    elif padding == "same":
        tot = [d * (k - 1) for d, k in zip(dilation, kern)]
        pads = [(t // 2, t - t // 2) for t in tot]
    else:
        pads = [(p, p) for p in _tuple(padding, nd)]
    n_in = cin * int(np.prod(space, dtype=np.int64))
    ids = np.pad(np.arange(n_in).reshape(cin, *space), [(0, 0), *pads], constant_values=n_in)
    ext = [d * (k - 1) + 1 for d, k in zip(dilation, kern)]
    win = np.lib.stride_tricks.sliding_window_view(ids, ext, axis=tuple(range(1, nd + 1)))
    win = win[
        (slice(None), *[slice(None, None, s) for s in stride], *[slice(None, None, d) for d in dilation])
    ]
    out_space = win.shape[1 : nd + 1]
    P = int(np.prod(out_space, dtype=np.int64))
    opg = cout // groups
    per_group = [np.moveaxis(win[g * cpg : (g + 1) * cpg], 0, nd).reshape(P, -1) for g in range(groups)]
    idx = np.stack([per_group[o // opg] for o in range(cout)]).reshape(cout * P, -1)
    rowsel = np.repeat(np.arange(cout), P)
    const = None
    if node.b is not None:
        d = dyadic(_tensor(node.b))
        const = Dyadic(d.m[rowsel], d.e)
    if (cout, *out_space) != tuple(node.shape):
        raise AssertionError(f"convolution index structure {(cout, *out_space)} != {node.shape}")
    return _Rows(idx, rowsel, dyadic(w.reshape(cout, -1)), const)


def _gather(node, pad=None):
    """Rows of a map that copies entries (reshapes, indexing, cat, padding),
    found by running it on the inputs' own indices; checked on random values."""
    import torch

    sizes = [int(np.prod(i.shape, dtype=np.int64)) for i in node.inputs]
    n_in = sum(sizes)
    at, xs = 0, []
    for i, n in zip(node.inputs, sizes):
        xs.append(torch.arange(at + 1, at + n + 1, dtype=torch.float64).reshape(1, *i.shape))
        at += n
    with torch.no_grad():
        y = (node.fn(xs, 1) if pad is None else pad(xs[0])).reshape(-1).numpy()
    idx = np.where(y == 0, n_in + 1, y).astype(np.int64) - 1
    v = np.random.default_rng(0).normal(size=n_in)
    xs = [
        torch.from_numpy(p.copy()).reshape(1, *i.shape)
        for p, i in zip(np.split(v, np.cumsum(sizes)[:-1]), node.inputs)
    ]
    with torch.no_grad():
        got = (node.fn(xs, 1) if pad is None else pad(xs[0])).reshape(-1).numpy()
    if not np.array_equal(got, np.append(v, 0.0)[idx]):
        return None
    return idx[:, None]


def _probe(node):
    """Rows from the node's coefficients found by unit vectors."""
    from ._graph_ops import linear_entries

    n_out = int(np.prod(node.shape, dtype=np.int64))
    n_in = sum(int(np.prod(i.shape, dtype=np.int64)) for i in node.inputs)
    if getattr(node, "kind", "") == "pool":  # the coefficients its float evaluation uses
        idx, w, c = (t if t is None else t.numpy() for t in node.sum_form())
        coef = (np.ones(idx.shape) if w is None else w) * c[:, None]
        return _Rows(idx, np.arange(n_out), dyadic(np.where(idx < n_in, coef, 0.0)), None)
    rows, cols, vals = (t.numpy() for t in linear_entries(node))
    order = np.lexsort((cols, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    counts = np.bincount(rows, minlength=n_out)
    K = max(1, int(counts.max()) if counts.size else 1)
    slot = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    idx = np.full((n_out, K), n_in, np.int64)
    coef = np.zeros((n_out, K))
    idx[rows, slot], coef[rows, slot] = cols, vals
    import torch

    with torch.no_grad():
        b = node.run([torch.zeros(1, *i.shape, dtype=torch.float64) for i in node.inputs], "affine")
    b = b.reshape(-1).numpy()
    return _Rows(idx, np.arange(n_out), dyadic(coef), dyadic(b) if b.any() else None)


def compile_node(node) -> _Rows:
    """The sparse rows of one primitive (see :class:`_Rows`)."""
    import torch.nn.functional as F

    from . import _graph_ops as g

    if isinstance(node, g.Linear):
        b = None if node.b is None else _tensor(node.b)
        return _dense_last(node.inputs[0].shape, _tensor(node.w), b)
    if isinstance(node, g.Conv):
        return _conv(node)
    if isinstance(node, g.MatmulConst) and node.w.ndim in (1, 2):
        w = _tensor(node.w)
        return _dense_last(node.inputs[0].shape, w.T if w.ndim == 2 else w[None], None)
    if isinstance(node, g.ChannelAffine):
        return _elementwise(node, node.scale, node.shift)
    if isinstance(node, g.Scale):
        return _elementwise(node, node.coefficient, None)
    if isinstance(node, g.Shift):
        return _elementwise(node, None, node.c)
    if isinstance(node, g.Neg):
        n = int(np.prod(node.shape, dtype=np.int64))
        return _Rows(np.arange(n)[:, None], np.zeros(n, np.int64), dyadic([[-1.0]]), None)
    if isinstance(node, g.Add):
        shape = tuple(node.shape)
        na = int(np.prod(node.inputs[0].shape, dtype=np.int64))
        ia = _broadcast_index(node.inputs[0].shape, shape)
        ib = _broadcast_index(node.inputs[1].shape, shape) + na
        table = dyadic([[1.0, node.alpha]])
        return _Rows(np.stack([ia, ib], axis=1), np.zeros(ia.size, np.int64), table, None)
    if isinstance(node, g.Pad):
        mode = node.pad_mode
        kw = {"value": 0.0} if mode == "constant" else {}
        idx = _gather(node, lambda x: F.pad(x, node.pad, mode=mode, **kw))
        const = None
        if mode == "constant" and node.value != 0.0:
            empty = idx[:, 0] == int(np.prod(node.inputs[0].shape, dtype=np.int64))
            const = dyadic(np.where(empty, node.value, 0.0))
        return _Rows(idx, None, None, const)
    if isinstance(node, g.Rearrange) and node.kind != "pool":
        idx = _gather(node)
        if idx is not None:
            return _Rows(idx, None, None, None)
    return _probe(node)


def _conv_limbs(node, Xfull, TL) -> np.ndarray:
    """Every output of a convolution node, exactly: torch's float64
    convolution on the limbs of ``Xfull`` ``(k, n_in)`` (Python ints) and of
    the weights ``TL`` ``(nc, Cout, K)``. Every product of two 16-bit limbs
    and every partial sum of at most ``2**21`` of them is an integer below
    ``2**53``, so any summation order torch uses is exact (mkldnn, which
    could use other algorithms, is switched off; a result that is not
    integral gives None and the caller uses the sparse rows)."""
    import torch

    nx, k = _n_limbs(Xfull), Xfull.shape[0]
    XL = torch.from_numpy(_limbs(Xfull, nx).reshape(nx * k, *node.inputs[0].shape))
    nc, n_out = TL.shape[0], int(np.prod(node.shape, dtype=np.int64))
    fn = node._FN[node.w.ndim - 2]
    acc = np.zeros((nx + nc - 1, k, n_out), np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the flags' note on TF32, irrelevant here
        with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
            # the weight limbs side by side as more output channels of each group
            cout, groups = node.w.shape[0], node.args[3]
            W = TL.reshape(nc, groups, cout // groups, -1).transpose(1, 0, 2, 3)
            W = torch.from_numpy(np.ascontiguousarray(W).reshape(nc * cout, *node.w.shape[1:]))
            S = fn(XL, W, None, *node.args).numpy()
            if not np.array_equal(S, np.round(S)):  # not a direct sum: use the sparse rows
                return None
            S = S.reshape(nx, k, groups, nc, cout // groups, -1).transpose(3, 0, 1, 2, 4, 5)
            S = S.reshape(nc, nx, k, n_out).astype(np.int64)
            for j in range(nc):
                for i in range(nx):
                    acc[i + j] += S[j, i]
    out = acc[0].astype(object)
    for d in range(1, nx + nc - 1):
        out += acc[d].astype(object) << (_LIMB * d)
    return out


class _Part:
    """Rows of one stage's preactivation maps known so far on one pattern prefix."""

    __slots__ = ("m", "ex", "known")

    def __init__(self, n, k):
        self.m = np.empty((n, k), dtype=object)
        self.ex = np.zeros(n, np.int64)
        self.known = np.zeros(n, bool)


class ExactGraph:
    """A graph network's exact affine maps on activation patterns.

    Same interface and meaning as :class:`~regiongeom._exact.ExactNet`:
    ``maps(pattern, stage)`` is the Dyadic ``(stage.n, n_in + 1)`` of the
    stage's preactivations on the inputs whose pattern on the earlier stages
    is ``pattern`` (only the neurons the stage depends on are read),
    ``output(pattern)`` the ``(n_out, n_in + 1)`` map of the output and
    ``line(pattern, neuron, breakpoint)`` the ``(n_in + 1,)`` row of ``z_j -
    t``. Unit pieces use each neuron's own slope and intercept. The products
    run with BLAS on one thread (many small products).

    Max stages: ``maps(pattern, s)`` has the stage's ``n_pre``
    preactivations (its operator's outputs); a max unit's output is the map
    of the entry its piece selects (``windows[u, piece]``; a pattern that
    selects an absent entry raises ValueError); ``tie(pattern, neuron, p,
    q)`` is the row of ``z[w[p]] - z[w[q]]`` and ``line(pattern, neuron,
    q)`` the same with ``p`` the unit's piece in ``pattern``.
    """

    # cached rows (Python ints) kept before the cache is emptied: a few hundred MB
    _MAX_CACHED = 1 << 22

    def __init__(self, gnet):
        self.n_in = int(gnet.n_in)
        self.k = self.n_in + 1
        self.offsets = np.asarray(gnet.neuron_offsets)
        self.stages = gnet.stages
        self.out_op = gnet.output
        self.units = [None if s.is_max else (dyadic(s.slopes), dyadic(s.intercepts)) for s in self.stages]
        self.bps = [
            [] if s.is_max else [dyadic(t) for t in np.asarray(s.breakpoints, np.float64)]
            for s in self.stages
        ]
        self._rows, self._lifted, self._cache, self._cached = {}, {}, {}, 0

    # ------------------------------------------------------------ public --
    def maps(self, pattern, stage: int) -> Dyadic:
        """Exact homogeneous affine maps of stage ``stage``'s preactivations."""
        pattern = np.asarray(pattern)
        with one_blas_thread():
            return self._pre(pattern, stage, np.arange(self.stages[stage].n_pre))

    def output(self, pattern) -> Dyadic:
        """Exact homogeneous affine map of the network's output on ``pattern``."""
        pattern = np.asarray(pattern)
        key = ("out", pattern.tobytes())
        hit = self._cache.get(key)
        if hit is None:
            with one_blas_thread():
                v = self._apply(self.out_op, pattern, np.arange(self.out_op.n_out))
            hit = Dyadic(v.m.T.copy(), v.e)
            self._store(key, hit, hit.m.size)
        return Dyadic(hit.m.copy(), hit.e)

    def line(self, pattern, neuron: int, breakpoint: int) -> Dyadic:
        """Neuron ``neuron``'s ``z_j(x) - t`` as a homogeneous row ``(n_in + 1,)``,
        computed on the neuron's cone only."""
        s = int(np.searchsorted(self.offsets, neuron, side="right") - 1)
        if self.stages[s].is_max:
            pattern = np.asarray(pattern)
            return self.tie(pattern, neuron, int(pattern[neuron]), breakpoint)
        with one_blas_thread():
            a = self._pre(np.asarray(pattern), s, np.array([neuron - self.offsets[s]]))[0]
        t = self.bps[s][breakpoint]
        e = min(a.e, t.e)
        m = a.aligned(e).copy()
        m[self.n_in] = m[self.n_in] - t.aligned(e)
        return Dyadic(m, e)

    def tie(self, pattern, neuron: int, p: int, q: int) -> Dyadic:
        """Max unit ``neuron``'s ``z[w[p]] - z[w[q]]`` (``w`` its window) as a
        homogeneous row ``(n_in + 1,)``: ``>= 0`` where position ``p`` beats
        or ties ``q``. ``line(pattern, neuron, q)`` on a max unit is this with
        ``p`` the unit's piece in ``pattern`` (so ``>= 0`` on its own side)."""
        s = int(np.searchsorted(self.offsets, neuron, side="right") - 1)
        st = self.stages[s]
        if not st.is_max:
            raise ValueError(f"neuron {neuron} is not a max unit")
        w = st.windows[neuron - self.offsets[s]]
        if not (0 <= p < w.size and 0 <= q < w.size) or w[p] < 0 or w[q] < 0:
            raise ValueError(f"positions {p}, {q} are not entries of max unit {neuron}'s window {w.tolist()}")
        with one_blas_thread():
            z = self._pre(np.asarray(pattern), s, np.array([w[p], w[q]]))
        return Dyadic(z.m[0] - z.m[1], z.e)

    # ----------------------------------------------------------- stages --
    def _store(self, key, value, size):
        if self._cached + size > self._MAX_CACHED:
            self._cache.clear()
            self._cached = 0
        self._cache[key] = value
        self._cached += size

    def _pre(self, pattern, s, rows) -> Dyadic:
        """Rows ``rows`` of stage ``s``'s preactivation maps, ``(L, k)``."""
        key = (s, pattern[: self.offsets[s]].tobytes())
        part = self._cache.get(key)
        if part is None:
            part = _Part(self.stages[s].n_pre, self.k)
            self._store(key, part, part.m.size)
        missing = rows[~part.known[rows]]
        if missing.size:
            v = self._apply(self.stages[s].operator, pattern, np.unique(missing))
            got = np.unique(missing)
            part.m[got] = v.m.T
            part.ex[got] = v.e
            part.known[got] = True
        return _align_rows(part.m[rows], part.ex[rows])

    def _post(self, pattern, s, rows) -> Dyadic:
        """Rows of tensor ``s + 1`` (stage ``s``'s outputs) as ``(k, L)``."""
        pieces = pattern[self.offsets[s] + rows].astype(np.int64)
        if self.stages[s].is_max:  # the winning entry's map
            w = self.stages[s].windows
            if pieces.size and (pieces.min() < 0 or pieces.max() >= w.shape[1]):
                raise ValueError(f"pattern holds a position outside the windows of max stage {s}")
            sel = w[rows, pieces]
            if (sel < 0).any():
                raise ValueError(f"pattern selects an absent (padding) entry of max stage {s}")
            z = self._pre(pattern, s, sel)
            return Dyadic(np.ascontiguousarray(z.m.T), z.e)
        z = self._pre(pattern, s, rows)
        sl, ic = self.units[s]
        a, c = sl.m[rows, pieces], ic.m[rows, pieces]
        e = min(z.e + sl.e, ic.e)
        out = _shift(z.m * a[:, None], z.e + sl.e - e) if z.e + sl.e > e else z.m * a[:, None]
        out[:, -1] = out[:, -1] + (_shift(c, ic.e - e) if ic.e > e else c)
        return Dyadic(np.ascontiguousarray(out.T), e)

    # -------------------------------------------------------- operators --
    def _apply(self, op, pattern, rows) -> Dyadic:
        """Entries ``rows`` of an operator's output as ``(k, L)``."""
        from .graph import LiftedOperator

        if not isinstance(op, LiftedOperator):
            return self._dag(op, pattern, rows, linear=False, zero_input=False)
        hit = self._lifted.get(id(op))
        if hit is None:
            hit = self._lifted[id(op)] = (dyadic(op.M), dyadic(op.const))
        M, c = hit
        e = min(M.e, c.e)
        m = np.empty((self.k, rows.size), dtype=object)
        m[: self.n_in] = Dyadic(M.m[rows].T, M.e).aligned(e)
        m[self.n_in] = Dyadic(c.m[rows], c.e).aligned(e)
        out = Dyadic(m, e)
        if op.rest is not None:
            out = out + self._dag(op.rest, pattern, rows, linear=True, zero_input=True)
        return out

    def _compile(self, node):
        """``(rows, limbs of rows.table, node)`` of a primitive, compiled once
        (the node is kept so that its id stays unique)."""
        hit = self._rows.get(id(node))
        if hit is None:
            rows = compile_node(node)
            limbs = None if rows.table is None else _limbs(rows.table.m, _n_limbs(rows.table.m))
            hit = self._rows[id(node)] = (rows, limbs, node)
        return hit

    def _cone(self, node, r) -> np.ndarray:
        """Sorted input entries (side by side) that outputs ``r`` of a node read."""
        rows = self._compile(node)[0]
        if rows.idx.strides[0] == 0 or r.size == rows.idx.shape[0]:  # every row, or rows alike
            key = ("cone", id(node))
            if key not in self._rows:
                self._rows[key] = np.unique(rows.idx[:1] if rows.idx.strides[0] == 0 else rows.idx)
            return self._rows[key]
        return np.unique(rows.idx[r])

    def _dag(self, op, pattern, rows, linear, zero_input) -> Dyadic:
        """Entries ``rows`` of an Operator's DAG, evaluated only on their cone."""
        from ._graph_ops import Source

        need = {id(op.root): rows}
        for node in reversed(op.order):
            r = need.get(id(node))
            if isinstance(node, Source) or r is None:
                continue
            cols = self._cone(node, r)
            at = 0
            for inp in node.inputs:
                n = int(np.prod(inp.shape, dtype=np.int64))
                sel = cols[(cols >= at) & (cols < at + n)] - at
                old = need.get(id(inp))
                need[id(inp)] = sel if old is None else np.union1d(old, sel)
                at += n
        vals = {}
        for node in op.order:
            r = need.get(id(node))
            if r is None:
                continue
            if isinstance(node, Source):
                vals[id(node)] = self._source(node.tensor, pattern, r, zero_input)
            else:
                ins = [(need[id(i)], vals[id(i)], int(np.prod(i.shape, dtype=np.int64))) for i in node.inputs]
                vals[id(node)] = self._step(node, r, ins, linear)
        return vals[id(op.root)]

    def _source(self, t, pattern, r, zero_input) -> Dyadic:
        if t > 0:
            return self._post(pattern, t - 1, r)
        m = np.zeros((self.k, r.size), dtype=object)
        if not zero_input:
            m[r, np.arange(r.size)] = 1
        return Dyadic(m, 0)

    def _step(self, node, r, ins, linear) -> Dyadic:
        """One primitive on the needed entries ``r`` (sorted) of its output."""
        from ._graph_ops import Conv

        rows, table_limbs, _ = self._compile(node)
        X = _cat_aligned([v for _, v, _ in ins])
        total = sum(n for _, _, n in ins)
        pos = np.full(total + 1, X.m.shape[1], np.int64)
        at = p = 0
        for need, _, n in ins:
            pos[at + need] = p + np.arange(need.size)
            at, p = at + n, p + need.size
        K = rows.idx.shape[1]
        if isinstance(node, Conv) and 2 * r.size >= rows.idx.shape[0] and K <= _CHUNK:
            # most outputs of a convolution: torch's convolution on limbs (the
            # entries outside the cone of ``r`` are zeros: only outputs ``r`` are kept)
            full = np.zeros((self.k, total), dtype=object)
            full[:, ins[0][0]] = X.m
            out = _conv_limbs(node, full, table_limbs)
            if out is not None:
                out = out if r.size == out.shape[1] else out[:, r]
                return self._with_const(rows, r, out, X.e + rows.table.e, linear)
        Xp = np.concatenate([X.m, np.zeros((self.k, 1), dtype=object)], axis=1)
        P = pos[rows.idx[r]]  # (L, K)
        if rows.rowsel is None and K == 1:  # a copy (reshapes, indexing, padding)
            out, e = Xp[:, P[:, 0]], X.e
        elif P.size * self.k < _SMALL:  # a few products (a cone's rows): Python ints directly
            G = Xp[:, P]
            if rows.rowsel is None:
                out, e = G.sum(axis=2), X.e
            else:
                out, e = (G * rows.table.m[rows.rowsel[r]][None]).sum(axis=2), X.e + rows.table.e
        elif rows.rowsel is None:
            out, e = _int_dot(Xp, P, None), X.e
        else:
            shared = rows.idx.strides[0] == 0
            out, e = _int_dot(Xp, P, table_limbs[:, rows.rowsel[r]], shared), X.e + rows.table.e
        return self._with_const(rows, r, out, e, linear)

    @staticmethod
    def _with_const(rows, r, out, e, linear) -> Dyadic:
        """Add the primitive's constant terms to the constant column."""
        if rows.const is not None and not linear:
            c = Dyadic(rows.const.m[r], rows.const.e)
            ec = min(e, c.e)
            out = Dyadic(out, e).aligned(ec).copy()
            out[-1] = out[-1] + c.aligned(ec)
            e = ec
        return Dyadic(out, e)
