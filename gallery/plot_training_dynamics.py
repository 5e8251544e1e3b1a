"""
Local complexity during training, with and without weight decay
===============================================================

Patel & Montúfar observe that the local complexity ``LC`` of a network at
the data drops late in training, in the terminal phase after the training
loss is already close to zero, and that weight decay makes the drop come
earlier and go further (their Figures 3 and 13). This is a pocket-sized
version: a ``2 -> 32 -> 32 -> 32 -> 1`` ReLU classifier on two noisy moons,
initialised at twice the He scale as in the paper, trained with full-batch
AdamW with weight decay 0 and 0.5. Every few steps we convert the torch
model with ``rg.from_torch`` and estimate ``LC`` over held-out points with
the estimator of the paper's Appendix B.1/B.3 (Theorem 2 without the good
indicator, eq. 40), ``sigma = 0.1``.

Both runs fit the training set within a hundred steps; only the one with
weight decay then simplifies its function near the data.
"""

# %%
# Setup
# -----
# regiongeom's numba kernels and torch both run OpenMP thread pools; idle
# threads of one busy-wait and starve the other (on a 2-core machine each
# training step became 100x slower). Passive waiting avoids that; it must
# be set before torch and numba start their threads.
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import regiongeom as rg  # noqa: E402
from regiongeom.complexity import local_complexity  # noqa: E402
from regiongeom.plotting import plot_regions  # noqa: E402

OUT = Path(os.environ.get("REGIONGEOM_GALLERY_OUT", "gallery_out"))
OUT.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)  # tiny model: one thread is fastest and deterministic
STEPS, EVERY, SIGMA = 1200, 100, 0.1
WEIGHT_DECAYS = (0.0, 0.5)


def moons(n, rng, noise=0.1):
    """Two interleaved half circles, centred and scaled to about [-1.4, 1.4] x [-0.9, 0.9]."""
    t = rng.uniform(0, np.pi, n)
    label = rng.integers(0, 2, n)
    upper = np.column_stack([np.cos(t), np.sin(t)])
    lower = np.column_stack([1 - np.cos(t), 0.5 - np.sin(t)])
    x = np.where(label[:, None] == 0, upper, lower)
    x = (x - [0.5, 0.25]) / 1.2 + noise * rng.normal(size=(n, 2))
    return x, label.astype(np.float32)


rng = np.random.default_rng(0)
x_train, y_train = moons(200, rng)
x_test, y_test = moons(200, rng)
DOMAIN = (-1.6, -1.2, 1.6, 1.2)

# %%
# Training with LC checkpoints
# ----------------------------


def make_model():
    torch.manual_seed(0)
    layers, d = [], 2
    for _ in range(3):
        lin = nn.Linear(d, 32)
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        with torch.no_grad():
            lin.weight.mul_(2.0)  # twice the He scale, as in the paper's Figure 3
            lin.bias.zero_()
        layers += [lin, nn.ReLU()]
        d = 32
    layers.append(nn.Linear(d, 1))
    return nn.Sequential(*layers)


def train(weight_decay):
    model = make_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=weight_decay)
    X, Y = torch.from_numpy(x_train).float(), torch.from_numpy(y_train)[:, None]
    hist = {"step": [], "lc": [], "lc_se": [], "loss": []}
    for step in range(STEPS + 1):
        loss = nn.functional.binary_cross_entropy_with_logits(model(X), Y)
        if step % EVERY == 0:
            lc = local_complexity(rg.from_torch(model), x_test, sigma=SIGMA, n_samples=8, good=False, rng=0,
                                  progress=False)  # fmt: skip
            for k, v in zip(hist, (step, lc.mean, lc.stderr, loss.item()), strict=True):
                hist[k].append(v)
        if step < STEPS:
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = ((model(torch.from_numpy(x_test).float())[:, 0] > 0).numpy() == y_test).mean()
    print(f"weight decay {weight_decay:g}: final loss {hist['loss'][-1]:.2e}, test accuracy {acc:.3f}, "
          f"LC {hist['lc'][0]:.1f} -> {hist['lc'][-1]:.1f}")  # fmt: skip
    return rg.from_torch(model), {k: np.array(v) for k, v in hist.items()}


runs = {wd: train(wd) for wd in WEIGHT_DECAYS}

# %%
# Figure
# ------
# Left: LC at the test points (top) and training loss (bottom) against the
# step. Right: the linear regions of the two final networks, with the test
# points (the paper's heat maps would sit on these loci).
fig = plt.figure(figsize=(12, 3.8), layout="constrained")
gs = fig.add_gridspec(2, 3, width_ratios=(1.15, 1, 1))
ax_lc, ax_loss = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[1, 0])
styles = {0.0: ("#0072B2", "-"), 0.5: ("#D55E00", "--")}
for wd, (_, h) in runs.items():
    c, ls = styles[wd]
    lab = f"weight decay {wd:g}"
    ax_lc.plot(h["step"], h["lc"], color=c, ls=ls, marker="o", ms=3, label=lab)
    ax_lc.fill_between(
        h["step"], h["lc"] - 2 * h["lc_se"], h["lc"] + 2 * h["lc_se"], color=c, alpha=0.2, lw=0
    )
    ax_loss.semilogy(h["step"], h["loss"], color=c, ls=ls, label=lab)
ax_lc.set_ylabel(f"LC at test points\n($\\sigma={SIGMA:g}$, eq. 40)")
ax_lc.legend(frameon=False)
ax_lc.tick_params(labelbottom=False)
ax_loss.set_ylabel("training loss")
ax_loss.set_xlabel("step")
for k, (wd, (net, _)) in enumerate(runs.items()):
    ax = fig.add_subplot(gs[:, 1 + k])
    rm = rg.activation_regions(net, DOMAIN)
    plot_regions(rm, ax=ax, color_by="linear", alpha=0.45)
    ax.scatter(*x_test.T, c=np.where(y_test > 0, "k", "w"), s=12, edgecolors="k", linewidths=0.6, zorder=5)
    ax.set_title(f"weight decay {wd:g}: {len(rg.linear_regions(rm))} linear regions")
fig.savefig(OUT / "training_dynamics.png", dpi=80)

if matplotlib.get_backend().lower() != "agg":
    plt.show()
