"""Exact enumeration of activation regions in 2D, one layer per kernel call.

A whole layer is cut in one numba call (:func:`._mesh2d_kernels.cut_layer`)
on a half-edge mesh (described in :mod:`._mesh2d_kernels`). The result is
the one of cutting every face by every neuron in turn (the order of the
neurons, then of their breakpoints) with every sign decided exactly for the
float64 weights: a float filter with rigorous rounding-error bounds decides
almost all of them, and the few it leaves open are decided in exact
arithmetic (:mod:`.filter2d`). So the regions, their patterns and their
adjacency are exactly those of the network; a face is split only when it
has vertices strictly on both sides of a hyperplane, so every region has
positive exact area (its float area, from rounded vertex coordinates, may
be 0.0). The kernel only skips the faces a neuron certainly cannot reach.
"""

from __future__ import annotations

import os

from fractions import Fraction

import numpy as np

from .._jit import compile_notice
from . import _mesh2d_kernels as K
from . import _mesh2d_roots as R
from . import filter2d as X
from .core import (
    ARTIFICIAL,
    BOUNDARY,
    DEFAULT_MAX_REGIONS,
    RegionLimitError,
    StagePieces,
    Subdivision,
    affine,
    assemble_patterns,
    assemble_stage_pieces,
    finished_pieces,
    grown,
    layers,
    limit_error,
    one_blas_thread,
)


def _initial_mesh(pieces):
    """Half-edge mesh of a conforming list of CCW convex polygons."""
    key_to_v, vx, vy = {}, [], []
    faces = []
    for poly in pieces:
        ids = []
        for x, y in poly:
            k = (float(x), float(y))
            if k not in key_to_v:
                key_to_v[k] = len(vx)
                vx.append(k[0])
                vy.append(k[1])
            ids.append(key_to_v[k])
        faces.append(ids)
    orig, nxt, face, face_edge = [], [], [], []
    edge_of = {}
    for f, ids in enumerate(faces):
        base = len(orig)
        n = len(ids)
        face_edge.append(base)
        for i in range(n):
            orig.append(ids[i])
            nxt.append(base + (i + 1) % n)
            face.append(f)
            edge_of[(ids[i], ids[(i + 1) % n])] = base + i
    twin = np.full(len(orig), -1, np.int64)
    edge_neuron = np.full(len(orig), BOUNDARY, np.int64)
    for (u, w), h in edge_of.items():
        g = edge_of.get((w, u))
        if g is not None:
            twin[h] = g
            edge_neuron[h] = ARTIFICIAL
    return (np.array(vx), np.array(vy), np.array(orig, np.int64), np.array(nxt, np.int64),
            twin, np.array(face, np.int64), edge_neuron, np.array(face_edge, np.int64))  # fmt: skip


_V_ARRAYS = ("vx", "vy", "sign", "eps", "prov", "xsign", "perr", "values")
_H_ARRAYS = ("orig", "nxt", "twin", "face", "edge_neuron", "edge_bp", "anc")
_F_ARRAYS = ("face_edge", "pieces", "root", "next_in_root")


