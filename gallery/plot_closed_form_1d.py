"""
Theorem 2 against hand-worked closed forms
==========================================

For two tiny one-input networks the local complexity density has a closed
form (Patel & Montúfar, Appendix A.2), with every neuron's bias noisy,
``b ~ N(beta, sigma^2)``:

* one neuron, ``N(x) = relu(w x - beta)``: ``f(x) = |w| rho_b(w x)``;
* a chain of two neurons, ``N(x) = relu(w2 relu(w1 x - beta1) - beta2)``:
  neuron 1's breakpoint counts only when neuron 2 is active there (it is
  "good"), neuron 2's only where it exists.

We estimate ``f`` two ways and compare with the closed form: Theorem 2
(eq. 6, Monte Carlo over the noise of the *other* neurons, so it is exact
for the single neuron) and the definition (eq. 3: the expected number of
locus points in ``[x - eps, x + eps]`` divided by ``2 eps``, at a finite
``eps``). The shaded bands are two standard errors.
"""

# %%
# Setup
# -----
# Networks use the torch convention ``W h + b``; the paper writes
# ``w x - beta``, so the bias is ``-beta``.
import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

import regiongeom as rg
from regiongeom import closed_form
from regiongeom.complexity import lc_density
from regiongeom.plotting import plot_density_1d

OUT = Path(os.environ.get("REGIONGEOM_GALLERY_OUT", "gallery_out"))
OUT.mkdir(parents=True, exist_ok=True)

SIGMA, EPS = 0.3, 0.06
x = np.linspace(-0.75, 1.5, 91)

w, beta = 1.5, 0.3
single = rg.Network.from_arrays([[[w]], [[1.0]]], [[-beta], [0.0]], ["relu", None])

w1, w2, beta1, beta2 = 1.2, 0.9, 0.2, 0.1
chain = rg.Network.from_arrays([[[w1]], [[w2]]], [[-beta1], [-beta2]], ["relu", "relu"])

# %%
# Estimates
# ---------
# Theorem 2 needs few samples; the definition counts rare events in a small
# ball and needs many more.
cases = {
    "one neuron": (single, closed_form.single_neuron_density(x, w=w, beta=beta, sigma=SIGMA)),
    "two-neuron chain": (
        chain,
        closed_form.two_layer_chain_density(x, w1=w1, w2=w2, beta1=beta1, beta2=beta2, sigma=SIGMA),
    ),
}
results = {}
for name, (net, exact) in cases.items():
    thm = lc_density(net, x, sigma=SIGMA, n_samples=400, rng=0, progress=False)
    dfn = lc_density(net, x, sigma=SIGMA, n_samples=2000, method="definition", eps=EPS, rng=1, progress=False)
    results[name] = (thm, dfn, exact)
    for label, est in (("theorem2", thm), ("definition", dfn)):
        z = np.abs(est.mean - exact) / np.maximum(est.stderr, 1e-12)
        err = np.abs(est.mean - exact).max()
        print(f"{name:17s} {label:10s}: max |error| {err:.4f}, median |z| {np.median(z):.2f}")

# %%
# Figure
# ------
# Theorem 2 is exact for the single neuron, so its curve hides under the
# closed form there.
fig, axes = plt.subplots(1, 2, figsize=(10, 4.0), layout="constrained")
for ax, (name, (thm, dfn, exact)) in zip(axes, results.items(), strict=True):
    plot_density_1d(
        x,
        {"Theorem 2": thm, rf"definition, $\varepsilon={EPS:g}$": dfn},
        closed_form=exact,
        ax=ax,
        legend=False,
    )
    ax.set_title(f"{name}, $\\sigma={SIGMA:g}$")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncol=3, frameon=False)
fig.savefig(OUT / "closed_form_1d.png", dpi=110)

if matplotlib.get_backend().lower() != "agg":
    plt.show()
