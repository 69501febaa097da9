"""Events: dynamic fields, dumps, StopEvent quirks, serializable exceptions and events."""

from __future__ import annotations

import copy
import pickle
from datetime import datetime, timezone

import pytest
from pydantic import BaseModel, PrivateAttr, ValidationError

from workflows.events import (
    CollectionReleaseEvent,
    Event,
    HumanResponseEvent,
    IdleReleasedEvent,
    InputRequiredEvent,
    InternalDispatchEvent,
    SerializableEventType,
    SerializableOptionalEvent,
    SerializableOptionalException,
    StartEvent,
    StepFailedEvent,
    StepState,
    StepStateChanged,
    StopEvent,
    UnhandledEvent,
    UnreconstructedException,
    WorkflowCancelledEvent,
    WorkflowFailedEvent,
    WorkflowIdleEvent,
    WorkflowTimedOutEvent,
)


class A(Event):
    x: int
    y: str = "d"


class CustomStop(StopEvent):
    foo: str
    bar: int


class WithPrivate(Event):
    _secret: int = PrivateAttr(default=0)


class CustomError(Exception):
    pass


def test_dynamic_field_reads_as_attribute_item_and_get() -> None:
    ev = Event(a=1)
    assert ev.a == 1
    assert ev["a"] == 1
    assert ev.get("b") is None
    assert ev.get("b", 5) == 5


def test_missing_dynamic_attribute_raises_attribute_error_naming_the_class() -> None:
    with pytest.raises(AttributeError, match="'Event' object has no attribute 'nope'"):
        _ = Event().nope


def test_item_access_to_declared_field_raises_key_error() -> None:
    with pytest.raises(KeyError):
        A(x=1)["x"]


def test_declared_field_is_validated_and_required() -> None:
    assert A(x="3").x == 3
    with pytest.raises(ValidationError):
        A()  # type: ignore[call-arg]


def test_mapping_api_sees_only_dynamic_fields() -> None:
    ev = A(x=1, k=2, j=3)
    assert list(ev.keys()) == ["k", "j"]
    assert type(ev.keys()) is type({}.keys())
    assert list(ev.values()) == [2, 3]
    assert list(ev.items()) == [("k", 2), ("j", 3)]
    assert len(ev) == 2
    assert list(iter(ev)) == ["k", "j"]
    assert "k" in ev and "x" not in ev
    assert ev.to_dict() is ev._data
    assert ev.to_dict() == {"k": 2, "j": 3}


def test_empty_event_is_truthy() -> None:
    assert bool(Event()) is True


def test_setting_attributes_routes_declared_fields_and_dynamic_data() -> None:
    ev = A(x=1)
    ev.x = 5
    ev.extra = "e"
    ev["item"] = 7
    assert ev.x == 5
    assert ev.to_dict() == {"extra": "e", "item": 7}
    assert ev.item == 7


def test_private_attribute_keyword_is_set_directly_not_in_data() -> None:
    ev = WithPrivate(_secret=9, k=1)
    assert ev._secret == 9
    assert ev.to_dict() == {"k": 1}


def test_model_dump_has_declared_fields_defaults_and_data() -> None:
    assert A(x=1, k=2).model_dump() == {"x": 1, "y": "d", "_data": {"k": 2}}
    assert A(x=1).model_dump() == {"x": 1, "y": "d"}


def test_model_validate_restores_data_from_dump_and_unknown_keys() -> None:
    ev = A(x=1, k=2)
    restored = A.model_validate(ev.model_dump())
    assert restored == ev
    assert restored.to_dict() == {"k": 2}
    assert A.model_validate({"x": 1, "z": 3}).to_dict() == {"z": 3}


def test_json_dump_round_trips_through_model_validate_json() -> None:
    ev = A(x=1, k=[1, 2], when=datetime(2024, 1, 1, tzinfo=timezone.utc))
    restored = A.model_validate_json(ev.model_dump_json())
    assert restored.to_dict() == {"k": [1, 2], "when": "2024-01-01T00:00:00Z"}


def test_repr_shows_declared_fields_only() -> None:
    assert repr(StartEvent(topic="t")) == "StartEvent()"
    assert repr(A(x=1, k=2)) == "A(x=1, y='d')"


def test_equality_includes_dynamic_data() -> None:
    assert A(x=1, k=1) == A(x=1, k=1)
    assert A(x=1, k=1) != A(x=1, k=2)


def test_events_survive_pickle_deepcopy_and_model_copy() -> None:
    ev = A(x=1, k=[1])
    assert pickle.loads(pickle.dumps(ev)) == ev
    deep = copy.deepcopy(ev)
    deep.k.append(2)
    assert ev.k == [1]
    shallow = ev.model_copy()
    assert shallow._data == ev._data and shallow.k is ev.k  # a shallow copy shares the values
    shallow.extra_key = 1
    assert "extra_key" not in ev  # but has its own dynamic-field dict
    assert ev.model_copy(update={"k": 2}).k == 2 and ev.k == [1]


def test_subclass_may_override_init() -> None:
    class Greeting(Event):
        text: str

        def __init__(self, name: str, **params: object) -> None:
            super().__init__(text=f"hi {name}", **params)

    ev = Greeting("bob", mood="ok")
    assert ev.text == "hi bob"
    assert ev.mood == "ok"


def test_start_event_keeps_keywords_as_dynamic_data() -> None:
    ev = StartEvent(topic="x")
    assert ev.topic == "x"
    assert ev.get("missing") is None


def test_stop_event_result_forms() -> None:
    assert StopEvent(result=42).result == 42
    assert StopEvent({"a": 1}).result == {"a": 1}
    assert StopEvent().result is None