def _new_mesh(pieces):
    """The :class:`~._mesh2d_kernels.Mesh` of a conforming list of CCW convex
    polygons, with room for 4 times as many elements. Its vertices are exact
    (error bounds 0, provenance CORNER); the domain's half-edge ``h`` lies on
    the domain line ``h`` (its ``edge_bp``)."""
    vx, vy, orig, nxt, twin, face, edge_neuron, face_edge = _initial_mesh(pieces)
    size = np.zeros(6, np.int64)
    size[K.NV], size[K.NH], size[K.NF] = len(vx), len(orig), len(face_edge)
    cap_v, cap_h, cap_f = 4 * len(vx) + 64, 4 * len(orig) + 64, 4 * len(face_edge) + 64

    def padded(val, cap):
        arr = np.zeros((cap,) + val.shape[1:], val.dtype)
        arr[: len(val)] = val
        return arr

    anc = np.stack([orig, orig[nxt]], axis=1)
    h_arrays = (orig, nxt, twin, face, edge_neuron, np.arange(len(orig), dtype=np.int64), anc)
    prov = np.zeros((len(vx), 6), np.int64)
    prov[:, 0] = K.CORNER
    return K.Mesh(
        vx=padded(vx, cap_v), vy=padded(vy, cap_v), values=np.zeros((cap_v, 0)),
        sign=np.zeros(cap_v, np.int8), eps=np.zeros(cap_v), prov=padded(prov, cap_v),
        xsign=np.full(cap_v, -1, np.int64), perr=np.zeros(cap_v),
        **{name: padded(val, cap_h) for name, val in zip(_H_ARRAYS, h_arrays, strict=True)},
        face_edge=padded(face_edge, cap_f), pieces=np.zeros((cap_f, 0), np.int8),
        root=np.zeros(cap_f, np.int64), next_in_root=np.zeros(cap_f, np.int64), size=size,
        stats=np.zeros(2),
    )  # fmt: skip


def _domain_lines(mesh):
    """The two float end points of each domain line (each half-edge of the initial mesh)."""
    nh = int(mesh.size[K.NH])
    ends = [(mesh.orig[h], mesh.orig[mesh.nxt[h]]) for h in range(nh)]
    return [((mesh.vx[a], mesh.vy[a]), (mesh.vx[b], mesh.vy[b])) for a, b in ends]


class _Growing:
    """Holds the current :class:`~._mesh2d_kernels.Mesh` (``.mesh``); the
    arrays it replaces when it grows are freed at once (nothing else keeps
    the old tuple)."""

    def __init__(self, mesh):
        self.mesh = mesh

    def set(self, **arrays):
        self.mesh = self.mesh._replace(**arrays)

    def grow(self, factor):
        """Make room for the sizes in ``size[NEED_V:]`` (each array that is
        too small grows by ``factor`` at least; the elements in use are copied)."""
        nv, nh, nf, need_v, need_h, need_f = (int(c) for c in self.mesh.size)
        for names, n, need in ((_V_ARRAYS, nv, need_v), (_H_ARRAYS, nh, need_h), (_F_ARRAYS, nf, need_f)):
            cap = getattr(self.mesh, names[0]).shape[0]
            if need > cap:
                cap = max(need, int(factor * cap))
                for name in names:  # one at a time, each old array freed once copied
                    old = getattr(self.mesh, name)
                    self.set(**{name: None})  # so that `grown` may give old's pages back as it copies
                    new = grown(old, cap, n, fill=-1 if name == "xsign" else None)  # -1: no exact sign yet
                    del old
                    self.set(**{name: new})

    def reserve(self, n_roots, whole_layer):
        """Make room for the faces that cutting ``n_roots`` (root, neuron)
        pairs is likely to make. Growing copies every vertex's values, so it
        should be rare: a layer makes somewhat more new faces than pairs
        listed at its start (fewer in the later, larger layers), and an epoch
        that ends when the faces double makes at most about as many faces as
        there were."""
        size = self.mesh.size
        n_new = int(1.35 * n_roots) if whole_layer else min(int(1.2 * n_roots), int(1.1 * int(size[K.NF])))
        n_new += 4096
        size[3:6] = size[:3] + (n_new, 4 * n_new, n_new)
        self.grow(factor=1.0)


def check_status(status, j, neuron, n_faces, max_regions, net):
    """Act on a status of :func:`~._mesh2d_kernels.cut_layer` (``neuron``:
    the neuron being cut, for the message): raise on
    ``LIMIT`` and ``ANOMALY``; return True if the arrays must grow
    (``NEED_SPACE``), False if the layer is done or its roots must be remade."""
    if status == K.NEED_SPACE:
        return True
    if status == K.LIMIT:
        raise limit_error(n_faces, max_regions, net)
    if status == K.ANOMALY:
        raise RuntimeError(
            f"inconsistent exact signs while cutting by neuron {neuron} (an internal error, please report)"
        )
    return False


