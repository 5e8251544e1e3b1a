"""The 0/1 pattern of a graph network's primitives, transposed: reachability.

A path "through nonzero weights" of a graph network runs through the
primitives of its operators (:mod:`regiongeom._graph_ops`): Linear and
convolution weights, folded BatchNorm scales, constant factors, additions of
branches, pooling. Replacing every coefficient by 1 where it is nonzero and
0 where it is zero gives a linear map with nonnegative coefficients whose
entry ``(r, c)`` is positive exactly when such a path leads from input entry
``c`` to output entry ``r``. :func:`support_t` applies its transpose, which
tells which source entries reach a set of output entries (the good indicator
of :mod:`regiongeom._theorem2_graph`). torch is imported by the functions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["support_t", "support_vjp", "support_run"]


def support_run(node, xs, cache):
    """The node's linear part with every coefficient replaced by 1 where it
    is nonzero (torch, differentiable). ``cache`` keeps the 0/1 coefficients
    by node and attribute (the caller keeps the nodes alive)."""
    import torch
    import torch.nn.functional as F

    from . import _graph_ops as g

    def nz(name):
        key = (id(node), name)
        if key not in cache:
            w = getattr(node, name)
            cache[key] = (w != 0).to(torch.float64) if torch.is_tensor(w) else float(w != 0)
        return cache[key]

    x = xs[0]
    if isinstance(node, g.Linear):
        return F.linear(x, nz("w"))
    if isinstance(node, g.Conv):
        return node._FN[node.w.ndim - 2](x, nz("w"), None, *node.args)
    if isinstance(node, g.Pad):
        kw = {"value": 0.0} if node.pad_mode == "constant" else {}
        return F.pad(x, node.pad, mode=node.pad_mode, **kw)
    if isinstance(node, g.ChannelAffine):
        return x * nz("scale")
    if isinstance(node, g.Scale):
        return x * nz("coefficient")
    if isinstance(node, (g.Shift, g.Neg)):
        return x
    if isinstance(node, g.Add):
        return xs[0] + xs[1] * nz("alpha")
    if isinstance(node, g.MatmulConst):
        return torch.matmul(x, nz("w"))
    if isinstance(node, g.Rearrange):  # nonnegative coefficients already
        return node.run(xs, "abs")
    raise TypeError(f"no support pattern for the graph primitive {type(node).__name__}")


def support_t(op, r, cache=None) -> dict:
    """``{t: (B, size_t)}``: the transposed 0/1 pattern of ``op`` applied to
    ``r`` (``(B, n_out)``, nonnegative), for every source tensor ``t >= 1``
    (the input is no neuron). Positive exactly where a path of nonzero
    coefficients leads from the source entry to an entry with ``r > 0``.

    The primitives are walked backwards, each transposed on its own
    (:func:`support_vjp`)."""
    import torch

    from ._graph_ops import Source

    base = op.rest if hasattr(op, "M") else op
    if base is None or not any(t > 0 for t in base.sources):
        return {}
    cache = {} if cache is None else cache
    B = r.shape[0]
    root = base.order[-1]
    grads = {id(root): torch.from_numpy(np.ascontiguousarray(r, np.float64)).reshape(B, *root.shape)}
    out = {t: np.zeros((B, n)) for t, n in zip(base.sources, base.source_sizes) if t > 0}
    for node in reversed(base.order):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        if isinstance(node, Source):
            if node.tensor > 0:
                out[node.tensor] += g.reshape(B, -1).numpy()
            continue
        for x, gi in zip(node.inputs, support_vjp(node, g, cache)):
            if gi is not None and not (isinstance(x, Source) and x.tensor == 0):
                grads[id(x)] = gi if id(x) not in grads else grads[id(x)] + gi
    return out


def support_vjp(node, g, cache):
    """The transposed 0/1 pattern of one primitive applied to ``g`` ``(B,
    *node.shape)``: one array per input. Dense maps and convolutions are
    transposed directly; the other primitives by autograd on zeros."""
    import torch

    from . import _graph_ops as gops

    B = g.shape[0]
    same = [tuple(x.shape) == tuple(node.shape) for x in node.inputs]

    def nz(name):
        key = (id(node), name)
        if key not in cache:
            w = getattr(node, name)
            cache[key] = (w != 0).to(torch.float64) if torch.is_tensor(w) else float(w != 0)
        return cache[key]

    if isinstance(node, gops.Linear):
        return [g @ nz("w")]
    if isinstance(node, gops.Conv) and not isinstance(node.args[1], str):
        fn = {1: torch.nn.grad.conv1d_input, 2: torch.nn.grad.conv2d_input}.get(node.w.ndim - 2)
        if fn is not None:
            stride, padding, dilation, groups = node.args
            return [fn((B, *node.inputs[0].shape), nz("w"), g, stride, padding, dilation, groups)]
    if all(same):
        if isinstance(node, (gops.Shift, gops.Neg)):
            return [g]
        if isinstance(node, gops.Add):
            return [g, g * nz("alpha")]
        if isinstance(node, gops.ChannelAffine):
            return [g * nz("scale")]
        if isinstance(node, gops.Scale):
            return [g * nz("coefficient")]
    xs = [torch.zeros((B, *x.shape), dtype=torch.float64, requires_grad=True) for x in node.inputs]
    with torch.enable_grad():
        y = support_run(node, xs, cache)
        return list(torch.autograd.grad(y, xs, g, allow_unused=True))
