"""The 1D engine's pipelined fill (``line1d._ProductThenFill``): with the
helper thread, the threads that compute the old points' rows of the next
layer go on to fill the crossings' rows, chunk by chunk as the rows they
need are written. Same bits as the fill after the product, every crossing
filled once, no deadlock when a chunk fails, and the chunks' bookkeeping."""

import threading
import time

import numpy as np
import pytest
from common import ACT_IDS, ACTIVATIONS, random_net

import regiongeom as rg
from regiongeom._engine import line1d as E

_FIELDS = ("vertices", "edges", "edge_regions", "edge_neurons", "edge_breakpoints", "patterns", "measures")


@pytest.fixture
def two_threads_small_blocks(monkeypatch):
    """A fresh helper on a 2-core machine, blocks of 4 points, every product shared."""
    monkeypatch.setattr(E, "_pool_state", {"pool": None})
    monkeypatch.delenv("REGIONGEOM_NUM_THREADS", raising=False)
    monkeypatch.setattr(E.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(E, "_BLOCK", 4)
    monkeypatch.setattr(E, "_PAR_MIN", 0)
    yield monkeypatch
    if E._pool_state["pool"] is not None:
        E._pool_state["pool"].shutdown()


def _spy_fills(monkeypatch):
    """Record every pipelined fill handed over: (chunks, number of crossings)."""
    seen = []
    real = E._ProductThenFill.add_fill

    def add_fill(self, fill, tail, chunks, direct=None):
        seen.append((dict(chunks), fill[7].size, 0 if direct is None else direct.n))
        real(self, fill, tail, chunks, direct)

    monkeypatch.setattr(E._ProductThenFill, "add_fill", add_fill)
    return seen


def _enumerate_in_a_thread(net, started=None, timeout=60):
    """Enumerate ``net`` on (-6, 6) in a thread of its own (after calling
    ``started`` there): ``(still running after timeout, the RuntimeError raised or None)``."""
    box = {}

    def run():
        if started is not None:
            started()
        try:
            rg.activation_regions(net, (-6.0, 6.0))
        except RuntimeError as err:
            box["err"] = err

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    return t.is_alive(), box.get("err")


@pytest.mark.parametrize("act_id", ACT_IDS)
def test_pipelined_fill_same_bits(act_id, two_threads_small_blocks):
    mp = two_threads_small_blocks
    act = ACTIVATIONS[act_id]
    nets = [
        # (wide enough that most old intervals have too few crossings to be computed directly)
        (random_net([64, 64, 48], n_in=1, activation=act, seed=5), (-3.0, 3.0)),
        (random_net([64, 40, 8], n_in=1, activation=[act, None, act], seed=6, scale=2.0), (-4.0, 1.0)),
        (random_net([64] * 4, n_in=1, activation=act, seed=7, scale=1.5), (-6.0, 6.0)),
    ]
    seen, directs = _spy_fills(mp), []
    for net, dom in nets:
        mp.setattr(E, "_PIPELINE", False)
        E.STATS.reset()
        a, sa = rg.activation_regions(net, dom), E.STATS.snapshot()
        assert not seen
        mp.setattr(E, "_PIPELINE", True)
        E.STATS.reset()
        b, sb = rg.activation_regions(net, dom), E.STATS.snapshot()
        assert seen, "the pipelined fill never ran"
        for chunks, nk, _ in seen:  # every crossing in one chunk, in order
            spans = [chunks[j][:2] for j in sorted(chunks)]
            assert spans[0][0] == 0 and spans[-1][1] == nk
            assert all(s[1] == t[0] for s, t in zip(spans, spans[1:], strict=False))
            assert all(e0 < e1 for e0, e1 in spans)
        assert sa == sb
        for f in _FIELDS:
            x, y = np.asarray(getattr(a, f)), np.asarray(getattr(b, f))
            assert x.dtype == y.dtype and x.shape == y.shape, f
            assert x.tobytes() == y.tobytes(), f
        # and against the forward pass at every interval's midpoint
        mid = b.intervals.mean(axis=1)
        np.testing.assert_array_equal(net.patterns(mid[:, None]), b.patterns)
        directs.extend(nd for _, _, nd in seen)
        seen.clear()
    assert any(directs), "no pipelined layer had crossings computed directly"


def test_fill_chunks_follow_the_blocks():
    rng = np.random.default_rng(3)
    for V in (2, 3, 4, 5, 8, 9, 17, 40):
        for _ in range(20):
            cnew = np.sort(rng.integers(0, V - 1, rng.integers(1, 3 * V)))
            direct = np.flatnonzero(rng.random(cnew.size) < rng.choice([0.0, 0.2, 1.0]))
            chunks = E._fill_chunks(cnew, V, direct, 4)
            spans = [chunks[j][:2] for j in sorted(chunks)]
            assert spans[0][0] == 0 and spans[-1][1] == cnew.size
            assert all(s[1] == t[0] for s, t in zip(spans, spans[1:], strict=False))
            for j, (e0, e1, d0, d1) in chunks.items():
                assert e0 < e1
                c = cnew[e0:e1]
                # chunk j: old intervals [4j - 1, 4j + 3), rows of blocks j - 1 and j
                assert c.min() >= max(4 * j - 1, 0) and c.max() < min(4 * j + 3, V - 1)
                # its direct crossings, at places [4 d0, 4 d1) of the direct product
                places = np.flatnonzero((direct >= e0) & (direct < e1))
                if places.size:
                    assert 4 * d0 <= places.min() and places.max() < 4 * d1
                    assert d0 == places.min() // 4 and d1 == places.max() // 4 + 1
                else:
                    assert d0 >= d1


def test_a_failing_chunk_raises_and_does_not_hang(two_threads_small_blocks):
    """A chunk that raises (on either thread) stops both threads: the error
    reaches the caller, nothing waits for ever."""
    mp = two_threads_small_blocks
    net = random_net([64] * 4, n_in=1, seed=7, scale=1.5)
    seen = _spy_fills(mp)
    real = E.P.fill_new_rows_1d
    calls = []

    def failing(*args):
        calls.append(threading.current_thread().name)
        if len(calls) == 3:
            raise RuntimeError("chunk failed")
        return real(*args)

    mp.setattr(E.P, "fill_new_rows_1d", failing)
    hangs, err = _enumerate_in_a_thread(net)
    assert not hangs, "the enumeration hangs after a failed chunk"
    assert "chunk failed" in str(err)
    assert seen and len(calls) == 3  # (a pipelined chunk failed)
    mp.setattr(E.P, "fill_new_rows_1d", real)
    assert len(rg.activation_regions(net, (-6.0, 6.0))) > 10  # and the engine still works


def test_an_interrupt_between_a_block_and_its_mark_does_not_hang(two_threads_small_blocks):
    """A thread stops (here: an error where an interrupt could land) after
    computing a block but before marking it done, once the fill is handed
    over and a chunk needs that block: the other thread, which would wait
    for it for ever, is woken and stops too, and the error reaches the caller."""
    mp = two_threads_small_blocks
    net = random_net([64] * 4, n_in=1, seed=7, scale=1.5)
    real_init, real_product = E._ProductThenFill.__init__, E.P.product_1d
    caller = threading.get_ident()
    fired = []

    class Owner(dict):
        def __init__(self, work):
            super().__init__()
            self.work = work

        def __setitem__(self, k, v):
            w = self.work
            if not fired and w.fill is not None and (k in w.chunks or k + 1 in w.chunks):
                fired.append(threading.get_ident())
                raise RuntimeError("interrupted")
            super().__setitem__(k, v)

    def init(self, *args):
        real_init(self, *args)
        self.owner = Owner(self)

    def slow_on_the_helper(*args):  # (so that blocks are left once the fill is handed over)
        if threading.get_ident() != caller:
            time.sleep(0.002)
        return real_product(*args)

    mp.setattr(E._ProductThenFill, "__init__", init)
    mp.setattr(E.P, "product_1d", slow_on_the_helper)

    def started():
        nonlocal caller
        caller = threading.get_ident()

    hangs, err = _enumerate_in_a_thread(net, started)
    assert not hangs, "the enumeration hangs after an interrupted thread"
    assert fired and "interrupted" in str(err)


def test_two_callers_share_one_helper(two_threads_small_blocks):
    """Two threads of the caller's enumerate at once: one helper thread takes
    the shares of both in turn (a share it reaches late finds nothing left);
    no one waits for ever and every result is the one-thread result."""
    mp = two_threads_small_blocks
    nets = [random_net([64] * 4, n_in=1, seed=s, scale=1.5) for s in (7, 8)]
    dom = (-6.0, 6.0)
    mp.setenv("REGIONGEOM_NUM_THREADS", "1")
    mp.setattr(E, "_pool_state", {"pool": None})
    want = [rg.activation_regions(net, dom) for net in nets]
    mp.delenv("REGIONGEOM_NUM_THREADS")
    seen = _spy_fills(mp)
    got, errors = {}, []

    def run(k):
        try:
            got[k] = [rg.activation_regions(nets[k], dom) for _ in range(6)]
        except Exception as err:  # (reported below)
            errors.append(err)

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "an enumeration hangs"
    assert not errors, errors
    assert seen and E._pool_state["pool"] is not None
    for k in (0, 1):
        for sub in got[k]:
            for f in _FIELDS:
                assert np.asarray(getattr(sub, f)).tobytes() == np.asarray(getattr(want[k], f)).tobytes(), f


def test_past_max_regions_with_the_pipeline(two_threads_small_blocks):
    net = random_net([64] * 4, n_in=1, seed=7, scale=1.5)
    n = len(rg.activation_regions(net, (-6.0, 6.0)))
    with pytest.raises(rg.RegionLimitError, match="max_regions"):
        rg.activation_regions(net, (-6.0, 6.0), max_regions=n // 2)
    assert len(rg.activation_regions(net, (-6.0, 6.0))) == n


def test_scheduling_blocks_first_then_own_chunks():
    """``_take``: the next old block while there is one, then the next
    direct one; then the ready chunks of the thread's own blocks, then any
    ready chunk; wait while a chunk needs a block in flight; nothing left: None."""
    p = E._ProductThenFill.__new__(E._ProductThenFill)
    E._Shared.__init__(p, None, (), (), 12, 4)  # 3 old blocks of 4 rows
    p.cond = threading.Condition(p.lock)
    p.owner, p.fill, p.failed, p.dnext, p.ddone = {}, object(), False, 0, set()
    p.direct = E._Shared(None, (), (), 6, 4)  # 2 direct blocks
    p.chunks = {0: (0, 2, 0, 0), 1: (2, 5, 1, 2), 2: (5, 9, 0, 0)}
    A, B = 1, 2
    assert p._take(A) == (0, 0)
    assert p._take(B) == (0, 4)
    assert p._take(A) == (0, 8)
    assert p._take(B) == (1, 0)
    assert p._take(B) == (1, 4)
    assert p._take(B) == (3, None)  # no block done yet: wait
    p.owner[1] = B
    p.owner[0] = A
    assert p._take(B) == (2, (0, 2, 0, 0))  # chunk 1 needs direct block 1, in flight
    p.ddone.add(1)
    assert p._take(B) == (2, (2, 5, 1, 2))
    assert p._take(B) == (3, None)  # chunk 2 needs old block 2, in flight on A
    p.owner[2] = A
    assert p._take(B) == (2, (5, 9, 0, 0))
    assert p._take(A) is None and p._take(B) is None
    p.chunks = {0: (0, 2, 0, 0), 1: (2, 5, 0, 0)}  # own ready chunks first
    assert p._take(A) == (2, (0, 2, 0, 0)) and p._take(A) == (2, (2, 5, 0, 0))
    p.chunks = {0: (0, 2, 0, 0), 1: (2, 5, 0, 0)}
    assert p._take(B) == (2, (2, 5, 0, 0))
