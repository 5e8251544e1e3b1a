"""Figures: region maps, local complexity heat maps and the paper's Figure 1.

Like :mod:`shapely.plotting`, every function imports matplotlib when it is
called (``import regiongeom`` never does), draws into ``ax`` (default: the
current axes, ``plt.gca()``) and returns the artists it made, so they can be
restyled afterwards.

Colour choices: regions get random light colours so that the black
nonlinear locus stands out; densities use ``"magma"`` by default, a
perceptually uniform map whose lightness grows monotonically, so heat maps
keep their meaning when printed in grayscale.

References
----------
N. Patel and G. Montúfar, "On the Local Complexity of Linear Regions in Deep
ReLU Networks", Figure 1 and Appendix B.1.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._marks import draw_decision, draw_points, marked_points
from .grids import _domain, _shape2d, grid_points

__all__ = [
    "RegionArtists",
    "DensityArtists",
    "CurveArtists",
    "region_colors",
    "plot_regions",
    "plot_function_1d",
    "plot_density",
    "plot_density_1d",
    "figure1",
]

_LINE_STYLES = ("--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)))
# Okabe-Ito: distinguishable with colour-vision deficiencies
_CURVE_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")


class RegionArtists(NamedTuple):
    """What :func:`plot_regions` draws.

    regions : PolyCollection/PathCollection (2D) or LineCollection (1D: the
        graph of the network, one coloured piece per region)
    locus : LineCollection (2D) or Line2D of markers (1D), or None
    boundaries : the non-locus activation boundaries (grey), or None
    ax : Axes
    points : the marked points (a PathCollection, or a dict label ->
        PathCollection with ``point_labels``), or None
    decision : the decision boundary (LineCollection), or None
    """

    regions: Any
    locus: Any
    boundaries: Any
    ax: Any
    points: Any = None
    decision: Any = None


class DensityArtists(NamedTuple):
    """What :func:`plot_density` draws: ``artist`` is the AxesImage (2D) or
    the Line2D (1D), ``band`` the ±k stderr band (1D, or None), ``colorbar``
    the Colorbar (or None)."""

    artist: Any
    band: Any
    colorbar: Any
    ax: Any


class CurveArtists(NamedTuple):
    """What :func:`plot_density_1d` draws: dicts label -> Line2D and
    label -> band (PolyCollection), and the closed form's Line2D (or None)."""

    lines: dict
    bands: dict
    closed_form: Any
    ax: Any


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------
def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.gca()
    return ax


def region_colors(n, *, rng=0, cmap=None, light=True) -> np.ndarray:
    """(n, 4) random RGBA colours, one per region.

    Without ``cmap``: random hues, light (low saturation, high value: fills
    under a black locus) or, with ``light=False``, darker and saturated
    (lines on white). With ``cmap`` (a name or a Colormap): that map sampled
    at random positions. ``rng``: a seed or a ``numpy.random.Generator``.
    """
    rng = np.random.default_rng(rng)
    if cmap is not None:
        import matplotlib as mpl

        cm = mpl.colormaps[cmap] if isinstance(cmap, str) else cmap
        return np.asarray(cm(rng.random(n)))
    from matplotlib.colors import hsv_to_rgb

    if light:
        hsv = np.column_stack([rng.random(n), rng.uniform(0.2, 0.5, n), rng.uniform(0.85, 1.0, n)])
    else:
        hsv = np.column_stack([rng.random(n), rng.uniform(0.6, 0.9, n), rng.uniform(0.55, 0.8, n)])
    return np.column_stack([hsv_to_rgb(hsv), np.ones(n)])


def _labels(rm, color_by):
    if color_by == "activation":
        return np.arange(len(rm))
    if color_by == "linear":
        from .locus import linear_regions

        return linear_regions(rm).labels
    raise ValueError(f"color_by must be 'activation' or 'linear', got {color_by!r}")


def _auto_linewidth(n_segments):
    # thinner lines when there are many, so dense maps do not turn black
    return float(np.clip(40.0 / np.sqrt(max(n_segments, 1)), 0.3, 1.2))


