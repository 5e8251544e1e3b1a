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
    np.savez(
        path, W0=rng.normal(size=(5, 1)), b0=rng.normal(size=5), W1=rng.normal(size=(1, 5)), b1=np.zeros(1)
    )
    assert main(["regions", str(path), "--domain=-3,3"]) == 0
    assert "activation regions:" in capsys.readouterr().out


@pytest.mark.slow
def one_line_error(capsys, *argv):
    """Run the command in-process; return its one-line error message."""
    assert main(list(argv)) == 2, argv
    err = capsys.readouterr().err
    assert err.startswith("regiongeom: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_errors_are_one_line(tmp_path, capsys):
    r = run("regions", str(tmp_path / "missing.pt"))
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0 and "does not exist" in r.stderr
    net = random_network([3], rng=0)
    path = tmp_path / "n.npz"
    net.save(path)
    for bad, msg in (
        (["--domain", "1,0,0,1"], "xmin < xmax"),
        (["--domain", "a,b"], "--domain must be numbers"),
        (["--domain", "0,1"], "needs a box"),
        (["--max-regions", "0"], "--max-regions must be"),
    ):
        assert msg in one_line_error(capsys, "regions", str(path), *bad), bad


def test_domain_with_commas_or_spaces(tmp_path, capsys):
    path = tmp_path / "n.npz"
    random_network([4], rng=0).save(path)
    for argv in (["--domain=-2,-2,2,2"], ["--domain", "-2,-2,2,2"], ["--domain", "-2", "-2", "2", "2"],
                 ["--domain", "-2 -2 2 2"], ["--domain", "-2,", "-2", "2,2"]):  # fmt: skip
        for order in ([str(path), *argv], [*argv, str(path)]):  # before or after MODEL
            assert main(["regions", *order]) == 0, order
            assert "domain: (-2.0, -2.0, 2.0, 2.0)" in capsys.readouterr().out


def test_max_regions_error_speaks_cli(tmp_path, capsys):
    path = tmp_path / "n.npz"
    random_network([8, 8], rng=0).save(path)
    err = one_line_error(capsys, "regions", str(path), "--max-regions", "3")
    assert "--max-regions N" in err and "max_regions=" not in err


def test_definition_needs_eps_before_any_work(tmp_path, capsys):
    err = one_line_error(capsys, "demo", "--out", str(tmp_path), "--method", "definition")
    assert "--method definition needs --eps" in err and "-1" not in err
    assert "--eps is used only by --method definition" in one_line_error(capsys, "demo", "--eps", "0.1")
    assert not list(tmp_path.iterdir())


def test_npz_key_errors_and_help(tmp_path, capsys):
    path = tmp_path / "w.npz"
    np.savez(path, weight=np.ones((2, 2)))
    err = one_line_error(capsys, "regions", str(path))
    assert "W0, b0, W1, b1" in err and "rg.Network.save" in err and "weight" in err
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"not a zip file")
    assert "not a readable .npz" in one_line_error(capsys, "regions", str(bad))
    r = run("map", "--help")
    assert "W0, b0, W1, b1" in r.stdout and "rg.Network.save" in r.stdout and "--domain -2 -2 2 2" in r.stdout


