"""Time the nonlinear locus, linear regions and ``volume_in_balls``.

Run: ``python benchmarks/bench_locus.py`` (S, M, L: ``nonlinear_locus`` +
``linear_regions`` on fresh region maps, next to ``activation_regions``
itself; then ``volume_in_balls`` on M's locus for a 256 x 256 grid).

``--baseline DIR`` also runs the locus timing with the regiongeom found in
``DIR`` (another checkout), alternating with this one net by net in
subprocesses, so a drifting load hits both alike; ``--nets S,M`` picks nets.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def median_time(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def time_locus(name, repeat):
    """Medians of: enumeration, locus + linear regions on a fresh map, both."""
    from nets import standard

    import regiongeom as rg

    net, domain, _ = standard(name)
    rg.nonlinear_locus(rg.activation_regions(net, domain))  # compile
    te, tl = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        rm = rg.activation_regions(net, domain)
        t1 = time.perf_counter()
        loc, lr = rg.nonlinear_locus(rm), rg.linear_regions(rm)
        te.append(t1 - t0)
        tl.append(time.perf_counter() - t1)
    return dict(regions=len(rm), locus=len(loc), linear=len(lr), length=loc.volume(),
                enum=float(np.median(te)), locus_linear=float(np.median(tl)))  # fmt: skip


def run_in(tree, name, repeat):
    env = dict(os.environ, PYTHONPATH=str(tree))
    code = (f"import sys, json; sys.path.insert(0, {str(HERE)!r}); import bench_locus as b; "
            f"print(json.dumps(b.time_locus({name!r}, {repeat})))")  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=str(tree), capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def locus_table(nets, baseline):
    here = HERE.parent
    print(f"load average {os.getloadavg()[0]:.2f}; medians; times in s")
    for name in nets:
        repeat = 3 if name == "L" else 7
        trees = [("this", here)] + ([("baseline", Path(baseline))] if baseline else [])
        rows = {label: run_in(tree, name, repeat) for label, tree in trees}
        for label, r in rows.items():
            print(
                f"{name} {label:>8}: {r['regions']:,} regions, {r['locus']:,} locus pieces (length "
                f"{r['length']:.6f}), {r['linear']:,} linear regions | enumeration {r['enum']:.3f} | "
                f"locus + linear regions {r['locus_linear']:.3f} ({r['locus_linear'] / r['enum']:.2f}x enum)"
            )
        if baseline:
            ratio = rows["baseline"]["locus_linear"] / rows["this"]["locus_linear"]
            print(f"{name}: locus + linear regions {ratio:.1f}x faster than the baseline")


def balls():
    from nets import standard

    import regiongeom as rg

    net, domain, _ = standard("M")
    loc = rg.nonlinear_locus(rg.activation_regions(net, domain))
    g = np.linspace(domain[0], domain[2], 256)
    centers = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    loc.volume_in_balls(centers[:10], 0.05)  # compile
    for eps in (0.01, 0.05, 0.2):
        t, v = median_time(lambda eps=eps: loc.volume_in_balls(centers, eps))
        print(f"M: volume_in_balls, 256x256 centers, eps={eps}: {t:.3f} s  (mean {v.mean():.4f})")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--nets", default="S,M,L")
    p.add_argument("--baseline", default=None, help="a checkout whose regiongeom is timed alongside")
    p.add_argument("--no-balls", action="store_true")
    args = p.parse_args()
    locus_table(args.nets.split(","), args.baseline)
    if not args.no_balls:
        balls()


if __name__ == "__main__":
    main()
