"""The paper's other measures: local rank, total variation, not-good neurons.

Every quantity here is built from the exact input Jacobians of a piecewise
linear network at the given points: on the linear region holding ``x`` the
pre-activation of layer ``l`` is ``v_l(x) = J_l(x) x + c``, with

    J_l(x) = W_l D_{l-1}(x) W_{l-1} ... D_1(x) W_1,

``D_m(x)`` the diagonal of the slopes of layer ``m``'s activation pieces at
``x`` (0 or 1 for ReLU). No autograd: the products are formed directly, in
chunks of points, in float64.

Bias noise follows :func:`regiongeom.lc_density`: with ``sigma`` given,
every neuron's bias gets independent ``N(0, sigma^2)`` noise, drawn up front
as an ``(n_samples, n_neurons)`` array from ``numpy.random.default_rng(rng)``
(the same draw as the local complexity's for the same seed), and the
expectation over ``theta-tilde`` is the mean over these samples.

References
----------
N. Patel, G. Montúfar. "On the local complexity of linear regions in deep
ReLU networks": Definition 4 and Appendix A.5 (local rank), Section 5
(total variation), Appendix B.4 (the number B of neurons that are not good).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

from ._validate import as_points, integer_at_least, positive
from .complexity import Estimate

__all__ = ["local_rank", "total_variation", "not_good_count"]

_UNIT = np.finfo(np.float64).eps / 2  # unit roundoff u
_CHUNK = 256  # points per chunk of Jacobians


# ----------------------------------------------------------------------------
# input normalisation and the shared passes
# ----------------------------------------------------------------------------
def _check_common(net, data, sigma, n_samples, rng, n_jobs=1, what="data"):
    from . import _validate
    from ._validate import require_network

    _validate.require_no_max_units(net, "local_rank, total_variation and the tracker's measures")
    if hasattr(net, "stages"):  # a GraphNetwork: the same measures through its operators
        from ._theorem2_graph import check_graph

        check_graph(net, "local_rank, total_variation and not_good_count")
    else:
        require_network(net, "local_rank, total_variation and the tracker's measures")
    if sigma is not None:
        sigma = positive(sigma, "sigma")
        n_samples = integer_at_least(n_samples, 2, "n_samples")
    if rng is not None and (isinstance(rng, bool) or not isinstance(rng, (Integral, np.random.Generator))):
        raise TypeError(f"rng must be an int seed, a numpy Generator or None, got {type(rng).__name__}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive integer or -1 (all cores), got {n_jobs!r}")
    x = as_points(data, net.n_in, what)
    if x.shape[0] == 0:
        raise ValueError(f"{what} is empty")
    return x, sigma, n_samples, int(n_jobs)


def _map_samples(fn, net, x, noise, n_jobs, **kw):
    """``[fn(net, x, row, **kw) for row in noise]``, spread over joblib workers
    when ``n_jobs != 1``.

    Each noise row is one task; the noise is drawn before, so the result does
    not depend on ``n_jobs`` or on the backend. joblib's default backend
    (loky) needs no ``if __name__ == "__main__":`` guard, and a cluster is
    used with ``joblib.parallel_config(backend="dask")``.
    """
    if n_jobs == 1 or noise.shape[0] == 1:
        return [fn(net, x, row, **kw) for row in noise]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=n_jobs)(delayed(fn)(net, x, row, **kw) for row in noise)


def _noise(net, sigma, n_samples, rng):
    """(S, n_neurons) bias noise; one row of zeros without noise."""
    if sigma is None:
        return np.zeros((1, net.n_neurons))
    return np.random.default_rng(rng).normal(0.0, sigma, size=(n_samples, net.n_neurons))


def _sample_fn(net, what):
    """The per-noise-row function of a measure: the dense one, or the graph
    network's (:mod:`regiongeom._measures_graph`)."""
    if hasattr(net, "stages"):
        from . import _measures_graph as g

        return {"rank": g.rank_sample, "tv": g.tv_sample, "not_good": g.not_good_sample}[what]
    return {"rank": _rank_sample, "tv": _tv_sample, "not_good": _not_good_sample}[what]


def _hidden(net):
    """Indices of the layers with an activation (the hidden layers)."""
    return [i for i, a in enumerate(net.activations) if a is not None]


