"""The import graph matches docs/ARCHITECTURE.md: no cycles, and uir imports at module level only.

``lint-imports`` (.importlinter) checks the layers; these tests check what a layers contract cannot see: a cycle
among modules of one layer, and a function-local import that hides an edge from both.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

SRC = Path(__file__).resolve().parents[1] / "src" / "uir"
# A function-local import of a uir module is allowed only with one of these comments on its line, saying why.
ALLOWED_MARKS = ("# heavy:", "# optional:")


def _cycles(graph: grimp.ImportGraph, skip: set[str]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), modules in ``skip`` left out."""
    nodes = sorted(graph.modules - skip)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.find_modules_directly_imported_by(node) - skip):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.find_modules_directly_imported_by(node):
                found.append(sorted(component))

    for node in nodes:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    # The root package re-exports uir.api lazily (``uir.load``); nothing below imports it (see the next test).
    graph = grimp.build_graph("uir", cache_dir=None)
    assert len(graph.modules) > 50
    assert _cycles(graph, {"uir"}) == []


def test_nothing_imports_the_root_package():
    graph = grimp.build_graph("uir", cache_dir=None)
    importers = graph.find_modules_that_directly_import("uir")
    assert importers == set(), f"import uir.version (or the module you need), not the root package: {importers}"


def _function_local_uir_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, source)`` of every ``import uir...`` / ``from uir... import`` inside a function of ``path``."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found = []
    for function in ast.walk(ast.parse(text)):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom):  # a relative import (``from . import x``) in uir is a uir module
                modules = ["uir." + (node.module or "")] if node.level else [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            if any(m == "uir" or m.startswith("uir.") for m in modules):
                found.append((node.lineno, "\n".join(lines[node.lineno - 1 : node.end_lineno])))
    return found


def test_function_local_imports_are_marked():
    checked, unmarked = 0, []
    for path in sorted(SRC.rglob("*.py")):
        for line, source in _function_local_uir_imports(path):
            checked += 1
            if not any(mark in source for mark in ALLOWED_MARKS):
                unmarked.append(f"{path.relative_to(SRC.parent)}:{line}: {source.strip()}")
    assert checked > 0  # the scan sees the marked ones (uir.__getattr__'s uir.api, the optional extras)
    assert unmarked == [], "import at module level, or mark why not (docs/ARCHITECTURE.md):\n" + "\n".join(unmarked)


def test_the_scan_sees_unmarked_imports(tmp_path):
    module = tmp_path / "module.py"
    module.write_text(
        "import uir.io\n\n\ndef f():\n    from uir.methods import get_method\n\n"
        "    import uir.api  # heavy: torch\n    from uirx import y\n    from . import z\n    return get_method\n"
    )
    found = _function_local_uir_imports(module)
    assert [line for line, _ in found] == [5, 7, 9]
    assert [any(mark in source for mark in ALLOWED_MARKS) for _, source in found] == [False, True, False]
