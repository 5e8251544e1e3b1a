"""
Training the default bunny network
==================================

The embedded network returned by :func:`regiongeom.datasets.default_network`
is a small ReLU MLP ``2 -> 32 -> 32 -> 32 -> 1`` fitted to the procedural bunny
silhouette :func:`regiongeom.datasets.bunny_function` on the box
``(-1, -1, 1, 1)``, in the spirit of Figure 1 of Patel & Montúfar, "On the
Local Complexity of Linear Regions in Deep ReLU Networks".

This script reproduces it: seeded, deterministic Adam on fresh uniform
samples, then :func:`regiongeom.from_torch` and :meth:`regiongeom.Network.save`.

* ``python gallery/train_default_network.py`` trains and writes to a
  temporary file (the package is left alone);
* ``--write`` overwrites ``regiongeom/data/bunny.npz``;
* ``--steps N`` or the environment variable ``REGIONGEOM_TRAIN_STEPS`` sets
  the number of Adam steps (the tests run a short version).

The full run takes well under a minute on two CPU cores.
"""

# %%
# Setup
# -----
import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import regiongeom as rg
from regiongeom.datasets import DEFAULT_DOMAIN, bunny_function

WIDTHS = (32, 32, 32)
DEFAULT_STEPS = 5000
BATCH = 4096
MAX_LR = 1e-2
SEED = 0

parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0], allow_abbrev=False)
parser.add_argument("--write", action="store_true", help="overwrite regiongeom/data/bunny.npz")
parser.add_argument("--out", type=Path, default=None, help="write the network here instead")
parser.add_argument("--steps", type=int, default=int(os.environ.get("REGIONGEOM_TRAIN_STEPS", DEFAULT_STEPS)))
# parse_known_args: sphinx-gallery and pytest may leave their own arguments in sys.argv
args, _ = parser.parse_known_args()

# One thread: the model is tiny, so threads only add overhead, and a single
# thread makes the float reductions (hence the saved weights) reproducible.
# Both global torch settings are restored after training.
n_threads, was_deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
torch.set_num_threads(1)
torch.manual_seed(SEED)
torch.use_deterministic_algorithms(True)
rng = np.random.default_rng(SEED)

# %%
# The model and the data
# ----------------------
# Every step draws a fresh batch of points uniformly in the box; the targets
# are the exact silhouette (1 on the bunny, 0 elsewhere).
layers, d = [], 2
for w in WIDTHS:
    layers += [nn.Linear(d, w), nn.ReLU()]
    d = w
layers.append(nn.Linear(d, 1))
model = nn.Sequential(*layers)  # float32 for speed; from_torch converts to float64

lo, hi = np.array(DEFAULT_DOMAIN[:2]), np.array(DEFAULT_DOMAIN[2:])


def sample(n):
    x = lo + (hi - lo) * rng.random((n, 2))
    y = bunny_function(x)[:, None]
    return torch.from_numpy(x).float(), torch.from_numpy(y).float()


# %%
# Training
# --------
# Adam with a one-cycle learning-rate schedule (warm up to ``MAX_LR``, then
# anneal), which fits the thin ears much better than a constant rate.
steps = max(args.steps, 2)
opt = torch.optim.Adam(model.parameters(), lr=MAX_LR)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX_LR, total_steps=steps, pct_start=0.1)
t0 = time.perf_counter()
for step in range(steps):
    x, y = sample(BATCH)
    loss = torch.mean((model(x) - y) ** 2)
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    if step % 500 == 0:
        print(f"step {step:5d}  batch MSE {loss.item():.4f}")
train_time = time.perf_counter() - t0

x_test, y_test = sample(65536)
with torch.no_grad():
    mse = torch.mean((model(x_test) - y_test) ** 2).item()
torch.set_num_threads(n_threads)
torch.use_deterministic_algorithms(was_deterministic)
print(f"trained {steps} steps in {train_time:.1f} s; test MSE {mse:.4f}")

# %%
# Convert, count the regions and save
# -----------------------------------
net = rg.from_torch(model)
t0 = time.perf_counter()
n_regions = len(rg.activation_regions(net, DEFAULT_DOMAIN))
print(f"{net}: {n_regions} activation regions on {DEFAULT_DOMAIN} ({time.perf_counter() - t0:.1f} s)")

if args.write:
    path = Path(__file__).resolve().parents[1] / "regiongeom" / "data" / "bunny.npz"
elif args.out is not None:
    path = args.out
else:
    path = Path(tempfile.mkdtemp(prefix="regiongeom_")) / "bunny.npz"
path.parent.mkdir(parents=True, exist_ok=True)
net.save(path)
print(f"saved to {path}")
