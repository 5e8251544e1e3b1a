"""Vertices of the nonlinear locus: Hanin & Rolnick's Theorem 6 with k = 2.

For a 2-input network with Gaussian bias noise (every neuron's bias gets
independent ``N(0, sigma^2)`` noise, as in :func:`regiongeom.lc_density`),
the *vertex density* at ``x`` is

    v(x) = lim_{eps -> 0} E[#(locus vertices in B_eps(x))] / (pi eps^2),

where a locus vertex is a point where locus pieces of two distinct neurons
meet (crossings, T-junctions, bends of one neuron's locus where another's
starts). Theorem 6 of [1]_ with k = 2 writes it as an integral over pairs of
neurons; :func:`vertex_density` estimates it either way.

Derivation of the ``theorem6`` form (the conditioning on upstream neurons)
-------------------------------------------------------------------------
Fix a noise sample and two distinct neurons ``i`` (layer ``l_i``) and ``j``
(layer ``l_j >= l_i``), and breakpoints ``t_a`` of ``i``'s activation and
``t_c`` of ``j``'s. Condition on every bias except ``b_i`` and ``b_j`` (the
torch convention: neuron ``i``'s preactivation is ``z_i(y) + b_i`` with
``z_i`` the pre-bias value ``W h``). ``z_i`` does not depend on ``b_i`` or
``b_j``, but when ``i`` feeds ``j`` (``l_i < l_j``), ``z_j`` depends on
``b_i``. A point ``y`` is a vertex of the pair for the biases

    b_i*(y) = t_a - z_i(y),   b_j*(y) = t_c - zhat_j(y),

where ``zhat_j(y) = z_j(y; b_i*(y))`` is ``z_j`` computed with neuron ``i``
*pinned at its breakpoint*: its output is the constant ``act(t_a)``
whatever ``y``, and every neuron between the two layers takes the piece it
has with ``i`` pinned. The map ``y -> b*(y)`` is one-to-one near a generic
vertex, so by the area formula

    E[#(vertices of (i, j) in B)] = int_B rho(b_i*(y), b_j*(y)) |det D b*(y)| 1{good} dy,

with ``rho`` the product of the two Gaussian densities and
``D b* = -[grad z_i ; grad zhat_j]``. So, per noise sample,

    v(x) = sum_{i < j} sum_{a, c} |det[grad z_i(x); grad zhat_j(x)]|
           phi_sigma(t_a - z_i(x) - b_i) phi_sigma(t_c - zhat_j(x) - b_j) 1{both good},

``b_i``, ``b_j`` the noise-free biases. ``grad zhat_j`` is the gradient with
``i``'s slope set to 0; with either of ``i``'s two slopes ``s`` the gradient
of ``z_j`` is ``grad zhat_j + s (dz_j / dh_i) grad z_i``, so the determinant
is the same: the paper's ``|J_{z_i, z_j}|`` is well defined at the vertex,
but the density must be read at ``zhat_j``, not at the ``z_j`` of the
sampled pass. When ``l_i = l_j``, ``zhat_j = z_j``.

The good indicator. Near the vertex every other neuron keeps its piece, and
the output's gradient in the four sectors is
``g(s_i, s_j) = A + s_i alpha grad z_i + s_j beta (grad zhat_j + s_i gamma grad z_i)``
with ``beta = dN/dh_j``, ``gamma = dz_j/dh_i`` and ``alpha`` the derivative
along ``i``'s paths that avoid ``j``, so that across ``i``'s line the jump
is ``(alpha + s_j beta gamma) grad z_i``. ``j``'s locus is
there on both sides of ``i``'s line iff ``beta != 0``; ``i``'s locus is
there on the side where ``j`` has slope ``s_j`` iff its paths with that
slope do not all vanish. So the pair makes a vertex iff, in the network with
*both pinned*, ``j`` has a path to the output through nonzero weights and
open neurons, and so has ``i`` with ``j`` counted as open (at a breakpoint
one of its two slopes is nonzero). That is the theorem's "both good",
evaluated as the k = 1 case does, at the pinned values (a pure bend, with
``i``'s locus on neither side, needs ``beta gamma = 0`` and then ``j``'s
locus is straight: no vertex).

Computation: per noise sample and point, one forward pass; the transfer
matrices ``dZ_m / dH_l`` of its pattern (kept from point to point by rank-1
updates); for each neuron ``i`` near a breakpoint, its pin pushed through
the later layers as columns of those matrices (plus one column per neuron
that changes piece); then the terms of each layer summed in one vectorised
loop. For dense weights (every weight after the first layer nonzero)
both-good is screened with rigorous bounds on how far ``j``'s pin moves
each later layer's widest open neuron, and otherwise decided by a forward
pass with both pinned and a path search. (Dense ReLU-like networks
take one kernel call per pair that does only this, screening with each
layer's widest open neuron; what it cannot decide goes the general way.)
This agrees with the full forward
passes of ``_theorem6_samples(..., fast=False)`` to rounding (the sum is
regrouped and ``exp`` is evaluated as a polynomial, to a few 1e-14
relative).

Graph networks (CNNs, residual networks on a plane) take the same sum,
computed through their operators by :mod:`regiongeom._vertices_graph`.

Terms whose Gaussian factor ``exp(-(u_i^2 + u_j^2) / (2 sigma^2))`` is below
``exp(-50)`` are left out (each below ``2e-22 |det| / (2 pi sigma^2)``).

References
----------
.. [1] B. Hanin and D. Rolnick, "Complexity of Linear Regions in Deep
   Networks", ICML 2019, Appendix A (Theorem 6, Corollaries 7 and 8).
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np

from ._jit import compile_notice
from ._theorem2 import layer_bounds
from ._threads import run_tickets
from ._validate import as_points, integer_at_least, positive
from ._vertices_kernels import _SLACK, CHUNK, _Net, theorem6_kernel
from .bounds import Bound
from .complexity import Estimate, _noisy_biases
from .network import Network

__all__ = [
    "vertex_density",
    "locus_vertices",
    "gradient_bound",
    "corollary7_bound",
    "corollary8_bound",
]

METHODS = ("theorem6", "definition")
_ECUT = 50.0  # largest Gaussian exponent kept (see the module docstring)


def vertex_density(net, points, *, sigma, n_samples=64, method="theorem6", eps=None, rng=None) -> Estimate:
    """Density of the vertices of the nonlinear locus (Theorem 6, k = 2).

    Parameters
    ----------
    net : Network or GraphNetwork
        A network with 2 inputs (restrict others to a plane first); a graph
        network (a CNN or residual network on a plane) takes both methods
        (theorem6 by :mod:`regiongeom._vertices_graph`, without max units).
    points : (P, 2) array_like of float64
    sigma : float, keyword-only
        Standard deviation of the Gaussian noise added to every neuron's bias.
    n_samples : int, default 64
        Number of noise samples (>= 2, for the standard error).
    method : {"theorem6", "definition"}
        ``"theorem6"``: for each noise sample the exact sum over pairs of
        distinct neurons and pairs of breakpoints of
        ``|det[grad z_i; grad zhat_j]| phi(..) phi(..) 1{both good}`` (see the
        module docstring for the derivation). ``"definition"``: the exact
        vertices of each noisy network's locus counted in the closed disk
        ``B_eps(x)``, divided by ``pi eps^2``.
    eps : float, optional
        Disk radius; required by ``method="definition"``, refused otherwise.
    rng : int, numpy.random.Generator or None
        Seed for the noise (drawn as in :func:`lc_density`).

    Returns
    -------
    Estimate
        ``mean`` and ``stderr`` of shape ``(P,)``: vertices per unit area.

    Examples
    --------
    Two neurons ``relu(x + b_1)``, ``relu(y + b_2)`` read out with nonzero
    weights: their lines cross at ``(-b_1, -b_2)``, so the density at the
    origin is ``phi_sigma(0)^2 = 1 / (2 pi sigma^2)``, in every sample.

    >>> import numpy as np, regiongeom as rg
    >>> net = rg.Network.from_arrays([np.eye(2), [[1.0, 1.0]]], [[0.0, 0.0], [0.0]], ["relu", None])
    >>> est = rg.vertex_density(net, [[0.0, 0.0]], sigma=0.5, n_samples=2, rng=0)
    >>> bool(np.isclose(est.mean[0], 1 / (2 * np.pi * 0.25), rtol=1e-14))
    True
    """
    x, sigma, n_samples, eps = _check(net, points, sigma, n_samples, method, eps, rng)
    noise = np.random.default_rng(rng).normal(0.0, sigma, size=(n_samples, net.n_neurons))
    if method == "theorem6" and hasattr(net, "stages"):
        from ._vertices_graph import theorem6_graph_samples

        F = theorem6_graph_samples(net, x, noise, sigma, _ECUT)
    elif method == "theorem6":
        F = _theorem6_samples(net, x, noise, sigma)
    else:
        F = _definition_samples(net, x, noise, eps)
    mean = F.mean(axis=0)
    stderr = F.std(axis=0, ddof=1) / math.sqrt(n_samples)
    return Estimate(mean, stderr, n_samples, method, sigma, eps)


def locus_vertices(loc) -> np.ndarray:
    """The vertices of a 2D locus: points where pieces of two distinct neurons meet.

    The pieces of :class:`Locus` are edges of the region map, so they meet at
    shared end points with the very same coordinates. A point is a vertex
    when the pieces ending there lie on at least two distinct neurons:
    crossings, T-junctions and the bends of one neuron's locus where it meets
    another's. (A neuron's locus passing a vertex of the map on its own, or
    ending on the domain's boundary, is not one.)

    Parameters
    ----------
    loc : Locus
        A 2D locus, from :func:`nonlinear_locus`.

    Returns
    -------
    (K, 2) ndarray of float64

    Examples
    --------
    >>> import numpy as np, regiongeom as rg
    >>> net = rg.Network.from_arrays([np.eye(2), [[1.0, 1.0]]], [[0.0, 0.0], [0.0]], ["relu", None])
    >>> rg.locus_vertices(rg.nonlinear_locus(rg.activation_regions(net, (-1, -1, 1, 1))))
    array([[0., 0.]])
    """
    if getattr(loc, "dim", None) != 2:
        raise ValueError("locus_vertices needs a 2D Locus (from rg.nonlinear_locus on a 2-input network)")
    if len(loc) == 0:
        return np.zeros((0, 2))
    ends = loc.segments.reshape(-1, 2)
    neu = np.repeat(loc.neurons, 2)
    pts, inv = np.unique(ends, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    lo = np.full(len(pts), np.iinfo(np.int64).max)
    hi = np.full(len(pts), -1)
    np.minimum.at(lo, inv, neu)
    np.maximum.at(hi, inv, neu)
    return pts[hi > lo]


# ----------------------------------------------------------------------------
def _check(net, points, sigma, n_samples, method, eps, rng):
    from ._validate import require_network, require_no_max_units

    if hasattr(net, "stages"):  # a GraphNetwork: its own Theorem-6 path
        require_no_max_units(net, "vertex_density", method)
        if method == "theorem6":
            from ._theorem2_graph import check_graph

            check_graph(net, "vertex_density")
    else:
        require_network(net, "vertex_density")
    if net.n_in != 2:
        raise ValueError(
            f"vertex_density needs a network with 2 inputs; this one has {net.n_in} (restrict it to a plane)"
        )
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {list(METHODS)}")
    sigma = positive(sigma, "sigma")
    n_samples = integer_at_least(n_samples, 2, "n_samples")
    if method == "definition":
        if eps is None:
            raise ValueError("method='definition' needs a disk radius eps > 0")
        eps = positive(eps, "eps")
    elif eps is not None:
        raise ValueError("eps is only used by method='definition'; theorem6 is the eps -> 0 limit")
    if rng is not None and (isinstance(rng, bool) or not isinstance(rng, (Integral, np.random.Generator))):
        raise TypeError(f"rng must be an int seed, a numpy Generator or None, got {type(rng).__name__}")
    x = as_points(points, 2, "points")
    if x.shape[0] == 0:
        raise ValueError("points is empty")
    return x, sigma, n_samples, eps


def pack(net: Network) -> _Net:
    """The network as the flat arrays of the kernels."""
    acts = net.activations
    ident = (np.zeros(0), np.ones(1), np.zeros(1))  # linear layers: no breakpoint
    spec = [ident if a is None else (a.breakpoints, a.slopes, a.intercepts) for a in acts]

    def offsets(sizes):
        return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    cflat, coff, cmax, cmoff = layer_bounds(net)

    def inverse(c):
        return np.where(c > 0, 1.0 / np.maximum(c * (1.0 + _SLACK), 1e-300), 1e300)

    rows = [w.shape[0] for w in net.weights]
    L = len(rows)
    toff, pos = np.zeros((L, L), np.int64), 0
    for ly in range(L - 1):
        for m in range(ly + 1, L):
            toff[ly, m], pos = pos, pos + rows[ly] * rows[m]
    build = sum(rows[ly] * rows[m - 1] * rows[m] for ly in range(L) for m in range(ly + 2, L))
    flip = max(
        [sum(rows[ly] * rows[m] for ly in range(k) for m in range(k + 1, L)) for k in range(1, L - 1)] + [1]
    )
    return _Net(
        wT=np.concatenate([w.T.ravel() for w in net.weights]),
        woff=offsets([w.size for w in net.weights]),
        rows=np.array([w.shape[0] for w in net.weights], np.int64),
        b=np.concatenate(net.biases),
        boff=offsets([b.size for b in net.biases]),
        has_act=np.array([a is not None for a in acts]),
        bp=np.concatenate([s[0] for s in spec]).astype(np.float64),
        bpoff=offsets([s[0].size for s in spec]),
        sl=np.concatenate([s[1] for s in spec]).astype(np.float64),
        ic=np.concatenate([s[2] for s in spec]).astype(np.float64),
        sloff=offsets([s[1].size for s in spec]),
        noff=net.neuron_offsets.astype(np.int64),
        cinv=inverse(cflat),
        coff=coff,
        cminv=inverse(cmax),
        cmoff=cmoff,
        dense=bool(all(np.all(w != 0) for w in net.weights[1:])),
        toff=toff,
        tsize=max(pos, 1),
        maxflips=build // flip,
        simple=bool(
            L >= 2
            and acts[-1] is None
            and all(a is not None and a.breakpoints.size == 1 for a in acts[:-1])
            and all(np.all(w != 0) for w in net.weights[1:])
        ),
    )


def _theorem6_samples(net, x, noise, sigma, *, ecut=_ECUT, fast=True):
    """(S, P) Theorem 6 (k = 2) per noise row. ``fast=False``: every pin
    recomputed by full forward passes (the reference for the fast path)."""
    S, P = noise.shape[0], x.shape[0]
    out = np.zeros(S * P)
    if net.n_neurons >= 2:
        packed, x, noise = pack(net), np.ascontiguousarray(x), np.ascontiguousarray(noise)
        n_chunks = -(-out.size // CHUNK)
        step = 16  # chunks per ticket

        def work(t):
            theorem6_kernel(packed, x, noise, sigma, ecut, fast, out, t * step, min(n_chunks, (t + 1) * step))

        compile_notice("the Theorem-6 kernels", theorem6_kernel, seconds=10)
        run_tickets(-(-n_chunks // step), work, name="regiongeom-t6")
    return out.reshape(S, P)


def _definition_samples(net, x, noise, eps):
    """(S, P): #(locus vertices of the noisy net in B_eps(x)) / (pi eps^2)."""
    from scipy.spatial import cKDTree

    from .locus import nonlinear_locus
    from .regions import activation_regions

    lo, hi = x.min(axis=0) - eps, x.max(axis=0) + eps
    domain = (lo[0], lo[1], hi[0], hi[1])
    out = np.zeros((noise.shape[0], x.shape[0]))
    graph = hasattr(net, "stages")  # a GraphNetwork shifts its operators
    for s, row in enumerate(noise):
        noisy = net.with_bias_noise(row) if graph else net.with_biases(_noisy_biases(net, row))
        verts = locus_vertices(nonlinear_locus(activation_regions(noisy, domain)))
        if len(verts):
            out[s] = cKDTree(verts).query_ball_point(x, eps, return_length=True)
    return out / (math.pi * eps * eps)


