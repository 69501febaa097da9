"""The core's import graph, read from the source: the runtime sits below Context and Workflow.

The graph has an edge from a module to each module of ``src/workflows`` it imports when it
runs: at the top level or inside a function (a function-level import ties the two modules
just the same, only later). Imports under ``if TYPE_CHECKING:`` are left out: they are
annotations, never executed. ``from X import a`` is an edge to ``X.a`` when that is a module,
else to ``X``. A package's ``__init__`` is not an edge of every import below it: each
``workflows.*`` import runs ``workflows/__init__.py``, which loads everything, so counting
those would tie every module to every other; the graph says what each module itself names.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

RUNTIME = "workflows.runtime"
# The runtime gets what it needs of these passed in (RunConfig, RunOwner, WorkflowShape,
# StepConfig in runtime/steps.py), so it never imports them. ``workflows`` itself re-exports
# Context and Workflow.
ABOVE_THE_RUNTIME = ("workflows", "workflows.context", "workflows.workflow", "workflows.decorators")
# Leaf modules of the context package that the runtime uses (saved contexts need the
# serializers and the state store); they import nothing of the above.
CONTEXT_LEAVES = ("workflows.context.serializers", "workflows.context.state_store")


def module_files(src: Path = SRC) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted((src / "workflows").rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(source: str, module: str, is_package: bool) -> set[str]:
    """Absolute dotted names ``module`` imports when it runs (``X.a`` for ``from X import a``)."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
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


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    files = module_files(src)

    def resolve(name: str) -> str:
        # X.a is module X.a if there is one, else a name defined in X; outside modules resolve to "".
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        names = imported_names(path.read_text(), module, path.name == "__init__.py")
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


def is_above_the_runtime(module: str) -> bool:
    if module in CONTEXT_LEAVES:
        return False
    return any(module == name or (name != "workflows" and module.startswith(name + ".")) for name in ABOVE_THE_RUNTIME)


def in_runtime(module: str) -> bool:
    return module == RUNTIME or module.startswith(RUNTIME + ".")


def test_the_graph_reads_imports_as_python_runs_them():
    source = textwrap.dedent(
        """
        import typing
        from typing import TYPE_CHECKING
        from workflows.events import Event
        from . import journal
        from .steps import StepSpec
        if TYPE_CHECKING:
            from workflows.workflow import Workflow
        else:
            from workflows.errors import WorkflowRuntimeError
        if typing.TYPE_CHECKING:
            from workflows.context import Context
        def later():
            from workflows.decorators import step
        """
    )
    names = imported_names(source, "workflows.runtime.run", is_package=False)
    assert names == {
        "typing",
        "typing.TYPE_CHECKING",
        "workflows.events.Event",
        "workflows.runtime.journal",
        "workflows.runtime.steps.StepSpec",
        "workflows.errors.WorkflowRuntimeError",
        "workflows.decorators.step",
    }
    graph = import_graph()
    assert "workflows.runtime.run" in graph["workflows.workflow"]
    assert "workflows.events" in graph["workflows.runtime.routing"]
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_runtime_module_imports_context_workflow_or_decorators():
    graph = import_graph()
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if in_runtime(module)
        for target in targets
        if is_above_the_runtime(target)
    )
    assert upward == [], "the runtime imports what sits above it (move the name down, or pass it in):\n" + "\n".join(
        upward
    )


def test_the_runtime_does_not_reach_them_through_another_module():
    graph = import_graph()
    paths: list[str] = []
    for start in sorted(m for m in graph if in_runtime(m)):
        came_from: dict[str, str] = {start: ""}
        todo = [start]
        while todo:
            node = todo.pop()
            for target in sorted(graph[node]):
                if target in came_from:
                    continue
                came_from[target] = node
                if is_above_the_runtime(target):
                    path = [target]
                    while came_from[path[-1]]:
                        path.append(came_from[path[-1]])
                    paths.append(" -> ".join(reversed(path)))
                else:
                    todo.append(target)
    assert paths == [], "the runtime reaches what sits above it:\n" + "\n".join(paths)


def test_the_runtime_modules_import_each_other_without_a_cycle():
    graph = import_graph()
    runtime = {m: {t for t in targets if in_runtime(t)} for m, targets in graph.items() if in_runtime(m)}
    cycles = strongly_connected(runtime)
    report = [
        " <-> ".join(cycle) + "\n" + "\n".join(f"    {m} -> {sorted(runtime[m] & set(cycle))}" for m in cycle)
        for cycle in cycles
    ]
    assert cycles == [], "import cycles among the runtime's modules (TYPE_CHECKING aside):\n" + "\n".join(report)
