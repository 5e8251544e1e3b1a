"""In-process A/B of grid-walk kernel files on MAP-M's workload: copies of
``regiongeom/_theorem2_grid_kernels.py`` (any versions: ``git show
REV:regiongeom/_theorem2_grid_kernels.py > /tmp/a.py``) loaded as modules of
their own, every one with the first file's ``Grid`` type (a copy with a
``Grid`` type of its own ran about 1.5 times slower: the bias of
``bench_maps.py --walk-ab``), one thread, ``layer0_table`` and then
``grid_chunk`` for each of ``S`` noise samples per block of 1024 points (as
``lc_density`` calls the walk: 16 samples per call), blocks interleaved,
the order alternating. Prints each file's CPU time per (sample, point) pair
(median, 25th percentile, minimum), the median of the per-block ratios to
the first file, and whether the results are identical bit for bit.

    git show main:regiongeom/_theorem2_grid_kernels.py > /tmp/main_k.py
    python benchmarks/bench_walk_kernels.py /tmp/main_k.py regiongeom/_theorem2_grid_kernels.py
    S=16 R=10 BLOCKS=4,8,12,20,30,40,50,60 python benchmarks/bench_walk_kernels.py A.py B.py C.py

The kernels' driver, the network and everything else come from the
regiongeom that is imported (``PYTHONPATH``). The files are copied to a
temporary directory (numba caches beside them) and compiled there.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("REGIONGEOM_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from nets import standard  # noqa: E402

import regiongeom as rg  # noqa: E402
from regiongeom import _theorem2 as T  # noqa: E402
from regiongeom import _theorem2_grid as G  # noqa: E402

BLOCK = 1024


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def main(files):
    S = int(os.environ.get("S", 16))
    rounds = int(os.environ.get("R", 6))
    blocks = [int(v) for v in os.environ.get("BLOCKS", "4,8,12,20,30,40,50,60").split(",")]
    net, dom, _ = standard("M")
    x = np.ascontiguousarray(rg.grid_points(dom, 256))
    noise = np.random.default_rng(0).normal(0.0, 0.05, (S, net.n_neurons))
    pk = T.Packed(net)
    kn = pk.kernel_net
    opt = T.kernel_options(dict(sigma=0.05, good=True, rho=True))
    P = x.shape[0]
    taus = np.array([G.margins(net, x, noise[s]) for s in range(S)])
    cb = G.screen_bounds(kn)
    m0, nk0 = int(pk.rows[0]), int(pk.nbp[0])
    tmp = Path(tempfile.mkdtemp(prefix="walk_kernels_"))
    mods = []
    for i, f in enumerate(files):
        (tmp / f"k{i}").mkdir()
        shutil.copy(f, tmp / f"k{i}" / f"walk_k{i}.py")
        mods.append(load(tmp / f"k{i}" / f"walk_k{i}.py", f"walk_k{i}"))

    def buffers():
        g = mods[0].make_grid_scratch(pk.L, kn.width, 2)  # one Grid type for all
        tables = np.zeros((BLOCK, m0)), np.zeros((BLOCK, nk0 * m0)), np.zeros((BLOCK, 2 * nk0))
        return g, *tables, np.zeros(S * P), np.zeros(S * P, np.bool_)

    def run(GK, B, b):
        g, tz, tw, tb, f, flag = B
        c = time.process_time()
        p0, p1 = b * BLOCK, (b + 1) * BLOCK
        GK.layer0_table(kn, opt, x, p0, p1, g, tz, tw, tb)
        for s in range(S):
            GK.grid_chunk(kn, opt, x, noise, s, p0, p1, g, taus[s], cb, tz, tw, tb, False, f, np.zeros((0, pk.L)),
                          flag)  # fmt: skip
        return (time.process_time() - c) / (BLOCK * S) * 1e6

    bufs = [buffers() for _ in mods]
    for GK, B in zip(mods, bufs, strict=True):  # compile
        run(GK, B, blocks[0])
    res = [[] for _ in mods]
    for r in range(rounds):
        for i, b in enumerate(blocks):
            order = range(len(mods)) if (r + i) % 2 == 0 else range(len(mods) - 1, -1, -1)
            for k in order:
                res[k].append(run(mods[k], bufs[k], b))
    print(f"MAP-M walk kernels, {S} samples per call, blocks {blocks}, {rounds} rounds, one thread;",
          os.popen("uptime").read().strip())  # fmt: skip
    f0 = bufs[0][4]
    for k, f in enumerate(files):
        v = res[k]
        ratio = statistics.median([a / b for a, b in zip(v, res[0], strict=True)])
        same = np.array_equal(bufs[k][4], f0) and np.array_equal(bufs[k][5], bufs[0][5])
        print(f"  {f}: median {statistics.median(v):.3f} q25 {np.percentile(v, 25):.3f} min {min(v):.3f} us/pair;"
              f" median ratio {ratio:.3f}; {'identical' if same else 'DIFFERENT'}")  # fmt: skip
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
