"""Every gallery script runs (Agg backend, a temporary output folder) and
writes the PNGs it names, so the gallery cannot rot."""

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

GALLERY = Path(__file__).resolve().parents[1] / "gallery"
SCRIPTS = sorted(GALLERY.glob("plot_*.py"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_gallery_is_there():
    assert len(SCRIPTS) >= 6, SCRIPTS
    readme = (GALLERY / "README.md").read_text()
    for script in SCRIPTS:
        assert script.name in readme, f"gallery/README.md does not list {script.name}"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_gallery_script_runs(script, tmp_path):
    text = script.read_text()
    if re.search(r"^import torch|^from torch", text, re.M) and importlib.util.find_spec("torch") is None:
        pytest.skip("needs torch")
    # sphinx-gallery style: a titled docstring and cells
    assert text.lstrip().startswith('"""') and "\n=" in text.split('"""')[1], "needs a titled docstring"
    assert "# %%" in text
    assert not re.search(r"^plt\.show\(\)", text, re.M), "plt.show() must not be unconditional"
    expected = re.findall(r'OUT / "([^"]+\.png)"', text)
    assert expected, "the script saves no figure to OUT"
    env = dict(os.environ, MPLBACKEND="Agg", REGIONGEOM_GALLERY_OUT=str(tmp_path / "out"))
    env.pop("REGIONGEOM_GALLERY_FULL", None)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)  # fmt: skip
    elapsed = time.perf_counter() - t0
    assert r.returncode == 0, f"{script.name} failed after {elapsed:.1f} s:\n{r.stdout}\n{r.stderr}"
    for name in expected:
        png = tmp_path / "out" / name
        assert png.exists(), f"{script.name} did not write {name}"
        assert png.read_bytes()[:8] == PNG_MAGIC
        assert png.stat().st_size > 5_000, f"{name} looks empty"
