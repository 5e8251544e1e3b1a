"""Time the nonlinear locus and ``volume_in_balls`` on network M (BENCH.md).

Run: ``python benchmarks/bench_locus.py``. Target (issue 4): volume_in_balls
for a 256 x 256 grid of centers on M's locus in under 1 s.
"""

import time

import numpy as np
from nets import standard

import regiongeom as rg


def median_time(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def main():
    net, domain, _ = standard("M")
    rm = rg.activation_regions(net, domain)
    # fresh region maps, so the Jacobians (computed on first use) are timed too
    maps = [rg.activation_regions(net, domain) for _ in range(3)]
    t_loc, loc = median_time(lambda: rg.nonlinear_locus(maps.pop()), 3)
    t_lr, lr = median_time(lambda: rg.linear_regions(rm), 3)
    g = np.linspace(domain[0], domain[2], 256)
    centers = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    loc.volume_in_balls(centers[:10], 0.05)  # compile
    print(f"network M: {len(rm):,} activation regions, {len(lr):,} linear regions, "
          f"{len(loc):,} locus segments, locus length {loc.volume():.4f}")
    print(f"nonlinear_locus (incl. Jacobians): {t_loc:.3f} s   linear_regions: {t_lr:.3f} s")
    for eps in (0.01, 0.05, 0.2):
        t, v = median_time(lambda eps=eps: loc.volume_in_balls(centers, eps))
        print(f"volume_in_balls, 256x256 centers, eps={eps}: {t:.3f} s  (mean {v.mean():.4f})")


if __name__ == "__main__":
    main()
