"""Regions of high-dimensional networks on a plane through three inputs,
side by side with regioncam on the same plane.

    python benchmarks/bench_planes.py               # HR-784 (BENCH.md) and RES-784 (issue 14)
    python benchmarks/bench_planes.py --repeat 11
    python benchmarks/bench_planes.py --cnn        # also CNN-MNIST (BENCH.md), regiongeom alone
    python benchmarks/bench_planes.py --jobs= --cnn --cifar   # only the CNNs (CNN-CIFAR: issue 14)
    python benchmarks/bench_planes.py --jobs= --maxpool       # max units (issue 15): CNN-MAXPOOL, MAXOUT

HR-784 is Hanin & Rolnick's Figure-1 architecture, ``mnist_mlp((64, 64, 64))``
of BENCH.md (784 -> 3 x 64 ReLU -> 10), on the plane through three sklearn
digit images (8 x 8, upsampled by 3 and padded to 28 x 28, scaled to [0, 1]).
regioncam chooses the plane itself (``Regioncam.through_points``: origin at
the points' centroid, an orthonormal frame, a square box around them); regiongeom
gets exactly that plane and box (its origin and axes read from regioncam,
in float64), so both tools cut the same square. regioncam computes in
float32 and gets the module converted with ``.float()``; regiongeom's time
includes ``net.restrict(plane)``. Both are timed in one process, alternating
run by run after a warm-up run of each (which must find the same number of
regions); medians of wall-clock and CPU times.

RES-784 is a residual MLP on the same plane (:func:`residual_mlp`, issue
14): regiongeom gets the module through ``from_torch`` (a GraphNetwork),
regioncam the same float32 weights as ``regioncam.nn`` layers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def mnist_mlp(widths=(200, 200, 200, 200), seed=0):
    """BENCH.md's MNIST-shaped MLP, exactly."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    layers, d = [], 784
    for w in widths:
        lin = nn.Linear(d, w)
        nn.init.kaiming_normal_(lin.weight)
        layers += [lin, nn.ReLU()]
        d = w
    layers.append(nn.Linear(d, 10))
    return nn.Sequential(*layers).double()


def digit_images(idx=(0, 1, 2)):
    """Three sklearn digits as 28 x 28 images in [0, 1] (upsampled by 3, padded by 2)."""
    import numpy as np
    from sklearn.datasets import load_digits

    imgs = load_digits().images[list(idx)] / 16.0
    big = np.kron(imgs, np.ones((3, 3)))
    return np.pad(big, ((0, 0), (2, 2), (2, 2))).reshape(len(idx), 784)


def residual_mlp(seed=0):
    """RES-784: 784 -> Linear 64 -> ReLU -> [h + Linear(ReLU(Linear h))] -> ReLU ->
    the same block -> ReLU -> Linear 10 (width 64 everywhere; torch's default
    initialisation), a custom ``torch.nn.Module``."""
    import torch
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self, d=64, h=64):
            super().__init__()
            self.a, self.b = nn.Linear(d, h), nn.Linear(h, d)

        def forward(self, x):
            return x + self.b(torch.relu(self.a(x)))

    class ResMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp, self.b1, self.b2, self.out = nn.Linear(784, 64), Block(), Block(), nn.Linear(64, 10)

        def forward(self, x):
            h = torch.relu(self.inp(x))
            h = torch.relu(self.b1(h))
            h = torch.relu(self.b2(h))
            return self.out(h)

    torch.manual_seed(seed)
    return ResMLP().double().eval()


def _regioncam_residual(model):
    """regioncam's layers for :func:`residual_mlp` (float32 weights)."""
    import numpy as np
    from regioncam import nn as rnn

    def lin(m):
        w = np.ascontiguousarray(m.weight.detach().float().numpy().T)
        return rnn.Linear(w, m.bias.detach().float().numpy())

    def block(b):
        return rnn.Residual(rnn.Sequential(lin(b.a), rnn.ReLU(), lin(b.b)))

    return [
        lin(model.inp),
        rnn.ReLU(),
        block(model.b1),
        rnn.ReLU(),
        block(model.b2),
        rnn.ReLU(),
        lin(model.out),
    ]


