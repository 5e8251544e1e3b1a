"""Closed forms of regiongeom.closed_form against independent checks.

Each closed form is checked against (a) scipy.integrate.quad of the defining
expectation and (b) a seeded Monte Carlo straight from the definition (sample
the biases, find the breakpoints, keep those where a finite-difference check of
the scalar network sees the slope jump, count them in the ball). The Monte
Carlo reference is the closed form averaged over the ball by quad, which is the
exact finite-eps expectation, so the z-scores carry no O(eps^2) bias.
"""

import doctest
import subprocess
import sys
from itertools import pairwise

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import logsumexp

from regiongeom import closed_form as cf

Z_MAX = 4.0
QUAD = {"epsabs": 0.0, "epsrel": 1e-12, "limit": 200}

# (w, beta, sigma): weights of both signs, biases on both sides of 0
SINGLE = [(1.0, 0.0, 1.0), (-2.0, 0.5, 0.3), (0.7, -1.2, 0.8), (-0.4, -0.9, 2.0), (3.0, 2.0, 0.5)]
# (w1, w2, beta1, beta2, sigma)
CHAIN = [
    (1.0, 1.0, 0.0, 0.0, 1.0),
    (1.3, -0.7, 0.4, -0.2, 0.5),
    (-2.0, 1.5, -0.3, 0.6, 0.8),
    (-0.8, -1.2, 0.5, -0.4, 0.6),
    (0.5, 3.0, 1.0, 1.0, 0.3),
    (2.0, -0.25, -1.0, 0.3, 0.4),
    (-1.5, 0.6, 0.8, -0.9, 1.2),
]


def chain_kw(params):
    """A CHAIN tuple as the keyword arguments of the chain's closed forms."""
    return dict(zip(("w1", "w2", "beta1", "beta2", "sigma"), params, strict=True))


XS = np.linspace(-3.0, 3.0, 25)
# Monte Carlo points: few, so that the family of |z| < 4 checks (~105 in this
# file) has a false-alarm rate ~0.7%. With 31 points per net one |z| = 4.2 turned
# up; 4e7 samples at that point showed it was chance (z = -0.17).
XS_MC = np.linspace(-3.0, 3.0, 13)


def rho(b, mean, sigma):
    """The N(mean, sigma^2) density (hand-written: quad calls it a lot)."""
    return np.exp(-0.5 * ((b - mean) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))


def quad(f, a, b, **kw):
    return integrate.quad(f, a, b, **{**QUAD, **kw})[0]


def ball_average(density, x, eps):
    """(1 / 2 eps) * integral of a density over (x - eps, x + eps), by quad."""
    return np.array([quad(lambda y: float(density(y)), c - eps, c + eps) / (2 * eps) for c in x])


def z_scores(counts, ref, n):
    """counts: (N, P) per-sample values; ref: (P,) expected values."""
    mean = counts.mean(axis=0)
    se = counts.std(axis=0, ddof=1) / np.sqrt(n)
    return (mean - ref) / se


# ------------------------------------------------------------ single neuron
@pytest.mark.parametrize("w, beta, sigma", SINGLE)
def test_single_neuron_matches_definition_by_quad(w, beta, sigma):
    # finite eps: P(b / w in (x - eps, x + eps)) = integral of rho_b over w * ball
    eps = 0.05
    got = ball_average(lambda y: cf.single_neuron_density(y, w=w, beta=beta, sigma=sigma), XS, eps)
    want = [quad(rho, *sorted((w * (c - eps), w * (c + eps))), args=(beta, sigma)) / (2 * eps) for c in XS]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300)
    # eps -> 0: the ball average of a smooth density differs from it by
    # (eps^2 / 6) f'' = O(1e-12 * (w z / sigma)^2) relative here
    eps = 1e-6
    lim = [quad(rho, *sorted((w * (c - eps), w * (c + eps))), args=(beta, sigma)) / (2 * eps) for c in XS]
    np.testing.assert_allclose(
        cf.single_neuron_density(XS, w=w, beta=beta, sigma=sigma), lim, rtol=1e-8, atol=1e-300
    )


