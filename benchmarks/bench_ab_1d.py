"""D1 in this checkout and in an earlier one, alternating in one process.

Run-to-run noise between processes (regioncam's own D1 time moves by 50% from
one ``bench_regions.py`` run to the next on a shared host) hides changes of a
few per cent; enumerations alternating in one process do not. The earlier
checkout's package is copied to a temporary directory as ``rg_ab_base`` (its
absolute ``regiongeom`` imports rewritten), so both load side by side:

    mkdir /tmp/base && git archive 416540e | tar -x -C /tmp/base
    python benchmarks/bench_ab_1d.py /tmp/base --runs 151
    REGIONGEOM_NUM_THREADS=1 python benchmarks/bench_ab_1d.py /tmp/base --runs 151

Prints each package's median wall and CPU time per enumeration and the ratio
base / this (above 1: this checkout is faster), then the ratios of neighbouring
runs (each run against the other package's run next to it): their median and
quartiles, which a host drifting during the run moves less. Both must find 1,136 regions.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def load_base(tree, tmp):
    """The package of checkout ``tree`` imported as ``rg_ab_base``."""
    dst = Path(tmp) / "rg_ab_base"
    shutil.copytree(Path(tree) / "regiongeom", dst, ignore=shutil.ignore_patterns("__pycache__"))
    pat = re.compile(r"\b(from|import) regiongeom\b")
    for f in dst.rglob("*.py"):
        text = f.read_text()
        new = pat.sub(r"\1 rg_ab_base", text)
        if new != text:
            f.write_text(new)
    sys.path.insert(0, str(tmp))
    import rg_ab_base

    return rg_ab_base


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("baseline", type=Path, help="the earlier checkout (e.g. from git archive)")
    ap.add_argument("--runs", type=int, default=151)
    args = ap.parse_args(argv)

    from nets import bench_net

    import regiongeom as rg

    assert Path(rg.__file__).resolve().parent == HERE.parent / "regiongeom", rg.__file__
    with tempfile.TemporaryDirectory() as tmp:
        base = load_base(args.baseline, tmp)
        module = bench_net([256] * 6, d_in=1)
        pkgs = {"base": (base, base.from_torch(module)), "this": (rg, rg.from_torch(module))}
        for pkg, net in pkgs.values():  # warm-up (numba kernels load or compile)
            assert len(pkg.activation_regions(net, (-5, 5))) == 1136
        times = {k: ([], []) for k in pkgs}
        for i in range(args.runs):
            for k in ("base", "this") if i % 2 else ("this", "base"):
                pkg, net = pkgs[k]
                w, c = time.perf_counter(), time.process_time()
                pkg.activation_regions(net, (-5, 5))
                times[k][0].append(time.perf_counter() - w)
                times[k][1].append(time.process_time() - c)
    med = {k: (statistics.median(w), statistics.median(c)) for k, (w, c) in times.items()}
    for k, (w, c) in med.items():
        print(f"{k:5s} wall {w * 1e3:6.2f} ms  cpu {c * 1e3:6.2f} ms (medians of {args.runs})")
    print(f"base / this: wall {med['base'][0] / med['this'][0]:.3f}, cpu {med['base'][1] / med['this'][1]:.3f}")
    # each run against its neighbour of the other package: robust to the host drifting during the run
    pairs = sorted(b / t for b, t in zip(times["base"][0], times["this"][0], strict=True))
    q1, q2, q3 = statistics.quantiles(pairs, n=4)
    print(f"paired wall ratios base / this: median {q2:.3f}, quartiles {q1:.3f}-{q3:.3f}")


if __name__ == "__main__":
    main()
