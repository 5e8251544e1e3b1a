"""
Both sides of Theorem 7 during training (Figure 9)
==================================================

Theorem 7 bounds the local complexity from below by the total variation:

    TV L c_eta / max_l C_l - xi_eta - B C_grad C_bias  <=  LC,

with ``C_l`` the Lipschitz constant of the network after layer ``l``. The
paper's Figure 9 plots the left side with the crude estimate of eq. (42),
``C_l ~ ||W_L ... W_{l+1}||_op``, next to ``LC`` while an MLP trains on MNIST
(``sigma = eta = 1``). ``rg.bounds.theorem7`` returns both sides, with the
constants made explicit: ``C_l`` as the largest local Lipschitz constant
``||dN/dz_l||_op`` at the evaluated points (a valid bound for the estimates),
``xi_eta`` as the exact term the proof drops, and ``B`` counted with the good
indicator of Theorem 2. Miniature: sklearn's digits, ``64 -> 3 x 100 -> 10``,
standard He initialisation, Adam, both sides on 100 test images every 250
steps.
"""

# %%
# Training and the two sides
# --------------------------
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
STEPS, EVERY, SIGMA, ETA = 3000, 250, 1.0, 1.0

digits = load_digits()
x_all = (digits.data / 16.0).astype(np.float32)
perm = np.random.default_rng(1).permutation(len(x_all))
X, Y = torch.tensor(x_all[perm[:1000]]), torch.tensor(digits.target[perm[:1000]])
x_test = x_all[perm[1000:1100]].astype(np.float64)

torch.manual_seed(1)
model = nn.Sequential(nn.Linear(64, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(),
                      nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10))  # fmt: skip
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
g = torch.Generator().manual_seed(1)
rows = []
for step in range(STEPS + 1):
    if step % EVERY == 0:
        b = rg.bounds.theorem7(rg.from_torch(model), x_test, sigma=SIGMA, eta=ETA, n_samples=4, rng=0)
        c = b.constants
        drop = c["xi_eta"] + c["B_term"]  # the terms the paper's Figure 9 leaves out
        rows.append((step, b.lhs, b.rhs, b.lhs + drop, c["lhs_eq42"] + drop, c["TV"], c["B"]))
        assert b.holds
    idx = torch.randint(0, len(X), (100,), generator=g)
    loss = nn.functional.cross_entropy(model(X[idx]), Y[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
step, lhs, lc, main, main42, tv, B = np.array(rows).T
print(f"LC {lc[0]:.2f} -> {lc[-1]:.2f}, left side {lhs[0]:.2f} -> {lhs[-1]:.2f}, "
      f"TV L c_eta / max C_l {main[0]:.2f} -> {main[-1]:.2f} (eq. 42: {main42[-1]:.2f}), B at most {B.max():g}")  # fmt: skip

# %%
# Figure
# ------
# Left: ``LC`` with the main term of the left side, ``TV L c_eta / max_l C_l``
# (the quantity of the paper's Figure 9), with ``C_l`` at the data and with
# the eq. (42) estimate (which ignores the activations, so it is not a bound).
# Middle: the whole left side of (13), ``xi_eta`` included: a valid bound,
# far below ``LC`` at ``eta = sigma = 1``. Right: ``TV``.
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), layout="constrained")
axes[0].plot(step, lc, marker="o", ms=3, color="k", label="LC")
axes[0].plot(step, main, marker="o", ms=3, label="$TV\\, L c_\\eta / \\max C_l$, $C_l$ at the data")
axes[0].plot(step, main42, marker="o", ms=3, ls="--", label="same, eq. (42) estimate of $C_l$")
axes[0].set_title(f"$\\sigma = {SIGMA:g}$, $\\eta = {ETA:g}$")
axes[0].set_yscale("log")
axes[1].plot(step, lc, marker="o", ms=3, color="k", label="LC (right side)")
axes[1].plot(step, lhs, marker="o", ms=3, color="C2", label="left side of (13)")
axes[1].set_title("Theorem 7, both sides")
axes[2].plot(step, tv, marker="o", ms=3, color="C3")
axes[2].set_title("total variation at the test images")
for ax in axes:
    ax.set_xlabel("step")
for ax in axes[:2]:
    ax.legend(fontsize=8)
fig.savefig(OUT / "figure9_theorem7.png", dpi=80)

if matplotlib.get_backend().lower() != "agg":
    plt.show()