@pytest.mark.parametrize("w, beta, sigma", SINGLE)
def test_single_neuron_monte_carlo(w, beta, sigma):
    rng = np.random.default_rng(12345)
    n, eps = 200_000, 0.05
    b = rng.normal(beta, sigma, n)
    c = b / w
    x = XS_MC[np.abs(w * XS_MC - beta) < 3 * sigma]  # where hits are plentiful
    counts = (np.abs(c[:, None] - x) < eps).astype(float)
    ref = ball_average(lambda y: cf.single_neuron_density(y, w=w, beta=beta, sigma=sigma), x, eps)
    assert np.all(np.abs(z_scores(counts / (2 * eps), ref, n)) < Z_MAX)


@pytest.mark.parametrize("w, beta, sigma", SINGLE + [(0.0, 0.3, 1.0)])
@pytest.mark.parametrize("lo, hi", [(-1.0, 0.5), (0.2, 2.5), (-3.0, -1.0), (-np.inf, 0.4), (-0.7, np.inf)])
def test_single_neuron_count_is_integral_of_density(w, beta, sigma, lo, hi):
    total = quad(lambda y: float(cf.single_neuron_density(y, w=w, beta=beta, sigma=sigma)), lo, hi)
    count = cf.single_neuron_expected_count(w=w, beta=beta, sigma=sigma, lo=lo, hi=hi)
    assert count == pytest.approx(total, rel=1e-9, abs=1e-13)
    if np.isfinite(lo) and np.isfinite(hi):
        assert cf.single_neuron_lc_uniform(w=w, beta=beta, sigma=sigma, lo=lo, hi=hi) == pytest.approx(
            count / (hi - lo), rel=1e-15
        )


def test_single_neuron_count_whole_line_and_tail():
    assert cf.single_neuron_expected_count(w=-0.3, beta=5.0, sigma=0.1, lo=-np.inf, hi=np.inf) == 1.0
    # far upper tail: computed without cancellation
    far = cf.single_neuron_expected_count(w=1.0, beta=0.0, sigma=1.0, lo=10.0, hi=11.0)
    assert far == pytest.approx(stats.norm.sf(10.0) - stats.norm.sf(11.0), rel=1e-12)


@pytest.mark.parametrize("w, beta, sigma", SINGLE)
def test_single_neuron_nd(w, beta, sigma):
    # n = 1 agrees with 1D; in 2D f depends on w . x only, scaled by ||w||
    f1 = cf.single_neuron_density(XS, w=w, beta=beta, sigma=sigma)
    np.testing.assert_allclose(
        cf.single_neuron_density_nd(XS[:, None], w=[w], beta=beta, sigma=sigma), f1, rtol=1e-15
    )
    np.testing.assert_allclose(cf.single_neuron_density_nd(XS, w=[w], beta=beta, sigma=sigma), f1, rtol=1e-15)
    u = np.array([0.6, -0.8])  # unit vector
    pts = XS[:, None] * u + 1.7 * np.array([0.8, 0.6])  # shift orthogonal to u
    np.testing.assert_allclose(
        cf.single_neuron_density_nd(pts, w=w * u, beta=beta, sigma=sigma), f1, rtol=1e-12
    )


# ---------------------------------------------------------- two-layer chain
def chain_net(x, w1, w2, b1, b2):
    return np.maximum(w2 * np.maximum(w1 * x - b1, 0.0) - b2, 0.0)


def chain_term2_quad(x, w1, w2, beta1, beta2, sigma):
    """|w1 w2| E_b1[1{b1 < w1 x} rho_b2(w2 (w1 x - b1))] by quad."""
    u = w1 * x
    g = lambda b: rho(b, beta1, sigma) * rho(w2 * (u - b), beta2, sigma)  # noqa: E731
    lo = min(u, beta1) - 12 * sigma
    return abs(w1 * w2) * (quad(g, -np.inf, lo) + quad(g, lo, u, points=[beta1] if lo < beta1 < u else None))


