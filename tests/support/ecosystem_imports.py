"""Every ``from workflows... import`` of the ecosystem's packages, by module (issue 26's survey).

Surveyed in llama-index-core 0.14.25, llama-index-utils-workflow 0.11.0,
openinference-instrumentation-llama-index 4.6.1, llama-index-observability-otel 0.7.0 (which
imports nothing from ``workflows``) and llama-agents-client 0.4.1. ``tests/test_ecosystem_imports.py``
imports each name here; the compat scenarios (``tests/compat_llamaindex``) survey the installed
releases again, so an import added by a newer release is caught too.
"""

ECOSYSTEM_IMPORTS: dict[str, list[str]] = {
    "workflows": ["Context", "Workflow", "__all__"],  # llama-agents-client, llama-index-utils-workflow
    "workflows.context": ["Context"],  # llama-index-core
    "workflows.context.external_context": ["ExternalContext"],  # llama-index-utils-workflow
    "workflows.context.serializers": ["BaseSerializer", "JsonSerializer", "PickleSerializer"],  # llama-agents-client, llama-index-core
    "workflows.context.state_store": ["DictState", "InMemoryStateStore", "StateStore"],  # llama-index-core
    "workflows.context.utils": ["get_qualified_name", "import_module_from_qualified_name"],  # llama-index-core
    "workflows.decorators": ["StepConfig", "step"],  # llama-index-core
    "workflows.errors": ["ContextSerdeError", "WorkflowCancelledByUser", "WorkflowConfigurationError", "WorkflowDone", "WorkflowRuntimeError", "WorkflowStepDoesNotExistError", "WorkflowTimeoutError", "WorkflowValidationError"],  # llama-index-core
    "workflows.events": ["Event", "EventType", "HumanResponseEvent", "InputRequiredEvent", "StartEvent", "StopEvent"],  # llama-agents-client, llama-index-core
    "workflows.handler": ["WorkflowHandler"],  # llama-index-core
    "workflows.representation": ["WorkflowGenericNode", "WorkflowGraph", "WorkflowGraphEdge", "WorkflowGraphNode", "WorkflowResourceConfigNode", "WorkflowResourceNode", "get_workflow_representation"],  # llama-agents-client, llama-index-utils-workflow
    "workflows.resource": ["Resource", "ResourceDefinition", "ResourceManager"],  # llama-index-core
    "workflows.retry_policy": ["ConstantDelayRetryPolicy", "RetryPolicy"],  # llama-index-core
    "workflows.runtime.types.results": ["AddCollectedEvent", "StepWorkerResult", "WaitingForEvent"],  # llama-index-core, llama-index-utils-workflow
    "workflows.runtime.types.step_function": ["SpanCancelledEvent", "WorkflowRunOutputEvent", "WorkflowStepOutputEvent"],  # openinference-instrumentation-llama-index
    "workflows.runtime.types.ticks": ["TickAddEvent", "TickStepResult", "WorkflowTick"],  # llama-index-utils-workflow
    "workflows.service": ["ServiceManager", "ServiceNotFoundError"],  # llama-index-core
    "workflows.types": ["RunResultT", "StopEventT"],  # llama-index-core
    "workflows.utils": ["BUSY_WAIT_DELAY", "StepSignatureSpec", "_get_param_types", "_get_return_types", "get_steps_from_class", "get_steps_from_instance", "inspect_signature", "is_free_function", "validate_step_signature"],  # llama-index-core
    "workflows.workflow": ["Workflow", "WorkflowMeta"],  # llama-index-core
}
