"""The compile notice: one line on stderr when numba's cache of a kernel file is
empty, none once it is filled, none twice in one process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTICE = "regiongeom: compiling"


def _run(code, cache_dir, cwd):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), PYTHONPATH=os.pathsep.join([str(ROOT), str(cwd)]))
    env.pop("NUMBA_DISABLE_JIT", None)
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


TINY = textwrap.dedent(
    """
    from numba import njit

    @njit(cache=True)
    def helper(x):
        return 2.0 * x

    @njit(cache=True)
    def kernel(x):
        return helper(x) + 1.0
    """
)

CALL_TWICE = textwrap.dedent(
    """
    import sys
    import tiny_kernels as K
    from regiongeom._jit import compile_notice

    for _ in range(2):
        shown = compile_notice("the tiny kernels", K.kernel, seconds=1)
        assert K.kernel(1.0) == 3.0
        print(shown)
    """
)


def test_notice_on_an_empty_cache_only(tmp_path):
    """A throwaway kernel file: the notice on the first run (and only once in
    it), none on the second run, which loads the cache."""
    (tmp_path / "tiny_kernels.py").write_text(TINY)
    first = _run(CALL_TWICE, tmp_path / "cache", tmp_path)
    assert first.stderr.count(NOTICE) == 1
    assert "regiongeom: compiling the tiny kernels (once; about 1 s)..." in first.stderr
    assert first.stdout.split() == ["True", "False"]
    second = _run(CALL_TWICE, tmp_path / "cache", tmp_path)
    assert NOTICE not in second.stderr
    assert second.stdout.split() == ["False", "False"]


def test_notice_again_after_the_source_changes(tmp_path):
    """A changed kernel file invalidates numba's cache: the notice comes back."""
    (tmp_path / "tiny_kernels.py").write_text(TINY)
    _run(CALL_TWICE, tmp_path / "cache", tmp_path)
    (tmp_path / "tiny_kernels.py").write_text(TINY.replace("2.0 * x", "2.0 * x + 0.0") + "\n# changed\n")
    again = _run(CALL_TWICE, tmp_path / "cache", tmp_path)
    assert again.stderr.count(NOTICE) == 1


def test_no_notice_without_jit(tmp_path):
    (tmp_path / "tiny_kernels.py").write_text(TINY)
    code = "import tiny_kernels as K\nfrom regiongeom._jit import compile_notice\n"
    code += "print(compile_notice('the tiny kernels', K.kernel, seconds=1))"
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]))
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["False"] and NOTICE not in r.stderr


@pytest.mark.slow
def test_lc_density_announces_the_theorem2_compile(tmp_path):
    """The Theorem-2 wrapper announces its compile on an empty cache, and the
    next process (cache filled) runs silently."""
    code = textwrap.dedent(
        """
        import regiongeom as rg
        net = rg.Network.from_arrays([[[1.0, -1.0]], [[1.0]]], [[0.0], [0.0]], ["relu", None])
        rg.lc_density(net, [[0.1, 0.2]], sigma=0.5, n_samples=2, rng=0, progress=False)
        """
    )
    first = _run(code, tmp_path / "cache", tmp_path)
    assert first.stderr.count("regiongeom: compiling the Theorem-2 kernels (once; about") == 1
    second = _run(code, tmp_path / "cache", tmp_path)
    assert NOTICE not in second.stderr


@pytest.mark.slow
def test_theorem2_kernels_compile_in_a_child_on_first_use(tmp_path):
    """On an empty cache the child process compiles the Theorem-2 kernels into
    the same cache, with the signatures the estimator then uses: after it, a
    dense network's lc_density runs without compiling (no notice)."""
    code = textwrap.dedent(
        """
        from regiongeom import _theorem2_kernels as K
        from regiongeom._jit import _needs_compile, theorem2_in_background
        assert _needs_compile(K.theorem2_chunk)
        child = theorem2_in_background()
        assert child is not None and child.wait() == 0
        assert not _needs_compile(K.theorem2_chunk)
        from regiongeom import _theorem2_grid as G
        assert not _needs_compile(G.grid_chunk) and not _needs_compile(K.theorem2_pairs)
        assert theorem2_in_background() is None  # nothing left to compile
        import regiongeom as rg
        net = rg.Network.from_arrays([[[1.0, -1.0], [0.5, 2.0]], [[1.0, -1.0]]], [[0.0, 0.3], [0.0]],
                                     ["leaky_relu", None])
        rg.lc_density(net, [[0.1, 0.2], [0.3, -0.4]], sigma=0.5, n_samples=3, rng=1, progress=False)
        rg.lc_density(net, rg.grid_points((0, 0, 1, 1), 3), sigma=0.5, n_samples=3, rng=1, progress=False)
        """
    )
    r = _run(code, tmp_path / "cache", tmp_path)
    assert NOTICE not in r.stderr


def test_the_warm_up_can_leave_out_the_per_point_kernels(monkeypatch):
    """``theorem2_in_background(points=False)`` (a heat map the grid walk
    takes whole: ``regiongeom demo``) starts only the grid walk's child."""
    import subprocess as sp

    from regiongeom import _jit

    started = []

    class FakeChild:
        def __init__(self, args, **kw):
            started.append(args[-1])

        def wait(self):
            return 0

    monkeypatch.setattr(_jit, "_needs_compile", lambda kernel: True)
    monkeypatch.setattr(sp, "Popen", FakeChild)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert _jit.theorem2_in_background(points=False).wait() == 0
    assert started == [_jit._THEOREM2_WARMUPS["grid"]]
    started.clear()
    assert _jit.theorem2_in_background().wait() == 0
    assert started == [_jit._THEOREM2_WARMUPS["points"], _jit._THEOREM2_WARMUPS["grid"]]


@pytest.mark.slow
def test_the_demo_map_does_not_compile_the_per_point_kernels():
    """The walk takes the demo network's heat map whole (no pair handed over),
    so the per-point Theorem-2 kernels are neither compiled nor loaded."""
    code = textwrap.dedent(
        """
        import regiongeom as rg
        from regiongeom import _theorem2_kernels as K
        from regiongeom.datasets import DEFAULT_DOMAIN, DEFAULT_SIGMA, default_network
        rg.lc_density(default_network(), rg.grid_points(DEFAULT_DOMAIN, 24), sigma=DEFAULT_SIGMA, n_samples=3,
                      rng=0, progress=False)
        assert not K.theorem2_chunk.signatures, K.theorem2_chunk.signatures
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("NUMBA_DISABLE_JIT", None)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
