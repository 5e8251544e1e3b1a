"""Exact arithmetic for the decisions that float64 cannot make with certainty.

Every float64 is a dyadic rational ``m * 2**e`` with an integer ``m``, and a
forward pass with a fixed activation pattern only multiplies and adds: the
affine map of every neuron on a region, every Jacobian and every offset are
dyadic too. :class:`Dyadic` holds an array of them as Python integers (numpy
object arrays) with one shared exponent, so sums and products are exact and
need no division. Points where lines meet are rational; they are kept in
homogeneous integer coordinates and never divided either: the sign of an
affine function at such a point is the sign of an integer.

These routines are the exact fallback of the filtered predicates: they are
slow (Python integers) and used only for the rare decisions whose float value
is within its rounding-error bound of zero.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "Dyadic",
    "dyadic",
    "ExactNet",
    "line_through",
    "meet",
    "sign_at",
    "sign_at_root",
    "root_1d",
    "sign_at_float_1d",
    "Fallback1D",
]


class Dyadic(NamedTuple):
    """The values ``m * 2**e`` (``m`` an object array of Python ints)."""

    m: np.ndarray
    e: int

    def aligned(self, e: int) -> np.ndarray:
        """The integers of the same values at the (smaller or equal) exponent ``e``."""
        shift = self.e - e
        if shift < 0:
            raise ValueError("can only align to a smaller exponent")
        if shift == 0:
            return self.m
        return _shift(self.m, shift)

    def __add__(self, other: Dyadic) -> Dyadic:
        e = min(self.e, other.e)
        return Dyadic(self.aligned(e) + other.aligned(e), e)

    def __matmul__(self, other: Dyadic) -> Dyadic:
        return Dyadic(_dot(self.m, other.m), self.e + other.e)

    def __getitem__(self, idx) -> Dyadic:
        return Dyadic(self.m[idx], self.e)

    def to_float(self) -> np.ndarray:
        """The nearest floats (for checks and messages only)."""
        from fractions import Fraction

        f = np.vectorize(lambda v: float(Fraction(v) * Fraction(2) ** self.e), otypes=[float])
        return f(self.m) if self.m.size else np.zeros(self.m.shape)


_shift = np.frompyfunc(lambda v, s: v << s, 2, 1)


def _dot(a, b):
    """Exact ``a @ b`` of object arrays of Python ints (``np.dot`` on object
    arrays sums with ``+`` and ``*``, so it is exact; empty sums give 0)."""
    if a.ndim == 2 and b.ndim == 2 and a.shape[1] == 0:
        return np.zeros((a.shape[0], b.shape[1]), dtype=object) * 0
    return np.dot(a, b)


def dyadic(a) -> Dyadic:
    """The float64 values of ``a`` exactly, with one shared exponent."""
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError("exact arithmetic needs finite floats")
    mant, ex = np.frexp(a)  # a = mant * 2**ex, 0.5 <= |mant| < 1
    ints = np.ldexp(mant, 53).astype(np.int64)  # exact: 53-bit mantissas
    ex = ex.astype(np.int64) - 53
    nz = ints != 0
    e = int(ex[nz].min()) if nz.any() else 0
    m = np.empty(a.shape, dtype=object)
    flat_m, flat_i, flat_x = m.reshape(-1), ints.reshape(-1), ex.reshape(-1)
    for k in range(flat_i.size):
        v = int(flat_i[k])
        flat_m[k] = v << int(flat_x[k] - e) if v else 0
    # drop the powers of two that every value shares (smaller integers)
    tz = min(((v & -v).bit_length() - 1 for v in flat_m if v), default=0)
    if tz:
        for k in range(flat_m.size):
            flat_m[k] >>= tz
    return Dyadic(m, e + tz)


class ExactNet:
    """A network's weights, biases and activation constants as :class:`Dyadic`,
    with the exact affine map of every layer on a given activation pattern.

    ``maps(pattern, layer)`` is ``A`` of shape ``(n_layer, n_in + 1)``: the
    preactivations of ``layer`` are ``A[:, :n_in] @ x + A[:, n_in]`` on the
    inputs whose pattern on the earlier layers is ``pattern`` (only its
    entries for those layers are read). ``output(pattern)`` is the same for the
    network's output. Results are cached per pattern prefix.
    """

    def __init__(self, net):
        self.n_in = int(net.n_in)
        self.offsets = np.asarray(net.neuron_offsets)
        self.layers = []
        for w, b, a in zip(net.weights, net.biases, net.activations, strict=True):
            act = bps = None
            if a is not None:
                # one Dyadic per piece, each with its own exponent
                act = tuple(
                    [dyadic(v) for v in np.asarray(vals, np.float64)] for vals in (a.slopes, a.intercepts)
                )
                bps = [dyadic(t) for t in np.asarray(a.breakpoints, np.float64)]
            self.layers.append((dyadic(w), dyadic(b), act, bps))
        self._cache = {}

    def _input(self) -> Dyadic:
        n = self.n_in
        eye = np.zeros((n, n + 1), dtype=object)
        for i in range(n):
            eye[i, i] = 1
        return Dyadic(eye, 0)

    def maps(self, pattern, layer: int) -> Dyadic:
        """Exact homogeneous affine maps of ``layer``'s preactivations."""
        pattern = np.asarray(pattern)
        key = (layer, pattern[: self.offsets[layer]].tobytes())
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if layer == 0:
            h = self._input()
        else:
            h = self._activate(self.maps(pattern, layer - 1), layer - 1, pattern)
        w, b, _, _ = self.layers[layer]
        z = w @ h
        ec = min(z.e, b.e)
        m = z.aligned(ec)
        m[:, self.n_in] = m[:, self.n_in] + b.aligned(ec)
        out = Dyadic(m, ec)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[key] = out
        return out

    def _activate(self, z: Dyadic, layer: int, pattern) -> Dyadic:
        """``h = slope * z + intercept`` row by row on the pattern's pieces."""
        act = self.layers[layer][2]
        if act is None:
            return z
        slopes, intercepts = act
        first = self.offsets[layer]
        pieces = [int(p) for p in pattern[first : first + z.m.shape[0]]]
        rows = [slopes[p] for p in pieces]
        e = min([z.e + s.e for s in rows] + [c.e for c in (intercepts[p] for p in pieces)])
        out = np.empty(z.m.shape, dtype=object)
        n = self.n_in
        for r, p in enumerate(pieces):
            s, c = slopes[p], intercepts[p]
            row = Dyadic(z.m[r] * s.m, z.e + s.e).aligned(e).copy()
            row[n] = row[n] + c.aligned(e)
            out[r] = row
        return Dyadic(out, e)

    def output(self, pattern) -> Dyadic:
        """Exact homogeneous affine map of the network's output on ``pattern``."""
        last = len(self.layers) - 1
        return self._activate(self.maps(pattern, last), last, pattern)

    def line(self, pattern, neuron: int, breakpoint: int) -> Dyadic:
        """Neuron ``neuron``'s function ``z_j(x) - t`` as a homogeneous row
        (``(n_in + 1,)``): zero exactly on its ``breakpoint``-th breakpoint."""
        layer = int(np.searchsorted(self.offsets, neuron, side="right") - 1)
        a = self.maps(pattern, layer)[neuron - self.offsets[layer]]
        t = self.layers[layer][3][breakpoint]
        e = min(a.e, t.e)
        m = a.aligned(e).copy()
        m[self.n_in] = m[self.n_in] - t.aligned(e)
        return Dyadic(m, e)


