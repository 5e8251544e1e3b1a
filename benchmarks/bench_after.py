"""A small enumeration right after a large one in the same process (issue 17, "Keep").

    python benchmarks/bench_after.py                       # D1 alone vs D1 right after L
    python benchmarks/bench_after.py --small D1 --large XL --rounds 5
    python benchmarks/bench_after.py --large XL --trim   # + glibc malloc_trim(0) after XL

Each round starts two fresh processes, alternately: one times ``--small``
alone (after one warm-up run of it), the other runs ``--small`` once (the
same warm-up), then ``--large`` once, then times ``--small`` the same way.
Per run of ``--small`` it records CPU time (``time.process_time``), wall
time and the minor page faults (``ru_minflt``: memory taken from the system
and touched for the first time); it prints the medians over all runs and
rounds and the ratio after / alone. ``--threads 1`` runs everything on one
thread (``REGIONGEOM_NUM_THREADS=1``); ``--trim`` also times a third process
that calls glibc's ``malloc_trim(0)`` right after ``--large`` (an experiment:
does the slowdown live in the allocator's heap?).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CHILD = r"""
import ctypes, json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from nets import standard
import regiongeom as rg
small, large, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
net, dom, _ = standard(small)
rg.activation_regions(net, dom)  # warm-up (compilation, caches)
if large != "-":
    big, bdom, _ = standard(large.split("+")[0])
    rg.activation_regions(big, bdom)
    del big
    if large.endswith("+trim"):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
out = {"cpu": [], "wall": [], "faults": []}
for _ in range(n):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    c0, w0 = time.process_time(), time.perf_counter()
    rg.activation_regions(net, dom)
    out["cpu"].append(time.process_time() - c0)
    out["wall"].append(time.perf_counter() - w0)
    out["faults"].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
print(json.dumps(out))
"""


def run(small, large, n, threads):
    env = {**os.environ}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if threads:
        env["REGIONGEOM_NUM_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory() as cwd:
        out = subprocess.run([sys.executable, "-c", CHILD, str(HERE), small, large, str(n)], cwd=cwd, env=env,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", default="D1")
    ap.add_argument("--large", default="L")
    ap.add_argument("--runs", type=int, default=21, help="timed runs of --small per process")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="REGIONGEOM_NUM_THREADS (default: not set)")
    ap.add_argument("--trim", action="store_true", help="also: malloc_trim(0) after --large (glibc)")
    a = ap.parse_args()
    runs = [("alone", "-"), ("after", a.large)] + ([("trimmed", a.large + "+trim")] if a.trim else [])
    res = {key: {"cpu": [], "wall": [], "faults": []} for key, _ in runs}
    for _ in range(a.rounds):
        for key, large in runs:
            r = run(a.small, large, a.runs, a.threads)
            for k in r:
                res[key][k] += r[k]
    med = {key: {k: statistics.median(v) for k, v in d.items()} for key, d in res.items()}
    print(f"{a.small} alone vs right after {a.large} (medians of {a.rounds} x {a.runs} runs)")
    for key, _ in runs:
        m = med[key]
        print(f"  {key:<7} cpu {m['cpu'] * 1e3:8.2f} ms  wall {m['wall'] * 1e3:8.2f} ms  "
              f"page faults {m['faults']:8.0f}")  # fmt: skip
    for key, _ in runs[1:]:
        print(f"  {key} / alone: cpu {med[key]['cpu'] / med['alone']['cpu']:.2f}  "
              f"wall {med[key]['wall'] / med['alone']['wall']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
