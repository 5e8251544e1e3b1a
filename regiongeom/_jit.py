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


# a tiny call of the Theorem-2 estimator: the same kernel signatures as any
# dense 2D or 1D network's (arrays of float64, one thread ticket each)
_THEOREM2_WARMUP = (
    "import regiongeom as rg\n"
    "net = rg.Network.from_arrays([[[1.0, 0.5], [0.5, -1.0]], [[1.0, 1.0]]], [[0.1, -0.2], [0.0]], ['relu', None])\n"
    "rg.lc_density(net, [[0.0, 0.0]], sigma=0.5, n_samples=2, rng=0, progress=False)\n"
    # and the grid walk (a grid of points: the heat maps' route)
    "rg.lc_density(net, rg.grid_points((-1, -1, 1, 1), 2), sigma=0.5, n_samples=2, rng=0, progress=False)\n"
)


def theorem2_in_background():
    """On a machine with two or more cores, when the Theorem-2 kernels are not
    in numba's cache yet, compile them in a child process (same cache) while
    this one compiles the engine: the first ``regiongeom demo`` then pays for
    the longer of the two compiles instead of their sum. Returns the child
    (to ``wait()`` on before the estimator is called), or None."""
    import os
    import subprocess

    from . import _theorem2_grid as G
    from . import _theorem2_kernels as K

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    if cores < 2 or not (_needs_compile(K.theorem2_chunk) or _needs_compile(G.grid_chunk)):
        return None
    try:
        return subprocess.Popen(
            [sys.executable, "-c", _THEOREM2_WARMUP], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    except OSError:  # cannot start a process: compile in this one, as usual
        return None
