"""Input normalisation and validation, in one place.

Every public function sends its inputs through these helpers first, so bad
input fails with a ValueError/TypeError that names the problem before any
heavy work, and everything behind them may trust its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

# Reading a user's domain polygon: vertices closer than this fraction of its
# size are one vertex, and nearly collinear ones are merged. This normalises
# the input; it decides nothing about the network's regions.
GEOM_RTOL = 1e-12


def require_no_max_units(net, what: str, method: str | None = None, fix: str = "") -> None:
    """A one-line TypeError when ``net`` has stages of max units (MaxPool,
    max/amax, maxout), which ``what`` does not handle yet (``fix``: what to
    do instead, appended)."""
    stages = [s for s in getattr(net, "stages", ()) if getattr(s, "windows", None) is not None]
    if not stages:
        return
    names = ", ".join(repr(s.name) for s in stages[:3]) + (", ..." if len(stages) > 3 else "")
    if method == "theorem2":
        raise TypeError(
            f"{what}: the network has max units (MaxPool, max/amax or maxout, in stages {names}), and "
            "Theorem 2 sums over neurons with a bias of their own and breakpoints, which a max unit does not have (its "
            "pieces meet where two of its entries tie); use method='definition' (eq. 3 at a finite eps), "
            "which takes them"
        )
    if method == "theorem6":
        raise TypeError(
            f"{what}: the network has max units (MaxPool, max/amax or maxout, in stages {names}), and "
            "Theorem 6 as stated sums over pairs of neurons with biases of their own and breakpoints, which max "
            "units do not have; neither method of vertex_density takes them yet (activation_regions and "
            "nonlinear_locus(...).vertices do)"
        )
    raise TypeError(
        f"{what}: max units (MaxPool, max/amax or maxout, in stages {names}) are not supported here yet; "
        f"net(x), net.patterns, net.restrict, activation_regions, nonlinear_locus, linear_regions and "
        f"lc_density(method='definition') take them{fix}"
    )


def require_network(net, what: str) -> None:
    """A one-line TypeError unless ``net`` is an ``rg.Network`` (graph networks
    get one that says what works on them today)."""
    from .network import Network

    require_no_max_units(net, what)

    if isinstance(net, Network):
        return
    if hasattr(net, "stages"):
        raise TypeError(
            f"{what} does not take graph networks (convolutions, residual blocks) yet; lc_density, "
            "local_complexity, local_rank, total_variation, not_good_count and, on a plane, "
            "activation_regions, nonlinear_locus, linear_regions and decision_boundary do"
        )
    raise TypeError(
        f"expected an rg.Network, got {type(net).__name__} (convert torch modules with rg.from_torch)"
    )


def _finite_array(x, what: str) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be numeric arrays of float64, got {type(x).__name__}") from exc
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} contains NaN or inf; only finite values are allowed")
    return a


def check_layers(weights, biases, activations):
    """Validate per-layer weights, biases and activations; return float64 copies."""
    if not (len(weights) == len(biases) == len(activations)):
        raise ValueError(
            f"weights, biases and activations need one entry per layer; got "
            f"{len(weights)}, {len(biases)} and {len(activations)}"
        )
    if len(weights) == 0:
        raise ValueError("a network needs at least one layer")
    ws, bs = [], []
    prev = None
    for i, (w, b) in enumerate(zip(weights, biases)):
        w = _finite_array(w, f"weights[{i}]").copy()
        b = _finite_array(b, f"biases[{i}]").reshape(-1).copy()
        if w.ndim != 2 or w.shape[0] == 0 or w.shape[1] == 0:
            raise ValueError(f"weights[{i}] must be a non-empty 2D array (n_out, n_in), got shape {w.shape}")
        if b.shape[0] != w.shape[0]:
            raise ValueError(f"biases[{i}] has {b.shape[0]} entries but weights[{i}] has {w.shape[0]} rows")
        if prev is not None and w.shape[1] != prev:
            raise ValueError(
                f"layer shapes do not chain: weights[{i}] takes {w.shape[1]} inputs but "
                f"layer {i - 1} has {prev} outputs"
            )
        prev = w.shape[0]
        w.setflags(write=False)
        b.setflags(write=False)
        ws.append(w)
        bs.append(b)
    return ws, bs, list(activations)


def as_points(x, n_in: int, what: str = "points") -> np.ndarray:
    """(P, n_in) float64 points; a flat (P,) array is accepted when n_in == 1."""
    a = _finite_array(x, what)
    if a.ndim == 0 and n_in == 1:
        a = a.reshape(1, 1)
    elif a.ndim == 1 and n_in == 1:
        a = a.reshape(-1, 1)
    elif a.ndim == 1 and a.shape[0] == n_in:
        a = a.reshape(1, n_in)
    if a.ndim != 2 or a.shape[1] != n_in:
        raise ValueError(
            f"{what} must have shape (P, {n_in}) for a network with {n_in} inputs, got {a.shape}"
        )
    return a


def positive(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)


def integer_at_least(value, lowest: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < lowest:
        raise ValueError(f"{what} must be an integer >= {lowest}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Domain:
    """A validated domain.

    dim 1: ``interval = (lo, hi)``. dim 2: ``polygon`` (shapely), ``convex``,
    and ``pieces``: a conforming list of CCW convex vertex arrays covering it
    (one piece when the domain is convex; a constrained triangulation
    otherwise).
    """

    dim: int
    interval: tuple | None = None
    polygon: object = None
    convex: bool = True
    pieces: tuple = ()

    @property
    def measure(self) -> float:
        if self.dim == 1:
            return self.interval[1] - self.interval[0]
        return float(self.polygon.area)

    @property
    def scale(self) -> float:
        if self.dim == 1:
            return max(abs(self.interval[0]), abs(self.interval[1]), self.measure)
        x0, y0, x1, y1 = self.polygon.bounds
        return max(abs(x0), abs(y0), abs(x1), abs(y1), x1 - x0, y1 - y0)


def _ccw_ring(coords) -> np.ndarray:
    c = np.asarray(coords, dtype=np.float64)
    if len(c) > 1 and np.array_equal(c[0], c[-1]):
        c = c[:-1]
    area2 = np.sum(c[:, 0] * np.roll(c[:, 1], -1) - np.roll(c[:, 0], -1) * c[:, 1])
    return c if area2 > 0 else c[::-1].copy()


def _drop_collinear(c: np.ndarray, tol: float) -> np.ndarray:
    keep = []
    n = len(c)
    for i in range(n):
        a, b, d = c[i - 1], c[i], c[(i + 1) % n]
        cross = (b[0] - a[0]) * (d[1] - b[1]) - (b[1] - a[1]) * (d[0] - b[0])
        if abs(cross) > tol * tol and np.hypot(*(b - a)) > tol:
            keep.append(i)
    return c[keep]


def as_domain(domain, n_in: int) -> Domain:
    """Validate ``(lo, hi)``, ``(xmin, ymin, xmax, ymax)`` or a shapely Polygon."""
    import shapely
    from shapely.geometry import Polygon, box

    if n_in not in (1, 2):
        raise ValueError(
            f"regiongeom handles networks with 1 or 2 inputs; this one has {n_in}: restrict it to a "
            "Plane or a Line first, e.g. net.restrict(rg.Plane.through(x0, x1, x2))"
        )
    if isinstance(domain, shapely.Geometry):
        if n_in != 2:
            raise ValueError(
                f"a shapely polygon domain needs a 2-input network; this one has {n_in} input(s)"
            )
        if not isinstance(domain, Polygon) or domain.is_empty:
            raise ValueError(f"a shapely domain must be a non-empty Polygon, got {domain.geom_type}")
        if not domain.is_valid or domain.area <= 0:
            raise ValueError(
                f"the polygon domain is invalid or has zero area: {shapely.is_valid_reason(domain)}"
            )
        _finite_array(np.asarray(domain.exterior.coords), "the domain polygon")
        poly = shapely.normalize(domain)
    else:
        vals = _finite_array(domain, "the domain").reshape(-1)
        if n_in == 1:
            if vals.size != 2:
                raise ValueError(
                    f"a 1-input network needs an interval domain (lo, hi); got {vals.size} numbers"
                )
            lo, hi = float(vals[0]), float(vals[1])
            if not lo < hi:
                raise ValueError(f"the interval domain must have lo < hi, got ({lo}, {hi})")
            return Domain(1, interval=(lo, hi))
        if vals.size != 4:
            raise ValueError(
                "a 2-input network needs a box (xmin, ymin, xmax, ymax) or a shapely Polygon; "
                f"got {vals.size} numbers"
            )
        x0, y0, x1, y1 = (float(v) for v in vals)
        if not (x0 < x1 and y0 < y1):
            raise ValueError(
                f"the box domain must have xmin < xmax and ymin < ymax, got {tuple(float(v) for v in vals)}"
            )
        poly = box(x0, y0, x1, y1)
    x0, y0, x1, y1 = poly.bounds
    tol = GEOM_RTOL * max(x1 - x0, y1 - y0)
    hull = poly.convex_hull
    convex = len(poly.interiors) == 0 and abs(hull.area - poly.area) <= tol * max(x1 - x0, y1 - y0)
    if convex:
        pieces = (_drop_collinear(_ccw_ring(poly.exterior.coords), tol),)
    else:
        tris = shapely.constrained_delaunay_triangles(poly)
        pieces = tuple(_ccw_ring(t.exterior.coords) for t in tris.geoms if t.area > 0)
    return Domain(2, polygon=poly, convex=convex, pieces=pieces)
