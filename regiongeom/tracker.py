"""Track the paper's measures while a torch model trains.

A :class:`Tracker` is called from a plain training loop::

    tr = rg.Tracker(x_test, every=50, sigma=0.05)
    for step in range(n_steps):
        ...                      # one optimisation step
        tr.log(model, step)      # measures every 50 steps, otherwise returns at once
    tr.history.to_csv("measures.csv")
    tr.plot()

Threads. A training loop interleaved with measurement calls runs three
thread pools in turn: torch's intra-op pool (OpenMP), OpenBLAS's (numpy's
matrix products and SVDs) and numba's (the local complexity kernel). A pool
whose threads keep spinning after its call competes with the next one for
the cores; on a busy machine that alone can make the training steps several
times slower. So :meth:`Tracker.log` runs its computations with OpenBLAS
limited to one thread (``threadpoolctl``, only for the duration of the call,
so no worker is left spinning when training resumes; the products are small
and the numba kernel does the heavy part) and with torch's intra-op pool at
``torch_threads`` threads (default 1) while it converts the model, restoring
torch's setting afterwards. numba's default "workqueue" layer blocks its
idle threads, so it needs nothing. Nothing is changed outside the call.

torch's own pool is the larger cost on a loaded machine, with or without a
tracker: between two small ops its threads wait at a barrier for threads
the OS has not scheduled. For small models call ``torch.set_num_threads(1)``
in the training script (or set ``OMP_WAIT_POLICY=PASSIVE`` before importing
torch); the tracker does not change torch's setting outside its own calls.
``benchmarks/bench_tracker.py`` measures all of this.
"""

from __future__ import annotations

import csv
import time
from contextlib import contextmanager

import numpy as np

from ._validate import as_points, integer_at_least, positive

__all__ = ["Tracker", "History"]

MEASURES = ("local_complexity", "local_rank", "total_variation", "not_good", "regions")
DEFAULT_MEASURES = ("local_complexity", "local_rank", "total_variation", "not_good")


class History(list):
    """The tracker's table: a list of dicts, one per logged step.

    Every row holds ``step``, ``seconds`` (the time the measures took) and
    one column per scalar measure (``local_rank_1 .. local_rank_L`` for the
    per-layer local rank).
    """

    @property
    def columns(self) -> list:
        cols = []
        for row in self:
            cols += [k for k in row if k not in cols]
        return cols

    def column(self, name) -> np.ndarray:
        """(n_rows,) float64 values of one column (NaN where a row lacks it)."""
        if name not in self.columns:
            raise KeyError(f"no column {name!r}; the columns are {self.columns}")
        return np.array([row.get(name, np.nan) for row in self], dtype=np.float64)

    def to_csv(self, path) -> None:
        """Write the table as CSV with a header row."""
        cols = self.columns
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, restval="")
            w.writeheader()
            for row in self:
                w.writerow(row)


