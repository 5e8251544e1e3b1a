"""numba kernels of the 1D engine (:mod:`.line1d`).

A layer's cut takes three calls (:func:`signs_1d`, :func:`crossings_1d`,
:func:`split_1d`) plus the corrections of the interpolated crossings
(:func:`corrections_1d`); the next layer's values take two
(:func:`product_1d`, :func:`fill_new_rows_1d`).

The points are kept sorted; their values are rows of ``z`` in any order
(``rowof``): the old points keep their rows and the crossings come after,
so the next layer's product runs over the old points' rows (block by block,
see :func:`product_1d`), and the crossings' values are interpolated from
those of their old interval's ends.

Every value ``z[r, j]`` has a bound ``err[r, j]`` of its distance to the
exact value at the point's exact position (see ``line1d.Bounds`` for the
derivation).
"""

from __future__ import annotations

import numpy as np
from numba import njit

ETA = 2.0**-1074  # the absolute error of a product that underflows
CERT = 1.0 - 2.0**-50  # |d| * CERT > e: certain even with the rounding of d = z - t
SELF = 1.0 + 2.0**-40  # covers the rounding of a bound's own few operations
UNSURE = np.int8(2)  # a sign left to the exact fallback

# (The 1D kernels index rows as ``Z[r, j]`` rather than through row views
# ``Z[r]``: every view created in a loop costs numba two atomic reference
# count updates, a large share of the time of a 1D enumeration.)


@njit(cache=True, nogil=True)
def signs_1d(z, err, rowof, bps, n_cut, S):
    """The signs of ``z[rowof[c], j] - t_k`` into ``S[c, k n_cut + j]`` for the
    first ``n_cut`` columns: +1 or -1 where ``|z - t|`` exceeds the row's error
    bound, ``UNSURE`` elsewhere (left to the exact fallback). Returns the
    number of ``UNSURE`` signs."""
    nu = 0
    for c in range(rowof.shape[0]):
        r = rowof[c]
        for k in range(bps.shape[0]):
            t = bps[k]
            o = k * n_cut
            for j in range(n_cut):
                d = z[r, j] - t
                s = np.int8(d > 0.0) - np.int8(d < 0.0)
                sure = abs(d) * CERT > err[r, j]
                S[c, o + j] = s if sure else UNSURE
                nu += not sure
    return nu


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
def _sort_crossings(pos, r, k, a, ex, da, i0, i1):
    """Insertion sort of ``[i0, i1)`` by position, then neuron, then breakpoint."""
    for i in range(i0 + 1, i1):
        p, rr, kk, aa, ee, dd = pos[i], r[i], k[i], a[i], ex[i], da[i]
        q = i - 1
        while q >= i0 and (pos[q] > p or (pos[q] == p and (r[q] > rr or (r[q] == rr and k[q] > kk)))):
            pos[q + 1], r[q + 1], k[q + 1], a[q + 1], ex[q + 1], da[q + 1] = pos[q], r[q], k[q], a[q], ex[q], da[q]
            q -= 1
        pos[q + 1], r[q + 1], k[q + 1], a[q + 1], ex[q + 1], da[q + 1] = p, rr, kk, aa, ee, dd


@njit(cache=True)
def _place(d0, d1, s0, e0, e1):
    """The place ``a`` (0..1) of the root of an affine function with values
    ``d0``, ``d1`` (exact signs ``s0`` and ``-s0``, error bounds ``e0``,
    ``e1``) at the ends of an interval, and a bound of its error."""
    if d0 * s0 <= 0.0:  # the float value disagrees with the exact sign: |d0| <= e0, so 0 is within 2 e0
        d0, e0 = 0.0, 2.0 * e0
    if d1 * s0 >= 0.0:
        d1, e1 = 0.0, 2.0 * e1
    den = d0 - d1
    if den == 0.0:
        return 0.5, 1.0
    a = min(max(d0 / den, 0.0), 1.0)
    e0 += abs(d0) * 2.0**-51  # the rounding of d = z - t
    e1 += abs(d1) * 2.0**-51
    s = abs(d0) + abs(d1) - e0 - e1
    if s <= 0.0:
        return a, 1.0
    return a, min(1.0, (1.0 + 2.0**-40) * max(e0, e1) / s + 2.0**-50)


