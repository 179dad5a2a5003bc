"""The layout of ``prune``: no import circle between its modules, the compatibility modules re-export the same
objects as the new homes, and each pruning method imports on its own without the file format (``prune.io``).

The import graph is read from the source (``ast``), not from ``sys.modules``, so an import inside a function (a
lazy import) is an edge like any other: a circle closed only at call time is still a circle. An edge goes to the
module imported (``from .models.specs import build_model`` -> ``prune.models.specs``; ``from . import svd`` ->
``prune.svd``). Importing ``a.b.c`` also runs the ``__init__`` of package ``a.b`` first; for an import at module
level (what runs while the importer itself is being imported) that is an edge to the package too, unless the
importer is inside it or the package is the root ``prune`` (whose ``__init__`` every submodule runs first by
construction, so it would close a trivial circle with each module it re-exports).
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import prune
import prune.methods

ROOT = Path(__file__).resolve().parents[1]

# compatibility module -> the modules its names moved to
SHIMS = {
    "prune.sparsify": ["prune.masks", "prune.methods.magnitude", "prune.methods.singular_vectors",
                       "prune.methods.mp_cycles"],
    "prune.svd": ["prune.methods.svd"],
    "prune.spectral_sparsify": ["prune.methods.spectral_sparsify"],
}
# modules that re-export (part of) their public names from a module split out of them
REEXPORTS = {
    "prune.models.registry": ["prune.models.specs"],
    "prune.models.resolve": ["prune.models.source"],
    "prune.models": ["prune.models.specs"],
}


def _all_modules() -> list[str]:
    """Every module and package of prune (pkgutil), the root included."""
    names = ["prune"]
    for info in pkgutil.walk_packages(prune.__path__, "prune."):
        names.append(info.name)
    return names


def _resolve(importer: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    """The absolute module name of a ``from X import ...`` (relative levels resolved from ``importer``)."""
    if not node.level:
        return node.module or ""
    parts = importer.split(".")
    if not is_pkg:
        parts = parts[:-1]  # a module's relative imports start from its package
    parts = parts[:len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


class _Imports(ast.NodeVisitor):
    """(target, imported names, line, at module level) of every import statement, inside functions included."""

    def __init__(self) -> None:
        self.found: list[tuple[str | ast.ImportFrom, list[str], int, bool]] = []
        self._depth = 0

    def _scope(self, node) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _scope

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.found.append((a.name, [], node.lineno, self._depth == 0))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.found.append((node, [a.name for a in node.names], node.lineno, self._depth == 0))


def import_edges(sources: dict[str, tuple[str, bool]]) -> dict[str, dict[str, str]]:
    """importer -> {imported module: where ("file line N", "lazy" or "package init")} among ``sources``.

    ``sources`` maps a module name to (its source text, whether it is a package).
    """
    known = set(sources)
    edges: dict[str, dict[str, str]] = {m: {} for m in known}

    def add(src: str, dst: str, why: str) -> None:
        if dst in known and dst != src:
            edges[src].setdefault(dst, why)

    for name, (text, is_pkg) in sources.items():
        visitor = _Imports()
        visitor.visit(ast.parse(text))
        for target, names, line, top in visitor.found:
            where = f"{name} line {line}" + ("" if top else " (inside a function)")
            if isinstance(target, ast.ImportFrom):
                base = _resolve(name, is_pkg, target)
                dsts = [f"{base}.{n}" if f"{base}.{n}" in known else base for n in names]
            else:
                dsts = [max((m for m in known if target == m or target.startswith(m + ".")), key=len, default="")]
            for dst in dsts:
                add(name, dst, where)
                if not top:
                    continue
                parts = dst.split(".")
                for k in range(2, len(parts)):  # the packages above dst, the root excluded
                    pkg = ".".join(parts[:k])
                    if name != pkg and not name.startswith(pkg + "."):
                        add(name, pkg, f"{where}, runs the __init__ of {pkg}")
    return edges


def find_cycles(edges: dict[str, dict[str, str]]) -> list[tuple[list[str], list[str]]]:
    """(one shortest cycle, first module repeated last; all modules of its component) per strongly connected
    component with a cycle."""
    index, low, stack, on, comps = {}, {}, [], set(), []

    def strong(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(set(comp))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    cycles = []
    for comp in comps:  # breadth first from the smallest name back to itself, inside the component: a shortest cycle
        start = min(comp)
        prev, frontier, last = {}, [start], None
        while last is None:
            nxt = []
            for v in frontier:
                for w in sorted(edges[v]):
                    if w == start and last is None:
                        last = v
                    elif w in comp and w != start and w not in prev:
                        prev[w] = v
                        nxt.append(w)
            frontier = nxt
        path = [last]
        while path[-1] != start:
            path.append(prev[path[-1]])
        cycles.append((path[::-1] + [start], sorted(comp)))
    return cycles


def _describe(found: tuple[list[str], list[str]], edges: dict[str, dict[str, str]]) -> str:
    cycle, comp = found
    return (" -> ".join(cycle) + "\n    " + "\n    ".join(f"{a} -> {b}: {edges[a][b]}" for a, b in zip(cycle, cycle[1:]))
            + (f"\n    (the circle runs through all of {comp})" if len(comp) > len(cycle) - 1 else ""))


def _prune_sources() -> dict[str, tuple[str, bool]]:
    out = {}
    for name in _all_modules():
        spec = importlib.util.find_spec(name)
        out[name] = (Path(spec.origin).read_text(), spec.submodule_search_locations is not None)
    return out


def test_the_checked_copy_is_this_checkout():
    assert Path(prune.__file__).resolve().parent == ROOT / "prune", prune.__file__


def test_prune_has_no_import_cycle():
    edges = import_edges(_prune_sources())
    cycles = find_cycles(edges)
    assert not cycles, "import cycles in prune:\n" + "\n".join(_describe(c, edges) for c in cycles)


def test_import_graph_sees_lazy_imports_and_the_one_way_edges():
    """The graph is not empty or blind to imports inside functions (the cycle test would then pass vacuously)."""
    edges = import_edges(_prune_sources())
    assert "inside a function" in edges["prune.io"]["prune.models.specs"]  # build_base's import
    assert "inside a function" in edges["prune.io"]["prune.models.source"]
    assert "prune.io" in edges["prune.models.registry"]  # registry -> io, and not back
    assert "prune.models.registry" not in edges["prune.io"] and "prune.models.resolve" not in edges["prune.io"]
    assert "prune.regularize" in edges["prune.methods.mp_cycles"]  # the cycle pipeline -> regularize, one way
    assert edges["prune.regularize"].keys() & {"prune.masks"} and "prune.sparsify" not in edges["prune.regularize"]
    assert "prune.methods" in edges["prune"]  # a package init reached through prune.methods.magnitude


def test_cycle_finder_reports_a_lazy_cycle():
    """The detector itself: a circle closed by an import inside a function is found and named."""
    sources = {
        "pkg": ("", True),
        "pkg.a": ("from .b import g\n\ndef f():\n    return g()\n", False),
        "pkg.b": ("def g():\n    from .c import h\n    return h()\n", False),
        "pkg.c": ("def h():\n    from pkg import a\n    return a\n", False),
        "pkg.d": ("from . import a\n", False),
    }
    edges = import_edges(sources)
    cycles = find_cycles(edges)
    assert cycles == [(["pkg.a", "pkg.b", "pkg.c", "pkg.a"], ["pkg.a", "pkg.b", "pkg.c"])]
    assert "pkg.c -> pkg.a: pkg.c line 2 (inside a function)" in _describe(cycles[0], edges)
    # an import at module level of a sub-package's module also runs that sub-package's __init__
    sources = {"pkg": ("", True), "pkg.sub": ("from ..x import y\n", True), "pkg.sub.m": ("", False),
               "pkg.x": ("from .sub.m import z\n", False)}
    edges = import_edges(sources)
    assert find_cycles(edges) == [(["pkg.sub", "pkg.x", "pkg.sub"], ["pkg.sub", "pkg.x"])]
    assert "runs the __init__ of pkg.sub" in _describe(find_cycles(edges)[0], edges)


@pytest.mark.parametrize("shim", sorted(SHIMS))
def test_shim_reexports_the_same_objects(shim):
    old = importlib.import_module(shim)
    homes = [importlib.import_module(m) for m in SHIMS[shim]]
    assert (old.__doc__ or "").startswith("Kept for compatibility"), old.__doc__
    # every public name of the new homes, as the same object
    for home in homes:
        public = set(home.__all__) | {n for n, v in vars(home).items() if not n.startswith("_")
                                      and getattr(v, "__module__", None) == home.__name__}
        missing = sorted(n for n in public if not hasattr(old, n))
        assert not missing, f"{shim} lacks {missing} of {home.__name__}"
        for n in public:
            assert getattr(old, n) is getattr(home, n), f"{shim}.{n} is not {home.__name__}.{n}"
    # everything the shim holds (private helpers included) is the object of one new home
    held = {n: v for n, v in vars(old).items() if not n.startswith("__")}
    assert held, shim
    for n, v in held.items():
        owners = [h.__name__ for h in homes if n in vars(h) and vars(h)[n] is v]
        assert owners, f"{shim}.{n} is not an object of {SHIMS[shim]}"
    # its __all__ (the old public API) resolves
    assert all(hasattr(old, n) for n in old.__all__)


@pytest.mark.parametrize("module", sorted(REEXPORTS))
def test_split_modules_reexport_the_same_objects(module):
    mod = importlib.import_module(module)
    for home in map(importlib.import_module, REEXPORTS[module]):
        names = [n for n in home.__all__ if n in getattr(mod, "__all__", vars(mod))]
        assert names, f"{module} re-exports nothing of {home.__name__}"
        for n in names:
            assert getattr(mod, n) is getattr(home, n), f"{module}.{n} is not {home.__name__}.{n}"


def test_top_level_names_are_unchanged():
    """prune's public names import as before; ``prune.spectral_sparsify`` stays the function after its module loads."""
    importlib.import_module("prune.spectral_sparsify")
    from prune import spectral_sparsify

    from prune.methods.spectral_sparsify import spectral_sparsify as home
    assert spectral_sparsify is home and prune.spectral_sparsify is home
    assert prune.sparsify is sys.modules["prune.sparsify"] and prune.svd is sys.modules["prune.svd"]
    for n in prune.__all__:
        assert getattr(prune, n) is not None
    from prune.methods import magnitude_prune, mp_truncate, rmt_cycle_prune
    assert (magnitude_prune, mp_truncate, rmt_cycle_prune) == (prune.magnitude_prune, prune.mp_truncate,
                                                               prune.rmt_cycle_prune)


METHOD_MODULES = sorted(f"prune.methods.{i.name}" for i in pkgutil.iter_modules(prune.methods.__path__))


def test_method_modules_are_the_families():
    assert METHOD_MODULES == ["prune.methods." + n for n in (
        "magnitude", "mp_cycles", "seb", "ser", "singular_vectors", "spectral_sparsify", "svd")]


@pytest.mark.parametrize("module", METHOD_MODULES)
def test_method_module_imports_alone_without_the_file_format(module):
    code = ("import importlib, sys\n"
            f"m = importlib.import_module({module!r})\n"
            "assert m.__file__.startswith(sys.argv[1]), m.__file__\n"
            "print(sorted(n for n in sys.modules if n == 'prune.io' or n.startswith('prune.models')))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]", f"importing {module} also imported {proc.stdout.strip()}"
