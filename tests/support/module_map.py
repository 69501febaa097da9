"""The public names of LlamaIndex Workflows 2.26.1, by module (``shared/API.md`` section 0)."""

MODULE_MAP: dict[str, list[str]] = {
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
