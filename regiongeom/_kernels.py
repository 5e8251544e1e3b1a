"""numba kernels. Each is wrapped by a plain Python function elsewhere.

The 2D subdivision is a half-edge mesh stored in flat arrays:

- vertices: ``vx, vy`` (coordinates) and ``zt[:, v]`` (the current layer's
  preactivations at the vertex, linearly interpolated along edges so that
  they are exactly the affine values of every face the vertex touches);
- half-edges: ``orig`` (start vertex), ``nxt`` (next half-edge around its
  face, counter-clockwise), ``twin`` (-1 on the domain boundary), ``face``,
  ``hneu``/``hbp`` (the neuron and breakpoint index whose hyperplane the edge
  lies on; -1 for the domain boundary, -2 for an edge of the initial
  decomposition of a non-convex domain);
- faces: ``fhe`` (one half-edge of the face) and ``pat`` (activation
  pattern: the index of the linear piece of every neuron).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# status codes returned by the kernels
OK = 0
ANOMALY = 1


@njit(cache=True)
def split_by_hyperplane(vx, vy, zt, row, t, rel_tol, s,
                        orig, nxt, twin, face, hneu, hbp, fhe, pat,
                        nv, nh, nf, neuron, bp):  # fmt: skip
    """Cut every face of the mesh by the hyperplane ``zt[row] == t``.

    Capacities must allow ``nv + n_edges`` vertices, ``nh + 2 n_edges + 2 nf``
    half-edges and ``2 nf`` faces. Returns ``(nv, nh, nf, status)``.
    """
    # 1. signs of the vertices, with the relative tolerance (snap onto t)
    scale = 0.0
    for v in range(nv):
        d = abs(zt[row, v] - t)
        if d > scale:
            scale = d
    thr = rel_tol * scale
    for v in range(nv):
        d = zt[row, v] - t
        if d > thr:
            s[v] = 1
        elif d < -thr:
            s[v] = -1
        else:
            s[v] = 0
            zt[row, v] = t
    # 2. split the edges whose endpoints have strictly opposite signs
    nh0 = nh
    nlay = zt.shape[0]
    for h in range(nh0):
        g = twin[h]
        if g != -1 and g < h:
            continue
        u = orig[h]
        w = orig[nxt[h]]
        if s[u] * s[w] >= 0:
            continue
        du = zt[row, u] - t
        dw = zt[row, w] - t
        a = du / (du - dw)
        m = nv
        nv += 1
        vx[m] = vx[u] + a * (vx[w] - vx[u])
        vy[m] = vy[u] + a * (vy[w] - vy[u])
        for r in range(nlay):
            zt[r, m] = zt[r, u] + a * (zt[r, w] - zt[r, u])
        zt[row, m] = t
        s[m] = 0
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
    # 3. split the faces that have vertices on both sides
    nf0 = nf
    status = OK
    for f in range(nf0):
        start = fhe[f]
        h = start
        prev = -1
        h0 = -1
        h0prev = -1
        npos = 0
        nneg = 0
        while True:
            sv = s[orig[h]]
            if sv > 0:
                npos += 1
            elif sv < 0:
                nneg += 1
            if sv != 0 and h0 == -1:
                h0 = h
                h0prev = prev
            prev = h
            h = nxt[h]
            if h == start:
                break
        if npos == 0 or nneg == 0:
            if nneg == 0:
                pat[f, neuron] += 1  # on or above the breakpoint: the piece to the right
            continue
        # walk from a non-zero vertex; find the two zero vertices where the sign flips
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
            status = ANOMALY
            continue
        e1 = nh
        e2 = nh + 1
        nh += 2
        f2 = nf
        nf += 1
        p = orig[hp]
        q = orig[hq]
        orig[e1] = p
        orig[e2] = q
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
        pat[f2, neuron] += 1
    return nv, nh, nf, status


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