@njit(cache=True, nogil=True)
def crossings_1d(x, ex, rowof, z, err, G3, S, bps, n_cut):
    """The crossings of a layer's neurons with the sorted points ``x`` (V,)
    (step 2 of cutting a layer, once ``S`` holds exact signs).

    Returns the first crossing of each old interval ``cstart`` (V,); for
    every crossing, sorted by float position within each interval, its
    neuron ``cr``, breakpoint ``ck``, place ``ca`` (0..1) in its interval
    and the bound ``cda`` of that place's error, its position ``cpos`` and
    the bound ``cex`` of that position's error; and ``sure``: whether every
    crossing before it in its interval certainly lies before it (the error
    intervals are disjoint). A crossing not ``sure`` is ordered exactly by
    the caller. Returns the number not ``sure`` last.
    """
    V = x.shape[0]
    nbp = bps.shape[0]
    kn = nbp * n_cut
    cstart = np.zeros(V, np.int64)
    for c in range(V - 1):
        m = 0
        for i in range(kn):
            m += np.int8(S[c, i] * S[c + 1, i]) == np.int8(-1)  # strictly opposite signs
        cstart[c + 1] = cstart[c] + m
    ncr = cstart[V - 1]
    cr = np.empty(ncr, np.int64)
    ck = np.empty(ncr, np.int64)
    ca = np.empty(ncr)
    cda = np.empty(ncr)
    cpos = np.empty(ncr)
    cex = np.empty(ncr)
    sure = np.ones(ncr, np.bool_)
    hi = np.empty(ncr)
    nunsure = 0
    for c in range(V - 1):
        i0, i1 = cstart[c], cstart[c + 1]
        if i1 == i0:
            continue
        i = i0
        r0, r1 = rowof[c], rowof[c + 1]
        x0, x1 = x[c], x[c + 1]
        w = x1 - x0
        base = max(ex[c], ex[c + 1])
        for k in range(nbp):
            t = bps[k]
            for r in range(n_cut):
                s0 = S[c, k * n_cut + r]
                if np.int8(s0 * S[c + 1, k * n_cut + r]) != np.int8(-1):
                    continue
                a, da = _place(z[r0, r] - t, z[r1, r] - t, s0, err[r0, r], err[r1, r])
                p = min(max(x0 + a * w, x0), x1)
                cr[i], ck[i], ca[i], cda[i], cpos[i] = r, k, a, da, p
                cex[i] = SELF * (base + da * (w + ex[c] + ex[c + 1]) + G3 * (abs(x0) + w)) + abs(p) * 2.0**-51
                i += 1
        _sort_crossings(cpos, cr, ck, ca, cex, cda, i0, i1)
        # crossing i is sure when the largest upper end before it is below the smallest lower end from it on
        m = -np.inf
        for i in range(i0, i1):
            hi[i] = m
            m = max(m, cpos[i] + cex[i])
        m = np.inf
        for i in range(i1 - 1, i0, -1):
            m = min(m, cpos[i] - cex[i])
            if not hi[i] < m:
                sure[i] = False
                nunsure += 1
    return cstart, cr, ck, ca, cda, cpos, cex, sure, nunsure


@njit(cache=True)
def _emit_pieces(cur, n_cut, nbp, P, q):
    """Row ``q`` of ``P`` from the signs ``cur`` on an open interval: the
    number of breakpoints each neuron is on or above."""
    if nbp == 1:
        for j in range(n_cut):
            P[q, j] = np.int8(cur[j] >= np.int8(0))
        return
    for j in range(n_cut):
        p = 0
        for k in range(nbp):
            p += cur[k * n_cut + j] >= 0
        P[q, j] = p