def _plane_job(model, rc_layers):
    """(regiongeom job, regioncam job, note) on regioncam's plane and box through
    three digits; ``rc_layers``: what regioncam adds (a module or a list of layers)."""
    import numpy as np
    import regioncam

    import regiongeom as rg

    net = rg.from_torch(model)
    pts = digit_images()
    probe = regioncam.Regioncam.through_points(pts.astype(np.float32))
    origin = np.asarray(probe.plane.bias, np.float64)
    basis = np.asarray(probe.plane.weight, np.float64).T
    corners = np.asarray(probe.vertex_inputs, np.float64)
    box = (corners[:, 0].min(), corners[:, 1].min(), corners[:, 0].max(), corners[:, 1].max())
    plane = rg.Plane(origin, basis, (pts - origin) @ basis, (784,))

    def ours():
        return len(rg.activation_regions(net.restrict(plane), box))

    def theirs():
        rc = regioncam.Regioncam.through_points(pts.astype(np.float32))
        for layer in rc_layers:
            rc.add(layer)
        return rc.num_faces

    return ours, theirs, f"box side {box[2] - box[0]:.2f} (input-space units)"


def hr784():
    """(regiongeom job, regioncam job) on the same plane and box."""
    model = mnist_mlp((64, 64, 64))
    return _plane_job(model, [model.float()])


def res784():
    """The residual MLP (:func:`residual_mlp`), regioncam building it from
    ``regioncam.nn.Linear/ReLU/Residual/Sequential``."""
    model = residual_mlp()
    return _plane_job(model, _regioncam_residual(model))


JOBS = {"HR-784": hr784, "RES-784": res784}


def mnist_cnn(seed=0):
    """BENCH.md's CNN-MNIST: 1x28x28 -> conv 16 3x3 -> ReLU -> conv 32 3x3 stride 2 -> ReLU
    -> flatten -> Linear 128 -> ReLU -> Linear 10 (torch's default initialisation)."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2), nn.ReLU(), nn.Flatten(),
        nn.Linear(32 * 12 * 12, 128), nn.ReLU(), nn.Linear(128, 10),
    ).double().eval()  # fmt: skip


def cifar_cnn(seed=0):
    """CIFAR-shaped CNN of issue 14: 3x32x32 -> conv 16 -> ReLU -> conv 32 stride 2 -> ReLU
    -> conv 64 stride 2 -> ReLU -> global average pool -> Linear 10 (3x3 kernels, padding 1),
    BatchNorm after each conv in eval mode with non-trivial running statistics and affine
    parameters (torch's default initialisation otherwise)."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    layers, c = [], 3
    for out, stride in ((16, 1), (32, 2), (64, 2)):
        bn = nn.BatchNorm2d(out)
        with torch.no_grad():
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.1, 0.1)
        layers += [nn.Conv2d(c, out, 3, stride=stride, padding=1), bn, nn.ReLU()]
        c = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers).double().eval()


def cifar_images(n=3, seed=0):
    """``n`` generated 3x32x32 images in [0, 1] (no download): per channel a few
    smooth Gaussian blobs on a gradient, different for each image."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    out = np.empty((n, 3, 32, 32))
    for i in range(n):
        for ch in range(3):
            img = rng.uniform(0.2, 0.5) + rng.uniform(-0.2, 0.2) * xx + rng.uniform(-0.2, 0.2) * yy
            for _ in range(4):
                cx, cy, w = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.25)
                img = img + rng.uniform(-0.4, 0.4) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * w * w))
            out[i, ch] = img
    return np.clip(out, 0.0, 1.0).reshape(n, 3 * 32 * 32)


def maxpool_cnn(seed=0):
    """The MNIST-shaped CNN of issue 15: 1x28x28 -> conv 16 3x3 -> ReLU -> MaxPool 2 -> conv 32
    3x3 -> ReLU -> MaxPool 2 -> flatten -> Linear 10 (torch's default initialisation)."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 5 * 5, 10),
    ).double().eval()  # fmt: skip


