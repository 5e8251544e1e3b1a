"""The 1D engine's error bounds (:mod:`.line1d`): the constants of each
layer's bounds and their derivation (:class:`Bounds`), the bounds of the
first layer's values and of an affine layer's, the two ways a layer's
bounds are stored (whole, or factored by the products: :func:`whole_rows`,
:func:`stored_whole`), and each network's per-layer plans of the products
(transposed weights, bounds, activation constants), made once per network.
"""

from __future__ import annotations

import threading
import weakref
from typing import NamedTuple

import numpy as np

from . import _line1d_kernels as K
from .core import affine

_NO_BLOCKS = np.zeros((1, 2, 1))


def whole_rows(n_rows):
    """The factors ``(ef, eb, EB)`` of ``n_rows`` rows whose bounds are all
    stored whole (``ef`` -1; see ``_line1d_kernels._ev``)."""
    return np.full(n_rows, -1.0), np.zeros(n_rows, np.int64), _NO_BLOCKS


def stored_whole(err, fac):
    """``err`` with the bounds of every row of a product (``fac``) written
    out whole, in place, and those rows marked as stored whole; the same
    operations as ``_line1d_kernels._ev`` (numpy's multiply, then add: each
    rounded once), so the same bits. For the rare paths that change
    single bounds (the exact fallback) or need whole rows."""
    ef, eb, EB = fac
    rows = np.flatnonzero(ef >= 0.0)
    if rows.size:
        k = eb[rows]
        # (IEEE arithmetic without numpy's warnings, like the kernels: a bound that
        # overflowed stays inf or nan, and decides nothing)
        with np.errstate(over="ignore", invalid="ignore"):
            err[rows] = ef[rows, None] * EB[k, 0] + EB[k, 1]
        ef[rows] = -1.0
    return err


_U = 2.0**-53  # unit roundoff


def _gamma(k):
    """``gamma_k = k u / (1 - k u)``: a sum of ``k`` rounded terms errs by at
    most ``gamma_k`` times the sum of their magnitudes (Higham, Accuracy and
    Stability of Numerical Algorithms, 2002, section 3.1), in any order."""
    return k * _U / (1.0 - k * _U)


class Bounds(NamedTuple):
    """The constants of a layer's error bounds, and their derivation.

    Every value ``z[r, j]`` of a layer at a point carries a bound ``err[r,
    j]`` of its distance to the exact value ``z_j(x_r)`` at the point's
    exact position ``x_r`` (the exact root that the point stands for).
    With u = 2^-53, ``gamma_k = k u / (1 - k u)`` (a sum of ``k`` rounded
    terms errs by at most ``gamma_k`` times the sum of their magnitudes, in
    any order: Higham, Accuracy and Stability of Numerical Algorithms,
    2002, section 3.1), ``n`` the layer's fan-in and ``G = gamma_{n+8}``:

    - first layer, ``z = w x + b`` at the domain's ends (exact floats):
      ``err = G (|w| |x| + |b|)``;
    - a computed row ``z = act(h) @ W.T + b``
      (:func:`._line1d_products.product_1d`): the activation of a value ``v``
      with bound ``e`` errs by at most ``eh = |s| e`` where ``s`` is the
      slope of ``v``'s piece when ``|v - t| > e`` for every breakpoint
      ``t`` (the exact value is on the same piece), else the largest
      ``|slope|`` (Lipschitz), plus ``gamma_2 (|h| + 2 |intercept|)`` for
      the rounding of ``slope v + intercept`` (none for an activation with
      slopes 0 and 1 and no intercept); the sum of ``n + 1`` rounded terms
      errs by ``G (|W| @ |h| + |b|)`` whatever its order (BLAS, and the
      constant neurons summed apart): ``err = |W| @ eh + G (|W| @ |h| +
      |b|) + T``, ``T = (n + 8) 2^-1074`` for underflow. The products take
      ``eh`` and ``|h|`` as their largest over a block of 128 points, one
      small matrix-vector product per block;
    - a crossing at place ``a`` of its old interval (values ``z0, z1`` with
      bounds ``e0, e1`` at its ends), with interpolated values ``z = z0 +
      a (z1 - z0)``: every neuron is affine on the interval, so at the exact
      point ``x_a`` of place ``a`` (not the exact crossing) ``|z - z_j(x_a)|
      <= max(e0, e1) + gamma_3 (2 |z0| + |z1|)``; the crossing neurons are
      set to their breakpoint exactly (bound 0). The exact crossing ``x*``
      has place ``a*``, the root of the crossing neuron's ``d = z_r - t``,
      whose float values ``d0, d1`` have exact opposite signs and err by at
      most ``e0, e1`` (plus the rounding of ``z - t``), so ``|a - a*| <=
      max(e0, e1) / (|d0| + |d1| - e0 - e1) + gamma_2`` (``da``; 1 when the
      denominator is not positive). The crossing's position errs by at most
      ``max(ex0, ex1) + da (|x1 - x0| + ex0 + ex1) + gamma_3 (|x0| + |x1 -
      x0|)`` (``ex``: the ends' position bounds);
    - the next layer at a crossing: its row is computed like the others
      (``direct``) or interpolated (:func:`._line1d_products.fill_new_rows_1d`):
      in exact arithmetic, the ends' products interpolated plus the
      corrections equal ``W @ act(z) + b`` at the crossing's float values
      ``z``, except for the ends' products' rounding (which their bounds
      cover), so at ``x_a`` the row errs by at most ``||W_o||_1 max_j eh_j +
      max(err0, err1) +`` the rounding of the interpolation and of the
      corrections. From ``x_a`` to ``x*`` the next layer's neuron ``o``
      moves by at most ``da`` times its variation along the interval: its
      chord ``|z1'_o - z0'_o|`` (plus the ends' bounds) plus the kinks of
      the activations whose piece changes on the interval (``2 lip |z1_j -
      z0_j| |W_oj|``) or that are within their bound of a breakpoint.

    Every row also carries the largest of its bounds (``em``), which the
    products and the interpolation read instead of a whole row.
    Every bound is multiplied by ``1 + 2^-40`` to cover the rounding of its
    own few operations. Bounds grow with depth like the products of the
    weights' magnitudes: loose bounds only send more decisions to the exact
    fallback.
    """

    wabs: np.ndarray  # |W|.T, C-contiguous (n, m)
    babs: np.ndarray
    nabs: np.ndarray  # the rows' 1-norms, rounded up
    G: float
    T: float

    @staticmethod
    def of(net, i):
        """The bounds of layer ``i`` of ``net`` (made once per network)."""
        with _transposes_lock:
            per_net = _bounds.setdefault(net, {})
            lb = per_net.get(i)
            if lb is None:
                w = np.asarray(net.weights[i], np.float64)
                n = w.shape[1]
                wabs = np.ascontiguousarray(np.abs(w).T)
                lb = per_net[i] = Bounds(
                    wabs, np.abs(np.asarray(net.biases[i], np.float64)), wabs.sum(axis=0) * (1.0 + _gamma(n + 1)),
                    _gamma(n + 8), (n + 8) * K.ETA,
                )  # fmt: skip
        return lb


