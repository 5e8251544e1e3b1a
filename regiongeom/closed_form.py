"""Exact local complexity for small networks, worked out by hand.

Paper convention throughout: a neuron with weight ``w`` has its breakpoint
where ``w . x = b``, with ``b ~ N(beta, sigma**2)`` (``sigma`` a standard
deviation) and ``rho_b`` that Gaussian density. The local complexity density
is eq. (3) of [1]_, ``f(x) = lim_{eps->0} E[vol(locus & B_eps(x))] / Z_eps``,
with ``Z_eps = 2 eps`` in 1D and ``pi eps**2`` in 2D. The locus is where the
gradient of the network's output jumps. Everything is pure numpy and
``scipy.special``: Gaussian integrals are done by hand with ``ndtr``
(the normal cdf) and Owen's T; the one exception is the finite-eps chord
expectation, which has no elementary form and uses a fixed Gauss-Legendre rule
(see :func:`one_layer_2d_density_eps`).

References
----------
.. [1] N. Patel and G. Montúfar, "On the Local Complexity of Linear Regions in
   Deep ReLU Networks", Appendix A.2 (a single neuron, and the chain
   ``N(x) = relu(w2 relu(w1 x - beta1) - beta2)``).

Typos in the paper's Appendix A.2, found while re-deriving: ``|z_1'(x)| = |w|``
should be ``|w_1|``; ``N'(x)`` uses ``beta_1, beta_2`` where the noisy ``b_1,
b_2`` are meant; the first term's ``1{z_2(x) > b_2}`` must be read at neuron 1's
breakpoint, where ``z_2 = w_2 relu(0) = 0``, i.e. it is ``1{b_2 < 0}``;
``P(b in (wx - w eps, wx + w eps))`` is right only for ``w > 0`` (the final
``|w|`` is right); Section 3 writes the noise ``N(0, sigma I)`` but calls
``sigma`` a standard deviation, which is what we use.
"""

import numpy as np
from scipy.special import ndtr, owens_t

__all__ = [
    "single_neuron_density",
    "single_neuron_density_nd",
    "single_neuron_expected_count",
    "single_neuron_lc_uniform",
    "two_layer_chain_density",
    "two_layer_chain_expected_count",
    "two_layer_chain_lc_uniform",
    "one_layer_2d_density",
    "one_layer_2d_density_eps",
    "one_layer_vertex_density",
]

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
# Gauss-Legendre rule for the finite-eps chord expectation (see
# one_layer_2d_density_eps); _WINDOW is the rise of the Gaussian exponent
# kept past its smallest value on the disk (exp(-50) ~ 2e-22 is dropped).
_GL_ORDER = 80
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(_GL_ORDER)
_WINDOW = 50.0
_CHUNK = 1 << 21  # floats per block in the vectorised quadrature


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


# -------------------------------------------------------------- single neuron
def single_neuron_density(x, w, beta, sigma):
    """Local complexity density of ``N(x) = v relu(w x - beta)``, ``v != 0``.

    Paper convention: ``beta`` is minus the torch bias (``w x - beta == w x + b``).

    ``f(x) = |w| rho_b(w x)`` with ``rho_b`` the ``N(beta, sigma**2)`` density
    ([1]_, Appendix A.2). ``w = 0`` gives ``f = 0`` (no breakpoint).

    Parameters
    ----------
    x : array_like of float, any shape
        Input points.
    w, beta : float
        Weight and mean bias of the neuron.
    sigma : float
        Standard deviation of the bias noise, ``> 0``.

    Returns
    -------
    f : ndarray of float64, shape of ``x``

    Examples
    --------
    >>> import numpy as np
    >>> from regiongeom.closed_form import single_neuron_density
    >>> bool(single_neuron_density(0.0, w=1.0, beta=0.0, sigma=1.0) == 1 / np.sqrt(2 * np.pi))
    True
    >>> single_neuron_density([-1.0, 0.0], w=-2.0, beta=2.0, sigma=1.0) * np.sqrt(2 * np.pi)  # 2, 2 e^-2
    array([2.        , 0.27067057])
    """
    x = _array("x", x)
    w, beta = _scalar("w", w), _scalar("beta", beta)
    sigma = _scalar("sigma", sigma, positive=True)
    return abs(w) / sigma * _npdf((w * x - beta) / sigma)


