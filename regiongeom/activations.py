"""Piecewise-linear activations: :class:`Activation` and the standard ones.

Every activation is continuous and piecewise linear with finitely many
breakpoints, described by its breakpoints and the slope of each piece, so the
region engine, the locus and the local-complexity estimators work for all of
them alike. :mod:`regiongeom.network` builds networks from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Activation", "as_activation", "relu", "leaky_relu", "hardtanh", "absolute"]


@dataclass(frozen=True, eq=False)
class Activation:
    """A continuous piecewise-linear scalar function.

    Parameters
    ----------
    name : str
        Display name, e.g. ``"relu"``.
    breakpoints : (K,) array of float64
        Strictly increasing points where the slope changes (K >= 1).
    slopes : (K + 1,) array of float64
        Slope of each piece, left to right; neighbouring slopes differ.
    value_at_first : float
        The function's value at ``breakpoints[0]`` (fixes the constant).

    Piece ``k`` covers ``[breakpoints[k-1], breakpoints[k]]`` and there the
    function is ``slopes[k] * z + intercepts[k]``.

    The standard activations are values of this class, ready to apply:
    :data:`relu`, :data:`leaky_relu` (slope 0.01 below zero, torch's default),
    :data:`hardtanh` (clip to [-1, 1]) and :data:`absolute`. Other parameters
    come from the constructors :meth:`Activation.leaky_relu` and
    :meth:`Activation.hardtanh`.

    Examples
    --------
    >>> relu(np.array([-1.0, 2.0]))
    array([0., 2.])
    >>> Activation.leaky_relu(negative_slope=0.2)([-1.0, 2.0])
    array([-0.2,  2. ])
    >>> Activation("step-free", [0.0, 1.0], [0.0, 1.0, 0.0])([-1.0, 0.5, 3.0])
    array([0. , 0.5, 1. ])
    """

    name: str
    breakpoints: np.ndarray
    slopes: np.ndarray
    value_at_first: float = 0.0
    intercepts: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        bp = np.asarray(self.breakpoints, dtype=np.float64).reshape(-1)
        sl = np.asarray(self.slopes, dtype=np.float64).reshape(-1)
        if bp.size < 1:
            raise ValueError(f"activation {self.name!r}: needs at least one breakpoint")
        if sl.size != bp.size + 1:
            raise ValueError(
                f"activation {self.name!r}: {bp.size} breakpoints need {bp.size + 1} slopes, got {sl.size}"
            )
        if not (np.all(np.isfinite(bp)) and np.all(np.isfinite(sl))):
            raise ValueError(f"activation {self.name!r}: breakpoints and slopes must be finite")
        if np.any(np.diff(bp) <= 0):
            raise ValueError(f"activation {self.name!r}: breakpoints must strictly increase")
        if np.any(np.diff(sl) == 0):
            raise ValueError(
                f"activation {self.name!r}: neighbouring slopes must differ "
                "(otherwise the breakpoint is not one)"
            )
        # intercepts by continuity, starting from the value at the first breakpoint
        ic = np.empty_like(sl)
        ic[0] = self.value_at_first - sl[0] * bp[0]
        for k in range(bp.size):
            ic[k + 1] = ic[k] + (sl[k] - sl[k + 1]) * bp[k]
        for name, val in (("breakpoints", bp), ("slopes", sl), ("intercepts", ic)):
            val.setflags(write=False)
            object.__setattr__(self, name, val)

    # -- the standard activations, with their parameters -------------------
    @classmethod
    def relu(cls) -> Activation:
        """ReLU: ``max(z, 0)``."""
        return cls("relu", [0.0], [0.0, 1.0], 0.0)

    @classmethod
    def leaky_relu(cls, negative_slope: float = 0.01) -> Activation:
        """LeakyReLU: ``z`` for ``z >= 0``, ``negative_slope * z`` below (torch's default 0.01)."""
        return cls(f"leaky_relu({negative_slope:g})", [0.0], [negative_slope, 1.0], 0.0)

    @classmethod
    def hardtanh(cls, min_val: float = -1.0, max_val: float = 1.0) -> Activation:
        """Hardtanh: ``clip(z, min_val, max_val)`` (``ReLU6`` is ``hardtanh(0, 6)``)."""
        if not min_val < max_val:
            raise ValueError(f"hardtanh needs min_val < max_val, got {min_val}, {max_val}")
        return cls(f"hardtanh({min_val:g},{max_val:g})", [min_val, max_val], [0.0, 1.0, 0.0], min_val)

    @classmethod
    def absolute(cls) -> Activation:
        """Absolute value: ``|z|``."""
        return cls("abs", [0.0], [-1.0, 1.0], 0.0)

    @property
    def n_pieces(self) -> int:
        return self.slopes.size

    def piece(self, z: np.ndarray) -> np.ndarray:
        """Index of the linear piece holding each value (right-continuous)."""
        return np.searchsorted(self.breakpoints, z, side="right").astype(np.int8)

    def __call__(self, z) -> np.ndarray:
        """Apply the activation elementwise (any shape)."""
        z = np.asarray(z, dtype=np.float64)
        k = np.searchsorted(self.breakpoints, z, side="right")
        return self.slopes[k] * z + self.intercepts[k]

    def __eq__(self, other):
        return (
            isinstance(other, Activation)
            and np.array_equal(self.breakpoints, other.breakpoints)
            and np.array_equal(self.slopes, other.slopes)
            and np.array_equal(self.intercepts, other.intercepts)
        )

    def __hash__(self):
        return hash((self.breakpoints.tobytes(), self.slopes.tobytes()))

    def __repr__(self):
        return f"Activation({self.name!r}, breakpoints={self.breakpoints.tolist()}, slopes={self.slopes.tolist()})"


#: ReLU, ``max(z, 0)``.
relu = Activation.relu()
#: LeakyReLU with torch's default slope 0.01; other slopes: ``Activation.leaky_relu(negative_slope)``.
leaky_relu = Activation.leaky_relu()
#: Hardtanh, ``clip(z, -1, 1)``; other limits: ``Activation.hardtanh(min_val, max_val)``.
hardtanh = Activation.hardtanh()
#: Absolute value, ``|z|``.
absolute = Activation.absolute()
_BY_NAME = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "hardtanh": hardtanh,
    "abs": absolute,
    "absolute": absolute,
}


def as_activation(spec) -> Activation | None:
    """Turn ``"relu"``, ``"leaky_relu"``, ``"hardtanh"``, ``"abs"``, an
    :class:`Activation` or ``None`` into an :class:`Activation` (or None)."""
    if spec is None or isinstance(spec, Activation):
        return spec
    if isinstance(spec, str) and spec in _BY_NAME:
        return _BY_NAME[spec]
    raise ValueError(
        f"unsupported activation {spec!r}: use one of {sorted(_BY_NAME)}, an "
        "rg.Activation(name, breakpoints, slopes) or None"
    )
