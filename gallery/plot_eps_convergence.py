"""
The definition converges to Theorem 2 as eps -> 0
=================================================

The local complexity density is defined (eq. 3) as a limit,

``f(x) = lim_{eps -> 0} E[vol(locus ∩ B_eps(x))] / Z_eps``,

and Theorem 2 gives that limit in closed form. At a finite ``eps`` the
definition averages ``f`` over the disk ``B_eps(x)``, so it is biased by
``O(eps^2)``; as ``eps`` shrinks the bias vanishes and the Monte Carlo error
grows (a small disk rarely meets the locus). We follow the local complexity
``LC = E_x[f(x)]`` over a set of points, from the definition at decreasing
``eps``, for

* (a) one hidden layer, where the expectation at every ``eps`` has a closed
  form (``closed_form.one_layer_2d_density_eps``), and
* (b) a random ``2 -> 8 -> 8 -> 1`` ReLU network, against Theorem 2.

Error bars and bands are two standard errors.
"""

# %%
# Setup
# -----
import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np

import regiongeom as rg
from regiongeom import closed_form
from regiongeom.complexity import local_complexity
from regiongeom.examples import random_network

OUT = Path(os.environ.get("REGIONGEOM_GALLERY_OUT", "gallery_out"))
OUT.mkdir(parents=True, exist_ok=True)
SIGMA = 0.2
EPSS = np.array([0.4, 0.2, 0.1, 0.05, 0.025])
N_DEF = 150
rng = np.random.default_rng(0)
points = rng.uniform(-0.5, 0.5, size=(96, 2))

# one hidden layer, every neuron read out (all of them good)
W = np.array([[1.0, 0.3], [-0.4, 1.1], [0.8, -0.9], [0.2, 0.5]])
beta = np.array([0.1, -0.2, 0.3, 0.0])
shallow = rg.Network.from_arrays([W, np.ones((1, 4))], [-beta, [0.0]], ["relu", None])
deep = random_network([8, 8], rng=0)


def definition_curve(net):
    ests = [local_complexity(net, points, sigma=SIGMA, n_samples=N_DEF, method="definition", eps=e, rng=1,
                             progress=False) for e in EPSS]  # fmt: skip
    return np.array([e.mean for e in ests]), np.array([e.stderr for e in ests])


# %%
# (a) One hidden layer: exact at every eps
# ----------------------------------------
eps_fine = np.geomspace(EPSS.min() / 2, EPSS.max() * 1.2, 40)
exact_eps = [
    closed_form.one_layer_2d_density_eps(points, W=W, beta=beta, sigma=SIGMA, eps=e).mean() for e in eps_fine
]
exact_lim = closed_form.one_layer_2d_density(points, W=W, beta=beta, sigma=SIGMA).mean()
m_a, s_a = definition_curve(shallow)
thm_a = local_complexity(shallow, points, sigma=SIGMA, n_samples=4, rng=0, progress=False)

# %%
# (b) A deeper network: against Theorem 2
# ---------------------------------------
m_b, s_b = definition_curve(deep)
thm_b = local_complexity(deep, points, sigma=SIGMA, n_samples=100, rng=0, progress=False)
for e, m, s in zip(EPSS, m_b, s_b, strict=True):
    print(f"eps={e:<6g} definition {m:.3f} +- {s:.3f}   (Theorem 2: {thm_b.mean:.3f} +- {thm_b.stderr:.3f})")

# %%
# Figure
# ------
fig, axes = plt.subplots(1, 2, figsize=(10, 3.9), layout="constrained")
ax = axes[0]
ax.plot(eps_fine, exact_eps, color="k", lw=1, label=r"exact $\mathbb{E}$ at $\varepsilon$")
ax.axhline(exact_lim, color="k", ls=":", lw=1, label=r"$\varepsilon \to 0$ limit (closed form)")
ax.plot(EPSS, np.full(EPSS.size, thm_a.mean), "s", mfc="none", color="#009E73", label="Theorem 2")
ax.set_title("(a) one hidden layer")
axes[1].axhline(thm_b.mean, color="#009E73", lw=1.2, label=r"Theorem 2 ($\pm 2$ s.e.)")
axes[1].axhspan(
    thm_b.mean - 2 * thm_b.stderr, thm_b.mean + 2 * thm_b.stderr, color="#009E73", alpha=0.2, lw=0
)
axes[1].set_title(r"(b) $2 \to 8 \to 8 \to 1$ ReLU network")
for ax, m, s in ((axes[0], m_a, s_a), (axes[1], m_b, s_b)):
    ax.errorbar(EPSS, m, yerr=2 * s, fmt="o", color="#D55E00", capsize=3, label=r"definition ($\pm 2$ s.e.)")
    ax.set_xscale("log")
    ax.set_xticks(EPSS, [f"{e:g}" for e in EPSS])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(r"ball radius $\varepsilon$")
    ax.set_ylabel(r"LC $= \mathbb{E}_x[f(x)]$")
    ax.legend(frameon=False, loc="lower left")
fig.suptitle(rf"definition (eq. 3) at finite $\varepsilon$ vs Theorem 2, $\sigma={SIGMA:g}$")
fig.savefig(OUT / "eps_convergence.png", dpi=90)

if matplotlib.get_backend().lower() != "agg":
    plt.show()
