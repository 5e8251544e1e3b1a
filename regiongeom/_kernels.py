"""numba kernels. Each is wrapped by a plain Python function elsewhere.

The 2D subdivision is a half-edge mesh stored in flat arrays:

- vertices: ``vx, vy`` (coordinates) and ``zt[v, :]`` (the current layer's
  preactivations at the vertex, linearly interpolated along edges so that
  they are exactly the affine values of every face the vertex touches);
- half-edges: ``orig`` (start vertex), ``nxt`` (next half-edge around its
  face, counter-clockwise), ``twin`` (-1 on the domain boundary), ``face``,
  ``hneu``/``hbp`` (the neuron and breakpoint index whose hyperplane the edge
  lies on; -1 for the domain boundary, -2 for an edge of the initial
  decomposition of a non-convex domain);
- faces: ``fhe`` (one half-edge of the face) and ``pat`` (activation
  pattern: the index of the linear piece of every neuron of the layer
  being cut).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# status codes returned by the kernels
OK = 0
ANOMALY = 1
NEED_SPACE = 2
LIMIT = 3
REROOT = 4


# ---------------------------------------------------------------------------
# 2D: one layer's cuts in one call.
#
# At the start of a layer every face is a *root*: all the layer's
# preactivations are affine on it, so a neuron's hyperplane can touch only
# the roots whose vertex values straddle (or reach) its breakpoint. The
# faces cut out of a root stay on its linked list (``rhead``/``fnext``), so
# each neuron visits only the current faces of the roots it may cross: the
# work per neuron is the size of the mesh along its hyperplane, not the size
# of the mesh. Vertices are rows of ``zt`` (vertex-major), so creating one
# interpolates a contiguous row. The result is the one of cutting every face
# by every neuron in order, with the signs snapped by ``rel_tol`` against
# ``scale`` (the largest ``|z_j - t|`` over all vertices so far).
# ---------------------------------------------------------------------------


@njit(cache=True)
def layer_roots(fhe, nxt, orig, zt, nf, nv, bps, rel_tol, froot, fnext, j0):
    """Make every face a root for the cuts of the layer whose values are ``zt``
    by its neurons ``j0`` and after.

    A root is *beyond* a (neuron ``j``, breakpoint ``k``) when all its
    vertices have ``z_j - t_k > 2 thr`` or all ``< -2 thr``, ``thr`` being
    ``rel_tol`` times the largest ``|z_j - t_k|`` over the vertices (interpolated
    vertices never raise it by more than rounding, so the hyperplane cannot
    reach such a root during the layer). Returns ``(indptr, roots, above,
    rhead, rnsub, scale)``: ``roots[indptr[j * K + k]:indptr[j * K + k +
    1]]`` are the other roots, for each (j, k); ``above[f, k * n_rows + j]``
    is 1 if root ``f`` is beyond (j, k) on the upper side (2 on the lower);
    then the head and length of each root's list of faces, and
    ``max |zt[:, j] - bps[k]|`` over the vertices ``(n_rows, K)``, which the
    cuts keep up to date as they add vertices.
    """
    n_rows = zt.shape[1]
    nbp = bps.shape[0]
    nc = nbp * n_rows
    # scale of every (neuron, breakpoint), and the side of every vertex:
    # bit 1 above by the margin, bit 2 below by it
    sc = np.zeros((nbp, n_rows))
    side = np.zeros((nv, nc), np.uint8)
    for k in range(nbp):
        t = bps[k]
        s = sc[k]
        for v in range(nv):
            for r in range(j0, n_rows):
                s[r] = max(s[r], abs(zt[v, r] - t))
        m2 = 2.0 * rel_tol * s
        for v in range(nv):
            row = side[v, k * n_rows : (k + 1) * n_rows]
            for r in range(j0, n_rows):
                d = zt[v, r] - t
                row[r] = (d > m2[r]) + 2 * (d < -m2[r])
    # per root: the sides common to all its vertices (0: the hyperplane may cut it)
    above = np.empty((nf, nc), np.uint8)
    counts = np.zeros(nc + 1, np.int64)
    rhead = np.empty(nf, np.int64)
    rnsub = np.zeros(nf, np.int64)
    for f in range(nf):
        rnsub[f] = 1
        froot[f] = f
        fnext[f] = -1
        rhead[f] = f
        acc = above[f]
        h = fhe[f]
        sv = side[orig[h]]
        for i in range(nc):
            acc[i] = sv[i]
        h = nxt[h]
        while h != fhe[f]:
            sv = side[orig[h]]
            for i in range(nc):
                acc[i] &= sv[i]
            h = nxt[h]
        for k in range(nbp):
            for r in range(j0, n_rows):
                counts[1 + r * nbp + k] += acc[k * n_rows + r] == 0
    for q in range(nc):
        counts[q + 1] += counts[q]
    indptr = counts
    roots = np.empty(indptr[nc], np.int64)
    fill = np.empty(nc, np.int64)
    for q in range(nc):
        fill[q] = indptr[q]
    for f in range(nf):
        for k in range(nbp):
            for r in range(j0, n_rows):
                if above[f, k * n_rows + r] == 0:
                    q = r * nbp + k
                    roots[fill[q]] = f
                    fill[q] += 1
    scale = np.empty((n_rows, nbp))
    for k in range(nbp):
        for r in range(n_rows):
            scale[r, k] = sc[k, r]
    return indptr, roots, above, rhead, rnsub, scale


@njit(cache=True, inline="always")
def _snap_sign(zt, v, j, t, thr):
    d = zt[v, j] - t
    if d > thr:
        return 1
    if d < -thr:
        return -1
    zt[v, j] = t
    return 0


@njit(cache=True)
def _split_edge(h, j, t, bps, scale, vx, vy, zt, s, orig, nxt, twin, face, hneu, hbp,
                nv, nh):  # fmt: skip
    """Put a vertex where ``zt[:, j] == t`` on the edge of half-edge ``h``."""
    u = orig[h]
    w = orig[nxt[h]]
    du = zt[u, j] - t
    dw = zt[w, j] - t
    a = du / (du - dw)
    m = nv
    nv += 1
    vx[m] = vx[u] + a * (vx[w] - vx[u])
    vy[m] = vy[u] + a * (vy[w] - vy[u])
    n_rows = zt.shape[1]
    for r in range(n_rows):
        zt[m, r] = zt[u, r] + a * (zt[w, r] - zt[u, r])
    zt[m, j] = t
    s[m] = 0
    for k in range(bps.shape[0]):  # (the rows before j are not used again in this layer)
        for r in range(j, n_rows):
            scale[r, k] = max(scale[r, k], abs(zt[m, r] - bps[k]))
    g = twin[h]
    h2 = nh
    nh += 1
    orig[h2] = m
    nxt[h2] = nxt[h]
    face[h2] = face[h]
    hneu[h2] = hneu[h]
    hbp[h2] = hbp[h]
    nxt[h] = h2
    if g == -1:
        twin[h2] = -1
    else:
        g2 = nh
        nh += 1
        orig[g2] = m
        nxt[g2] = nxt[g]
        face[g2] = face[g]
        hneu[g2] = hneu[g]
        hbp[g2] = hbp[g]
        nxt[g] = g2
        twin[h] = g2
        twin[g2] = h
        twin[h2] = g
        twin[g] = h2
    return nv, nh


@njit(cache=True)
def _cut_face(f, j, t, thr, neuron, bp, bps, scale, vx, vy, zt, s, orig, nxt, twin, face,
              hneu, hbp, fhe, pat, froot, fnext, rhead, rnsub, nv, nh, nf):  # fmt: skip
    """Cut face ``f`` by ``zt[:, j] == t``; returns ``(nv, nh, nf, status)``."""
    # signs (snapped), splitting the edges whose ends have opposite signs
    start = fhe[f]
    h = start
    su = _snap_sign(zt, orig[h], j, t, thr)
    s[orig[h]] = su
    s0 = su
    npos = 0
    nneg = 0
    nsplit = 0
    while True:
        if su > 0:
            npos += 1
        elif su < 0:
            nneg += 1
        hn = nxt[h]
        if hn == start:
            sw = s0
        else:
            sw = _snap_sign(zt, orig[hn], j, t, thr)
            s[orig[hn]] = sw
        if su * sw < 0:
            nsplit += 1
            if nsplit > 2:  # only inconsistent signs cross a convex face 3 times
                return nv, nh, nf, ANOMALY
            nv, nh = _split_edge(h, j, t, bps, scale, vx, vy, zt, s, orig, nxt, twin, face,
                                 hneu, hbp, nv, nh)  # fmt: skip
            h = nxt[h]
            su = 0
            continue
        if hn == start:
            break
        h = hn
        su = sw
    if npos == 0 or nneg == 0:
        if nneg == 0:
            pat[f, j] += 1  # on or above the breakpoint: the piece to the right
        return nv, nh, nf, OK
    # walk from a non-zero vertex; find the two zero vertices where the sign flips
    h0 = start
    while s[orig[h0]] == 0:
        h0 = nxt[h0]
    last = s[orig[h0]]
    prev = h0
    h = nxt[h0]
    cand = -1
    cand_prev = -1
    hp = -1
    hp_prev = -1
    hq = -1
    hq_prev = -1
    ntrans = 0
    while True:
        sv = s[orig[h]]
        if sv == 0:
            cand = h
            cand_prev = prev
        else:
            if sv != last:
                ntrans += 1
                if last < 0:
                    hp = cand
                    hp_prev = cand_prev
                else:
                    hq = cand
                    hq_prev = cand_prev
            last = sv
            cand = -1
        if h == h0:
            break
        prev = h
        h = nxt[h]
    if ntrans != 2 or hp == -1 or hq == -1:
        return nv, nh, nf, ANOMALY
    e1 = nh
    e2 = nh + 1
    nh += 2
    f2 = nf
    nf += 1
    orig[e1] = orig[hp]
    orig[e2] = orig[hq]
    twin[e1] = e2
    twin[e2] = e1
    hneu[e1] = neuron
    hneu[e2] = neuron
    hbp[e1] = bp
    hbp[e2] = bp
    nxt[hq_prev] = e2
    nxt[e2] = hp
    nxt[hp_prev] = e1
    nxt[e1] = hq
    face[e1] = f
    fhe[f] = e1
    fhe[f2] = e2
    h = hp
    while True:
        face[h] = f2
        if h == e2:
            break
        h = nxt[h]
    for c in range(pat.shape[1]):
        pat[f2, c] = pat[f, c]
    pat[f2, j] += 1
    r = froot[f]
    froot[f2] = r
    fnext[f2] = rhead[r]
    rhead[r] = f2
    rnsub[r] += 1
    return nv, nh, nf, OK


@njit(cache=True)
def cut_layer(vx, vy, zt, s, orig, nxt, twin, face, hneu, hbp, fhe, pat,
              froot, fnext, rhead, rnsub, indptr, roots, scale,
              bps, rel_tol, first, counts, j, k, max_regions, reroot_at):  # fmt: skip
    """Cut the mesh by every (neuron, breakpoint) of a layer from ``(j, k)`` on,
    visiting for each only the faces of its roots (see :func:`layer_roots`).

    ``counts`` holds ``nv, nh, nf`` (updated in place). Returns ``(status, j,
    k)``: ``OK`` when the layer is done; ``NEED_SPACE`` when the arrays must
    grow before ``(j, k)`` can be cut (then ``counts[3:6]`` holds the sizes
    needed; call again with the grown arrays and the same ``j, k``);
    ``LIMIT`` once more than ``max_regions`` faces exist; ``ANOMALY`` if a
    face's signs were inconsistent; ``REROOT`` when there are ``reroot_at``
    faces or more (so that the roots have many faces each: make the current
    faces the roots and call again from ``(j, k)``).
    """
    n_rows = zt.shape[1]
    nbp = bps.shape[0]
    nv, nh, nf = counts[0], counts[1], counts[2]
    while j < n_rows:
        q = j * nbp + k
        # a face cut makes at most 2 vertices, 6 half-edges and 1 face
        bs = 0
        for i in range(indptr[q], indptr[q + 1]):
            bs += rnsub[roots[i]]
        need_v, need_h, need_f = nv + 2 * bs, nh + 6 * bs, nf + bs
        if need_v > vx.shape[0] or need_h > orig.shape[0] or need_f > fhe.shape[0]:
            counts[0], counts[1], counts[2] = nv, nh, nf
            counts[3], counts[4], counts[5] = need_v, need_h, need_f
            return NEED_SPACE, j, k
        t = bps[k]
        thr = rel_tol * scale[j, k]
        status = OK
        for i in range(indptr[q], indptr[q + 1]):
            r = roots[i]
            f = rhead[r]
            for _ in range(rnsub[r]):
                fn = fnext[f]
                nv, nh, nf, st = _cut_face(f, j, t, thr, first + j, k, bps, scale, vx, vy, zt,
                                           s, orig, nxt, twin, face, hneu, hbp, fhe, pat,
                                           froot, fnext, rhead, rnsub, nv, nh, nf)  # fmt: skip
                if st != OK:
                    status = st
                f = fn
        counts[0], counts[1], counts[2] = nv, nh, nf
        if status != OK:
            return status, j, k
        k += 1
        if k == nbp:
            k = 0
            j += 1
        if nf > max_regions:
            return LIMIT, j, k
        if nf >= reroot_at and k == 0 and j < n_rows:
            return REROOT, j, k
    return OK, j, k


@njit(cache=True)
def layer_patterns(pat, froot, above, nf, n_rows, j0, j1):
    """Add 1 to the pattern entry of neuron ``j`` (``j0 <= j < j1``) of every
    face whose root is beyond (j, k) on the upper side (``above``), for every k."""
    nbp = above.shape[1] // n_rows
    for f in range(nf):
        a = above[froot[f]]
        p = pat[f]
        for k in range(nbp):
            for j in range(j0, j1):
                p[j] += a[k * n_rows + j] & 1


@njit(cache=True)
def take_rows(src, idx, out):
    """``out[i] = src[idx[i]]`` for every row ``i`` of ``out`` (which may be
    a column slice of a larger array)."""
    for i in range(out.shape[0]):
        r = idx[i]
        for j in range(out.shape[1]):
            out[i, j] = src[r, j]


@njit(cache=True)
def apply_activation(z, n, bps, slopes, icpts):
    """``z[:n] = act(z[:n])`` in place for a piecewise-linear activation."""
    nbp = bps.shape[0]
    if nbp == 1:  # the common case, in a loop that vectorises
        t, s0, s1, i0, i1 = bps[0], slopes[0], slopes[1], icpts[0], icpts[1]
        for v in range(n):
            for r in range(z.shape[1]):
                x = z[v, r]
                z[v, r] = s1 * x + i1 if x >= t else s0 * x + i0
        return
    for v in range(n):
        for r in range(z.shape[1]):
            z[v, r] = _act(z[v, r], bps, slopes, icpts)


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
# count updates, which were an eighth of the time of a 1D enumeration.)


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
    (step 1 of cutting a layer, see ``_enumerate_1d._cut_layer``).

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


@njit(cache=True)
def face_cycles(fhe, nxt, orig, nf):
    """CSR listing of every face's vertex cycle: ``(indptr, vertex_ids)``."""
    counts = np.zeros(nf + 1, np.int64)
    for f in range(nf):
        h = fhe[f]
        c = 0
        while True:
            c += 1
            h = nxt[h]
            if h == fhe[f]:
                break
        counts[f + 1] = c
    indptr = np.cumsum(counts)
    out = np.empty(indptr[nf], np.int64)
    for f in range(nf):
        h = fhe[f]
        i = indptr[f]
        while True:
            out[i] = orig[h]
            i += 1
            h = nxt[h]
            if h == fhe[f]:
                break
    return indptr, out


