"""Exact enumeration on a line through a graph network (convolutions, residual blocks).

A 1-input :class:`~regiongeom.graph.GraphNetwork` (``net.restrict(line)``)
is cut one unit stage at a time, as the 1D engine cuts a
:class:`~regiongeom.network.Network` one layer at a time
(:mod:`.line1d`), with the stage's values at the points laid out by
:class:`.graph_plan.GraphPlan`: first the stage's preactivations (cut), then
the older tensors that later stages still read (carried: interpolated at
the new points, never cut).

**Exactness.** The signs, the orders of crossings and the bad positions are
decided exactly as in :mod:`.line1d`: each value carries a rigorous bound of
its distance to the exact value at the point's exact position, and what the
filter leaves goes to the exact fallback (:class:`regiongeom._exact.Fallback1D`
with the graph's exact maps, :class:`regiongeom._exact_graph.ExactGraph`).
The graph plan keeps its bounds as one factor per point times one per column
(``|value - exact| <= rn[c] eps[v]``); the cut wants one bound per value, so
the product is formed for the cut, and each new point's factor is the
largest ratio of its interpolated values' bounds to their columns' factors
(a column with factor 0 holds exact zeros, which interpolate to exact
zeros). The next stage's values are then computed at every point from the
activated values, with the plan's bounds (:meth:`.GraphPlan.next_values`).
"""

from __future__ import annotations

import numpy as np

from .._exact import Fallback1D
from . import _line1d_kernels as K
from .core import BOUNDARY, Subdivision, assemble_patterns, limit_error, one_blas_thread
from .graph_plan import SLACK, GraphPlan
from .line1d import Points, _cut_layer

__all__ = ["enumerate_1d_graph"]


def enumerate_1d_graph(net, domain, max_regions) -> Subdivision:
    """Exact 1D enumeration of a 1-input graph network; see
    :func:`regiongeom.activation_regions`."""
    with one_blas_thread():
        return _enumerate(net, domain, max_regions)


def _enumerate(net, domain, max_regions):
    plan = GraphPlan(net)
    lo, hi = domain.interval
    pts = Points(
        np.array([lo, hi], np.float64), np.zeros(2), np.full(2, BOUNDARY, np.int64), np.zeros(2, np.int64),
        np.arange(2),
    )  # fmt: skip
    x = pts.x[:, None]
    eps = plan.first_eps(x)
    values, rn = plan.first_values(x, 2)
    blocks = []  # (first neuron, parent interval, pieces) of each stage
    fb = Fallback1D(net, blocks, unsure=K.UNSURE, boundary=BOUNDARY)
    for s, st in enumerate(plan.stages):
        bps = np.ascontiguousarray(st.breakpoints, np.float64)
        # the cut interpolates but never activates: the pieces' slopes are not read
        act = (bps, np.ones(bps.size + 1), np.zeros(bps.size + 1))
        err = (eps * SLACK)[:, None] * rn[None, :]
        res = _cut_layer(pts, values, err, act, st.offset, max_regions, fb, n_cut=st.n)
        del err
        if res is None:
            raise limit_error(None, max_regions, net)
        blocks.append((st.offset, res.parent, res.pieces))
        pts = res.points
        if s + 1 == len(plan.stages):
            break
        # the new points' rows follow the old ones; the points keep their rows
        z = np.concatenate([values, res.values]) if res.values.shape[0] else values
        eps = np.concatenate([eps, _new_factors(res.err, rn)])
        del values, res
        nv = z.shape[0]
        lip, r = plan.activate(s, z, nv, eps)
        values, rn = plan.next_values(s, z, nv, nv, eps, lip, r)
        del z
    fb.flush()
    x = pts.x
    pat = assemble_patterns(blocks, x.size - 1, net.n_neurons)
    inner = np.arange(1, x.size - 1)
    return Subdivision(
        vertices=x, edges=np.stack([inner, inner], axis=1), edge_regions=np.stack([inner - 1, inner], axis=1),
        edge_neurons=pts.neuron[1:-1], edge_breakpoints=pts.bp[1:-1], patterns=pat, measures=np.diff(x),
    )  # fmt: skip


def _new_factors(err, rn):
    """The factor ``eps`` of each new point: the smallest with ``err <= rn eps``
    in every column of nonzero factor, rounded up (``SLACK`` covers the
    rounding of ``1 / rn`` and of the product)."""
    if err.shape[0] == 0:
        return np.zeros(0)
    rinv = np.zeros_like(rn)
    np.divide(1.0, rn, out=rinv, where=rn > 0)
    out = np.empty(err.shape[0])
    step = max(1, (1 << 16) // max(err.shape[1], 1))  # rows per block: a small temporary
    buf = np.empty((step, err.shape[1]))
    for i in range(0, err.shape[0], step):
        blk = buf[: min(step, err.shape[0] - i)]
        np.multiply(err[i : i + step], rinv, out=blk)
        blk.max(axis=1, out=out[i : i + step])
    return out * SLACK
