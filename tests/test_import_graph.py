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

import textwrap
from pathlib import Path

from support.import_graph import import_graph, imported_names, strongly_connected

SRC = Path(__file__).resolve().parents[1] / "src"

RUNTIME = "workflows.runtime"
# The runtime gets what it needs of these passed in (RunConfig, RunOwner, WorkflowShape,
# StepConfig in runtime/steps.py), so it never imports them. ``workflows`` itself re-exports
# Context and Workflow.
ABOVE_THE_RUNTIME = ("workflows", "workflows.context", "workflows.workflow", "workflows.decorators")
# Leaf modules of the context package that the runtime uses (saved contexts need the
# serializers and the state store); they import nothing of the above.
CONTEXT_LEAVES = ("workflows.context.serializers", "workflows.context.state_store")


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
    graph = import_graph(SRC, "workflows")
    assert "workflows.runtime.run" in graph["workflows.workflow"]
    assert "workflows.events" in graph["workflows.runtime.routing"]
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_runtime_module_imports_context_workflow_or_decorators():
    graph = import_graph(SRC, "workflows")
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
    graph = import_graph(SRC, "workflows")
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
    graph = import_graph(SRC, "workflows")
    runtime = {m: {t for t in targets if in_runtime(t)} for m, targets in graph.items() if in_runtime(m)}
    cycles = strongly_connected(runtime)
    report = [
        " <-> ".join(cycle) + "\n" + "\n".join(f"    {m} -> {sorted(runtime[m] & set(cycle))}" for m in cycle)
        for cycle in cycles
    ]
    assert cycles == [], "import cycles among the runtime's modules (TYPE_CHECKING aside):\n" + "\n".join(report)
