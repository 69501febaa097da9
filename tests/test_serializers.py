"""Serializers: JSON with tagged Pydantic models and components, pickle fallback, allow-lists."""

from __future__ import annotations

import json
import math
import threading
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field, WrapSerializer

from workflows.context import BaseSerializer, JsonSerializer, PickleSerializer
from workflows.context.serializers import JsonPickleSerializer, known_types
from workflows.errors import ContextSerdeError
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


def trusting() -> JsonSerializer:
    """A serializer that may rebuild this module's test classes."""
    return JsonSerializer(allowed_types=[A, Point, Component])


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
    serializer = trusting()
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
    serializer = trusting()
    value = {"points": [Point(x=1, y=2), {"inner": Point(x=3, y=4)}], "n": 1, "s": "t", "none": None}
    assert serializer.deserialize(serializer.serialize(value)) == value


def test_component_serializes_through_to_dict_and_from_dict() -> None:
    serializer = trusting()
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
    serializer = JsonSerializer(allowed_types=[Point], imported_models=False)
    with pytest.raises(ContextSerdeError, match=f"Type '{__name__}.A' is not allowed.*allowed_types"):
        serializer.deserialize(serializer.serialize(A(x=1)))
    restored = serializer.deserialize(serializer.serialize(StartEvent(q=1)))
    assert type(restored) is StartEvent


def test_allowed_types_rebuilds_classes_that_cannot_be_imported() -> None:
    class Local(BaseModel):
        v: int

    serializer = JsonSerializer(allowed_types=[Local])
    assert serializer.deserialize(serializer.serialize(Local(v=3))) == Local(v=3)
    by_name = JsonSerializer(allowed_types=[qualified(Local)])
    with pytest.raises(ContextSerdeError, match="cannot be imported"):
        by_name.deserialize(serializer.serialize(Local(v=3)))


def qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


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


# --- issue 16: hostile payloads, error messages, floats, depth -------------------------------

SECRET = "sk-live-0123456789abcdef"


class Secretive:
    """Not JSON-serializable; its repr would leak a secret if an error message embedded it."""

    def __repr__(self) -> str:
        return f"Secretive({SECRET})"


def _tagged(name: str, tag: str = "__is_pydantic") -> str:
    return json.dumps({tag: True, "value": {}, "qualified_name": name})


@pytest.mark.parametrize("tag", ["__is_pydantic", "__is_component"])
def test_a_payload_naming_a_module_does_not_import_it(tag: str, tmp_path: Any, monkeypatch: Any) -> None:
    # A module whose import has a visible effect: it writes a file.
    marker = tmp_path / "imported"
    (tmp_path / "hostile_payload_module.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nclass Evil:\n    pass\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ContextSerdeError, match="'hostile_payload_module.Evil' is not allowed"):
        JsonSerializer().deserialize(_tagged("hostile_payload_module.Evil", tag))
    assert not marker.exists()
    import sys

    assert "hostile_payload_module" not in sys.modules


def test_this_module_is_not_imported_by_a_payload(capsys: Any) -> None:
    import sys

    had_this = "this" in sys.modules
    with pytest.raises(ContextSerdeError, match="not allowed"):
        JsonSerializer().deserialize(_tagged("this.Nope"))
    assert ("this" in sys.modules) == had_this
    assert "Zen of Python" not in capsys.readouterr().out


def test_nested_event_and_exception_names_in_a_framework_event_are_not_imported(tmp_path: Any, monkeypatch: Any) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "hostile_nested_module.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nclass Boom(Exception):\n    pass\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    failed = {
        "__is_pydantic": True,
        "qualified_name": "workflows.events.StepFailedEvent",
        "value": {
            "step_name": "s",
            "input_event": {"qualified_name": "workflows.events.StartEvent", "value": {}},
            "exception": {"exception_type": "hostile_nested_module.Boom", "exception_message": "m"},
            "attempts": 1,
            "elapsed_seconds": 0.0,
            "failed_at": "2024-01-01T00:00:00Z",
        },
    }
    restored = JsonSerializer().deserialize(json.dumps(failed))
    # The exception is kept as its message and type name, never imported.
    assert type(restored.exception).__name__ == "UnreconstructedException"
    assert restored.exception.original_type == "hostile_nested_module.Boom"
    failed["value"]["input_event"] = {"qualified_name": "hostile_nested_module.Boom", "value": {}}
    with pytest.raises(ContextSerdeError, match="input_event.*not allowed"):
        JsonSerializer().deserialize(json.dumps(failed))
    assert not marker.exists()


