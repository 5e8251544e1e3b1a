"""Speed of the local complexity estimators on network M (../shared/BENCH.md).

Targets, on a 2-core machine:

- theorem2 (eq. 6, exact good indicator) on a 256 x 256 grid over M's domain
  (-2, -2, 2, 2) with 64 noise samples: under 30 s;
- definition (eq. 3, exact locus of every noisy network) on a 128 x 128 grid
  with 64 samples: under 60 s.

Run ``python benchmarks/bench_complexity.py`` (``--help`` for options). The
first call compiles or loads the numba kernels; it is timed separately (on
an empty numba cache it includes the one-time compile). theorem2 runs on
``REGIONGEOM_NUM_THREADS`` threads (default: every usable core). Shared
machines drift: the CPU time is printed next to the wall time.
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
from regiongeom.complexity import lc_density  # noqa: E402


def grid(domain, n):
    x0, y0, x1, y1 = domain
    gx, gy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def timed(label, fn):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    print(f"{label:<58s} {wall:7.2f} s wall  {cpu:7.2f} s cpu", flush=True)
    return out, wall


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--sigma", type=float, default=0.05, help="bias noise std (default 0.05, the paper's Fig. 1)"
    )
    ap.add_argument("--eps", type=float, default=0.05, help="ball radius of the definition method")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--n-theorem2", type=int, default=256, help="grid side for theorem2")
    ap.add_argument("--n-definition", type=int, default=128, help="grid side for the definition")
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--skip-definition", action="store_true")
    ap.add_argument("--extra", action="store_true", help="also time good=False, rho=False and by_layer=True")
    args = ap.parse_args(argv)

    net, domain, _ = standard("M")
    kw = dict(sigma=args.sigma, n_samples=args.samples, rng=0, progress=False, n_jobs=args.n_jobs)
    print(
        f"network M {net!r}, domain {domain}, sigma {args.sigma}, {args.samples} samples, n_jobs {args.n_jobs}"
    )
    timed(
        "warm-up (numba compile / cache load)",
        lambda: lc_density(net, grid(domain, 8), sigma=0.1, n_samples=2),
    )

    X = grid(domain, args.n_theorem2)
    est, t2 = timed(
        f"theorem2 {args.n_theorem2}x{args.n_theorem2}, exact good indicator",
        lambda: lc_density(net, X, **kw),
    )
    print(
        f"    mean f {est.mean.mean():.4f}, mean stderr {est.stderr.mean():.4f}, max f {est.mean.max():.3f}"
    )
    if args.extra:
        timed("theorem2, good=False (eq. 40)", lambda: lc_density(net, X, good=False, **kw))
        timed("theorem2, rho=False (eq. 41)", lambda: lc_density(net, X, rho=False, **kw))
        timed("theorem2, by_layer=True", lambda: lc_density(net, X, by_layer=True, **kw))
    if not args.skip_definition:
        Xd = grid(domain, args.n_definition)
        d, td = timed(
            f"definition {args.n_definition}x{args.n_definition}, eps {args.eps}",
            lambda: lc_density(net, Xd, method="definition", eps=args.eps, **kw),
        )
        print(f"    mean f_eps {d.mean.mean():.4f}, mean stderr {d.stderr.mean():.4f}")
        print(f"    (regions of M over its domain, noise-free: {len(rg.activation_regions(net, domain))})")
    print(f"targets: theorem2 < 30 s -> {'met' if t2 < 30 else 'MISSED'}", end="")
    print("" if args.skip_definition else f"; definition < 60 s -> {'met' if td < 60 else 'MISSED'}")


if __name__ == "__main__":
    main()
