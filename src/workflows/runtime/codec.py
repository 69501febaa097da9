"""Journal records as JSON-ready dicts, and back: what a durable store writes and reads.

``encode_record`` must be called while the record is handled (records hold live
objects that the run goes on mutating). Events, state values and results go through
the workflow's serializer, as in ``Context.to_dict()``; exceptions become their type
name, message and traceback text (rebuilt as ``UnreconstructedException`` when their
type cannot be); classes become their dotted names. The run's identity is not
repeated in each record: ``decode_record`` takes it.
"""

from __future__ import annotations

import dataclasses
import traceback
from typing import Any, Callable, Iterable

from workflows._text import safe_text
from workflows.context.serializers import BaseSerializer, JsonSerializer, known_types
from workflows.errors import ContextSerdeError
from workflows.events import UnreconstructedException, qualified_name
from workflows.runtime.journal import (
    MISSING,
    CollectBuffered,
    EventEmitted,
    JournalRecord,
    RunConcluded,
    RunFinished,
    RunIdle,
    RunInfo,
    RunStarted,
    StateChanged,
    StepFinished,
    StepQueued,
    StepStarted,
    StreamOpened,
    WaitEnded,
    WaitStarted,
)
from workflows.runtime.snapshot import WorkflowShape, workflow_types

RECORD_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        RunStarted, RunConcluded, RunFinished, RunIdle, EventEmitted, StepQueued, StepStarted, StepFinished,
        StateChanged, WaitStarted, WaitEnded, CollectBuffered, StreamOpened,
    )
}
"""Every record type by the name ``encode_record`` writes in ``"kind"``."""

_SERIALIZED = frozenset({"event", "start_event", "final_event", "stop_event", "output", "result", "before", "after"})
_TUPLES = frozenset({"targets", "seqs", "woken", "keys"})
_LEFT_OUT = frozenset({"run", "workflow"})
_MISSING_TAG = {"__missing__": True}


def encode_exception(exc: BaseException) -> dict[str, str]:
    """``{"type", "message", "traceback"}`` of ``exc`` (safe when its ``__str__`` raises)."""
    try:
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:
        trace = ""
    return {"type": qualified_name(type(exc)), "message": safe_text(exc), "traceback": trace}


def decode_exception(data: dict[str, str], resolve: Callable[[str], type]) -> BaseException:
    """An exception rebuilt from ``encode_exception``: its class when allowed and buildable from a message, else a stand-in."""
    name, message = data.get("type", ""), data.get("message", "")
    try:
        cls = resolve(name)
        if isinstance(cls, type) and issubclass(cls, Exception):
            return cls(message)
    except Exception:
        pass
    return UnreconstructedException(message, name)


def _encode_value(serializer: BaseSerializer, value: Any) -> Any:
    if value is MISSING:
        return _MISSING_TAG
    try:
        return {"serialized": serializer.serialize(value)}
    except Exception:
        # A step's result need not be serializable; its text still tells a reader what it was.
        return {"repr": safe_text(value)[:2000]}


def _decode_value(serializer: BaseSerializer, data: Any) -> Any:
    if data is None:
        return None
    if data == _MISSING_TAG:
        return MISSING
    if "serialized" in data:
        return serializer.deserialize(data["serialized"])
    return data.get("repr")


_PLAIN, _VALUE, _ERROR, _TYPE, _TYPES, _LIST, _DICT = range(7)


def _field_plan(cls: type) -> tuple[tuple[str, int], ...]:
    """How ``encode_record`` writes each field of record class ``cls`` (worked out once per class)."""
    plan = []
    for f in dataclasses.fields(cls):
        name = f.name
        if name in _LEFT_OUT:
            continue
        if name in _SERIALIZED:
            how = _VALUE
        elif name == "error":
            how = _ERROR
        elif name == "event_type":
            how = _TYPE
        elif name == "expected":
            how = _TYPES
        elif name in _TUPLES:
            how = _LIST
        elif name in ("carrier", "lineage", "requirements", "collected"):
            how = _DICT
        else:
            how = _PLAIN
        plan.append((name, how))
    return tuple(plan)


_PLANS: dict[type, tuple[tuple[str, int], ...]] = {}


def encode_record(record: JournalRecord, serializer: BaseSerializer) -> dict[str, Any]:
    """The JSON-ready form of ``record``: ``{"kind": "StepStarted", ...its fields}``."""
    cls = type(record)
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _field_plan(cls)
    out: dict[str, Any] = {"kind": cls.__name__}
    for name, how in plan:
        value = getattr(record, name)
        if how == _PLAIN:
            out[name] = value
        elif how == _VALUE:
            out[name] = None if value is None else _encode_value(serializer, value)
        elif how == _ERROR:
            out[name] = None if value is None else encode_exception(value)
        elif how == _TYPE:
            out[name] = None if value is None else qualified_name(value)
        elif how == _TYPES:
            out[name] = [qualified_name(t) for t in value]
        elif how == _LIST:
            out[name] = list(value)
        else:
            out[name] = None if value is None else dict(value)
    return out


def decode_record(
    data: dict[str, Any], serializer: BaseSerializer, run: RunInfo, resolve_type: Callable[[str], type] | None = None
) -> JournalRecord:
    """The record ``encode_record`` wrote; ``resolve_type`` turns a dotted name into a class.

    Types resolve as in ``Context.from_dict``: never by importing what the data names,
    only the framework's, those of a ``known_types`` scope and the serializer's
    allow-list (``decode_records`` sets the scope to a workflow's own types). Malformed
    data raises ``ContextSerdeError`` naming the record.
    """
    resolve = resolve_type or getattr(serializer, "resolve", None) or JsonSerializer().resolve
    kind = data.get("kind") if isinstance(data, dict) else None
    cls = RECORD_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ContextSerdeError(f"journal record has an unknown kind {kind!r}; expected one of {sorted(RECORD_TYPES)}")
    kwargs: dict[str, Any] = {"run": run}
    try:
        for f in dataclasses.fields(cls):
            name = f.name
            if name in _LEFT_OUT or name not in data:
                continue
            value = data[name]
            if name in _SERIALIZED:
                kwargs[name] = _decode_value(serializer, value)
            elif name == "error":
                kwargs[name] = None if value is None else decode_exception(value, resolve)
            elif name == "event_type":
                kwargs[name] = None if value is None else resolve(value)
            elif name == "expected":
                kwargs[name] = tuple(resolve(t) for t in value)
            elif name in _TUPLES:
                kwargs[name] = tuple(value)
            else:
                kwargs[name] = value
        return cls(**kwargs)
    except ContextSerdeError:
        raise
    except Exception as exc:
        raise ContextSerdeError(f"journal record {kind} could not be read: {type(exc).__name__}: {safe_text(exc)[:200]}") from exc


def decode_records(
    data: Iterable[dict[str, Any]], serializer: BaseSerializer, run: RunInfo, workflow: WorkflowShape
) -> list[JournalRecord]:
    """Decode a run's stored records, resolving the types of ``workflow`` (its events and state)."""
    with known_types(workflow_types(workflow)), serializer.validation_context():
        return [decode_record(item, serializer, run) for item in data]
