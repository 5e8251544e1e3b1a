"""What each torch module, function and method becomes in a converted network.

Called by the walk in :mod:`regiongeom.torch_graph` with the node's arguments
already resolved: constants stay torch values, input-dependent values are
:mod:`regiongeom._graph_ops` nodes. Each handler returns the node's value.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import _graph_ops as g
from . import _torch_max as tm
from ._graph_calls import ModuleCall, TorchCall
from .activations import Activation
from .torch_graph import _DROPOUT, _PASS, _REARRANGE, BATCH, SUPPORTED, _const, _leaves, _walk

NOT_PL = {
    "gelu", "silu", "softplus", "sigmoid", "tanh", "elu", "selu", "celu", "mish", "hardswish",
    "hardsigmoid", "logsigmoid", "softmax", "log_softmax", "softmin", "layer_norm", "group_norm",
    "instance_norm", "local_response_norm", "rms_norm", "normalize", "exp", "exp2", "log", "log2",
    "log1p", "sqrt", "rsqrt", "pow", "square", "sin", "cos", "erf", "reciprocal", "softsign",
    "tanhshrink", "sign", "threshold", "scaled_dot_product_attention", "multi_head_attention_forward",
    "bmm", "einsum", "prod", "logsumexp", "GELU", "SiLU", "Softplus", "Sigmoid", "Tanh", "ELU",
    "SELU", "CELU", "Mish", "Hardswish", "Hardsigmoid", "LogSigmoid", "Softmax", "LogSoftmax",
    "Softmin", "Softmax2d", "LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d",
    "InstanceNorm3d", "LocalResponseNorm", "RMSNorm", "MultiheadAttention", "Transformer",
    "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer", "TransformerDecoderLayer",
    "RNN", "LSTM", "GRU", "Softsign", "Tanhshrink", "Bilinear", "Threshold", "LPPool1d", "LPPool2d",
}  # fmt: skip
MAX_OPS = {
    "max", "amax", "min", "amin", "maximum", "minimum", "fmax", "fmin", "cummax", "cummin",
    "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
    "max_pool3d_with_indices", "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices",
    "fractional_max_pool2d", "fractional_max_pool3d", "max_unpool1d", "max_unpool2d", "max_unpool3d",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d", "FractionalMaxPool2d", "FractionalMaxPool3d", "MaxUnpool1d", "MaxUnpool2d",
    "MaxUnpool3d",
}  # fmt: skip
_NOT_PL_REASON = (
    "is not piecewise linear; regiongeom converts affine maps and piecewise-linear units (ReLU, "
    "LeakyReLU, PReLU, Hardtanh, ReLU6, abs, clamp): replace it (e.g. GELU or SiLU by ReLU) to analyse the model"
)
_MAX_REASON = (
    "is a max unit regiongeom does not convert; supported max units: MaxPool1d/2d, AdaptiveMaxPool1d/2d "
    "(modules or F.max_pool1d/2d, F.adaptive_max_pool1d/2d, without return_indices), torch.max(x, dim) "
    "values and amax over per-sample dimensions (maxout: x.view(..., k).amax(-1))"
)
_UNITS = {"relu", "relu_", "leaky_relu", "leaky_relu_", "hardtanh", "hardtanh_", "relu6", "clamp",
          "clamp_", "clip", "clip_", "clamp_min", "clamp_max", "abs", "abs_", "absolute", "prelu"}  # fmt: skip


def _sig(fn):
    return inspect.signature(fn)


# argument layouts of the calls whose arguments matter (methods pass self as input)
_SIGS = {
    name: _sig(stub)
    for name, stub in {
        "relu": lambda input, inplace=False: None,
        "leaky_relu": lambda input, negative_slope=0.01, inplace=False: None,
        "hardtanh": lambda input, min_val=-1.0, max_val=1.0, inplace=False: None,
        "clamp": lambda input, min=None, max=None: None,
        "clamp_min": lambda input, min: None,
        "clamp_max": lambda input, max: None,
        "prelu": lambda input, weight: None,
        "linear": lambda input, weight, bias=None: None,
        "conv": lambda input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1: None,
        "dropout": lambda input, p=0.5, training=True, inplace=False: None,
        "pad": lambda input, pad, mode="constant", value=None: None,
        "add": lambda input, other, alpha=1: None,
        "mul": lambda input, other: None,
        "div": lambda input, other, rounding_mode=None: None,
        "max_pool": lambda input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False: (
            None
        ),
        "adaptive_max_pool": lambda input, output_size, return_indices=False: None,
        "max": lambda input, dim=None, keepdim=False: None,
        "amax": lambda input, dim=(), keepdim=False: None,
    }.items()
}


def _bind(name, args, kwargs):
    b = _SIGS[name].bind(*args, **kwargs)
    b.apply_defaults()
    return b.arguments


def _number(conv, node, v, what):
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        return float(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    conv.fail(
        node, f"needs a number for {what}, got {type(v).__name__}; per-element bounds are not supported"
    )


def _clamp_unit(lo, hi):
    if lo is not None and hi is not None:
        return Activation.hardtanh(lo, hi)
    if lo is not None:
        return Activation.relu() if lo == 0 else Activation(f"clamp(min={lo:g})", [lo], [0.0, 1.0], lo)
    if hi is not None:
        return Activation(f"clamp(max={hi:g})", [hi], [1.0, 0.0], hi)
    return None


def _prelu(conv, node, x, weight):
    w = _const(weight).reshape(-1).numpy()
    if w.size == 1:
        a = float(w[0])
        return x if a == 1.0 else conv.stage(node, x, Activation(f"prelu({a:g})", [0.0], [a, 1.0], 0.0))
    if len(x.shape) < 1 or x.shape[0] != w.size:
        conv.fail(node, f"has {w.size} slopes but its input has shape {x.shape} (channels first)", ValueError)
    return conv.stage(node, x, slopes=np.repeat(w, int(np.prod(x.shape[1:], dtype=np.int64))))


def _unit(conv, node, name, args, kwargs):
    """A piecewise-linear unit given as a function or method call."""
    x = args[0]
    base = name.rstrip("_")
    if base == "relu":
        act = Activation.relu()
    elif base == "leaky_relu":
        s = _number(conv, node, _bind("leaky_relu", args, kwargs)["negative_slope"], "negative_slope")
        act = None if s == 1.0 else Activation.leaky_relu(s)
    elif base == "hardtanh":
        a = _bind("hardtanh", args, kwargs)
        act = Activation.hardtanh(
            _number(conv, node, a["min_val"], "min_val"), _number(conv, node, a["max_val"], "max_val")
        )
    elif base == "relu6":
        act = Activation.hardtanh(0.0, 6.0)
    elif base in ("clamp", "clip", "clamp_min", "clamp_max"):
        a = _bind(base if base.startswith("clamp_") else "clamp", args, kwargs)
        lo, hi = a.get("min"), a.get("max")
        lo = None if lo is None else _number(conv, node, lo, "min")
        hi = None if hi is None else _number(conv, node, hi, "max")
        if lo is not None and hi is not None and not lo < hi:
            conv.fail(node, f"clamps to an empty or single-point range [{lo}, {hi}]", ValueError)
        act = _clamp_unit(lo, hi)
    elif base in ("abs", "absolute"):
        act = Activation.absolute()
    else:  # prelu
        return _prelu(conv, node, x, _bind("prelu", args, kwargs)["weight"])
    return x if act is None else conv.stage(node, x, act)


def _check_inplace(conv, node, inplace):
    src = node.args[0] if node.args else None
    if inplace and hasattr(src, "users") and len(src.users) > 1:
        conv.fail(node, "changes in place a tensor that is also used elsewhere; use the out-of-place form")


def _rearrange(conv, node, name, args, kwargs):
    x = args[0] if not isinstance(args[0], (list, tuple)) else None
    if name == "squeeze" and len(args) == 1 and not kwargs:
        dims = tuple(i + 1 for i, d in enumerate(x.shape) if d == 1)
        if not dims:
            return x
        args = (x, dims)
    nodes = [v for v in _leaves((args, kwargs)) if isinstance(v, g.Node)]
    data = list(args[0]) if isinstance(args[0], (list, tuple)) else [args[0]]
    if len(nodes) != sum(isinstance(v, g.Node) for v in data) or not all(isinstance(v, g.Node) for v in data):
        conv.fail(node, f"mixes input-dependent tensors with constants or indexes by them; {SUPPORTED}")
    fn = TorchCall(node.target, node.op == "call_method", args, kwargs, lambda v: isinstance(v, g.Node))
    fast = name == "mean" or (name in ("avg_pool2d", "avg_pool3d") and len(args) <= 6)
    sums = fn.summed("sum_mean" if name == "mean" else "sum_pool") if fast else None
    return conv.finish(node, g.Rearrange(nodes, fn, _REARRANGE[name], name, sums))


def _arith(conv, node, name, args, kwargs):
    """add, sub, mul, div, neg, matmul, linear, conv, pad with input-dependent operands."""
    base = name.lstrip("i").rstrip("_") if name not in ("linear",) else name
    dep = [isinstance(v, g.Node) for v in args[:2]]
    if base == "neg":
        return conv.finish(node, g.Neg([args[0]]))
    if base in ("add", "sub", "rsub"):
        a = _bind("add", args, kwargs)
        x, y, alpha = a["input"], a["other"], float(a["alpha"])
        if base == "rsub":
            x, y = y, x
        sign = -1.0 if base in ("sub", "rsub") else 1.0
        if isinstance(x, g.Node) and isinstance(y, g.Node):
            return conv.finish(node, g.Add(x, y, sign * alpha))
        if isinstance(x, g.Node):
            return conv.finish(node, g.Shift(x, _const(y) * (sign * alpha)))
        k = sign * alpha
        if k != 1.0:
            y = conv.finish(node, g.Neg([y]) if k == -1.0 else g.Scale(y, _const(k)))
        return conv.finish(node, g.Shift(y, _const(x)))
    if base in ("mul", "truediv", "div", "matmul"):
        if all(dep):
            conv.fail(node, "multiplies or divides two input-dependent tensors, which " + _NOT_PL_REASON)
        if base == "matmul":
            if not dep[0]:
                conv.fail(
                    node, f"multiplies a constant by an input-dependent tensor from the left; {SUPPORTED}"
                )
            return conv.finish(node, g.MatmulConst(args[0], _const(args[1])))
        if base == "mul":
            x, c = (args[0], args[1]) if dep[0] else (args[1], args[0])
            return conv.finish(node, g.Scale(x, _const(c)))
        a = _bind("div", args, kwargs)
        if not dep[0]:
            conv.fail(node, "divides by an input-dependent tensor, which " + _NOT_PL_REASON)
        if a["rounding_mode"] is not None:
            conv.fail(node, f"rounds (rounding_mode={a['rounding_mode']!r}), which is not continuous")
        return conv.finish(node, g.Scale(a["input"], _const(a["other"]), divide=True))
    if base == "linear":
        a = _bind("linear", args, kwargs)
        b = None if a["bias"] is None else _const(a["bias"])
        return conv.finish(node, g.Linear(a["input"], _const(a["weight"]), b), per_sample=False)
    if base.startswith("conv"):
        a = _bind("conv", args, kwargs)
        b = None if a["bias"] is None else _const(a["bias"])
        op = g.Conv(a["input"], _const(a["weight"]), b, a["stride"], a["padding"], a["dilation"], a["groups"])
        return conv.finish(node, op, per_sample=False)
    a = _bind("pad", args, kwargs)  # pad
    value = 0.0 if a["value"] is None else _number(conv, node, a["value"], "value")
    return conv.finish(node, g.Pad(a["input"], a["pad"], a["mode"], value))


_ARITH = {"add", "iadd", "add_", "sub", "isub", "sub_", "rsub", "mul", "imul", "mul_", "truediv", "itruediv",
          "div", "div_", "neg", "matmul", "linear", "conv1d", "conv2d", "conv3d", "pad"}  # fmt: skip


def _max_unit(conv, node, name, x, a):
    """A max pool, max or amax of an input-dependent ``x`` (arguments ``a``): a stage of max units."""
    if not isinstance(x, g.Node):
        conv.fail(node, f"takes the max of something other than one input-dependent tensor; {SUPPORTED}")
    if a.get("return_indices"):
        conv.fail(node, "returns the indices of the maxima (return_indices=True), which are not piecewise "
                  "linear; use return_indices=False")  # fmt: skip
    if name in tm.POOLS:
        try:
            windows, out = tm.pool_windows(name, tuple(x.shape), a)
        except ValueError as exc:
            conv.fail(node, str(exc), ValueError)
        kw = {k: v for k, v in a.items() if k not in ("input", "return_indices")}

        def fn(t):
            return getattr(F, name)(t, **kw)
    else:
        dim = a["dim"]
        if isinstance(dim, (g.Node, torch.Tensor)):
            conv.fail(node, "is an elementwise maximum of two tensors (torch.maximum); " + _MAX_REASON)
        if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
            conv.fail(node, "takes the max over every axis, including the batch axis, which mixes the samples; "
                      "give the per-sample dimensions, e.g. x.amax(dim=(1, 2))")  # fmt: skip
        full = len(x.shape) + 1
        dims = sorted({int(d) % full for d in (dim if isinstance(dim, (tuple, list)) else (dim,))})
        if dims[0] == 0:
            conv.fail(
                node, "takes the max over the batch axis, which mixes the samples; keep the batch axis first"
            )
        keep = bool(a["keepdim"])
        windows, out = tm.reduce_windows(tuple(x.shape), [d - 1 for d in dims], keep)

        def fn(t):
            return torch.amax(t, dim=dims, keepdim=keep)

    if not tm.check_windows(windows, tuple(x.shape), out, fn, conv.gen):
        conv.fail(
            node, "gives values that its max-unit windows do not reproduce (please report this)", RuntimeError
        )
    y = conv.max_stage(node, x, windows, out)
    return tm.MaxResult(y) if name == "max" else y


def _max_result(conv, node, name, args):
    """``.values`` / ``[0]`` of torch.max(x, dim); the indices are refused."""
    res, key = (args[0], args[1]) if len(args) == 2 else (None, None)
    if isinstance(res, tm.MaxResult) and name in ("getitem", "getattr"):
        if key in (0, "values"):
            return res.values
        if key in (1, "indices"):
            conv.fail(node, "reads the indices of torch.max (the argmax), which are not piecewise linear; "
                      "use the values only")  # fmt: skip
    conv.fail(node, "uses the (values, indices) pair of torch.max as a tensor; take .values or [0]")


def call_function(conv, node, args, kwargs):
    """A call_function or call_method node."""
    t = node.target
    name = t if isinstance(t, str) else getattr(t, "_opname", None) or getattr(t, "__name__", str(t))
    if any(isinstance(v, tm.MaxResult) for v in _leaves((args, kwargs))):
        return _max_result(conv, node, name, args)
    nodes = [v for v in _leaves((args, kwargs)) if isinstance(v, g.Node)]
    if not nodes:
        if name not in ("getitem", "getattr") and any(v is BATCH for v in _leaves((args, kwargs))):
            conv.fail(node, "computes with the batch size; only pass x.size(0) to view/reshape")
        with torch.no_grad():
            if node.op == "call_method":
                return getattr(args[0], t)(*args[1:], **kwargs)
            return t(*args, **kwargs)
    x = args[0] if args else None
    _check_inplace(conv, node, name.endswith("_") or bool(kwargs.get("inplace")))
    if name == "getattr" and isinstance(x, g.Node):
        attr = args[1]
        if attr == "shape":
            return (BATCH, *x.shape)
        if attr == "ndim":
            return len(x.shape) + 1
        if attr in ("dtype", "device"):
            return torch.float64 if attr == "dtype" else torch.device("cpu")
        conv.fail(node, f"reads .{attr} of an input-dependent tensor; {SUPPORTED}")
    if name == "batch_norm":
        return _batchnorm_call(conv, node, args, kwargs)
    if name in ("size", "sym_size") and isinstance(x, g.Node):
        d = args[1] if len(args) > 1 else kwargs.get("dim")
        if d is None:
            return (BATCH, *x.shape)
        d = d + len(x.shape) + 1 if d < 0 else d
        return BATCH if d == 0 else x.shape[d - 1]
    if name == "dim" and isinstance(x, g.Node):
        return len(x.shape) + 1
    if name in _PASS:
        return x
    if name in _DROPOUT:
        a = _bind("dropout", args, kwargs)
        if a["training"] and a["p"] > 0:
            conv.fail(
                node,
                "is active (training=True, the default of the functional form): call model.eval() "
                "and pass training=self.training",
            )
        return a["input"]
    if name in tm.POOLS or name in tm.REDUCE:
        sig = {"max": "max", "amax": "amax"}.get(
            name, "adaptive_max_pool" if "adaptive" in name else "max_pool"
        )
        try:
            a = _bind(sig, args, kwargs)
        except TypeError:
            conv.fail(node, _MAX_REASON)
        return _max_unit(conv, node, name, a["input"], a)
    if name in MAX_OPS:
        if name.endswith("_with_indices"):
            conv.fail(
                node, "returns the indices of the maxima (return_indices=True); use return_indices=False"
            )
        conv.fail(node, _MAX_REASON)
    if name in NOT_PL:
        conv.fail(node, _NOT_PL_REASON)
    if name in _UNITS:
        if not isinstance(x, g.Node):
            conv.fail(node, f"is applied to a constant; {SUPPORTED}")
        return _unit(conv, node, name, args, kwargs)
    if name in _ARITH:
        return _arith(conv, node, name, args, kwargs)
    if name in _REARRANGE:
        return _rearrange(conv, node, name, args, kwargs)
    conv.fail(node, f"is not supported; {SUPPORTED}")


def _module_unit(conv, node, mod, x):
    if isinstance(mod, nn.ReLU):
        return conv.stage(node, x, Activation.relu())
    if isinstance(mod, nn.LeakyReLU):
        s = float(mod.negative_slope)
        return x if s == 1.0 else conv.stage(node, x, Activation.leaky_relu(s))
    if isinstance(mod, nn.Hardtanh):  # ReLU6 too
        return conv.stage(node, x, Activation.hardtanh(float(mod.min_val), float(mod.max_val)))
    return _prelu(conv, node, x, mod.weight)


def _batchnorm_call(conv, node, args, kwargs):
    """F.batch_norm, or torch.export's aten.batch_norm (its own argument order)."""
    if type(node.target).__name__ in ("OpOverload", "OpOverloadPacket"):
        names = ("input", "weight", "bias", "running_mean", "running_var", "training", "momentum", "eps")
    else:
        names = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
    a = dict(zip(names, args))
    a.update(kwargs)
    if a.get("training", False):
        conv.fail(node, "normalises with batch statistics (training=True): call model.eval() first")
    if a.get("running_mean") is None:
        conv.fail(node, "has no running statistics, so it normalises each batch")
    stats = (a["running_mean"], a["running_var"], a.get("weight"), a.get("bias"), float(a.get("eps", 1e-5)))
    return _batchnorm(conv, node, a["input"], *stats)


