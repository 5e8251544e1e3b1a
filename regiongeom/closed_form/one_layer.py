"""One hidden layer on R^n: the local complexity density (at eps -> 0 and at finite eps)
and, in 2D, the density of the locus's vertices (Hanin & Rolnick, k = 2).

Parameters follow the paper's convention (``beta = -b``); see :mod:`regiongeom.closed_form`.
"""

import numpy as np

from ._common import _array, _layer, _npdf, _scalar

# Gauss-Legendre rule for the finite-eps chord expectation (see
# one_layer_2d_density_eps); _WINDOW is the rise of the Gaussian exponent
# kept past its smallest value on the disk (exp(-50) ~ 2e-22 is dropped).
_GL_ORDER = 80
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(_GL_ORDER)
_WINDOW = 50.0
_CHUNK = 1 << 21  # floats per block in the vectorised quadrature


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
