"""Every public name of LlamaIndex Workflows' module map imports from the same module here."""

from __future__ import annotations

import importlib

import pytest

MODULE_MAP = {
    "workflows": ["Workflow", "Context", "step", "catch_error"],
    "workflows.events": [
        "Event", "StartEvent", "StopEvent", "InputRequiredEvent", "HumanResponseEvent", "StepFailedEvent",
        "WorkflowTimedOutEvent", "WorkflowCancelledEvent", "WorkflowFailedEvent", "IdleReleasedEvent",
        "InternalDispatchEvent", "StepStateChanged", "StepState", "WorkflowIdleEvent", "UnhandledEvent",
        "CollectionReleaseEvent", "DictLikeModel", "UnreconstructedException", "EventType", "SerializableEvent",
        "SerializableOptionalEvent", "SerializableException", "SerializableOptionalException", "SerializableEventType",
    ],
    "workflows.decorators": ["step", "catch_error", "StepConfig", "StepFunction", "CatchErrorHandler"],
    "workflows.workflow": ["Workflow", "WorkflowMeta"],
    "workflows.context": ["Context", "BaseSerializer", "JsonSerializer", "PickleSerializer"],
    "workflows.context.context": ["Context"],
    "workflows.context.serializers": ["BaseSerializer", "JsonSerializer", "PickleSerializer", "JsonPickleSerializer"],
    "workflows.context.state_store": ["StateStore", "InMemoryStateStore", "DictState", "MAX_DEPTH", "UnserializableKeyWarning"],
    "workflows.errors": [
        "WorkflowValidationError", "WorkflowConfigurationError", "WorkflowTimeoutError", "WorkflowRuntimeError",
        "WorkflowCancelledByUser", "WorkflowDone", "WorkflowStepDoesNotExistError", "ContextSerdeError", "ContextStateError",
    ],
    "workflows.handler": ["WorkflowHandler"],
    "workflows.retry_policy": [
        "RetryPolicy", "RetryInfo", "retry_policy", "ConstantDelayRetryPolicy", "ExponentialBackoffRetryPolicy",
        "retry_if_exception", "retry_if_exception_type", "retry_if_not_exception_type", "retry_unless_exception_type",
        "retry_if_exception_message", "retry_if_not_exception_message", "retry_if_exception_cause_type", "retry_any",
        "retry_all", "retry_always", "retry_never", "wait_fixed", "wait_none", "wait_exponential", "wait_incrementing",
        "wait_random", "wait_exponential_jitter", "wait_random_exponential", "wait_full_jitter", "wait_chain",
        "wait_combine", "stop_after_attempt", "stop_after_delay", "stop_before_delay", "stop_any", "stop_all",
        "stop_never", "RetryCondition", "WaitStrategy", "StopCondition",
    ],
    "workflows.resource": ["Resource", "ResourceConfig", "ResourceManager", "ResourceDefinition", "ResourceDescriptor"],
    "workflows.collect": ["Collect", "Cardinality", "All", "Take"],
    "workflows.testing": ["WorkflowTestRunner"],
    "workflows.testing.runner": ["WorkflowTestResult"],
    "workflows.representation": [
        "get_workflow_representation", "WorkflowGraph", "WorkflowGraphEdge", "WorkflowGraphNode", "WorkflowNodeBase",
        "WorkflowStepNode", "WorkflowEventNode", "WorkflowExternalNode", "WorkflowResourceNode",
        "WorkflowResourceConfigNode", "WorkflowGenericNode",
    ],
    "workflows.types": ["StopEventT", "RunResultT"],
    "workflows.plugins": ["BasicRuntime", "basic_runtime", "get_current_runtime"],
}


@pytest.mark.parametrize("module", sorted(MODULE_MAP))
def test_module_exports_its_public_names(module: str):
    imported = importlib.import_module(module)
    missing = [name for name in MODULE_MAP[module] if not hasattr(imported, name)]
    assert missing == []


def test_take_requires_a_positive_count():
    from workflows.collect import All, Collect, Take

    assert Collect().cardinality == All()
    assert Take(2).n == 2
    with pytest.raises(ValueError, match="n >= 1"):
        Take(0)


def test_workflows_use_the_basic_runtime_by_default():
    from workflows import Workflow, step
    from workflows.events import StartEvent, StopEvent
    from workflows.plugins import BasicRuntime, basic_runtime

    class W(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

    assert W().runtime is basic_runtime
    assert isinstance(basic_runtime, BasicRuntime)
