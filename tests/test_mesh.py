"""Unit tests of the 2D mesh surgery on small hand-made meshes.

Each test builds a mesh of one or two convex polygons, gives its vertices
hand-chosen values of one or two neurons (affine functions of the position,
so the cut is known exactly), cuts, and checks the half-edge invariants and
the resulting faces against the answer worked out by hand.
"""

import numpy as np
import pytest

from regiongeom._engine import _mesh2d_kernels as K
from regiongeom._engine import mesh2d as M
from regiongeom._engine.core import ARTIFICIAL, BOUNDARY

SQUARE = [np.array([(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)])]
# the square as two triangles sharing the diagonal (0, 0)-(1, 1)
TWO_TRIANGLES = [
    np.array([(0.0, 0.0), (1.0, 0.0), (1.0, 1.0)]),
    np.array([(0.0, 0.0), (1.0, 1.0), (0.0, 1.0)]),
]


def with_values(mesh, fns):
    """The mesh with the values ``fn(x, y)`` of each neuron at its vertices."""
    values = np.zeros((mesh.vx.shape[0], len(fns)))
    for j, fn in enumerate(fns):
        values[:, j] = fn(mesh.vx, mesh.vy)
    return mesh._replace(values=values)


def cut(pieces, fns, bps=(0.0,)):
    """Cut the mesh of ``pieces`` by the neurons ``fns`` (at ``bps``)."""
    grower = M._Growing(with_values(M._new_mesh(pieces), fns))
    start = M._cut_layer(grower, np.array(bps, float), 0, 10**6, None)
    return grower.mesh, start


def faces_of(mesh):
    """Every face's vertex cycle as a list of (x, y) tuples, from its half-edge."""
    out = []
    for f in range(mesh.size[K.NF]):
        h0 = h = mesh.face_edge[f]
        cycle = []
        while True:
            cycle.append((float(mesh.vx[mesh.orig[h]]), float(mesh.vy[mesh.orig[h]])))
            h = mesh.nxt[h]
            if h == h0:
                break
        out.append(cycle)
    return out


def check_invariants(mesh, area):
    """Twin of twin, twins run opposite on the same line, every half-edge on
    exactly one next-cycle whose half-edges carry its face id, faces
    counter-clockwise and tiling an ``area``."""
    nv, nh, nf = (int(c) for c in mesh.size[:3])
    orig, nxt, twin, face = (a[:nh] for a in (mesh.orig, mesh.nxt, mesh.twin, mesh.face))
    assert np.all((orig >= 0) & (orig < nv)) and np.all((nxt >= 0) & (nxt < nh))
    inner = np.nonzero(twin >= 0)[0]
    np.testing.assert_array_equal(twin[twin[inner]], inner)
    np.testing.assert_array_equal(orig[twin[inner]], orig[nxt[inner]])
    np.testing.assert_array_equal(mesh.edge_neuron[twin[inner]], mesh.edge_neuron[inner])
    assert np.all(mesh.edge_neuron[:nh][twin < 0] == BOUNDARY)
    seen = np.zeros(nh, int)
    total = 0.0
    for f in range(nf):
        h0 = h = mesh.face_edge[f]
        signed = 0.0
        for _ in range(nh + 1):
            assert face[h] == f
            seen[h] += 1
            u, w = orig[h], orig[nxt[h]]
            signed += mesh.vx[u] * mesh.vy[w] - mesh.vx[w] * mesh.vy[u]
            h = nxt[h]
            if h == h0:
                break
        else:
            raise AssertionError(f"the next-cycle of face {f} does not close")
        assert signed > 0  # counter-clockwise
        total += signed / 2
    np.testing.assert_array_equal(seen, 1)  # every half-edge on exactly one face
    assert total == pytest.approx(area, rel=1e-12)


def same_cycle(a, b):
    """Whether two vertex cycles are equal up to rotation."""
    return len(a) == len(b) and any(a[i:] + a[:i] == b for i in range(len(a)))


def test_initial_mesh_of_two_triangles():
    mesh = M._new_mesh(TWO_TRIANGLES)
    assert tuple(mesh.size[:3]) == (4, 6, 2)
    check_invariants(mesh, 1.0)
    # the diagonal is the one interior (artificial) edge
    assert np.sum(mesh.twin[:6] >= 0) == 2
    assert set(mesh.edge_neuron[:6][mesh.twin[:6] >= 0]) == {ARTIFICIAL}


