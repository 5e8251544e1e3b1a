"""Networks: ``Network`` and ``from_torch`` (activations: :mod:`regiongeom.activations`).

A network is a chain of affine layers ``v = W @ h + b``, each followed by an
activation (an :class:`~regiongeom.activations.Activation`) or by nothing.

Conventions follow torch: ``weights[i]`` has shape ``(n_i, n_{i-1})``. The
local-complexity paper writes ``A_i(x) = W_i x - beta_i``, so ``beta = -b``.
A *neuron* is a unit of a layer that has an activation; neurons are numbered
layer by layer from 0 to ``n_neurons - 1``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .activations import Activation, absolute, as_activation, hardtanh, leaky_relu, relu

__all__ = [
    "Activation",
    "Network",
    "from_torch",
    "relu",
    "leaky_relu",
    "hardtanh",
    "absolute",
]


@dataclass(frozen=True, eq=False)
class Network:
    """A piecewise-linear multilayer network (frozen, float64).

    Attributes
    ----------
    weights : tuple of (n_i, n_{i-1}) ndarray of float64
    biases : tuple of (n_i,) ndarray of float64
    activations : tuple of Activation or None
        ``None`` means the layer is affine (it has no neurons).

    Examples
    --------
    >>> net = Network.from_arrays([[[1.0]], [[2.0]]], [[0.0], [1.0]], ["relu", None])
    >>> net(np.array([-1.0, 3.0]))
    array([[1.],
           [7.]])
    """

    weights: tuple
    biases: tuple
    activations: tuple
    names: tuple = field(default=None, repr=False)

    @classmethod
    def from_arrays(cls, weights: Sequence, biases: Sequence, activations: Sequence) -> Network:
        """Build a network from per-layer weights, biases and activations."""
        from ._validate import check_layers

        ws, bs, acts = check_layers(weights, biases, [as_activation(a) for a in activations])
        return cls(tuple(ws), tuple(bs), tuple(acts))

    @staticmethod
    def maxout(weights: Sequence, biases: Sequence, k):
        """A maxout network from arrays (Goodfellow et al. 2013): a
        :class:`~regiongeom.GraphNetwork` with one stage of max units per
        maxout layer (evaluated with torch, which must be installed).

        Parameters
        ----------
        weights, biases : sequences of ``(n_i * k_i, n_{i-1})`` and ``(n_i * k_i,)`` arrays
            One pair per maxout layer, then one for the affine output layer.
            Unit ``u`` of layer ``i`` outputs the largest of rows ``u * k_i ..
            u * k_i + k_i - 1`` of ``W_i h + b_i`` (torch's
            ``z.view(..., n_i, k_i).amax(-1)``); its piece in ``patterns`` is
            the winning row's position ``0 .. k_i - 1``, ties to the lowest.
        k : int or sequence of int
            Pieces per unit, one number or one per maxout layer.

        Returns
        -------
        GraphNetwork
            Neurons named ``"layer0[3]"`` as for other networks.

        Examples
        --------
        >>> net = Network.maxout([[[1.0], [-1.0]], [[1.0]]], [[0.0, 0.0], [0.0]], k=2)  # |x|
        >>> net(np.array([-3.0, 2.0])).ravel().tolist(), net.patterns(np.array([-3.0, 2.0])).ravel().tolist()
        ([3.0, 2.0], [1, 0])
        """
        from ._maxout import maxout_network

        return maxout_network(weights, biases, k)

    # -- shape ------------------------------------------------------------
    @property
    def n_in(self) -> int:
        return self.weights[0].shape[1]

    @property
    def n_out(self) -> int:
        return self.weights[-1].shape[0]

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    @property
    def layer_sizes(self) -> tuple:
        """Number of neurons in each layer (0 for a layer without activation)."""
        return tuple(w.shape[0] if a is not None else 0 for w, a in zip(self.weights, self.activations))

    @property
    def n_neurons(self) -> int:
        return int(sum(self.layer_sizes))

    @property
    def neuron_names(self) -> tuple:
        """(n_neurons,) readable neuron names.

        :func:`from_torch` names each neuron by the module path of the layer
        computing it and its index, e.g. ``"fc1[3]"``; other networks get
        ``"layer0[3]"`` (layer number and index).
        """
        if self.names is not None:
            return self.names
        return tuple(f"layer{i}[{j}]" for i, n in enumerate(self.layer_sizes) for j in range(n))

    @property
    def neuron_layer(self) -> np.ndarray:
        """(n_neurons,) index of the layer each neuron belongs to."""
        return np.repeat(np.arange(self.n_layers), self.layer_sizes)

    @property
    def neuron_offsets(self) -> np.ndarray:
        """(n_layers + 1,) first neuron index of each layer (cumulative sizes)."""
        return np.concatenate([[0], np.cumsum(self.layer_sizes)]).astype(np.int64)

    # -- evaluation -------------------------------------------------------
    def forward(self, x: np.ndarray):
        """Forward pass returning the output and the list of preactivations.

        Returns
        -------
        out : (P, n_out) ndarray
        pre : list of (P, n_i) ndarray, one per layer (``W @ h + b``)
        """
        h = np.asarray(x, dtype=np.float64)
        pre = []
        for w, b, a in zip(self.weights, self.biases, self.activations):
            z = h @ w.T + b
            pre.append(z)
            h = a(z) if a is not None else z
        return h, pre

    def __call__(self, x) -> np.ndarray:
        """Evaluate the network: ``(P, n_in) -> (P, n_out)``; 1D input may be flat."""
        from ._validate import as_points

        return self.forward(as_points(x, self.n_in, "x"))[0]

    def patterns(self, x) -> np.ndarray:
        """(P, n_neurons) int8 index of the linear piece each neuron is on at x."""
        from ._validate import as_points

        _, pre = self.forward(as_points(x, self.n_in, "x"))
        cols = [a.piece(z) for z, a in zip(pre, self.activations) if a is not None]
        return np.concatenate(cols, axis=1) if cols else np.zeros((len(pre[0]), 0), np.int8)

    def restrict(self, slice) -> Network:
        """The exact network on a :class:`~regiongeom.Plane` or :class:`~regiongeom.Line`.

        Parameters
        ----------
        slice : Plane or Line
            A slice of this network's input space (``slice.n_in == self.n_in``).

        Returns
        -------
        Network
            A 2-input (plane) or 1-input (line) network with
            ``net2(uv) == net(slice.lift(uv))``: the first layer becomes
            ``W0 @ basis`` with bias ``b0 + W0 @ origin``, the other layers are
            unchanged, so the neurons are the same, in the same order.
        """
        from .slices import check_slice

        check_slice(slice, self.n_in)
        w0, b0 = self.weights[0], self.biases[0]
        w, b = w0 @ slice.basis, b0 + w0 @ slice.origin
        w.setflags(write=False)
        b.setflags(write=False)
        # replace() keeps every other field (the activations, and names where a network has them)
        return dataclasses.replace(self, weights=(w, *self.weights[1:]), biases=(b, *self.biases[1:]))

    def with_biases(self, biases: Sequence) -> Network:
        """The same network with other biases (shapes must match); the neuron names stay."""
        return dataclasses.replace(
            Network.from_arrays(self.weights, biases, self.activations), names=self.names
        )

    # -- persistence ------------------------------------------------------
    def save(self, path) -> None:
        """Write the network to an ``.npz`` file (see :meth:`load`)."""
        arrays = {}
        for i, (w, b, a) in enumerate(zip(self.weights, self.biases, self.activations)):
            arrays[f"weight_{i}"] = w
            arrays[f"bias_{i}"] = b
            if a is not None:
                arrays[f"act_breakpoints_{i}"] = a.breakpoints
                arrays[f"act_slopes_{i}"] = a.slopes
                arrays[f"act_value_{i}"] = np.float64(a.value_at_first)
                arrays[f"act_name_{i}"] = np.str_(a.name)
        if self.names is not None:
            arrays["neuron_names"] = np.array(self.names, dtype=np.str_)
        np.savez(path, n_layers=len(self.weights), **arrays)

    @classmethod
    def load(cls, path) -> Network:
        """Read a network written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as f:
            if "n_layers" not in f:
                raise ValueError(f"{path}: not a regiongeom network file (no 'n_layers')")
            ws, bs, acts = [], [], []
            for i in range(int(f["n_layers"])):
                ws.append(f[f"weight_{i}"])
                bs.append(f[f"bias_{i}"])
                if f"act_slopes_{i}" in f:
                    acts.append(
                        Activation(
                            str(f[f"act_name_{i}"]),
                            f[f"act_breakpoints_{i}"],
                            f[f"act_slopes_{i}"],
                            float(f[f"act_value_{i}"]),
                        )
                    )
                else:
                    acts.append(None)
            names = tuple(str(n) for n in f["neuron_names"]) if "neuron_names" in f else None
        net = cls.from_arrays(ws, bs, acts)
        return net if names is None else dataclasses.replace(net, names=names)

    def __repr__(self):
        parts = [str(self.n_in)]
        for w, a in zip(self.weights, self.activations):
            parts.append(f"{w.shape[0]}{'' if a is None else ':' + a.name}")
        return f"Network({' -> '.join(parts)})"


