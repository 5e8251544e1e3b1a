"""Shared by the tests and the docstring examples (``--doctest-modules``)."""

import os

# no window ever opens: plotting tests, docstring examples and the subprocesses
# they start (CLI, gallery scripts)
os.environ["MPLBACKEND"] = "Agg"

# the torch conversion modules import torch: without it, their docstrings are not collected
import importlib.util  # noqa: E402

collect_ignore = (
    []
    if importlib.util.find_spec("torch")
    else ["regiongeom/torch_graph.py", "regiongeom/_torch_calls.py", "regiongeom/_graph_ops.py"]
)