# ----------------------------------------------------------------------------
# regions
# ----------------------------------------------------------------------------
def plot_regions(rm, ax=None, *, color_by="activation", locus=True, boundaries=False, cmap=None, rng=0,
                 linewidth=None, locus_color="k", boundary_color="0.5", alpha=1.0, output=0, points=None,
                 point_labels=None, decision_boundary=False, tie_color=None) -> RegionArtists:  # fmt: skip
    """Draw a region map: regions in random colours, the nonlinear locus in black.

    2D: every activation region filled (one PolyCollection, fast for tens of
    thousands of regions), coloured per activation region or per linear
    region, with the locus segments on top. 1D: the graph of the network on
    the domain, one coloured piece per region, with the locus points marked.

    Parameters
    ----------
    rm : RegionMap
        From :func:`regiongeom.activation_regions`.
    ax : matplotlib Axes, optional
        Default: the current axes, ``plt.gca()``.
    color_by : {"activation", "linear"}
        One colour per activation region, or per linear region (activation
        regions merged where the gradient does not jump).
    locus : bool
        Draw the nonlinear locus (black).
    boundaries : bool
        Also draw the activation boundaries that are *not* locus (a neuron
        switches but the gradient does not jump), dashed grey.
    cmap : str or Colormap, optional
        Sample region colours from this map instead of light random hues.
    rng : int or Generator
        Seed (or generator) of the random colours; the default 0 gives the
        same colours every time.
    linewidth : float, optional
        Locus line width (2D; default thinner for larger maps).
    locus_color, boundary_color : colours
    alpha : float
        Opacity of the region fill.
    output : int
        1D: which output to draw.
    points : (P, 2) array_like, optional
        2D: points to mark, in the map's coordinates, e.g. ``plane.points``
        or ``plane.coords(data)``.
    point_labels : (P,) array_like of int, optional
        Class labels of ``points``: one colour per label, with a legend.
    decision_boundary : bool
        2D, a network with at least 2 outputs: draw where the top two logits
        tie (:func:`regiongeom.decision_boundary`), exact, as a thick red line.
    tie_color : colour, optional
        A network with max units (max pooling, maxout): draw the locus where a
        max unit's winner changes (its tie lines) in this colour, the rest of
        the locus in ``locus_color``. Default: all of it in ``locus_color``.

    Returns
    -------
    RegionArtists
        ``(regions, locus, boundaries, ax, points, decision)``; unused entries are None.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import regiongeom as rg
    >>> from regiongeom.plotting import plot_regions
    >>> rm = rg.activation_regions(rg.sawtooth(2), (0.0, 1.0))
    >>> art = plot_regions(rm)
    >>> len(art.regions.get_segments()), len(art.locus.get_xdata())
    (4, 3)
    """
    from .locus import nonlinear_locus
    from .regions import RegionMap

    if not isinstance(rm, RegionMap):
        raise TypeError(
            f"plot_regions expects the RegionMap of rg.activation_regions, got {type(rm).__name__}"
        )
    if rm.dim == 1 and (points is not None or decision_boundary):
        raise ValueError("points and decision_boundary need a 2D region map; in 1D, plot the logits instead")
    pts = None if points is None else marked_points(points, point_labels)
    ax = _axes(ax)
    labels = _labels(rm, color_by)
    colors = region_colors(int(labels.max()) + 1, rng=rng, cmap=cmap, light=rm.dim == 2)[labels]
    colors[:, 3] = alpha
    loc = nonlinear_locus(rm) if (locus or boundaries) else None
    if locus and tie_color is not None:
        from matplotlib.colors import to_rgba

        ties = max_unit_neurons(rm.net)[loc.neurons]
        locus_color = np.array([to_rgba(locus_color), to_rgba(tie_color)])[ties.astype(np.int64)]
    if rm.dim == 1:
        return _plot_regions_1d(rm, loc, ax, colors, locus, boundaries, locus_color, boundary_color, output)
    art = _plot_regions_2d(rm, loc, ax, colors, locus, boundaries, linewidth, locus_color, boundary_color)
    dec = draw_decision(rm, ax) if decision_boundary else None
    marks = draw_points(ax, *pts, _CURVE_COLORS) if pts is not None else None
    return art._replace(points=marks, decision=dec)


def max_unit_neurons(net) -> np.ndarray:
    """``(net.n_neurons,)`` bool: the neurons that are max units (their
    locus is where the unit's winner changes); all False for a network
    without max units."""
    mask = np.zeros(net.n_neurons, bool)
    for st in getattr(net, "stages", ()):
        if st.is_max:
            mask[st.offset : st.offset + st.n] = True
    return mask


