"""numba kernels of the 2D engine (:mod:`.mesh2d`): one layer's cuts in one call.

The subdivision is a half-edge mesh in flat arrays (:class:`Mesh`). At the
start of a layer every face is a *root*: all the layer's preactivations are
affine on it, so a neuron's hyperplane can touch only the roots whose vertex
values straddle (or may reach) its breakpoint (:func:`layer_roots`). The
faces cut out of a root stay on its linked list, so each neuron visits only
the current faces of the roots it may cross (:func:`cut_layer`): the work per
neuron is the size of the mesh along its hyperplane, not the size of the
mesh. Vertices are rows of ``values`` (vertex-major), so creating one
interpolates a contiguous row.

Every sign is exact. Each vertex carries ``eps``, a rigorous bound on the
rounding error of its stored values: the error of ``values[v, j]`` (against
the neuron's exact value at the exact vertex) is at most ``rn[j] * eps[v]``
(see :mod:`.filter2d` for the derivation). A sign is certain when
``|values[v, j] - t|`` exceeds that bound, and exact when the bound is 0;
before cutting by ``(j, k)`` :func:`cut_layer` decides the sign of every
vertex it will visit and, if some are uncertain, returns ``NEED_EXACT`` with
them (and a face holding each) before changing anything. The caller decides
them in exact arithmetic, stores them in ``xsign`` and calls again. The
result is the one of cutting every face by every neuron in order with exact
signs: a face is split iff it has vertices of strictly opposite sign, so
every face has positive exact area.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

# status codes returned by cut_layer (handled by mesh2d.check_status)
OK = 0
ANOMALY = 1  # a face's signs were inconsistent (impossible with exact signs: an internal error)
NEED_SPACE = 2  # the arrays must grow to the sizes in size[NEED_V:]
LIMIT = 3  # more than max_regions faces
REROOT = 4  # the faces have doubled: make them the roots and call again
NEED_EXACT = 5  # some signs for (j, k) need exact arithmetic: decide them and call again

UNCERTAIN = 2  # a sign in ``sign`` that the float filter could not decide
CORNER = -3  # provenance of a vertex that is a float point of the domain

U = 2.0**-53  # unit roundoff
SLACK = 1.0 + 2.0**-40  # covers the rounding of the few operations computing a bound

# The kernels called from Python take a Mesh and Roots as plain tuples
# (``tuple(mesh)``) and name their fields at once: numba types a NamedTuple
# argument far more slowly than a plain tuple, on every call.

# entries of Mesh.size
NV, NH, NF = 0, 1, 2  # vertices, half-edges and faces in use
NEED_V, NEED_H, NEED_F = 3, 4, 5  # the sizes the next cut needs
# entries of Mesh.stats
EMAX, N_DECISIONS = 0, 1  # the largest eps in use; the number of vertex sign decisions


class Mesh(NamedTuple):
    """The arrays of the half-edge mesh, allocated with room to grow.

    Vertices: ``vx, vy (cap_v,)``, and ``values (cap_v, n)`` the current
    layer's preactivations at the vertex (interpolated along edges, so they
    are the affine values of every face the vertex touches, up to rounding);
    ``eps (cap_v,)`` the bound on their rounding error (``rn[j] * eps[v]``
    bounds the error of ``values[v, j]``); ``prov (cap_v, 6) int64`` the
    vertex's provenance: the two lines it lies on (``neuron, breakpoint``,
    or ``BOUNDARY``/``ARTIFICIAL`` and a domain line id), the root of the face
    it was made in and the epoch of that root (``CORNER`` for the domain's
    own points); ``xsign (cap_v,) int64`` exact signs decided by the caller
    (``key * 4 + sign + 1``, valid for the cut ``key`` only); ``sign (cap_v,)
    int8`` is scratch for the neuron being cut; ``perr (cap_v,)`` a bound on
    the distance (max-norm) of the float vertex from the exact one (0 for the
    domain's points; an interpolated vertex adds ``ea`` times its anchors'
    span to theirs): the vertices where it is large, e.g. where nearly
    parallel lines meet, are put at their exact points when the mesh is
    finished (:func:`.mesh2d._snap_vertices`).
    Half-edges ``(cap_h,)``: ``orig`` (start vertex), ``nxt`` (the next
    half-edge around its face, counter-clockwise), ``twin`` (-1 on the
    domain's boundary), ``face``, and ``edge_neuron``/``edge_bp`` (the
    neuron and breakpoint whose hyperplane the edge lies on; BOUNDARY or
    ARTIFICIAL and the id of the domain line for the domain's edges), and
    ``anc (cap_h, 2)`` its *anchors*: two vertices on its line, in its
    direction and beyond its ends, such that the whole segment between them
    lies in one face of the layer's start (the ends of the edge at the
    layer's start, or where the line of a chord cut in this layer enters and
    leaves that face); new vertices are interpolated between them, so errors
    do not compound along an edge split many times or through chords of
    chords. Faces
    ``(cap_f,)``: ``face_edge`` (one of its half-edges), ``pieces (cap_f, n)
    int8`` (the piece of each of the layer's neurons), ``root`` (the root
    holding it) and ``next_in_root`` (the next face of that root, -1 at the
    end). ``size (6,) int64``: the counts in use and the sizes needed (NV ...
    NEED_F); ``stats (2,) float64``: EMAX and N_DECISIONS.
    """

    vx: np.ndarray
    vy: np.ndarray
    values: np.ndarray
    sign: np.ndarray
    eps: np.ndarray
    prov: np.ndarray
    xsign: np.ndarray
    perr: np.ndarray
    orig: np.ndarray
    nxt: np.ndarray
    twin: np.ndarray
    face: np.ndarray
    edge_neuron: np.ndarray
    edge_bp: np.ndarray
    anc: np.ndarray
    face_edge: np.ndarray
    pieces: np.ndarray
    root: np.ndarray
    next_in_root: np.ndarray
    size: np.ndarray
    stats: np.ndarray


class Roots(NamedTuple):
    """The roots of a layer's cuts (made by :func:`layer_roots`).

    ``faces[indptr[q]:indptr[q + 1]]`` are the roots that (neuron ``j``,
    breakpoint ``k``), ``q = j * K + k``, may cut; ``beyond[f, k * n + j]``
    is 1 if root ``f`` lies certainly beyond it on the upper side, 2 on the
    lower, 0 neither; ``head[f]`` and ``count[f]`` are the first face and the
    number of faces of root ``f``'s list.
    """

    indptr: np.ndarray
    faces: np.ndarray
    beyond: np.ndarray
    head: np.ndarray
    count: np.ndarray


@njit(cache=True, inline="always")
def _face_signs(f, j, t, thr_all, rn_j, key, values, eps, xsign, sign, orig, nxt, face_edge):
    """The sign of ``values[v, j] - t`` at every vertex ``v`` of face ``f``
    into ``sign``: certain beyond the vertex's error bound (or when the bound
    is 0), else the caller's exact sign for cut ``key`` if there is one, else
    UNCERTAIN. (``thr_all`` bounds every vertex's error: beyond it no bound
    is read.) Returns ``(n_above, n_below, n_uncertain, n_vertices)``."""
    n_above = 0
    n_below = 0
    n_unc = 0
    n = 0
    start = face_edge[f]
    h = start
    while True:
        v = orig[h]
        d = values[v, j] - t
        if d > thr_all:
            s = 1
        elif d < -thr_all:
            s = -1
        else:
            thr = rn_j * eps[v]
            if d > thr:
                s = 1
            elif d < -thr:
                s = -1
            elif thr == 0.0:
                s = 0
            else:
                x = xsign[v]
                if (x >> 2) == key:
                    s = (x & 3) - 1
                else:
                    s = UNCERTAIN
        sign[v] = s
        if s == UNCERTAIN:
            n_unc += 1
        elif s > 0:
            n_above += 1
        elif s < 0:
            n_below += 1
        n += 1
        h = nxt[h]
        if h == start:
            break
    return n_above, n_below, n_unc, n


@njit(cache=True)
def cut_layer(
    mesh_fields, roots_fields, bps, rn, rinv, ids, n_cut, j, k, max_regions, reroot_at, key0, epoch, start
):
    """Cut the mesh by every (neuron, breakpoint) ``j < n_cut`` of a layer
    from ``(j, k)`` on, visiting for each only the faces of its roots; the
    columns ``j >= n_cut`` of ``values`` are interpolated at new vertices but
    never cut. Returns ``(status, j, k, uncertain)``: ``OK`` when the layer
    is done; ``NEED_SPACE`` when the arrays must grow before ``(j, k)`` can
    be cut (to the sizes in ``size[NEED_V:]``; then call again with the grown
    mesh and the same ``j, k``); ``NEED_EXACT`` when the signs for ``(j, k)``
    of the vertices in ``uncertain[:, 0]`` (each on the face
    ``uncertain[:, 1]``; repeats possible) need exact arithmetic: nothing for
    ``(j, k)`` has changed; store them in ``xsign`` under the key ``key0 + j
    * K + k`` and call again; ``LIMIT`` once more than ``max_regions`` faces
    exist; ``ANOMALY`` if a face's signs were inconsistent (an internal
    error); ``REROOT`` when there are ``reroot_at`` faces or more (so that
    the roots have many faces each: make the current faces the roots and call
    again from ``(j, k)``). ``rn`` and ``rinv`` are the layer's error factors
    of each column and their inverses (0 where ``rn`` is 0); ``epoch``
    identifies the roots in the provenance of the vertices made; ``start``
    maps the roots to the faces at the layer's start; ``ids[j]`` is the
    neuron of column ``j`` (the id stored on the edges and vertices it makes).
    """
    # The functions below take the arrays themselves, not the named tuples:
    # in numba every read of an array out of a tuple updates its reference
    # count atomically, which slows the cuts down noticeably. For the same
    # reason each pass over a cut's faces (split, chords) is one call, with a
    # loop inside: a call passing some thirty arrays per face or per edge
    # costs more than the work it does.
    m = Mesh(*mesh_fields)
    roots = Roots(*roots_fields)
    vx, vy, values, sign, eps, prov, xsign = m.vx, m.vy, m.values, m.sign, m.eps, m.prov, m.xsign
    orig, nxt, twin, face, edge_neuron, edge_bp = m.orig, m.nxt, m.twin, m.face, m.edge_neuron, m.edge_bp
    anc = m.anc
    face_edge, pieces, root, next_in_root, head, count = (
        m.face_edge,
        m.pieces,
        m.root,
        m.next_in_root,
        roots.head,
        roots.count,
    )
    indptr, root_faces, stats = roots.indptr, roots.faces, m.stats
    nbp = bps.shape[0]
    size = m.size
    nv, nh, nf = size[NV], size[NH], size[NF]
    no_uncertain = np.empty((0, 2), np.int64)
    scratch = np.empty(m.values.shape[1] + 1)
    scratch_bits = scratch.view(np.int64)
    # per face at the layer's start (start[root]), the vertices where the line
    # being cut enters and leaves it (valid for the key in columns 1 and 3):
    # the anchors of its chords
    ends = np.empty((nf, 4), np.int64)  # (filled by a loop, not np.full: one numba overload less to compile)
    for f in range(nf):
        for c in range(4):
            ends[f, c] = -1
    while j < n_cut:
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
            return NEED_SPACE, j, k, no_uncertain
        t = bps[k]
        key = key0 + q
        rn_j = rn[j]
        thr_all = rn_j * stats[EMAX]
        # every sign first, nothing changed: faces to cut (f) and faces above (~f)
        todo = np.empty(n_faces, np.int64)
        # (counters passed to the helpers start as np.int64(0), not 0: numba would first type
        # them as the literal 0 and compile each helper a second time for it)
        n_todo = np.int64(0)
        n_unc = np.int64(0)
        n_dec = 0
        for i in range(indptr[q], indptr[q + 1]):
            r = root_faces[i]
            f = head[r]
            for _ in range(count[r]):
                n_above, n_below, nu, n = _face_signs(f, j, t, thr_all, rn_j, key, values, eps, xsign, sign, orig,
                                                      nxt, face_edge)  # fmt: skip
                n_dec += n
                n_unc += nu
                if n_above > 0 and n_below > 0:
                    todo[n_todo] = f
                    n_todo += 1
                elif n_below == 0:
                    todo[n_todo] = ~f
                    n_todo += 1
                f = next_in_root[f]
        stats[N_DECISIONS] += n_dec
        if n_unc > 0:
            return NEED_EXACT, j, k, _uncertain(indptr[q], indptr[q + 1], n_unc, root_faces, head, count,
                                                next_in_root, sign, orig, nxt, face_edge)  # fmt: skip
        # the edges first, so that each root's ends on the line are known
        crossing = np.empty(2 * n_todo, np.int64)
        n_cross, status = _crossings(todo, n_todo, crossing, sign, orig, nxt, face_edge)
        # (the twin of an edge split first is no longer crossed: its new vertex has sign 0)
        nv, nh = _split_edges(crossing, n_cross, j, t, ids[j], k, epoch, key, ends, start, rn, rinv, scratch,
                              scratch_bits, vx, vy, values, sign, eps, m.perr, prov, stats, orig, nxt, twin, face,
                              edge_neuron, edge_bp, anc, root, nv, nh)  # fmt: skip
        nh, nf, st = _add_chords(todo, n_todo, j, k, ids[j], key, ends, start, sign, orig, nxt, twin, face,
                                 edge_neuron, edge_bp, anc, face_edge, pieces, root, next_in_root, head, count, nh,
                                 nf)  # fmt: skip
        if st != OK:
            status = st
        size[NV], size[NH], size[NF] = nv, nh, nf
        if status != OK:
            return status, j, k, no_uncertain
        k += 1
        if k == nbp:
            k = 0
            j += 1
        if nf > max_regions:
            return LIMIT, j, k, no_uncertain
        if nf >= reroot_at and k == 0 and j < n_cut:
            return REROOT, j, k, no_uncertain
    return OK, j, k, no_uncertain


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _uncertain(i0, i1, n_unc, root_faces, head, count, next_in_root, sign, orig, nxt, face_edge):
    """``(n_unc, 2)``: every UNCERTAIN vertex met on the faces of the roots
    ``root_faces[i0:i1]``, with the face it was met on."""
    out = np.empty((n_unc, 2), np.int64)
    n = 0
    for i in range(i0, i1):
        r = root_faces[i]
        f = head[r]
        for _ in range(count[r]):
            h = face_edge[f]
            while True:
                if sign[orig[h]] == UNCERTAIN and n < n_unc:
                    out[n, 0] = orig[h]
                    out[n, 1] = f
                    n += 1
                h = nxt[h]
                if h == face_edge[f]:
                    break
            f = next_in_root[f]
    return out[:n]


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _crossings(todo, n_todo, crossing, sign, orig, nxt, face_edge):
    """The half-edges of every face ``f = todo[i] >= 0`` (``i < n_todo``)
    whose ends have strictly opposite signs in ``sign``, in the order of the
    faces and of their half-edges (from ``face_edge[f]``), into ``crossing``
    (room for two per face): :func:`cut_layer` splits their edges next with
    :func:`_split_edges`, each edge once. Returns ``(n, status)``, status OK
    or ANOMALY (a face crossed more than twice; its further crossings are
    not listed)."""
    status = OK
    n = np.int64(0)
    for i in range(n_todo):
        f = todo[i]
        if f < 0:
            continue
        start = face_edge[f]
        h = start
        n_split = 0
        while True:
            hn = nxt[h]
            if sign[orig[h]] * sign[orig[hn]] < 0:
                n_split += 1
                if n_split > 2:  # only inconsistent signs cross a convex face 3 times
                    status = ANOMALY
                    break
                crossing[n] = h
                n += 1
            if hn == start:
                break
            h = hn
    return n, status


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _add_chords(todo, n_todo, j, k, neuron, key, ends, start_of, sign, orig, nxt, twin, face, edge_neuron, edge_bp, anc,
                face_edge, pieces, root, next_in_root, root_head, root_count, nh, nf):  # fmt: skip
    """Cut every face ``f = todo[i] >= 0`` (``i < n_todo``), whose edges
    crossing the hyperplane are split, along the chord between its two
    zero-sign vertices: the part on the upper side becomes a new face on the
    list of the same root; a face ``~f = todo[i] >= 0`` gets the upper piece.
    The chord's anchors are where the line enters and leaves the face at the
    layer's start, when those are known (so that chords of chords do not
    compound errors). Returns ``(nh, nf, status)``, status OK or ANOMALY."""
    status = OK
    for i in range(n_todo):
        f = todo[i]
        if f < 0:
            pieces[~f, j] += 1  # on or above the breakpoint: the piece to the right
            continue
        hp, hp_prev, hq, hq_prev = _chord_ends(face_edge[f], sign, orig, nxt)
        if hp == -1:
            status = ANOMALY
            continue
        # the new edge e1 (in f) / e2 (in the new face f2) from the vertex of hp to that of hq
        r = root[f]
        s = start_of[r]
        a0 = ends[s, 0] if ends[s, 1] == key else orig[hp]
        a1 = ends[s, 2] if ends[s, 3] == key else orig[hq]
        e1, e2, f2 = nh, nh + 1, nf
        orig[e1], orig[e2] = orig[hp], orig[hq]
        twin[e1], twin[e2] = e2, e1
        edge_neuron[e1], edge_neuron[e2] = neuron, neuron
        edge_bp[e1], edge_bp[e2] = k, k
        anc[e1, 0], anc[e1, 1], anc[e2, 0], anc[e2, 1] = a0, a1, a1, a0
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
        root[f2] = r
        next_in_root[f2] = root_head[r]
        root_head[r] = f2
        root_count[r] += 1
        nh += 2
        nf += 1
    return nh, nf, status


@njit(cache=True, inline="always")
def _position_error(u, w, ea, vx, vy, perr):
    """A bound on the max-norm distance of the vertex interpolated at parameter
    ``a`` (within ``ea`` of the exact one) between anchors ``u`` and ``w``
    from the exact vertex: the anchors' own, plus ``ea`` times their span,
    plus the rounding of the interpolation."""
    du = abs(vx[w] - vx[u])
    dv = abs(vy[w] - vy[u])
    mag = max(max(abs(vx[u]), abs(vx[w])), max(abs(vy[u]), abs(vy[w])))
    return (max(perr[u], perr[w]) + ea * max(du, dv) + 4.0 * U * mag) * SLACK


@njit(cache=True)
def _split_edges(hs, n, j, t, neuron, k, epoch, key, ends, start_of, rn, rinv, scratch, scratch_bits, vx, vy, values,
                 sign, eps, perr, prov, stats, orig, nxt, twin, face, edge_neuron, edge_bp, anc, root, nv, nh):  # fmt: skip
    """For each half-edge ``h = hs[i]`` (``i < n``) whose ends still have
    strictly opposite signs in ``sign``, in order: put a new vertex where
    ``values[:, j] == t`` on its edge (splitting its twin too), with its
    error bound and provenance; returns the new ``(nv, nh)``. The vertex is
    interpolated between the edge's anchors (the layer's values are affine
    on the segment between them, and the anchors are on the sides of the
    edge's ends, beyond them). ``scratch`` has room for a row of ``values``
    and one more float; ``scratch_bits`` is its view as int64."""
    for i in range(n):
        h = hs[i]
        if sign[orig[h]] * sign[orig[nxt[h]]] >= 0:
            continue
        root_id = root[face[h]]
        sgn_u = sign[orig[h]]
        sgn_w = sign[orig[nxt[h]]]
        u = anc[h, 0]
        w = anc[h, 1]
        # the distances to the hyperplane on the exact sides (0 if rounding put one across)
        x = sgn_u * (values[u, j] - t)
        y = sgn_w * (values[w, j] - t)
        x = max(x, 0.0)
        y = max(y, 0.0)
        em = max(eps[u], eps[w])
        if x + y > 0.0:
            a = x / (x + y)
            ea = min(1.0, rn[j] * em / (x + y) + 3.0 * U)
        else:
            a = 0.5
            ea = 1.0
        m = nv
        nv += 1
        vx[m] = vx[u] + a * (vx[w] - vx[u])
        vy[m] = vy[u] + a * (vy[w] - vy[u])
        perr[m] = _position_error(u, w, ea, vx, vy, perr)
        # the interpolated row, and each column's error term (>= 0) into a
        # scratch row (whose bits are ``scratch_bits``), then their maximum
        n_cols = values.shape[1]
        row_u = values[u]
        row_w = values[w]
        row_m = values[m]
        u6 = 6.0 * U
        for r in range(n_cols):
            zu = row_u[r]
            zw = row_w[r]
            dz = zw - zu
            row_m[r] = zu + a * dz
            scratch[r] = rinv[r] * (ea * abs(dz) + u6 * (abs(zu) + abs(zw)))
        acc = _max_abs_n(scratch_bits, n_cols)
        values[m, j] = t
        sign[m] = 0
        e = SLACK * (em * (1.0 + 2.0 * ea) + acc)
        eps[m] = e
        stats[EMAX] = max(stats[EMAX], e)
        prov[m, 0] = neuron
        prov[m, 1] = k
        prov[m, 2] = edge_neuron[h]
        prov[m, 3] = edge_bp[h]
        prov[m, 4] = root_id
        prov[m, 5] = epoch
        # on the boundary of the face at the layer's start (and of its neighbour's):
        # where the line enters it (the boundary, counter-clockwise, goes from
        # below to above) or leaves it
        g = twin[h]
        s1 = start_of[root_id]
        s2 = -1 if g == -1 else start_of[root[face[g]]]
        if s2 != s1:
            c = 0 if sgn_u < 0 else 2
            ends[s1, c], ends[s1, c + 1] = m, key
            if s2 >= 0:
                c = 0 if sgn_w < 0 else 2
                ends[s2, c], ends[s2, c + 1] = m, key
        # h becomes h -> h2 and its twin g becomes g -> g2, h2 and g2 from the new vertex
        h2 = nh
        nh += 1
        orig[h2] = m
        nxt[h2] = nxt[h]
        face[h2] = face[h]
        edge_neuron[h2] = edge_neuron[h]
        edge_bp[h2] = edge_bp[h]
        anc[h2, 0], anc[h2, 1] = anc[h, 0], anc[h, 1]
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
            anc[g2, 0], anc[g2, 1] = anc[g, 0], anc[g, 1]
            nxt[g] = g2
            twin[h] = g2
            twin[g2] = h
            twin[h2] = g
            twin[g] = h2
    return nv, nh


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
def apply_activation(z, n, bps, slopes, icpts, eps, coef, rho_rel, rho_abs, gamma, lip, imax):
    """``z[:n] = act(z[:n])`` in place for a piecewise-linear activation, and
    the error factor of the next layer's values at each vertex:
    ``eps[v] = SLACK * (coef * eps[v] + rho_rel * max|z_v| + rho_abs + gamma
    * max(lip * max|z_v| + imax, 1))`` (see :mod:`.filter2d`; ``lip *
    max|z_v| + imax`` bounds ``max|act(z_v)|``)."""
    bits = z.view(np.int64)
    scratch = np.empty(1, np.int64)
    nbp = bps.shape[0]
    t, s0, s1, i0, i1 = bps[0] if nbp else 0.0, slopes[0], slopes[-1], icpts[0], icpts[-1]
    for v in range(n):
        zmax = _max_abs(bits[v], scratch)
        eps[v] = SLACK * (coef * eps[v] + rho_rel * zmax + rho_abs + gamma * max(lip * zmax + imax, 1.0))
        if nbp == 1:  # the common case, in a loop that vectorises
            for r in range(z.shape[1]):
                x = z[v, r]
                z[v, r] = s1 * x + i1 if x >= t else s0 * x + i0
        else:
            for r in range(z.shape[1]):
                z[v, r] = _act(z[v, r], bps, slopes, icpts)


@njit(cache=True, inline="always")
def _max_abs(bits, scratch):
    """The largest ``|x|`` of the floats whose bits are ``bits``: for
    non-negative floats the order of the bit patterns as integers is theirs,
    and an integer maximum vectorises."""
    m = 0
    for r in range(bits.shape[0]):
        m = max(m, bits[r] & 0x7FFFFFFFFFFFFFFF)
    scratch[0] = m
    return scratch.view(np.float64)[0]


@njit(cache=True, inline="always")
def _max_abs_n(bits, n):
    """The largest ``|x|`` of the first ``n`` floats whose bits are ``bits``
    (as :func:`_max_abs`, its float read back through ``bits[n]``)."""
    m = 0
    for r in range(n):
        m = max(m, bits[r] & 0x7FFFFFFFFFFFFFFF)
    bits[n] = m
    return bits[n:].view(np.float64)[0]


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _piece(x, bps):
    """The index of the piece of an activation ``x`` is on."""
    p = 0
    while p < bps.shape[0] and bps[p] <= x:
        p += 1
    return p


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _act(x, bps, slopes, icpts):
    p = _piece(x, bps)
    return slopes[p] * x + icpts[p]
