"""The 2D engine's exact signs: filtered float decisions with an exact fallback.

Checks against the forward pass at random points (no exact arithmetic), that
the exact fallback runs on coincidences and gives the exact reference's
answer, that results do not depend on numba's JIT, and the carried columns
of the cut kernels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from exact_compare import compare
from exact_reference import exact_forward, exact_layers
from test_exact import BOX, DEPTH_BOX, net_b, net_depth, net_of
from test_mesh import SQUARE, check_invariants

import regiongeom as rg
from regiongeom._engine import _mesh2d_kernels as K
from regiongeom._engine import mesh2d as M
from regiongeom._engine.filter2d import COUNTS

HERE = Path(__file__).parent


def counted(net, domain):
    """The region map and the number of signs decided exactly."""
    COUNTS.update(decisions=0, exact=0)
    rm = rg.activation_regions(net, domain)
    return rm, COUNTS["exact"]


def test_locate_matches_the_forward_pass_depth_compounded():
    """At 20,000 random points of the box, the located region's pattern is
    the forward pass's (mismatches confirmed by exact evaluation)."""
    net = net_depth()
    rm = rg.activation_regions(net, DEPTH_BOX)
    rng = np.random.default_rng(0)
    pts = rng.uniform((-2.0, -1.5), (3.0, 1.5), size=(20_000, 2))
    idx = rm.locate(pts)
    assert np.all(idx >= 0)
    sus = np.nonzero(np.any(rm.patterns[idx] != net.patterns(pts), axis=1))[0]
    layers = exact_layers(net)
    wrong = [i for i in sus if tuple(rm.patterns[idx[i]].tolist()) != exact_forward(None, pts[i], layers)[1]]
    assert wrong == []
    assert len(rm) == 62  # the exact count (test_exact.test_exact_answer_scaled_cases)


def test_exact_fallback_decides_coincidences():
    """Integer weights times 1e4 put many vertices exactly on later
    hyperplanes: the float filter leaves them open, exact arithmetic decides."""
    rm, n_exact = counted(net_depth(), DEPTH_BOX)
    assert n_exact > 0
    assert compare(net_depth(), DEPTH_BOX) == []


def test_duplicate_neurons_with_rounded_constants():
    """Neurons 0 and 2 are the same line up to a factor 3; neuron 1's constant
    0.3 is not 3 * 0.1 in float64, so its line is 1.7e-17 away from theirs:
    the exact map has a sliver of area about 4e-17 between them, which the
    engine keeps (measure 0 or tiny) with the exact patterns."""
    W = np.array([[1.0, 0.5], [-3.0, -1.5], [3.0, 1.5]])
    b = np.array([-0.1, 0.3, -0.3])
    net = net_of([W, np.ones((1, 3))], [b, [0.0]], ["relu", None])
    rm, n_exact = counted(net, BOX)
    assert n_exact > 0
    assert not [d for d in compare(net, BOX) if d.split(":")[0] in ("count", "patterns", "measure", "affine")]
    assert len(rm) == 3 and min(rm.measures) < 1e-15


_NEAR_PARALLEL = ["0x1.6a09e667f3bccp-6", "0x1.baf3147f6b905p-6", "-0x1.6a09e667f3bccp-5", "-0x1.baf3147f6b907p-5",
                  "-0x1.f1cd9cceef239p-3", "-0x1.505043b6140a2p-5"]  # fmt: skip


@pytest.mark.parametrize("order", [(0, 1, 2), (1, 0, 2), (0, 2, 1), (2, 0, 1)])
def test_lines_nearly_parallel_through_one_point(order):
    """Three lines through the origin, two of them 1e-16 apart in angle (a
    conv's rows on a plane through sparse images gave them): where the two
    meet, interpolation along either cannot place the vertex (it landed 0.3
    away, so areas were off by 0.2 when the third line was cut after both);
    such vertices are put at their exact points (rounded), counted."""
    W = np.array([float.fromhex(h) for h in _NEAR_PARALLEL]).reshape(3, 2)[list(order)]
    net = net_of([W, np.ones((1, 3))], [np.zeros(3), [0.0]], ["relu", None])
    COUNTS["snapped"] = 0
    assert compare(net, (-0.3, -0.3, 1.3, 1.3)) == []
    if order[:2] in ((0, 1), (1, 0)):
        assert COUNTS["snapped"] > 0


