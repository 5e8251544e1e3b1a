"""The 1D engine's second filter: signs the first one leaves, decided from
float64 affine maps with rigorous error bounds, before the exact fallback.

The first filter (:mod:`.line1d`) bounds the error of every value it
propagates along the points, layer by layer; its bounds are rigorous but grow
with depth far beyond the actual errors (at the sixth layer of a 256-wide
network, ~1e-8 against actual errors ~1e-17), because each crossing's
position bound feeds the next layer's value bounds. A sign it cannot decide
is re-decided here from scratch: on the interval next to the point, every
neuron of layer ``l`` is ``z_j(x) = a_j x + c_j``, and the point is either a
domain end (a float) or the exact root ``x* = (t - c_k) / a_k`` of an
earlier neuron ``k``. :class:`FloatMaps` computes ``(a, c)`` of every
neuron of a layer on one activation pattern in float64 with a bound of their
errors (one small matrix product per layer, cached per pattern), and
:func:`sign_by_maps` evaluates ``z_j(x*) - t`` in exact integer interval
arithmetic over those bounds (every float is an integer times a power of
2): the sign is certain when the interval excludes 0; otherwise (``None``)
the exact fallback (:class:`regiongeom._exact.Fallback1D`) decides. It costs
one pass over each earlier layer's weights per pattern (about 0.2 ms for
six layers of 256), against ~300 ms for the exact fallback's Python integers. The maps' bounds follow the conventions of ``_line1d_bounds.Bounds``:

- layer 0: ``(a, c) = (w, b)``, exact;
- through an activation on a known piece (slope ``s``, intercept ``i``):
  ``h = (s a, s c + i)``, error ``|s| e + gamma_2 (|h| + 2 |i|)`` (no rounding
  term for slopes 0 and 1 and no intercept);
- a layer ``W h + b`` of fan-in ``n``: ``|W| e_h + gamma_{n+8} (|W| |h| + |b|)
  + (n + 8) 2^-1074``, times ``1 + 2^-40`` for the bound's own rounding.
"""

from __future__ import annotations

import weakref

import numpy as np
from numba import njit

_U = 2.0**-53
_ETA = 2.0**-1074
_SELF = 1.0 + 2.0**-40


def _gamma(k):
    return k * _U / (1.0 - k * _U)


class FloatMaps:
    """float64 maps ``(a, c)`` of every neuron of a layer on an activation
    pattern, with bounds of their errors, for a 1-input network."""

    def __init__(self, net):
        self.net = net
        self.offsets = np.asarray(net.neuron_offsets)
        self.consts, self.acts = _constants(net)
        self._cache = {}

    def maps(self, pattern, layer):
        """``(A, E)`` (n_layer, 2): ``A[:, 0] x + A[:, 1]`` are the layer's
        preactivations on the inputs of ``pattern`` (its entries for the
        earlier layers), each entry within ``E`` of the exact one."""
        key = (layer, pattern[: self.offsets[layer]].tobytes())
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        wt, b, G, T = self.consts[layer]
        if layer == 0:
            out = (np.stack([wt[0], b], axis=1), np.zeros((wt.shape[1], 2)))
        else:
            A, E = self.maps(pattern, layer - 1)
            slopes, icpts, exact = self.acts[layer - 1]
            if self.net.activations[layer - 1] is None:  # affine: no entries in the patterns
                pieces = np.zeros(A.shape[0], np.int8)
            else:
                first = self.offsets[layer - 1]
                pieces = pattern[first : first + A.shape[0]]
            out = layer_map(wt, b, A, E, pieces, slopes, icpts, exact, G, T)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[key] = out
        return out

    def neuron(self, pattern, neuron):
        """``(a, c, ea, ec)`` of the global neuron ``neuron`` on ``pattern`` and its layer."""
        layer = int(np.searchsorted(self.offsets, neuron, side="right") - 1)
        A, E = self.maps(pattern, layer)
        r = neuron - self.offsets[layer]
        return (A[r, 0], A[r, 1], E[r, 0], E[r, 1]), layer

    def breakpoint(self, neuron, k):
        """Breakpoint ``k`` of the activation of the global neuron ``neuron``."""
        layer = int(np.searchsorted(self.offsets, neuron, side="right") - 1)
        return float(self.net.activations[layer].breakpoints[k])


