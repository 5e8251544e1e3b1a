"""The paper's bounds between local complexity and the other measures, both sides.

Each function returns a :class:`Bound`: the two sides of one inequality
``lhs <= rhs`` evaluated on a network and data, with the constants that
enter it, so a test (or a figure) can check or plot it. Every expectation is
the mean over the data points and over the same bias-noise samples: the
local complexity comes from :func:`regiongeom.local_complexity`, every other
term from one pass of exact Jacobians (:mod:`regiongeom.measures`) over the
same noise draw (the same seed), so the chains of inequalities below hold
sample by sample and therefore for the Monte Carlo means themselves.

Notation: hidden layers ``l = 1..L`` (the layers with an activation), widths
``n_l``, input dimension ``n_0``; ``K_l`` the number of breakpoints of layer
``l``'s activation (1 for ReLU); ``J_l = J_x z_l`` the Jacobian of the
pre-activations; ``C_bias = 1/(sqrt(2 pi) sigma)``, the largest value of the
bias density; ``c_eta = C_bias exp(-eta^2 / (2 sigma^2))``, its smallest
value within ``eta`` of its centre; ``G = E[sum_i K_i ||grad z_i||]``.

Corrections to the paper (each derived in the function that uses it):

* Claim 2 of Appendix A.5 (``E||J_l||_F >= (1/n_0) sum_i E||grad z_i||``,
  stated without proof) is false: ``n_l`` equal rows give ``sum_i ||grad
  z_i|| = sqrt(n_l) ||J_l||_F``. Cauchy-Schwarz gives the factor
  ``sqrt(n_l)`` instead of ``n_0``, in eq. (11), Corollary 14 and eq. (14).
* Eq. (12) misses a factor ``C_grad``: ``rank_eps(J) <= ||J||_F^2 / eps^2``
  and ``||J_l||_F^2 = sum_i ||grad z_i||^2 <= C_grad sum_i ||grad z_i||``
  (the paper writes the sum of norms for the sum of squared norms).
* ``C_grad = max_l ||W_l ... W_1||_op`` (proof of Corollary 13) is not an
  upper bound: the activation patterns sit between the factors. Here
  ``C_grad`` is the largest ``sigma_max(J_l(x))`` over the evaluated points,
  noise samples and layers (which the sample means need), and the certified
  ``prod ||W_k||_op`` bound is reported beside it.
* ``xi_eta`` is ``Theta(...)`` in the paper; here it is the exact term the
  proof drops, ``c_eta sum_{i,k} E[||grad z_i|| 1{|t_k - u_i| > eta}]``,
  and the paper's Markov bound of it is reported as ``xi_markov``.
* Eq. (14): the step ``n^{(L-1)/2} ||A||_F <= ||A||_{2/L}`` is false (rank
  one matrices have equal Schatten norms), and ``(n_0 / C_bias) LC`` should
  read ``LC / (n_0 C_bias)``. The bound holds without the width factor (see
  :func:`representation_cost`).

References
----------
N. Patel, G. Montúfar. "On the local complexity of linear regions in deep
ReLU networks": Corollary 3 / 13, Theorem 5, Corollary 14, Theorem 7,
Proposition 8 and eq. (17), Appendices A.4-A.12, B.4 (eq. 42).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._validate import positive
from .complexity import local_complexity
from .measures import (
    _backward,
    _check_common,
    _check_eta,
    _chunks,
    _forward,
    _hidden,
    _map_samples,
    _noise,
    _rank_tolerance,
    not_good_count,
)

__all__ = ["Bound", "c_bias", "theorem5", "corollary14", "theorem7", "representation_cost"]


class Bound(NamedTuple):
    """Both sides of one inequality: ``lhs <= rhs`` (an upper bound) or
    ``lhs >= rhs`` (a lower bound, ``kind="lower"``).

    Attributes
    ----------
    name : str
        Which result, e.g. ``"theorem5 (11)"`` or ``"corollary7 (k=2)"``.
    lhs, rhs : float
        The bounded quantity (usually a Monte Carlo mean) and the bound.
    constants : dict
        The constants and intermediate means that enter the two sides.
    kind : str
        ``"upper"`` or ``"lower"``.
    lhs_stderr : float
        Standard error of ``lhs`` when it is a Monte Carlo mean (``nan`` when
        not reported).
    """

    name: str
    lhs: float
    rhs: float
    constants: dict
    kind: str = "upper"
    lhs_stderr: float = math.nan

    @property
    def holds(self) -> bool:
        """Whether the inequality holds for these numbers."""
        if self.kind == "lower":
            return bool(self.lhs >= self.rhs)
        return bool(self.lhs <= self.rhs)


def c_bias(sigma, eta=None) -> float:
    """``C_bias = 1/(sqrt(2 pi) sigma)`` or, with ``eta``, ``c_bias^eta =
    C_bias exp(-eta^2/(2 sigma^2))``: the largest value of the bias density,
    or its smallest value within ``eta`` of its centre (Corollary 3).

    >>> round(c_bias(1.0), 6), round(c_bias(1.0, eta=1.0), 6)
    (0.398942, 0.241971)
    """
    sigma = positive(sigma, "sigma")
    top = 1.0 / (math.sqrt(2.0 * math.pi) * sigma)
    return top if eta is None else top * math.exp(-0.5 * (_check_eta(eta) / sigma) ** 2)


# ----------------------------------------------------------------------------
# one pass over points and noise samples
# ----------------------------------------------------------------------------
class _Stats(NamedTuple):
    lc: float  # local complexity (theorem 2)
    B: float  # expected number of terms not good
    G: np.ndarray  # (L,) E[K_l sum_{i in l} ||grad z_i||]
    fro: np.ndarray  # (L,) E||J_l||_F
    lr_eps: np.ndarray  # (L,) LR^eps_l
    lr: np.ndarray  # (L,) LR_l (exact rank)
    smax: np.ndarray  # (L,) max sigma_max(J_l)
    tail: float  # sum_{i,k} E[||grad z_i|| 1{|t_k - u_i| > eta}]
    usq: float  # sum_{i,k} E[(t_k - u_i)^2]
    tv: float  # E||J_N||_F
    lip: np.ndarray  # (L,) max ||dN/dv_l||_op


def _seed(rng):
    """One integer seed, so that every part draws the same noise."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(2**63 - 1))
    return rng