@pytest.mark.parametrize("params", CHAIN)
def test_chain_matches_theorem2_expectation_by_quad(params):
    w1, w2, beta1, beta2, sigma = params
    term1 = abs(w1) * rho(w1 * XS, beta1, sigma) * quad(rho, -np.inf, 0.0, args=(beta2, sigma))
    term2 = np.array([chain_term2_quad(x, *params) for x in XS[::2]])
    got = cf.two_layer_chain_density(XS[::2], **chain_kw(params))
    np.testing.assert_allclose(got, term1[::2] + term2, rtol=1e-9, atol=1e-300)


def chain_ball_probability_quad(x, eps, w1, w2, beta1, beta2, sigma):
    """E[#locus points in (x - eps, x + eps)] from the definition, by quad over b1.

    Neuron 1's breakpoint b1 / w1 is in the locus iff b2 < 0; neuron 2's
    breakpoint (b1 + t) / w1 with t = b2 / w2 exists iff t > 0.
    """
    a, b = sorted((w1 * (x - eps), w1 * (x + eps)))
    p1 = quad(rho, a, b, args=(beta1, sigma)) * stats.norm.cdf(0.0, beta2, sigma)

    def inner(b1):  # P(t in (max(a - b1, 0), b - b1)) with t = b2 / w2
        lo, hi = max(a - b1, 0.0), b - b1
        if hi <= lo:
            return 0.0
        lo2, hi2 = sorted((w2 * lo, w2 * hi))
        return rho(b1, beta1, sigma) * (stats.norm.cdf(hi2, beta2, sigma) - stats.norm.cdf(lo2, beta2, sigma))

    start = min(a, beta1) - 15 * sigma  # rho_b1 is negligible below
    return p1 + quad(inner, start, b, points=[a] if start < a < b else None, epsrel=1e-10)


@pytest.mark.parametrize("params", CHAIN)
def test_chain_matches_definition_by_quad(params):
    eps, x = 0.1, XS[::4]
    got = ball_average(lambda y: cf.two_layer_chain_density(y, **chain_kw(params)), x, eps)
    want = np.array([chain_ball_probability_quad(c, eps, *params) for c in x]) / (2 * eps)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-14)


def chain_locus_mask(c, w1, w2, b1, b2):
    """Does the slope of the chain jump at c? Finite differences on each side."""
    h = 1e-6 * np.maximum(1.0, np.abs(c))
    left = (chain_net(c - h, w1, w2, b1, b2) - chain_net(c - 2 * h, w1, w2, b1, b2)) / h
    right = (chain_net(c + 2 * h, w1, w2, b1, b2) - chain_net(c + h, w1, w2, b1, b2)) / h
    return np.abs(right - left) > 0.5 * abs(w1 * w2)


@pytest.mark.parametrize("params", CHAIN)
def test_chain_monte_carlo(params):
    w1, w2, beta1, beta2, sigma = params
    rng = np.random.default_rng(2024)
    n, eps = 200_000, 0.05
    b1, b2 = rng.normal(beta1, sigma, n), rng.normal(beta2, sigma, n)
    # candidate breakpoints: where each neuron's pre-activation would vanish
    c1 = b1 / w1
    c2 = (b1 + b2 / w2) / w1
    ok1, ok2 = chain_locus_mask(c1, w1, w2, b1, b2), chain_locus_mask(c2, w1, w2, b1, b2)
    assert 0.0 < ok1.mean() < 1.0 and 0.0 < ok2.mean() < 1.0  # both neurons' goodness matters
    x = XS_MC
    x = x[n * 2 * eps * cf.two_layer_chain_density(x, **chain_kw(params)) > 200]  # where hits are plentiful
    assert len(x) >= 4
    counts = ((np.abs(c1[:, None] - x) < eps) & ok1[:, None]).astype(float)
    counts += (np.abs(c2[:, None] - x) < eps) & ok2[:, None]
    ref = ball_average(lambda y: cf.two_layer_chain_density(y, **chain_kw(params)), x, eps)
    z = z_scores(counts / (2 * eps), ref, n)
    assert np.all(np.abs(z) < Z_MAX), z


