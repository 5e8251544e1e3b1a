"""The primitive affine operations a graph network's operators are made of.

Each primitive is a node of a small expression DAG whose leaves are
:class:`Source` nodes (a tensor of the graph network: its input or the output
of a unit stage). A node maps a batch of per-sample tensors ``(B, *shape)``
(torch float64) to a batch ``(B, *self.shape)`` and is evaluated in one of
four modes:

``"affine"``
    the operation itself;
``"linear"``
    its linear part (every constant term dropped);
``"abs"``
    its linear part with every coefficient replaced by its absolute value;
    chained through a DAG this gives ``|P_k| ... |P_1| h``, an elementwise
    upper bound of ``|A| h`` for ``h >= 0`` (equal for a single primitive);
``"absaffine"``
    ``"abs"`` plus the absolute values of the constant terms.

The tracing of torch models (``torch_graph.py``) builds these nodes; the
operators of ``graph.py`` evaluate them. torch is imported by the caller.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MODES = ("affine", "linear", "abs", "absaffine")
_ABS = ("abs", "absaffine")


def _weight(w, mode):
    return w.abs() if mode in _ABS else w


def _bias(b, mode):
    """The constant term in this mode (None where it is dropped)."""
    if b is None or mode in ("linear", "abs"):
        return None
    return b.abs() if mode == "absaffine" else b


class Node:
    """One primitive; ``inputs`` are nodes, ``shape`` the per-sample output shape."""

    kind = "node"
    dense_friendly = True  # may be expanded into a dense matrix when all shapes are flat

    def __init__(self, inputs=()):
        self.inputs = tuple(inputs)
        self.shape = None  # set by the builder after a trial evaluation

    def run(self, xs, mode):
        raise NotImplementedError


class Source(Node):
    """Leaf: the graph network's tensor number ``tensor`` (0 is the input)."""

    kind = "source"

    def __init__(self, tensor: int, shape: tuple):
        super().__init__()
        self.tensor = tensor
        self.shape = tuple(shape)


class Linear(Node):
    """``F.linear`` on the last axis: ``x @ w.T + b``."""

    kind = "linear"

    def __init__(self, x, w, b):
        super().__init__([x])
        self.w, self.b = w, b

    def run(self, xs, mode):
        return F.linear(xs[0], _weight(self.w, mode), _bias(self.b, mode))


class Conv(Node):
    """A 1D, 2D or 3D convolution with zero padding (other paddings come as :class:`Pad`)."""

    kind = "conv"
    dense_friendly = False
    _FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}

    def __init__(self, x, w, b, stride, padding, dilation, groups):
        super().__init__([x])
        self.w, self.b = w, b
        self.args = (stride, padding, dilation, groups)

    def run(self, xs, mode):
        fn = self._FN[self.w.ndim - 2]
        return fn(xs[0], _weight(self.w, mode), _bias(self.b, mode), *self.args)


class Pad(Node):
    """``F.pad``: constant padding with ``value`` (affine), or reflect/replicate/circular (linear)."""

    kind = "pad"
    dense_friendly = False

    def __init__(self, x, pad, mode, value=0.0):
        super().__init__([x])
        self.pad, self.pad_mode, self.value = tuple(pad), mode, float(value)

    def run(self, xs, mode):
        if self.pad_mode != "constant":
            return F.pad(xs[0], self.pad, mode=self.pad_mode)
        value = {"affine": self.value, "absaffine": abs(self.value)}.get(mode, 0.0)
        return F.pad(xs[0], self.pad, mode="constant", value=value)


class ChannelAffine(Node):
    """``x * scale + shift`` per channel (a BatchNorm in eval mode, folded).

    ``scale`` and ``shift`` are already shaped to broadcast against ``(B, *shape)``.
    """

    kind = "channel_affine"

    def __init__(self, x, scale, shift):
        super().__init__([x])
        self.scale, self.shift = scale, shift

    def run(self, xs, mode):
        y = xs[0] * _weight(self.scale, mode)
        b = _bias(self.shift, mode)
        return y if b is None else y + b