def gradient_bound(net: Network) -> float:
    """``C_grad``: a bound on ``||grad z_j(x)||`` for every neuron, every input,
    every bias and every activation pattern (so on every term of Theorem 6).

    Each partial derivative is a sum over paths of products of weights and
    slopes, so ``|d z_j / d x_d| <= (|W_l| S |W_{l-1}| ... S |W_0|)[j, d]``
    with ``S`` the largest ``|slope|`` of each activation; ``C_grad`` is the
    largest norm of such a row. It bounds the products of eq. (14) too:
    ``E[prod_j ||grad z_j||] <= C_grad^k``.
    """
    best, A = 0.0, None
    for w, a in zip(net.weights, net.activations, strict=True):
        A = np.abs(w) if A is None else np.abs(w) @ A
        if a is not None:
            best = max(best, float(np.linalg.norm(A, axis=1).max()))
            A = float(np.abs(a.slopes).max()) * A
    return best


def _box(domain):
    from ._validate import as_domain

    dom = as_domain(domain, 2)
    if not dom.convex or abs(dom.polygon.area - dom.polygon.envelope.area) > 1e-12 * dom.polygon.area:
        raise ValueError("the Hanin-Rolnick bounds take a box domain (xmin, ymin, xmax, ymax)")
    return dom.polygon.bounds