def from_torch(model, input_shape=None):
    """Convert a piecewise-linear torch model, exactly, to float64.

    Parameters
    ----------
    model : torch.nn.Module
        Any module whose ``forward`` traces with ``torch.fx``: custom
        Modules, ``ModuleList``, nested modules, residual additions,
        concatenation, flatten/view/reshape/permute. Affine operations:
        ``Linear``, ``Conv1d``/``Conv2d`` (stride, padding including
        ``'same'``, dilation, groups), ``BatchNorm1d``/``2d`` in eval mode
        (folded), ``AvgPool``, ``AdaptiveAvgPool``, ``Dropout`` and
        ``Identity`` in eval mode, sums of branches, multiplication by and
        addition of constants. Units: ``ReLU``, ``LeakyReLU``, ``PReLU`` (one
        slope or one per channel), ``Hardtanh``, ``ReLU6``, ``abs`` and
        ``clamp``, as modules or functional calls (``F.relu``,
        ``torch.relu``, ``x.relu()``, ``x.clamp(min=0)``, ...). Max units
        (a stage of max units, see :mod:`regiongeom.graph`): ``MaxPool1d``/
        ``2d`` (kernel, stride, padding, dilation, ceil_mode) and
        ``AdaptiveMaxPool1d``/``2d``, as modules or ``F.max_pool1d/2d``,
        ``F.adaptive_max_pool1d/2d``; ``torch.max(x, dim)`` values and
        ``amax`` over per-sample dimensions, so maxout written as
        ``x.view(..., k).amax(-1)``. A
        ``torch.fx.GraphModule`` is used as it is, so the module of a
        ``torch.export`` program (``torch.export.load(path).module()``)
        converts without the model's class.
    input_shape : tuple of int, optional
        One input's shape without the batch axis, e.g. ``(1, 28, 28)``;
        needed unless the input goes straight into a ``Linear`` layer.

    Returns
    -------
    Network or regiongeom.graph.GraphNetwork
        A :class:`Network` when the model is a chain of dense layers with one
        unit per layer (MLPs however written, BatchNorm folded into the
        neighbouring Linear); otherwise a graph network of affine operators
        and unit stages (convolutions stay convolutions). Either way
        ``net(x)`` equals ``model(x)`` in float64 for inputs flattened to
        ``(P, n_in)``, and ``net.neuron_names`` names every neuron by module
        path and index (``"features.0[3, 5, 7]"``).

    Raises
    ------
    TypeError
        For anything that is not affine or a piecewise-linear unit (named,
        with its module path and the source line that calls it), for max
        units other than those above and for their indices
        (``return_indices=True``, ``torch.max(x, dim).indices``), for a
        max over the batch axis, for a model in training mode with
        BatchNorm or Dropout (call ``model.eval()``), and for a forward that
        torch.fx cannot trace.
    """
    import torch.nn as nn

    if not isinstance(model, nn.Module):
        raise TypeError(f"from_torch expects a torch.nn.Module, got {type(model).__name__}")
    chain = _sequential_leaves(model) if isinstance(model, nn.Sequential) else None
    old_kinds = (nn.Linear, nn.ReLU, nn.LeakyReLU, nn.Hardtanh, nn.Identity, nn.Flatten, nn.Dropout)
    if chain is not None and all(type(m) in old_kinds or isinstance(m, nn.Hardtanh) for _, m in chain):
        from .torch_graph import _check_eval

        _check_eval(model)
        net = _from_sequential(chain)
        if input_shape is not None and int(np.prod(input_shape)) != net.n_in:
            raise ValueError(
                f"input_shape {tuple(input_shape)} has {int(np.prod(input_shape))} entries but the "
                f"model's first Linear layer takes {net.n_in}"
            )
        return net
    from .torch_graph import convert

    return convert(model, input_shape)