def _stats(net, data, sigma, n_samples, rng, eps, eta, n_jobs=1):
    x, sigma, n_samples, n_jobs = _check_common(net, data, sigma, n_samples, rng, n_jobs)
    if sigma is None:
        raise ValueError("the bounds need the bias noise: give sigma > 0")
    eps = positive(eps, "eps") if eps is not None else None
    eta = _check_eta(eta)
    if not _hidden(net):
        raise ValueError("the network has no activation: the bounds are about its neurons")
    seed = _seed(rng)
    noise = _noise(net, sigma, n_samples, seed)
    per = _map_samples(_stats_sample, net, x, noise, n_jobs, eps=eps, eta=eta)
    S, P = noise.shape[0], x.shape[0]
    mean = lambda k: np.mean([r[k] for r in per], axis=0) / P  # noqa: E731
    smax = np.max([r["smax"] for r in per], axis=0)
    lip = np.max([r["lip"] for r in per], axis=0)
    lc = local_complexity(net, x, sigma=sigma, n_samples=S, rng=seed, progress=False, n_jobs=1).mean
    B = not_good_count(net, x, sigma=sigma, n_samples=S, rng=seed, n_jobs=n_jobs).mean
    st = _Stats(lc, B, mean("G"), mean("fro"), mean("lr_eps"), mean("lr"), smax, float(mean("tail")),
                float(mean("usq")), float(mean("tv")), lip)  # fmt: skip
    return st, (x, sigma, eta, eps, _hidden(net))