def _constants(net, sigma):
    T = max(a.breakpoints.size for a in net.activations if a is not None)
    return gradient_bound(net), 1.0 / (math.sqrt(2.0 * math.pi) * sigma), int(T)


def corollary7_bound(net, domain, *, sigma, k, n_points=256, n_samples=32, rng=None) -> Bound:
    """Corollary 7: ``E[vol_{2-k}(B_{N,k} ∩ K)] / vol(K) <= C(N, k) (T C_grad C_bias)^k``.

    ``k = 1``: the mean locus length per unit area over the box ``K`` (the
    mean of :func:`lc_density`'s Theorem 2 form); ``k = 2``: the mean number
    of locus vertices per unit area (the mean of :func:`vertex_density`).
    ``N`` is the number of neurons, ``T`` the most breakpoints of an
    activation, ``C_bias = 1 / (sqrt(2 pi) sigma)`` the peak of the bias
    density and ``C_grad`` from :func:`gradient_bound`. (The bound sums
    Theorem 6 over unordered sets of ``k`` neurons and ``T^k`` breakpoints,
    with ``|J| <= prod ||grad z_j||`` by Hadamard's inequality.)

    Parameters
    ----------
    net : Network
        A 2-input network.
    domain : (xmin, ymin, xmax, ymax)
    sigma : float, keyword-only
    k : {1, 2}, keyword-only
    n_points : int
        Uniform points of the box averaged over (fixed by ``rng``).
    n_samples : int
        Noise samples.
    rng : seed or Generator

    Returns
    -------
    Bound
        ``kind="upper"``.
    """
    from .complexity import local_complexity

    if k not in (1, 2):
        raise ValueError(f"k must be 1 or 2 for a 2-input network, got {k!r}")
    box = _box(domain)
    _, sigma, n_samples, _ = _check(net, np.zeros((1, 2)), sigma, n_samples, "theorem6", None, rng)
    n_points = integer_at_least(n_points, 1, "n_points")
    gen = np.random.default_rng(rng)
    pts = np.column_stack([gen.uniform(box[0], box[2], n_points), gen.uniform(box[1], box[3], n_points)])
    if k == 1:
        est = local_complexity(net, pts, sigma=sigma, n_samples=n_samples, rng=gen, progress=False)
        lhs, se = est.mean, est.stderr
    else:
        noise = gen.normal(0.0, sigma, size=(n_samples, net.n_neurons))
        per = _theorem6_samples(net, pts, noise, sigma).mean(axis=1)
        lhs, se = float(per.mean()), float(per.std(ddof=1) / math.sqrt(n_samples))
    c_grad, c_bias, T = _constants(net, sigma)
    rhs = math.comb(net.n_neurons, k) * (T * c_grad * c_bias) ** k
    consts = {"k": k, "c_grad": c_grad, "c_bias": c_bias, "n_breakpoints": T}
    return Bound(f"corollary7 (k={k})", float(lhs), rhs, consts, kind="upper", lhs_stderr=float(se))


