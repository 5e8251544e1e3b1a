"""What the 1D and 2D engines share.

Both keep, at every vertex of the current subdivision, the current layer's
preactivations (one row per vertex). On every face (interval) of the
subdivision all of a layer's preactivations are affine, so they are
interpolated exactly along edges when a vertex is created, and a neuron's
hyperplane ``z_j = t`` cuts a face along the segment joining its two zero
crossings. After a layer is cut, the next layer's preactivations at the
vertices are one matrix product.

Every layer records, for each face after its cut, the face it came from at
the layer's start (``parent``) and the linear piece of each of its neurons
(``pieces``); :func:`assemble_patterns` reads the full activation patterns
through that chain of parents.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit

DEFAULT_MAX_REGIONS = 2_000_000

BOUNDARY = -1  # edge label: the domain's boundary
ARTIFICIAL = -2  # edge label: an edge of the decomposition of a non-convex domain


class RegionLimitError(RuntimeError):
    """Raised when an enumeration would exceed ``max_regions``."""


def limit_error(n, max_regions, net):
    """The :class:`RegionLimitError` for passing ``max_regions`` with ``n``
    regions so far (None: the next layer would)."""
    # per region: a vertex's values (8 bytes per neuron of the widest layer),
    # about 4 half-edges and a face (250 bytes), and the pattern
    per = 8 * max(net.layer_sizes) + 250 + net.n_neurons
    so_far = f"{n:,} so far" if n is not None else "the next layer makes more"
    return RegionLimitError(
        f"the enumeration passed max_regions={max_regions:,} activation regions ({so_far}); "
        f"it needs roughly {per:,} bytes per region. Pass a larger max_regions= to "
        "activation_regions if you have the memory, or use a smaller domain."
    )


@dataclass(frozen=True)
class Subdivision:
    """The finished result of an enumeration, read by ``RegionMap``.

    ``vertices`` is ``(V,)`` (1D, sorted) or ``(V, 2)``; ``edges`` ``(E, 2)``
    vertex ids (1D: every interior point as ``(v, v)``); ``edge_regions``
    ``(E, 2)`` (-1: outside the domain); ``edge_neurons`` and
    ``edge_breakpoints`` ``(E,)``; ``patterns`` ``(R, n_neurons)`` int8;
    ``measures`` ``(R,)``. 2D only: every face's counter-clockwise vertex
    cycle ``ids[indptr[f]:indptr[f + 1]]``, and for a non-convex domain the
    ``shapes`` (shapely geometries) of the merged regions (then ``indptr`` and
    ``ids`` list the faces of the convex decomposition, not the regions).
    """

    vertices: np.ndarray
    edges: np.ndarray
    edge_regions: np.ndarray
    edge_neurons: np.ndarray
    edge_breakpoints: np.ndarray
    patterns: np.ndarray
    measures: np.ndarray
    indptr: np.ndarray | None = None
    ids: np.ndarray | None = None
    shapes: list | None = None


class PiecewiseLinear(NamedTuple):
    """An activation as float64 arrays: ``K`` breakpoints (sorted), and the
    ``K + 1`` slopes and intercepts of its pieces (piece ``p`` holds the
    values ``t_{p-1} <= x < t_p``)."""

    breakpoints: np.ndarray
    slopes: np.ndarray
    intercepts: np.ndarray


class Layer(NamedTuple):
    """One layer: ``weights (n_out, n_in)``, ``biases (n_out,)``, its
    activation (None: affine) and the index of its first neuron in the
    patterns."""

    weights: np.ndarray
    biases: np.ndarray
    act: PiecewiseLinear | None
    first: int


def layers(net):
    """The :class:`Layer` s of ``net`` up to the last one with an activation
    (the affine layers after it cut nothing)."""
    offs = net.neuron_offsets
    acts = list(net.activations)
    last = max((i for i, a in enumerate(acts) if a is not None), default=-1)
    for i in range(last + 1):
        a = acts[i]
        act = (
            None
            if a is None
            else PiecewiseLinear(*(np.array(v, np.float64) for v in (a.breakpoints, a.slopes, a.intercepts)))
        )
        w = np.ascontiguousarray(net.weights[i], np.float64)
        yield Layer(w, np.asarray(net.biases[i], np.float64), act, int(offs[i]))


def affine(h, w, b, out=None):
    """``h @ w.T + b`` for the rows of ``h`` (V, n_in), into ``out[:V]`` if given."""
    if out is None:
        out = np.empty((h.shape[0], w.shape[0]))
    z = out[: h.shape[0]]
    np.matmul(h, w.T, out=z)
    z += b
    return out


# -- reusable buffers ----------------------------------------------------------
_work = threading.local()
_WORK_MAX = 1 << 21  # elements (16 MB): the largest buffer kept between calls


def buffer(i, shape):
    """An uninitialised float64 array of ``shape`` on reusable buffer ``i``
    of the calling thread. Buffers up to ``_WORK_MAX`` elements are kept
    between calls: writing to fresh memory costs a page fault per 4 kB, a
    large share of the time of a small 1D enumeration (``lc_density`` and
    friends enumerate many lines)."""
    bufs = getattr(_work, "bufs", None)
    if bufs is None:
        bufs = _work.bufs = {}
    n = shape[0] * shape[1]
    buf = bufs.get(i)
    if buf is None or buf.size < n:
        buf = np.empty(max(n, 2 * (0 if buf is None else buf.size)))
        if buf.size <= _WORK_MAX:
            bufs[i] = buf
    return buf[:n].reshape(shape)


_RELEASE_BYTES = 64 << 20  # arrays at least this large give pages back while they are copied


def grown(old, cap, n, fill=None):
    """A new array of ``cap`` rows holding ``old[:n]`` (rows ``n:`` are
    ``fill``, or uninitialised). When the caller's name is the only other
    reference to ``old`` (no view, no container holds it) and ``old`` is
    large and owns its memory, the copy goes in chunks and each chunk's
    pages of ``old`` are given back to the system at once (``madvise``, Linux),
    so growing the engine's largest array (a vertex per row, a column per
    neuron) never holds both copies: on XL this was the peak memory.
    ``old`` must not be read afterwards (its released pages read as zeros)."""
    new = np.empty((cap,) + old.shape[1:], old.dtype)
    if fill is not None:
        new[n:] = fill
    alone = sys.getrefcount(old) <= 3  # the caller's name, this argument, getrefcount's own
    release = _madvise() if alone and old.nbytes >= _RELEASE_BYTES and old.flags.owndata else None
    if release is None or not old.flags.c_contiguous:
        new[:n] = old[:n]
        return new
    row = old.strides[0]
    step = max(1, (16 << 20) // row)
    base, page = old.ctypes.data, mmap.PAGESIZE
    for a in range(0, n, step):
        b = min(n, a + step)
        new[a:b] = old[a:b]
        lo = -(-(base + a * row) // page) * page
        hi = (base + b * row) // page * page
        if hi > lo:
            release(ctypes.c_void_p(lo), ctypes.c_size_t(hi - lo), 4)  # MADV_DONTNEED
    return new


def _madvise():
    """libc's ``madvise`` on Linux, else None."""
    global _MADVISE
    if _MADVISE is None:
        _MADVISE = False
        if sys.platform.startswith("linux"):
            try:
                fn = ctypes.CDLL(None, use_errno=True).madvise
                fn.argtypes, fn.restype = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int), ctypes.c_int
                _MADVISE = fn
            except (OSError, AttributeError):
                pass
    return _MADVISE or None