def test_chain_w2_zero_has_no_locus():
    # N = relu(-b2) is constant: no gradient jump even when neuron 2 is "open"
    rng = np.random.default_rng(0)
    b1, b2 = rng.normal(0.2, 1.0, 1000), rng.normal(-1.0, 1.0, 1000)
    assert not chain_locus_mask(b1 / 1.5, 1.5, 0.0, b1, b2).any()
    assert np.all(cf.two_layer_chain_density(XS, w1=1.5, w2=0.0, beta1=0.2, beta2=-1.0, sigma=1.0) == 0.0)
    assert (
        cf.two_layer_chain_expected_count(
            w1=1.5, w2=0.0, beta1=0.2, beta2=-1.0, sigma=1.0, lo=-np.inf, hi=np.inf
        )
        == 0.0
    )
    assert np.all(cf.two_layer_chain_density(XS, w1=0.0, w2=2.0, beta1=0.2, beta2=-1.0, sigma=1.0) == 0.0)


@pytest.mark.parametrize("params", CHAIN)  # CHAIN[0] with (-3, 0) puts Owen's T at h = k = 0
@pytest.mark.parametrize("lo, hi", [(-1.0, 0.5), (0.0, 2.0), (-3.0, 0.0), (-np.inf, 0.3), (-0.6, np.inf)])
def test_chain_count_is_integral_of_density(params, lo, hi):
    def f(y):
        return float(cf.two_layer_chain_density(y, **chain_kw(params)))

    # split the range so quad sees every bump
    if np.isfinite(lo) and np.isfinite(hi):
        edges = [lo, *[p for p in (-1.0, 0.0, 1.0) if lo < p < hi], hi]
    else:
        edges = [lo, 0.0, hi]  # the infinite ranges here all contain 0
    total = sum(quad(f, a, b) for a, b in pairwise(edges))
    count = cf.two_layer_chain_expected_count(**chain_kw(params), lo=lo, hi=hi)
    assert count == pytest.approx(total, rel=1e-8, abs=1e-13)
    if np.isfinite(lo) and np.isfinite(hi):
        assert cf.two_layer_chain_lc_uniform(**chain_kw(params), lo=lo, hi=hi) == pytest.approx(
            count / (hi - lo), rel=1e-15
        )


@pytest.mark.parametrize("params", CHAIN)
def test_chain_count_whole_line(params):
    # neuron 1: P(b2 < 0); neuron 2: P(b2 / w2 > 0)
    w1, w2, beta1, beta2, sigma = params
    want = stats.norm.cdf(-beta2 / sigma) + stats.norm.cdf(np.sign(w2) * beta2 / sigma)
    got = cf.two_layer_chain_expected_count(**chain_kw(params), lo=-np.inf, hi=np.inf)
    assert got == pytest.approx(want, rel=1e-13)


# --------------------------------------------------- one hidden layer, 2D
W2D = np.array([[1.0, 0.5], [-0.3, 1.2], [0.8, -0.9], [-1.5, -0.2], [0.0, 0.0]])
BETA2D = np.array([0.2, -0.4, 0.9, 0.1, 0.3])
PTS2D = np.array([[0.0, 0.0], [0.3, -0.2], [-0.5, 0.4], [0.7, 0.6], [1.5, -1.0]])


def test_one_layer_density_is_sum_of_single_neurons():
    sigma = 0.4
    want = sum(
        cf.single_neuron_density_nd(PTS2D, w=w, beta=b, sigma=sigma) for w, b in zip(W2D, BETA2D, strict=True)
    )
    np.testing.assert_allclose(
        cf.one_layer_2d_density(PTS2D, W=W2D, beta=BETA2D, sigma=sigma), want, rtol=1e-14
    )


