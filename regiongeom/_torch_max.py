"""Max units in converted torch models: MaxPool, AdaptiveMaxPool, max and amax.

Each call becomes a stage of max units (see "Max stages" in
:mod:`regiongeom.graph`): the stage's operator is the affine expression the
max is taken of, and ``windows`` lists, for each output entry, the flat
indices of the entries it is the maximum of, in row-major order of the
window (``-1`` for a max pool's padding). The windows are built from the
call's arguments and checked against torch's own call on random inputs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

POOLS = {"max_pool1d": 1, "max_pool2d": 2, "adaptive_max_pool1d": 1, "adaptive_max_pool2d": 2}
REDUCE = {"max", "amax"}


class MaxResult:
    """What ``torch.max(x, dim)`` returns: ``.values`` / ``[0]`` is the max
    stage's output; ``.indices`` / ``[1]`` is refused where it is used."""

    def __init__(self, values):
        self.values = values


def _tup(v, nd):
    return tuple(int(u) for u in v) if isinstance(v, (tuple, list)) else (int(v),) * nd


def _pool_axis(L, k, s, p, d, ceil):
    """(L_out, k) input indices along one axis (-1 outside), as torch's max pool."""
    num = L + 2 * p - d * (k - 1) - 1
    out = (-(-num // s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= L + p:
        out -= 1
    pos = np.arange(out)[:, None] * s - p + np.arange(k)[None, :] * d
    return np.where((pos >= 0) & (pos < L), pos, -1)


def _adaptive_axis(L, n_out):
    """(n_out, kmax) input indices of torch's adaptive pooling windows (-1 pads short ones)."""
    starts = [(i * L) // n_out for i in range(n_out)]
    ends = [-((-(i + 1) * L) // n_out) for i in range(n_out)]
    k = max(e - s for s, e in zip(starts, ends))
    out = np.full((n_out, k), -1, np.int64)
    for i, (s, e) in enumerate(zip(starts, ends)):
        out[i, : e - s] = np.arange(s, e)
    return out


def _combine(shape, axes):
    """Windows over ``(C, *spatial)`` from per-axis windows ``axes`` (one per spatial axis)."""
    C, space = shape[0], shape[1:]
    strides = np.cumprod((1,) + tuple(space[::-1]))[::-1][1:]
    idx = np.zeros([1] * (2 * len(axes)), np.int64)
    bad = np.zeros_like(idx, bool)
    for a, (ax, st) in enumerate(zip(axes, strides)):
        view = [1] * (2 * len(axes))
        view[a], view[len(axes) + a] = ax.shape
        idx = idx + (ax * st).reshape(view)
        bad = bad | (ax < 0).reshape(view)
    idx = np.where(bad, -1, idx)  # (O_1, .., O_nd, k_1, .., k_nd)
    out_space = idx.shape[: len(axes)]
    per = idx.reshape(int(np.prod(out_space)), -1)
    plane = int(np.prod(space))
    full = np.where(per[None] < 0, -1, per[None] + plane * np.arange(C)[:, None, None])
    return full.reshape(-1, per.shape[1]), (C, *out_space)


def pool_windows(name, shape, a):
    """Windows and output shape of a max pool on per-sample ``shape``; ``a``: the call's arguments."""
    nd = POOLS[name]
    if len(shape) != nd + 1:
        raise ValueError(f"expects inputs of shape (channels, {nd} spatial axes) per sample, got {shape}")
    space = shape[1:]
    if name.startswith("adaptive"):
        out = a["output_size"]
        out = (out,) * nd if not isinstance(out, (tuple, list)) else tuple(out)
        axes = [_adaptive_axis(L, L if o is None else int(o)) for L, o in zip(space, out)]
    else:
        k = _tup(a["kernel_size"], nd)
        s = k if a["stride"] is None or a["stride"] == [] or a["stride"] == () else _tup(a["stride"], nd)
        p, d = _tup(a["padding"], nd), _tup(a["dilation"], nd)
        axes = [_pool_axis(*v, bool(a["ceil_mode"])) for v in zip(space, k, s, p, d)]
    return _combine(shape, axes)


def reduce_windows(shape, dims, keepdim):
    """Windows and output shape of a max over per-sample axes ``dims`` (sorted, >= 0)."""
    m = math.prod(shape)
    ids = np.moveaxis(np.arange(m).reshape(shape), dims, range(len(shape) - len(dims), len(shape)))
    K = math.prod(shape[d] for d in dims)
    out = (
        tuple(1 if i in dims else n for i, n in enumerate(shape))
        if keepdim
        else tuple(n for i, n in enumerate(shape) if i not in dims)
    )
    return ids.reshape(-1, K), out


def check_windows(windows, in_shape, out_shape, fn, gen):
    """True when the gathered maxima equal torch's ``fn`` on random inputs (ties included)."""
    B = 4
    x = torch.randn(B, *in_shape, dtype=torch.float64, generator=gen)
    x[1] = torch.round(x[1])  # many ties
    with torch.no_grad():
        y = fn(x)
    if tuple(y.shape) != (B, *out_shape):
        return False
    z = x.reshape(B, -1).numpy()
    gz = z[:, np.where(windows < 0, 0, windows)]
    gz[:, windows < 0] = -np.inf
    return np.array_equal(gz.max(axis=2), y.reshape(B, -1).numpy())


def module_args(mod):
    """(name, arguments) of a MaxPool1d/2d or AdaptiveMaxPool1d/2d module."""
    if isinstance(mod, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):
        nd = 1 if isinstance(mod, nn.AdaptiveMaxPool1d) else 2
        return f"adaptive_max_pool{nd}d", {
            "output_size": mod.output_size,
            "return_indices": mod.return_indices,
        }
    nd = 1 if isinstance(mod, nn.MaxPool1d) else 2
    keys = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
    return f"max_pool{nd}d", {k: getattr(mod, k) for k in keys}
