"""The standard benchmark networks of ../shared/BENCH.md (built with torch)."""

from __future__ import annotations

STANDARD = {
    # name: (widths, d_in, domain, activation regions found by independent exact tools)
    "S": ([32, 32], 2, (-1, -1, 1, 1), 795),
    "M": ([64, 64, 64], 2, (-2, -2, 2, 2), 12_042),
    "L": ([128, 128, 128, 128], 2, (-2, -2, 2, 2), 61_014),
    "D1": ([256] * 6, 1, (-5, 5), 1_136),
    "XL": ([256] * 4, 2, (-3, -3, 3, 3), None),
}


def bench_net(widths, seed=0, d_in=2):
    """The torch module of BENCH.md, exactly."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    layers, d = [], d_in
    for w in widths:
        layers += [nn.Linear(d, w), nn.ReLU()]
        d = w
    layers.append(nn.Linear(d, 1))
    return nn.Sequential(*layers).double()


def standard(name):
    """(rg.Network, domain, expected count) for a standard network name."""
    import regiongeom as rg

    widths, d_in, domain, count = STANDARD[name]
    return rg.from_torch(bench_net(widths, d_in=d_in)), domain, count