def _plot_regions_2d(rm, loc, ax, colors, locus, boundaries, linewidth, locus_color, boundary_color):
    from matplotlib.collections import LineCollection, PathCollection, PolyCollection

    if rm.domain.convex:
        # an edge in the face colour hides the hairline seams of antialiasing
        regions = PolyCollection(rm.polygons, facecolors=colors, edgecolors=colors, linewidths=0.3, zorder=1)
    else:  # regions of a non-convex domain may enclose holes
        regions = PathCollection(
            _paths(rm.shapes), facecolors=colors, edgecolors=colors, linewidths=0.3, zorder=1
        )
    ax.add_collection(regions)
    lw = linewidth if linewidth is not None else _auto_linewidth(len(loc) if loc is not None else 0)
    loc_art = bnd_art = None
    if boundaries:
        segs = loc.boundary_segments[~loc.in_locus]
        bnd_art = LineCollection(segs, colors=boundary_color, linewidths=lw, linestyles=(0, (3, 2)), zorder=2)
        ax.add_collection(bnd_art)
    if locus:
        loc_art = LineCollection(loc.segments, colors=locus_color, linewidths=lw, zorder=3, capstyle="round")
        ax.add_collection(loc_art)
    x0, y0, x1, y1 = rm.domain.polygon.bounds
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    _label_2d(ax)
    return RegionArtists(regions, loc_art, bnd_art, ax)


def _label_2d(ax):
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.locator_params(nbins=5)  # few ticks: no crowding in side-by-side panels


def _paths(shapes):
    from matplotlib.path import Path
    from shapely.geometry.polygon import orient

    out = []
    for geom in shapes:
        # exterior counter-clockwise, holes clockwise: holes stay empty under any fill rule
        polys = [orient(p, 1.0) for p in (geom.geoms if hasattr(geom, "geoms") else [geom])]
        rings = [np.asarray(r.coords)[:, :2] for p in polys for r in (p.exterior, *p.interiors)]
        out.append(Path.make_compound_path(*[Path(r, closed=True) for r in rings]))
    return out


def _plot_regions_1d(rm, loc, ax, colors, locus, boundaries, locus_color, boundary_color, output):
    from matplotlib.collections import LineCollection

    net = rm.net
    if not 0 <= output < net.n_out:
        raise ValueError(f"output must be in [0, {net.n_out}), got {output}")
    iv = rm.intervals
    y = rm.jacobians[:, output, 0, None] * iv + rm.offsets[:, output, None]
    segs = np.stack([iv, y], axis=2)  # (R, 2 ends, (x, y))
    regions = LineCollection(segs, colors=colors[:, :3], linewidths=2.2, capstyle="butt", zorder=2)
    ax.add_collection(regions)
    loc_art = bnd_art = None
    if boundaries:
        p = loc.boundary_points[~loc.in_locus]
        lab = "activation boundary, not locus" if p.size else "_nolegend_"
        (bnd_art,) = ax.plot(p, net(p)[:, output] if p.size else p, "o", ms=6, mfc="white", mec=boundary_color,
                             mew=1.3, zorder=3, label=lab)  # fmt: skip
    if locus:
        p = loc.points
        y = net(p)[:, output] if p.size else p
        if np.ndim(locus_color) == 2:  # a colour per point (tie_color)
            loc_art = ax.scatter(p, y, s=4.5**2, c=locus_color, zorder=4, label="nonlinear locus")
        else:
            (loc_art,) = ax.plot(p, y, "o", ms=4.5, color=locus_color, zorder=4, label="nonlinear locus")
    lo, hi = rm.domain.interval
    ax.set_xlim(lo, hi)
    ymin, ymax = float(y.min()), float(y.max())
    pad = 0.06 * (ymax - ymin) if ymax > ymin else 1.0
    ax.set_ylim(ymin - pad, ymax + pad)
    ax.set_xlabel("$x$")
    ax.set_ylabel(r"$\mathcal{N}(x)$" if net.n_out == 1 else rf"$\mathcal{{N}}(x)_{output}$")
    return RegionArtists(regions, loc_art, bnd_art, ax)


def plot_function_1d(net, domain, *, ax=None, **kwargs) -> RegionArtists:
    """The graph of a 1-input network on an interval, with its breakpoints.

    Shorthand for ``plot_regions(rg.activation_regions(net, domain), ax=ax,
    boundaries=True, **kwargs)``: one colour per activation region, locus
    points in black, activation boundaries that are not locus as open grey
    circles.

    Parameters
    ----------
    net : Network
        One input.
    domain : (lo, hi)
    ax : Axes, optional
        Default: the current axes, ``plt.gca()``.
    **kwargs
        Passed to :func:`plot_regions`.
    """
    from .regions import activation_regions

    if net.n_in != 1:
        raise ValueError(f"plot_function_1d needs a 1-input network; this one has {net.n_in} inputs")
    kwargs.setdefault("boundaries", True)
    return plot_regions(activation_regions(net, domain), ax=ax, **kwargs)