def line_through(p, q) -> np.ndarray:
    """Integer homogeneous row ``(a, b, c)`` of the line through the float
    points ``p`` and ``q`` (``a x + b y + c`` is positive left of p -> q)."""
    d = dyadic(np.array([p[0], p[1], q[0], q[1]], dtype=np.float64))
    px, py, qx, qy = d.m
    # (p, 1) x (q, 1) in homogeneous coordinates with the common scale 2**e
    # (positive, so it does not change any sign): a = py - qy, b = qx - px,
    # c = px*qy - py*qx scaled by 2**e relative to a and b.
    # in the integer units X = x / 2**e the line is a X + b Y + c = 0; in
    # plain coordinates (times the positive 2**e) it is a x + b y + c 2**e = 0
    a, b, c = py - qy, qx - px, px * qy - py * qx
    if d.e >= 0:
        return np.array([a, b, c << d.e], dtype=object)
    return np.array([a << -d.e, b << -d.e, c], dtype=object)


def _ints(row) -> np.ndarray:
    """A homogeneous row as plain integers (a positive scale is dropped)."""
    if isinstance(row, Dyadic):
        return row.m
    return np.asarray(row, dtype=object)


def meet(l1, l2) -> np.ndarray:
    """The homogeneous integer point ``(X, Y, W)`` where two lines of the
    plane meet (the point is ``(X / W, Y / W)``; ``W == 0``: parallel)."""
    a, b = _ints(l1), _ints(l2)
    return np.array(
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]],
        dtype=object,
    )


