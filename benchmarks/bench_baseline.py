"""``activation_regions`` of this tree side by side with an earlier version.

    git archive 416540e | (mkdir -p /tmp/base && tar -x -C /tmp/base)
    python benchmarks/bench_baseline.py /tmp/base                # M, L, D1
    python benchmarks/bench_baseline.py /tmp/base --nets S,M --rounds 5

Each network runs in fresh processes, this tree and the baseline alternately
(``PYTHONPATH`` set to each, started outside both trees so that neither is
imported by accident), on one thread (``REGIONGEOM_NUM_THREADS=1``), timing
CPU with ``time.process_time``: the median of N runs after a warm-up, then
the median over the rounds. Prints the ratio this / baseline (below 1: faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RUNS = {"S": 41, "M": 21, "L": 5, "D1": 31, "XL": 1}

CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[3])
from nets import standard
import regiongeom as rg
assert rg.__file__.startswith(sys.argv[4]), (rg.__file__, sys.argv[4])
net, dom, _ = standard(sys.argv[1])
rg.activation_regions(net, dom)
ts = []
for _ in range(int(sys.argv[2])):
    t = time.process_time()
    rm = rg.activation_regions(net, dom)
    ts.append(time.process_time() - t)
ts.sort()
print(len(rm), ts[len(ts) // 2])
"""


def run(tree, name, n):
    env = {**os.environ, "PYTHONPATH": str(tree), "REGIONGEOM_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as cwd:
        out = subprocess.run([sys.executable, "-c", CHILD, name, str(n), str(HERE), str(tree)], cwd=cwd, env=env,
                             capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    return int(out[0]), float(out[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "baseline", type=Path, help="a source tree of the earlier version (e.g. from git archive)"
    )
    ap.add_argument("--nets", default="M,L,D1")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    base = a.baseline.resolve()
    print(f"this tree {ROOT} against {base}; CPU time, one thread, medians")
    for name in a.nets.split(","):
        t = {"this": [], "base": []}
        for _ in range(a.rounds):
            for key, tree in (("this", ROOT), ("base", base)):
                count, sec = run(tree, name, RUNS[name])
                t[key].append(sec)
        this, old = statistics.median(t["this"]), statistics.median(t["base"])
        print(f"{name:<3} {count:>8,} regions  this {this * 1e3:8.1f} ms  baseline {old * 1e3:8.1f} ms  "
              f"this/baseline {this / old:.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
