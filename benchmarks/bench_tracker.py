"""Does tracking slow training? Training steps timed with and without a Tracker.

Two loops: a 2D MLP (2 -> 3 x 64 -> 1, a two-spirals classifier) and a digits MLP
(sklearn's 8 x 8 digits, 64 -> 4 x 200 -> 10, the paper's MNIST width). Each trains
``--steps`` Adam steps on mini-batches; only the training steps are timed (the
measurement calls are timed apart). Modes, alternated run by run so that drifting load
on a shared machine hits them alike:

- ``plain``: no tracker;
- ``tracker``: ``rg.Tracker`` with its thread management (OpenBLAS limited to one
  thread and torch at one intra-op thread during its calls);
- ``unmanaged``: the same measurements with nothing limited.

Each configuration runs with torch's default intra-op threads and with
``torch.set_num_threads(1)``.

    python benchmarks/bench_tracker.py                  # both loops, ~5 minutes
    python benchmarks/bench_tracker.py --task digits --steps 200 --repeat 3 --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

import regiongeom as rg
from regiongeom.tracker import DEFAULT_MEASURES as DEFAULT


def spirals(n, rng):
    t = rng.uniform(0.5, 3 * np.pi, n)
    lab = rng.integers(0, 2, n)
    r = t / (3 * np.pi)
    x = np.stack([r * np.cos(t + np.pi * lab), r * np.sin(t + np.pi * lab)], 1) + rng.normal(0, 0.02, (n, 2))
    return x.astype(np.float32), lab


def task(name):
    rng = np.random.default_rng(0)
    if name == "2d":
        x, y = spirals(2000, rng)
        sizes, n_out, measures = [2, 64, 64, 64], 2, DEFAULT + ("regions",)
    else:
        from sklearn.datasets import load_digits

        d = load_digits()
        x, y = (d.data / 16.0).astype(np.float32), d.target
        sizes, n_out, measures = [64, 200, 200, 200, 200], 10, DEFAULT
    return x, y, sizes, n_out, measures


def model_for(sizes, n_out, seed):
    torch.manual_seed(seed)
    layers = []
    for i, o in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(i, o), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(sizes[-1], n_out))


def run(name, mode, steps, every, threads):
    x, y, sizes, n_out, measures = task(name)
    torch.set_num_threads(threads)
    model = model_for(sizes, n_out, 0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.tensor(x), torch.tensor(y)
    tr = None
    if mode != "plain":
        tr = rg.Tracker(x[:300], every=every, sigma=0.05, measures=measures, n_samples=8)
        if mode == "unmanaged":
            tr.torch_threads, tr._limit_blas = None, False
    g = torch.Generator().manual_seed(0)
    train = measure = 0.0
    for step in range(steps):
        idx = torch.randint(0, len(xt), (128,), generator=g)
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
        loss.backward()
        opt.step()
        t1 = time.perf_counter()
        train += t1 - t0
        if tr is not None:
            tr.log(model, step)
            measure += time.perf_counter() - t1
    n_logs = len(tr.history) if tr else 0
    return train, measure / max(n_logs, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="2d,digits")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--threads", default="default,1", help="torch intra-op threads to try: default and/or numbers"
    )
    args = ap.parse_args()
    default_threads = torch.get_num_threads()
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}; "
          f"torch {torch.__version__} (default {default_threads} intra-op threads)")  # fmt: skip
    for name in args.task.split(","):
        run(name, "tracker", 2 * args.every, args.every, 1)  # warm-up: numba compile, caches
        choices = [default_threads if t == "default" else int(t) for t in args.threads.split(",")]
        for threads in dict.fromkeys(choices):
            res = {m: [] for m in ("plain", "tracker", "unmanaged")}
            for _ in range(args.repeat):
                for mode in res:
                    res[mode].append(run(name, mode, args.steps, args.every, threads))
            base = statistics.median(t for t, _ in res["plain"])
            print(f"{name}: {args.steps} steps, log every {args.every}, torch threads {threads}; "
                  f"median of {args.repeat} (training steps only)")  # fmt: skip
            for mode, vals in res.items():
                t = statistics.median(v for v, _ in vals)
                per_log = statistics.median(v for _, v in vals)
                extra = f", {per_log:.2f} s per log call" if mode != "plain" else ""
                print(f"  {mode:10s} {t:7.2f} s  ({t / base:4.2f}x plain){extra}")


if __name__ == "__main__":
    main()
