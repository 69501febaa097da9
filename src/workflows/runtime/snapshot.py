"""A run as plain data, and the saved-context format that carries it (``Context.to_dict``/``from_dict``).

The dataclasses (``RunSnapshot`` and its parts) are what the run loop saves and resumes
from. ``dump_context`` writes them, with the state, as a JSON-compatible dict in the
current format (``PAYLOAD_VERSION``); ``load_context`` reads such a dict back through a
versioned schema (``workflows.runtime.snapshot_schema``): every field is checked, and
anything that does not fit is refused with ``ContextSerdeError`` naming its path.
Events are serializer strings, so a ``PickleSerializer`` can carry what JSON cannot;
their classes are resolved from the workflow's own types (``workflow_types``) and the
serializer's allow-list, never imported because the payload names them.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from pydantic import BaseModel, ValidationError

from workflows.context.serializers import BaseSerializer, JsonSerializer, describe_validation_error, known_types
from workflows.context.state_store import DictState
from workflows.errors import ContextSerdeError
from workflows.events import CollectionReleaseEvent, Event, StartEvent, StopEvent, qualified_name
from workflows.runtime import snapshot_schema as schema
from workflows.runtime.steps import StepSpec

logger = logging.getLogger("workflows.runtime")

PAYLOAD_VERSION = schema.CURRENT_VERSION
INVALID = "Context dict specified in an invalid format"


@dataclass
class SavedItem:
    """A delivery that was queued or in progress when the run was saved."""

    event: Event
    lineage: dict[str, int] | None = None
    resolved: dict[str, Event] | None = None
    seq: int | None = None
    timed_out: list[str] | None = None
    attempts: int = 0
    stream: int | None = None


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
    stream: int | None = None


@dataclass
class SavedCollect:
    """What one ``collect_events`` buffer had gathered."""

    step: str
    buffer_id: str
    expected: list[type[Event]]
    events: list[Event]


@dataclass
class SavedStream:
    """An open fan-out stream: its opener, its parent, and the batches gathered so far.

    ``released`` are the collect steps already handed their batch (a ``Take(n)`` that
    fired); how much work is left in the stream is not saved but counted again from the
    saved work, waits and child streams that name it.
    """

    stream: int
    step: str
    parent: int | None = None
    batches: dict[str, list[Event]] = field(default_factory=dict)
    released: list[str] = field(default_factory=list)


@dataclass
class RunSnapshot:
    """Everything needed to resume a run in another process.

    ``session_id`` and ``resume_count`` identify the run segment the snapshot was taken
    in (set by the Context when it loads or writes a payload; the run loop leaves them).
    """

    is_running: bool = False
    elapsed_alive: float = 0.0
    carrier: dict[str, str] = field(default_factory=dict)
    queued: dict[str, list[SavedItem]] = field(default_factory=dict)
    collected: list[SavedCollect] = field(default_factory=list)
    waiters: list[SavedWaiter] = field(default_factory=list)
    next_seq: int = 0
    streams: list[SavedStream] = field(default_factory=list)
    session_id: str | None = None
    resume_count: int = 0


@dataclass(kw_only=True)
class LoadedContext:
    """A saved context, parsed and checked: what ``Context.from_dict`` restores."""

    session_id: str | None
    resume_count: int
    state: BaseModel | None
    snapshot: RunSnapshot


# ---------------------------------------------------------------------- type resolution
class WorkflowShape(Protocol):
    """What a saved context or a stored journal is read against: a workflow's public face.

    ``Workflow`` is one; the runtime reads only these, so it needs no import of it.
    """

    @property
    def start_event_class(self) -> type[StartEvent]: ...

    @property
    def stop_event_class(self) -> type[StopEvent]: ...

    @property
    def step_specs(self) -> Mapping[str, StepSpec]: ...

    @property
    def context_state_type(self) -> type[BaseModel]: ...


def workflow_types(workflow: WorkflowShape) -> list[type]:
    """The classes a saved context of ``workflow`` may name without an allow-list entry.

    Its steps' accepted and returned events (and, for steps that accept subclasses, the
    loaded subclasses of those), its start and stop events, its state type from
    ``Context[...]`` annotations with the state's model base classes, and the events
    defined or imported at the top level of the modules that define the workflow class
    (and its bases) and its steps: a step may wait for an event
    (``ctx.wait_for_event(Answer)``) that no signature names. Those modules are already
    loaded; nothing is imported.
    """
    steps = workflow.step_specs
    found: dict[type, None] = dict.fromkeys([workflow.start_event_class, workflow.stop_event_class, StartEvent, StopEvent])
    modules = {klass.__module__ for klass in type(workflow).__mro__ if klass.__module__ != "workflows.workflow"}
    modules.update(getattr(spec.func, "__module__", None) or "" for spec in steps.values())
    for module_name in sorted(m for m in modules if m and m not in ("builtins", "abc", "typing")):
        module = sys.modules.get(module_name)
        for value in list(vars(module).values()) if module is not None else ():
            if isinstance(value, type) and issubclass(value, Event):
                found[value] = None
    for spec in steps.values():
        for t in [*spec.config.accepted_events, *spec.config.return_types]:
            if isinstance(t, type) and issubclass(t, Event):
                found[t] = None
                if spec.config.accept_event_subclasses and t in spec.config.accepted_events:
                    found.update(dict.fromkeys(_subclasses(t)))
    try:
        state_type = workflow.context_state_type
    except ValueError:
        state_type = DictState
    for base in state_type.__mro__:
        if isinstance(base, type) and issubclass(base, BaseModel) and base is not BaseModel:
            found[base] = None
    return list(found)


def _subclasses(cls: type) -> list[type]:
    out: list[type] = []
    pending: list[type] = list(cls.__subclasses__())
    while pending:
        sub = pending.pop()
        if sub not in out:
            out.append(sub)
            pending.extend(sub.__subclasses__())
    return out


# ---------------------------------------------------------------------- writing
def dump_context(
    *,
    session_id: str,
    resume_count: int,
    state: dict[str, Any],
    snapshot: RunSnapshot,
    serializer: BaseSerializer,
) -> dict[str, Any]:
    """The ``Context.to_dict()`` payload, in the current format."""
    workers: dict[str, dict[str, Any]] = {}

    def worker(step: str) -> dict[str, Any]:
        return workers.setdefault(step, {"queue": [], "collected_events": {}, "collected_waiters": []})

    for step, items in snapshot.queued.items():
        worker(step)["queue"] = [
            {
                "event": _ser(serializer, i.event, f"workers.{step}.queue[{n}].event"),
                "lineage": i.lineage,
                "resolved": _events_out(serializer, i.resolved, f"workers.{step}.queue[{n}].resolved"),
                "seq": i.seq,
                "timed_out": i.timed_out,
                "attempts": i.attempts,
                "stream": i.stream,
            }
            for n, i in enumerate(items)
        ]
    for c in snapshot.collected:
        where = f"workers.{c.step}.collected_events.{c.buffer_id}"
        worker(c.step)["collected_events"][c.buffer_id] = {
            "expected": [qualified_name(t) for t in c.expected],
            "events": [_ser(serializer, e, f"{where}.events[{n}]") for n, e in enumerate(c.events)],
        }
    for w in snapshot.waiters:
        waiters = worker(w.step)["collected_waiters"]
        where = f"workers.{w.step}.collected_waiters[{len(waiters)}]"
        waiters.append(
            {
                "event": _ser(serializer, w.event, f"{where}.event"),
                "waiter_id": w.waiter_id,
                "event_type": qualified_name(w.event_type),
                "requirements": _requirements_out(serializer, w, where),
                "remaining": w.remaining,
                "lineage": w.lineage,
                "resolved": _events_out(serializer, w.resolved, f"{where}.resolved"),
                "seq": w.seq,
                "stream": w.stream,
            }
        )
    return {
        "version": PAYLOAD_VERSION,
        "session_id": session_id,
        "resume_count": resume_count,
        "state": state,
        "is_running": snapshot.is_running,
        "elapsed_alive": snapshot.elapsed_alive,
        "trace_context": dict(snapshot.carrier),
        "workers": workers,
        "next_seq": snapshot.next_seq,
        "streams": [
            {
                "stream": st.stream,
                "step": st.step,
                "parent": st.parent,
                "batches": {
                    name: [_ser(serializer, e, f"streams[{n}].batches.{name}[{i}]") for i, e in enumerate(events)]
                    for name, events in st.batches.items()
                },
                "released": list(st.released),
            }
            for n, st in enumerate(snapshot.streams)
        ],
    }


def _ser(serializer: BaseSerializer, value: Any, where: str) -> str:
    try:
        return serializer.serialize(value)
    except Exception as exc:
        raise ValueError(f"Failed to serialize {where} ({type(value).__name__}): {exc}") from None


def _requirements_out(serializer: BaseSerializer, waiter: SavedWaiter, where: str) -> str | None:
    """A wait's requirements as saved; ``None`` (any event of the type answers) when they cannot be."""
    if waiter.requirements is None:
        return None
    try:
        return serializer.serialize(waiter.requirements)
    except Exception as exc:
        # As the reference does: requirements need not be serializable (a lock, a client), and a
        # saved wait without them is answered by the next event of its type.
        logger.warning(
            "%s.requirements of wait %r could not be saved (%s): after a resume, any %s answers it",
            where, waiter.waiter_id, exc, waiter.event_type.__name__,
        )
        return None


