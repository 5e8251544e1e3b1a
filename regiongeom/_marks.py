"""Marks drawn on top of a 2D region map by :func:`regiongeom.plot_regions`:
data points (optionally one colour per class label) and the decision boundary."""

from __future__ import annotations

import numpy as np


def marked_points(points, point_labels):
    """Validated (P, 2) float64 points and (P,) integer labels (or None)."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or not np.all(np.isfinite(p)):
        raise ValueError(f"points must be finite (P, 2) coordinates, e.g. plane.points; got shape {p.shape}")
    if point_labels is None:
        return p, None
    lab = np.asarray(point_labels).reshape(-1)
    if lab.size != len(p) or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(
            f"point_labels must be {len(p)} integers, one per point; got {lab.dtype} {lab.shape}"
        )
    return p, lab


def draw_points(ax, p, labels, palette):
    """Scatter the points: white without labels; else one colour per label
    (``palette``, or tab10/tab20 when there are more labels) and a legend."""
    kw = dict(s=55, edgecolors="k", linewidths=1.0, zorder=5)
    if labels is None:
        return ax.scatter(p[:, 0], p[:, 1], c="white", **kw)
    classes = np.unique(labels)
    if len(classes) > len(palette):
        import matplotlib as mpl

        palette = mpl.colormaps["tab10" if len(classes) <= 10 else "tab20"].colors
    marks = {}
    for n, lab in enumerate(classes):
        sel = labels == lab
        marks[int(lab)] = ax.scatter(p[sel, 0], p[sel, 1], color=palette[n % len(palette)],
                                     label=str(lab), **kw)  # fmt: skip
    ax.legend(loc="upper right", fontsize="small", framealpha=0.85)
    return marks


def draw_decision(rm, ax):
    """The exact decision boundary of a 2D region map as a red LineCollection."""
    from matplotlib.collections import LineCollection

    from .decision import decision_boundary

    dec = LineCollection(decision_boundary(rm), colors="#D62728", linewidths=2.0, zorder=4, capstyle="round")
    ax.add_collection(dec)
    return dec
