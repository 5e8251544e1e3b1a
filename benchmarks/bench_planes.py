"""Regions of high-dimensional networks on a plane through three inputs,
side by side with regioncam on the same plane.

    python benchmarks/bench_planes.py               # HR-784 (BENCH.md)
    python benchmarks/bench_planes.py --repeat 11

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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", default=",".join(JOBS))
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
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


if __name__ == "__main__":
    main()