def sign_at(line, point) -> int:
    """Exact sign of the affine function ``line`` at a homogeneous point."""
    row, p = _ints(line), _ints(point)
    v = sum(int(x) * int(y) for x, y in zip(row, p, strict=True)) * (1 if p[-1] > 0 else -1)
    return (v > 0) - (v < 0)


def sign_at_root(line, root_of) -> int:
    """1D: exact sign of ``line`` (``(a, c)``: ``a x + c``) at the root of
    ``root_of`` (``(a', c')`` with ``a' != 0``)."""
    row, r = _ints(line), _ints(root_of)
    return sign_at(row, np.array([-r[1], r[0]], dtype=object))


# ---------------------------------------------------------------- locus ----
def _scale_rows(v: Dyadic, factors: list) -> Dyadic:
    """Row ``r`` of ``v`` times the scalar Dyadic ``factors[r]``, exactly."""
    e = min((v.e + f.e for f in factors), default=v.e)
    out = np.empty(v.m.shape, dtype=object)
    for r, f in enumerate(factors):
        out[r] = Dyadic(v.m[r] * f.m, v.e + f.e).aligned(e)
    return Dyadic(out, e)


def sensitivity(exact_net: ExactNet, pattern, neuron: int) -> Dyadic:
    """``(n_out,)`` exact derivative of the output with respect to the output
    of ``neuron`` on the inputs whose later layers are on ``pattern``'s pieces:
    ``S_{L-1} W_{L-1} ... S_{l+1} W_{l+1} e_j`` (``S``: the pieces' slopes).
    Only the entries of ``pattern`` after the neuron's layer are read."""
    offs = exact_net.offsets
    layer = int(np.searchsorted(offs, neuron, side="right") - 1)
    w = exact_net.layers[layer + 1][0] if layer + 1 < len(exact_net.layers) else None
    if w is None:  # the neuron is an output
        n = exact_net.layers[layer][0].m.shape[0]
        m = np.zeros(n, dtype=object) * 0
        m[neuron - offs[layer]] = 1
        return Dyadic(m, 0)
    v = w[:, neuron - offs[layer]]
    for m in range(layer + 1, len(exact_net.layers)):
        if m > layer + 1:
            v = exact_net.layers[m][0] @ v
        act = exact_net.layers[m][2]
        if act is not None:
            pieces = [int(p) for p in np.asarray(pattern)[offs[m] : offs[m] + v.m.shape[0]]]
            v = _scale_rows(v, [act[0][p] for p in pieces])
    return v


def jacobian(exact_net: ExactNet, pattern) -> Dyadic:
    """``(n_out, n_in)`` exact Jacobian of the output on ``pattern``."""
    return exact_net.output(pattern)[:, : exact_net.n_in]


def is_zero(d: Dyadic) -> bool:
    """Whether every value of ``d`` is exactly 0."""
    return not any(int(v) for v in np.asarray(d.m).ravel())


def difference(d1: Dyadic, d2: Dyadic) -> Dyadic:
    """``d1 - d2`` exactly (same shapes)."""
    e = min(d1.e, d2.e)
    return Dyadic(d1.aligned(e) - d2.aligned(e), e)


# ----------------------------------------------------------------------- 1D ----
def root_1d(line):
    """1D: the root ``-c / a`` of ``line`` (``(a, c)``, ``a != 0``) as an exact Fraction."""
    from fractions import Fraction

    a, c = (int(v) for v in _ints(line))
    return Fraction(-c, a)


def sign_at_float_1d(line, x: float) -> int:
    """1D: exact sign of ``line`` (``(a, c)``: ``a x + c``) at the float ``x``."""
    d = dyadic(np.array([x], dtype=np.float64))
    m = int(d.m[0])
    point = [m << d.e, 1] if d.e >= 0 else [m, 1 << -d.e]
    return sign_at(line, np.array(point, dtype=object))


