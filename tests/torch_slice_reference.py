"""A slow reference for the activation regions of a torch model on a plane
(or a line: :func:`line_intervals`), independent of any conversion of the model.

It runs the model itself (float64, ``torch.no_grad``) and reads the inputs of
its activation modules with forward hooks, in the order the model calls them:
each call is one *stage* of units (every entry of the tensor is one unit).
Every preactivation is a continuous function of the input, so on a cell where
a stage's preactivations are affine their values at the cell's vertices
(forward passes at the vertices themselves) determine them. Starting from the
box, every stage in turn clips every cell by each of its units' breakpoints
(Sutherland-Hodgman on the vertex values, the other units' values
interpolated along the clipped edges, exact for affine functions up to
rounding) and keeps the pieces of positive area. A cell's pattern is read by
a forward pass at its centroid.

Only activation *modules* are seen (functional calls are not hooked): use
models whose units are modules. Supported: ReLU, LeakyReLU, PReLU, ReLU6,
Hardtanh.
"""

from __future__ import annotations

import numpy as np

AREA_RTOL = 1e-12  # pieces smaller than this fraction of the box are rounding slivers


def _breakpoints(mod):
    import torch.nn as nn

    if isinstance(mod, nn.ReLU6):
        return (0.0, 6.0)
    if isinstance(mod, nn.Hardtanh):
        return (float(mod.min_val), float(mod.max_val))
    if isinstance(mod, (nn.ReLU, nn.LeakyReLU, nn.PReLU)):
        return (0.0,)
    return None


class _Probe:
    """The model's stage preactivations at plane coordinates."""

    def __init__(self, model, lift, input_shape):
        self.model, self.lift, self.shape = model, lift, tuple(input_shape)
        self.bps, self.calls = [], []
        self.mods = [m for m in model.modules() if _breakpoints(m) is not None]

    def __call__(self, uv):
        """List over stages of ``(P, n_stage)`` preactivations at ``uv`` (P, 2)."""
        import torch

        out, bps = [], []

        def hook(mod, args, _res):
            out.append(args[0].detach().reshape(args[0].shape[0], -1).numpy().copy())
            bps.append(_breakpoints(mod))

        handles = [m.register_forward_hook(hook) for m in self.mods]
        try:
            x = torch.as_tensor(self.lift(np.asarray(uv, np.float64)).reshape(-1, *self.shape))
            with torch.no_grad():
                self.model(x)
        finally:
            for h in handles:
                h.remove()
        self.bps = bps
        return out


def _clip(P, F, j, t, keep_above):
    """The part of the convex cell ``P`` (k, 2) with vertex values ``F`` (k, n)
    where ``F[:, j] >= t`` (``keep_above``) or ``<= t``; returns (P', F')."""
    s = (F[:, j] - t) * (1.0 if keep_above else -1.0)
    outP, outF = [], []
    k = len(P)
    for a in range(k):
        b = (a + 1) % k
        if s[a] >= 0:
            outP.append(P[a])
            outF.append(F[a])
        if (s[a] > 0 > s[b]) or (s[a] < 0 < s[b]):
            lam = s[a] / (s[a] - s[b])
            outP.append(P[a] + lam * (P[b] - P[a]))
            f = F[a] + lam * (F[b] - F[a])
            f[j] = t
            outF.append(f)
    return np.array(outP).reshape(-1, 2), np.array(outF).reshape(-1, F.shape[1])


def _area(P):
    if len(P) < 3:
        return 0.0
    x, y = P[:, 0], P[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def slice_regions(model, lift, input_shape, box):
    """Regions of ``model`` on the plane ``uv -> lift(uv)`` over ``box``.

    Returns ``(patterns, areas)``: ``(R, n_units)`` int8 pieces (units in the
    order the model calls its activation modules, each tensor flattened) and
    ``(R,)`` areas."""
    x0, y0, x1, y1 = box
    probe = _Probe(model, lift, input_shape)
    min_area = AREA_RTOL * (x1 - x0) * (y1 - y0)
    cells = [np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)]
    n_stages = len(probe(cells[0][:1]))
    for s in range(n_stages):
        t_list = probe.bps[s]
        new_cells = []
        for P in cells:
            F = probe(P)[s]
            pieces = [(P, F)]
            for j in range(F.shape[1]):
                for t in t_list:
                    nxt = []
                    for Q, G in pieces:
                        for above in (False, True):
                            Q2, G2 = _clip(Q, G, j, t, above)
                            if _area(Q2) > min_area:
                                nxt.append((Q2, G2))
                    pieces = nxt
            new_cells += [Q for Q, _ in pieces]
        cells = new_cells
    cent = np.array([P.mean(axis=0) for P in cells])
    pats = []
    for z, bps in zip(probe(cent), probe.bps, strict=True):
        pats.append(sum((z >= t).astype(np.int8) for t in bps))
    return np.concatenate(pats, axis=1), np.array([_area(P) for P in cells])


def line_intervals(model, lift, input_shape, interval):
    """Regions of ``model`` on the line ``t -> lift(t)`` over ``interval``: the
    same clipping on intervals (every unit's crossings of an interval where
    its stage is affine, by linear interpolation of the forward values at the
    ends). Returns ``(patterns, lengths)``, as :func:`slice_regions`."""
    lo, hi = (float(v) for v in interval)
    min_len = AREA_RTOL * (hi - lo)

    p = _Probe(model, lambda t: lift(np.asarray(t, np.float64).reshape(-1)), input_shape)
    cells = [(lo, hi)]
    n_stages = len(p(np.array([lo])))
    for s in range(n_stages):
        new_cells = []
        for a, b in cells:
            fa, fb = (v[s][0] for v in (p(np.array([a])), p(np.array([b]))))
            cuts = [a, b]
            for t in p.bps[s]:
                da, db = fa - t, fb - t
                hit = (da * db) < 0
                cuts += list(a + (b - a) * da[hit] / (da[hit] - db[hit]))
            cuts = np.unique(np.clip(cuts, a, b))
            new_cells += [(u, v) for u, v in zip(cuts[:-1], cuts[1:], strict=True) if v - u > min_len]
        cells = new_cells
    mid = np.array([(a + b) / 2 for a, b in cells])
    pats = [sum((z >= t).astype(np.int8) for t in bps) for z, bps in zip(p(mid), p.bps, strict=True)]
    return np.concatenate(pats, axis=1), np.array([b - a for a, b in cells])
