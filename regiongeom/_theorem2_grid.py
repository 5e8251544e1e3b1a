"""Theorem 2 (eq. 6) on a regular grid: the driver of the grid walk
(kernels: :mod:`regiongeom._theorem2_grid_kernels`, whose docstring says how
the walk works and what makes it fast).

:func:`theorem2_grid` cuts the grid into blocks of ``BLOCK`` points (a fixed
split: the result does not depend on the threads) and hands each block, with
every noise sample, to a thread: the first layer's values and weights are
computed once per block (:func:`~regiongeom._theorem2_grid_kernels.layer0_table`),
then each sample's walk over the block. The pairs the walk flags (if any)
go to the per-point kernels (:mod:`regiongeom._theorem2_kernels`), which
are compiled only then.
"""

from __future__ import annotations

import threading

import numpy as np

from . import _theorem2_kernels as K
from ._jit import compile_notice
from ._theorem2_grid_kernels import (  # noqa: F401  (the kernels, for the tests and _jit)
    ECUT,
    RANK,
    REFRESH,
    Grid,
    NoAlias,
    grid_chunk,
    layer0_table,
    make_grid_scratch,
)

BLOCK = 1024  # points per ticket (every noise sample): a fixed split, so results do not depend on the threads
SLACK = 1e-9  # as the per-point screen's
TAU = 2.0**-28  # tau[l] = TAU * (a bound of |z_l| + |b_l + noise|) over the grid's box


def is_grid(x) -> bool:
    """Whether the points are a regular grid in row order, as
    :func:`~regiongeom.grids.grid_points` makes them: 1D, increasing; 2D,
    rows of equal ``y`` whose ``x`` coordinates are the same increasing
    sequence in every row."""
    P, d = x.shape
    if P < 2 or d not in (1, 2):
        return False
    if d == 1:
        return bool(np.all(np.diff(x[:, 0]) > 0))
    nx = int(np.argmax(x[:, 1] != x[0, 1])) or P  # the first row's length
    if P % nx:
        return False
    g = x.reshape(P // nx, nx, 2)
    row = g[0, :, 0]
    return bool(
        (nx == 1 or np.all(np.diff(row) > 0))
        and np.all(g[:, :, 0] == row)
        and np.all(g[:, :, 1] == g[:, :1, 1])
        and (P == nx or np.all(np.diff(g[:, 0, 1]) > 0))
    )


def screen_bounds(kn):
    """The screen's bounds with their room, ``(C (1 + SLACK) + bound_abs) (1 +
    SLACK)`` (as the per-point ``_moved``, which multiplies the move in
    between: either is an upper bound of how far a later unit moves, with
    far more room than the rounding needs), computed once: ``bound_abs`` is
    subnormal, and every operation with it costs a microcode assist. First
    ``kn.bound``'s, then ``kn.bound_max``'s (the walk's dead-layer test)."""
    c = np.concatenate([kn.bound, kn.bound_max])
    return (c * (1.0 + SLACK) + kn.bound_abs) * (1.0 + SLACK)


def margins(net, x, noise_row):
    """``tau[l]``: a layer's piece is taken from a moved value only when it is
    farther than ``tau[l]`` from every breakpoint. ``tau[l] = TAU * A_l``,
    ``A_l`` a bound of ``|W_l| |h_{l-1}| + |b_l + noise|`` over the grid's
    bounding box (interval arithmetic, this noise sample). The rounding of a
    moved value (a fresh dot product, then at most ``REFRESH - 1`` moves and
    ``RANK`` rank-1 corrections per move, each a few ulps of terms bounded by
    ``A_l``, carried on through earlier layers with the same relative size)
    stays below about ``4e3 * L * 2^-53 * A_l``, some ``8000 / L`` times
    under ``tau[l]`` (``L`` layers); the per-point kernels' own values are
    as close. So the piece is the one the values computed from scratch
    give. (Measured, sigma 0.05: the walk's ``f`` and the per-point
    kernels' differ by at most 3e-15 relative per pair on networks S, M
    and L, 2e-13 on four ReLU layers of 16.)"""
    # max |x_c| column by column (numpy's reductions along axis 0 of a
    # (P, 2) array take ten times as long: serial time in every call)
    H = np.array([np.abs(x[:, c]).max() for c in range(x.shape[1])])
    offs = net.neuron_offsets
    tau = np.zeros(net.n_layers)
    for ly, (w, b, act) in enumerate(zip(net.weights, net.biases, net.activations, strict=True)):
        A = np.abs(w) @ H
        bn = b + noise_row[offs[ly] : offs[ly + 1]] if act is not None else b
        tau[ly] = TAU * float(np.max(A + np.abs(bn))) if A.size else 0.0
        lo, hi = bn - A, bn + A
        if act is None:
            H = np.maximum(np.abs(lo), np.abs(hi))
            continue
        H = np.maximum(np.abs(act(lo)), np.abs(act(hi)))
        for t, at in zip(act.breakpoints, act.slopes[:-1] * act.breakpoints + act.intercepts[:-1], strict=True):
            H = np.where((lo <= t) & (t <= hi), np.maximum(H, abs(at)), H)
    return tau


def theorem2_grid(net, pk, x, noise, opt, by_layer):
    """Eq. (6) for every (sample, point) pair, sample-major, on a grid
    (:func:`is_grid`; ``pk.kernel_net.dense``): ``f`` (S * P,), or with
    ``by_layer`` (S * P, L). Returns ``(f, n_redone)``: the pairs handed to
    the per-point kernels."""
    from ._threads import run_tickets

    S, P = noise.shape[0], x.shape[0]
    N, L = S * P, pk.L
    kn = pk.kernel_net
    f = np.empty(N)
    f_layer = np.zeros((N if by_layer else 0, L))
    flag = np.zeros(N, np.bool_)
    taus = np.array([margins(net, x, noise[s]) for s in range(S)])
    cb = screen_bounds(kn)
    nb = -(-P // BLOCK)
    local = threading.local()
    compile_notice("the Theorem-2 grid kernels", grid_chunk, layer0_table, seconds=4)

    direct = S == 1  # the first layer in the walk: a table would be used once (lc_density: a sample per call)
    m0 = int(pk.rows[0])
    nk0 = int(pk.nbp[0])

    def work(b):  # a block of points, every noise sample
        if not hasattr(local, "g"):
            local.g = make_grid_scratch(L, kn.width, x.shape[1])
            local.tz, local.tw, local.tb = np.zeros((BLOCK, m0)), np.zeros((BLOCK, nk0 * m0)), np.zeros((BLOCK, nk0))
        p0, p1 = b * BLOCK, min(P, (b + 1) * BLOCK)
        if not direct:
            layer0_table(kn, opt, x, p0, p1, local.g, local.tz, local.tw, local.tb)
        for s in range(S):
            grid_chunk(kn, opt, x, noise, s, p0, p1, local.g, taus[s], cb, local.tz, local.tw, local.tb, direct, f,
                       f_layer, flag)  # fmt: skip

    run_tickets(nb, work, name="regiongeom-t2grid")
    redo = np.flatnonzero(flag)
    if redo.size:  # the per-point kernels, one pair at a time from scratch (compiled only if needed)
        from ._theorem2 import COMPILE_SECONDS

        compile_notice("the Theorem-2 kernels", K.theorem2_chunk, seconds=COMPILE_SECONDS)
        status = np.zeros((0, pk.n_terms), np.int8)
        K.theorem2_pairs(kn, opt, x, noise, redo.astype(np.int64), pk.scratch(x.shape[1]), f, f_layer, status, None)
    return (f_layer if by_layer else f), int(redo.size)
