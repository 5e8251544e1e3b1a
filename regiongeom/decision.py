"""The exact decision boundary of a classifier on a 2D region map.

On every activation region the network is affine, so each logit is an affine
function there and the set where the top two logits tie is a union of
straight segments: for each pair of logits ``(i, k)``, the tie line
``l_i(x) = l_k(x)`` clipped to the region and to the half-planes where both
are at least every other logit. Clipping is done in the line's own
parameter, from the region's edges and the other logits' half-planes.

Whether two logits have a tie line on a region at all (their gradients
differ) is decided exactly: in float64 with a bound on the rounding error of
the two Jacobian rows, and in exact arithmetic when the difference is
within it (then the line is also taken from the exact maps, rounded once).
The clipping is float64 on the regions' rounded vertices: a segment's ends
are rounded, and a tie line that only touches a region is dropped when its
piece is shorter than ``1e-12`` of the domain's diameter.
"""

from __future__ import annotations

import numpy as np

__all__ = ["decision_boundary"]

# segments shorter than this fraction of the domain's diameter are dropped: the clipping
# works on the regions' rounded vertices, so a line touching a region at one point may
# come out as a segment of rounding length
_MIN_LENGTH_RTOL = 1e-12


def decision_boundary(rm) -> np.ndarray:
    """Segments where the top two logits of a classifier tie, region by region.

    Parameters
    ----------
    rm : RegionMap
        A 2D map from :func:`regiongeom.activation_regions` of a network with
        ``n_out >= 2`` outputs (the logits).

    Returns
    -------
    (S, 2, 2) ndarray of float64
        Segment end points ``(segment, end, (x, y))``. Along each segment two
        logits are equal and at least every other logit, so the argmax
        changes across it; segments of neighbouring regions meet end to end.

    Examples
    --------
    >>> import regiongeom as rg
    >>> net = rg.Network.from_arrays([[[1.0, 0.0], [0.0, 1.0]]], [[0.0, 0.0]], [None])
    >>> rg.decision_boundary(rg.activation_regions(net, (-1, -1, 1, 1)))
    array([[[-1., -1.],
            [ 1.,  1.]]])
    """
    from .regions import RegionMap

    if not isinstance(rm, RegionMap):
        raise TypeError(
            f"decision_boundary expects the RegionMap of rg.activation_regions, got {type(rm).__name__}"
        )
    if rm.dim != 2:
        raise ValueError("decision_boundary needs a 2D region map (a 2-input network or net.restrict(plane))")
    n_out = rm.net.n_out
    if n_out < 2:
        raise ValueError(
            f"decision_boundary needs a classifier with at least 2 outputs (logits); this network has {n_out}"
        )
    jac, off = rm.jacobians, rm.offsets  # (R, n_out, 2), (R, n_out)
    convex = rm.domain.convex
    polys = rm.polygons if convex else [np.asarray(s.convex_hull.exterior.coords)[:-1] for s in rm.shapes]
    edges_n, edges_c = _edge_halfplanes(polys)  # (R, K, 2), (R, K): n . x + c >= 0 inside
    x0, y0, x1, y1 = rm.domain.polygon.bounds
    min_len = _MIN_LENGTH_RTOL * float(np.hypot(x1 - x0, y1 - y0))
    out = []
    for i in range(n_out):
        for k in range(i + 1, n_out):
            segs, reg = _pair_segments(rm, jac, off, i, k, edges_n, edges_c, min_len)
            if not convex and len(segs):
                segs = _clip_to_shapes(segs, [rm.shapes[r] for r in reg], min_len)
            out.append(segs)
    return np.concatenate(out, axis=0) if out else np.zeros((0, 2, 2))


def _edge_halfplanes(polys):
    """Inner half-planes of counter-clockwise convex polygons, padded with ``0 . x + 1 >= 0``."""
    kmax = max(len(p) for p in polys)
    n = np.zeros((len(polys), kmax, 2))
    c = np.ones((len(polys), kmax))
    for r, p in enumerate(polys):
        p = np.asarray(p, dtype=np.float64)
        if _signed_area(p) < 0:
            p = p[::-1]
        e = np.roll(p, -1, axis=0) - p
        # left of the edge a -> b: cross(b - a, x - a) >= 0  <=>  (-e_y, e_x) . x - (-e_y, e_x) . a >= 0
        nr = np.column_stack([-e[:, 1], e[:, 0]])
        n[r, : len(p)] = nr
        c[r, : len(p)] = -np.einsum("ij,ij->i", nr, p)
    return n, c


