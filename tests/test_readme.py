"""The README's tour runs as written (Agg backend, in a temporary folder)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def tour():
    text = README.read_text()
    m = re.search(r"## A short tour\s+```python\n(.*?)```", text, re.S)
    assert m, "README has no tour"
    return m.group(1)


def test_tour_draws_each_picture_on_its_own_figure():
    code = tour()
    assert code.count("plt.subplots(") + code.count("rg.figure1(") >= 2
    assert "savefig(" in code and "plt.show()" in code
    assert re.search(r"plot_regions\(rm, ax=ax", code)
    assert "Plane.through(" in code and "restrict(plane)" in code and "decision_boundary=True" in code


@pytest.mark.slow
def test_tour_runs(tmp_path):
    pytest.importorskip("torch", reason="the tour slices a torch classifier")
    pytest.importorskip("sklearn", reason="the tour loads scikit-learn's digits")
    env = dict(os.environ, MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, "-c", tour()], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=900)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "figure1.png").stat().st_size > 10_000
    assert (tmp_path / "regions.png").stat().st_size > 10_000
    assert (tmp_path / "digits.png").stat().st_size > 10_000
