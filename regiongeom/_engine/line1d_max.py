"""Exact enumeration on a line through a graph network with max units.

A 1-input :class:`~regiongeom.graph.GraphNetwork` with stages of max units
(maxout, MaxPool, ``max``/``amax``; see "Max stages" in
:mod:`regiongeom.graph`) is cut one stage at a time, as
:mod:`.line1d_graph` cuts one with elementwise units only. Here every
current interval carries the *affine maps* of every live tensor on it
(``z = c + J x``: one offset and one slope per entry, with rigorous bounds
of their rounding), propagated through the operators with the interval's
pieces; a stage's values at an interval's two end points come from its maps.

- An elementwise neuron is cut where ``z_j - t_k`` has strictly opposite
  exact signs at the interval's two ends (one crossing, its root).
- A max unit's winner on the interval is found by a sweep: the winner just
  right of the left end is the largest by (value there, slope, lowest
  position); from the current winner ``w`` at the current event, the next
  event is the earliest root of ``z_q - z_w`` with ``q`` of larger slope and
  above ``w`` at the right end; at equal roots the winner just right of it
  is the one of largest slope (then the lowest position). So a point is
  created only where the winner changes: the intervals are the maximal
  intervals of constant pattern, and ``rm.patterns`` holds the winner's
  position. A unit whose winner beats every other entry by more than the
  bounds at both ends (the common case) is decided without the sweep.

**Exactness.** Every value carries a bound of its distance to the exact
value at the point's exact position: the maps' offsets and slopes carry
bounds from the operators' rounding (``gamma_N`` times ``op.absolute`` of
the magnitudes, ``N`` the operator's longest chain of sums,
:func:`.graph_plan._n_terms`; the units on their pieces add ``gamma_2``
of their terms, nothing for slopes 0 and 1 and a max's selection), and a
point's float position carries a bound ``ex`` of its distance to the exact
root it stands for. A sign or an order of two roots that the bounds leave
open is decided in exact rational arithmetic on the exact maps of
:class:`regiongeom._exact_graph.ExactGraph` (``line`` for a neuron,
``tie`` for two entries of a max unit), at the exact roots of the points
(every interior point is the root of one exact line on the interval it was
created in: ``z_j - t_k``, or ``z_q - z_w`` of the unit that changes
winner there). Roots found exactly equal are one point. A root whose
position bound is worse than 1/16 of its interval gets its exact position,
rounded. No tolerance is involved.
"""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import numpy as np

from .core import BOUNDARY, Subdivision, limit_error, one_blas_thread
from .filter2d import SLACK, U, gamma
from .graph_plan import _n_terms
from .line1d import subdivision_1d

__all__ = ["enumerate_1d_max"]

_TINY = 2.0**-1060  # room for underflow in every bound
_G2 = gamma(2)
_G3 = gamma(3)
_BLOCK = 1 << 22  # entries of a (intervals, units, window) array held at once
_PLACE_EXACT = 2.0**-4


def enumerate_1d_max(net, domain, max_regions) -> Subdivision:
    """Exact 1D enumeration of a 1-input graph network with max units; see
    :func:`regiongeom.activation_regions`."""
    with one_blas_thread():
        return _Engine(net, domain, max_regions).run()


class _Pt:
    """An interior point's exact identity: the root of one exact line
    (``kind`` "line": ``exact.line(pattern, neuron, k)``; "tie":
    ``exact.tie(pattern, neuron, p, q)``) on the pattern of the interval it
    was created in. Its exact root is computed when first needed."""

    __slots__ = ("args", "kind", "_root")

    def __init__(self, kind, args, root=None):
        self.kind, self.args, self._root = kind, args, root

    def root(self, exact):
        if self._root is None:
            self._root = _root(_row(exact, self.kind, self.args))
        return self._root


def _row(exact, kind, args):
    """The exact homogeneous row ``(a, c)`` (Python ints, a positive scale
    dropped): ``a x + c``."""
    d = exact.line(*args) if kind == "line" else exact.tie(*args)
    return int(d.m[0]), int(d.m[1])


