"""The ``regiongeom`` command.

Every error a user can cause (a bad file, domain, sigma, ...) is printed as
one line ``regiongeom: error: ...`` with a non-zero exit status, never a
traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

__all__ = ["main"]


def load_model(path):
    """A Network from a torch ``.pt`` (a pickled ``nn.Sequential``) or an ``.npz``.

    ``.npz``: either a file written by ``Network.save``, or plain arrays
    ``W0, b0, W1, b1, ...`` (ReLU after every layer but the last).
    """
    from .network import Network, from_torch

    p = Path(path)
    if not p.exists():
        raise ValueError(f"model file {str(p)!r} does not exist")
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as f:
            keys = set(f.files)
            if "n_layers" in keys:
                return Network.load(p)
            n = sum(1 for k in keys if k.startswith("W"))
            if n == 0 or any(f"W{i}" not in keys or f"b{i}" not in keys for i in range(n)):
                raise ValueError(
                    f"{p}: an .npz model needs arrays W0, b0, W1, b1, ... or a file written by Network.save"
                )
            return Network.from_arrays(
                [f[f"W{i}"] for i in range(n)], [f[f"b{i}"] for i in range(n)], ["relu"] * (n - 1) + [None]
            )
    if p.suffix in (".pt", ".pth"):
        try:
            import torch
        except ImportError as exc:
            raise ValueError("reading a .pt model needs torch: pip install 'regiongeom[torch]'") from exc
        # a whole pickled module: only load files you trust
        module = torch.load(p, map_location="cpu", weights_only=False)
        return from_torch(module)
    raise ValueError(f"unknown model format {p.suffix!r}: use a torch .pt file or an .npz")


def parse_domain(text: str | None, n_in: int):
    """``"lo,hi"`` or ``"xmin,ymin,xmax,ymax"``; None gives a default box."""
    if text is None:
        return (-1.0, 1.0) if n_in == 1 else (-1.0, -1.0, 1.0, 1.0)
    try:
        return tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError as exc:
        raise ValueError(f"--domain must be comma-separated numbers, got {text!r}") from exc


def export_geojson(rm, loc, path):
    """Write regions (polygons with their pattern index) and locus as GeoJSON."""
    feats = []
    if rm.dim == 2:
        for r, poly in enumerate(rm.polygons):
            ring = np.vstack([poly, poly[:1]]).tolist()
            feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                          "properties": {"kind": "activation_region", "region": r,
                                         "area": float(rm.measures[r])}})  # fmt: skip
        for s, n in zip(loc.segments, loc.neurons):
            feats.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": s.tolist()},
                          "properties": {"kind": "locus", "neuron": int(n)}})  # fmt: skip
    else:
        for r, (a, b) in enumerate(rm.intervals):
            feats.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[a, 0.0], [b, 0.0]]},
                          "properties": {"kind": "activation_region", "region": r}})  # fmt: skip
        for x, n in zip(loc.points, loc.neurons):
            feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(x), 0.0]},
                          "properties": {"kind": "locus", "neuron": int(n)}})  # fmt: skip
    Path(path).write_text(json.dumps({"type": "FeatureCollection", "features": feats}))


def _cmd_regions(args):
    from .locus import linear_regions, nonlinear_locus
    from .regions import activation_regions

    net = load_model(args.model)
    domain = parse_domain(args.domain, net.n_in)
    rm = activation_regions(net, domain, max_regions=args.max_regions)
    loc = nonlinear_locus(rm)
    lr = linear_regions(rm)
    unit = "points" if rm.dim == 1 else "length"
    print(f"network: {net!r}")
    print(f"domain: {domain}")
    print(f"activation regions: {len(rm):,}")
    print(f"linear regions: {len(lr):,}")
    print(f"nonlinear locus {unit}: {loc.volume():.6g}")
    if args.geojson:
        export_geojson(rm, loc, args.geojson)
        print(f"wrote {args.geojson}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="regiongeom",
        description="Exact linear regions, nonlinear locus and local complexity of piecewise-linear "
        "networks on 1D and 2D inputs.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser(
        "regions",
        help="count activation regions, linear regions and locus length of a model; export GeoJSON",
        description="Enumerate the activation regions of MODEL exactly and print a summary.",
    )
    p.add_argument("model", help="a torch .pt (pickled nn.Sequential) or an .npz of weights")
    p.add_argument("--domain", help="'lo,hi' (1 input) or 'xmin,ymin,xmax,ymax' (2 inputs); write --domain=-2,-2,2,2 when it starts with a minus; default: the box [-1, 1]^n")
    p.add_argument("--max-regions", type=int, default=2_000_000, help="stop beyond this many regions")
    p.add_argument("--geojson", metavar="FILE", help="write regions and locus to this GeoJSON file")
    p.set_defaults(func=_cmd_regions)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, RuntimeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"regiongeom: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
