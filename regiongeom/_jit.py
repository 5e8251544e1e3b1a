"""A one-line notice before numba compiles a kernel file for the first time.

numba compiles the kernels on their first use after an install or a change
and keeps the result in its cache (``cache=True``), so later processes load
them in a fraction of a second. Without a word, the first use looks like a
hang. A wrapper calls :func:`compile_notice` with the entry points of its
kernel file right before it calls them::

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
