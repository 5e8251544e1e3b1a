"""Regions of high-dimensional networks on a plane through three inputs,
side by side with regioncam on the same plane.

    python benchmarks/bench_planes.py               # HR-784 (BENCH.md)
    python benchmarks/bench_planes.py --repeat 11
    python benchmarks/bench_planes.py --cnn        # also CNN-MNIST (BENCH.md), regiongeom alone

HR-784 is Hanin & Rolnick's Figure-1 architecture, ``mnist_mlp((64, 64, 64))``
of BENCH.md (784 -> 3 x 64 ReLU -> 10), on the plane through three sklearn
digit images (8 x 8, upsampled by 3 and padded to 28 x 28, scaled to [0, 1]).
regioncam chooses the plane itself (``Regioncam.through_points``: origin at
the points' centroid, an orthonormal frame, a square box around them); regiongeom
gets exactly that plane and box (its origin and axes read from regioncam,
in float64), so both tools cut the same square. regioncam computes in
float32 and gets the module converted with ``.float()``; regiongeom's time
includes ``net.restrict(plane)``. Both are timed in one process, alternating
run by run after a warm-up run of each; medians of wall-clock times.
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


def hr784():
    """(regiongeom job, regioncam job) on the same plane and box."""
    import numpy as np
    import regioncam

    import regiongeom as rg

    model = mnist_mlp((64, 64, 64))
    net = rg.from_torch(model)
    pts = digit_images()
    probe = regioncam.Regioncam.through_points(pts.astype(np.float32))
    origin = np.asarray(probe.plane.bias, np.float64)
    basis = np.asarray(probe.plane.weight, np.float64).T
    corners = np.asarray(probe.vertex_inputs, np.float64)
    box = (corners[:, 0].min(), corners[:, 1].min(), corners[:, 0].max(), corners[:, 1].max())
    plane = rg.Plane(origin, basis, (pts - origin) @ basis, (784,))
    model32 = model.float()

    def ours():
        return len(rg.activation_regions(net.restrict(plane), box))

    def theirs():
        rc = regioncam.Regioncam.through_points(pts.astype(np.float32))
        rc.add(model32)
        return rc.num_faces

    return ours, theirs, f"box side {box[2] - box[0]:.2f} (input-space units)"


JOBS = {"HR-784": hr784}


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


def cnn_job():
    """CNN-MNIST on the plane through three digit images, over the box of side 1.0
    (input-space units) centred on the first: regions, locus, peak memory. No
    peer runs it (regioncam has no convolutions), so it runs alone, in a fresh
    process, once (after a small warm-up run for the compilation)."""
    import resource

    import regiongeom as rg

    net = rg.from_torch(mnist_cnn(), input_shape=(1, 28, 28))
    plane = rg.Plane.through(*digit_images())
    net2 = net.restrict(plane)
    c = plane.points[0]
    rg.activation_regions(net2, (c[0] - 0.01, c[1] - 0.01, c[0] + 0.01, c[1] + 0.01))  # warm-up
    box = (c[0] - 0.5, c[1] - 0.5, c[0] + 0.5, c[1] + 0.5)
    t0 = time.perf_counter()
    rm = rg.activation_regions(net2, box)
    t1 = time.perf_counter()
    loc = rg.nonlinear_locus(rm)
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"CNN-MNIST {len(rm):>8,} regions in {t1 - t0:.1f} s; locus ({loc.volume():.3g} long) in "
          f"{t2 - t1:.1f} s; peak resident memory {peak:,.0f} MB (box of side 1.0 around the first image)")  # fmt: skip


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", default=",".join(JOBS))
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--cnn", action="store_true", help="also run CNN-MNIST (about a minute, several GB)")
    ap.add_argument("--cnn-only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.cnn_only:
        return cnn_job()
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'job':<8} {'regions':>8} {'regiongeom':>11} | {'regions':>8} {'regioncam':>10} | ratio")
    for name in a.jobs.split(","):
        ours, theirs, what = JOBS[name]()
        n_ours, n_theirs = ours(), theirs()  # warm-up (and numba compilation)
        t = {"ours": [], "theirs": []}
        for _ in range(a.repeat):
            for key, job in (("ours", ours), ("theirs", theirs)):
                t0 = time.perf_counter()
                job()
                t[key].append(time.perf_counter() - t0)
        mo, mt = statistics.median(t["ours"]), statistics.median(t["theirs"])
        print(f"{name:<8} {n_ours:>8,} {mo:>10.3f}s | {n_theirs:>8,} {mt:>9.3f}s | {mt / mo:>5.2f}  ({what})")
    print("ratio = regioncam time / regiongeom time (above 1: regiongeom faster)")
    sys.stdout.flush()
    if a.cnn:
        import subprocess

        subprocess.run([sys.executable, __file__, "--cnn-only"], check=True)


if __name__ == "__main__":
    main()
