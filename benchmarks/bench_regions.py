"""Speed and memory of ``rg.activation_regions`` on the standard networks,
side by side with regioncam (when it is installed).

    python benchmarks/bench_regions.py                 # S, M, L, D1, XL
    python benchmarks/bench_regions.py --nets M,L --repeat 9
    python benchmarks/bench_regions.py --nets D1 --fallbacks   # exact-fallback counts of one run
    python benchmarks/bench_regions.py --exact-counts   # 2D signs decided exactly

Every network runs in fresh subprocesses: one times both tools, alternating
them run by run after a warm-up run of each (so that drifting load on a shared
machine hits both alike), and one per tool measures peak memory (the largest
resident set size during one run, minus the resident size just before it).
regiongeom computes in float64; regioncam requires float32, so it gets the
same torch module converted with ``.float()``. regioncam's 2D domain is the
square ``[-size, size]^2`` and its 1D one ``[-size / 2, size / 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from nets import STANDARD, bench_net, standard  # noqa: E402

NETS = ["S", "M", "L", "D1", "XL"]


# -- the two tools ----------------------------------------------------------
def _regiongeom(name):
    import regiongeom as rg

    net, domain, _ = standard(name)
    return lambda: len(rg.activation_regions(net, domain))


def _regioncam(name):
    import regioncam

    widths, d_in, domain, _ = STANDARD[name]
    module = bench_net(widths, d_in=d_in).float()
    if d_in == 1:
        lo, hi = domain
        assert lo == -hi

        def run():
            rc = regioncam.Regioncam1D(hi - lo)
            rc.add(module)
            return rc.num_vertices - 1
    else:
        size = domain[2]
        assert domain == (-size, -size, size, size)

        def run():
            rc = regioncam.Regioncam(size)
            rc.add(module)
            return rc.num_faces

    return run


def _has_regioncam():
    try:
        import regioncam  # noqa: F401
    except ImportError:
        return False
    return True


TOOLS = {"regiongeom": _regiongeom, "regioncam": _regioncam}


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- workers (run in subprocesses) ----------------------------------------------
def worker_time(name, tools, repeat):
    runs = {t: TOOLS[t](name) for t in tools}
    out = {t: {"wall": [], "cpu": []} for t in tools}
    for t in tools:  # warm-up (numba kernels load or compile), on S for XL
        out[t]["count"] = (TOOLS[t]("S") if name == "XL" else runs[t])()
    for _ in range(repeat):
        for t in tools:
            w, c = time.perf_counter(), time.process_time()
            out[t]["count"] = runs[t]()
            out[t]["wall"].append(time.perf_counter() - w)
            out[t]["cpu"].append(time.process_time() - c)
    print(json.dumps(out))


def worker_fallbacks(name):
    """The 1D engine's decisions and exact fallbacks in one enumeration."""
    from regiongeom._engine.line1d import STATS

    run = _regiongeom(name)
    run()
    STATS.reset()
    run()
    print(json.dumps(STATS.snapshot()))


def worker_mem(name, tool):
    TOOLS[tool]("S")()  # warm-up on a small network
    run = TOOLS[tool](name)
    base = _rss()
    run()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"peak": max(peak - base, 0)}))


def worker_compile():
    """First calls with an empty numba cache (compiling), 2D then 1D."""
    import numpy as np

    t = time.perf_counter()
    import regiongeom as rg

    t_import = time.perf_counter() - t
    net2 = rg.examples.random_network([4, 4], rng=0)
    net1 = rg.examples.random_network([4, 4], n_in=1, rng=0)
    t = time.perf_counter()
    rg.activation_regions(net2, (-1, -1, 1, 1))
    t2 = time.perf_counter() - t
    t = time.perf_counter()
    rg.activation_regions(net1, (-1, 1))
    t1 = time.perf_counter() - t
    print(json.dumps({"import": t_import, "first_2d": t2, "first_1d": t1, "numpy": np.__version__}))


def _sub(args, env=None, timeout=3600):
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# -- the report ---------------------------------------------------------------------
def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import numba
    import numpy as np

    vers = f"Python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}"
    if _has_regioncam():
        from importlib.metadata import version

        vers += f", regioncam {version('regioncam')}"
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    env = os.environ.get("REGIONGEOM_NUM_THREADS")
    threads = (
        f"REGIONGEOM_NUM_THREADS={env}" if env else "1D products on 2 threads when the machine has 2+ cores"
    )
    return f"machine: {os.cpu_count()} CPUs ({model}), load average {load}; {vers}; regiongeom: {threads}"


