"""The versioned schema of a saved context (the dict ``Context.to_dict()`` returns).

``parse`` checks a payload's shape and field types, strictly (no coercion: ``"10"`` is
not a number), and upgrades older formats to the current one:

* **4** (current): every key is required and no other key is accepted. It adds the
  open fan-out ``streams`` and the ``stream`` each queued delivery and wait belongs to.
* **3**: as strict, without streams; upgraded (no delivery belongs to a stream).
  It added ``resume_count`` and stores waiter ``requirements`` as one serializer string.
* **0, 1, 2**: read and upgraded (``resume_count`` 0; plain-object requirements). Keys
  this engine does not know are ignored, except a non-empty per-step ``in_progress``
  (work another engine had started), which is refused later with an explanation.
* anything newer is refused with the version this engine reads.

What the values *mean* (known steps, events the steps accept, resolvable types) is
checked in ``workflows.runtime.snapshot`` against the workflow.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

CURRENT_VERSION = 4
OLDEST_VERSION = 0

_MAX_COUNT = 2**53  # seq, lineage and resume counters: beyond this they are corrupt, not big
_MAX_ID = 10_000  # characters in ids, names and keys

Count = Annotated[int, Field(ge=0, le=_MAX_COUNT)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, max_length=_MAX_ID)]
Key = Annotated[str, Field(max_length=_MAX_ID)]
Text = str  # a serializer string; its content is checked when it is deserialized


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class _Lenient(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class DictStateData(_Strict):
    """``state_data`` of a ``DictState``: one serializer string per key."""

    data: dict[Key, Text] = Field(alias="_data")


class StatePayload(_Strict):
    """The ``state`` of a context that has one (``{}`` means a fresh store)."""

    store_type: Literal["in_memory"]
    state_type: Name
    state_module: Name
    state_data: Union[DictStateData, Text]


class ItemV3(_Strict):
    """A queued or in-progress delivery (format 3)."""

    event: Text
    lineage: dict[Name, Count] | None
    resolved: dict[Name, Text] | None
    seq: Count | None
    timed_out: list[Name] | None  # waits of this delivery that timed out
    attempts: Count  # attempts made before the save (a step run again continues the count)


class Item(ItemV3):
    """A queued or in-progress delivery."""

    stream: Count | None  # the fan-out stream it belongs to


class WaiterV3(_Strict):
    """A ``wait_for_event`` that was pending (format 3)."""

    event: Text
    waiter_id: Name
    event_type: Name
    requirements: Text | None
    remaining: Seconds | None
    lineage: dict[Name, Count] | None
    resolved: dict[Name, Text] | None
    seq: Count  # the run derives default waiter ids from it: never missing


class Waiter(WaiterV3):
    """A ``wait_for_event`` that was pending."""

    stream: Count | None  # the fan-out stream of the waiting delivery


class Stream(_Strict):
    """An open fan-out stream (named by the seq of the delivery that opened it)."""

    stream: Count
    step: Name  # the fan-out step that opened it
    parent: Count | None
    batches: dict[Name, list[Text]]  # collect step -> the events gathered for it
    released: list[Name]  # collect steps already handed their batch


class Buffer(_Strict):
    """A ``collect_events`` buffer."""

    expected: Annotated[list[Name], Field(min_length=1)]
    events: list[Text]


class Worker(_Strict):
    """Everything saved for one step."""

    queue: list[Item]
    collected_events: dict[Key, Buffer]
    collected_waiters: list[Waiter]
    in_progress: list[Any] = Field(default_factory=list, exclude=True)  # never written since format 3


class WorkerV3(_Strict):
    queue: list[ItemV3]
    collected_events: dict[Key, Buffer]
    collected_waiters: list[WaiterV3]


class PayloadV3(_Strict):
    """A saved context in format 3 (strict, like the current one, without streams)."""

    version: Literal[3]
    session_id: Name | None
    resume_count: Count
    state: dict[str, Any]
    is_running: bool
    elapsed_alive: Seconds
    trace_context: dict[Key, Annotated[str, Field(max_length=_MAX_ID)]]
    workers: dict[Name, WorkerV3]
    next_seq: Count  # the next work item number: numbers are never reused in a run


class Payload(_Strict):
    """A saved context in the current format (older ones are upgraded into it)."""

    version: Literal[4]
    session_id: Name | None
    resume_count: Count
    state: dict[str, Any]
    is_running: bool
    elapsed_alive: Seconds
    trace_context: dict[Key, Annotated[str, Field(max_length=_MAX_ID)]]
    workers: dict[Name, Worker]
    next_seq: Count  # the next work item number: numbers are never reused in a run
    streams: list[Stream]  # the open fan-out streams


# Legacy formats: the same field types, but keys may be missing or unknown.
class LegacyItem(_Lenient):
    event: Text
    lineage: dict[Name, Count] | None = None
    resolved: dict[Name, Text] | None = None
    seq: Count | None = None


class LegacyWaiter(_Lenient):
    event: Text
    waiter_id: Name
    event_type: Name
    requirements: dict[str, Any] | None = None
    remaining: Seconds | None = None
    lineage: dict[Name, Count] | None = None
    resolved: dict[Name, Text] | None = None
    seq: Count | None = None


class LegacyBuffer(_Lenient):
    expected: Annotated[list[Name], Field(min_length=1)]
    events: list[Text] = Field(default_factory=list)


class LegacyWorker(_Lenient):
    queue: list[LegacyItem] | None = None
    collected_events: dict[Key, LegacyBuffer] | None = None
    collected_waiters: list[LegacyWaiter] | None = None
    in_progress: Any = None


class LegacyPayload(_Lenient):
    version: Annotated[int, Field(ge=OLDEST_VERSION, le=2)] = 0
    session_id: Name | None = None
    state: dict[str, Any]
    is_running: bool = False
    elapsed_alive: Seconds | None = None
    trace_context: dict[Key, Annotated[str, Field(max_length=_MAX_ID)]] | None = None
    workers: dict[Name, LegacyWorker] | None = None


_STATE: TypeAdapter[StatePayload] = TypeAdapter(StatePayload)
_UNION_TAGS = frozenset({"DictStateData", "str"})


class Parsed(_Strict):
    """A payload of any supported version, upgraded to the current shape."""

    version: int
    session_id: str | None
    resume_count: int
    state: StatePayload | None
    is_running: bool
    elapsed_alive: float
    trace_context: dict[str, str]
    workers: dict[str, Worker]
    next_seq: int = 0
    streams: list[Stream] = Field(default_factory=list)


def parse(data: Any) -> Parsed:
    """Check ``data`` against its version's schema and upgrade it; ``ValidationError`` if it does not fit."""
    if not isinstance(data, dict):
        raise _error((), "dict_type", "a saved context must be a dict (the output of ctx.to_dict())")
    if "version" not in data and "resume_count" in data:
        # Only formats 3 and later have resume_count: a damaged current payload, not a format 0 one.
        raise _error(("version",), "missing", "Field required")
    version = data.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise _error(("version",), "int_type", "the format version must be an integer")
    if version > CURRENT_VERSION:
        raise _error(
            ("version",),
            "version_too_new",
            f"version {version} is newer than this engine reads (up to {CURRENT_VERSION}); "
            "upgrade otel-workflows where the context is loaded",
        )
    if version < OLDEST_VERSION:
        raise _error(("version",), "version_unknown", f"version {version} is not a saved-context format")
    if version == CURRENT_VERSION:
        payload = Payload.model_validate(data)
        return Parsed(
            version=version,
            session_id=payload.session_id,
            resume_count=payload.resume_count,
            state=_state(payload.state),
            is_running=payload.is_running,
            elapsed_alive=payload.elapsed_alive,
            trace_context=dict(payload.trace_context),
            workers=dict(payload.workers),
            next_seq=payload.next_seq,
            streams=list(payload.streams),
        )
    if version == 3:
        v3 = PayloadV3.model_validate(data)
        return Parsed(
            version=version,
            session_id=v3.session_id,
            resume_count=v3.resume_count,
            state=_state(v3.state),
            is_running=v3.is_running,
            elapsed_alive=v3.elapsed_alive,
            trace_context=dict(v3.trace_context),
            workers={name: _upgrade_v3_worker(w) for name, w in v3.workers.items()},
            next_seq=v3.next_seq,
        )
    legacy = LegacyPayload.model_validate(data)
    return Parsed(
        version=version,
        session_id=legacy.session_id,
        resume_count=0,
        state=_state(legacy.state),
        is_running=legacy.is_running,
        elapsed_alive=legacy.elapsed_alive or 0.0,
        trace_context=dict(legacy.trace_context or {}),
        workers={name: _upgrade_worker(w) for name, w in (legacy.workers or {}).items()},
    )


