"""Conformance: the public import surface and the event model (API.md §0, §1)."""

from __future__ import annotations

import pytest

from workflows.context.serializers import JsonSerializer
from workflows.events import (
    Event,
    StopEvent,
    WorkflowCancelledEvent,
    WorkflowFailedEvent,
    WorkflowTimedOutEvent,
)


class Declared(Event):
    x: int
    y: str = "d"


# checklist 1
def test_top_level_names_events_and_errors_import_from_their_modules() -> None:
    import workflows
    from workflows import Context, Workflow, catch_error, step
    from workflows.errors import (
        ContextSerdeError,
        ContextStateError,
        WorkflowCancelledByUser,
        WorkflowConfigurationError,
        WorkflowRuntimeError,
        WorkflowTimeoutError,
        WorkflowValidationError,
    )
    from workflows.events import HumanResponseEvent, InputRequiredEvent, StartEvent

    assert sorted(workflows.__all__) == ["Context", "Workflow", "catch_error", "step"]
    assert callable(step) and callable(catch_error)
    assert isinstance(Workflow, type) and isinstance(Context, type)
    for event_cls in (StartEvent, StopEvent, InputRequiredEvent, HumanResponseEvent):
        assert issubclass(event_cls, Event)
    for error_cls in (
        ContextSerdeError,
        ContextStateError,
        WorkflowCancelledByUser,
        WorkflowConfigurationError,
        WorkflowRuntimeError,
        WorkflowTimeoutError,
        WorkflowValidationError,
    ):
        assert issubclass(error_cls, Exception)


# checklist 2
def test_dynamic_fields_read_by_attribute_item_and_get() -> None:
    ev = Event(a=1)
    assert ev.a == 1
    assert ev["a"] == 1
    assert ev.get("b") is None
    assert ev.get("b", 5) == 5


# checklist 3
def test_missing_dynamic_attribute_raises_attribute_error_and_declared_item_raises_key_error() -> None:
    with pytest.raises(AttributeError):
        Event(a=1).missing  # noqa: B018
    with pytest.raises(KeyError):
        Declared(x=1)["x"]


# checklist 4
def test_mapping_protocol_sees_only_dynamic_keys_and_events_are_always_truthy() -> None:
    ev = Declared(x=1, k=2, j=3)
    assert list(ev.keys()) == ["k", "j"]
    assert list(ev.values()) == [2, 3]
    assert list(ev.items()) == [("k", 2), ("j", 3)]
    assert len(ev) == 2
    assert "k" in ev and "x" not in ev
    assert list(iter(ev)) == ["k", "j"]
    assert ev.to_dict() == {"k": 2, "j": 3}
    assert bool(Event()) is True


# checklist 5
def test_model_dump_carries_dynamic_data_and_model_validate_restores_it() -> None:
    dumped = Declared(x=1, k=2).model_dump()
    assert dumped == {"x": 1, "y": "d", "_data": {"k": 2}}
    restored = Declared.model_validate(dumped)
    assert restored.x == 1 and restored.k == 2
    assert restored == Declared(x=1, k=2)


# checklist 6
def test_json_serializer_round_trips_an_event_to_the_same_class() -> None:
    serializer = JsonSerializer(allowed_types=[Declared])  # classes outside a workflow need allowing
    original = Declared(x=3, y="z", extra=[1, 2])
    back = serializer.deserialize(serializer.serialize(original))
    assert type(back) is Declared
    assert back.x == 3 and back.y == "z"
    assert back.to_dict() == {"extra": [1, 2]}
    assert back == original


# checklist 7
def test_stop_event_result_dump_and_repr() -> None:
    assert StopEvent(result=42).result == 42
    assert StopEvent({"a": 1}).result == {"a": 1}
    assert StopEvent().result is None
    assert StopEvent(result="foo").model_dump() == {"result": "foo"}
    assert repr(StopEvent(foo="foo", result=42)) == "StopEvent(foo='foo', result=42)"


# checklist 8
def test_terminal_events_are_stop_events_and_failed_event_dumps_its_exception() -> None:
    for terminal in (WorkflowTimedOutEvent, WorkflowCancelledEvent, WorkflowFailedEvent):
        assert issubclass(terminal, StopEvent)
    failed = WorkflowFailedEvent(step_name="s", exception=RuntimeError("Test failure"))
    assert failed.model_dump()["exception"] == {
        "exception_type": "builtins.RuntimeError",
        "exception_message": "Test failure",
    }
