"""The public namespace: what ``import regiongeom as rg`` exports, and nothing that does not work."""

import importlib
import re
from pathlib import Path

import pytest

import regiongeom as rg


def test_all_names_exist():
    for name in rg.__all__:
        assert hasattr(rg, name), name
    assert len(set(rg.__all__)) == len(rg.__all__)


def test_no_tolerance_knobs():
    # every decision is exact: there are no tolerances to set
    for name in ("REL_TOL", "JAC_RTOL", "GEOM_RTOL"):
        assert name not in rg.__all__ and not hasattr(rg, name)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("regiongeom.tolerance")


def test_version_matches_pyproject():
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert re.search(r'^version = "([^"]+)"', text, re.M).group(1) == rg.__version__