def test_stop_event_result_is_read_only() -> None:
    with pytest.raises(AttributeError):
        StopEvent(result=1).result = 2  # type: ignore[misc]


def test_stop_event_rejects_explicit_private_result() -> None:
    with pytest.raises(TypeError, match="_result"):
        StopEvent(_result=1)


def test_stop_event_dump_has_result_but_no_dynamic_data() -> None:
    assert StopEvent(result="foo").model_dump() == {"result": "foo"}
    assert StopEvent(result="foo", extra=1).model_dump() == {"result": "foo"}
    assert StopEvent().model_dump() == {}
    assert CustomStop(foo="foo", bar=42).model_dump() == {"foo": "foo", "bar": 42}


def test_stop_event_model_validate_reads_result() -> None:
    assert StopEvent.model_validate({"result": 5}).result == 5
    assert StopEvent.model_validate_json(StopEvent(result=[1]).model_dump_json()).result == [1]


def test_stop_event_repr_lists_dynamic_then_dumped_items() -> None:
    assert repr(StopEvent(foo="foo", result=42)) == "StopEvent(foo='foo', result=42)"
    assert repr(StopEvent()) == "StopEvent()"


def test_stop_event_str_is_str_of_result() -> None:
    assert str(StopEvent(result=3)) == "3"
    assert str(CustomStop(foo="f", bar=1)) == "None"


def test_stop_event_subclass_may_compute_result() -> None:
    class Computed(StopEvent):
        n: int

        def _get_result(self) -> int:
            return self.n * 2

    assert Computed(n=4).result == 8


def test_terminal_events_are_stop_events() -> None:
    for cls in (WorkflowTimedOutEvent, WorkflowCancelledEvent, WorkflowFailedEvent, IdleReleasedEvent):
        assert issubclass(cls, StopEvent)
    timed_out = WorkflowTimedOutEvent(timeout=1.5, active_steps=["s"])
    assert timed_out.model_dump() == {"timeout": 1.5, "active_steps": ["s"]}


def test_workflow_failed_event_dumps_exception_as_type_and_message() -> None:
    ev = WorkflowFailedEvent(step_name="s", exception=RuntimeError("Test failure"), attempts=1)
    assert ev.model_dump()["exception"] == {
        "exception_type": "builtins.RuntimeError",
        "exception_message": "Test failure",
    }
    assert ev.exception.args == ("Test failure",)


def test_workflow_failed_event_rebuilds_exception_type_on_load() -> None:
    ev = WorkflowFailedEvent(step_name="s", exception=CustomError("boom"))
    restored = WorkflowFailedEvent.model_validate_json(ev.model_dump_json())
    assert type(restored.exception) is CustomError
    assert str(restored.exception) == "boom"


def test_unimportable_or_non_exception_type_becomes_unreconstructed_exception() -> None:
    for type_name in ("no_such_module.Err", "builtins.int"):
        ev = WorkflowFailedEvent.model_validate(
            {"step_name": "s", "exception": {"exception_type": type_name, "exception_message": "m"}}
        )
        assert isinstance(ev.exception, UnreconstructedException)
        assert ev.exception.original_type == type_name
        assert str(ev.exception) == "m"


def test_step_failed_event_round_trips_input_event_of_its_own_class() -> None:
    failed_at = datetime(2024, 5, 1, tzinfo=timezone.utc)
    ev = StepFailedEvent(
        step_name="s",
        input_event=A(x=1, k=2),
        exception=ValueError("bad"),
        attempts=2,
        elapsed_seconds=0.5,
        failed_at=failed_at,
    )
    restored = StepFailedEvent.model_validate_json(ev.model_dump_json())
    assert type(restored.input_event) is A
    assert restored.input_event == A(x=1, k=2)
    assert type(restored.exception) is ValueError
    assert restored.failed_at == failed_at


def test_serializable_aliases_round_trip_in_a_model() -> None:
    class Holder(BaseModel):
        ev: SerializableOptionalEvent = None
        kind: SerializableEventType
        err: SerializableOptionalException = None

    holder = Holder(ev=StartEvent(q=1), kind=A, err=KeyError("k"))
    dumped = holder.model_dump(mode="json")
    assert dumped["kind"] == f"{A.__module__}.{A.__qualname__}"
    restored = Holder.model_validate(dumped)
    assert restored.kind is A
    assert type(restored.ev) is StartEvent and restored.ev.q == 1
    assert type(restored.err) is KeyError
    empty = Holder.model_validate(Holder(kind=StopEvent).model_dump())
    assert empty.ev is None and empty.err is None and empty.kind is StopEvent


def test_internal_events_share_a_base_and_carry_their_fields() -> None:
    for cls in (StepStateChanged, WorkflowIdleEvent, UnhandledEvent, CollectionReleaseEvent):
        assert issubclass(cls, InternalDispatchEvent)
    changed = StepStateChanged(
        name="s", step_state=StepState.RUNNING, worker_id="0", input_event_name="StartEvent"
    )
    assert changed.output_event_name is None
    assert changed.model_dump(mode="json")["step_state"] == "running"
    assert [s.value for s in StepState] == ["preparing", "running", "not_running"]
    unhandled = UnhandledEvent(event_type="A", qualified_name="m.A", step_name=None, idle=True)
    assert unhandled.idle is True


def test_human_in_the_loop_events_carry_conventional_keywords() -> None:
    assert InputRequiredEvent(prefix="p").prefix == "p"
    assert HumanResponseEvent(response="r").response == "r"
