"""Filtered exact signs for the 2D engine: error bounds and the exact fallback.

The engine (:mod:`.mesh2d`) keeps at every vertex ``v`` of the subdivision
the float values ``values[v, :]`` of the current layer's preactivations. Each
stands for an exact value: neuron ``j``'s function at the *exact* vertex
``v*`` (the point where the two exact lines through ``v`` meet). A sign
``z_j(v*) - t`` is decided from the float value when the float value is
farther from ``t`` than a rigorous bound on its error, and in exact
arithmetic (:mod:`regiongeom._exact`) otherwise.

Error bounds
------------
Standard rounding-error analysis, with unit roundoff ``u = 2**-53`` and
``gamma_n = n u / (1 - n u)`` (every float operation ``a op b`` returns
``(a op b)(1 + d)``, ``|d| <= u``; a sum of ``n`` products in any order,
with or without fused multiply-adds, is within ``gamma_n`` times the sum of
the products' magnitudes). The bound is factorised: the error of
``values[v, j]`` is at most ``rn[j] * eps[v]``, with ``rn[j] = ||W_j||_1 +
|b_j|`` per neuron (0 for a row of zero weights, whose value ``b_j`` is
computed exactly everywhere) and ``eps[v]`` per vertex.

- First layer: the domain's points are exact floats, so ``|fl(W_j x + b_j) -
  (W_j x + b_j)| <= gamma_{n+1} (|W_j| |x| + |b_j|) <= rn[j] gamma_{n+1}
  max(||x||_inf, 1)``: ``eps = gamma_{n+1} max(||x||_inf, 1)``.
- Interpolation at a new vertex ``m`` where neuron ``j`` crosses ``t`` on
  an edge: ``m`` is interpolated between the edge's *anchors* ``u, w``, two
  vertices on the edge's line, beyond its ends (or at them), with the whole segment
  ``u w`` inside one face at the layer's start (so every neuron of the layer
  is affine along it): the ends of the edge at the layer's start, or, for an
  edge cut in this layer, where its line enters and leaves the face at the
  layer's start. (Anchoring every chord there keeps the chains of
  interpolations short: a vertex is at most two interpolations away from the
  vertices at the layer's start, except where a line leaves the face through
  an existing vertex, so the bounds do not compound.) The exact
  point is ``u* + a* (w* - u*)`` with ``a* = x* / (x* + y*)``, ``x* =
  |z_j(u*) - t|``, ``y* = |z_j(w*) - t|`` (the anchors are on the exact sides
  of the edge's ends, which are strictly opposite). The floats ``x, y`` (``z
  - t`` on the exact side, clamped at 0) are within ``d = rn[j] e + u max(x,
  y)`` of them, ``e = max(eps[u], eps[w])``, so ``|x/(x+y) - a*| = |dx y* -
  x* dy| / ((x* + y*)(x + y)) <= d / (x + y)``, and the division adds
  ``2u``: ``|a - a*| <= ea = min(1, rn[j] e / (x + y) + 3u)``. Every neuron
  ``r`` is affine along the segment, so its exact value is ``z_r(u*) + a*
  (z_r(w*) - z_r(u*))``; the float ``fl(z_u + a (z_w - z_u))`` is within
  ``rn[r] e`` (a convex combination of the anchors' errors) ``+ ea (|z_w -
  z_u| + 2 rn[r] e)`` (the error of ``a`` times the exact difference) ``+ 6u
  (|z_u| + |z_w|)`` (three roundings) of it. Hence ``eps[m] = e (1 + 2 ea) +
  max_r (ea |z_w - z_u| + 6u (|z_u| + |z_w|)) / rn[r]``.
- Next layer: an activation is Lipschitz with constant ``L = max |slope|``
  (it is continuous, so even a value rounded across a breakpoint is off by
  at most ``L`` times its error) and its float evaluation ``s z + c`` adds
  ``gamma_2 (|s| |z| + |c|)`` (nothing when every piece is ``0``, ``z`` or
  ``-z``, or a constant). With ``h`` the activated row, ``z' = W' h + b'``
  is within ``L e (|W'| rn)_j + ||W'_j||_1 (rho + gamma_{n'+1} ||h||_inf) +
  gamma_{n'+1} |b'_j|`` of the exact value, which is at most ``rn'[j]``
  times ``eps' = L c e + rho + gamma_{n'+1} max(||h||_inf, 1)`` with ``c =
  max_j (|W'| rn)_j / rn'[j]`` and ``rho`` the activation's rounding bound;
  ``||h||_inf <= L ||z||_inf + max |intercept|``.

Each bound is multiplied by ``1 + 2**-40`` as it is computed, more than the
rounding of the few operations computing it; ``rn`` and ``c`` carry their
own ``1 + 2 (n + 4) u``. A sign is then certain when ``|fl(z - t)| >
rn[j] eps[v]`` (``fl(z - t)`` has the sign of ``z - t`` and is within a
factor ``1 + u`` of it), and exact when the bound is 0.

Exact fallback
--------------
Each vertex records the two lines it was made on (:attr:`Mesh.prov`): the
cutting neuron and breakpoint, and the line of the edge it split (a
neuron's hyperplane or a domain edge, whose line passes through two float
points of the domain), with the face it was made in. Both lines are taken
with the activation pattern of that face on the earlier layers: the
cutting neuron's function is affine on the face and its hyperplane crosses
the edge, whose ends have strictly opposite exact signs, so the two lines
are distinct and not parallel and meet exactly at the vertex. (The edge's
own line is the same with any pattern that agrees with the face on the
layers before the edge's neuron, which every descendant of the face where
the edge was made does.) The sign of neuron ``j`` at the vertex is then
read from the affine map of any face that has the vertex on its boundary:
a neuron's function is continuous across the earlier layers' hyperplanes,
so on the closure of each face it equals that face's affine map. Vertices
found exactly on the hyperplane get ``values[v, j] = t``.
"""

