"""The affine operators of a graph network: :class:`Operator` (a DAG of
primitives, :mod:`regiongeom._graph_ops`) and :class:`LiftedOperator` (an
operator restricted to a slice). The interface every engine reads
(``sources``, ``source_sizes``, ``__call__``, ``linear``, ``absolute``,
``row_l1``, ``bias``, ``matrix``) is documented in :mod:`regiongeom.graph`,
which exports both classes."""

from __future__ import annotations

import numpy as np

__all__ = ["Operator", "LiftedOperator"]

# unit vectors applied at once when computing l1 norms or dense matrices
_BLOCK_ENTRIES = 1 << 22


def _as_rows(X, sizes, what):
    """Split ``X`` into one ``(V, size)`` float64 array per source."""
    if isinstance(X, np.ndarray) or not isinstance(X, (list, tuple)):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != sum(sizes):
            raise ValueError(f"{what} expects an array of shape (V, {sum(sizes)}), got {X.shape}")
        cuts = np.cumsum(sizes)[:-1]
        return np.split(X, cuts, axis=1) if len(sizes) > 1 else [X]
    if len(X) != len(sizes):
        raise ValueError(f"{what} expects {len(sizes)} arrays (one per source), got {len(X)}")
    out = [np.asarray(x, dtype=np.float64) for x in X]
    for x, n in zip(out, sizes):
        if x.ndim != 2 or x.shape[1] != n or x.shape[0] != out[0].shape[0]:
            raise ValueError(
                f"{what}: source arrays must be (V, size) with sizes {list(sizes)}, got {x.shape}"
            )
    return out


def _writable(r):
    """A C-contiguous writable array for torch.from_numpy (which never writes to it here)."""
    r = np.ascontiguousarray(r)
    return r if r.flags.writeable else r.copy()


