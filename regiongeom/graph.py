"""Graph networks: affine operators and piecewise-linear unit stages.

A :class:`GraphNetwork` is what :func:`regiongeom.from_torch` returns for a
model that is not a plain chain of dense layers (convolutions, residual
connections, concatenation of branches, per-channel PReLU, max pooling and
maxout: stages of max units, see "Max stages" below). It is evaluated
exactly in float64 and never expands a convolution into a dense matrix.

Tensors
-------
The network has ``len(stages) + 1`` tensors, numbered: tensor ``0`` is the
input (``n_in`` values per sample, the flattened ``input_shape``), tensor
``s + 1`` is the output of unit stage ``s`` (its post-activations,
``stages[s].n`` values per sample). Every tensor is handled as a batch of
flat rows ``(V, size)`` of float64, in C order of its shape
(``stages[s].shape``, e.g. ``(C, H, W)``).

Stages (the interface an engine is written against)
---------------------------------------------------
``net.stages`` is a tuple of :class:`Stage` in topological order. Stage ``s``:

``op = stage.operator``
    The affine operator giving the stage's preactivations from earlier
    tensors: ``op.sources`` is the tuple of tensor ids it reads (all ``<= s``),
    ``op.source_sizes`` their sizes, ``op.n_in == sum(op.source_sizes)``,
    ``op.n_out == stage.n``. With ``A`` its ``(n_out, n_in)`` linear part and
    ``b`` its ``(n_out,)`` constant, every operator has these methods, each
    taking ``X``, either one ``(V, op.n_in)`` array (the sources' rows side by
    side, in the order of ``op.sources``) or a sequence of ``(V, size)``
    arrays (one per source), and returning a new ``(V, op.n_out)``
    C-contiguous float64 array, row by row (``A X`` below means ``X @ A.T``):

    - ``op(X)``: the affine map ``A X + b`` (the preactivations);
    - ``op.linear(X)``: its linear part ``A X`` (directions, gradients);
    - ``op.absolute(X)``: ``|A| X`` evaluated as the operator is evaluated,
      primitive by primitive with absolute coefficients, so an elementwise
      upper bound of ``|A| X`` for ``X >= 0``, equal to it when
      ``op.abs_exact`` (a chain with one dense map or convolution, e.g. a conv
      with its folded BatchNorm, then reshapes): the magnitude that bounds the
      rounding error of ``op(h)`` when called with ``X = |h|``;
      ``op.absolute(X, with_bias=True)`` adds the absolute constant terms;
    - ``op.bias``: ``(n_out,)`` the constant ``b = op(0)``;
    - ``op.row_l1``: ``(n_out,)`` exact l1 norms of the rows of ``A``
      (``sum_j |A_ij|``), computed once on first use by applying ``A`` to
      blocks of unit vectors;
    - ``op.matrix()``: the dense ``(n_out, n_in)`` matrix ``A`` (for tests
      and small operators only).

    Memory: applying an operator to ``V`` rows needs a few ``(V, widest
    tensor inside the operator)`` arrays, never more.

``stage.breakpoints`` ``(K,)``, ``stage.slopes`` and ``stage.intercepts`` ``(n, K + 1)``
    The unit of every neuron: on piece ``k`` (``breakpoints[k-1] <= z <
    breakpoints[k]``, right-continuous as in :meth:`Activation.piece`) neuron
    ``j`` outputs ``slopes[j, k] * z + intercepts[j, k]``. The breakpoints are
    shared by the stage's neurons; slopes and intercepts are per neuron (one
    PReLU slope per channel). ``stage.activation`` is the shared
    :class:`~regiongeom.Activation` when all neurons have the same unit, else
    None. A per-channel PReLU slope equal to 1 makes that neuron affine
    (its two slopes are equal); its piece index still changes at 0.
    ``stage.piece(z)`` and ``stage.apply(z)`` evaluate these on ``(V, n)``.

Max stages
    A stage with ``stage.windows`` (not None) is a stage of *max units*
    (MaxPool, ``max``/``amax`` over dimensions, maxout). Its operator gives a
    preactivation vector ``z`` of ``op.n_out == stage.n_pre`` entries (for a
    max pool the gathered or identity view of the pooled tensor, for maxout a
    Linear), and ``windows`` ``(stage.n, k)`` int64 holds indices into ``z``,
    ``-1`` for an absent entry (a max pool's padding, which never wins);
    windows may overlap and repeat an index. Unit ``u`` outputs ``max_p
    z[windows[u, p]]`` and its *piece* (``stage.piece``, ``net.patterns``) is
    the winning position ``p``, ties to the lowest position. ``breakpoints``,
    ``slopes``, ``intercepts`` and ``activation`` are None. ``stage.is_max``
    says which kind a stage is; for an elementwise stage ``windows`` is None
    and ``n_pre == n``.

``stage.offset``, ``stage.n``
    The stage's neurons are ``offset .. offset + n - 1`` in ``net.patterns``
    and ``net.neuron_names``.

``stage.carry``
    Tensor ids ``<= s`` (not the stage's own output ``s + 1``) whose values
    are read by a later stage or by the output: what must be kept alive past
    this stage (residual streams). Everything else older may be dropped.

``net.output``
    The affine operator (same interface) from its ``sources`` to the network
    output ``(V, n_out)``; it has no units.

Coefficients
------------
The network's coefficients are float64 numbers: the weights and biases as
stored, BatchNorm folded into float64 scales and shifts, ``fl(1 / k)`` for an
average over ``k`` values (evaluated as the window's sum times ``fl(1 / k)``,
not as a division) and ``fl(1 / c)`` for a division by a constant ``c``
(evaluated as a multiplication). The float evaluation rounds each operation
of this network; :class:`regiongeom._exact_graph.ExactGraph` evaluates the
same network without rounding. The output may therefore differ from torch's
own (which divides) by rounding.

Restriction
-----------
``net.restrict(plane_or_line)`` returns a graph network whose input is the
slice's 2 (or 1) coordinates. Every operator that read the input becomes a
:class:`LiftedOperator` (same interface): ``uv @ M.T + const +
rest.linear(others)`` with the dense ``M = A_input @ basis`` (``(n, 2)``),
``const = op(origin, zeros for the other sources)`` and ``rest`` the original
operator (None when the input was its only source). The first convolution
becomes a dense 2 -> n map; the operators after it are the same objects, so
convolutions stay convolutions. The float64 ``M`` and ``const`` (computed,
hence rounded, once) are the restricted network's coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ._graph_operators import LiftedOperator, Operator, _fresh
from .activations import Activation

__all__ = ["GraphNetwork", "Stage", "Operator", "LiftedOperator"]

_RELU = Activation.relu()
@dataclass(frozen=True, eq=False)
class Stage:
    """One unit stage of a :class:`GraphNetwork` (see the module docstring)."""

    operator: object
    breakpoints: np.ndarray
    slopes: np.ndarray
    intercepts: np.ndarray
    offset: int
    shape: tuple
    name: str
    activation: object = None
    carry: tuple = ()
    windows: np.ndarray | None = None

    def __post_init__(self):
        if self.windows is not None:
            object.__setattr__(self, "windows", _check_windows(self.windows, self.operator.n_out, self.n))

    @property
    def n(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def is_max(self) -> bool:
        """True for a stage of max units (see "Max stages" in the module docstring)."""
        return self.windows is not None

    @property
    def n_pre(self) -> int:
        """Number of preactivations (``operator.n_out``; ``n`` unless max units)."""
        return int(self.operator.n_out)

    @property
    def n_pieces(self) -> int:
        """Largest number of pieces of a unit: the window size of max units."""
        return self.windows.shape[1] if self.is_max else len(self.breakpoints) + 1

    def _gathered(self, z: np.ndarray) -> np.ndarray:
        """(V, n, k) window entries of ``z`` (V, n_pre), ``-inf`` where absent."""
        return np.stack([self._column(z, p) for p in range(self.windows.shape[1])], axis=2)

    def _column(self, z: np.ndarray, p: int) -> np.ndarray:
        """(V, n) entry ``p`` of every window, ``-inf`` where absent."""
        w = self.windows[:, p]
        col = z[:, np.maximum(w, 0)]
        if w.min() < 0:
            col[:, w < 0] = -np.inf
        return col

    def _max(self, z: np.ndarray, want_piece: bool):
        """(V, n) maxima and, if asked, the first winning positions; memory
        of a few (V, n) arrays whatever the window size."""
        best = self._column(z, 0)
        arg = np.zeros(best.shape, np.int16) if want_piece else None
        for p in range(1, self.windows.shape[1]):
            col = self._column(z, p)
            if want_piece:
                arg[col > best] = p  # strictly larger: ties stay at the lowest position
            np.maximum(best, col, out=best)
        return best, arg

    def piece(self, z: np.ndarray) -> np.ndarray:
        """(V, n) index of each neuron's linear piece at preactivations ``z``
        (the number of breakpoints ``<= z``, as ``Activation.piece``; for max
        units the winning position in the window, ties to the lowest). int8,
        or int16 for max windows of more than 127 entries."""
        if self.is_max:
            dtype = np.int8 if self.windows.shape[1] <= 127 else np.int16
            return self._max(z, True)[1].astype(dtype, copy=False)
        k = np.zeros(z.shape, np.int8)
        for b in self.breakpoints:
            k += z >= b
        return k

    def apply(self, z: np.ndarray) -> np.ndarray:
        """(V, n) post-activations of preactivations ``z`` of shape (V, n).

        Each value is ``slopes[j, k] * z + intercepts[j, k]`` on its piece
        ``k``, computed with the same two operations as :class:`Activation`.
        """
        if self.is_max:
            return self._max(z, False)[0]
        shared = self.activation is not None
        if shared and self.activation == _RELU:
            return np.maximum(z, 0.0)
        sl = self.activation.slopes if shared else self.slopes.T
        ic = self.activation.intercepts if shared else self.intercepts.T
        out = z * sl[0]
        out += ic[0]
        tmp = np.empty_like(out)
        for k, b in enumerate(self.breakpoints):
            np.multiply(z, sl[k + 1], out=tmp)
            tmp += ic[k + 1]
            np.copyto(out, tmp, where=z >= b)
        return out


def _check_windows(windows, n_pre: int, n: int) -> np.ndarray:
    """Validated read-only ``(n, k)`` int64 windows of a max stage."""
    w = np.asarray(windows)
    if w.ndim != 2 or w.shape[0] != n or w.shape[1] < 1 or not np.issubdtype(w.dtype, np.integer):
        raise ValueError(
            f"max-unit windows must be an (n_units={n}, k) integer array, got {w.dtype} {w.shape}"
        )
    if w.size and (w.min() < -1 or w.max() >= n_pre):
        raise ValueError(
            f"max-unit windows must index the {n_pre} preactivations (or be -1 for absent entries)"
        )
    if (w < 0).all(axis=1).any():
        raise ValueError(f"max unit {int(np.flatnonzero((w < 0).all(axis=1))[0])} has an empty window")
    w = np.array(w, dtype=np.int64)
    w.setflags(write=False)
    return w


def _with_carry(stages, output):
    """Set each stage's ``carry``: older tensors still read after it."""
    readers = [set(s.operator.sources) for s in stages] + [set(output.sources)]
    out = []
    for s, stage in enumerate(stages):
        later = set().union(*readers[s + 1 :])
        carry = tuple(sorted(t for t in later if t <= s))
        out.append(replace(stage, carry=carry))
    return tuple(out)


