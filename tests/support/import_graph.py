"""The import graph of a package, read from its source as Python runs it, and its import cycles.

Used by the tests that keep the layers of the core (``tests/test_import_graph.py``) and of
the server (``plugins/server/tests/test_layers.py``) apart.
"""

from __future__ import annotations

import ast
from pathlib import Path


def module_files(src: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` (a folder under ``src``), by dotted name."""
    files: dict[str, Path] = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(source: str, module: str, is_package: bool, *, type_checking: bool = False) -> set[str]:
    """Absolute dotted names ``module`` imports (``X.a`` for ``from X import a``): those it imports when it
    runs, and with ``type_checking`` those of its ``if TYPE_CHECKING:`` blocks too."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test) and not type_checking:
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]))
            elif isinstance(child, ast.Import):
                names.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, *([child.module] if child.module else [])])
                names.update(f"{base}.{alias.name}" for alias in child.names)
            else:
                visit(child)

    visit(ast.parse(source))
    return names


def import_graph(src: Path, package: str, *, type_checking: bool = False) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports (see ``imported_names``)."""
    files = module_files(src, package)

    def resolve(name: str) -> str:
        # X.a is module X.a if there is one, else a name defined in X; outside modules resolve to "".
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        names = imported_names(path.read_text(), module, path.name == "__init__.py", type_checking=type_checking)
        graph[module] = {resolve(name) for name in names} - {"", module}
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the components with more than one module (import cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


__all__ = ["import_graph", "imported_names", "module_files", "strongly_connected"]