def single_neuron_density_nd(points, *, w, beta, sigma):
    """Density of a single neuron on ``R^n``: ``f(x) = ||w|| rho_b(w . x)``.

    Paper convention: ``beta`` is minus the torch bias (``w x - beta == w x + b``).

    Parameters
    ----------
    points : (P, n) array_like of float
        Input points; a flat ``(P,)`` array is accepted when ``n = 1``.
    w : (n,) array_like of float
        Weight vector of the neuron.
    beta : float
        Mean bias.
    sigma : float
        Standard deviation of the bias noise, ``> 0``.

    Returns
    -------
    f : (P,) ndarray of float64

    Examples
    --------
    >>> f = single_neuron_density_nd([[0.0, 0.0], [1.0, 0.0]], w=[3.0, 4.0], beta=3.0, sigma=1.0)
    >>> np.allclose(f, 5 * np.exp([-4.5, 0.0]) / np.sqrt(2 * np.pi), rtol=1e-15, atol=0)
    True
    """
    w = _array("w", w)
    if w.ndim != 1:
        raise ValueError(f"w must be a 1-d (n,) array, got shape {w.shape}")
    return one_layer_2d_density(points, W=w[None, :], beta=[_scalar("beta", beta)], sigma=sigma)


def single_neuron_expected_count(*, w, beta, sigma, lo, hi):
    """Expected number of breakpoints ``x = b / w`` of one neuron in ``[lo, hi]``.

    Paper convention: ``beta`` is minus the torch bias (``w x - beta == w x + b``).

    ``P(b in w [lo, hi]) = Phi((B - beta)/sigma) - Phi((A - beta)/sigma)`` with
    ``[A, B]`` the interval ``w [lo, hi]`` put in order; ``0`` when ``w = 0``.
    It equals the integral of :func:`single_neuron_density` over ``[lo, hi]``.

    Parameters
    ----------
    w, beta : float
        Weight and mean bias.
    sigma : float
        Standard deviation of the bias noise, ``> 0``.
    lo, hi : float
        Interval, ``lo < hi``; ``-inf`` and ``inf`` are allowed.

    Returns
    -------
    count : float

    Examples
    --------
    >>> single_neuron_expected_count(w=-3.0, beta=0.0, sigma=1.0, lo=-np.inf, hi=0.0)
    0.5
    """
    w, beta = _scalar("w", w), _scalar("beta", beta)
    sigma = _scalar("sigma", sigma, positive=True)
    lo, hi = _interval(lo, hi, allow_inf=True)
    if w == 0:
        return 0.0
    a, b = sorted((w * lo, w * hi))
    return float(_ndtr_diff((a - beta) / sigma, (b - beta) / sigma))


def single_neuron_lc_uniform(*, w, beta, sigma, lo, hi):
    """Local complexity ``E_{x ~ U[lo, hi]}[f(x)]`` of a single neuron in 1D.

    Paper convention: ``beta`` is minus the torch bias (``w x - beta == w x + b``).

    Equals ``single_neuron_expected_count(w, beta, sigma, lo, hi) / (hi - lo)``;
    same parameters, with ``lo < hi`` finite. Returns a float.

    Examples
    --------
    >>> from scipy.special import ndtr
    >>> bool(single_neuron_lc_uniform(w=1.0, beta=0.0, sigma=1.0, lo=0.0, hi=4.0) == (ndtr(4.0) - 0.5) / 4)
    True
    """
    lo, hi = _interval(lo, hi, allow_inf=False)
    return single_neuron_expected_count(w=w, beta=beta, sigma=sigma, lo=lo, hi=hi) / (hi - lo)


