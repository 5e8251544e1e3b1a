"""The grid walk's results on many cases, saved, to compare two trees bit
for bit (run it once with each tree on ``PYTHONPATH``, then ``--compare``):
9 networks (ReLU, leaky ReLU, hardtanh, abs, mixed, a linear middle layer,
a width-1 bottleneck, 4 hidden layers, network M), 3 grids, 3 noise draws
(3, 16 and 1 samples per call), 4 option sets (good / rho / by_layer):
324 arrays of ``theorem2_samples(..., route="grid")``.

    git archive main | (mkdir -p /tmp/base && tar -x -C /tmp/base)
    PYTHONPATH=/tmp/base python benchmarks/walk_bits.py /tmp/base.npz
    PYTHONPATH=. python benchmarks/walk_bits.py /tmp/this.npz
    python benchmarks/walk_bits.py --compare /tmp/base.npz /tmp/this.npz
"""

from __future__ import annotations

import os
import sys

import numpy as np


def compute(out_path):
    tree = os.environ.get("PYTHONPATH", ".").split(os.pathsep)[0]
    sys.path.insert(0, os.path.join(tree, "tests"))
    sys.path.insert(0, os.path.join(tree, "benchmarks"))
    from common import random_net
    from nets import standard

    import regiongeom as rg
    from regiongeom import _theorem2 as T

    print("regiongeom from", rg.__file__)
    nets = {
        "relu": lambda: random_net([12, 10, 8], activation="relu", seed=11, scale=1.5),
        "relu4": lambda: random_net([16, 16, 16, 16], activation="relu", seed=21, scale=1.2),
        "leaky": lambda: random_net([10, 10], activation=rg.leaky_relu, seed=12, scale=1.5),
        "hardtanh": lambda: random_net([10, 8, 6], activation=rg.hardtanh, seed=13, scale=1.5),
        "abs": lambda: random_net([10, 8], activation="abs", seed=14, scale=1.5),
        "mixed": lambda: random_net([8, 8], activation=["relu", rg.Activation.hardtanh(-0.5, 0.5)], seed=15,
                                    last_activation="relu"),  # fmt: skip
        "linmid": lambda: random_net([8, 6, 8], activation=["relu", None, "relu"], seed=16, scale=1.5),
        "bottleneck": lambda: random_net([8, 1, 8], activation="relu", seed=17),
        "M": lambda: standard("M")[0],
    }
    out = {}
    grids = [((-1.5, -1.2, 1.5, 1.2), (37, 41)), ((-2, -2, 2, 2), 64), ((-0.3, -2, 0.5, 1), (50, 23))]
    for name, make in nets.items():
        net = make()
        for gi, (box, n) in enumerate(grids):
            x = rg.grid_points(box, n)
            for seed, sigma, S in [(1, 0.3, 3), (2, 0.05, 16), (3, 0.1, 1)]:
                if name == "M" and gi == 1 and S == 16:
                    x = rg.grid_points(box, 128)
                noise = np.random.default_rng(seed).normal(0, sigma, size=(S, net.n_neurons))
                for good, rho, by_layer in [(True, True, False), (True, True, True), (False, True, False),
                                            (True, False, False)]:  # fmt: skip
                    opts = dict(sigma=sigma, good=good, rho=rho, by_layer=by_layer, route="grid")
                    out[f"{name}-{gi}-{seed}-{good}{rho}{by_layer}"] = T.theorem2_samples(net, x, noise, opts)
    np.savez(out_path, **out)
    print(len(out), "cases saved to", out_path)


def compare(a_path, b_path):
    a, b = np.load(a_path), np.load(b_path)
    bad = [k for k in a.files
           if k not in b.files or a[k].shape != b[k].shape or a[k].tobytes() != b[k].tobytes()]  # fmt: skip
    print(len(a.files), "cases:", "bit-identical" if not bad else f"{len(bad)} DIFFER, e.g. {bad[:5]}")
    return not bad


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        sys.exit(0 if compare(sys.argv[2], sys.argv[3]) else 1)
    compute(sys.argv[1])
