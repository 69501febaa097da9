"""Events: the messages steps exchange, plus the ones the runtime publishes.

An event is a Pydantic model with two kinds of data: declared fields (validated as
usual) and *dynamic* fields, any other keyword given to the constructor. Dynamic fields
are Pydantic's own extras (the model accepts extra keys), exposed as ``_data``; they read
like attributes (``ev.topic``) and like a mapping (``ev["topic"]``), and the mapping API
sees only them. Dumps keep them under a ``"_data"`` key, as llama-index-workflows does.

Construction runs no Python code of ours but ``__init__`` (no post-init hook: Pydantic
calls one through its core on every event, which costs more than the rest of our work).
Every validation path goes through ``__init__``, because Pydantic calls a model's own
``__init__`` for ``model_validate`` and nested models too.
"""

from __future__ import annotations

import contextvars
import importlib
from collections.abc import ItemsView, Iterator, KeysView, ValuesView
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Callable

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    model_serializer,
)
from pydantic_core import to_jsonable_python

from workflows._text import safe_text


class DictLikeModel(BaseModel):
    """A Pydantic model that also stores undeclared keywords, readable as attributes or items."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="allow")

    def __init__(self, /, **data: Any) -> None:
        private = None
        if "_data" in data or type(self) in _private_names:
            data, private = _special_keywords(type(self), data)
        self.__pydantic_validator__.validate_python(data, self_instance=self)
        if private:
            self.__pydantic_private__.update(private)  # type: ignore[union-attr]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__private_attributes__:
            _private_names[cls] = frozenset(cls.__private_attributes__)

    @property
    def _data(self) -> dict[str, Any]:
        """The dynamic fields: Pydantic's extras dict itself."""
        extra = self.__pydantic_extra__
        if extra is None:  # only a model built without validation lacks it
            extra = {}
            object.__setattr__(self, "__pydantic_extra__", extra)
        return extra

    @_data.setter
    def _data(self, value: dict[str, Any]) -> None:
        object.__setattr__(self, "__pydantic_extra__", value)

    def __setattr__(self, name: str, value: Any) -> None:
        cls = type(self)
        if name in cls.__pydantic_fields__ or name in cls.__private_attributes__:
            super().__setattr__(name, value)
        elif isinstance(getattr(cls, name, None), property):
            # e.g. StopEvent.result: a read-only property must not be shadowed by _data.
            object.__setattr__(self, name, value)
        else:
            # Into _data, as upstream (Pydantic would also count it in the fields set).
            self._data[name] = value

    def __repr_args__(self) -> Any:
        # Declared fields only, as upstream: dynamic fields are a mapping, not the model's shape.
        extra = self.__pydantic_extra__
        return [item for item in super().__repr_args__() if not extra or item[0] not in extra]

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return iter(self._data)

    def __bool__(self) -> bool:
        return True

    def get(self, key: str, default: Any = None) -> Any:
        """``_data.get(key, default)``: declared fields are not looked at."""
        return self._data.get(key, default)

    def keys(self) -> KeysView[str]:
        return self._data.keys()

    def values(self) -> ValuesView[Any]:
        return self._data.values()

    def items(self) -> ItemsView[str, Any]:
        return self._data.items()

    def to_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The dynamic-field dict itself (not a copy); arguments are accepted and ignored, as upstream."""
        return self._data

    @model_serializer(mode="wrap")
    def _dump_with_data(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        extra = self.__pydantic_extra__
        if extra:
            # Pydantic dumps extras beside the fields; ours go under "_data". JSON takes
            # Pydantic's rendering (with the dump's options); Python keeps the objects.
            json = info.mode == "json"
            data = {key: dumped.pop(key) if json else extra[key] for key in extra if key in dumped}
            if not json:
                for key in data:
                    del dumped[key]
            if data:
                dumped["_data"] = data
        return dumped


# The private attribute names of each event class that has some (recorded when the class
# is built): the constructor looks here, by class, because reading a class attribute of a
# Pydantic model goes through its metaclass's __getattr__ hook, about as slow as
# validating a small event.
_private_names: dict[type, frozenset[str]] = {}


def _special_keywords(cls: type, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Split the keywords of an event's constructor that are not Pydantic's to validate:
    a dump's ``_data`` (merged in, explicit keywords winning) and ``_name=`` keywords
    setting private attributes, as upstream. Returns what to validate and the private values."""
    if "_data" in data:
        dumped = data.pop("_data")
        if not isinstance(dumped, dict):
            raise TypeError(f"'_data' holds an event's dynamic fields and must be a dict, not {type(dumped).__name__}")
        data = {**dumped, **data}
    names = _private_names.get(cls)
    private = {name: data.pop(name) for name in list(data) if name in names} if names else None
    return data, private


class Event(DictLikeModel):
    """Base class of every event. Declare fields on subclasses; other keywords go to ``_data``."""


EventType = type[Event]


