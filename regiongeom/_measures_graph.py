"""Local rank, total variation and the not-good count on graph networks.

The dense measures (:mod:`regiongeom.measures`) multiply weight matrices; a
:class:`~regiongeom.graph.GraphNetwork` only offers its operators, so the
exact input Jacobians are pushed forward through them: on the linear region
of ``x`` the Jacobian of stage ``s``'s preactivations is ``op_s.linear``
applied to the sources' Jacobians (each multiplied by its units' slopes),
starting from the identity at the input. The noise, the tolerance of the
exact rank and the Estimates are those of the dense functions.
"""

from __future__ import annotations

import numpy as np

_UNIT = np.finfo(np.float64).eps / 2
_BUDGET = 1 << 23  # float64 entries of the Jacobians held at once


def _jacobian_pass(net, x, row, *, want_abs=False, want_output=False):
    """Yield ``(s, J, A)`` for every stage ``s`` (``(C, n_s, n_in)``: the
    Jacobian of its preactivations and, with ``want_abs``, the product of the
    absolute values that bounds its rounding), then ``("out", J, None)``
    with ``want_output``. ``row``: the noise on the neurons' biases."""
    C, d = x.shape
    tensors, jac, absj = {0: x}, {}, {}
    eye = np.broadcast_to(np.eye(d), (C, d, d))
    for s, st in enumerate(net.stages):
        op = st.operator
        u = op([tensors[t] for t in op.sources]) + row[st.offset : st.offset + st.n]
        J = _push(op, jac, eye, C, d, "linear")
        A = _push(op, absj, eye, C, d, "abs") if want_abs else None
        yield s, J, A
        piece = st.piece(u)
        slope = st.slopes[np.arange(st.n)[None, :], piece]
        tensors[s + 1] = st.apply(u)
        jac[s + 1] = slope[:, :, None] * J
        if want_abs:
            absj[s + 1] = np.abs(slope)[:, :, None] * A
        for t in [t for t in list(jac) if t <= s and t not in st.carry]:
            jac.pop(t)
            absj.pop(t, None)
    if want_output:
        yield "out", _push(net.output, jac, eye, C, d, "linear"), None


def _push(op, jac, eye, C, d, mode):
    """``(C, n_out, d)``: the operator's linear part (or absolute values)
    applied to the sources' Jacobians, column by column."""
    rows = [(eye if t == 0 else jac[t]).transpose(0, 2, 1).reshape(C * d, n)
            for t, n in zip(op.sources, op.source_sizes)]  # fmt: skip
    out = op.linear(rows) if mode == "linear" else op.absolute(rows)
    return out.reshape(C, d, op.n_out).transpose(0, 2, 1)


def _chunk(net, n):
    widest = max([net.n_in, net.n_out] + [st.n for st in net.stages])
    return max(1, min(n, _BUDGET // (4 * widest * net.n_in)))


def _n_terms(op):
    from ._engine.graph_plan import _n_terms as n_terms

    return n_terms(op)


def rank_sample(net, x, row, *, eps):
    """(L,) sum over the points of the rank of every stage's Jacobian (the
    tolerance of :func:`regiongeom.measures.local_rank`, with the graph's
    fan-ins along any path in place of the dense layer widths)."""
    total = np.zeros(len(net.stages))
    depth = np.cumsum([_n_terms(st.operator) for st in net.stages])
    step = _chunk(net, x.shape[0])
    for c0 in range(0, x.shape[0], step):
        for s, J, A in _jacobian_pass(net, x[c0 : c0 + step], row, want_abs=eps is None):
            S = np.linalg.svd(J, compute_uv=False)
            if eps is None:
                prod = depth[s] * _UNIT * 1.01 * np.sqrt(np.einsum("cij,cij->c", A, A))
                tol = (max(J.shape[1], J.shape[2]) * _UNIT * S[:, 0] + prod)[:, None]
            else:
                tol = eps
            total[s] += np.count_nonzero(S > tol)
    return total


def tv_sample(net, x, row):
    """Sum over the points of ``||J_N(x)||_F``, one noise row."""
    tot = 0.0
    step = _chunk(net, x.shape[0])
    for c0 in range(0, x.shape[0], step):
        for s, J, _ in _jacobian_pass(net, x[c0 : c0 + step], row, want_output=True):
            if s == "out":
                tot += np.sqrt(np.einsum("cij,cij->c", J, J)).sum()
    return tot


def not_good_sample(net, x, row, *, sigma):
    """Number of (point, neuron, breakpoint) terms that are not good, one noise row."""
    from ._theorem2_graph import good_table

    count = 0
    for p0 in range(0, x.shape[0], 256):
        for table in good_table(net, x[p0 : p0 + 256], row[None]):
            count += int(np.count_nonzero(table == 0))
    return count
