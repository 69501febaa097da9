"""One run of a workflow: per-step queues, worker tasks, routing, waits, timeouts.

The run owns every task it starts. A driver task waits for the run to end (a
``StopEvent``, a failure, the timeout, a cancel), then cancels and awaits whatever is
still running, so nothing outlives the run. Routing is a dict look-up of the event's
type. A worker task keeps going as long as it has work: it drains its step's queue and
takes the next step of a chain (or of a loop) itself, so events do not pay for a new
task each; a step waiting for an external event holds no task at all (it is run again
from the top when the event arrives).

The run's state is plain data (queued and in-progress work items, collect buffers,
waiters, the store), which is what ``Context.to_dict()`` serializes and what a resumed
run is rebuilt from. Every transition is published to the instrumentation dispatcher,
but only when some handler follows this run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import itertools
import logging
import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

from workflows.errors import WorkflowCancelledByUser, WorkflowRuntimeError, WorkflowTimeoutError
from workflows.events import (
    Event,
    InputRequiredEvent,
    StepFailedEvent,
    StepState,
    StepStateChanged,
    StopEvent,
    UnhandledEvent,
    WorkflowCancelledEvent,
    WorkflowFailedEvent,
    WorkflowIdleEvent,
    WorkflowTimedOutEvent,
)
from workflows.instrumentation.dispatcher import Handlers, get_dispatcher
from workflows.instrumentation.events import (
    EventEmitted,
    EventSource,
    RunFinished,
    RunInfo,
    RunStarted,
    RunStatus,
    StateChanged,
    StepFinished,
    StepOutcome,
    StepStarted,
    WaitEnded,
    WaitStarted,
    current_run,
)
from workflows.retry_policy import RetryInfo, next_delay
from workflows.runtime.steps import RouteTable, StepSpec
from workflows.summary import summarize_event

if TYPE_CHECKING:
    from workflows.context.context import Context
    from workflows.runtime.snapshot import RunSnapshot
    from workflows.workflow import Workflow

T = TypeVar("T")

logger = logging.getLogger("workflows.runtime")
verbose_logger = logging.getLogger("workflows.verbose")

_dispatcher = get_dispatcher()

current_step_context: contextvars.ContextVar[Context | None] = contextvars.ContextVar(
    "workflows_current_step_context", default=None
)


class WaitSuspended(BaseException):
    """Raised by ``ctx.wait_for_event`` to park a step until its event arrives.

    A ``BaseException`` so that a step's own ``except Exception`` cannot swallow it.
    """


class WorkItem:
    """One delivery of an event to one step (and what a replay of it already knows)."""

    __slots__ = ("event", "event_id", "seq", "resolved", "timed_out", "lineage")

    def __init__(
        self,
        event: Event,
        event_id: str | None,
        seq: int,
        lineage: dict[str, int] | None = None,
        resolved: dict[str, Event] | None = None,
        timed_out: frozenset[str] | None = None,
    ) -> None:
        self.event = event
        self.event_id = event_id
        self.seq = seq
        self.lineage = lineage
        self.resolved = resolved
        self.timed_out = timed_out


class Waiter:
    """A step parked in ``ctx.wait_for_event`` until a matching event arrives."""

    __slots__ = ("step", "item", "waiter_id", "event_type", "requirements", "subclasses", "deadline", "timer")

    def __init__(
        self,
        step: str,
        item: WorkItem,
        waiter_id: str,
        event_type: type[Event],
        requirements: dict[str, Any] | None,
        subclasses: bool,
        deadline: float | None,
    ) -> None:
        self.step = step
        self.item = item
        self.waiter_id = waiter_id
        self.event_type = event_type
        self.requirements = requirements
        self.subclasses = subclasses
        self.deadline = deadline
        self.timer: asyncio.TimerHandle | None = None

    def matches(self, event: Event) -> bool:
        if type(event) is not self.event_type and not (self.subclasses and isinstance(event, self.event_type)):
            return False
        if self.requirements:
            return all(getattr(event, k, None) == v for k, v in self.requirements.items())
        return True


class CollectBuffer:
    """Events gathered by ``ctx.collect_events`` for one step and buffer id.

    Adding an event is O(1): we count what is still missing per type instead of
    re-scanning the expected list.
    """

    __slots__ = ("expected", "need", "got", "missing")

    def __init__(self, expected: list[type[Event]]) -> None:
        self.expected = expected
        self.need: dict[type, int] = {}
        for t in expected:
            self.need[t] = self.need.get(t, 0) + 1
        self.got: dict[type, list[Event]] = {}
        self.missing = len(expected)

    def add(self, event: Event) -> bool:
        """Buffer ``event`` if its type is still missing; True when the set is complete."""
        t = type(event)
        have = self.got.get(t)
        if have is None:
            if t not in self.need:
                return False
            have = self.got[t] = []
        if len(have) < self.need[t]:
            have.append(event)
            self.missing -= 1
        return self.missing == 0

    def ordered(self) -> list[Event]:
        cursors: dict[type, Iterator[Event]] = {t: iter(evs) for t, evs in self.got.items()}
        return [next(cursors[t]) for t in self.expected]

    def events(self) -> list[Event]:
        return [ev for evs in self.got.values() for ev in evs]


class StepRuntime:
    """A step's live state within one run: its queue and its free worker slots."""

    __slots__ = ("spec", "queue", "free_slots", "in_progress")

    def __init__(self, spec: StepSpec) -> None:
        self.spec = spec
        # Created on first use: most steps of a waiting run never queue anything.
        self.queue: deque[WorkItem] | None = None
        self.free_slots = list(range(spec.num_workers - 1, -1, -1))
        self.in_progress: dict[int, WorkItem] = {}