def qualified_name(cls: type) -> str:
    """``module.QualName`` of a class, the form serialized payloads name types by."""
    return f"{cls.__module__}.{cls.__qualname__}"


def import_qualified_name(name: str) -> Any:
    """Import ``pkg.mod.Cls`` (also ``pkg.mod.Outer.Inner``); raises ``ImportError`` if absent."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            continue
        return obj
    raise ImportError(f"Cannot import {name!r}")


# --- Annotated aliases: fields holding events, event types and exceptions ---------------

type_resolver: contextvars.ContextVar[Callable[[str], Any] | None] = contextvars.ContextVar(
    "workflows_type_resolver", default=None
)
"""Set by ``JsonSerializer`` while it rebuilds a model: how the fields below turn a payload's
type name into a class (raising ``ImportError`` if not allowed) instead of importing it."""


def _resolve_name(name: str) -> Any:
    resolver = type_resolver.get()
    return import_qualified_name(name) if resolver is None else resolver(name)


def _serialize_event(ev: Event | None, info: SerializationInfo) -> Any:
    if ev is None:
        return None
    return {"qualified_name": qualified_name(type(ev)), "value": ev.model_dump(mode=info.mode)}


def _validate_event(value: Any) -> Event:
    if isinstance(value, Event):
        return value
    if isinstance(value, dict) and "qualified_name" in value:
        try:
            cls = _resolve_name(value["qualified_name"])
        except ImportError as exc:
            raise ValueError(str(exc)) from None
        if isinstance(cls, type) and issubclass(cls, Event):
            return cls.model_validate(value.get("value", {}))
        raise ValueError(f"{value['qualified_name']} is not an Event class")
    raise ValueError(f"Expected an Event or a serialized event, got {type(value).__name__}")


def _validate_optional_event(value: Any) -> Event | None:
    return None if value is None else _validate_event(value)


def _serialize_event_type(cls: type[Event]) -> str:
    return qualified_name(cls)


def _validate_event_type(value: Any) -> type[Event]:
    if isinstance(value, str):
        try:
            value = _resolve_name(value)
        except ImportError as exc:
            raise ValueError(str(exc)) from None
    if isinstance(value, type) and issubclass(value, Event):
        return value
    raise ValueError(f"Expected an Event class or its qualified name, got a {type(value).__name__}")


class UnreconstructedException(Exception):
    """Stands in for a serialized exception whose type could not be rebuilt.

    ``str()`` is the original message; ``original_type`` the dotted name of the type.
    """

    def __init__(self, message: str, original_type: str | None = None) -> None:
        super().__init__(message)
        self.original_type = original_type


def _serialize_exception(exc: BaseException | None) -> dict[str, str] | None:
    if exc is None:
        return None
    cls = type(exc)
    return {"exception_type": qualified_name(cls), "exception_message": safe_text(exc)}


def _rebuild_exception(type_name: str, message: str) -> BaseException:
    try:
        cls = _resolve_name(type_name)
        if isinstance(cls, type) and issubclass(cls, Exception):
            return cls(message)
    except Exception:  # noqa: BLE001 - any failure to rebuild means "keep the message only"
        pass
    return UnreconstructedException(message, original_type=type_name)


def _validate_exception(value: Any) -> BaseException:
    if isinstance(value, BaseException):
        return value
    if isinstance(value, dict) and "exception_type" in value:
        return _rebuild_exception(str(value["exception_type"]), str(value.get("exception_message", "")))
    raise ValueError(f"Expected an exception or a serialized exception, got {type(value).__name__}")


def _validate_optional_exception(value: Any) -> BaseException | None:
    return None if value is None else _validate_exception(value)


_EVENT_SCHEMA = WithJsonSchema(
    {"type": "object", "properties": {"qualified_name": {"type": "string"}, "value": {"type": "object"}}}
)
_EXCEPTION_SCHEMA = WithJsonSchema(
    {
        "type": "object",
        "properties": {"exception_type": {"type": "string"}, "exception_message": {"type": "string"}},
    }
)

SerializableEvent = Annotated[
    Event,
    PlainValidator(_validate_event),
    PlainSerializer(_serialize_event),
    _EVENT_SCHEMA,
]
"""An ``Event`` field that dumps as ``{"qualified_name", "value"}`` and reads back as its own class."""

SerializableOptionalEvent = Annotated[
    "Event | None",
    PlainValidator(_validate_optional_event),
    PlainSerializer(_serialize_event),
    _EVENT_SCHEMA,
]

SerializableEventType = Annotated[
    type[Event],
    PlainValidator(_validate_event_type),
    PlainSerializer(_serialize_event_type),
    WithJsonSchema({"type": "string"}),
]
"""An event class field, dumped as its dotted name."""

SerializableException = Annotated[
    BaseException,
    PlainValidator(_validate_exception),
    PlainSerializer(_serialize_exception),
    _EXCEPTION_SCHEMA,
]
"""An exception field, dumped as ``{"exception_type", "exception_message"}`` and rebuilt on load."""

SerializableOptionalException = Annotated[
    "BaseException | None",
    PlainValidator(_validate_optional_exception),
    PlainSerializer(_serialize_exception),
    _EXCEPTION_SCHEMA,
]


# --- Entry, exit and human-in-the-loop events ------------------------------------------


class StartEvent(Event):
    """The event a run starts with; ``run(**kwargs)`` becomes its dynamic fields."""


class StopEvent(Event):
    """Ends a run. ``result`` (also positional) is what ``await handler`` returns for this exact class.

    Dumps hold the declared fields plus ``result`` when set; dynamic fields are not dumped.
    """

    _result: Any = PrivateAttr(default=None)

    def __init__(self, result: Any = None, **params: Any) -> None:
        if "_result" in params:
            raise TypeError(f"{type(self).__name__}() got multiple values for keyword argument '_result'")
        super().__init__(**params)
        if result is not None:
            self.__pydantic_private__["_result"] = result  # type: ignore[index]

    def _get_result(self) -> Any:
        """What ``result`` returns; subclasses may override it to compute a result."""
        return self._result

    @property
    def result(self) -> Any:
        return self._get_result()

    @model_serializer(mode="wrap")
    def _dump_with_data(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        for key in self.__pydantic_extra__ or ():
            dumped.pop(key, None)
        result = self._result
        if result is not None:
            dumped["result"] = to_jsonable_python(result) if info.mode == "json" else result
        return dumped

    def __repr__(self) -> str:
        items = [*self._data.items(), *self.model_dump().items()]
        inner = ", ".join(f"{key}={value!r}" for key, value in items)
        return f"{type(self).__name__}({inner})"

    def __str__(self) -> str:
        return str(self._result)


class InputRequiredEvent(Event):
    """A step asks the outside world for input (by convention ``prefix=...``); it is streamed."""


class HumanResponseEvent(Event):
    """The outside world's answer (by convention ``response=...``), sent with ``ctx.send_event``."""


