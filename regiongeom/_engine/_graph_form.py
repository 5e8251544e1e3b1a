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

A stage reading one tensor in ``"uv"`` mode through a sparse operator (a
convolution after a max pool over a stage of the coordinates: most of its
input is constant units recomputed from ``(u, v)``, a few hundred entries
have columns) is formed by :func:`sparse_block` without building that
tensor: the constant units are affine in the coordinates, so their part of
the stage is ``u G_0 + v G_1 + g``, three vectors computed once with the
operator (``G_k = A (sl * M_k)``, ``g = A (sl * c + ic) + b``), and the
crossing entries ``x`` add ``A_x x`` (the operator's columns for them,
sparse). Rounding (``N`` the operator's :func:`.graph_plan._n_terms`, ``|A|``
its absolute value as ``op.absolute`` applies it, ``f`` the sources'
factors, ``m = max(|u|, |v|, 1)``): the operator computes ``G_k``, ``g`` and
``A_x``'s entries within ``gamma_N`` of ``|A|`` times the magnitudes, their
inputs ``sl * M_k`` and ``sl * c + ic`` are within ``gamma_2``, and the sum
at a vertex of the ``<= N + 1`` terms rounds within ``gamma_{N+1}`` of their
magnitudes, so with ``|sl| (|M_0| + |M_1| + |c|) <= lip rn = f`` on the
constant units and the coordinates within ``rn_uv eps`` (the ``uvscale`` of
``_tensor``), the error at column ``j`` over ``rn'_j`` is at most::

    c1 max(eps, uvscale eps + gamma_{2N+8} m) + gamma_{2N+8} c2 (max|x| + max|ic| + 1)

(``c1``, ``c2`` of :meth:`.graph_plan.GraphPlan._constants`), the bound
:func:`sparse_block` takes, rounded up by ``SLACK`` as everywhere.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .filter2d import SLACK, gamma


class _Spec:
    def __init__(self, form, **kw):
        self.form = form
        self.__dict__.update(kw)


# the sparse path is taken when the operator's columns for the crossing entries
# hold at most this fraction of nonzeros (else the operator's own BLAS is faster)
_SPARSE_DENSITY = 0.25
# ... and at most this many of them
_SPARSE_NNZ = 1 << 24
# the dense path holds the operator's columns for the crossing entries up to this size
_DENSE_ENTRIES = 1 << 22


def stage_spec(plan, s, lay, consts):
    """How to form stage ``s`` from the layout ``lay`` of stage ``s - 1`` in
    one pass (an object whose ``form(values, eps, a, b)`` returns ``(z,
    eps')`` as :meth:`.graph_plan.GraphPlan._block`), or None."""
    for make in (gather_spec, sparse_spec, dense_spec):
        spec = make(plan, s, lay, consts)
        if spec is not None:
            return spec
    return None


