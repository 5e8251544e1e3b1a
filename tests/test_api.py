"""The public namespace: what ``import regiongeom as rg`` exports, and nothing that does not work."""

import re
from pathlib import Path

import regiongeom as rg


def test_all_names_exist():
    for name in rg.__all__:
        assert hasattr(rg, name), name
    assert len(set(rg.__all__)) == len(rg.__all__)


def test_no_tolerance_knobs_exported():
    # the tolerances are read by the engine when it is imported: setting them on rg would do nothing
    for name in ("REL_TOL", "JAC_RTOL", "GEOM_RTOL"):
        assert name not in rg.__all__ and not hasattr(rg, name)


def test_version_matches_pyproject():
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert re.search(r'^version = "([^"]+)"', text, re.M).group(1) == rg.__version__