CNNS = {
    "CNN-MAXPOOL": (maxpool_cnn, (1, 28, 28), digit_images),
    "CNN-MNIST": (mnist_cnn, (1, 28, 28), digit_images),
    "CNN-CIFAR": (cifar_cnn, (3, 32, 32), cifar_images),
}


def _timed(obj, name, acc, key):
    """Wrap ``obj.name`` so that its time adds to ``acc[key]`` (outermost calls only)."""
    fn = getattr(obj, name)

    def wrapper(*a, **k):
        if acc.get("_in_" + key):
            return fn(*a, **k)
        acc["_in_" + key] = True
        t0 = time.process_time()
        try:
            return fn(*a, **k)
        finally:
            acc[key] += time.process_time() - t0
            acc["_in_" + key] = False

    setattr(obj, name, wrapper)


def cnn_job(name):
    """A CNN on the plane through three inputs, over the box of side 1.0 (input-space
    units) centred on the first: regions, locus, peak memory and the split of the
    enumeration's CPU time between the operators (forming each stage's values at the
    vertices), the cuts and the exact decisions inside them. No peer runs it
    (regioncam has no convolutions), so it runs alone, in a fresh process, once (after
    a small warm-up run for the compilation)."""
    import resource

    import regiongeom as rg
    from regiongeom._engine import filter2d, graph_plan, mesh2d

    if name == "MAXOUT":
        return maxout_job()

    make, shape, images = CNNS[name]
    net = rg.from_torch(make(), input_shape=shape)
    plane = rg.Plane.through(*images())
    net2 = net.restrict(plane)
    c = plane.points[0]
    rg.activation_regions(net2, (c[0] - 0.01, c[1] - 0.01, c[0] + 0.01, c[1] + 0.01))  # warm-up
    acc = {"form": 0.0, "cut": 0.0, "exact": 0.0}
    _timed(graph_plan.GraphPlan, "form", acc, "form")
    _timed(mesh2d, "_cut_layer", acc, "cut")
    _timed(filter2d.ExactSigns, "decide", acc, "exact")
    if hasattr(filter2d.ExactSigns, "decide_tie"):  # max units (issue 15)
        from regiongeom._engine import _graph_max

        _timed(_graph_max, "cut_max_stage", acc, "cut")
        _timed(filter2d.ExactSigns, "decide_tie", acc, "exact")
    box = (c[0] - 0.5, c[1] - 0.5, c[0] + 0.5, c[1] + 0.5)
    t0, p0 = time.perf_counter(), time.process_time()
    rm = rg.activation_regions(net2, box)
    t1, p1 = time.perf_counter(), time.process_time()
    peak_regions = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    loc = rg.nonlinear_locus(rm)
    t2, p2 = time.perf_counter(), time.process_time()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rest = (p1 - p0) - acc["form"] - acc["cut"]
    print(f"{name} {len(rm):>8,} regions in {t1 - t0:.1f} s wall, {p1 - p0:.1f} s CPU (operators "
          f"{acc['form']:.1f} s, cuts {acc['cut'] - acc['exact']:.1f} s, exact decisions {acc['exact']:.1f} s, "
          f"rest {rest:.1f} s); locus ({loc.volume():.3g} long) in {t2 - t1:.1f} s wall, {p2 - p1:.1f} s CPU; "
          f"peak resident memory {peak_regions:,.0f} MB for the regions, {peak:,.0f} MB with the locus "
          "(box of side 1.0 around the first input)")  # fmt: skip
    sys.stdout.flush()


