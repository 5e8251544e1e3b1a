"""The `regiongeom` command: summaries, GeoJSON export, one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

import regiongeom as rg
from regiongeom.cli import main
from regiongeom.examples import random_network


def run(*args):
    return subprocess.run([sys.executable, "-m", "regiongeom.cli", *args], capture_output=True, text=True)


def test_help():
    r = run("--help")
    assert r.returncode == 0
    assert "regions" in r.stdout


def test_regions_npz_and_geojson(tmp_path, capsys):
    net = random_network([6, 6], rng=1)
    path = tmp_path / "net.npz"
    net.save(path)
    out = tmp_path / "map.geojson"
    assert main(["regions", str(path), "--domain=-1,-1,1,1", "--geojson", str(out)]) == 0
    text = capsys.readouterr().out
    rm = rg.activation_regions(net, (-1, -1, 1, 1))
    assert f"activation regions: {len(rm):,}" in text
    data = json.loads(out.read_text())
    kinds = [f["properties"]["kind"] for f in data["features"]]
    assert kinds.count("activation_region") == len(rm)
    assert kinds.count("locus") == len(rg.nonlinear_locus(rm))


def test_plain_npz_arrays(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "w.npz"
    np.savez(path, W0=rng.normal(size=(5, 1)), b0=rng.normal(size=5), W1=rng.normal(size=(1, 5)), b1=np.zeros(1))
    assert main(["regions", str(path), "--domain=-3,3"]) == 0
    assert "activation regions:" in capsys.readouterr().out


@pytest.mark.slow
def test_errors_are_one_line(tmp_path):
    r = run("regions", str(tmp_path / "missing.pt"))
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0 and "does not exist" in r.stderr
    net = random_network([3], rng=0)
    path = tmp_path / "n.npz"
    net.save(path)
    for bad, msg in ((["--domain", "1,0,0,1"], "xmin < xmax"), (["--domain", "a,b"], "comma-separated"),
                     (["--domain", "0,1"], "needs a box"), (["--max-regions", "0"], "max_regions")):
        r = run("regions", str(path), *bad)
        assert r.returncode != 0, bad
        assert "Traceback" not in r.stderr and msg in r.stderr, (bad, r.stderr)


@pytest.mark.slow
def test_demo_writes_figure_and_summary(tmp_path):
    r = run("demo", "--out", str(tmp_path), "--samples", "4", "--grid", "32", "--no-progress")
    assert r.returncode == 0, r.stderr
    net = rg.default_network()
    rm = rg.activation_regions(net, rg.datasets.DEFAULT_DOMAIN)
    assert f"activation regions: {len(rm):,}" in r.stdout
    assert f"linear regions: {len(rg.linear_regions(rm)):,}" in r.stdout
    assert "local complexity over the domain" in r.stdout and "+-" in r.stdout
    png = tmp_path / "figure1_bunny.png"
    assert png.exists() and png.stat().st_size > 10_000


@pytest.mark.slow
def test_map_user_model_torch(tmp_path):
    torch = __import__("pytest").importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    path = tmp_path / "model.pt"
    torch.save(model, path)
    r = run("map", str(path), "--domain=-2,-2,2,2", "--out", str(tmp_path), "--samples", "4", "--grid", "24",
            "--method", "definition", "--eps", "0.1", "--geojson", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "model.png").exists() and (tmp_path / "model.geojson").exists()
    assert "definition, eps=0.1" in r.stdout


@pytest.mark.slow
def test_lc_option_errors(tmp_path):
    for bad, msg in ((["--sigma", "0"], "--sigma"), (["--samples", "1"], "--samples"),
                     (["--method", "definition"], "--eps")):
        r = run("demo", "--out", str(tmp_path), "--no-progress", *bad)
        assert r.returncode != 0 and "Traceback" not in r.stderr and msg in r.stderr, (bad, r.stderr)
