"""Forming a *copy stage* of a graph network in one pass: a stage whose
operator only picks entries of the stage before it (a max pool's windows,
a reshape or permutation), with no arithmetic.

:meth:`.graph_plan.GraphPlan._block` forms a stage by building the full
activated tensor it reads, applying the operator, adding the partial sums
of constant neurons and taking the rounding bounds row by row: a dozen
passes over arrays as wide as the stage. For a copy stage all of that is a
gather, so :func:`gather_block` does it in one pass per vertex with the same
values and the same bounds (see that method and the module docstring of
:mod:`.graph_plan` for the bounds):

- an entry that copies a crossing neuron reads its column; one that copies
  a live constant neuron of a stage in ``"uv"`` mode is recomputed from the
  coordinates on its piece (``sl (u M_0 + v M_1 + c) + ic``); any other
  entry is 0 (a constant neuron whose unit is 0, or one in ``"partial"``
  mode, whose value arrives in the partial sums);
- the partial sums are added in the order of ``parts``, as ``_block`` adds
  them, and their magnitudes are summed alongside.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .filter2d import SLACK, gamma


class GatherSpec:
    """What :func:`gather_block` needs to form stage ``s`` (a copy stage) from
    the layout ``lay`` of stage ``s - 1`` (see :func:`gather_spec`)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def gather_spec(plan, s, lay, consts):
    """A :class:`GatherSpec` for forming stage ``s`` with :func:`gather_block`,
    or None when the stage is not a copy of the stage before it."""
    from ._graph_max import _copy_sources

    st = plan.stages[s]
    op = st.operator
    if s == 0 or tuple(op.sources) != (s,) or np.any(np.asarray(op.bias) != 0.0):
        return None
    src = _copy_sources(plan, s)
    if src is None:
        return None
    info, prev = plan.info[s], plan.stages[s - 1]
    n_prev = prev.n
    qcol = np.full(n_prev, -1, np.int64)
    qcol[info.cross] = np.arange(info.cross.size)  # tensor s is read at column 0 on
    qlive = np.full(n_prev, -1, np.int64)
    M = np.zeros((0, plan.n_in))
    const = sl = ic = rnl = np.zeros(0)
    uvscale, exact_units, uvc = 0.0, True, -1
    if info.mode == "uv" and info.live.size:
        if plan.n_in != 2:
            return None
        uvu = plan._uv_units(s)
        qlive[info.live] = np.arange(info.live.size)
        M, const, sl, ic, rnl = uvu.M, uvu.const, uvu.sl, uvu.ic, uvu.rn
        from .graph_plan import _uv_scale

        uvscale = float(_uv_scale(plan.rn_uv, uvu.M, uvu.rn))
        a_sl = np.abs(sl)
        exact_units = bool(np.all(((a_sl == 0) | (a_sl == 1)) & (ic == 0))) or not (rnl > 0).any()
        uvc = int(lay.uv)
    c1, c2, cp, n_terms, parts = consts
    pcols = np.full((src.size, len(parts)), -1, np.int64)
    for p, (col, idx) in enumerate(parts):
        pcols[idx, p] = col + np.arange(idx.size)
    rn_s = np.asarray(plan.rn[s], np.float64)
    live_s = (rn_s > 0).astype(np.float64)
    return GatherSpec(
        src=np.ascontiguousarray(src, np.int64),
        qcol=qcol,
        qlive=qlive,
        uvc=uvc,
        M=np.ascontiguousarray(M, np.float64),
        const=np.ascontiguousarray(const, np.float64),
        sl=np.ascontiguousarray(sl, np.float64),
        ic=np.ascontiguousarray(ic, np.float64),
        rnl=np.ascontiguousarray(rnl, np.float64),
        uvscale=uvscale,
        exact_units=exact_units,
        pcols=pcols,
        rn_s=rn_s,
        live_s=live_s,
        consts=np.array([c1, c2, cp, gamma(n_terms), gamma(len(parts)) if parts else 0.0, gamma(2) * SLACK,
                         gamma(3), SLACK]),  # fmt: skip
    )


def form_gather(spec, values, eps, a, b):
    """Stage ``s``'s preactivations at vertices ``a:b`` and their factors
    ``eps'`` (as :meth:`.graph_plan.GraphPlan._block`)."""
    z = np.empty((b - a, spec.src.size))
    e = np.empty(b - a)
    gather_block(
        values, eps, a, b, spec.src, spec.qcol, spec.qlive, spec.uvc, spec.M, spec.const, spec.sl, spec.ic,
        spec.rnl, spec.uvscale, spec.exact_units, spec.pcols, spec.rn_s, spec.live_s, spec.consts, z, e,
    )  # fmt: skip
    return z, e


@njit(cache=True)
def gather_block(values, eps, a, b, src, qcol, qlive, uvc, M, const, sl, ic, rnl, uvscale, exact_units, pcols, rn_s,
                 live_s, consts, z, e_out):  # fmt: skip
    """Fill ``z`` (``b - a`` rows) and ``e_out`` for the copy stage (see the
    module docstring and :func:`gather_spec`)."""
    c1, c2, cp, gn, gp, g2s, g3, slack = (
        consts[0], consts[1], consts[2], consts[3], consts[4], consts[5], consts[6], consts[7],
    )  # fmt: skip
    n_live = M.shape[0]
    n_pre = src.size
    n_parts = pcols.shape[1]
    n_cross = 0
    for q in range(qcol.size):
        if qcol[q] >= 0:
            n_cross += 1
    hl = np.empty(n_live)
    for r in range(b - a):
        v = a + r
        e0 = eps[v]
        E = e0
        hmax = 1.0
        for c in range(n_cross):
            x = abs(values[v, c])
            if x > hmax:
                hmax = x
        if n_live:
            u0 = values[v, uvc]
            u1 = values[v, uvc + 1]
            rmax = 0.0
            um = max(abs(u0), abs(u1))
            if um < 1.0:
                um = 1.0
            for j in range(n_live):
                zl = (u0 * M[j, 0] + u1 * M[j, 1]) + const[j]
                h = zl * sl[j]
                h += ic[j]
                hl[j] = h
                x = abs(h)
                if x > hmax:
                    hmax = x
                if not exact_units and rnl[j] > 0:
                    t = g2s * (abs(zl) * abs(sl[j]) + abs(ic[j])) / rnl[j]
                    if t > rmax:
                        rmax = t
            t = slack * (E * uvscale + g3 * um + rmax)
            if t > E:
                E = t
        new = c1 * E + gn * c2 * hmax + cp * e0
        mmax = 0.0
        any_live = False
        for j in range(n_pre):
            q = src[j]
            x = 0.0
            if qcol[q] >= 0:
                x = values[v, qcol[q]]
            elif qlive[q] >= 0:
                x = hl[qlive[q]]
            if n_parts:
                mag = abs(x)
                for p in range(n_parts):
                    c = pcols[j, p]
                    if c >= 0:
                        y = values[v, c]
                        x += y
                        mag += abs(y)
                if live_s[j] > 0:
                    any_live = True
                    t = mag / rn_s[j]
                    if t > mmax:
                        mmax = t
            z[r, j] = x
        if n_parts and any_live:
            new += gp * mmax
        new *= slack
        e_out[r] = new if new > E else E