def test_allow_extends_the_allow_list_by_class_name_and_module_pattern() -> None:
    serializer = JsonSerializer()
    assert serializer.allowed_types == ()
    assert serializer.allow(Point) is serializer
    serializer.allow(f"{__name__}.*")
    assert serializer.allowed_types == (f"{__name__}.*", f"{__name__}.Point")
    assert serializer.deserialize(serializer.serialize(A(x=2))) == A(x=2)  # through the module pattern
    with pytest.raises(TypeError, match="allowed_types entries"):
        serializer.allow(3)  # type: ignore[arg-type]


def test_known_types_scope_resolves_without_an_allow_list() -> None:
    serializer = JsonSerializer(imported_models=False)
    text = serializer.serialize(A(x=1))
    with known_types([A]):
        assert serializer.deserialize(text) == A(x=1)
    with pytest.raises(ContextSerdeError):
        serializer.deserialize(text)


def test_a_name_of_a_non_model_class_is_refused() -> None:
    serializer = JsonSerializer(allowed_types=[Unjsonable])
    with pytest.raises(ContextSerdeError, match="not a Pydantic model class"):
        serializer.deserialize(_tagged(qualified(Unjsonable)))
    with pytest.raises(ContextSerdeError, match="not a component class"):
        serializer.deserialize(_tagged(qualified(Unjsonable), "__is_component"))
    with pytest.raises(ContextSerdeError, match="non-empty string"):
        serializer.deserialize(json.dumps({"__is_pydantic": True, "value": {}, "qualified_name": 7}))


def test_serialization_errors_name_path_and_type_but_never_the_value() -> None:
    big = "x" * 1_000_000
    with pytest.raises(ValueError) as info:
        JsonSerializer().serialize({"config": {"keys": [big, Secretive()]}})
    message = str(info.value)
    assert message == "Failed to serialize value: a Secretive at config.keys[1] is not JSON-serializable (use PickleSerializer for trusted data)"
    assert SECRET not in message and len(message) < 300


def test_model_errors_do_not_carry_the_value() -> None:
    class Holder(BaseModel):
        model_config = {"arbitrary_types_allowed": True}
        thing: Any

    with pytest.raises(ValueError) as info:
        JsonSerializer().serialize({"h": Holder(thing=Secretive())})
    assert "a Holder at h cannot be serialized (Unable to serialize unknown type" in str(info.value)
    assert SECRET not in str(info.value)


def test_deep_values_are_reported_as_deep_with_their_key() -> None:
    deep: Any = 1
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(ValueError, match=r"a list at k(\[0\])+ is nested deeper than 200 levels"):
        JsonSerializer().serialize({"k": deep})
    with pytest.raises(ContextSerdeError, match="nested deeper"):
        JsonSerializer().deserialize("[" * 10_000 + "]" * 10_000)
    with pytest.raises(ContextSerdeError, match="nested deeper than 200 levels"):
        JsonSerializer().deserialize("[" * 300 + "]" * 300)


def test_deep_values_inside_models_are_reported_as_deep() -> None:
    deep: Any = 1
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(ValueError, match="an? Event at ev .*(nested|deep)") as info:
        JsonSerializer().serialize({"ev": Event(payload=deep)})
    assert "recursion" not in str(info.value).lower() or "deep" in str(info.value)


def test_cyclic_values_are_reported_as_cycles_with_their_key() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(ValueError, match=r"a list at k\[1\] contains itself \(a reference cycle\)"):
        JsonSerializer().serialize({"k": loop})
    looped: dict[str, Any] = {}
    looped["self"] = looped
    with pytest.raises(ValueError, match="reference cycle"):
        JsonSerializer().serialize(Event(d=looped))


