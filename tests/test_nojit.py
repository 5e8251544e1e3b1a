"""The small-case suite also passes with numba's JIT disabled (pure Python kernels)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="already running without JIT")
def test_small_cases_without_jit():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-x",
        str(HERE / "test_locus.py"),
        str(HERE / "test_robustness.py"),
        str(HERE / "test_engine_1d.py"),
        str(HERE / "test_mesh.py"),
        "-k",
        "not hypothesis and not d1_with and not same_bits",
    ]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=HERE.parent)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
