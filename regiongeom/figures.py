"""Composite figures: the paper's Figure 1, regions next to the local complexity heat map.

Built from :func:`~regiongeom.plotting.plot_regions` and
:func:`~regiongeom.plotting.plot_density`; matplotlib is imported when a
figure is made.

References
----------
N. Patel and G. Montúfar, "On the Local Complexity of Linear Regions in Deep
ReLU Networks", Figure 1 and Appendix B.1.
"""

from __future__ import annotations

import numpy as np

from .grids import _domain, grid_points
from .plotting import _CURVE_COLORS as _POINT_COLORS
from .plotting import _labels, plot_density, plot_regions

__all__ = ["figure1"]


def _estimator_name(method, eps, good):
    """How a figure names the estimate it shows."""
    if method == "definition":
        return f"definition, $\\varepsilon={eps:g}$"
    return "Theorem 2" if good else "eq. 40 upper bound"


def figure1(net, domain, *, sigma=None, n_samples=32, shape=128, method="theorem2", eps=None, good=True,
            color_by="linear", rng=0, figsize=None, cmap="magma", log=False, progress=None, estimate=None,
            regions=None, points=None, point_labels=None, decision_boundary=False):  # fmt: skip
    """The paper's Figure 1: regions and locus | heat map of ``f(x)``.

    Left, :func:`plot_regions` (linear regions in random colours, nonlinear
    locus in black); right, :func:`plot_density` of
    :func:`~regiongeom.complexity.lc_density` on a grid of ``shape`` pixel
    centres (:func:`~regiongeom.grids.grid_points`). For a 1-input network:
    the function with its breakpoints | the curve of ``f`` with a ±2
    standard error band.

    Parameters
    ----------
    net : Network or GraphNetwork
        1 or 2 inputs (a graph network restricted to a plane,
        ``net.restrict(rg.Plane.through(x0, x1, x2))``, for a CNN).
    domain : (lo, hi), (xmin, ymin, xmax, ymax) or shapely.Polygon
    sigma : float
        Standard deviation of the bias noise (the paper uses 0.05). Needed
        unless ``estimate`` is given.
    n_samples : int
        Noise samples per pixel.
    shape : int or (ny, nx)
        Pixels of the heat map (points of the curve in 1D).
    method : {"theorem2", "definition"}
    eps : float, optional
        Ball radius, for ``method="definition"``.
    good : bool
        theorem2 only. Default True: Theorem 2 exactly, as
        :func:`~regiongeom.complexity.lc_density`. ``False`` drops the
        good-neuron indicator and draws the upper bound of eq. (40),
        ``sum_i E[||grad z_i|| rho_b(z_i)]``, which the paper's Figure 1
        shows (Appendix B.1); the panel's title then says so. Ignored by
        ``method="definition"``, which measures the locus itself.
    color_by : {"linear", "activation"}
        Colour per linear region (as the paper) or per activation region.
    rng : int or Generator
        Seed of the noise.
    figsize : (float, float), optional
        Default ``(10, 4.4)`` (2D) or ``(10, 3.6)`` (1D).
    cmap : str or Colormap
    log : bool
        Logarithmic colour scale.
    progress : bool or None
        Progress bar of the estimate (see ``lc_density``).
    estimate : Estimate, optional
        An ``lc_density`` estimate already computed at
        ``grid_points(domain, shape)``: it is drawn as it is (no Monte Carlo
        run here), and its own ``sigma``, ``method``, ``eps`` and ``good``
        name the panel; ``n_samples``, ``method``, ``eps``, ``good`` and
        ``rng`` are then not used.
    regions : RegionMap, optional
        ``rg.activation_regions(net, domain)`` if you have it already.
    points, point_labels : optional
        2D: points to mark on both panels (e.g. ``plane.points``, or
        ``plane.coords(data)`` with the data's class labels), as in
        :func:`plot_regions`.
    decision_boundary : bool
        2D, at least 2 outputs: draw the exact decision boundary on the
        regions panel, as in :func:`plot_regions`.

    Returns
    -------
    fig : Figure
    axes : (2,) ndarray of Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import regiongeom as rg
    >>> pts = rg.grid_points((0.0, 1.0), 50)
    >>> est = rg.lc_density(rg.sawtooth(2), pts, sigma=0.1, n_samples=4, rng=0)
    >>> fig, axes = rg.figure1(rg.sawtooth(2), (0.0, 1.0), shape=50, estimate=est)
    >>> axes[1].get_title().splitlines()[1].startswith("Theorem 2")
    True
    """
    import matplotlib.pyplot as plt

    from ._marks import draw_points, marked_points
    from ._validate import require_no_max_units

    require_no_max_units(net, "figure1", None if estimate is not None else method)
    dom = _domain(domain, net.n_in)
    if dom.dim == 1 and (points is not None or decision_boundary):
        raise ValueError("points and decision_boundary need a 2-input network (a plane), not a line")
    marks = None if points is None else marked_points(points, point_labels)
    rm = _figure1_regions(net, domain, regions)
    if estimate is None:
        est = _figure1_estimate(net, domain, sigma, n_samples, shape, method, eps, good, rng, progress)
    else:
        est = _check_estimate(estimate, grid_points(domain, shape).shape[0], sigma)
    if figsize is None:
        figsize = (10, 4.4) if dom.dim == 2 else (10, 3.6)
    fig, axes = plt.subplots(1, 2, figsize=figsize, layout="constrained")
    what = "linear" if color_by == "linear" else "activation"
    n_col = len(np.unique(_labels(rm, color_by)))
    if dom.dim == 2:
        plot_regions(rm, ax=axes[0], color_by=color_by, points=points, point_labels=point_labels,
                     decision_boundary=decision_boundary)  # fmt: skip
        axes[0].set_title(f"{n_col:,} {what} regions; locus in black")
        plot_density(est, domain, ax=axes[1], shape=shape if np.ndim(shape) else None, cmap=cmap, log=log,
                     label="$f(x)$")  # fmt: skip
        if marks is not None:
            draw_points(axes[1], marks[0], marks[1], _POINT_COLORS)
    else:
        plot_regions(rm, ax=axes[0], color_by=color_by, boundaries=True)
        axes[0].set_title(f"{n_col:,} {what} regions; locus points in black")
        plot_density(est, domain, ax=axes[1], label="$f(x)$", log=log)
    name = _estimator_name(est.method, est.eps, est.good)
    axes[1].set_title(f"local complexity density $f(x)$\n{name}, $\\sigma={est.sigma:g}$")
    return fig, np.asarray(axes)


