"""The Stanford-Bunny-like target and the embedded default network.

Patel & Montúfar illustrate local complexity (their Figure 1) with a network
trained to represent an image of the Stanford Bunny. We cannot ship that
image, so :func:`bunny_function` draws a bunny silhouette procedurally from a
handful of ellipses (body, head, two long ears, tail, feet, an eye), and
``gallery/train_default_network.py`` fits a small ReLU MLP to it. The result
is stored in ``regiongeom/data/bunny.npz`` and returned by
:func:`default_network`.

Coordinates live in the box :data:`DEFAULT_DOMAIN` ``= (-1, -1, 1, 1)`` with
``y`` pointing up: row 0 of :func:`bunny_image` is the top edge ``y = +1``.

References
----------
.. [1] S. Patel and G. Montúfar, "On the Local Complexity of Linear Regions
   in Deep ReLU Networks", 2024.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .network import Network

__all__ = ["bunny_function", "bunny_image", "default_network", "DEFAULT_DOMAIN", "DEFAULT_SIGMA"]

#: The box ``(xmin, ymin, xmax, ymax)`` the default network was trained on.
DEFAULT_DOMAIN = (-1.0, -1.0, 1.0, 1.0)

#: Standard deviation of the bias noise for local-complexity maps of
#: :func:`default_network`. The hidden preactivations of that network have
#: gradient norms of median about 1 (0.8, 1.2, 1.3 in layers 1-3) on the
#: domain, so a bias perturbation of std 0.05 moves a neuron's breakpoint line
#: by about 0.05, i.e. 2.5% of the box width, or 1-2 typical region diameters
#: (the network has about 4,400 regions). That blurs the locus into a smooth
#: heat map that still traces the bunny's outline and ears; 0.02 gives
#: speckled lines and 0.1 already washes out the ears.
DEFAULT_SIGMA = 0.05

_DATA = Path(__file__).parent / "data" / "bunny.npz"

# Ellipses (cx, cy, semi-axis a, semi-axis b, angle in degrees, value):
# painted in order, so later ones (the eye) overwrite earlier ones.
_ELLIPSES = (
    (0.12, -0.38, 0.56, 0.42, 10.0, 1.0),  # body
    (-0.34, 0.06, 0.30, 0.25, -15.0, 1.0),  # head
    (-0.52, 0.52, 0.09, 0.34, 18.0, 1.0),  # left ear
    (-0.22, 0.56, 0.09, 0.34, -12.0, 1.0),  # right ear
    (0.70, -0.18, 0.14, 0.14, 0.0, 1.0),  # tail
    (-0.22, -0.76, 0.26, 0.09, 0.0, 1.0),  # front foot
    (0.42, -0.78, 0.24, 0.08, 0.0, 1.0),  # hind foot
    (-0.44, 0.12, 0.05, 0.05, 0.0, 0.0),  # eye
)


def bunny_function(points) -> np.ndarray:
    """Evaluate the bunny silhouette at arbitrary points.

    Parameters
    ----------
    points : (P, 2) array_like of float
        Points ``(x, y)``, normally inside :data:`DEFAULT_DOMAIN`.

    Returns
    -------
    (P,) ndarray of float64
        1 on the bunny, 0 on the background and on the eye.

    Examples
    --------
    >>> bunny_function([[0.1, -0.4], [0.9, 0.9], [-0.44, 0.12]])
    array([1., 0., 0.])
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"points must have shape (P, 2), got {p.shape}")
    out = np.zeros(len(p))
    for cx, cy, a, b, deg, val in _ELLIPSES:
        t = np.deg2rad(deg)
        dx, dy = p[:, 0] - cx, p[:, 1] - cy
        u = np.cos(t) * dx + np.sin(t) * dy
        v = -np.sin(t) * dx + np.cos(t) * dy
        out[(u / a) ** 2 + (v / b) ** 2 <= 1.0] = val
    return out


def bunny_image(size: int = 128) -> np.ndarray:
    """Render :func:`bunny_function` on a ``size x size`` pixel grid.

    Pixel centres split the box :data:`DEFAULT_DOMAIN` evenly; row 0 is the
    top (``y = +1``) and column 0 the left (``x = -1``), as ``imshow`` expects.

    Parameters
    ----------
    size : int
        Number of pixels along each side.

    Returns
    -------
    (size, size) ndarray of float64
        Values in [0, 1]; 1 is the bunny.

    Examples
    --------
    >>> img = bunny_image(64)
    >>> img.shape, float(img.min()), float(img.max())
    ((64, 64), 0.0, 1.0)
    """
    size = int(size)
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    xmin, ymin, xmax, ymax = DEFAULT_DOMAIN
    cx = xmin + (np.arange(size) + 0.5) * (xmax - xmin) / size
    cy = ymax - (np.arange(size) + 0.5) * (ymax - ymin) / size
    xx, yy = np.meshgrid(cx, cy)
    return bunny_function(np.column_stack([xx.ravel(), yy.ravel()])).reshape(size, size)


def default_network() -> Network:
    """The embedded ReLU network trained to draw :func:`bunny_image`.

    A ``2 -> 32 -> 32 -> 32 -> 1`` ReLU MLP fitted on :data:`DEFAULT_DOMAIN`
    by ``gallery/train_default_network.py``; use it with
    :data:`DEFAULT_DOMAIN` and :data:`DEFAULT_SIGMA`.

    Returns
    -------
    Network

    Examples
    --------
    >>> net = default_network()
    >>> net.n_in, net.n_out
    (2, 1)
    """
    return Network.load(_DATA)