def _batchnorm(conv, node, x, mean, var, weight, bias, eps):
    mean, var = _const(mean), _const(var)
    s = 1.0 / torch.sqrt(var + eps)
    if weight is not None:
        s = _const(weight) * s
    t = -mean * s if bias is None else _const(bias) - mean * s
    C = s.numel()
    if len(x.shape) < 1 or x.shape[0] != C:
        conv.fail(node, f"has {C} channels but its input has shape {x.shape} (channels first)", ValueError)
    if isinstance(x, (g.Conv, g.Linear)) and (isinstance(x, g.Conv) or len(x.shape) == 1):
        w = x.w * s.reshape(-1, *[1] * (x.w.ndim - 1))
        b = t if x.b is None else x.b * s + t
        folded = g.Conv(x.inputs[0], w, b, *x.args) if isinstance(x, g.Conv) else g.Linear(x.inputs[0], w, b)
        conv.made_by[id(folded)] = conv.made_by.get(id(x), node)
        return conv.finish(node, folded, per_sample=False)
    view = (1, C, *[1] * (len(x.shape) - 1))
    return conv.finish(node, g.ChannelAffine(x, s.reshape(view), t.reshape(view)), per_sample=False)


def _pad_module(conv, node, mod, x):
    tname = type(mod).__name__
    mode = next(
        (
            m
            for p, m in (("Reflection", "reflect"), ("Replication", "replicate"), ("Circular", "circular"))
            if tname.startswith(p)
        ),
        "constant",
    )
    return conv.finish(node, g.Pad(x, mod.padding, mode, float(getattr(mod, "value", 0.0))))


