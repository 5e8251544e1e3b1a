"""Graph networks in the engine: what lives at the vertices, stage by stage.

A :class:`~regiongeom.graph.GraphNetwork` is cut one unit stage at a time,
as a :class:`~regiongeom.network.Network` is cut one layer at a time. Only
the neurons that may change piece inside the domain are cut, and only they
get a column at the vertices; the others are *constant*: on one piece on the
whole domain (decided rigorously when the stage is formed), so their unit is
one affine map there and they are handled without a column:

- a constant neuron of a stage that reads only the slice's coordinates (the
  first stage of a restricted network) is an affine function of them: its
  value is recomputed from the carried coordinates ``(u, v)`` when a later
  stage reads it;
- the constant neurons of any other stage are summed, when the stage is
  formed, into a *partial* preactivation of every later stage that reads
  them (``op.linear`` of their activated values): one column per neuron of
  that reader, affine on every face, carried until the reader is formed;
- a constant neuron whose unit is constant on its piece (ReLU off) is 0
  there and is simply left out.

So while stage ``s`` is cut, a vertex holds: the stage's crossing
preactivations (the columns that are cut), the coordinates ``(u, v)``, the
activated crossing columns of older tensors that a later stage still reads
(residual streams), and the partial preactivations of later stages. Every
column is affine on every face, so new vertices interpolate all of them.
Memory grows with the vertices times the columns that change somewhere in
the domain (plus the widths of the partial sums); a stage's full width is
only ever held for a block of vertices (:data:`_BLOCK_ENTRIES`) while it is
formed, or, to save recomputing an operator, for all vertices when it fits
:data:`_KEEP_BYTES`.

Rounding-error bounds
---------------------
The engine keeps one factor ``eps[v]`` per vertex and one ``rn[c]`` per
column: the float value in column ``c`` is within ``rn[c] * eps[v]`` of the
exact value at the exact vertex (``eps`` never decreases, so carried
columns keep their factors). Preactivations of a stage have ``rn = (row_l1 +
|b|)`` of its operator (0 only for a zero row with a zero constant, computed
as exactly 0), the coordinates ``1``, an activated tensor ``max(L, 1) rn``
(``L`` its largest slope; the units' own rounding ``gamma_2 (|s z| + |c|)``,
0 for ReLU-like units, is first added to ``eps`` relative to ``rn``).
A stage's operator ``A`` applied to sources with error factors ``f`` (0 on
entries that are exactly 0) at a base ``E`` rounds within ``gamma_N (|A|
|h| + |b|)``, ``N`` the number of terms of the longest chain of sums in the
operator (:func:`_n_terms`; a composition of primitives is bounded primitive
by primitive), and ``|A| |h| <= max|h| (|A| 1)``; the partial sums ``P_p``
added to it (factors ``rp``) and their additions (``gamma_np`` times the
magnitudes) are bounded the same way, so::

    eps' = max(c1 E + gamma_N c2 max(max|h|, 1) + cp eps + gamma_np m, E)

with ``c1 = max_j (|A| f)_j / rn'_j``, ``c2 = max_j ((|A| 1)_j + |b_j|) /
rn'_j``, ``cp = max_j (sum_p rp_j) / rn'_j``, ``m = max_j (|A h + b|_j +
sum_p |P_p|_j) / rn'_j``. A constant neuron recomputed from ``(u, v)``
(``z = u M_0 + v M_1 + c``) has error at most ``rn (eps + gamma_3 max(|u|,
|v|, 1))``, which sets the base ``E`` of the stage reading it. A partial
sum ``A_c h`` of constant neurons (factors ``g``) has error at most
``(|A_c| g) eps + gamma_Nc (|A_c| 1) max|h|``, hence its factor ``rp =
|A_c| (g + 1)`` once ``eps >= gamma_Nc max|h|``. Each bound is rounded up
by ``1 + 2**-40`` (and by ``1 + 4 u n`` where ``n`` terms were summed).

Balanced spreads
----------------
A column's factor only has to bound its error: ``|value - exact| <= rn[c]
eps[v]`` stays true when ``rn[c]`` is raised (at this vertex and, as
``eps`` never decreases, at every later one; ``eps`` already computed from
the smaller factors stays valid). So the factors can be chosen for the
growth of ``eps`` rather than taken from the operator alone. That growth
comes from the interpolation at new vertices (:mod:`.filter2d`): cutting
column ``j`` on an edge gives ``ea ~ rn[j] e / |z_w - z_u|_j`` and ``eps[m]
~ e (1 + 2 ea) + max_r ea |z_w - z_u|_r / rn[r]``, so each interpolation
multiplies ``eps`` by about ``1 +`` the largest ratio, over the columns
``r``, of ``|dz_r| / rn[r]`` (a column's change along the edge over its
factor) to ``|dz_j| / rn[j]``. With ``rn = |A| 1 + |b|`` alone these
ratios are far from 1 in a residual network: a stream made in the first
stage (factors ``|M_j|_1 + |c_j|`` in the slice's coordinates, which vary by
up to ``|M_j|_1`` per unit) and the coordinates (factor :func:`_uv_factor`)
are carried through a stage whose preactivations sum 64 terms that mostly
cancel (they vary by ~1/20 of their factor across the domain). Measured on the
residual MLP of ``benchmarks/bench_planes.py`` (job RES-784), the median
vertex's ``eps`` grew ~350 times over one stage's cut and reached 1e-3 to
1e-1 on the last stage, while the true errors there (measured exactly at
the undecided vertices) were below 1e-15: 6,346 of 181,215 signs (3.5%)
went to the exact fallback (with the carried columns alone rescaled, the
470 left were all at least 2e-7 from their breakpoints: no coincidences).

So when a stage's values are kept (:data:`_KEEP_BYTES`), after its pieces
are classified (with the operator's factors), with ``S_c = spread_c /
rn[c]`` (``spread_c`` the range of column ``c`` over the vertices, a proxy
for its change along any edge) and ``T`` the median of ``S`` over the
stage's crossing columns:

- each crossing column's factor is raised to ``max(rn[c], spread_c / T)``
  (its ``S`` at most ``T``);
- tensor ``s`` (the previous stage's activated output), if carried past
  the stage, has its factors multiplied by ``scale = max(1, S / (K max
  S_cross))`` (``K`` = :data:`_SPREAD`), and so do its later uses (the carried
  factors, the readers' ``f``); likewise ``rn_uv`` for the coordinates
  while they are carried.

Only raises, so every bound stays proven; the choice trades the thresholds
of a few widely varying columns (and the readers' ``c1``) against the
growth at interpolation. On RES-784 it leaves 23 exact decisions of 64,182
(the nearest still 2e-7 from its breakpoint against true errors below
1e-15: what remains is the compounding of worst-case bounds, not
coincidences); regions, patterns and areas are the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ._graph_form import classify as _classify, stage_spec
from .filter2d import SLACK, U, gamma

# entries of a stage's full-width values held at once while it is formed
_BLOCK_ENTRIES = 1 << 22
# a carried column's spread over its factor may exceed the largest of the crossing
# columns' by this factor before its factor is raised ("Balanced spreads"; 1 gave the
# fewest exact decisions on RES-784 of bench_planes.py among 0.25, 0.5, 1, 2, 4, 8)
_SPREAD = 1.0
# a stage's full-width values are kept for all vertices (not recomputed) up to this size
_KEEP_BYTES = 256 << 20


@dataclass
class TensorInfo:
    """How the activated output of one stage is held at the vertices."""

    cross: np.ndarray  # indices of its crossing neurons (they have columns)
    const_piece: np.ndarray  # (n,) int8 piece of each constant neuron, -1 if crossing
    live: np.ndarray  # indices of constant neurons whose unit is not 0 on their piece
    mode: str  # "uv": constants recomputed from (u, v); "partial": pushed into readers
    lip: float  # max(L, 1), L the largest slope of the stage's units
    rn: np.ndarray  # (n,) preactivation factors of the stage (max units: of their outputs)
    scale: float = 1.0  # >= 1: the crossing entries' factors are ``scale * lip * rn``
    ents: np.ndarray = None  # max units: the preactivation entries that get a column (cut)
    mcols: np.ndarray = None  # max units: (n_cross, k) column of each window entry, -1 none
    uv_src: np.ndarray = None  # max units in "uv" mode: the winning neuron of the stage before, per live unit
    uv_units: "UVUnits" = None  # (cache of GraphPlan._uv_units)
    known: np.ndarray = None  # max units, until cut: (V, n_cross) certain winner per vertex at forming, -1 none


@dataclass
class UVUnits:
    """The live constant units of a tensor in "uv" mode, as affine maps of the
    coordinates on their pieces: ``h = sl (uv @ M.T + const) + ic``, the
    preactivations with factors ``rn`` (the units' outputs: ``lip * rn``)."""

    M: np.ndarray
    const: np.ndarray
    sl: np.ndarray
    ic: np.ndarray
    rn: np.ndarray
    lip: float


@dataclass
class Layout:
    """The columns of ``values`` while stage ``s`` is cut."""

    nc: int  # crossing preactivations of the stage (cut), columns 0..nc-1
    uv: int  # first column of the coordinates (None: no longer needed)
    carried: dict = field(default_factory=dict)  # tensor -> first column of its crossing entries
    partial: dict = field(default_factory=dict)  # (tensor, reader stage) -> first column
    pidx: dict = field(default_factory=dict)  # (tensor, reader stage) -> the reader's entries with a column
    rp: dict = field(default_factory=dict)  # (tensor, reader stage) -> factors of its columns
    cols: int = 0
    rn: np.ndarray = None


class GraphPlan:
    """Forms each stage's columns at the vertices of the current mesh."""

    def __init__(self, gnet):
        self.net = gnet
        self.stages = gnet.stages
        self.n_in = int(gnet.n_in)
        self.readers = {t: [] for t in range(len(self.stages) + 1)}
        for s, st in enumerate(self.stages):
            for t in st.operator.sources:
                self.readers[t].append(s)
        self.rn = []
        for st in self.stages:
            op = st.operator
            # a row of zeros still rounds its constant on the way through the
            # operator's primitives, so only a zero row with a zero constant
            # (computed as exactly 0) gets the factor 0
            self.rn.append((np.asarray(op.row_l1, np.float64) + np.abs(op.bias)) * SLACK)
        self.info = {}  # tensor -> TensorInfo
        self.layouts = []
        # the factor of the coordinates' columns (set when stage 0 is formed)
        self.rn_uv = 1.0
        self._specs = {}  # stage -> (layout, constants, spec or None): :meth:`_gather_spec`
        self._copied = {}  # (stage, reader) -> :meth:`_copied_live`

    # -- the sources of a stage, a block of vertices at a time ---------------
    def _uv(self, values, lay, a, b):
        return values[a:b, lay.uv : lay.uv + self.n_in]

    def _tensor(self, t, s, values, lay, a, b, E):
        """The activated tensor ``t`` at vertices ``a:b`` while forming stage
        ``s`` (``values`` in the layout ``lay`` of stage ``s - 1``), its
        entries' error factors, and the base they hold against (>= E)."""
        if t == 0:
            return self._uv(values, lay, a, b), np.full(self.n_in, self.rn_uv), E
        info, st = self.info[t], self.stages[t - 1]
        h = np.zeros((b - a, st.n))
        col = 0 if t == s else lay.carried[t]
        h[:, info.cross] = values[a:b, col : col + info.cross.size]
        f = np.zeros(st.n)
        f[info.cross] = info.scale * info.lip * info.rn[info.cross]
        if info.mode == "uv" and info.live.size:
            uvu = self._uv_units(t)
            uv = self._uv(values, lay, a, b)
            z = uv @ uvu.M.T + uvu.const
            hl, r = _units_affine(uvu.sl, uvu.ic, uvu.rn, z)
            h[:, info.live] = hl
            f[info.live] = uvu.lip * uvu.rn
            base = E * _uv_scale(self.rn_uv, uvu.M, uvu.rn)
            E = np.maximum(E, SLACK * (base + gamma(3) * np.maximum(np.abs(uv).max(axis=1), 1.0) + r))
        return h, f, E

    def _block(self, s, values, lay, eps, a, b, consts):
        """Stage ``s``'s preactivations at vertices ``a:b`` and their factors ``eps'``."""
        spec = self._gather_spec(s, lay, consts)
        if spec is not None:  # one pass (:mod:`._graph_form`)
            return spec.form(spec, values, eps, a, b)
        op = self.stages[s].operator
        E = eps[a:b].copy()
        hs, hmax = [], np.ones(b - a)
        for t in op.sources:
            h, _f, E = self._tensor(t, s, values, lay, a, b, E)
            hs.append(h)
            if h.shape[1]:
                np.maximum(hmax, np.abs(h).max(axis=1), out=hmax)
        z = op(hs)
        del hs
        c1, c2, cp, n_terms, parts = consts
        new = c1 * E + gamma(n_terms) * c2 * hmax + cp * eps[a:b]
        if parts:
            mag = np.abs(z)
            for col, idx in parts:
                p = values[a:b, col : col + idx.size]
                z[:, idx] += p
                mag[:, idx] += np.abs(p)
            live = self.rn[s] > 0
            if live.any():
                new += gamma(len(parts)) * (mag[:, live] / self.rn[s][live]).max(axis=1)
        return z, np.maximum(new * SLACK, E)

    def _gather_spec(self, s, lay, consts):
        """How stage ``s`` is formed from layout ``lay`` with ``consts`` in one
        pass (:func:`._graph_form.stage_spec`; None: by :meth:`_block`)."""
        got = self._specs.get(s)
        if got is None or got[0] is not lay or got[1] is not consts:
            got = self._specs[s] = (lay, consts, stage_spec(self, s, lay, consts))
        return got[2]

    def _constants(self, s, lay):
        """``(c1, c2, cp, N, parts)`` of forming stage ``s`` (see the module docstring)."""
        op = self.stages[s].operator
        rn = self.rn[s]
        live = rn > 0
        fs = []
        for t in op.sources:
            if t == 0:
                fs.append(np.full((1, self.n_in), self.rn_uv))
                continue
            info = self.info[t]
            f = np.zeros(self.stages[t - 1].n)
            f[info.cross] = info.scale * info.lip * info.rn[info.cross]
            if info.mode == "uv" and info.live.size:
                uvu = self._uv_units(t)
                f[info.live] = uvu.lip * uvu.rn
            fs.append(f[None, :])
        parts = [(c, lay.rp[key], lay.pidx[key]) for key, c in lay.partial.items() if key[1] == s] if lay else []
        if not live.any():
            return 0.0, 0.0, 0.0, 1, [(c, idx) for c, _, idx in parts]
        grow = 1.0 + 4 * U * max(op.n_in, 1)
        prop = op.absolute(fs)[0]
        ones = op.absolute([np.ones_like(f) for f in fs], with_bias=True)[0]
        c1 = float((prop[live] / rn[live]).max()) * grow
        c2 = float((ones[live] / rn[live]).max()) * grow
        cp = 0.0
        if parts:
            rp = np.sum([p for _c, p, _i in parts], axis=0) * (1.0 + 2 * len(parts) * U)
            cp = float((rp[live] / rn[live]).max()) * grow
        return c1, c2, cp, _n_terms(op), [(c, idx) for c, _, idx in parts]

    def _uv_units(self, t):
        """The :class:`UVUnits` of tensor ``t`` (in "uv" mode): its stage's
        own live constant neurons, or, for a stage of max units reading such a
        stage (:func:`._graph_max.form_max`), the winners of its live constant
        units, neurons of the stage before."""
        info = self.info[t]
        if info.uv_units is None:
            if info.uv_src is None:
                st, src, own = self.stages[t - 1], info.live, info
            else:
                st, src, own = self.stages[t - 2], info.uv_src, self.info[t - 1]
            k = own.const_piece[src].astype(np.int64)
            op = st.operator
            info.uv_units = UVUnits(
                op.M[src], op.const[src], st.slopes[src, k], st.intercepts[src, k], own.rn[src], own.lip
            )
        return info.uv_units

    # -- forming a stage ------------------------------------------------------
    def form(self, s, values, V, cap, eps):
        """The columns of stage ``s`` (a new ``(cap, cols)`` array) at the ``V``
        vertices whose values are ``values`` (the layout of stage ``s - 1``,
        its crossing columns not yet activated; for ``s == 0`` the ``(V,
        n_in)`` coordinates, exact) and ``eps[:V]`` (updated in place).
        Returns ``(values, rn, ids)``: ``ids`` the neurons of the cut columns."""
        prev = self.layouts[s - 1] if s else Layout(nc=0, uv=0, cols=self.n_in)
        if s:
            self._activate(s - 1, values, V, eps)
        st = self.stages[s]
        if st.is_max:
            from ._graph_max import form_max

            return form_max(self, s, values, V, cap, eps, prev)
        rn = self.rn[s]
        consts = self._constants(s, prev)
        step = max(1, _BLOCK_ENTRIES // max(_widest(st.operator), st.n, 1))
        blocks = [(a, min(V, a + step)) for a in range(0, V, step)]
        keep = V * st.n * 8 <= _KEEP_BYTES
        kept, new_eps = [], np.empty(V)
        lo = np.full(st.n, 127, np.int16)
        hi = np.full(st.n, -1, np.int16)
        unsure = np.zeros(st.n, bool)
        for a, b in blocks:
            z, e = self._block(s, values, prev, eps, a, b, consts)
            new_eps[a:b] = e
            _classify(z, e, rn, st.breakpoints, lo, hi, unsure)
            kept.append(z if keep else None)
            del z
        const = ~unsure & (lo == hi)
        piece = np.where(const, lo, -1).astype(np.int8)
        cross = np.nonzero(~const)[0]
        idx = np.arange(st.n)
        sl = st.slopes[idx, np.maximum(piece, 0)]
        ic = st.intercepts[idx, np.maximum(piece, 0)]
        live = np.nonzero(const & ((sl != 0) | (ic != 0)))[0]
        lip = max(float(np.abs(st.slopes).max()) if st.slopes.size else 1.0, 1.0)
        op = st.operator
        pure = getattr(op, "rest", 0) is None and tuple(op.sources) == (0,)
        info = TensorInfo(cross, piece, live, "uv" if pure else "partial", lip, rn)
        self.info[s + 1] = info
        if keep and cross.size:
            rn = self._spread_out(s, values, V, prev, kept, cross, rn)
        lay = self._layout(s, info, prev)
        out = np.empty((cap, lay.cols))
        for i, (a, b) in enumerate(blocks):
            z = kept[i] if keep else self._block(s, values, prev, eps, a, b, consts)[0]
            kept[i] = None
            out[a:b, : cross.size] = z[:, cross]
            if info.mode == "partial" and live.size:
                new_eps[a:b] = self._push(s, z, info, lay, out, a, b, new_eps[a:b])
            del z
        self._carry(s, prev, lay, values, out, V)
        eps[:V] = new_eps
        self.layouts.append(lay)
        return out, lay.rn, (st.offset + cross).astype(np.int64)

    def _spread_out(self, s, values, V, prev, kept, cross, rn):
        """Raise factors so that no column's spread over the vertices,
        relative to its factor, exceeds the median of the stage's crossing
        columns (:data:`_SPREAD` times it for the carried ones); see
        "Balanced spreads" in the module docstring. Returns the stage's
        factors (a new array if raised). ``kept``: the stage's values."""
        ok = rn[cross] > 0
        if not ok.any():
            return rn
        zmin = np.min([z[:, cross].min(axis=0) for z in kept], axis=0)
        zmax = np.max([z[:, cross].max(axis=0) for z in kept], axis=0)
        spread = zmax - zmin
        target = float(np.median(spread[ok] / rn[cross][ok]))
        if not target > 0:  # 0 or nan
            return rn
        rn = rn.copy()
        rn[cross[ok]] = np.maximum(rn[cross[ok]], spread[ok] / target)
        self.rn[s] = self.info[s + 1].rn = rn
        theirs = _SPREAD * float((spread[ok] / rn[cross][ok]).max())
        info = self.info.get(s)  # tensor s, carried past stage s?
        if s and info.cross.size and any(r > s for r in self.readers[s]):
            f = info.scale * info.lip * info.rn[info.cross]
            h = values[:V, : info.cross.size]
            ok = f > 0
            if ok.any():
                mine = float(((h.max(axis=0) - h.min(axis=0))[ok] / f[ok]).max())
                if mine > theirs:
                    info.scale *= mine / theirs
        if s and prev.uv is not None and self._uv_needed(s):
            uv = self._uv(values, prev, 0, V)
            mine = float((uv.max(axis=0) - uv.min(axis=0)).max()) / self.rn_uv
            if mine > theirs:
                self.rn_uv *= mine / theirs
        return rn

    def _uv_needed(self, s):
        """Whether a stage after ``s`` reads the coordinates or recomputes from them."""
        uv_modes = [0] + [t for t in range(1, s + 2) if self.info[t].mode == "uv"]
        return any(r > s for t in uv_modes for r in self.readers[t])

    def _activate(self, s, values, V, eps):
        """Apply stage ``s``'s units to its crossing columns in place; add
        their rounding to ``eps``."""
        info, st = self.info[s + 1], self.stages[s]
        nc = info.cross.size
        if not nc:
            return
        if st.is_max:
            from ._graph_max import activate_max

            activate_max(info, values, V)
            return
        sub = replace(st, slopes=st.slopes[info.cross], intercepts=st.intercepts[info.cross], shape=(nc,))
        z = values[:V, :nc]
        sl, ic = np.abs(sub.slopes), np.abs(sub.intercepts)
        exact = bool(np.all(((sl == 0) | (sl == 1)) & ((ic == 0) | (sl == 0))))
        rn = info.rn[info.cross]
        if not exact and (rn > 0).any():
            live = rn > 0
            # gamma_2 (|s| |z| + |c|) <= gamma_2 (L |z| + max|c|), per column over rn
            r = gamma(2) * (float(sl.max()) * np.abs(z[:, live]) + float(ic.max())) / rn[live]
            eps[:V] = SLACK * (eps[:V] + r.max(axis=1))
        values[:V, :nc] = sub.apply(z)

    def _layout(self, s, info, prev):
        """The columns while stage ``s`` is cut, with their factors."""
        lay = Layout(nc=info.cross.size, uv=None)
        if s == 0 and info.mode == "uv" and info.live.size:
            self.rn_uv = _uv_factor(self.stages[0].operator, info)
        rn = [self.rn[s][info.cross]]
        if info.ents is not None:  # max units: the window entries are cut, the outputs replace them
            lay.nc = max(info.ents.size, info.cross.size)
            rn = [np.zeros(lay.nc)]
            rn[0][: info.ents.size] = self.rn[s][info.ents]
        col = lay.nc
        # the coordinates, while a later stage reads them or recomputes from them
        if self._uv_needed(s):
            lay.uv = col
            rn.append(np.full(self.n_in, self.rn_uv))
            col += self.n_in
        for t in range(1, s + 2):
            if t == s + 1 or not any(r > s for r in self.readers[t]):
                continue
            ti = self.info[t]
            lay.carried[t] = col
            rn.append(ti.scale * ti.lip * ti.rn[ti.cross])
            col += ti.cross.size
        for t, r in prev.partial:
            if r > s:
                idx = prev.pidx[(t, r)]
                lay.partial[(t, r)], lay.pidx[(t, r)], lay.rp[(t, r)] = col, idx, prev.rp[(t, r)]
                rn.append(prev.rp[(t, r)][idx])
                col += idx.size
        if info.mode == "partial" and info.live.size:
            g = np.zeros(self.stages[s].n)
            g[info.live] = info.lip * info.rn[info.live] + 1.0
            for r in self.readers[s + 1]:
                op = self.stages[r].operator
                fs = [np.zeros((1, n)) for n in op.source_sizes]
                fs[op.sources.index(s + 1)] = g[None, :]
                rp = op.absolute(fs)[0] * ((1.0 + 4 * U * max(op.n_in, 1)) * SLACK)
                # an entry reading no live constant neuron has the partial sum 0 (no column)
                idx = np.nonzero(rp > 0)[0]
                lay.partial[(s + 1, r)], lay.pidx[(s + 1, r)], lay.rp[(s + 1, r)] = col, idx, rp
                rn.append(rp[idx])
                col += idx.size
        lay.cols = col
        lay.rn = np.concatenate(rn)
        return lay

    def _push(self, s, z, info, lay, out, a, b, e):
        """Write the partial sums of stage ``s``'s live constant neurons into
        their readers' columns; returns the vertices' factors, raised to
        cover them."""
        st = self.stages[s]
        h = None
        hl, r = _units_on_pieces(st, info, z[:, info.live] if not st.is_max else z)
        e = SLACK * (e + r)
        hmax = np.maximum(np.abs(hl).max(axis=1), 1.0) if hl.shape[1] else np.ones(len(z))
        for rd in self.readers[s + 1]:
            op = self.stages[rd].operator
            col, idx = lay.partial[(s + 1, rd)], lay.pidx[(s + 1, rd)]
            pos = self._copied_live(s, rd, info)
            if pos is not None and (pos[idx] >= 0).all():  # a copy reader: the live units' outputs
                out[a:b, col : col + idx.size] = hl[:, pos[idx]]
            else:
                if h is None:
                    h = np.zeros((len(z), st.n))
                    h[:, info.live] = hl
                hs = [np.zeros((len(z), n)) for n in op.source_sizes]
                hs[op.sources.index(s + 1)] = h
                out[a:b, col : col + idx.size] = op.linear(hs)[:, idx]
            e = np.maximum(e, SLACK * gamma(_n_terms(op)) * hmax)
        return e

    def _copied_live(self, s, rd, info):
        """For a reader ``rd`` of tensor ``s + 1`` that only copies it (a max
        pool's windows): each of its entries' position among the tensor's live
        constant units (-1: not one); else None."""
        key = (s, rd)
        if key not in self._copied:
            from ._graph_max import _copy_sources

            src = _copy_sources(self, rd) if rd == s + 1 else None
            if src is None or tuple(self.stages[rd].operator.sources) != (s + 1,):
                self._copied[key] = None
            else:
                where = np.full(self.stages[s].n, -1, np.int64)
                where[info.live] = np.arange(info.live.size)
                self._copied[key] = where[src]
        return self._copied[key]

    def _carry(self, s, prev, lay, values, out, V):
        """Copy the columns that stay (coordinates, carried tensors, partial sums)."""
        if lay.uv is not None:
            out[:V, lay.uv : lay.uv + self.n_in] = values[:V, prev.uv : prev.uv + self.n_in]
        for t, col in lay.carried.items():
            size = self.info[t].cross.size
            src = 0 if t == s else prev.carried[t]
            out[:V, col : col + size] = values[:V, src : src + size]
        for key, col in lay.partial.items():
            if key in prev.partial:
                n = lay.pidx[key].size
                out[:V, col : col + n] = values[:V, prev.partial[key] : prev.partial[key] + n]


def _uv_factor(op, info):
    """The largest factor ``rn_uv`` of the coordinates' columns for which the
    live constant neurons recomputed from them keep their own factors:
    ``rn_uv |M_j|_1 <= rn_j``. (A small ``rn_uv`` would make the
    coordinates dominate every new vertex's ``eps``: their slope along an
    edge is 1, a preactivation's is ``|M_j d| / rn_j``.)"""
    l1 = np.abs(op.M[info.live]).sum(axis=1)
    ok = l1 > 0
    if not ok.any():
        return 1.0
    return float((info.rn[info.live][ok] / l1[ok]).min()) / SLACK


def _uv_scale(rn_uv, M, rn):
    """``max(1, rn_uv max_j |M_j|_1 / rn_j)`` over the live constant neurons
    of a stage recomputed from the coordinates (rows ``M``, factors ``rn``):
    their error is at most ``rn_j`` times that times ``eps`` (plus their own
    rounding)."""
    l1 = np.abs(M).sum(axis=1) * SLACK
    if (l1[rn == 0] > 0).any():
        return np.inf
    ok = rn > 0
    return max(1.0, float((rn_uv * l1[ok] / rn[ok]).max(initial=0.0)) * SLACK)


def _units_on_pieces(st, info, z):
    """The units of the live constant neurons on their pieces at ``z`` (B,
    n_live), and the bound ``r`` (B,) of their rounding relative to ``rn``."""
    live = info.live
    k = info.const_piece[live].astype(np.int64)
    if st.is_max:  # ``z``: all the stage's preactivations; a unit outputs its winner, exactly
        return z[:, st.windows[live, k]], np.zeros(len(z))
    return _units_affine(st.slopes[live, k], st.intercepts[live, k], info.rn[live], z)


def _units_affine(sl, ic, rn, z):
    """``h = sl z + ic`` (B, n) and the bound ``r`` (B,) of its rounding
    relative to the factors ``rn`` of ``z``."""
    h = z * sl
    h += ic
    exact = bool(np.all(((sl == 0) | (sl == 1) | (sl == -1)) & (ic == 0)))
    if exact or not (rn > 0).any() or not z.shape[1]:
        return h, np.zeros(len(z))
    ok = rn > 0
    r = gamma(2) * SLACK * (np.abs(z[:, ok]) * np.abs(sl[ok]) + np.abs(ic[ok])) / rn[ok]
    return h, r.max(axis=1)


def _widest(op):
    """The largest tensor inside an operator (entries per vertex)."""
    sizes = [op.n_in, op.n_out]
    for node in getattr(op, "order", ()):
        sizes.append(int(np.prod(node.shape, dtype=np.int64)))
    rest = getattr(op, "rest", None)
    return max(sizes + ([_widest(rest)] if rest is not None else []))


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