def _med(xs):
    xs = sorted(xs)
    n = len(xs)
    return 0.5 * (xs[(n - 1) // 2] + xs[n // 2])


def exact_counts(names):
    """The 2D engine's sign decisions on each 2D network, and how many the
    float filter left to exact arithmetic (a debug counter of the engine)."""
    import regiongeom as rg
    from regiongeom._engine.filter2d import COUNTS

    for name in names:
        net, domain, _ = standard(name)
        if net.n_in != 2:
            continue
        COUNTS.update(decisions=0, exact=0)
        n = len(rg.activation_regions(net, domain))
        d, e = COUNTS["decisions"], COUNTS["exact"]
        print(f"{name:<4} {n:>9,} regions: {d:>12,} sign decisions, {e:,} exact ({e / max(d, 1):.2e})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nets", default=",".join(NETS))
    ap.add_argument("--repeat", type=int, default=7, help="timed runs per tool (after a warm-up) on L")
    ap.add_argument("--small-repeat", type=int, default=21, help="the same on S, M and D1 (noisier)")
    ap.add_argument("--xl-repeat", type=int, default=1, help="the same on XL")
    ap.add_argument("--no-regioncam", action="store_true")
    ap.add_argument(
        "--fallbacks",
        action="store_true",
        help="print the 1D engine's exact-fallback counts (1D networks) and stop",
    )
    ap.add_argument(
        "--exact-counts",
        action="store_true",
        help="instead of timing, print how many of the 2D engine's sign decisions needed exact arithmetic",
    )
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.exact_counts:
        return exact_counts(a.nets.split(","))
    if a.worker:
        kind, *rest = a.worker
        if kind == "time":
            return worker_time(rest[0], rest[2:], int(rest[1]))
        if kind == "mem":
            return worker_mem(rest[0], rest[1])
        if kind == "fallbacks":
            return worker_fallbacks(rest[0])
        return worker_compile()

    if a.fallbacks:
        for name in a.nets.split(","):
            if STANDARD[name][1] != 1:
                continue
            c = _sub(["--worker", "fallbacks", name])
            print(
                f"{name}: {c['exact_signs']:,} of {c['signs']:,} signs and {c['exact_orders']:,} of "
                f"{c['orders']:,} orders decided exactly; {c['exact_positions']:,} positions computed exactly"
            )
        return None
    tools = ["regiongeom"] + ([] if a.no_regioncam or not _has_regioncam() else ["regioncam"])
    print(machine())
    with tempfile.TemporaryDirectory() as cache:
        c = _sub(["--worker", "compile"], env={**os.environ, "NUMBA_CACHE_DIR": cache})
        cached = _sub(["--worker", "compile"], env={**os.environ, "NUMBA_CACHE_DIR": cache})
    print(
        f"numba: first calls with an empty cache (compiling) {c['first_2d']:.1f} s (2D) + "
        f"{c['first_1d']:.1f} s (1D); from the cache {cached['first_2d']:.2f} s + "
        f"{cached['first_1d']:.2f} s; import regiongeom {cached['import']:.2f} s"
    )
    print(
        f"times: median of {a.small_repeat} runs ({a.repeat} for L, {a.xl_repeat} for XL) after a "
        "warm-up, the tools alternating; wall clock and CPU"
    )
    head = f"{'net':<4} {'regions':>9} {'regiongeom':>11} {'(cpu)':>7} {'peak MB':>8}"
    if "regioncam" in tools:
        head += f" | {'regions':>9} {'regioncam':>10} {'(cpu)':>7} {'peak MB':>8} | {'ratio':>5} {'(cpu)':>5}"
    print(head)
    for name in a.nets.split(","):
        reps = {"XL": a.xl_repeat, "L": a.repeat}.get(name, a.small_repeat)
        t = _sub(["--worker", "time", name, str(reps), *tools])
        row = f"{name:<4}"
        for tool in tools:
            m = _sub(["--worker", "mem", name, tool])
            w, cpu = _med(t[tool]["wall"]), _med(t[tool]["cpu"])
            row += f" {t[tool]['count']:>9,} {w:>10.3f}s {cpu:>6.3f}s {m['peak'] / 2**20:>8.0f}"
            if tool == "regiongeom" and len(tools) > 1:
                row += " |"
        if len(tools) > 1:
            r = _med(t["regioncam"]["wall"]) / _med(t["regiongeom"]["wall"])
            rc = _med(t["regioncam"]["cpu"]) / _med(t["regiongeom"]["cpu"])
            row += f" | {r:>5.1f} {rc:>5.1f}"
        print(row, flush=True)
    expected = ", ".join(f"{k} {v[3]:,}" for k, v in STANDARD.items() if v[3] is not None)
    print(f"expected regions (BENCH.md): {expected}; ratio = regioncam time / regiongeom time")


if __name__ == "__main__":
    main()
