"""Exact enumeration of activation regions in 2D, one layer per kernel call.

A whole layer is cut in one numba call (:func:`._mesh2d_kernels.cut_layer`)
on a half-edge mesh (described in :mod:`._mesh2d_kernels`). The result is
the one of cutting every face by every neuron in turn (the order of the
neurons, then of their breakpoints), with every sign decided by the
tolerance policy of :mod:`regiongeom.tolerance`; the kernel only skips the
faces a neuron cannot reach.
"""

from __future__ import annotations

import numpy as np

from ..tolerance import REL_TOL
from . import _mesh2d_kernels as K
from .core import (
    ARTIFICIAL,
    BOUNDARY,
    DEFAULT_MAX_REGIONS,
    Subdivision,
    affine,
    assemble_patterns,
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
    orig, nxt, face, fhe = [], [], [], []
    edge_of = {}
    for f, ids in enumerate(faces):
        base = len(orig)
        n = len(ids)
        fhe.append(base)
        for i in range(n):
            orig.append(ids[i])
            nxt.append(base + (i + 1) % n)
            face.append(f)
            edge_of[(ids[i], ids[(i + 1) % n])] = base + i
    twin = np.full(len(orig), -1, np.int64)
    hneu = np.full(len(orig), BOUNDARY, np.int64)
    for (u, w), h in edge_of.items():
        g = edge_of.get((w, u))
        if g is not None:
            twin[h] = g
            hneu[h] = ARTIFICIAL
    return (np.array(vx), np.array(vy), np.array(orig, np.int64), np.array(nxt, np.int64),
            twin, np.array(face, np.int64), hneu, np.array(fhe, np.int64))  # fmt: skip


_V_ARRAYS = ("vx", "vy", "s", "zt")
_H_ARRAYS = ("orig", "nxt", "twin", "face", "hneu", "hbp")
_F_ARRAYS = ("fhe", "pat", "froot", "fnext")


class _Mesh:
    """The growable arrays of the 2D half-edge mesh (see :mod:`._kernels`);
    ``pat`` holds the pieces of the current layer's neurons only."""

    def __init__(self, init):
        vx, vy, orig, nxt, twin, face, hneu, fhe = init
        self.counts = np.zeros(6, np.int64)  # nv, nh, nf, and the sizes a cut needs
        self.counts[:3] = len(vx), len(orig), len(fhe)
        cv, ch, cf = 4 * len(vx) + 64, 4 * len(orig) + 64, 4 * len(fhe) + 64
        self.vx, self.vy, self.s = np.zeros(cv), np.zeros(cv), np.zeros(cv, np.int8)
        self.vx[: len(vx)], self.vy[: len(vy)] = vx, vy
        self.zt = np.zeros((cv, 0))
        for name, val in zip(_H_ARRAYS, (orig, nxt, twin, face, hneu, np.zeros_like(hneu)), strict=True):
            arr = np.zeros(ch, np.int64)
            arr[: len(val)] = val
            setattr(self, name, arr)
        self.fhe, self.froot, self.fnext = (np.zeros(cf, np.int64) for _ in range(3))
        self.fhe[: len(fhe)] = fhe
        self.pat = np.zeros((cf, 0), np.int8)

    @property
    def nv(self):
        return int(self.counts[0])

    @property
    def nf(self):
        return int(self.counts[2])

    def grow(self, factor):
        """Make room for the sizes in ``counts[3:6]`` (growing by ``factor`` at least)."""
        nv, nh, nf, need_v, need_h, need_f = (int(c) for c in self.counts)
        for names, n, need in ((_V_ARRAYS, nv, need_v), (_H_ARRAYS, nh, need_h), (_F_ARRAYS, nf, need_f)):
            cap = getattr(self, names[0]).shape[0]
            if need > cap:
                cap = max(need, int(factor * cap))
                for name in names:
                    old = getattr(self, name)
                    new = np.empty((cap,) + old.shape[1:], old.dtype)
                    new[:n] = old[:n]
                    setattr(self, name, new)

    def reserve(self, n_roots, whole_layer):
        """Make room for the faces that cutting ``n_roots`` (root, neuron)
        pairs is likely to make. Growing copies every vertex's values, so it
        should be rare; on the standard networks a layer makes 1.1-1.5 new
        faces per pair listed at its start (the later layers, which are the
        largest, 1.1-1.2), and an epoch that ends when the faces double makes
        at most about as many faces as there were."""
        n_new = int(1.35 * n_roots) if whole_layer else min(int(1.2 * n_roots), int(1.1 * self.nf))
        n_new += 4096
        self.counts[3:6] = self.counts[:3] + (n_new, 4 * n_new, n_new)
        self.grow(factor=1.0)


def _cut_layer_2d(m, bps, first, max_regions, net):
    """Cut the mesh ``m`` by every neuron of the layer whose values are in
    ``m.zt``. Returns the face at the layer's start holding each face."""
    n_rows = m.zt.shape[1]
    m.pat = np.zeros((m.fhe.shape[0], n_rows), np.int8)
    start = np.arange(m.nf)
    j = k = 0
    while j < n_rows:
        # the current faces become the roots; cut until they have twice as many faces
        j0 = j
        indptr, roots, above, rhead, rnsub, scale = K.layer_roots(
            m.fhe, m.nxt, m.orig, m.zt, m.nf, m.nv, bps, REL_TOL, m.froot, m.fnext, j0
        )
        m.reserve(roots.size, whole_layer=j0 == 0)
        while True:
            status, j, k = K.cut_layer(
                m.vx, m.vy, m.zt, m.s, m.orig, m.nxt, m.twin, m.face, m.hneu, m.hbp, m.fhe, m.pat,
                m.froot, m.fnext, rhead, rnsub, indptr, roots, scale,
                bps, REL_TOL, first, m.counts, j, k, max_regions, 2 * m.nf,
            )  # fmt: skip
            if status == K.NEED_SPACE:
                m.grow(factor=1.5)
            elif status == K.LIMIT:
                raise limit_error(m.nf, max_regions, net)
            elif status == K.ANOMALY:
                raise RuntimeError(
                    f"inconsistent signs while cutting by neuron {first + j}: the "
                    "geometry is degenerate beyond the tolerance policy (please report)"
                )
            else:
                break
        K.layer_patterns(m.pat, m.froot, above, m.nf, n_rows, j0, j)
        start = start[m.froot[: m.nf]]
    return start


def enumerate_2d(net, domain, max_regions=DEFAULT_MAX_REGIONS) -> Subdivision:
    """Exact 2D enumeration; see :func:`regiongeom.activation_regions`."""
    with one_blas_thread():
        return _enumerate_2d(net, domain, max_regions)


def _enumerate_2d(net, domain, max_regions):
    m = _Mesh(_initial_mesh(domain.pieces))
    h = np.stack([m.vx[: m.nv], m.vy[: m.nv]], axis=1)
    blocks = []  # (first neuron, face at the layer's start, pieces) of each layer
    for w, b, act, first in layers(net):
        m.zt = affine(h, w, b, np.empty((m.vx.shape[0], w.shape[0])))
        del h
        if act is not None:
            start = _cut_layer_2d(m, act[0], first, max_regions, net)
            blocks.append((first, start, m.pat[: m.nf].copy()))
            m.pat = np.zeros((m.fhe.shape[0], 0), np.int8)
            K.apply_activation(m.zt, m.nv, *act)
        h = m.zt[: m.nv]
    del h
    m.zt = None
    nv, nh, nf = (int(c) for c in m.counts[:3])
    patterns = assemble_patterns(blocks, nf, net.n_neurons)
    return _subdivision(m, nv, nh, nf, patterns, convex=domain.convex)


def _subdivision(m, nv, nh, nf, patterns, *, convex):
    """The :class:`Subdivision` of the final mesh: every edge once (the
    half-edge with the lower index, or the one on the boundary), its two
    faces (left first), the faces' vertex cycles and areas; faces of a
    non-convex domain's decomposition merged into regions."""
    vertices = np.stack([m.vx[:nv], m.vy[:nv]], axis=1)
    orig, nxt, twin, face = m.orig[:nh], m.nxt[:nh], m.twin[:nh], m.face[:nh]
    indptr, ids = K.face_cycles(m.fhe[:nf], nxt, orig, nf)
    areas = K.shoelace_csr(indptr, ids, m.vx[:nv], m.vy[:nv])
    first = (twin == -1) | (np.arange(nh) < twin)
    regions = np.stack([face[first], np.where(twin[first] >= 0, face[twin[first]], -1)], axis=1)
    edges = np.stack([orig[first], orig[nxt[first]]], axis=1)
    neu, bp = m.hneu[:nh][first], m.hbp[:nh][first]
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
