"""Reading a model file for the command line: ``.npz``, a pickled torch
model or state_dict (with a factory), or a ``torch.export`` program. Every
failure is a one-line ValueError that says what to do."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

_CONVERT = (
    'in Python, where the model can be built, run rg.from_torch(model).save("model.npz") and pass model.npz'
)


# ----------------------------------------------------------------------------
# reading models
# ----------------------------------------------------------------------------
def load_model(path, factory=None):
    """A Network from a torch ``.pt``/``.pth`` (a whole pickled module, or a
    ``state_dict`` with ``factory``) or an ``.npz`` (see ``regiongeom.cli.MODEL_HELP``).
    Every failure is a one-line ValueError that says what to do."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"model file {str(p)!r} does not exist")
    if factory is not None and p.suffix not in (".pt", ".pth"):
        raise ValueError(
            f"--factory builds a torch model for a state_dict file (.pt/.pth), not for {p.suffix!r}"
        )
    if p.suffix == ".npz":
        return _load_npz(p)
    if p.suffix in (".pt", ".pth"):
        return _load_torch(p, factory)
    if p.suffix == ".pt2":
        return _load_exported(p)
    raise ValueError(
        f"unknown model format {p.suffix!r}: pass a torch .pt/.pth (a whole pickled model), a torch.export "
        ".pt2 or an .npz (see regiongeom map --help)"
    )


def _load_npz(p):
    import zipfile

    from .network import Network

    def unreadable(exc):
        return ValueError(
            f"{p} is not a readable .npz network ({type(exc).__name__}: {exc}); write it with "
            "rg.Network.save or numpy.savez(path, W0=..., b0=..., ...)"
        )

    try:
        f = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise unreadable(exc) from exc
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise ValueError(f"{p} holds a single array, not a network: save W0, b0, ... with numpy.savez")
    with f:
        keys = set(f.files)
        n = sum(1 for k in keys if re.fullmatch(r"W\d+", k))
        if "n_layers" not in keys and (
            n == 0 or any(f"W{i}" not in keys or f"b{i}" not in keys for i in range(n))
        ):
            found = ", ".join(sorted(keys)[:8]) or "none"
            raise ValueError(
                f"{p}: an .npz model needs arrays W0, b0, W1, b1, ... (ReLU after every layer but the "
                f"last) or a file written by rg.Network.save; found keys: {found}"
            )
        try:
            if "n_layers" in keys:
                return Network.load(p)
            ws, bs = [f[f"W{i}"] for i in range(n)], [f[f"b{i}"] for i in range(n)]
        except (KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise unreadable(exc) from exc
    return Network.from_arrays(ws, bs, ["relu"] * (n - 1) + [None])


def _load_exported(p):
    """A ``torch.export`` program (``.pt2``): it needs no class on the path."""
    try:
        import torch
    except ImportError as exc:
        raise ValueError("reading a .pt2 program needs torch (pip install torch)") from exc
    import logging

    from .network import from_torch

    log = logging.getLogger("torch.export")
    level = log.level
    log.setLevel(logging.CRITICAL)  # torch logs a traceback before raising; the one line below says it
    try:
        program = torch.export.load(str(p))
    except Exception as exc:  # a corrupt or foreign file: zip, pickle and torch errors alike
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ValueError(
            f"{p}: torch.export.load failed ({type(exc).__name__}: {first}); is it a .pt2 program?"
        ) from exc
    finally:
        log.setLevel(level)
    args = program.example_inputs[0] if program.example_inputs else ()
    if len(args) != 1:
        raise ValueError(f"{p}: the program takes {len(args)} inputs; regiongeom needs a model of one input")
    return from_torch(program.module(), input_shape=tuple(args[0].shape[1:]))


def _factory_model(spec, state, p):
    """``module:function`` called with no arguments, with ``state`` loaded into it."""
    import importlib

    import torch

    mod_name, _, fn_name = spec.partition(":")
    if not mod_name or not fn_name:
        raise ValueError(f"--factory must be module:function (e.g. mypkg.models:make_net), got {spec!r}")
    try:
        fn = getattr(importlib.import_module(mod_name), fn_name)
    except ImportError as exc:
        raise ValueError(
            f"--factory: cannot import module {mod_name!r} ({exc}); put it on PYTHONPATH"
        ) from exc
    except AttributeError as exc:
        raise ValueError(f"--factory: module {mod_name!r} has no {fn_name!r}") from exc
    model = fn()
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"--factory {spec} returned a {type(model).__name__}, not a torch nn.Module")
    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # a checkpoint dict
    if not isinstance(state, dict):
        raise ValueError(f"{p} holds a {type(state).__name__}, not a state_dict for --factory")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ValueError(f"{p} does not fit the model of --factory {spec}: {first}") from exc
    return model.eval()


def _load_torch(p, factory=None):
    try:
        import torch
    except ImportError as exc:
        raise ValueError(
            "reading a .pt model needs torch (pip install torch; see the README for a CPU-only build), "
            f"or {_CONVERT}"
        ) from exc
    from .network import from_torch

    try:
        # a whole pickled module: only load files you trust
        obj = torch.load(p, map_location="cpu", weights_only=False)
    except (AttributeError, ModuleNotFoundError) as exc:
        raise ValueError(_unimportable(p, exc)) from exc
    except Exception as exc:  # a corrupt or foreign file: pickle, zip and torch errors alike
        raise ValueError(
            f"{p}: torch.load failed ({type(exc).__name__}: {exc}); is it a torch file?"
        ) from exc
    if factory is not None:
        return from_torch(_factory_model(factory, obj, p))
    if isinstance(obj, dict):
        raise ValueError(
            f"{p} holds only weights (a state_dict or checkpoint dict with keys like "
            f"{', '.join(map(repr, list(obj)[:3]))}), not the model: pass --factory module:function that "
            "builds the model, or save the whole model with torch.save(model, path)"
        )
    if not isinstance(obj, torch.nn.Module):
        raise ValueError(
            f"{p} holds a {type(obj).__name__}, not a torch model: save one with torch.save(model, path)"
        )
    return from_torch(obj)


def _unimportable(p, exc):
    """The one-line message for a pickled model whose class cannot be imported."""
    text = str(exc)
    m = re.search(r"Can't get attribute '([^']+)' on <module '([^']+)'", text)
    main_names = {"__main__", getattr(getattr(sys.modules["__main__"], "__spec__", None), "name", None)}
    if m and m.group(2) in main_names:
        return (
            f"{p} holds a pickled model of class {m.group(1)}, defined in the script that saved it, so it "
            f"cannot be imported here: {_CONVERT}, or move {m.group(1)} into a module on PYTHONPATH"
        )
    if m:
        what = f"class {m.group(1)} from module {m.group(2)}"
    else:
        m = re.search(r"No module named '([^']+)'", text)
        what = f"class from module {m.group(1)}" if m else "class"
    return (
        f"{p} holds a pickled model whose {what} cannot be imported here: make that module importable "
        f"(e.g. PYTHONPATH), or {_CONVERT}"
    )
