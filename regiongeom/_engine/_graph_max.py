"""Stages of max units in the 2D engine's :class:`.graph_plan.GraphPlan`.

A max stage's preactivations ``z`` (``n_pre`` entries, factors ``rn`` as
any stage's) are formed block by block as an elementwise stage's are; a unit
is *constant* when one position of its window certainly wins at every vertex
(then it wins on every face: the faces are convex and the entries affine on
them), else *crossing*. The crossing units' window entries get a column each
(they are what :mod:`._mesh2d_max` cuts); the constant units' outputs (their
winning entry, computed exactly from ``z``) are pushed into their readers as
partial sums, as the constant neurons of an elementwise stage in ``partial``
mode.

Error factors: a unit's output ``max_p z_p`` is within ``max_p rn_p eps`` of
the exact maximum (the maximum is 1-Lipschitz in the largest error), so its
factor is the largest of its window's entries' (``info.rn``, per unit). An
entry whose row reads only entries known to be exactly 0 (constant neurons of
an earlier stage whose unit is 0 on their piece, e.g. ReLU off) and whose
constant is 0 is computed as exactly 0: its factor is 0, so that the ties of
such entries (a max pool over dead ReLUs) are decided without arithmetic.
"""

from __future__ import annotations

import numpy as np

from .filter2d import SLACK

# the certain winners of a max stage's units at the vertices are kept from its
# forming for its cut's first roots up to this size (int8 entries)
_KNOWN_BYTES = 256 << 20


def effective_windows(st):
    """The stage's windows with every absent entry and every repeat of an
    earlier position's index set to -1 (a repeat never wins: ties go to the
    lowest position)."""
    w = np.array(st.windows, np.int64)
    for p in range(1, w.shape[1]):
        dup = (w[:, :p] == w[:, p : p + 1]).any(axis=1)
        w[dup, p] = -1
    return w


def _same_functions(plan, s, win):
    """Mark as repeats (-1 in ``win``, in place) the window entries that are
    exact copies of neurons of the previous stage, when that stage reads only
    the slice's coordinates (``uv @ M.T + const``) and the neuron is the same
    function as an earlier position's: equal rows of ``M`` and equal constants
    (the restricted network's own coefficients) give the same unit of the same
    input, so the entries tie everywhere and the earlier position wins. (E.g.
    the zero padding around an image: conv outputs whose patch is 0 on the
    whole plane are all the channel's bias.)"""
    src = _copy_sources(plan, s)
    if src is None:
        return
    prev = plan.stages[s - 1]
    pop = prev.operator
    if prev.is_max or getattr(pop, "rest", 0) is not None or tuple(pop.sources) != (0,) or prev.activation is None:
        return
    key = np.concatenate([pop.M, pop.const[:, None]], axis=1)
    _, ident = np.unique(key, axis=0, return_inverse=True)  # one id per distinct function
    ident = ident.reshape(-1)
    fn = np.where(win >= 0, ident[src[np.maximum(win, 0)]], -1)
    for p in range(1, win.shape[1]):
        dup = ((fn[:, :p] == fn[:, p : p + 1]) & (fn[:, p : p + 1] >= 0)).any(axis=1)
        win[dup, p] = -1
        fn[dup, p] = -1


def _copy_sources(plan, s):
    """For a stage ``s`` whose operator only reshapes or permutes the previous
    stage's output: the neuron of stage ``s - 1`` that each preactivation
    entry is a copy of (else None)."""
    op = plan.stages[s].operator
    if s == 0 or tuple(op.sources) != (s,) or not _is_copy(op):
        return None
    n_src = plan.stages[s - 1].n
    idx = op.linear(np.arange(n_src, dtype=np.float64)[None, :])[0]
    if not (np.all(idx == np.round(idx)) and np.all((idx >= 0) & (idx < n_src))):
        return None
    return idx.astype(np.int64)


def _is_copy(op):
    """Whether the operator only reshapes or permutes its one source (each
    output entry is one input entry, unscaled)."""
    from .._graph_ops import Rearrange, Source, injective

    if not hasattr(op, "order") or len(op.sources) != 1:
        return False
    return all(isinstance(n, Source) or (isinstance(n, Rearrange) and injective(n)) for n in op.order)


def _exact_zero_entries(plan, s):
    """(n_pre,) bool: entries of stage ``s`` computed as exactly 0 (see the
    module docstring)."""
    op = plan.stages[s].operator
    fs = []
    for t in op.sources:
        if t == 0:
            fs.append(np.ones((1, plan.n_in)))
            continue
        info = plan.info[t]
        f = np.ones(plan.stages[t - 1].n)
        dead = info.const_piece >= 0
        dead[info.live] = False
        f[dead] = 0.0
        fs.append(f[None, :])
    mag = op.absolute(fs)[0]
    return (mag == 0.0) & (np.asarray(op.bias) == 0.0)


