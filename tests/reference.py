"""A slow, obviously correct reference enumerator of activation regions.

Written independently of the package internals: it reads only the network's
public attributes (``weights``, ``biases``, ``activations[i].breakpoints``,
``.slopes``, ``.intercepts``) and uses shapely for areas, the final
intersection with a non-convex domain and its connected pieces.

2D: start from the domain's convex hull. For every layer, every current
region carries the affine map ``h = J x + c`` of the layer's input (exact,
from the region's pattern), so every neuron's preactivation
``z_j = a_j . x + c_j`` is affine on it. Each neuron in turn clips every
region into its activation pieces ``t_{k-1} <= z_j <= t_k`` and keeps the
pieces of positive area. The regions stay convex, so each half-plane clip is
the textbook Sutherland–Hodgman step on the region's vertex list. (shapely's
overlay is not used for the clipping: with GEOS 3.14 ``P.intersection(H)``
returned a MULTIPOINT for a polygon ``P`` lying inside the half-plane ``H``
with one edge on its line, while ``H.intersection(P)`` returned ``P``; the
clipping here decides every vertex's side once, by the sign of ``z_j - t``.)
At the end each convex region is intersected with the domain (if the domain
is not convex) and split into its connected pieces.

1D: the same with intervals; the roots of affine functions are exact.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import Polygon, box

AREA_RTOL = 1e-14  # pieces smaller than this fraction of the domain are dropped (rounding slivers)


def _layers(net):
    for w, b, a in zip(net.weights, net.biases, net.activations, strict=True):
        yield np.asarray(w, float), np.asarray(b, float), a


def _apply_piece(act, z_J, z_c, piece):
    """The affine map of ``act(z)`` on the given pieces: ``(J, c)`` rows scaled."""
    s = np.asarray(act.slopes)[piece]
    i = np.asarray(act.intercepts)[piece]
    return z_J * s[:, None], z_c * s + i


# ---------------------------------------------------------------- 2D ----
def _area(P):
    return Polygon(P).area if len(P) >= 3 else 0.0


def _clip_halfplane(P, f):
    """Sutherland–Hodgman: the part of the convex polygon ``P`` (vertex list)
    where the affine function with vertex values ``f`` is >= 0."""
    out = []
    n = len(P)
    for i in range(n):
        p, q, fp, fq = P[i], P[(i + 1) % n], f[i], f[(i + 1) % n]
        if fp >= 0:
            out.append(p)
        if (fp > 0 > fq) or (fp < 0 < fq):
            u = fp / (fp - fq)
            out.append(p + u * (q - p))
    return np.array(out) if len(out) >= 3 else None


def _clip(P, a, c, lo, hi, min_area):
    """``P ∩ {lo <= a . x + c <= hi}`` (``lo``/``hi`` may be None = infinite)."""
    for t, side in ((lo, 1.0), (hi, -1.0)):
        if t is None:
            continue
        P = _clip_halfplane(P, side * (P @ a + c - t))
        if P is None:
            return None
    return P if _area(P) > min_area else None


def _polygon_parts(geom, min_area):
    """The polygons of positive area inside any shapely geometry."""
    if geom.is_empty:
        return []
    if geom.geom_type == "Polygon":
        return [geom] if geom.area > min_area else []
    parts = []
    for g in getattr(geom, "geoms", []):
        parts += _polygon_parts(g, min_area)
    return parts


def regions_2d(net, domain):
    """Reference activation regions of a 2-input network.

    Parameters
    ----------
    net : rg.Network
    domain : (xmin, ymin, xmax, ymax) or shapely Polygon

    Returns
    -------
    list of (pattern tuple, shapely Polygon), one entry per connected region.
    """
    dom = box(*domain) if not isinstance(domain, shapely.Geometry) else domain
    min_area = AREA_RTOL * dom.area
    hull = dom.convex_hull
    convex = len(dom.interiors) == 0 and hull.area - dom.area <= 1e-14 * hull.area
    start = np.asarray(shapely.normalize(hull).exterior.coords)[:-1]
    if Polygon(start).exterior.is_ccw is False:
        start = start[::-1]
    # region: (pattern list, convex vertex array, J (n, 2), c (n,)) with h = J x + c
    regions = [([], start, np.eye(2), np.zeros(2))]
    for w, b, act in _layers(net):
        new = []
        for pat, P, J, c in regions:
            zJ, zc = w @ J, w @ c + b  # z = zJ x + zc on this region
            if act is None:
                new.append((pat, P, zJ, zc))
                continue
            bps = [float(t) for t in act.breakpoints]
            bounds = [None] + bps + [None]
            pieces = [([], P)]  # (pieces of this layer's neurons so far, polygon)
            for j in range(w.shape[0]):
                if not np.any(zJ[j]):  # constant on the region: one piece, right-continuous
                    k = sum(t <= zc[j] for t in bps)
                    pieces = [(lp + [k], g) for lp, g in pieces]
                    continue
                pieces = [
                    (lp + [k], gk)
                    for lp, g in pieces
                    for k in range(len(bps) + 1)
                    if (gk := _clip(g, zJ[j], zc[j], bounds[k], bounds[k + 1], min_area)) is not None
                ]
            for lp, g in pieces:
                hJ, hc = _apply_piece(act, zJ, zc, np.array(lp, dtype=int))
                new.append((pat + lp, g, hJ, hc))
        regions = new
    out = []
    for pat, P, _, _ in regions:
        geom = Polygon(P)
        if not convex:
            geom = geom.intersection(dom)
        for part in _polygon_parts(geom, min_area):
            out.append((tuple(pat), part))
    total = sum(g.area for _, g in out)
    assert abs(total - dom.area) <= 1e-9 * dom.area, f"reference lost area: {total} != {dom.area}"
    return out


# ---------------------------------------------------------------- 1D ----
def regions_1d(net, domain):
    """Reference activation regions of a 1-input network.

    Returns
    -------
    list of (pattern tuple, (lo, hi)), sorted by position.
    """
    lo, hi = float(domain[0]), float(domain[1])
    min_len = AREA_RTOL * (hi - lo)
    # interval: (pattern list, lo, hi, J (n,), c (n,)) with h = J x + c
    regions = [([], lo, hi, np.ones(1), np.zeros(1))]
    for w, b, act in _layers(net):
        new = []
        for pat, a, e, J, c in regions:
            zJ, zc = w @ J, w @ c + b
            if act is None:
                new.append((pat, a, e, zJ, zc))
                continue
            bps = np.asarray(act.breakpoints, float)
            # every root of z_j(x) = t inside (a, e) cuts the interval
            roots = []
            for j in range(w.shape[0]):
                if zJ[j] == 0:
                    continue
                for t in bps:
                    r = (t - zc[j]) / zJ[j]
                    if a + min_len < r < e - min_len:
                        roots.append(float(r))
            cuts = [a]
            for r in sorted(roots):  # roots closer than min_len are one cut
                if r - cuts[-1] > min_len:
                    cuts.append(r)
            cuts.append(e)
            for u, v in zip(cuts[:-1], cuts[1:], strict=True):
                mid = 0.5 * (u + v)
                zmid = zJ * mid + zc
                piece = np.array([int(np.sum(bps <= z)) for z in zmid])
                hJ, hc = _apply_piece(act, zJ[:, None], zc, piece)
                new.append((pat + piece.tolist(), u, v, hJ[:, 0], hc))
        regions = new
    return [(tuple(p), (a, e)) for p, a, e, _, _ in regions]
