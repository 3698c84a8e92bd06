"""No two modules of robustmask import each other, directly or around a circle.

Every import counts, at the top, inside a function or under TYPE_CHECKING: a circle hidden by a
function-local import is still one concept split over two files (issue 18). Packages' __init__
files are left out: they only re-export their modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_names() -> dict[str, Path]:
    modules = {}
    for path in (SRC / "robustmask").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] != "__init__":
            modules[".".join(parts)] = path
    return modules


def imported(path: Path, modules: dict[str, Path]) -> set[str]:
    """The robustmask modules `path` imports (`from a.b import c` names a.b.c where that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in modules}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
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
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_around_a_circle():
    modules = module_names()
    graph = {name: imported(path, modules) - {name} for name, path in modules.items()}
    assert circles(graph) == []


def test_the_checker_sees_a_circle_through_a_function_local_import(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from robustmask.b import x\n")
    b.write_text("def f():\n    from robustmask.a import y\n")
    modules = {"robustmask.a": a, "robustmask.b": b}
    graph = {name: imported(path, modules) for name, path in modules.items()}
    assert circles(graph) == [["robustmask.a", "robustmask.b"]]