# ---------------------------------------------------------- two-layer chain
def _chain_params(w1, w2, beta1, beta2, sigma):
    names, values = ("w1", "w2", "beta1", "beta2"), (w1, w2, beta1, beta2)
    return (
        *(_scalar(n, v) for n, v in zip(names, values, strict=True)),
        _scalar("sigma", sigma, positive=True),
    )


def two_layer_chain_density(x, w1, w2, beta1, beta2, sigma):
    """Density of ``N(x) = relu(w2 relu(w1 x - b1) - b2)`` ([1]_, Appendix A.2).

    Paper convention: ``beta`` is minus the torch bias (``w x - beta == w x + b``).

    ``b1 ~ N(beta1, sigma**2)`` and ``b2 ~ N(beta2, sigma**2)`` independent.
    With ``r = sqrt(1 + w2**2)`` and ``phi``, ``Phi`` the standard normal
    pdf and cdf::

        f(x) = |w1| / sigma * phi((w1 x - beta1) / sigma) * Phi(-beta2 / sigma)
             + |w1 w2| / (sigma r) * phi((w2 (w1 x - beta1) - beta2) / (sigma r))
                                   * Phi((w1 x - beta1 + w2 beta2) / (sigma r))

    The first term is neuron 1's breakpoint ``x = b1 / w1``: there
    ``z2 = w2 relu(0) = 0``, so neuron 1 is good iff ``b2 < 0``. The second is
    neuron 2's breakpoint, which exists iff ``t = b2 / w2 > 0`` and sits at
    ``x = (b1 + t) / w1``; the term is
    ``|w1 w2| E_b1[1{b1 < w1 x} rho_b2(w2 (w1 x - b1))]``, a product of two
    Gaussians in ``w1 x - b1`` over a half-line, done by completing the square.
    ``w2 = 0`` makes ``N`` constant, so ``f = 0`` (the path-of-active-neurons
    "good" of Theorem 2 would still count neuron 1 there; the paper's
    genericity assumption excludes that case). ``w1 = 0`` also gives ``0``.

    Parameters
    ----------
    x : array_like of float, any shape
        Input points.
    w1, w2 : float
        Weights of neuron 1 and neuron 2.
    beta1, beta2 : float
        Mean biases.
    sigma : float
        Standard deviation of both bias noises, ``> 0``.

    Returns
    -------
    f : ndarray of float64, shape of ``x``

    Examples
    --------
    >>> f = two_layer_chain_density(0.0, w1=1.0, w2=1.0, beta1=0.0, beta2=0.0, sigma=1.0)
    >>> bool(np.isclose(f, (1 + 1 / np.sqrt(2)) / (2 * np.sqrt(2 * np.pi)), rtol=1e-15))
    True
    >>> float(two_layer_chain_density(0.3, w1=2.0, w2=0.0, beta1=0.0, beta2=-1.0, sigma=1.0))
    0.0
    """
    x = _array("x", x)
    w1, w2, beta1, beta2, sigma = _chain_params(w1, w2, beta1, beta2, sigma)
    if w2 == 0 or w1 == 0:
        return np.zeros_like(x)
    a = w1 * x - beta1
    sr = sigma * np.hypot(1.0, w2)
    term1 = abs(w1) / sigma * _npdf(a / sigma) * ndtr(-beta2 / sigma)
    term2 = abs(w1 * w2) / sr * _npdf((w2 * a - beta2) / sr) * ndtr((a + w2 * beta2) / sr)
    return term1 + term2