# ----------------------------------------------------------------------------
# densities
# ----------------------------------------------------------------------------
def _mean_stderr(values):
    if hasattr(values, "mean") and hasattr(values, "stderr") and hasattr(values, "n_samples"):
        return np.asarray(values.mean, dtype=np.float64), np.asarray(values.stderr, dtype=np.float64)
    return np.asarray(values, dtype=np.float64), None


def plot_density(values, domain=None, *, ax=None, shape=None, x=None, cmap="magma", colorbar=True, log=False,
                 label=r"$f(x)$", vmin=None, vmax=None, band=2.0, color="#0072B2") -> DensityArtists:  # fmt: skip
    """Heat map (2D) or curve (1D) of a local complexity density.

    Parameters
    ----------
    values : Estimate or array_like
        An :class:`~regiongeom.complexity.Estimate` (its ``mean`` is drawn)
        or plain values. 2D: a ``(ny, nx)`` image, or a flat ``(ny * nx,)``
        array in the order of :func:`~regiongeom.grids.grid_points`. 1D: ``(P,)``.
    domain : (lo, hi), (xmin, ymin, xmax, ymax) or shapely.Polygon, optional
        Where the grid lies: the image's extent (2D) or the interval of the
        points (1D). 2D without a domain: pixel coordinates. Pixels outside
        a polygon domain are left blank.
    ax : Axes, optional
        Default: the current axes, ``plt.gca()``.
    shape : (ny, nx), optional
        Grid shape of flat 2D values; default square.
    x : (P,) array_like, optional
        1D abscissae (default: the :func:`~regiongeom.grids.grid_points` of ``domain``).
    cmap : str or Colormap
        2D colour map (default "magma": perceptually uniform, prints in grayscale).
    colorbar : bool
        2D: add a colour bar labelled ``label``.
    log : bool
        Logarithmic colour scale (2D) or y axis (1D); values <= 0 are blank.
    label : str
        Colour bar (2D) or y axis (1D) label.
    vmin, vmax : float, optional
        Colour limits (2D).
    band : float
        1D with an Estimate: shade ``mean ± band * stderr`` (0: no band).
    color : colour
        1D line colour.

    Returns
    -------
    DensityArtists
        ``(artist, band, colorbar, ax)``.
    """
    ax = _axes(ax)
    mean, stderr = _mean_stderr(values)
    dom = None if domain is None else _domain(domain)
    two_d = dom.dim == 2 if dom is not None else mean.ndim == 2
    if two_d:
        return _density_2d(mean, dom, ax, shape, cmap, colorbar, log, label, vmin, vmax)
    return _density_1d(mean, stderr, dom, ax, x, log, label, band, color)


def _density_2d(mean, dom, ax, shape, cmap, colorbar, log, label, vmin, vmax):
    from matplotlib.colors import LogNorm, Normalize

    img = mean
    if img.ndim == 1:
        if shape is None:
            n = int(round(np.sqrt(img.size)))
            if n * n != img.size:
                raise ValueError(f"{img.size} values do not make a square grid; pass shape=(ny, nx)")
            shape = (n, n)
        img = img.reshape(_shape2d(shape))
    elif img.ndim != 2:
        raise ValueError(f"2D values must be an (ny, nx) image or a flat array, got shape {img.shape}")
    img = img.astype(np.float64, copy=True)
    extent = None
    if dom is not None:
        x0, y0, x1, y1 = dom.polygon.bounds
        extent = (x0, x1, y0, y1)
        if not _is_box(dom):
            import shapely

            pts = grid_points(dom.polygon, img.shape)
            img[~shapely.contains_xy(dom.polygon, pts[:, 0], pts[:, 1]).reshape(img.shape)] = np.nan
    finite = img[np.isfinite(img)]
    if log:
        pos = finite[finite > 0]
        hi = vmax if vmax is not None else (float(pos.max()) if pos.size else 1.0)
        lo = vmin if vmin is not None else (max(float(pos.min()), hi * 1e-4) if pos.size else hi * 1e-4)
        img[img <= 0] = np.nan
        norm = LogNorm(lo, hi)
    else:
        lo = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
        hi = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
        norm = Normalize(lo, hi if hi > lo else lo + 1.0)
    im = ax.imshow(img, origin="lower", extent=extent, cmap=cmap, norm=norm, interpolation="nearest",
                   aspect="equal")  # fmt: skip
    if dom is not None:
        _label_2d(ax)
    cb = ax.figure.colorbar(im, ax=ax, label=label, fraction=0.046, pad=0.03) if colorbar else None
    return DensityArtists(im, None, cb, ax)