def gather_spec(plan, s, lay, consts):
    """A spec for forming stage ``s`` with :func:`gather_block`, or None when
    the stage is not a copy of the stage before it."""
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
    return _Spec(
        form_gather,
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


def sparse_spec(plan, s, lay, consts):
    """A spec for forming stage ``s`` with :func:`sparse_block` (see the module
    docstring), or None when the stage does not read exactly one tensor in
    ``"uv"`` mode through a sparse operator."""
    from .graph_plan import _n_terms, _uv_scale

    op = plan.stages[s].operator
    if plan.n_in != 2 or len(op.sources) != 1 or op.sources[0] == 0:
        return None
    t = op.sources[0]
    info = plan.info[t]
    c1, c2, cp, n_terms, parts = consts
    if info.mode != "uv" or not info.live.size or parts:
        return None
    n_src, nc = plan.stages[t - 1].n, info.cross.size
    if n_src != op.n_in:
        return None
    # the operator's columns for the crossing entries, sparse (CSR by entry)
    indptr, indices, data = [np.zeros(1, np.int64)], [], []
    step = max(1, (1 << 22) // max(n_src, op.n_out, 1))
    total = 0
    for i0 in range(0, nc, step):
        i1 = min(nc, i0 + step)
        E = np.zeros((i1 - i0, n_src))
        E[np.arange(i1 - i0), info.cross[i0:i1]] = 1.0
        Y = op.linear([E])
        r, c = np.nonzero(Y)
        total += r.size
        if total > min(_SPARSE_NNZ, _SPARSE_DENSITY * max(nc, 1) * op.n_out):
            return None
        indptr.append(indptr[-1][-1] + np.cumsum(np.bincount(r, minlength=i1 - i0)))
        indices.append(c)
        data.append(Y[r, c])
    uvu = plan._uv_units(t)
    H = np.zeros((3, n_src))
    H[0, info.live] = uvu.sl * uvu.M[:, 0]
    H[1, info.live] = uvu.sl * uvu.M[:, 1]
    H[2, info.live] = uvu.sl * uvu.const + uvu.ic
    G = op.linear([H[:2]])
    g = op([H[2:]])[0]
    big = gamma(2 * n_terms + 8)
    return _Spec(
        form_sparse,
        xc=0 if t == s else int(lay.carried[t]),
        nc=nc,
        uvc=int(lay.uv),
        indptr=np.concatenate(indptr).astype(np.int64),
        indices=np.concatenate(indices).astype(np.int64) if indices else np.zeros(0, np.int64),
        data=np.concatenate(data) if data else np.zeros(0),
        G=np.ascontiguousarray(G),
        g=np.ascontiguousarray(g),
        consts=np.array([c1, c2, big, float(_uv_scale(plan.rn_uv, uvu.M, uvu.rn)),
                         float(np.abs(uvu.ic).max(initial=0.0)), SLACK]),  # fmt: skip
    )


def form_sparse(spec, values, eps, a, b):
    """Stage ``s``'s preactivations at vertices ``a:b`` and their factors
    ``eps'`` (as :meth:`.graph_plan.GraphPlan._block`), by :func:`sparse_block`."""
    z = np.empty((b - a, spec.g.size))
    e = np.empty(b - a)
    sparse_block(values, eps, a, b, spec.xc, spec.nc, spec.uvc, spec.indptr, spec.indices, spec.data, spec.G, spec.g,
                 spec.consts, z, e)  # fmt: skip
    return z, e


@njit(cache=True)
def sparse_block(values, eps, a, b, xc, nc, uvc, indptr, indices, data, G, g, consts, z, e_out):
    """Fill ``z`` (``b - a`` rows) and ``e_out``: ``u G_0 + v G_1 + g`` plus
    the crossing entries' columns (see the module docstring)."""
    c1, c2, big, uvscale, icmax, slack = consts[0], consts[1], consts[2], consts[3], consts[4], consts[5]
    n = g.size
    for r in range(b - a):
        v = a + r
        u0 = values[v, uvc]
        u1 = values[v, uvc + 1]
        for j in range(n):
            z[r, j] = (u0 * G[0, j] + u1 * G[1, j]) + g[j]
        hx = 0.0
        for i in range(nc):
            x = values[v, xc + i]
            ax = abs(x)
            if ax > hx:
                hx = ax
            if x != 0.0:
                for k in range(indptr[i], indptr[i + 1]):
                    z[r, indices[k]] += data[k] * x
        m = max(abs(u0), abs(u1))
        if m < 1.0:
            m = 1.0
        e0 = eps[v]
        E = slack * (e0 * uvscale + big * m)
        if E < e0:
            E = e0
        new = c1 * E + big * c2 * (hx + icmax + 1.0)
        new *= slack
        e_out[r] = new if new > E else E


def dense_spec(plan, s, lay, consts):
    """A spec for forming stage ``s`` with :func:`dense_block`, or None when it
    does not read exactly one tensor whose constant units are all in the
    partial sums (``"partial"`` mode, or no live ones), or its operator's
    columns for the crossing entries are too large."""
    from .graph_plan import _n_terms

    op = plan.stages[s].operator
    if len(op.sources) != 1 or op.sources[0] == 0:
        return None
    t = op.sources[0]
    info = plan.info[t]
    if (info.mode == "uv" and info.live.size) or plan.stages[t - 1].n != op.n_in:
        return None
    nc = info.cross.size
    if nc * op.n_out > _DENSE_ENTRIES:
        return None
    E = np.zeros((nc, op.n_in))
    E[np.arange(nc), info.cross] = 1.0
    AT = np.ascontiguousarray(op.linear([E]))  # (nc, n_out)
    if np.count_nonzero(AT) <= _SPARSE_DENSITY * AT.size:  # a convolution: its own BLAS is faster
        return None
    c1, c2, cp, n_terms, parts = consts
    pcols = np.full((op.n_out, len(parts)), -1, np.int64)
    for p, (col, idx) in enumerate(parts):
        pcols[idx, p] = col + np.arange(idx.size)
    rn_s = np.asarray(plan.rn[s], np.float64)
    return _Spec(
        form_dense,
        xc=0 if t == s else int(lay.carried[t]),
        AT=AT,
        bias=np.ascontiguousarray(op.bias, np.float64),
        pcols=pcols,
        rn_s=rn_s,
        live_s=(rn_s > 0).astype(np.float64),
        consts=np.array([c1, gamma(2 * n_terms + 8), c2, cp, gamma(len(parts)) if parts else 0.0, SLACK]),
    )


def form_dense(spec, values, eps, a, b):
    """Stage ``s``'s preactivations at vertices ``a:b`` and their factors
    ``eps'`` (as :meth:`.graph_plan.GraphPlan._block`), by :func:`dense_block`."""
    z = np.empty((b - a, spec.bias.size))
    e = np.empty(b - a)
    dense_block(
        values, eps, a, b, spec.xc, spec.AT, spec.bias, spec.pcols, spec.rn_s, spec.live_s, spec.consts, z, e
    )
    return z, e


@njit(cache=True)
def dense_block(values, eps, a, b, xc, AT, bias, pcols, rn_s, live_s, consts, z, e_out):
    """Fill ``z`` (``b - a`` rows) and ``e_out``: the bias plus the crossing
    entries' columns ``AT`` (computed by the operator from unit vectors, so
    within ``gamma_N |A|`` of the exact ones, and summed within ``gamma_{N+1}``:
    the ``gamma_N`` of the general path's ``c2`` term becomes
    ``gamma_{2N+8}``), then the partial sums, added and bounded as
    :meth:`.graph_plan.GraphPlan._block` does."""
    c1, big, c2, cp, gp, slack = consts[0], consts[1], consts[2], consts[3], consts[4], consts[5]
    nc, n = AT.shape
    n_parts = pcols.shape[1]
    mag = np.empty(n)
    for r in range(b - a):
        v = a + r
        zr = z[r]
        for j in range(n):
            zr[j] = bias[j]
        hx = 1.0
        for i in range(nc):
            x = values[v, xc + i]
            if abs(x) > hx:
                hx = abs(x)
            if x != 0.0:
                row = AT[i]
                for j in range(n):
                    zr[j] += row[j] * x
        e0 = eps[v]
        new = c1 * e0 + big * c2 * hx + cp * e0
        if n_parts:
            mmax = 0.0
            any_live = False
            for j in range(n):
                x, m = _add_parts(values, v, pcols, j, zr[j])
                zr[j] = x
                if live_s[j] > 0:
                    any_live = True
                    t = m / rn_s[j]
                    if t > mmax:
                        mmax = t
            if any_live:
                new += gp * mmax
        new *= slack
        e_out[r] = new if new > e0 else e0


@njit(cache=True, inline="always")
def _add_parts(values, v, pcols, j, x):
    """Entry ``j``'s value ``x`` plus its partial sums at vertex ``v``, added in
    the order of ``pcols[j]`` (-1: none), and ``|x| + sum |partial|``."""
    mag = abs(x)
    for p in range(pcols.shape[1]):
        c = pcols[j, p]
        if c >= 0:
            y = values[v, c]
            x += y
            mag += abs(y)
    return x, mag


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
                x, mag = _add_parts(values, v, pcols, j, x)
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


@njit(cache=True)
def classify_block(z, e, rn, bps, lo, hi, unsure):
    """Lower ``lo``/raise ``hi`` to each neuron's lowest/highest certain piece
    over a block of vertices (preactivations ``z``, bounds ``e``, factors
    ``rn``, breakpoints ``bps``), and set ``unsure`` where some vertex's piece
    is uncertain (in place; :func:`.graph_plan._classify` in one pass)."""
    nb = bps.size
    for v in range(z.shape[0]):
        ev = e[v]
        for j in range(z.shape[1]):
            thr = ev * rn[j]
            x = z[v, j]
            piece = 0
            for t in range(nb):
                d = x - bps[t]
                if d > thr:
                    piece += 1
                elif not d < -thr:
                    unsure[j] = True
            if piece < lo[j]:
                lo[j] = piece
            if piece > hi[j]:
                hi[j] = piece


def classify(z, e, rn, bps, lo, hi, unsure):
    """Update each neuron's lowest and highest certain piece over the
    vertices of a block, and whether some vertex's piece is uncertain."""
    if len(bps) < 127 and z.flags.c_contiguous:
        classify_block(z, e, rn, np.ascontiguousarray(bps, np.float64), lo, hi, unsure)
        return
    piece = np.zeros(z.shape, np.int16)
    thr = e[:, None] * rn[None, :]
    for t in bps:
        d = z - t
        piece += d > thr
        unsure |= ~((d > thr) | (d < -thr)).all(axis=0)
    np.minimum(lo, piece.min(axis=0, initial=127), out=lo)
    np.maximum(hi, piece.max(axis=0, initial=-1), out=hi)
