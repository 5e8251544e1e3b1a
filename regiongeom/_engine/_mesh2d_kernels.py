"""numba kernels of the 2D engine (:mod:`.mesh2d`): one layer's cuts in one call.

The subdivision is a half-edge mesh in flat arrays (:class:`Mesh`). At the
start of a layer every face is a *root*: all the layer's preactivations are
affine on it, so a neuron's hyperplane can touch only the roots whose vertex
values straddle (or reach) its breakpoint (:func:`layer_roots`). The faces
cut out of a root stay on its linked list, so each neuron visits only the
current faces of the roots it may cross (:func:`cut_layer`): the work per
neuron is the size of the mesh along its hyperplane, not the size of the
mesh. Vertices are rows of ``values`` (vertex-major), so creating one
interpolates a contiguous row. The result is the one of cutting every face
by every neuron in order, with the signs snapped by ``rel_tol`` against the
largest ``|z_j - t|`` over all vertices so far.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

# status codes returned by cut_layer (handled by mesh2d.check_status)
OK = 0
ANOMALY = 1  # a face's signs were inconsistent
NEED_SPACE = 2  # the arrays must grow to the sizes in size[NEED_V:]
LIMIT = 3  # more than max_regions faces
REROOT = 4  # the faces have doubled: make them the roots and call again

# The kernels called from Python take a Mesh and Roots as plain tuples
# (``tuple(mesh)``) and name their fields at once: numba types a NamedTuple
# argument far more slowly than a plain tuple, on every call.

# entries of Mesh.size
NV, NH, NF = 0, 1, 2  # vertices, half-edges and faces in use
NEED_V, NEED_H, NEED_F = 3, 4, 5  # the sizes the next cut needs


class Mesh(NamedTuple):
    """The arrays of the half-edge mesh, allocated with room to grow.

    Vertices: ``vx, vy (cap_v,)``, and ``values (cap_v, n)`` the current
    layer's preactivations at the vertex (interpolated along edges, so they
    are exactly the affine values of every face the vertex touches);
    ``sign (cap_v,) int8`` is scratch for the neuron being cut.
    Half-edges ``(cap_h,)``: ``orig`` (start vertex), ``nxt`` (the next
    half-edge around its face, counter-clockwise), ``twin`` (-1 on the
    domain's boundary), ``face``, and ``edge_neuron``/``edge_bp`` (the
    neuron and breakpoint whose hyperplane the edge lies on; BOUNDARY or
    ARTIFICIAL for the domain's edges). Faces ``(cap_f,)``: ``face_edge``
    (one of its half-edges), ``pieces (cap_f, n) int8`` (the piece of each
    of the layer's neurons), ``root`` (the root holding it) and
    ``next_in_root`` (the next face of that root, -1 at the end).
    ``size (6,) int64``: the counts in use and the sizes needed (NV ... NEED_F).
    """

    vx: np.ndarray
    vy: np.ndarray
    values: np.ndarray
    sign: np.ndarray
    orig: np.ndarray
    nxt: np.ndarray
    twin: np.ndarray
    face: np.ndarray
    edge_neuron: np.ndarray
    edge_bp: np.ndarray
    face_edge: np.ndarray
    pieces: np.ndarray
    root: np.ndarray
    next_in_root: np.ndarray
    size: np.ndarray


class Roots(NamedTuple):
    """The roots of a layer's cuts (made by :func:`layer_roots`).

    ``faces[indptr[q]:indptr[q + 1]]`` are the roots that (neuron ``j``,
    breakpoint ``k``), ``q = j * K + k``, may cut; ``beyond[f, k * n + j]``
    is 1 if root ``f`` lies beyond it on the upper side, 2 on the lower, 0
    neither; ``head[f]`` and ``count[f]`` are the first face and the number
    of faces of root ``f``'s list; ``scale (n, K)`` is the largest
    ``|z_j - t_k|`` over the vertices, kept up to date as vertices are added.
    """

    indptr: np.ndarray
    faces: np.ndarray
    beyond: np.ndarray
    head: np.ndarray
    count: np.ndarray
    scale: np.ndarray


@njit(cache=True)
def layer_roots(mesh_fields, bps, rel_tol, j0):
    """Make every face a root for the cuts by the neurons ``j0`` and after
    of the layer whose values are ``mesh.values``; returns :class:`Roots`.

    A root is *beyond* a (neuron ``j``, breakpoint ``k``) when all its
    vertices have ``z_j - t_k > 2 thr`` or all ``< -2 thr``, ``thr`` being
    ``rel_tol`` times the largest ``|z_j - t_k|`` over the vertices
    (interpolated vertices never raise it by more than rounding, so the
    hyperplane cannot reach such a root during the layer).
    """
    mesh = Mesh(*mesh_fields)
    values, face_edge, nxt, orig = mesh.values, mesh.face_edge, mesh.nxt, mesh.orig
    root, next_in_root = mesh.root, mesh.next_in_root
    nv, nf = mesh.size[NV], mesh.size[NF]
    n_rows = values.shape[1]
    nbp = bps.shape[0]
    n_cuts = nbp * n_rows
    # the scale of every (neuron, breakpoint), and the side of every vertex:
    # bit 1 above by the margin, bit 2 below by it
    scale_kj = np.zeros((nbp, n_rows))
    side = np.zeros((nv, n_cuts), np.uint8)
    for k in range(nbp):
        t = bps[k]
        sk = scale_kj[k]
        for v in range(nv):
            for r in range(j0, n_rows):
                sk[r] = max(sk[r], abs(values[v, r] - t))
        margin = 2.0 * rel_tol * sk
        for v in range(nv):
            row = side[v, k * n_rows : (k + 1) * n_rows]
            for r in range(j0, n_rows):
                d = values[v, r] - t
                row[r] = (d > margin[r]) + 2 * (d < -margin[r])
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
    scale = np.empty((n_rows, nbp))
    for k in range(nbp):
        for r in range(n_rows):
            scale[r, k] = scale_kj[k, r]
    return Roots(indptr, faces, beyond, head, count, scale)


@njit(cache=True, inline="always")
def _snap_sign(values, v, j, t, thr):
    """The sign of ``values[v, j] - t``, 0 within ``thr`` (and then the value
    is set to ``t`` exactly)."""
    d = values[v, j] - t
    if d > thr:
        return 1
    if d < -thr:
        return -1
    values[v, j] = t
    return 0


@njit(cache=True)
def cut_layer(mesh_fields, roots_fields, bps, rel_tol, first, j, k, max_regions, reroot_at):
    """Cut the mesh by every (neuron, breakpoint) of a layer from ``(j, k)``
    on, visiting for each only the faces of its roots. Returns ``(status, j,
    k)``: ``OK`` when the layer is done; ``NEED_SPACE`` when the arrays must
    grow before ``(j, k)`` can be cut (to the sizes in ``size[NEED_V:]``;
    then call again with the grown mesh and the same ``j, k``); ``LIMIT``
    once more than ``max_regions`` faces exist; ``ANOMALY`` if a face's
    signs were inconsistent; ``REROOT`` when there are ``reroot_at`` faces
    or more (so that the roots have many faces each: make the current faces
    the roots and call again from ``(j, k)``).
    """
    # The per-face functions below take the arrays themselves, not the named
    # tuples: in numba every read of an array out of a tuple updates its
    # reference count atomically, which slows the cuts down noticeably.
    m = Mesh(*mesh_fields)
    roots = Roots(*roots_fields)
    vx, vy, values, sign = m.vx, m.vy, m.values, m.sign
    orig, nxt, twin, face, edge_neuron, edge_bp = m.orig, m.nxt, m.twin, m.face, m.edge_neuron, m.edge_bp
    face_edge, pieces, root, next_in_root, head, count = (
        m.face_edge,
        m.pieces,
        m.root,
        m.next_in_root,
        roots.head,
        roots.count,
    )
    indptr, root_faces, scale = roots.indptr, roots.faces, roots.scale
    n_rows = m.values.shape[1]
    nbp = bps.shape[0]
    size = m.size
    nv, nh, nf = size[NV], size[NH], size[NF]
    while j < n_rows:
        q = j * nbp + k
        # a face cut makes at most 2 vertices, 6 half-edges and 1 face
        n_faces = 0
        for i in range(indptr[q], indptr[q + 1]):
            n_faces += count[root_faces[i]]
        size[NEED_V], size[NEED_H], size[NEED_F] = nv + 2 * n_faces, nh + 6 * n_faces, nf + n_faces
        if (
            size[NEED_V] > m.vx.shape[0]
            or size[NEED_H] > m.orig.shape[0]
            or size[NEED_F] > m.face_edge.shape[0]
        ):
            return NEED_SPACE, j, k
        thr = rel_tol * scale[j, k]
        status = OK
        for i in range(indptr[q], indptr[q + 1]):
            r = root_faces[i]
            f = head[r]
            for _ in range(count[r]):
                f_next = next_in_root[f]
                nv, nh, nf, st = _cut_face(f, j, k, first + j, thr, bps, scale, vx, vy, values, sign, orig, nxt, twin,
                                           face, edge_neuron, edge_bp, face_edge, pieces, root, next_in_root, head,
                                           count, nv, nh, nf)  # fmt: skip
                if st != OK:
                    status = st
                f = f_next
        size[NV], size[NH], size[NF] = nv, nh, nf
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
def _cut_face(f, j, k, neuron, thr, bps, scale, vx, vy, values, sign, orig, nxt, twin, face, edge_neuron, edge_bp,
              face_edge, pieces, root, next_in_root, root_head, root_count, nv, nh, nf):  # fmt: skip
    """Cut face ``f`` by ``values[:, j] == bps[k]`` (``neuron``): the part on
    the upper side becomes a new face on the list of the same root, and a
    face the line does not cross gets the piece of the side it is on.
    Returns ``(nv, nh, nf, status)``, status OK or ANOMALY. (The arrays are
    those of :class:`Mesh` and :class:`Roots`, see :func:`cut_layer`.)"""
    t = bps[k]
    nv, nh, n_above, n_below = _signs_and_splits(f, j, t, thr, bps, scale, vx, vy, values, sign, orig, nxt, twin,
                                                 face, edge_neuron, edge_bp, face_edge, nv, nh)  # fmt: skip
    if n_above < 0:
        return nv, nh, nf, ANOMALY
    if n_above == 0 or n_below == 0:
        if n_below == 0:
            pieces[f, j] += 1  # on or above the breakpoint: the piece to the right
        return nv, nh, nf, OK
    hp, hp_prev, hq, hq_prev = _chord_ends(face_edge[f], sign, orig, nxt)
    if hp == -1:
        return nv, nh, nf, ANOMALY
    # the new edge e1 (in f) / e2 (in the new face f2) from the vertex of hp to that of hq
    e1, e2, f2 = nh, nh + 1, nf
    orig[e1], orig[e2] = orig[hp], orig[hq]
    twin[e1], twin[e2] = e2, e1
    edge_neuron[e1], edge_neuron[e2] = neuron, neuron
    edge_bp[e1], edge_bp[e2] = k, k
    nxt[hq_prev], nxt[e2], nxt[hp_prev], nxt[e1] = e2, hp, e1, hq
    face[e1] = f
    face_edge[f], face_edge[f2] = e1, e2
    h = hp
    while True:
        face[h] = f2
        if h == e2:
            break
        h = nxt[h]
    for c in range(pieces.shape[1]):
        pieces[f2, c] = pieces[f, c]
    pieces[f2, j] += 1
    r = root[f]
    root[f2] = r
    next_in_root[f2] = root_head[r]
    root_head[r] = f2
    root_count[r] += 1
    return nv, nh + 2, nf + 1, OK


@njit(cache=True, inline="always")
def _signs_and_splits(f, j, t, thr, bps, scale, vx, vy, values, sign, orig, nxt, twin, face, edge_neuron, edge_bp,
                      face_edge, nv, nh):  # fmt: skip
    """Snap the sign of every vertex of face ``f`` into ``sign`` and split
    the edges whose ends have opposite signs. Returns ``(nv, nh, n_above,
    n_below)``, the last two -1 if the line would cross the face more than
    twice (only inconsistent signs cross a convex face 3 times)."""
    start = face_edge[f]
    h = start
    su = _snap_sign(values, orig[h], j, t, thr)
    sign[orig[h]] = su
    s0 = su
    n_above = 0
    n_below = 0
    n_split = 0
    while True:
        if su > 0:
            n_above += 1
        elif su < 0:
            n_below += 1
        hn = nxt[h]
        if hn == start:
            sw = s0
        else:
            sw = _snap_sign(values, orig[hn], j, t, thr)
            sign[orig[hn]] = sw
        if su * sw < 0:
            n_split += 1
            if n_split > 2:
                return nv, nh, -1, -1
            nv, nh = _split_edge(h, j, t, bps, scale, vx, vy, values, sign, orig, nxt, twin, face, edge_neuron,
                                 edge_bp, nv, nh)  # fmt: skip
            h = nxt[h]
            su = 0
            continue
        if hn == start:
            break
        h = hn
        su = sw
    return nv, nh, n_above, n_below


@njit(cache=True)
def _split_edge(h, j, t, bps, scale, vx, vy, values, sign, orig, nxt, twin, face, edge_neuron, edge_bp,
                nv, nh):  # fmt: skip
    """Put vertex ``nv`` where ``values[:, j] == t`` on the edge of half-edge
    ``h`` (splitting its twin too); returns the new ``(nv, nh)``."""
    u = orig[h]
    w = orig[nxt[h]]
    du = values[u, j] - t
    dw = values[w, j] - t
    a = du / (du - dw)
    m = nv
    vx[m] = vx[u] + a * (vx[w] - vx[u])
    vy[m] = vy[u] + a * (vy[w] - vy[u])
    n_rows = values.shape[1]
    for r in range(n_rows):
        values[m, r] = values[u, r] + a * (values[w, r] - values[u, r])
    values[m, j] = t
    sign[m] = 0
    for k in range(bps.shape[0]):  # (the rows before j are not used again in this layer)
        for r in range(j, n_rows):
            scale[r, k] = max(scale[r, k], abs(values[m, r] - bps[k]))
    # h becomes h -> h2 and its twin g becomes g -> g2, h2 and g2 from the new vertex
    g = twin[h]
    h2 = nh
    nh += 1
    orig[h2] = m
    nxt[h2] = nxt[h]
    face[h2] = face[h]
    edge_neuron[h2] = edge_neuron[h]
    edge_bp[h2] = edge_bp[h]
    nxt[h] = h2
    if g == -1:
        twin[h2] = -1
    else:
        g2 = nh
        nh += 1
        orig[g2] = m
        nxt[g2] = nxt[g]
        face[g2] = face[g]
        edge_neuron[g2] = edge_neuron[g]
        edge_bp[g2] = edge_bp[g]
        nxt[g] = g2
        twin[h] = g2
        twin[g2] = h
        twin[h2] = g
        twin[g] = h2
    return nv + 1, nh


@njit(cache=True, inline="always")
def _chord_ends(start, sign, orig, nxt):
    """The half-edges ``hp`` and ``hq`` leaving the two zero-sign vertices of
    the face of half-edge ``start`` where the sign flips (below to above at
    ``hp``, above to below at ``hq``), and the half-edges before them.
    ``hp == -1`` if the signs do not flip exactly twice."""
    h0 = start  # walk from a vertex of non-zero sign
    while sign[orig[h0]] == 0:
        h0 = nxt[h0]
    last = sign[orig[h0]]
    prev = h0
    h = nxt[h0]
    cand = -1
    cand_prev = -1
    hp = -1
    hp_prev = -1
    hq = -1
    hq_prev = -1
    n_flips = 0
    while True:
        sv = sign[orig[h]]
        if sv == 0:
            cand = h
            cand_prev = prev
        else:
            if sv != last:
                n_flips += 1
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
    if n_flips != 2 or hq == -1:
        hp = -1
    return hp, hp_prev, hq, hq_prev


@njit(cache=True)
def layer_patterns(mesh_fields, roots_fields, j0, j1):
    """Add 1 to the piece of neuron ``j`` (``j0 <= j < j1``) of every face
    whose root lies beyond (j, k) on the upper side, for every k (the cuts
    skipped those faces)."""
    mesh, roots = Mesh(*mesh_fields), Roots(*roots_fields)
    beyond, root, pieces = roots.beyond, mesh.root, mesh.pieces
    n_rows = mesh.values.shape[1]
    nbp = beyond.shape[1] // n_rows
    for f in range(mesh.size[NF]):
        a = beyond[root[f]]
        p = pieces[f]
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
    indptr = np.cumsum(counts)
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
