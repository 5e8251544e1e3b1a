"""Regular grids of points over a domain, for heat maps and averages.

A grid is computed data, not a picture: :func:`grid_points` feeds
:func:`~regiongeom.complexity.lc_density` and
:func:`~regiongeom.complexity.local_complexity`, and its order is the one
:func:`~regiongeom.plotting.plot_density` expects, so flat values reshape to
``(ny, nx)`` images.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_domain

__all__ = ["grid_points"]


def _domain(domain, dim=None):
    """A validated Domain; ``dim`` None guesses it from the value."""
    import shapely

    if dim is None:
        dim = 2 if isinstance(domain, shapely.Geometry) or np.size(domain) == 4 else 1
    return as_domain(domain, dim)


def _shape2d(shape):
    """``n`` or ``(ny, nx)`` -> ``(ny, nx)``, each at least 1."""
    if np.ndim(shape) == 0:
        shape = (shape, shape)
    if np.size(shape) != 2:
        raise ValueError(f"shape must be n or (ny, nx), got {shape!r}")
    ny, nx = (int(v) for v in np.ravel(shape))
    if ny < 1 or nx < 1:
        raise ValueError(f"shape must be positive, got {(ny, nx)}")
    return ny, nx


def grid_points(domain, shape=100) -> np.ndarray:
    """Pixel centres of a regular grid over a domain's bounding box.

    The order matches :func:`~regiongeom.plotting.plot_density`: in 2D,
    row-major with ``x`` varying fastest and ``y`` increasing
    (``origin="lower"``), so values computed at these points reshape to
    ``(ny, nx)`` images.

    Parameters
    ----------
    domain : (lo, hi), (xmin, ymin, xmax, ymax) or shapely.Polygon
    shape : int or (ny, nx)
        Number of pixels: ``n`` (1D), or ``n`` per side / ``(ny, nx)`` (2D).

    Returns
    -------
    (P, 1) or (P, 2) ndarray of float64
        ``P = n`` (1D) or ``ny * nx`` (2D).

    Examples
    --------
    >>> grid_points((0.0, 1.0), 4).ravel()
    array([0.125, 0.375, 0.625, 0.875])
    >>> grid_points((0, 0, 2, 1), (1, 2))
    array([[0.5, 0.5],
           [1.5, 0.5]])
    """
    dom = _domain(domain)
    if dom.dim == 1:
        lo, hi = dom.interval
        n = int(np.ravel(shape)[0])
        if n < 1:
            raise ValueError(f"shape must be positive, got {n}")
        return (lo + (np.arange(n) + 0.5) * (hi - lo) / n)[:, None]
    ny, nx = _shape2d(shape)
    x0, y0, x1, y1 = dom.polygon.bounds
    xs = x0 + (np.arange(nx) + 0.5) * (x1 - x0) / nx
    ys = y0 + (np.arange(ny) + 0.5) * (y1 - y0) / ny
    xx, yy = np.meshgrid(xs, ys)
    return np.column_stack([xx.ravel(), yy.ravel()])