_bounds = weakref.WeakKeyDictionary()


def act_constants(act, nlb):
    """The constants ``(lip, ract, G, T)`` of a product
    (:func:`._line1d_products.product_1d`) through the activation ``act`` to
    the next layer (bounds ``nlb``)."""
    _, slopes, icpts = act
    lip = float(np.abs(slopes).max())
    exact = np.all(icpts == 0.0) and np.all((slopes == 0.0) | (slopes == 1.0))
    return np.array([lip, 0.0 if exact else _gamma(2), nlb.G, nlb.T])


def _act_constants_of(net, i, act, nlb):
    """:func:`act_constants` of layer ``i``'s activation to layer ``i + 1``, made once per network."""
    with _transposes_lock:
        per_net = _bounds.setdefault(net, {})
        consts = per_net.get(("act", i))
        if consts is None:
            consts = per_net[("act", i)] = act_constants(act, nlb)
    return consts


def first_rows(net, x, layer):
    """The first layer's values at the exact points ``x``, their bounds and
    the largest bound of each row."""
    lb = Bounds.of(net, 0)
    z = affine(x[:, None], *layer[:2])
    err = K.SELF * lb.G * (np.abs(x)[:, None] * lb.wabs[0][None, :] + lb.babs[None, :]) + lb.T
    return z, err, err.max(axis=1, initial=0.0)


def affine_rows(net, i, z, err, layer, fac=None):
    """Layer ``i``'s values, bounds and largest bounds after an affine layer
    (no activation; ``fac``: the factors of ``err``, if any, written out first)."""
    lb = Bounds.of(net, i)
    if fac is not None:
        err = stored_whole(err, fac)
    z2 = affine(z, *layer[:2])
    err2 = K.SELF * (err @ lb.wabs + lb.G * (np.abs(z) @ lb.wabs + lb.babs)) + lb.T
    return z2, err2, err2.max(axis=1, initial=0.0)


_transposes = weakref.WeakKeyDictionary()
_transposes_lock = threading.Lock()


_plans = weakref.WeakKeyDictionary()


def _plans_of(net):
    """The dict of ``net``'s layer plans (:func:`_layer_plan`), made once per network."""
    plans = _plans.get(net)
    if plans is None:
        with _transposes_lock:
            plans = _plans.setdefault(net, {})
    return plans


def _layer_plan(net, plans, i, act):
    """``(wt, nlb, consts)`` of the product from layer ``i`` (activation
    ``act``) to layer ``i + 1``: :func:`_transposed`, :meth:`Bounds.of` and
    :func:`_act_constants_of`, kept in ``plans`` (:func:`_plans_of`)."""
    nlb = Bounds.of(net, i + 1)
    p = (_transposed(net, i + 1), nlb, _act_constants_of(net, i, act, nlb))
    with _transposes_lock:
        return plans.setdefault(i, p)


def _transposed(net, i):
    """``net.weights[i].T`` as a C-contiguous array, made once per network
    (the weights are read-only; the products read whole rows of it)."""
    with _transposes_lock:
        per_net = _transposes.setdefault(net, {})
        wt = per_net.get(i)
        if wt is None:
            wt = per_net[i] = np.ascontiguousarray(net.weights[i].T, np.float64)
    return wt
