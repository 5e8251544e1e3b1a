"""
Local complexity, total variation and adversarial accuracy on digits (Figure 3)
==============================================================================

Patel & Montúfar's Figure 3 trains a 4 x 200 ReLU MLP on 1000 MNIST images,
initialised at twice the He scale, and finds the local complexity ``LC`` and
the total variation ``TV = E||grad_x N(x)||`` dropping late in training while
the accuracy under a PGD attack rises (Theorem 7 links ``TV`` and ``LC``).
This miniature uses scikit-learn's 8 x 8 digits (64 inputs in [0, 1]) and a
``64 -> 3 x 100 -> 10`` MLP with the same 2x He initialisation, Adam, 1000
training images, 3000 steps, and measures every 200 steps on 200 test images: ``LC``
(``sigma = 0.05``), ``TV`` with ``rg.Tracker``, and the accuracy under an
L-infinity PGD attack (radius 0.1, 10 steps) written in a few lines of torch.
"""

# %%
# Data and model
# --------------
import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import regiongeom as rg

OUT = Path(os.environ.get("REGIONGEOM_GALLERY_OUT", "gallery_out"))
OUT.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)  # a small model: one intra-op thread is the fastest on a busy machine
STEPS, EVERY, RADIUS = 3000, 200, 0.1

digits = load_digits()
x_all = (digits.data / 16.0).astype(np.float32)
perm = np.random.default_rng(0).permutation(len(x_all))
train, test = perm[:1000], perm[1000:1200]
X, Y = torch.tensor(x_all[train]), torch.tensor(digits.target[train])
XT, YT = torch.tensor(x_all[test]), torch.tensor(digits.target[test])

torch.manual_seed(0)
layers, d = [], 64
for _ in range(3):
    lin = nn.Linear(d, 100)
    nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
    with torch.no_grad():
        lin.weight.mul_(2.0)  # twice the He scale (Appendix B.3)
        lin.bias.zero_()
    layers += [lin, nn.ReLU()]
    d = 100
model = nn.Sequential(*layers, nn.Linear(d, 10))


# %%
# PGD in a few lines
# ------------------
# Projected gradient ascent on the loss in the L-infinity ball of radius
# ``RADIUS`` around each image (kept in [0, 1]), step ``RADIUS / 4``.
def pgd_accuracy(model, x, y, radius=RADIUS, steps=10):
    delta = torch.zeros_like(x, requires_grad=True)
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x + delta), y)
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta += radius / 4 * grad.sign()
            delta.clamp_(-radius, radius)
            delta.copy_((x + delta).clamp(0, 1) - x)
    with torch.no_grad():
        return (model(x + delta).argmax(1) == y).float().mean().item()


# %%
# Training with a tracker
# -----------------------
tr = rg.Tracker(XT.numpy(), every=EVERY, sigma=0.05, n_samples=8,
                measures=("local_complexity", "total_variation"))  # fmt: skip
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
g = torch.Generator().manual_seed(0)
for step in range(STEPS + 1):
    if step % EVERY == 0:
        with torch.no_grad():
            acc = (model(XT).argmax(1) == YT).float().mean().item()
        tr.log(model, step, accuracy=acc, pgd_accuracy=pgd_accuracy(model, XT, YT))
    idx = torch.randint(0, len(X), (100,), generator=g)
    loss = nn.functional.cross_entropy(model(X[idx]), Y[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
h = tr.history
print(f"test accuracy {h.column('accuracy')[-1]:.3f}, under PGD {h.column('pgd_accuracy')[-1]:.3f}; "
      f"LC {h.column('local_complexity').max():.1f} (max) -> {h.column('local_complexity')[-1]:.1f}; "
      f"TV {h.column('total_variation').max():.1f} (max) -> {h.column('total_variation')[-1]:.1f}")  # fmt: skip

# %%
# Figure
# ------
# ``LC`` and ``TV`` at the test images (left, middle) and the clean and PGD
# accuracies (right) against the step.
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
tr.plot(axes=axes[:2])
steps = h.column("step")
axes[2].plot(steps, h.column("accuracy"), marker="o", ms=3, label="clean")
axes[2].plot(steps, h.column("pgd_accuracy"), marker="o", ms=3, label=f"PGD, radius {RADIUS:g}")
axes[2].set_title("test accuracy")
axes[2].set_xlabel("step")
axes[2].legend(fontsize=8)
fig.savefig(OUT / "figure3_digits_robustness.png", dpi=80)

if matplotlib.get_backend().lower() != "agg":
    plt.show()
