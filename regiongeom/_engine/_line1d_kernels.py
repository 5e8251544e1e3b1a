"""numba kernels of the 1D engine (:mod:`.line1d`).

A layer's cut takes three calls (:func:`signs_1d`, :func:`crossings_1d`,
:func:`split_1d`) plus the corrections of the interpolated crossings
(:func:`corrections_1d`); the next layer's values take two, in
:mod:`._line1d_products` (``product_1d``, ``fill_new_rows_1d``).

The points are kept sorted; their values are rows of ``z`` in any order
(``rowof``): the old points keep their rows and the crossings come after,
so the next layer's product runs over the old points' rows (block by block,
see ``_line1d_products.product_1d``), and the crossings' values are interpolated from
those of their old interval's ends.

Every value ``z[r, j]`` has a bound of its distance to the exact value at
the point's exact position (see ``_line1d_bounds.Bounds`` for the derivation):
``err[r, j]`` for a row stored whole, or, for a row of a product, in the
product's factored form ``ef[r] EB[eb[r], 0, j] + EB[eb[r], 1, j]``
(``ef[r] >= 0``; see ``_line1d_products.product_1d``). :func:`_ev` reads
either.
"""

from __future__ import annotations

import numpy as np
from numba import njit

ETA = 2.0**-1074  # the absolute error of a product that underflows
CERT = 1.0 - 2.0**-50  # |d| * CERT > e: certain even with the rounding of d = z - t
SELF = 1.0 + 2.0**-40  # covers the rounding of a bound's own few operations
UNSURE = np.int8(2)  # a sign left to the exact fallback

@njit(cache=True, nogil=True)
def _ev(err, ef, eb, EB, r, j):
    """The bound of value ``j`` of row ``r``: ``err[r, j]`` for a row stored
    whole (``ef[r] < 0``), else its factored form (the same operations as
    the product that made it: the same bits)."""
    f = ef[r]
    if f < 0.0:
        return err[r, j]
    k = eb[r]
    return f * EB[k, 0, j] + EB[k, 1, j]


@njit(cache=True, nogil=True)
def _larger_bounds(err, ef, eb, EB, r0, r1, out):
    """``out[j] = max(bound of (r0, j), bound of (r1, j))`` (:func:`_ev`),
    with the choice of storage made once per row, outside the loops."""
    f0, f1 = ef[r0], ef[r1]
    k0, k1 = eb[r0], eb[r1]
    n = out.shape[0]
    if f0 >= 0.0 and f1 >= 0.0:
        for j in range(n):
            out[j] = max(f0 * EB[k0, 0, j] + EB[k0, 1, j], f1 * EB[k1, 0, j] + EB[k1, 1, j])
    elif f0 >= 0.0:
        for j in range(n):
            out[j] = max(f0 * EB[k0, 0, j] + EB[k0, 1, j], err[r1, j])
    elif f1 >= 0.0:
        for j in range(n):
            out[j] = max(err[r0, j], f1 * EB[k1, 0, j] + EB[k1, 1, j])
    else:
        for j in range(n):
            out[j] = max(err[r0, j], err[r1, j])


# (The 1D kernels index rows as ``Z[r, j]`` rather than through row views
# ``Z[r]``: every view created in a loop costs numba two atomic reference
# count updates, a large share of the time of a 1D enumeration.)


@njit(cache=True, nogil=True)
def signs_1d(z, err, ef, eb, EB, em, rowof, bps, n_cut, S, urow):
    """The signs of ``z[rowof[c], j] - t_k`` into ``S[c, k n_cut + j]`` for the
    first ``n_cut`` columns: +1 or -1 where ``|z - t|`` exceeds the value's error
    bound, ``UNSURE`` elsewhere (left to the second filter and the exact
    fallback), and the number of ``UNSURE`` in each row ``c`` into
    ``urow[c]``. Returns the number of ``UNSURE`` signs. The bounds:
    ``err, ef, eb, EB`` (see :func:`_ev`).

    ``em`` (unless empty): a bound of all the ``err`` of each row of ``z``.
    A row is first decided with it alone, without reading ``err``; only a
    row with a value within ``em`` of a breakpoint is decided again value
    by value, so the signs are those of ``err`` throughout."""
    nu = 0
    rowmax = em.shape[0] > 0
    for c in range(rowof.shape[0]):
        nu0 = nu
        r = rowof[c]
        for k in range(bps.shape[0]):
            t = bps[k]
            o = k * n_cut
            u = np.int64(0)  # (not a Python 0: without numba, u += int8 would stay int8 and wrap)
            if rowmax:
                e = em[r]
                for j in range(n_cut):  # branch-free, so that it vectorises
                    d = (z[r, j] - t) * CERT
                    pos = np.int8(d > e)  # (e >= 0: sure and positive)
                    neg = np.int8(-d > e)
                    unsure = np.int8(1) - pos - neg
                    S[c, o + j] = pos - neg + UNSURE * unsure
                    u += unsure
                if u == 0:
                    continue
                u = np.int64(0)
            for j in range(n_cut):  # the same with each value's own bound
                d = (z[r, j] - t) * CERT
                e = _ev(err, ef, eb, EB, r, j)
                pos = np.int8(d > e)
                neg = np.int8(-d > e)
                unsure = np.int8(1) - pos - neg
                S[c, o + j] = pos - neg + UNSURE * unsure
                u += unsure
            nu += u
        urow[c] = nu - nu0
    return nu