class Tracker:
    """Compute the paper's measures every ``every`` steps of a training loop.

    Parameters
    ----------
    data : (P, n_in) or (P, *input_shape) array_like of float64
        The points the measures average over (e.g. a few hundred test
        points), flattened to the network's input size. Given in the
        model's own shape (e.g. ``(P, 1, 28, 28)`` images), that shape is
        the ``input_shape`` the model is converted with.
    every : int, default 50
        :meth:`log` measures when ``step % every == 0``.
    sigma : float, default 0.05
        Bias noise of the local complexity (Theorem 2).
    measures : tuple of str
        Any of ``"local_complexity"`` (:func:`regiongeom.local_complexity`),
        ``"local_rank"`` (exact, per hidden layer, :func:`regiongeom.local_rank`),
        ``"total_variation"`` (:func:`regiongeom.total_variation`, no noise),
        ``"not_good"`` (``B``, :func:`regiongeom.not_good_count`, no noise),
        ``"regions"`` (the number of activation regions and the length of
        the nonlinear locus in ``domain``: on the input domain of a 2-input
        network, or on ``plane`` for any network).
    n_samples : int, default 8
        Noise samples of the local complexity.
    domain : tuple, optional
        ``(xmin, ymin, xmax, ymax)`` (``(lo, hi)`` on a Line) for
        ``"regions"``; default: the data's bounding box, or ``plane.bounds()``.
    plane : Plane or Line, optional
        With ``"regions"``: count on this slice through the input space (e.g.
        ``rg.Plane.through(x0, x1, x2)`` through three data points), using the
        exact restriction ``net.restrict(plane)``.
    rng : int, default 0
        Seed of the local complexity's noise (the same at every step, so the
        curve is not noisier than the model).
    torch_threads : int or None, default 1
        torch's intra-op threads while the tracker runs (``None``: leave).
    input_shape : tuple of int, optional
        One input's shape, passed to :func:`regiongeom.from_torch` (needed
        for a model starting with a convolution); default: ``data``'s own
        shape when it has more than two axes.
    rank_eps : float, optional
        With ``"local_rank"``, also log the approximate local rank
        ``LR^eps_l`` (singular values above ``rank_eps``) as
        ``local_rank_eps_1 .. local_rank_eps_L``.

    Attributes
    ----------
    history : History
    """

    def __init__(self, data, every=50, *, sigma=0.05, measures=DEFAULT_MEASURES, n_samples=8, domain=None,
                 plane=None, rng=0, torch_threads=1, rank_eps=None, input_shape=None):  # fmt: skip
        data = np.asarray(data, dtype=np.float64)
        if input_shape is None and data.ndim > 2:
            input_shape = data.shape[1:]
        self.input_shape = None if input_shape is None else tuple(int(d) for d in np.atleast_1d(input_shape))
        self.data = data.reshape(len(data), -1)
        if self.data.shape[0] == 0:
            raise ValueError("data is empty")
        self.every = integer_at_least(every, 1, "every")
        self.sigma = positive(sigma, "sigma")
        self.n_samples = integer_at_least(n_samples, 2, "n_samples")
        bad = [m for m in measures if m not in MEASURES]
        if bad or not measures:
            raise ValueError(f"unknown measures {bad}; choose from {list(MEASURES)}")
        self.measures = tuple(measures)
        if plane is not None:
            from .slices import Line, Plane

            if not isinstance(plane, (Plane, Line)):
                raise TypeError(f"plane must be an rg.Plane or rg.Line, got {type(plane).__name__}")
            if plane.n_in != self.data.shape[1]:
                raise ValueError(
                    f"plane lives in {plane.n_in} dimensions but the data has {self.data.shape[1]}"
                )
        elif "regions" in self.measures and self.data.shape[1] != 2:
            raise ValueError(
                "the 'regions' measure needs 2-dimensional inputs or a slice: pass "
                "plane=rg.Plane.through(x0, x1, x2), or drop 'regions'"
            )
        self.plane = plane
        self.domain = domain
        self.rng = rng
        self.torch_threads = (
            None if torch_threads is None else integer_at_least(torch_threads, 1, "torch_threads")
        )
        self.rank_eps = None if rank_eps is None else positive(rank_eps, "rank_eps")
        self.history = History()
        self._limit_blas = True  # the benchmark turns it off to show its effect

    def log(self, model, step, **extra) -> dict | None:
        """Measure ``model`` (a torch module or an rg.Network) at ``step``.

        A torch model is measured as it is in eval mode (BatchNorm with its
        running statistics, no Dropout), and left in the mode it was in.

        Returns the new row (also appended to :attr:`history`), or None when
        ``step`` is not a multiple of ``every``. Keyword arguments (e.g. the
        loss) are stored in the row as they are.
        """
        if step % self.every:
            return None
        t0 = time.perf_counter()
        with self._threads():
            net = self._network(model)
            row = {"step": int(step), **extra, **self._compute(net)}
        row["seconds"] = time.perf_counter() - t0
        self.history.append(row)
        return row

    def _network(self, model):
        from .network import Network, from_torch

        if isinstance(model, Network):
            net = model
        else:
            # the network the model is between steps: BatchNorm with its running
            # statistics and no Dropout (eval mode), whatever mode training uses
            was_training = getattr(model, "training", False)
            try:
                if was_training:
                    model.eval()
                net = from_torch(model, input_shape=self.input_shape)
            finally:
                if was_training:
                    model.train()
        as_points(self.data[:1], net.n_in, "data")  # one clear line if the sizes differ
        return net

    def _compute(self, net):
        from tqdm.auto import tqdm

        from .complexity import local_complexity
        from .measures import local_rank, not_good_count, total_variation

        row, x = {}, self.data
        bar = tqdm(self.measures, desc="tracker", leave=False, delay=1.0)
        for name in bar:
            if name == "local_complexity":
                est = local_complexity(net, x, sigma=self.sigma, n_samples=self.n_samples, rng=self.rng,
                                       progress=False)  # fmt: skip
                row.update(local_complexity=est.mean, local_complexity_stderr=est.stderr)
            elif name == "local_rank":
                for j, v in enumerate(local_rank(net, x)):
                    row[f"local_rank_{j + 1}"] = float(v)
                if self.rank_eps is not None:
                    for j, v in enumerate(local_rank(net, x, self.rank_eps)):
                        row[f"local_rank_eps_{j + 1}"] = float(v)
            elif name == "total_variation":
                row["total_variation"] = total_variation(net, x).mean
            elif name == "not_good":
                row["not_good"] = not_good_count(net, x).mean
            else:
                row.update(self._regions(net))
        bar.close()
        return row

    def _regions(self, net):
        from .locus import nonlinear_locus
        from .regions import activation_regions

        dom = self.domain
        if self.plane is not None:
            net = net.restrict(self.plane)
            dom = self.plane.bounds() if dom is None else dom
        elif dom is None:
            lo, hi = self.data.min(axis=0), self.data.max(axis=0)
            dom = (lo[0], lo[1], hi[0], hi[1])
        rm = activation_regions(net, dom)
        return {"n_regions": len(rm), "locus_length": float(nonlinear_locus(rm).volume())}

    @contextmanager
    def _threads(self):
        from threadpoolctl import threadpool_limits

        torch, old = None, None
        if self.torch_threads is not None:
            import sys

            torch = sys.modules.get("torch")
            if torch is not None:
                old = torch.get_num_threads()
                torch.set_num_threads(self.torch_threads)
        try:
            if self._limit_blas:
                with threadpool_limits(limits=1, user_api="blas"):
                    yield
            else:
                yield
        finally:
            if torch is not None:
                torch.set_num_threads(old)

    def plot(self, *, axes=None):
        """Figure-2/3 style panels: each tracked measure against the step.

        Parameters
        ----------
        axes : sequence of matplotlib Axes, optional
            One per panel; a new figure is made otherwise.

        Returns
        -------
        list of matplotlib Axes
        """
        import matplotlib.pyplot as plt

        h = self.history
        if not h:
            raise ValueError("nothing logged yet: call tr.log(model, step) in the training loop first")
        steps = h.column("step")
        panels = [p for p in _PANELS if any(c in h.columns for c in p[1](h.columns))]
        if axes is None:
            _, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.0), squeeze=False)
            axes = axes[0]
        for ax, (title, cols) in zip(axes, panels):
            for c in cols(h.columns):
                y = h.column(c)
                ax.plot(
                    steps,
                    y,
                    marker="o",
                    ms=2.5,
                    label=c.replace("local_rank_eps_", "layer ").replace("local_rank_", "layer "),
                )
                if c + "_stderr" in h.columns:
                    e = 2 * h.column(c + "_stderr")
                    ax.fill_between(steps, y - e, y + e, alpha=0.25)
            ax.set_title(title)
            ax.set_xlabel("step")
            if len(cols(h.columns)) > 1:
                ax.legend(fontsize=7)
        return list(axes)


_PANELS = [
    ("local complexity", lambda cols: [c for c in cols if c == "local_complexity"]),
    ("local rank", lambda cols: [c for c in cols if c.startswith("local_rank_") and "eps" not in c]),
    ("approximate local rank", lambda cols: [c for c in cols if c.startswith("local_rank_eps_")]),
    ("total variation", lambda cols: [c for c in cols if c == "total_variation"]),
    ("neurons not good (B)", lambda cols: [c for c in cols if c == "not_good"]),
    ("regions in the domain", lambda cols: [c for c in cols if c == "n_regions"]),
]
