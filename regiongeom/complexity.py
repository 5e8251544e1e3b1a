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

from ._kernels import _CHUNK, _t2_kernel
from ._validate import as_points, integer_at_least, positive
from .network import Network

__all__ = ["Estimate", "lc_density", "local_complexity"]

METHODS = ("theorem2", "definition")


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
    # the engine's helper thread too: the workers already share the cores
    os.environ["REGIONGEOM_NUM_THREADS"] = str(threads)


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
