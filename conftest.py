"""Shared by the tests and the docstring examples (``--doctest-modules``)."""

import os

# no window ever opens: plotting tests, docstring examples and the subprocesses
# they start (CLI, gallery scripts)
os.environ["MPLBACKEND"] = "Agg"
