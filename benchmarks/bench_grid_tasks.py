"""Noise samples per call of the Theorem-2 grid walk: MAP-M (network M, sigma
0.05, 64 samples, exact good indicator) on an N x N grid with 1, 4, 16 and
64 samples per call, alternating in one process; checks the same bits.

    python benchmarks/bench_grid_tasks.py --n 256 --rounds 2
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
from regiongeom import _theorem2 as T  # noqa: E402
from regiongeom import complexity as C  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--per", type=lambda s: [int(v) for v in s.split(",")], default=[1, 4, 16, 64],
                    help="samples per call to time, comma-separated (default 1,4,16,64)")
    a = ap.parse_args()
    net, dom, _ = standard("M")
    x = rg.grid_points(dom, a.n)
    xx, opts = C._check(net, x, "points", 0.05, a.samples, "theorem2", None, True, True, 0, False, 1, 65536)
    opts["route"] = "grid"
    real = T.samples_per_task

    def run(per):
        C.samples_per_task = lambda net, x, opts, p: per  # noqa: ARG005
        try:
            t, c = time.perf_counter(), time.process_time()
            F = C._estimate(net, xx, 0, opts, reduce=False)
            return F, time.process_time() - c, time.perf_counter() - t
        finally:
            C.samples_per_task = real

    run(2)  # compile or load the kernels
    print(f"MAP-M on a {a.n}x{a.n} grid, {a.samples} samples; lc_density's default: {T.GRID_SAMPLES} per call")
    ref = None
    for r in range(a.rounds):
        for per in a.per:
            F, cpu, wall = run(per)
            ref = F if ref is None else ref
            same = "same bits" if np.array_equal(F, ref) else "DIFFERENT"
            print(f"  round {r + 1}: {per:3d} per call {cpu:7.2f} s cpu {wall:7.2f} s wall  {same}", flush=True)


if __name__ == "__main__":
    main()
