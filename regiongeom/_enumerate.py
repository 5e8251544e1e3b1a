"""Exact enumeration of activation regions, layer by layer, neuron by neuron.

Both drivers keep, at every vertex of the current subdivision, the current
layer's preactivations. On every face (interval) of the subdivision all of a
layer's preactivations are affine, so they are interpolated exactly along
edges when a vertex is created, and a neuron's hyperplane ``z_j = t`` cuts a
face along the segment joining its two zero crossings. After a layer, the
next layer's preactivations at the vertices are one matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _kernels as K
from .tolerance import REL_TOL

DEFAULT_MAX_REGIONS = 2_000_000

BOUNDARY = -1  # edge label: the domain's boundary
ARTIFICIAL = -2  # edge label: an edge of the decomposition of a non-convex domain


class RegionLimitError(RuntimeError):
    """Raised when an enumeration would exceed ``max_regions``."""


def _limit_error(n, max_regions, n_neurons):
    per = 8 * 40 + n_neurons
    return RegionLimitError(
        f"the enumeration passed max_regions={max_regions:,} activation regions ({n:,} so far); "
        f"it needs roughly {per} bytes per region. Pass a larger max_regions= to "
        "activation_regions if you have the memory, or use a smaller domain."
    )


def _layer_iter(net):
    """(weights, biases, activation, first neuron index) for each layer."""
    offs = net.neuron_offsets
    for i, (w, b, a) in enumerate(zip(net.weights, net.biases, net.activations)):
        yield w, b, a, int(offs[i])


@dataclass
class Mesh2D:
    """Raw result of the 2D enumeration (arrays trimmed to size)."""

    vertices: np.ndarray  # (V, 2)
    orig: np.ndarray
    nxt: np.ndarray
    twin: np.ndarray
    face: np.ndarray
    hneu: np.ndarray
    hbp: np.ndarray
    fhe: np.ndarray
    patterns: np.ndarray  # (F, n_neurons) int8


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


class _Buffers:
    """Growable arrays of the 2D mesh."""

    def __init__(self, init, n_neurons, n_rows):
        vx, vy, orig, nxt, twin, face, hneu, fhe = init
        self.nv, self.nh, self.nf = len(vx), len(orig), len(fhe)
        cv, ch, cf = 4 * self.nv + 64, 4 * self.nh + 64, 4 * self.nf + 64
        self.vx = np.zeros(cv)
        self.vy = np.zeros(cv)
        self.vx[: self.nv], self.vy[: self.nv] = vx, vy
        self.s = np.zeros(cv, np.int8)
        self.zt = np.zeros((n_rows, cv))
        self.orig = np.zeros(ch, np.int64)
        self.nxt = np.zeros(ch, np.int64)
        self.twin = np.zeros(ch, np.int64)
        self.face = np.zeros(ch, np.int64)
        self.hneu = np.zeros(ch, np.int64)
        self.hbp = np.zeros(ch, np.int64)
        for name, val in (("orig", orig), ("nxt", nxt), ("twin", twin), ("face", face), ("hneu", hneu)):
            getattr(self, name)[: self.nh] = val
        self.fhe = np.zeros(cf, np.int64)
        self.fhe[: self.nf] = fhe
        self.pat = np.zeros((cf, n_neurons), np.int8)

    @staticmethod
    def _grow(arr, n):
        new = np.zeros((n,) + arr.shape[1:], arr.dtype) if arr.ndim == 1 or arr.shape[0] != 0 else arr
        new[: arr.shape[0]] = arr
        return new

    def reserve(self):
        """Make room for one more hyperplane cut."""
        n_edges = self.nh  # upper bound on the number of edges
        need_v, need_h, need_f = self.nv + n_edges, self.nh + 2 * n_edges + 2 * self.nf, 2 * self.nf
        if need_v > self.vx.shape[0]:
            cap = max(need_v, 2 * self.vx.shape[0])
            for name in ("vx", "vy", "s"):
                setattr(self, name, self._grow(getattr(self, name), cap))
            zt = np.zeros((self.zt.shape[0], cap))
            zt[:, : self.nv] = self.zt[:, : self.nv]
            self.zt = zt
        if need_h > self.orig.shape[0]:
            cap = max(need_h, 2 * self.orig.shape[0])
            for name in ("orig", "nxt", "twin", "face", "hneu", "hbp"):
                setattr(self, name, self._grow(getattr(self, name), cap))
        if need_f > self.fhe.shape[0]:
            cap = max(need_f, 2 * self.fhe.shape[0])
            self.fhe = self._grow(self.fhe, cap)
            self.pat = self._grow(self.pat, cap)

    def set_layer_values(self, z):
        """Replace the per-vertex values by ``z`` of shape (n_rows, nv)."""
        if z.shape[0] != self.zt.shape[0]:
            self.zt = np.zeros((z.shape[0], self.vx.shape[0]))
        self.zt[:, : self.nv] = z


def enumerate_2d(net, domain, max_regions=DEFAULT_MAX_REGIONS) -> Mesh2D:
    """Exact 2D enumeration; see :func:`regiongeom.activation_regions`."""
    buf = _Buffers(_initial_mesh(domain.pieces), net.n_neurons, net.weights[0].shape[0])
    xy = np.stack([buf.vx[: buf.nv], buf.vy[: buf.nv]])
    h = xy
    for w, b, act, first in _layer_iter(net):
        buf.set_layer_values(w @ h + b[:, None])
        if act is not None:
            for j in range(w.shape[0]):
                for k, t in enumerate(act.breakpoints):
                    buf.reserve()
                    nv, nh, nf, status = K.split_by_hyperplane(
                        buf.vx, buf.vy, buf.zt, j, float(t), REL_TOL, buf.s,
                        buf.orig, buf.nxt, buf.twin, buf.face, buf.hneu, buf.hbp, buf.fhe, buf.pat,
                        buf.nv, buf.nh, buf.nf, first + j, k,
                    )  # fmt: skip
                    if status != K.OK:
                        raise RuntimeError(
                            f"inconsistent signs while cutting by neuron {first + j}: the "
                            "geometry is degenerate beyond the tolerance policy (please report)"
                        )
                    buf.nv, buf.nh, buf.nf = nv, nh, nf
                    if nf > max_regions:
                        raise _limit_error(nf, max_regions, net.n_neurons)
            z = buf.zt[:, : buf.nv]
            h = act(z)
        else:
            h = buf.zt[:, : buf.nv].copy()
    nv, nh, nf = buf.nv, buf.nh, buf.nf
    return Mesh2D(
        vertices=np.stack([buf.vx[:nv], buf.vy[:nv]], axis=1),
        orig=buf.orig[:nh].copy(), nxt=buf.nxt[:nh].copy(), twin=buf.twin[:nh].copy(),
        face=buf.face[:nh].copy(), hneu=buf.hneu[:nh].copy(), hbp=buf.hbp[:nh].copy(),
        fhe=buf.fhe[:nf].copy(), patterns=buf.pat[:nf].copy(),
    )  # fmt: skip


@dataclass
class Mesh1D:
    """Raw result of the 1D enumeration."""

    points: np.ndarray  # (V,) sorted vertex positions, ends included
    neuron: np.ndarray  # (V,) neuron whose breakpoint each vertex is (-1 at the ends)
    bp: np.ndarray  # (V,) breakpoint index
    patterns: np.ndarray  # (V - 1, n_neurons) int8


def enumerate_1d(net, domain, max_regions=DEFAULT_MAX_REGIONS) -> Mesh1D:
    """Exact 1D enumeration, one layer at a time (all of a layer's neurons are
    affine on every current interval, so all their crossings are found at once)."""
    lo, hi = domain.interval
    x = np.array([lo, hi])
    neu = np.array([BOUNDARY, BOUNDARY], np.int64)
    bps = np.zeros(2, np.int64)
    pat = np.zeros((1, net.n_neurons), np.int8)
    h = x[None, :]
    for w, b, act, first in _layer_iter(net):
        z = w @ h + b[:, None]  # (n, V)
        if act is None:
            h = z
            continue
        # crossings of every (neuron, breakpoint) inside every interval
        rows, cols, ks, ts = [], [], [], []
        for k, t in enumerate(act.breakpoints):
            d = z - t
            scale = np.max(np.abs(d), axis=1, keepdims=True)
            d[np.abs(d) <= REL_TOL * scale] = 0.0
            s = np.sign(d)
            r, c = np.nonzero(s[:, :-1] * s[:, 1:] < 0)
            a = d[r, c] / (d[r, c] - d[r, c + 1])
            rows.append(r)
            cols.append(c)
            ks.append(np.full(r.size, k))
            ts.append(a)
        r, c, k, a = (np.concatenate(v) for v in (rows, cols, ks, ts))
        pos = x[c] + a * (x[c + 1] - x[c])
        # sort by position; merge crossings that coincide within the tolerance
        order = np.lexsort((r, pos))
        r, c, k, a, pos = r[order], c[order], k[order], a[order], pos[order]
        if pos.size:
            keep = np.concatenate([[True], np.diff(pos) > REL_TOL * (hi - lo)])
            r, c, k, a, pos = r[keep], c[keep], k[keep], a[keep], pos[keep]
        # new vertex list: old vertices and crossings, merged in order
        nv_old = x.size
        allx = np.concatenate([x, pos])
        src_c = np.concatenate([np.arange(nv_old), c])
        src_a = np.concatenate([np.zeros(nv_old), a])
        order = np.argsort(allx, kind="stable")
        zc = z[:, src_c[order]]
        znext = z[:, np.minimum(src_c[order] + 1, nv_old - 1)]
        znew = zc + src_a[order] * (znext - zc)
        is_new = order >= nv_old
        x = allx[order]
        neu = np.concatenate([neu, first + r])[order]
        bps = np.concatenate([bps, k])[order]
        # exact values at the crossings; pattern of each interval from its midpoint
        newcols = np.nonzero(is_new)[0]
        znew[r[order[is_new] - nv_old], newcols] = act.breakpoints[k[order[is_new] - nv_old]]
        parent = np.searchsorted(np.nonzero(~is_new)[0], np.arange(x.size - 1), side="right") - 1
        pat = pat[parent]
        mid = 0.5 * (znew[:, :-1] + znew[:, 1:])
        pat[:, first : first + w.shape[0]] = act.piece(mid).T
        if x.size - 1 > max_regions:
            raise _limit_error(x.size - 1, max_regions, net.n_neurons)
        h = act(znew)
    return Mesh1D(points=x, neuron=neu, bp=bps, patterns=pat)
