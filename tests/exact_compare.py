"""The engine against the exact reference: ``compare(net, domain)``.

Runs ``rg.activation_regions``, ``rg.nonlinear_locus`` and
``rg.linear_regions`` and lists every disagreement with
:func:`exact_reference.exact_regions`: region count, the multiset of
patterns, measures, locus volume (and per neuron), linear-region count,
``net(x) == J x + c`` at each engine region's interior point (evaluated
exactly), and ``rm.locate`` against the forward pass at random points.
"""

from __future__ import annotations

import math
from fractions import Fraction as F

import numpy as np
from exact_reference import exact_forward, exact_layers, exact_regions

__all__ = ["compare"]


def _magnitude(layers, x, pattern) -> np.ndarray:
    """(n_out,) size of the terms summed for the output at ``x`` on ``pattern``:
    ``|W| h + |b|`` through the layers, each neuron scaled by its piece's
    ``|slope|`` plus ``|intercept|``. It bounds the rounding error of any float
    evaluation of the affine map there (up to a factor of a few ulps per layer)."""
    h = np.abs(np.asarray(x, dtype=np.float64))
    pos = 0
    for layer in layers:
        W = np.abs(np.array([[float(v) for v in row] for row in layer.W]))
        m = W @ h + np.abs(np.array([float(v) for v in layer.b]))
        if layer.act is not None:
            ks = pattern[pos : pos + len(m)]
            pos += len(m)
            sl = np.abs(np.array([float(layer.act[1][k]) for k in ks]))
            ic = np.abs(np.array([float(layer.act[2][k]) for k in ks]))
            m = sl * m + ic
        h = m
    return h


def _sample(domain, n, rng) -> np.ndarray:
    """(n, dim) uniform points in the domain."""
    import shapely

    if isinstance(domain, shapely.Geometry):
        x0, y0, x1, y1 = domain.bounds
        pts = np.zeros((0, 2))
        while len(pts) < n:
            cand = rng.uniform((x0, y0), (x1, y1), size=(4 * n, 2))
            pts = np.vstack([pts, cand[shapely.contains_xy(domain, cand[:, 0], cand[:, 1])]])
        return pts[:n]
    d = np.asarray(domain, dtype=np.float64)
    if d.size == 2:
        return rng.uniform(d[0], d[1], size=(n, 1))
    return rng.uniform(d[:2], d[2:], size=(n, 2))


def compare(net, domain, *, exact=None, n_points=500, rng=0) -> list:
    """Run the engine and the exact reference; list every disagreement.

    Each string starts with its kind: ``engine-error``, ``count``,
    ``patterns``, ``measure``, ``locus``, ``locus-neuron``, ``linear``,
    ``affine`` or ``locate``. An empty list means full agreement.

    Parameters
    ----------
    net : rg.Network
    domain : (lo, hi), box or convex shapely Polygon
    exact : ExactMap, optional
        The reference, when already computed.
    n_points : int
        Random points for the ``rm.locate`` vs ``net.patterns`` check.
    """
    import regiongeom as rg

    ex = exact_regions(net, domain) if exact is None else exact
    try:
        rm = rg.activation_regions(net, domain)
        loc = rg.nonlinear_locus(rm)
        n_lin = len(rg.linear_regions(rm))
    except Exception as exc:  # the engine's failure is a disagreement, not a test error
        return [f"engine-error: {type(exc).__name__}: {exc}"]
    out = _compare_regions(rm, ex)
    out += _compare_locus(loc, ex)
    if n_lin != ex.n_linear:
        out.append(f"linear: {n_lin} linear regions, exact {ex.n_linear}")
    out += _compare_affine(rm, exact_layers(net), ex)
    out += _compare_locate(rm, net, domain, n_points, np.random.default_rng(rng))
    return out


def _compare_regions(rm, ex) -> list:
    out = []
    if len(rm) != len(ex.regions):
        out.append(f"count: {len(rm)} regions, exact {len(ex.regions)}")
    eng = {}
    for r, p in enumerate(map(tuple, rm.patterns.tolist())):
        eng.setdefault(p, []).append(r)
    exact = {r.pattern: r for r in ex.regions}
    dup = [p for p, rs in eng.items() if len(rs) > 1]
    if dup:
        out.append(f"patterns: engine repeats {len(dup)} pattern(s), e.g. {list(dup[0])}")
    missing = [p for p in exact if p not in eng]
    extra = [p for p in eng if p not in exact]
    if missing:
        big = max(missing, key=lambda p: exact[p].measure)
        out.append(
            f"patterns: {len(missing)} exact region(s) missing from the engine, largest "
            f"{list(big)} of measure {float(exact[big].measure):.6g}"
        )
    if extra:
        out.append(f"patterns: {len(extra)} engine pattern(s) not in the exact map, e.g. {list(extra[0])}")
    tol = 1e-9 * float(ex.domain_measure)
    worst = None
    for p, rs in eng.items():
        if p in exact and len(rs) == 1:
            err = abs(float(rm.measures[rs[0]]) - float(exact[p].measure))
            if err > tol and (worst is None or err > worst[0]):
                worst = (err, p)
    if worst:
        p = worst[1]
        out.append(
            f"measure: region {list(p)} has measure {rm.measures[eng[p][0]]:.9g}, exact "
            f"{float(exact[p].measure):.9g}"
        )
    return out