def form_max(plan, s, values, V, cap, eps, prev):
    """:meth:`GraphPlan.form` for a stage of max units (see the module docstring)."""
    from . import _mesh2d_max as M
    from .graph_plan import TensorInfo, _widest

    st = plan.stages[s]
    rn = plan.rn[s].copy()
    if s:
        rn[_exact_zero_entries(plan, s)] = 0.0
    plan.rn[s] = rn
    win = effective_windows(st)
    _same_functions(plan, s, win)
    consts = plan._constants(s, prev)
    step = max(1, (1 << 22) // max(_widest(st.operator), st.n * win.shape[1], 1))
    blocks = [(a, min(V, a + step)) for a in range(0, V, step)]
    keep = V * st.n_pre * 8 <= (256 << 20)
    kept, new_eps = [], np.empty(V)
    lo = np.full(st.n, 127, np.int16)
    hi = np.full(st.n, -1, np.int16)
    unsure = np.zeros(st.n, bool)
    # each vertex's certain winners, for the cut's first roots (max_roots)
    known = np.empty((V if V * st.n <= _KNOWN_BYTES else 0, st.n), np.int8)
    for a, b in blocks:
        z, e = plan._block(s, values, prev, eps, a, b, consts)
        new_eps[a:b] = e
        wout = known[a:b] if len(known) else known
        M.classify_max(np.ascontiguousarray(z), e, rn, win, lo, hi, unsure, wout)
        kept.append(z if keep else None)
        del z
    const = ~unsure & (lo == hi)
    mode, uv_src = "partial", None
    src = _copy_sources(plan, s) if s and plan.info[s].mode == "uv" and not plan.stages[s - 1].is_max else None
    if src is not None:  # "uv" mode: see the module docstring
        pinfo = plan.info[s]
        cu = np.nonzero(const)[0]
        winner = src[win[cu, lo[cu]]]
        const[cu[pinfo.const_piece[winner] < 0]] = False  # its winner changes piece: columns, never cut
        live_prev = np.zeros(plan.stages[s - 1].n, bool)
        live_prev[pinfo.live] = True
        cu = np.nonzero(const)[0]
        winner = src[win[cu, lo[cu]]]
        mode, uv_src = "uv", winner[live_prev[winner]]
        live = cu[live_prev[winner]]
    else:
        live = np.nonzero(const)[0]
    piece = np.where(const, lo, -1).astype(np.int8)
    cross = np.nonzero(~const)[0]
    wc = win[cross]
    ents = np.unique(wc[wc >= 0])
    mcols = np.where(wc >= 0, np.searchsorted(ents, np.maximum(wc, 0)), -1).astype(np.int64)
    factors = np.zeros((st.n, win.shape[1]))
    ok = win >= 0
    factors[ok] = rn[win[ok]]
    rn_units = factors.max(axis=1) * SLACK
    info = TensorInfo(cross, piece, live, mode, 1.0, rn_units, ents=ents, mcols=mcols, uv_src=uv_src)
    info.known = np.ascontiguousarray(known[:, cross])
    del known
    plan.info[s + 1] = info
    lay = plan._layout(s, info, prev)
    out = np.empty((cap, lay.cols))
    for i, (a, b) in enumerate(blocks):
        z = kept[i] if keep else plan._block(s, values, prev, eps, a, b, consts)[0]
        kept[i] = None
        out[a:b, : ents.size] = z[:, ents]
        if ents.size < lay.nc:
            out[a:b, ents.size : lay.nc] = 0.0
        if mode == "partial" and live.size:
            new_eps[a:b] = plan._push(s, z, info, lay, out, a, b, new_eps[a:b])
        del z
    plan._carry(s, prev, lay, values, out, V)
    eps[:V] = new_eps
    plan.layouts.append(lay)
    return out, lay.rn, (st.offset + cross).astype(np.int64)


def activate_max(info, values, V):
    """Replace the cut entries (columns ``0 ..``) by the crossing units'
    outputs (columns ``0 .. n_cross - 1``): the largest entry of each window."""
    mcols = info.mcols
    out = np.full((V, mcols.shape[0]), -np.inf)
    for p in range(mcols.shape[1]):
        ok = mcols[:, p] >= 0
        if ok.any():
            out[:, ok] = np.maximum(out[:, ok], values[:V, mcols[ok, p]])
    values[:V, : mcols.shape[0]] = out


def _copied_relu_entries(plan, s, info, prev_block):
    """``(zsrc, zneu, prev_cut)``: for each cut column of max stage ``s``, the
    column in the previous stage's pieces (``prev_cut``, per face at this
    stage's start) of the ReLU-like neuron it is an exact copy of, and that
    neuron's id (-1 and -1 where it is not such a copy). A copy: the stage's
    operator only reshapes or permutes the previous stage's output (each entry
    is one of its entries, unscaled); ReLU-like: one breakpoint at 0 and a zero
    piece below it, so the entry is exactly 0 on faces where the neuron is on
    that piece and at vertices on its hyperplane."""
    nc = info.ents.size
    none = (np.full(nc, -1, np.int64), np.full(nc, -1, np.int64), np.zeros((1, 1), np.int8))
    op, st = plan.stages[s].operator, plan.stages[s]
    if s == 0 or prev_block is None or tuple(op.sources) != (s,) or not hasattr(op, "order"):
        return none
    prev = plan.stages[s - 1]
    if prev.is_max or len(prev.breakpoints) != 1 or prev.breakpoints[0] != 0.0:
        return none
    if not (np.all(prev.slopes[:, 0] == 0.0) and np.all(prev.intercepts[:, 0] == 0.0)):
        return none
    idx = _copy_sources(plan, s)
    if idx is None:
        return none
    n_src = prev.n
    src = idx[info.ents]  # the previous stage's neuron of each column
    pinfo = plan.info[s]
    where = np.full(n_src, -1, np.int64)
    where[pinfo.cross] = np.arange(pinfo.cross.size)
    zsrc = where[src]
    zneu = np.where(zsrc >= 0, prev.offset + src, -1).astype(np.int64)
    cut = np.ascontiguousarray(prev_block.cut)
    if cut.shape[1] == 0:
        return none
    return zsrc, zneu, cut


def cut_max_stage(g, plan, s, info, rn, ids, exact, key0, max_regions, net, prev_block=None):
    """Cut the mesh ``g.mesh`` (a :class:`.mesh2d._Growing`) by the crossing
    max units of a stage (``info``: its :class:`.graph_plan.TensorInfo`; the
    window entries in the first columns of ``values``, factors ``rn``), then
    merge the faces of a stage-start face whose winners agree. Returns the
    face at the stage's start holding each final face; the winners are in
    ``g.mesh.pieces`` (one column per crossing unit)."""
    from . import _mesh2d_kernels as K
    from . import _mesh2d_max as M
    from .mesh2d import check_status, reset_anchors

    mcols = np.ascontiguousarray(info.mcols)
    n, k = mcols.shape
    if k > 127:
        raise ValueError(f"max units over more than 127 entries (here {k}) are not supported by the 2D engine")
    rinv = np.zeros_like(rn)
    np.divide(1.0, rn, out=rinv, where=rn > 0)
    zsrc, zneu, prev_cut = _copied_relu_entries(plan, s, info, prev_block)
    g.set(pieces=np.zeros((g.mesh.face_edge.shape[0], n), np.int8))
    start = np.arange(g.mesh.size[K.NF])
    reset_anchors(g.mesh)
    i = p = 0
    while i < n:
        nv = int(g.mesh.size[K.NV])
        if info.known.shape[0] < nv and nv * n <= _KNOWN_BYTES:  # room for the new vertices' winners
            more = np.full((max(nv, 2 * info.known.shape[0]) - info.known.shape[0], n), -2, np.int8)
            info.known = np.concatenate([info.known, more])
        roots = M.max_roots(tuple(g.mesh), mcols, rn, i, zsrc, zneu, prev_cut, start, info.known)
        g.reserve(int(roots[1].size), whole_layer=False)
        epoch = exact.new_epoch(start)
        while True:
            n_faces = int(g.mesh.size[K.NF])
            status, i, p, uncertain = M.cut_max(
                tuple(g.mesh), roots, mcols, rn, rinv, ids, i, p, max_regions, 2 * n_faces, key0, epoch, start,
                zsrc, zneu, prev_cut,
            )  # fmt: skip
            if status == K.NEED_EXACT:
                exact.decide_tie(g.mesh, uncertain, start, int(ids[i]), i, p, k, key0 + i * k + p)
                continue
            if status == K.REROOT:
                break
            if not check_status(status, i, int(ids[min(i, n - 1)]), int(g.mesh.size[K.NF]), max_regions, net):
                break
            g.grow(factor=1.5)
        start = start[g.mesh.root[: g.mesh.size[K.NF]]]
    info.known = None
    if n:
        label, status = M.merge_faces(tuple(g.mesh), int(ids.min()), int(ids.max()) + 1)
        check_status(status, n, int(ids[-1]), int(g.mesh.size[K.NF]), max_regions, net)
        merged = np.empty(int(g.mesh.size[K.NF]), np.int64)
        merged[label] = start
        start = merged
    return start