def test_neuron_constant_far_from_its_breakpoint_2d():
    """Reproducer B in 2D: neuron 1 is exactly -1 where x < 0 (relu(1e11 x) = 0
    there); it must not be snapped onto its breakpoint."""
    net = net_of([[[1e11, 0.0]], [[1.0]], [[1.0]]], [[0.0], [-1.0], [0.0]], ["relu", "relu", None])
    rm = rg.activation_regions(net, BOX)
    assert sorted(map(tuple, rm.patterns.tolist())) == [(0, 0), (1, 0), (1, 1)]
    assert compare(net, BOX) == []
    b1 = net_b()  # the 1D network on the strip [-1, 1] x [0, 1]
    two = net_of([np.hstack([b1.weights[0], [[0.0]]]), *b1.weights[1:]], b1.biases, list(b1.activations))
    rm = rg.activation_regions(two, (-1.0, 0.0, 1.0, 1.0))
    assert sorted(map(tuple, rm.patterns.tolist())) == [(0, 0), (1, 0), (1, 1)]


def test_exact_zero_bound_rows():
    """A row of zero weights is computed exactly: its sign needs no fallback
    (a hardtanh neuron constant at its breakpoint 1 is on piece 2 everywhere)."""
    net = net_of([[[2.0, 0.0], [0.0, 0.0]], [[1.0, 1.0]]], [[0.0, 1.0], [0.0]], ["hardtanh", None])
    rm, n_exact = counted(net, BOX)
    assert n_exact == 0
    assert sorted(map(tuple, rm.patterns.tolist())) == [(0, 2), (1, 2), (2, 2)]


def test_carried_columns_are_interpolated_not_cut():
    """Columns from ``n_cut`` on are carried: interpolated at new vertices
    (exactly the affine function they hold), never cut."""
    fns = [lambda x, y: x - 0.25, lambda x, y: y - 0.5, lambda x, y: x + 2 * y - 7]
    mesh = M._new_mesh(SQUARE)
    values = np.zeros((mesh.vx.shape[0], 3))
    for j, fn in enumerate(fns):
        values[:, j] = fn(mesh.vx, mesh.vy)
    g = M._Growing(mesh._replace(values=values))
    M._cut_layer(g, np.array([0.0]), 0, 10**6, None, n_cut=2)
    m = g.mesh
    check_invariants(m, 1.0)
    nv, nh = int(m.size[K.NV]), int(m.size[K.NH])
    assert m.size[K.NF] == 4 and m.pieces.shape[1] == 2
    assert set(m.edge_neuron[:nh].tolist()) <= {0, 1, -1}
    np.testing.assert_allclose(m.values[:nv, 2], fns[2](m.vx[:nv], m.vy[:nv]), rtol=0, atol=1e-15)


_NOJIT_CASE = """
import json, sys
sys.path.insert(0, {tests!r})
import numpy as np
import regiongeom as rg
from regiongeom._engine.filter2d import COUNTS
from test_exact import net_depth, DEPTH_BOX
rm = rg.activation_regions(net_depth(), DEPTH_BOX)
order = np.lexsort(rm.patterns.T)
print(json.dumps({{"patterns": rm.patterns[order].tolist(), "measures": rm.measures[order].tolist(),
                  "exact": COUNTS["exact"]}}))
"""


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="already running without JIT")
def test_same_without_jit():
    """The pure-Python kernels give the same regions, areas and fallbacks."""
    code = _NOJIT_CASE.format(tests=str(HERE))
    out = {}
    for flag in ("0", "1"):
        env = dict(os.environ, NUMBA_DISABLE_JIT=flag)
        r = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=HERE.parent
        )
        assert r.returncode == 0, r.stderr[-3000:]
        out[flag] = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["0"] == out["1"]
    assert out["0"]["exact"] > 0