def _cut_layer(g, bps, first, max_regions, net, *, rn=None, n_cut=None, exact=None, key0=0, ids=None):
    """Cut the mesh ``g.mesh`` by the neurons ``j < n_cut`` (default: all) of
    the layer whose values are in its ``values`` (the other columns are
    carried: interpolated at new vertices, never cut). ``rn``: the columns'
    error factors (default 1: the values are taken as exact when ``eps`` is
    0); ``exact``: the :class:`.filter2d.ExactSigns` deciding the signs the
    filter leaves open (None: there must be none); ``key0``: the first key of
    this layer's exact signs; ``ids``: the neuron of each cut column
    (default ``first + j``). Returns the face at the layer's start holding
    each face."""
    n_cols = g.mesh.values.shape[1]
    n_cut = n_cols if n_cut is None else n_cut
    ids = np.arange(first, first + n_cut, dtype=np.int64) if ids is None else ids
    rn = np.ones(n_cols) if rn is None else rn
    rinv = np.zeros_like(rn)
    np.divide(1.0, rn, out=rinv, where=rn > 0)
    g.set(pieces=np.zeros((g.mesh.face_edge.shape[0], n_cut), np.int8))
    start = np.arange(g.mesh.size[K.NF])
    reset_anchors(g.mesh)
    j = k = 0
    while j < n_cut:
        # the current faces become the roots; cut until they have twice as many faces
        j0 = j
        roots = R.layer_roots(tuple(g.mesh), bps, rn, j0, n_cut)
        g.reserve(roots.faces.size, whole_layer=j0 == 0)
        epoch = exact.new_epoch(start) if exact is not None else 0
        while True:
            n_faces = int(g.mesh.size[K.NF])
            status, j, k, uncertain = K.cut_layer(
                tuple(g.mesh), tuple(roots), bps, rn, rinv, ids, n_cut, j, k, max_regions, 2 * n_faces,
                key0, epoch, start,
            )  # fmt: skip
            if status == K.NEED_EXACT:
                if exact is None:
                    raise RuntimeError("a sign needs exact arithmetic but no network was given")
                key = key0 + j * bps.shape[0] + k
                exact.decide(g.mesh, uncertain, start, int(ids[j]), k, bps[k], j, key)
                continue
            if not check_status(
                status, j, int(ids[min(j, n_cut - 1)]), int(g.mesh.size[K.NF]), max_regions, net
            ):
                break
            g.grow(factor=1.5)
        R.layer_patterns(tuple(g.mesh), tuple(roots), j0, j, n_cut)
        start = start[g.mesh.root[: g.mesh.size[K.NF]]]
    return start


def reset_anchors(mesh):
    """At a layer's (or stage's) start every edge is a segment of a face of
    that start: its anchors are its own ends."""
    nh = int(mesh.size[K.NH])
    mesh.anc[:nh, 0] = mesh.orig[:nh]
    mesh.anc[:nh, 1] = mesh.orig[mesh.nxt[:nh]]


def enumerate_2d(net, domain, max_regions=DEFAULT_MAX_REGIONS) -> Subdivision:
    """Exact 2D enumeration; see :func:`regiongeom.activation_regions`."""
    compile_notice("the 2D engine", *_ENTRY_KERNELS, seconds=9)
    with one_blas_thread():
        if hasattr(net, "stages"):  # a GraphNetwork
            return _enumerate_2d_graph(net, domain, max_regions)
        return _enumerate_2d(net, domain, max_regions)


_ENTRY_KERNELS = (
    R.layer_roots,
    K.cut_layer,
    R.layer_patterns,
    K.apply_activation,
    R.face_cycles,
    R.shoelace_csr,
)