def _forward(net, x, row, *, want_abs=False):
    """Forward pass with the exact Jacobians of every layer's pre-activation.

    Returns a list with one ``(v, d, J, A)`` per layer: pre-activations
    ``v`` (C, n_l) with the noisy biases, slopes ``d`` (C, n_l) of the pieces
    (None for a layer without activation), ``J`` (C, n_l, n_in) and, with
    ``want_abs``, ``A = |W_l| |D_{l-1}| ... |W_1|`` (C, n_l, n_in) for the
    rounding-error bound (else None).
    """
    offs = net.neuron_offsets
    h, J, A, out = x, None, None, []
    for i, (w, b, a) in enumerate(zip(net.weights, net.biases, net.activations, strict=True)):
        if a is not None:
            b = b + row[offs[i] : offs[i + 1]]
        v = h @ w.T + b
        Jv = np.broadcast_to(w, (x.shape[0], *w.shape)) if J is None else np.matmul(w, J)
        Av = None
        if want_abs:
            aw = np.abs(w)
            Av = np.broadcast_to(aw, (x.shape[0], *w.shape)) if A is None else np.matmul(aw, A)
        if a is None:
            d, h, J, A = None, v, Jv, Av
        else:
            d = a.slopes[a.piece(v)]
            h = a(v)
            J = d[:, :, None] * Jv
            A = None if Av is None else np.abs(d)[:, :, None] * Av
        out.append((v, d, Jv, Av))
    return out


def _backward(net, fwd):
    """Jacobians of the output: ``M_l = dN/dv_l`` (C, n_out, n_l) for every
    layer and ``dN/dx`` (C, n_out, n_in), from the forward pass's slopes."""
    C = fwd[0][0].shape[0]
    T = np.broadcast_to(np.eye(net.n_out), (C, net.n_out, net.n_out))
    M = [None] * net.n_layers
    for m in range(net.n_layers - 1, -1, -1):
        d = fwd[m][1]
        if d is not None:
            T = T * d[:, None, :]
        M[m] = T
        T = np.matmul(T, net.weights[m])
    return M, T


def _chunks(P, size=_CHUNK):
    return [(s, min(P, s + size)) for s in range(0, P, size)]


def _rank_tolerance(net, layer, S, A):
    """Tolerance below which a computed singular value of ``J_l`` is zero.

    ``S`` (C, k) singular values of the computed ``J_l``, ``A`` (C, n_l,
    n_in) the product of the absolute values. See :func:`local_rank`.
    """
    n_l, n_in = net.weights[layer].shape[0], net.n_in
    depth = sum(w.shape[1] + 1 for w in net.weights[: layer + 1])
    prod = depth * _UNIT * 1.01 * np.sqrt(np.einsum("cij,cij->c", A, A))
    return max(n_l, n_in) * _UNIT * S[:, 0] + prod


# ----------------------------------------------------------------------------
# local rank
# ----------------------------------------------------------------------------
def local_rank(net, data, eps=None, *, sigma=None, n_samples=16, rng=None, n_jobs=1) -> np.ndarray:
    """Local rank of every hidden layer's features (Definition 4).

    ``LR_l = E[rank J_x z_l(x)]``, the mean over the data points of the rank
    of the Jacobian of layer ``l``'s pre-activations ``z_l`` (the paper's
    "pre-bias pre-activations": the bias does not change the Jacobian),
    ``J_x z_l(x) = W_l D_{l-1} W_{l-1} ... D_1 W_1``.

    Parameters
    ----------
    net : Network or GraphNetwork
    data : (P, n_in) array_like of float64
        The points standing for the data distribution; any input dimension.
    eps : float, optional
        ``None``: the exact rank. ``eps > 0``: the approximate rank
        ``rank_eps`` of Appendix A.5, the number of singular values above
        ``eps`` (``LR^eps_l``).
    sigma : float, optional, keyword-only
        Also average over bias noise (the expectation over ``theta-tilde`` of
        eq. 9): ``n_samples`` draws of ``N(0, sigma^2)`` noise on every bias.
    n_samples : int, default 16
        Noise samples (with ``sigma``).
    rng : int, numpy.random.Generator or None
        Seed for the noise.
    n_jobs : int, default 1
        Worker processes (joblib; ``-1``: all cores), one task per noise
        sample; the result does not depend on it. Runs on a Dask cluster
        inside ``joblib.parallel_config(backend="dask")``.

    Returns
    -------
    (L,) ndarray of float64
        One value per layer with an activation, in order.

    Notes
    -----
    The exact rank needs a tolerance for the rounding error of the computed
    product. As ``numpy.linalg.matrix_rank``, a singular value counts when it
    exceeds ``max(M, N) u sigma_max`` (``u = 2**-53``), the backward error of
    the SVD itself; for a product of matrices the computed ``J`` also differs
    from the exact one. The standard bound for a product computed factor by
    factor (each inner product of length ``k`` errs by at most ``gamma_k``
    times the product of the absolute values) gives, to first order,
    ``|J_computed - J| <= u sum_m (n_{m-1} + 1) |W_l| |D_{l-1}| ... |W_1|``
    entrywise (the ``+1`` for the scaling by a slope). By Weyl's inequality
    a singular value that is zero in exact arithmetic is at most the 2-norm
    of that error, which is at most its Frobenius norm. The tolerance is the
    sum of the two (with 1% slack for second-order terms). So a rank
    deficiency built into the network (a bottleneck, zero rows, collinear
    weights) is always found; a singular value of a full-rank ``J`` below
    this tolerance cannot be told from zero in float64.

    Examples
    --------
    A bottleneck of width 2: every later layer has rank at most 2.

    >>> import numpy as np, regiongeom as rg
    >>> g = np.random.default_rng(0)
    >>> sizes = [5, 8, 2, 8, 1]
    >>> ws = [g.normal(size=(o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
    >>> net = rg.Network.from_arrays(ws, [np.full(o, 0.5) for o in sizes[1:]], ["relu"] * 3 + [None])
    >>> bool(np.all(rg.local_rank(net, g.normal(size=(50, 5)))[1:] <= 2))
    True
    """
    x, sigma, n_samples, n_jobs = _check_common(net, data, sigma, n_samples, rng, n_jobs)
    if eps is not None:
        eps = positive(eps, "eps")
    noise = _noise(net, sigma, n_samples, rng)
    total = sum(_map_samples(_sample_fn(net, "rank"), net, x, noise, n_jobs, eps=eps))
    return total / (x.shape[0] * noise.shape[0])


