"""numba kernels of the 1D engine (:mod:`.line1d`)."""

from __future__ import annotations

import numpy as np
from numba import njit

# ---------------------------------------------------------------------------
# 1D: a layer's cuts in three calls (crossings_1d, split_1d, corrections_1d),
# the next layer's values in two (product_1d, fill_new_rows_1d).
#
# The points are kept sorted; their values are rows of ``z`` in any order
# (``rowof``): the old points keep their rows and the crossings come after,
# so the next layer's product runs over the old points' rows (block by
# block, see product_1d), and the crossings' values are interpolated from
# those of their old interval's ends (exact up to rounding: all of a layer's
# preactivations are affine on an old interval, and so are its activations
# except for the few neurons that cross it, which are corrected one by one).
# ---------------------------------------------------------------------------


@njit(cache=True)
def scales_1d(z, bps):
    """The largest ``|z_j - t_k|`` over the rows of ``z``: ``(K, n)``."""
    nbp = bps.shape[0]
    sc = np.zeros((nbp, z.shape[1]))
    for k in range(nbp):
        t = bps[k]
        row = sc[k]
        for v in range(z.shape[0]):
            for r in range(z.shape[1]):
                row[r] = max(row[r], abs(z[v, r] - t))
    return sc


# (The 1D kernels index rows as ``Z[r, j]`` rather than through row views
# ``Z[r]``: every view created in a loop costs numba two atomic reference
# count updates, a large share of the time of a 1D enumeration.)


@njit(cache=True)
def _signs_into(Z, r, bps, thr, S, c):
    """Snapped signs of ``Z[r] - t_k`` into row ``c`` of ``S`` (K * n
    columns): +1 above ``thr[k]``, -1 below ``-thr[k]``, 0 in between."""
    n = Z.shape[1]
    for k in range(bps.shape[0]):
        t = bps[k]
        o = k * n
        for j in range(n):
            d = Z[r, j] - t
            S[c, o + j] = np.int8(d > thr[k, j]) - np.int8(d < -thr[k, j])


@njit(cache=True)
def _pieces_into(SA, ia, ZA, ra, SB, ib, ZB, rb, bps, P, q):
    """The piece of each neuron on an interval into row ``q`` of ``P`` (zero
    on entry) from the snapped signs at its ends (``SA[ia]``, ``SB[ib]``), as
    in 2D: on or above a breakpoint at both ends (a neuron equal to it on
    the whole interval) counts as above; strictly opposite ends (only after
    merging crossings closer than ``tol``) fall back to the midpoint of the
    values ``ZA[ra]``, ``ZB[rb]``."""
    n = P.shape[1]
    if bps.shape[0] == 1:  # in int8 throughout, so that it vectorises
        opp = False
        for j in range(n):
            a0, a1 = SA[ia, j], SB[ib, j]
            P[q, j] = np.int8(np.int8(a0 | a1) >= np.int8(0))
            opp |= np.int8(a0 ^ a1) == np.int8(-2)
        if opp:
            t = bps[0]
            for j in range(n):
                if np.int8(SA[ia, j] ^ SB[ib, j]) == np.int8(-2):
                    P[q, j] = 0.5 * (ZA[ra, j] + ZB[rb, j]) >= t
        return
    for k in range(bps.shape[0]):
        t = bps[k]
        o = k * n
        for j in range(n):
            a0 = SA[ia, o + j]
            a1 = SB[ib, o + j]
            if a0 * a1 < 0:
                P[q, j] += 0.5 * (ZA[ra, j] + ZB[rb, j]) >= t
            else:
                P[q, j] += (a0 >= 0) & (a1 >= 0)


