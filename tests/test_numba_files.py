"""No njit function calls an njit function defined in another file.

numba's ``cache=True`` does not notice when an njit function called from
another file changes: the caller keeps running the old code. This test reads
every module of the package (ast) and fails on such a call, whether the
callee is imported by name (``from .x import f``) or reached through a
module (``from . import x as K; K.f()``).
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "regiongeom"
_JIT_NAMES = {"njit", "jit", "generated_jit", "vectorize", "guvectorize", "cfunc"}


def _is_jit(decorator):
    node = decorator.func if isinstance(decorator, ast.Call) else decorator
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
    return name in _JIT_NAMES


def _jit_functions(tree):
    """The jit-compiled functions defined at the top level of a module."""
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and any(_is_jit(d) for d in node.decorator_list)
    }


def _resolve(module, is_package, level, name):
    """The absolute module named by ``from <level dots><name> import`` in ``module``."""
    if level == 0:
        return name
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _imports(module, tree, is_package):
    """``(names, modules)``: local name -> (module, attribute) for the names
    imported from modules, local name -> module for the modules imported."""
    names, modules = {}, {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            src = _resolve(module, is_package, node.level, node.module or "")
            for alias in node.names:
                local = alias.asname or alias.name
                names[local] = (src, alias.name)
                modules[local] = f"{src}.{alias.name}"  # ``from . import x``: the module x
        elif isinstance(node, ast.Import):
            for alias in node.names:
                modules[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
    return names, modules


def cross_file_calls(sources):
    """Violations in ``sources`` (module name -> source text; packages named
    with a trailing ``.__init__``): ``"module.caller calls other.callee"``."""
    trees = {mod: ast.parse(src) for mod, src in sources.items()}
    canon = {mod.removesuffix(".__init__"): mod for mod in trees}
    jitted = {canon_name: set(_jit_functions(trees[mod])) for canon_name, mod in canon.items()}
    found = []
    for mod, tree in trees.items():
        is_package = mod.endswith(".__init__")
        name = mod.removesuffix(".__init__")
        names, modules = _imports(name, tree, is_package)
        for fname, fn in _jit_functions(tree).items():
            for node in ast.walk(fn):
                if not isinstance(node, ast.Call):
                    continue
                f = node.func
                if isinstance(f, ast.Name) and f.id in names and f.id not in jitted.get(name, ()):
                    src, attr = names[f.id]
                    if attr in jitted.get(src, ()):
                        found.append(f"{name}.{fname} calls {src}.{attr}")
                elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in modules:
                    src = modules[f.value.id]
                    if src != name and f.attr in jitted.get(src, ()):
                        found.append(f"{name}.{fname} calls {src}.{f.attr}")
    return found


def _package_sources():
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[".".join(parts)] = path.read_text()
    return out


def test_no_njit_call_crosses_a_file():
    sources = _package_sources()
    assert any(_jit_functions(ast.parse(s)) for s in sources.values())  # the checker sees the kernels
    assert cross_file_calls(sources) == []


KERNELS = """
from numba import njit

@njit(cache=True)
def helper(x):
    return x + 1

def plain(x):
    return x
"""


def test_the_check_catches_a_call_by_name():
    user = """
from numba import njit
from ._k import helper, plain

@njit(cache=True)
def kernel(x):
    return helper(x) + plain(x)
"""
    found = cross_file_calls({"pkg._k": KERNELS, "pkg.user": user, "pkg.__init__": ""})
    assert found == ["pkg.user.kernel calls pkg._k.helper"]


def test_the_check_catches_a_call_through_a_module():
    user = """
import numba
from . import _k as K

@numba.njit
def kernel(x):
    return K.helper(x)

def wrapper(x):
    return K.helper(x)  # a Python caller is fine
"""
    found = cross_file_calls(
        {"pkg._k": KERNELS, "pkg.sub.user": user.replace("from . import", "from .. import")}
    )
    assert found == ["pkg.sub.user.kernel calls pkg._k.helper"]


def test_the_check_allows_calls_within_a_file():
    own = (
        KERNELS
        + """
@njit(cache=True)
def kernel(x):
    return helper(x)
"""
    )
    assert cross_file_calls({"pkg._k": own}) == []