def _sequential_leaves(module, prefix=""):
    """``[(position, module)]`` of the non-Sequential modules of nested Sequentials."""
    import torch.nn as nn

    out = []
    for name, child in module.named_children():
        pos = f"{prefix}.{name}" if prefix else name
        out.extend(_sequential_leaves(child, pos) if isinstance(child, nn.Sequential) else [(pos, child)])
    return out


def _from_sequential(chain) -> Network:
    """A Sequential of Linear layers and elementwise activations, walked directly."""
    import torch.nn as nn

    ws, bs, acts, where = [], [], [], []
    for pos, mod in chain:
        if isinstance(mod, nn.Linear):
            w = mod.weight.detach().cpu().double().numpy().copy()
            b = (
                mod.bias.detach().cpu().double().numpy().copy()
                if mod.bias is not None
                else np.zeros(w.shape[0])
            )
            ws.append(w)
            bs.append(b)
            acts.append(None)
            where.append(pos)
            continue
        if isinstance(mod, (nn.Identity, nn.Flatten, nn.Dropout)):
            continue
        if isinstance(mod, nn.ReLU):
            act = relu
        elif isinstance(mod, nn.LeakyReLU):
            act = Activation.leaky_relu(float(mod.negative_slope))
        else:  # Hardtanh, and ReLU6, its subclass
            act = Activation.hardtanh(float(mod.min_val), float(mod.max_val))
        if not ws or acts[-1] is not None:
            raise TypeError(
                f"from_torch: activation {type(mod).__name__} at position {pos!r} must "
                "directly follow a Linear layer"
            )
        acts[-1] = act
    if not ws:
        raise TypeError("from_torch: the module contains no Linear layer")
    net = Network.from_arrays(ws, bs, acts)
    names = tuple(f"{p}[{j}]" for p, w, a in zip(where, ws, acts) if a is not None for j in range(w.shape[0]))
    return dataclasses.replace(net, names=names)
