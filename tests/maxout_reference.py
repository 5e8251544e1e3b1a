"""An exact rational reference for networks with max units (maxout, max pooling).

Independent of regiongeom's engine and of its network classes: a network is a
list of layers given as plain arrays,

- ``("affine", W, b)``: ``z = W h + b`` with no units (the output layer);
- ``("units", W, b, bps, slopes, intercepts)``: elementwise units, as
  :class:`regiongeom.Activation` (piece ``k`` of a neuron: ``bps[k-1] <= z <= bps[k]``);
- ``("max", W, b, windows)``: ``z = W h + b`` (m entries) and one max unit per
  row of ``windows`` (``(n_units, k)`` indices into ``z``; windows may
  overlap, as in a max pool whose stride is smaller than its kernel, and may
  repeat an index; ``-1`` is an absent entry, a max pool's padding, which never
  wins); unit ``u`` outputs ``max_p z[windows[u, p]]``.

Every float is converted exactly with ``fractions.Fraction``. A max unit's
*piece* is the position ``p`` of its winning input in the window; ties go to
the lowest position. On a cell where the window's inputs are exact affine maps
``a_p . x + c_p``, the argmax cell of position ``p`` is the cell clipped by the
half-planes ``a_p - a_q >= 0`` for every other ``q``; a ``q < p`` with the
very same map takes every point from ``p`` (the tie rule), and the cells of
zero area are dropped (the tie sets of different maps). The cells are split
unit by unit, layer by layer, as :mod:`exact_reference` splits them by
neurons, and its edges, locus and linear regions are reused.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from exact_reference import (
    ExactMap,
    _affine,
    _area2,
    _clip,
    _drop_collinear,
    _piece,
    _split_1d,
    _split_2d,
    exact_domain,
    exact_map,
)

F = Fraction

__all__ = ["exact_max_regions", "exact_max_forward", "maxout_windows"]


def maxout_windows(n_units: int, k: int) -> np.ndarray:
    """Windows of a maxout layer whose ``n_units * k`` preactivations are
    grouped as ``z.view(n_units, k)`` (torch's ``x.view(..., k).amax(-1)``)."""
    return np.arange(n_units * k).reshape(n_units, k)


class _L:
    def __init__(self, spec):
        kind = spec[0]
        self.kind = kind
        W = np.asarray(spec[1], np.float64)
        self.W = tuple(tuple(F(float(v)) for v in row) for row in W.reshape(W.shape[0], -1))
        self.b = tuple(F(float(v)) for v in np.asarray(spec[2], np.float64).reshape(-1))
        if kind == "units":
            self.act = tuple(
                tuple(F(float(v)) for v in np.asarray(a, np.float64).reshape(-1)) for a in spec[3:6]
            )
        elif kind == "max":
            self.windows = np.asarray(spec[3], np.int64)
        elif kind != "affine":
            raise ValueError(f"unknown layer kind {kind!r}")


def _layers(spec):
    return [_L(s) for s in spec]


def _max_split(cell, maps, dim):
    """[(position, cell)] of positive measure: ``cell`` split into the argmax
    cells of the exact affine ``maps`` [(a, c)] (ties to the lowest position)."""
    out = []
    for p, mp in enumerate(maps):
        if mp is None:  # an absent entry (a max pool's padding) never wins
            continue
        ap, cp = mp
        Q, alive = cell, True
        for q, mq in enumerate(maps):
            if q == p or mq is None:
                continue
            aq, cq = mq
            da = tuple(u - v for u, v in zip(ap, aq, strict=True))
            dc = cp - cq
            if all(v == 0 for v in da):  # a constant difference
                if dc < 0 or (dc == 0 and q < p):
                    alive = False
                    break
                continue
            if dim == 2:
                Q = _clip(Q, da, dc, F(0), 1)
                if len(Q) < 3:
                    alive = False
                    break
            else:
                lo, hi = Q
                r = -dc / da[0]  # da . x + dc >= 0
                lo, hi = (max(lo, r), hi) if da[0] > 0 else (lo, min(hi, r))
                if hi <= lo:
                    alive = False
                    break
                Q = (lo, hi)
        if not alive:
            continue
        if dim == 2 and _area2(Q) > 0:
            out.append((p, _drop_collinear(Q)))
        elif dim == 1:
            out.append((p, Q))
    return out


def _cells(spec, domain):
    dim, start = exact_domain(domain)
    layers = _layers(spec)
    eye = [tuple(F(int(i == k)) for k in range(dim)) for i in range(dim)]
    cells = [((), start, eye, [F(0)] * dim)]
    split = _split_2d if dim == 2 else _split_1d
    for layer in layers:
        new = []
        for pat, cell, J, c in cells:
            zJ, zc = _affine(layer, J, c)
            if layer.kind == "affine":
                new.append((pat, cell, zJ, zc))
                continue
            parts = [((), cell)]
            if layer.kind == "units":
                bps = layer.act[0]
                for j in range(len(zc)):
                    a = zJ[j] if dim == 2 else zJ[j][0]
                    parts = [(lp + (k,), g) for lp, cj in parts for k, g in split(cj, a, zc[j], bps)]
            else:
                for w in layer.windows:
                    maps = [(zJ[i], zc[i]) if i >= 0 else None for i in w]
                    parts = [(lp + (p,), g) for lp, cj in parts for p, g in _max_split(cj, maps, dim)]
            for lp, g in parts:
                new.append((pat + lp, g, *_output(layer, zJ, zc, lp)))
        cells = new
    return dim, start, cells


def _output(layer, zJ, zc, pieces):
    if layer.kind == "units":
        _, sl, ic = layer.act
        J = [tuple(sl[k] * v for v in row) for row, k in zip(zJ, pieces, strict=True)]
        c = [sl[k] * z + ic[k] for z, k in zip(zc, pieces, strict=True)]
        return J, c
    idx = [int(w[p]) for w, p in zip(layer.windows, pieces, strict=True)]
    return [zJ[i] for i in idx], [zc[i] for i in idx]


def exact_max_regions(spec, domain) -> ExactMap:
    """The exact activation regions of the network ``spec`` (see the module
    docstring) over ``domain`` (an interval, a box or a convex polygon)."""
    return exact_map(*_cells(spec, domain))


def exact_max_forward(spec, x):
    """Exact output and pattern of the network ``spec`` at a point ``x`` (floats
    or Fractions)."""
    h = [v if isinstance(v, Fraction) else F(float(v)) for v in np.asarray(x, dtype=object).reshape(-1)]
    pattern = []
    for layer in _layers(spec):
        z = [
            sum((w * v for w, v in zip(row, h, strict=True)), F(0)) + bj for row, bj in zip(layer.W, layer.b)
        ]
        if layer.kind == "affine":
            h = z
        elif layer.kind == "units":
            bps, sl, ic = layer.act
            ks = [_piece(bps, v) for v in z]
            pattern += ks
            h = [sl[k] * v + ic[k] for v, k in zip(z, ks, strict=True)]
        else:
            ps = []
            for w in layer.windows:
                vals = [z[i] for i in w]
                ps.append(max((p for p in range(len(vals)) if w[p] >= 0), key=lambda p, vals=vals: (vals[p], -p)))
            pattern += ps
            h = [z[int(w[p])] for w, p in zip(layer.windows, ps, strict=True)]
    return h, tuple(pattern)


def relu_maxout_twins(rng, n_in, widths, bias_scale=1.0):
    """A ReLU network and the maxout network (k = 2) that computes it, each
    unit ``max(z, 0)`` with a zero row for the second entry: the same regions.
    Returns ``(relu, maxout)`` as regiongeom networks."""
    import regiongeom as rg

    ws, bs, mws, mbs, prev = [], [], [], [], n_in
    for n in widths:
        W, b = rng.normal(size=(n, prev)), rng.normal(size=n) * bias_scale
        ws.append(W)
        bs.append(b)
        W2, b2 = np.zeros((2 * n, prev)), np.zeros(2 * n)
        W2[0::2], b2[0::2] = W, b
        mws.append(W2)
        mbs.append(b2)
        prev = n
    Wo, bo = rng.normal(size=(1, prev)), rng.normal(size=1)
    relu = rg.Network.from_arrays(ws + [Wo], bs + [bo], ["relu"] * len(widths) + [None])
    return relu, rg.Network.maxout(mws + [Wo], mbs + [bo], 2)