def _events_out(serializer: BaseSerializer, resolved: dict[str, Event] | None, where: str) -> dict[str, str] | None:
    return None if not resolved else {k: _ser(serializer, v, f"{where}.{k}") for k, v in resolved.items()}


# ---------------------------------------------------------------------- reading
def load_context(data: Any, workflow: WorkflowShape, serializer: BaseSerializer) -> LoadedContext:
    """Parse and check a ``to_dict()`` payload for ``workflow``; ``ContextSerdeError`` if it does not fit."""
    try:
        parsed = schema.parse(data)
    except ValidationError as exc:
        raise ContextSerdeError(f"{INVALID}: {describe_validation_error(exc)}") from None
    reader = _Reader(workflow, serializer)
    with known_types(workflow_types(workflow)), serializer.validation_context():
        state = reader.state(parsed.state)
        snapshot = reader.snapshot(parsed)
    snapshot.session_id = parsed.session_id
    snapshot.resume_count = parsed.resume_count
    return LoadedContext(session_id=parsed.session_id, resume_count=parsed.resume_count, state=state, snapshot=snapshot)


class _Reader:
    """Turns the parsed schema into live objects, refusing what this workflow cannot run."""

    def __init__(self, workflow: WorkflowShape, serializer: BaseSerializer) -> None:
        self.workflow = workflow
        self.serializer = serializer
        self.steps = workflow.step_specs

    def fail(self, where: str, why: str) -> ContextSerdeError:
        return ContextSerdeError(f"{INVALID}: {where}: {why}")

    def value(self, text: str, where: str) -> Any:
        try:
            return self.serializer.deserialize(text)
        except RecursionError:
            raise self.fail(where, "the value is nested too deeply") from None
        except Exception as exc:
            message = str(exc)
            message = message if len(message) <= 500 else message[:500] + "..."
            raise self.fail(where, message or type(exc).__name__) from None

    def event(self, text: str, where: str) -> Event:
        ev = self.value(text, where)
        if not isinstance(ev, Event):
            raise self.fail(where, f"expected a serialized event, got a {type(ev).__name__}")
        return ev

    def events(self, texts: dict[str, str] | None, where: str) -> dict[str, Event] | None:
        return None if not texts else {k: self.event(v, f"{where}.{k}") for k, v in texts.items()}

    def event_type(self, name: str, where: str) -> type[Event]:
        resolve = getattr(self.serializer, "resolve", None)
        try:
            cls = resolve(name) if resolve is not None else JsonSerializer().resolve(name)
        except ContextSerdeError as exc:
            raise self.fail(where, str(exc)) from None
        if not (isinstance(cls, type) and issubclass(cls, Event)):
            raise self.fail(where, "expected the name of an Event class")
        return cls

    def step(self, name: str, where: str) -> Any:
        spec = self.steps.get(name)
        if spec is None:
            raise self.fail(
                where,
                f"{type(self.workflow).__name__} has no step named {name[:200]!r}; "
                "the context was saved by a different workflow",
            )
        return spec

    def accepted(self, spec: Any, ev: Event, where: str) -> Event:
        if spec.config.inputs == "collect":
            # A collect step's deliveries are the batches the run released to it.
            if not isinstance(ev, CollectionReleaseEvent):
                raise self.fail(where, f"collect step {spec.name} only runs on a CollectionReleaseEvent, not a {type(ev).__name__}")
            return ev
        if not spec.accepts(type(ev)):
            raise self.fail(where, f"step {spec.name} does not accept a {type(ev).__name__}")
        return ev

    def state(self, state: schema.StatePayload | None) -> BaseModel | None:
        if state is None:
            return None
        expected = self.workflow.context_state_type
        if isinstance(state.state_data, str):
            restored = self.value(state.state_data, "state.state_data")
            if not isinstance(restored, BaseModel):
                raise self.fail("state.state_data", f"expected a serialized state model, got a {type(restored).__name__}")
        else:
            restored = DictState()
            restored._data.update(
                {key: self.value(text, f"state.state_data._data.{key[:200]}") for key, text in state.state_data.data.items()}
            )
        if not issubclass(type(restored), expected) and not issubclass(expected, type(restored)):
            raise self.fail(
                "state",
                f"its state is a {type(restored).__name__}, but this workflow's steps use {expected.__name__}",
            )
        if (state.state_type, state.state_module) != (type(restored).__name__, type(restored).__module__):
            raise self.fail("state.state_type", f"says {state.state_type[:200]!r}, but the state data is a {type(restored).__name__}")
        return restored

    def snapshot(self, parsed: schema.Parsed) -> RunSnapshot:
        snapshot = RunSnapshot(
            is_running=parsed.is_running,
            elapsed_alive=parsed.elapsed_alive,
            carrier=dict(parsed.trace_context),
            next_seq=parsed.next_seq,
        )
        snapshot.streams = self.streams(parsed.streams)
        open_streams = {st.stream for st in snapshot.streams}
        for step_name, worker in parsed.workers.items():
            base = f"workers.{step_name[:200]}"
            spec = self.step(step_name, base)
            if worker.in_progress:
                raise self.fail(
                    f"{base}.in_progress",
                    "in-progress work saved by another engine cannot be resumed here; finish the run where it started",
                )
            for n, item in enumerate(worker.queue):
                where = f"{base}.queue[{n}]"
                snapshot.queued.setdefault(step_name, []).append(
                    SavedItem(
                        event=self.accepted(spec, self.event(item.event, f"{where}.event"), f"{where}.event"),
                        lineage=dict(item.lineage) if item.lineage is not None else None,
                        resolved=self.events(item.resolved, f"{where}.resolved"),
                        seq=item.seq,
                        timed_out=list(item.timed_out) if item.timed_out else None,
                        attempts=item.attempts,
                        stream=self.stream_ref(item.stream, open_streams, f"{where}.stream"),
                    )
                )
            for buffer_id, buf in worker.collected_events.items():
                where = f"{base}.collected_events.{buffer_id[:200]}"
                snapshot.collected.append(
                    SavedCollect(
                        step=step_name,
                        buffer_id=buffer_id,
                        expected=[self.event_type(t, f"{where}.expected[{i}]") for i, t in enumerate(buf.expected)],
                        events=[self.event(e, f"{where}.events[{i}]") for i, e in enumerate(buf.events)],
                    )
                )
            for n, w in enumerate(worker.collected_waiters):
                where = f"{base}.collected_waiters[{n}]"
                snapshot.waiters.append(
                    SavedWaiter(
                        step=step_name,
                        event=self.accepted(spec, self.event(w.event, f"{where}.event"), f"{where}.event"),
                        waiter_id=w.waiter_id,
                        event_type=self.event_type(w.event_type, f"{where}.event_type"),
                        requirements=self.requirements(w.requirements, f"{where}.requirements"),
                        remaining=w.remaining,
                        lineage=dict(w.lineage) if w.lineage is not None else None,
                        resolved=self.events(w.resolved, f"{where}.resolved"),
                        seq=w.seq,
                        stream=self.stream_ref(w.stream, open_streams, f"{where}.stream"),
                    )
                )
        return snapshot

    def stream_ref(self, stream: int | None, open_streams: set[int], where: str) -> int | None:
        if stream is not None and stream not in open_streams:
            raise self.fail(where, f"names stream {stream}, which is not among the saved streams")
        return stream

    def streams(self, saved: list[schema.Stream]) -> list[SavedStream]:
        ids = {st.stream for st in saved}
        out: list[SavedStream] = []
        for n, st in enumerate(saved):
            where = f"streams[{n}]"
            spec = self.step(st.step, f"{where}.step")
            if not spec.config.fan_out_types:
                raise self.fail(f"{where}.step", f"step {spec.name} does not return a list, so it opens no stream")
            if st.parent is not None and (st.parent not in ids or st.parent == st.stream):
                raise self.fail(f"{where}.parent", f"names stream {st.parent}, which is not another saved stream")
            batches: dict[str, list[Event]] = {}
            for name, texts in st.batches.items():
                collector = self.step(name, f"{where}.batches.{name[:200]}")
                if collector.config.inputs != "collect":
                    raise self.fail(f"{where}.batches.{name[:200]}", f"step {name[:200]} has no list[E] parameter")
                batches[name] = [
                    self.accepted_by(collector, self.event(t, f"{where}.batches.{name[:200]}[{i}]"), f"{where}.batches.{name[:200]}[{i}]")
                    for i, t in enumerate(texts)
                ]
            for i, name in enumerate(st.released):
                self.step(name, f"{where}.released[{i}]")
            out.append(SavedStream(stream=st.stream, step=st.step, parent=st.parent, batches=batches, released=list(st.released)))
        if len(ids) != len(saved):
            raise self.fail("streams", "a stream is saved twice")
        parents = {st.stream: st.parent for st in saved}
        for n, st in enumerate(saved):
            seen, current = {st.stream}, st.parent
            while current is not None:
                if current in seen:
                    raise self.fail(f"streams[{n}].parent", "the streams' parents form a cycle")
                seen.add(current)
                current = parents.get(current)
        return out

    def accepted_by(self, spec: Any, ev: Event, where: str) -> Event:
        if not spec.accepts(type(ev)):
            raise self.fail(where, f"step {spec.name} does not collect a {type(ev).__name__}")
        return ev

    def requirements(self, raw: str | dict[str, Any] | None, where: str) -> dict[str, Any] | None:
        if raw is None:
            return None
        # Format 3 stores them as one serializer string; older formats as a plain object.
        value = self.value(raw, where) if isinstance(raw, str) else raw
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise self.fail(where, f"expected an object with string keys, got a {type(value).__name__}")
        return value


__all__ = [
    "PAYLOAD_VERSION",
    "SavedItem",
    "SavedWaiter",
    "SavedCollect",
    "SavedStream",
    "RunSnapshot",
    "LoadedContext",
    "WorkflowShape",
    "workflow_types",
    "dump_context",
    "load_context",
]
