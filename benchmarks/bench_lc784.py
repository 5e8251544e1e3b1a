"""LC-784 (../shared/BENCH.md): Theorem 2 with the exact good indicator on the
paper's MNIST architecture (784 -> 4 x 200 -> 10, ``mnist_mlp()``), points
``default_rng(1).random((1000, 784))``, 16 noise samples, sigma 0.5, seed 0,
against a straightforward batched torch float64 implementation of the same
formula (:func:`theorem2_torch_baseline`, below), optionally regiongeom's own
torch path on the CPU (``lc_density(..., device="cpu")``, made for GPUs) and
an earlier source tree of regiongeom::

    python benchmarks/bench_lc784.py                          # 100 points, 3 rounds
    python benchmarks/bench_lc784.py --points 1000 --rounds 1
    git archive 0c737d8 | (mkdir -p /tmp/base && tar -x -C /tmp/base)
    python benchmarks/bench_lc784.py --today /tmp/base --points 50 --device-cpu

Each side runs in a fresh process, the sides alternating round by round, on
``--threads`` threads (default 1: ``REGIONGEOM_NUM_THREADS``, torch's and
BLAS's threads); the CPU time (``time.process_time``) and the wall time of one
call after a warm-up, medians over the rounds, scaled to 1000 points. Every
side's mean density is checked against this tree's (relative 1e-12).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# ----------------------------------------------------------------------------
# the baseline: eq. (6) as written, batched in torch
# ----------------------------------------------------------------------------
def theorem2_torch_baseline(net, x, noise, sigma, *, batch=64):
    """(S, P) eq. (6) for every noise sample (rows of ``noise``, one entry per
    neuron as :func:`regiongeom.lc_density` draws them) and point.

    Straightforward: a batched forward pass; the input Jacobian of every layer
    ``J_l = W_l diag(s_{l-1}) J_{l-1}`` (``J_0 = W_0``), its row norms the
    gradient norms; the good indicator by the definition: for every neuron and
    breakpoint, the neuron's output set to the activation's value there, every
    later layer recomputed, and a path to the output searched through nonzero
    weights and open units (nonzero slope).
    """
    import torch

    t = lambda a: torch.tensor(np.asarray(a, np.float64))  # noqa: E731
    W, b = [t(w) for w in net.weights], [t(v) for v in net.biases]
    acts, offs, L = net.activations, net.neuron_offsets, net.n_layers
    nz = [(w != 0).double() for w in W]
    S, P = noise.shape[0], x.shape[0]
    xs, ns = t(x), t(noise)
    out = torch.zeros(S * P, dtype=torch.float64)
    phi = lambda u: torch.exp(-0.5 * (u / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma)  # noqa: E731

    def act(ly, v):  # (slope, output) of layer ly's activation at v
        a = acts[ly]
        if a is None:
            return torch.ones_like(v), v
        k = (v[..., None] >= t(a.breakpoints)).sum(-1)
        s = t(a.slopes)[k]
        return s, s * v + t(a.intercepts)[k]

    def bias(ly, nb):  # the noisy biases of layer ly, (B, m)
        return b[ly].expand(nb.shape[0], -1) if acts[ly] is None else b[ly] + nb[:, offs[ly] : offs[ly + 1]]

    for n0 in range(0, S * P, batch):
        idx = torch.arange(n0, min(S * P, n0 + batch))
        a, nb = xs[idx % P], ns[idx // P]
        hs, slopes, J = [], [], W[0].expand(len(idx), -1, -1)
        for ly in range(L):
            if ly > 0:
                J = W[ly] @ (slopes[-1][:, :, None] * J)
            zl = a @ W[ly].T
            s, a = act(ly, zl + bias(ly, nb))
            hs.append(a)
            slopes.append(s)
            if acts[ly] is None:
                continue
            bp = t(acts[ly].breakpoints)
            w = J.norm(dim=-1)[:, :, None] * phi(bp - b[ly][:, None] - zl[:, :, None])  # (B, m, K)
            m, K = w.shape[1], w.shape[2]
            # the good indicator: h_l with neuron j at breakpoint k, term (j, k) at row j * K + k
            at = t(acts[ly].slopes[:-1] * acts[ly].breakpoints + acts[ly].intercepts[:-1])
            h = hs[ly][:, None, :].repeat(1, m * K, 1)
            j = torch.arange(m).repeat_interleave(K)
            h[:, torch.arange(m * K), j] = at.repeat(m)
            opened = []
            for mm in range(ly + 1, L):
                s2, h = act(mm, h @ W[mm].T + bias(mm, nb)[:, None, :])
                opened.append((s2 != 0).double())
            reach = torch.ones(len(idx), m * K, W[-1].shape[0], dtype=torch.float64)
            for i, mm in reversed(list(enumerate(range(ly + 1, L)))):
                reach = opened[i] * (reach @ nz[mm + 1] > 0) if mm + 1 < L else opened[i]
            good = (reach * nz[ly + 1].T[j]).sum(-1) > 0 if ly + 1 < L else 1.0  # via W_{l+1}[:, j] != 0
            out[idx] += (w.reshape(len(idx), m * K) * good).sum(-1)
    return out.reshape(S, P).numpy()


# ----------------------------------------------------------------------------
# the benchmark
# ----------------------------------------------------------------------------
CHILD = r"""
import sys, time
import numpy as np
side, n, tree, out, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
sys.path.insert(0, sys.argv[6])
import torch
torch.set_num_threads(threads)
from bench_planes import mnist_mlp
from bench_lc784 import theorem2_torch_baseline
import regiongeom as rg
assert rg.__file__.startswith(tree), (rg.__file__, tree)
net = rg.from_torch(mnist_mlp().eval(), input_shape=(784,))
X = np.random.default_rng(1).random((1000, 784))[:n]
S, sigma = 16, 0.5
if side == "device-cpu":
    run = lambda x: rg.lc_density(net, x, sigma=sigma, n_samples=S, rng=0, progress=False, device="cpu").mean
