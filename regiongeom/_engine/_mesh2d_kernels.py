"""numba kernels of the 2D engine (:mod:`.mesh2d`).

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
