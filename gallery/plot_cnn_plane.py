"""
A convolutional digits classifier on a plane through three images
=================================================================

The same view as the MLP's, for a CNN written as a custom torch Module:
``conv 4 3x3 -> BatchNorm -> ReLU -> conv 8 3x3 stride 2 -> ReLU -> flatten ->
Linear 10`` on scikit-learn's 8 x 8 digits, trained for a few seconds.
``rg.from_torch(model, input_shape=(1, 8, 8))`` traces it with torch.fx into a
graph network (BatchNorm folded into the convolution, which stays a
convolution); ``restrict(plane)`` gives the exact network on the plane, and
its regions are enumerated exactly, as for an MLP. Left: activation regions
with the nonlinear locus and the decision boundary (red); right: the logit
of each image's class along the plane, with the same boundary.
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


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 8, 3, stride=2), nn.ReLU()
        )  # fmt: skip
        self.head = nn.Linear(8 * 2 * 2, 10)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


images, labels = digits()  # (1797, 1, 8, 8) in [0, 1]
model = DigitsCNN().double()
X, Y = torch.from_numpy(images), torch.from_numpy(labels)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for _step in range(200):  # full batch, a few seconds
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model(X), Y)
    loss.backward()
    opt.step()
model.eval()
with torch.no_grad():
    accuracy = float((model(X).argmax(1) == Y).double().mean())

# %%
# Exact regions on the plane through a 0, a 4 and a 7
# ---------------------------------------------------
idx = [int(np.flatnonzero(labels == c)[0]) for c in (0, 4, 7)]
net = rg.from_torch(model, input_shape=(1, 8, 8))
plane = rg.Plane.through(*images[idx])
domain = plane.bounds(margin=0.05)
rm = rg.activation_regions(net.restrict(plane), domain)
loc = rg.nonlinear_locus(rm)

# %%
# The figure
# ----------
fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
rg.plot_regions(rm, ax=axes[0], points=plane.points, point_labels=labels[idx], decision_boundary=True)
axes[0].set_title(f"{len(rm):,} activation regions, locus {loc.volume():.0f} long")
uv = rg.grid_points(domain, 200)
logits = net.restrict(plane)(uv)
top = logits.argmax(axis=1).reshape(200, 200)
x0, y0, x1, y1 = domain
axes[1].imshow(top, origin="lower", extent=(x0, x1, y0, y1), cmap="tab10", vmin=0, vmax=9, alpha=0.55,
               interpolation="nearest")  # fmt: skip
rg.plot_regions(rm, ax=axes[1], locus=False, alpha=0.0, points=plane.points, decision_boundary=True)
for (u, v), c in zip(plane.points, labels[idx]):
    axes[1].annotate(str(c), (u, v), xytext=(6, 6), textcoords="offset points", fontsize=12, weight="bold")
classes = np.unique(top)
handles = [plt.Rectangle((0, 0), 1, 1, color=plt.get_cmap("tab10")(c), alpha=0.55) for c in classes]
axes[1].legend(handles, [str(c) for c in classes], title="predicted", loc="upper right", fontsize="small")
axes[1].set_title("predicted class (colour) and the exact decision boundary")
for ax in axes:
    ax.set_xlabel("plane coordinate 1")
    ax.set_ylabel("plane coordinate 2")
fig.suptitle(f"A CNN (accuracy {accuracy:.0%}) on the plane through three digit images")
fig.savefig(OUT / "cnn_plane.png", dpi=80)
print(f"{len(rm)} regions, locus length {loc.volume():.1f}, accuracy {accuracy:.3f}")
if "agg" not in matplotlib.get_backend().lower():
    plt.show()
