"""Theorem 2 on a plane: a 784-3x64 ReLU MLP as a dense Network and as a graph network
(the same Linear layers), and the MNIST-shaped CNN of issue 14. CPU and wall seconds.

    OMP_NUM_THREADS=1 REGIONGEOM_NUM_THREADS=1 python benchmarks/bench_graph_lc.py
"""

import sys
import time
from pathlib import Path

import numpy as np
import torch

import regiongeom as rg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_graph_measures import graph_twin

nn = torch.nn
torch.manual_seed(0)
g = np.random.default_rng(0)
imgs = g.uniform(0, 1, size=(3, 784))
plane = rg.Plane.through(*imgs)
mlp = nn.Sequential(
    nn.Linear(784, 64),
    nn.ReLU(),
    nn.Linear(64, 64),
    nn.ReLU(),
    nn.Linear(64, 64),
    nn.ReLU(),
    nn.Linear(64, 10),
).eval()
dense = rg.from_torch(mlp)
gnet = graph_twin(dense)
cnn = nn.Sequential(
    nn.Conv2d(1, 16, 3),
    nn.ReLU(),
    nn.Conv2d(16, 32, 3, stride=2),
    nn.ReLU(),
    nn.Flatten(),
    nn.Linear(32 * 12 * 12, 128),
    nn.ReLU(),
    nn.Linear(128, 10),
).eval()
cnet = rg.from_torch(cnn, input_shape=(1, 28, 28))
pts = rg.grid_points((0, 0, 1, 1), 16)


def run(name, net, n_samples=4):
    net2 = net.restrict(plane)
    rg.lc_density(net2, pts[:4], sigma=0.05, n_samples=2, rng=0, progress=False)  # compile / bounds
    c, w = time.process_time(), time.perf_counter()
    e = rg.lc_density(net2, pts, sigma=0.05, n_samples=n_samples, rng=0, progress=False)
    print(
        f"{name}: {len(pts)} points x {n_samples} samples: cpu {time.process_time() - c:.2f} s, wall {time.perf_counter() - w:.2f} s, mean f {e.mean.mean():.6g}"
    )
    return e


a = run("MLP dense (numba)", dense)
b = run("MLP graph", gnet)
print("max rel diff", np.abs(a.mean - b.mean).max() / np.abs(a.mean).max())
run("MNIST CNN graph", cnet)