def chord_expectation_quad(mu, s, eps):
    """E[2 sqrt(eps^2 - d^2) 1{|d| < eps}], d ~ N(mu, s^2): quad with the
    square-root endpoint factors as QAWS weights on the two end pieces."""
    g = lambda d: rho(d, mu, s)  # noqa: E731
    c = 0.5 * eps
    mid = [p for p in (mu - 3 * s, mu, mu + 3 * s) if -c < p < c]
    left = quad(lambda d: 2 * np.sqrt(eps - d) * g(d), -eps, -c, weight="alg", wvar=(0.5, 0.0))
    right = quad(lambda d: 2 * np.sqrt(eps + d) * g(d), c, eps, weight="alg", wvar=(0.0, 0.5))
    middle = quad(lambda d: 2 * np.sqrt(eps * eps - d * d) * g(d), -c, c, points=mid or None)
    return left + middle + right


@pytest.mark.parametrize("ratio", [1e-3, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0])
@pytest.mark.parametrize("m", [0.0, 0.3, -0.8, 0.99, 1.0, -1.05, 1.5])
def test_chord_expectation_vs_quad(ratio, m):
    # one line, W = (2, 0): s = sigma / 2, mu = (beta - 2 x) / 2 at x = 0
    eps = 0.2
    s = eps / ratio
    mu = m * eps
    want = chord_expectation_quad(mu, s, eps) / (np.pi * eps**2)
    got = cf.one_layer_2d_density_eps([[0.0, 0.0]], W=[[2.0, 0.0]], beta=[2 * mu], sigma=2 * s, eps=eps)[0]
    assert got == pytest.approx(want, rel=1e-9, abs=1e-300)


def chord_fraction_composite(mu, s, eps, panels=3000):
    """E[chord] / (pi eps^2) by a 3000-panel, 20-node composite Gauss-Legendre
    rule over the whole t range (d = eps sin t), summed in log space."""
    x, w = np.polynomial.legendre.leggauss(20)
    edges = np.linspace(-np.pi / 2, np.pi / 2, panels + 1)
    half = 0.5 * np.diff(edges)[:, None]
    t = 0.5 * (edges[:-1, None] + edges[1:, None]) + half * x
    log_g = 2 * np.log(np.cos(t) + 1e-300) - 0.5 * ((eps * np.sin(t) - mu) / s) ** 2
    return (2 / np.pi) * np.exp(logsumexp(log_g, b=half * w)) / (s * np.sqrt(2 * np.pi))


@pytest.mark.parametrize("ratio", [3.0, 10.0, 100.0, 300.0])
@pytest.mark.parametrize("m", [0.0, 0.5, 0.999, 1.0, 1.02, 1.3])
def test_chord_expectation_narrow_gaussians(ratio, m):
    # eps / s large: the library integrates a window only; the reference does not
    eps, s = 0.2, 0.2 / ratio
    got = cf.one_layer_2d_density_eps([[0.0, 0.0]], W=[[1.0, 0.0]], beta=[m * eps], sigma=s, eps=eps)[0]
    assert got == pytest.approx(chord_fraction_composite(m * eps, s, eps), rel=1e-11, abs=1e-300)


@pytest.mark.parametrize("sigma, eps", [(0.3, 0.5), (0.5, 0.2), (1.0, 1.0)])
def test_one_layer_eps_monte_carlo(sigma, eps):
    rng = np.random.default_rng(7)
    n = 100_000
    norms = np.linalg.norm(W2D, axis=1)
    keep = norms > 0
    b = rng.normal(BETA2D[keep], sigma, (n, keep.sum()))  # (N, m)
    d = (b[:, None, :] - PTS2D @ W2D[keep].T) / norms[keep]  # (N, P, m) signed distances
    chord = 2 * np.sqrt(np.clip(eps * eps - d * d, 0.0, None))
    vals = chord.sum(axis=2) / (np.pi * eps**2)  # (N, P)
    want = cf.one_layer_2d_density_eps(PTS2D, W=W2D, beta=BETA2D, sigma=sigma, eps=eps)
    z = z_scores(vals, want, n)
    assert np.all(np.abs(z) < Z_MAX), z
    # the check can tell finite eps from the eps -> 0 limit
    if eps >= 0.5:
        z0 = z_scores(vals, cf.one_layer_2d_density(PTS2D, W=W2D, beta=BETA2D, sigma=sigma), n)
        assert np.max(np.abs(z0)) > 10


