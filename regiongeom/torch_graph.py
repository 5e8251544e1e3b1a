"""Convert any piecewise-linear torch model into a network, exactly, with torch.fx.

:func:`convert` traces the model with ``torch.fx`` and walks its graph once.
Every value is either a constant (parameters, shapes, Python numbers) or an
affine expression of the network's tensors (a DAG of the primitives in
:mod:`regiongeom._graph_ops`). A piecewise-linear unit applied to an affine
expression closes a *stage*: the expression becomes the stage's operator and
the unit's output a new tensor. The result is a :class:`~regiongeom.Network`
when the model is a chain of dense layers, else a
:class:`~regiongeom.graph.GraphNetwork`.

Anything that is not affine or a piecewise-linear unit is refused with a
``TypeError`` naming the operation, its module path and the line of the
model's source that calls it.
"""

from __future__ import annotations

import os
import traceback

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from . import _graph_ops as g
from ._graph_calls import BATCH
from .graph import GraphNetwork, Operator, Stage
from .network import Network

_TORCH_DIR = os.path.dirname(torch.__file__)

SUPPORTED = (
    "supported: Linear, Conv1d/2d, BatchNorm (eval), AvgPool, AdaptiveAvgPool, Flatten/view/reshape/"
    "permute, Dropout/Identity (eval), +, -, cat, * and / by constants, the units ReLU, LeakyReLU, "
    "PReLU, Hardtanh, ReLU6, abs, clamp, and the max units MaxPool1d/2d, AdaptiveMaxPool1d/2d, max(x, dim), amax"
)
# linear maps with nonnegative coefficients and no constant: evaluated by calling torch itself
_REARRANGE = {
    "view": "reshape", "reshape": "reshape", "flatten": "reshape", "unflatten": "reshape",
    "permute": "reshape", "transpose": "reshape", "swapaxes": "reshape", "movedim": "reshape",
    "contiguous": "reshape", "unsqueeze": "reshape", "squeeze": "reshape", "getitem": "reshape",
    "narrow": "reshape", "flip": "reshape", "roll": "reshape", "expand": "reshape", "repeat": "reshape",
    "slice": "reshape", "select": "reshape", "_unsafe_view": "reshape", "index_select": "reshape",
    "cat": "cat", "concat": "cat", "concatenate": "cat", "stack": "cat",
    "mean": "pool", "sum": "pool", "avg_pool1d": "pool", "avg_pool2d": "pool", "avg_pool3d": "pool",
    "adaptive_avg_pool1d": "pool", "adaptive_avg_pool2d": "pool", "adaptive_avg_pool3d": "pool",
    "_adaptive_avg_pool2d": "pool", "_adaptive_avg_pool3d": "pool",
}  # fmt: skip
_PASS = {"clone", "detach", "float", "double", "to", "type_as", "type", "identity", "alias", "_to_copy"}
_DROPOUT = {"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"}


def _user_line(frames) -> str:
    """``file:line: code`` of the innermost frame outside torch."""
    for f in reversed(frames):
        if not f.filename.startswith(_TORCH_DIR):
            return f"{f.filename}:{f.lineno}: `{(f.line or '').strip()}`"
    return "an unknown line"


def _stack_line(node) -> str:
    st = node.meta.get("stack_trace")
    if not st:
        return "an unknown line"
    frames = []
    lines = st.splitlines()
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith('File "'):
            fname, _, rest = s[6:].partition('", line ')
            lineno = rest.split(",")[0]
            code = lines[i + 1].strip() if i + 1 < len(lines) else ""
            frames.append(traceback.FrameSummary(fname, int(lineno), "", line=code))
    return _user_line(frames)


def _where(node) -> str:
    """Module path of the module whose forward makes the call ("<model>" for the top)."""
    if node.op == "call_module":
        return node.target
    stack = node.meta.get("nn_module_stack") or {}
    path = list(stack.values())[-1][0] if stack else ""
    return path or "<model>"


