"""The server's layers, read from its source: no import circle, and each layer imports only those below it.

Layers, from the bottom: ``store`` (records, stores, the worker), ``durable`` (the journal
writer and the runtime), ``runs`` (the service, live runs, placement), ``http`` (routes, wire
format, middleware), ``debugger`` (pages and their API), then ``server`` and ``cli``, which
put them together. Every import counts, ``if TYPE_CHECKING:`` ones included: an annotation
that names an upper layer ties the two just as well for a reader.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.import_graph import import_graph, strongly_connected

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "workflows_server"

# Each layer and the server's packages it must never import (directly).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "store": ("durable", "runs", "http", "debugger", "server", "cli", "telemetry"),
    "durable": ("runs", "http", "debugger", "server", "cli", "telemetry"),
    "runs": ("http", "debugger", "server", "cli"),
    "http": ("debugger", "server", "cli"),
    "debugger": ("server", "cli"),
}


def _layer(module: str) -> str:
    return module.removeprefix(PACKAGE + ".").split(".")[0] if module != PACKAGE else ""


def test_the_server_has_no_import_circle() -> None:
    graph = import_graph(SRC, PACKAGE, type_checking=True)
    assert "workflows_server.runs" in graph["workflows_server.server"]
    cycles = strongly_connected(graph)
    assert cycles == [], "import circles in the server:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_each_layer_imports_only_the_layers_below_it(layer: str) -> None:
    graph = import_graph(SRC, PACKAGE, type_checking=True)
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if _layer(module) == layer
        for target in targets
        if _layer(target) in FORBIDDEN[layer]
    )
    assert upward == [], f"{layer}/ imports a layer above it:\n" + "\n".join(upward)


def test_the_durable_layer_knows_nothing_of_http() -> None:
    durable = list((SRC / PACKAGE / "durable").rglob("*.py"))
    assert durable
    for path in durable:
        text = path.read_text()
        assert "starlette" not in text and "uvicorn" not in text, path
