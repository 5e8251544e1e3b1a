"""A one-line notice before numba compiles a kernel file for the first time.

numba compiles the kernels on their first use after an install or a change
and keeps the result in its cache (``cache=True``), so later processes load
them in a fraction of a second. Without a word, the first use looks like a
hang. A wrapper calls :func:`compile_notice` with the entry points of its
kernel file right before it calls them::

    from . import _theorem2_grid as G
    from . import _theorem2_kernels as K
    from ._jit import compile_notice

    compile_notice("the Theorem-2 kernels", K.theorem2_chunk, seconds=8)
    K.theorem2_chunk(...)

The check reads numba's cache index of each entry point (the same test
numba makes before compiling: an index for this numba version whose stamp
matches the source file), once per process and kernel file.
"""

from __future__ import annotations

import sys
import threading

_lock = threading.Lock()
_checked: set[str] = set()  # the kernel files already checked in this process


def compile_notice(what, *kernels, seconds):
    """Print ``regiongeom: compiling <what> (once; about <seconds> s)...`` to
    stderr if any of ``kernels`` will be compiled on its next call.

    Parameters
    ----------
    what : str
        The kernels' name in the message, e.g. ``"the Theorem-2 kernels"``;
        also the key of the once-per-process check.
    *kernels : numba dispatchers
        The ``@njit(cache=True)`` functions the wrapper is about to call
        (the helpers they call are compiled with them).
    seconds : float, keyword-only
        The usual one-time compile, for the message.

    Returns
    -------
    bool
        Whether the notice was printed. Nothing is printed a second time in
        one process, when every kernel is already compiled in this process
        or cached on disk, or when numba's JIT is disabled.
    """
    with _lock:
        if what in _checked:
            return False
        _checked.add(what)
        if not any(_needs_compile(k) for k in kernels):
            return False
    print(f"regiongeom: compiling {what} (once; about {seconds:.0f} s)...", file=sys.stderr, flush=True)
    return True


def _needs_compile(kernel):
    """Whether calling ``kernel`` will compile it: no signature compiled in
    this process and no fresh entry in numba's cache."""
    if not hasattr(kernel, "signatures"):  # a plain function (NUMBA_DISABLE_JIT=1)
        return False
    if kernel.signatures:
        return False
    try:
        index = kernel._cache._cache_file._load_index()  # numba's own freshness test
    except Exception:  # no cache or an unreadable index: numba compiles
        return True
    return not index


# tiny calls of the Theorem-2 estimator: the same kernel signatures as any dense 2D
# or 1D network's (arrays of float64, one thread ticket each). One child process
# compiles the per-point kernels, another the grid walk's (a grid of points: the
# heat maps' route; its hand-over to the per-point kernels is skipped there, so
# that the two children do not both compile those).
_WARMUP_NET = (
    "import regiongeom as rg\n"
    "net = rg.Network.from_arrays([[[1.0, 0.5], [0.5, -1.0]], [[1.0, 1.0]]], [[0.1, -0.2], [0.0]], ['relu', None])\n"
)
_THEOREM2_WARMUPS = {
    "points": _WARMUP_NET
    + "rg.lc_density(net, [[0.0, 0.0]], sigma=0.5, n_samples=2, rng=0, progress=False)\n",
    "grid": _WARMUP_NET
    + "from regiongeom import _theorem2_kernels as K\n"
    + "K.theorem2_pairs = lambda *args: 0\n"
    + "rg.lc_density(net, rg.grid_points((-1, -1, 1, 1), 2), sigma=0.5, n_samples=2, rng=0, progress=False)\n",
}


class _Children:
    """The warm-up processes; :meth:`wait` waits for all of them and returns
    0 if each exited with 0 (else the first non-zero status)."""

    def __init__(self, procs):
        self.procs = procs

    def wait(self):
        codes = [p.wait() for p in self.procs]
        return next((c for c in codes if c), 0)


def theorem2_in_background(points=True):
    """On a machine with two or more cores, when the Theorem-2 kernels are not
    in numba's cache yet, compile them in child processes (same cache) while
    this one compiles the engine: the per-point kernels in one (unless not
    ``points``: a heat map the grid walk takes whole needs none), the grid
    walk's in another, so that the machine's cores share the compiles and
    the first ``regiongeom demo`` pays for about half their sum instead of
    the longest. Returns the children (to ``wait()`` on before the
    estimator is called), or None."""
    import os
    import subprocess

    from . import _theorem2_grid as G
    from . import _theorem2_kernels as K

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    if cores < 2:
        return None
    kernels = (("points", K.theorem2_chunk),) if points else ()
    todo = [name for name, k in (*kernels, ("grid", G.grid_chunk)) if _needs_compile(k)]
    procs = []
    for name in todo:
        try:
            procs.append(subprocess.Popen([sys.executable, "-c", _THEOREM2_WARMUPS[name]],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        except OSError:  # cannot start a process: compile in this one, as usual
            break
    return _Children(procs) if procs else None