def _is_box(dom):
    return (
        dom.convex and abs(dom.polygon.area - dom.polygon.envelope.area) <= 1e-12 * dom.polygon.envelope.area
    )


def _density_1d(mean, stderr, dom, ax, x, log, label, band, color):
    mean = mean.reshape(-1)
    if x is None:
        if dom is None:
            raise ValueError("1D densities need the abscissae x or the interval domain")
        x = grid_points(dom.interval, mean.size)[:, 0]
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.size != mean.size:
        raise ValueError(f"x has {x.size} points but there are {mean.size} values")
    (line,) = ax.plot(x, mean, color=color, lw=1.6, zorder=3)
    band_art = None
    if stderr is not None and band > 0:
        s = stderr.reshape(-1)
        band_art = ax.fill_between(
            x, mean - band * s, mean + band * s, color=color, alpha=0.25, lw=0, zorder=2
        )
    ax.set_xlim(*(dom.interval if dom is not None else (x.min(), x.max())))
    if log:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=min(0.0, float(np.nanmin(mean))))
    ax.set_xlabel("$x$")
    ax.set_ylabel(label)
    return DensityArtists(line, band_art, None, ax)


def plot_density_1d(x, estimates, closed_form=None, *, ax=None, band=2.0, closed_form_label="closed form",
                    label=r"$f(x)$", colors=None, legend=True) -> CurveArtists:  # fmt: skip
    """Compare 1D density estimates with each other and with a closed form.

    Parameters
    ----------
    x : (P,) array_like
        The points the estimates were computed at.
    estimates : dict[str, Estimate or array]
        Label -> estimate; each is drawn as a line with a shaded
        ``mean ± band * stderr`` band (a plain array has no band).
    closed_form : (P,) array_like or callable, optional
        The exact density at ``x`` (or a function of ``x``), drawn as a thin
        black line on top.
    ax : Axes, optional
        Default: the current axes, ``plt.gca()``.
    band : float
        Width of the error band in standard errors (default 2: about 95 %).
    colors : sequence of colours, optional
        Default: the Okabe-Ito palette, with dashed/dotted line styles so the
        curves stay distinct in grayscale.
    legend : bool or str
        Draw a legend (a string is its ``loc``); False to place it yourself,
        e.g. ``fig.legend(*ax.get_legend_handles_labels())``.

    Returns
    -------
    CurveArtists
        ``(lines, bands, closed_form, ax)``.
    """
    ax = _axes(ax)
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    colors = list(colors) if colors is not None else list(_CURVE_COLORS)
    lines, bands = {}, {}
    for k, (name, est) in enumerate(estimates.items()):
        mean, stderr = _mean_stderr(est)
        mean = mean.reshape(-1)
        if mean.size != x.size:
            raise ValueError(f"estimate {name!r} has {mean.size} values for {x.size} points")
        c = colors[k % len(colors)]
        lab = name
        if stderr is not None and band > 0:
            s = stderr.reshape(-1)
            bands[name] = ax.fill_between(
                x, mean - band * s, mean + band * s, color=c, alpha=0.22, lw=0, zorder=2
            )
            lab = f"{name} (±{band:g} s.e.)"
        (lines[name],) = ax.plot(x, mean, color=c, lw=1.8, ls=_LINE_STYLES[k % len(_LINE_STYLES)], label=lab,
                                 zorder=3)  # fmt: skip
    cf = None
    if closed_form is not None:
        y = closed_form(x) if callable(closed_form) else np.asarray(closed_form, dtype=np.float64).reshape(-1)
        (cf,) = ax.plot(x, y, color="k", lw=1.0, label=closed_form_label, zorder=4)
    ax.set_xlim(x.min(), x.max())
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("$x$")
    ax.set_ylabel(label)
    if legend:
        ax.legend(frameon=False, loc=legend if isinstance(legend, str) else "best")
    return CurveArtists(lines, bands, cf, ax)


from .figures import figure1  # noqa: E402  (re-exported: figure1 composes the functions above)
