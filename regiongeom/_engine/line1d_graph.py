"""Exact enumeration on a line through a graph network (convolutions, residual blocks).

A 1-input :class:`~regiongeom.graph.GraphNetwork` (``net.restrict(line)``)
is cut one unit stage at a time, as the 1D engine cuts a
:class:`~regiongeom.network.Network` one layer at a time
(:mod:`.line1d`). :class:`.graph_plan.GraphPlan` forms each stage's columns
at the points, as it does at a plane's vertices: only the neurons that may
change piece on the interval get a column and are cut; the others are on one
piece on the whole interval; carried columns (the coordinate, residual
streams, partial sums of later stages) are interpolated at the new points,
never cut.

**Exactness.** The signs, the orders of crossings and the bad positions are
decided exactly as in :mod:`.line1d`: each value carries a rigorous bound of
its distance to the exact value at the point's exact position, and what the
filter leaves goes to the exact fallback (:class:`regiongeom._exact.Fallback1D`
with the graph's exact maps, :class:`regiongeom._exact_graph.ExactGraph`).
The plan keeps its bounds as one factor per point times one per column
(``|value - exact| <= rn[c] eps[v]``); the cut wants one bound per value, so
the product is formed for the cut, and each new point's factor is the
largest ratio of its interpolated values' bounds to their columns' factors,
rounded up (a column with factor 0 holds exact zeros, which interpolate to
exact zeros).

The cut numbers a stage's columns ``0..n_cut-1``; they are the neurons
``ids`` of the stage. While a stage is cut, its columns are named
``n_neurons + j`` (no neuron has such an index) and the exact fallback maps
them back (:class:`_StageNames`); the new points' neurons are renamed after
the cut.
"""

from __future__ import annotations

import numpy as np

from .._exact import Fallback1D
from . import _line1d_kernels as K
from .core import (
    BOUNDARY,
    StagePieces,
    Subdivision,
    assemble_stage_pieces,
    limit_error,
    one_blas_thread,
)
from .filter2d import SLACK
from .graph_plan import GraphPlan
from .line1d import Points, _cut_layer, subdivision_1d

__all__ = ["enumerate_1d_graph"]


def enumerate_1d_graph(net, domain, max_regions) -> Subdivision:
    """Exact 1D enumeration of a 1-input graph network; see
    :func:`regiongeom.activation_regions`. A network with max units goes to
    :mod:`.line1d_max`."""
    if net.has_max_units:
        from .line1d_max import enumerate_1d_max

        return enumerate_1d_max(net, domain, max_regions)
    with one_blas_thread():
        return _enumerate(net, domain, max_regions)


class _StageNames:
    """The graph's exact maps, with the current stage's columns named
    ``base + j`` for its neuron ``ids[j]``."""

    def __init__(self, exact, base):
        self.exact, self.base, self.ids = exact, base, None

    def line(self, pattern, neuron, breakpoint):
        if neuron >= self.base:
            neuron = int(self.ids[neuron - self.base])
        return self.exact.line(pattern, neuron, breakpoint)


class _GraphFallback(Fallback1D):
    def __init__(self, net, blocks, names):
        super().__init__(net, blocks, unsure=K.UNSURE, boundary=BOUNDARY)
        self.names = names

    @property
    def exact(self):
        if self.names.exact is None:
            from .._exact_graph import exact_for

            self.names.exact = exact_for(self.net)
        return self.names


def _enumerate(net, domain, max_regions):
    plan = GraphPlan(net)
    lo, hi = domain.interval
    pts = Points(
        np.array([lo, hi], np.float64), np.zeros(2), np.full(2, BOUNDARY, np.int64), np.zeros(2, np.int64),
        np.arange(2),
    )  # fmt: skip
    base = int(net.n_neurons)
    names = _StageNames(None, base)
    blocks = []  # (first neuron, parent interval, pieces) of each stage
    fb = _GraphFallback(net, blocks, names)
    values = pts.x[:, None].copy()  # the coordinate, exact: eps is 0
    eps = np.zeros(2)
    for s, st in enumerate(plan.stages):
        nv = values.shape[0]
        values, rn, ids = plan.form(s, values, nv, nv, eps)
        names.ids = ids
        bps = np.ascontiguousarray(st.breakpoints, np.float64)
        # the cut interpolates but never activates: the pieces' slopes are not read
        act = (bps, np.ones(bps.size + 1), np.zeros(bps.size + 1))
        err = (eps * SLACK)[:, None] * rn[None, :]
        res = _cut_layer(pts, values, err, act, base, max_regions, fb, n_cut=ids.size)
        del err
        if res is None:
            raise limit_error(None, max_regions, net)
        info = plan.info[s + 1]
        blocks.append((st.offset, res.parent, StagePieces(res.pieces, info.cross, info.const_piece)))
        pts = _renamed(res.points, base, ids)
        if s + 1 == len(plan.stages):
            break
        # the new points' rows follow the old ones; the points keep their rows
        values = np.concatenate([values, res.values]) if res.values.shape[0] else values
        eps = np.concatenate([eps, _new_factors(res.err, rn)])
        del res
    fb.flush()
    return subdivision_1d(pts, assemble_stage_pieces(blocks, pts.x.size - 1, net.n_neurons))


def _renamed(pts, base, ids):
    """``pts`` with the stage's column names ``base + j`` replaced by its neurons ``ids[j]``."""
    neu = pts.neuron.copy()
    mine = neu >= base
    neu[mine] = ids[neu[mine] - base]
    return pts._replace(neuron=neu)


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
