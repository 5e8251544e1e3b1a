"""The ``regiongeom`` command.

Every error a user can cause (a bad file, domain, sigma, ...) is printed as
one line ``regiongeom: error: ...`` that says what to do, with a non-zero exit
status, never a traceback. Options are checked before any heavy work.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from ._model_files import load_model
from ._validate import require_no_max_units
from .regions import DEFAULT_MAX_REGIONS

__all__ = ["main"]

MODEL_HELP = """\
MODEL is a torch .pt/.pth file holding a whole pickled model (torch.save(model, path); only
load files you trust) or a state_dict with --factory module:function (a function that builds
the model), a torch.export program (.pt2: torch.export.save(torch.export.export(model,
(x,)), path); it needs no class), or an .npz holding either a network written by rg.Network.save(path) or plain
arrays W0, b0, W1, b1, ... (Wi of shape (n_i, n_{i-1}), bi of shape (n_i,)) with a ReLU after
every layer but the last. A model with more than 2 inputs is looked at on a slice:
--plane POINTS.npy (three inputs, e.g. images) or --line POINTS.npy (two).
--domain takes lo,hi or xmin,ymin,xmax,ymax, with commas or spaces, before or after MODEL:
--domain -2 -2 2 2."""


# ----------------------------------------------------------------------------
# options
# ----------------------------------------------------------------------------
def parse_domain(values, n_in: int):
    """The ``--domain`` text (``"-2,-2,2,2"`` or ``"-2 -2 2 2"``) as numbers;
    None gives the default box ``[-1, 1]^n_in``."""
    if values is None:
        return (-1.0, 1.0) if n_in == 1 else (-1.0, -1.0, 1.0, 1.0)
    text = ",".join([values] if isinstance(values, str) else values)
    parts = [t for t in re.split(r"[,\s]+", text) if t]
    try:
        return tuple(float(v) for v in parts)
    except ValueError as exc:
        raise ValueError(
            f"--domain must be numbers, e.g. --domain -2 -2 2 2 or --domain=-2,-2,2,2; got {text!r}"
        ) from exc


def load_slice(args, net):
    """``(net, domain, marks)``: ``net`` restricted to the ``--plane`` (three
    points) or ``--line`` (two points) of a ``.npy`` file, with the default
    domain around the points, or ``net`` itself on ``--domain``."""
    from .slices import Line, Plane

    if getattr(args, "method", None) == "theorem2":  # the map's local complexity: before any work
        require_no_max_units(net, f"regiongeom {args.command}", "theorem2")
    plane, line = getattr(args, "plane", None), getattr(args, "line", None)
    if plane is not None and line is not None:
        raise ValueError("pass either --plane or --line, not both")
    path, cls, k = (plane, Plane, 3) if plane is not None else (line, Line, 2)
    if path is None:
        if net.n_in > 2:
            raise ValueError(
                f"the model has {net.n_in} inputs: pass --plane POINTS.npy (three data points) or "
                "--line POINTS.npy (two) to look at it on a slice through them"
            )
        return net, parse_domain(args.domain, net.n_in), None
    try:
        pts = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path} as a .npy array ({exc}); write it with numpy.save") from exc
    if pts.shape[0] != k or pts[0].size != net.n_in:
        raise ValueError(
            f"{path} must hold {k} inputs of {net.n_in} entries each (shape ({k}, {net.n_in}) or "
            f"({k}, *input_shape)); got shape {pts.shape}"
        )
    s = cls.through(*pts)
    domain = s.bounds() if args.domain is None else parse_domain(args.domain, s.dim)
    sliced = net.restrict(s)
    return sliced, domain, (s.points if s.dim == 2 else None)


def _check_lc_options(args):
    """Validate the local-complexity options before any work; returns (sigma, n_samples, shape)."""
    from ._validate import integer_at_least, positive

    sigma = positive(args.sigma, "--sigma")
    n_samples = integer_at_least(args.samples, 2, "--samples")
    shape = integer_at_least(args.shape, 2, "--shape")
    if args.method == "definition":
        if args.eps is None:
            raise ValueError("--method definition needs --eps (the ball radius), e.g. --eps 0.02")
        positive(args.eps, "--eps")
        if not args.good:
            raise ValueError("--no-good applies to --method theorem2 only")
    elif args.eps is not None:
        raise ValueError("--eps is used only by --method definition (theorem2 is the eps -> 0 limit)")
    return sigma, n_samples, shape


def _check_max_regions(args):
    from ._validate import integer_at_least

    return integer_at_least(args.max_regions, 1, "--max-regions")


# ----------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------
def export_geojson(rm, loc, path):
    """Write regions (polygons with their region index) and locus as GeoJSON."""
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
    print(f"wrote {path}")


def _regions_summary(net, domain, max_regions):
    """Enumerate and print the counts shared by every command."""
    from .locus import linear_regions, nonlinear_locus
    from .regions import RegionLimitError, activation_regions

    try:
        rm = activation_regions(net, domain, max_regions=max_regions)
    except RegionLimitError as exc:
        per = re.search(r"roughly ([\d,]+) bytes per region", str(exc))
        mem = f" (about {per.group(1)} bytes per region)" if per else ""
        raise ValueError(
            f"more than --max-regions {max_regions:,} activation regions: pass a larger --max-regions N if "
            f"you have the memory{mem}, or a smaller --domain"
        ) from exc
    loc = nonlinear_locus(rm)
    unit = "points" if rm.dim == 1 else "length"
    print(f"network: {net!r}")
    print(f"domain: {domain}")
    print(f"activation regions: {len(rm):,}")
    print(f"linear regions: {len(linear_regions(rm)):,}")
    print(f"nonlinear locus {unit}: {loc.volume():.6g}")
    return rm, loc


def _grid_estimate(net, points, *, sigma, n_samples, method, eps, good, rng, progress):
    """One Monte Carlo run on the grid: the per-pixel density (the heat map) and
    the local complexity over the grid, with the standard error of
    :func:`~regiongeom.complexity.local_complexity` (per-sample averages)."""
    from .complexity import _check, _estimate, _summarise

    x, opts = _check(
        net, points, "points", sigma, n_samples, method, eps, good, True, rng, progress, 1, 65536
    )
    F = _estimate(net, x, rng, opts, reduce=False)  # (n_samples, P)
    return _summarise(F, opts), _summarise(F.mean(axis=1), opts)


def _summary(net, domain, args, stem, marks=None):
    """Regions, locus, LC over the domain and the Figure-1-style PNG."""
    from .grids import grid_points

    sigma, n_samples, shape = _check_lc_options(args)
    max_regions = _check_max_regions(args)
    points = grid_points(domain, shape)
    warm = None
    if args.method == "theorem2" and not hasattr(net, "stages"):  # a dense network's estimator
        from ._jit import theorem2_in_background
        from ._theorem2 import Packed, grid_route

        # first use: compiles while the engine does; the per-point kernels
        # only if the grid walk will not take the map (it hands over no pair
        # on most networks: if it does, they compile then)
        walk = grid_route(Packed(net), points, {"good": args.good, "rho": True})
        warm = theorem2_in_background(points=not walk)
    rm, loc = _regions_summary(net, domain, max_regions)
    if warm is not None:
        warm.wait()
    progress = False if args.no_progress else None
    eps = args.eps if args.method == "definition" else None
    density, lc = _grid_estimate(net, points, sigma=sigma, n_samples=n_samples,
                                 method=args.method, eps=eps, good=args.good, rng=args.seed, progress=progress)  # fmt: skip
    what = "Theorem 2" if args.good else "eq. 40 upper bound: Theorem 2 without the good indicator"
    if args.method == "definition":
        what = f"definition, eps={args.eps:g}"
    print(
        f"local complexity over the domain ({what}, sigma={sigma:g}, {n_samples} samples, "
        f"{shape}x{shape if rm.dim == 2 else 1} points): {lc.mean:.6g} +- {lc.stderr:.2g}"
    )
    if args.out is not None:
        import matplotlib

        matplotlib.use("Agg")
        from .plotting import figure1

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        fig, _ = figure1(net, domain, shape=shape, estimate=density, regions=rm, points=marks)
        png = out / f"{stem}.png"
        fig.savefig(png, dpi=150)
        print(f"wrote {png}")
    if args.geojson:
        export_geojson(rm, loc, args.geojson)
    return 0


# ----------------------------------------------------------------------------
# commands
# ----------------------------------------------------------------------------
def _cmd_demo(args):
    from .datasets import DEFAULT_DOMAIN, default_network

    return _summary(default_network(), DEFAULT_DOMAIN, args, "figure1_bunny")


def _cmd_map(args):
    _check_lc_options(args)
    _check_max_regions(args)
    net, domain, marks = load_slice(args, load_model(args.model, args.factory))
    return _summary(net, domain, args, Path(args.model).stem, marks)


def _cmd_regions(args):
    max_regions = _check_max_regions(args)
    net, domain, _ = load_slice(args, load_model(args.model, args.factory))
    rm, loc = _regions_summary(net, domain, max_regions)
    if args.geojson:
        export_geojson(rm, loc, args.geojson)
    return 0


def _common_options(p):
    p.add_argument("--max-regions", type=int, default=DEFAULT_MAX_REGIONS, metavar="N",
                   help=f"stop beyond N activation regions (default {DEFAULT_MAX_REGIONS:,})")  # fmt: skip
    p.add_argument(
        "--geojson", metavar="FILE", help="also write the regions and the locus to this GeoJSON file"
    )


def _lc_options(p, sigma_default):
    p.add_argument(
        "--out", default="regiongeom_out", help="output folder of the PNG (default ./regiongeom_out)"
    )
    p.add_argument("--sigma", type=float, default=sigma_default,
                   help=f"standard deviation of the bias noise (default {sigma_default})")  # fmt: skip
    p.add_argument("--samples", type=int, default=32, help="noise samples (default 32)")
    p.add_argument("--shape", type=int, default=128, metavar="N",
                   help="grid points per axis for the heat map and LC (default 128)")  # fmt: skip
    p.add_argument("--method", choices=["theorem2", "definition"], default="theorem2",
                   help="estimate f by Theorem 2 (default) or by its definition at radius --eps")  # fmt: skip
    p.add_argument("--eps", type=float, default=None, help="ball radius for --method definition")
    p.add_argument("--good", action=argparse.BooleanOptionalAction, default=True,
                   help="theorem2: keep the good-neuron indicator, i.e. Theorem 2 exactly (default); "
                        "--no-good drops it and gives the upper bound of eq. (40) that the paper's "
                        "Figure 1 shows")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _common_options(p)


def _model_options(p):
    p.add_argument("model", metavar="MODEL", help="a torch .pt/.pth or an .npz (see below)")
    p.add_argument("--domain", metavar="LO,HI|XMIN,YMIN,XMAX,YMAX",
                   help="the interval (1 input) or box (2 inputs), numbers separated by commas or spaces, "
                        "e.g. --domain -2 -2 2 2; default [-1, 1]^n, or the box around the --plane/--line "
                        "points in slice coordinates")  # fmt: skip
    p.add_argument("--plane", metavar="POINTS.npy",
                   help="three inputs (numpy.save of shape (3, n_in) or (3, *input_shape)): look at the "
                        "model on the plane through them")  # fmt: skip
    p.add_argument(
        "--line", metavar="POINTS.npy", help="two inputs: look at the model on the line through them"
    )
    p.add_argument(
        "--factory",
        metavar="MODULE:FUNCTION",
        help="for a state_dict file: a function (importable, no arguments) that builds the model",
    )


def build_parser():
    from .datasets import DEFAULT_SIGMA

    parser = argparse.ArgumentParser(
        prog="regiongeom",
        description="Exact linear regions, nonlinear locus and local complexity of piecewise-linear "
        "networks on 1D and 2D inputs.",
        epilog=MODEL_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser(
        "demo",
        help="Figure-1-style map and summary for the embedded bunny network",
        description="Enumerate the embedded default network (a ReLU MLP trained on a bunny silhouette) "
        "exactly, print activation regions, linear regions, locus length and the local complexity "
        "over the domain, and write the Figure-1-style PNG (regions | heat map of f) to --out.",
    )
    _lc_options(p, DEFAULT_SIGMA)
    p.set_defaults(func=_cmd_demo)
    kw = dict(epilog=MODEL_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p = sub.add_parser("map", help="the same map and summary for your model (.pt or .npz)",
                       description="Figure-1-style map, summary and optional GeoJSON for MODEL.", **kw)  # fmt: skip
    _model_options(p)
    _lc_options(p, DEFAULT_SIGMA)
    p.set_defaults(func=_cmd_map)
    p = sub.add_parser("regions", help="count activation regions, linear regions and locus length; export GeoJSON",
                       description="Enumerate the activation regions of MODEL exactly and print a summary.",
                       **kw)  # fmt: skip
    _model_options(p)
    _common_options(p)
    p.set_defaults(func=_cmd_regions)
    return parser


def _join_domain(argv):
    """``--domain -2 -2 2 2`` or ``--domain -2,-2,2,2`` -> ``--domain=-2,-2,2,2``: argparse would
    take a token starting with '-' for an option, and a list of values could swallow MODEL."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] != "--domain":
            out.append(argv[i])
            i += 1
            continue
        vals, j = [], i + 1
        while j < len(argv) and len(vals) < 4 and _is_numbers(argv[j]):
            vals.extend(t for t in argv[j].split(",") if t)
            j += 1
        if not vals:  # not numbers: argparse or parse_domain reports it
            out.append(argv[i])
            i += 1
            continue
        out.append("--domain=" + ",".join(vals))
        i = j
    return out


def _is_numbers(token):
    try:
        [float(t) for t in token.split(",") if t]
    except ValueError:
        return False
    return bool(token.strip(","))


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(_join_domain(sys.argv[1:] if argv is None else list(argv)))
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