@njit(cache=True)
def _pieces_uncut(S, c, n_cut, P, q):
    """The pieces on the interval between points ``c`` and ``c + 1`` when
    no neuron crosses it (no strictly opposite signs at its ends): on or
    above each breakpoint at both ends (a neuron equal to a breakpoint on
    the whole interval counts as above)."""
    if S.shape[1] == n_cut:  # in int8 throughout, so that it vectorises
        for j in range(n_cut):
            P[q, j] = np.int8(np.int8(S[c, j] | S[c + 1, j]) >= np.int8(0))
        return
    for k in range(S.shape[1] // n_cut):
        o = k * n_cut
        for j in range(n_cut):
            P[q, j] += (S[c, o + j] | S[c + 1, o + j]) >= 0


@njit(cache=True, nogil=True)
def split_1d(x, ex, rowof, z, err, S, cstart, cr, ck, ca, cda, cpos, cex, keep, nk, neu, bpi, bps, first, n_cut, G3):
    """The points after a cut (step 3): ``(x, ex, neu, bpi, rowof, parent,
    pieces, cnew, anew, znew, errnew, emnew, dptr, dj)``.

    The old points keep their rows, the ``e``-th crossing kept gets row
    ``V + e``; a crossing not kept is at the same exact point as the kept
    one before it, and the point is named after the lowest neuron among
    them. Positions are made non-decreasing (a crossing whose float
    position falls before the point before it is moved onto it: its
    interval has float length 0). ``parent`` is the old interval holding
    each new interval and ``pieces`` the piece of each of the first
    ``n_cut`` columns on it, read from the exact signs at the old interval's
    ends and the exact order of the crossings; crossing ``e`` lies in old
    interval ``cnew[e]`` at its place ``anew[e]``, with values ``znew[e]``
    (all columns interpolated; exactly the breakpoint for the neurons
    crossing there) and the bounds ``errnew[e]`` (largest ``emnew[e]``) of their distance to the
    exact values at the exact point of place ``anew[e]`` (not at the exact
    crossing: see ``line1d.Bounds``; the carried columns' bounds hold if
    they are affine along the interval); the neurons whose
    float piece differs at the ends of old interval ``c`` are
    ``dj[dptr[c]:dptr[c + 1]]``.
    """
    V = x.shape[0]
    n = z.shape[1]
    nbp = bps.shape[0]
    kn = nbp * n_cut
    Vn = V + nk
    xn, exn = np.empty(Vn), np.empty(Vn)
    neun = np.empty(Vn, np.int64)
    bpn = np.empty(Vn, np.int64)
    rown = np.empty(Vn, np.int64)
    parent = np.empty(Vn - 1, np.int64)
    cnew = np.empty(nk, np.int64)
    anew = np.empty(nk)
    znew = np.empty((nk, n))
    errnew = np.empty((nk, n))
    emnew = np.zeros(nk)
    pieces = np.zeros((Vn - 1, n_cut), np.int8)
    cur = np.empty(kn, np.int8)
    dptr = np.zeros(V, np.int64)
    ncut = 0
    for c in range(V - 1):
        ncut += cstart[c + 1] > cstart[c]
    dj = np.empty(ncut * n_cut, np.int64)
    q = 0
    e = -1
    for c in range(V):
        xn[q], exn[q], neun[q], bpn[q], rown[q] = x[c], ex[c], neu[c], bpi[c], rowof[c]
        if c == V - 1:
            break
        parent[q] = c
        q += 1
        r0, r1 = rowof[c], rowof[c + 1]
        dptr[c + 1] = dptr[c]
        if cstart[c + 1] == cstart[c]:
            _pieces_uncut(S, c, n_cut, pieces, q - 1)
            continue
        # the signs on the open interval before the first crossing
        for i in range(kn):
            s0, s1 = S[c, i], S[c + 1, i]
            cur[i] = s0 if np.int8(s0 * s1) == np.int8(-1) else np.int8(s0 | s1)
        for i in range(cstart[c], cstart[c + 1]):
            if keep[i]:
                _emit_pieces(cur, n_cut, nbp, pieces, q - 1)
                e += 1
                a, da = ca[i], cda[i]
                p = min(max(cpos[i], xn[q - 1]), x[c + 1])
                xn[q], exn[q], rown[q] = p, max(cex[i], exn[q - 1]), V + e
                neun[q], bpn[q] = first + cr[i], ck[i]
                parent[q] = c
                cnew[e], anew[e] = c, a
                for r in range(n):
                    u0, u1 = z[r0, r], z[r1, r]
                    znew[e, r] = u0 + a * (u1 - u0)
                    e0, e1 = err[r0, r], err[r1, r]
                    bound = SELF * (max(e0, e1) + G3 * (2.0 * abs(u0) + abs(u1)))
                    errnew[e, r] = bound
                    emnew[e] = max(emnew[e], bound)
                q += 1
            elif first + cr[i] < neun[q - 1]:
                neun[q - 1], bpn[q - 1] = first + cr[i], ck[i]
            o = ck[i] * n_cut + cr[i]
            cur[o] = S[c + 1, o]
            znew[e, cr[i]] = bps[ck[i]]
            errnew[e, cr[i]] = 0.0
        _emit_pieces(cur, n_cut, nbp, pieces, q - 1)
        m = dptr[c]
        for j in range(n_cut):
            d = False
            for k in range(nbp):
                d |= (z[r0, j] >= bps[k]) != (z[r1, j] >= bps[k])
            if d:
                dj[m] = j
                m += 1
        dptr[c + 1] = m
    return xn, exn, neun, bpn, rown, parent, pieces, cnew, anew, znew, errnew, emnew, dptr, dj


@njit(cache=True, nogil=True)
def corrections_1d(rowof, z, cstart, cnew, anew, znew, dptr, dj, bps, slopes, icpts):
    """The crossings' corrections (step 4): ``(direct, cptr, cj, cv, cb)``. The
    crossings inside old intervals that more than ``n / 16`` neurons cross
    (``direct``) get the next layer's values computed; every other crossing
    ``e`` lists the neurons ``cj[cptr[e]:cptr[e + 1]]`` whose float piece
    differs at the ends of its old interval, with ``cv`` their activation
    minus its interpolation between the interval's ends (every other
    neuron's activation is affine between its two float values), and ``cb``
    a bound of the rounding of ``cv`` and of its product with a weight
    (``gamma_6`` times the magnitudes of the terms)."""
    n = z.shape[1]
    nk = cnew.shape[0]
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
    cb = np.empty(cptr[nk])
    cmax = 0.0
    for p in range(icpts.shape[0]):
        cmax = max(cmax, abs(icpts[p]))
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
            hv, hu, hw = _act(v, bps, slopes, icpts), _act(u, bps, slopes, icpts), _act(w, bps, slopes, icpts)
            cv[m] = hv - ((1.0 - a) * hu + a * hw)
            cb[m] = 2.0**-49 * (abs(hv) + abs(hu) + abs(hw) + 3.0 * cmax)
            m += 1
    return direct[:nd], cptr, cj, cv, cb


@njit(cache=True)
def _act_error(z, e, bps, slopes, icpts, lip, ract):
    """A bound of ``|fl(act(z)) - act(z*)|`` for ``|z - z*| <= e``: the
    slope of ``z``'s piece when ``z*`` is certainly on it, else the
    largest; plus the rounding of ``slope z + intercept`` (``ract``: 0 for
    an activation that computes exactly)."""
    p = _piece(z, bps)
    sure = True
    for k in range(bps.shape[0]):
        sure &= abs(z - bps[k]) * CERT > e
    h = slopes[p] * z + icpts[p]
    return (abs(slopes[p]) if sure else lip) * e + ract * (abs(h) + 2.0 * abs(icpts[p]) + 1.0 * ETA)


@njit(cache=True, nogil=True)
def product_1d(Z, Zerr, Zmax, rows, off, q0, q1, bps, slopes, icpts, wt, wabs, b, babs, consts, out, errout, emax, B):
    """The next layer's preactivations ``act(Z[r]) @ wt + b`` into row
    ``off + r`` of ``out``, for the rows ``r`` in ``rows[q0:q1]`` (points in
    their order along the line), and the bounds of their errors into
    ``errout`` (their largest in each row into ``emax``) from those of ``Z``
    (``Zerr``, their largest in each row ``Zmax``); ``wabs = |wt|``, ``babs
    = |b|``, ``consts = (lip, ract, G, T)`` (see ``line1d.Bounds``).

    Takes the rows in blocks of ``B`` (``rows[q0 + i B: q0 + (i + 1) B]``):
    along a line, most neurons keep one piece over a block, and the ones
    whose activation is the same constant on the whole block (ReLU: dead)
    are left out of its matrix product and added as a constant row (nothing
    for a zero). The bounds ``|W| @ eh + G (|W| @ |h| + |b|) + T`` (``eh``:
    the activations' errors) take two small matrix-vector products per
    block: ``eh[r, i] <= rho_r phi_i`` with ``rho_r`` the largest of row
    ``r`` (or ``lip Zmax[r]``) and ``phi_i`` the largest of ``eh[r, i] /
    rho_r`` over the block (so that a row with large errors does not spoil
    its block), and ``|h|`` the largest over the block."""
    n = Z.shape[1]
    m = wt.shape[1]
    nbp = bps.shape[0]
    lip, ract, G, T = consts[0], consts[1], consts[2], consts[3]
    cols = np.empty(n, np.int64)
    const = np.empty(m)
    wq_buf = np.empty(n * m)
    ap_buf = np.empty(B * n)
    pr = np.empty((B, m))
    first = np.empty(n, np.int64)  # the piece of each neuron at the block's first point
    same = np.empty(n, np.bool_)  # ... and whether it is the same at all its points
    above = np.empty(n, np.int32)
    mx = np.empty((2, n))  # the largest relative error and size of each activation over the block
    bnd = np.empty((2, m))
    rho = np.empty(B)
    ehrow = np.empty(n)
    for s in range(q0, q1, B):
        nb = min(s + B, q1) - s
        r = rows[s]
        for j in range(n):
            first[j] = _piece(Z[r, j], bps)
            same[j] = True
            mx[0, j] = 0.0
            mx[1, j] = 0.0
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
        mx0, mx1 = mx[0], mx[1]
        for i in range(nb):
            r = rows[s + i]
            rr = 0.0
            if nbp == 1 and ract == 0.0:  # one pass, branch-free, so that it vectorises
                t, s0, s1 = bps[0], slopes[0], slopes[1]
                l0, l1 = abs(s0), abs(s1)
                rr = lip * Zmax[r]
                f = 1.0 / rr if rr > 0.0 else 0.0
                for j in range(n):
                    v = Z[r, j]
                    ev = Zerr[r, j]
                    up = v >= t
                    ah = abs(s1 * v if up else s0 * v)
                    x = lip * ev if abs(v - t) * CERT <= ev else (l1 if up else l0) * ev
                    x *= f
                    mx0[j] = x if x > mx0[j] else mx0[j]
                    mx1[j] = ah if ah > mx1[j] else mx1[j]
                rho[i] = rr
                continue
            if nbp == 1:
                t, s0, s1, i0, i1 = bps[0], slopes[0], slopes[1], icpts[0], icpts[1]
                l0, l1, a0, a1 = abs(s0), abs(s1), ract * (2.0 * abs(i0) + ETA), ract * (2.0 * abs(i1) + ETA)
                for j in range(n):
                    v = Z[r, j]
                    ev = Zerr[r, j]
                    up = v >= t
                    h = s1 * v + i1 if up else s0 * v + i0
                    ah = abs(h)
                    x = (l1 if up else l0) * ev
                    x = lip * ev if abs(v - t) * CERT <= ev else x
                    x += ract * ah + (a1 if up else a0)
                    ehrow[j] = x
                    rr = x if x > rr else rr
                    mx1[j] = ah if ah > mx1[j] else mx1[j]
            else:
                for j in range(n):
                    v = Z[r, j]
                    x = _act_error(v, Zerr[r, j], bps, slopes, icpts, lip, ract)
                    ehrow[j] = x
                    rr = max(rr, x)
                    mx1[j] = max(mx1[j], abs(_act(v, bps, slopes, icpts)))
            rho[i] = rr
            if rr > 0.0:
                f = 1.0 / rr
                for j in range(n):
                    x = ehrow[j] * f
                    mx0[j] = x if x > mx0[j] else mx0[j]
        for j in range(n):
            mx0[j] *= SELF  # the rounding of eh / rho
        np.dot(mx, wabs, bnd)
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
        m0, m1 = 0.0, 0.0
        for o in range(m):
            bnd[1, o] = SELF * G * (bnd[1, o] + babs[o]) + T
            m0, m1 = max(m0, bnd[0, o]), max(m1, bnd[1, o])
        for i in range(nb):
            y = off + rows[s + i]
            rr = SELF * SELF * rho[i]
            emax[y] = SELF * (rr * m0 + m1)
            for o in range(m):
                out[y, o] = pr[i, o] + const[o]
                errout[y, o] = rr * bnd[0, o] + bnd[1, o]


@njit(cache=True)
def fill_new_rows_1d(
    out, errout, emax, rowof, cnew, anew, danew, cptr, cj, cv, cb, isdirect, dptr, dj, z, zmax,
    wt, wabs, nabs, znew, errnew, emnew, bps, slopes, icpts, consts,
):  # fmt: skip
    """Complete ``out`` (Vn, m), the next layer's preactivations at the points
    after a cut, once :func:`product_1d` has written the rows it computes,
    and the bounds ``errout`` of every crossing's row (their largest: ``emax``).

    Every crossing ``e`` not computed (row ``V + e``, inside old interval
    ``c`` whose ends have rows ``rowof[c], rowof[c + 1]``) has its
    activations affine in its place ``a`` except for the neurons listed for
    it (see :func:`corrections_1d`), so its row is interpolated between the
    ends' and corrected by those neurons' rows of ``wt`` only; its bound at
    the exact point of place ``a``: ``||W_o||_1 max_j eh_j`` (``nabs``: the
    1-norms; ``eh``: the errors of the activations at ``znew[e]``), plus the
    larger of the ends' bounds, the interpolation's rounding and the
    corrections' (``cb``). Every crossing's bound then gets the distance from
    that point to the exact crossing (place error ``danew[e]``): ``da`` times
    the variation of ``z'_o`` along the interval, at most its chord plus the
    kinks of the neurons whose piece changes on it (``dj``: ``2 lip |z1_j -
    z0_j| |W_oj|``) and of those within their error of a breakpoint."""
    nk = cnew.shape[0]
    V = out.shape[0] - nk
    m = wt.shape[1]
    n = znew.shape[1]
    lip, ract = consts[0], consts[1]
    var = np.empty(m)
    last = -1
    for e in range(nk):
        c = cnew[e]
        r0, r1, a = rowof[c], rowof[c + 1], anew[e]
        y = V + e
        if not isdirect[e]:
            eh = 0.0
            if ract == 0.0:  # |act(v) - act(v*)| <= lip e
                eh = lip * emnew[e]
            else:
                for j in range(n):
                    eh = max(eh, _act_error(znew[e, j], errnew[e, j], bps, slopes, icpts, lip, ract))
            for o in range(m):
                u0, u1 = out[r0, o], out[r1, o]
                out[y, o] = (1.0 - a) * u0 + a * u1
                errout[y, o] = nabs[o] * eh + max(errout[r0, o], errout[r1, o]) + 2.0**-50 * (2.0 * abs(u0) + abs(u1))
            for p in range(cptr[e], cptr[e + 1]):
                j, corr, cbj = cj[p], cv[p], cb[p] + 2.0**-51 * abs(cv[p])
                for o in range(m):
                    out[y, o] += corr * wt[j, o]
                    errout[y, o] += cbj * wabs[j, o] + 2.0**-52 * abs(out[y, o])
        if c != last:  # the variation's bound along old interval c, once per interval
            last = c
            em = max(zmax[r0], zmax[r1])
            for o in range(m):
                var[o] = abs(out[r1, o] - out[r0, o]) + errout[r0, o] + errout[r1, o] + 4.0 * lip * em * nabs[o]
            for p in range(dptr[c], dptr[c + 1]):
                j = dj[p]
                k = 2.0 * lip * abs(z[r1, j] - z[r0, j]) * SELF
                for o in range(m):
                    var[o] += k * wabs[j, o]
        da = danew[e]
        em = 0.0
        for o in range(m):
            x = SELF * (errout[y, o] + da * var[o])
            errout[y, o] = x
            em = max(em, x)
        emax[y] = em
