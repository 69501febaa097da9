"""Serializers: JSON with tagged Pydantic models and components, pickle fallback, allow-lists."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from pydantic import BaseModel

from workflows.context import BaseSerializer, JsonSerializer, PickleSerializer
from workflows.context.serializers import JsonPickleSerializer
from workflows.events import Event, StartEvent, StopEvent


class A(Event):
    x: int
    y: str = "d"


class Point(BaseModel):
    x: int
    y: int


class Component:
    """Stands in for a LlamaIndex component: has class_name, to_dict and from_dict."""

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def class_name(cls) -> str:
        return "Component"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Component:
        return cls(data["name"])


class Unjsonable:
    def __init__(self, n: int) -> None:
        self.n = n


def test_base_serializer_is_abstract_and_validation_context_is_a_no_op() -> None:
    with pytest.raises(TypeError):
        BaseSerializer()  # type: ignore[abstract]
    with JsonSerializer().validation_context():
        pass


def test_event_serializes_with_pydantic_tag_and_data() -> None:
    payload = json.loads(JsonSerializer().serialize(A(x=1, k=2)))
    assert payload == {
        "__is_pydantic": True,
        "value": {"x": 1, "y": "d", "_data": {"k": 2}},
        "qualified_name": f"{__name__}.A",
    }


def test_event_round_trips_to_same_class_with_fields_and_data() -> None:
    serializer = JsonSerializer()
    ev = A(x=1, k=2)
    restored = serializer.deserialize(serializer.serialize(ev))
    assert type(restored) is A
    assert restored == ev
    assert restored.to_dict() == {"k": 2}


def test_framework_events_round_trip() -> None:
    serializer = JsonSerializer()
    start = serializer.deserialize(serializer.serialize(StartEvent(topic="t")))
    assert type(start) is StartEvent and start.topic == "t"
    stop = serializer.deserialize(serializer.serialize(StopEvent(result={"a": 1})))
    assert type(stop) is StopEvent and stop.result == {"a": 1}


def test_nested_dicts_and_lists_of_models_round_trip() -> None:
    serializer = JsonSerializer()
    value = {"points": [Point(x=1, y=2), {"inner": Point(x=3, y=4)}], "n": 1, "s": "t", "none": None}
    assert serializer.deserialize(serializer.serialize(value)) == value


def test_component_serializes_through_to_dict_and_from_dict() -> None:
    serializer = JsonSerializer()
    text = serializer.serialize(Component("c1"))
    assert json.loads(text) == {
        "__is_component": True,
        "value": {"name": "c1"},
        "qualified_name": f"{__name__}.Component",
    }
    restored = serializer.deserialize(text)
    assert isinstance(restored, Component) and restored.name == "c1"


def test_event_with_dynamic_class_name_key_is_not_taken_for_a_component() -> None:
    serializer = JsonSerializer()
    restored = serializer.deserialize(serializer.serialize(Event(class_name="x")))
    assert type(restored) is Event and restored.class_name == "x"


def test_unserializable_value_raises_value_error_naming_its_type() -> None:
    with pytest.raises(ValueError, match="Failed to serialize value: .*Unjsonable"):
        JsonSerializer().serialize(Unjsonable(1))
    with pytest.raises(ValueError, match="Failed to serialize value"):
        JsonSerializer().serialize(Event(lock=threading.Lock()))


def test_allowed_types_accepts_listed_classes_and_names() -> None:
    by_class = JsonSerializer(allowed_types=[Point])
    assert by_class.deserialize(by_class.serialize(Point(x=1, y=2))) == Point(x=1, y=2)
    by_name = JsonSerializer(allowed_types=[f"{__name__}.Point"])
    assert by_name.deserialize(by_name.serialize(Point(x=1, y=2))) == Point(x=1, y=2)


def test_allowed_types_rejects_unlisted_classes_but_framework_events_resolve() -> None:
    serializer = JsonSerializer(allowed_types=[Point])
    with pytest.raises(ValueError, match="not allowed"):
        serializer.deserialize(serializer.serialize(A(x=1)))
    restored = serializer.deserialize(serializer.serialize(StartEvent(q=1)))
    assert type(restored) is StartEvent


def test_allowed_types_rebuilds_classes_that_cannot_be_imported() -> None:
    class Local(BaseModel):
        v: int

    serializer = JsonSerializer(allowed_types=[Local])
    assert serializer.deserialize(serializer.serialize(Local(v=3))) == Local(v=3)
    with pytest.raises(ValueError, match="cannot be imported"):
        JsonSerializer().deserialize(serializer.serialize(Local(v=3)))


def test_pickle_serializer_uses_json_when_possible() -> None:
    serializer = PickleSerializer()
    assert serializer.serialize([1, 2, 3]) == "[1, 2, 3]"
    assert serializer.deserialize("[1, 2, 3]") == [1, 2, 3]
    assert serializer.deserialize("11") == 11
    ev = serializer.deserialize(serializer.serialize(A(x=1, k=2)))
    assert type(ev) is A and ev.k == 2


def test_pickle_serializer_falls_back_to_pickle_for_unjsonable_values() -> None:
    serializer = PickleSerializer()
    text = serializer.serialize(Unjsonable(5))
    json.dumps(text)  # still a plain string, so it fits a JSON payload
    restored = serializer.deserialize(text)
    assert isinstance(restored, Unjsonable) and restored.n == 5


def test_pickle_serializer_rejects_garbage_with_value_error() -> None:
    with pytest.raises(ValueError, match="neither a pickle"):
        PickleSerializer().deserialize("not json, not pickle")


def test_json_pickle_serializer_is_an_alias() -> None:
    assert JsonPickleSerializer is PickleSerializer
    assert issubclass(PickleSerializer, JsonSerializer)