def _stats_sample(net, x, row, *, eps, eta):
    """Sums over the points (maxima for smax, lip) for one noise row."""
    hidden = _hidden(net)
    L = len(hidden)
    r = {k: np.zeros(L) for k in ("G", "fro", "lr_eps", "lr", "smax", "lip")}
    r.update(tail=0.0, usq=0.0, tv=0.0)
    offs = net.neuron_offsets
    for s0, s1 in _chunks(x.shape[0]):
        fwd = _forward(net, x[s0:s1], row, want_abs=True)
        M, Jn = _backward(net, fwd)
        r["tv"] += np.sqrt(np.einsum("cij,cij->c", Jn, Jn)).sum()
        for j, m in enumerate(hidden):
            v, _, J, A = fwd[m]
            bp = net.activations[m].breakpoints
            gn = np.sqrt(np.einsum("cij,cij->ci", J, J))  # (C, n_l) ||grad z_i||
            sv = np.linalg.svd(J, compute_uv=False)
            r["G"][j] += bp.size * gn.sum()
            r["fro"][j] += np.sqrt((gn * gn).sum(axis=1)).sum()
            r["lr"][j] += np.count_nonzero(sv > _rank_tolerance(net, m, sv, A)[:, None])
            if eps is not None:
                r["lr_eps"][j] += np.count_nonzero(sv > eps)
            r["smax"][j] = max(r["smax"][j], sv[:, 0].max())
            r["lip"][j] = max(r["lip"][j], np.linalg.norm(M[m], ord=2, axis=(1, 2)).max())
            u = v - row[offs[m] : offs[m + 1]]  # own noise removed: z_i(x) + b_i
            for t in bp:
                r["tail"] += (gn * (np.abs(t - u) > eta)).sum()
                r["usq"] += ((t - u) ** 2).sum()
    return r


def _widths(net, hidden):
    return np.array([net.weights[m].shape[0] for m in hidden], float)


def _kcounts(net, hidden):
    return np.array([net.activations[m].breakpoints.size for m in hidden], float)


def _smax_slope(net, m):
    a = net.activations[m]
    return 1.0 if a is None else float(np.abs(a.slopes).max())


def _certified_cgrad(net, hidden):
    """max_l prod_{k<=l} ||W_k||_op prod_{k<l} s_k: a bound on sigma_max(J_l) everywhere."""
    out, c = [], 1.0
    for m in range(max(hidden) + 1):
        c *= np.linalg.norm(net.weights[m], 2)
        if m in hidden:
            out.append(c)
        c *= _smax_slope(net, m)
    return float(max(out))


def _lower_terms(st, sigma, eta, C_grad):
    """c_eta, xi_eta (exact), xi_markov, and B C_grad C_bias of eq. (8)."""
    ce, cb = c_bias(sigma, eta), c_bias(sigma)
    return ce, ce * st.tail, ce * C_grad * st.usq / eta**2, st.B * C_grad * cb


# ----------------------------------------------------------------------------
# the bounds
# ----------------------------------------------------------------------------
def theorem5(net, data, *, sigma, eps, eta=1.0, n_samples=16, rng=None, n_jobs=1) -> tuple:
    """Theorem 5: local ranks and local complexity, eqs. (11) and (12).

    Corrected statements (see the module notes):

    (11)  ``LC <= C_bias sum_l K_l sqrt(n_l) sqrt(C_grad^2 LR^eps_l + eps^2 n_l)``

    (12)  ``sum_l LR^eps_l <= C_grad / (c_eta eps^2) [LC + xi_eta + B C_grad C_bias]``

    Derivation of (11), sample by sample: ``LC <= C_bias G`` (drop the good
    indicator, bound each density value by ``C_bias``; eq. 7); ``sum_{i in l}
    ||grad z_i|| <= sqrt(n_l) ||J_l||_F`` (Cauchy-Schwarz; the paper's
    ``1/n_0`` is false); ``||J_l||_F^2 <= sigma_max^2 rank_eps + eps^2 (n_l -
    rank_eps) <= C_grad^2 rank_eps + eps^2 n_l``; Jensen for the square root.
    Of (12): ``rank_eps(J_l) <= ||J_l||_F^2 / eps^2 <= (C_grad / eps^2)
    sum_{i in l} ||grad z_i||`` and eq. (8): ``c_eta G <= LC + xi_eta + B
    C_grad C_bias``.

    Parameters
    ----------
    net : Network
    data : (P, n_in) array_like
    sigma : float
        Bias noise (the local complexity's).
    eps : float
        Singular value threshold of ``LR^eps``.
    eta : float, default 1.0
        The window of the lower bound (8).
    n_samples : int, default 16
    rng : int, Generator or None
    n_jobs : int, default 1
        joblib workers over the noise samples (as in :func:`regiongeom.local_rank`).

    Returns
    -------
    (Bound, Bound)
        Eq. (11) (``lhs = LC``) and eq. (12) (``lhs = sum_l LR^eps_l``). The
        constants hold ``paper_rhs``: the right side as printed (which fails
        on some networks).
    """
    st, (x, sigma, eta, eps, hidden) = _stats(net, data, sigma, n_samples, rng, eps, eta, n_jobs)
    n, K, cb = _widths(net, hidden), _kcounts(net, hidden), c_bias(sigma)
    C_grad = float(st.smax.max())
    per = np.sqrt(C_grad**2 * st.lr_eps + eps**2 * n)
    common = dict(C_bias=cb, C_grad=C_grad, C_grad_certified=_certified_cgrad(net, hidden), LR_eps=st.lr_eps,
                  eps=eps, eta=eta, sigma=sigma, LC=st.lc, B=st.B, fro=st.fro, G=st.G)  # fmt: skip
    eq11 = Bound("theorem5 (11)", st.lc, float(cb * (K * np.sqrt(n) * per).sum()),
                 dict(common, paper_rhs=float(net.n_in * cb * per.sum())))  # fmt: skip
    ce, xi, xi_m, bterm = _lower_terms(st, sigma, eta, C_grad)
    rhs12 = C_grad / (ce * eps**2) * (st.lc + xi + bterm)
    eq12 = Bound("theorem5 (12)", float(st.lr_eps.sum()), float(rhs12),
                 dict(common, c_eta=ce, xi_eta=xi, xi_markov=xi_m, B_term=bterm,
                      paper_rhs=float((st.lc + xi + bterm) / (ce * eps**2))))  # fmt: skip
    return eq11, eq12


