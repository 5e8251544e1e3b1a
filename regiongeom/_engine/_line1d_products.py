"""numba kernels of the 1D engine (:mod:`.line1d`): the next layer's values
and their error bounds at the points after a cut (:func:`product_1d` at the
points whose values are computed, :func:`fill_new_rows_1d` at the crossings
whose values are interpolated). The cut itself is in :mod:`._line1d_kernels`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from ._line1d_kernels import CERT, ETA, SELF

# numba's own BLAS entry (the one its ``np.dot`` calls: scipy's dgemm),
# declared by name, so that code calling it can be cached
_xxgemm = types.ExternalFunction(
    "numba_xxgemm",
    types.intc(
        types.char, types.char, types.char, types.intp, types.intp, types.intp, types.CPointer(types.float64),
        types.CPointer(types.float64), types.intp, types.CPointer(types.float64), types.intp,
        types.CPointer(types.float64), types.CPointer(types.float64), types.intp,
    ),
)


def gemm_add(a, b, c):
    """``c += a @ b`` for C-contiguous float64 matrices, ``c``'s old value
    added inside the matrix product (BLAS ``beta = 1``): one rounding per
    value, as ``c + (a @ b)`` when the product is one panel of BLAS's inner
    dimension, and no pass that zeroes ``c`` first. (This Python version
    runs without the JIT; compiled code calls BLAS: :func:`_gemm_add_jit`.)"""
    c += a @ b


@overload(gemm_add, jit_options={"cache": True})
def _gemm_add_jit(a, b, c):
    if any(x.layout != "C" or x.ndim != 2 or x.dtype != types.float64 for x in (a, b, c)):
        raise TypeError("gemm_add takes C-contiguous 2D float64 arrays")  # (at compile time)

    def impl(a, b, c):  # pragma: no cover (compiled)
        m, k = a.shape
        n = b.shape[1]
        if m == 0 or n == 0:
            return
        if k == 0:  # (nothing to add; BLAS would leave c as it is too)
            return
        one = np.ones(2)
        # row-major c = a b is column-major c^T = b^T a^T: BLAS's (n, m, k) product of b and a
        r = _xxgemm(
            ord("d"), ord("n"), ord("n"), n, m, k, one.ctypes, b.ctypes, n, a.ctypes, k, one.ctypes, c.ctypes, n
        )
        if r != 0:
            raise RuntimeError("the BLAS matrix product failed")

    return impl


# (copies of the cut's helpers: no njit function calls one of another file)
@njit(cache=True, nogil=True)
def _ev(err, ef, eb, EB, r, j):
    """The bound of value ``j`` of row ``r``: ``err[r, j]`` for a row stored
    whole (``ef[r] < 0``), else that of a row of a product,
    ``ef[r] EB[eb[r], 0, j] + EB[eb[r], 1, j]`` (see :func:`product_1d`)."""
    f = ef[r]
    if f < 0.0:
        return err[r, j]
    k = eb[r]
    return f * EB[k, 0, j] + EB[k, 1, j]


@njit(cache=True, nogil=True)
def _chord_bounds(out, err, ef, eb, EB, r0, r1, k, nabs, var, emx):
    """``var[o] = |out[r1, o] - out[r0, o]| + e(r0, o) + e(r1, o) + k nabs[o]``
    (in that order of operations) and ``emx[o] = max(e(r0, o), e(r1, o))``
    with the bounds ``e`` of :func:`_ev`, in one pass (the storage of each
    row chosen once, outside the loops)."""
    f0, f1 = ef[r0], ef[r1]
    k0, k1 = eb[r0], eb[r1]
    m = var.shape[0]
    if f0 >= 0.0 and f1 >= 0.0:
        for o in range(m):
            e0 = f0 * EB[k0, 0, o] + EB[k0, 1, o]
            e1 = f1 * EB[k1, 0, o] + EB[k1, 1, o]
            var[o] = abs(out[r1, o] - out[r0, o]) + e0 + e1 + k * nabs[o]
            emx[o] = max(e0, e1)
    elif f0 >= 0.0:
        for o in range(m):
            e0 = f0 * EB[k0, 0, o] + EB[k0, 1, o]
            e1 = err[r1, o]
            var[o] = abs(out[r1, o] - out[r0, o]) + e0 + e1 + k * nabs[o]
            emx[o] = max(e0, e1)
    elif f1 >= 0.0:
        for o in range(m):
            e0 = err[r0, o]
            e1 = f1 * EB[k1, 0, o] + EB[k1, 1, o]
            var[o] = abs(out[r1, o] - out[r0, o]) + e0 + e1 + k * nabs[o]
            emx[o] = max(e0, e1)
    else:
        for o in range(m):
            e0, e1 = err[r0, o], err[r1, o]
            var[o] = abs(out[r1, o] - out[r0, o]) + e0 + e1 + k * nabs[o]
            emx[o] = max(e0, e1)


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
def _exact_act_row(Z, Zerr, r, t, s0, s1, lip, f, above, mx0, mx1):
    """One row of the bounds' pass of an activation with one breakpoint that
    computes exactly (see :func:`product_1d`): counts the values on the upper
    piece into ``above``, and raises ``mx0`` to the activations' errors
    times ``f`` and ``mx1`` to their sizes. Branch-free, so that it vectorises.
    The bounds of a row stored whole (``Zerr[r]``)."""
    l0, l1 = abs(s0), abs(s1)
    for j in range(Z.shape[1]):
        v = Z[r, j]
        ev = Zerr[r, j]
        up = v >= t
        above[j] += np.int32(up)
        ah = abs(s1 * v if up else s0 * v)
        x = lip * ev if abs(v - t) * CERT <= ev else (l1 if up else l0) * ev
        x *= f
        mx0[j] = x if x > mx0[j] else mx0[j]
        mx1[j] = ah if ah > mx1[j] else mx1[j]


@njit(cache=True, nogil=True)
def _exact_act_row_f(Z, rf, EB, k, r, t, s0, s1, lip, f, above, mx0, mx1):
    """:func:`_exact_act_row` for a row of a product, whose bounds are
    ``rf EB[k, 0] + EB[k, 1]`` (the same operations as :func:`_ev`: the same bits)."""
    l0, l1 = abs(s0), abs(s1)
    for j in range(Z.shape[1]):
        v = Z[r, j]
        ev = rf * EB[k, 0, j] + EB[k, 1, j]
        up = v >= t
        above[j] += np.int32(up)
        ah = abs(s1 * v if up else s0 * v)
        x = lip * ev if abs(v - t) * CERT <= ev else (l1 if up else l0) * ev
        x *= f
        mx0[j] = x if x > mx0[j] else mx0[j]
        mx1[j] = ah if ah > mx1[j] else mx1[j]


@njit(cache=True, nogil=True)
def _exact_act_rows2_f(Z, rf, k, r, f, rf2, k2, r2, f2, EB, t, s0, s1, lip, above, mx0, mx1):
    """:func:`_exact_act_row_f` on rows ``r`` then ``r2`` in one pass (the
    same operations in the same order on each of ``above``, ``mx0`` and
    ``mx1``: the same bits), which reads and writes those once for two rows."""
    l0, l1 = abs(s0), abs(s1)
    for j in range(Z.shape[1]):
        v = Z[r, j]
        ev = rf * EB[k, 0, j] + EB[k, 1, j]
        up = v >= t
        ah = abs(s1 * v if up else s0 * v)
        x = lip * ev if abs(v - t) * CERT <= ev else (l1 if up else l0) * ev
        x *= f
        v2 = Z[r2, j]
        ev2 = rf2 * EB[k2, 0, j] + EB[k2, 1, j]
        up2 = v2 >= t
        ah2 = abs(s1 * v2 if up2 else s0 * v2)
        x2 = lip * ev2 if abs(v2 - t) * CERT <= ev2 else (l1 if up2 else l0) * ev2
        x2 *= f2
        above[j] += np.int32(up) + np.int32(up2)
        m0 = mx0[j]
        m0 = x if x > m0 else m0
        mx0[j] = x2 if x2 > m0 else m0
        m1 = mx1[j]
        m1 = ah if ah > m1 else m1
        mx1[j] = ah2 if ah2 > m1 else m1


@njit(cache=True, nogil=True)
def _abs_rows(wt, zj, zf, nz, b0, b1):
    """``b0 += zf[0, p] |wt[zj[p]]|`` and ``b1 += zf[1, p] |wt[zj[p]]|`` for
    ``p = 0, 1, ..., nz - 1`` in that order, each sum rounded term by term
    (the same bits as one row at a time), four rows per pass so that
    ``b0`` and ``b1`` are read and written once per four rows."""
    m = wt.shape[1]
    nz4 = nz - nz % 4
    for p in range(0, nz4, 4):
        ja, jb, jc, jd = zj[p], zj[p + 1], zj[p + 2], zj[p + 3]
        fa, fb, fc, fd = zf[0, p], zf[0, p + 1], zf[0, p + 2], zf[0, p + 3]
        ga, gb, gc, gd = zf[1, p], zf[1, p + 1], zf[1, p + 2], zf[1, p + 3]
        for o in range(m):
            wa, wb, wc, wd = abs(wt[ja, o]), abs(wt[jb, o]), abs(wt[jc, o]), abs(wt[jd, o])
            b0[o] = (((b0[o] + fa * wa) + fb * wb) + fc * wc) + fd * wd
            b1[o] = (((b1[o] + ga * wa) + gb * wb) + gc * wc) + gd * wd
    for p in range(nz4, nz):
        j, f, g = zj[p], zf[0, p], zf[1, p]
        for o in range(m):
            w = abs(wt[j, o])
            b0[o] += f * w
            b1[o] += g * w


@njit(cache=True, nogil=True)
def _write_row(out, ef, eb, emax, y, pr, i, const, rr, blk, m0, m1):
    """Row ``y`` of ``out`` (``pr[i] + const``) and its bounds' factors: ``rr``
    and the block ``blk`` (largest bound: ``emax[y]``)."""
    emax[y] = SELF * (rr * m0 + m1)
    ef[y] = rr
    eb[y] = blk
    for o in range(out.shape[1]):
        out[y, o] = pr[i, o] + const[o]


@njit(cache=True, nogil=True)
def product_1d(
    Z, Zerr, Zf, Zb, ZB, Zmax, rows, off, q0, q1, bps, slopes, icpts, wt, b, babs, consts, out, ef, eb, EB,
    boff, emax, B, inorder=False,
):  # fmt: skip
    """The next layer's preactivations ``act(Z[r]) @ wt + b`` into row
    ``off + r`` of ``out``, for the rows ``r`` in ``rows[q0:q1]`` (points in
    their order along the line; with ``inorder``, the values of ``rows[q]``
    go to row ``off + q`` instead, so that the matrix product writes them
    in place), and the bounds of their errors, in
    factored form (below: ``ef``, ``eb``, ``EB``; their largest in each row
    into ``emax``), from those of ``Z`` (``Zerr, Zf, Zb, ZB`` in the same
    form: see :func:`_ev`; their largest in each row ``Zmax``); ``babs =
    |b|``, ``consts = (lip, ract, G, T)`` (see ``_line1d_bounds.Bounds``).

    **Factored bounds.** The bounds of a block's rows are ``rr_y b0 + b1``:
    one number ``rr_y`` per row and two vectors per block (derivation
    below). They are stored so, not row by row: ``ef[y] = rr_y``, ``eb[y]``
    the block's index ``boff + s // B`` (``s``: the block's first place in
    ``rows``; blocks start at multiples of ``B``) and ``EB[eb[y]] = (b0,
    b1)``. A reader forms a bound as ``ef[y] EB[eb[y], 0, o] + EB[eb[y],
    1, o]``, the very operations (same order, same rounding: no fused
    multiply-add) that formed it when it was written out whole, so every
    decision made from it is unchanged; writing the ``(V, m)`` bounds
    was a pass as long as the product's own output.

    Takes the rows in blocks of ``B`` (``rows[q0 + i B: q0 + (i + 1) B]``):
    along a line, most neurons keep one piece over a block, and the ones
    whose activation is the same constant on the whole block (ReLU: dead)
    are left out of its matrix product and added as a constant row (nothing
    for a zero). The bounds ``|W| @ eh + G (|W| @ |h| + |b|) + T`` (``eh``:
    the activations' errors) take two small matrix-vector products per
    block: ``eh[r, i] <= rho_r phi_i`` with ``rho_r`` the largest of row
    ``r`` (or ``lip Zmax[r]``) and ``phi_i`` the largest of ``eh[r, i] /
    rho_r`` over the block (so that a row with large errors does not spoil
    its block), and ``|h|`` the largest over the block. Both products skip
    the neurons whose ``phi`` and ``|h|`` are 0 over the block (ReLU: dead
    and certain), and take four rows of ``|W|`` per pass (:func:`_abs_rows`)."""
    n = Z.shape[1]
    m = wt.shape[1]
    nbp = bps.shape[0]
    lip, ract, G, T = consts[0], consts[1], consts[2], consts[3]
    cols = np.empty(n, np.int64)
    const = np.empty(m)
    wq_buf = np.empty(n * m)
    ap_buf = np.empty(B * n)
    pr = np.empty((0 if inorder else B, m))  # (in order, the product is written in place)
    first = np.empty(n, np.int64)  # the piece of each neuron at the block's first point
    same = np.empty(n, np.bool_)  # ... and whether it is the same at all its points
    above = np.empty(n, np.int32)
    mx = np.empty((2, n))  # the largest relative error and size of each activation over the block
    bnd = np.empty((2, m))
    rho = np.empty(B)
    ehrow = np.empty(n)
    zj = np.empty(n, np.int64)  # the neurons with a nonzero term in the bounds
    zf = np.empty((2, n))  # ... and their factors
    for s in range(q0, q1, B):
        nb = min(s + B, q1) - s
        r = rows[s]
        for j in range(n):
            first[j] = _piece(Z[r, j], bps)
            same[j] = True
            mx[0, j] = 0.0
            mx[1, j] = 0.0
        fused = nbp == 1 and ract == 0.0  # the count is made in the bounds' pass below
        if nbp == 1:  # count the points on the upper piece, in a loop that vectorises
            t = bps[0]
            above[:] = 0
            for i in range(0 if fused else nb):
                r = rows[s + i]
                for j in range(n):
                    above[j] += np.int32(Z[r, j] >= t)
        else:
            for i in range(1, nb):
                r = rows[s + i]
                for j in range(n):
                    same[j] &= _piece(Z[r, j], bps) == first[j]
        mx0, mx1 = mx[0], mx[1]
        i = 0
        while fused and i < nb:  # one pass, branch-free, so that it vectorises
            r = rows[s + i]
            rr = lip * Zmax[r]
            f = 1.0 / rr if rr > 0.0 else 0.0
            rho[i] = rr
            if Zf[r] < 0.0:
                _exact_act_row(Z, Zerr, r, bps[0], slopes[0], slopes[1], lip, f, above, mx0, mx1)
                i += 1
                continue
            r2 = rows[s + i + 1] if i + 1 < nb else r
            if i + 1 == nb or Zf[r2] < 0.0:
                _exact_act_row_f(
                    Z, Zf[r], ZB, Zb[r], r, bps[0], slopes[0], slopes[1], lip, f, above, mx0, mx1
                )
                i += 1
                continue
            rr2 = lip * Zmax[r2]
            rho[i + 1] = rr2
            f2 = 1.0 / rr2 if rr2 > 0.0 else 0.0
            _exact_act_rows2_f(
                Z, Zf[r], Zb[r], r, f, Zf[r2], Zb[r2], r2, f2, ZB,
                bps[0], slopes[0], slopes[1], lip, above, mx0, mx1,
            )  # fmt: skip
            i += 2
        for i in range(0 if fused else nb):  # (every other activation)
            r = rows[s + i]
            rr = 0.0
            if nbp == 1:
                t, s0, s1, i0, i1 = bps[0], slopes[0], slopes[1], icpts[0], icpts[1]
                l0, l1, a0, a1 = abs(s0), abs(s1), ract * (2.0 * abs(i0) + ETA), ract * (2.0 * abs(i1) + ETA)
                for j in range(n):
                    v = Z[r, j]
                    ev = _ev(Zerr, Zf, Zb, ZB, r, j)
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
                    x = _act_error(v, _ev(Zerr, Zf, Zb, ZB, r, j), bps, slopes, icpts, lip, ract)
                    ehrow[j] = x
                    rr = max(rr, x)
                    mx1[j] = max(mx1[j], abs(_act(v, bps, slopes, icpts)))
            rho[i] = rr
            if rr > 0.0:
                f = 1.0 / rr
                for j in range(n):
                    x = ehrow[j] * f
                    mx0[j] = x if x > mx0[j] else mx0[j]
        if nbp == 1:
            for j in range(n):
                same[j] = above[j] == 0 or above[j] == nb
        b0, b1 = bnd[0], bnd[1]
        for o in range(m):
            const[o] = b[o]
            b0[o] = 0.0
            b1[o] = 0.0
        na = 0
        nz = 0
        for j in range(n):
            f0 = mx0[j] * SELF  # (SELF: the rounding of eh / rho)
            f1 = mx1[j]
            if same[j] and slopes[first[j]] == 0.0:
                c = icpts[first[j]]
                if c != 0.0:
                    for o in range(m):
                        const[o] += c * wt[j, o]
            else:  # a column of the product
                cols[na] = j
                na += 1
            if f0 != 0.0 or f1 != 0.0:  # (a zero term would add exactly nothing)
                zj[nz] = j
                zf[0, nz] = f0
                zf[1, nz] = f1
                nz += 1
        for k in range(na):  # the product's rows of W
            j = cols[k]
            for o in range(m):
                wq_buf[k * m + o] = wt[j, o]
        _abs_rows(wt, zj, zf, nz, b0, b1)
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
        dst = out[off + s : off + s + nb] if inorder else pr[:nb]
        if inorder and na > 0:  # the constant row first, the product added to it (BLAS beta = 1)
            for i in range(nb):
                for o in range(m):
                    dst[i, o] = const[o]
            gemm_add(ap, wq_buf[: na * m].reshape((na, m)), dst)
        elif na > 0:
            np.dot(ap, wq_buf[: na * m].reshape((na, m)), dst)
        else:
            for i in range(nb):
                for o in range(m):
                    dst[i, o] = 0.0
        m0, m1 = 0.0, 0.0
        blk = boff + s // B
        for o in range(m):
            bnd[1, o] = SELF * G * (bnd[1, o] + babs[o]) + T
            m0, m1 = max(m0, bnd[0, o]), max(m1, bnd[1, o])
            EB[blk, 0, o] = b0[o]
            EB[blk, 1, o] = bnd[1, o]
        for i in range(nb):
            if inorder:  # (the same sum as _write_row's, in place)
                y = off + s + i
                rr = SELF * SELF * rho[i]
                emax[y] = SELF * (rr * m0 + m1)
                ef[y] = rr
                eb[y] = blk
                for o in range(m if na == 0 else 0):  # (else the product added const)
                    out[y, o] = out[y, o] + const[o]
            else:
                y = off + rows[s + i]
                _write_row(out, ef, eb, emax, y, pr, i, const, SELF * SELF * rho[i], blk, m0, m1)


@njit(cache=True, nogil=True)
def fill_new_rows_1d(
    out, errout, ef, eb, EB, emax, rowof, cnew, anew, danew, cptr, cj, cv, cb, isdirect, dptr, dj, z, zmax,
    wt, nabs, znew, errnew, emnew, bps, slopes, icpts, consts, e0, e1, inorder=False,
):  # fmt: skip
    """Complete ``out`` (Vn, m), the next layer's preactivations at the points
    after a cut, once :func:`product_1d` has written the rows it computes,
    and the bounds ``errout`` of every crossing's row (their largest: ``emax``),
    stored whole (``ef`` set to -1: see :func:`_ev`; the computed rows' bounds are
    read in their factored form ``ef, eb, EB``), for the crossings ``e0 <= e < e1``
    (each crossing's row depends on nothing but its interval's ends: two
    threads may fill two ranges at once, with the same bits).

    Every crossing ``e`` not computed (row ``V + e``, inside old interval
    ``c`` whose ends have rows ``rowof[c], rowof[c + 1]`` of ``z``, and of
    ``out`` the same, or ``c, c + 1`` with ``inorder``) has its
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
    emx = np.empty(m)  # the larger of the ends' bounds, per column
    last = -1
    for e in range(e0, e1):
        c = cnew[e]
        r0, r1, a = rowof[c], rowof[c + 1], anew[e]
        y0, y1 = (c, c + 1) if inorder else (r0, r1)  # (their rows of out)
        y = V + e
        if c != last:  # the variation's bound along old interval c, once per interval
            last = c
            em = max(zmax[r0], zmax[r1])
            _chord_bounds(out, errout, ef, eb, EB, y0, y1, 4.0 * lip * em, nabs, var, emx)
            for p in range(dptr[c], dptr[c + 1]):
                j = dj[p]
                k = 2.0 * lip * abs(z[r1, j] - z[r0, j]) * SELF
                for o in range(m):
                    var[o] += k * abs(wt[j, o])
        da = danew[e]
        if isdirect[e]:  # a computed row: its bounds, from their factors, stored whole
            f = ef[y]
            if f < 0.0:
                for o in range(m):
                    errout[y, o] = SELF * (errout[y, o] + da * var[o])
            else:  # (the operations of _ev)
                kb = eb[y]
                for o in range(m):
                    errout[y, o] = SELF * ((f * EB[kb, 0, o] + EB[kb, 1, o]) + da * var[o])
            ef[y] = -1.0
            emax[y] = _rowmax(errout, y)
            continue
        ef[y] = -1.0
        eh = 0.0
        if ract == 0.0:  # |act(v) - act(v*)| <= lip e
            eh = lip * emnew[e]
        else:
            for j in range(n):
                eh = max(eh, _act_error(znew[e, j], errnew[e, j], bps, slopes, icpts, lip, ract))
        if cptr[e] == cptr[e + 1]:  # no correction: the row and its final bound in one pass
            for o in range(m):  # (the largest apart: a loop without a reduction vectorises)
                u0, u1 = out[y0, o], out[y1, o]
                out[y, o] = (1.0 - a) * u0 + a * u1
                x = (
                    nabs[o] * eh
                    + emx[o]
                    + 2.0**-50 * (2.0 * abs(u0) + abs(u1))
                )
                errout[y, o] = SELF * (x + da * var[o])
            emax[y] = _rowmax(errout, y)
            continue
        for o in range(m):
            u0, u1 = out[y0, o], out[y1, o]
            out[y, o] = (1.0 - a) * u0 + a * u1
            errout[y, o] = (
                nabs[o] * eh + emx[o] + 2.0**-50 * (2.0 * abs(u0) + abs(u1))
            )
        for p in range(cptr[e], cptr[e + 1]):
            j, corr, cbj = cj[p], cv[p], cb[p] + 2.0**-51 * abs(cv[p])
            for o in range(m):
                w = wt[j, o]
                v = out[y, o] + corr * w
                out[y, o] = v
                errout[y, o] += cbj * abs(w) + 2.0**-52 * abs(v)
        for o in range(m):
            errout[y, o] = SELF * (errout[y, o] + da * var[o])
        emax[y] = _rowmax(errout, y)
