"""``Context``: a run's state store, its channel to the outside, and what is saved of it.

One class, three faces. Before a run (``Context(workflow)`` or ``Context.from_dict``)
it holds a store that the run will use. Given to ``workflow.run(ctx=...)`` or read from
``handler.ctx`` it is the outside view of the run (send events, stream, snapshot).
Injected into a step it is the inside view of one step invocation (collect, wait,
write to the stream, retry info). Calling a method from the wrong face raises
``ContextStateError`` saying where it belongs.

The Context's id is the run's session id: every run that reuses the same Context (or
a Context restored from its ``to_dict()``) belongs to one session in the traces.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, AsyncGenerator, Generic, Iterable

from pydantic import BaseModel
from typing_extensions import TypeVar

from workflows.context.external_context import ExternalContext
from workflows.context.serializers import BaseSerializer, JsonSerializer
from workflows.context.state_store import DictState, InMemoryStateStore
from workflows.errors import ContextResumedTwiceWarning, ContextSerdeError, ContextStateError, WorkflowRuntimeError
from workflows.events import Event
from workflows.retry_policy import RetryInfo
from workflows.runtime.ids import random_id
from workflows.runtime.journal import JournalRecord
from workflows.runtime.replay import replay
from workflows.runtime.scope import WaitSuspended, current_step_context
from workflows.runtime.snapshot import RunSnapshot, dump_context, load_context
from workflows.runtime.stream import FINAL, entry_kind

if TYPE_CHECKING:
    from workflows.runtime.routing import WorkItem
    from workflows.runtime.run import WorkflowRun
    from workflows.workflow import Workflow

# Defaults to DictState so that ``ctx = Context(workflow)`` type-checks without annotation.
MODEL_T = TypeVar("MODEL_T", bound=BaseModel, default=DictState)
EventT = TypeVar("EventT", bound=Event)

_PRE_RUN, _EXTERNAL, _INTERNAL = "pre-run", "external", "internal"
_thread_ident = threading.get_ident  # read once: write_event_to_stream runs per streamed event

# Shared by the contexts given no serializer (one is made per run): a JsonSerializer
# without an allow-list holds nothing of a context's own, only a cache of model dumpers.
_DEFAULT_SERIALIZER = JsonSerializer()
_store_creation = threading.Lock()


class _ResumeLedger:
    """The run segments (``resume_id``) resumed in this process, to warn about a second resume.

    Bounded, oldest forgotten first: it is a tripwire for mistakes, not a guarantee (that
    needs a store shared by every process, which is what the server keeps).
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def record(self, resume_id: str) -> int:
        """Count one more resume of ``resume_id``; returns how many there have been."""
        with self._lock:
            count = self._seen.pop(resume_id, 0) + 1
            self._seen[resume_id] = count
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
            return count


_resumes = _ResumeLedger()


