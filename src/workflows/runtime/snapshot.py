"""A run as plain data, and its (de)serialization for ``Context.to_dict()``/``from_dict()``.

The payload is JSON-compatible with the default serializer: every event is one
serializer string, so a ``PickleSerializer`` can carry what JSON cannot.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from workflows.context.serializers import BaseSerializer
from workflows.errors import ContextSerdeError
from workflows.events import Event

PAYLOAD_VERSION = 2


@dataclass
class SavedItem:
    """A delivery that was queued or in progress when the run was saved."""

    event: Event
    lineage: dict[str, int] | None = None
    resolved: dict[str, Event] | None = None
    seq: int | None = None
    timed_out: list[str] | None = None
    attempts: int = 0


@dataclass
class SavedWaiter:
    """A step parked in ``wait_for_event``, with the time it had left (``None``: no limit)."""

    step: str
    event: Event
    waiter_id: str
    event_type: type[Event]
    requirements: dict[str, Any] | None = None
    remaining: float | None = None
    lineage: dict[str, int] | None = None
    resolved: dict[str, Event] | None = None
    seq: int | None = None


@dataclass
class SavedCollect:
    """What one ``collect_events`` buffer had gathered."""

    step: str
    buffer_id: str
    expected: list[type[Event]]
    events: list[Event]


@dataclass
class RunSnapshot:
    """Everything needed to resume a run in another process."""

    is_running: bool = False
    elapsed_alive: float = 0.0
    carrier: dict[str, str] = field(default_factory=dict)
    queued: dict[str, list[SavedItem]] = field(default_factory=dict)
    collected: list[SavedCollect] = field(default_factory=list)
    waiters: list[SavedWaiter] = field(default_factory=list)
    next_seq: int = 0


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _import_type(name: str) -> type[Event]:
    module_name, _, attr = name.rpartition(".")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ContextSerdeError(
            f"Context dict specified in an invalid format: cannot import event type {name!r} ({exc})"
        ) from exc
    if not (isinstance(obj, type) and issubclass(obj, Event)):
        raise ContextSerdeError(f"Context dict specified in an invalid format: {name!r} is not an Event class")
    return obj


def _events_out(serializer: BaseSerializer, resolved: dict[str, Event] | None) -> dict[str, str] | None:
    return None if not resolved else {k: serializer.serialize(v) for k, v in resolved.items()}


def _events_in(serializer: BaseSerializer, resolved: dict[str, str] | None) -> dict[str, Event] | None:
    return None if not resolved else {k: serializer.deserialize(v) for k, v in resolved.items()}


def dump_snapshot(snapshot: RunSnapshot, serializer: BaseSerializer) -> dict[str, Any]:
    """The run part of a Context payload (merged into ``Context.to_dict()``)."""
    ser = serializer.serialize
    workers: dict[str, Any] = {}
    for step, items in snapshot.queued.items():
        workers.setdefault(step, {})["queue"] = [
            {
                "event": ser(i.event), "lineage": i.lineage, "resolved": _events_out(serializer, i.resolved),
                "seq": i.seq, "timed_out": i.timed_out, "attempts": i.attempts,
            }
            for i in items
        ]
    for c in snapshot.collected:
        workers.setdefault(c.step, {}).setdefault("collected_events", {})[c.buffer_id] = {
            "expected": [_type_name(t) for t in c.expected],
            "events": [ser(e) for e in c.events],
        }
    for w in snapshot.waiters:
        workers.setdefault(w.step, {}).setdefault("collected_waiters", []).append(
            {
                "event": ser(w.event),
                "waiter_id": w.waiter_id,
                "event_type": _type_name(w.event_type),
                "requirements": w.requirements,
                "remaining": w.remaining,
                "lineage": w.lineage,
                "resolved": _events_out(serializer, w.resolved),
                "seq": w.seq,
            }
        )
    return {
        "is_running": snapshot.is_running,
        "elapsed_alive": snapshot.elapsed_alive,
        "trace_context": dict(snapshot.carrier),
        "workers": workers,
        "next_seq": snapshot.next_seq,
    }


def load_snapshot(data: dict[str, Any], serializer: BaseSerializer) -> RunSnapshot:
    """Read back what ``dump_snapshot`` wrote; malformed input raises ``ContextSerdeError``."""
    try:
        de = serializer.deserialize
        snapshot = RunSnapshot(
            is_running=bool(data.get("is_running", False)),
            elapsed_alive=float(data.get("elapsed_alive") or 0.0),
            carrier={str(k): str(v) for k, v in (data.get("trace_context") or {}).items()},
            next_seq=int(data.get("next_seq") or 0),
        )
        workers = data.get("workers") or {}
        if not isinstance(workers, dict):
            raise ContextSerdeError("Context dict specified in an invalid format: 'workers' must be an object")
        for step, saved in workers.items():
            for item in saved.get("queue") or []:
                snapshot.queued.setdefault(step, []).append(
                    SavedItem(
                        de(item["event"]), item.get("lineage"), _events_in(serializer, item.get("resolved")), item.get("seq"),
                        item.get("timed_out"), int(item.get("attempts") or 0),
                    )
                )
            for buffer_id, buf in (saved.get("collected_events") or {}).items():
                snapshot.collected.append(
                    SavedCollect(step, buffer_id, [_import_type(n) for n in buf["expected"]], [de(e) for e in buf["events"]])
                )
            for w in saved.get("collected_waiters") or []:
                snapshot.waiters.append(
                    SavedWaiter(
                        step=step,
                        event=de(w["event"]),
                        waiter_id=w["waiter_id"],
                        event_type=_import_type(w["event_type"]),
                        requirements=w.get("requirements"),
                        remaining=w.get("remaining"),
                        lineage=w.get("lineage"),
                        resolved=_events_in(serializer, w.get("resolved")),
                        seq=w.get("seq"),
                    )
                )
        return snapshot
    except ContextSerdeError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ContextSerdeError(f"Context dict specified in an invalid format: {exc}") from exc