@njit(cache=True)
def _pieces_uncut(S, c, P, q):
    """:func:`_pieces_into` for the interval between points ``c`` and ``c +
    1`` when no neuron crosses it (no strictly opposite signs at its ends):
    on or above each breakpoint at both ends."""
    n = P.shape[1]
    if S.shape[1] == n:
        for j in range(n):
            P[q, j] = np.int8(np.int8(S[c, j] | S[c + 1, j]) >= np.int8(0))
        return
    for k in range(S.shape[1] // n):
        o = k * n
        for j in range(n):
            P[q, j] += (S[c, o + j] | S[c + 1, o + j]) >= 0


@njit(cache=True)
def _piece(x, bps):
    """The index of the piece of an activation ``x`` is on."""
    p = 0
    while p < bps.shape[0] and bps[p] <= x:
        p += 1
    return p


@njit(cache=True)
def _act(x, bps, slopes, icpts):
    p = _piece(x, bps)
    return slopes[p] * x + icpts[p]


@njit(cache=True)
def _sort_crossings(pos, r, k, a, i0, i1):
    """Insertion sort of ``[i0, i1)`` by position, then neuron, then breakpoint."""
    for i in range(i0 + 1, i1):
        p, rr, kk, aa = pos[i], r[i], k[i], a[i]
        q = i - 1
        while q >= i0 and (pos[q] > p or (pos[q] == p and (r[q] > rr or (r[q] == rr and k[q] > kk)))):
            pos[q + 1], r[q + 1], k[q + 1], a[q + 1] = pos[q], r[q], k[q], a[q]
            q -= 1
        pos[q + 1], r[q + 1], k[q + 1], a[q + 1] = p, rr, kk, aa


@njit(cache=True, nogil=True)
def crossings_1d(x, rowof, z, thr, bps, tol):
    """The crossings of a layer's neurons with the sorted points ``x`` (V,)
    (step 1 of cutting a layer, see ``line1d._cut_layer``).

    ``z[rowof[i]]`` (n,) holds the layer's preactivations at point ``i``;
    signs are snapped at ``thr`` (K, n). Returns the signs at the points
    ``S`` (V, K n); the first crossing of each old interval ``cstart`` (V,);
    for every crossing, sorted by position within each interval, its neuron
    ``cr``, breakpoint ``ck``, place ``ca`` (0..1) in its interval and
    position ``cpos``; ``keep`` (a crossing within ``tol`` of the one before
    it is merged into it, which then carries the lowest neuron index, as in
    2D where the first neuron's cut makes the edge); and the number kept.
    """
    V = x.shape[0]
    n = z.shape[1]
    nbp = bps.shape[0]
    kn = nbp * n
    # the snapped signs at every old point, and the crossings in each old interval
    S = np.empty((V, kn), np.int8)
    for c in range(V):
        _signs_into(z, rowof[c], bps, thr, S, c)
    cstart = np.zeros(V, np.int64)
    for c in range(V - 1):
        m = 0
        for i in range(kn):
            m += np.int8(S[c, i] ^ S[c + 1, i]) == np.int8(-2)  # strictly opposite signs
        cstart[c + 1] = cstart[c] + m
    ncr = cstart[V - 1]
    cr = np.empty(ncr, np.int64)
    ck = np.empty(ncr, np.int64)
    ca = np.empty(ncr)
    cpos = np.empty(ncr)
    for c in range(V - 1):
        if cstart[c + 1] == cstart[c]:
            continue
        i = cstart[c]
        r0, r1 = rowof[c], rowof[c + 1]
        for k in range(nbp):
            t = bps[k]
            for r in range(n):
                if np.int8(S[c, k * n + r] ^ S[c + 1, k * n + r]) == np.int8(-2):
                    d0 = z[r0, r] - t
                    a = d0 / (d0 - (z[r1, r] - t))
                    cr[i], ck[i], ca[i] = r, k, a
                    cpos[i] = x[c] + a * (x[c + 1] - x[c])
                    i += 1
        _sort_crossings(cpos, cr, ck, ca, cstart[c], cstart[c + 1])
    # keep a crossing unless it is within tol of the one before it
    keep = np.zeros(ncr, np.bool_)
    nk = 0
    lk = -1
    for i in range(ncr):
        if i == 0 or cpos[i] - cpos[i - 1] > tol:
            keep[i] = True
            nk += 1
            lk = i
        elif cr[i] < cr[lk]:
            cr[lk], ck[lk] = cr[i], ck[i]
    return S, cstart, cr, ck, ca, cpos, keep, nk


@njit(cache=True, nogil=True)
def split_1d(x, rowof, z, thr, S, cstart, cr, ck, ca, cpos, keep, nk, neu, bpi, bps, first):
    """The points after a cut (step 2): ``(x, neu, bpi, rowof, parent,
    pieces, cnew, anew, znew, dptr, dj)``. The old points keep their rows,
    the ``e``-th crossing kept gets row ``V + e``; ``parent`` is the old
    interval holding each new interval and ``pieces`` the piece of each of
    the layer's neurons on it; crossing ``e`` lies in old interval
    ``cnew[e]`` at its place ``anew[e]``, with preactivations ``znew[e]``
    (interpolated; exact for its own neuron ``first + j``); the neurons
    whose piece differs at the ends of old interval ``c`` are
    ``dj[dptr[c]:dptr[c + 1]]``."""
    V = x.shape[0]
    n = z.shape[1]
    nbp = bps.shape[0]
    kn = nbp * n
    Vn = V + nk
    xn = np.empty(Vn)
    neun = np.empty(Vn, np.int64)
    bpn = np.empty(Vn, np.int64)
    rown = np.empty(Vn, np.int64)
    parent = np.empty(Vn - 1, np.int64)
    cnew = np.empty(nk, np.int64)
    anew = np.empty(nk)
    znew = np.empty((nk, n))
    sn = np.empty((nk, kn), np.int8)
    pieces = np.zeros((Vn - 1, n), np.int8)
    # the neurons whose piece differs at the ends of each old interval that is cut
    dptr = np.zeros(V, np.int64)
    ncut = 0
    for c in range(V - 1):
        ncut += cstart[c + 1] > cstart[c]
    dj = np.empty(ncut * n, np.int64)
    # each old point, then the crossings kept inside the interval after it;
    # each new interval's pieces from the signs at its ends
    q = 0
    e = 0
    for c in range(V):
        xn[q], neun[q], bpn[q], rown[q] = x[c], neu[c], bpi[c], rowof[c]
        if c == V - 1:
            break
        parent[q] = c
        q += 1
        r0, r1 = rowof[c], rowof[c + 1]
        dptr[c + 1] = dptr[c]
        if cstart[c + 1] == cstart[c]:
            _pieces_uncut(S, c, pieces, q - 1)
            continue
        # the signs and values of the current new interval's left end
        SL, il, ZL, rl = S, c, z, r0
        for i in range(cstart[c], cstart[c + 1]):
            if not keep[i]:
                continue
            a = ca[i]
            xn[q], neun[q], bpn[q], rown[q] = cpos[i], first + cr[i], ck[i], V + e
            parent[q] = c
            cnew[e], anew[e] = c, a
            for r in range(n):
                znew[e, r] = z[r0, r] + a * (z[r1, r] - z[r0, r])
            znew[e, cr[i]] = bps[ck[i]]
            _signs_into(znew, e, bps, thr, sn, e)
            _pieces_into(SL, il, ZL, rl, sn, e, znew, e, bps, pieces, q - 1)
            SL, il, ZL, rl = sn, e, znew, e
            q += 1
            e += 1
        _pieces_into(SL, il, ZL, rl, S, c + 1, z, r1, bps, pieces, q - 1)
        m = dptr[c]
        for j in range(n):
            d = False
            for k in range(nbp):
                d |= (z[r0, j] >= bps[k]) != (z[r1, j] >= bps[k])
            if d:
                dj[m] = j
                m += 1
        dptr[c + 1] = m
    return xn, neun, bpn, rown, parent, pieces, cnew, anew, znew, dptr, dj


@njit(cache=True, nogil=True)
def corrections_1d(rowof, z, cstart, cnew, anew, znew, dptr, dj, bps, slopes, icpts):
    """The crossings' corrections (step 3): ``(direct, cptr, cj, cv)``. The
    crossings inside old intervals that more than ``n / 16`` neurons cross
    (``direct``) get the next layer's values computed; every other crossing
    ``e`` lists the neurons ``cj[cptr[e]:cptr[e + 1]]`` that are not affine
    along its old interval, with ``cv`` their activation minus its
    interpolation between the interval's ends."""
    n = z.shape[1]
    nk = cnew.shape[0]
    # the crossings of an old interval that many neurons cross get their next
    # values computed; every other one lists the neurons of its interval that
    # are not affine along it, with their activation's departure from the
    # interpolation
    cptr = np.zeros(nk + 1, np.int64)
    direct = np.empty(nk, np.int64)
    nd = 0
    for e in range(nk):
        c = cnew[e]
        if 16 * (cstart[c + 1] - cstart[c]) > n:
            direct[nd] = e
            nd += 1
            cptr[e + 1] = cptr[e]
        else:
            cptr[e + 1] = cptr[e] + dptr[c + 1] - dptr[c]
    cj = np.empty(cptr[nk], np.int64)
    cv = np.empty(cptr[nk])
    for e in range(nk):
        if cptr[e + 1] == cptr[e]:
            continue
        c = cnew[e]
        r0, r1, a = rowof[c], rowof[c + 1], anew[e]
        m = cptr[e]
        for p in range(dptr[c], dptr[c + 1]):
            j = dj[p]
            u, w, v = z[r0, j], z[r1, j], znew[e, j]
            cj[m] = j
            cv[m] = _act(v, bps, slopes, icpts) - (
                (1.0 - a) * _act(u, bps, slopes, icpts) + a * _act(w, bps, slopes, icpts)
            )
            m += 1
    return direct[:nd], cptr, cj, cv


@njit(cache=True)
def _scale_row(out, y, nbps, sc):
    """``sc[k] = max(sc[k], |out[y] - nbps[k]|)`` for every breakpoint ``k``."""
    for k in range(nbps.shape[0]):
        t = nbps[k]
        for o in range(out.shape[1]):
            sc[k, o] = max(sc[k, o], abs(out[y, o] - t))


@njit(cache=True, nogil=True)
def product_1d(Z, rows, off, q0, q1, bps, slopes, icpts, wt, b, nbps, out, sc, B):
    """The next layer's preactivations ``act(Z[r]) @ wt + b`` into row
    ``off + r`` of ``out``, for the rows ``r`` in ``rows[q0:q1]`` (points in
    their order along the line). Takes them in blocks of ``B``
    (``rows[q0 + i B: q0 + (i + 1) B]``): along a line, most neurons keep one
    piece over a block, and the ones whose activation is the same constant
    on the whole block (ReLU: dead) are left out of its matrix product and
    added as a constant row (nothing for a zero). Updates ``sc`` (K, m) to
    the largest ``|out - t_k|`` over the rows written, ``t_k`` the next
    layer's breakpoints ``nbps``."""
    n = Z.shape[1]
    m = wt.shape[1]
    nbp = bps.shape[0]
    cols = np.empty(n, np.int64)
    const = np.empty(m)
    wq_buf = np.empty(n * m)
    ap_buf = np.empty(B * n)
    pr = np.empty((B, m))
    first = np.empty(n, np.int64)  # the piece of each neuron at the block's first point
    same = np.empty(n, np.bool_)  # ... and whether it is the same at all its points
    above = np.empty(n, np.int32)
    for s in range(q0, q1, B):
        nb = min(s + B, q1) - s
        # the neurons on one constant piece at every point of the block
        r = rows[s]
        for j in range(n):
            first[j] = _piece(Z[r, j], bps)
            same[j] = True
        if nbp == 1:  # count the points on the upper piece, in a loop that vectorises
            t = bps[0]
            above[:] = 0
            for i in range(nb):
                r = rows[s + i]
                for j in range(n):
                    above[j] += np.int32(Z[r, j] >= t)
            for j in range(n):
                same[j] = above[j] == 0 or above[j] == nb
        else:
            for i in range(1, nb):
                r = rows[s + i]
                for j in range(n):
                    same[j] &= _piece(Z[r, j], bps) == first[j]
        for o in range(m):
            const[o] = b[o]
        na = 0
        for j in range(n):
            if same[j] and slopes[first[j]] == 0.0:
                c = icpts[first[j]]
                if c != 0.0:
                    for o in range(m):
                        const[o] += c * wt[j, o]
            else:
                cols[na] = j
                na += 1
        ap = ap_buf[: nb * na].reshape((nb, na))
        for i in range(nb):
            r = rows[s + i]
            if nbp == 1:
                t, s0, s1, i0, i1 = bps[0], slopes[0], slopes[1], icpts[0], icpts[1]
                for k in range(na):
                    v = Z[r, cols[k]]
                    ap[i, k] = s1 * v + i1 if v >= t else s0 * v + i0
            else:
                for k in range(na):
                    ap[i, k] = _act(Z[r, cols[k]], bps, slopes, icpts)
        wq = wq_buf[: na * m].reshape((na, m))
        for k in range(na):
            c = cols[k]
            for o in range(m):
                wq[k, o] = wt[c, o]
        if na > 0:
            np.dot(ap, wq, pr[:nb])
        else:
            for i in range(nb):
                for o in range(m):
                    pr[i, o] = 0.0
        for i in range(nb):
            y = off + rows[s + i]
            if nbps.shape[0] == 1:
                t = nbps[0]
                for o in range(m):
                    v = pr[i, o] + const[o]
                    out[y, o] = v
                    sc[0, o] = max(sc[0, o], abs(v - t))
                continue
            for o in range(m):
                out[y, o] = pr[i, o] + const[o]
            _scale_row(out, y, nbps, sc)


@njit(cache=True)
def fill_new_rows_1d(out, rowof, cnew, anew, cptr, cj, cv, isdirect, wt, nbps, sc):
    """Complete ``out`` (Vn, m), the next layer's preactivations at the points
    after a cut, once :func:`product_1d` has written the rows it computes.
    Every other crossing ``e`` (row ``V + e``, inside old interval ``c``
    whose ends have rows ``rowof[c], rowof[c + 1]``) has its activations
    affine in its place ``a`` except for the neurons listed for it (see
    :func:`corrections_1d`), so its row is interpolated between the ends' and
    corrected by those neurons' rows of ``wt`` only. Updates ``sc`` as
    :func:`product_1d` does."""
    nk = cnew.shape[0]
    V = out.shape[0] - nk
    m = wt.shape[1]
    for e in range(nk):
        if isdirect[e]:
            continue
        r0, r1, a = rowof[cnew[e]], rowof[cnew[e] + 1], anew[e]
        y = V + e
        for o in range(m):
            out[y, o] = (1.0 - a) * out[r0, o] + a * out[r1, o]
        for p in range(cptr[e], cptr[e + 1]):
            j, corr = cj[p], cv[p]
            for o in range(m):
                out[y, o] += corr * wt[j, o]
        _scale_row(out, y, nbps, sc)
