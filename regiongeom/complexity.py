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

Max units (maxout, MaxPool, ``max``/``amax``): the definition route takes
them (on 1 input for now; 2 inputs as soon as the 2D engine does), with the
noise on every preactivation that has a bias of its own
(:attr:`regiongeom.graph.GraphNetwork.noise_sizes`: a maxout unit's entries
get independent noise, a MaxPool after a ReLU gets none). Theorem 2 refuses
them: it sums over neurons with a bias and breakpoints, and a max unit has
neither (its pieces meet where two entries tie), so no exact extension is
claimed here.

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

What is exact in the indicator: a path's weights and slopes are tested
against zero exactly (a weight of 1e-300 keeps a path, an exact 0 cuts it),
and the screen's bounds carry room for their own rounding and underflow. The pieces of the later neurons
with neuron ``i`` on its breakpoint are decided in float64 from the sampled
forward pass, the same way :meth:`Network.patterns` decides them (a later
neuron within rounding of its own breakpoint at the sampled point, an event
of probability zero under the noise, may get either piece).

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

from ._theorem2 import samples_per_task, theorem2_samples
from ._validate import as_points, integer_at_least, positive

__all__ = ["Estimate", "lc_density", "local_complexity"]

METHODS = ("theorem2", "definition")


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo estimate over bias-noise samples.

    Attributes
    ----------
    mean : (P,) or (P, L) ndarray of float64, or float
        The estimate (per point for :func:`lc_density`, with a trailing
        axis over the ``L`` layers when ``by_layer``; a scalar for
        :func:`local_complexity`).
    stderr : (P,) or (P, L) ndarray of float64, or float
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
    by_layer : bool
        Whether ``mean`` and ``stderr`` are split into each layer's share.
    """

    mean: np.ndarray | float
    stderr: np.ndarray | float
    n_samples: int
    method: str = "theorem2"
    sigma: float = float("nan")
    eps: float | None = None
    good: bool = True
    rho: bool = True
    by_layer: bool = False


# ----------------------------------------------------------------------------
# public functions
# ----------------------------------------------------------------------------
def lc_density(net, points, *, sigma, n_samples=64, method="theorem2", eps=None, good=True, rho=True,
               by_layer=False, rng=None, progress=None, n_jobs=1, batch_size=65536,
               device=None) -> Estimate:  # fmt: skip
    """The local complexity density ``f(x)`` at each point.

    Parameters
    ----------
    net : Network or GraphNetwork
    points : (P, n_in) array_like of float64
        A flat ``(P,)`` array is accepted for a 1-input network.
    sigma : float, keyword-only
        Standard deviation of the Gaussian noise added to every neuron's bias.
    n_samples : int, default 64
        Number of noise samples (>= 2, for the standard error).
    method : {"theorem2", "definition"}
        Theorem 2's formula (eq. 6), or the definition (eq. 3) at radius ``eps``.
        Networks with max units (maxout, MaxPool, max/amax) take the
        definition only (on 1 input for now): Theorem 2 needs neurons with a
        bias and breakpoints and refuses them.
    eps : float, optional
        Ball radius; required by ``method="definition"``, refused otherwise.
    good : bool, default True
        theorem2: ``False`` drops the good indicator (the upper bound, eq. 40).
    rho : bool, default True
        theorem2: ``False`` drops the bias density ``phi_sigma``: the result is
        ``E[sum_i sum_k ||grad z_i(x)|| 1{z_i good at t_k}]`` (eq. 41; one term
        per breakpoint, so ReLU networks give eq. 41 exactly).
    by_layer : bool, default False
        theorem2: split ``f(x)`` into each layer's share (the sum of the
        terms of its neurons); the shares of a point add up to ``f(x)`` up to
        rounding. Layers without an activation have a share of 0.
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
        (both methods already use every core through threads of their own:
        ``REGIONGEOM_NUM_THREADS`` in the environment sets how many.)
    batch_size : int, default 65536
        theorem2: (point, sample) pairs per task (whole noise samples when
        there are more points); a task is one progress step and one unit of
        ``n_jobs``. Memory is a few arrays of ``batch_size`` floats. Points
        on a grid (:func:`grid_points`) take at least 16 samples per task
        (they share the grid walk's first layer).
    device : str or torch.device, optional
        theorem2: run the estimator with torch (float64) on this device, for
        example ``"cuda"``, ``"cuda:1"`` or ``"cpu"``; needs the ``torch``
        extra. A device without float64 (Apple's ``"mps"``) is refused.
        The same numbers as without it, to rounding (every good indicator
        recomputed on the device); ``n_jobs`` stays 1.

    Returns
    -------
    Estimate
        ``mean`` and ``stderr`` of shape ``(P,)``, or ``(P, L)`` with
        ``by_layer`` (``L = net.n_layers``).

    Notes
    -----
    theorem2 is one pass per (point, sample) pair: the pre-bias values of
    every neuron and their exact input gradients (products of the weight
    matrices restricted to the active pieces), no autograd. Gradients are
    reused between consecutive points on the same activation region, so a
    grid in row order is faster than scattered points. Points on a regular
    grid in row order (as :func:`~regiongeom.grids.grid_points` makes them)
    of a dense network (every weight after the first layer nonzero) walk
    the grid: each later layer's values move along the previous pixel's
    affine map, neurons changing piece correct the next layer by a rank-k
    update, and a pixel whose moved value comes within a rigorous bound of
    a breakpoint, or with a good indicator the walk's screen leaves open, is
    computed as a scattered point (the same numbers to rounding). With many inputs
    (``min(n_in, first layer's width) >= 16``), the gradients are the rows of
    the Jacobians, computed by BLAS products over the open neurons only, in
    the ``min(n_in, width)`` coordinates of a QR factor of the first layer's
    weights (which keeps the row norms). The standard error is
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
    x, opts = _check(net, points, "points", sigma, n_samples, method, eps, good, rho, rng, progress, n_jobs,
                     batch_size, by_layer=by_layer, device=device)  # fmt: skip
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
    net : Network or GraphNetwork
    data : (P, n_in) array_like of float64
    sigma, n_samples, method, eps, good, rho, rng, progress, n_jobs, batch_size
        As in :func:`lc_density` (networks with max units: ``method="definition"`` only).

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
def _check(net, points, what, sigma, n_samples, method, eps, good, rho, rng, progress, n_jobs, batch_size, *,
           by_layer=False, device=None):  # fmt: skip
    from . import _validate
    from ._validate import require_network

    if method != "definition":  # the definition route takes max units (see _definition_samples)
        _validate.require_no_max_units(net, "lc_density", method)
    graph = hasattr(net, "stages")  # a GraphNetwork: its own Theorem-2 path
    if graph:
        from ._theorem2_graph import check_graph

        check_graph(net)
    else:
        require_network(net, "lc_density")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {list(METHODS)}")
    sigma = positive(sigma, "sigma")
    n_samples = integer_at_least(n_samples, 2, "n_samples")
    for name, flag in (("good", good), ("rho", rho), ("by_layer", by_layer)):
        if not isinstance(flag, (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {flag!r}")
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise ValueError(f"progress must be True, False or None, got {progress!r}")
    if method == "definition":
        if eps is None:
            raise ValueError("method='definition' needs a ball radius eps > 0")
        eps = positive(eps, "eps")
        if graph and net.n_in not in (1, 2):
            raise ValueError(
                "method='definition' on a graph network needs 1 or 2 inputs: restrict it to a line or a "
                "plane first (net.restrict(rg.Line.through(x0, x1)) or "
                "net.restrict(rg.Plane.through(x0, x1, x2)))"
            )
        if net.n_in not in (1, 2):
            raise ValueError(
                f"method='definition' needs a network with 1 or 2 inputs; this one has {net.n_in}"
            )
        if not (good and rho) or by_layer:
            raise ValueError("good=False, rho=False and by_layer=True apply to method='theorem2' only")
    elif eps is not None:
        raise ValueError("eps is only used by method='definition'; theorem2 is the eps -> 0 limit")
    if isinstance(n_jobs, Integral) and not isinstance(n_jobs, bool) and n_jobs == -1:
        n_jobs = os.cpu_count() or 1
    n_jobs = integer_at_least(n_jobs, 1, "n_jobs (or -1)")
    batch_size = integer_at_least(batch_size, 1, "batch_size")
    if rng is not None and (isinstance(rng, bool) or not isinstance(rng, (Integral, np.random.Generator))):
        raise TypeError(f"rng must be an int seed, a numpy Generator or None, got {type(rng).__name__}")
    if device is not None:
        if method != "theorem2":
            raise ValueError("device= applies to method='theorem2' only; drop it for the definition")
        if n_jobs != 1:
            raise ValueError("device= runs in this process (torch batches the pairs): use n_jobs=1")
        if graph:
            raise ValueError(
                "device= takes rg.Network only; a graph network (convolutions, residual blocks) runs on the CPU: drop device="
            )
        from ._theorem2_torch import torch_device

        device = torch_device(device)  # torch installed, device known and usable
    x = as_points(points, net.n_in, what)
    if x.shape[0] == 0:
        raise ValueError(f"{what} is empty")
    opts = dict(method=method, sigma=sigma, n_samples=n_samples, eps=eps, good=bool(good), rho=bool(rho),
                by_layer=bool(by_layer), progress=progress, n_jobs=n_jobs, batch_size=batch_size,
                device=device)  # fmt: skip
    return x, opts


def _summarise(F, opts) -> Estimate:
    S = F.shape[0]
    mean = F.mean(axis=0)
    stderr = F.std(axis=0, ddof=1) / math.sqrt(S)
    if F.ndim == 1:
        mean, stderr = float(mean), float(stderr)
    return Estimate(mean, stderr, S, opts["method"], opts["sigma"], opts["eps"], opts["good"], opts["rho"],
                    opts["by_layer"])  # fmt: skip


def _estimate(net, x, rng, opts, *, reduce):
    """(S, P) per-sample densities (or (S,) per-sample means over the points)."""
    gen = np.random.default_rng(rng)
    S, P = opts["n_samples"], x.shape[0]
    # all the noise is drawn here, so the result does not depend on n_jobs or chunking
    # (a graph network with max units: one entry per preactivation with a bias, GraphNetwork.n_noise)
    noise = gen.normal(0.0, opts["sigma"], size=(S, getattr(net, "n_noise", net.n_neurons)))
    if opts["method"] == "theorem2":
        per = samples_per_task(net, x, opts, max(1, opts["batch_size"] // P))  # noise samples per task
    else:
        from ._threads import n_threads

        per = n_threads()  # noise samples per task: one per thread (_definition_samples)
    tasks = [(s, min(S, s + per)) for s in range(0, S, per)]
    out = np.empty(((S,) if reduce else (S, P)) + ((net.n_layers,) if opts["by_layer"] else ()))
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
            # spawn, not fork: a forked child inherits the locks held by the
            # parent's other threads (the user's, numba's) but not the threads
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
    # the theorem2 threads and the engine's helper thread: the workers share the cores
    os.environ["REGIONGEOM_NUM_THREADS"] = str(threads)


def _job(net, x, noise, opts, reduce):
    if opts["method"] == "theorem2" and hasattr(net, "stages"):
        from ._theorem2_graph import theorem2_graph_samples

        F = theorem2_graph_samples(net, x, noise, opts)
    elif opts.get("device") is not None:
        from ._theorem2_torch import theorem2_torch

        F = theorem2_torch(net, x, noise, opts, opts["device"])
    elif opts["method"] == "theorem2":
        F = theorem2_samples(net, x, noise, opts)
    else:
        F = _definition_samples(net, x, noise, opts["eps"])
    return F.mean(axis=1) if reduce else F


# ----------------------------------------------------------------------------
# definition (eq. 3) at finite eps
# ----------------------------------------------------------------------------
def _definition_samples(net, x, noise, eps):
    """(S, P): vol(locus of the noisy net ∩ B_eps(x)) / Z_eps for each noise row.

    The rows are shared out to ``REGIONGEOM_NUM_THREADS`` threads (the ball
    measures and the locus decision's products release the GIL); each row's
    result is the same on any thread."""
    from ._threads import run_tickets
    from .locus import locus_in_balls
    from .regions import activation_regions

    lo, hi = x.min(axis=0) - eps, x.max(axis=0) + eps
    domain = (lo[0], hi[0]) if net.n_in == 1 else (lo[0], lo[1], hi[0], hi[1])
    z_eps = 2.0 * eps if net.n_in == 1 else math.pi * eps * eps
    out = np.empty((noise.shape[0], x.shape[0]))
    graph = hasattr(net, "stages")  # a GraphNetwork shifts its operators

    def work(s):
        row = noise[s]
        noisy = net.with_bias_noise(row) if graph else net.with_biases(_noisy_biases(net, row))
        out[s] = locus_in_balls(activation_regions(noisy, domain), x, eps) / z_eps

    run_tickets(noise.shape[0], work, name="regiongeom-definition")
    return out


def _noisy_biases(net, row):
    offs = net.neuron_offsets
    return [b + row[offs[i] : offs[i + 1]] if a is not None else b
            for i, (b, a) in enumerate(zip(net.biases, net.activations, strict=True))]  # fmt: skip