elif side == "torch":
    noise = np.random.default_rng(0).normal(0.0, sigma, size=(S, net.n_neurons))  # as lc_density draws it
    run = lambda x: theorem2_torch_baseline(net, x, noise, sigma).mean(axis=0)
else:
    run = lambda x: rg.lc_density(net, x, sigma=sigma, n_samples=S, rng=0, progress=False).mean
run(X[:2])  # warm-up: numba's compile or cache load, torch's first calls
t, c = time.perf_counter(), time.process_time()
mean = run(X)
wall, cpu = time.perf_counter() - t, time.process_time() - c
np.save(out, mean)
print(cpu, wall)
"""


def run_side(side, tree, n, threads, out):
    th = str(threads)
    env = {**os.environ, "PYTHONPATH": str(tree), "REGIONGEOM_NUM_THREADS": th, "OMP_NUM_THREADS": th,
           "OPENBLAS_NUM_THREADS": th, "MKL_NUM_THREADS": th}  # fmt: skip
    with tempfile.TemporaryDirectory() as cwd:
        r = subprocess.run([sys.executable, "-c", CHILD, side, str(n), str(tree), out, th, str(HERE)],
                           cwd=cwd, env=env, capture_output=True, text=True)  # fmt: skip
    if r.returncode:
        raise RuntimeError(f"{side} failed:\n{r.stderr[-3000:]}")
    cpu, wall = map(float, r.stdout.split()[-2:])
    return cpu, wall


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=100, help="the first N of the 1000 points (times scaled)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--today", type=Path, help="an earlier source tree of regiongeom, timed as a third side")
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--device-cpu", action="store_true", help="also time lc_density(device='cpu') (torch)")
    args = ap.parse_args(argv)
    sides = [("regiongeom", ROOT)] + ([] if args.skip_torch else [("torch", ROOT)])
    sides += [("device-cpu", ROOT)] if args.device_cpu else []
    sides += [("today", args.today.resolve())] if args.today else []
    times = {s: [] for s, _ in sides}
    scale = 1000 / args.points
    print(f"LC-784: {args.points} points x 16 samples, {args.threads} thread(s), times scaled to 1000 points")
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for side, tree in sides:
                cpu, wall = run_side(side, tree, args.points, args.threads, f"{tmp}/{side}.npy")
                times[side].append((cpu * scale, wall * scale))
                print(
                    f"  round {rnd}: {side:<10s} {cpu * scale:8.1f} s cpu {wall * scale:8.1f} s wall",
                    flush=True,
                )
        ref = np.load(f"{tmp}/regiongeom.npy")
        for side, _ in sides[1:]:
            err = float(np.abs(np.load(f"{tmp}/{side}.npy") - ref).max() / np.abs(ref).max())
            print(f"{side} against regiongeom: largest relative difference of f {err:.1e}", end="")
            print(" (ok)" if err < 1e-12 else " (MORE THAN 1e-12)")
    med = {
        s: (statistics.median(c for c, _ in v), statistics.median(w for _, w in v)) for s, v in times.items()
    }
    for side, (c, w) in med.items():
        ratio = "" if side == "regiongeom" else f"   {c / med['regiongeom'][0]:5.1f}x regiongeom's cpu"
        print(f"median {side:<10s} {c:8.1f} s cpu {w:8.1f} s wall{ratio}")


if __name__ == "__main__":
    main()
