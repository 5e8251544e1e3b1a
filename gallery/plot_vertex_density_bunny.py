"""
Vertices of the locus of the bunny network (Hanin & Rolnick, k = 2)
===================================================================

Next to Figure 1: the nonlinear locus of the bunny network is a union of
line pieces (k = 1 of Hanin & Rolnick's Theorem 6, the local complexity
density ``f(x)``), and the points where pieces of two distinct neurons meet
are its vertices (k = 2). With the same bias noise as Figure 1
(``sigma = 0.05``), :func:`regiongeom.vertex_density` gives the expected
number of vertices per unit area, ``v(x)``: for each noise sample the exact
sum over pairs of neurons of ``|det[grad z_i; grad zhat_j]|`` times the two
bias densities at their breakpoints, both neurons good (``zhat_j``: neuron
``j``'s input with ``i`` pinned at its breakpoint).

Left: the regions with the locus (black) and its vertices (dots). Middle:
``f(x)`` (Theorem 2, lines per unit length). Right: ``v(x)``. The vertices
cluster where many lines meet; along lone lines ``f`` is high but ``v`` is
not. ``REGIONGEOM_GALLERY_FULL=1`` uses a finer grid and more samples (a few
minutes); the default takes about half a minute.
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
from regiongeom.datasets import DEFAULT_DOMAIN, DEFAULT_SIGMA

OUT = Path(os.environ.get("REGIONGEOM_GALLERY_OUT", "gallery_out"))
OUT.mkdir(parents=True, exist_ok=True)
FULL = os.environ.get("REGIONGEOM_GALLERY_FULL", "") == "1"
GRID, N_SAMPLES = (96, 32) if FULL else (40, 6)

net = rg.default_network()
rm = rg.activation_regions(net, DEFAULT_DOMAIN)
loc = rg.nonlinear_locus(rm)
verts = rg.locus_vertices(loc)
x0, y0, x1, y1 = DEFAULT_DOMAIN
print(f"{len(rm)} regions, locus length {loc.volume():.1f}, {len(verts)} vertices")
print(
    f"per unit area: {loc.volume() / ((x1 - x0) * (y1 - y0)):.1f} length, {len(verts) / ((x1 - x0) * (y1 - y0)):.1f} vertices"
)

# %%
# Both densities on a grid
# ------------------------
pts = rg.grid_points(DEFAULT_DOMAIN, GRID)
f = rg.lc_density(net, pts, sigma=DEFAULT_SIGMA, n_samples=N_SAMPLES, rng=0, progress=False)
v = rg.vertex_density(net, pts, sigma=DEFAULT_SIGMA, n_samples=N_SAMPLES, rng=0)
area = (x1 - x0) * (y1 - y0)
print(f"mean f = {f.mean.mean():.1f} (expected locus length per unit area)")
print(
    f"mean v = {v.mean.mean():.1f} (expected vertices per unit area), relative stderr {np.median(v.stderr / np.maximum(v.mean, 1e-300)):.2f}"
)

# %%
# The figure
# ----------
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), layout="constrained")
rg.plot_regions(rm, ax=axes[0], color_by="linear")
axes[0].plot(verts[:, 0], verts[:, 1], ".", color="#D55E00", ms=2.5)
axes[0].set_title("linear regions, locus and its vertices")
rg.plot_density(f, DEFAULT_DOMAIN, ax=axes[1], label=r"$f(x)$")
axes[1].set_title(r"local complexity $f(x)$ (k = 1)")
rg.plot_density(v, DEFAULT_DOMAIN, ax=axes[2], label=r"$v(x)$", cmap="viridis")
axes[2].set_title(r"vertex density $v(x)$ (k = 2)")
for ax in axes:
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
fig.savefig(OUT / "vertex_density_bunny.png", dpi=80, pil_kwargs={"optimize": True})

if matplotlib.get_backend().lower() != "agg":
    plt.show()
