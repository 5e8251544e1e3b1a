"""Input checks and Gaussian tools shared by the closed forms."""

import numpy as np

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


# ---------------------------------------------------------------- validation
def _scalar(name, value, *, positive=False, allow_inf=False):
    arr = np.asarray(value)
    if arr.ndim != 0 or not np.isrealobj(arr) or arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real scalar, got {value!r}")
    v = float(arr)
    if np.isnan(v) or (np.isinf(v) and not allow_inf):
        allowed = "a finite number" if not allow_inf else "a number or +-inf"
        raise ValueError(f"{name} must be {allowed}, got {v}")
    if positive and not v > 0:
        raise ValueError(f"{name} must be > 0, got {v}")
    return v


def _array(name, value):
    arr = np.asarray(value)
    if not np.isrealobj(arr) or arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values")
    return arr


def _interval(lo, hi, *, allow_inf):
    lo = _scalar("lo", lo, allow_inf=allow_inf)
    hi = _scalar("hi", hi, allow_inf=allow_inf)
    if not lo < hi:
        raise ValueError(f"need lo < hi, got lo={lo}, hi={hi}")
    return lo, hi


def _layer(points, W, beta, sigma):
    W = _array("W", W)
    if W.ndim != 2 or W.shape[0] == 0 or W.shape[1] == 0:
        raise ValueError(f"W must be a non-empty (m, n) array, got shape {W.shape}")
    beta = _array("beta", beta)
    if beta.shape != (W.shape[0],):
        raise ValueError(f"beta must have shape ({W.shape[0]},) to match W, got {beta.shape}")
    n = W.shape[1]
    pts = _array("points", points)
    if pts.ndim == 1 and n == 1:
        pts = pts[:, None]
    if pts.ndim != 2 or pts.shape[1] != n:
        raise ValueError(f"points must have shape (P, {n}) to match W, got {pts.shape}")
    return pts, W, beta, _scalar("sigma", sigma, positive=True)


# ------------------------------------------------------------ Gaussian tools
def ndtr(x):
    """Standard normal CDF (``scipy.special.ndtr``, imported on first use so
    that ``import regiongeom`` does not pay for ``scipy.special``)."""
    from scipy.special import ndtr as _f

    return _f(x)


def owens_t(h, a):
    """Owen's T function (``scipy.special.owens_t``, imported on first use)."""
    from scipy.special import owens_t as _f

    return _f(h, a)


def _npdf(t):
    return _INV_SQRT_2PI * np.exp(-0.5 * t * t)


def _ndtr_diff(a, b):
    """``Phi(b) - Phi(a)`` for ``a <= b`` without cancellation in the upper tail."""
    upper = a > 0
    return np.where(upper, ndtr(-a) - ndtr(-b), ndtr(b) - ndtr(a))


def _bvn_cdf(h, k, rho):
    """``P(X <= h, Y <= k)``, standard bivariate normal, correlation ``|rho| < 1``.

    Owen (1956): ``Phi2 = (Phi(h) + Phi(k))/2 - T(h, a_h) - T(k, a_k) - delta``
    with ``a_h = (k - rho h)/(h sqrt(1 - rho^2))`` (``+-inf`` when ``h = 0``).
    """
    h, k = np.broadcast_arrays(np.asarray(h, float), np.asarray(k, float))
    r = np.sqrt(1.0 - rho * rho)
    with np.errstate(divide="ignore", invalid="ignore"):
        a_h = (k - rho * h) / (h * r)
        a_k = (h - rho * k) / (k * r)
        delta = np.where((h * k < 0) | ((h * k == 0) & (h + k < 0)), 0.5, 0.0)
        out = 0.5 * (ndtr(h) + ndtr(k)) - owens_t(h, a_h) - owens_t(k, a_k) - delta
    out = np.where((h == 0) & (k == 0), 0.25 + np.arcsin(rho) / (2 * np.pi), out)
    out = np.where(np.isposinf(h), ndtr(k), np.where(np.isposinf(k), ndtr(h), out))
    out = np.where(np.isneginf(h) | np.isneginf(k), 0.0, out)
    return np.clip(out, 0.0, 1.0)