def test_split_edge_puts_the_vertex_on_the_line():
    """Split the diagonal of the two triangles where x + y = 1.2: the new
    vertex is (0.6, 0.6), both half-edges of the diagonal are split, and
    the twins pair up crosswise."""
    mesh = with_values(M._new_mesh(TWO_TRIANGLES), [lambda x, y: x + y])
    h = next(h for h in range(6) if mesh.twin[h] >= 0)
    g = mesh.twin[h]
    mesh.sign[:4] = np.sign(mesh.values[:4, 0] - 1.2)
    mesh.root[mesh.face[h]] = 3  # the root recorded in the new vertex's provenance
    one = np.ones(1)
    ends = np.full((4, 4), -1)
    scratch = np.empty(2)  # a row of the values' width, and one more
    scratch_bits = scratch.view(np.int64)
    nv, nh = K._split_edges(np.array([h]), 1, 0, 1.2, 7, 0, 5, 9, ends, np.arange(4), one, one, scratch, scratch_bits, mesh.vx,
                           mesh.vy, mesh.values, mesh.sign, mesh.eps, mesh.perr, mesh.prov, mesh.stats, mesh.orig, mesh.nxt,
                           mesh.twin, mesh.face, mesh.edge_neuron, mesh.edge_bp, mesh.anc, mesh.root, 4,
                           6)  # fmt: skip
    assert (nv, nh) == (5, 8)
    mesh.size[:3] = nv, nh, 2
    assert (mesh.vx[4], mesh.vy[4]) == pytest.approx((0.6, 0.6), abs=1e-15)
    assert mesh.values[4, 0] == 1.2  # exactly on the line
    check_invariants(mesh, 1.0)
    h2, g2 = mesh.nxt[h], mesh.nxt[g]
    assert mesh.orig[h2] == mesh.orig[g2] == 4
    assert (mesh.twin[h], mesh.twin[h2]) == (g2, g)
    # exact ends (eps 0): the new value's error is the interpolation's rounding only
    assert 0 < mesh.eps[4] < 1e-14 and mesh.stats[K.EMAX] == mesh.eps[4]
    # and its position's bound is the interpolation's rounding only too
    assert 0 < mesh.perr[4] < 1e-14
    # made by neuron 7 at breakpoint 0 on the diagonal (domain line h or its twin's), in root 3 of epoch 5
    assert mesh.prov[4].tolist() == [7, 0, ARTIFICIAL, h, 3, 5]
    # the diagonal separates root 3 (of h's face) from root 0: the line enters or leaves both there
    assert sorted(ends[3].tolist() + ends[0].tolist()) == sorted([-1, -1, 4, 9] * 2)
    assert faces_of(mesh)[0].count((0.6, 0.6)) + faces_of(mesh)[1].count((0.6, 0.6)) == 2


def test_cut_through_two_edges():
    """x = 0.25 cuts the square into [0, 0.25] x [0, 1] (piece 0) and
    [0.25, 1] x [0, 1] (piece 1), along neuron 0's hyperplane."""
    mesh, start = cut(SQUARE, [lambda x, y: x - 0.25])
    assert tuple(mesh.size[:3]) == (6, 8, 2)  # 2 split boundary edges, 1 chord
    check_invariants(mesh, 1.0)
    faces = faces_of(mesh)
    left = [(0.0, 0.0), (0.25, 0.0), (0.25, 1.0), (0.0, 1.0)]
    right = [(0.25, 0.0), (1.0, 0.0), (1.0, 1.0), (0.25, 1.0)]
    lo = next(f for f in range(2) if same_cycle(faces[f], left))
    hi = 1 - lo
    assert same_cycle(faces[hi], right)
    assert (mesh.pieces[lo, 0], mesh.pieces[hi, 0]) == (0, 1)
    np.testing.assert_array_equal(start, [0, 0])
    chord = np.nonzero(mesh.edge_neuron[:8] == 0)[0]
    assert chord.size == 2 and mesh.twin[chord[0]] == chord[1]
    assert set(mesh.face[chord]) == {0, 1}


