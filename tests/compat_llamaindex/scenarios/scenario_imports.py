"""Every ``from workflows... import`` in the installed ecosystem packages resolves on this engine.

The packages' sources are surveyed as installed (so a newer release's new import is
caught), then their modules that import ``workflows`` are imported for real.
"""

import ast
import importlib
import importlib.metadata
import warnings
from pathlib import Path

import workflows

# Distribution -> the modules of it that import ``workflows`` (imported for real below).
PACKAGES = {
    "llama-index-core": ["llama_index.core.workflow", "llama_index.core.workflow.service", "llama_index.core.agent.workflow"],
    "llama-index-utils-workflow": ["llama_index.utils.workflow"],
    "openinference-instrumentation-llama-index": ["openinference.instrumentation.llama_index._handler"],
    "llama-index-observability-otel": ["llama_index.observability.otel"],
    "llama-agents-client": ["llama_agents.client", "llama_agents.client.protocol.serializable_events"],
}


def _imports_of(distribution: str) -> dict[tuple[str, str], str]:
    """``{(module, name): file}`` for every ``from workflows... import name`` in the distribution."""
    found: dict[tuple[str, str], str] = {}
    for file in importlib.metadata.distribution(distribution).files or ():
        if file.suffix != ".py":
            continue
        path = Path(file.locate())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == "workflows" or node.module.startswith("workflows."):
                    for alias in node.names:
                        found.setdefault((node.module, alias.name), str(file))
    return found


# One test per check, not per package: the outer test maps scenario functions, not parameters.
def test_every_workflows_import_resolves():
    unresolved = []
    surveyed = 0
    for distribution in PACKAGES:
        for (module, name), file in sorted(_imports_of(distribution).items()):
            surveyed += 1
            try:
                imported = importlib.import_module(module)
            except ImportError as exc:
                unresolved.append(f"{distribution}: {module} ({file}): {exc}")
                continue
            if name != "*" and not hasattr(imported, name):
                unresolved.append(f"{distribution}: {module}.{name} ({file})")
    assert not unresolved, f"imports this engine lacks: {unresolved}"
    assert surveyed >= 50  # the survey found them (66 names in the releases of issue 26)


def test_the_modules_that_import_workflows_import():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for modules in PACKAGES.values():
            for module in modules:
                importlib.import_module(module)
    assert workflows.__file__.replace("\\", "/").split("/")[-3] == "src"


def test_openinference_instrumentor_instruments_and_uninstruments():
    from openinference.instrumentation.llama_index import LlamaIndexInstrumentor
    from opentelemetry.sdk.trace import TracerProvider

    instrumentor = LlamaIndexInstrumentor()
    instrumentor.instrument(tracer_provider=TracerProvider())
    try:
        from llama_index_instrumentation import get_dispatcher

        handlers = [type(h).__module__ for h in get_dispatcher().span_handlers]
        assert any(name.startswith("openinference.instrumentation.llama_index") for name in handlers), handlers
    finally:
        instrumentor.uninstrument()
