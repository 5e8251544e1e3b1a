"""Does numba's ``np.dot`` (scipy's OpenBLAS) give the same bits for an
output column when only some of the product's columns (or rows) are
computed? The 1D products (``regiongeom/_engine/_line1d_products.py``)
could skip the next layer's neurons proven negative on a whole block of
points (about 40% of D1's multiply-adds) only if the columns they keep come
out bit for bit as in the full product.

    python benchmarks/blas_subset_bits.py [trials]

Shapes as in the 1D products: ``(nb, na) @ (na, 256)`` with ``nb <= 128``
points and ``na <= 256`` active neurons, activations >= 0.
"""

from __future__ import annotations

import sys

import numpy as np
from numba import njit

from regiongeom._engine.core import one_blas_thread


@njit
def _dot(a, b, out):
    np.dot(a, b, out)


def _same(x, y):
    return np.array_equal(x.view(np.int64), y.view(np.int64))


def main(trials=600):
    rng = np.random.default_rng(0)
    cases = ("columns, any number", "columns, a multiple of 8", "columns permuted", "rows, any subset")
    bad = dict.fromkeys(cases, 0)
    with one_blas_thread():
        for _ in range(trials):
            nb, na, m = int(rng.integers(2, 129)), int(rng.integers(1, 257)), 256
            a = np.maximum(rng.standard_normal((nb, na)), 0.0) * rng.uniform(0.1, 10.0)
            b = rng.standard_normal((na, m)) * 0.06
            full = np.empty((nb, m))
            _dot(a, b, full)
            k = int(rng.integers(1, m))
            k += k % 8 == 0
            for case, keep in (
                (cases[0], np.sort(rng.permutation(m)[:k])),
                (cases[1], rng.permutation(m)[: 8 * int(rng.integers(1, 32))]),
                (cases[2], rng.permutation(m)),
            ):
                sub = np.empty((nb, keep.size))
                _dot(a, np.ascontiguousarray(b[:, keep]), sub)
                bad[case] += not _same(full[:, keep], sub)
            rows = np.sort(rng.permutation(nb)[: int(rng.integers(1, nb + 1))])
            sub = np.empty((rows.size, m))
            _dot(np.ascontiguousarray(a[rows]), b, sub)
            bad[cases[3]] += not _same(full[rows], sub)
    for case in cases:
        print(f"{case:26s} differ in {bad[case]} of {trials} trials")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 600)