def _rank_sample(net, x, row, *, eps):
    """(L,) sum over the points of the (approximate) rank, one noise row."""
    hidden = _hidden(net)
    total = np.zeros(len(hidden))
    for s0, s1 in _chunks(x.shape[0]):
        fwd = _forward(net, x[s0:s1], row, want_abs=eps is None)
        for j, layer in enumerate(hidden):
            _, _, J, A = fwd[layer]
            S = np.linalg.svd(J, compute_uv=False)
            tol = _rank_tolerance(net, layer, S, A)[:, None] if eps is None else eps
            total[j] += np.count_nonzero(S > tol)
    return total


# ----------------------------------------------------------------------------
# total variation
# ----------------------------------------------------------------------------
def total_variation(net, data, sigma=None, n_samples=64, rng=None, *, n_jobs=1) -> Estimate:
    """Expected total variation ``TV = E[||grad_x N(x)||]`` (Section 5).

    The norm is the Frobenius norm of the network's input Jacobian (the
    Euclidean norm of the gradient for one output), exact on the linear
    region of each point; the mean is over the data points and, with
    ``sigma``, over bias noise (the paper's expectation over
    ``theta-tilde``).

    Parameters
    ----------
    net : Network or GraphNetwork
    data : (P, n_in) array_like of float64
    sigma : float, optional
        Standard deviation of the bias noise; ``None``: the network as is.
    n_samples : int, default 64
        Noise samples (with ``sigma``).
    rng : int, numpy.random.Generator or None
        Seed for the noise.
    n_jobs : int, default 1
        Worker processes (joblib; ``-1``: all cores), one task per noise
        sample; the result does not depend on it. Runs on a Dask cluster
        inside ``joblib.parallel_config(backend="dask")``.

    Returns
    -------
    Estimate
        ``mean`` and ``stderr`` floats; the standard error is over the noise
        samples of the per-sample means (0 without noise: the mean over the
        given points is exact). ``method`` is ``"jacobian"``.

    Examples
    --------
    >>> import numpy as np, regiongeom as rg
    >>> net = rg.Network.from_arrays([[[3.0, 4.0]], [[2.0]]], [[0.0], [0.0]], ["relu", None])
    >>> rg.total_variation(net, [[1.0, 1.0], [-1.0, -1.0]]).mean  # |(6, 8)| on one side, 0 on the other
    5.0
    """
    x, sigma, n_samples, n_jobs = _check_common(net, data, sigma, n_samples, rng, n_jobs)
    noise = _noise(net, sigma, n_samples, rng)
    per = np.array(_map_samples(_sample_fn(net, "tv"), net, x, noise, n_jobs)) / x.shape[0]
    return _estimate(per, sigma, "jacobian")


def _tv_sample(net, x, row):
    """Sum over the points of ||J_N(x)||_F, one noise row."""
    tot = 0.0
    for s0, s1 in _chunks(x.shape[0]):
        _, Jn = _backward(net, _forward_slopes(net, x[s0:s1], row))
        tot += np.sqrt(np.einsum("cij,cij->c", Jn, Jn)).sum()
    return tot