@njit(cache=True)
def shoelace_csr(indptr, ids, vx, vy):
    """Area of every polygon given as a CSR vertex listing (CCW positive)."""
    n = indptr.shape[0] - 1
    out = np.empty(n, np.float64)
    for f in range(n):
        a = 0.0
        i0 = indptr[f]
        i1 = indptr[f + 1]
        # shift to the first vertex for accuracy far from the origin
        ox = vx[ids[i0]]
        oy = vy[ids[i0]]
        for i in range(i0, i1):
            j = i + 1 if i + 1 < i1 else i0
            a += (vx[ids[i]] - ox) * (vy[ids[j]] - oy) - (vx[ids[j]] - ox) * (vy[ids[i]] - oy)
        out[f] = 0.5 * a
    return out


# ---------------------------------------------------------------------------
# locus measures: exact length of segments inside disks, with a uniform grid
# ---------------------------------------------------------------------------


@njit(cache=True)
def _chord_in_disk(x0, y0, x1, y1, cx, cy, r2):
    """Length of the part of segment (x0,y0)-(x1,y1) inside the closed disk."""
    dx = x1 - x0
    dy = y1 - y0
    fx = x0 - cx
    fy = y0 - cy
    a = dx * dx + dy * dy
    if a == 0.0:
        return 0.0
    b = fx * dx + fy * dy
    c = fx * fx + fy * fy - r2
    disc = b * b - a * c
    if disc <= 0.0:
        return 0.0
    sq = np.sqrt(disc)
    # numerically stable roots of a t^2 + 2 b t + c = 0
    if b >= 0.0:
        q = -(b + sq)
    else:
        q = -(b - sq)
    t1 = q / a
    t2 = c / q if q != 0.0 else t1
    if t1 > t2:
        t1, t2 = t2, t1
    lo = t1 if t1 > 0.0 else 0.0
    hi = t2 if t2 < 1.0 else 1.0
    if hi <= lo:
        return 0.0
    return (hi - lo) * np.sqrt(a)