def call_module(conv, node, mod, args, kwargs):
    """A call_module node (a leaf module of torch.nn)."""
    tname = type(mod).__name__
    maxpools = (nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
    if isinstance(mod, maxpools) and len(args) == 1 and not kwargs:
        name, a = tm.module_args(mod)
        return _max_unit(conv, node, name, args[0], a)
    if tname in MAX_OPS:
        conv.fail(node, _MAX_REASON)
    if tname in NOT_PL:
        conv.fail(node, _NOT_PL_REASON)
    x = args[0] if args else None
    if not isinstance(x, g.Node) or len(args) != 1 or kwargs:
        conv.fail(node, f"is called on something other than one input-dependent tensor; {SUPPORTED}")
    _check_inplace(conv, node, bool(getattr(mod, "inplace", False)))
    if isinstance(mod, (nn.Identity, nn.modules.dropout._DropoutNd)):
        return x
    if isinstance(mod, (nn.ReLU, nn.LeakyReLU, nn.Hardtanh, nn.PReLU)):
        return _module_unit(conv, node, mod, x)
    if isinstance(mod, nn.Linear):
        b = None if mod.bias is None else _const(mod.bias)
        return conv.finish(node, g.Linear(x, _const(mod.weight), b), per_sample=False)
    if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        padding = mod.padding
        if mod.padding_mode != "zeros":
            x = conv.finish(node, g.Pad(x, mod._reversed_padding_repeated_twice, mod.padding_mode))
            padding = 0
        b = None if mod.bias is None else _const(mod.bias)
        op = g.Conv(x, _const(mod.weight), b, mod.stride, padding, mod.dilation, mod.groups)
        return conv.finish(node, op, per_sample=False)
    if isinstance(mod, nn.modules.batchnorm._BatchNorm):
        if mod.running_mean is None:
            conv.fail(
                node, "has no running statistics (track_running_stats=False), so it normalises each batch"
            )
        return _batchnorm(conv, node, x, mod.running_mean, mod.running_var, mod.weight, mod.bias, mod.eps)
    pools = (
        nn.AvgPool1d,
        nn.AvgPool2d,
        nn.AvgPool3d,
        nn.AdaptiveAvgPool1d,
        nn.AdaptiveAvgPool2d,
        nn.AdaptiveAvgPool3d,
    )
    if isinstance(mod, pools + (nn.Flatten, nn.Unflatten)):
        kind = "pool" if isinstance(mod, pools) else "reshape"
        sums = None
        if isinstance(mod, (nn.AvgPool2d, nn.AvgPool3d)):
            sums = ModuleCall(mod, F.avg_pool2d if isinstance(mod, nn.AvgPool2d) else F.avg_pool3d)
        return conv.finish(node, g.Rearrange([x], ModuleCall(mod), kind, tname, sums))
    if "Pad" in tname and hasattr(mod, "padding"):
        return _pad_module(conv, node, mod, x)
    conv.fail(node, f"is not supported; {SUPPORTED}")