def _enumerate_2d(net, domain, max_regions):
    g = _Growing(_new_mesh(domain.pieces))
    nv = int(g.mesh.size[K.NV])
    h = np.stack([g.mesh.vx[:nv], g.mesh.vy[:nv]], axis=1)
    g.mesh.eps[:nv] = X.first_eps(h)
    blocks = []  # (first neuron, face at the layer's start, pieces) of each layer
    exact = X.ExactSigns(net, _domain_lines(g.mesh), blocks, net.n_neurons)
    todo = list(layers(net))
    factors = [X.row_factors(w, b)[0] for w, b, _, _ in todo]
    key0 = 0
    for i, (w, b, act, first) in enumerate(todo):
        g.set(values=affine(h, w, b, np.empty((g.mesh.vx.shape[0], w.shape[0]))))
        del h
        nv = int(g.mesh.size[K.NV])
        g.mesh.stats[K.EMAX] = g.mesh.eps[:nv].max()
        if act is not None:
            start = _cut_layer(
                g, act.breakpoints, first, max_regions, net, rn=factors[i], exact=exact, key0=key0
            )
            key0 += w.shape[0] * act.breakpoints.shape[0]
            nf = int(g.mesh.size[K.NF])
            blocks.append((first, start, finished_pieces(g.mesh.pieces[:nf], act.breakpoints.shape[0] + 1)))
            g.set(pieces=np.zeros((g.mesh.face_edge.shape[0], 0), np.int8))
        if i + 1 < len(todo):
            terms = X.next_layer_terms(act, factors[i], todo[i + 1][0], factors[i + 1])
            bp, sl, ic = act if act is not None else (np.zeros(0), np.ones(1), np.zeros(1))
            K.apply_activation(g.mesh.values, int(g.mesh.size[K.NV]), bp, sl, ic, g.mesh.eps, *terms)
        h = g.mesh.values[: g.mesh.size[K.NV]]
    del h
    return _finish(g, exact, blocks, net, domain)


# vertices that may be farther than this (relative to the domain's size) from their exact
# points, by their bound ``perr``, are put there (rounded) when the mesh is finished. The
# bounds are worst cases: on the MNIST-shaped CNN of benchmarks/bench_planes.py, vertices
# bounded by 1e-5 were measured 1e-14 from their exact points, and snapping all vertices
# bounded by 2**-20 took a fifth of the time; the vertices this is for (nearly parallel lines
# meeting) are 0.1-0.3 off.
_SNAP = 2.0**-12


def _snap_vertices(mesh, exact):
    """Put every vertex whose position bound ``perr`` exceeds :data:`_SNAP`
    times the domain's size at its exact point, rounded (where nearly
    parallel lines meet, interpolation can place a vertex far along them;
    the signs, hence the mesh's structure, are exact regardless, but the
    areas need the points). Counted in ``COUNTS["snapped"]``."""
    nv = int(mesh.size[K.NV])
    if nv == 0 or exact is None:
        return
    size = max(float(np.abs(mesh.vx[:nv]).max()), float(np.abs(mesh.vy[:nv]).max()), 1e-300)
    far = np.nonzero(mesh.perr[:nv] > _SNAP * size)[0]
    for v in far.tolist():
        X_, Y_, W_ = (int(c) for c in exact._point(mesh, v))
        mesh.vx[v] = float(Fraction(X_, W_))
        mesh.vy[v] = float(Fraction(Y_, W_))
    X.COUNTS["snapped"] = X.COUNTS.get("snapped", 0) + len(far)


