"""How the 1D engine (:mod:`.line1d`) shares a layer's products and fill
with its helper thread: work handed out in chunks to whichever thread asks
next (:class:`Shared`), the products at the old points and at the
crossings computed directly (:class:`Product`, :func:`product_alone`) and
the pipeline in which the threads go on from the old points' product to
the crossings' (:class:`ProductThenFill`). Chunks never depend on which
thread runs them: the same bits with or without the helper."""

from __future__ import annotations

import threading

import numpy as np

from . import _line1d_products as P

__all__ = ["Shared", "Product", "ProductThenFill", "fill_chunks", "product_alone", "join", "finish"]


class Shared:
    """Work on ``n`` items in chunks of ``step``, ``fn(*head, q0, q1, *tail)``
    for each chunk ``[q0, q1)``, handed out to whichever thread asks next
    (:meth:`work`): a thread that comes late finds less or nothing left."""

    def __init__(self, fn, head, tail, n, step):
        self.fn, self.head, self.tail = fn, head, tail
        self.n = n
        self.step = max(step, 1)
        self.next = 0
        self.lock = threading.Lock()

    def work(self):
        """Run chunks until none is left."""
        step, n = self.step, self.n
        while True:
            with self.lock:
                q0 = self.next
                self.next = min(q0 + step, n)
            if q0 >= n:
                return
            self.fn(*self.head, q0, min(q0 + step, n), *self.tail)

    def stop(self):
        """Hand out no more chunks."""
        with self.lock:
            self.next = self.n


class Product(Shared):
    """One product (:func:`._line1d_products.product_1d`) over the values ``Z[rows]``
    (in the order of the points; bounds ``Zerr`` and factors ``Zfac``) into rows
    ``off + rows`` of ``out`` (and their bounds' factors ``fac``, its blocks
    numbered from ``boff``), in chunks of ``step`` rows (whole blocks of
    ``B``) when ``shared``; with ``inorder``, the values of ``rows[q]`` go to
    row ``off + q`` (the matrix products write them in place)."""

    def __init__(
        self, Z, Zerr, Zfac, Zmax, rows, off, act, wt, b, lb, consts, out, fac, boff, emax, shared, inorder,
        B, step,
    ):  # fmt: skip
        # alone, one call takes every block (the same blocks: they start at
        # multiples of B either way), saving a numba call per block
        head = (Z, Zerr, *Zfac, Zmax, rows, off)
        tail = (*act, wt, b, lb.babs, consts, out, *fac, boff, emax, B, inorder)
        super().__init__(P.product_1d, head, tail, rows.size, step if shared else rows.size)


