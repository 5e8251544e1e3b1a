"""The 1D engine's per-enumeration look-ups (``line1d._Run``): the layer
plans are the constants the products used to look up one by one, the
helper is asked once per enumeration (and a changed ``REGIONGEOM_NUM_THREADS``
is read by the next one)."""

import numpy as np
from common import random_net

import regiongeom as rg
from regiongeom._engine import _line1d_bounds as LB
from regiongeom._engine import line1d as E


def test_layer_plan_is_the_separate_lookups():
    net = random_net([9, 7, 5], n_in=1, seed=2)
    rg.activation_regions(net, (-2.0, 2.0))
    run = E._Run(net)
    for i, (_, _, act, _) in enumerate(list(E.layers(net))[:-1]):
        wt, nlb, consts = run.plan(i, act)
        assert wt is LB._transposed(net, i + 1)
        assert nlb is LB.Bounds.of(net, i + 1)
        assert consts is LB._act_constants_of(net, i, act, nlb)
        assert run.plan(i, act) is run.plan(i, act)


def test_helper_asked_once_per_run(monkeypatch):
    calls = []
    monkeypatch.setattr(E, "_helper", lambda: calls.append(1))
    run = E._Run(random_net([3], n_in=1, seed=0))
    assert run.helper() is None and run.helper() is None
    assert calls == [1]


def test_thread_setting_read_by_each_enumeration(monkeypatch):
    net = random_net([64] * 3, n_in=1, seed=4)
    monkeypatch.setattr(E, "_PAR_MIN", 0)
    monkeypatch.setattr(E, "_pool_state", {"pool": None})
    monkeypatch.setenv("REGIONGEOM_NUM_THREADS", "1")
    one = rg.activation_regions(net, (-3.0, 3.0))
    assert E._pool_state["pool"] is None
    monkeypatch.setenv("REGIONGEOM_NUM_THREADS", "2")
    two = rg.activation_regions(net, (-3.0, 3.0))
    assert E._pool_state["pool"] is not None
    E._pool_state["pool"].shutdown()
    np.testing.assert_array_equal(one.vertices, two.vertices)
    np.testing.assert_array_equal(one.patterns, two.patterns)