from __future__ import annotations

import numpy as np

from .. import _exact
from . import _mesh2d_kernels as K

U = 2.0**-53
SLACK = 1.0 + 2.0**-40

# sign decisions made by the 2D engine and those made exactly: a debug
# counter (reset it to measure a run), not part of the API
COUNTS = {"decisions": 0, "exact": 0}


def gamma(n):
    """``gamma_n = n u / (1 - n u)``."""
    return n * U / (1.0 - n * U)


def row_factors(w, b):
    """``rn (n,)``: ``||W_j||_1 + |b_j|`` rounded up, 0 for a row of zeros,
    and ``rinv``: its inverse (0 where it is 0)."""
    n_in = w.shape[1]
    rn = (np.abs(w).sum(axis=1) + np.abs(b)) * (1.0 + 2 * (n_in + 4) * U)
    rn[~np.any(w != 0, axis=1)] = 0.0
    rinv = np.zeros_like(rn)
    np.divide(1.0, rn, out=rinv, where=rn > 0)
    return rn, rinv


def first_eps(x):
    """``(V,)`` error factors of the first layer's values at the exact points ``x (V, n)``."""
    return SLACK * gamma(x.shape[1] + 1) * np.maximum(np.abs(x).max(axis=1), 1.0)


def next_layer_terms(act, rn, w_next, rn_next):
    """``(coef, rho_rel, rho_abs, gamma, lip, imax)`` of ``eps' = coef eps +
    rho_rel max|z| + rho_abs + gamma max(lip max|z| + imax, 1)`` between a
    layer (activation ``act``, a PiecewiseLinear or None, and factors ``rn``)
    and the next (weights ``w_next``, factors ``rn_next``); ``lip max|z| +
    imax`` bounds ``max|h|``."""
    imax = 0.0
    if act is None:
        lip, rho_rel, rho_abs = 1.0, 0.0, 0.0
    else:
        s, c = np.abs(act.slopes), np.abs(act.intercepts)
        lip, imax = float(s.max()), float(c.max())
        exact = np.all(((s == 0) | (s == 1)) & ((c == 0) | (s == 0)))
        rho_rel, rho_abs = (0.0, 0.0) if exact else (gamma(2) * lip, gamma(2) * float(c.max()))
    n = w_next.shape[1]
    spread = np.abs(w_next) @ rn
    live = rn_next > 0
    ratio = float((spread[live] / rn_next[live]).max()) if live.any() else 0.0
    return lip * ratio * (1.0 + 2 * (n + 4) * U), rho_rel, rho_abs, gamma(n + 1), lip, imax