# --- Terminal StopEvents published by the runtime --------------------------------------


class WorkflowTimedOutEvent(StopEvent):
    """The run's timeout fired; ``active_steps`` had workers in progress."""

    timeout: float
    active_steps: list[str] = Field(default_factory=list)


class WorkflowCancelledEvent(StopEvent):
    """The run was cancelled by the user."""


class WorkflowFailedEvent(StopEvent):
    """A step failed for good; the run raises ``exception``."""

    step_name: str
    exception: SerializableException
    attempts: int | None = None
    elapsed_seconds: float | None = None


class IdleReleasedEvent(StopEvent):
    """Returned (not raised) when a runtime releases an idle run."""


class StepFailedEvent(Event):
    """Delivered to ``@catch_error`` handlers once a step's retries are exhausted."""

    step_name: str
    input_event: SerializableEvent
    exception: SerializableException
    attempts: int
    elapsed_seconds: float
    failed_at: datetime


# --- Internal dispatch events (hidden from the stream unless expose_internal=True) ------


class InternalDispatchEvent(Event):
    """Base of the runtime's bookkeeping events."""


class StepState(str, Enum):
    PREPARING = "preparing"
    RUNNING = "running"
    NOT_RUNNING = "not_running"


class StepStateChanged(InternalDispatchEvent):
    """A step worker changed state (queued, started, finished)."""

    name: str
    step_state: StepState
    worker_id: str
    input_event_name: str
    output_event_name: str | None = None


class WorkflowIdleEvent(InternalDispatchEvent):
    """The run is unfinished but has nothing to do (waiting for outside events)."""


class UnhandledEvent(InternalDispatchEvent):
    """An event reached the run and neither a step nor a waiter took it."""

    event_type: str
    qualified_name: str
    step_name: str | None = None
    idle: bool = False


class CollectionReleaseEvent(InternalDispatchEvent):
    """Triggers a list-collect step with the batch gathered from one fan-out stream."""

    stream_id: str = ""
    step_name: str = ""
    events: list[SerializableEvent] = Field(default_factory=list)


__all__ = [
    "DictLikeModel",
    "Event",
    "EventType",
    "StartEvent",
    "StopEvent",
    "InputRequiredEvent",
    "HumanResponseEvent",
    "StepFailedEvent",
    "WorkflowTimedOutEvent",
    "WorkflowCancelledEvent",
    "WorkflowFailedEvent",
    "IdleReleasedEvent",
    "InternalDispatchEvent",
    "StepStateChanged",
    "StepState",
    "WorkflowIdleEvent",
    "UnhandledEvent",
    "CollectionReleaseEvent",
    "UnreconstructedException",
    "SerializableEvent",
    "SerializableOptionalEvent",
    "SerializableException",
    "SerializableOptionalException",
    "SerializableEventType",
]
