"""Time the first ``regiongeom demo`` on an empty numba cache, then from that cache.

Run: ``python benchmarks/bench_first_use.py`` (this checkout), or
``python benchmarks/bench_first_use.py --baseline DIR --rounds 2`` to alternate
with another checkout ``DIR`` (e.g. ``git archive 8052a0c | tar -x -C DIR``), so
that a host's speed can be calibrated against a commit timed elsewhere. Each
run is a fresh process with its own empty ``NUMBA_CACHE_DIR``; wall times.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CODE = "import sys; from regiongeom.cli import main; sys.exit(main(['demo', '--out', sys.argv[1], '--no-progress']))"


def demo_times(tree):
    """(first, cached) wall seconds of ``regiongeom demo`` with the package in ``tree``."""
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(tree))
        times = []
        for _ in range(2):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", CODE, out], env=env, cwd=out, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            times.append(time.perf_counter() - t)
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, help="another checkout to alternate with")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args(argv)
    trees = [("this", HERE.parent)]
    if args.baseline is not None:
        if not (args.baseline / "regiongeom" / "__init__.py").is_file():
            ap.error(f"--baseline {args.baseline} holds no regiongeom package")
        trees.append(("baseline", args.baseline.resolve()))
    print(f"load average {os.getloadavg()[0]:.2f}; wall seconds")
    for r in range(args.rounds):
        for name, tree in trees:
            first, cached = demo_times(tree)
            print(f"round {r + 1} {name:8s} first use {first:6.1f} s   from the cache {cached:5.1f} s")


if __name__ == "__main__":
    main()
