"""Small networks with known answers, shared by tests, gallery and docs."""

from __future__ import annotations

import numpy as np

from .network import Network

__all__ = ["sawtooth", "random_network"]


def sawtooth(depth: int) -> Network:
    """Telgarsky's sawtooth: ``depth`` compositions of the tent map on [0, 1].

    The tent map ``t(x) = 2 relu(x) - 4 relu(x - 1/2)`` is one layer of two
    ReLUs; composed ``depth`` times it has exactly ``2**depth`` linear pieces
    on [0, 1].

    Examples
    --------
    >>> import regiongeom as rg
    >>> len(rg.activation_regions(sawtooth(2), (0, 1)))
    4
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    ws, bs, acts = [], [], []
    d = 1
    for _ in range(depth):
        ws.append(np.ones((2, d)) if d == 1 else np.array([[2.0, -4.0], [2.0, -4.0]]))
        bs.append(np.array([0.0, -0.5]))
        acts.append("relu")
        d = 2
    ws.append(np.array([[2.0, -4.0]]))
    bs.append(np.array([0.0]))
    acts.append(None)
    return Network.from_arrays(ws, bs, acts)


def random_network(widths, *, n_in=2, n_out=1, activation="relu", rng=None, scale=1.0) -> Network:
    """A random MLP ``n_in -> widths... -> n_out`` with Gaussian weights and
    biases (std ``scale / sqrt(fan_in)``, biases std ``scale * 0.5``)."""
    rng = np.random.default_rng(rng)
    ws, bs, acts = [], [], []
    d = n_in
    for w in widths:
        ws.append(rng.normal(size=(w, d)) * scale / np.sqrt(d))
        bs.append(rng.normal(size=w) * 0.5 * scale)
        acts.append(activation)
        d = w
    ws.append(rng.normal(size=(n_out, d)) / np.sqrt(d))
    bs.append(rng.normal(size=n_out))
    acts.append(None)
    return Network.from_arrays(ws, bs, acts)