class ProductThenFill(Product):
    """A shared :class:`Product` of the old points' rows, in point order,
    whose threads go on, once the cut has handed them over
    (:meth:`add_fill`), to the crossings: the product of those computed
    directly (if any), in blocks, then the fill of the others' rows
    (:func:`._line1d_products.fill_new_rows_1d`) in chunks, one per block of
    old points (:func:`fill_chunks`): chunk ``j`` needs the rows of old
    blocks ``j - 1`` (its last) and ``j`` and the direct product's blocks
    holding its direct crossings. A thread takes the next block of either
    product while there is one; then a ready chunk of a block it computed
    (whose rows are in its core's cache: filled by the other core, D1's fill
    took twice as long), then any ready chunk; it waits while the chunks
    left need a block still being computed. So a thread that runs out of
    blocks fills while the other finishes its last one, with no further
    hand-off to the helper (waking it costs tens of microseconds). Every
    row is made by the same code from the same rows: the same bits as the
    products and the fill one after the other."""

    def __init__(self, *args):
        super().__init__(*args)
        self.cond = threading.Condition(self.lock)
        self.owner = {}  # old block -> the thread that computed it
        self.fill = None
        self.chunks = {}  # old block -> its chunk (e0, e1, d0, d1), while not taken
        self.direct = None  # the direct product, its blocks handed out from dnext
        self.dnext = 0
        self.ddone = set()  # the direct product's blocks done
        self.failed = False

    def add_fill(self, fill, tail, chunks, direct=None):
        """Hand over the direct product ``direct`` (a :class:`Product` in
        blocks, or None) and the fill ``fill_new_rows_1d(*fill, e0, e1, *tail)``
        in ``chunks`` (old block -> ``(e0, e1, d0, d1)``: its crossings, and
        the direct product's blocks ``[d0, d1)`` they need)."""
        with self.lock:
            self.fill, self.ftail, self.chunks, self.direct = fill, tail, chunks, direct
            self.cond.notify_all()

    def _ready(self, j):
        own = self.owner
        _, _, d0, d1 = self.chunks[j]
        return j in own and (j == 0 or j - 1 in own) and all(d in self.ddone for d in range(d0, d1))

    def _take(self, me):
        """The next task of thread ``me`` (under the lock): ``(0, q0)`` an old
        block, ``(1, q0)`` a direct block, ``(2, chunk)``, ``(3, None)`` to
        wait, or None: nothing left."""
        q0 = self.next
        if q0 < self.n:
            self.next = min(q0 + self.step, self.n)
            return 0, q0
        d = self.direct
        if d is not None and self.dnext < d.n:
            q0 = self.dnext
            self.dnext = min(q0 + d.step, d.n)
            return 1, q0
        chunks = self.chunks
        for j in chunks:  # (few chunks)
            if self.owner.get(j) == me and self._ready(j):
                return 2, chunks.pop(j)
        for j in chunks:
            if self._ready(j):
                return 2, chunks.pop(j)
        if chunks:  # (every block is handed out: those they need are being computed)
            return 3, None
        return None

    def work(self):
        """Run blocks and chunks until none is left (or another thread failed).
        Whatever stops this thread early (an error, an interrupt) marks the
        work failed and wakes the other thread, which may be waiting for a
        block this one took."""
        try:
            self._work()
        except BaseException:
            with self.lock:
                self.failed = True
                self.cond.notify_all()
            raise

    def _work(self):
        me = threading.get_ident()
        while True:
            with self.lock:
                task = None if self.failed else self._take(me)
                if task is None:
                    return
                kind, x = task
                if kind == 3:
                    self.cond.wait()
                    continue
            if kind == 0:
                self.fn(*self.head, x, min(x + self.step, self.n), *self.tail)
            elif kind == 1:
                d = self.direct
                d.fn(*d.head, x, min(x + d.step, d.n), *d.tail)
            else:
                P.fill_new_rows_1d(*self.fill, x[0], x[1], *self.ftail)
            if kind < 2:
                with self.lock:
                    if kind == 0:
                        self.owner[x // self.step] = me
                    else:
                        self.ddone.add(x // self.direct.step)
                    self.cond.notify_all()

    def stop(self):
        super().stop()
        with self.lock:
            self.chunks = {}


def fill_chunks(cnew, V, direct, B):
    """The chunks of a pipelined fill (:meth:`ProductThenFill.add_fill`), by
    chunk ``j`` of the old points' product (``B`` rows each, the products'
    ``step``): ``(e0, e1, d0, d1)``, the crossings ``[e0, e1)`` of old
    intervals ``[jB - 1, (j + 1)B - 1)``, whose ends' rows are in chunks
    ``j - 1`` and ``j``, and the chunks ``[d0, d1)`` of the direct product
    (over the crossings ``direct``, sorted) that hold theirs; empty chunks
    left out."""
    nblk = -(-V // B)
    bounds = [0, *(j * B - 1 for j in range(1, nblk)), V - 1]
    eb = np.searchsorted(cnew, bounds).tolist()  # (few numpy calls: each costs microseconds)
    eb[-1] = cnew.size
    db = np.searchsorted(direct, eb).tolist() if direct.size else [0] * len(eb)
    chunks = {}  # (the direct crossings of chunk j: places [db[j], db[j + 1]) of ``direct``)
    for j in range(nblk):
        e0, e1, d0, d1 = eb[j], eb[j + 1], db[j], db[j + 1]
        if e1 > e0:
            chunks[j] = (e0, e1, d0 // B, -(-d1 // B) if d1 > d0 else 0)
    return chunks


def product_alone(
    Z, Zerr, Zfac, Zmax, rows, off, act, wt, b, lb, consts, out, fac, boff, emax, shared, inorder, B, step
):
    """The whole :class:`Product` of these arguments (not ``shared``) in one call, as its
    :meth:`Shared.work` would make it."""
    if rows.size:
        P.product_1d(
            Z, Zerr, *Zfac, Zmax, rows, off, 0, rows.size, *act, wt, b, lb.babs, consts, out, *fac, boff,
            emax, B, inorder,
        )  # fmt: skip


def join(fut):
    """Wait for the helper's share ``fut`` of a :class:`Shared` work (None:
    no helper) once the caller's :meth:`Shared.work` has returned, unless
    the helper has not started it: then it never will (nothing is left)."""
    if fut is not None and not fut.cancel():
        fut.result()


def finish(product, fut):
    """Finish the :class:`Product` ``product`` (its helper's share ``fut``, if any)."""
    try:
        product.work()
    finally:
        join(fut)