def _compare_locus(loc, ex) -> list:
    if ex.dim == 1:
        got, want = np.sort(loc.points), ex.locus_points()
        if len(got) != len(want):
            return [f"locus: {len(got)} locus points, exact {len(want)}: {[float(v) for v in want][:8]}"]
        width = float(ex.domain_measure)
        err = max((abs(F(float(g)) - w) for g, w in zip(got, want)), default=F(0))
        if err > F(1e-9) * F(width):
            return [f"locus: locus points off by {float(err):.3g}"]
        return _compare_locus_neurons(loc, ex, 0.5)
    got, want = loc.volume(), ex.locus_volume()
    tol = 1e-9 * max(want, math.sqrt(float(ex.domain_measure)))
    if abs(got - want) > tol:
        return [f"locus: locus length {got:.9g}, exact {want:.9g}"]
    return _compare_locus_neurons(loc, ex, tol)


def _compare_locus_neurons(loc, ex, tol) -> list:
    """The locus volume on each neuron (the first of the neurons sharing an edge)."""
    got = loc.volume_per_neuron()
    want = np.zeros_like(got)
    for e in ex.locus_edges:
        want[e.neurons[0]] += e.length()
    bad = np.nonzero(np.abs(got - want) > tol)[0]
    if bad.size:
        j = int(bad[0])
        return [f"locus-neuron: locus on neuron {j} measures {got[j]:.9g}, exact {want[j]:.9g}"]
    return []


def _compare_affine(rm, layers, ex=None) -> list:
    """``net(x) == J x + c`` at every engine region's interior point, exactly
    evaluated. A region whose float vertices coincide (positive exact measure,
    reported with measure 0.0) has no float point inside: its map is compared
    with the exact region of the same pattern at the float point nearest that
    region's exact interior point instead."""
    pts = rm.interior_points()
    by_pattern = {tuple(r.pattern): r for r in ex.regions} if ex is not None else {}
    bad = []
    for r, x in enumerate(pts):
        ref = by_pattern.get(tuple(int(v) for v in rm.patterns[r])) if rm.measures[r] == 0.0 else None
        if ref is not None:
            x = np.array([float(v) for v in ref.interior_point()])
            xe = [F(float(v)) for v in x]
            y = [sum((j * v for j, v in zip(row, xe)), F(0)) + c for row, c in zip(ref.jacobian, ref.offset)]
            pat = ref.pattern
        else:
            y, pat = exact_forward(None, x, layers)
        eng = rm.jacobians[r] @ x + rm.offsets[r]
        err = np.array([abs(F(float(e)) - v) for e, v in zip(eng, y)], dtype=float)
        tol = 1e-9 * _magnitude(layers, x, pat)
        if np.any(err > tol):
            bad.append((float(np.max(err)), r, x))
    if not bad:
        return []
    err, r, x = max(bad, key=lambda b: b[0])
    return [
        f"affine: net(x) != J x + c on {len(bad)} region(s), worst region {r} at x={x.tolist()}, error {err:.3g}"
    ]


def _compare_locate(rm, net, domain, n, rng) -> list:
    """The located region's pattern vs the forward pass at random points
    (float first; a mismatch is confirmed by exact evaluation)."""
    pts = _sample(domain, n, rng)
    idx = rm.locate(pts)
    if np.any(idx < 0):
        return [f"locate: {int(np.sum(idx < 0))} of {n} points inside the domain located outside"]
    fwd = net.patterns(pts)
    sus = np.nonzero(np.any(rm.patterns[idx] != fwd, axis=1))[0]
    layers = exact_layers(net) if len(sus) else None
    wrong = [i for i in sus if tuple(rm.patterns[idx[i]].tolist()) != exact_forward(None, pts[i], layers)[1]]
    if wrong:
        return [f"locate: rm.locate disagrees with the forward pass at {len(wrong)} of {n} random points"]
    return []
