"""Where this engine's public signatures knowingly differ from LlamaIndex Workflows 2.26.1.

Each key is a ``module.Name`` or ``module.Name.method`` reported by
``tests/test_reference_signatures.py`` (or an ``fnmatch`` pattern over such keys), and
each value the reason the difference is kept. ``docs/compatibility.md`` lists every key
in backticks with the same reason; the test checks both that each entry still matches a
difference (stale entries must go) and that the docs mention it.
"""

_PYDANTIC_KWARGS = (
    "Same calls accepted: events take arbitrary keyword fields in both engines; this signature "
    "shows the **kwargs that the reference's hides."
)
_SERIALIZER_HOOK = (
    "The reference's pydantic wrap-serializer method; here the same dump comes from model_dump() "
    "without a public hook method."
)
_PRIVATE_ATTRIBUTES_HOOK = (
    "The post-init hook Pydantic adds to the reference's events to set up their private _data; "
    "here dynamic fields are Pydantic's extras, no hook is needed, and BaseModel.model_post_init "
    "(same signature) is what a caller reaches."
)
_RUNTIME_PLUMBING = (
    "The reference's runtime-plugin plumbing (its adapters and serialized ticks); this engine's plugin "
    "point is Runtime.open_journal, which receives typed journal records (docs/runtime.md)."
)

_STEP_KIND = (
    "An added keyword, kind= (default None: CHAIN), says what kind of work a step is for OpenInference "
    "(TOOL, RETRIEVER, ...); code written for the reference calls it unchanged."
)

SIGNATURE_ALLOWLIST: dict[str, str] = {
    **{
        f"workflows.events.{name}": _PYDANTIC_KWARGS
        for name in (
            "DictLikeModel", "Event", "StartEvent", "StopEvent", "InputRequiredEvent", "HumanResponseEvent",
            "InternalDispatchEvent", "IdleReleasedEvent", "StepFailedEvent", "StepStateChanged",
            "WorkflowCancelledEvent", "WorkflowFailedEvent", "WorkflowIdleEvent",
        )
    },
    "workflows.context.state_store.DictState": _PYDANTIC_KWARGS,
    "workflows.events.*.custom_model_dump": _SERIALIZER_HOOK,
    "workflows.context.state_store.DictState.custom_model_dump": _SERIALIZER_HOOK,
    "workflows.events.*.model_post_init": _PRIVATE_ATTRIBUTES_HOOK,
    "workflows.context.state_store.DictState.model_post_init": _PRIVATE_ATTRIBUTES_HOOK,
    "workflows.events.UnhandledEvent": (
        "idle defaults to False here (required upstream); the runtime always sets it. Also shows **kwargs."
    ),
    "workflows.events.WorkflowTimedOutEvent": (
        "active_steps defaults to [] here (required upstream). Also shows **kwargs."
    ),
    "workflows.events.CollectionReleaseEvent": (
        "The trigger of a list[E] collect step: its fields are stream_id, step_name and events (the reference "
        "names the binding, binding_id, instead of the step)."
    ),
    "workflows.plugins.BasicRuntime.*": _RUNTIME_PLUMBING,
    "workflows.handler.WorkflowHandler": (
        "Built by Workflow.run(), never by user code; its constructor takes this engine's run object."
    ),
    "workflows.context.*Serializer": (
        "Adds a keyword-only imported_models=True (a superset): Pydantic models of modules already imported "
        "resolve without an allow-list; imported_models=False refuses them (docs/security.md)."
    ),
    "workflows.context.*Serializer.resolve_class": (
        "The reference's type registry of allowed_types; here JsonSerializer(allowed_types=[...]) resolves "
        "names inside deserialize() and has no public resolver method."
    ),
    "workflows.context.*Serializer.with_types": (
        "Not provided: build a new JsonSerializer(allowed_types=[...]) with the extra classes instead."
    ),
    "workflows.context.serializers.*Serializer.resolve_class": "Same as for workflows.context (re-export).",
    "workflows.context.serializers.*Serializer.with_types": "Same as for workflows.context (re-export).",
    "workflows.context.state_store.InMemoryStateStore": (
        "initial_state is optional and a keyword-only state_type is added here (a superset of the reference's call)."
    ),
    "workflows.context.state_store.InMemoryStateStore.from_dict": (
        "Called by Context.from_dict; takes this engine's payload (format version 2) as data= and an extra "
        "keyword-only state_type."
    ),
    "workflows.context.state_store.InMemoryStateStore.get": (
        "The 'no default' marker is a named sentinel (MISSING) instead of Ellipsis; get(path) and "
        "get(path, default=x) behave the same."
    ),
    "workflows.context.state_store.InMemoryStateStore.add_seed": _RUNTIME_PLUMBING,
    "workflows.context.state_store.InMemoryStateStore.checkpoint": _RUNTIME_PLUMBING,
    "workflows.context.state_store.InMemoryStateStore.ensure_seeded": _RUNTIME_PLUMBING,
    "workflows.context.state_store.InMemoryStateStore.run_id": _RUNTIME_PLUMBING,
    "workflows.context.state_store.InMemoryStateStore.serialize_for_handoff": _RUNTIME_PLUMBING,
    "workflows.context.state_store.InMemoryStateStore.snapshot": _RUNTIME_PLUMBING,
    "workflows.decorators.step": _STEP_KIND,
    "workflows.step": _STEP_KIND,
    "workflows.decorators.StepConfig": (
        "Step metadata built by @step, not by users: fields are this engine's (keyword-built, with defaults), "
        "including those of joins, fan-out and collect steps (inputs, event_parameters, collect_parameter, "
        "collect_take, fan_out_types, fan_out_only)."
    ),
    "workflows.representation.WorkflowNodeBase": (
        "node_type is declared on the base here (every subclass fixes it); the reference declares it per subclass."
    ),
    "workflows.representation.WorkflowEventNode": "event_types defaults to [] here (required upstream).",
    "workflows.resource.Resource": (
        "Adds an optional description= shown on the resource's graph node; Resource(factory, cache) is the same call."
    ),
    "workflows.resource.ResourceDescriptor.*": (
        "This engine's descriptor protocol is name, cache, dependencies() and create(); the reference's "
        "resolve(manager)/set_localns()/set_type_annotation()/get_dependencies() serve its resolver."
    ),
    "workflows.resource.ResourceManager.get": (
        "Adds optional type_annotation and invocation_cache (a superset: get(descriptor) is the same call)."
    ),
    "workflows.resource.ResourceManager.resolution_scope": (
        "Not provided: non-cached values are scoped to one step invocation by the invocation_cache of get()."
    ),
    "workflows.retry_policy.RetryInfo": (
        "Fields have defaults here (RetryInfo() is the 'no retry yet' value); the reference requires all four."
    ),
    "workflows.testing.WorkflowTestRunner.run": (
        "start_event defaults to None (a fresh StartEvent per call) instead of one StartEvent() instance "
        "shared by every call."
    ),
    "workflows.testing.runner.WorkflowTestResult": "Adds an optional extras field (a superset).",
}