def corollary14(net, data, *, sigma, n_samples=16, rng=None, n_jobs=1) -> Bound:
    """Corollary 14 with the exact local rank:
    ``LC <= C_bias C_grad sum_l K_l sqrt(n_l) sqrt(LR_l)``.

    Directly, sample by sample: ``||J_l||_F^2 <= rank(J_l) sigma_max^2``, so
    ``E||J_l||_F <= C_grad sqrt(LR_l)`` (Jensen), and the first two steps of
    (11) (the paper's ``n_0`` again becomes ``K_l sqrt(n_l)``). The rank is
    :func:`regiongeom.local_rank`'s, with its rounding tolerance.
    """
    st, (x, sigma, eta, eps, hidden) = _stats(net, data, sigma, n_samples, rng, None, 1.0, n_jobs)
    n, K, cb = _widths(net, hidden), _kcounts(net, hidden), c_bias(sigma)
    C_grad = float(st.smax.max())
    rhs = cb * C_grad * (K * np.sqrt(n) * np.sqrt(st.lr)).sum()
    consts = dict(C_bias=cb, C_grad=C_grad, LR=st.lr, sigma=sigma,
                  paper_rhs=float(net.n_in * cb * C_grad * np.sqrt(st.lr).sum()))  # fmt: skip
    return Bound("corollary14", st.lc, float(rhs), consts)


def theorem7(net, data, *, sigma, eta=1.0, n_samples=16, rng=None, n_jobs=1) -> Bound:
    """Theorem 7: total variation and local complexity, eq. (13):
    ``TV L c_eta / max_l C_l - xi_eta - B C_grad C_bias <= LC``.

    Derivation (Appendix A.8, for any number of outputs, Frobenius norms):
    on the region of ``x``, ``J_N = M_l J_l`` with ``M_l = dN/dz_l`` the
    Jacobian of the rest of the network after layer ``l``'s pre-activation
    (its activation included), so ``||J_N||_F <= ||M_l||_op ||J_l||_F <= C_l
    sum_{i in l} ||grad z_i||``. Summing over the ``L`` hidden layers, ``L TV
    <= max_l C_l G`` and eq. (8) gives (13). ``C_l`` is the largest
    ``||M_l(x)||_op`` over the evaluated points and noise samples: the local
    Lipschitz constant the sample means need.

    Returns
    -------
    Bound
        ``lhs``: the left side of (13), ``rhs = LC``. The constants hold
        ``C_l`` and ``C_l_eq42``, the paper's estimate ``||W_L ... W_{l+1}||_op``
        of eq. (42) (activations ignored: not a bound), with ``lhs_eq42``, the
        left side computed with it (Figure 9's curve).
    """
    st, (x, sigma, eta, eps, hidden) = _stats(net, data, sigma, n_samples, rng, None, eta, n_jobs)
    C_grad = float(st.smax.max())
    ce, xi, xi_m, bterm = _lower_terms(st, sigma, eta, C_grad)
    L = len(hidden)
    eq42 = np.array([_eq42(net, m) for m in hidden])
    lhs = st.tv * L * ce / st.lip.max() - xi - bterm
    consts = dict(TV=st.tv, L=L, c_eta=ce, C_l=st.lip, C_l_eq42=eq42, xi_eta=xi, xi_markov=xi_m, B=st.B,
                  B_term=bterm, C_grad=C_grad, C_bias=c_bias(sigma), eta=eta, sigma=sigma,
                  lhs_eq42=float(st.tv * L * ce / eq42.max() - xi - bterm))  # fmt: skip
    return Bound("theorem7 (13)", float(lhs), st.lc, consts)