def _layer(node):
    """Module path of the torch.nn layer a node is, or is inside (as in torch.export graphs), or None."""
    if node.op == "call_module":
        return node.target
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return None
    path, cls = list(stack.values())[-1]
    qual = cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}"
    return path if path and qual.startswith("torch.nn.modules.") else None


def _walk(obj, fn):
    """Map ``fn`` over the leaves of nested lists, tuples, dicts and slices."""
    if isinstance(obj, (list, tuple)):
        return type(obj)(_walk(o, fn) for o in obj)
    if isinstance(obj, dict):
        return {k: _walk(v, fn) for k, v in obj.items()}
    if isinstance(obj, slice):
        return slice(_walk(obj.start, fn), _walk(obj.stop, fn), _walk(obj.step, fn))
    return fn(obj)


def _leaves(obj) -> list:
    out = []
    _walk(obj, lambda v: out.append(v))
    return out


def _const(v):
    """A constant as float64 torch tensor (numbers too)."""
    if isinstance(v, torch.Tensor):
        return v.detach().to(device="cpu", dtype=torch.float64)
    return torch.tensor(float(v), dtype=torch.float64)


class _Converter:
    def __init__(self, model, gm, input_shape):
        self.model, self.gm, self.input_shape = model, gm, tuple(input_shape)
        self.modules = dict(model.named_modules())
        self.stages, self.offset, self.names_used = [], 0, set()
        self.made_by = {}  # id(node) -> fx node that made it (for neuron names)
        self.gen = torch.Generator().manual_seed(0)

    # -- errors -----------------------------------------------------------
    def _what(self, node):
        if node.op == "call_module":
            return type(self.modules[node.target]).__name__, node.target
        t = node.target
        name = t if isinstance(t, str) else getattr(t, "_opname", None) or getattr(t, "__name__", str(t))
        what = f".{name}()" if node.op == "call_method" else f"{name}()"
        return what, _where(node)

    def fail(self, node, reason, cls=TypeError):
        what, pos = self._what(node)
        raise cls(f"from_torch: {what} at position '{pos}' (called at {_stack_line(node)}) {reason}")

    # -- building nodes ---------------------------------------------------
    def _trial(self, node, B):
        xs = [torch.randn(B, *i.shape, dtype=torch.float64, generator=self.gen) for i in node.inputs]
        with torch.no_grad():
            return xs, node.run(xs, "affine")

    def finish(self, fx_node, node, per_sample=True):
        """Set the node's shape by a trial run; check that samples stay separate."""
        try:
            xs, y = self._trial(node, 3)
            if per_sample:
                with torch.no_grad():
                    y2 = node.run([x[:2] for x in xs], "affine")
        except (RuntimeError, ValueError, IndexError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            shapes = ", ".join(str(tuple(i.shape)) for i in node.inputs)
            self.fail(fx_node, f"fails on inputs of shape {shapes} ({first}); check input_shape", ValueError)
        if y.ndim < 1 or y.shape[0] != 3 or (per_sample and not torch.equal(y[:2], y2)):
            self.fail(
                fx_node, "mixes the samples of a batch (it acts on the batch axis); keep the batch axis first"
            )
        node.shape = tuple(y.shape[1:])
        self.made_by.setdefault(id(node), fx_node)
        return node

    def stage(self, fx_node, x, act=None, slopes=None):
        """Close a stage: unit ``act`` (or per-neuron ``slopes`` of a PReLU) on expression ``x``."""
        op = Operator(x)
        n, shape = op.n_out, tuple(x.shape)
        if act is not None:
            bp = act.breakpoints
            sl = np.broadcast_to(act.slopes, (n, act.slopes.size))
            ic = np.broadcast_to(act.intercepts, (n, act.intercepts.size))
        else:
            bp = np.zeros(1)
            sl = np.stack([slopes, np.ones(n)], axis=1)
            ic = np.zeros((n, 2))
            for a in (bp, sl, ic):
                a.setflags(write=False)
        name = self._name(fx_node, self.made_by.get(id(x)))
        self.stages.append(Stage(op, bp, sl, ic, self.offset, shape, name, activation=act))
        self.offset += n
        return g.Source(len(self.stages), shape)

    def max_stage(self, fx_node, x, windows, shape):
        """Close a stage of max units: unit ``u`` is the max of ``x`` (flattened) over ``windows[u]``."""
        shape = tuple(int(d) for d in shape)
        stage = Stage(Operator(x), None, None, None, self.offset, shape, self._name(fx_node), windows=windows)
        self.stages.append(stage)
        self.offset += stage.n
        return g.Source(len(self.stages), shape)

    def _name(self, fx_node, producer=None):
        """The stage's name: the torch.nn layer computing its preactivations (or the unit)."""
        if producer is not None and producer is not fx_node and _layer(producer):
            name = _layer(producer)
        elif _layer(fx_node):
            name = _layer(fx_node)
        else:
            path = _where(fx_node)
            name = fx_node.name if path == "<model>" else f"{path}.{fx_node.name}"
        if name in self.names_used:
            name = f"{name}.{fx_node.name}"
        self.names_used.add(name)
        return name

    # -- the walk ---------------------------------------------------------
    def run(self):
        env = {}
        out, first = None, True
        for node in self.gm.graph.nodes:
            args = _walk(node.args, lambda v: env[v] if isinstance(v, fx.Node) else v)
            kwargs = _walk(node.kwargs, lambda v: env[v] if isinstance(v, fx.Node) else v)
            if node.op == "placeholder":
                env[node] = g.Source(0, self.input_shape) if first else (args[0] if args else None)
                first = False
            elif node.op == "get_attr":
                obj = self.model
                for part in node.target.split("."):
                    obj = getattr(obj, part)
                env[node] = _const(obj) if isinstance(obj, torch.Tensor) else obj
            elif node.op == "output":
                out = args[0]
                if isinstance(out, (tuple, list)) and len(out) == 1:  # torch.export returns a tuple
                    out = out[0]
            else:
                env[node] = self.call(node, args, kwargs)
        if not isinstance(out, g.Node):
            raise TypeError(
                "from_torch: the model must return one tensor that depends on its input, "
                f"got {type(out).__name__}"
            )
        return out

    def call(self, node, args, kwargs):
        from ._torch_calls import call_function, call_module

        if node.op == "call_module":
            if node.target.startswith("_guards"):
                return None  # torch.export's input guards
            return call_module(self, node, self.modules[node.target], args, kwargs)
        return call_function(self, node, args, kwargs)


def _trace(model):
    tracer = fx.Tracer()
    tracer.record_stack_traces = True
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # noqa: BLE001 - any tracing failure becomes one clear line
        where = _user_line(traceback.extract_tb(exc.__traceback__))
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "'len'" in msg:
            cause = "its forward calls len() on a tensor"
            fix = "use x.size(0) or x.shape[0] instead"
        elif "control flow" in msg or "iteration" in msg:
            cause = "its forward branches or loops on the values of a tensor"
            fix = "rewrite that step without Python control flow on tensors (e.g. torch.where, or loop over a fixed range)"
        else:
            cause = f"{type(exc).__name__}: {msg}"
            fix = "make forward traceable by torch.fx (no data-dependent Python logic)"
        raise TypeError(
            f"from_torch: torch.fx cannot trace {type(model).__name__}.forward ({msg}, at {where}): "
            f"{cause}; {fix}"
        ) from None
    return fx.GraphModule(model, graph)


def _check_eval(model):
    for path, mod in model.named_modules():
        if not mod.training:
            continue
        pos = path or "<model>"
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            why = "BatchNorm in training mode normalises with the statistics of each batch"
        elif isinstance(mod, nn.modules.dropout._DropoutNd) and mod.p > 0:
            why = "Dropout in training mode zeroes random units"
        else:
            continue
        raise TypeError(
            f"from_torch: {type(mod).__name__} at position '{pos}' is in training mode ({why}); "
            "call model.eval() before converting"
        )


def _infer_input_shape(gm, modules):
    """(in_features,) when the input goes (through Flatten/Identity/Dropout) into a Linear."""
    node = next(n for n in gm.graph.nodes if n.op == "placeholder")
    while len(node.users) == 1:
        (user,) = node.users
        if user.op == "call_module":
            mod = modules[user.target]
            if isinstance(mod, nn.Linear):
                return (mod.in_features,)
            if isinstance(mod, (nn.Flatten, nn.Identity, nn.Dropout)):
                node = user
                continue
        if user.op == "call_method" and user.target in ("flatten", "view", "reshape", "contiguous"):
            node = user
            continue
        weight = user.args[1] if user.op == "call_function" and len(user.args) > 1 else None
        if getattr(user.target, "__name__", "") == "linear" and getattr(weight, "op", "") == "get_attr":
            obj = gm
            for part in weight.target.split("."):
                obj = getattr(obj, part)
            return (obj.shape[1],)
        break
    raise ValueError(
        "from_torch: pass input_shape, one input's shape without the batch axis, e.g. "
        "input_shape=(1, 28, 28); it can only be read from a model whose input goes straight into a Linear layer"
    )


def _dense(input_shape, stages, output):
    """The equivalent rg.Network when the stages form a chain of flat dense layers, else None."""
    ops = [s.operator for s in stages] + [output]
    for s, op in enumerate(ops):
        if op.sources != (s,) or not op.is_dense_friendly() or len(op.shape) != 1:
            return None
        if op.n_in * op.n_out > 1 << 27:  # a matrix of more than 1 GiB: keep the operator
            return None
    if any(s.activation is None for s in stages):
        return None
    ws = [op.matrix() for op in ops]
    bs = [op.bias for op in ops]
    acts = [s.activation for s in stages] + [None]
    net = Network.from_arrays(ws, bs, acts)
    names = GraphNetwork(tuple(input_shape), tuple(stages), output).neuron_names
    return Network(net.weights, net.biases, net.activations, names=names)


def convert(model, input_shape=None):
    """Trace ``model`` and convert it; see :func:`regiongeom.from_torch`.

    Examples
    --------
    >>> import torch, regiongeom as rg
    >>> nn = torch.nn
    >>> model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 1)).eval()
    >>> net = rg.from_torch(model, input_shape=(1, 4, 4))
    >>> net
    GraphNetwork(1 x 4 x 4 -> 0:8 -> 1)
    >>> net.neuron_names[:2], net.n_in
    (('0[0, 0, 0]', '0[0, 0, 1]'), 16)
    >>> x = torch.rand(5, 1, 4, 4, dtype=torch.float64)
    >>> bool((net(x.numpy()) == model.double()(x).detach().numpy()).all())
    True
    """
    _check_eval(model)
    # a GraphModule (e.g. torch.export's program.module()) is already a graph
    gm = model if isinstance(model, fx.GraphModule) else _trace(model)
    modules = dict(model.named_modules())
    if input_shape is None:
        input_shape = _infer_input_shape(gm, modules)
    try:
        input_shape = tuple(int(d) for d in np.atleast_1d(input_shape))
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be a tuple of positive integers, got {input_shape!r}") from None
    if not input_shape or min(input_shape) < 1:
        raise ValueError(f"input_shape must be a tuple of positive integers, got {input_shape!r}")
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) > 1 and any(not n.args for n in placeholders[1:]):
        raise TypeError(f"from_torch: the model's forward takes {len(placeholders)} inputs; it must take one")
    conv = _Converter(model, gm, input_shape)
    out = conv.run()
    output = Operator(out)
    return _dense(input_shape, conv.stages, output) or GraphNetwork(input_shape, tuple(conv.stages), output)
