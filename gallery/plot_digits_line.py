"""
A digits classifier along the line between two images
=====================================================

On the segment from one digit image to another, a ReLU classifier is an
exactly piecewise-linear function of one variable. We train the
``64 -> 64 -> 64 -> 64 -> 10`` MLP of the plane example for a few seconds on
scikit-learn's 8 x 8 digits, restrict it to the line through a 3 and an 8
(``rg.Line.through``, unit speed: line coordinates are input-space distances),
and draw its ten logits along the line with the points of the nonlinear
locus, where the gradient jumps, marked underneath. The images at the two
ends and halfway (``line.lift``) are shown on top.
"""

# %%
# Setup and a short training
# --------------------------
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # torch and numba thread pools side by side

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
torch.set_num_threads(1)
torch.manual_seed(0)

x, y = load_digits(return_X_y=True)
x = (x / 16.0).astype(np.float32)
model = nn.Sequential(
    nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)
)  # fmt: skip
xt, yt = torch.from_numpy(x), torch.from_numpy(y)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for _step in range(300):
    opt.zero_grad()
    nn.functional.cross_entropy(model(xt), yt).backward()
    opt.step()

# %%
# The exact network on the line
# -----------------------------
a, b = int(np.flatnonzero(y == 3)[0]), int(np.flatnonzero(y == 8)[0])
line = rg.Line.through(x[a], x[b])
net = rg.from_torch(model).restrict(line)  # 1 input: the line coordinate t
lo, hi = line.bounds(margin=0.1)
rm = rg.activation_regions(net, (lo, hi))
loc = rg.nonlinear_locus(rm)
# the logits are linear between region ends, so the region ends draw them exactly
t = np.unique(rm.intervals)
logits = net(t)
print(f"{len(rm)} regions and {len(loc.points)} locus points on a line of length {line.points[1]:.2f}")

# %%
# The figure
# ----------
fig, axd = plt.subplot_mosaic([["a", "mid", "b"], ["main", "main", "main"]], figsize=(8, 6),
                              height_ratios=(1, 3.2), layout="constrained")  # fmt: skip
ax = axd["main"]
# the images at the 3, halfway and at the 8
for key, tt, name in (("a", 0.0, "the 3 ($t = 0$)"), ("mid", line.points[1] / 2, "halfway"),
                      ("b", line.points[1], f"the 8 ($t = {line.points[1]:.2f}$)")):  # fmt: skip
    axd[key].imshow(line.lift([tt]).reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    axd[key].set_title(name, fontsize=10)
    axd[key].set_axis_off()
colors = plt.get_cmap("tab10").colors
for k in range(10):
    thick = k in (3, 8)
    ax.plot(
        t, logits[:, k], color=colors[k], lw=2.2 if thick else 0.9, alpha=1.0 if thick else 0.6, label=str(k)
    )
bottom = float(logits.min()) - 0.08 * float(np.ptp(logits))
ax.plot(loc.points, np.full(len(loc.points), bottom), "|", color="k", ms=9, label="locus")
for p in line.points:
    ax.axvline(p, color="0.4", lw=0.8, ls="--")
ax.set_xlim(lo, hi)
ax.set_xlabel("line coordinate $t$ (input-space distance from the 3)")
ax.set_ylabel("logit")
ax.set_title(f"The logits from the 3 to the 8: {len(rm)} activation regions, {len(loc.points)} locus points (ticks)",
             fontsize=10)  # fmt: skip
ax.legend(ncols=2, fontsize="small", title="class", loc="center left", bbox_to_anchor=(1.0, 0.5))
fig.savefig(OUT / "digits_line.png", dpi=80)
if "agg" not in matplotlib.get_backend().lower():
    plt.show()