def maxout_job(repeat=5):
    """Issue 15's maxout MLP (2 -> 3 x 64 units of rank 3, weights and biases as torch's
    default Linear initialisation of the 192-row layers) on the box (-2, -2, 2, 2), side by
    side with the ReLU engine on M (``bench_net([64, 64, 64])``, same box): time per region,
    alternating run by run after a warm-up of each; medians."""
    import numpy as np

    import regiongeom as rg
    from nets import bench_net

    rng = np.random.default_rng(0)
    ws, bs, prev = [], [], 2
    for _ in range(3):
        lim = 1 / np.sqrt(prev)
        ws.append(rng.uniform(-lim, lim, size=(64 * 3, prev)))
        bs.append(rng.uniform(-lim, lim, size=64 * 3))
        prev = 64
    ws.append(rng.uniform(-0.125, 0.125, size=(1, 64)))
    bs.append(rng.uniform(-0.125, 0.125, size=1))
    maxout = rg.Network.maxout(ws, bs, 3)
    relu = rg.from_torch(bench_net([64, 64, 64]))
    box = (-2.0, -2.0, 2.0, 2.0)
    jobs = {"MAXOUT": maxout, "M (ReLU)": relu}
    n = {k: len(rg.activation_regions(net, box)) for k, net in jobs.items()}  # warm-up
    t = {k: [] for k in jobs}
    for _ in range(repeat):
        for k, net in jobs.items():
            t0 = time.perf_counter()
            rg.activation_regions(net, box)
            t[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in t.items()}
    for k in jobs:
        print(f"{k:<10} {n[k]:>8,} regions in {med[k]:.3f} s, {1e6 * med[k] / n[k]:.2f} us per region")
    per = {k: med[k] / n[k] for k in jobs}
    print(f"time per region, maxout / ReLU M: {per['MAXOUT'] / per['M (ReLU)']:.2f} (medians of {repeat})")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", default=",".join(JOBS))
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--cnn", action="store_true", help="also run CNN-MNIST (under a minute, about 1 GB)")
    ap.add_argument("--cifar", action="store_true", help="also run CNN-CIFAR")
    ap.add_argument("--maxpool", action="store_true", help="also run CNN-MAXPOOL and MAXOUT (issue 15)")
    ap.add_argument("--cnn-only", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.cnn_only:
        return cnn_job(a.cnn_only)
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'job':<8} {'regions':>8} {'regiongeom':>11} | {'regions':>8} {'regioncam':>10} | ratio")
    for name in filter(None, a.jobs.split(",")):
        ours, theirs, what = JOBS[name]()
        n_ours, n_theirs = ours(), theirs()  # warm-up (and numba compilation)
        if n_ours != n_theirs:
            raise SystemExit(f"{name}: regiongeom finds {n_ours} regions, regioncam {n_theirs}")
        t = {"ours": [], "theirs": []}
        cpu = {"ours": [], "theirs": []}
        for _ in range(a.repeat):
            for key, job in (("ours", ours), ("theirs", theirs)):
                t0, c0 = time.perf_counter(), time.process_time()
                job()
                t[key].append(time.perf_counter() - t0)
                cpu[key].append(time.process_time() - c0)
        mo, mt = statistics.median(t["ours"]), statistics.median(t["theirs"])
        co, ct = statistics.median(cpu["ours"]), statistics.median(cpu["theirs"])
        print(f"{name:<8} {n_ours:>8,} {mo:>10.3f}s | {n_theirs:>8,} {mt:>9.3f}s | {mt / mo:>5.2f}  ({what}; "
              f"CPU {co:.3f}s vs {ct:.3f}s, ratio {ct / co:.2f})")  # fmt: skip
    print("ratio = regioncam time / regiongeom time (above 1: regiongeom faster); medians, wall (CPU)")
    sys.stdout.flush()
    import subprocess

    runs = ((a.cnn, "CNN-MNIST"), (a.cifar, "CNN-CIFAR"), (a.maxpool, "CNN-MAXPOOL"), (a.maxpool, "MAXOUT"))
    for flag, name in runs:
        if flag:  # a fresh process each, for its peak memory
            subprocess.run([sys.executable, __file__, "--cnn-only", name], check=True)


if __name__ == "__main__":
    main()