def _state(state: dict[str, Any]) -> StatePayload | None:
    if not state:
        return None
    try:
        return _STATE.validate_python(state)
    except ValidationError as exc:
        # Re-root the errors under "state" so the path names the field in the payload.
        raise ValidationError.from_exception_data(
            "saved context",
            [
                InitErrorDetails(
                    type=PydanticCustomError("state_error", "{msg}", {"msg": e["msg"]}),
                    # Union member tags ("DictStateData", "str") are not payload keys.
                    loc=("state", *(k for k in e["loc"] if k not in _UNION_TAGS)),
                    input=None,
                )
                for e in exc.errors(include_input=False)
            ],
        ) from None


def _upgrade_v3_worker(worker: WorkerV3) -> Worker:
    return Worker(
        queue=[Item(**dict(i), stream=None) for i in worker.queue],
        collected_events=dict(worker.collected_events),
        collected_waiters=[Waiter(**dict(w), stream=None) for w in worker.collected_waiters],
    )


def _upgrade_worker(worker: LegacyWorker) -> Worker:
    return Worker(
        queue=[
            Item(event=i.event, lineage=i.lineage, resolved=i.resolved, seq=i.seq, timed_out=None, attempts=0, stream=None)
            for i in worker.queue or []
        ],
        collected_events={k: Buffer(expected=b.expected, events=b.events) for k, b in (worker.collected_events or {}).items()},
        collected_waiters=[_upgrade_waiter(w) for w in worker.collected_waiters or []],
        in_progress=list(worker.in_progress) if isinstance(worker.in_progress, (list, dict)) and worker.in_progress else [],
    )


def _upgrade_waiter(w: LegacyWaiter) -> Waiter:
    # Built without validation: a legacy waiter keeps plain-object requirements, which
    # the loader reads as well as format 3's serializer string.
    fields: dict[str, Any] = dict(w)  # requirements may be a dict and seq None here
    return Waiter.model_construct(**fields, stream=None)


def _error(loc: tuple[str, ...], kind: str, message: str) -> ValidationError:
    return ValidationError.from_exception_data(
        "saved context",
        [InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=None)],
    )