def _finish(g, exact, blocks, net, domain, assemble=assemble_patterns):
    """The :class:`Subdivision` of the finished mesh ``g.mesh``."""
    stats = g.mesh.stats
    X.COUNTS["decisions"] += int(stats[K.N_DECISIONS])
    _snap_vertices(g.mesh, exact)
    # keep only what the result needs, trimmed, freeing the rest first
    g.set(values=None, sign=None, eps=None, prov=None, xsign=None, perr=None, pieces=None, root=None,
          next_in_root=None)  # fmt: skip
    g.set(anc=None)
    nv, nh, nf = (int(c) for c in g.mesh.size[:3])
    lengths = {**dict.fromkeys(("vx", "vy"), nv), **dict.fromkeys(_H_ARRAYS[:-1], nh), "face_edge": nf}
    for name, n in lengths.items():
        g.set(**{name: getattr(g.mesh, name)[:n].copy()})
    mesh = g.mesh
    del g, exact
    patterns = assemble(blocks, nf, net.n_neurons)
    del blocks
    return _subdivision(mesh, nv, nh, nf, patterns, convex=domain.convex)


def _enumerate_2d_graph(net, domain, max_regions):
    """As :func:`_enumerate_2d` for a :class:`~regiongeom.graph.GraphNetwork`
    with 2 inputs: one unit stage at a time, cutting only the neurons that may
    change piece in the domain (:class:`.graph_plan.GraphPlan` forms each
    stage's columns and says what is carried)."""
    from .graph_plan import GraphPlan

    plan = GraphPlan(net)
    g = _Growing(_new_mesh(domain.pieces))
    blocks = []  # (first neuron, face at the layer's start, pieces) of each stage
    exact = X.ExactSigns(net, _domain_lines(g.mesh), blocks, net.n_neurons)
    nv = int(g.mesh.size[K.NV])
    values = np.stack([g.mesh.vx[:nv], g.mesh.vy[:nv]], axis=1)  # exact: eps is 0
    key0 = 0
    for s, st in enumerate(plan.stages):
        nv = int(g.mesh.size[K.NV])
        values, rn, ids = plan.form(s, values, nv, g.mesh.vx.shape[0], g.mesh.eps)
        if s == 0 and not st.is_max:
            _first_stage_guard(plan, domain, max_regions)
        g.set(values=None)
        g.set(values=values)
        del values
        g.mesh.stats[K.EMAX] = g.mesh.eps[:nv].max()
        info = plan.info[s + 1]
        if st.is_max:
            from ._graph_max import cut_max_stage

            prev = blocks[-1][2] if blocks else None
            start = cut_max_stage(g, plan, s, info, rn, ids, exact, key0, max_regions, net, prev)
            key0 += ids.size * st.windows.shape[1]
        else:
            bps = np.ascontiguousarray(st.breakpoints, np.float64)
            start = _cut_layer(
                g, bps, st.offset, max_regions, net, rn=rn, n_cut=ids.size, exact=exact, key0=key0, ids=ids
            )
            key0 += ids.size * bps.shape[0]
        nf = int(g.mesh.size[K.NF])
        blocks.append(
            (st.offset, start, StagePieces(g.mesh.pieces[:nf].copy(), info.cross, info.const_piece))
        )
        g.set(pieces=np.zeros((g.mesh.face_edge.shape[0], 0), np.int8))
        values = g.mesh.values
    del values
    return _finish(g, exact, blocks, net, domain, assemble=assemble_stage_pieces)


