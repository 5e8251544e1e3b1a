"""Theorem 2 (eq. 6) of Patel & Montúfar: the network packed for the kernels,
and the kernels run over (sample, point) pairs on a few threads.

The kernels (:mod:`regiongeom._theorem2_kernels`) release the GIL, so plain
Python threads share the work: no numba threading layer is involved, and the
number of threads is ``REGIONGEOM_NUM_THREADS`` or the number of usable cores.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from . import _theorem2_kernels as K
from ._jit import compile_notice
from ._threads import run_tickets
from .network import Network

COMPILE_SECONDS = 8  # the kernels' one-time compile, for the notice
# gradients by BLAS products (Jacobian rows) from this many input directions on
# (fewer: the scalar loops, which also move values along a shared region)
BLAS_MIN_INPUTS = 16


class Packed:
    """The network as flat arrays for the kernels (``.kernel_net``, a
    :class:`~regiongeom._theorem2_kernels.Net`), plus the screen's bounds.

    Terms: one per (neuron, breakpoint of its activation), numbered neuron by
    neuron. Layers after the last activated one are linear: they neither move
    the locus nor close a path (only their zero weights can cut one).
    """

    def __init__(self, net: Network):
        L, acts = net.n_layers, net.activations
        self.L = L
        has_act = np.array([a is not None for a in acts])
        self.rows = rows = np.array([w.shape[0] for w in net.weights], np.int64)
        ident = (np.zeros(1), np.ones(2), np.zeros(2))  # placeholder for linear layers
        spec = [ident if a is None else (a.breakpoints, a.slopes, a.intercepts) for a in acts]
        self.noff = net.neuron_offsets.astype(np.int64)
        self.nbp = nbp = np.array([0 if a is None else a.breakpoints.size for a in acts], np.int64)
        self.kmax = int(nbp.max())
        self.toff = _offsets(rows * nbp)
        self.n_terms = int(self.toff[-1])  # one per (neuron, breakpoint), layer by layer
        bound, bound_off, bound_max, bound_max_off = layer_bounds(net)
        first, first_norm = first_factor(net.weights[0])
        self.blas = first.shape[1] >= BLAS_MIN_INPUTS
        self.kernel_net = K.Net(
            w_t=np.concatenate([w.T.ravel() for w in net.weights]),
            w_off=_offsets([w.size for w in net.weights]),
            rows=rows,
            width=int(rows.max()),
            bias=np.concatenate(net.biases),
            b_off=_offsets(rows),
            has_act=has_act,
            last_act=int(np.nonzero(has_act)[0].max()) if has_act.any() else -1,
            bps=np.concatenate([s[0] for s in spec]),
            bp_off=_offsets([s[0].size for s in spec]),
            slopes=np.concatenate([s[1] for s in spec]),
            icpts=np.concatenate([s[2] for s in spec]),
            sl_off=_offsets([s[1].size for s in spec]),
            act_at_bp=np.concatenate([s[1][:-1] * s[0] + s[2][:-1] for s in spec]),
            noise_off=self.noff,
            term_off=self.toff,
            bound=bound,
            bound_off=bound_off,
            bound_max=bound_max,
            bound_max_off=bound_max_off,
            # an open neuron connects to every open neuron of the next layer
            dense=bool(all(np.all(w != 0) for w in net.weights[1:])),
            bound_abs=bound_underflow(net),
        )
        self.first_t, self.first_norm = np.ascontiguousarray(first.T), first_norm

    def scratch(self, d):
        """A fresh :class:`~regiongeom._theorem2_kernels.Scratch` for ``d`` inputs."""
        L, W, nt = self.L, self.kernel_net.width, self.n_terms
        D = self.first_t.shape[0] if self.blas else d

        def lw(dtype=np.float64):
            return np.zeros((L, W), dtype)

        def per_layer(dtype=np.float64):
            return np.zeros(L, dtype)

        return K.Scratch(
            z=lw(), grad=np.zeros((L, D, W)), grad_norm=lw(), v=lw(), h=lw(), slope=lw(),
            piece=lw(np.int64), margin=lw(), widest=per_layer(), widest_j=per_layer(np.int64),
            second=per_layer(), second_j=per_layer(np.int64), smallest=per_layer(),
            any_open=per_layer(np.bool_), reaches=np.ones((L, W), np.bool_), weight=np.zeros(nt),
            undecided=np.zeros(nt, np.int64), layer_f=per_layer(), dh=np.zeros(W), dv=np.zeros(W),
            opened=np.ones((L, W), np.bool_), reach=np.zeros(W, np.bool_), reach_next=np.zeros(W, np.bool_),
        )  # fmt: skip

    def blas_scratch(self):
        """A fresh :class:`~regiongeom._theorem2_kernels.Blas` (the BLAS
        path's factor and one thread's buffers), or ``None`` off that path."""
        if not self.blas:
            return None
        W, D = self.kernel_net.width, self.first_t.shape[0]
        U = min(K.GROUP, int((self.rows * self.nbp).max()))  # terms recomputed together
        return K.Blas(first_t=self.first_t, first_norm=self.first_norm, wg=np.zeros(W * W), jg=np.zeros(D * W),
                      cols=np.zeros(W, np.int64), dvb=np.zeros(U * W), dhb=np.zeros(U * W),
                      decided=np.zeros(self.n_terms, np.int64))  # fmt: skip


def _offsets(sizes):
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def first_factor(w0):
    """``(F, norms)``: ``F F^T = W_0 W_0^T`` with as few columns as possible
    (``W_0`` itself when it has no more columns than rows, else the
    triangular factor of a QR decomposition of ``W_0^T``), and the row norms
    of ``W_0``, summed in column order as :func:`_gradients` sums them.

    Every later Jacobian is ``J_l = A_l W_0`` (``A_l`` the product of the
    later weights and slopes), so its row norms are those of ``A_l F``: ``W_0 =
    F Q^T`` with ``Q`` orthonormal columns. A 784-input layer of 200 neurons
    costs 200, not 784, columns per product.
    """
    m, d = w0.shape
    norm2 = np.zeros(m)
    for c in range(d):
        norm2 += w0[:, c] * w0[:, c]
    if d <= m:
        return np.ascontiguousarray(w0, np.float64), np.sqrt(norm2)
    r = np.linalg.qr(w0.T, mode="r")  # (m, m): w0.T = Q r
    return np.ascontiguousarray(r.T), np.sqrt(norm2)


def layer_bounds(net):
    """C[l, m] = |W_m| S_{m-1} ... S_{l+1} |W_{l+1}| (S: the largest |slope|):
    moving a neuron j of layer l by Delta moves unit k of layer m by at most
    C[l, m][k, j] |Delta|. Returns ``(bound, bound_off, bound_max,
    bound_max_off)``: every C[l, m] flattened at ``bound_off[l, m]``, and its
    column maxima (the whole layer's bound) at ``bound_max_off[l, m]``."""
    L = net.n_layers
    smax = [1.0 if a is None else float(np.abs(a.slopes).max()) for a in net.activations]
    blocks, cmax = [], []
    coff, cmoff = np.zeros((L, L), np.int64), np.zeros((L, L), np.int64)
    pos = mpos = 0
    for ly in range(L - 1):
        C = np.abs(net.weights[ly + 1])
        for m in range(ly + 1, L):
            if m > ly + 1:
                C = np.abs(net.weights[m]) @ (smax[m - 1] * C)
            coff[ly, m], cmoff[ly, m] = pos, mpos
            blocks.append(C.ravel())
            cmax.append(C.max(axis=0))
            pos += C.size
            mpos += C.shape[1]
    bound = np.concatenate(blocks) if blocks else np.zeros(1)
    bound_max = np.concatenate(cmax) if cmax else np.zeros(1)
    return bound, coff, bound_max, cmoff


def bound_underflow(net) -> float:
    """What underflow can take from a bound of :func:`layer_bounds` (or add to
    a propagated change): at most half the smallest subnormal per rounded
    product, carried on by at most the largest row sum of every later
    ``S |W|``. Tiny (about 1e-320) unless the weights are huge."""
    k = sum(w.size for w in net.weights) + 1
    grow = 1.0
    with np.errstate(over="ignore"):
        for w, a in zip(net.weights, net.activations):
            s = 1.0 if a is None else float(np.abs(a.slopes).max())
            grow *= max(1.0, s * (float(np.abs(w).sum(axis=1).max()) if w.size else 0.0))
        return float(k * 5e-324 * grow)


def theorem2_samples(net, x, noise, opts, *, screen=True):
    """(S, P) eq. (6) per noise sample (the rows of ``noise``); with
    ``opts["by_layer"]``, (S, P, L): each layer's share."""
    S, P = noise.shape[0], x.shape[0]
    shape = (S, P, net.n_layers) if opts.get("by_layer") else (S, P)
    if net.n_neurons == 0:
        return np.zeros(shape)
    pk = Packed(net)
    if grid_route(pk, x, opts, screen):
        from ._theorem2_grid import theorem2_grid

        x, noise = np.ascontiguousarray(x, np.float64), np.ascontiguousarray(noise, np.float64)
        f, _ = theorem2_grid(net, pk, x, noise, kernel_options(opts), bool(opts.get("by_layer")))
        return f.reshape(shape)
    f, _ = theorem2_block(pk, x, noise, opts, screen=screen)
    return f.reshape(shape)


# noise samples per call of the grid walk when lc_density hands out whole
# samples: they share the walk's first-layer table and its per-call set-up.
# On M (256 x 256 and 128 x 128 grids, 64 samples) 16 per call took 0.65-0.8x
# the wall time of one per call and 0.9x that of 64 (the same bits).
GRID_SAMPLES = 16


def samples_per_task(net, x, opts, per):
    """Noise samples per task of ``lc_density`` for Theorem 2: ``per`` (from
    ``batch_size``), raised to :data:`GRID_SAMPLES` when the points take the
    grid walk (:func:`grid_route`)."""
    if per >= GRID_SAMPLES or hasattr(net, "stages") or opts.get("device") is not None or net.n_neurons == 0:
        return per
    return GRID_SAMPLES if grid_route(Packed(net), x, opts) else per


def grid_route(pk, x, opts, screen=True):
    """Whether the pairs go to the grid walk (:mod:`regiongeom._theorem2_grid`):
    points on a regular grid in row order, a dense network off the BLAS path
    (``opts["route"]``: ``"points"`` or ``"grid"`` forces a route, for tests
    and benchmarks; ``"grid"`` still needs a dense network off the BLAS path).
    With ``good=True, rho=False`` every term weighs alike and the walk's
    column bound leaves most pairs to the per-point kernels: not routed."""
    route = opts.get("route", "auto")
    if route == "points" or not screen or pk.blas or not pk.kernel_net.dense:
        return False
    if route == "grid":
        return True
    if opts["good"] and not opts["rho"]:  # every term weighs alike: the walk's screen defers too many
        return False
    from ._theorem2_grid import is_grid

    return is_grid(x)


def kernel_options(opts, *, screen=True, want_all=False):
    """The kernels' :class:`~regiongeom._theorem2_kernels.Options` from the
    estimator's ``opts``."""
    sigma = float(opts["sigma"])
    return K.Options(
        phi0=1.0 / (math.sqrt(2.0 * math.pi) * sigma),
        inv2var=0.5 / (sigma * sigma),
        use_rho=bool(opts["rho"]),
        use_good=bool(opts["good"]),
        screen=bool(screen),
        want_all=bool(want_all),
        by_layer=bool(opts.get("by_layer", False)),
    )


def theorem2_block(pk, x, noise, opts, *, screen=True, return_good=False):
    """Eq. (6) for every (sample, point) pair, sample-major: ``f`` (S * P,),
    or with ``opts["by_layer"]`` each layer's share, ``(S * P, L)``.

    With ``return_good``, also ``(good, n_undecided)``: the exact indicator of
    every term as ``(S * P, n_neurons, kmax)`` int8 (0 on padding) and how
    many the screen left to the recomputation (then no term is skipped).
    """
    S, P = noise.shape[0], x.shape[0]
    N = S * P
    by_layer = bool(opts.get("by_layer", False))
    f = np.empty(N)
    f_layer = np.zeros((N if by_layer else 0, pk.L))
    status = np.zeros((N if return_good else 0, pk.n_terms), np.int8)
    opt = kernel_options(opts, screen=screen, want_all=return_good)
    x, noise = np.ascontiguousarray(x, np.float64), np.ascontiguousarray(noise, np.float64)
    compile_notice("the Theorem-2 kernels", K.theorem2_chunk, seconds=COMPILE_SECONDS)
    n_undecided = _run_chunks(pk, opt, x, noise, f, f_layer, status)
    f = f_layer if by_layer else f
    if not return_good:
        return f, None
    return f, (_indicator_table(pk, status), n_undecided)


def _run_chunks(pk, opt, x, noise, f, f_layer, status):
    """:func:`~regiongeom._theorem2_kernels.theorem2_chunk` over chunks of
    ``CHUNK`` contiguous pairs (neighbours share gradients), handed out to the
    threads as they ask (:func:`~regiongeom._threads.run_tickets`), each
    thread with its own scratch. The chunk boundaries are fixed, so the result
    does not depend on the number of threads. Returns the number of
    recomputed terms."""
    N = f.shape[0]
    n_chunks = -(-N // K.CHUNK)
    undecided = np.zeros(n_chunks, np.int64)
    local = threading.local()

    def work(c):
        if not hasattr(local, "scratch"):
            local.scratch, local.blas = pk.scratch(x.shape[1]), pk.blas_scratch()
        n0, n1 = c * K.CHUNK, min(N, (c + 1) * K.CHUNK)
        undecided[c] = K.theorem2_chunk(
            pk.kernel_net, opt, x, noise, n0, n1, local.scratch, f, f_layer, status, local.blas, K.NO_PAIRS
        )

    if pk.blas:  # many small products: one BLAS thread each, our threads share the cores
        from ._engine.core import one_blas_thread

        with one_blas_thread():
            run_tickets(n_chunks, work, name="regiongeom-t2")
    else:
        run_tickets(n_chunks, work, name="regiongeom-t2")
    return int(undecided.sum())


def _indicator_table(pk, status):
    """The kernels' per-term indicators ``(N, n_terms)`` as ``(N, n_neurons,
    kmax)`` int8: 1 good, 0 not good or padding (every term decided)."""
    N = status.shape[0]
    full = np.zeros((N, pk.noff[-1], pk.kmax), np.int8)
    for ly in np.nonzero(pk.nbp)[0]:
        m, nb = pk.rows[ly], pk.nbp[ly]
        layer = status[:, pk.toff[ly] : pk.toff[ly + 1]]
        full[:, pk.noff[ly] : pk.noff[ly + 1], :nb] = layer.reshape(N, m, nb)
    return full
