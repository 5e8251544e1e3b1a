"""Plain Python threads for the ``nogil`` numba kernels.

The Monte Carlo kernels release the GIL, so a few Python threads run them in
parallel without starting numba's own threading layer (which would change
process-wide state and can spin against torch's or BLAS's threads). Work is
cut into fixed tickets handed out as threads ask, so results never depend on
the number of threads.
"""

from __future__ import annotations

import itertools
import os


def n_threads() -> int:
    """``REGIONGEOM_NUM_THREADS`` if set, else the cores this process may use."""
    env = os.environ.get("REGIONGEOM_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_tickets(n_tickets: int, work, *, name: str = "regiongeom") -> None:
    """Call ``work(t)`` for every ticket ``t`` in ``range(n_tickets)``, on the
    calling thread and up to ``n_threads() - 1`` helpers, each taking the next
    ticket when it is free (on a busy machine a static split waits for the
    slowest thread)."""
    tickets = itertools.count()  # next() on it is atomic: a thread-safe ticket counter

    def loop():
        while (t := next(tickets)) < n_tickets:
            work(t)

    helpers = min(n_threads(), n_tickets) - 1
    if helpers <= 0:
        loop()
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(helpers, thread_name_prefix=name) as ex:
        futures = [ex.submit(loop) for _ in range(helpers)]
        loop()
        for fut in futures:
            fut.result()
