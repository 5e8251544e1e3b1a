"""The `regiongeom` command: summaries, GeoJSON export, one-line errors."""

import json
import subprocess
import sys

import numpy as np

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
