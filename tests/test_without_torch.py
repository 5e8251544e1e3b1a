"""torch is optional: without it the package imports and the tests that need
no torch run (only the torch tests skip, none errors)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent

# as if torch were not installed: every import finder misses it (so "import torch"
# raises ImportError and importlib.util.find_spec("torch") is None)
_HIDE_TORCH = """
import sys

class HideTorch:
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            return None
        find = getattr(self.finder, "find_spec", None)
        return find(name, path, target) if find else None

    def __getattr__(self, attr):
        return getattr(self.finder, attr)

sys.meta_path[:] = [HideTorch(f) for f in sys.meta_path]
"""
_RUN = _HIDE_TORCH + "import pytest; sys.exit(pytest.main(sys.argv[1:]))"


@pytest.mark.slow
def test_tests_run_or_skip_cleanly_without_torch():
    # whole files, and the tests that use the standard networks (built with torch)
    files = [str(HERE / f) for f in ("test_network.py", "test_validation.py")] + [
        f"{HERE / 'test_regions.py'}::test_standard_network_counts",
        f"{HERE / 'test_engine_1d.py'}::test_d1_with_the_split_and_without",
    ]
    cmd = [sys.executable, "-c", _RUN, "-q", "-p", "no:cacheprovider", "-rs", *files]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
    tail = r.stdout[-3000:] + r.stderr[-2000:]
    assert r.returncode == 0, tail
    passed = int(re.search(r"(\d+) passed", r.stdout).group(1))
    skipped = re.findall(r"SKIPPED \[(\d+)\] \S+: (.*)", r.stdout)
    assert "error" not in r.stdout.splitlines()[-1], tail
    # only the tests that call torch skip; the rest of test_network.py runs
    assert passed >= 70, tail
    assert skipped and all("torch" in why for _, why in skipped), tail


def test_import_without_torch():
    code = (
        _HIDE_TORCH
        + "import importlib.util; assert importlib.util.find_spec('torch') is None; import regiongeom"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
