"""
Hanin & Rolnick's scaling: regions grow like (#neurons)^2, not exponentially
============================================================================

Hanin & Rolnick (ICML 2019) show that for networks at initialisation the
number of linear regions meeting a fixed set grows like
``(#neurons)^{n_in}``, whatever the depth, and that the distance from a
point to the nearest region boundary shrinks like ``1 / #neurons``. Here,
on the box ``K = [-1, 1]^2``, for random ReLU networks of depth 1, 2 and 3
and growing width (He-initialised weights, biases ``N(0, 0.3^2)``):

* left: the number of locus vertices in ``K`` (exact, from the enumeration)
  against the expectation from Theorem 6 with k = 2 (the integral of
  :func:`regiongeom.vertex_density`, the biases being the noise), and the
  number of linear regions; the dotted line has slope 2;
* right: the mean distance from a point of ``K`` to the locus times the
  number of neurons (roughly flat), with ``1 / (2 f)``, the mean distance to
  a field of random lines of length ``f`` per unit area (``f`` from
  Theorem 2/6 with k = 1), and Corollary 8's lower bound.
"""

# %%
# Setup
# -----
import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

import regiongeom as rg

OUT = Path(os.environ.get("REGIONGEOM_GALLERY_OUT", "gallery_out"))
OUT.mkdir(parents=True, exist_ok=True)
FULL = os.environ.get("REGIONGEOM_GALLERY_FULL", "") == "1"
BOX = (-1.0, -1.0, 1.0, 1.0)
SIGMA_B = 0.3
WIDTHS = [4, 8, 16, 24, 32, 48] if FULL else [4, 8, 16, 32]
DEPTHS = [1, 2, 3]
SEEDS = range(4 if FULL else 2)


def random_relu_net(depth, width, seed):
    """He-initialised weights; zero biases (the random biases are the noise)."""
    rng = np.random.default_rng(seed)
    ws, d = [], 2
    for _ in range(depth):
        ws.append(rng.normal(size=(width, d)) * np.sqrt(2.0 / d))
        d = width
    ws.append(rng.normal(size=(1, d)) / np.sqrt(d))
    bs = [np.zeros(w.shape[0]) for w in ws]
    return rg.Network.from_arrays(ws, bs, ["relu"] * depth + [None])


# %%
# Measure and predict
# -------------------
grid = rg.grid_points(BOX, 6)  # coarse points for the Theorem 6 integrals
probe = rg.grid_points(BOX, 64)  # points for the mean distance
rows = []
for depth in DEPTHS:
    for width in WIDTHS:
        for seed in SEEDS:
            net = random_relu_net(depth, width, seed)
            gen = np.random.default_rng(100 + seed)
            biases = [gen.normal(0, SIGMA_B, w.shape[0]) if a is not None else b
                      for w, b, a in zip(net.weights, net.biases, net.activations)]  # fmt: skip
            drawn = net.with_biases(biases)
            rm = rg.activation_regions(drawn, BOX)
            loc = rg.nonlinear_locus(rm)
            far = rg.nonlinear_locus(rg.activation_regions(drawn, (-2, -2, 2, 2)))
            v = rg.vertex_density(net, grid, sigma=SIGMA_B, n_samples=4, rng=seed).mean.mean() * 4.0
            f = rg.lc_density(net, grid, sigma=SIGMA_B, n_samples=4, rng=seed, progress=False).mean.mean()
            rows.append((depth, depth * width, len(rg.locus_vertices(loc)), v, len(rg.linear_regions(rm)),
                         far.distance(probe).mean(), f))  # fmt: skip
rows = np.array(rows)
bound = rg.corollary8_bound(random_relu_net(2, 16, 0), BOX, sigma=SIGMA_B, n_points=64, n_samples=4, rng=0)
print(f"Corollary 8 on a 2 x 16 net: E[d] = {bound.lhs:.4f} >= {bound.rhs:.2e}")

# %%
# The figure
# ----------
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
colors = {1: "#0072B2", 2: "#D55E00", 3: "#009E73"}
for depth in DEPTHS:
    r = rows[rows[:, 0] == depth]
    n = np.unique(r[:, 1])
    means = np.array([r[r[:, 1] == k].mean(axis=0) for k in n])  # over the seeds
    c = colors[depth]
    axes[0].plot(n, means[:, 2], "o", color=c, label=f"depth {depth}: vertices (exact)")
    axes[0].plot(n, means[:, 3], "-", color=c, label=f"depth {depth}: Theorem 6")
    axes[0].plot(n, means[:, 4], "s", mfc="none", color=c, ms=5, label=f"depth {depth}: linear regions")
    axes[1].plot(n, means[:, 5] * n, "o-", color=c, label=f"depth {depth}: mean distance x N")
    axes[1].plot(n, n / (2 * means[:, 6]), ":", color=c, label=f"depth {depth}: N / (2 f)")
n_all = np.unique(rows[:, 1])
axes[0].plot(n_all, 0.5 * n_all**2, "k:", label=r"$\propto N^2$")
axes[0].set(xscale="log", yscale="log", xlabel="number of neurons N", ylabel="count in K",
            title="vertices and regions in K = [-1, 1]^2")  # fmt: skip
axes[1].plot([32], [bound.rhs * 32], "kv", label="Corollary 8 lower bound x N (a 2 x 16 net)")
axes[1].set(xscale="log", xlabel="number of neurons N", ylabel="E[distance to locus] x N",
            title="distance to the locus ~ 1 / N")  # fmt: skip
axes[1].set_ylim(0, None)
for ax in axes:
    ax.legend(fontsize=6.5, ncol=2)
fig.savefig(OUT / "hanin_rolnick_scaling.png", dpi=80, pil_kwargs={"optimize": True})

if matplotlib.get_backend().lower() != "agg":
    plt.show()
