"""Small networks and domains shared by the tests."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from shapely.geometry import Polygon

import regiongeom as rg

TESTS_DIR = Path(__file__).resolve().parent
BENCH_DIR = TESTS_DIR.parent / "benchmarks"

# every supported kind of activation, by a short id
ACTIVATIONS = {
    "relu": "relu",
    "leaky_relu": rg.Activation.leaky_relu(0.1),
    "hardtanh": rg.Activation.hardtanh(-0.5, 0.7),
    "abs": "abs",
    "pl3": rg.Activation("pl3", [-0.6, 0.1, 0.8], [0.3, -1.2, 0.5, 2.0], value_at_first=0.2),
}
ACT_IDS = list(ACTIVATIONS)

BOX = (-1.0, -1.0, 1.0, 1.0)
INTERVAL = (-2.0, 2.0)
# a convex polygon (not a box) and a non-convex polygon with a hole
CONVEX = Polygon([(-1.0, -0.8), (0.3, -1.1), (1.2, -0.2), (0.9, 0.9), (-0.4, 1.0), (-1.2, 0.2)])
NONCONVEX = Polygon(
    [(-1.0, -1.0), (1.0, -1.0), (1.0, 0.1), (0.2, 0.1), (0.2, 1.0), (-1.0, 1.0)],
    holes=[[(-0.6, -0.6), (-0.6, 0.4), (-0.2, 0.4), (-0.2, -0.6)]],
)
DOMAINS_2D = {"box": BOX, "convex": CONVEX, "nonconvex": NONCONVEX}


def random_net(widths, *, n_in=2, n_out=1, activation="relu", seed=0, last_activation=None, scale=1.0):
    """A random MLP ``n_in -> widths... -> n_out``: Gaussian weights (std
    ``scale / sqrt(fan_in)``) and biases (std ``0.5 * scale``); the last layer
    is affine unless ``last_activation`` is given."""
    rng = np.random.default_rng(seed)
    ws, bs, acts = [], [], []
    d = n_in
    for w in widths:
        ws.append(rng.normal(size=(w, d)) * scale / np.sqrt(d))
        bs.append(rng.normal(size=w) * 0.5 * scale)
        acts.append(activation)
        d = w
    ws.append(rng.normal(size=(n_out, d)) / np.sqrt(d))
    bs.append(rng.normal(size=n_out) * 0.5)
    acts.append(last_activation)
    return rg.Network.from_arrays(ws, bs, acts)


def small_net(act_id, seed, n_in=2):
    """A small random network of the given activation, sized for the slow reference."""
    widths = [5, 4] if n_in == 2 else [6, 5, 4]
    return random_net(widths, n_in=n_in, activation=ACTIVATIONS[act_id], seed=seed)


def manual_forward(net, x):
    """The network's output by explicit numpy (no package code), ``(P, n_in) -> (P, n_out)``."""
    h = np.asarray(x, float)
    for w, b, a in zip(net.weights, net.biases, net.activations, strict=True):
        z = h @ np.asarray(w).T + np.asarray(b)
        if a is None:
            h = z
        else:
            bp, sl, ic = np.asarray(a.breakpoints), np.asarray(a.slopes), np.asarray(a.intercepts)
            k = (z[..., None] >= bp).sum(-1)
            h = sl[k] * z + ic[k]
    return h


def preactivations(net, x, magnitudes=False):
    """(P, n_neurons) preactivation of every neuron, by explicit numpy.

    With ``magnitudes=True`` also returns ``|W| @ |h| + |b|`` for every neuron:
    the size of the terms summed, which bounds the rounding error of ``z``.
    """
    h = np.asarray(x, float)
    cols, mags = [], []
    for w, b, a in zip(net.weights, net.biases, net.activations, strict=True):
        w, b = np.asarray(w), np.asarray(b)
        z = h @ w.T + b
        if a is not None:
            cols.append(z)
            mags.append(np.abs(h) @ np.abs(w).T + np.abs(b))
            bp, sl, ic = np.asarray(a.breakpoints), np.asarray(a.slopes), np.asarray(a.intercepts)
            k = (z[..., None] >= bp).sum(-1)
            z = sl[k] * z + ic[k]
        h = z
    Z = np.concatenate(cols, axis=1) if cols else np.zeros((len(h), 0))
    if magnitudes:
        return Z, (np.concatenate(mags, axis=1) if mags else Z.copy())
    return Z


def ambiguous_pieces(net, x, rtol=1e-10):
    """(P, n_neurons) bool: the neuron's preactivation at x is so close to one of
    its breakpoints that rounding may decide its piece."""
    Z, M = preactivations(net, x, magnitudes=True)
    bps = neuron_breakpoints(net)
    out = np.zeros(Z.shape, bool)
    for j, t in enumerate(bps):
        out[:, j] = np.min(np.abs(Z[:, j, None] - t), axis=1) <= rtol * (M[:, j] + np.max(np.abs(t)))
    return out


def neuron_breakpoints(net):
    """List, per neuron, of its activation's breakpoints."""
    out = []
    for w, a in zip(net.weights, net.activations, strict=True):
        if a is not None:
            out += [np.asarray(a.breakpoints)] * w.shape[0]
    return out


def standard(name):
    """(net, domain, expected region count) of a standard benchmark network."""
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    import nets

    return nets.standard(name)
