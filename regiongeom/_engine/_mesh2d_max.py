"""numba kernels of the 2D engine for stages of max units (:mod:`._graph_max`).

A max unit with window entries ``z_0 .. z_{k-1}`` (columns ``mcols[i]`` of
``values``, -1 for an absent or repeated entry) is cut as a tournament: every
face starts with its *leader* at the first present position (``pieces[f,
i]``); for each later present position ``p`` in order, a face with leader
``l`` is split by ``z_p - z_l = 0`` if it has vertices strictly on both
sides, and the part where ``z_p > z_l`` gets leader ``p`` (a face with
vertices strictly above and none strictly below gets it whole; ties keep
the lower position). After the last position the leader of every face is the
unit's winner, ties to the lowest position.

The sign of ``z_p - z_l`` at a vertex does not depend on which face's
leader is used: across an edge between faces whose leaders differ the two
leaders' entries are equal (the edge was cut on their tie, or the faces on
its two sides were cut alike), and each leader is the maximum of the
positions before ``p`` on its face's closure, so at a vertex every
neighbouring face's leader has the value ``max_{q < p} z_q``. So signs stay
per vertex, as in :mod:`._mesh2d_kernels`, with the bound ``(rn_p + rn_l)
eps[v]`` and exact signs from the caller (``NEED_EXACT``, under the key
``key0 + i * k + p``). New vertices are interpolated between the ends of
the edge they split (``z_p - z_l`` is affine along the edge, not
necessarily beyond it), with the same error analysis as
:func:`._mesh2d_kernels._split_edges`.

The edges made by unit ``i``'s cut at position ``p`` against leader ``l``
are labelled ``edge_neuron = ids[i]``, ``edge_bp = p * k + l`` (the tie line
``z_p = z_l``); vertices record the same in their provenance. Faces of a
stage-start face with the same winners on every unit are merged after the
stage (:func:`merge_faces`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._mesh2d_kernels import (
    ANOMALY,
    CORNER,
    NEED_EXACT,
    NEED_SPACE,
    NF,
    NH,
    NV,
    OK,
    REROOT,
    SLACK,
    UNCERTAIN,
    LIMIT,
    U,
    Mesh,
)


@njit(cache=True, inline="always")
def _entry(v, sf, c, values, rn, zsrc, zneu, prev_cut, prov):
    """Column ``c``'s value at vertex ``v`` (of a face inside stage-start face
    ``sf``) and its error factor: ``(0, 0)`` where the entry is known to be
    exactly 0 (a copy of a ReLU-like neuron of the previous stage that is off
    on ``sf``, or whose hyperplane ``v`` was made on; see :mod:`._graph_max`)."""
    z = zsrc[c]
    if z >= 0 and (prev_cut[sf, z] == 0 or (prov[v, 0] != CORNER and (prov[v, 0] == zneu[c]
                                                                      or prov[v, 2] == zneu[c]))):  # fmt: skip
        return 0.0, 0.0
    return values[v, c], rn[c]


@njit(cache=True)
def classify_max(z, e, rn, win, lo, hi, unsure, wout):
    """Per unit (windows ``win``, -1 absent), over a block of vertices (the
    stage's preactivations ``z``, bounds ``e``, factors ``rn``): lower
    ``lo``/raise ``hi`` to the lowest/highest position that certainly wins
    at a vertex, and set ``unsure`` where at some vertex none certainly does
    (ties to the lowest position; in place). When ``wout`` has rows, it gets
    the certain winner of each (vertex, unit), -2 where none is certain (for
    :func:`max_roots` to look again)."""
    n, k = win.shape
    record = wout.shape[0] > 0
    for v in range(z.shape[0]):
        ev = e[v]
        row = z[v]
        for u in range(n):
            best = -1
            bv = 0.0
            bf = 0.0
            for p in range(k):
                c = win[u, p]
                if c >= 0 and (best < 0 or row[c] > bv):
                    best = p
                    bv = row[c]
                    bf = rn[c]
            if best < 0:
                if record:
                    wout[v, u] = -2
                continue
            sure = True
            for q in range(k):
                c = win[u, q]
                if c < 0 or q == best:
                    continue
                d = bv - row[c]
                thr = ev * (bf + rn[c])
                if not (d > thr or (thr == 0.0 and d == 0.0 and q > best)):
                    sure = False
                    break
            if sure:
                if best < lo[u]:
                    lo[u] = best
                if best > hi[u]:
                    hi[u] = best
            else:
                unsure[u] = True
            if record:
                wout[v, u] = best if sure else -2


@njit(cache=True, inline="always")
def _winners(v, sf, i, k, mcols, e, values, rn, zsrc, zneu, prev_cut, prov):
    """The position of unit ``i``'s window that certainly wins at vertex
    ``v`` (of a face inside stage-start face ``sf``; error bound ``e``), or
    -1 where none certainly does."""
    best = -1
    bv = 0.0
    bf = 0.0
    for p in range(k):
        c = mcols[i, p]
        if c < 0:
            continue
        x, fx = _entry(v, sf, c, values, rn, zsrc, zneu, prev_cut, prov)
        if best < 0 or x > bv:
            best = p
            bv, bf = x, fx
    for q in range(k):
        c = mcols[i, q]
        if c < 0 or q == best:
            continue
        x, fx = _entry(v, sf, c, values, rn, zsrc, zneu, prev_cut, prov)
        d = bv - x
        thr = (bf + fx) * e
        if not (d > thr or (thr == 0.0 and d == 0.0 and q > best)):
            return -1
    return best


@njit(cache=True)
def max_roots(mesh_fields, mcols, rn, i0, zsrc, zneu, prev_cut, start, known):
    """Make every face a root for the units ``i >= i0``; set each face's
    leader of those units (the position certainly winning at every vertex of
    the face, else the first present one) and list, per unit, the roots where
    no position certainly wins everywhere: ``(indptr, faces, head, count)``.

    The certain winner is found once per vertex (for a chunk of units at a
    time), with the stage-start face of one face holding the vertex: a
    vertex's exact entries are the same seen from every face around it (an
    entry known to be exactly 0 on one of them is 0 at the vertex), so the
    winner found is certain for all of them. ``known`` ``(rows, n)``: each
    vertex's winners found so far (when the stage was formed, by
    ``classify_max``, and by earlier calls), -1 where none is certain, -2
    where not looked for yet; vertices from ``rows`` on are looked at here.
    Every vertex's winners found here are written to it (a certain winner is
    the exact one, whatever the face it was found from; an uncertain one only
    costs a cut)."""
    mesh = Mesh(*mesh_fields)
    values, eps, face_edge, nxt, orig = mesh.values, mesh.eps, mesh.face_edge, mesh.nxt, mesh.orig
    root, next_in_root, pieces, prov = mesh.root, mesh.next_in_root, mesh.pieces, mesh.prov
    nf = mesh.size[NF]
    nv = mesh.size[NV]
    n, k = mcols.shape
    counts = np.zeros(n + 1, np.int64)
    todo = np.zeros((nf, n), np.bool_)
    head = np.empty(nf, np.int64)
    count = np.ones(nf, np.int64)
    vface = np.full(nv, -1, np.int64)  # a face holding each vertex
    for f in range(nf):
        root[f] = f
        next_in_root[f] = -1
        head[f] = f
        h = face_edge[f]
        while True:
            vface[orig[h]] = f
            h = nxt[h]
            if h == face_edge[f]:
                break
    first = np.zeros(n, np.int64)
    for i in range(n):
        while mcols[i, first[i]] < 0:
            first[i] += 1
    chunk = 32
    win = np.empty((nv, chunk), np.int8)
    for c0 in range(i0, n, chunk):
        c1 = min(n, c0 + chunk)
        for v in range(nv):
            f = vface[v]
            if f < 0:
                continue
            sf = start[f]
            e = eps[v]
            for i in range(c0, c1):
                w = known[v, i] if v < known.shape[0] else -2
                if w == -2:
                    w = _winners(v, sf, i, k, mcols, e, values, rn, zsrc, zneu, prev_cut, prov)
                    if v < known.shape[0]:
                        known[v, i] = w
                win[v, i - c0] = w
        for f in range(nf):
            h0 = face_edge[f]
            v0 = orig[h0]
            for i in range(c0, c1):
                common = win[v0, i - c0]
                if common >= 0:
                    h = nxt[h0]
                    while h != h0:
                        if win[orig[h], i - c0] != common:
                            common = -1
                            break
                        h = nxt[h]
                if common >= 0:
                    pieces[f, i] = common
                else:
                    pieces[f, i] = first[i]
                    todo[f, i] = True
                    counts[i + 1] += 1
    for i in range(n):
        counts[i + 1] += counts[i]
    faces = np.empty(counts[n], np.int64)
    fill = counts[:n].copy()
    for f in range(nf):
        for i in range(i0, n):
            if todo[f, i]:
                faces[fill[i]] = f
                fill[i] += 1
    return counts, faces, head, count


@njit(cache=True, inline="always")
def _face_signs(f, sf, i, cp, key, mcols, rn, values, eps, xsign, sign, orig, nxt, face_edge, pieces, zsrc, zneu,
                prev_cut, prov):  # fmt: skip
    """The sign of ``z_p - z_l`` (columns ``cp`` and that of face ``f``'s
    leader ``l``) at every vertex of ``f`` into ``sign``, as
    :func:`._mesh2d_kernels._face_signs`. Returns ``(above, below, uncertain, n)``."""
    cl = mcols[i, pieces[f, i]]
    n_above = 0
    n_below = 0
    n_unc = 0
    n = 0
    start = face_edge[f]
    h = start
    while True:
        v = orig[h]
        zp, fp = _entry(v, sf, cp, values, rn, zsrc, zneu, prev_cut, prov)
        zl, fl = _entry(v, sf, cl, values, rn, zsrc, zneu, prev_cut, prov)
        d = zp - zl
        thr = (fp + fl) * eps[v]
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
def cut_max(mesh_fields, roots_fields, mcols, rn, rinv, ids, i, p, max_regions, reroot_at, key0, epoch, start, zsrc,
            zneu, prev_cut):  # fmt: skip
    """Cut the mesh by the units ``i .. n - 1`` (from position ``p`` of unit
    ``i`` on), visiting only the faces of each unit's roots. Returns
    ``(status, i, p, uncertain)`` with the statuses of
    :func:`._mesh2d_kernels.cut_layer` (``REROOT`` only between units);
    ``NEED_EXACT``: the signs of ``z_p - z_l`` at the vertices
    ``uncertain[:, 0]`` (each on face ``uncertain[:, 1]``, whose leader is
    ``l``) are needed under the key ``key0 + i * k + p``."""
    m = Mesh(*mesh_fields)
    indptr, root_faces, head, count = roots_fields
    vx, vy, values, sign, eps, prov, xsign, perr = m.vx, m.vy, m.values, m.sign, m.eps, m.prov, m.xsign, m.perr
    orig, nxt, twin, face, edge_neuron, edge_bp = m.orig, m.nxt, m.twin, m.face, m.edge_neuron, m.edge_bp
    anc, face_edge, pieces, root, next_in_root, stats = m.anc, m.face_edge, m.pieces, m.root, m.next_in_root, m.stats
    size = m.size
    nv, nh, nf = size[NV], size[NH], size[NF]
    n, k = mcols.shape
    no_uncertain = np.empty((0, 2), np.int64)
    scratch = np.empty(values.shape[1] + 1)
    bits = scratch.view(np.int64)
    # per face at the stage's start and leader l, the vertices where the tie
    # line z_p = z_l being cut enters and leaves it (valid for the key in
    # columns 1 and 3): the anchors of its chords, as in _mesh2d_kernels
    ends = np.full((nf, k, 4), -1, np.int64)
    while i < n:
        first = 0
        while mcols[i, first] < 0:
            first += 1
        if p <= first:
            p = first + 1
        while p < k and mcols[i, p] < 0:
            p += 1
        if p >= k:
            i += 1
            p = 0
            if nf >= reroot_at and i < n:
                return REROOT, i, p, no_uncertain
            continue
        n_faces = 0
        for r in range(indptr[i], indptr[i + 1]):
            n_faces += count[root_faces[r]]
        size[3], size[4], size[5] = nv + 2 * n_faces, nh + 6 * n_faces, nf + n_faces
        if size[3] > vx.shape[0] or size[4] > orig.shape[0] or size[5] > face_edge.shape[0]:
            return NEED_SPACE, i, p, no_uncertain
        cp = mcols[i, p]
        key = key0 + i * k + p
        todo = np.empty(n_faces, np.int64)
        n_todo = 0
        n_unc = 0
        n_dec = 0
        for r in range(indptr[i], indptr[i + 1]):
            f = head[root_faces[r]]
            for _ in range(count[root_faces[r]]):
                a, b, u, c = _face_signs(f, start[root[f]], i, cp, key, mcols, rn, values, eps, xsign, sign, orig,
                                         nxt, face_edge, pieces, zsrc, zneu, prev_cut, prov)  # fmt: skip
                n_dec += c
                n_unc += u
                if a > 0:  # cut (some below too), or all above: leader p
                    todo[n_todo] = f if b > 0 else ~f
                    n_todo += 1
                f = next_in_root[f]
        stats[1] += n_dec
        if n_unc > 0:
            out = np.empty((n_unc, 2), np.int64)
            c = 0
            for r in range(indptr[i], indptr[i + 1]):
                f = head[root_faces[r]]
                for _ in range(count[root_faces[r]]):
                    # again, since a vertex may be certain with the leader of one
                    # of its faces and uncertain with another's (the exact sign is
                    # the same for all: see the module docstring)
                    _face_signs(f, start[root[f]], i, cp, key, mcols, rn, values, eps, xsign, sign, orig, nxt,
                                face_edge, pieces, zsrc, zneu, prev_cut, prov)  # fmt: skip
                    h = face_edge[f]
                    while True:
                        if sign[orig[h]] == UNCERTAIN and c < n_unc:
                            out[c, 0] = orig[h]
                            out[c, 1] = f
                            c += 1
                        h = nxt[h]
                        if h == face_edge[f]:
                            break
                    f = next_in_root[f]
            return NEED_EXACT, i, p, out[:c]
        label = ids[i]
        bp = p * k  # + the leader of the face cut
        status = OK
        # split the crossed edges of every face to cut (each edge once)
        crossing = np.empty(2 * n_todo + 1, np.int64)
        nc = 0
        for t in range(n_todo):
            f = todo[t]
            if f < 0:
                continue
            h = face_edge[f]
            n_split = 0
            while True:
                hn = nxt[h]
                if sign[orig[h]] * sign[orig[hn]] < 0:
                    n_split += 1
                    if n_split > 2:
                        status = ANOMALY
                        break
                    crossing[nc] = h
                    nc += 1
                h = hn
                if h == face_edge[f]:
                    break
        for t in range(nc):
            h = crossing[t]
            u = orig[h]
            w = orig[nxt[h]]
            su = sign[u]
            sw = sign[w]
            if su * sw >= 0:
                continue  # (its twin was split first)
            f = face[h]
            sf = start[root[f]]
            cl = mcols[i, pieces[f, i]]
            u = anc[h, 0]  # interpolate between the edge's anchors, beyond its ends
            w = anc[h, 1]
            zp, fp = _entry(u, sf, cp, values, rn, zsrc, zneu, prev_cut, prov)
            zl, fl = _entry(u, sf, cl, values, rn, zsrc, zneu, prev_cut, prov)
            x = max(su * (zp - zl), 0.0)
            fac = fp + fl
            zp, fp = _entry(w, sf, cp, values, rn, zsrc, zneu, prev_cut, prov)
            zl, fl = _entry(w, sf, cl, values, rn, zsrc, zneu, prev_cut, prov)
            y = max(sw * (zp - zl), 0.0)
            fac = max(fac, fp + fl)
            em = max(eps[u], eps[w])
            if x + y > 0.0:
                a = x / (x + y)
                ea = min(1.0, fac * em / (x + y) + 3.0 * U)
            else:
                a = 0.5
                ea = 1.0
            mv = nv
            nv += 1
            vx[mv] = vx[u] + a * (vx[w] - vx[u])
            vy[mv] = vy[u] + a * (vy[w] - vy[u])
            du = abs(vx[w] - vx[u])
            dv = abs(vy[w] - vy[u])
            mag = max(max(abs(vx[u]), abs(vx[w])), max(abs(vy[u]), abs(vy[w])))
            perr[mv] = (max(perr[u], perr[w]) + ea * max(du, dv) + 4.0 * U * mag) * SLACK  # as _mesh2d_kernels
            u6 = 6.0 * U
            ncol = values.shape[1]
            for c in range(ncol):
                zu = values[u, c]
                zw = values[w, c]
                dz = zw - zu
                values[mv, c] = zu + a * dz
                scratch[c] = rinv[c] * (ea * abs(dz) + u6 * (abs(zu) + abs(zw)))
            mx = 0
            for c in range(ncol):
                mx = max(mx, bits[c] & 0x7FFFFFFFFFFFFFFF)
            bits[ncol] = mx
            acc = scratch[ncol]
            e = SLACK * (em * (1.0 + 2.0 * ea) + acc)
            eps[mv] = e
            stats[0] = max(stats[0], e)
            sign[mv] = 0
            prov[mv, 0] = label
            prov[mv, 1] = bp + pieces[f, i]
            prov[mv, 2] = edge_neuron[h]
            prov[mv, 3] = edge_bp[h]
            prov[mv, 4] = root[f]
            prov[mv, 5] = epoch
            g = twin[h]
            s2 = -1 if g == -1 else start[root[face[g]]]
            if s2 != sf:  # on the boundary of the face at the stage's start: the line enters or leaves it
                c = 0 if su < 0 else 2
                ends[sf, pieces[f, i], c], ends[sf, pieces[f, i], c + 1] = mv, key
                if s2 >= 0:
                    c = 0 if sw < 0 else 2
                    ends[s2, pieces[face[g], i], c], ends[s2, pieces[face[g], i], c + 1] = mv, key
            h2 = nh
            nh += 1
            orig[h2] = mv
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
                orig[g2] = mv
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
        # the chords: the part where z_p > z_l becomes a new face with leader p
        for t in range(n_todo):
            f = todo[t]
            if f < 0:
                pieces[~f, i] = p
                continue
            hp, hp_prev, hq, hq_prev = _chord_ends(face_edge[f], sign, orig, nxt)
            if hp == -1:
                status = ANOMALY
                continue
            e1, e2, f2 = nh, nh + 1, nf
            sf = start[root[f]]
            ld = pieces[f, i]
            a0 = ends[sf, ld, 0] if ends[sf, ld, 1] == key else orig[hp]
            a1 = ends[sf, ld, 2] if ends[sf, ld, 3] == key else orig[hq]
            orig[e1], orig[e2] = orig[hp], orig[hq]
            twin[e1], twin[e2] = e2, e1
            edge_neuron[e1], edge_neuron[e2] = label, label
            edge_bp[e1], edge_bp[e2] = bp + ld, bp + ld
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
            pieces[f2, i] = p
            r = root[f]
            root[f2] = r
            next_in_root[f2] = head[r]
            head[r] = f2
            count[r] += 1
            nh += 2
            nf += 1
        size[NV], size[NH], size[NF] = nv, nh, nf
        if status != OK:
            return status, i, p, no_uncertain
        if nf > max_regions:
            return LIMIT, i, p + 1, no_uncertain
        p += 1
    return OK, i, p, no_uncertain


@njit(cache=True, inline="always")
def _chord_ends(start, sign, orig, nxt):
    """As :func:`._mesh2d_kernels._chord_ends` (a copy: a kernel may not call
    another file's kernel)."""
    h0 = start
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
def merge_faces(mesh_fields, lo, hi):
    """Merge the faces on both sides of every edge of the units ``lo <=
    edge_neuron < hi`` whose pieces agree on every column (so every region
    of the stage's pattern within a face at its start is one face; each is
    convex). Half-edges are compacted and faces renumbered in order of their
    lowest old id; returns ``(label, status)``: the new id of every old
    face, and OK or ANOMALY."""
    m = Mesh(*mesh_fields)
    orig, nxt, twin, face, edge_neuron, edge_bp = m.orig, m.nxt, m.twin, m.face, m.edge_neuron, m.edge_bp
    anc, face_edge, pieces, size = m.anc, m.face_edge, m.pieces, m.size
    nh, nf = size[NH], size[NF]
    parent = np.arange(nf)
    n_merged = 0
    for h in range(nh):
        g = twin[h]
        if g <= h or edge_neuron[h] < lo or edge_neuron[h] >= hi:
            continue
        a, b = face[h], face[g]
        same = True
        for c in range(pieces.shape[1]):
            if pieces[a, c] != pieces[b, c]:
                same = False
                break
        if not same:
            continue
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        if a != b:
            parent[max(a, b)] = min(a, b)
            n_merged += 1
    label = np.empty(nf, np.int64)
    if n_merged == 0:
        for f in range(nf):
            label[f] = f
        return label, OK
    n_new = 0
    for f in range(nf):
        r = f
        while parent[r] != r:
            r = parent[r]
        if r == f:
            label[f] = n_new
            n_new += 1
        else:
            label[f] = label[r]  # r < f: labelled already
    gone = np.zeros(nh, np.bool_)
    for h in range(nh):
        g = twin[h]
        if g >= 0 and label[face[h]] == label[face[g]]:
            gone[h] = True
    new_id = np.full(nh, -1, np.int64)
    n_keep = 0
    for h in range(nh):
        if not gone[h]:
            new_id[h] = n_keep
            n_keep += 1
    nxt2 = np.empty(nh, np.int64)
    status = OK
    for h in range(nh):
        if gone[h]:
            continue
        d = nxt[h]
        steps = 0
        while gone[d]:
            d = nxt[twin[d]]
            steps += 1
            if steps > nh:
                status = ANOMALY
                break
        nxt2[h] = d
    if status != OK:
        return label, status
    for h in range(nh):
        if gone[h]:
            continue
        j = new_id[h]
        orig[j] = orig[h]
        nxt[j] = new_id[nxt2[h]]
        twin[j] = -1 if twin[h] < 0 else new_id[twin[h]]
        face[j] = label[face[h]]
        edge_neuron[j] = edge_neuron[h]
        edge_bp[j] = edge_bp[h]
        anc[j, 0], anc[j, 1] = anc[h, 0], anc[h, 1]
        face_edge[face[j]] = j
    seen = np.zeros(n_new, np.bool_)
    for f in range(nf):
        nf2 = label[f]
        if not seen[nf2]:
            seen[nf2] = True
            for c in range(pieces.shape[1]):
                pieces[nf2, c] = pieces[f, c]
    size[NH], size[NF] = n_keep, n_new
    return label, status
