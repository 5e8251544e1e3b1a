"""Heat maps of ``lc_density`` on network M: the definition route side by
side with an earlier version of regiongeom (DEF-M), and the Theorem-2 grid
walk side by side with the per-point kernels (MAP-M).

    git archive 0c737d8 | (mkdir -p /tmp/base && tar -x -C /tmp/base)
    python benchmarks/bench_maps.py /tmp/base                      # 128 x 128, 64 samples
    python benchmarks/bench_maps.py /tmp/base --rounds 5 --threads 2
    python benchmarks/bench_maps.py --map-m                        # 256 x 256, 64 samples
    python benchmarks/bench_maps.py --map-m --rounds 3 --n 128
    python benchmarks/bench_maps.py --walk-ab af73225 --rounds 9 --samples 4
    python benchmarks/bench_maps.py --walk-ab eed7e77 --rounds 9 --samples 4 --per-sample

MAP-M: ``lc_density(net, grid_points(domain, 256), sigma=0.05,
n_samples=64, rng=0)`` (Theorem 2, exact good indicator; issue 17, target
1) in this process, the grid walk and the per-point kernels alternately
(``route`` forced; same noise), after a warm-up of both; it prints each
one's CPU time (``time.process_time``) and wall time, their medians, the
ratio, and the largest relative difference of the two maps.

WALK-AB (``--walk-ab REV``): the grid walk of this tree against the grid
walk of git revision ``REV`` (its ``regiongeom/_theorem2_grid.py``, and
``_theorem2_grid_kernels.py`` if it has one, loaded from ``git show`` as
modules of their own; everything else from this tree), on MAP-M's network
and grid with ``--samples`` samples, on one thread, interleaved (the order
reversed every other round; with ``--per-sample`` one call per sample, as
``lc_density`` makes them on a large grid): each one's CPU time per (sample, point) pair,
medians, the median of the per-round ratios, and the largest relative
difference of the results. Caveat (2026-12-03, this host): the comparison is
biased in favour of this tree: ``--walk-ab HEAD`` (the same code on both
sides) gave a ratio of 0.58. Calibrate with ``--walk-ab HEAD`` first, or
time the two trees in alternating fresh processes.

``lc_density(net, grid_points(domain, n), sigma=0.05, n_samples=64,
method="definition", eps=0.05, rng=0)`` (issue 17, target 2). Each round
runs this tree and the baseline in fresh processes, alternately (started
outside both trees, ``PYTHONPATH`` set to each, ``REGIONGEOM_NUM_THREADS=1``),
after a warm-up call in the same process (with ``--threads 2``, this tree
also on two threads: compare the wall times); it prints the CPU time
(``time.process_time``) and the wall time of each, their medians over the
rounds, and whether the two results are identical (bit for bit) or how far
apart they are.
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
ROOT = HERE.parent

CHILD = r"""
import sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from nets import standard
import regiongeom as rg
assert rg.__file__.startswith(sys.argv[2]), (rg.__file__, sys.argv[2])
n, samples, eps, out = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
net, dom, _ = standard("M")
x = rg.grid_points(dom, n)
kw = dict(sigma=0.05, method="definition", eps=eps, rng=0, progress=False)
rg.lc_density(net, x[:16], n_samples=2, **kw)  # compile or load the kernels
t, c = time.perf_counter(), time.process_time()
est = rg.lc_density(net, x, n_samples=samples, **kw)
print(time.process_time() - c, time.perf_counter() - t)
np.save(out, est.mean)
"""


def run(tree, args, out, threads=1):
    env = {**os.environ, "PYTHONPATH": str(tree), "REGIONGEOM_NUM_THREADS": str(threads)}
    argv = [str(HERE), str(tree), str(args.n), str(args.samples), str(args.eps), out]
    with tempfile.TemporaryDirectory() as cwd:
        res = subprocess.run([sys.executable, "-c", CHILD, *argv], cwd=cwd, env=env, capture_output=True,
                             text=True, check=True)  # fmt: skip
    cpu, wall = (float(v) for v in res.stdout.split())
    return cpu, wall


def map_m(args):
    """MAP-M: the grid walk and the per-point kernels, side by side."""
    import time

    sys.path.insert(0, str(HERE))
    from nets import standard

    import regiongeom as rg
    from regiongeom import complexity as C

    net, dom, _ = standard("M")
    x = rg.grid_points(dom, args.n)

    def run(route, n_samples):
        xx, opts = C._check(net, x, "points", 0.05, n_samples, "theorem2", None, True, True, 0, False, 1, 65536)
        opts["route"] = route
        t, c = time.perf_counter(), time.process_time()
        F = C._estimate(net, xx, 0, opts, reduce=False)
        return F.mean(axis=0), time.process_time() - c, time.perf_counter() - t

    for route in ("grid", "points"):  # compile or load the kernels
        run(route, 2)
    print(f"MAP-M: M, {args.n}x{args.n} grid, {args.samples} samples, sigma 0.05, theorem2 (exact good indicator)")
    times, maps = {"grid": [], "points": []}, {}
    for r in range(args.rounds):
        for route in times:
            maps[route], cpu, wall = run(route, args.samples)
            times[route].append((cpu, wall))
            print(f"  round {r + 1} {route:<6s} {cpu:7.2f} s cpu {wall:7.2f} s wall", flush=True)
    med = {k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v)) for k, v in times.items()}
    for k, (cpu, wall) in med.items():
        print(f"median {k:<6s} {cpu:7.2f} s cpu {wall:7.2f} s wall")
    print(f"per-point / grid: {med['points'][0] / med['grid'][0]:.2f}x cpu, {med['points'][1] / med['grid'][1]:.2f}x wall")
    a, b = maps["grid"], maps["points"]
    rel = np.abs(a - b) / np.maximum(np.abs(b), np.finfo(float).tiny)
    print(f"max relative difference {rel.max():.2g} (mean f {b.mean():.4f})")


def walk_ab(args):
    """WALK-AB: this tree's grid walk against revision ``args.walk_ab``'s."""
    import importlib.util
    import time

    os.environ["REGIONGEOM_NUM_THREADS"] = "1"
    sys.path.insert(0, str(HERE))
    from nets import standard

    import regiongeom as rg
    from regiongeom import _theorem2 as T
    from regiongeom import _theorem2_grid as G

    def show(path):
        res = subprocess.run(["git", "-C", str(ROOT), "show", f"{args.walk_ab}:{path}"], capture_output=True, text=True)
        return res.stdout if res.returncode == 0 else None

    tmp = Path(tempfile.mkdtemp(prefix="walk_ab_"))  # numba caches beside the modules: kept out of the tree
    names = {}
    for stem in ("_theorem2_grid_kernels", "_theorem2_grid"):
        src = show(f"regiongeom/{stem}.py")
        if src is None:
            continue
        src = src.replace("from . import ", "from regiongeom import ").replace("from ._theorem2_grid_kernels import",
                                                                            "from walk_ab_theorem2_grid_kernels import")
        src = src.replace("from ._", "from regiongeom._")
        (tmp / f"walk_ab{stem}.py").write_text(src)
        spec = importlib.util.spec_from_file_location(f"walk_ab{stem}", tmp / f"walk_ab{stem}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        names[stem] = mod
    old = names["_theorem2_grid"]
    net, dom, _ = standard("M")
    x = np.ascontiguousarray(rg.grid_points(dom, args.n))
    noise = np.random.default_rng(0).normal(0.0, 0.05, (args.samples, net.n_neurons))
    pk = T.Packed(net)
    opt = T.kernel_options(dict(sigma=0.05, good=True, rho=True))
    walks = {"this": G, args.walk_ab: old}
    for m in walks.values():  # compile or load the kernels
        m.theorem2_grid(net, pk, x[:512], noise[:1], opt, False)
    per = ", one sample per call" if args.per_sample else ""
    print(f"WALK-AB: M, {args.n}x{args.n} grid, {args.samples} samples{per}, one thread, this tree vs {args.walk_ab}")
    times, out = {k: [] for k in walks}, {}
    for r in range(args.rounds):
        for k in (list(walks) if r % 2 == 0 else list(walks)[::-1]):
            c = time.process_time()
            if args.per_sample:  # one sample per call, as lc_density calls it on a large grid
                out[k] = np.concatenate([walks[k].theorem2_grid(net, pk, x, noise[s : s + 1], opt, False)[0]
                                         for s in range(args.samples)])  # fmt: skip
            else:
                out[k], n_redone = walks[k].theorem2_grid(net, pk, x, noise, opt, False)
            times[k].append((time.process_time() - c) / out[k].size * 1e6)
        print(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in times.items()) + " us cpu per pair",
              flush=True)  # fmt: skip
    for k, v in times.items():
        print(f"median {k:<10s} {statistics.median(v):7.3f} us cpu per pair")
    ratio = [a / b for a, b in zip(times["this"], times[args.walk_ab], strict=True)]
    print(f"this / {args.walk_ab}: median of the per-round ratios {statistics.median(ratio):.3f}")
    a, b = out["this"], out[args.walk_ab]
    rel = np.abs(a - b) / np.maximum(np.abs(b), np.finfo(float).tiny)
    print(f"max relative difference {rel.max():.2g}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("baseline", type=Path, nargs="?",
                    help="a source tree of the earlier version (e.g. from git archive); not with --map-m")  # fmt: skip
    ap.add_argument("--map-m", action="store_true", help="MAP-M: the Theorem-2 grid walk against the per-point kernels")
    ap.add_argument("--walk-ab", metavar="REV", help="WALK-AB: this tree's grid walk against git revision REV's")
    ap.add_argument("--per-sample", action="store_true",
                    help="WALK-AB: one noise sample per call (as lc_density calls the walk on a 256x256 grid)")  # fmt: skip
    ap.add_argument("--n", type=int, default=None, help="grid side (default 128; MAP-M 256)")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--eps", type=float, default=0.05)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1,
                    help="also run this tree on this many threads (REGIONGEOM_NUM_THREADS; wall time)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.map_m or args.walk_ab:
        args.n = args.n or 256
        return walk_ab(args) if args.walk_ab else map_m(args)
    if args.baseline is None:
        ap.error("the definition route needs a baseline tree (or --map-m)")
    args.n = args.n or 128
    trees = {"this": (ROOT, 1), "baseline": (args.baseline.resolve(), 1)}
    if args.threads > 1:
        trees[f"this x{args.threads}"] = (ROOT, args.threads)
    times = {k: [] for k in trees}
    print(f"M, {args.n}x{args.n} grid, {args.samples} samples, eps {args.eps}, one thread")
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, (tree, threads) in trees.items():
                cpu, wall = run(tree, args, f"{tmp}/{name}.npy", threads)
                times[name].append((cpu, wall))
                print(f"  round {r + 1} {name:<9s} {cpu:7.2f} s cpu {wall:7.2f} s wall", flush=True)
        a, b = np.load(f"{tmp}/this.npy"), np.load(f"{tmp}/baseline.npy")
        for name in trees:
            if name.startswith("this x") and not np.array_equal(a, np.load(f"{tmp}/{name}.npy")):
                print(f"{name}: NOT the same as on one thread")
    for name, ts in times.items():
        cpu, wall = statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)
        print(f"median {name:<9s} {cpu:7.2f} s cpu {wall:7.2f} s wall")
    ratio = statistics.median(t[0] for t in times["this"]) / statistics.median(
        t[0] for t in times["baseline"]
    )
    print(f"cpu ratio this / baseline: {ratio:.2f}")
    same = "identical" if np.array_equal(a, b) else f"max |difference| {np.abs(a - b).max():.3g}"
    print(f"results: {same} (mean f {a.mean():.4f})")


if __name__ == "__main__":
    main()
