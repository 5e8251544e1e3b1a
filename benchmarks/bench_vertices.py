"""Speed of vertex_density (Theorem 6, k = 2) and Locus.distance on network M.

Targets (../shared/BENCH.md networks), on this 2-core machine:

- ``vertex_density`` theorem6 on a 128 x 128 grid over M's domain with 64
  noise samples (sigma 0.05): under 30 s;
- ``loc.distance`` for 256 x 256 points on M: under 1 s, checked against
  shapely's distance to the locus as a MultiLineString (on a subset: shapely
  takes minutes for all of them).

Run ``python benchmarks/bench_vertices.py`` (``--help`` for options). The
theorem6 run is timed on ``--samples-timed`` noise samples of the full grid
and scaled to 64 (the cost is linear in the samples); ``--full`` times all 64.
The first calls compile or load the numba kernels; they are timed apart.
Shared machines drift: the CPU time is printed next to the wall time.

``--baseline FILE`` times an earlier version of the Theorem-6 kernels (for
instance ``git show REV:regiongeom/_vertices_kernels.py > FILE``) against
the current ones, alternately, in one thread on the same ``--compare``
points of the grid and 2 samples, and prints the CPU-time ratio and the
largest relative difference of the results.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nets import standard  # noqa: E402

import regiongeom as rg  # noqa: E402


def timed(label, fn):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    print(f"{label:<62s} {wall:8.2f} s wall  {cpu:8.2f} s cpu", flush=True)
    return out, wall


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sigma", type=float, default=0.05)
    ap.add_argument("--n-vertices", type=int, default=128, help="grid side for vertex_density")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--samples-timed", type=int, default=2, help="samples actually run (scaled to --samples)")
    ap.add_argument("--full", action="store_true", help="run all the samples")
    ap.add_argument("--n-distance", type=int, default=256, help="grid side for loc.distance")
    ap.add_argument("--shapely-points", type=int, default=2000, help="points checked against shapely")
    ap.add_argument("--baseline", help="an earlier _vertices_kernels.py to time against the current one")
    ap.add_argument("--compare", type=int, default=1024, help="grid points (from the middle) for --baseline")
    args = ap.parse_args(argv)

    net, domain, _ = standard("M")
    pts = rg.grid_points(domain, args.n_vertices)
    if args.baseline:
        compare(net, pts, args)
    timed("compile/load theorem6 kernels (4 points, 2 samples)",
          lambda: rg.vertex_density(net, pts[:4], sigma=args.sigma, n_samples=2, rng=0))  # fmt: skip
    S = args.samples if args.full else args.samples_timed
    est, wall = timed(f"theorem6 {args.n_vertices}^2 points x {S} samples",
                      lambda: rg.vertex_density(net, pts, sigma=args.sigma, n_samples=S, rng=0))  # fmt: skip
    print(f"  -> {wall * args.samples / S:.0f} s for {args.samples} samples (target 30 s); "
          f"mean vertex density {est.mean.mean():.1f} per unit area")  # fmt: skip

    rm, _ = timed("activation_regions(M)", lambda: rg.activation_regions(net, domain))
    loc, _ = timed("nonlinear_locus(M)", lambda: rg.nonlinear_locus(rm))
    grid = rg.grid_points(domain, args.n_distance)
    timed("compile/load distance kernels", lambda: loc.distance(grid[:10]))
    d, _ = timed(f"loc.distance {args.n_distance}^2 points ({len(loc)} segments)", lambda: loc.distance(grid))
    d, _ = timed(f"loc.distance {args.n_distance}^2 points, again", lambda: loc.distance(grid))

    import shapely

    sub = np.random.default_rng(0).choice(len(grid), min(args.shapely_points, len(grid)), replace=False)
    ml = shapely.multilinestrings(loc.segments)
    ref, wall_s = timed(f"shapely.distance, {len(sub)} of those points",
                        lambda: shapely.distance(shapely.points(grid[sub]), ml))  # fmt: skip
    print(f"  -> shapely for all {len(grid)} points: ~{wall_s * len(grid) / len(sub):.0f} s; "
          f"max |ours - shapely| = {np.abs(d[sub] - ref).max():.2e}")  # fmt: skip


def compare(net, pts, args):
    """The baseline kernels file and the current kernels, alternately, one thread."""
    import importlib.util

    from regiongeom import _vertices_kernels as current
    from regiongeom._theorem2 import layer_bounds
    from regiongeom.vertices import _ECUT, pack

    spec = importlib.util.spec_from_file_location("baseline_kernels", args.baseline)
    base = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(base)
    pk = pack(net)
    extra = dict(zip(("cflat", "coff", "cmax", "cmoff"), layer_bounds(net), strict=True))
    old = base._Net(*[getattr(pk, f) if f in pk._fields else extra[f] for f in base._Net._fields])
    mid = len(pts) // 2
    x = np.ascontiguousarray(pts[mid : mid + args.compare])
    noise = np.random.default_rng(0).normal(0.0, args.sigma, (2, net.n_neurons))

    def run(mod, packed, n):
        out = np.zeros(2 * n)
        t, c = time.perf_counter(), time.process_time()
        mod.theorem6_kernel(packed, x[:n], noise, args.sigma, _ECUT, True, out, 0, -(-out.size // mod.CHUNK))
        return out, time.perf_counter() - t, time.process_time() - c

    run(base, old, 2), run(current, pk, 2)  # compile or load
    for rep in range(2):
        o_old, w_old, c_old = run(base, old, len(x))
        o_new, w_new, c_new = run(current, pk, len(x))
        print(f"baseline vs current, {len(x)} points x 2 samples, one thread (run {rep + 1}): "
              f"{c_old:.2f} s / {c_new:.2f} s cpu ({w_old:.2f} s / {w_new:.2f} s wall): "
              f"{c_old / c_new:.1f}x; {1e6 * c_new / o_new.size:.0f} us cpu per (sample, point); "
              f"max rel diff {np.abs(o_new - o_old).max() / np.abs(o_old).max():.1e}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
