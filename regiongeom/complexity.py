"""Local complexity (Patel & Montúfar): the density ``f(x)`` and its mean ``LC``.

Every neuron's bias gets independent ``N(0, sigma^2)`` noise (layers without
an activation get none). ``f(x)`` is the expected volume of the noisy
network's nonlinear locus per unit volume near ``x`` (eq. 3), and
``LC = E_{x ~ p}[f(x)]``. Two estimators, both Monte Carlo over the noise:

``method="theorem2"``
    Theorem 2, eq. (6): for each noise sample, the exact sum over neurons
    ``i`` and over the breakpoints ``t_k`` of their activation of
    ``||grad z_i(x)|| phi_sigma(t_k - b_i - z_i(x)) 1{z_i good at x}``, where
    ``z_i`` is the pre-bias value computed with the other (noisy) biases,
    ``b_i`` the neuron's own noise-free bias and ``phi_sigma`` the density of
    its noise. Its own noise only enters through ``phi_sigma``: that is the
    co-area integral over it (Appendix A.3).
``method="definition"``
    Eq. (3) at a finite ``eps``: for each noise sample, the exact locus of the
    noisy network and its volume in ``B_eps(x)``, divided by ``Z_eps``.

The good indicator is the theorem's, evaluated *on* the locus: neuron ``i``
sits at its breakpoint (its output is ``act(t_k)``) and the later layers are
recomputed with that; ``i`` is good when a path through nonzero weights and
open neurons (on a piece of nonzero slope) of every later layer with an
activation reaches the output (a neuron of a last layer with an activation
is good). Recomputing every later layer for every neuron would cost a
forward pass per neuron, so a cheap screen decides almost every case from
the sampled forward pass with rigorous bounds (see ``_screen``), and only
the undecided (point, sample, neuron, breakpoint) cases are recomputed
(``_fallback``). The sum is exact up to rounding: the only terms whose
indicator is left unresolved are ones that all together stay below half an
ulp of the point's density.

References
----------
N. Patel, G. Montúfar. "On the local complexity of linear regions in deep
ReLU networks", section 3 and Appendices A.1-A.3, B.1.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from numbers import Integral

import numpy as np
from numba import njit, prange

from ._validate import as_points, integer_at_least, positive
from .network import Network

__all__ = ["Estimate", "lc_density", "local_complexity"]

METHODS = ("theorem2", "definition")
_SLACK = 1e-9  # relative safety margin of the screen's bounds against rounding
_REFRESH = 16  # theorem2: preactivations recomputed from scratch at least every 16 pairs
_CHUNK = 4096  # theorem2: pairs per parallel task (a multiple of _REFRESH)


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo estimate over bias-noise samples.

    Attributes
    ----------
    mean : (P,) ndarray of float64, or float
        The estimate (per point for :func:`lc_density`, a scalar for
        :func:`local_complexity`).
    stderr : (P,) ndarray of float64, or float
        Its standard error: the sample standard deviation over the noise
        samples divided by ``sqrt(n_samples)``.
    n_samples : int
    method : str
        ``"theorem2"`` or ``"definition"``.
    sigma : float
        Standard deviation of the bias noise.
    eps : float or None
        Ball radius (definition method only).
    good, rho : bool
        Whether the good indicator and the bias density were used (theorem2).
    """

    mean: np.ndarray | float
    stderr: np.ndarray | float
    n_samples: int
    method: str = "theorem2"
    sigma: float = float("nan")
    eps: float | None = None
    good: bool = True
    rho: bool = True


