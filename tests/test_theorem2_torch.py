"""``lc_density(..., device=...)``: Theorem 2 with torch (here on its CPU
device) against the numba kernels, and the benchmark's straightforward torch
baseline (benchmarks/bench_lc784.py) against both."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_complexity import BRUTE_NETS, rand_net
from test_without_torch import _HIDE_TORCH

import regiongeom as rg

HERE = Path(__file__).resolve().parent
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")


def baseline():
    sys.path.insert(0, str(HERE.parent / "benchmarks"))
    try:
        from bench_lc784 import theorem2_torch_baseline
    finally:
        sys.path.remove(str(HERE.parent / "benchmarks"))
    return theorem2_torch_baseline


def points(net, n=30, seed=2):
    return np.random.default_rng(seed).uniform(-1.5, 1.5, size=(n, net.n_in))


@needs_torch
@pytest.mark.parametrize("name", list(BRUTE_NETS))
def test_device_cpu_matches_numba(name):
    """Every variant (good, rho, by_layer) to 1e-10, on every brute-force net
    (sparse weights, several activations, linear layers between)."""
    net = BRUTE_NETS[name]()
    x = points(net)
    for kw in [dict(), dict(good=False), dict(rho=False), dict(by_layer=True)]:
        kw.update(sigma=0.4, n_samples=4, rng=1, progress=False)
        ref = rg.lc_density(net, x, **kw)
        est = rg.lc_density(net, x, device="cpu", **kw)
        scale = np.abs(ref.mean).max()
        np.testing.assert_allclose(est.mean, ref.mean, rtol=1e-10, atol=1e-10 * scale, err_msg=str(kw))
        np.testing.assert_allclose(est.stderr, ref.stderr, rtol=1e-8, atol=1e-10 * scale, err_msg=str(kw))


@needs_torch
@pytest.mark.parametrize("seed", [0, 1])
def test_device_cpu_matches_numba_many_inputs(seed):
    """Many inputs (the first layer's QR factor on both sides), wide layers."""
    net = rand_net([24, 20, 16, 20], ["relu"] * 4, n_in=50, seed=seed, last_act=None)
    x = np.random.default_rng(seed).random((40, 50))
    kw = dict(sigma=0.5, n_samples=3, rng=seed, progress=False)
    ref, est = rg.lc_density(net, x, **kw), rg.lc_density(net, x, device="cpu", **kw)
    np.testing.assert_allclose(est.mean, ref.mean, rtol=1e-10)


@needs_torch
@pytest.mark.parametrize("name", ["bottleneck-1", "zero-weights", "mixed-acts", "linear-middle-sparse"])
def test_benchmark_baseline_matches(name):
    """The straightforward torch baseline of the LC-784 benchmark computes the
    same formula: 1e-12 against regiongeom (same noise draws)."""
    net = BRUTE_NETS[name]()
    x, sigma, S = points(net, 25), 0.4, 4
    noise = np.random.default_rng(3).normal(0.0, sigma, size=(S, net.n_neurons))  # as lc_density draws it
    f = baseline()(net, x, noise, sigma, batch=16)
    ref = rg.lc_density(net, x, sigma=sigma, n_samples=S, rng=3, progress=False)
    np.testing.assert_allclose(f.mean(axis=0), ref.mean, rtol=1e-12, atol=1e-12 * np.abs(ref.mean).max())


@needs_torch
@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(device="nodevice"), "device 'nodevice' is not usable by torch in float64"),
        (dict(device=3.5), "device 3.5 is not usable by torch"),
        (dict(device="cpu", method="definition", eps=0.1), "method='theorem2' only"),
        (dict(device="cpu", n_jobs=2), "use n_jobs=1"),
    ],
)
def test_device_errors(kw, match):
    net = BRUTE_NETS["bottleneck-1"]()
    with pytest.raises(ValueError, match=match) as e:
        rg.lc_density(net, points(net, 3), sigma=0.3, n_samples=2, **kw)
    assert "\n" not in str(e.value)


def test_device_without_torch_says_install_the_extra():
    code = _HIDE_TORCH + (
        "import numpy as np, regiongeom as rg\n"
        "net = rg.Network.from_arrays([[[1.0]], [[1.0]]], [[0.0], [0.0]], ['relu', None])\n"
        "try:\n"
        "    rg.lc_density(net, [0.5], sigma=0.5, n_samples=2, device='cuda')\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=HERE.parent)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines() == [
        "device= runs the estimator with torch, which is not installed: pip install 'regiongeom[torch]'"
    ]
