"""
Max units: a maxout network and a CNN with max pooling, exactly
===============================================================

A max unit ``max(z_1, ..., z_k)`` is piecewise linear: its pieces are the
cells where one of its inputs is the largest, and its breakpoints are the
lines where two inputs tie. Left: a random maxout network ``2 -> 3 x 8`` units
of rank 3 (``rg.Network.maxout``) on a box; each activation region is one
combination of winners (its colour), and the nonlinear locus is drawn where
the gradient jumps. Right: a small CNN with max pooling (``conv 4 3x3 -> ReLU
-> MaxPool 2 stride 1 -> conv 8 3x3 stride 2 -> ReLU -> Linear 10``, pooling
windows that overlap) trained for a few seconds on scikit-learn's digits, on
the plane through three images, zoomed onto a box around the first image (a 0):
the locus where a ReLU switches is black, the locus where a pooling window's
winner changes is orange.
"""

# %%
# Setup
# -----
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import regiongeom as rg  # noqa: E402
from regiongeom.images import digits  # noqa: E402

OUT = Path(os.environ.get("REGIONGEOM_GALLERY_OUT", "gallery_out"))
OUT.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)
torch.manual_seed(0)
TIE = "tab:orange"

# %%
# A random maxout network
# -----------------------
rng = np.random.default_rng(0)
widths, k = [2, 8, 8, 8], 3
weights = [rng.standard_normal((k * widths[i + 1], widths[i])) / np.sqrt(widths[i]) for i in range(3)]
biases = [0.3 * rng.standard_normal(k * widths[i + 1]) for i in range(3)]
weights.append(rng.standard_normal((1, widths[-1])))
biases.append(np.zeros(1))
maxout = rg.Network.maxout(weights, biases, k)
rm_maxout = rg.activation_regions(maxout, (-2, -2, 2, 2))
loc_maxout = rg.nonlinear_locus(rm_maxout)

# %%
# A CNN with max pooling, trained on the digits
# ---------------------------------------------
images, labels = digits()  # (1797, 1, 8, 8) in [0, 1]
model = nn.Sequential(
    nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2, stride=1),
    nn.Conv2d(4, 8, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 2 * 2, 10),
).double()  # fmt: skip
X, Y = torch.from_numpy(images), torch.from_numpy(labels)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for _step in range(150):  # full batch, a few seconds
    opt.zero_grad()
    nn.functional.cross_entropy(model(X), Y).backward()
    opt.step()
model.eval()
with torch.no_grad():
    accuracy = float((model(X).argmax(1) == Y).double().mean())
idx = [int(np.flatnonzero(labels == c)[0]) for c in (0, 4, 7)]
net = rg.from_torch(model, input_shape=(1, 8, 8))
plane = rg.Plane.through(*images[idx])
u0, v0 = plane.points[0]
box = (u0 - 0.5, v0 - 0.5, u0 + 0.5, v0 + 0.5)  # a box of side 1.0 (input-space units) around the 0
rm_cnn = rg.activation_regions(net.restrict(plane), box)
loc_cnn = rg.nonlinear_locus(rm_cnn)
pooled = rg.plotting.max_unit_neurons(net)[loc_cnn.neurons]

# %%
# The figure
# ----------
fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
rg.plot_regions(rm_maxout, ax=axes[0], tie_color=TIE)
axes[0].set_title(f"maxout 2 -> 3 x 8 (rank 3): {len(rm_maxout):,} regions,\n"
                  f"locus {loc_maxout.volume():.1f} long (all of it max-unit ties)")  # fmt: skip
rg.plot_regions(rm_cnn, ax=axes[1], tie_color=TIE, points=plane.points[:1], point_labels=labels[idx[:1]],
                linewidth=1.0)
axes[1].set_title(f"CNN with max pooling (accuracy {accuracy:.0%}): {len(rm_cnn):,} regions,\n"
                  f"locus: ReLU {loc_cnn.lengths[~pooled].sum():.1f} (black), "
                  f"max pool {loc_cnn.lengths[pooled].sum():.1f} ({TIE[4:]})")  # fmt: skip
axes[1].set_xlabel("plane coordinate 1 (the 0 at the marked point)")
axes[1].set_ylabel("plane coordinate 2")
fig.savefig(OUT / "max_units.png", dpi=80)
print(f"maxout {len(rm_maxout)} regions; CNN {len(rm_cnn)} regions, {pooled.sum()} of "
      f"{len(loc_cnn)} locus edges from max pooling, accuracy {accuracy:.3f}")
if "agg" not in matplotlib.get_backend().lower():
    plt.show()
