"""hypothesis strategies: small networks that stress exactness, with their domains.

Three families, each drawing ``(net, domain)``:

``coincidences``
    integer and small-rational weights with forced coincidences: duplicate,
    scaled-duplicate and parallel neurons, zero rows, dead neurons, breakpoint
    hyperplanes through domain corners and through shared anchor points (so
    several lines are concurrent and later layers pass through earlier
    vertices); every activation kind; 1 to 3 outputs; 1D and 2D; boxes and
    convex polygons.
``scales``
    the same networks with per-layer scales 10^-8 .. 10^8 and per-neuron
    scales 10^-6 .. 10^6 (on a neuron's incoming row and on its outgoing
    column).
``gaussian``
    Gaussian weights (full float mantissas), every activation kind; also
    with the scales above (``scaled_nets(gaussian=True)``).

Sizes stay within what the exact reference handles quickly: up to 3 hidden
layers of width <= 5 in 1D and 2D.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import strategies as st
from shapely.geometry import Polygon

import regiongeom as rg

# every activation kind, with constants whose intercepts are exact floats
ACTIVATIONS = {
    "relu": rg.relu,
    "leaky_relu": rg.Activation.leaky_relu(0.25),
    "leaky_relu_0.1": rg.Activation.leaky_relu(0.1),
    "hardtanh": rg.hardtanh,
    "hardtanh_asym": rg.Activation.hardtanh(-0.5, 0.75),
    "abs": rg.absolute,
    "pl3": rg.Activation("pl3", [-0.5, 0.25, 1.0], [0.25, -1.0, 0.5, 2.0], value_at_first=0.25),
}
DYADIC = ["relu", "leaky_relu", "hardtanh", "hardtanh_asym", "abs", "pl3"]  # every constant dyadic
ROW_KINDS = ["random", "random", "duplicate", "scaled", "parallel", "zero", "dead", "through", "through"]
_small = st.integers(-3, 3)
_dyadic = st.one_of(_small.map(float), st.integers(-12, 12).map(lambda k: k / 4))
_thirds = st.one_of(_dyadic, st.integers(-9, 9).map(lambda k: k / 3))


@st.composite
def domains(draw, dim):
    """An interval, a box or a convex polygon, with dyadic coordinates."""
    if dim == 1:
        lo = draw(st.integers(-8, 4)) / 4
        return (lo, lo + draw(st.integers(1, 12)) / 4)
    if draw(st.booleans()):
        x0, y0 = draw(st.integers(-8, 4)) / 4, draw(st.integers(-8, 4)) / 4
        return (x0, y0, x0 + draw(st.integers(1, 12)) / 4, y0 + draw(st.integers(1, 12)) / 4)
    pts = draw(
        st.lists(st.tuples(st.integers(-8, 8), st.integers(-8, 8)), min_size=3, max_size=7, unique=True)
    )
    hull = Polygon([(x / 4, y / 4) for x, y in pts]).convex_hull
    if hull.geom_type != "Polygon" or hull.area == 0:
        return (-1.0, -1.0, 1.0, 1.0)
    return Polygon(np.asarray(hull.exterior.coords)[:-1])


def _corners(domain, dim):
    if dim == 1:
        return [(domain[0],), (domain[1],)]
    if isinstance(domain, Polygon):
        return [tuple(p) for p in np.asarray(domain.exterior.coords)[:-1]]
    x0, y0, x1, y1 = domain
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _hidden_values(ws, bs, acts, x):
    """Exact output of the partial network ``ws`` at the float point ``x``."""
    h = [Fraction(v) for v in x]
    for w, b, a in zip(ws, bs, acts):
        z = [
            sum((Fraction(wi) * v for wi, v in zip(row, h)), Fraction(0)) + Fraction(bj)
            for row, bj in zip(w, b)
        ]
        if a is not None:
            ks = [int(np.searchsorted(a.breakpoints, float(v), side="right")) for v in z]
            z = [Fraction(a.slopes[k]) * v + Fraction(a.intercepts[k]) for v, k in zip(z, ks)]
        h = z
    return h


def _bound(ws, bs, acts, domain, dim):
    """A float upper bound of ``|h|`` over the domain for the partial network (interval arithmetic)."""
    lo = np.array([min(c[i] for c in _corners(domain, dim)) for i in range(dim)])
    hi = np.array([max(c[i] for c in _corners(domain, dim)) for i in range(dim)])
    for w, b, a in zip(ws, bs, acts):
        w = np.asarray(w)
        c, r = (lo + hi) / 2, (hi - lo) / 2
        mid, rad = w @ c + np.asarray(b), np.abs(w) @ r
        lo, hi = mid - rad, mid + rad
        if a is not None:
            vals = np.stack(
                [a(lo), a(hi)]
                + [np.where((lo <= t) & (t <= hi), a(np.full_like(lo, t)), a(lo)) for t in a.breakpoints]
            )
            lo, hi = vals.min(axis=0), vals.max(axis=0)
    return float(np.max(np.abs(np.concatenate([lo, hi])))) if len(lo) else 0.0


@st.composite
def _row(draw, ws, bs, acts, act, rows, biases, fan_in, anchors, domain, dim, values):
    kind = draw(st.sampled_from(ROW_KINDS))
    if kind in ("duplicate", "scaled", "parallel") and not rows:
        kind = "random"
    if kind == "zero":
        t = act.breakpoints if act is not None else [0.0]
        return [0.0] * fan_in, draw(st.one_of(st.sampled_from([float(v) for v in t]), values))
    if kind == "duplicate":
        i = draw(st.integers(0, len(rows) - 1))
        return list(rows[i]), biases[i]
    if kind == "scaled":
        i = draw(st.integers(0, len(rows) - 1))
        s = draw(st.sampled_from([2.0, 3.0, 0.5, -1.0, -2.0, 0.25]))
        return [s * v for v in rows[i]], s * biases[i]
    if kind == "parallel":
        i = draw(st.integers(0, len(rows) - 1))
        return list(rows[i]), draw(values)
    row = draw(st.lists(values, min_size=fan_in, max_size=fan_in))
    if kind == "random" or act is None:
        return row, draw(values)
    if kind == "dead":  # below the first breakpoint everywhere on the domain
        m = _bound(ws, bs, acts, domain, dim)
        return row, float(act.breakpoints[0]) - float(np.sum(np.abs(row))) * m - 1.0
    # "through": the breakpoint hyperplane passes through an anchor (a corner or a shared point)
    p = draw(st.sampled_from(anchors))
    t = Fraction(float(draw(st.sampled_from(list(act.breakpoints)))))
    h = _hidden_values(ws, bs, acts, p)
    b = t - sum((Fraction(w) * v for w, v in zip(row, h)), Fraction(0))
    return row, float(b)


@st.composite
def coincidence_nets(draw, dim=None, dyadic=False):
    """``(net, domain)`` with small rational weights and forced coincidences.

    ``dyadic=True``: integers and quarters only, activations with dyadic
    constants, so every coincidence is exact and there are no near misses;
    otherwise also thirds and LeakyReLU(0.1), whose roundings make near
    coincidences (regions of measure 1e-30 and the like).
    """
    values = _dyadic if dyadic else _thirds
    kinds = DYADIC if dyadic else sorted(ACTIVATIONS)
    dim = draw(st.sampled_from([1, 2])) if dim is None else dim
    domain = draw(domains(dim))
    inner = [
        draw(st.tuples(*(st.integers(1, 3) for _ in range(dim)))) for _ in range(draw(st.integers(0, 2)))
    ]
    corners = _corners(domain, dim)
    lo = [min(c[i] for c in corners) for i in range(dim)]
    hi = [max(c[i] for c in corners) for i in range(dim)]
    # shared anchor points inside the bounding box, dyadic: lines through them are concurrent
    anchors = corners + [tuple(lo[i] + (hi[i] - lo[i]) * q[i] / 4 for i in range(dim)) for q in inner]
    n_hidden = draw(st.integers(1, 3))
    widths = [draw(st.integers(1, 5 if dim == 2 else 4)) for _ in range(n_hidden)]
    one_kind = draw(st.booleans())
    kind0 = draw(st.sampled_from(kinds))
    ws, bs, acts = [], [], []
    fan_in = dim
    for width in widths + [draw(st.integers(1, 3))]:
        last = len(ws) == n_hidden
        kind = kind0 if one_kind else draw(st.sampled_from(kinds))
        act = None if last and draw(st.integers(0, 3)) else ACTIVATIONS[kind]
        rows, biases = [], []
        for _ in range(width):
            r, b = draw(_row(ws, bs, acts, act, rows, biases, fan_in, anchors, domain, dim, values))
            rows.append(r)
            biases.append(b)
        ws.append(rows)
        bs.append(biases)
        acts.append(act)
        fan_in = width
    return rg.Network.from_arrays(ws, bs, acts), domain


def _powers(draw, n, lo, hi):
    return [10.0 ** draw(st.floats(lo, hi, allow_nan=False)) for _ in range(n)]


@st.composite
def scaled_nets(draw, dim=None, dyadic=False, gaussian=False):
    """A coincidence (or Gaussian) network with per-layer scales 10^-8..10^8 and
    per-neuron scales 10^-6..10^6 on incoming rows (with the bias) and outgoing columns."""
    net, domain = draw(gaussian_nets(dim) if gaussian else coincidence_nets(dim, dyadic))
    ws = [np.array(w) for w in net.weights]
    bs = [np.array(b) for b in net.biases]
    layer_s = _powers(draw, len(ws), -8, 8) if draw(st.booleans()) else [1.0] * len(ws)
    for i in range(len(ws)):
        ws[i] *= layer_s[i]
        bs[i] *= layer_s[i]
        if draw(st.booleans()):
            row_s = np.array(_powers(draw, ws[i].shape[0], -6, 6))
            ws[i] *= row_s[:, None]
            bs[i] *= row_s
        if i > 0 and draw(st.booleans()):
            ws[i] *= np.array(_powers(draw, ws[i].shape[1], -6, 6))[None, :]
    return rg.Network.from_arrays(ws, bs, net.activations), domain


@st.composite
def gaussian_nets(draw, dim=None):
    """Gaussian weights (std 1/sqrt(fan_in)) and biases (std 0.5), every activation kind."""
    dim = draw(st.sampled_from([1, 2])) if dim is None else dim
    domain = draw(domains(dim))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    widths = [draw(st.integers(2, 5 if dim == 2 else 4)) for _ in range(draw(st.integers(1, 3)))]
    kind = draw(st.sampled_from(sorted(ACTIVATIONS)))
    ws, bs, acts = [], [], []
    d = dim
    for w in widths + [draw(st.integers(1, 3))]:
        ws.append(rng.normal(size=(w, d)) / np.sqrt(d))
        bs.append(rng.normal(size=w) * 0.5)
        acts.append(ACTIVATIONS[kind])
        d = w
    acts[-1] = None
    return rg.Network.from_arrays(ws, bs, acts), domain


# ------------------------------------------------------------- survey ----
def kinds_of(disagreements, exact) -> set:
    """Short kinds of a compare() result; missing regions split into slivers
    (exact measure <= 1e-9 of the domain's) and large ones."""
    out = set()
    for d in disagreements:
        kind = d.split(":", 1)[0]
        if kind == "patterns" and "missing" in d:
            meas = float(d.rsplit("of measure", 1)[1])
            kind = "missing-sliver" if meas <= 1e-9 * float(exact.domain_measure) else "missing-large"
        elif kind == "patterns":
            kind = "wrong-pattern"
        out.add(kind)
    if "locus" in out and not out & {"count", "missing-sliver", "missing-large", "wrong-pattern"}:
        out.add("locus-only")
    return out


def _run_family(strategy, n) -> list:
    """[(net, domain, exact region count, reference seconds, kinds, disagreements)] of n random examples."""
    import time
    import warnings

    from exact_compare import compare
    from exact_reference import exact_regions
    from hypothesis import HealthCheck, Phase, given, settings

    rows = []

    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(case):
        net, domain = case
        t = time.perf_counter()
        ex = exact_regions(net, domain)
        t = time.perf_counter() - t
        d = compare(net, domain, exact=ex, n_points=200)
        rows.append((net, domain, len(ex.regions), t, kinds_of(d, ex), d))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run()
    return rows


SURVEY = {
    "dyadic": lambda: coincidence_nets(dyadic=True),
    "near": coincidence_nets,
    "scales": scaled_nets,
    "gaussian": gaussian_nets,
    "gaussian_scales": lambda: scaled_nets(gaussian=True),
}


def survey(n, families=None) -> dict:
    """Disagreement table of ``n`` random examples per family (see ``SURVEY``)."""
    return {name: _run_family(SURVEY[name](), n) for name in families or SURVEY}


if __name__ == "__main__":
    import sys
    from collections import Counter

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    for name, rows in survey(n, sys.argv[2:] or None).items():
        for dim in (1, 2):
            sub = [r for r in rows if r[0].n_in == dim]
            bad = [r for r in sub if r[4]]
            kinds = Counter(k for r in bad for k in r[4])
            big = max(sub, key=lambda r: r[2], default=None)
            print(
                f"{name:9s} {dim}D: {len(bad)}/{len(sub)} disagree ({len(bad) / max(len(sub), 1):.1%}); {dict(kinds)}"
            )
            if big:
                slow = max(sub, key=lambda r: r[3])
                print(
                    f"    reference: largest {big[2]} regions in {big[3]:.2f} s; slowest {slow[3]:.2f} s ({slow[2]} regions)"
                )
