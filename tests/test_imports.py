"""The package's import graph: no cycles, and ``data`` never imports ``models``.

Read from the source with ``ast``, every import counted wherever it is written (a function
body's too: a lazy import hides a cycle, it does not remove it), except under
``if TYPE_CHECKING:``. Importing ``a.b.c`` also runs the ``__init__`` of ``a.b``, so that is
an edge too, unless that package is one the importing module is itself inside.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules(src: Path, top: str) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package's __init__)."""
    out = {}
    for f in sorted((src / top).rglob("*.py")):
        parts = list(f.relative_to(src).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)
    return out


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph(src: Path = SRC, top: str = "lenet5") -> dict[str, set[str]]:
    """Module -> the modules of ``top`` it imports (see the module docstring)."""
    mods = _modules(src, top)

    def owner(name: str) -> str | None:  # the module a dotted name lives in
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for mod, (path, is_pkg) in mods.items():
        package = mod if is_pkg else mod.rpartition(".")[0]
        deps = set()
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" for a in node.names]
            for target in targets:
                if not target.startswith(top) or (dep := owner(target)) is None:
                    continue
                parts = dep.split(".")
                for i in range(1, len(parts) + 1):  # the packages on the way, then dep
                    step = ".".join(parts[:i])
                    if step != mod and not mod.startswith(step + "."):
                        deps.add(step)
        graph[mod] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(found)


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for w in graph.get(todo.pop(), ()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_no_import_cycles(graph):
    assert len(graph) > 30 and "lenet5.data.store" in reachable(graph, "lenet5.cli.common")
    assert cycles(graph) == []


def test_data_never_imports_models(graph):
    for mod in graph:
        if mod == "lenet5.data" or mod.startswith("lenet5.data."):
            bad = sorted(m for m in reachable(graph, mod) if m.split(".")[:2] == ["lenet5", "models"])
            assert not bad, f"{mod} imports {bad}"
    assert "lenet5.data.transforms" in graph["lenet5.models.registry"]  # Preprocess lives there


def test_the_checker_finds_a_cycle_hidden_in_a_function(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .a import f\n")
    (pkg / "sub" / "a.py").write_text("from ..b import g\n\ndef f():\n    return g\n")
    (pkg / "b.py").write_text("def g():\n    from .sub.a import f\n    return f\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from . import b\nimport os\n")
    g = import_graph(tmp_path, "pkg")
    assert g["pkg.b"] == {"pkg.sub", "pkg.sub.a"} and g["pkg.c"] == set()
    assert cycles(g) == [["pkg.b", "pkg.sub", "pkg.sub.a"]]