@njit(cache=True, nogil=True)
def layer_map(wt, b, A, E, pieces, slopes, icpts, exact, G, T):
    """A layer's maps from the previous one's (``A``, bounds ``E``, both
    (n, 2)) on the given ``pieces`` of its activation: ``h = slope A +
    (0, intercept)`` with bounds ``e_h = SELF (|slope| E + gamma_2 (|h| +
    2 |intercept|))`` (no rounding term if ``exact``), then ``W h + b``
    (``wt = W.T``) with bounds ``SELF (|W| (e_h + G |h|) + G |b|) + T`` (see
    the module's docstring; the rounding of ``e_h + G |h|`` and of the
    sums, in any order, is within the factor ``SELF``). Neurons with ``h``
    and ``e_h`` all zero (a dead ReLU) are skipped."""
    n, m = wt.shape
    g2 = 2.0 * 2.0**-53 / (1.0 - 2.0 * 2.0**-53)
    a = np.zeros((m, 2))
    e = np.zeros((m, 2))
    for j in range(n):
        s, c = slopes[pieces[j]], icpts[pieces[j]]
        h0, h1 = s * A[j, 0], s * A[j, 1] + c
        e0, e1 = abs(s) * E[j, 0], abs(s) * E[j, 1]
        if not exact:
            e0 += g2 * (abs(h0) + 2.0 * abs(c))
            e1 += g2 * (abs(h1) + 2.0 * abs(c))
        g0, g1 = _SELF * e0 + G * abs(h0), _SELF * e1 + G * abs(h1)
        if h0 == 0.0 and h1 == 0.0 and g0 == 0.0 and g1 == 0.0:
            continue
        for o in range(m):  # axpy along a row of W.T: vectorises
            w = wt[j, o]
            aw = abs(w)
            a[o, 0] += w * h0
            a[o, 1] += w * h1
            e[o, 0] += aw * g0
            e[o, 1] += aw * g1
    for o in range(m):
        a[o, 1] += b[o]
        e[o, 0] = _SELF * e[o, 0] + T
        e[o, 1] = _SELF * (e[o, 1] + G * abs(b[o])) + T
    return a, e


_consts = weakref.WeakKeyDictionary()


def _constants(net):
    """Per layer of ``net``: ``(W.T, b, gamma_{n+8}, (n + 8) 2^-1074)``, and
    ``(slopes, intercepts, computes exactly)`` of its activation (the
    identity for an affine layer); made once per network."""
    hit = _consts.get(net)
    if hit is None:
        c, acts = [], []
        for w, b, a in zip(net.weights, net.biases, net.activations, strict=True):
            wt = np.ascontiguousarray(np.asarray(w, np.float64).T)
            n = wt.shape[0]
            c.append((wt, np.asarray(b, np.float64), _gamma(n + 8), (n + 8) * _ETA))
            if a is None:  # affine: the identity, exactly
                acts.append((np.ones(1), np.zeros(1), True))
            else:
                sl, ic = np.asarray(a.slopes, np.float64), np.asarray(a.intercepts, np.float64)
                acts.append((sl, ic, bool(np.all(ic == 0.0) and np.all((sl == 0.0) | (sl == 1.0)))))
        hit = _consts[net] = (c, acts)
    return hit


def _ints(*vals):
    """The floats ``vals`` as Python integers, all times one power of 2 (exact: no division, no gcd)."""
    fr = [float(v).as_integer_ratio() for v in vals]
    den = max(d for _, d in fr)
    return [n * (den // d) for n, d in fr]


def _mul(p, q):
    """The product of the integer intervals ``p`` and ``q``."""
    c = (p[0] * q[0], p[0] * q[1], p[1] * q[0], p[1] * q[1])
    return min(c), max(c)


def _sign(lo, hi):
    return 1 if lo > 0 else -1 if hi < 0 else None


def sign_by_maps(maps, pattern, neuron, t, point_neuron, point_t, x):
    """The sign of ``z_neuron - t`` at a point, certain, or None (left to the
    exact fallback). The point is the float ``x`` if ``point_neuron`` is
    None, else the exact root of ``z_point_neuron = point_t``; both maps are
    read on ``pattern`` (an interval next to the point). Evaluated in exact
    integer interval arithmetic over the maps' bounds: at a float ``x``,
    ``z - t = a x + c - t``; at the root ``x* = (t' - c_k) / a_k`` of a slope
    ``a_k`` certainly nonzero, ``z - t`` has the sign of ``a (t' - c_k) +
    (c - t) a_k`` times that of ``a_k``."""
    (a, c, ea, ec), _ = maps.neuron(pattern, neuron)
    if point_neuron is None:
        a, c, ea, ec, t, x, one = _ints(a, c, ea, ec, t, x, 1.0)  # (``one``: the common scale)
        p = _mul((a - ea, a + ea), (x, x))
        return _sign(p[0] + (c - ec - t) * one, p[1] + (c + ec - t) * one)
    (ak, ck, eak, eck), _ = maps.neuron(pattern, point_neuron)
    a, c, ea, ec, t, ak, ck, eak, eck, tk = _ints(a, c, ea, ec, t, ak, ck, eak, eck, point_t)
    sk = _sign(ak - eak, ak + eak)
    if sk is None:
        return None
    p1 = _mul((a - ea, a + ea), (tk - ck - eck, tk - ck + eck))
    p2 = _mul((c - t - ec, c - t + ec), (ak - eak, ak + eak))
    s = _sign(p1[0] + p2[0], p1[1] + p2[1])
    return None if s is None else s * sk