def test_shared_but_acyclic_values_serialize() -> None:
    shared = [1, 2]
    assert JsonSerializer().deserialize(JsonSerializer().serialize({"a": shared, "b": shared})) == {"a": shared, "b": shared}


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_round_trip_as_strict_json(number: float) -> None:
    serializer = JsonSerializer(allowed_types=[A, Point])

    class F(Event):
        f: float
        nested: Point | None = None

    serializer.allow(F)
    values = [number, {"x": [number]}, F(f=number, extra=number), StopEvent(result={"r": number})]
    for value in values:
        text = serializer.serialize(value)
        json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
        back = serializer.deserialize(text)
        assert _same_floats(_plain(back), _plain(value)), (value, back)


def _plain(value: Any) -> Any:
    if isinstance(value, StopEvent):
        return ("stop", _plain(value.result))
    if isinstance(value, Event):
        return (type(value).__name__, _plain(value.model_dump()), _plain(dict(value.items())))
    return value


def _same_floats(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_floats(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_floats(a[k], b[k]) for k in a)
    return bool(a == b)


def test_legacy_nan_constants_still_load() -> None:
    assert math.isnan(JsonSerializer().deserialize("NaN"))


def test_bad_json_is_a_context_serde_error_without_the_text() -> None:
    with pytest.raises(ContextSerdeError, match=r"not valid JSON \(Expecting") as info:
        JsonSerializer().deserialize("{" + SECRET)
    assert SECRET not in str(info.value)
    with pytest.raises(ContextSerdeError, match="expected a serialized string"):
        JsonSerializer().deserialize(5)  # type: ignore[arg-type]


def test_validation_errors_name_the_field_not_the_input() -> None:
    text = json.dumps({"__is_pydantic": True, "value": {"x": SECRET}, "qualified_name": qualified(Point)})
    with pytest.raises(ContextSerdeError, match="the saved Point does not validate: x: Input should be a valid integer") as info:
        JsonSerializer(allowed_types=[Point]).deserialize(text)
    assert SECRET not in str(info.value) and info.value.__cause__ is None


def test_pickle_serializer_imports_what_its_trusted_payload_names() -> None:
    # Documented: PickleSerializer trusts its input, so no allow-list is needed.
    assert PickleSerializer().deserialize(JsonSerializer().serialize(Point(x=1, y=2))) == Point(x=1, y=2)
    assert "trust" in (PickleSerializer.__doc__ or "")


# --- issue 26: models already imported, models that cannot dump themselves ------------------


class Outside(Event):
    """An event no workflow names: defined in this (imported) module."""

    note: str


class Profile(BaseModel):
    class Address(BaseModel):
        city: str

    name: str
    address: Address


def test_a_model_or_event_of_an_imported_module_round_trips_without_an_allow_list() -> None:
    serializer = JsonSerializer()
    assert serializer.deserialize(serializer.serialize(Outside(note="n"))) == Outside(note="n")
    profile = Profile(name="p", address=Profile.Address(city="c"))
    assert serializer.deserialize(serializer.serialize(profile)) == profile
    assert serializer.deserialize(serializer.serialize(profile.address)) == profile.address
    strict = JsonSerializer(imported_models=False)
    with pytest.raises(ContextSerdeError, match=f"'{__name__}.Outside' is not allowed"):
        strict.deserialize(serializer.serialize(Outside(note="n")))


@pytest.mark.parametrize(
    "name",
    [
        "subprocess.Popen",  # imported, a class, not a model
        "os.system",  # imported, not a class
        "collections.OrderedDict",
        f"{__name__}.Component",  # a component-like class that is not a model, not allow-listed
        "pydantic.main.BaseModel.__subclasses__",
        f"{__name__}.json",  # a module reached through another module's namespace
    ],
)
def test_an_imported_name_that_is_not_a_model_class_is_refused(name: str) -> None:
    for tag in ("__is_pydantic", "__is_component"):
        with pytest.raises(ContextSerdeError, match="is not allowed"):
            JsonSerializer().deserialize(_tagged(name, tag))


def test_a_class_not_defined_at_the_name_it_is_given_is_refused() -> None:
    class Local(BaseModel):
        v: int

    serializer = JsonSerializer()
    with pytest.raises(ContextSerdeError, match="is not allowed"):
        serializer.deserialize(serializer.serialize(Local(v=1)))
    # A model imported into this module under its own name, but named here by this module.
    with pytest.raises(ContextSerdeError, match="is not allowed"):
        serializer.deserialize(_tagged(f"{__name__}.BaseModel"))


def test_looking_up_an_imported_module_runs_none_of_its_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    calls: list[str] = []
    lazy = types.ModuleType("lazy_loading_module")
    lazy.__getattr__ = lambda attr: calls.append(attr)  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "lazy_loading_module", lazy)
    with pytest.raises(ContextSerdeError, match="is not allowed"):
        JsonSerializer().deserialize(_tagged("lazy_loading_module.Evil"))
    assert calls == []