def _index_names(prefix: str, shape: tuple) -> list:
    if len(shape) == 1:
        return [f"{prefix}[{i}]" for i in range(shape[0])]
    idx = np.indices(shape).reshape(len(shape), -1).T
    return [f"{prefix}[{', '.join(map(str, row))}]" for row in idx.tolist()]


@dataclass(frozen=True, eq=False)
class GraphNetwork:
    """A piecewise-linear network as affine operators and unit stages (float64).

    Built by :func:`regiongeom.from_torch`; the interface is described in the
    module docstring of :mod:`regiongeom.graph`.

    Attributes
    ----------
    input_shape : tuple
        One input's shape without the batch axis, e.g. ``(1, 28, 28)``.
    stages : tuple of Stage
    output : operator
        The affine map to the output, ``(V, ...) -> (V, n_out)``.
    """

    input_shape: tuple
    stages: tuple
    output: object
    _names: list = field(default=None, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "stages", _with_carry(self.stages, self.output))

    @property
    def n_in(self) -> int:
        return int(np.prod(self.input_shape, dtype=np.int64))

    @property
    def n_out(self) -> int:
        return self.output.n_out

    @property
    def layer_sizes(self) -> tuple:
        """Number of neurons of each stage."""
        return tuple(s.n for s in self.stages)

    @property
    def n_neurons(self) -> int:
        return int(sum(self.layer_sizes))

    @property
    def n_layers(self) -> int:
        """Number of unit stages: a graph network's layers for ``by_layer``
        shares and per-layer locus volumes (the output has no units)."""
        return len(self.stages)

    @property
    def neuron_offsets(self) -> np.ndarray:
        """(n_stages + 1,) first neuron index of each stage."""
        return np.concatenate([[0], np.cumsum(self.layer_sizes)]).astype(np.int64)

    @property
    def neuron_layer(self) -> np.ndarray:
        """(n_neurons,) index of the stage each neuron belongs to."""
        return np.repeat(np.arange(len(self.stages)), self.layer_sizes)

    @property
    def neuron_names(self) -> tuple:
        """(n_neurons,) names: the layer's module path and the neuron's index."""
        if self._names is None:
            names = []
            for s in self.stages:
                names.extend(_index_names(s.name, s.shape))
            object.__setattr__(self, "_names", tuple(names))
        return self._names

    def _points(self, x) -> np.ndarray:
        from ._validate import as_points
        from .slices import _as_inputs

        return as_points(x, 1, "x") if self.n_in == 1 else _as_inputs(x, self.n_in)

    def forward(self, x):
        """Output and preactivations: ``(P, n_out)`` and a list of ``(P, n_s)`` per stage."""
        tensors = {0: np.asarray(x, dtype=np.float64)}
        pre = []
        for s, stage in enumerate(self.stages):
            z = stage.operator([tensors[t] for t in stage.operator.sources])
            pre.append(z)
            tensors[s + 1] = stage.apply(z)
            for t in [t for t in tensors if t <= s and t not in stage.carry]:
                del tensors[t]
        return self.output([tensors[t] for t in self.output.sources]), pre

    def __call__(self, x) -> np.ndarray:
        """Evaluate: ``(P, n_in)`` or ``(P, *input_shape)`` -> ``(P, n_out)``."""
        return self.forward(self._points(x))[0]

    def patterns(self, x) -> np.ndarray:
        """(P, n_neurons) int8 index of the linear piece each neuron is on at x."""
        x = self._points(x)
        _, pre = self.forward(x)
        cols = [s.piece(z) for s, z in zip(self.stages, pre)]
        dtype = np.result_type(np.int8, *[c.dtype for c in cols])
        return (
            np.concatenate(cols, axis=1).astype(dtype, copy=False) if cols else np.zeros((len(x), 0), np.int8)
        )

    @property
    def has_max_units(self) -> bool:
        """True when a stage is made of max units (MaxPool, max/amax, maxout)."""
        return any(s.is_max for s in self.stages)

    def restrict(self, slice) -> GraphNetwork:
        """The exact network on a :class:`~regiongeom.Plane` or :class:`~regiongeom.Line`.

        Returns a graph network with 2 (or 1) inputs, ``net2(uv) ==
        net(slice.lift(uv))``, the same neurons in the same order with the same
        names. Operators reading the input become :class:`LiftedOperator`.
        """
        from .slices import check_slice

        check_slice(slice, self.n_in)

        def lift(op):
            return LiftedOperator(op, slice.origin, slice.basis) if 0 in op.sources else op

        stages = tuple(replace(s, operator=lift(s.operator)) for s in self.stages)
        return GraphNetwork((slice.dim,), stages, lift(self.output), self._names)

    @property
    def noise_sizes(self) -> tuple:
        """Entries of the bias noise of each stage (see :meth:`with_bias_noise`):
        ``n`` for elementwise units; for max units ``n_pre`` when the stage's
        operator makes fresh preactivations (it has a dense map or a
        convolution, with its bias: maxout, a max pool right after a
        convolution), else 0 (a MaxPool after a ReLU has no bias of its own)."""
        return tuple((s.n_pre if _fresh(s.operator) else 0) if s.is_max else s.n for s in self.stages)

    @property
    def n_noise(self) -> int:
        """Length of a bias-noise row: ``n_neurons`` without max units."""
        return int(sum(self.noise_sizes))

    def with_bias_noise(self, noise) -> GraphNetwork:
        """The same network with ``noise`` ``(n_noise,)`` added to the
        preactivations (their biases): the noisy network of the local
        complexity. Without max units ``n_noise == n_neurons`` and entry ``j``
        goes to neuron ``j``; a stage of max units takes ``noise_sizes[s]``
        entries, one per preactivation its windows read (none when its
        operator has no bias of its own), in stage order. Each operator gets
        a :class:`~regiongeom._graph_ops.Shift` after it (a lifted operator:
        its constant plus the noise, rounded once); the linear parts, and
        their cached l1 norms, are shared."""
        import copy

        import torch

        from ._graph_ops import Shift

        noise = np.asarray(noise, dtype=np.float64).reshape(-1)
        sizes = self.noise_sizes
        if noise.shape != (sum(sizes),):
            what = "one entry per neuron" if not self.has_max_units else "net.n_noise entries"
            raise ValueError(f"noise must have {what} ({sum(sizes)}), got {noise.shape}")
        stages = []
        at = 0
        for st, size in zip(self.stages, sizes):
            op, c = st.operator, noise[at : at + size]
            at += size
            if size == 0:
                stages.append(st)
                continue
            if isinstance(op, LiftedOperator):
                new = copy.copy(op)
                new.const = op.const + c
            else:
                node = Shift(op.root, torch.from_numpy(c.reshape(op.shape).copy()))
                node.shape = tuple(op.root.shape)
                new = Operator(node)
            new._cache = {"row_l1": op.row_l1}
            stages.append(replace(st, operator=new))
        return GraphNetwork(self.input_shape, tuple(stages), self.output, self._names)

    def __repr__(self):
        parts = [" x ".join(map(str, self.input_shape))]
        parts += [f"{s.name}:{s.n}" for s in self.stages]
        return f"GraphNetwork({' -> '.join(parts)} -> {self.n_out})"