def test_torch_files_that_are_not_models(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    err = one_line_error(capsys, "regions", str(tmp_path / "sd.pt"))
    assert "holds only weights" in err and "'0.weight'" in err and "--factory module:function" in err
    torch.save({"model_state_dict": model.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    assert "holds only weights" in one_line_error(capsys, "regions", str(tmp_path / "ckpt.pt"))
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert "torch.load failed" in one_line_error(capsys, "regions", str(tmp_path / "junk.pt"))
    (tmp_path / "m.h5").write_bytes(b"")
    assert "unknown model format '.h5'" in one_line_error(capsys, "regions", str(tmp_path / "m.h5"))


def _write_factory(tmp_path, monkeypatch):
    (tmp_path / "factory_models.py").write_text(
        "import torch\n"
        "def make():\n"
        "    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).double()\n"
        "def not_a_model():\n"
        "    return 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))


def test_state_dict_with_factory_on_a_plane_and_a_line(tmp_path, capsys, monkeypatch):
    torch = pytest.importorskip("torch")
    _write_factory(tmp_path, monkeypatch)
    import factory_models

    model = factory_models.make()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    pts = np.random.default_rng(0).normal(size=(3, 2, 3))  # three inputs of shape (2, 3)
    np.save(tmp_path / "pts.npy", pts)
    np.save(tmp_path / "two.npy", pts[:2])
    assert main(["regions", str(tmp_path / "sd.pt"), "--factory", "factory_models:make",
                 "--plane", str(tmp_path / "pts.npy")]) == 0  # fmt: skip
    plane = rg.Plane.through(*pts)
    rm = rg.activation_regions(rg.from_torch(model).restrict(plane), plane.bounds())
    out = capsys.readouterr().out
    assert f"activation regions: {len(rm):,}" in out and "Network(2 ->" in out
    assert main(["regions", str(tmp_path / "sd.pt"), "--factory", "factory_models:make",
                 "--line", str(tmp_path / "two.npy"), "--domain", "0,1"]) == 0  # fmt: skip
    line = rg.Line.through(*pts[:2])
    rm1 = rg.activation_regions(rg.from_torch(model).restrict(line), (0.0, 1.0))
    out = capsys.readouterr().out
    assert f"activation regions: {len(rm1):,}" in out and "domain: (0.0, 1.0)" in out


def test_slice_and_factory_errors(tmp_path, capsys, monkeypatch):
    torch = pytest.importorskip("torch")
    _write_factory(tmp_path, monkeypatch)
    import factory_models

    torch.save(factory_models.make().state_dict(), tmp_path / "sd.pt")
    torch.save(factory_models.make(), tmp_path / "whole.pt")
    np.save(tmp_path / "pts.npy", np.zeros((3, 6)) + np.eye(3, 6))
    sd, whole, pts = str(tmp_path / "sd.pt"), str(tmp_path / "whole.pt"), str(tmp_path / "pts.npy")
    assert "pass --plane POINTS.npy" in one_line_error(capsys, "regions", whole)
    assert "must hold 2 inputs of 6 entries" in one_line_error(capsys, "regions", whole, "--line", pts)
    assert "either --plane or --line" in one_line_error(
        capsys, "regions", whole, "--line", pts, "--plane", pts
    )
    assert "has no 'nope'" in one_line_error(capsys, "regions", sd, "--factory", "factory_models:nope")
    assert "cannot import module" in one_line_error(capsys, "regions", sd, "--factory", "no_such_mod:make")
    assert "must be module:function" in one_line_error(capsys, "regions", sd, "--factory", "factory_models")
    assert "not a torch nn.Module" in one_line_error(
        capsys, "regions", sd, "--factory", "factory_models:not_a_model"
    )
    torch.save({"0.weight": torch.zeros(4, 6)}, tmp_path / "bad.pt")
    err = one_line_error(capsys, "regions", str(tmp_path / "bad.pt"), "--factory", "factory_models:make")
    assert "does not fit the model of --factory" in err
    np.save(tmp_path / "net.npz.npy", np.zeros(1))
    random_network([4], rng=0).save(tmp_path / "net.npz")
    err = one_line_error(capsys, "regions", str(tmp_path / "net.npz"), "--factory", "factory_models:make")
    assert "state_dict file" in err
    (tmp_path / "notnpy.npy").write_text("text")
    assert "cannot read" in one_line_error(capsys, "regions", whole, "--plane", str(tmp_path / "notnpy.npy"))


def test_pickled_custom_class_names_the_class(tmp_path):
    pytest.importorskip("torch")
    script = (
        "import torch\n"
        "class MyNet(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.lin = torch.nn.Linear(2, 3)\n"
        "torch.save(MyNet(), 'custom.pt')\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True)
    r = run("regions", str(tmp_path / "custom.pt"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    assert "class MyNet" in r.stderr and "rg.from_torch(model).save" in r.stderr and "PYTHONPATH" in r.stderr


@pytest.mark.slow
def test_demo_writes_figure_and_summary(tmp_path):
    r = run("demo", "--out", str(tmp_path), "--samples", "4", "--shape", "32", "--no-progress")
    assert r.returncode == 0, r.stderr
    net = rg.default_network()
    rm = rg.activation_regions(net, rg.datasets.DEFAULT_DOMAIN)
    assert f"activation regions: {len(rm):,}" in r.stdout
    assert f"linear regions: {len(rg.linear_regions(rm)):,}" in r.stdout
    assert "local complexity over the domain" in r.stdout and "+-" in r.stdout
    png = tmp_path / "figure1_bunny.png"
    assert png.exists() and png.stat().st_size > 10_000


@pytest.mark.slow
def test_demo_runs_the_monte_carlo_once(tmp_path, capsys, monkeypatch):
    import regiongeom.complexity as cx

    calls = []
    real = cx._estimate
    monkeypatch.setattr(cx, "_estimate", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert main(["demo", "--out", str(tmp_path), "--samples", "2", "--shape", "8", "--no-progress"]) == 0
    assert len(calls) == 1
    assert (tmp_path / "figure1_bunny.png").exists()


def test_map_user_model_torch(tmp_path):
    torch = __import__("pytest").importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    path = tmp_path / "model.pt"
    torch.save(model, path)
    r = run(
        "map",
        str(path),
        "--domain=-2,-2,2,2",
        "--out",
        str(tmp_path),
        "--samples",
        "4",
        "--shape",
        "24",
        "--method",
        "definition",
        "--eps",
        "0.1",
        "--geojson",
        str(tmp_path / "m.geojson"),
        "--no-progress",
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "model.png").exists() and (tmp_path / "m.geojson").exists()
    assert "definition, eps=0.1" in r.stdout


@pytest.mark.slow
def test_lc_option_errors(tmp_path):
    for bad, msg in (
        (["--sigma", "0"], "--sigma"),
        (["--samples", "1"], "--samples"),
        (["--method", "definition"], "--eps"),
    ):
        r = run("demo", "--out", str(tmp_path), "--no-progress", *bad)
        assert r.returncode != 0 and "Traceback" not in r.stderr and msg in r.stderr, (bad, r.stderr)


def test_exported_program_pt2(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1)).double()
    program = torch.export.export(model, (torch.randn(3, 2, dtype=torch.float64),))
    torch.export.save(program, str(tmp_path / "m.pt2"))
    assert main(["regions", str(tmp_path / "m.pt2")]) == 0
    rm = rg.activation_regions(rg.from_torch(model), (-1, -1, 1, 1))
    assert f"activation regions: {len(rm):,}" in capsys.readouterr().out
    (tmp_path / "bad.pt2").write_bytes(b"junk")
    assert "torch.export.load failed" in one_line_error(capsys, "regions", str(tmp_path / "bad.pt2"))