# ----------------------------------------------------------------------------
# public functions
# ----------------------------------------------------------------------------
def lc_density(net, points, *, sigma, n_samples=64, method="theorem2", eps=None, good=True, rho=True,
               rng=None, progress=None, n_jobs=1, batch_size=65536) -> Estimate:  # fmt: skip
    """The local complexity density ``f(x)`` at each point.

    Parameters
    ----------
    net : Network
    points : (P, n_in) array_like of float64
        A flat ``(P,)`` array is accepted for a 1-input network.
    sigma : float, keyword-only
        Standard deviation of the Gaussian noise added to every neuron's bias.
    n_samples : int, default 64
        Number of noise samples (>= 2, for the standard error).
    method : {"theorem2", "definition"}
        Theorem 2's formula (eq. 6), or the definition (eq. 3) at radius ``eps``.
    eps : float, optional
        Ball radius; required by ``method="definition"``, refused otherwise.
    good : bool, default True
        theorem2: ``False`` drops the good indicator (the upper bound, eq. 40).
    rho : bool, default True
        theorem2: ``False`` drops the bias density ``phi_sigma``: the result is
        ``E[sum_i sum_k ||grad z_i(x)|| 1{z_i good at t_k}]`` (eq. 41; one term
        per breakpoint, so ReLU networks give eq. 41 exactly).
    rng : int, numpy.random.Generator or None
        Seed for the noise; the same seed gives the same result.
    progress : bool or None
        Show a tqdm progress bar: ``None`` (default) shows it only when the
        estimate runs longer than about a second, ``False`` never.
    n_jobs : int, default 1
        Processes to spread the noise samples over (``-1``: all cores). The
        noise is drawn up front, so the result does not depend on ``n_jobs``.
        Processes are started with "spawn": a script calling this with
        ``n_jobs > 1`` needs the ``if __name__ == "__main__":`` guard.
        (theorem2 already uses every core through numba's threads.)
    batch_size : int, default 65536
        theorem2: (point, sample) pairs per task (whole noise samples when
        there are more points); a task is one progress step and one unit of
        ``n_jobs``. Memory is a few arrays of ``batch_size`` floats.

    Returns
    -------
    Estimate
        ``mean`` and ``stderr`` of shape ``(P,)``.

    Notes
    -----
    theorem2 is one pass per (point, sample) pair: the pre-bias values of
    every neuron and their exact input gradients (products of the weight
    matrices restricted to the active pieces), no autograd. Gradients are
    reused between consecutive points on the same activation region, so a
    grid in row order is faster than scattered points. The standard error is
    the spread over noise samples; with ``good=True, rho=True`` and no noise
    upstream of any neuron (one hidden layer), every sample gives the same
    exact value.

    Examples
    --------
    One ReLU neuron ``relu(w x + b)``: ``f(x) = |w| phi_sigma(w x + b)``.

    >>> import numpy as np, regiongeom as rg
    >>> net = rg.Network.from_arrays([[[2.0]], [[1.0]]], [[-1.0], [0.0]], ["relu", None])
    >>> est = rg.lc_density(net, [0.5, 1.0], sigma=0.5, n_samples=4, rng=0)
    >>> exact = 2 * np.exp(-0.5 * (np.array([0.0, 1.0]) / 0.5) ** 2) / (np.sqrt(2 * np.pi) * 0.5)
    >>> bool(np.allclose(est.mean, exact, rtol=1e-14)), bool(est.stderr.max() < 1e-15)
    (True, True)
    """
    x, opts = _check(
        net, points, "points", sigma, n_samples, method, eps, good, rho, rng, progress, n_jobs, batch_size
    )
    F = _estimate(net, x, rng, opts, reduce=False)
    return _summarise(F, opts)


def local_complexity(net, data, *, sigma, n_samples=64, method="theorem2", eps=None, good=True, rho=True,
                     rng=None, progress=None, n_jobs=1, batch_size=65536) -> Estimate:  # fmt: skip
    """The local complexity ``LC = E_{x ~ p}[f(x)]`` over data points.

    The data points stand for the distribution ``p`` (for example a test set).
    For each noise sample, ``f`` is averaged over all the points; ``mean`` and
    ``stderr`` are the mean and standard error of these per-sample averages.
    So the standard error is the Monte Carlo error of the noise, conditional
    on the given points (it does not include the sampling error of the data),
    and it accounts for every point of one sample sharing the same noise.

    Parameters
    ----------
    net : Network
    data : (P, n_in) array_like of float64
    sigma, n_samples, method, eps, good, rho, rng, progress, n_jobs, batch_size
        As in :func:`lc_density`.

    Returns
    -------
    Estimate
        ``mean`` and ``stderr`` are floats.

    Examples
    --------
    One ReLU neuron ``relu(x)`` and data uniform on [-1, 1]: ``LC`` is
    ``(Phi(1/sigma) - Phi(-1/sigma)) / 2``, about 0.4772 for ``sigma = 0.5``.

    >>> import numpy as np, regiongeom as rg
    >>> net = rg.Network.from_arrays([[[1.0]], [[1.0]]], [[0.0], [0.0]], ["relu", None])
    >>> x = np.linspace(-1, 1, 20001)
    >>> lc = rg.local_complexity(net, x, sigma=0.5, n_samples=2, rng=0)
    >>> round(lc.mean, 4)
    0.4772
    """
    x, opts = _check(
        net, data, "data", sigma, n_samples, method, eps, good, rho, rng, progress, n_jobs, batch_size
    )
    F = _estimate(net, x, rng, opts, reduce=True)
    return _summarise(F, opts)


