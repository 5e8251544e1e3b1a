"""The 2D engine's memory savers: finished layers' pieces kept as bits, and
the largest arrays grown without holding two copies (pages of the old copy
given back as they are copied). Both must be invisible in the results."""

import numpy as np
import pytest

import regiongeom as rg
from regiongeom._engine import core


def test_bit_pieces_read_back_as_the_int8_pieces(monkeypatch):
    rng = np.random.default_rng(0)
    pieces = (rng.random((1000, 37)) < 0.5).astype(np.int8)
    bits = core.BitPieces(pieces)
    assert bits.shape == pieces.shape and bits.bits.nbytes == 1000 * 5
    for face in (0, 17, 999):
        assert bits[face].dtype == np.int8 and np.array_equal(bits[face], pieces[face])
    monkeypatch.setattr(core.BitPieces, "_ROWS", 64)  # several chunks
    idx = rng.integers(0, 1000, 500)
    out = np.full((500, 50), 7, np.int8)
    bits.take(idx, out[:, 5:42])
    assert np.array_equal(out[:, 5:42], pieces[idx])
    assert (out[:, :5] == 7).all() and (out[:, 42:] == 7).all()


def test_only_two_piece_layers_are_kept_as_bits():
    pieces = np.array([[0, 1, 2], [2, 1, 0]], np.int8)
    kept = core.finished_pieces(pieces, 3)
    assert isinstance(kept, np.ndarray) and np.array_equal(kept, pieces) and kept.base is None
    assert isinstance(core.finished_pieces(pieces[:, :2] % 2, 2), core.BitPieces)


@pytest.mark.parametrize("fill", [None, -1])
def test_grown_copies_and_releases_only_an_unshared_array(monkeypatch, fill):
    monkeypatch.setattr(core, "_RELEASE_BYTES", 0)
    old = np.arange(300_000, dtype=np.int64).reshape(100_000, 3).copy()  # many pages, owns them
    want = old[:70_000].copy()
    new = core.grown(old, 120_000, 70_000, fill=fill)
    assert new.shape == (120_000, 3) and np.array_equal(new[:70_000], want)
    if fill is not None:
        assert (new[70_000:] == fill).all()
    # a view of the old array still alive: nothing may be released under it
    old = np.arange(300_000, dtype=np.int64).reshape(100_000, 3).copy()
    view = old[50_000:]
    new = core.grown(old, 100_000, 100_000)
    assert np.array_equal(view[:, 0], np.arange(150_000, 300_000, 3))
    assert np.array_equal(new, np.arange(300_000).reshape(100_000, 3))


def test_grown_releases_pages_of_an_unshared_array(monkeypatch):
    """The pages given back read as zeros afterwards: proof that the release
    happened (on Linux), which is what keeps the peak memory down."""
    import sys

    monkeypatch.setattr(core, "_RELEASE_BYTES", 0)
    if core._madvise() is None:
        pytest.skip(f"no madvise on {sys.platform}: arrays grow by plain copies there")
    holder = [np.ones((1 << 20,), np.float64)]
    old = holder.pop()
    new = core.grown(old, 1 << 21, 1 << 20)
    assert (new[: 1 << 20] == 1).all() and (old[1024:-1024] == 0).all()


def test_results_do_not_depend_on_the_memory_savers(monkeypatch):
    """Growing with page release (threshold 0: every array) and bit pieces
    give the same regions as plain copies and int8 pieces."""
    rng = np.random.default_rng(3)
    sizes = [2, 24, 24, 24, 1]
    net = rg.Network.from_arrays(
        [rng.standard_normal((sizes[i + 1], sizes[i])) for i in range(4)],
        [rng.standard_normal(sizes[i + 1]) * 0.5 for i in range(4)],
        ["relu", "relu", "relu", None],
    )
    monkeypatch.setattr(core, "_RELEASE_BYTES", 0)
    a = rg.activation_regions(net, (-2, -2, 2, 2))
    monkeypatch.setattr(core, "_RELEASE_BYTES", 1 << 62)
    monkeypatch.setattr(core, "finished_pieces", lambda p, n: p.copy())
    import regiongeom._engine.mesh2d as mesh2d

    monkeypatch.setattr(mesh2d, "finished_pieces", lambda p, n: p.copy())
    b = rg.activation_regions(net, (-2, -2, 2, 2))
    assert len(a.measures) == len(b.measures) > 300
    assert np.array_equal(a.patterns, b.patterns) and np.array_equal(a.measures, b.measures)