def _first_stage_guard(plan, domain, max_regions):
    """Stop before the heavy work when stage 0's lines alone make more than
    ``max_regions`` faces (an estimate from their arrangement), or more than
    the machine's memory holds (a vertex per face with a column per line)."""
    from ._first_stage import first_stage_regions

    n, lines = first_stage_regions(plan, domain.pieces)
    need = n * (8 * (lines + 2 + plan.n_in) + 300)
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = None
    over = f"more than max_regions={max_regions:,}" if n > max_regions else None
    if over is None and ram is not None and need > ram:
        over = f"needing about {need / 2**30:,.0f} GiB, more than this machine's {ram / 2**30:,.0f} GiB"
    if over is not None:
        limit = min(max_regions, ram // (need // n)) if ram else max_regions
        raise RegionLimitError(
            f"the first layer alone cuts this domain into about {n:,} regions ({lines:,} lines of its "
            f"{plan.stages[0].n:,} neurons cross it), {over}: use a smaller domain, e.g. a box about "
            f"{(limit / n) ** 0.5:.2g} times as wide around one point"
        )


def _subdivision(m, nv, nh, nf, patterns, *, convex):
    """The :class:`Subdivision` of the final mesh: every edge once (the
    half-edge with the lower index, or the one on the boundary), its two
    faces (left first), the faces' vertex cycles and areas; faces of a
    non-convex domain's decomposition merged into regions."""
    vertices = np.stack([m.vx[:nv], m.vy[:nv]], axis=1)
    orig, nxt, twin, face = m.orig[:nh], m.nxt[:nh], m.twin[:nh], m.face[:nh]
    indptr, ids = R.face_cycles(m.face_edge[:nf], nxt, orig, nf)
    areas = R.shoelace_csr(indptr, ids, m.vx[:nv], m.vy[:nv])
    first = (twin == -1) | (np.arange(nh) < twin)
    regions = np.stack([face[first], np.where(twin[first] >= 0, face[twin[first]], -1)], axis=1)
    edges = np.stack([orig[first], orig[nxt[first]]], axis=1)
    neu, bp = m.edge_neuron[:nh][first], m.edge_bp[:nh][first]
    bp = np.where(neu < 0, 0, bp)  # (the domain's edges held their line's id)
    shapes = None
    if not convex:
        regions, neu, bp, patterns, areas, keep, shapes = _merge_pieces(
            regions, neu, bp, patterns, indptr, ids, areas, vertices
        )
        edges = edges[keep]
    return Subdivision(
        vertices=vertices, edges=edges, edge_regions=regions, edge_neurons=neu, edge_breakpoints=bp,
        patterns=patterns, measures=areas, indptr=indptr, ids=ids, shapes=shapes,
    )  # fmt: skip


def _merge_pieces(regions, neu, bp, patterns, indptr, ids, areas, vertices):
    """Merge faces of a non-convex domain's decomposition across artificial
    edges when their patterns agree; relabel artificial edges where a neuron's
    hyperplane runs along them."""
    import shapely
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nf = patterns.shape[0]
    art = neu == ARTIFICIAL
    a, b = regions[art, 0], regions[art, 1]
    same = np.all(patterns[a] == patterns[b], axis=1)
    g = coo_matrix((np.ones(same.sum()), (a[same], b[same])), shape=(nf, nf))
    _, label = connected_components(g, directed=False)
    # artificial edges that separate different patterns lie on a neuron's hyperplane
    art_idx = np.nonzero(art)[0]
    diff_idx = art_idx[~same]
    for e in diff_idx:
        pa, pb = patterns[regions[e, 0]], patterns[regions[e, 1]]
        j = int(np.nonzero(pa != pb)[0][0])
        neu[e], bp[e] = j, int(min(pa[j], pb[j]))
    keep = ~np.isin(np.arange(neu.size), art_idx[same])
    regions = np.where(regions >= 0, label[np.maximum(regions, 0)], -1)[keep]
    nreg = label.max() + 1
    first_face = np.full(nreg, -1)
    first_face[label[::-1]] = np.arange(nf)[::-1]
    new_pat = patterns[first_face]
    new_areas = np.bincount(label, weights=areas, minlength=nreg)
    shapes = shapely.polygons(
        shapely.linearrings(vertices[ids], indices=np.repeat(np.arange(nf), np.diff(indptr)))
    )
    order = np.argsort(label, kind="stable")
    bounds = np.searchsorted(label[order], np.arange(nreg + 1))
    merged = [shapely.union_all(shapes[order[bounds[r] : bounds[r + 1]]]) for r in range(nreg)]
    return regions, neu[keep], bp[keep], new_pat, new_areas, keep, merged