class Rearrange(Node):
    """A bias-free linear map with nonnegative coefficients, the same in every mode.

    Reshapes, permutes, indexing, concatenation, sums, means and average
    pooling: ``fn(list_of_input_tensors, batch_size)`` computes it.
    ``kind`` says which (``"reshape"``, ``"pool"``, ``"cat"``, ...).

    Averages (``kind == "pool"``) are not evaluated by ``fn``, which divides
    each window's sum by its size ``k``: the node is the sum over each window
    times the float64 coefficient ``fl(1 / k)`` (the value ``fn`` gives a
    unit vector), so that its coefficients are float64 numbers the exact
    evaluation can use as they are (:meth:`sum_form`).
    """

    def __init__(self, inputs, fn, kind, label, sums=None):
        super().__init__(inputs)
        self.fn, self.kind, self.label = fn, kind, label
        self.dense_friendly = kind != "pool"
        self._sum = None
        # optional torch function giving the windows' sums (avg_pool2d/3d, mean)
        self._sums, self._c = sums, None

    def sum_form(self):
        """``(idx, w, c)``: output ``i`` is ``c[i] * sum_k w[i, k] * x[idx[i, k]]``
        over the inputs side by side (flattened; ``idx == n_in`` is an empty
        slot). ``w`` is None when every output's coefficients are one number
        ``c[i]`` (all averages): the window's sum times ``fl(1 / k)``; else
        ``w`` holds the coefficients and ``c`` is one. Torch tensors."""
        if self._sum is None:
            n_out, n_in = prod(self.shape), sizes_in(self)
            rows, cols, vals = linear_entries(self, lambda xs: self.fn(list(xs), xs[0].shape[0]))
            order = torch.argsort(rows * (n_in + 1) + cols)
            rows, cols, vals = rows[order], cols[order], vals[order]
            counts = torch.bincount(rows, minlength=n_out)
            K = max(1, int(counts.max()) if counts.numel() else 1)
            slot = torch.arange(rows.numel()) - torch.repeat_interleave(
                torch.cumsum(counts, 0) - counts, counts
            )
            idx = torch.full((n_out, K), n_in, dtype=torch.long)
            w = torch.zeros((n_out, K), dtype=torch.float64)
            idx[rows, slot], w[rows, slot] = cols, vals
            c = torch.ones(n_out, dtype=torch.float64)
            c[rows] = vals
            if bool((c[rows] == vals).all()):  # one coefficient per output
                w = None
            else:
                c = torch.ones(n_out, dtype=torch.float64)
            if self._sums is not None:  # the float evaluation's sums and coefficients are these
                r2, c2, v2 = linear_entries(self, lambda xs: self._sums(list(xs), xs[0].shape[0]))
                o2 = torch.argsort(r2 * (n_in + 1) + c2)
                same = torch.equal(r2[o2], rows) and torch.equal(c2[o2], cols) and bool((v2 == 1).all())
                if not (same and w is None and torch.equal(c, self.coefficients())):
                    raise RuntimeError(f"the window sums of {self.label} do not match torch's {self.label}")
            self._sum = (idx, w, c)
        return self._sum

    def coefficients(self):
        """(n_out,) ``fl(1 / k_i)`` of each window, for a node with torch window
        sums: ``k_i`` is the window's sum of ones over its average of ones
        (rounded to the integer it is up to one rounding)."""
        if self._c is None:
            ones = [torch.ones(1, *i.shape, dtype=torch.float64) for i in self.inputs]
            with torch.no_grad():
                n = self._sums(ones, 1).reshape(-1)
                avg = self.fn(ones, 1).reshape(-1)
            k = torch.where(n > 0, torch.round(n / torch.where(n > 0, avg, 1.0)), 1.0)
            self._c = 1.0 / k
        return self._c

    def run(self, xs, mode):
        if self.kind != "pool" or self.shape is None:
            # before the builder has checked the node (shape None), torch's own function runs
            return self.fn(list(xs), xs[0].shape[0])
        B = xs[0].shape[0]
        if self._sums is not None:  # torch's own window sums times fl(1 / k)
            return (self._sums(list(xs), B).reshape(B, -1) * self.coefficients()).reshape(B, *self.shape)
        idx, w, c = self.sum_form()
        x = torch.cat([v.reshape(B, -1) for v in xs] + [xs[0].new_zeros(B, 1)], dim=1)
        g = x[:, idx]  # (B, n_out, K): as many entries as the map has coefficients
        y = (g if w is None else g * w).sum(dim=2)
        y *= c
        return y.reshape(B, *self.shape)


class Add(Node):
    """``a + alpha * b`` of two input-dependent tensors (residual connections)."""

    kind = "add"

    def __init__(self, a, b, alpha=1.0):
        super().__init__([a, b])
        self.alpha = float(alpha)

    def run(self, xs, mode):
        alpha = abs(self.alpha) if mode in _ABS else self.alpha
        return xs[0] + xs[1] if alpha == 1.0 else torch.add(xs[0], xs[1], alpha=alpha)


