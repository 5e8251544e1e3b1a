"""
Linear regions of a digits classifier on a plane through three images
=====================================================================

Hanin & Rolnick (2019, Figure 1) look at an MNIST classifier on the plane
through three training images: the plane is cut into linear regions, and the
count of regions near the data barely changes in training. This is their
figure in miniature, on scikit-learn's 8 x 8 digits (64 inputs) instead of
MNIST: a ``64 -> 64 -> 64 -> 64 -> 10`` ReLU MLP in torch, at initialisation
and after a few seconds of training. ``rg.Plane.through`` puts an orthonormal
frame on the plane, ``net.restrict(plane)`` gives the exact 2-input network
on it, and ``plot_regions`` marks the three images (coloured by their class)
and draws the exact decision boundary, where the top two logits tie.
"""

# %%
# Setup
# -----
# torch and regiongeom's numba kernels both run OpenMP thread pools; passive
# waiting keeps one from starving the other on a small machine.
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from torch import nn  # noqa: E402

import regiongeom as rg  # noqa: E402

OUT = Path(os.environ.get("REGIONGEOM_GALLERY_OUT", "gallery_out"))
OUT.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)  # a small model: one thread is fast and deterministic
torch.manual_seed(0)

x, y = load_digits(return_X_y=True)
x = (x / 16.0).astype(np.float32)  # pixel values in [0, 1]
# the first 0, 1 and 2 of the data set
idx = [int(np.flatnonzero(y == c)[0]) for c in (0, 1, 2)]

model = nn.Sequential(
    nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)
)  # fmt: skip

# %%
# Regions before and after training
# ---------------------------------
plane = rg.Plane.through(x[idx[0]], x[idx[1]], x[idx[2]])
domain = plane.bounds(margin=0.3)


def regions_on_plane(model):
    net = rg.from_torch(model)  # exact, float64
    return rg.activation_regions(net.restrict(plane), domain)


before = regions_on_plane(model)
xt, yt = torch.from_numpy(x), torch.from_numpy(y)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for _step in range(300):  # full batch, a few seconds
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model(xt), yt)
    loss.backward()
    opt.step()
accuracy = float((model(xt).argmax(1) == yt).float().mean())
after = regions_on_plane(model)

# %%
# The figure
# ----------
fig, axes = plt.subplots(1, 2, figsize=(10, 4.1), layout="constrained")
for ax, rm, title in zip(axes, (before, after), ("at initialisation", f"trained (accuracy {accuracy:.0%})")):
    rg.plot_regions(rm, ax=ax, points=plane.points, point_labels=y[idx], decision_boundary=True)
    ax.set_title(f"{title}: {len(rm)} regions")
    ax.get_legend().set_title("digit")
    ax.set_xlabel("plane coordinate 1")
    ax.set_ylabel("plane coordinate 2")
fig.suptitle("A 64-64-64-64-10 ReLU MLP on the plane through three digit images; decision boundary in red")
fig.savefig(OUT / "digits_plane.png", dpi=80)
print(f"regions: {len(before)} at initialisation, {len(after)} after training; accuracy {accuracy:.3f}")
if "agg" not in matplotlib.get_backend().lower():
    plt.show()
