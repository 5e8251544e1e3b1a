"""MAP-M against an earlier checkout: the same ``lc_density`` call in both, alternating.

Issue 17's MAP-M figure (``lc_density`` on network M, 256 x 256 grid, 64 noise
samples, sigma 0.05, exact good indicator: 13.0 s, and 12.6 s at commit 1ced7e3
in its README) was measured on another machine. Timing that commit's code and
this checkout's on the same host, alternating, gives the ratio that carries
over to that machine:

    mkdir /tmp/base && git archive 1ced7e3 | tar -x -C /tmp/base
    python benchmarks/bench_map_baseline.py /tmp/base --rounds 3

Each run is a fresh process (its first call loads or compiles the kernels and is
not timed) with ``REGIONGEOM_NUM_THREADS`` threads (default 1: CPU time on one
thread is what shared hosts disturb least). Prints CPU and wall seconds per
run, the median ratio baseline / this, and whether the two maps agree (the same
noise from ``rng=0``: equal to about 1e-12).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

CODE = """
import sys, time
import numpy as np
sys.path.insert(0, sys.argv[2])
import regiongeom as rg
from regiongeom.complexity import lc_density
from nets import standard
assert rg.__file__.startswith(sys.argv[1]), rg.__file__
net, dom, _ = standard("M")
x0, y0, x1, y1 = dom
gx, gy = np.meshgrid(np.linspace(x0, x1, 256), np.linspace(y0, y1, 256))
X = np.stack([gx.ravel(), gy.ravel()], axis=1)
lc_density(net, X[:64], sigma=0.1, n_samples=2)  # compile or load the kernels
t, c = time.perf_counter(), time.process_time()
est = lc_density(net, X, sigma=0.05, n_samples=64, rng=0, progress=False)
wall, cpu = time.perf_counter() - t, time.process_time() - c
np.save(sys.argv[3], np.asarray(est.mean))
print(cpu, wall)
"""


def run(tree, out, threads):
    env = dict(os.environ, PYTHONPATH=str(tree), REGIONGEOM_NUM_THREADS=str(threads))
    r = subprocess.run([sys.executable, "-c", CODE, str(tree), str(HERE), out], env=env, cwd=Path(out).parent,
                       capture_output=True, text=True)  # fmt: skip
    if r.returncode:
        sys.exit(f"the run in {tree} failed:\n{r.stderr}")
    cpu, wall = map(float, r.stdout.split()[-2:])
    return cpu, wall


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("baseline", type=Path, help="the earlier checkout (e.g. from git archive 1ced7e3)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    trees = {"baseline": args.baseline.resolve(), "this": HERE.parent}
    times = {k: [] for k in trees}
    with tempfile.TemporaryDirectory() as tmp:
        maps = {k: str(Path(tmp) / f"{k}.npy") for k in trees}
        for r in range(args.rounds):
            for k, tree in trees.items():
                cpu, wall = run(tree, maps[k], args.threads)
                times[k].append((cpu, wall))
                print(f"round {r + 1} {k:<8s} {cpu:7.2f} s cpu {wall:7.2f} s wall", flush=True)
        a, b = np.load(maps["baseline"]), np.load(maps["this"])
    med = {k: (statistics.median(c for c, _ in v), statistics.median(w for _, w in v)) for k, v in times.items()}
    for k, (c, w) in med.items():
        print(f"median {k:<8s} {c:7.2f} s cpu {w:7.2f} s wall")
    print(f"baseline / this: {med['baseline'][0] / med['this'][0]:.2f}x cpu, "
          f"{med['baseline'][1] / med['this'][1]:.2f}x wall")  # fmt: skip
    print(f"max relative difference of the maps {np.max(np.abs(a - b) / np.abs(a)):.2g}")


if __name__ == "__main__":
    main()
