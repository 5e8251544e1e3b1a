"""
Local rank and local complexity while learning a Gaussian map (Figure 2)
========================================================================

Patel & Montúfar's Figure 2 trains a 4 x 200 ReLU MLP to map samples of one
Gaussian to a correlated Gaussian (input dimension 100, output 2, a random
cross-covariance) and tracks the local complexity ``LC`` and the local rank
``LR_l`` of every hidden layer (Definition 4: the mean rank of the Jacobian
of the layer's pre-activations at the data). Theorem 5 ties them together.
This is a miniature: input dimension 12, a ``12 -> 4 x 48 -> 2`` MLP, Adam,
a few thousand steps, measured with ``rg.Tracker`` every 150 steps on 200
held-out points (``sigma = 0.1``, 8 noise samples).
"""

# %%
# Data: two jointly Gaussian vectors
# ----------------------------------
# ``(X, Y)`` jointly Gaussian, ``X ~ N(0, I_12)``, ``Y = C^T X + noise`` with
# a random cross-covariance ``C`` (``||C||_op = 0.9``), so ``Y ~ N(0, I_2)``.
import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

import regiongeom as rg

OUT = Path(os.environ.get("REGIONGEOM_GALLERY_OUT", "gallery_out"))
OUT.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)  # a small model: one intra-op thread is the fastest on a busy machine
D_IN, D_OUT, WIDTH, STEPS, EVERY, EPS = 12, 2, 48, 3000, 150, 0.1

rng = np.random.default_rng(0)
C = rng.normal(size=(D_IN, D_OUT))
C *= 0.9 / np.linalg.norm(C, 2)
noise_cov = np.eye(D_OUT) - C.T @ C
L_noise = np.linalg.cholesky(noise_cov)


def sample(n):
    x = rng.normal(size=(n, D_IN))
    return x, x @ C + rng.normal(size=(n, D_OUT)) @ L_noise.T


x_train, y_train = sample(2000)
x_test, _ = sample(200)

# %%
# Training with a tracker
# -----------------------
torch.manual_seed(0)
layers, d = [], D_IN
for _ in range(4):
    layers += [nn.Linear(d, WIDTH), nn.ReLU()]
    d = WIDTH
model = nn.Sequential(*layers, nn.Linear(d, D_OUT))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
X, Y = torch.tensor(x_train, dtype=torch.float32), torch.tensor(y_train, dtype=torch.float32)
tr = rg.Tracker(x_test, every=EVERY, sigma=0.1, n_samples=8, measures=("local_complexity", "local_rank"),
                rank_eps=EPS)  # fmt: skip
g = torch.Generator().manual_seed(0)
for step in range(STEPS + 1):
    idx = torch.randint(0, len(X), (128,), generator=g)
    loss = ((model(X[idx]) - Y[idx]) ** 2).mean()
    tr.log(model, step, loss=loss.item())
    opt.zero_grad()
    loss.backward()
    opt.step()
h = tr.history
print(f"loss {h.column('loss')[0]:.3f} -> {h.column('loss')[-1]:.3f}; "
      f"LC {h.column('local_complexity')[0]:.2f} -> {h.column('local_complexity')[-1]:.2f}; "
      f"LR {[h.column(f'local_rank_{k}')[-1] for k in range(1, 5)]}")  # fmt: skip

# %%
# Figure
# ------
# Left: ``LC`` (with two standard errors of its noise estimate). Then the
# exact local rank of each hidden layer (bounded by the input dimension 12)
# and the approximate one ``LR^eps`` of Appendix A.5 (singular values above
# ``eps = 0.1``), and the loss.
fig, axes = plt.subplots(1, 4, figsize=(15, 3.4), layout="constrained")
tr.plot(axes=axes[:3])
axes[1].set_ylabel("local rank (exact)")
axes[2].set_ylabel(f"singular values > {EPS:g}")
axes[0].set_ylabel("LC at the test points")
axes[3].semilogy(h.column("step"), h.column("loss"), color="k")
axes[3].set_title("training loss (mini-batch)")
axes[3].set_xlabel("step")
fig.savefig(OUT / "figure2_local_rank.png", dpi=80)

if matplotlib.get_backend().lower() != "agg":
    plt.show()