class ExactSigns:
    """Decides the signs the float filter leaves open, exactly.

    ``dom_lines[i]`` are the two float points of the domain line ``i`` (the
    ids in the mesh's ``edge_bp`` of the domain's edges); ``blocks`` is the
    engine's list of finished layers ``(first, parent, pieces)``."""

    def __init__(self, net, dom_lines, blocks, n_neurons):
        self._net = net
        self._exact_net = None  # made at the first exact decision (it converts every weight)
        self.dom = dom_lines
        self.blocks = blocks
        self.n_neurons = n_neurons
        self.epochs = []  # (number of finished layers, root -> face at the layer's start)
        self._points = {}
        self._prefixes = {}
        self._lines = {}  # (finished layers, face at the layer's start, neuron, bp) -> exact line

    @property
    def net(self):
        if self._exact_net is None:
            from .._exact_graph import exact_for

            self._exact_net = exact_for(self._net)
        return self._exact_net

    def new_epoch(self, start):
        """Register the roots of a new epoch (``start``: the face at the
        layer's start holding each root); returns the epoch's id."""
        self.epochs.append((len(self.blocks), start))
        return len(self.epochs) - 1

    def decide(self, mesh, uncertain, start, neuron, bp, t, j, key):
        """Decide the sign of neuron ``neuron`` at breakpoint ``bp`` (column
        ``j``, value ``t``) at the vertices ``uncertain[:, 0]`` (each on face
        ``uncertain[:, 1]``; ``start`` maps the current roots to the faces at
        the layer's start); store them in ``mesh.xsign`` under ``key``."""
        vs, idx = np.unique(uncertain[:, 0], return_index=True)
        n_blocks = len(self.blocks)
        for v, f in zip(vs.tolist(), uncertain[idx, 1].tolist(), strict=True):
            line = self._cached_line(n_blocks, int(start[mesh.root[f]]), neuron, bp)
            s = _exact.sign_at(line, self._point(mesh, v))
            mesh.xsign[v] = key * 4 + s + 1
            if s == 0:
                mesh.values[v, j] = t
        COUNTS["exact"] += len(vs)

    def decide_tie(self, mesh, uncertain, start, neuron, i, p, k, key):
        """As :meth:`decide` for max unit ``neuron`` (column ``i`` of
        ``mesh.pieces``, window size ``k``): the sign of ``z_p - z_l``, ``l``
        the leader of the face each vertex was met on (see
        :mod:`._mesh2d_max`)."""
        vs, idx = np.unique(uncertain[:, 0], return_index=True)
        n_blocks = len(self.blocks)
        for v, f in zip(vs.tolist(), uncertain[idx, 1].tolist(), strict=True):
            line = self._cached_line(n_blocks, int(start[mesh.root[f]]), neuron, p * k + int(mesh.pieces[f, i]))
            s = _exact.sign_at(line, self._point(mesh, v))
            mesh.xsign[v] = key * 4 + s + 1
        COUNTS["exact"] += len(vs)

    def _prefix(self, n_blocks, face):
        """The pattern (on the first ``n_blocks`` finished layers) of ``face``
        at the start of the layer after them."""
        hit = self._prefixes.get((n_blocks, face))
        if hit is None:
            hit = np.zeros(self.n_neurons, np.int8)
            idx = face
            for first, parent, pieces in reversed(self.blocks[:n_blocks]):
                hit[first : first + pieces.shape[1]] = pieces[idx]
                idx = parent[idx]
            self._prefixes[(n_blocks, face)] = hit
        return hit

    def _cached_line(self, n_blocks, face, neuron, bp):
        """:meth:`_line` for the pattern of ``face`` at the start of the layer
        after the first ``n_blocks`` finished ones, computed once."""
        key = (n_blocks, face, neuron, bp)
        hit = self._lines.get(key)
        if hit is None:
            hit = self._line(self._prefix(n_blocks, face), neuron, bp)
            self._lines[key] = hit
        return hit

    def _line(self, pattern, neuron, bp):
        if neuron >= 0:
            k = self._window_size(neuron)
            if k:  # a max unit's tie edge: bp = p * k + l, on z_p = z_l (see _mesh2d_max)
                return self.net.tie(pattern, neuron, bp // k, bp % k)
            return self.net.line(pattern, neuron, bp)
        return _exact.line_through(*self.dom[bp])

    def _window_size(self, neuron):
        """The window size of max unit ``neuron``, 0 for any other neuron."""
        stages = getattr(self._net, "stages", None)
        if not stages or not any(st.is_max for st in stages):
            return 0
        s = int(np.searchsorted(self._net.neuron_offsets, neuron, side="right") - 1)
        return stages[s].windows.shape[1] if stages[s].is_max else 0

    def _point(self, mesh, v):
        """The exact vertex ``v`` in homogeneous integer coordinates."""
        hit = self._points.get(v)
        if hit is not None:
            return hit
        na, ka, nb, kb, root, epoch = (int(c) for c in mesh.prov[v])
        if na == K.CORNER:
            hit = exact_point(mesh.vx[v], mesh.vy[v])
        else:
            n_blocks, start = self.epochs[epoch]
            face = int(start[root])
            hit = _exact.meet(self._cached_line(n_blocks, face, na, ka), self._cached_line(n_blocks, face, nb, kb))
            if hit[2] == 0:
                raise RuntimeError(
                    f"vertex {v} lies on two parallel lines (an internal error, please report)"
                )
        self._points[v] = hit
        return hit


def exact_point(x, y):
    """The float point ``(x, y)`` in homogeneous integer coordinates."""
    d = _exact.dyadic(np.array([x, y], np.float64))
    mx, my = (int(c) for c in d.m)
    if d.e >= 0:
        return np.array([mx << d.e, my << d.e, 1], dtype=object)
    return np.array([mx, my, 1 << -d.e], dtype=object)