def two_layer_chain_expected_count(*, w1, w2, beta1, beta2, sigma, lo, hi):
    """Expected number of locus points of the two-layer chain in ``[lo, hi]``.

    Paper convention: ``beta`` is minus the torch bias (``w x - beta == w x + b``).

    The integral of :func:`two_layer_chain_density` over ``[lo, hi]``. Neuron 1
    gives ``P(b1 in w1 [lo, hi]) P(b2 < 0)``. Neuron 2 gives
    ``P(t > 0, s in w1 [lo, hi])`` with ``t = b2 / w2`` and ``s = b1 + t``
    jointly Gaussian (correlation ``1 / sqrt(1 + w2**2)``), a bivariate normal
    rectangle probability computed exactly with Owen's T function.

    Parameters
    ----------
    w1, w2, beta1, beta2 : float
        Weights and mean biases, as in :func:`two_layer_chain_density`.
    sigma : float
        Standard deviation of both bias noises, ``> 0``.
    lo, hi : float
        Interval, ``lo < hi``; ``-inf`` and ``inf`` are allowed.

    Returns
    -------
    count : float

    Examples
    --------
    Over the whole line neuron 1 contributes ``P(b2 < 0)`` and neuron 2
    ``P(b2 / w2 > 0)``; with ``beta2 = 0`` both are 1/2:

    >>> two_layer_chain_expected_count(w1=1.0, w2=-2.0, beta1=0.5, beta2=0.0, sigma=1.0, lo=-np.inf, hi=np.inf)
    1.0
    """
    w1, w2, beta1, beta2, sigma = _chain_params(w1, w2, beta1, beta2, sigma)
    lo, hi = _interval(lo, hi, allow_inf=True)
    if w1 == 0 or w2 == 0:
        return 0.0
    a, b = sorted((w1 * lo, w1 * hi))
    count1 = _ndtr_diff((a - beta1) / sigma, (b - beta1) / sigma) * ndtr(-beta2 / sigma)
    # Standardised s at the ends, and -(standardised threshold t > 0); the
    # correlation of s with -t is -1/r.
    r = np.hypot(1.0, w2)
    sgn = np.sign(w2)
    with np.errstate(invalid="ignore"):
        h = sgn * (w2 * (np.array([a, b]) - beta1) - beta2) / (sigma * r)
    k = sgn * beta2 / sigma
    phi2 = _bvn_cdf(h, k, -1.0 / r)
    return float(count1 + max(phi2[1] - phi2[0], 0.0))


def two_layer_chain_lc_uniform(*, w1, w2, beta1, beta2, sigma, lo, hi):
    """Local complexity ``E_{x ~ U[lo, hi]}[f(x)]`` of the two-layer chain.

    Paper convention: ``beta`` is minus the torch bias (``w x - beta == w x + b``).

    Equals ``two_layer_chain_expected_count(...) / (hi - lo)``; same
    parameters, with ``lo < hi`` finite. Returns a float.

    Examples
    --------
    On ``[0, 1]`` with ``w1 = 1, beta1 = 1e6`` neuron 2 never fires in range,
    and neuron 1's breakpoints are far away too: the complexity is 0.

    >>> two_layer_chain_lc_uniform(w1=1.0, w2=1.0, beta1=1e6, beta2=0.0, sigma=1.0, lo=0.0, hi=1.0)
    0.0
    """
    lo, hi = _interval(lo, hi, allow_inf=False)
    count = two_layer_chain_expected_count(w1=w1, w2=w2, beta1=beta1, beta2=beta2, sigma=sigma, lo=lo, hi=hi)
    return count / (hi - lo)


# ------------------------------------------------- one hidden layer on R^n
def one_layer_2d_density(points, *, W, beta, sigma):
    """Density of one hidden layer whose neurons are all good, on ``R^n``.

    Paper convention: ``beta`` is minus the torch bias (``w x - beta == w x + b``).

    ``f(x) = sum_i ||W_i|| rho_{b_i}(W_i . x)``: each neuron's breakpoint set
    is the hyperplane ``W_i . x = b_i``, and every one is in the locus (e.g. a
    linear read-out with nonzero weights). Rows ``W_i = 0`` contribute 0.

    Parameters
    ----------
    points : (P, n) array_like of float
        Input points (``n = 2`` typically); flat ``(P,)`` is accepted if ``n = 1``.
    W : (m, n) array_like of float
        Weight rows of the ``m`` neurons.
    beta : (m,) array_like of float
        Mean biases.
    sigma : float
        Standard deviation of every bias noise, ``> 0``.

    Returns
    -------
    f : (P,) ndarray of float64

    Examples
    --------
    The coordinate lines ``x = b_1``, ``y = b_2`` with ``beta = 0``, at the origin:

    >>> f = one_layer_2d_density([[0.0, 0.0]], W=np.eye(2), beta=[0.0, 0.0], sigma=1.0)
    >>> bool(f[0] == 2 / np.sqrt(2 * np.pi))
    True
    """
    pts, W, beta, sigma = _layer(points, W, beta, sigma)
    norms = np.linalg.norm(W, axis=1)
    z = (pts @ W.T - beta) / sigma
    return (norms / sigma * _npdf(z)).sum(axis=1)


