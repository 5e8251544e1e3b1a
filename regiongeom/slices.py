"""Slices of input space: planes and lines through data points.

A network with many inputs (an image classifier, say) is looked at on a 2D
plane through three inputs, or on a line through two. :class:`Plane` and
:class:`Line` carry an orthonormal frame, so lengths, areas, locus lengths
and local-complexity densities measured in slice coordinates are true
input-space quantities. ``net.restrict(plane)`` turns a network into the
exact 2-input (or 1-input) network on the slice, ready for
``activation_regions``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import _finite_array

__all__ = ["Plane", "Line"]

# below this fraction of the points' scale, a difference vector counts as zero
_DEGENERATE_RTOL = 1e-12


def _flat_points(points, names):
    """Flatten each defining point; all must have the same number of entries."""
    flat = []
    for p, name in zip(points, names):
        a = _finite_array(p, f"point {name}")
        if a.size == 0:
            raise ValueError(f"point {name} is empty; give an input of shape (n_in,) or the model's shape")
        flat.append(a.reshape(-1))
    sizes = {a.size for a in flat}
    if len(sizes) != 1:
        got = ", ".join(f"{n}: {np.shape(p)}" for p, n in zip(points, names))
        raise ValueError(f"the points must all have the same number of entries, got shapes {got}")
    return flat, tuple(np.shape(points[0]))


def _unit(v, scale, what):
    norm = float(np.linalg.norm(v))
    if not norm > _DEGENERATE_RTOL * scale:
        raise ValueError(what)
    return v / norm, norm


def _as_inputs(x, n_in: int) -> np.ndarray:
    """(P, n_in) float64 from (P, n_in), (P, *input_shape), (n_in,) or one input of any shape."""
    a = _finite_array(x, "x")
    if a.ndim >= 2 and int(np.prod(a.shape[1:])) == n_in:
        return a.reshape(a.shape[0], n_in)
    if a.size == n_in:
        return a.reshape(1, n_in)
    raise ValueError(f"x must hold inputs of {n_in} entries each, e.g. shape (P, {n_in}); got {a.shape}")


def _as_coords(uv, k: int) -> np.ndarray:
    a = _finite_array(uv, "uv")
    if k == 1 and a.ndim <= 1:
        return a.reshape(-1, 1)
    if a.ndim == 1 and a.size == k:
        return a.reshape(1, k)
    if a.ndim != 2 or a.shape[1] != k:
        want = "(P,) or (P, 1)" if k == 1 else "(P, 2)"
        raise ValueError(f"uv must have shape {want} for a {'line' if k == 1 else 'plane'}, got {a.shape}")
    return a


def _margin(margin) -> float:
    if isinstance(margin, bool) or not np.isscalar(margin) or not np.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    return float(margin)


@dataclass(frozen=True, eq=False)
class _Slice:
    origin: np.ndarray
    basis: np.ndarray
    points: np.ndarray
    input_shape: tuple

    @property
    def n_in(self) -> int:
        """Number of inputs of the space the slice lives in."""
        return self.origin.size

    @property
    def dim(self) -> int:
        """Dimension of the slice: 2 for a plane, 1 for a line."""
        return self.basis.shape[1]

    def _coords(self, x) -> np.ndarray:
        return (_as_inputs(x, self.n_in) - self.origin) @ self.basis

    def _lift(self, uv) -> np.ndarray:
        return self.origin + _as_coords(uv, self.dim) @ self.basis.T


def _frozen(*arrays):
    for a in arrays:
        a.setflags(write=False)
    return arrays


@dataclass(frozen=True, eq=False)
class Plane(_Slice):
    """A 2D plane in input space with an orthonormal frame.

    Build it with :meth:`Plane.through`. The density of local complexity on
    a plane, ``rg.lc_density(net.restrict(plane), uv, ...)``, is the density
    of the plane's own locus: it counts where the neurons' zero sets cross the
    plane, with each neuron's gradient projected onto the plane. It is not the
    n-dimensional density of ``net`` at the same input, which counts the full
    gradient norm and is never smaller.

    Attributes
    ----------
    origin : (n_in,) ndarray of float64
        The input at plane coordinates (0, 0): the first point.
    basis : (n_in, 2) ndarray of float64
        Orthonormal columns: the plane's two axes in input space.
    points : (3, 2) ndarray of float64
        Plane coordinates of the three defining points:
        ``(0, 0)``, ``(|x1 - x0|, 0)`` and ``(u2, v2)`` with ``v2 > 0``.
    input_shape : tuple
        Shape of the first point as given, e.g. ``(1, 28, 28)``:
        ``plane.lift(uv).reshape(-1, *plane.input_shape)`` gives model inputs.

    Examples
    --------
    >>> import numpy as np, regiongeom as rg
    >>> plane = rg.Plane.through([1.0, 0.0, 0.0], [3.0, 0.0, 0.0], [1.0, 0.0, 5.0])
    >>> plane.points
    array([[0., 0.],
           [2., 0.],
           [0., 5.]])
    >>> plane.lift([[1.0, 1.0]])
    array([[2., 0., 1.]])
    """

    @classmethod
    def through(cls, x0, x1, x2) -> Plane:
        """The plane through three inputs (Gram-Schmidt frame, origin ``x0``).

        Parameters
        ----------
        x0, x1, x2 : array_like of float64
            Inputs of shape ``(n_in,)`` or any shape with ``n_in`` entries
            (e.g. the model's ``(1, 28, 28)``), all the same size.

        Returns
        -------
        Plane
            First axis along ``x1 - x0``, second axis the part of ``x2 - x0``
            orthogonal to it; both of unit length in input space.
        """
        (p0, p1, p2), shape = _flat_points((x0, x1, x2), ("x0", "x1", "x2"))
        scale = max(float(np.abs(np.stack([p0, p1, p2])).max()), np.finfo(float).tiny)
        d1, d2 = p1 - p0, p2 - p0
        e1, n1 = _unit(d1, scale, "x0 and x1 coincide; the plane needs three distinct, non-collinear points")
        # Gram-Schmidt, twice: one pass can leave rounding-size overlap when d2 is nearly along e1
        r = d2 - (e1 @ d2) * e1
        r = r - (e1 @ r) * e1
        e2, _ = _unit(
            r, scale, "x0, x1 and x2 are collinear (or coincide); the plane needs three non-collinear points"
        )
        basis = np.stack([e1, e2], axis=1)
        points = np.array([[0.0, 0.0], [n1, 0.0], [e1 @ d2, e2 @ d2]])
        return cls(*_frozen(p0.copy(), basis, points), shape)

    def coords(self, x) -> np.ndarray:
        """(P, 2) plane coordinates of inputs ``x`` (orthogonal projection).

        ``x`` is ``(P, n_in)``, ``(P, *input_shape)`` or a single input.
        """
        return self._coords(x)

    def lift(self, uv) -> np.ndarray:
        """(P, n_in) inputs at plane coordinates ``uv`` of shape (P, 2) (or (2,))."""
        return self._lift(uv)

    def bounds(self, margin: float = 0.25) -> tuple:
        """``(xmin, ymin, xmax, ymax)``: the box around the three points, widened
        on each side by ``margin`` times its width (x) and height (y)."""
        m = _margin(margin)
        lo, hi = self.points.min(axis=0), self.points.max(axis=0)
        pad = m * (hi - lo)
        return (float(lo[0] - pad[0]), float(lo[1] - pad[1]), float(hi[0] + pad[0]), float(hi[1] + pad[1]))

    def __repr__(self):
        return f"Plane(n_in={self.n_in}, points={self.points.tolist()})"


@dataclass(frozen=True, eq=False)
class Line(_Slice):
    """A line in input space with a unit direction.

    Build it with :meth:`Line.through`. As on a :class:`Plane`, lengths and
    densities in line coordinates are input-space ones, of the line's own locus.

    Attributes
    ----------
    origin : (n_in,) ndarray of float64
        The input at line coordinate 0: the first point.
    basis : (n_in, 1) ndarray of float64
        The unit direction ``(b - a) / |b - a|`` as a column.
    points : (2,) ndarray of float64
        Line coordinates of the two defining points: ``0`` and ``|b - a|``.
    input_shape : tuple
        Shape of the first point as given.

    Examples
    --------
    >>> import regiongeom as rg
    >>> line = rg.Line.through([0.0, 1.0], [3.0, 5.0])
    >>> line.points, line.bounds(margin=0.0)
    (array([0., 5.]), (0.0, 5.0))
    """

    @classmethod
    def through(cls, a, b) -> Line:
        """The line through two inputs, origin ``a``, direction ``b - a`` (unit).

        Parameters
        ----------
        a, b : array_like of float64
            Inputs of shape ``(n_in,)`` or any shape with ``n_in`` entries.

        Returns
        -------
        Line
        """
        (p0, p1), shape = _flat_points((a, b), ("a", "b"))
        scale = max(float(np.abs(np.stack([p0, p1])).max()), np.finfo(float).tiny)
        e, n = _unit(p1 - p0, scale, "a and b coincide; the line needs two distinct points")
        return cls(*_frozen(p0.copy(), e[:, None].copy(), np.array([0.0, n])), shape)

    def coords(self, x) -> np.ndarray:
        """(P,) line coordinates of inputs ``x`` (orthogonal projection)."""
        return self._coords(x)[:, 0]

    def lift(self, t) -> np.ndarray:
        """(P, n_in) inputs at line coordinates ``t`` of shape (P,) (or (P, 1))."""
        return self._lift(t)

    def bounds(self, margin: float = 0.25) -> tuple:
        """``(lo, hi)``: the interval between the two points, widened on each
        side by ``margin`` times its length."""
        m = _margin(margin)
        length = float(self.points[1])
        return (0.0 - m * length, length + m * length)

    def __repr__(self):
        return f"Line(n_in={self.n_in}, length={float(self.points[1])!r})"


def check_slice(slice, n_in: int) -> None:
    """The one-line errors of ``net.restrict(slice)``: a Plane or Line through
    ``n_in``-dimensional inputs."""
    if not isinstance(slice, (Plane, Line)):
        raise TypeError(
            f"restrict expects an rg.Plane or rg.Line (e.g. rg.Plane.through(x0, x1, x2)), "
            f"got {type(slice).__name__}"
        )
    if slice.n_in != n_in:
        raise ValueError(
            f"the {type(slice).__name__.lower()} lives in {slice.n_in} dimensions but the network "
            f"has {n_in} inputs; build it through inputs of the network's size"
        )
