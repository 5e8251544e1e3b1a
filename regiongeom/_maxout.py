"""Maxout networks from arrays: :meth:`regiongeom.Network.maxout`.

A maxout layer computes ``z = W h + b`` with ``n * k`` rows and outputs, for
each of its ``n`` units, the largest of ``k`` consecutive entries of ``z``
(unit ``u`` takes rows ``u*k .. u*k + k - 1``: torch's ``z.view(..., n,
k).amax(-1)``). The network is a :class:`~regiongeom.graph.GraphNetwork`
with one max stage per maxout layer (see "Max stages" in
:mod:`regiongeom.graph`); its operators are evaluated with torch.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from ._validate import _finite_array


def _pieces(k, n_hidden):
    ks = [k] * n_hidden if isinstance(k, Integral) and not isinstance(k, bool) else list(np.atleast_1d(k))
    if len(ks) != n_hidden:
        raise ValueError(f"k must be one integer or one per maxout layer ({n_hidden}), got {len(ks)} values")
    for i, v in enumerate(ks):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (Integral, np.integer)) or v < 1:
            raise ValueError(f"k[{i}] must be an integer >= 1 (the pieces of each maxout unit), got {v!r}")
    return [int(v) for v in ks]


def maxout_network(weights, biases, k):
    """See :meth:`regiongeom.Network.maxout`."""
    try:
        import torch
    except ImportError:
        raise ImportError(
            "Network.maxout builds a graph network, which needs torch: pip install torch"
        ) from None
    from . import _graph_ops as g
    from .graph import GraphNetwork, Operator, Stage

    if len(weights) != len(biases) or len(weights) < 2:
        raise ValueError(
            f"maxout needs weights and biases for at least one maxout layer and the output layer, "
            f"one of each per layer; got {len(weights)} weights and {len(biases)} biases"
        )
    ks = _pieces(k, len(weights) - 1)
    stages, prev, offset = [], None, 0
    x = None
    for i, (w, b) in enumerate(zip(weights, biases)):
        w = _finite_array(w, f"weights[{i}]")
        b = _finite_array(b, f"biases[{i}]").reshape(-1)
        if w.ndim != 2 or 0 in w.shape:
            raise ValueError(f"weights[{i}] must be a non-empty 2D array (n_out, n_in), got shape {w.shape}")
        if b.shape[0] != w.shape[0]:
            raise ValueError(f"biases[{i}] has {b.shape[0]} entries but weights[{i}] has {w.shape[0]} rows")
        if prev is not None and w.shape[1] != prev:
            raise ValueError(
                f"layer shapes do not chain: weights[{i}] takes {w.shape[1]} inputs but layer {i - 1} "
                f"has {prev} maxout units"
            )
        if x is None:
            n_in = w.shape[1]
            x = g.Source(0, (n_in,))
        node = g.Linear(x, torch.from_numpy(w.copy()), torch.from_numpy(b.copy()))
        node.shape = (w.shape[0],)
        if i == len(weights) - 1:
            return GraphNetwork((n_in,), tuple(stages), Operator(node))
        if w.shape[0] % ks[i]:
            raise ValueError(
                f"weights[{i}] has {w.shape[0]} rows, not a multiple of k={ks[i]}: a maxout layer of n "
                "units with k pieces has n * k rows"
            )
        n = w.shape[0] // ks[i]
        windows = np.arange(n * ks[i]).reshape(n, ks[i])
        stages.append(Stage(Operator(node), None, None, None, offset, (n,), f"layer{i}", windows=windows))
        offset, prev = offset + n, n
        x = g.Source(len(stages), (n,))
    raise AssertionError("unreachable")