def test_one_layer_eps_tends_to_limit():
    sigma = 0.35
    f0 = cf.one_layer_2d_density(PTS2D, W=W2D, beta=BETA2D, sigma=sigma)
    errs = [
        np.abs(cf.one_layer_2d_density_eps(PTS2D, W=W2D, beta=BETA2D, sigma=sigma, eps=e) - f0) / f0
        for e in (1e-1, 1e-2, 1e-3)
    ]
    assert np.all(errs[2] < 1e-5)
    ratio = errs[2] / errs[1]  # O(eps^2): shrinking eps by 10 shrinks the error by ~100
    assert np.all((ratio > 1 / 200) & (ratio < 1 / 50))
    tiny = cf.one_layer_2d_density_eps(PTS2D, W=W2D, beta=BETA2D, sigma=sigma, eps=1e-7)
    np.testing.assert_allclose(tiny, f0, rtol=1e-12)


def test_one_layer_eps_chunks_and_zero_rows(monkeypatch):
    rng = np.random.default_rng(3)
    pts = rng.uniform(-1, 1, (1000, 2))
    W, beta = W2D[:2], BETA2D[:2]
    whole = cf.one_layer_2d_density_eps(pts, W=W, beta=beta, sigma=0.3, eps=0.1)
    monkeypatch.setattr(cf.one_layer, "_CHUNK", 2 * 80 * 37)  # blocks of 37 points
    np.testing.assert_array_equal(cf.one_layer_2d_density_eps(pts, W=W, beta=beta, sigma=0.3, eps=0.1), whole)
    assert np.all(
        cf.one_layer_2d_density_eps(pts[:5], W=np.zeros((2, 2)), beta=beta, sigma=0.3, eps=0.1) == 0.0
    )