def corollary8_bound(net, domain, *, sigma, n_points=256, n_samples=32, rng=None) -> Bound:
    """Corollary 8: ``E[distance(x, B_N)] >= eps (1 - P_eps)`` for ``x`` uniform in the box.

    For every ``eps > 0``, ``E[d] >= eps P(d >= eps)``, and the points of
    ``K`` within ``eps`` of the locus lie within ``eps`` of its pieces
    (a band of width ``2 eps`` along them) or of its vertices (disks), all in
    ``K_eps``, the box grown by ``eps`` (Lemma 12), so

        P(d < eps) <= (2 eps E[len(B_N ∩ K_eps)] + pi eps^2 E[#(B_{N,2} ∩ K_eps)]) / vol(K)
                   <= vol(K_eps) / vol(K) * (2 eps a_1 + pi eps^2 a_2) =: P_eps,

    with ``a_k = C(N, k) (T C_grad C_bias)^k`` from Corollary 7. The bound
    is ``max_eps eps (1 - P_eps)`` over a fine grid of ``eps``: of the order
    ``1 / (C_grad C_bias N T)``, the paper's ``c T / (C_bias C_grad #neurons)``
    made explicit (a larger ``T`` makes more locus, so it enters our
    constant in the denominator). The left side is the exact distance
    (:meth:`Locus.distance`) averaged over uniform points and noise samples,
    the locus computed on a box large enough that each distance is exact.

    Parameters
    ----------
    net, domain, sigma, n_points, n_samples, rng
        As in :func:`corollary7_bound`.

    Returns
    -------
    Bound
        ``kind="lower"``, ``eps`` the radius that gives ``rhs``.
    """
    box = _box(domain)
    _, sigma, n_samples, _ = _check(net, np.zeros((1, 2)), sigma, n_samples, "theorem6", None, rng)
    n_points = integer_at_least(n_points, 1, "n_points")
    gen = np.random.default_rng(rng)
    pts = np.column_stack([gen.uniform(box[0], box[2], n_points), gen.uniform(box[1], box[3], n_points)])
    noise = gen.normal(0.0, sigma, size=(n_samples, net.n_neurons))
    per = np.array([_mean_distance(net, box, pts, row) for row in noise])
    c_grad, c_bias, T = _constants(net, sigma)
    a1 = net.n_neurons * T * c_grad * c_bias
    a2 = math.comb(net.n_neurons, 2) * (T * c_grad * c_bias) ** 2
    w, h = box[2] - box[0], box[3] - box[1]
    eps = np.geomspace(1e-9, 1.0, 2001) * max(w, h)
    grown = (w * h + 2 * (w + h) * eps + math.pi * eps**2) / (w * h)
    vals = eps * (1.0 - grown * (2 * eps * a1 + math.pi * eps**2 * a2))
    i = int(np.argmax(vals))
    lhs, se = float(per.mean()), float(per.std(ddof=1) / math.sqrt(n_samples))
    consts = {"k": 2, "c_grad": c_grad, "c_bias": c_bias, "n_breakpoints": T, "eps": float(eps[i])}
    return Bound("corollary8", lhs, max(float(vals[i]), 0.0), consts, kind="lower", lhs_stderr=se)


def _mean_distance(net, box, pts, row):
    """Mean exact distance from pts to the noisy network's whole locus: the
    locus is computed on the box grown by a margin, doubled until every
    distance is at most the margin (then the nearest locus point is inside)."""
    from .locus import nonlinear_locus
    from .regions import activation_regions

    noisy = net.with_biases(_noisy_biases(net, row))
    margin = 0.25 * max(box[2] - box[0], box[3] - box[1])
    for _ in range(12):
        dom = (box[0] - margin, box[1] - margin, box[2] + margin, box[3] + margin)
        d = nonlinear_locus(activation_regions(noisy, dom)).distance(pts)
        if d.max() <= margin:
            return float(d.mean())
        margin *= 2.0
    return float(d.mean())  # no locus within ~1000 box sizes: the distances as found