class _OperatorBase:
    """Shared methods of the affine operators (see the module docstring)."""

    sources: tuple
    source_sizes: tuple
    n_out: int

    @property
    def n_in(self) -> int:
        return int(sum(self.source_sizes))

    def __call__(self, X) -> np.ndarray:
        return self._apply(_as_rows(X, self.source_sizes, "operator"), "affine")

    def linear(self, X) -> np.ndarray:
        return self._apply(_as_rows(X, self.source_sizes, "operator.linear"), "linear")

    def absolute(self, X, with_bias: bool = False) -> np.ndarray:
        rows = _as_rows(X, self.source_sizes, "operator.absolute")
        return self._apply(rows, "absaffine" if with_bias else "abs")

    @property
    def bias(self) -> np.ndarray:
        if self._cache.get("bias") is None:
            b = self(np.zeros((1, self.n_in)))[0]
            b.setflags(write=False)
            self._cache["bias"] = b
        return self._cache["bias"]

    def _unit_blocks(self):
        """Blocks ``(start, E)`` with ``E`` rows of the identity of size n_in."""
        n = self.n_in
        step = max(1, _BLOCK_ENTRIES // max(n, self.n_out, 1))
        for start in range(0, n, step):
            stop = min(n, start + step)
            E = np.zeros((stop - start, n))
            E[np.arange(stop - start), np.arange(start, stop)] = 1.0
            yield start, E

    @property
    def abs_exact(self) -> bool:
        """True when ``absolute(X)`` is exactly ``|A| X`` (up to rounding)."""
        return False

    @property
    def row_l1(self) -> np.ndarray:
        if self._cache.get("row_l1") is None:
            if self.abs_exact:
                acc = self.absolute(np.ones((1, self.n_in)))[0]
            else:
                acc = np.zeros(self.n_out)
                for _, E in self._unit_blocks():
                    acc += np.abs(self.linear(E)).sum(axis=0)
            acc.setflags(write=False)
            self._cache["row_l1"] = acc
        return self._cache["row_l1"]

    def matrix(self) -> np.ndarray:
        """The dense ``(n_out, n_in)`` matrix of the linear part."""
        if self.n_in * self.n_out > 1 << 27:
            raise ValueError(
                f"a dense {self.n_out} x {self.n_in} matrix is too large; apply the operator instead"
            )
        A = np.empty((self.n_out, self.n_in))
        for start, E in self._unit_blocks():
            A[:, start : start + len(E)] = self.linear(E).T
        return A


class Operator(_OperatorBase):
    """An affine operator given by a DAG of primitives (see :mod:`regiongeom._graph_ops`).

    Parameters
    ----------
    root : Node
        The node whose value is the operator's output.
    """

    def __init__(self, root):
        from ._graph_ops import Source, topological

        self.root = root
        self.order = topological(root)
        leaves = {n.tensor: n.shape for n in self.order if isinstance(n, Source)}
        self.sources = tuple(sorted(leaves))
        self.source_shapes = tuple(leaves[t] for t in self.sources)
        self.source_sizes = tuple(int(np.prod(s, dtype=np.int64)) for s in self.source_shapes)
        self.shape = tuple(root.shape)
        self.n_out = int(np.prod(self.shape, dtype=np.int64))
        self._cache = {}

    def _apply(self, rows, mode) -> np.ndarray:
        import torch

        from ._graph_ops import evaluate

        V = rows[0].shape[0] if rows else 0
        if V == 0:
            return np.zeros((0, self.n_out))
        leaves = {
            t: torch.from_numpy(_writable(r)).reshape(V, *shape)
            for t, r, shape in zip(self.sources, rows, self.source_shapes)
        }
        with torch.no_grad():
            out = evaluate(self.order, leaves, mode)
        out = out.reshape(V, self.n_out).contiguous().numpy()
        # a source passed straight through would alias the caller's array
        return out.copy() if any(np.shares_memory(out, r) for r in rows) else out

    def is_dense_friendly(self) -> bool:
        """True when no primitive is a convolution, padding or pooling."""
        return all(n.dense_friendly for n in self.order)

    @property
    def abs_exact(self) -> bool:
        """True when ``absolute`` gives ``|A|`` exactly: the primitives form a
        chain (one input each) with at most one mixing primitive (Linear,
        convolution, constant matmul), no sums (pooling, additions), and only
        one-to-one maps before the mixing one. Every entry of ``A`` is then a
        single product of coefficients, so no two terms can cancel."""
        from ._graph_ops import injective

        if any(len(n.inputs) > 1 or n.kind in ("pool", "add") for n in self.order):
            return False
        mixing = [i for i, n in enumerate(self.order) if n.kind in ("linear", "conv", "matmul")]
        if len(mixing) > 1:
            return False
        return not mixing or all(injective(n) for n in self.order[: mixing[0]])

    def __repr__(self):
        kinds = [n.kind for n in self.order if n.kind != "source"]
        return f"Operator(sources={self.sources}, {' -> '.join(kinds) or 'identity'}, n_out={self.n_out})"


class LiftedOperator(_OperatorBase):
    """An operator after restriction to a slice: ``uv @ M.T + const + rest(others)``.

    ``rest`` (None when the input was the only source) is the original
    operator, evaluated in its linear modes with zeros in place of the input.
    """

    def __init__(self, op, origin, basis):
        k = basis.shape[1]
        self.fresh = _fresh(op)  # (the bias noise of max units reads it)
        pos = op.sources.index(0)
        self.sources = op.sources
        self.source_sizes = op.source_sizes[:pos] + (k,) + op.source_sizes[pos + 1 :]
        self.n_out, self.shape = op.n_out, op.shape
        self._pos, self._cache = pos, {}
        others = [np.zeros((1, s)) for s in op.source_sizes]
        others[pos] = origin[None, :]
        self.const = op(others)[0]
        others = [np.zeros((k, s)) for s in op.source_sizes]
        others[pos] = np.ascontiguousarray(basis.T)
        self.M = np.ascontiguousarray(op.linear(others).T)
        self.rest = op if len(op.sources) > 1 else None
        self._n_lifted = op.source_sizes[pos]

    def _apply(self, rows, mode) -> np.ndarray:
        uv = rows[self._pos]
        M = np.abs(self.M) if mode in ("abs", "absaffine") else self.M
        out = uv @ M.T
        if mode == "affine":
            out += self.const
        elif mode == "absaffine":
            out += np.abs(self.const)
        if self.rest is not None:
            full = list(rows)
            full[self._pos] = np.zeros((uv.shape[0], self._n_lifted))
            rest_mode = {"affine": "linear", "linear": "linear", "abs": "abs", "absaffine": "abs"}[mode]
            out += self.rest._apply(full, rest_mode)
        return np.ascontiguousarray(out)

    def is_dense_friendly(self) -> bool:
        return self.rest is None or self.rest.is_dense_friendly()

    @property
    def abs_exact(self) -> bool:
        return self.rest is None

    def __repr__(self):
        return f"LiftedOperator(sources={self.sources}, M={self.M.shape}, rest={self.rest!r})"


def _fresh(op) -> bool:
    """Whether an operator makes fresh preactivations: it holds a dense map
    or a convolution (whose bias its outputs carry), not only copies, sums
    and scalings of an earlier tensor (a max pool's gathered view)."""
    if isinstance(op, LiftedOperator):
        return op.fresh
    return any(n.kind in ("linear", "conv", "matmul") for n in getattr(op, "order", ()))
