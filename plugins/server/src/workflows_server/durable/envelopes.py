"""Events on the wire: the envelope the server sends, and reading what clients send.

An envelope is ``{"value": {...fields}, "type": "ClassName", "types": [base class
names], "qualified_name": "module.ClassName"}``, as llama-agents-client reads and
writes it. Clients name event classes by ``type`` (looked up among the workflow's
own event classes) or, for older clients, by ``qualified_name``.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Iterable

from pydantic import ValidationError

from workflows.events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    InternalDispatchEvent,
    StartEvent,
    StopEvent,
)

FRAMEWORK_EVENTS: tuple[type[Event], ...] = (StartEvent, StopEvent, InputRequiredEvent, HumanResponseEvent)
_ENVELOPE_KEYS = frozenset({"value", "type", "types", "qualified_name", "data"})


class BadEvent(ValueError):
    """A client's event could not be read; ``status`` is the HTTP status to answer with (400 or 422)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}"


def base_names(cls: type) -> list[str] | None:
    """Names of the Event classes ``cls`` derives from (excluding itself and ``Event``), nearest first."""
    names = _base_names(cls)
    return list(names) if names else None


@functools.lru_cache(maxsize=1024)
def _base_names(cls: type) -> tuple[str, ...]:
    # Every stream event's envelope names them: worked out once per class.
    return tuple(c.__name__ for c in cls.__mro__[1:] if isinstance(c, type) and issubclass(c, Event) and c is not Event)


def envelope(event: Event) -> dict[str, Any]:
    """The envelope of ``event`` (fields that cannot be dumped as JSON become their text)."""
    cls = type(event)
    try:
        value = event.model_dump(mode="json")
    except Exception as exc:  # a field that is not JSON: the stream still says what happened
        value = {"repr": repr(event)[:2000], "dump_error": f"{type(exc).__name__}: {exc}"[:500]}
    return {"value": value, "qualified_name": qualified(cls), "types": base_names(cls), "type": cls.__name__}


def is_internal(cls: type) -> bool:
    return issubclass(cls, InternalDispatchEvent)


def registry(events: Iterable[type[Event]]) -> dict[str, type[Event]]:
    """Event classes by class name: the framework's, then the workflow's (which win)."""
    found: dict[str, type[Event]] = {cls.__name__: cls for cls in FRAMEWORK_EVENTS}
    for cls in events:
        found[cls.__name__] = cls
    return found


def validation_message(exc: ValidationError, prefix: str) -> str:
    """``prefix.field: message`` for each problem pydantic found."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{prefix}{'.' + where if where else ''}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def _loads(data: Any, what: str) -> Any:
    if isinstance(data, str):
        try:
            return json.loads(data)
        except json.JSONDecodeError as exc:
            raise BadEvent(f"'{what}' is a string but not JSON ({exc.msg} at position {exc.pos})") from None
    return data


def _validate(cls: type[Event], value: Any, what: str) -> Event:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise BadEvent(f"'{what}.value' must be an object of the event's fields, got {type(value).__name__}", 422)
    try:
        return cls.model_validate(value)
    except ValidationError as exc:
        raise BadEvent(f"{cls.__name__} does not validate: {validation_message(exc, what + '.value')}", 422) from None


def parse_event(data: Any, events: dict[str, type[Event]], what: str = "event") -> Event:
    """The event a client sent as an envelope (or its JSON text); ``BadEvent`` says what is wrong."""
    data = _loads(data, what)
    if not isinstance(data, dict):
        raise BadEvent(f"'{what}' must be an object like {{\"type\": \"ClassName\", \"value\": {{...}}}}")
    if "value" not in data and "data" in data:
        data = {**data, "value": data["data"]}
    name, qualified_name = data.get("type"), data.get("qualified_name")
    if not name and not qualified_name:
        raise BadEvent(f"'{what}' names no event class: give 'type' (one of {', '.join(sorted(events))})")
    cls = events.get(name) if isinstance(name, str) else None
    if cls is None and isinstance(qualified_name, str):
        cls = next((c for c in events.values() if qualified(c) == qualified_name), None)
    if cls is None:
        shown = name or qualified_name
        raise BadEvent(f"'{what}' has an unknown event type {shown!r}; this workflow takes: {', '.join(sorted(events))}")
    return _validate(cls, data.get("value"), what)


def parse_start_event(data: Any, start_class: type[StartEvent], events: dict[str, type[Event]]) -> StartEvent:
    """The start event from a bare object of its fields, or from an envelope."""
    data = _loads(data, "start_event")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadEvent(f"'start_event' must be an object (the fields of {start_class.__name__}), got {type(data).__name__}")
    if "value" in data and set(data) <= _ENVELOPE_KEYS and ("type" in data or "qualified_name" in data):
        event = parse_event(data, {**events, start_class.__name__: start_class}, "start_event")
    else:
        try:
            event = start_class.model_validate(data)
        except ValidationError as exc:
            raise BadEvent(
                f"{start_class.__name__} does not validate: {validation_message(exc, 'start_event')}", 422
            ) from None
    if not isinstance(event, start_class):
        raise BadEvent(f"'start_event' is a {type(event).__name__}; this workflow starts with {start_class.__name__}")
    return event


__all__ = [
    "BadEvent",
    "FRAMEWORK_EVENTS",
    "base_names",
    "envelope",
    "is_internal",
    "parse_event",
    "parse_start_event",
    "qualified",
    "registry",
    "validation_message",
]