_MADVISE = None


# -- patterns ----------------------------------------------------------------
class BitPieces:
    """A layer's pieces on its faces when every unit has two pieces (ReLU,
    LeakyReLU, abs: piece 0 or 1), kept as bits, 8 times smaller than int8:
    what a finished layer keeps until the patterns are assembled (on XL the
    layers' pieces were 80 MB of its peak memory). Indexing a face's row
    gives its int8 pieces, as for an array."""

    _ROWS = 1 << 16  # rows unpacked at a time by :meth:`take`

    def __init__(self, pieces):
        self.shape = pieces.shape
        self.bits = np.packbits(pieces, axis=1)

    def __getitem__(self, face):
        return np.unpackbits(self.bits[face], count=self.shape[1]).view(np.int8)

    def take(self, idx, out):
        """``out[i] = self[idx[i]]`` for every row ``i`` of ``out``."""
        for a in range(0, idx.size, self._ROWS):
            rows = self.bits[idx[a : a + self._ROWS]]
            out[a : a + rows.shape[0]] = np.unpackbits(rows, axis=1, count=self.shape[1]).view(np.int8)


def finished_pieces(pieces, n_pieces):
    """What a finished layer keeps of its faces' ``pieces`` (a view into the
    engine's buffer): bits when its units have ``n_pieces == 2``, else a copy."""
    return BitPieces(pieces) if n_pieces == 2 else pieces.copy()


