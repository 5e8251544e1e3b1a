"""
Figure 1: linear regions and local complexity of the bunny network
==================================================================

The paper's Figure 1 (Patel & Montúfar) shows, side by side, the linear
regions of a ReLU network trained to draw an image of the Stanford Bunny
(nonlinear locus in black, regions in random colours) and a heat map of the
local complexity density ``f(x)``. Here the network is the one embedded in
regiongeom (``2 -> 32 -> 32 -> 32 -> 1``, fitted to a procedural bunny
silhouette by ``gallery/train_default_network.py``).

The heat map is the local complexity density ``f(x)`` of Theorem 2 with
bias noise ``sigma = 0.05``. The paper's own Figure 1 (Appendix B.1) shows
the upper bound of eq. (40), Theorem 2 without the good-neuron indicator:
``figure1(..., good=False)`` draws that, and says so in the panel's title.
On this network the two agree to rounding error: in a test over the box the
good-neuron indicator was 1 wherever the noise put a breakpoint.

Set ``REGIONGEOM_GALLERY_FULL=1`` for the publication settings (a finer grid
and more noise samples, about a minute); the default takes a few seconds.
"""

# %%
# Setup
# -----
import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

import regiongeom as rg
from regiongeom.complexity import local_complexity
from regiongeom.datasets import DEFAULT_DOMAIN, DEFAULT_SIGMA, bunny_image, default_network
from regiongeom.plotting import figure1

OUT = Path(os.environ.get("REGIONGEOM_GALLERY_OUT", "gallery_out"))
OUT.mkdir(parents=True, exist_ok=True)
FULL = os.environ.get("REGIONGEOM_GALLERY_FULL", "") == "1"
GRID, N_SAMPLES = (200, 64) if FULL else (96, 16)

net = default_network()
print(net)

# %%
# The target and the network's function
# --------------------------------------
x0, y0, x1, y1 = DEFAULT_DOMAIN
values = net(rg.grid_points(DEFAULT_DOMAIN, 128))[:, 0].reshape(128, 128)
fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.6), layout="constrained")
axes[0].imshow(bunny_image(128), cmap="gray_r", extent=(x0, x1, y0, y1))
axes[0].set_title("target silhouette")
im = axes[1].imshow(values, origin="lower", cmap="gray_r", extent=(x0, x1, y0, y1), vmin=0, vmax=1)
axes[1].set_title(r"network output $\mathcal{N}(x)$")
for ax in axes:
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.03)
fig.savefig(OUT / "bunny_target.png", dpi=90)

# %%
# Regions, locus and local complexity
# -----------------------------------
rm = rg.activation_regions(net, DEFAULT_DOMAIN)
loc = rg.nonlinear_locus(rm)
lr = rg.linear_regions(rm)
lc = local_complexity(
    net, rg.grid_points(DEFAULT_DOMAIN, 32), sigma=DEFAULT_SIGMA, n_samples=8, rng=0, progress=False
)
print(f"{len(rm)} activation regions, {len(lr)} linear regions, locus length {loc.volume():.1f}")
print(f"LC over the domain (Theorem 2, sigma={DEFAULT_SIGMA}): {lc.mean:.2f} +- {lc.stderr:.2f}")

# %%
# Figure 1
# --------
fig, axes = figure1(net, DEFAULT_DOMAIN, sigma=DEFAULT_SIGMA, n_samples=N_SAMPLES, shape=GRID, rng=0,
                    progress=False)  # fmt: skip
fig.savefig(OUT / "figure1_bunny.png", dpi=80 if FULL else 70, pil_kwargs={"optimize": True})

if matplotlib.get_backend().lower() != "agg":
    plt.show()
