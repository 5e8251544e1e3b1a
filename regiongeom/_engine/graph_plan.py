"""Graph networks in the engine: what lives at the vertices, stage by stage.

A :class:`~regiongeom.graph.GraphNetwork` is cut one unit stage at a time,
as a :class:`~regiongeom.network.Network` is cut one layer at a time. While
stage ``s`` is cut, every vertex holds one row of ``values``: first the
stage's ``n`` preactivations (the columns that are cut), then the *carried*
tensors, the older tensors that a later stage (or the output) still reads
(residual streams, the input of a skip connection). Every column is an
affine function on every face, so new vertices interpolate all of them, and
only the first ``n`` are cut. After the cut the first ``n`` columns are
activated in place (per-neuron slopes: a per-channel PReLU), and the next
stage's row is its operator applied to its sources, which are all among
them, followed by the tensors it must carry on.

Rounding-error bounds
---------------------
The engine keeps one factor ``eps[v]`` per vertex and one ``rn[c]`` per
column: the float value in column ``c`` is within ``rn[c] * eps[v]`` of the
exact value at the exact vertex. For the preactivation columns of a stage,
``rn`` is ``row_l1 + |bias|`` of its operator (0 only for a zero row with a
zero constant, computed as exactly 0); an activated tensor gets
``max(L, 1) rn`` and a carried tensor keeps the factors it had.
Between stages, with ``L`` the largest slope of the units just activated:

- an activated column's error is at most ``L rn[c] eps`` plus the unit's own
  rounding ``gamma_2 (|s z| + |c|)`` (nothing for ReLU-like units, whose
  pieces are ``0``, ``z`` or ``-z``);
- the operator adds, to the errors of its sources passed through ``|A|``,
  its own rounding: at most ``gamma_N`` times ``|A| |h| + |b|``, with ``N``
  the number of terms of the longest sum in the operator (a composition of
  primitives is bounded primitive by primitive: ``|P_k| ... |P_1|``), and
  ``|A| |h| <= max|h| * (|A| 1)``.

So with ``f`` the sources' factors (``L rn``, or the carried factors), the
next factor is ``eps' = max(c1, L) eps + r + gamma_N c2 max(max|h|, 1)``
where ``c1 = max_j (|A| f)_j / rn'_j``, ``c2 = max_j ((|A| 1)_j + |b_j|) /
rn'_j`` and ``r`` bounds the units' rounding relative to the smallest
factor of a column it touches. Each bound is rounded up by ``1 + 2**-40``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

U = 2.0**-53
SLACK = 1.0 + 2.0**-40


def _gamma(n):
    return n * U / (1.0 - n * U)


class Layout(NamedTuple):
    """The columns of ``values`` while stage ``s`` is cut."""

    n: int  # preactivation columns (cut)
    carried: tuple  # (tensor, first column, size) of each carried tensor
    cols: int  # all columns


class GraphPlan:
    """The per-stage constants of a graph network for the engine."""

    def __init__(self, gnet):
        self.net = gnet
        self.stages = gnet.stages
        sizes = {0: int(gnet.n_in)}
        for s, st in enumerate(self.stages):
            sizes[s + 1] = st.n
        self.sizes = sizes
        self.layouts = []
        for st in self.stages:
            col, carried = st.n, []
            for t in st.carry:
                carried.append((t, col, sizes[t]))
                col += sizes[t]
            self.layouts.append(Layout(st.n, tuple(carried), col))
        # per stage: the preactivations' factors and the operator's constants
        self.rn, self._terms = [], []
        for st in self.stages:
            op = st.operator
            # a row of zeros still rounds its constant on the way through the
            # operator's primitives, so only a zero row with a zero constant
            # (computed as exactly 0) gets the factor 0
            rn = (np.asarray(op.row_l1, np.float64) + np.abs(op.bias)) * SLACK
            self.rn.append(rn)
        self._col_rn = [None] * len(self.stages)

    # -- columns -----------------------------------------------------------
    def first_values(self, x, cap):
        """``(cap, cols)`` values of stage 0 at the points ``x (V, n_in)``
        (rows beyond ``V`` uninitialised), and the columns' factors."""
        lay = self.layouts[0]
        out = np.empty((cap, lay.cols))
        V = x.shape[0]
        op = self.stages[0].operator
        out[:V, : lay.n] = op(self._sources(op, {0: x}))
        for _t, c, size in lay.carried:
            out[:V, c : c + size] = x  # only the input exists before stage 0
        rn = np.concatenate([self.rn[0]] + [np.ones(size) for _t, _c, size in lay.carried])
        self._col_rn[0] = rn
        return out, rn

    def first_eps(self, x):
        """``(V,)`` error factors of stage 0's values at the exact points ``x``:
        its operator rounds within ``gamma_N ((|A| 1) |x|_inf + |b|)``, at most
        ``rn gamma_N c2 max(|x|_inf, 1)``."""
        op = self.stages[0].operator
        rn = self.rn[0]
        live = rn > 0
        c2 = 0.0
        if live.any():
            ones = op.absolute(np.ones((1, op.n_in)), with_bias=True)[0]
            c2 = float((ones[live] / rn[live]).max()) * (1.0 + 4 * U * op.n_in)
        return SLACK * _gamma(_n_terms(op)) * c2 * np.maximum(np.abs(x).max(axis=1), 1.0)

    def _sources(self, op, tensors):
        return [tensors[t] for t in op.sources]

    def tensors_after(self, s, values, V):
        """The tensors available once stage ``s`` is activated: its output and
        what it carries, as views of ``values[:V]``."""
        lay = self.layouts[s]
        out = {s + 1: values[:V, : lay.n]}
        for t, c, size in lay.carried:
            out[t] = values[:V, c : c + size]
        return out

    def column_factors(self, s):
        return self._col_rn[s]

    def activate(self, s, values, V, eps):
        """Apply stage ``s``'s units to the first ``n`` columns of
        ``values[:V]`` in place; return the factors of the activated
        tensor's columns and the per-vertex bound ``r`` of the units' own
        rounding relative to them (added to eps by :meth:`next_values`)."""
        st, lay = self.stages[s], self.layouts[s]
        z = values[:V, : lay.n]
        sl, ic = np.abs(st.slopes), np.abs(st.intercepts)
        lip = float(sl.max()) if sl.size else 1.0
        exact = bool(np.all(((sl == 0) | (sl == 1)) & ((ic == 0) | (sl == 0))))
        rn = self.rn[s]
        r = np.zeros(V)
        if not exact:
            live = rn > 0
            if live.any():
                # gamma_2 (|s| |z| + |c|) <= gamma_2 (lip |z| + max|c|), per column over rn
                zz = np.abs(z[:, live]) * lip + float(ic.max())
                r = _gamma(2) * SLACK * (zz / rn[live]).max(axis=1)
        values[:V, : lay.n] = st.apply(z)
        return lip, r

    def next_values(self, s, values, V, cap, eps, lip, r):
        """The values of stage ``s + 1`` (a new ``(cap, cols)`` array) from the
        activated ``values`` of stage ``s``; updates ``eps[:V]`` in place."""
        nxt, lay = self.stages[s + 1], self.layouts[s + 1]
        tensors = self.tensors_after(s, values, V)
        # factors of the tensors available now
        col_rn = self._col_rn[s]
        fac = {s + 1: max(lip, 1.0) * self.rn[s]}
        for t, c, size in self.layouts[s].carried:
            fac[t] = col_rn[c : c + size]
        op = nxt.operator
        out = np.empty((cap, lay.cols))
        out[:V, : lay.n] = op(self._sources(op, tensors))
        for t, c, size in lay.carried:
            out[:V, c : c + size] = tensors[t]
        rn_next = self.rn[s + 1]
        new_col_rn = np.concatenate([rn_next] + [fac[t] for t, _c, _size in lay.carried])
        self._col_rn[s + 1] = new_col_rn
        c1, c2, n_terms = self._op_terms(s + 1, [fac[t] for t in op.sources])
        hmax = np.ones(V)
        for t in op.sources:
            if tensors[t].shape[1]:
                np.maximum(hmax, np.abs(tensors[t]).max(axis=1), out=hmax)
        carried_floor = max(1.0, lip)
        new = (max(c1, carried_floor) * eps[:V] + r + _gamma(n_terms) * c2 * hmax) * SLACK
        eps[:V] = new
        return out, new_col_rn

    def _op_terms(self, s, source_factors):
        """``(c1, c2, N)`` of stage ``s``'s operator (see the module docstring)."""
        op = self.stages[s].operator
        rn = self.rn[s]
        live = rn > 0
        f = np.concatenate(source_factors)[None, :]
        prop = op.absolute(f)[0]
        ones = op.absolute(np.ones_like(f), with_bias=True)[0]
        if not live.any():
            return 0.0, 0.0, 1
        c1 = float((prop[live] / rn[live]).max()) * (1.0 + 4 * U * op.n_in)
        c2 = float((ones[live] / rn[live]).max()) * (1.0 + 4 * U * op.n_in)
        return c1, c2, _n_terms(op)


def _n_terms(op):
    """An upper bound on the sum of the fan-ins along any path through the
    operator's primitives: the total size of every primitive's inputs (the
    rounding of a chain of sums of ``k_1, k_2, ...`` terms is within
    ``gamma_{k_1 + k_2 + ...}`` of the magnitudes ``|P_m| ... |P_1| |h|``)."""
    rest = getattr(op, "rest", None)
    if hasattr(op, "M"):  # a lifted operator: uv @ M.T + const (+ the rest)
        return op.M.shape[1] + 2 + (_n_terms(rest) if rest is not None else 0)
    total = 2
    for node in getattr(op, "order", ()):
        for src in node.inputs:
            total += int(np.prod(src.shape, dtype=np.int64))
    return max(total, int(op.n_in) + 2)