class Scale(Node):
    """``x * c`` (``divide=False``) or ``x * fl(1 / c)`` (``divide=True``: a
    division by the constant ``c``), ``c`` a constant tensor."""

    kind = "scale"

    def __init__(self, x, c, divide=False):
        super().__init__([x])
        self.c, self.divide = c, divide

    def run(self, xs, mode):
        return xs[0] * _weight(self.coefficient, mode)

    @property
    def coefficient(self):
        """The float64 factor: ``c``, or ``fl(1 / c)`` when dividing (the
        node multiplies by it, so its coefficients are float64 numbers)."""
        return 1.0 / self.c if self.divide else self.c


class Shift(Node):
    """``x + c``, ``c`` a constant tensor (dropped in the linear modes)."""

    kind = "shift"

    def __init__(self, x, c):
        super().__init__([x])
        self.c = c

    def run(self, xs, mode):
        c = _bias(self.c, mode)
        return xs[0] if c is None else xs[0] + c


class Neg(Node):
    """``-x`` (the identity in the absolute modes)."""

    kind = "neg"

    def run(self, xs, mode):
        return xs[0] if mode in _ABS else -xs[0]


class MatmulConst(Node):
    """``x @ w`` with a constant matrix ``w`` (acts on the last axis)."""

    kind = "matmul"

    def __init__(self, x, w):
        super().__init__([x])
        self.w = w

    def run(self, xs, mode):
        return torch.matmul(xs[0], _weight(self.w, mode))


_BIJECTIVE = {
    "view", "reshape", "flatten", "unflatten", "Flatten", "Unflatten", "permute", "transpose",
    "swapaxes", "movedim", "contiguous", "unsqueeze", "squeeze",
}  # fmt: skip


def injective(node: Node) -> bool:
    """True when the node's linear part copies each input entry to at most one
    output entry (scaled): no duplicates, no sums."""
    if isinstance(node, Source):
        return True
    same = tuple(node.shape) == tuple(node.inputs[0].shape)
    if isinstance(node, (Scale, Shift, ChannelAffine, Neg)):
        return same
    if isinstance(node, Pad):
        return node.pad_mode == "constant"
    return isinstance(node, Rearrange) and node.label in _BIJECTIVE


def prod(shape) -> int:
    out = 1
    for d in shape:
        out *= int(d)
    return out


def sizes_in(node: Node) -> int:
    """Number of entries of the node's inputs side by side."""
    return sum(prod(i.shape) for i in node.inputs)


def linear_entries(node: Node, run=None, block_entries: int = 1 << 22):
    """``(rows, cols, vals)``: the nonzero coefficients of the node's linear part
    (columns index its inputs side by side, flattened), found by applying it
    to blocks of unit vectors: each is the float64 number the node's own
    evaluation multiplies by. Costs ``n_in * n_out`` operations: for the
    primitives without index structure (pooling, unusual calls). ``run(xs)``
    evaluates the linear part (default: the node's own ``"linear"`` mode)."""
    run = run or (lambda xs: node.run(xs, "linear"))
    sizes = [prod(i.shape) for i in node.inputs]
    n_in, n_out = sum(sizes), prod(node.shape)
    step = max(1, block_entries // max(n_in, n_out, 1))
    rows, cols, vals = [], [], []
    for start in range(0, n_in, step):
        stop = min(n_in, start + step)
        E = torch.zeros((stop - start, n_in), dtype=torch.float64)
        E[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
        xs, at = [], 0
        for i, n in zip(node.inputs, sizes):
            xs.append(E[:, at : at + n].reshape(stop - start, *i.shape))
            at += n
        with torch.no_grad():
            y = run(xs).reshape(stop - start, n_out)
        j, r = torch.nonzero(y, as_tuple=True)
        rows.append(r)
        cols.append(j + start)
        vals.append(y[j, r])
    if not rows:
        z = torch.zeros(0, dtype=torch.long)
        return z, z, torch.zeros(0, dtype=torch.float64)
    return torch.cat(rows), torch.cat(cols), torch.cat(vals)


def topological(root: Node) -> list:
    """The nodes of the DAG under ``root``, each after its inputs (iterative DFS)."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((i, False) for i in reversed(node.inputs) if id(i) not in seen)
    return order


def evaluate(order: list, leaves: dict, mode: str):
    """Evaluate a topologically ordered DAG; ``leaves`` maps tensor ids to batches.

    Intermediate results are dropped after their last use, so the memory is a
    few batches of the widest tensor in the DAG.
    """
    last = {}
    for i, node in enumerate(order):
        for x in node.inputs:
            last[id(x)] = i
    values = {}
    for i, node in enumerate(order):
        if isinstance(node, Source):
            values[id(node)] = leaves[node.tensor]
        else:
            values[id(node)] = node.run([values[id(x)] for x in node.inputs], mode)
        for x in node.inputs:
            if last[id(x)] == i:
                values.pop(id(x), None)
    return values[id(order[-1])]
