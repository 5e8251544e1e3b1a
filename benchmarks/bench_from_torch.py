"""Speed of from_torch and of graph-network operators on a plane.

1. Conversion of a 784-64-64-64-10 ReLU MLP, side by side: the direct
   ``nn.Sequential`` walk (the baseline) and the torch.fx route (the same
   MLP written as a custom Module).
2. The MNIST-shaped CNN of the "Real networks" issue (1x28x28 -> conv 16 3x3
   -> ReLU -> conv 32 3x3 stride 2 -> ReLU -> flatten -> Linear 128 -> ReLU
   -> Linear 10) and the CIFAR-shaped one (3x32x32, three convs with
   BatchNorm, global average pool): conversion, restriction to a plane
   through three inputs, and one application of each stage's operator to
   ``--rows`` plane points (the work an engine does per batch of vertices),
   with the row l1 norms.

Run ``python benchmarks/bench_from_torch.py`` (``--rows``, ``--repeat``).
Shared machines drift: the CPU time is printed next to the wall time.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from torch import nn

import regiongeom as rg
from regiongeom.torch_graph import convert


def timed(repeat, fn, *args, **kwargs):
    """(wall, cpu, result) of the fastest of ``repeat`` calls ``fn(*args, **kwargs)``."""
    best = (np.inf, np.inf, None)
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        best = min(best, (time.perf_counter() - w, time.process_time() - c, out), key=lambda t: t[0])
    return best


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(784, 64), nn.Linear(64, 64), nn.Linear(64, 64)])
        self.out = nn.Linear(64, 10)

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return self.out(x)


def mnist_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 12 * 12, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip


def cifar_cnn():
    def block(cin, cout, stride):
        return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(3, 16, 1), *block(16, 32, 2), *block(32, 64, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )  # fmt: skip


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)

    mlp = MLP().eval()
    seq = nn.Sequential(*[m for layer in mlp.layers for m in (layer, nn.ReLU())], mlp.out).eval()
    w0, c0, a = timed(args.repeat, rg.from_torch, seq)
    w1, c1, b = timed(args.repeat, convert, mlp)
    assert all(np.array_equal(u, v) for u, v in zip(a.weights, b.weights))
    print(f"MLP 784-64-64-64-10 conversion: Sequential walk {w0 * 1e3:.1f} ms (cpu {c0 * 1e3:.1f}), ", end="")
    print(f"torch.fx {w1 * 1e3:.1f} ms (cpu {c1 * 1e3:.1f}); ratio fx/walk {w1 / w0:.1f}")

    rng = np.random.default_rng(0)
    for label, model, shape in (
        ("MNIST CNN", mnist_cnn(), (1, 28, 28)),
        ("CIFAR CNN", cifar_cnn(), (3, 32, 32)),
    ):
        model.eval()
        wc, cc, net = timed(args.repeat, rg.from_torch, model, input_shape=shape)
        pts = rng.uniform(0, 1, size=(3, int(np.prod(shape))))
        plane = rg.Plane.through(*pts)
        wr, cr, net2 = timed(args.repeat, net.restrict, plane)
        print(f"{label}: {net}; convert {wc * 1e3:.0f} ms (cpu {cc * 1e3:.0f}), restrict {wr * 1e3:.0f} ms")
        uv = rng.uniform(-0.5, 0.5, size=(args.rows, 2))
        tensors = {0: uv}
        for s, stage in enumerate(net2.stages):
            op = stage.operator
            X = [tensors[t] for t in op.sources]
            w, c, z = timed(args.repeat, op, X)
            wl, _, _ = timed(1, getattr, op, "row_l1")
            wa, _, _ = timed(args.repeat, op.absolute, [np.abs(x) for x in X])
            tensors[s + 1] = stage.apply(z)
            print(
                f"  stage {stage.name:>4} ({stage.n:>6} neurons, {type(op).__name__}): "
                f"{args.rows} rows {w * 1e3:7.1f} ms (cpu {c * 1e3:7.1f}), |A| {wa * 1e3:7.1f} ms, "
                f"row l1 (once) {wl * 1e3:7.1f} ms"
            )
        ref = net(plane.lift(uv[:4]))
        assert np.allclose(net2(uv[:4]), ref, rtol=1e-12, atol=1e-12)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