_type_names: dict[type, str] = {}


def _type_str(t: type) -> str:
    """``str(t)``, memoised: StepStateChanged reports output types this way."""
    name = _type_names.get(t)
    if name is None:
        name = _type_names[t] = str(t)
    return name


# Internal stream records are kept as tuples of strings, which the garbage collector
# stops tracking, so a long run's stream does not make every collection slower; they
# become events only for a reader that streams with expose_internal=True.
_IDLE = ("idle",)
_NONE_STR = str(type(None))


def _materialize(record: tuple[Any, ...]) -> Event:
    kind = record[0]
    if kind == "step":
        _, name, state, worker_id, input_name, output_name = record
        return StepStateChanged(
            name=name, step_state=StepState(state), worker_id=worker_id, input_event_name=input_name,
            output_event_name=output_name,
        )
    if kind == "unhandled":
        _, event_type, qualified_name, step_name, idle = record
        return UnhandledEvent(event_type=event_type, qualified_name=qualified_name, step_name=step_name, idle=idle)
    return WorkflowIdleEvent()


Handoff = tuple[StepRuntime, WorkItem, int]
"""An event a worker takes next itself: the step's state, the work item, the slot it holds."""


class WorkflowRun:
    """The live state and the machinery of one run. Created by ``Workflow.run()``."""

    # Slots keep a run small: thousands may sit waiting for a human at once.
    __slots__ = (
        "loop", "loop_thread", "workflow", "ctx", "run_id", "routes", "start_event", "snapshot", "info", "handlers",
        "steps", "error_handlers", "tasks", "waiters", "collect_buffers", "stream", "_stream_wakeup",
        "stream_closed", "raw_stream_taken", "stream_queues", "handoff_from", "handoff_to", "pending", "done", "status", "result", "stop_event", "error",
        "_finished", "_seq", "_invocations", "_event_ids", "_timeout_handle", "final_snapshot", "started",
        "early_events", "elapsed_before", "started_at", "verbose", "driver",
    )

    def __init__(
        self,
        workflow: Workflow,
        ctx: Context,
        run_id: str,
        routes: RouteTable,
        start_event: Event | None,
        snapshot: RunSnapshot | None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        self.workflow = workflow
        self.ctx = ctx
        self.run_id = run_id
        self.routes = routes
        self.start_event = start_event
        self.snapshot = snapshot
        self.info = RunInfo(
            workflow_name=workflow._trace_name,
            run_id=run_id,
            session_id=ctx.session_id,
            workflow_class=f"{type(workflow).__module__}.{type(workflow).__qualname__}",
            is_agent=bool(getattr(workflow, "is_agent", False)),
        )
        self.handlers: Handlers = ()
        self.steps = {name: StepRuntime(spec) for name, spec in routes.steps.items()}
        self.error_handlers = workflow._error_handler_for
        self.tasks: set[asyncio.Task[Any]] = set()
        self.waiters: list[Waiter] = []
        self.collect_buffers: dict[tuple[str, str], CollectBuffer] = {}
        self.stream: list[Any] = []
        self._stream_wakeup: asyncio.Future[None] | None = None
        self.stream_closed = False
        self.raw_stream_taken = False
        self.handoff_from: tuple[StepRuntime, int] | None = None
        self.handoff_to: Handoff | None = None
        self.stream_queues: list[asyncio.Queue[Event]] = []
        self.pending = 0
        self.done = False
        self.status: RunStatus | None = None
        self.result: Any = None
        self.stop_event: StopEvent | None = None
        self.error: BaseException | None = None
        self._finished: asyncio.Future[None] = self.loop.create_future()
        self._seq = itertools.count()
        self._invocations = itertools.count()
        self._event_ids = itertools.count(1)
        self._timeout_handle: asyncio.TimerHandle | None = None
        self.final_snapshot: RunSnapshot | None = None
        self.started = False
        self.early_events: list[tuple[Event, EventSource, StepSpec | None]] = []
        self.elapsed_before = snapshot.elapsed_alive if snapshot is not None else 0.0
        self.started_at = time.monotonic()
        self.verbose = workflow._verbose
        self.driver = self.loop.create_task(self._drive())
        self.driver.add_done_callback(self._mark_cancel_seen)

    def _mark_cancel_seen(self, driver: asyncio.Task[Any]) -> None:
        # A run cancelled by cancel_run() need not be awaited: reading the exception
        # keeps asyncio from reporting it as "never retrieved" at exit.
        if self.status == "cancelled" and not driver.cancelled():
            driver.exception()

    # ------------------------------------------------------------------ lifecycle
    async def _drive(self) -> Any:
        semaphore = self.workflow._run_semaphore
        try:
            try:
                if semaphore is not None:
                    await semaphore.acquire()
                try:
                    self._begin()
                    await self._finished
                finally:
                    if semaphore is not None:
                        semaphore.release()
            finally:
                await self._shutdown()
        except asyncio.CancelledError:
            # Hard cancel (handler.cancel()): the run task itself was cancelled.
            if self.status is None:
                self.status = "cancelled"
                self.error = asyncio.CancelledError()
            self._close()
            raise
        self._close()
        if self.error is not None:
            raise self.error
        return self.result

    def _begin(self) -> None:
        carrier = self.snapshot.carrier if self.snapshot is not None else None
        self.handlers = _dispatcher.start_run(
            RunStarted(self.info, self.start_event, self.snapshot is not None, carrier, self.workflow)
        )
        if self.handlers:
            self.ctx.store.on_change = self._on_state_change
        timeout = self.workflow._timeout
        if timeout is not None:
            self._timeout_handle = self.loop.call_later(max(timeout - self.elapsed_before, 0.0), self._on_timeout)
        if self.snapshot is not None:
            self._restore(self.snapshot)
        else:
            assert self.start_event is not None
            if self.verbose:
                self._say(f"[tick] add: {summarize_event(self.start_event)}")
            self.emit(self.start_event, "start")
        self.started = True
        for event, source, target in self.early_events:
            self.emit(event, source, target=target)
        self.early_events.clear()
        if self.pending == 0 and not self.done:
            self._internal(_IDLE)

    async def _shutdown(self) -> None:
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        if not self.done:  # the driver itself is being cancelled
            self.done = True
        for waiter in self.waiters:
            if waiter.timer is not None:
                waiter.timer.cancel()
        tasks = [t for t in self.tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _close(self) -> None:
        """Publish the end of the run and hand the context back (runs even on hard cancel)."""
        if self.handlers:
            for waiter in self.waiters:
                self._publish(WaitEnded(self.info, waiter.step, waiter.waiter_id, "cancelled", None))
        self.ctx._run_ended(self)
        self.ctx.store.on_change = None
        self.stream_closed = True
        self._wake_stream()
        if self.handlers:
            self._publish(RunFinished(self.info, self.status or "cancelled", self.result, self.stop_event, self.error))
        if self.verbose:
            self._say(f"[result] {summarize_event(self.stop_event)}" if self.stop_event is not None else f"[result] {self.status}")

    def _finish(self, status: RunStatus, final_event: StopEvent, result: Any = None, error: BaseException | None = None) -> None:
        if self.done:
            return
        self.done = True
        self.status = status
        self.result = result
        self.error = error
        # After a failure or a timeout there is no stop event to hand out (get_stop_event()).
        self.stop_event = None if status in ("failed", "timed_out") else final_event
        if status == "cancelled":
            # Taken before the workers are cancelled, so in-progress work is kept and a
            # context saved after cancel_run() resumes it.
            self.final_snapshot = self.take_snapshot()
        self._append_stream(final_event)
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if not self._finished.done():
            self._finished.set_result(None)

    def _on_timeout(self) -> None:
        if self.done:
            return
        timeout = self.workflow._timeout
        active = sorted({name for name, st in self.steps.items() if st.in_progress})
        detail = f"Currently active steps: {', '.join(active)}" if active else "No steps active"
        self._finish(
            "timed_out",
            WorkflowTimedOutEvent(timeout=timeout, active_steps=active),
            error=WorkflowTimeoutError(f"Operation timed out after {timeout} seconds. {detail}"),
        )

    def cancel_by_user(self) -> None:
        self._finish("cancelled", WorkflowCancelledEvent(), error=WorkflowCancelledByUser())

    def elapsed_alive(self) -> float:
        return self.elapsed_before + (time.monotonic() - self.started_at)

    # ------------------------------------------------------------------ publishing
    def _publish(self, record: Any) -> None:
        _dispatcher.publish(record, self.handlers)

    def _publish_closing(self, record: StepFinished) -> None:
        # Handlers may attach a context on StepStarted; closing in reverse order lets
        # each detach its own token while it is the innermost one.
        _dispatcher.publish(record, reversed(self.handlers))

    def _say(self, line: str) -> None:
        if verbose_logger.isEnabledFor(logging.INFO):
            verbose_logger.info(line)
        else:
            print(line)

    def _internal(self, record: tuple[Any, ...]) -> None:
        if not self.done:
            self._append_stream(record)

    def write_to_stream(self, event: Event, step: str | None = None, invocation_id: int | None = None) -> None:
        if self.done:
            return
        self._append_stream(event)
        if self.handlers:
            self._publish(EventEmitted(self.info, event, self._new_event_id(), "stream", step, invocation_id, ()))

    def _append_stream(self, entry: Any) -> None:
        self.stream.append(entry)
        self._wake_stream()
        for queue in self.stream_queues:
            queue.put_nowait(self.stream_entry(len(self.stream) - 1))

    def stream_queue(self) -> asyncio.Queue[Event]:
        """A queue fed with every stream entry, past and future (the deprecated ``streaming_queue``)."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        for index in range(len(self.stream)):
            queue.put_nowait(self.stream_entry(index))
        self.stream_queues.append(queue)
        return queue

    def _wake_stream(self) -> None:
        wakeup = self._stream_wakeup
        if wakeup is not None:
            self._stream_wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)

    async def stream_changed(self) -> None:
        """Wait until something is added to the stream (or the run ends)."""
        if self._stream_wakeup is None:
            self._stream_wakeup = self.loop.create_future()
        await self._stream_wakeup

    def stream_entry(self, index: int) -> Event:
        entry = self.stream[index]
        if not isinstance(entry, Event):
            entry = self.stream[index] = _materialize(entry)
        return entry

    def is_internal_entry(self, index: int) -> bool:
        entry = self.stream[index]
        return not isinstance(entry, Event) or isinstance(entry, (StepStateChanged, WorkflowIdleEvent, UnhandledEvent))

    def _new_event_id(self) -> str:
        return f"{self.run_id}-{next(self._event_ids)}"

    def _on_state_change(self, op: str, path: str, keys: tuple[str, ...], before: Any, after: Any) -> None:
        step_ctx = current_step_context.get()
        step = inv = None
        if step_ctx is not None and step_ctx._run is self:
            step, inv = step_ctx._step_name, step_ctx._invocation_id
        self._publish(StateChanged(self.info, op, path, keys, before, after, step, inv))

    # ------------------------------------------------------------------ routing
    def emit(
        self,
        event: Event,
        source: EventSource,
        step: str | None = None,
        invocation_id: int | None = None,
        lineage: dict[str, int] | None = None,
        target: StepSpec | None = None,
    ) -> None:
        """Route ``event`` to the steps that accept it (or only to ``target``)."""
        if self.done:
            return
        targets = (target,) if target is not None else self.routes.targets(type(event))
        woken: list[Waiter] = []
        if self.waiters:
            for waiter in self.waiters:
                if (target is None or waiter.step == target.name) and waiter.matches(event):
                    woken.append(waiter)
        event_id = None
        if self.handlers:
            event_id = self._new_event_id()
            names = tuple(s.name for s in targets) + tuple(w.step for w in woken if all(w.step != s.name for s in targets))
            self._publish(EventEmitted(self.info, event, event_id, source, step, invocation_id, names))
        for waiter in woken:
            self._resume_waiter(waiter, event)
        woken_steps = {w.step for w in woken}
        for spec in targets:
            if spec.name in woken_steps:
                continue  # consumed by that step's waiter
            self.dispatch(spec, WorkItem(event, event_id, next(self._seq), lineage))
        if not targets and not woken and not isinstance(event, (InputRequiredEvent, StopEvent)):
            cls = type(event)
            self._internal(
                ("unhandled", cls.__name__, f"{cls.__module__}.{cls.__qualname__}", step, self.pending == 0)
            )

    def dispatch(self, spec: StepSpec, item: WorkItem) -> None:
        if self.done:
            return
        state = self.steps[spec.name]
        self.pending += 1
        source = self.handoff_from
        if source is not None and self.handoff_to is None:
            # A worker is routing the result it just produced: it takes the first event
            # that can run at once itself, instead of paying for a new task (a chain of
            # steps, or an agent's loop, then runs in one task).
            source_state, source_slot = source
            if state is source_state and not state.queue:
                self.handoff_to = (state, item, source_slot)
                return
            if state is not source_state and state.free_slots:
                self.handoff_to = (state, item, state.free_slots.pop())
                return
        if state.free_slots:
            self._spawn(state, item, state.free_slots.pop())
            return
        if state.queue is None:
            state.queue = deque()
        state.queue.append(item)
        self._internal(("step", spec.name, "preparing", "<enqueued>", type(item.event).__name__, None))
        if self.verbose:
            self._say(f"[{spec.name}] enqueued (waiting for capacity)")

    def _spawn(self, state: StepRuntime, item: WorkItem, slot: int) -> None:
        task = self.loop.create_task(self._worker(state, item, slot))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _worker(self, state: StepRuntime, item: WorkItem, slot: int) -> None:
        token = current_run.set(self.info)
        try:
            while True:
                handed = await self._invoke(state, item, slot)
                if handed is not None:
                    next_state, item, next_slot = handed
                    if next_state is not state:
                        if state.queue and not self.done:
                            # This step still has queued work for this worker: the handed
                            # event gets a task of its own (its slot is already taken).
                            self._spawn(next_state, item, next_slot)
                            item = state.queue.popleft()
                            continue
                        state.free_slots.append(slot)
                        state, slot = next_state, next_slot
                    if self.done:
                        break
                    continue
                if self.done or not state.queue:
                    break
                item = state.queue.popleft()
        finally:
            state.free_slots.append(slot)
            current_run.reset(token)

    async def _invoke(self, state: StepRuntime, item: WorkItem, slot: int) -> Handoff | None:
        """Run one step invocation (with its retries); return the event its worker takes next, if any."""
        from workflows.context.context import Context

        spec = state.spec
        config = spec.config
        invocation_id = next(self._invocations)
        state.in_progress[invocation_id] = item
        step_ctx = Context._for_step(self.ctx, self, spec.name, item, invocation_id)
        token = current_step_context.set(step_ctx)
        first_started = time.monotonic()
        attempt = 0
        input_name = type(item.event).__name__
        try:
            while True:
                attempt += 1
                if self.handlers:
                    self._publish(
                        StepStarted(self.info, spec.name, invocation_id, attempt, slot, item.event, item.event_id)
                    )
                self._internal(("step", spec.name, "running", str(slot), input_name, None))
                if self.verbose:
                    self._say(f"[{spec.name}:{slot}] started from {input_name}")
                try:
                    kwargs: dict[str, Any] = {config.event_name: item.event}
                    if config.context_parameter is not None:
                        kwargs[config.context_parameter] = step_ctx
                    if config.resources:
                        kwargs.update(await self.workflow._resolve_resources(config.resources))
                    if config.is_async:
                        result = await spec.func(**kwargs)
                    else:
                        call = functools.partial(spec.func, **kwargs)
                        result = await self.loop.run_in_executor(None, contextvars.copy_context().run, call)
                    if result is not None and not isinstance(result, Event):
                        raise WorkflowRuntimeError(
                            f"Step function {spec.name} returned {type(result).__name__} instead of an Event instance."
                        )
                except WaitSuspended:
                    if self.handlers:
                        self._publish_closing(StepFinished(self.info, spec.name, invocation_id, attempt, "waiting"))
                    self._internal(("step", spec.name, "not_running", str(slot), _type_str(type(item.event)), _NONE_STR))
                    return None
                except asyncio.CancelledError:
                    if self.handlers:
                        outcome: StepOutcome = "timed_out" if self.status == "timed_out" else "cancelled"
                        self._publish_closing(StepFinished(self.info, spec.name, invocation_id, attempt, outcome))
                    raise
                except Exception as exc:
                    if self.done:
                        if self.handlers:
                            self._publish_closing(StepFinished(self.info, spec.name, invocation_id, attempt, "failed", None, exc))
                        return None
                    delay = self._retry_delay(spec, first_started, attempt, exc)
                    if isinstance(delay, Exception):
                        exc, delay = delay, None  # the policy itself raised: that is the failure
                    if delay is not None:
                        if self.handlers:
                            self._publish_closing(
                                StepFinished(self.info, spec.name, invocation_id, attempt, "retrying", None, exc, delay)
                            )
                        step_ctx._retry_info = RetryInfo(
                            retry_number=attempt,
                            elapsed_seconds=time.monotonic() - first_started,
                            last_exception=exc,
                            last_failed_at=datetime.now(timezone.utc),
                        )
                        await asyncio.sleep(delay)
                        continue
                    if self.handlers:
                        self._publish_closing(StepFinished(self.info, spec.name, invocation_id, attempt, "failed", None, exc))
                    self._internal(("step", spec.name, "not_running", str(slot), _type_str(type(item.event)), None))
                    self._step_failed(spec, item, exc, attempt, time.monotonic() - first_started)
                    return None
                else:
                    self._internal(
                        ("step", spec.name, "not_running", str(slot), _type_str(type(item.event)), _type_str(type(result)))
                    )
                    if self.verbose:
                        self._say(f"[{spec.name}:{slot}] complete with {type(result).__name__}")
                    handed = None
                    if result is not None:
                        self.handoff_from = (state, slot)
                        try:
                            self._step_returned(spec, item, invocation_id, result)
                        finally:
                            handed, self.handoff_from, self.handoff_to = self.handoff_to, None, None
                    if self.handlers:
                        self._publish_closing(StepFinished(self.info, spec.name, invocation_id, attempt, "completed", result))
                    return handed
        finally:
            current_step_context.reset(token)
            del state.in_progress[invocation_id]
            self.pending -= 1
            if self.pending == 0 and not self.done:
                self._internal(_IDLE)

    def _retry_delay(self, spec: StepSpec, first_started: float, attempt: int, exc: Exception) -> float | Exception | None:
        policy = spec.config.retry_policy
        if policy is None:
            return None
        try:
            return next_delay(policy, time.monotonic() - first_started, attempt, exc)
        except Exception as policy_error:
            return policy_error

    def _step_returned(self, spec: StepSpec, item: WorkItem, invocation_id: int, result: Event) -> None:
        if isinstance(result, StopEvent):
            if self.handlers:
                self._publish(EventEmitted(self.info, result, self._new_event_id(), "return", spec.name, invocation_id, ()))
            value = result.result if type(result) is StopEvent else result
            self._finish("completed", result, result=value)
            return
        if isinstance(result, InputRequiredEvent):
            self._append_stream(result)
        self.emit(result, "return", spec.name, invocation_id, item.lineage)

    def _step_failed(self, spec: StepSpec, item: WorkItem, exc: Exception, attempts: int, elapsed: float) -> None:
        handler_name = self.error_handlers.get(spec.name) if spec.config.role == "step" else None
        if handler_name is not None:
            handler = self.routes.steps[handler_name]
            lineage = dict(item.lineage or {})
            used = lineage.get(handler_name, 0)
            if used < handler.config.max_recoveries:
                lineage[handler_name] = used + 1
                failure = StepFailedEvent(
                    step_name=spec.name,
                    input_event=item.event,
                    exception=exc,
                    attempts=attempts,
                    elapsed_seconds=elapsed,
                    failed_at=datetime.now(timezone.utc),
                )
                self.emit(failure, "return", spec.name, None, lineage, target=handler)
                return
        self._finish(
            "failed",
            WorkflowFailedEvent(step_name=spec.name, exception=exc, attempts=attempts, elapsed_seconds=elapsed),
            error=exc,
        )

    def call_in_loop(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``function`` on the run's event loop thread and return its result.

        Sync steps run in executor threads, while the run's state belongs to the loop:
        from such a thread the call is handed to the loop and waited for (its exception
        re-raised here), so it runs before the step's own result is routed.
        """
        if threading.get_ident() == self.loop_thread:
            return function(*args, **kwargs)
        outcome: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            try:
                outcome.set_result(function(*args, **kwargs))
            except BaseException as exc:
                outcome.set_exception(exc)

        self.loop.call_soon_threadsafe(call)
        return outcome.result()

    # ------------------------------------------------------------------ external input
    def send(self, event: Event, step: str | None, *, source: EventSource, from_step: str | None = None,
             invocation_id: int | None = None, lineage: dict[str, int] | None = None) -> None:
        target = None
        if step is not None:
            target = self.routes.steps.get(step)
            if target is None:
                raise WorkflowRuntimeError(f"Step {step} does not exist")
            if not target.accepts(type(event)) and not any(w.step == step and w.matches(event) for w in self.waiters):
                raise WorkflowRuntimeError(f"Step {step} does not accept event of type {type(event)}")
        if self.verbose:
            self._say(f"[tick] add: {summarize_event(event)}")
        if not self.started:
            # The run's task has not begun yet (or waits for num_concurrent_runs): keep
            # the event until the start event is routed and saved waiters are re-armed.
            self.early_events.append((event, source, target))
            return
        self.emit(event, source, from_step, invocation_id, lineage, target=target)

    # ------------------------------------------------------------------ collect / wait
    def collect(self, step: str, buffer_id: str, event: Event, expected: list[type[Event]]) -> list[Event] | None:
        key = (step, buffer_id)
        buffer = self.collect_buffers.get(key)
        if buffer is None:
            buffer = self.collect_buffers[key] = CollectBuffer(expected)
        elif buffer.expected is not expected and buffer.expected != expected:
            # The step changed its mind about what it waits for: keep what still fits.
            kept = buffer.events()
            buffer = self.collect_buffers[key] = CollectBuffer(expected)
            for ev in kept:
                buffer.add(ev)
        if not buffer.add(event):
            return None
        del self.collect_buffers[key]
        return buffer.ordered()

    def add_waiter(
        self,
        step: str,
        item: WorkItem,
        waiter_id: str,
        event_type: type[Event],
        requirements: dict[str, Any] | None,
        timeout: float | None,
        waiter_event: Event | None,
        invocation_id: int,
        subclasses: bool,
    ) -> None:
        deadline = None if timeout is None else self.loop.time() + timeout
        waiter = Waiter(step, item, waiter_id, event_type, requirements, subclasses, deadline)
        self._arm(waiter)
        if self.handlers:
            self._publish(WaitStarted(self.info, step, invocation_id, waiter_id, event_type, requirements, timeout))
        if waiter_event is not None:
            self.write_to_stream(waiter_event, step, invocation_id)

    def _arm(self, waiter: Waiter) -> None:
        self.waiters.append(waiter)
        if waiter.deadline is not None:
            waiter.timer = self.loop.call_at(waiter.deadline, self._waiter_timed_out, waiter)

    def _resume_waiter(self, waiter: Waiter, event: Event) -> None:
        self.waiters.remove(waiter)
        if waiter.timer is not None:
            waiter.timer.cancel()
        if self.handlers:
            self._publish(WaitEnded(self.info, waiter.step, waiter.waiter_id, "received", event))
        item = waiter.item
        resolved = dict(item.resolved or {})
        resolved[waiter.waiter_id] = event
        self.dispatch(
            self.routes.steps[waiter.step],
            WorkItem(item.event, item.event_id, item.seq, item.lineage, resolved, item.timed_out),
        )

    def _waiter_timed_out(self, waiter: Waiter) -> None:
        if self.done or waiter not in self.waiters:
            return
        self.waiters.remove(waiter)
        if self.handlers:
            self._publish(WaitEnded(self.info, waiter.step, waiter.waiter_id, "timed_out", None))
        item = waiter.item
        timed_out = frozenset(item.timed_out or ()) | {waiter.waiter_id}
        self.dispatch(
            self.routes.steps[waiter.step],
            WorkItem(item.event, item.event_id, item.seq, item.lineage, item.resolved, timed_out),
        )

    # ------------------------------------------------------------------ snapshot / restore
    def _restore(self, snapshot: RunSnapshot) -> None:
        # Work items keep their sequence numbers: default waiter ids are built from them.
        saved_seqs = [i.seq for items in snapshot.queued.values() for i in items if i.seq is not None]
        saved_seqs += [w.seq for w in snapshot.waiters if w.seq is not None]
        self._seq = itertools.count(max(saved_seqs, default=-1) + 1)

        def seq_of(saved: int | None) -> int:
            return next(self._seq) if saved is None else saved

        for step_name, items in snapshot.queued.items():
            spec = self.routes.steps.get(step_name)
            if spec is None:
                logger.warning("resumed run %s: dropping work for unknown step %r", self.run_id, step_name)
                continue
            for saved_item in items:
                self.dispatch(
                    spec, WorkItem(saved_item.event, None, seq_of(saved_item.seq), saved_item.lineage, saved_item.resolved)
                )
        for saved_buffer in snapshot.collected:
            buffer = CollectBuffer(saved_buffer.expected)
            for ev in saved_buffer.events:
                buffer.add(ev)
            self.collect_buffers[(saved_buffer.step, saved_buffer.buffer_id)] = buffer
        now = self.loop.time()
        for saved in snapshot.waiters:
            if saved.step not in self.routes.steps:
                logger.warning("resumed run %s: dropping a wait of unknown step %r", self.run_id, saved.step)
                continue
            item = WorkItem(saved.event, None, seq_of(saved.seq), saved.lineage, saved.resolved)
            deadline = None if saved.remaining is None else now + saved.remaining
            subclasses = self.routes.steps[saved.step].config.accept_event_subclasses
            self._arm(Waiter(saved.step, item, saved.waiter_id, saved.event_type, saved.requirements, subclasses, deadline))
            if self.handlers:
                self._publish(
                    WaitStarted(self.info, saved.step, 0, saved.waiter_id, saved.event_type, saved.requirements, saved.remaining)
                )

    def take_snapshot(self) -> RunSnapshot:
        """The run as plain data: what is queued or in progress, collected, awaited."""
        from workflows.runtime.snapshot import RunSnapshot, SavedCollect, SavedItem, SavedWaiter

        if not self.started:
            # Nothing ran yet: the run is its start event (or the snapshot it resumes).
            if self.snapshot is not None:
                return self.snapshot
            assert self.start_event is not None
            pending = {s.name: [SavedItem(self.start_event)] for s in self.routes.targets(type(self.start_event))}
            return RunSnapshot(True, 0.0, {}, pending)
        queued: dict[str, list[SavedItem]] = {}
        for name, state in self.steps.items():
            # In-progress work runs again on resume, before what was queued behind it.
            items = [*state.in_progress.values(), *(state.queue or ())]
            if items:
                queued[name] = [SavedItem(i.event, i.lineage, i.resolved, i.seq) for i in items]
        now = self.loop.time()
        waiters = [
            SavedWaiter(
                step=w.step,
                event=w.item.event,
                lineage=w.item.lineage,
                resolved=w.item.resolved,
                seq=w.item.seq,
                waiter_id=w.waiter_id,
                event_type=w.event_type,
                requirements=w.requirements,
                remaining=None if w.deadline is None else max(w.deadline - now, 0.0),
            )
            for w in self.waiters
        ]
        collected = [
            SavedCollect(step, buffer_id, list(b.expected), b.events())
            for (step, buffer_id), b in self.collect_buffers.items()
        ]
        carrier = _dispatcher.inject(self.info, self.handlers) if self.handlers else {}
        if not carrier and self.snapshot is not None:
            carrier = dict(self.snapshot.carrier)
        running = not self.done or self.status == "cancelled"
        return RunSnapshot(running, self.elapsed_alive(), carrier, queued, collected, waiters)
