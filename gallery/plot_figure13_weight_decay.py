"""
Weight decay and the local complexity (Figure 13)
=================================================

Patel & Montúfar's Figure 13 trains a one-hidden-layer MLP on MNIST with
several weight decays and finds the drop in local complexity ``LC`` coming
earlier for larger weight decay; against the weight-norm quantity of
eq. (17) the final ``LC`` falls on a line. ``rg.bounds.representation_cost``
returns the corrected bound of Proposition 8 / eq. (17),

    LC <= C_bias sum_l sqrt(n_l) prod_{k<=l} ||W_k||_F <= C_bias sum_l sqrt(n_l) (||theta||^2 / l)^{l/2},

both sides at the data (see its docstring for the derivation). Miniature:
sklearn's digits, a ``64 -> 200 -> 10`` MLP, AdamW with four weight decays,
``LC`` tracked every 200 steps on 100 test images (``sigma = 0.05``).
These 1000 steps stay far from the terminal phase the paper's drop belongs
to: here the four runs end with about the same ``LC``, while the bound,
which only sees the weight norms, shrinks with the decay.
"""

# %%
# Training runs
# -------------
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
STEPS, EVERY, SIGMA = 1000, 200, 0.05
DECAYS = (0.0, 0.05, 0.2, 0.5)

digits = load_digits()
x_all = (digits.data / 16.0).astype(np.float32)
perm = np.random.default_rng(2).permutation(len(x_all))
X, Y = torch.tensor(x_all[perm[:1000]]), torch.tensor(digits.target[perm[:1000]])
x_test = x_all[perm[1000:1100]].astype(np.float64)


def run(weight_decay):
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(64, 200), nn.ReLU(), nn.Linear(200, 10))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=weight_decay)
    tr = rg.Tracker(x_test, every=EVERY, sigma=SIGMA, n_samples=8, measures=("local_complexity",))
    g = torch.Generator().manual_seed(2)
    for step in range(STEPS + 1):
        tr.log(model, step)
        idx = torch.randint(0, len(X), (100,), generator=g)
        loss = nn.functional.cross_entropy(model(X[idx]), Y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    bound = rg.bounds.representation_cost(rg.from_torch(model), x_test, sigma=SIGMA, n_samples=4, rng=0)
    assert bound.holds
    print(f"weight decay {weight_decay:g}: LC {tr.history.column('local_complexity')[-1]:.1f}, "
          f"bound {bound.rhs:.1f}, theta-form {bound.constants['rhs_theta']:.1f}")  # fmt: skip
    return tr.history, bound


runs = {wd: run(wd) for wd in DECAYS}

# %%
# Figure
# ------
# Left: ``LC`` against the step for each weight decay. Right: the final
# ``LC`` against the ``||theta||`` form of the bound, with a least-squares
# line and its R^2 (four points: an illustration, not a statistic).
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
for wd, (h, _) in runs.items():
    axes[0].plot(
        h.column("step"), h.column("local_complexity"), marker="o", ms=3, label=f"weight decay {wd:g}"
    )
axes[0].set_xlabel("step")
axes[0].set_ylabel(f"LC at test images ($\\sigma = {SIGMA:g}$)")
axes[0].legend(fontsize=8)
xs = np.array([b.constants["rhs_theta"] for _, b in runs.values()])
ys = np.array([b.lhs for _, b in runs.values()])
slope, icpt = np.polyfit(xs, ys, 1)
r2 = 1 - np.sum((ys - (slope * xs + icpt)) ** 2) / np.sum((ys - ys.mean()) ** 2)
axes[1].scatter(xs, ys, c=[f"C{k}" for k in range(len(xs))], zorder=3)
axes[1].plot(np.sort(xs), slope * np.sort(xs) + icpt, color="k", lw=1, label=f"fit, $R^2 = {r2:.2f}$")
axes[1].set_xlabel("bound of eq. (17): $C_{bias} \\sqrt{n}\\, \\|\\theta\\|_F$")
axes[1].set_ylabel("final LC")
axes[1].legend(fontsize=8)
fig.savefig(OUT / "figure13_weight_decay.png", dpi=80)

if matplotlib.get_backend().lower() != "agg":
    plt.show()