class Context(Generic[MODEL_T]):
    """The state and the controls of a workflow run; see the module docstring for its faces.

    ``Context(workflow)`` creates a fresh context (its store typed after the steps'
    ``Context[S]`` annotations); pass it to several ``workflow.run(ctx=...)`` calls in a
    row to keep state across runs. ``previous_context`` is a ``to_dict()`` payload to
    restore (same as ``Context.from_dict``).
    """

    def __init__(
        self,
        workflow: Workflow,
        previous_context: dict[str, Any] | None = None,
        serializer: BaseSerializer | None = None,
    ) -> None:
        self._workflow = workflow
        self._serializer = serializer or workflow._serializer or _DEFAULT_SERIALIZER
        self._face = _PRE_RUN
        self._run: WorkflowRun | None = None
        self._last_run: WorkflowRun | None = None
        self._snapshot: RunSnapshot | None = None
        self._store_instance: InMemoryStateStore[Any] | None = None
        self._session_id = random_id()
        self._resume_count = 0
        # Internal-face fields (set by _for_step)
        self._parent: Context[Any] | None = None
        self._step_name: str | None = None
        self._item: WorkItem | None = None
        self._invocation_id: int | None = None
        self._retry_info: RetryInfo | None = None
        if previous_context is not None:
            self._load(previous_context, self._serializer)

    @classmethod
    def _for_step(cls, parent: Any, run: WorkflowRun, step: str, item: WorkItem, invocation_id: int) -> Context[Any]:
        # Built per step invocation, so it stays cheap: no __init__, just the fields.
        ctx = cls.__new__(cls)
        ctx._workflow = parent._workflow
        ctx._serializer = parent._serializer
        ctx._face = _INTERNAL
        ctx._run = run
        ctx._parent = parent
        ctx._store_instance = parent._store_instance
        ctx._session_id = parent._session_id
        ctx._resume_count = parent._resume_count
        ctx._step_name = step
        ctx._item = item
        ctx._invocation_id = invocation_id
        ctx._retry_info = None
        return ctx

    # ------------------------------------------------------------------ common
    @property
    def session_id(self) -> str:
        """The id of this Context, shared by every run that uses it (the trace session)."""
        return self._session_id

    @property
    def resume_count(self) -> int:
        """How many times this run was resumed from a saved context before (0 for a first run).

        Written into ``to_dict()`` payloads: a payload saved after the first resume has 1.
        """
        return self._resume_count

    @property
    def resume_id(self) -> str | None:
        """The id of the saved run this context would resume (``"<session_id>:<resume_count>"``).

        ``None`` unless the context holds a mid-run snapshot (``is_running`` and not yet
        resumed). Two contexts restored from the same payload, or from two payloads of
        the same run segment, have the same ``resume_id``: resuming both runs the work
        after the snapshot twice. Keep a record of the ids you resumed to refuse that
        (the server does); in one process a second resume warns with
        ``ContextResumedTwiceWarning``.
        """
        if self._run is None and self._pending_snapshot() is not None:
            return f"{self._session_id}:{self._resume_count}"
        return None

    @property
    def store(self) -> InMemoryStateStore[MODEL_T]:
        """The run's state store (the same one before, during and after runs)."""
        store = self._store_instance
        if store is None:
            if self._parent is not None:  # a step's context: its run's store
                store = self._store_instance = self._parent.store
            else:
                # Made on first use, which may come from a sync step's thread: once, under a lock.
                with _store_creation:
                    store = self._store_instance
                    if store is None:
                        store = self._store_instance = InMemoryStateStore(state_type=self._workflow.context_state_type)
        return store

    def _prepare_store(self) -> None:
        """Make a typed store now (its problems then surface before the run starts).

        A ``DictState`` store cannot fail: it waits for first use, as many runs never
        touch their state (a run waiting for a human holds no empty state meanwhile).
        """
        if self._store_instance is None and self._workflow.context_state_type is not DictState:
            self.store  # noqa: B018

    @property
    def is_running(self) -> bool:
        """Whether the run is live (a restored mid-run snapshot also counts as running)."""
        if self._face == _INTERNAL:
            warnings.warn(
                "is_running called from within a step; the workflow is always running inside a step. "
                "This usage is deprecated.",
                DeprecationWarning,
                stacklevel=2,
            )
            return True
        if self._run is not None:
            return True
        return self._snapshot is not None and self._snapshot.is_running

    def _require(self, fn: str, *faces: str) -> None:
        if self._face in faces:
            return
        if self._face == _PRE_RUN:
            raise ContextStateError(f"{fn} requires a running workflow. Call workflow.run() first.")
        if self._face == _INTERNAL:
            raise ContextStateError(f"{fn} is only available from handler code, not from within steps.")
        raise ContextStateError(f"{fn} is only available from within step functions.")

    def _live_run(self) -> WorkflowRun | None:
        return self._run if self._face == _INTERNAL else (self._run or self._last_run)

    # ------------------------------------------------------------------ sending / streaming
    def send_event(self, message: Event, step: str | None = None) -> None:
        """Deliver ``message`` to every step that accepts it, or only to ``step``.

        Works from steps and from handler code; delivery happens in the background. An
        unknown step, or one that does not accept the event's type, raises
        ``WorkflowRuntimeError`` right away. Sending into a finished run does nothing.
        """
        if self._face == _PRE_RUN and self._last_run is None:
            raise ContextStateError("send_event() called before workflow started. Call workflow.run() first.")
        run = self._live_run()
        if run is None:
            return
        if self._face == _INTERNAL:
            item = self._item
            run.call_in_loop(
                run.send, message, step, source="send_event", from_step=self._step_name,
                invocation_id=self._invocation_id, lineage=item.lineage if item else None,
                sender=item.seq if item else None,
            )
        else:
            if run.done:
                return
            run.call_in_loop(run.send, message, step, source="external")

    def write_event_to_stream(self, ev: Event | None) -> None:
        """Publish ``ev`` to the run's event stream (``handler.stream_events()``); None does nothing."""
        if self._face is not _INTERNAL:
            self._require("write_event_to_stream", _INTERNAL)
        if ev is None:
            return
        run = self._run
        assert run is not None
        if _thread_ident() == run.loop_thread:  # an async step: no hand-off to the loop needed
            run.write_to_stream(ev, self._step_name, self._invocation_id)
        else:
            run.call_in_loop(run.write_to_stream, ev, self._step_name, self._invocation_id)

    def stream_events(self) -> AsyncGenerator[Event, None]:
        """The run's raw event stream, internal events included; can be consumed once per run.

        Raises ``ContextStateError`` at the call (not at the first iteration) before a run
        has started or from within a step.
        """
        self._require("stream_events", _EXTERNAL)
        run = self._live_run()
        assert run is not None
        return self._stream(run)

    async def _stream(self, run: WorkflowRun) -> AsyncGenerator[Event, None]:
        stream = run.stream
        if stream.raw_taken:
            raise WorkflowRuntimeError("Event stream already consumed. Events can only be streamed once per workflow run.")
        stream.raw_taken = True
        index = 0
        while True:
            while index < len(stream.entries):
                event = stream.read(index)[0]
                index += 1
                yield event
                if entry_kind(event) is FINAL:
                    return
            if stream.closed:
                return
            await stream.changed()

    # ------------------------------------------------------------------ step-only helpers
    def collect_events(self, ev: Event, expected: list[type[Event]], buffer_id: str | None = None) -> list[Event] | None:
        """Buffer ``ev`` until one event of each type in ``expected`` has arrived.

        Returns ``None`` while some are missing (the step then usually returns
        ``None``), and the events ordered as ``expected`` (same-type events in arrival
        order) once the set is complete, which empties the buffer. Each step has its
        own buffers; ``buffer_id`` separates several collections in one step.
        """
        self._require("collect_events", _INTERNAL)
        if not expected:
            return []
        assert self._run is not None and self._step_name is not None
        return self._run.call_in_loop(
            self._run.collect, self._step_name, buffer_id or "default", ev, expected, self._invocation_id,
            self._item.seq if self._item is not None else None,
        )

    async def wait_for_event(
        self,
        event_type: type[EventT],
        waiter_event: Event | None = None,
        waiter_id: str | None = None,
        requirements: dict[str, Any] | None = None,
        timeout: float | None = 2000,
    ) -> EventT:
        """Suspend this step until an event of ``event_type`` (matching ``requirements``) arrives.

        The step is parked without holding a worker, and when the event arrives it runs
        again *from the top* with its original input; this time the call returns the
        event at once. Code before the call therefore runs more than once and must be
        idempotent. ``waiter_event`` (typically an ``InputRequiredEvent``) is written to
        the stream once, when the wait begins. After ``timeout`` seconds the step is run
        again and the call raises ``asyncio.TimeoutError``.
        """
        self._require("wait_for_event", _INTERNAL)
        run, item = self._run, self._item
        assert run is not None and item is not None and self._step_name is not None
        if waiter_id is None:
            reqs = ",".join(f"{k}={v!r}" for k, v in sorted((requirements or {}).items()))
            waiter_id = f"{event_type.__module__}.{event_type.__qualname__}[{reqs}]#{item.seq}"
        if item.resolved and waiter_id in item.resolved:
            return item.resolved[waiter_id]  # type: ignore[return-value]
        if item.timed_out and waiter_id in item.timed_out:
            raise asyncio.TimeoutError(f"Timed out waiting for {event_type.__name__}")
        spec = run.routes.steps[self._step_name]
        run.add_waiter(
            self._step_name, item, waiter_id, event_type, requirements, timeout, waiter_event,
            self._invocation_id or 0, spec.config.accept_event_subclasses,
        )
        raise WaitSuspended()

    def retry_info(self) -> RetryInfo:
        """What this step invocation knows of its earlier failed attempts (0 retries at first)."""
        self._require("retry_info", _INTERNAL)
        return self._retry_info or RetryInfo()

    @staticmethod
    def get_step_context() -> Context[Any]:
        """The context of the step running in this task or thread (for helpers called by steps)."""
        ctx = current_step_context.get()
        if ctx is None:
            raise WorkflowRuntimeError("Context.get_step_context() may only be called from within a step function")
        return ctx

    # ------------------------------------------------------------------ handler-side helpers
    async def running_steps(self) -> list[str]:
        """The names of steps with an invocation in progress."""
        self._require("running_steps", _EXTERNAL)
        run = self._live_run()
        if run is None:
            return []
        return sorted(name for name, state in run.steps.items() if state.in_progress)

    def get_result(self) -> Any:
        """Deprecated: ``await handler`` instead."""
        warnings.warn("Context.get_result() is deprecated; await the handler instead", DeprecationWarning, stacklevel=2)
        self._require("get_result", _EXTERNAL)
        run = self._live_run()
        if run is None or run.status != "completed":
            raise WorkflowRuntimeError(f"Workflow run with run_id {run.run_id if run else None} is not complete")
        return run.result

    @property
    def streaming_queue(self) -> asyncio.Queue[Event]:
        """Deprecated: an ``asyncio.Queue`` of the raw stream; use ``handler.stream_events()``.

        Every access returns the same queue for a run, holding the events published so
        far and then each new one, up to and including the final stop event.
        """
        warnings.warn("Context.streaming_queue is deprecated; use handler.stream_events()", DeprecationWarning, stacklevel=2)
        self._require("streaming_queue", _EXTERNAL)
        run = self._live_run()
        assert run is not None
        queues = run.stream.queues
        return queues[0] if queues else run.stream.queue()

    # ------------------------------------------------------------------ run lifecycle (engine side)
    def _attach(self, run: WorkflowRun) -> None:
        if self._face == _INTERNAL:
            raise ContextStateError("Cannot start workflow from a step function context")
        if self._run is not None:
            raise ContextStateError(
                "Cannot start a new run while context is already running. Wait for completion or use a new Context."
            )
        resume_id = self.resume_id
        # The outside face also carries the run (for ExternalContext._tick_log); it equals "external".
        self._face = ExternalContext(run)
        self._run = run
        self._snapshot = None
        if resume_id is not None:
            self._resume_count += 1
            if _resumes.record(resume_id) == 2:
                warnings.warn(
                    f"The saved context {resume_id} is being resumed a second time in this process: the "
                    "work after its snapshot runs again. Resume each to_dict() payload once "
                    "(see Context.resume_id and docs/security.md).",
                    ContextResumedTwiceWarning,
                    stacklevel=3,
                )

    def _run_ended(self, run: WorkflowRun) -> None:
        if self._run is run:
            self._run = None
            self._last_run = run
            # A cancelled run stays resumable: its snapshot is what to_dict() saves next.
            self._snapshot = run.final_snapshot

    def _pending_snapshot(self) -> RunSnapshot | None:
        """The saved run to resume, if this context holds one that was mid-flight."""
        if self._snapshot is not None and self._snapshot.is_running:
            return self._snapshot
        return None

    # ------------------------------------------------------------------ serialization
    def to_dict(self, serializer: BaseSerializer | None = None, *, include_state: bool = True) -> dict[str, Any]:
        """A JSON-compatible snapshot of the state and of the run (queued work, waits, trace context).

        Allowed before a run (the initial snapshot) and from handler code during or after
        a run; a snapshot taken mid-run (``is_running`` true) resumes the run when given
        to ``Context.from_dict`` and ``workflow.run(ctx=...)``, possibly in another process.
        The payload carries the context's ``session_id`` and ``resume_count`` (see
        ``resume_id``) and is strict JSON (``json.dumps(..., allow_nan=False)`` works).
        With the default JSON serializer an unserializable value raises ``ValueError``
        naming its key and type (never the value); pass ``serializer=PickleSerializer()``
        to carry such values, for trusted storage only.
        """
        if self._face == _INTERNAL:
            raise ContextStateError("to_dict is only available from handler code, not from within steps.")
        serializer = serializer or self._serializer
        if self._run is not None:
            snapshot = self._run.take_snapshot()
        elif self._snapshot is not None:
            snapshot = self._snapshot
        else:
            snapshot = RunSnapshot(is_running=False)
        return dump_context(
            session_id=self._session_id,
            resume_count=self._resume_count,
            state=self.store.to_dict(serializer) if include_state else {},
            snapshot=snapshot,
            serializer=serializer,
        )

    @classmethod
    def from_dict(
        cls, workflow: Workflow, data: dict[str, Any], serializer: BaseSerializer | None = None
    ) -> Context[Any]:
        """Rebuild a Context from ``to_dict()`` output.

        Every field is checked before anything is restored: a payload that does not fit
        (wrong types, missing or unknown keys, steps this workflow does not have, events
        those steps do not accept, types that are neither the workflow's own nor on the
        serializer's allow-list) raises ``ContextSerdeError`` naming the field. Classes
        are never imported because the payload names them (see docs/security.md).
        """
        return cls(workflow, previous_context=data, serializer=serializer)

    @classmethod
    def from_journal(
        cls,
        workflow: Workflow,
        data: dict[str, Any],
        records: Iterable[JournalRecord],
        serializer: BaseSerializer | None = None,
    ) -> Context[Any]:
        """Rebuild a Context from a ``to_dict()`` snapshot and the journal records written after it.

        This is how a durable runtime continues a run in another process: the returned
        context, given to ``workflow.run(ctx=...)``, resumes the run where its journal
        ends. ``records`` are live records (``workflows.runtime.codec.decode_record``
        turns stored ones back into records). A step invocation that the records leave
        unfinished runs again from its start, with the state it started from and the
        next attempt number; see ``workflows.runtime.replay``.
        """
        ctx = cls.from_dict(workflow, data, serializer)
        snapshot = ctx._snapshot if ctx._snapshot is not None else RunSnapshot()
        workflow._current()
        routes = workflow._routes
        ctx._snapshot = replay(
            snapshot, records, ctx.store, lambda event: [spec.name for spec in routes.targets(type(event))]
        )
        return ctx

    def _load(self, data: dict[str, Any], serializer: BaseSerializer) -> None:
        try:
            loaded = load_context(data, self._workflow, serializer)
        except ContextSerdeError:
            raise
        except RecursionError:
            raise ContextSerdeError(
                "Context dict specified in an invalid format: it is nested too deeply"
            ) from None
        if loaded.state is not None:
            self._store_instance = InMemoryStateStore(loaded.state)
        self._session_id = loaded.session_id or self._session_id
        self._resume_count = loaded.resume_count
        self._snapshot = loaded.snapshot


__all__ = ["Context"]