def _refuse_to_dump(value: Any, handler: Any, info: Any) -> Any:
    # What llama-index-core's chat message serializer does with current Pydantic releases.
    return handler(value, info)


class Message(BaseModel):
    role: str
    text: str


class Store(BaseModel):
    """Like llama-index's SimpleChatStore: a wrap serializer that fails inside Pydantic."""

    store: dict[str, list[Annotated[Message, WrapSerializer(_refuse_to_dump)]]] = {}


class Memory(BaseModel):
    """Like llama-index's ChatMemoryBuffer: a component whose to_dict() fails."""

    store: Store
    limit: int
    tokenizer: Any = Field(default=len, exclude=True)

    @classmethod
    def class_name(cls) -> str:
        return "Memory"

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Memory:
        return cls.model_validate(data)


def test_a_model_that_cannot_dump_itself_is_saved_field_by_field() -> None:
    memory = Memory(store=Store(store={"chat": [Message(role="user", text="hi"), Message(role="ai", text="yo")]}), limit=3)
    with pytest.raises(Exception, match="index_key|SerializationInfo|positional"):
        memory.to_dict()
    serializer = JsonSerializer()
    text = serializer.serialize({"memory": memory})
    saved = json.loads(text)["memory"]
    assert saved["__is_pydantic"] is True and set(saved["fields"]) == {"store", "limit"}  # tokenizer is excluded
    restored = serializer.deserialize(text)["memory"]
    assert type(restored) is Memory and restored.store == memory.store and restored.limit == 3
    assert restored.tokenizer is len


def test_a_model_saved_field_by_field_still_names_what_cannot_be_saved() -> None:
    memory = Memory(store=Store(store={"chat": [Message(role="user", text="hi")]}), limit=1)
    memory.__dict__["limit"] = threading.Lock()  # a field value no serializer can write
    with pytest.raises(ValueError, match=r"a Memory cannot be serialized \(to_dict\(\) raised .*\), nor field by field: a lock at limit"):
        JsonSerializer().serialize(memory)
    with pytest.raises(ValueError, match="Failed to serialize value: .*lock at lock"):
        JsonSerializer().serialize(Event(lock=threading.Lock()))


class Reading(BaseModel):
    label: str
    values: list[float]
    where: Point | None = None


def test_a_model_on_its_own_serializes_as_it_does_inside_a_dict() -> None:
    # A model at the top is written by Pydantic's own dump (the fast path); inside a dict it goes
    # through the general walk: both say the same, and read back to the same value.
    serializer = trusting().allow(Reading)
    for value in (
        A(x=1, y="é"),
        Reading(label="ünï", values=[1.5, 2.0], where=Point(x=1, y=2)),
        StartEvent(topic="t", nested={"k": [1, {"z": None}]}),
        StopEvent(result={"answer": [1, 2.5, "three"]}),
    ):
        alone = serializer.serialize(value)
        inside = json.loads(serializer.serialize({"v": value}))["v"]
        assert json.loads(alone) == inside, type(value).__name__
        assert serializer.deserialize(alone) == value


def test_a_model_holding_a_non_finite_float_is_tagged_not_nulled() -> None:
    serializer = trusting().allow(Reading)
    text = serializer.serialize(Reading(label="x", values=[math.inf, -math.inf], where=Point(x=0, y=0)))
    assert "null" not in text
    assert serializer.deserialize(text).values == [math.inf, -math.inf]
