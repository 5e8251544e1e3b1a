"""The number of faces the first stage's lines alone cut a domain into: a
float estimate for :func:`.mesh2d`'s ``max_regions`` guard, made before any
cutting (not a count: lines in general position, float geometry)."""

from __future__ import annotations

import numpy as np


def first_stage_regions(plan, pieces):
    """``(regions, lines)``: the number of faces that stage 0's lines alone
    cut the domain's convex ``pieces`` into (each line crossing a piece adds
    1 plus the earlier lines it meets inside it: ``1 + L + I`` per piece for
    lines in general position, fewer where several meet at one point or are
    parallel), and the number of (neuron, breakpoint) lines crossing it.
    Float geometry: an estimate for the ``max_regions`` guard, not a count.
    Call after stage 0 is formed (its crossing neurons are known)."""
    info, st = plan.info[1], plan.stages[0]
    op = st.operator
    if hasattr(op, "M"):  # a restriction's lifted operator: uv @ M.T + const
        M, c = op.M[info.cross], op.const[info.cross]
    else:  # a 2-input network's own operator
        M, c = op.matrix()[info.cross], np.asarray(op.bias, np.float64)[info.cross]
    A = np.repeat(M, len(st.breakpoints), axis=0)
    B = (st.breakpoints[None, :] - c[:, None]).ravel()
    regions, lines = 0, 0
    for poly in pieces:
        P = np.asarray(poly, np.float64)
        side = P @ A.T - B  # (corners, lines)
        hit = (side > 0).any(axis=0) & (side < 0).any(axis=0)
        a, b = A[hit], B[hit]
        n = len(a)
        lines += n
        regions += 1 + n + _inner_crossings(a, b, P)
    return regions, lines


def _inner_crossings(a, b, P):
    """The number of pairs of the lines ``a x = b`` meeting strictly inside the
    convex CCW polygon ``P`` (float)."""
    n = len(a)
    E = np.roll(P, -1, axis=0) - P
    step = max(1, (1 << 21) // max(n, 1))
    count = 0
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        ai, bi = a[i0:i1, None, :], b[i0:i1, None]
        det = ai[..., 0] * a[None, :, 1] - ai[..., 1] * a[None, :, 0]
        ok = (np.arange(n)[None, :] > np.arange(i0, i1)[:, None]) & (det != 0)
        with np.errstate(divide="ignore", invalid="ignore"):  # parallel lines: det == 0
            x = (bi * a[None, :, 1] - b[None, :] * ai[..., 1]) / det
            y = (ai[..., 0] * b[None, :] - a[None, :, 0] * bi) / det
            for (px, py), (ex, ey) in zip(P, E):
                ok &= ex * (y - py) - ey * (x - px) > 0
        count += int(ok.sum())
    return count