class Fallback1D:
    """The exact decisions that the 1D engine's filter leaves
    (:mod:`regiongeom._engine.line1d`), for a 1-input network ``net`` whose
    layers cut so far are ``blocks`` (``(first neuron, parent, pieces)``).

    Every point's exact position is exact: a domain end is a float; any
    other point is the root of one neuron's affine map (its ``neuron``,
    ``bp``) on the old interval it was created in, a map with a nonzero
    slope (its values had strictly opposite signs at that interval's ends).
    That map is read from the pattern of *either* interval next to the
    point, at any later layer: both lie inside that old interval, so their
    patterns agree on the layers before the point's neuron's, the only ones
    the map depends on. A neuron ``j`` of a later layer is continuous, and
    affine on each interval next to the point, so its map on either one
    gives its exact value at the point (continuity). The crossings of one
    old interval are roots of the current layer's maps on that interval's
    pattern, compared exactly as rationals.
    """

    def __init__(self, net, blocks, unsure, boundary):
        self.net = net
        self.unsure, self.boundary = unsure, boundary  # the engine's codes: a sign left open; a domain end
        self.blocks = blocks  # (first, parent, pieces) of the layers cut so far
        self._exact = None
        self._patterns = {}

    @property
    def exact(self):
        if self._exact is None:
            from ._exact_graph import exact_for  # a Network or a GraphNetwork

            self._exact = exact_for(self.net)
        return self._exact

    def flush(self):
        self._patterns = {}

    def pattern(self, q):
        """The pattern of current interval ``q`` on the layers cut so far."""
        key = (len(self.blocks), int(q))
        pat = self._patterns.get(key)
        if pat is None:
            pat = np.zeros(self.net.n_neurons, np.int8)
            idx = int(q)
            for first, parent, pieces in reversed(self.blocks):
                pat[first : first + pieces.shape[1]] = pieces[idx]
                idx = int(parent[idx])
            self._patterns[key] = pat
        return pat

    def signs(self, S, pts, z, err, bps, first, n_cut):
        """Decide the signs ``S == UNSURE`` exactly; set values exactly on a breakpoint to it."""
        V = pts.x.size
        for c, i in zip(*np.nonzero(S == self.unsure), strict=True):
            k, j = divmod(int(i), n_cut)
            pat = self.pattern(c if c < V - 1 else c - 1)
            line = self.exact.line(pat, first + j, k)
            if pts.neuron[c] == self.boundary:
                s = sign_at_float_1d(line, pts.x[c])
            else:
                s = sign_at_root(line, self.exact.line(pat, int(pts.neuron[c]), int(pts.bp[c])))
            S[c, i] = s
            if s == 0:
                z[pts.row[c], j] = bps[k]
                err[pts.row[c], j] = 0.0

    def order(self, cstart, cr, ck, ca, cda, cpos, cex, keep, first):
        """Order exactly each run of crossings of one interval whose error
        intervals overlap (``keep`` False after its first), and merge those
        at the same exact point (``keep`` stays False)."""
        for c in np.nonzero(cstart[1:] - cstart[:-1] > 1)[0]:
            i0, i1 = int(cstart[c]), int(cstart[c + 1])
            starts = np.nonzero(keep[i0:i1])[0] + i0
            for s, e in zip(starts.tolist(), [*starts[1:].tolist(), i1], strict=True):
                if e - s > 1:
                    self._order_run(int(c), s, e, cr, ck, ca, cda, cpos, cex, keep, first)

    def _order_run(self, c, i0, i1, cr, ck, ca, cda, cpos, cex, keep, first):
        """Sort crossings ``i0 .. i1 - 1`` of interval ``c`` by their exact
        roots; they get their exact positions rounded to the nearest float."""
        pat = self.pattern(c)
        roots = {i: root_1d(self.exact.line(pat, first + int(cr[i]), int(ck[i]))) for i in range(i0, i1)}
        order = sorted(range(i0, i1), key=lambda i: (roots[i], cr[i], ck[i]))
        for a in (cr, ck, ca, cda, cex):
            a[i0:i1] = a[order].copy()
        prev = None
        for s, i in enumerate(order):
            keep[i0 + s] = prev is None or roots[i] != prev
            cpos[i0 + s] = float(roots[i])
            cex[i0 + s] = abs(cpos[i0 + s]) * 2.0**-52
            prev = roots[i]

    def positions(self, cstart, cr, ck, cda, cpos, cex, first, worst):
        """The exact positions (rounded) of the crossings whose place is known
        to worse than ``worst`` (cancellation in their values)."""
        bad = np.nonzero(cda > worst)[0]
        for i in bad.tolist():
            c = int(np.searchsorted(cstart, i, side="right") - 1)
            root = root_1d(self.exact.line(self.pattern(c), first + int(cr[i]), int(ck[i])))
            cpos[i] = float(root)
            cex[i] = abs(cpos[i]) * 2.0**-52
        return bad.size