# ------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: cf.single_neuron_density(0.0, w=1.0, beta=0.0, sigma=0.0), "sigma must be > 0"),
        (lambda: cf.single_neuron_density(0.0, w=1.0, beta=0.0, sigma=-1.0), "sigma must be > 0"),
        (
            lambda: cf.single_neuron_density([0.0, np.nan], w=1.0, beta=0.0, sigma=1.0),
            "x must contain only finite",
        ),
        (lambda: cf.single_neuron_density(0.0, w=np.inf, beta=0.0, sigma=1.0), "w must be a finite number"),
        (lambda: cf.single_neuron_density(0.0, w=[1.0, 2.0], beta=0.0, sigma=1.0), "w must be a real scalar"),
        (lambda: cf.single_neuron_density("a", w=1.0, beta=0.0, sigma=1.0), "x must be a real numeric array"),
        (
            lambda: cf.single_neuron_density_nd([[0.0, 1.0]], w=[[1.0, 2.0]], beta=0.0, sigma=1.0),
            "w must be a 1-d",
        ),
        (
            lambda: cf.single_neuron_density_nd([[0.0, 1.0, 2.0]], w=[1.0, 2.0], beta=0.0, sigma=1.0),
            r"shape \(P, 2\)",
        ),
        (lambda: cf.single_neuron_expected_count(w=1.0, beta=0.0, sigma=1.0, lo=1.0, hi=1.0), "need lo < hi"),
        (
            lambda: cf.single_neuron_lc_uniform(w=1.0, beta=0.0, sigma=1.0, lo=0.0, hi=np.inf),
            "hi must be a finite number",
        ),
        (
            lambda: cf.two_layer_chain_density(0.0, w1=1.0, w2=1.0, beta1=0.0, beta2=np.nan, sigma=1.0),
            "beta2 must be a finite",
        ),
        (
            lambda: cf.two_layer_chain_expected_count(w1=1, w2=1, beta1=0, beta2=0, sigma=1, lo=2.0, hi=-2.0),
            "need lo < hi",
        ),
        (
            lambda: cf.one_layer_2d_density([[0.0, 0.0]], W=np.ones(2), beta=[0.0], sigma=1.0),
            r"W must be a non-empty \(m, n\)",
        ),
        (
            lambda: cf.one_layer_2d_density([[0.0, 0.0]], W=np.ones((2, 2)), beta=[0.0], sigma=1.0),
            r"beta must have shape \(2,\)",
        ),
        (
            lambda: cf.one_layer_2d_density_eps(
                [[0.0] * 3], W=np.ones((1, 3)), beta=[0.0], sigma=1.0, eps=0.1
            ),
            "2D only",
        ),
        (
            lambda: cf.one_layer_2d_density_eps(
                [[0.0, 0.0]], W=np.ones((1, 2)), beta=[0.0], sigma=1.0, eps=0.0
            ),
            "eps must be > 0",
        ),
    ],
)
def test_validation_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_shapes_and_dtype():
    x = np.zeros((3, 4), dtype=np.float32)
    for f in (
        cf.single_neuron_density(x, w=1, beta=0, sigma=1),
        cf.two_layer_chain_density(x, w1=1, w2=1, beta1=0, beta2=0, sigma=1),
    ):
        assert f.shape == (3, 4) and f.dtype == np.float64
    assert cf.single_neuron_density(0.5, w=1, beta=0, sigma=1).shape == ()


def test_contract_signatures_take_the_paper_order_by_position():
    # the public contract fixes these two as (x, w, beta, sigma) and
    # (x, w1, w2, beta1, beta2, sigma): positional calls equal keyword calls
    x = np.linspace(-2, 2, 9)
    np.testing.assert_array_equal(
        cf.single_neuron_density(x, 1.5, -0.3, 0.7), cf.single_neuron_density(x, w=1.5, beta=-0.3, sigma=0.7)
    )
    np.testing.assert_array_equal(
        cf.two_layer_chain_density(x, 1.5, -2.0, 0.3, -0.2, 0.7),
        cf.two_layer_chain_density(x, w1=1.5, w2=-2.0, beta1=0.3, beta2=-0.2, sigma=0.7),
    )


def test_parameters_after_the_point_are_keyword_only():
    # the paper's beta = -b must not be mixed up with a bias by position
    for call in (
        lambda: cf.single_neuron_expected_count(1.0, 0.0, 1.0, 0.0, 1.0),
        lambda: cf.one_layer_2d_density([[0.0, 0.0]], np.eye(2), [0.0, 0.0], 1.0),
    ):
        with pytest.raises(TypeError, match="positional"):
            call()


def test_all_and_doctests():
    assert sorted(cf.__all__) == sorted(n for n in cf.__all__ if callable(getattr(cf, n)))
    from regiongeom.closed_form import one_layer, one_neuron

    results = [doctest.testmod(m, optionflags=doctest.NORMALIZE_WHITESPACE) for m in (one_neuron, one_layer)]
    assert sum(r.attempted for r in results) > 10 and sum(r.failed for r in results) == 0


def test_import_regiongeom_does_not_import_scipy_special():
    # scipy.special costs about 0.3 s to import; closed_form loads it on first use
    code = (
        "import sys, regiongeom, regiongeom.closed_form as cf; "
        "assert 'scipy.special' not in sys.modules; "
        "v = cf.single_neuron_expected_count(w=1.0, beta=0.0, sigma=1.0, lo=-1.0, hi=1.0); "
        "assert 'scipy.special' in sys.modules and abs(v - 0.6826894921370859) < 1e-15, v"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