def _signed_area(p):
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _pair_segments(rm, jac, off, i, k, edges_n, edges_c, min_len):
    """Segments of every region where logits i and k tie and are the top two (or tied top)."""
    a, c, ok = _tie_lines(rm, jac, off, i, k)  # tie line: a . x + c = 0
    a, c = a[ok], c[ok]
    na = np.linalg.norm(a, axis=1)
    reg = np.flatnonzero(ok)
    p0 = -(c / na**2)[:, None] * a  # the point of the line closest to the origin
    d = np.column_stack([-a[:, 1], a[:, 0]]) / na[:, None]  # unit direction
    # every constraint g . x + h >= 0 becomes g . d * t + (g . p0 + h) >= 0 along the line
    others = [j for j in range(jac.shape[1]) if j != i and j != k]
    g = np.concatenate([jac[reg][:, [i]] - jac[reg][:, others], edges_n[reg]], axis=1)  # (R', m, 2)
    h = np.concatenate([off[reg][:, [i]] - off[reg][:, others], edges_c[reg]], axis=1)
    slope = np.einsum("rmj,rj->rm", g, d)
    value = np.einsum("rmj,rj->rm", g, p0) + h
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -value / slope
    lo = np.where(slope > 0, t, -np.inf).max(axis=1)
    hi = np.where(slope < 0, t, np.inf).min(axis=1)
    # constraints parallel to the line: satisfied everywhere along it or nowhere
    tol = 1e-12 * np.maximum(np.abs(value).max(axis=1), 1.0)
    feasible = np.all((slope != 0) | (value >= -tol[:, None]), axis=1)
    keep = feasible & np.isfinite(lo) & np.isfinite(hi) & (hi - lo > min_len)
    p0, d, lo, hi = p0[keep], d[keep], lo[keep], hi[keep]
    segs = np.stack([p0 + lo[:, None] * d, p0 + hi[:, None] * d], axis=1)
    return segs, reg[keep]


def _tie_lines(rm, jac, off, i, k):
    """``(a, c, ok)``: the tie line ``a . x + c = 0`` of logits i and k on
    every region and whether it exists (``a != 0``), decided exactly."""
    from ._locus_exact import _Bounds, _jacobians

    a = jac[:, i] - jac[:, k]
    c = off[:, i] - off[:, k]
    if hasattr(rm.net, "stages"):  # a GraphNetwork: magnitudes through its operators
        from ._graph_maps import jacobian_magnitudes

        mag, gamma = jacobian_magnitudes(rm.net, rm.patterns)
        with np.errstate(over="ignore", invalid="ignore"):
            room = gamma * (mag[:, i] + mag[:, k]) * (1.0 + 1e-6) + 2.0**-1000
            ok = np.any(np.abs(a) > room, axis=1)
        return _exact_ties(rm, a, c, ok, np.flatnonzero(~ok), i, k)
    bounds = _Bounds(rm.net)
    up = bounds.jacobian_upper  # (n_out, n_in): magnitudes of any region's Jacobian
    with np.errstate(over="ignore", invalid="ignore"):
        ok = np.any(np.abs(a) > bounds.gamma * (up[i] + up[k]) + 2.0 * bounds.tiny, axis=1)
    left = np.flatnonzero(~ok)
    if left.size:
        _, mag = _jacobians(rm.net, rm.patterns[left], bounds)
        with np.errstate(over="ignore", invalid="ignore"):
            room = bounds.gamma * (mag[:, i] + mag[:, k]) + 2.0 * bounds.tiny
            ok[left] = np.any(np.abs(a[left]) > room, axis=1)
        left = left[~ok[left]]
    return _exact_ties(rm, a, c, ok, left, i, k)


def _exact_ties(rm, a, c, ok, left, i, k):
    """Decide the tie lines of the regions ``left`` exactly."""
    if left.size:
        from . import _exact as X
        from ._exact_graph import exact_for

        ex = exact_for(rm.net)
        a, c = a.copy(), c.copy()
        for r in left:
            m = ex.output(rm.patterns[r])
            d = X.difference(m[i], m[k]).to_float()
            ok[r] = not X.is_zero(X.difference(m[i], m[k])[: ex.n_in])
            a[r], c[r] = d[: ex.n_in], d[ex.n_in]
    return a, c, ok


def _clip_to_shapes(segs, shapes, min_len):
    """Intersect each segment with its region's (possibly non-convex) shape."""
    import shapely

    lines = shapely.linestrings(segs)
    parts = shapely.get_parts(shapely.intersection(lines, np.asarray(shapes, dtype=object)))
    parts = parts[shapely.get_type_id(parts) == 1]  # LineStrings; touching points are dropped
    out = [np.asarray(p.coords)[[0, -1]] for p in parts if p.length > min_len]
    return np.asarray(out, dtype=np.float64).reshape(-1, 2, 2)