def _forward_slopes(net, x, row):
    """The forward pass without Jacobians: ``(v, d, None, None)`` per layer."""
    offs = net.neuron_offsets
    h, out = x, []
    for i, (w, b, a) in enumerate(zip(net.weights, net.biases, net.activations, strict=True)):
        if a is not None:
            b = b + row[offs[i] : offs[i + 1]]
        v = h @ w.T + b
        d = None if a is None else a.slopes[a.piece(v)]
        h = v if a is None else a(v)
        out.append((v, d, None, None))
    return out


def _estimate(per, sigma, method):
    S = per.shape[0]
    stderr = float(per.std(ddof=1) / math.sqrt(S)) if S > 1 else 0.0
    return Estimate(
        mean=float(per.mean()), stderr=stderr, n_samples=S, method=method,
        sigma=float("nan") if sigma is None else float(sigma), eps=None, good=True, rho=True,
    )  # fmt: skip


# ----------------------------------------------------------------------------
# neurons that are not good
# ----------------------------------------------------------------------------
def not_good_count(net, data, *, sigma=None, n_samples=16, rng=None, n_jobs=1) -> Estimate:
    """Expected number ``B`` of neurons that are not good (Appendix B.4).

    ``B = E_x E_theta~[sum_i 1{z_i not good at x}]``, with "good" exactly as
    in :func:`regiongeom.lc_density`'s Theorem 2: neuron ``i`` put on its
    breakpoint (its output ``act(t_k)``, the later layers recomputed) is good
    when a path through nonzero weights and open neurons (on a piece of
    nonzero slope) of every later layer with an activation reaches the
    output. That is the indicator in eq. (6), so ``B`` is the count the lower
    bounds (eqs. 8, 12, 13) need. An activation with several breakpoints
    contributes one term per breakpoint (ReLU: one per neuron).

    Parameters
    ----------
    net : Network or GraphNetwork
    data : (P, n_in) array_like of float64
    sigma : float, optional, keyword-only
        Bias noise; ``None``: the network as is.
    n_samples : int, default 16
    rng : int, numpy.random.Generator or None
    n_jobs : int, default 1
        Worker processes (joblib; ``-1``: all cores), one task per noise
        sample; the result does not depend on it. Runs on a Dask cluster
        inside ``joblib.parallel_config(backend="dask")``.

    Returns
    -------
    Estimate
        ``mean``: B (a count per point, averaged); ``stderr`` over the noise
        samples (0 without noise). ``method`` is ``"count"``.

    Examples
    --------
    The second hidden layer is closed at every point, so each of the 3 first
    layer neurons is not good (the 2 second layer neurons are: they reach the
    output directly).

    >>> import numpy as np, regiongeom as rg
    >>> net = rg.Network.from_arrays(
    ...     [np.ones((3, 2)), np.ones((2, 3)), np.ones((1, 2))],
    ...     [np.zeros(3), np.full(2, -100.0), np.zeros(1)], ["relu", "relu", None])
    >>> rg.not_good_count(net, [[0.5, 0.5], [1.0, 2.0]]).mean
    3.0
    """
    x, sigma, n_samples, n_jobs = _check_common(net, data, sigma, n_samples, rng, n_jobs)
    noise = _noise(net, sigma, n_samples, rng)
    P = x.shape[0]
    if net.n_neurons == 0:
        return _estimate(np.zeros(noise.shape[0]), sigma, "count")
    per = np.array(_map_samples(_sample_fn(net, "not_good"), net, x, noise, n_jobs, sigma=sigma), dtype=float)
    return _estimate(per / P, sigma, "count")


def _not_good_sample(net, x, row, *, sigma):
    """Number of (point, neuron, breakpoint) terms not good, one noise row."""
    from ._theorem2 import Packed, theorem2_block

    pk = Packed(net)
    valid = _term_mask(net, pk.kmax)
    opts = dict(sigma=1.0 if sigma is None else sigma, rho=True, good=True)
    count = 0
    for p0, p1 in _chunks(x.shape[0], 4096):
        _, (good, _) = theorem2_block(pk, x[p0:p1], row[None], opts, return_good=True)
        count += int(np.count_nonzero((good == 0) & valid[None]))
    return count


def _term_mask(net, kmax):
    """(n_neurons, kmax) True where neuron i has a k-th breakpoint."""
    counts = np.concatenate(
        [
            np.full(w.shape[0], a.breakpoints.size)
            for w, a in zip(net.weights, net.activations)
            if a is not None
        ]
    )
    return np.arange(kmax)[None, :] < counts[:, None]


def _check_eta(eta):
    if not isinstance(eta, Real) or isinstance(eta, bool) or not eta > 0 or not math.isfinite(eta):
        raise ValueError(f"eta must be a finite number > 0, got {eta!r}")
    return float(eta)
