"""The tracker logs the same numbers as the direct calls, at the right steps,
restores every thread setting it touches, and writes and plots its table."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from common import random_net

import regiongeom as rg


@pytest.mark.slow
def test_rows_equal_the_direct_calls_at_multiples_of_every(tmp_path):
    net = random_net([6, 5], n_in=2, n_out=2, seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, size=(40, 2))
    tr = rg.Tracker(x, every=3, sigma=0.2, n_samples=4, rng=5,
                    measures=("local_complexity", "local_rank", "total_variation", "not_good", "regions"))  # fmt: skip
    rows = [tr.log(net, step, loss=0.5) for step in range(7)]
    assert [r is not None for r in rows] == [True, False, False, True, False, False, True]
    assert len(tr.history) == 3 and tr.history.column("step").tolist() == [0, 3, 6]
    row = tr.history[0]
    lc = rg.local_complexity(net, x, sigma=0.2, n_samples=4, rng=5)
    assert row["local_complexity"] == lc.mean and row["local_complexity_stderr"] == lc.stderr
    lr = rg.local_rank(net, x)
    assert [row["local_rank_1"], row["local_rank_2"]] == lr.tolist()
    assert row["total_variation"] == rg.total_variation(net, x).mean
    assert row["not_good"] == rg.not_good_count(net, x).mean
    lo, hi = x.min(axis=0), x.max(axis=0)
    rm = rg.activation_regions(net, (lo[0], lo[1], hi[0], hi[1]))
    assert row["n_regions"] == len(rm)
    assert row["locus_length"] == pytest.approx(rg.nonlinear_locus(rm).volume(), rel=1e-12)
    assert row["loss"] == 0.5 and row["seconds"] > 0
    path = tmp_path / "h.csv"
    tr.history.to_csv(path)
    with open(path) as f:
        back = list(csv.DictReader(f))
    assert len(back) == 3 and float(back[2]["total_variation"]) == pytest.approx(row["total_variation"])
    with pytest.raises(KeyError, match="no column"):
        tr.history.column("nope")


@pytest.mark.slow
def test_torch_model_and_thread_settings_are_restored():
    torch = pytest.importorskip("torch")
    from threadpoolctl import threadpool_info

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x = np.random.default_rng(1).normal(size=(30, 3))
    before_torch = torch.get_num_threads()
    before_blas = [(d["filepath"], d["num_threads"]) for d in threadpool_info()]
    seen = {}

    class Spy(rg.Tracker):
        def _compute(self, net):
            seen["torch"] = torch.get_num_threads()
            seen["blas"] = [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]
            return super()._compute(net)

    tr = Spy(x, every=1, sigma=0.3, n_samples=2, torch_threads=1)
    row = tr.log(model, 0)
    assert seen["torch"] == 1 and all(n == 1 for n in seen["blas"])
    assert torch.get_num_threads() == before_torch
    assert [(d["filepath"], d["num_threads"]) for d in threadpool_info()] == before_blas
    assert row["total_variation"] == rg.total_variation(rg.from_torch(model), x).mean


@pytest.mark.slow
def test_plot_draws_one_panel_per_measure():
    import matplotlib

    matplotlib.use("Agg")
    net = random_net([4, 4], n_in=2, seed=1)
    x = np.random.default_rng(2).uniform(-1, 1, size=(20, 2))
    tr = rg.Tracker(x, every=1, sigma=0.3, n_samples=2)
    with pytest.raises(ValueError, match="nothing logged"):
        tr.plot()
    for step in range(3):
        tr.log(net, step)
    axes = tr.plot()
    assert [a.get_title() for a in axes] == ["local complexity", "local rank", "total variation",
                                             "neurons not good (B)"]  # fmt: skip
    assert len(axes[1].lines) == 2  # one line per hidden layer


def test_bad_arguments_fail_early():
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="unknown measures"):
        rg.Tracker(x, measures=("lc",))
    with pytest.raises(ValueError, match="2-dimensional"):
        rg.Tracker(x, measures=("regions",))
    with pytest.raises(ValueError, match="every"):
        rg.Tracker(x, every=0)
    tr = rg.Tracker(x, every=1)
    with pytest.raises(ValueError, match="data"):
        tr.log(random_net([3], n_in=2), 0)


def test_regions_on_a_plane_through_the_data():
    """Any input size: 'regions' counts on the exact restriction to a plane."""
    net = random_net([12, 10], n_in=16, n_out=3, seed=4)
    x = np.random.default_rng(1).normal(size=(30, 16))
    plane = rg.Plane.through(x[0], x[1], x[2])
    tr = rg.Tracker(x, every=1, measures=("regions",), plane=plane)
    row = tr.log(net, 0)
    rm = rg.activation_regions(net.restrict(plane), plane.bounds())
    assert row["n_regions"] == len(rm) > 1
    assert row["locus_length"] == pytest.approx(rg.nonlinear_locus(rm).volume(), rel=1e-12)
    with pytest.raises(ValueError, match="plane lives in 16 dimensions"):
        rg.Tracker(x[:, :3], measures=("regions",), plane=plane)
    with pytest.raises(TypeError, match="rg.Plane"):
        rg.Tracker(x, measures=("regions",), plane=(0, 1))


def test_log_measures_a_model_in_training_mode_as_in_eval_mode():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 1)
    ).double()
    model.train()
    model(torch.randn(16, 2, dtype=torch.float64))  # running statistics move away from their start
    x = np.random.default_rng(0).normal(size=(20, 2))
    tr = rg.Tracker(x, every=1, sigma=0.1, n_samples=4, measures=("local_rank",), rng=0)
    row = tr.log(model, 0)
    assert model.training  # the training loop's mode is left as it was
    model.eval()
    expected = rg.local_rank(rg.from_torch(model), x)
    assert row["local_rank_1"] == pytest.approx(expected[0])