# ----------------------------------------------------------------------------
# validation, sampling, dispatch
# ----------------------------------------------------------------------------
def _check(net, points, what, sigma, n_samples, method, eps, good, rho, rng, progress, n_jobs, batch_size):
    if not isinstance(net, Network):
        raise TypeError(
            f"expected an rg.Network, got {type(net).__name__} (convert torch modules with rg.from_torch)"
        )
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {list(METHODS)}")
    sigma = positive(sigma, "sigma")
    n_samples = integer_at_least(n_samples, 2, "n_samples")
    for name, flag in (("good", good), ("rho", rho)):
        if not isinstance(flag, (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {flag!r}")
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise ValueError(f"progress must be True, False or None, got {progress!r}")
    if method == "definition":
        if eps is None:
            raise ValueError("method='definition' needs a ball radius eps > 0")
        eps = positive(eps, "eps")
        if net.n_in not in (1, 2):
            raise ValueError(
                f"method='definition' needs a network with 1 or 2 inputs; this one has {net.n_in}"
            )
        if not (good and rho):
            raise ValueError("good=False and rho=False apply to method='theorem2' only")
    elif eps is not None:
        raise ValueError("eps is only used by method='definition'; theorem2 is the eps -> 0 limit")
    if isinstance(n_jobs, Integral) and not isinstance(n_jobs, bool) and n_jobs == -1:
        n_jobs = os.cpu_count() or 1
    n_jobs = integer_at_least(n_jobs, 1, "n_jobs (or -1)")
    batch_size = integer_at_least(batch_size, 1, "batch_size")
    if rng is not None and (isinstance(rng, bool) or not isinstance(rng, (Integral, np.random.Generator))):
        raise TypeError(f"rng must be an int seed, a numpy Generator or None, got {type(rng).__name__}")
    x = as_points(points, net.n_in, what)
    if x.shape[0] == 0:
        raise ValueError(f"{what} is empty")
    opts = dict(method=method, sigma=sigma, n_samples=n_samples, eps=eps, good=bool(good), rho=bool(rho),
                progress=progress, n_jobs=n_jobs, batch_size=batch_size)  # fmt: skip
    return x, opts


def _summarise(F, opts) -> Estimate:
    S = F.shape[0]
    mean = F.mean(axis=0)
    stderr = F.std(axis=0, ddof=1) / math.sqrt(S)
    if F.ndim == 1:
        mean, stderr = float(mean), float(stderr)
    return Estimate(mean, stderr, S, opts["method"], opts["sigma"], opts["eps"], opts["good"], opts["rho"])


def _estimate(net, x, rng, opts, *, reduce):
    """(S, P) per-sample densities (or (S,) per-sample means over the points)."""
    gen = np.random.default_rng(rng)
    S, P = opts["n_samples"], x.shape[0]
    # all the noise is drawn here, so the result does not depend on n_jobs or chunking
    noise = gen.normal(0.0, opts["sigma"], size=(S, net.n_neurons))
    if opts["method"] == "theorem2":
        per = max(1, opts["batch_size"] // P)  # noise samples per task
    else:
        per = 1
    tasks = [(s, min(S, s + per)) for s in range(0, S, per)]
    out = np.empty((S,) if reduce else (S, P))
    bar = _progress_bar(opts["progress"], S, opts["method"])
    try:
        if opts["n_jobs"] == 1 or len(tasks) == 1:
            for s0, s1 in tasks:
                out[s0:s1] = _job(net, x, noise[s0:s1], opts, reduce)
                if bar is not None:
                    bar.update(s1 - s0)
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            workers = min(opts["n_jobs"], len(tasks))
            # spawn, not fork: numba's OpenMP threads do not survive a fork
            ctx = multiprocessing.get_context("spawn")
            threads = max(1, (os.cpu_count() or 1) // workers)
            with ProcessPoolExecutor(
                workers, mp_context=ctx, initializer=_init_worker, initargs=(threads,)
            ) as ex:
                futs = {ex.submit(_job, net, x, noise[s0:s1], opts, reduce): (s0, s1) for s0, s1 in tasks}
                for fut in as_completed(futs):
                    s0, s1 = futs[fut]
                    out[s0:s1] = fut.result()
                    if bar is not None:
                        bar.update(s1 - s0)
    finally:
        if bar is not None:
            bar.close()
    return out


def _progress_bar(progress, total, method):
    if progress is False:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"lc {method}", unit="sample", delay=0 if progress else 1.0, leave=False)


def _init_worker(threads):
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def _job(net, x, noise, opts, reduce):
    if opts["method"] == "theorem2":
        F = _theorem2_samples(net, x, noise, opts)
    else:
        F = _definition_samples(net, x, noise, opts["eps"])
    return F.mean(axis=1) if reduce else F


# ----------------------------------------------------------------------------
# definition (eq. 3) at finite eps
# ----------------------------------------------------------------------------
def _definition_samples(net, x, noise, eps):
    """(S, P): vol(locus of the noisy net ∩ B_eps(x)) / Z_eps for each noise row."""
    from .locus import nonlinear_locus
    from .regions import activation_regions

    lo, hi = x.min(axis=0) - eps, x.max(axis=0) + eps
    domain = (lo[0], hi[0]) if net.n_in == 1 else (lo[0], lo[1], hi[0], hi[1])
    z_eps = 2.0 * eps if net.n_in == 1 else math.pi * eps * eps
    out = np.empty((noise.shape[0], x.shape[0]))
    for s, row in enumerate(noise):
        noisy = net.with_biases(_noisy_biases(net, row))
        loc = nonlinear_locus(activation_regions(noisy, domain))
        out[s] = loc.volume_in_balls(x, eps) / z_eps
    return out


def _noisy_biases(net, row):
    offs = net.neuron_offsets
    return [b + row[offs[i] : offs[i + 1]] if a is not None else b
            for i, (b, a) in enumerate(zip(net.biases, net.activations, strict=True))]  # fmt: skip


# ----------------------------------------------------------------------------
# theorem 2 (eq. 6)
# ----------------------------------------------------------------------------
class _Packed:
    """The network as flat arrays for the kernels, plus the screen's bounds.

    Terms: one per (neuron, breakpoint of its activation), numbered neuron by
    neuron. Layers after the last activated one are linear: they neither move
    the locus nor close a path (only their zero weights can cut one).
    """

    def __init__(self, net: Network):
        L, acts = net.n_layers, net.activations
        self.net, self.L = net, L
        self.has_act = np.array([a is not None for a in acts])
        self.last_act = int(np.nonzero(self.has_act)[0].max()) if self.has_act.any() else -1
        self.rows = np.array([w.shape[0] for w in net.weights], np.int64)
        self.wT = np.concatenate([w.T.ravel() for w in net.weights])  # every W^T, row-major
        self.woff = np.concatenate([[0], np.cumsum([w.size for w in net.weights])]).astype(np.int64)
        self.bflat = np.concatenate(net.biases)
        self.boff = np.concatenate([[0], np.cumsum(self.rows)]).astype(np.int64)
        self.noff = net.neuron_offsets.astype(np.int64)
        ident = (np.zeros(1), np.ones(2), np.zeros(2))  # placeholder for linear layers
        spec = [ident if a is None else (a.breakpoints, a.slopes, a.intercepts) for a in acts]
        self.bp = np.concatenate([s[0] for s in spec])
        self.bpoff = np.concatenate([[0], np.cumsum([s[0].size for s in spec])]).astype(np.int64)
        self.sl, self.ic = np.concatenate([s[1] for s in spec]), np.concatenate([s[2] for s in spec])
        self.sloff = np.concatenate([[0], np.cumsum([s[1].size for s in spec])]).astype(np.int64)
        self.actval = np.concatenate([s[1][:-1] * s[0] + s[2][:-1] for s in spec])  # act(t_k)
        self.nbp = nbp = np.array([0 if a is None else a.breakpoints.size for a in acts], np.int64)
        self.kmax = int(nbp.max())
        self.toff = np.concatenate([[0], np.cumsum(self.rows * nbp)]).astype(np.int64)
        self.n_terms = int(self.toff[-1])  # one per (neuron, breakpoint), layer by layer
        # dense: every weight after the first layer nonzero, so an open neuron
        # connects to every open neuron of the next layer
        self.dense = all(np.all(w != 0) for w in net.weights[1:])
        self._bounds()

    def _bounds(self):
        """C[l, m] = |W_m| S_{m-1} ... S_{l+1} |W_{l+1}| (S: the largest |slope|):
        moving a neuron j of layer l by Delta moves unit k of layer m by at
        most C[l, m][k, j] |Delta|. Flattened in ``cflat`` at ``coff[l, m]``;
        ``cmax[l, m][j]`` is the column maximum (the whole layer's bound)."""
        net, L = self.net, self.L
        smax = [1.0 if a is None else float(np.abs(a.slopes).max()) for a in net.activations]
        blocks, cmax = [], []
        self.coff = np.zeros((L, L), np.int64)
        self.cmoff = np.zeros((L, L), np.int64)
        pos = mpos = 0
        for ly in range(L - 1):
            C = np.abs(net.weights[ly + 1])
            for m in range(ly + 1, L):
                if m > ly + 1:
                    C = np.abs(net.weights[m]) @ (smax[m - 1] * C)
                self.coff[ly, m], self.cmoff[ly, m] = pos, mpos
                blocks.append(C.ravel())
                cmax.append(C.max(axis=0))
                pos += C.size
                mpos += C.shape[1]
        self.cflat = np.concatenate(blocks) if blocks else np.zeros(1)
        self.cmax = np.concatenate(cmax) if cmax else np.zeros(1)


def _theorem2_samples(net, x, noise, opts, *, screen=True):
    """(S, P) eq. (6) per noise sample (the rows of ``noise``)."""
    S, P = noise.shape[0], x.shape[0]
    if net.n_neurons == 0:
        return np.zeros((S, P))
    f, _ = _theorem2_block(_Packed(net), x, noise, opts, screen=screen)
    return f.reshape(S, P)


def _theorem2_block(pk, x, noise, opts, *, screen=True, return_good=False):
    """Eq. (6) for every (sample, point) pair, sample-major: ``f`` (S * P,).

    With ``return_good``, also ``(good, n_undecided)``: the exact indicator of
    every term as ``(S * P, n_neurons, kmax)`` int8 (0 on padding) and how
    many the screen left to the recomputation (then no term is skipped).
    """
    import numba

    S, P = noise.shape[0], x.shape[0]
    N = S * P
    f = np.empty(N)
    status = np.zeros((N if return_good else 0, pk.n_terms), np.int8)
    # chunks of contiguous pairs (neighbours share gradients), handed out to the
    # threads dynamically (on a busy machine a static split waits for the
    # slowest thread); fixed boundaries, multiples of _REFRESH, so that the
    # result does not depend on the number of threads
    n_chunks = -(-N // _CHUNK)
    und = np.zeros(n_chunks, np.int64)
    with numba.parallel_chunksize(1):
        _t2_kernel(np.ascontiguousarray(x), np.ascontiguousarray(noise), pk.wT, pk.woff, pk.rows, pk.bflat, pk.boff,
                   pk.has_act, pk.last_act, pk.bp, pk.bpoff, pk.sl, pk.ic, pk.sloff, pk.actval, pk.noff, pk.toff,
                   pk.cflat, pk.coff, pk.cmax, pk.cmoff, pk.dense, opts["sigma"], opts["rho"], opts["good"], screen,
                   return_good, f, status, und)  # fmt: skip
    if not return_good:
        return f, None
    full = np.zeros((N, pk.noff[-1], pk.kmax), np.int8)
    for ly in np.nonzero(pk.nbp)[0]:
        m, K = pk.rows[ly], pk.nbp[ly]
        full[:, pk.noff[ly] : pk.noff[ly + 1], :K] = status[:, pk.toff[ly] : pk.toff[ly + 1]].reshape(N, m, K)
    return f, (full, int(und.sum()))


# ----------------------------------------------------------------------------
# numba kernels
# ----------------------------------------------------------------------------
@njit(cache=True, parallel=True)
def _t2_kernel(X, noise, wT, woff, rows, bflat, boff, has_act, last_act, bp, bpoff, sl, ic, sloff, actval, noff,
               toff, cflat, coff, cmax, cmoff, dense, sigma, use_rho, use_good, screen, want_all, f, status,
               und):  # pragma: no cover  # fmt: skip
    """Eq. (6) for the pairs n = s * P + p (sample s, point p), in chunks of
    ``_CHUNK`` contiguous pairs run in parallel. (The work is in a function of
    its own: numba may hoist allocations out of a parallel loop's body and
    share them between threads.)"""
    N = f.shape[0]
    for c in prange(und.shape[0]):
        und[c] = _t2_chunk(c * _CHUNK, min(N, (c + 1) * _CHUNK), X, noise, wT, woff, rows, bflat, boff, has_act,
                           last_act, bp, bpoff, sl, ic, sloff, actval, noff, toff, cflat, coff, cmax, cmoff, dense,
                           sigma, use_rho, use_good, screen, want_all, f, status)  # fmt: skip


@njit(cache=True)
def _t2_chunk(n0, n1, X, noise, wT, woff, rows, bflat, boff, has_act, last_act, bp, bpoff, sl, ic, sloff, actval,
              noff, toff, cflat, coff, cmax, cmoff, dense, sigma, use_rho, use_good, screen, want_all, f,
              status):  # pragma: no cover  # fmt: skip
    """Pairs n0..n1-1, one at a time, everything in small scratch arrays.

    Forward: every activated layer's pre-bias values ``z`` (``Z``), their
    input gradients (``Jz``: rows of ``W_l S_{l-1} W_{l-1} ... W_0``) and
    norms ``G``, noisy preactivations ``V``, outputs ``H``, slopes ``SL``
    and per layer ``st`` = (two largest margins of open neurons, smallest
    margin, any open) with the two neurons in ``tp`` (a margin: the distance
    to the ends of the neuron's linear piece). Products skip zero inputs
    (closed ReLUs). While consecutive pairs keep every neuron of the earlier
    layers on the same piece (neighbouring grid points), the gradients are
    reused bit for bit, and within one noise sample the values are updated
    along the shared affine map, ``z += Jz (x_n - x_{n-1})`` (exact up to
    rounding; recomputed from scratch every ``_REFRESH`` pairs).

    Terms: ``w = ||grad z_i|| phi_sigma(t_k - b_i - z_i)``; the good indicator
    from :func:`_screen`, else recomputed exactly by :func:`_fallback` --
    unless all the undecided terms of the pair together stay below half an
    ulp of its decided sum (2**-53 of it): then they are left (not good).
    Returns how many terms went to the recomputation.
    """
    P, d = X.shape
    L = rows.shape[0]
    maxw = rows.max()
    nt = toff[L]
    c0 = 1.0 / (math.sqrt(2.0 * math.pi) * sigma)
    inv = 0.5 / (sigma * sigma)
    H, V, Z, G = np.zeros((L, maxw)), np.zeros((L, maxw)), np.zeros((L, maxw)), np.zeros((L, maxw))
    SL, PC = np.zeros((L, maxw)), np.zeros((L, maxw), np.int64)
    Jz = np.zeros((L, d, maxw))
    st, tp = np.zeros((L, 4)), np.zeros((L, 2), np.int64)
    gsc = np.ones((L, maxw), np.int8)
    Wq, uq = np.zeros(nt), np.zeros(nt + 1, np.int64)
    dh, dv, opened = np.zeros(maxw), np.zeros(maxw), np.ones((L, maxw), np.bool_)
    reach, new, MG = np.zeros(maxw, np.bool_), np.zeros(maxw, np.bool_), np.zeros((L, maxw))
    n_fallback = 0
    have_prev, s_prev, p_prev = False, -1, -1
    for n in range(n0, n1):
        s = n // P
        p = n - s * P
        same = have_prev  # every neuron of the layers so far on the previous pair's piece
        for ly in range(last_act + 1):
            m, nin, base = rows[ly], (d if ly == 0 else rows[ly - 1]), woff[ly]
            if ly > 0 and same and s == s_prev and n % _REFRESH != 0:
                # z_l is affine on the region the two points share: z += Jz dx
                for dd in range(d):
                    dx = X[p, dd] - X[p_prev, dd]
                    for j in range(m):
                        Z[ly, j] += Jz[ly, dd, j] * dx
            else:
                for j in range(m):
                    Z[ly, j] = 0.0
                for c in range(nin):  # z = W_l h (W_l^T row-major: column c of W_l is contiguous)
                    a = X[p, c] if ly == 0 else H[ly - 1, c]
                    if a != 0.0:
                        o = base + c * m
                        for j in range(m):
                            Z[ly, j] += a * wT[o + j]
            if not (same or (ly == 0 and have_prev)):  # gradients of z
                for dd in range(d):
                    for j in range(m):
                        Jz[ly, dd, j] = 0.0
                    for c in range(nin):
                        if ly == 0:
                            a = 1.0 if c == dd else 0.0
                        else:
                            a = Jz[ly - 1, dd, c] * (SL[ly - 1, c] if has_act[ly - 1] else 1.0)
                        if a != 0.0:
                            o = base + c * m
                            for j in range(m):
                                Jz[ly, dd, j] += a * wT[o + j]
                for j in range(m):
                    g2 = 0.0
                    for dd in range(d):
                        g2 += Jz[ly, dd, j] * Jz[ly, dd, j]
                    G[ly, j] = math.sqrt(g2)
            if not has_act[ly]:
                for j in range(m):
                    H[ly, j] = Z[ly, j] + bflat[boff[ly] + j]
                continue
            same = _activate(ly, m, Z, V, H, SL, PC, MG, st, tp, bflat[boff[ly] : boff[ly] + m],
                             noise[s, noff[ly] :], bp[bpoff[ly] : bpoff[ly + 1]], sl[sloff[ly] : sloff[ly + 1]],
                             ic[sloff[ly] : sloff[ly + 1]], same)  # fmt: skip
        if use_good and not dense:
            _sampled_reach(L, last_act, rows, woff, wT, has_act, SL, gsc, reach, new)
        acc = _terms(n, last_act, rows, has_act, bp, bpoff, bflat, boff, actval, toff, Z, G, H, st, tp, gsc, cflat,
                     coff, cmax, cmoff, dense, c0, inv, use_rho, use_good, screen, want_all, status, Wq, uq)  # fmt: skip
        n_und = int(uq[0])
        if n_und > 0:
            n_fallback += n_und
            for t in range(1, n_und + 1):
                q = uq[t]
                ly = 0
                while toff[ly + 1] <= q:
                    ly += 1
                K = bpoff[ly + 1] - bpoff[ly]
                j, k = (q - toff[ly]) // K, (q - toff[ly]) % K
                r = _fallback(ly, j, actval[bpoff[ly] + k], V, H, wT, woff, rows, has_act, last_act, bp, bpoff, sl, ic,
                              sloff, dh, dv, opened, reach, new)  # fmt: skip
                if want_all:
                    status[n, q] = r
                if r == 1:
                    acc += Wq[q]
        f[n] = acc
        have_prev, s_prev, p_prev = True, s, p
    return n_fallback


@njit(cache=True)
def _activate(ly, m, Z, V, H, SL, PC, MG, st, tp, b, noise, bp, sl, ic, same):  # pragma: no cover
    """Activation of layer l for one pair: V, H, pieces PC, slopes SL,
    margins MG (the distance to the ends of the neuron's linear piece), the
    widest open neuron ``tp[l, 0]`` with its margin ``st[l, 0]`` (-inf: none
    open), the second widest (``tp[l, 1]``, ``st[l, 1]``), the smallest
    margin ``st[l, 2]`` and whether any is open ``st[l, 3]``. Returns whether
    every neuron so far stays on the previous pair's piece. Simple loops
    (selects for one-breakpoint activations) so that they vectorise."""
    K = bp.shape[0]
    diff = False
    if K == 1:
        t0, s0, s1, i0, i1 = bp[0], sl[0], sl[1], ic[0], ic[1]
        for j in range(m):
            v = Z[ly, j] + b[j] + noise[j]
            up = v >= t0
            diff |= up != PC[ly, j]
            PC[ly, j], V[ly, j], SL[ly, j] = up, v, s1 if up else s0
            H[ly, j] = (s1 if up else s0) * v + (i1 if up else i0)
            MG[ly, j] = abs(v - t0)
    else:
        for j in range(m):
            v = Z[ly, j] + b[j] + noise[j]
            k = 0
            while k < K and v >= bp[k]:
                k += 1
            diff |= k != PC[ly, j]
            PC[ly, j], V[ly, j], SL[ly, j] = k, v, sl[k]
            H[ly, j] = sl[k] * v + ic[k]
            MG[ly, j] = min(v - bp[k - 1] if k > 0 else np.inf, bp[k] - v if k < K else np.inf)
    m1, k1, mm = -np.inf, 0, np.inf
    for j in range(m):
        mm = min(mm, MG[ly, j])
        if SL[ly, j] != 0.0 and MG[ly, j] > m1:
            m1, k1 = MG[ly, j], j
    m2, k2 = -np.inf, 0
    for j in range(m):
        if SL[ly, j] != 0.0 and MG[ly, j] > m2 and j != k1:
            m2, k2 = MG[ly, j], j
    st[ly, 0], st[ly, 1], st[ly, 2], st[ly, 3] = m1, m2, mm, (1.0 if m1 > -np.inf else 0.0)
    tp[ly, 0], tp[ly, 1] = k1, k2
    return same and not diff


@njit(cache=True)
def _terms(n, last_act, rows, has_act, bp, bpoff, bflat, boff, actval, toff, Z, G, H, st, tp, gsc, cflat, coff, cmax,
           cmoff, dense, c0, inv, use_rho, use_good, screen, want_all, status, Wq, uq):  # pragma: no cover  # fmt: skip
    """The terms of one pair: returns the sum of those decided good and lists
    the undecided ones in ``uq[1 : uq[0] + 1]`` (weights in ``Wq``).

    Weights first (exp skipped where it underflows to 0). Then the screen:
    first the terms above ``2**-53 * sum(w) / n_terms``, the smaller ones
    only if needed; undecided terms are listed only if needed. A term is
    left out (taken as not good) only when every left-out term is below
    ``2**-53 * f / n_terms``, so all of them together change f by less than
    half an ulp. ``want_all`` decides every term.
    """
    nt = toff[last_act + 1]
    wsum = 0.0
    for ly in range(last_act + 1):
        K = bpoff[ly + 1] - bpoff[ly]
        for j in range(rows[ly] if has_act[ly] else 0):
            for k in range(K):
                w = G[ly, j]
                if use_rho:
                    u = bp[bpoff[ly] + k] - bflat[boff[ly] + j] - Z[ly, j]
                    e = u * u * inv
                    w = w * c0 * math.exp(-e) if e < 746.0 else 0.0
                Wq[toff[ly] + j * K + k] = w
                wsum += w
    uq[0] = 0
    if not use_good:
        return wsum
    acc, wu, wd = 0.0, 0.0, 0.0
    thr = -1.0 if want_all else wsum * 2.0**-53 / nt
    for rnd in range(2):  # round 0: w > thr; round 1 (if needed): 0 < w <= thr
        if rnd == 1 and not wd * nt > acc * 2.0**-53:
            break
        for ly in range(last_act + 1):
            K = bpoff[ly + 1] - bpoff[ly]
            for j in range(rows[ly] if has_act[ly] else 0):
                for k in range(K):
                    q = toff[ly] + j * K + k
                    w = Wq[q]
                    if rnd == 0 and not w > thr:
                        if w > 0.0:
                            wd = max(wd, w)
                        continue
                    if rnd == 1 and not (0.0 < w <= thr):
                        continue
                    r = 2
                    if screen:
                        delta = abs(actval[bpoff[ly] + k] - H[ly, j])
                        r0 = 1 if dense else gsc[ly, j]
                        r = _screen(ly, j, delta, has_act, st, tp, cflat, coff, cmax, cmoff, rows, r0, dense)
                    if want_all:
                        status[n, q] = r
                    if r == 1:
                        acc += w
                    elif r == 2:
                        uq[0] += 1
                        uq[uq[0]] = q
                        wu = max(wu, w)
    if not (want_all or wu * nt > acc * 2.0**-53):
        uq[0] = 0  # every undecided term is negligible
    return acc


@njit(cache=True)
def _sampled_reach(L, last_act, rows, woff, wT, has_act, SL, gsc, reach, new):  # pragma: no cover
    """gsc[l, j] = 1 if neuron j of layer l reaches the output through nonzero
    weights and open later neurons in the sampled pass (nothing moved)."""
    for r in range(rows[L - 1]):
        reach[r] = SL[L - 1, r] != 0.0 if (has_act[L - 1] and L - 1 <= last_act) else True
    for m in range(L - 2, -1, -1):
        nr = rows[m + 1]
        for c in range(rows[m]):
            conn = False
            o = woff[m + 1] + c * nr
            for r in range(nr):
                if reach[r] and wT[o + r] != 0.0:
                    conn = True
                    break
            if has_act[m]:
                gsc[m, c] = conn
            new[c] = conn and (not has_act[m] or SL[m, c] != 0.0)
        for c in range(rows[m]):
            reach[c] = new[c]


@njit(cache=True)
def _screen(ly, j, delta, has_act, st, tp, cflat, coff, cmax, cmoff, rows, r0, dense):  # pragma: no cover
    """Good indicator of neuron j of layer l put on a breakpoint, decided from
    the sampled pass when possible: 1 good, 0 not good, 2 undecided.

    Its output moves by ``delta``; unit k of a later layer m then moves by at
    most ``C[l, m][k, j] delta`` and keeps its linear piece if its margin is
    larger. Dense weights: good iff every later activated layer keeps an open
    neuron, so one of the two widest open neurons staying open in every such
    layer proves good, and a layer with no open neuron and every margin larger
    than the layer's bound proves not good. Otherwise, when no later neuron
    can change piece, the sampled pass's reachability ``r0`` is exact.
    """
    L = has_act.shape[0]
    r = r0
    for m in range(ly + 1, L):
        if not has_act[m]:
            continue
        base = coff[ly, m] + j
        if dense and st[m, 0] > cflat[base + tp[m, 0] * rows[ly]] * delta * (1.0 + _SLACK):
            continue
        bmax = cmax[cmoff[ly, m] + j] * delta * (1.0 + _SLACK)
        if not dense:
            if not st[m, 2] > bmax:
                return 2
            continue
        if st[m, 1] > cflat[base + tp[m, 1] * rows[ly]] * delta * (1.0 + _SLACK):
            continue
        if st[m, 3] == 0.0 and st[m, 2] > bmax:
            return 0
        r = 2
    return r


@njit(cache=True)
def _fallback(ly, j0, act_t, V, H, wT, woff, rows, has_act, last_act, bp, bpoff, sl, ic, sloff, dh, dv, opened, reach,
              new):  # pragma: no cover  # fmt: skip
    """The exact good indicator of neuron j0 of layer l put on a breakpoint
    (output ``act_t``): propagate the change through the later layers
    (``dv_m = W_m dh_{m-1}`` over the changed units, ``v_m`` = sampled
    ``v_m + dv_m``), then search a path to the output through nonzero weights
    and open neurons, backwards."""
    L = rows.shape[0]
    if ly == L - 1:
        return 1
    dh[:] = 0.0
    dh[j0] = act_t - H[ly, j0]
    for m in range(ly + 1, last_act + 1):
        nr, nc = rows[m], rows[m - 1]
        dv[:nr] = 0.0
        for c in range(nc):
            hc = dh[c]
            if hc != 0.0:
                o = woff[m] + c * nr
                for r in range(nr):
                    dv[r] += wT[o + r] * hc
        if has_act[m]:
            K = bpoff[m + 1] - bpoff[m]
            for r in range(nr):
                v = V[m, r] + dv[r]
                k = 0
                while k < K and v >= bp[bpoff[m] + k]:
                    k += 1
                slope = sl[sloff[m] + k]
                opened[m, r] = slope != 0.0
                dh[r] = slope * v + ic[sloff[m] + k] - H[m, r]
        else:
            dh[:nr] = dv[:nr]
            opened[m, :nr] = True
        dh[nr:] = 0.0
    for r in range(rows[L - 1]):
        reach[r] = opened[L - 1, r] if L - 1 <= last_act else True
    for m in range(L - 2, ly, -1):  # units of layer m that reach the output
        nr = rows[m + 1]
        for c in range(rows[m]):
            new[c] = False
            if m > last_act or opened[m, c]:
                o = woff[m + 1] + c * nr
                for r in range(nr):
                    if reach[r] and wT[o + r] != 0.0:
                        new[c] = True
                        break
        for c in range(rows[m]):
            reach[c] = new[c]
    o = woff[ly + 1] + j0 * rows[ly + 1]
    for r in range(rows[ly + 1]):
        if reach[r] and wT[o + r] != 0.0:
            return 1
    return 0