def _eq42(net, m):
    """||W_last ... W_{m+1}||_op: the paper's eq. (42) estimate of C_l."""
    prod = np.eye(net.n_out)
    for k in range(net.n_layers - 1, m, -1):
        prod = prod @ net.weights[k]
    return float(np.linalg.norm(prod, 2))


def representation_cost(net, data, *, sigma, n_samples=16, rng=None, n_jobs=1) -> Bound:
    """Proposition 8 / eq. (17): local complexity and the weight norms.

    ``LC <= C_bias sum_l K_l sqrt(n_l) s_{<l} prod_{k<=l} ||W_k||_F
         <= C_bias sum_l K_l sqrt(n_l) s_{<l} (||theta||_F^2 / l)^{l/2}``

    with ``s_{<l}`` the product of the largest activation slopes below layer
    ``l`` (1 for ReLU), ``l`` the number of weight matrices in ``J_l`` and
    ``||theta||_F`` the norm of all the weights (the biases do not enter).
    Derivation: ``LC <= C_bias sum_l K_l sqrt(n_l) E||J_l||_F`` (see
    :func:`theorem5`); ``||AB||_F <= ||A||_F ||B||_F`` along ``J_l = W_l D ...
    W_1``; the arithmetic-geometric mean inequality. The paper's Schatten-norm
    route (``||J_l||_F <= ||J_l||_{2/l} <= (||theta||^2/l)^{l/2}``) reaches
    the same bound; its extra factor ``n_l^{(1-L)/2}`` comes from a reversed
    norm inequality. Since the representation cost ``R <= ||theta||_F``, this
    bounds eq. (14)'s ``R``-form from above; eq. (17) replaces
    ``||theta||^L`` by ``Theta(log 1/lambda)`` under weight decay ``lambda``.

    Returns
    -------
    Bound
        ``lhs = LC``, ``rhs`` the product form; the constants hold ``rhs_theta``
        (the ``||theta||`` form), ``theta_norm`` and ``eq17_lhs``, the paper's
        ``n_0 LC / (C_bias n^{(1-L)/2} L^{1-L/2})`` (Figure 13's x-axis).
    """
    st, (x, sigma, eta, eps, hidden) = _stats(net, data, sigma, n_samples, rng, None, 1.0, n_jobs)
    n, K, cb = _widths(net, hidden), _kcounts(net, hidden), c_bias(sigma)
    frob = [float(np.linalg.norm(w)) for w in net.weights]
    theta = math.sqrt(sum(f * f for f in frob))
    prod_terms, theta_terms, slope = [], [], 1.0
    for m in hidden:
        depth = m + 1
        prod_terms.append(slope * math.prod(frob[: m + 1]))
        theta_terms.append(slope * (theta**2 / depth) ** (depth / 2))
        slope *= _smax_slope(net, m)
    w = K * np.sqrt(n)
    Lh, nmax = len(hidden), float(n.max())
    eq17 = net.n_in * st.lc / (cb * nmax ** ((1 - Lh) / 2) * Lh ** (1 - Lh / 2))
    consts = dict(C_bias=cb, theta_norm=theta, rhs_theta=float(cb * (w * theta_terms).sum()), fro=st.fro,
                  eq17_lhs=float(eq17), weight_frobenius=frob, sigma=sigma)  # fmt: skip
    return Bound("representation cost (14)/(17)", st.lc, float(cb * (w * prod_terms).sum()), consts)
