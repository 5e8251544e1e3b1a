"""numba kernels of the 2D engine (:mod:`.mesh2d`) around the cuts: the roots
of a layer's cuts (:func:`layer_roots`, :func:`layer_patterns`) and the final
mesh's face cycles and areas. The cuts themselves are in :mod:`._mesh2d_kernels`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._mesh2d_kernels import NF, NV, Mesh, Roots


@njit(cache=True)
def layer_roots(mesh_fields, bps, rn, j0, n_cut):
    """Make every face a root for the cuts by the neurons ``j0 <= j <
    n_cut`` of the layer whose values are ``mesh.values``; returns
    :class:`Roots`.

    A root is *beyond* a (neuron ``j``, breakpoint ``k``) when every one of
    its vertices has ``z_j - t_k > rn[j] * eps[v]`` (or every one ``<
    -rn[j] * eps[v]``): then the exact values at its exact vertices are all
    above (below) the breakpoint, so by convexity the whole root is, and the
    hyperplane cannot reach any face of it.
    """
    mesh = Mesh(*mesh_fields)
    values, eps, face_edge, nxt, orig = mesh.values, mesh.eps, mesh.face_edge, mesh.nxt, mesh.orig
    root, next_in_root = mesh.root, mesh.next_in_root
    nv, nf = mesh.size[NV], mesh.size[NF]
    n_rows = n_cut
    nbp = bps.shape[0]
    n_cuts = nbp * n_rows
    # the side of every vertex: bit 1 certainly above, bit 2 certainly below
    side = np.zeros((nv, n_cuts), np.uint8)
    for k in range(nbp):
        t = bps[k]
        for v in range(nv):
            e = eps[v]
            row = side[v, k * n_rows : (k + 1) * n_rows]
            for r in range(j0, n_rows):
                d = values[v, r] - t
                thr = rn[r] * e
                row[r] = (d > thr) + 2 * (d < -thr)
    # per root: the sides common to all its vertices (0: the hyperplane may cut it)
    beyond = np.empty((nf, n_cuts), np.uint8)
    counts = np.zeros(n_cuts + 1, np.int64)
    head = np.empty(nf, np.int64)
    count = np.zeros(nf, np.int64)
    for f in range(nf):
        count[f] = 1
        root[f] = f
        next_in_root[f] = -1
        head[f] = f
        common = beyond[f]
        h = face_edge[f]
        sv = side[orig[h]]
        for i in range(n_cuts):
            common[i] = sv[i]
        h = nxt[h]
        while h != face_edge[f]:
            sv = side[orig[h]]
            for i in range(n_cuts):
                common[i] &= sv[i]
            h = nxt[h]
        for k in range(nbp):
            for r in range(j0, n_rows):
                counts[1 + r * nbp + k] += common[k * n_rows + r] == 0
    for q in range(n_cuts):
        counts[q + 1] += counts[q]
    indptr = counts
    faces = np.empty(indptr[n_cuts], np.int64)
    fill = np.empty(n_cuts, np.int64)
    for q in range(n_cuts):
        fill[q] = indptr[q]
    for f in range(nf):
        for k in range(nbp):
            for r in range(j0, n_rows):
                if beyond[f, k * n_rows + r] == 0:
                    q = r * nbp + k
                    faces[fill[q]] = f
                    fill[q] += 1
    return Roots(indptr, faces, beyond, head, count)


@njit(cache=True)
def layer_patterns(mesh_fields, roots_fields, j0, j1, n_cut):
    """Add 1 to the piece of neuron ``j`` (``j0 <= j < j1``) of every face
    whose root lies beyond (j, k) on the upper side, for every k (the cuts
    skipped those faces)."""
    mesh, roots = Mesh(*mesh_fields), Roots(*roots_fields)
    beyond, root, pieces = roots.beyond, mesh.root, mesh.pieces
    n_rows = n_cut
    nbp = beyond.shape[1] // n_rows
    for f in range(mesh.size[NF]):
        a = beyond[root[f]]
        p = pieces[f]
        for k in range(nbp):
            for j in range(j0, j1):
                p[j] += a[k * n_rows + j] & 1


@njit(cache=True)
def face_cycles(face_edge, nxt, orig, nf):
    """CSR listing of every face's vertex cycle: ``(indptr, vertex_ids)``."""
    counts = np.zeros(nf + 1, np.int64)
    for f in range(nf):
        h = face_edge[f]
        c = 0
        while True:
            c += 1
            h = nxt[h]
            if h == face_edge[f]:
                break
        counts[f + 1] = c
    indptr = counts  # the running sum in place (a loop, not np.cumsum: one numba overload less to compile)
    for f in range(nf):
        indptr[f + 1] += indptr[f]
    out = np.empty(indptr[nf], np.int64)
    for f in range(nf):
        h = face_edge[f]
        i = indptr[f]
        while True:
            out[i] = orig[h]
            i += 1
            h = nxt[h]
            if h == face_edge[f]:
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