@njit(cache=True)
def segments_in_disks(seg, centers, eps, x0, y0, h, nx, ny):
    """(P,) total length of the segments ``seg`` (S, 2, 2) inside each disk.

    Segments are registered in every cell of an ``nx`` x ``ny`` grid (origin
    ``x0, y0``, cell size ``h``) that their bounding box grown by ``eps``
    touches; each center then looks only at its own cell.
    """
    S = seg.shape[0]
    P = centers.shape[0]
    ncell = nx * ny
    counts = np.zeros(ncell + 1, np.int64)
    lo_i = np.empty(S, np.int64)
    hi_i = np.empty(S, np.int64)
    lo_j = np.empty(S, np.int64)
    hi_j = np.empty(S, np.int64)
    for s in range(S):
        xa = min(seg[s, 0, 0], seg[s, 1, 0]) - eps
        xb = max(seg[s, 0, 0], seg[s, 1, 0]) + eps
        ya = min(seg[s, 0, 1], seg[s, 1, 1]) - eps
        yb = max(seg[s, 0, 1], seg[s, 1, 1]) + eps
        i0 = max(0, min(nx - 1, int(np.floor((xa - x0) / h))))
        i1 = max(0, min(nx - 1, int(np.floor((xb - x0) / h))))
        j0 = max(0, min(ny - 1, int(np.floor((ya - y0) / h))))
        j1 = max(0, min(ny - 1, int(np.floor((yb - y0) / h))))
        lo_i[s], hi_i[s], lo_j[s], hi_j[s] = i0, i1, j0, j1
        for i in range(i0, i1 + 1):
            for j in range(j0, j1 + 1):
                counts[i * ny + j + 1] += 1
    indptr = np.cumsum(counts)
    fill = indptr[:-1].copy()
    items = np.empty(indptr[ncell], np.int64)
    for s in range(S):
        for i in range(lo_i[s], hi_i[s] + 1):
            for j in range(lo_j[s], hi_j[s] + 1):
                c = i * ny + j
                items[fill[c]] = s
                fill[c] += 1
    out = np.zeros(P, np.float64)
    r2 = eps * eps
    for p in range(P):
        cx = centers[p, 0]
        cy = centers[p, 1]
        i = int(np.floor((cx - x0) / h))
        j = int(np.floor((cy - y0) / h))
        if i < 0 or j < 0 or i >= nx or j >= ny:
            continue  # the disk misses every segment (cells cover bbox + eps)
        c = i * ny + j
        acc = 0.0
        for k in range(indptr[c], indptr[c + 1]):
            s = items[k]
            acc += _chord_in_disk(seg[s, 0, 0], seg[s, 0, 1], seg[s, 1, 0], seg[s, 1, 1], cx, cy, r2)
        out[p] = acc
    return out
