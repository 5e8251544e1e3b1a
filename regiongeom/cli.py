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

from .regions import DEFAULT_MAX_REGIONS

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


def _summary(net, domain, args, out_dir, stem):
    """Regions, locus, LC over the domain and the Figure-1-style PNG."""
    from ._validate import integer_at_least, positive
    from .complexity import local_complexity
    from .plotting import figure1, grid_points

    sigma = positive(args.sigma, "--sigma")
    n_samples = integer_at_least(args.samples, 2, "--samples")
    grid = integer_at_least(args.grid, 2, "--grid")
    if args.method == "definition":
        positive(args.eps if args.eps is not None else -1, "--eps (needed by --method definition)")
    rm, loc = _regions_summary(net, domain, args.max_regions)
    progress = None if not args.no_progress else False
    kw = dict(sigma=sigma, n_samples=n_samples, method=args.method, rng=args.seed, progress=progress)
    if args.method == "definition":
        kw["eps"] = args.eps
    else:
        kw["good"] = args.good
    lc = local_complexity(net, grid_points(domain, grid), **kw)
    what = "Theorem 2" + ("" if args.good else " without the good indicator (eq. 40)")
    if args.method == "definition":
        what = f"definition, eps={args.eps:g}"
    print(
        f"local complexity over the domain ({what}, sigma={sigma:g}, {n_samples} samples, "
        f"{grid}x{grid if rm.dim == 2 else 1} points): {lc.mean:.6g} +- {lc.stderr:.2g}"
    )
    if out_dir is not None:
        import matplotlib

        matplotlib.use("Agg")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        fig, _ = figure1(net, domain, sigma=sigma, n_samples=n_samples, grid=grid, method=args.method,
                         eps=args.eps, good=args.good, rng=args.seed, progress=progress)  # fmt: skip
        png = out / f"{stem}.png"
        fig.savefig(png, dpi=150)
        print(f"wrote {png}")
        if args.geojson:
            export_geojson(rm, loc, out / f"{stem}.geojson")
            print(f"wrote {out / f'{stem}.geojson'}")
    return 0


def _cmd_demo(args):
    from .datasets import DEFAULT_DOMAIN, default_network

    return _summary(default_network(), DEFAULT_DOMAIN, args, args.out, "figure1_bunny")


def _cmd_map(args):
    net = load_model(args.model)
    domain = parse_domain(args.domain, net.n_in)
    return _summary(net, domain, args, args.out, Path(args.model).stem)


def _regions_summary(net, domain, max_regions):
    """Enumerate and print the counts shared by every command."""
    from .locus import linear_regions, nonlinear_locus
    from .regions import activation_regions

    rm = activation_regions(net, domain, max_regions=max_regions)
    loc = nonlinear_locus(rm)
    lr = linear_regions(rm)
    unit = "points" if rm.dim == 1 else "length"
    print(f"network: {net!r}")
    print(f"domain: {domain}")
    print(f"activation regions: {len(rm):,}")
    print(f"linear regions: {len(lr):,}")
    print(f"nonlinear locus {unit}: {loc.volume():.6g}")
    return rm, loc


def _cmd_regions(args):
    net = load_model(args.model)
    rm, loc = _regions_summary(net, parse_domain(args.domain, net.n_in), args.max_regions)
    if args.geojson:
        export_geojson(rm, loc, args.geojson)
        print(f"wrote {args.geojson}")
    return 0


def _lc_options(p, sigma_default):
    p.add_argument("--sigma", type=float, default=sigma_default,
                   help=f"standard deviation of the bias noise (default {sigma_default})")  # fmt: skip
    p.add_argument("--samples", type=int, default=32, help="noise samples (default 32)")
    p.add_argument("--grid", type=int, default=128, help="grid points per axis for the heat map and LC (default 128)")
    p.add_argument("--method", choices=["theorem2", "definition"], default="theorem2",
                   help="estimate f by Theorem 2 (default) or by its definition at radius --eps")  # fmt: skip
    p.add_argument("--eps", type=float, default=None, help="ball radius for --method definition")
    p.add_argument("--good", action=argparse.BooleanOptionalAction, default=False,
                   help="theorem2: keep the good-neuron indicator (exact Theorem 2); by default it is "
                        "dropped, giving the upper bound of eq. (40) used for the paper's Figure 1")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    p.add_argument("--max-regions", type=int, default=DEFAULT_MAX_REGIONS,
                   help=f"stop beyond this many regions (default {DEFAULT_MAX_REGIONS:,})")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--geojson", action="store_true", help="also write regions and locus as GeoJSON")


def _model_options(p):
    p.add_argument("model", help="a torch .pt (pickled nn.Sequential) or an .npz of weights")
    p.add_argument("--domain", help="'lo,hi' (1 input) or 'xmin,ymin,xmax,ymax' (2 inputs); default [-1, 1]^n")


def build_parser():
    from .datasets import DEFAULT_SIGMA

    parser = argparse.ArgumentParser(
        prog="regiongeom",
        description="Exact linear regions, nonlinear locus and local complexity of piecewise-linear "
        "networks on 1D and 2D inputs.",
        epilog="Domains that start with a minus sign need '=': --domain=-2,-2,2,2",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser(
        "demo",
        help="Figure-1-style map and summary for the embedded bunny network",
        description="Enumerate the embedded default network (a ReLU MLP trained on a bunny silhouette) "
        "exactly, print activation regions, linear regions, locus length and the local complexity "
        "over the domain, and write the Figure-1-style PNG (regions | heat map of f) to --out.",
    )
    p.add_argument("--out", default="regiongeom_out", help="output folder (default ./regiongeom_out)")
    _lc_options(p, DEFAULT_SIGMA)
    p.set_defaults(func=_cmd_demo)
    p = sub.add_parser(
        "map",
        help="the same map and summary for your model (.pt or .npz)",
        description="Figure-1-style map, summary and optional GeoJSON for MODEL.",
    )
    _model_options(p)
    p.add_argument("--out", default="regiongeom_out", help="output folder (default ./regiongeom_out)")
    _lc_options(p, DEFAULT_SIGMA)
    p.set_defaults(func=_cmd_map)
    p = sub.add_parser(
        "regions",
        help="count activation regions, linear regions and locus length of a model; export GeoJSON",
        description="Enumerate the activation regions of MODEL exactly and print a summary.",
    )
    _model_options(p)
    p.add_argument("--max-regions", type=int, default=DEFAULT_MAX_REGIONS,
                   help=f"stop beyond this many regions (default {DEFAULT_MAX_REGIONS:,})")  # fmt: skip
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