def _figure1_regions(net, domain, regions):
    from .regions import RegionMap, activation_regions

    if regions is None:
        return activation_regions(net, domain)
    dom = _domain(domain, net.n_in)
    if not isinstance(regions, RegionMap) or regions.net is not net or not _same_domain(regions.domain, dom):
        raise ValueError("regions must be rg.activation_regions(net, domain) of the same network and domain")
    return regions


def _same_domain(a, b):
    if a.dim != b.dim:
        return False
    return a.interval == b.interval if a.dim == 1 else a.polygon.equals(b.polygon)


def _figure1_estimate(net, domain, sigma, n_samples, shape, method, eps, good, rng, progress):
    from .complexity import lc_density

    if sigma is None:
        raise ValueError("figure1 needs sigma= (the bias noise), or a precomputed estimate=")
    kw = dict(sigma=sigma, n_samples=n_samples, method=method, eps=eps, rng=rng, progress=progress)
    if method != "definition":
        kw["good"] = good
    return lc_density(net, grid_points(domain, shape), **kw)


def _check_estimate(est, n_points, sigma):
    from .complexity import Estimate

    if not isinstance(est, Estimate) or np.ndim(est.mean) != 1:
        raise ValueError("estimate must be the Estimate of rg.lc_density at grid_points(domain, shape)")
    if est.mean.size != n_points:
        raise ValueError(
            f"estimate has {est.mean.size} points but grid_points(domain, shape) has {n_points}: "
            "pass the shape it was computed on"
        )
    if sigma is not None and sigma != est.sigma:
        raise ValueError(f"sigma={sigma:g} but the estimate was computed with sigma={est.sigma:g}")
    return est