def test_cut_through_a_vertex():
    """x - y = 0 runs along the square's diagonal, through two vertices:
    no new vertex, two triangles."""
    mesh, _ = cut(SQUARE, [lambda x, y: x - y])
    assert tuple(mesh.size[:3]) == (4, 6, 2)  # 1 chord
    check_invariants(mesh, 1.0)
    faces = faces_of(mesh)
    below = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0)]  # x >= y: piece 1
    f = next(f for f in range(2) if same_cycle(faces[f], below))
    assert (mesh.pieces[f, 0], mesh.pieces[1 - f, 0]) == (1, 0)


def test_cut_through_a_vertex_and_an_edge():
    """x - y/2 - 0.5 = 0 passes the vertex (1, 1) and splits the bottom edge at (0.5, 0)."""
    mesh, _ = cut(SQUARE, [lambda x, y: x - 0.5 * y - 0.5])
    assert tuple(mesh.size[:3]) == (5, 7, 2)
    check_invariants(mesh, 1.0)
    faces = faces_of(mesh)
    assert any(same_cycle(c, [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0)]) for c in faces)


@pytest.mark.parametrize("offset, piece", [(2.0, 1), (-2.0, 0), (0.0, 1)])
def test_line_missing_the_face(offset, piece):
    """A line outside the square (or touching it only at the corner (0, 0),
    where x + y + offset = 0 with offset 0) cuts nothing: the face gets the
    piece of its side (on the line counts as above)."""
    mesh, _ = cut(SQUARE, [lambda x, y: x + y + offset])
    assert tuple(mesh.size[:3]) == (4, 4, 1)
    check_invariants(mesh, 1.0)
    assert mesh.pieces[0, 0] == piece


def test_two_neurons_and_two_breakpoints():
    """Neurons x - 0.5 and y - 0.5 with breakpoints -0.25 and 0.25: a 3 x 3
    grid, each neuron on piece 0, 1 or 2 (left of, between, right of its lines)."""
    mesh, start = cut(SQUARE, [lambda x, y: x - 0.5, lambda x, y: y - 0.5], bps=(-0.25, 0.25))
    check_invariants(mesh, 1.0)
    assert mesh.size[K.NF] == 9
    for f, cycle in enumerate(faces_of(mesh)):
        centre = np.mean(cycle, axis=0)
        expect = (centre >= 0.25).astype(int) + (centre >= 0.75)
        np.testing.assert_array_equal(mesh.pieces[f, :2], expect)


def test_a_grid_of_cuts_keeps_the_invariants():
    """Three vertical and three horizontal lines: a 4 x 4 grid of faces with
    the patterns of their cells."""
    fns = [lambda x, y, c=c: x - c for c in (0.25, 0.5, 0.75)] + [
        lambda x, y, c=c: y - c for c in (0.2, 0.4, 0.8)
    ]
    mesh, start = cut(SQUARE, fns)
    check_invariants(mesh, 1.0)
    nf = int(mesh.size[K.NF])
    assert nf == 16
    for f, cycle in enumerate(faces_of(mesh)):
        cx, cy = np.mean(cycle, axis=0)
        expect = [cx >= c for c in (0.25, 0.5, 0.75)] + [cy >= c for c in (0.2, 0.4, 0.8)]
        np.testing.assert_array_equal(mesh.pieces[f, :6], expect)
    np.testing.assert_array_equal(start, 0)


def test_merge_across_an_artificial_edge():
    """Two triangles of a square's decomposition: merged into one region when
    their patterns agree; kept apart, with the diagonal relabelled as the
    first neuron that differs, when they do not."""
    mesh = M._new_mesh(TWO_TRIANGLES)
    patterns = np.array([[1, 0], [1, 0]], np.int8)
    sub = M._subdivision(mesh, 4, 6, 2, patterns.copy(), convex=False)
    assert len(sub.patterns) == 1
    np.testing.assert_array_equal(sub.patterns, [[1, 0]])
    assert sub.measures == pytest.approx([1.0])
    assert len(sub.edges) == 4 and np.all(sub.edge_regions[:, 1] == -1)  # the diagonal is gone
    assert sub.shapes[0].area == pytest.approx(1.0)
    sub = M._subdivision(mesh, 4, 6, 2, np.array([[1, 0], [1, 1]], np.int8), convex=False)
    assert len(sub.patterns) == 2
    inner = np.nonzero(sub.edge_regions[:, 1] >= 0)[0]
    assert inner.size == 1
    assert (sub.edge_neurons[inner[0]], sub.edge_breakpoints[inner[0]]) == (1, 0)
    assert sorted(sub.measures) == pytest.approx([0.5, 0.5])