# ------------------------------------------------------- graph networks ----
# Helpers of regiongeom._exact_graph: exact sparse dot products of Python ints
# on limbs small enough for float64, and Dyadic rows with their own exponents.

# 16-bit limbs: a product of two has 32 bits and a sum of up to 2**21 of
# them stays below 2**53, so float64 (BLAS) adds and multiplies them exactly
_LIMB = 16
_CHUNK = 1 << 21
_SMALL = 1 << 12  # fewer products than this: Python ints cost less than limbs


def _limbs(m, n) -> np.ndarray:
    """``(n, *m.shape)`` float64 limbs of Python ints ``m`` (``|m| < 2**(16 n)``):
    ``m == sum_i limbs[i] << 16 i``, the low limbs in ``[0, 2**16)``, the top
    one signed (all integers, exact in float64)."""
    out = np.empty((n, *m.shape), np.float64)
    mask = (1 << _LIMB) - 1
    for i in range(n - 1):
        out[i] = (m >> (_LIMB * i)) & mask
    out[n - 1] = m >> (_LIMB * (n - 1))
    return out


def _n_limbs(m) -> int:
    bits = max((int(v).bit_length() for v in m.flat), default=0)
    return max(1, -(-bits // _LIMB))


def _int_dot(Xp, P, CL, shared=False) -> np.ndarray:
    """Exact ``out[c, l] = sum_k Xp[c, P[l, k]] * C[l, k]`` of Python ints.

    ``C`` is given by its limbs ``CL`` ``(n, L, K)`` (None: all ones);
    ``shared``: every row of ``P`` is the same (a dense map: one matrix
    product). The limb products and their sums are integers below ``2**53``,
    so numpy computes them exactly in float64; the sums of the limb pairs of
    one weight ``2**(16 d)`` are added in int64 (below ``2**63``) and only
    those are recombined with Python ints.
    """
    nx, k = _n_limbs(Xp), Xp.shape[0]
    XL = _limbs(Xp, nx).reshape(nx * k, -1)
    L, K = P.shape
    nc = 1 if CL is None else CL.shape[0]
    acc = np.zeros((nx + nc - 1, k, L), np.int64)
    for a in range(0, K, _CHUNK):
        Pc = P[:, a : a + _CHUNK]
        if CL is None:
            S = XL[:, Pc].sum(axis=2).reshape(nx, k, 1, L)
        elif shared:
            C = CL[:, :, a : a + _CHUNK].reshape(nc * L, -1)
            S = (XL[:, Pc[0]] @ C.T).reshape(nx, k, nc, L)
        else:  # one small product per output: (nx k, K) @ (K, nc)
            G = XL[:, Pc].transpose(1, 0, 2)
            S = np.matmul(G, CL[:, :, a : a + _CHUNK].transpose(1, 2, 0)).transpose(1, 2, 0)
            S = S.reshape(nx, k, nc, L)
        S = S.astype(np.int64)
        for i in range(nx):
            for j in range(nc):
                acc[i + j] += S[i, :, j]
    out = acc[0].astype(object)
    for d in range(1, nx + nc - 1):
        out += acc[d].astype(object) << (_LIMB * d)
    return out


def _align_rows(m, ex):
    """One Dyadic of rows with exponents ``ex``."""
    if not len(ex):
        return Dyadic(m, 0)
    e = int(ex.min())
    sh = ex - e
    return Dyadic(_shift(m, sh[:, None]) if sh.any() else m, e)


def _cat_aligned(vals):
    """Dyadic (k, sum L) of Dyadic (k, L_i) side by side, one exponent."""
    e = min(v.e for v in vals)
    return Dyadic(np.concatenate([v.aligned(e) for v in vals], axis=1), e)
