"""
The density without the bias density rho (Figure 6)
===================================================

Several of the paper's bounds (Corollary 3 and after) drop the factor
``rho_b(z_i(x))`` from Theorem 2 and keep only the gradient norms:

``f_hat(x) = sum_i E[||grad z_i(x)||]``   (eq. 41)

This no longer localises on the locus: every neuron contributes everywhere,
weighted by how fast its preactivation changes. The paper's Figure 6 shows
that it still resembles the structure of the linear regions. Left: the
estimator of Figure 1 (eq. 40, with ``rho``); right: eq. (41), both on the
embedded bunny network with ``sigma = 0.05`` and without the good-neuron
indicator.
"""

# %%
# Setup
# -----
import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

import regiongeom as rg
from regiongeom.complexity import lc_density
from regiongeom.datasets import DEFAULT_DOMAIN, DEFAULT_SIGMA, default_network
from regiongeom.plotting import plot_density

OUT = Path(os.environ.get("REGIONGEOM_GALLERY_OUT", "gallery_out"))
OUT.mkdir(parents=True, exist_ok=True)
GRID, N_SAMPLES = 80, 12

net = default_network()
points = rg.grid_points(DEFAULT_DOMAIN, GRID)

# %%
# With and without rho
# --------------------
with_rho = lc_density(
    net, points, sigma=DEFAULT_SIGMA, n_samples=N_SAMPLES, good=False, rng=0, progress=False
)
without = lc_density(net, points, sigma=DEFAULT_SIGMA, n_samples=N_SAMPLES, good=False, rho=False, rng=0,
                     progress=False)  # fmt: skip

fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
plot_density(with_rho, DEFAULT_DOMAIN, ax=axes[0], label="$f(x)$")
axes[0].set_title(r"with $\rho$ (eq. 40): $\Sigma_i\, \mathbb{E}[\|\nabla z_i\|\,\rho_{b_i}(z_i)]$")
plot_density(without, DEFAULT_DOMAIN, ax=axes[1], cmap="viridis", label=r"$\hat f(x)$")
axes[1].set_title(r"without $\rho$ (eq. 41): $\Sigma_i\, \mathbb{E}[\|\nabla z_i\|]$")
fig.savefig(OUT / "density_without_rho.png", dpi=80)
print(f"mean over the box: with rho {with_rho.mean.mean():.2f}, without rho {without.mean.mean():.2f}")

if matplotlib.get_backend().lower() != "agg":
    plt.show()
