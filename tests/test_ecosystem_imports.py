"""Every name the ecosystem's packages import from ``workflows`` resolves to this engine's objects.

The list is ``support.ecosystem_imports`` (issue 26's survey); the real packages import
them in ``tests/compat_llamaindex`` (scenario_imports), which also surveys the installed
releases again. llama-agents-client is installed in ``.venv`` (scripts/setup.sh), so its
modules are imported here too.
"""

from __future__ import annotations

import importlib
import warnings

import pytest
from support.ecosystem_imports import ECOSYSTEM_IMPORTS

from workflows import Workflow, step
from workflows.context.serializers import JsonSerializer
from workflows.events import StartEvent, StopEvent


class Echo(Workflow):
    @step
    async def echo(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=ev.get("text"))


@pytest.mark.parametrize("module", sorted(ECOSYSTEM_IMPORTS))
def test_each_imported_name_resolves(module: str):
    imported = importlib.import_module(module)
    missing = [name for name in ECOSYSTEM_IMPORTS[module] if not hasattr(imported, name)]
    assert not missing, f"{module} lacks {missing}"


def test_openinference_events_are_those_the_bridge_sends():
    from llama_index_instrumentation.base import BaseEvent

    from workflows.instrumentation import llamaindex
    from workflows.runtime.types.step_function import (
        SpanCancelledEvent,
        WorkflowRunOutputEvent,
        WorkflowStepOutputEvent,
    )

    assert SpanCancelledEvent is llamaindex.SpanCancelledEvent
    assert WorkflowRunOutputEvent.class_name() == "workflow.output"
    assert WorkflowStepOutputEvent.class_name() == "step.output"
    assert issubclass(WorkflowStepOutputEvent, BaseEvent)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        from workflows.runtime.types import step_function

        step_function.Nope  # noqa: B018


def test_service_manager_keeps_named_workflows():
    from workflows.service import ServiceManager, ServiceNotFoundError

    with pytest.warns(DeprecationWarning, match="ServiceManager is deprecated"):
        services = ServiceManager()
    flow, fallback = Echo(), Echo()
    services.add("search", flow)
    assert services.get("search") is flow
    assert services.get("other", default=fallback) is fallback
    with pytest.raises(ServiceNotFoundError, match=r"Service other not found \(known services: search\)"):
        services.get("other")


def test_llama_agents_client_imports_on_this_engine():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = importlib.import_module("llama_agents.client")
        events = importlib.import_module("llama_agents.client.protocol.serializable_events")
    assert client.WorkflowClient.__module__ == "llama_agents.client.client"
    assert events.JsonSerializer is JsonSerializer and events.StopEvent is StopEvent
