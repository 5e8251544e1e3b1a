"""Speed of the exact affine maps of a graph network (ExactGraph).

The MNIST-shaped CNN of ../shared/BENCH.md (1x28x28 -> conv 16 3x3 -> ReLU
-> conv 32 3x3 stride 2 -> ReLU -> flatten -> Linear 128 -> ReLU -> Linear
10), restricted to a plane through three inputs. Each timed call is on a new
face (a neuron of the first stage flipped, so no cached rows apply):

- ``maps`` of the last stage (every row of every stage computed);
- ``line`` of one neuron of the second stage (its cone only: 16x3x3 rows of
  the first stage);
- ``line`` of one neuron of the last stage (its cone is the whole second stage).

Side by side in the same run: the same calls with the dot products done on
Python-int object arrays (the baseline: exact arithmetic without limbs, and
convolutions through their sparse rows rather than torch), and the float64
work of the same maps (the stage operators applied to the plane's three
homogeneous columns).

Run ``python benchmarks/bench_exact_graph.py`` (``--repeat``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

import regiongeom as rg
from regiongeom import _exact_graph as xg


def mnist_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 12 * 12, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip


def _object_dot(Xp, P, CL, shared=False):
    """The baseline: gather, multiply and sum on object arrays of Python ints."""
    G = Xp[:, P]
    if CL is None:
        return G.sum(axis=2)
    C = np.zeros(CL.shape[1:], dtype=object)
    for j in range(CL.shape[0]):
        C = C + (CL[j].astype(np.int64).astype(object) << (xg._LIMB * j))
    return (G * C[None]).sum(axis=2)


def _float_maps(gnet, pattern):
    """float64 maps of every stage on a pattern: the operators on the 3 columns."""
    tensors = {0: np.vstack([np.eye(2), np.zeros((1, 2))])}  # rows: d/du, d/dv, constant
    for s, st in enumerate(gnet.stages):
        X = [tensors[t] for t in st.operator.sources]
        Z = np.vstack([st.operator.linear([x[:2] for x in X]), st.operator([x[2:] for x in X])])
        p = pattern[st.offset : st.offset + st.n]
        sl = st.slopes[np.arange(st.n), p]
        ic = st.intercepts[np.arange(st.n), p]
        H = Z * sl
        H[2] += ic
        tensors[s + 1] = H
    return tensors


def run(repeat):
    torch.manual_seed(0)
    net = rg.from_torch(mnist_cnn().double().eval(), input_shape=(1, 28, 28))
    x = np.random.default_rng(0).random((3, 784))
    gnet = net.restrict(rg.Plane.through(*x))
    base = gnet.patterns(np.array([[0.1, 0.2]]))[0]
    s1, s2 = gnet.stages[1].offset, gnet.stages[2].offset

    def faces():
        for i in range(10**6):
            p = base.copy()
            p[i % gnet.stages[0].n] ^= 1
            yield p

    calls = {
        "maps(last stage)": lambda ex, p: ex.maps(p, 2),
        "line(stage-2 neuron)": lambda ex, p: ex.line(p, s1 + 1000, 0),
        "line(last-stage neuron)": lambda ex, p: ex.line(p, s2 + 3, 0),
    }
    print(f"MNIST-shaped CNN on a plane; best of {repeat} calls, each on a new face")
    print(f"{'call':26s} {'limbs':>9s} {'objects':>9s} {'ratio':>6s}")
    for name, fn in calls.items():
        times = {}
        for label, dot, conv in (("limbs", _INT_DOT, _CONV), ("objects", _object_dot, lambda *a: None)):
            ex, it = xg.ExactGraph(gnet), faces()
            fn(ex, next(it))  # compile the primitives
            xg._int_dot, xg._conv_limbs = dot, conv
            try:
                best = np.inf
                for _ in range(repeat):
                    p = next(it)
                    t = time.perf_counter()
                    fn(ex, p)
                    best = min(best, time.perf_counter() - t)
            finally:
                xg._int_dot, xg._conv_limbs = _INT_DOT, _CONV
            times[label] = best
        print(
            f"{name:26s} {times['limbs']:8.4f}s {times['objects']:8.4f}s {times['objects'] / times['limbs']:6.1f}"
        )
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        _float_maps(gnet, base)
        best = min(best, time.perf_counter() - t)
    print(f"{'float64 maps (all stages)':26s} {best:8.4f}s")


_INT_DOT, _CONV = xg._int_dot, xg._conv_limbs

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    run(ap.parse_args().repeat)
