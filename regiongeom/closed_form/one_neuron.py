"""One neuron and the two-neuron chain of Appendix A.2, in 1D (and one neuron on R^n).

Parameters follow the paper's convention (``beta = -b``); see :mod:`regiongeom.closed_form`.
"""

import numpy as np

from ._common import _array, _bvn_cdf, _interval, _ndtr_diff, _npdf, _scalar, ndtr


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
