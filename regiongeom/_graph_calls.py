"""Picklable functions run by the :class:`~regiongeom._graph_ops.Rearrange`
nodes of converted networks, and the batch-size sentinel.

A converted graph network must survive ``pickle`` (``lc_density(...,
n_jobs > 1)`` sends it to worker processes), so the conversion stores no
closures: a reshape, permute, concatenation, mean or average pool becomes a
:class:`TorchCall` (the traced torch function or method with its constant
arguments, input-dependent arguments replaced by :data:`SLOT`), a call of a
pooling or flatten module a :class:`ModuleCall`. Each is called as
``fn(xs, B)`` with the node's input batches ``xs`` and the batch size ``B``.

torch.export's operators (``torch.ops.aten.view.default`` ...) cannot be
pickled themselves; they are pickled by name and looked up again on loading.
"""

from __future__ import annotations

import torch

__all__ = ["BATCH", "SLOT", "TorchCall", "ModuleCall"]


class _Sentinel:
    """A named singleton that pickles (and copies) as itself."""

    def __init__(self, name, text):
        self._name, self._text = name, text

    def __repr__(self):
        return self._text

    def __reduce__(self):
        return self._name  # the module-level global of that name: the same object


BATCH = _Sentinel("BATCH", "<batch size>")  # the batch size in traced shapes (x.size(0))
SLOT = _Sentinel("SLOT", "<input>")  # an input-dependent argument of a TorchCall


def _map(obj, fn):
    """``fn`` over the leaves of nested lists, tuples, dicts and slices; fx's
    immutable lists and dicts become plain ones."""
    if isinstance(obj, tuple):
        items = [_map(o, fn) for o in obj]
        return type(obj)(items) if type(obj) in (tuple, torch.Size) else tuple(items)
    if isinstance(obj, list):
        return [_map(o, fn) for o in obj]
    if isinstance(obj, dict):
        return {k: _map(v, fn) for k, v in obj.items()}
    if isinstance(obj, slice):
        return slice(_map(obj.start, fn), _map(obj.stop, fn), _map(obj.step, fn))
    return fn(obj)


def _op_name(target):
    """``(namespace, name, overload)`` of a torch operator overload, else None."""
    if type(target).__name__ == "OpOverload" and type(target).__module__ == "torch._ops":
        return (target.namespace, target._schema.name.split("::")[-1], target._overloadname)
    return None


class TorchCall:
    """``target(*args, **kwargs)`` (or the method ``args[0].target(...)``) with
    the :data:`SLOT` leaves of ``args``/``kwargs`` filled by the input batches
    in order and :data:`BATCH` by the batch size.

    ``variant`` gives the same windows summed instead of averaged:
    ``"sum_mean"`` calls ``sum`` for a ``mean``, ``"sum_pool"`` calls an
    ``avg_pool2d/3d`` with ``divisor_override=1``.
    """

    def __init__(self, target, method, args, kwargs, is_input, variant=None):
        self.target, self.method, self.variant = target, bool(method), variant
        self.args, self.kwargs = _map((tuple(args), dict(kwargs)), lambda v: SLOT if is_input(v) else v)

    def __call__(self, xs, B):
        it = iter(xs)
        a, k = _map((self.args, self.kwargs), lambda v: next(it) if v is SLOT else (B if v is BATCH else v))
        if self.variant == "sum_mean":
            return a[0].sum(*a[1:], **k) if self.method else torch.sum(*a, **k)
        if self.variant == "sum_pool":
            return self.target(*a[:6], **{**k, "divisor_override": 1})
        return getattr(a[0], self.target)(*a[1:], **k) if self.method else self.target(*a, **k)

    def summed(self, variant):
        """The same call with another ``variant``."""
        other = object.__new__(TorchCall)
        other.__dict__.update(self.__dict__)
        other.variant = variant
        return other

    def __getstate__(self):
        state = dict(self.__dict__)
        name = _op_name(self.target)
        if name is not None:
            state["target"] = ("torch.ops",) + name
        return state

    def __setstate__(self, state):
        t = state["target"]
        if isinstance(t, tuple) and t and t[0] == "torch.ops":
            _, ns, name, overload = t
            state["target"] = getattr(getattr(getattr(torch.ops, ns), name), overload)
        self.__dict__.update(state)

    def __repr__(self):
        return f"TorchCall({getattr(self.target, '__name__', self.target)})"


class ModuleCall:
    """``module(xs[0])`` of a parameter-free torch module (pooling, Flatten,
    Unflatten); ``pool`` (``F.avg_pool2d``/``3d``), when given, makes it the
    module's window sums (``divisor_override=1``)."""

    def __init__(self, module, pool=None):
        self.module, self.pool = module, pool

    def __call__(self, xs, B):
        if self.pool is None:
            return self.module(xs[0])
        m = self.module
        return self.pool(xs[0], m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad,
                         divisor_override=1)  # fmt: skip

    def __repr__(self):
        return f"ModuleCall({type(self.module).__name__}{', sums' if self.pool is not None else ''})"