@njit(cache=True, nogil=True)
def unsure_1d(S, urow, nu):
    """The ``nu`` entries ``(c, i)`` of ``S`` that :func:`signs_1d` left
    ``UNSURE`` (``urow[c]`` of them in row ``c``), in row-major order."""
    cs = np.empty(nu, np.int64)
    js = np.empty(nu, np.int64)
    m = 0
    for c in range(S.shape[0]):
        if urow[c] == 0:
            continue
        for i in range(S.shape[1]):
            if S[c, i] == UNSURE:
                cs[m], js[m] = c, i
                m += 1
    return cs, js


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
            pos[q + 1], r[q + 1], k[q + 1], a[q + 1], ex[q + 1], da[q + 1] = (
                pos[q],
                r[q],
                k[q],
                a[q],
                ex[q],
                da[q],
            )
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
def crossings_1d(x, ex, rowof, z, err, ef, eb, EB, G3, S, bps, n_cut):
    """The crossings of a layer's neurons with the sorted points ``x`` (V,)
    (step 2 of cutting a layer, once ``S`` holds exact signs).

    Returns the first crossing of each old interval ``cstart`` (V,); for
    every crossing, sorted by float position within each interval, its
    neuron ``cr``, breakpoint ``ck``, place ``ca`` (0..1) in its interval
    and the bound ``cda`` of that place's error, its position ``cpos`` and
    the bound ``cex`` of that position's error; and ``sure``: whether every
    crossing before it in its interval certainly lies before it (the error
    intervals are disjoint). A crossing not ``sure`` is ordered exactly by
    the caller. Returns the number not ``sure`` last. The bounds of ``z``:
    ``err, ef, eb, EB`` (see :func:`_ev`).
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
    nw = (kn + 7) // 8
    cmask = np.zeros(8 * nw, np.uint8)  # (the crossing columns of an interval; the padding stays 0)
    cwords = cmask.view(np.uint64)
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
        for q in range(kn):  # the strictly opposite signs (vectorises)
            cmask[q] = np.uint8(np.int8(S[c, q] * S[c + 1, q]) == np.int8(-1))
        for wd in range(nw):  # eight at a time: most are all 0
            if cwords[wd] == 0:
                continue
            for q in range(8 * wd, min(8 * wd + 8, kn)):
                if not cmask[q]:
                    continue
                k, r = q // n_cut, q % n_cut
                t = bps[k]
                s0 = S[c, q]
                e0, e1 = _ev(err, ef, eb, EB, r0, r), _ev(err, ef, eb, EB, r1, r)
                a, da = _place(z[r0, r] - t, z[r1, r] - t, s0, e0, e1)
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


@njit(cache=True, nogil=True)
def cut_counts(cstart, cda, keep):
    """``(max(cda) (NaN if one is; 0.0 if none), the number of intervals
    with a crossing, the number of crossings kept)``: three counts of a cut
    in one call (each a numpy call otherwise)."""
    mx = 0.0
    for i in range(cda.shape[0]):
        v = cda[i]
        if v != v:
            mx = v
            break
        mx = v if v > mx else mx
    ncut = 0
    for c in range(cstart.shape[0] - 1):
        ncut += cstart[c + 1] > cstart[c]
    nk = 0
    for i in range(keep.shape[0]):
        nk += keep[i]
    return mx, ncut, nk


@njit(cache=True, nogil=True)
def _rowmax(a, r):
    """``max(0.0, a[r, 0], a[r, 1], ...)`` with the semantics of a chain of
    ``m = max(m, x)`` from ``m = 0.0`` (``x`` replaces ``m`` iff ``x > m``: a
    NaN never enters, -0.0 never replaces 0.0), so the same bits in any
    order: taken in four lanes, which vectorise where one chain does not."""
    n = a.shape[1]
    n4 = n - n % 4
    m0 = m1 = m2 = m3 = 0.0
    for j in range(0, n4, 4):
        x0, x1, x2, x3 = a[r, j], a[r, j + 1], a[r, j + 2], a[r, j + 3]
        m0 = x0 if x0 > m0 else m0
        m1 = x1 if x1 > m1 else m1
        m2 = x2 if x2 > m2 else m2
        m3 = x3 if x3 > m3 else m3
    for j in range(n4, n):
        x = a[r, j]
        m0 = x if x > m0 else m0
    m0 = m1 if m1 > m0 else m0
    m0 = m2 if m2 > m0 else m0
    return m3 if m3 > m0 else m0


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
def split_1d(
    x, ex, rowof, z, err, ef, eb, EB, S, cstart, cr, ck, ca, cda, cpos, cex, keep, nk, neu, bpi, bps, first,
    n_cut, G3, values=True, inorder=False,
):  # fmt: skip
    """The points after a cut (step 3): ``(x, ex, neu, bpi, rowof, parent,
    pieces, cnew, anew, znew, errnew, emnew, dptr, dj)``.

    The old points keep their rows (with ``inorder``: old point ``c`` gets
    row ``c``, where the next layer's product writes its values, see
    ``_line1d_products.product_1d``), the ``e``-th crossing kept gets row
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
    crossing: see ``_line1d_bounds.Bounds``; the carried columns' bounds hold if
    they are affine along the interval; the old bounds: ``err, ef, eb, EB``,
    see :func:`_ev`); the neurons whose
    float piece differs at the ends of old interval ``c`` are
    ``dj[dptr[c]:dptr[c + 1]]``. Without ``values`` (the last layer's cut,
    whose values nothing reads), ``znew``, ``errnew``, ``emnew`` and ``dj``
    are empty (``dptr`` all 0).
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
    nv = nk if values else 0
    znew = np.empty((nv, n))
    errnew = np.empty((nv, n))
    emnew = np.zeros(nv)
    pieces = np.zeros((Vn - 1, n_cut), np.int8)
    cur = np.empty(kn, np.int8)
    emx = np.empty(n)  # the larger of an interval's ends' bounds, per column
    dptr = np.zeros(V, np.int64)
    ncut = 0
    for c in range(V - 1):
        ncut += cstart[c + 1] > cstart[c]
    dj = np.empty(ncut * n_cut if values else 0, np.int64)
    nw = (n_cut + 7) // 8
    dmask = np.zeros(8 * nw, np.uint8)  # (the neurons that change on an interval; the padding stays 0)
    dwords = dmask.view(np.uint64)
    q = 0
    e = -1
    for c in range(V):
        xn[q], exn[q], neun[q], bpn[q], rown[q] = x[c], ex[c], neu[c], bpi[c], c if inorder else rowof[c]
        if c == V - 1:
            break
        parent[q] = c
        q += 1
        r0, r1 = rowof[c], rowof[c + 1]
        dptr[c + 1] = dptr[c]
        if cstart[c + 1] == cstart[c]:
            _pieces_uncut(S, c, n_cut, pieces, q - 1)
            continue
        if values:
            _larger_bounds(err, ef, eb, EB, r0, r1, emx)
        # the signs on the open interval before the first crossing
        for i in range(kn):
            s0, s1 = S[c, i], S[c + 1, i]
            cur[i] = s0 if np.int8(s0 * s1) == np.int8(-1) else np.int8(s0 | s1)
        for i in range(cstart[c], cstart[c + 1]):
            if keep[i]:
                _emit_pieces(cur, n_cut, nbp, pieces, q - 1)
                e += 1
                a = ca[i]
                p = min(max(cpos[i], xn[q - 1]), x[c + 1])
                xn[q], exn[q], rown[q] = p, max(cex[i], exn[q - 1]), V + e
                neun[q], bpn[q] = first + cr[i], ck[i]
                parent[q] = c
                cnew[e], anew[e] = c, a
                if values:
                    for r in range(n):  # (no reduction in this loop: it vectorises)
                        u0, u1 = z[r0, r], z[r1, r]
                        znew[e, r] = u0 + a * (u1 - u0)
                        errnew[e, r] = SELF * (emx[r] + G3 * (2.0 * abs(u0) + abs(u1)))
                    emnew[e] = _rowmax(errnew, e)
                q += 1
            elif first + cr[i] < neun[q - 1]:
                neun[q - 1], bpn[q - 1] = first + cr[i], ck[i]
            o = ck[i] * n_cut + cr[i]
            cur[o] = S[c + 1, o]
            if values:
                znew[e, cr[i]] = bps[ck[i]]
                errnew[e, cr[i]] = 0.0
        _emit_pieces(cur, n_cut, nbp, pieces, q - 1)
        if not values:  # (nothing reads the last layer's changed neurons)
            continue
        m = dptr[c]
        if nbp == 1:
            t = bps[0]
            for j in range(n_cut):  # (vectorises)
                dmask[j] = np.uint8((z[r0, j] >= t) != (z[r1, j] >= t))
        else:
            for j in range(n_cut):
                d = False
                for k in range(nbp):
                    d |= (z[r0, j] >= bps[k]) != (z[r1, j] >= bps[k])
                dmask[j] = np.uint8(d)
        for wd in range(nw):  # eight at a time: most are all 0
            if dwords[wd] == 0:
                continue
            for j in range(8 * wd, min(8 * wd + 8, n_cut)):
                if dmask[j]:
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