def _root(row):
    a, c = row
    if a == 0:
        raise AssertionError("a point's exact line is constant")
    return Fraction(-c, a)


def _sign_at(row, xq: Fraction) -> int:
    a, c = row
    v = a * xq.numerator + c * xq.denominator
    return (v > 0) - (v < 0)


class _Engine:
    def __init__(self, net, domain, max_regions):
        from .._exact_graph import exact_for

        self.net, self.max_regions = net, max_regions
        lo, hi = (float(v) for v in domain.interval)
        self.x = np.array([lo, hi])
        self.ex = np.zeros(2)
        self.neuron = np.full(2, BOUNDARY, np.int64)
        self.bp = np.zeros(2, np.int64)
        self.pts = np.array([_Pt(None, None, Fraction(lo)), _Pt(None, None, Fraction(hi))], dtype=object)
        self.P = np.zeros((1, net.n_neurons), np.int8)
        # tensor -> (J, c, EJ, Ec), one row per interval
        self.T = {0: (np.ones((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)))}
        self._exact_for = exact_for
        self._exact = None

    @property
    def exact(self):
        if self._exact is None:
            self._exact = self._exact_for(self.net)
        return self._exact

    # ------------------------------------------------------------------ run --
    def run(self) -> Subdivision:
        for s, st in enumerate(self.net.stages):
            zJ, zc, EJ, Ec = self._preactivations(st)
            vals = self._ends(zJ, zc, EJ, Ec)
            if st.is_max:
                init, events = self._max_stage(s, st, zJ, zc, EJ, Ec, vals)
            else:
                init, events = self._unit_stage(s, st, zJ, zc, EJ, Ec, vals)
            parent, pieces = self._split(st, init, events)
            self._advance(s, st, parent, pieces, (zJ, zc, EJ, Ec))
        return subdivision_1d(SimpleNamespace(x=self.x, neuron=self.neuron, bp=self.bp), self.P)

    # ----------------------------------------------------------- the maps --
    def _preactivations(self, st):
        """The stage's preactivation maps on every interval and their bounds."""
        op = st.operator
        srcs = [self.T[t] for t in op.sources]
        zJ = op.linear([v[0] for v in srcs])
        zc = op([v[1] for v in srcs])
        g = gamma(_n_terms(op))
        grow = (1.0 + 2.0 * g + 4.0 * U * max(op.n_in, 1)) * SLACK
        EJ = (op.absolute([v[2] for v in srcs]) + g * op.absolute([np.abs(v[0]) for v in srcs])) * grow
        mag = op.absolute([np.abs(v[1]) for v in srcs], with_bias=True)
        Ec = (op.absolute([v[3] for v in srcs]) + g * mag) * grow
        # room for underflow, except on the entries no nonzero term reaches (exact zeros)
        reachJ = op.absolute([((v[0] != 0) | (v[2] > 0)).astype(np.float64) for v in srcs])
        reachc = op.absolute([((v[1] != 0) | (v[3] > 0)).astype(np.float64) for v in srcs], with_bias=True)
        EJ += np.where(reachJ > 0, _TINY, 0.0)
        Ec += np.where(reachc > 0, _TINY, 0.0)
        return zJ, zc, EJ, Ec

    def _ends(self, zJ, zc, EJ, Ec):
        """Values at each interval's left and right end points and their bounds."""
        out = []
        for side in (0, 1):
            x = self.x[side : self.x.size - 1 + side][:, None]
            ex = self.ex[side : self.ex.size - 1 + side][:, None]
            jx = zJ * x
            v = zc + jx
            b = SLACK * (Ec + EJ * np.abs(x) + (np.abs(zJ) + EJ) * ex + _G2 * (np.abs(zc) + np.abs(jx)))
            b += np.where((b > 0) | (v != 0), _TINY, 0.0)  # an exact zero map: exactly 0
            out.append((v, b))
        return out

    def _advance(self, s, st, parent, pieces, zmaps):
        """Re-index everything by the new intervals' parents; form tensor ``s + 1``."""
        P = self.P[parent]
        P[:, st.offset : st.offset + st.n] = pieces
        self.P = P
        keep = set(st.carry)
        self.T = {t: tuple(a[parent] for a in v) for t, v in self.T.items() if t in keep}
        zJ, zc, EJ, Ec = (a[parent] for a in zmaps)
        pieces = pieces.astype(np.int64)
        if st.is_max:
            sel = st.windows[np.arange(st.n)[None, :], pieces]
            if (sel < 0).any():
                raise AssertionError("a max unit's winner is an absent entry")
            rows = np.arange(P.shape[0])[:, None]
            self.T[s + 1] = (zJ[rows, sel], zc[rows, sel], EJ[rows, sel], Ec[rows, sel])
            return
        idx = np.arange(st.n)[None, :]
        sl, ic = st.slopes[idx, pieces], st.intercepts[idx, pieces]
        hJ, hc = zJ * sl, zc * sl + ic
        asl = np.abs(sl)
        exact = (sl == 0.0) | (((sl == 1.0) | (sl == -1.0)) & (ic == 0.0))
        rJ = np.where(exact, 0.0, U * np.abs(hJ) + _TINY)
        rc = np.where(exact, 0.0, _G2 * (np.abs(zc * sl) + np.abs(ic)) + _TINY)
        # slope 0: the unit is its constant, exactly
        self.T[s + 1] = (hJ, hc, np.where(sl == 0.0, 0.0, SLACK * (asl * EJ + rJ)),
                         np.where(sl == 0.0, 0.0, SLACK * (asl * Ec + rc)))  # fmt: skip

    # ------------------------------------------------- exact point queries --
    def _xq(self, i) -> Fraction:
        return self.pts[i].root(self.exact)

    # ------------------------------------------------------ elementwise --
    def _unit_stage(self, s, st, zJ, zc, EJ, Ec, vals):
        """Initial pieces (R, n) and the crossings of an elementwise stage."""
        (vl, bl), (vr, br) = vals
        R, n = vl.shape
        init = np.zeros((R, n), np.int64)
        events = []
        for k, t in enumerate(np.asarray(st.breakpoints, np.float64)):
            sl = self._signs(vl - t, bl + U * (np.abs(vl) + abs(t)), st, k, 0)
            sr = self._signs(vr - t, br + U * (np.abs(vr) + abs(t)), st, k, 1)
            inner = np.where(sl != 0, sl, sr)
            init += inner >= 0
            r, j = np.nonzero(sl * sr < 0)
            if r.size == 0:
                continue
            num = t - zc[r, j]
            den = zJ[r, j]
            pos, ex = self._positions(r, num, den, Ec[r, j] + U * np.abs(num), EJ[r, j])
            up = (sl[r, j] < 0).astype(np.int64) * 2 - 1  # the piece rises by one crossing upwards
            for i in range(r.size):
                rr, jj = int(r[i]), int(j[i])
                pt = _Pt("line", (self.P[rr].copy(), st.offset + jj, k))
                events.append([rr, pos[i], ex[i], pt, st.offset + jj, k, jj, int(up[i])])
        return init, events

    def _signs(self, d, b, st, k, side):
        """Exact signs of ``d`` (R, n) with bounds ``b``; the open ones exactly."""
        S = np.zeros(d.shape, np.int8)
        S[d > SLACK * b] = 1
        S[d < -SLACK * b] = -1
        open_ = (S == 0) & ~((d == 0) & (b == 0))  # a value exact (bound 0) on its breakpoint is decided
        for r, j in zip(*np.nonzero(open_), strict=True):
            row = _row(self.exact, "line", (self.P[r], st.offset + int(j), k))
            S[r, j] = _sign_at(row, self._xq(int(r) + side))
        return S

    def _positions(self, r, num, den, Enum, Eden):
        """Float roots ``num / den`` in intervals ``r`` and bounds of their
        distance to the exact roots (``|num - exact| <= Enum``, same for
        ``den``); clamped into the intervals. Open ones get None bounds
        (filled in exactly by the caller through ``_exact_positions``)."""
        xl, xr = self.x[r], self.x[r + 1]
        exl, exr = self.ex[r], self.ex[r + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            pos = num / den
            room = np.abs(den) - Eden
            ex = SLACK * ((Enum + 2 * U * np.abs(num)) / room + np.abs(pos) * (1 + 2 * U) * Eden / room
                          + 2 * U * np.abs(pos)) + _TINY  # fmt: skip
        bad = ~(room > 0) | ~np.isfinite(ex) | (ex > _PLACE_EXACT * (xr - xl))
        pos = np.where(bad, xl, pos)
        lo, hi = pos < xl, pos > xr
        pos = np.clip(pos, xl, xr)
        ex = np.where(lo, np.maximum(ex, exl), np.where(hi, np.maximum(ex, exr), ex))
        ex = np.where(bad, np.nan, ex)  # NaN: the caller computes the exact root
        return pos, ex

    # -------------------------------------------------------------- max --
    def _max_stage(self, s, st, zJ, zc, EJ, Ec, vals):
        """Initial winners (R, n) and the winner changes of a max stage."""
        (vl, bl), (vr, br) = vals
        R = vl.shape[0]
        W = st.windows
        n, k = W.shape
        init = np.zeros((R, n), np.int64)
        events = []
        step = max(1, _BLOCK // max(n * k, 1))
        idx = np.maximum(W, 0)
        absent = W < 0
        for r0 in range(0, R, step):
            r1 = min(R, r0 + step)
            sure = np.ones((r1 - r0, n), bool)
            win = None
            for v, b in ((vl, bl), (vr, br)):
                G, B = v[r0:r1][:, idx], b[r0:r1][:, idx]
                G[:, absent] = -np.inf
                w = G.argmax(axis=2) if win is None else win
                win = w
                gw = np.take_along_axis(G, w[:, :, None], axis=2)
                bw = np.take_along_axis(B, w[:, :, None], axis=2)
                wi = np.take_along_axis(np.broadcast_to(idx, G.shape), w[:, :, None], axis=2)
                same = idx[None, :, :] == wi  # the winner's own entry, repeated
                room = SLACK * (bw + B + U * (np.abs(gw) + np.abs(np.where(absent, 0.0, G))))
                # equal and exact (bound 0) at both ends: equal maps, the lower position (w) wins
                tie = (gw == G) & (bw == 0) & (B == 0)
                ok = (gw - G > room) | same | absent[None] | tie
                sure &= ok.all(axis=2)
            init[r0:r1] = win
            for rr, u in zip(*np.nonzero(~sure), strict=True):
                r = r0 + int(rr)
                w0, evs = _Sweep(self, st, r, int(u), zJ, zc, EJ, Ec, vals).run()
                init[r, u] = w0
                events.extend(evs)
        return init, events

    # ------------------------------------------------------------ split --
    def _split(self, st, init, events):
        """The new points and intervals: ``(parent, pieces)``."""
        R = init.shape[0]
        if not events:
            return np.arange(R), init
        ev = events
        # exact positions where the bound was too loose
        for e in ev:
            if not np.isfinite(e[2]):
                q = e[3].root(self.exact)
                e[1], e[2] = self._rounded(q, e[0])
        ev.sort(key=lambda e: (e[0], e[1]))
        groups = self._groups(ev)
        n_new = len(groups)
        if self.x.size + n_new - 1 > self.max_regions:
            raise limit_error(None, self.max_regions, self.net)
        # one row per new interval: the parent's intervals are followed by their new ones
        per = np.bincount([g[0][0] for g in groups], minlength=R)
        parent = np.repeat(np.arange(R), per + 1)
        start = np.concatenate([[0], np.cumsum(per + 1)[:-1]])
        D = np.zeros((parent.size, st.n), np.int64)
        new_x, new_ex, new_neu, new_bp, new_pt, at = [], [], [], [], [], []
        seen = np.zeros(R, np.int64)
        for g in groups:
            r = g[0][0]
            seen[r] += 1
            row = start[r] + seen[r]
            for e in g:
                D[row, e[6]] += e[7]
            first = min(g, key=lambda e: e[4])
            x, ex = g[0][1], max(e[2] for e in g)
            new_x.append(x)
            new_ex.append(ex)
            new_neu.append(first[4])
            new_bp.append(first[5])
            new_pt.append(first[3])
            at.append(r + 1)
        C = np.cumsum(D, axis=0)
        pieces = init[parent] + C - C[start[parent]]
        at = np.asarray(at)
        self.x = np.insert(self.x, at, new_x)
        self.ex = np.insert(self.ex, at, new_ex)
        self.neuron = np.insert(self.neuron, at, new_neu)
        self.bp = np.insert(self.bp, at, new_bp)
        pts = np.empty(len(new_pt), dtype=object)
        pts[:] = new_pt
        self.pts = np.insert(self.pts, at, pts)
        return parent, pieces

    def _rounded(self, q, r):
        """A float position (within interval ``r``) and bound for the exact root ``q``."""
        x = float(q)
        ex = abs(x) * 2.0**-52 + 2.0**-1074
        xl, xr = self.x[r], self.x[r + 1]
        if x < xl:
            return xl, max(ex, self.ex[r])
        if x > xr:
            return xr, max(ex, self.ex[r + 1])
        return x, ex

    def _groups(self, ev):
        """Events (sorted by interval and float position) grouped by exact
        position, each group a list; runs whose bounds overlap are ordered
        exactly. Floats are made non-decreasing (bounds widened to match)."""
        groups = []
        i, m = 0, len(ev)
        while i < m:
            j = i + 1
            reach = ev[i][1] + ev[i][2]
            while j < m and ev[j][0] == ev[i][0] and ev[j][1] - ev[j][2] <= reach:
                reach = max(reach, ev[j][1] + ev[j][2])
                j += 1
            run = ev[i:j]
            if len(run) == 1:
                groups.append(run)
            else:
                roots = [e[3].root(self.exact) for e in run]
                order = sorted(range(len(run)), key=lambda a: roots[a])
                prev = None
                for a in order:
                    e = run[a]
                    if prev is not None and roots[a] == prev:
                        groups[-1].append(e)
                    else:
                        groups.append([e])
                    prev = roots[a]
            i = j
        # non-decreasing floats inside each interval, bounds widened
        for a in range(1, len(groups)):
            g0, g1 = groups[a - 1], groups[a]
            if g0[0][0] == g1[0][0] and g1[0][1] < g0[0][1]:
                w = max(max(e[2] for e in g0), max(e[2] for e in g1))
                for e in g1:
                    e[1], e[2] = g0[0][1], max(e[2], w)
        return groups


class _Sweep:
    """The winner changes of one max unit on one interval (see the module docstring)."""

    def __init__(self, eng, st, r, u, zJ, zc, EJ, Ec, vals):
        self.eng, self.st, self.r, self.u = eng, st, r, u
        w = st.windows[u]
        seen, pos = set(), []
        for p, i in enumerate(w.tolist()):
            if i >= 0 and i not in seen:  # a repeated entry never beats its first position
                seen.add(i)
                pos.append(p)
        self.pos = pos
        ii = w[pos]
        self.J, self.c, self.EJ, self.Ec = zJ[r, ii], zc[r, ii], EJ[r, ii], Ec[r, ii]
        (vl, bl), (vr, br) = vals
        self.vl, self.bl, self.vr, self.br = vl[r, ii], bl[r, ii], vr[r, ii], br[r, ii]
        self.neuron = st.offset + u
        self.rows = {}

    def row(self, a, b):
        """Exact row of ``z_a - z_b`` (indices into ``self.pos``)."""
        key = (a, b)
        if key not in self.rows:
            ra = _row(self.eng.exact, "tie", (self.eng.P[self.r], self.neuron, self.pos[a], self.pos[b]))
            self.rows[key] = ra
            self.rows[(b, a)] = (-ra[0], -ra[1])
        return self.rows[key]

    def sign_end(self, a, b, side):
        """Exact sign of ``z_a - z_b`` at the interval's left (0) or right (1) end."""
        v, bd = (self.vl, self.bl) if side == 0 else (self.vr, self.br)
        d = v[a] - v[b]
        if d == 0 and bd[a] == 0 and bd[b] == 0:  # both exact
            return 0
        room = SLACK * (bd[a] + bd[b] + U * (abs(v[a]) + abs(v[b])))
        if d > room:
            return 1
        if d < -room:
            return -1
        return _sign_at(self.row(a, b), self.eng._xq(self.r + side))

    def slope(self, a, b):
        """Exact sign of the slope of ``z_a - z_b``."""
        d = self.J[a] - self.J[b]
        if d == 0 and self.EJ[a] == 0 and self.EJ[b] == 0:  # both exact
            return 0
        room = SLACK * (self.EJ[a] + self.EJ[b] + U * (abs(self.J[a]) + abs(self.J[b])))
        if d > room:
            return 1
        if d < -room:
            return -1
        a0 = self.row(a, b)[0]
        return (a0 > 0) - (a0 < 0)

    def better_at_root(self, a, b):
        """Of two entries equal at a point, whether ``a`` wins just right of it."""
        s = self.slope(a, b)
        return s > 0 or (s == 0 and self.pos[a] < self.pos[b])

    def root(self, q, w):
        """``(float, bound, exact-root thunk)`` of ``z_q - z_w = 0``."""
        c = self.c[q] - self.c[w]
        J = self.J[q] - self.J[w]
        Ec = self.Ec[q] + self.Ec[w] + U * abs(c)
        EJ = self.EJ[q] + self.EJ[w] + U * abs(J)
        pos, ex = self.eng._positions(np.array([self.r]), np.array([-c]), np.array([J]), np.array([Ec]),
                                      np.array([EJ]))  # fmt: skip
        return float(pos[0]), float(ex[0])

    def run(self):
        m = len(self.pos)
        # the winner just right of the left end
        w = 0
        for q in range(1, m):
            s = self.sign_end(q, w, 0)
            if s > 0 or (s == 0 and self.better_at_root(q, w)):
                w = q
        w0 = w
        events = []
        while True:
            cands = [q for q in range(m) if q != w and self.slope(q, w) > 0 and self.sign_end(q, w, 1) > 0]
            if not cands:
                break
            pat = self.eng.P[self.r].copy()
            pts = {q: _Pt("tie", (pat, self.neuron, self.pos[q], self.pos[w])) for q in cands}
            est = {q: self.root(q, w) for q in cands}
            # the earliest roots: a float filter, then exact comparisons among the overlapping
            ok = [q for q in cands if np.isfinite(est[q][1])]
            lead = min(ok, key=lambda q: est[q][0] + est[q][1]) if ok else None
            near = [q for q in cands if lead is None or not np.isfinite(est[q][1])
                    or est[q][0] - est[q][1] <= est[lead][0] + est[lead][1]]  # fmt: skip
            if len(near) > 1:
                roots = {q: pts[q].root(self.eng.exact) for q in near}
                first = min(roots.values())
                near = [q for q in near if roots[q] == first]
            nxt = near[0]
            for q in near[1:]:
                if self.better_at_root(q, nxt):
                    nxt = q
            x, ex = est[nxt]
            # (the root is after the previous event: w beat every entry of
            # larger slope just right of it, so those are below w there)
            events.append([self.r, x, ex, pts[nxt], self.neuron, self.pos[w], self.u,
                           self.pos[nxt] - self.pos[w]])  # fmt: skip
            w = nxt
        return self.pos[w0], events