def _chord_fraction(mu, s, eps):
    """``E[2 sqrt(eps^2 - d^2) 1{|d| < eps}] / (pi eps^2)``, ``d ~ N(mu, s^2)``.

    ``mu``, ``s``: arrays of one shape. Integrating only where the Gaussian
    exponent is within ``_WINDOW`` of its minimum on the disk keeps the
    integrand of bounded complexity whatever ``eps / s`` is.
    """
    near = np.clip(mu, -eps, eps)
    half = np.sqrt((near - mu) ** 2 + 2 * _WINDOW * s**2)
    ta = np.arcsin(np.clip((mu - half) / eps, -1.0, 1.0))[..., None]
    tb = np.arcsin(np.clip((mu + half) / eps, -1.0, 1.0))[..., None]
    t = 0.5 * (ta + tb) + 0.5 * (tb - ta) * _GL_NODES
    z = (eps * np.sin(t) - mu[..., None]) / s[..., None]
    g = np.cos(t) ** 2 * _npdf(z) / s[..., None]
    return (tb - ta)[..., 0] / np.pi * (g @ _GL_WEIGHTS)


def one_layer_2d_density_eps(points, *, W, beta, sigma, eps):
    """Finite-eps density ``E[length(locus & disk(x, eps))] / (pi eps**2)`` in 2D.

    Paper convention: ``beta`` is minus the torch bias (``w x - beta == w x + b``).

    The locus is the union of the lines ``W_i . y = b_i`` (all neurons good,
    as in :func:`one_layer_2d_density`, which is the ``eps -> 0`` limit; the
    difference is ``O(eps**2)``). Line ``i`` lies at signed distance
    ``d = (b_i - W_i . x) / ||W_i||`` from ``x``, ``d ~ N(mu_i, s_i**2)`` with
    ``mu_i = (beta_i - W_i . x) / ||W_i||`` and ``s_i = sigma / ||W_i||``, and
    cuts a chord ``2 sqrt(eps**2 - d**2)`` when ``|d| < eps``.

    ``E[chord]`` is not elementary. It is computed as
    ``(2 eps**2) int_{-pi/2}^{pi/2} cos(t)**2 rho(eps sin t) dt`` (``d = eps sin t``
    removes the square-root endpoint singularity, leaving an entire
    integrand) with an 80-node Gauss-Legendre rule on the window of ``t``
    where the Gaussian exponent is within 50 of its minimum over the disk.
    Against a 4000-panel reference over ``eps / s`` in ``[1e-4, 300]`` and
    ``|mu| / eps`` in ``[0, 5]`` the relative error is below ``1e-13`` (64
    nodes: ``2e-12``); for ``eps / s`` beyond ~1e3 the problem itself is
    conditioned at ``(eps / s) * 1e-16``.

    Parameters
    ----------
    points : (P, 2) array_like of float
        Disk centres.
    W : (m, 2) array_like of float
        Weight rows; rows ``W_i = 0`` contribute 0.
    beta : (m,) array_like of float
        Mean biases.
    sigma : float
        Standard deviation of every bias noise, ``> 0``.
    eps : float
        Disk radius, ``> 0``.

    Returns
    -------
    f_eps : (P,) ndarray of float64

    Examples
    --------
    A disk much smaller than ``sigma``: ``f_eps`` is ``f`` up to ``O(eps**2)``.

    >>> f0 = one_layer_2d_density([[0.0, 0.0]], W=[[1.0, 0.0]], beta=[0.0], sigma=1.0)
    >>> fe = one_layer_2d_density_eps([[0.0, 0.0]], W=[[1.0, 0.0]], beta=[0.0], sigma=1.0, eps=1e-3)
    >>> bool(abs(fe[0] / f0[0] - 1) < 1e-6)
    True
    """
    pts, W, beta, sigma = _layer(points, W, beta, sigma)
    if W.shape[1] != 2:
        raise ValueError(f"one_layer_2d_density_eps is 2D only: W must be (m, 2), got {W.shape}")
    eps = _scalar("eps", eps, positive=True)
    norms = np.linalg.norm(W, axis=1)
    keep = norms > 0
    W, beta, norms = W[keep], beta[keep], norms[keep]
    out = np.zeros(len(pts))
    if not keep.any():
        return out
    s = np.broadcast_to(sigma / norms, (len(pts), len(norms)))
    step = max(1, _CHUNK // (len(norms) * _GL_ORDER))
    for i in range(0, len(pts), step):
        mu = (beta - pts[i : i + step] @ W.T) / norms
        out[i : i + step] = _chord_fraction(mu, s[i : i + step], eps).sum(axis=1)
    return out


# ------------------------------------------- vertices of one hidden layer, 2D
def one_layer_vertex_density(points, W, beta, sigma, *, breakpoints=(0.0,)):
    """Vertex density of one hidden layer whose neurons are all good, in 2D.

    Neuron ``i``'s locus is the lines ``W_i . x - b_i = t`` for each breakpoint
    ``t`` of the activation, ``b_i ~ N(beta_i, sigma**2)`` independent. Two
    lines of distinct neurons cross once (Theorem 6 of Hanin & Rolnick with
    k = 2; ``z_i = W_i . x`` and nothing is upstream), so

        v(x) = sum_{i < j} sum_{t, t'} |det[W_i; W_j]| rho_{b_i}(W_i . x - t) rho_{b_j}(W_j . x - t').

    Every neuron is good when the read-out weights are all nonzero (and the
    activation has no piece of slope 0 on both sides of a breakpoint, which
    no activation has). Lines of one neuron never cross each other.

    Parameters
    ----------
    points : (P, 2) array_like of float
    W : (m, 2) array_like of float, keyword-only
        Weight rows of the ``m`` neurons.
    beta : (m,) array_like of float, keyword-only
        Mean biases, paper convention (``beta = -b`` for a torch bias ``b``).
    sigma : float, keyword-only
        Standard deviation of every bias noise, ``> 0``.
    breakpoints : sequence of float, keyword-only
        The activation's breakpoints (ReLU, LeakyReLU, abs: ``(0,)``;
        Hardtanh: ``(min_val, max_val)``).

    Returns
    -------
    v : (P,) ndarray of float64
        Expected number of locus vertices per unit area.

    Examples
    --------
    The coordinate lines ``x = b_1``, ``y = b_2`` with ``beta = 0`` cross at
    the origin with density ``phi(0)**2 / sigma**2``:

    >>> v = one_layer_vertex_density([[0.0, 0.0]], W=np.eye(2), beta=[0.0, 0.0], sigma=1.0)
    >>> bool(v[0] == 1 / (2 * np.pi))
    True
    """
    pts, W, beta, sigma = _layer(points, W, beta, sigma)
    if W.shape[1] != 2:
        raise ValueError(f"one_layer_vertex_density is 2D only: W must be (m, 2), got {W.shape}")
    t = _array("breakpoints", breakpoints).reshape(-1)
    if t.size == 0:
        raise ValueError("breakpoints must hold at least one value")
    # rho[p, i]: sum over breakpoints of each neuron's density at its lines
    u = (pts @ W.T - beta)[:, :, None] - t
    rho = (_npdf(u / sigma) / sigma).sum(axis=2)
    det = np.abs(W[:, None, 0] * W[None, :, 1] - W[:, None, 1] * W[None, :, 0])
    # sum_{i<j} = half the sum over i != j (the diagonal of det is 0)
    return 0.5 * np.einsum("pi,ij,pj->p", rho, det, rho)