def assemble_patterns(blocks, n, n_neurons):
    """``(n, n_neurons)`` int8 patterns of the final faces from each layer's
    ``(first neuron, parent, pieces)`` (``blocks``, in layer order): the
    pieces of a layer are read at the face that the final face came from."""
    pat = np.empty((n, n_neurons), np.int8)  # every neuron is in one block
    idx = np.arange(n)
    for first, parent, pieces in reversed(blocks):
        out = pat[:, first : first + pieces.shape[1]]
        if isinstance(pieces, BitPieces):
            pieces.take(idx, out)
        else:
            _take_rows(pieces, idx, out)
        idx = parent[idx]
    return pat


class StagePieces:
    """A graph stage's pieces on its faces (2D) or intervals (1D), ``(faces,
    n)`` as far as indexing a face's row goes: the crossing neurons' from
    ``cut (faces, n_cut)``, the constant neurons' from ``const`` (-1 for the
    crossing ones)."""

    def __init__(self, cut, cross, const):
        self.cut, self.cross, self.const = cut, cross, const
        self.shape = (cut.shape[0], const.size)

    def __getitem__(self, face):
        row = self.const.copy()
        row[self.cross] = self.cut[face]
        return row


def assemble_stage_pieces(blocks, n, n_neurons):
    """As :func:`assemble_patterns`, for blocks of :class:`StagePieces`."""
    pat = np.empty((n, n_neurons), np.int8)
    idx = np.arange(n)
    for first, parent, pieces in reversed(blocks):
        part = pat[:, first : first + pieces.shape[1]]
        part[:] = pieces.const
        if pieces.cross.size:
            part[:, pieces.cross] = pieces.cut[idx]
        idx = parent[idx]
    return pat


@njit(cache=True)
def _take_rows(src, idx, out):
    """``out[i] = src[idx[i]]`` for every row ``i`` of ``out`` (which may be
    a column slice of a larger array)."""
    for i in range(out.shape[0]):
        r = idx[i]
        for j in range(out.shape[1]):
            out[i, j] = src[r, j]


# -- threads -----------------------------------------------------------------
@functools.cache
def _blas_controller():
    """A threadpoolctl controller of the BLAS libraries loaded, made once
    (making one scans the loaded libraries). scipy's OpenBLAS, which numba's
    ``np.dot`` calls, is loaded first so that the controller sees it."""
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


_blas_lock = threading.Lock()
_blas_state = {"depth": 0, "saved": []}


@contextmanager
def one_blas_thread():
    """Run BLAS (numpy's matrix products, numba's ``np.dot``) on one thread
    inside the block, and restore the previous limits on leaving it. The
    products here are many and small: OpenBLAS's worker threads would spin
    between them and take the core the numba kernels run on. Nested and
    concurrent blocks share one limit: the first to enter sets it, the last
    to leave restores it. (threadpoolctl lets one Python thread at a time
    control OpenBLAS's process-wide pool: from another thread the limit may
    be left as it is, which changes the speed, never the result.)"""
    # (the libraries' own get/set, not ``controller.limit``, which also reads
    # every library's version and configuration on each call)
    libs = _blas_controller().lib_controllers
    with _blas_lock:
        if _blas_state["depth"] == 0:
            _blas_state["saved"] = saved = [lib.get_num_threads() for lib in libs]
            for lib, n in zip(libs, saved, strict=True):
                if n != 1:
                    lib.set_num_threads(1)
        _blas_state["depth"] += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_state["depth"] -= 1
            if _blas_state["depth"] == 0:
                for lib, n in zip(libs, _blas_state["saved"], strict=True):
                    if n != 1:
                        lib.set_num_threads(n)
