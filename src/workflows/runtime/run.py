"""One run of a workflow: its lifecycle, and the application of each transition to its state.

The run owns every task it starts. A driver task waits for the run to end (a
``StopEvent``, a failure, the timeout, a cancel), then cancels and awaits whatever is
still running, so nothing outlives the run. Every change of the run is a record of
its journal (``journal.py``), added once and read by the writer of a durable runtime,
the stream, the instrumentation handlers and the ``verbose`` printer.

Where the rest lives: routing decisions in ``routing.py``, a step invocation and its
retries in ``invoke.py``, waits and collect buffers in ``waits.py``, the stream in
``stream.py``, saving and restoring in ``restore.py``, rebuilding from a journal in
``replay.py``. A worker task keeps going as long as it has work: it drains its step's
queue and takes the first event its own result routes (a chain of steps or an agent's
loop runs in one task); a step waiting for an external event holds no task at all.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar

from workflows.errors import WorkflowCancelledByUser, WorkflowRuntimeError, WorkflowTimeoutError
from workflows.events import (
    CollectionReleaseEvent,
    Event,
    IdleReleasedEvent,
    InputRequiredEvent,
    StepFailedEvent,
    StopEvent,
    WorkflowCancelledEvent,
    WorkflowFailedEvent,
    WorkflowTimedOutEvent,
)
from workflows.instrumentation.dispatcher import get_dispatcher
from workflows.runtime import invoke, restore
from workflows.runtime.config import RunConfig, RunOwner
from workflows.runtime.journal import (
    CollectBuffered,
    EventEmitted,
    EventSource,
    Journal,
    RunConcluded,
    RunFinished,
    RunIdle,
    RunInfo,
    RunStarted,
    RunStatus,
    StateChanged,
    StepFinished,
    StepQueued,
    StreamOpened,
    WaitEnded,
    WaitStarted,
)
from workflows.runtime.routing import WorkItem, route
from workflows.runtime.scope import current_step_context
from workflows.runtime.steps import StepSpec
from workflows.runtime.stream import RunStream
from workflows.runtime.verbose import VerbosePrinter
from workflows.runtime.fanout import Stream, nearest
from workflows.runtime.waits import JOIN_BUFFER, CollectBuffer, JoinBuffer, Waiter

if TYPE_CHECKING:
    from workflows.runtime.snapshot import RunSnapshot

T = TypeVar("T")

logger = logging.getLogger("workflows.runtime")

_dispatcher = get_dispatcher()
_publish = _dispatcher.publish  # bound once: every run's journal holds it


class StepRuntime:
    """A step's live state within one run: its queue and its free worker slots (see ``StepStates``)."""

    __slots__ = ("spec", "queue", "free_slots", "in_progress")

    def __init__(self, spec: StepSpec) -> None:
        self.spec = spec
        # Created on first use: most steps of a waiting run never queue anything.
        self.queue: deque[WorkItem] | None = None
        self.free_slots = list(range(spec.num_workers - 1, -1, -1))
        self.in_progress: dict[int, WorkItem] = {}


class StepStates(dict[str, StepRuntime]):
    """The runtime of each step of a run by name, made when first looked up.

    A waiting run has touched only some of its steps; the others cost nothing. Reading
    with ``.get`` (or iterating) sees only the steps made so far.
    """

    __slots__ = ("specs",)

    def __init__(self, specs: Mapping[str, StepSpec]) -> None:
        super().__init__()
        self.specs = specs

    def __missing__(self, name: str) -> StepRuntime:
        state = self[name] = StepRuntime(self.specs[name])
        return state


@dataclass(slots=True, kw_only=True)
class Handoff:
    """Work a worker takes next itself: a delivery, its step, and the worker slot it holds."""

    state: StepRuntime
    item: WorkItem
    slot: int


@dataclass(slots=True, kw_only=True)
class EarlyEvent:
    """An event sent before the run's task began, delivered once the run has started."""

    event: Event
    source: EventSource
    target: StepSpec | None


def _timeout_fired(ref: weakref.ref[WorkflowRun]) -> None:
    # Timers hold the run weakly: a finished run's cancelled timer handle may linger in
    # the loop's schedule, and must not keep the run (and its workflow) alive.
    run = ref()
    if run is not None:
        run.on_timeout()


def _wait_timed_out(ref: weakref.ref[WorkflowRun], waiter: Waiter) -> None:
    run = ref()
    if run is not None:
        run.waiter_timed_out(waiter)


class WorkflowRun:
    """The live state and the machinery of one run. Created by ``Workflow.run()``."""

    # Slots keep a run small: thousands may sit waiting for a human at once.
    __slots__ = (
        "loop", "loop_thread", "config", "workflow", "ctx", "run_id", "routes", "start_event", "snapshot", "info",
        "journal", "steps", "tasks", "waiters", "collect_buffers", "stream", "pending", "done", "status", "result",
        "stop_event", "error", "finished", "next_seq", "next_invocation", "last_event_id", "timeout_handle",
        "final_snapshot",
        "started", "early_events", "elapsed_before", "started_at", "driver", "threads", "streams", "__weakref__",
    )

    def __init__(
        self,
        config: RunConfig,
        ctx: RunOwner,
        run_id: str,
        start_event: Event | None,
        snapshot: RunSnapshot | None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        self.config = config
        self.workflow = config.workflow
        self.ctx = ctx
        self.run_id = run_id
        self.routes = config.routes
        self.start_event = start_event
        self.snapshot = snapshot
        self.info = RunInfo(
            workflow_name=config.trace_name,
            run_id=run_id,
            session_id=ctx.session_id,
            workflow_class=config.workflow_class,
            is_agent=config.is_agent,
        )
        self.stream = RunStream(self.loop)
        # Until the run starts nobody but the stream follows it; _begin says who does.
        self.journal = Journal(stream=self.stream, publish=_publish, on_write_error=self._journal_failed)
        self.steps = StepStates(config.routes.steps)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.waiters: list[Waiter] = []
        self.collect_buffers: dict[tuple[str, str], CollectBuffer | JoinBuffer] = {}
        self.streams: dict[int, Stream] = {}
        self.pending = 0
        self.done = False
        self.status: RunStatus | None = None
        self.result: Any = None
        self.stop_event: StopEvent | None = None
        self.error: BaseException | None = None
        self.finished: asyncio.Future[None] = self.loop.create_future()
        # The next numbers to hand out (a snapshot saves next_seq, restoring sets it).
        self.next_seq = snapshot.next_seq if snapshot is not None else 0
        self.next_invocation = 0
        self.last_event_id = 0
        self.timeout_handle: asyncio.TimerHandle | None = None
        self.final_snapshot: RunSnapshot | None = None
        self.started = False
        self.early_events: list[EarlyEvent] | None = None  # events sent before the run began
        self.elapsed_before = snapshot.elapsed_alive if snapshot is not None else 0.0
        self.started_at = time.monotonic()
        # Made by the first sync step (most workflows have none).
        self.threads: invoke.SyncStepThreads | None = None
        self.driver = self.loop.create_task(self._drive())

    def _mark_cancel_seen(self, driver: asyncio.Task[Any]) -> None:
        # A run cancelled by cancel_run() need not be awaited: reading the exception
        # keeps asyncio from reporting it as "never retrieved" at exit.
        if self.status == "cancelled" and not driver.cancelled():
            driver.exception()

    # ------------------------------------------------------------------ lifecycle
    async def _drive(self) -> Any:
        semaphore = self.config.run_semaphore()
        try:
            try:
                if semaphore is not None:
                    await semaphore.acquire()
                try:
                    self._begin()
                    await self.finished
                finally:
                    if semaphore is not None:
                        semaphore.release()
            finally:
                await self._shutdown()
            # The outcome is handed out once it is durable.
            await self.journal.settle()
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
        snapshot = self.snapshot
        record = RunStarted(
            run=self.info, start_event=self.start_event, resumed=snapshot is not None,
            carrier=snapshot.carrier if snapshot is not None else None, workflow=self.workflow,
        )
        open_journal = getattr(self.config.runtime, "open_journal", None)
        journal = self.journal
        journal.follow(
            open_journal(self.info, self.ctx) if open_journal is not None else None,
            VerbosePrinter() if self.config.verbose else None,
        )
        # The writer sees the start before anything acts on it; the handlers then say
        # whether they follow this run.
        journal.add(record)
        journal.handlers = _dispatcher.start_run(record)
        journal.full = journal.full or bool(journal.handlers)
        if journal.full:
            self.ctx.store.on_change = self._state_changed
        timeout = self.config.timeout
        if timeout is not None:
            self.timeout_handle = self.loop.call_later(
                max(timeout - self.elapsed_before, 0.0), _timeout_fired, weakref.ref(self)
            )
        if snapshot is not None:
            restore.restore(self, snapshot)
        else:
            assert self.start_event is not None
            self.emit(self.start_event, "start")
        self.started = True
        # Only a run that has not started is its start event or its snapshot (see
        # take_snapshot): let them go, a resumed run's snapshot can be large.
        self.start_event = self.snapshot = None
        if self.early_events is not None:
            for early in self.early_events:
                self.emit(early.event, early.source, target=early.target)
            self.early_events = None
        if self.pending == 0 and not self.done:
            self.journal.add(RunIdle(run=self.info), streamed=True)

    async def _shutdown(self) -> None:
        if self.timeout_handle is not None:
            self.timeout_handle.cancel()
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
        """Journal the end of the run and hand the context back (runs even on hard cancel)."""
        journal = self.journal
        if journal.full:
            for waiter in self.waiters:
                journal.add(WaitEnded(
                    run=self.info, step=waiter.step, waiter_id=waiter.waiter_id, outcome="cancelled",
                    seq=waiter.item.seq,
                ))
        self.ctx._run_ended(self)
        if journal.full:  # it set the store's hook as it began
            self.ctx.store.on_change = None
        self.stream.close()
        detached = self.threads.running if self.threads is not None else 0
        if detached:
            logger.warning(
                "run %s of %s ended while %d sync step thread(s) still ran; a thread cannot be stopped, "
                "so each finishes on its own and its result is dropped",
                self.run_id, self.info.workflow_name, detached,
            )
        journal.add(RunFinished(
            run=self.info, status=self.status or "cancelled", result=self.result, stop_event=self.stop_event,
            error=self.error, detached_threads=detached,
        ))
        writer = journal.writer
        if writer is not None:
            journal.writer = None
            try:
                writer.close()
            except Exception:
                logger.exception("the journal writer of run %s failed to close", self.run_id)

    def conclude(self, status: RunStatus, final_event: StopEvent, result: Any = None, error: BaseException | None = None) -> None:
        """Decide the run's outcome (once): stream the final event, stop the steps, wake the driver."""
        if self.done:
            return
        self.journal.add(
            RunConcluded(run=self.info, status=status, final_event=final_event, result=result, error=error),
            streamed=True,
        )
        self.done = True
        self.status = status
        self.result = result
        self.error = error
        # After a failure or a timeout there is no stop event to hand out (get_stop_event()).
        self.stop_event = None if status in ("failed", "timed_out") else final_event
        if status in ("cancelled", "released"):
            # Taken before the workers are cancelled, so in-progress work is kept and a
            # context saved after cancel_run() (or a release) resumes it.
            self.final_snapshot = restore.take_snapshot(self)
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if not self.finished.done():
            self.finished.set_result(None)

    def stop(self, stop_event: StopEvent) -> None:
        """A step returned ``stop_event``: the run completes with its result."""
        self.conclude("completed", stop_event, result=stop_event.result if type(stop_event) is StopEvent else stop_event)

    def on_timeout(self) -> None:
        if self.done:
            return
        timeout = self.config.timeout
        active = sorted({name for name, st in self.steps.items() if st.in_progress})
        detail = f"Currently active steps: {', '.join(active)}" if active else "No steps active"
        self.conclude(
            "timed_out",
            WorkflowTimedOutEvent(timeout=timeout, active_steps=active),
            error=WorkflowTimeoutError(f"Operation timed out after {timeout} seconds. {detail}"),
        )

    def release(self, awaiting_input: bool = False) -> bool:
        """Let go of a run that only waits for outside events; False (and nothing done) if it has work.

        The run's task ends without ending the run: its journal writer is closed first,
        so what it wrote still describes a run that waits, to be continued from there
        (``Context.from_journal``, or ``ctx.to_dict()`` taken now). ``await handler``
        returns an ``IdleReleasedEvent``. Without a parked wait, only a run whose caller
        says it is ``awaiting_input`` (see ``WorkflowHandler.release_idle``) is let go of.
        """
        if self.done or not self.started or self.pending or not (self.waiters or awaiting_input):
            return False
        writer, self.journal.writer = self.journal.writer, None
        if writer is not None:
            writer.close()
        released = IdleReleasedEvent()
        self.conclude("released", released, result=released)
        return True

    def cancel_by_user(self) -> None:
        # Only a run cancelled this way needs its exception read for it (_mark_cancel_seen).
        self.driver.add_done_callback(self._mark_cancel_seen)
        self.conclude("cancelled", WorkflowCancelledEvent(), error=WorkflowCancelledByUser())

    def elapsed_alive(self) -> float:
        return self.elapsed_before + (time.monotonic() - self.started_at)

    def _journal_failed(self, exc: Exception) -> None:
        logger.error("run %s: its journal could not be written; the run fails", self.run_id, exc_info=exc)
        self.conclude("failed", WorkflowFailedEvent(step_name="", exception=exc, attempts=0, elapsed_seconds=0.0), error=exc)

    # ------------------------------------------------------------------ journal helpers
    def finish_attempt(self, record: StepFinished) -> None:
        """Journal the end of a step attempt (streamed as the step no longer running, when it is)."""
        self.journal.add(
            record, streamed=record.outcome in ("completed", "waiting", "failed") and not self.done, closing=True
        )

    def work_done(self) -> None:
        """A delivery left the run's work (finished, parked, failed or cancelled)."""
        self.pending -= 1
        if self.pending == 0 and not self.done:
            self.journal.add(RunIdle(run=self.info), streamed=True)

    def _new_event_id(self) -> str:
        self.last_event_id += 1
        return f"{self.run_id}-{self.last_event_id}"

    def _state_changed(self, op: str, path: str, keys: tuple[str, ...], before: Any, after: Any) -> None:
        step_ctx = current_step_context.get()
        step = inv = seq = None
        if step_ctx is not None and step_ctx._run is self:
            step, inv, seq = step_ctx._step_name, step_ctx._invocation_id, step_ctx._item.seq
        self.journal.add(StateChanged(
            run=self.info, op=op, path=path, keys=keys, before=before, after=after, step=step, invocation_id=inv,
            seq=seq,
        ))

    # ------------------------------------------------------------------ routing
    def emit(
        self,
        event: Event,
        source: EventSource,
        step: str | None = None,
        invocation_id: int | None = None,
        lineage: dict[str, int] | None = None,
        target: StepSpec | None = None,
        completes: int | None = None,
        taker: StepRuntime | None = None,
        taker_slot: int = 0,
        sender: int | None = None,
        stream: int | None = None,
        releases: int | None = None,
    ) -> Handoff | None:
        """Route ``event`` (to the steps that accept it, or only to ``target``) and apply the decision.

        ``taker`` (with the worker slot it holds) is the step whose worker is routing its
        own result; the delivery it takes on itself is returned. ``stream`` is the
        fan-out stream the event travels in: its deliveries belong to it, and the
        ``list[E]`` collect steps of its type take it into a batch.
        """
        if self.done:
            return None
        decision = route(self.routes, self.waiters, event, target)
        targets, woken, collectors = decision.targets, decision.woken, decision.collectors
        journal = self.journal
        first_seq = self.next_seq
        self.next_seq = first_seq + len(targets)
        seqs = (first_seq,) if len(targets) == 1 else tuple(range(first_seq, self.next_seq))
        gathered: dict[str, Stream] | None = None
        if collectors:
            gathered = self._gather(event, collectors, stream, source)
        unhandled = (
            not targets and not woken and not collectors and not isinstance(event, (InputRequiredEvent, StopEvent))
        )
        streamed = unhandled or (source == "return" and isinstance(event, InputRequiredEvent))
        event_id = None
        if journal.full or streamed:
            if journal.full:
                event_id = self._new_event_id()
            journal.add(
                EventEmitted(
                    run=self.info, event=event, event_id=event_id or "", source=source, step=step,
                    invocation_id=invocation_id, targets=decision.step_names, seqs=seqs, lineage=lineage,
                    completes=completes, sender=sender, woken=tuple(w.waiter_id for w in woken) if woken else (),
                    unhandled=unhandled, idle=unhandled and self.pending == 0, stream=stream,
                    collected={name: s.id for name, s in gathered.items()} if gathered else None, releases=releases,
                ),
                streamed=streamed,
            )
        handoff = None
        for waiter in woken:
            handoff = self.place(self.steps[waiter.step], self._resume(waiter, event), taker, taker_slot, handoff)
        if stream is not None and targets:
            self.streams[stream].pending += len(targets)
        for spec, seq in zip(targets, seqs):
            handoff = self.place(
                self.steps[spec.name], WorkItem(event, event_id, seq, lineage, None, None, 0, stream), taker, taker_slot,
                handoff,
            )
        if gathered:
            for name, batch_stream in gathered.items():
                self.settle_take(batch_stream, name)
        return handoff

    # ------------------------------------------------------------------ fan-out streams
    def _gather(
        self, event: Event, collectors: tuple[StepSpec, ...], stream: int | None, source: EventSource
    ) -> dict[str, Stream]:
        """Add ``event`` to the batches of ``collectors`` in its stream; which batch each took it into."""
        if stream is None:
            for collector in collectors:
                logger.warning(
                    "run %s: ignoring %s for collect step %r: it was not emitted inside a fan-out stream (%s), "
                    "so it cannot join a batch; a list[E] step collects what a step returning list[...] starts",
                    self.run_id, type(event).__name__, collector.name,
                    "sent with ctx.send_event" if source == "send_event" else f"source: {source}",
                )
            return {}
        gathered: dict[str, Stream] = {}
        bindings = self.routes.bindings
        for collector in collectors:
            batch_stream = nearest(self.streams, stream, collector.name, bindings)
            if batch_stream is None or collector.name in batch_stream.released:
                continue  # a Take(n) already handed out its n
            batch_stream.batches.setdefault(collector.name, []).append(event)
            gathered[collector.name] = batch_stream
        return gathered

    def fan_out(
        self, spec: StepSpec, item: WorkItem, invocation_id: int, events: list[Event], state: StepRuntime, slot: int
    ) -> Handoff | None:
        """A fan-out step returned ``events``: open a stream and emit each element in it."""
        stream = Stream(item.seq, spec.name, item.stream)
        stream.pending = 1  # held while the elements are emitted: an unhandled one must not close it
        self.streams[stream.id] = stream
        if item.stream is not None:
            self.streams[item.stream].pending += 1
        if self.journal.full:
            self.journal.add(StreamOpened(
                run=self.info, step=spec.name, invocation_id=invocation_id, seq=item.seq, stream=stream.id,
                parent=item.stream, size=len(events),
            ))
        handoff = None
        for event in events:
            if isinstance(event, StopEvent):
                # Journaled like a returned StopEvent; invoke stops the run with the first.
                if self.journal.full:
                    self.journal.add(EventEmitted(
                        run=self.info, event=event, event_id=self._new_event_id(), source="return", step=spec.name,
                        invocation_id=invocation_id, completes=item.seq, stream=stream.id,
                    ))
                continue
            placed = self.emit(
                event, "return", spec.name, invocation_id, item.lineage, completes=item.seq,
                taker=state if handoff is None else None, taker_slot=slot, stream=stream.id,
            )
            handoff = handoff or placed
        self.stream_left(stream.id)
        return handoff

    def stream_left(self, stream_id: int) -> None:
        """A delivery (or child stream) of the stream ended for good: close the stream once none is left."""
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        stream.pending -= 1
        if stream.pending > 0 or self.done:
            return
        self.close_stream(stream)

    def close_stream(self, stream: Stream) -> None:
        """Hand each collect step of ``stream`` its batch (``[]`` if none came), then leave the parent."""
        for name in self._stream_collectors(stream):
            if name not in stream.released:
                self._release(stream, name)
        del self.streams[stream.id]
        if stream.parent is not None:
            self.stream_left(stream.parent)

    def _stream_collectors(self, stream: Stream) -> list[str]:
        bound = self.routes.bindings.get(stream.step, ())
        return [*bound, *(name for name in stream.batches if name not in bound)]

    def settle_take(self, stream: Stream, name: str) -> None:
        """Release the batch of a ``Take(n)`` collect step once it holds ``n`` events."""
        take = self.routes.steps[name].config.collect_take
        if take is not None and name not in stream.released and len(stream.batches.get(name, ())) >= take:
            self._release(stream, name)

    def _release(self, stream: Stream, name: str) -> None:
        stream.released.add(name)
        events = stream.batches.pop(name, [])
        take = self.routes.steps[name].config.collect_take
        if take is not None:
            events = events[:take]
        release = CollectionReleaseEvent(stream_id=str(stream.id), step_name=name, events=events)
        self.emit(release, "release", target=self.routes.steps[name], stream=stream.parent, releases=stream.id)

    def place(
        self, state: StepRuntime, item: WorkItem, taker: StepRuntime | None, taker_slot: int, handoff: Handoff | None
    ) -> Handoff | None:
        """Count ``item`` as the run's work and start it: handed to ``taker`` (if it can run it now), or dispatched."""
        self.pending += 1
        if taker is not None and handoff is None:
            # A worker routing the result it just produced takes the first event that
            # can run at once itself, instead of paying for a new task (a chain of
            # steps, or an agent's loop, then runs in one task).
            if state is taker and not state.queue:
                return Handoff(state=state, item=item, slot=taker_slot)
            if state is not taker and state.free_slots and state.spec.config.inputs != "join":
                # (A join's deliveries start in order instead: its sets form in arrival order.)
                return Handoff(state=state, item=item, slot=state.free_slots.pop())
        self.dispatch(state, item)
        return handoff

    def dispatch(self, state: StepRuntime, item: WorkItem) -> None:
        """Start ``item`` on a free worker of its step, or queue it."""
        if state.free_slots:
            self.spawn(state, item, state.free_slots.pop())
            return
        if state.queue is None:
            state.queue = deque()
        state.queue.append(item)
        self.journal.add(StepQueued(run=self.info, step=state.spec.name, seq=item.seq, event=item.event), streamed=True)

    def spawn(self, state: StepRuntime, item: WorkItem, slot: int) -> None:
        task = self.loop.create_task(invoke.work(self, state, item, slot))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def step_returned(
        self, spec: StepSpec, item: WorkItem, invocation_id: int, result: Event, state: StepRuntime, slot: int
    ) -> Handoff | None:
        """Route what a step returned; a ``StopEvent`` is only journaled (``stop`` concludes the run)."""
        if type(result) is list:
            return self.fan_out(spec, item, invocation_id, result, state, slot)
        if isinstance(result, StopEvent):
            if self.journal.full:
                self.journal.add(EventEmitted(
                    run=self.info, event=result, event_id=self._new_event_id(), source="return", step=spec.name,
                    invocation_id=invocation_id, completes=item.seq,
                ))
            return None
        return self.emit(
            result, "return", spec.name, invocation_id, item.lineage, completes=item.seq, taker=state, taker_slot=slot,
            stream=item.stream,
        )

    def step_failed(self, spec: StepSpec, item: WorkItem, exc: BaseException, attempts: int, elapsed: float) -> None:
        """A step's retries are exhausted: its ``@catch_error`` step recovers it, or the run fails."""
        handler_name = self.config.error_handlers.get(spec.name) if spec.config.role == "step" else None
        if handler_name is not None and isinstance(exc, Exception):
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
                self.emit(
                    failure, "return", spec.name, None, lineage, target=handler, completes=item.seq, stream=item.stream
                )
                return
        self.conclude(
            "failed",
            WorkflowFailedEvent(
                step_name=spec.name, exception=exc if isinstance(exc, Exception) else WorkflowRuntimeError(
                    f"step {spec.name} raised {type(exc).__name__}"
                ), attempts=attempts, elapsed_seconds=elapsed,
            ),
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
             invocation_id: int | None = None, lineage: dict[str, int] | None = None,
             sender: int | None = None) -> None:
        target = None
        if step is not None:
            target = self.routes.steps.get(step)
            if target is None:
                raise WorkflowRuntimeError(f"Step {step} does not exist")
            if not target.accepts(type(event)) and not any(w.step == step and w.matches(event) for w in self.waiters):
                raise WorkflowRuntimeError(f"Step {step} does not accept event of type {type(event)}")
            if target.config.inputs == "collect" and not any(w.step == step and w.matches(event) for w in self.waiters):
                error = WorkflowRuntimeError(
                    f"{type(event).__name__} was sent to collect step {step!r} with send_event(step=...), but a "
                    "list[E] collect step cannot receive targeted events: it only collects the events of a fan-out "
                    "stream (what a step returning list[...] starts)."
                )
                if not self.started:
                    raise error
                self.conclude(
                    "failed",
                    WorkflowFailedEvent(step_name=from_step or step, exception=error, attempts=0, elapsed_seconds=0.0),
                    error=error,
                )
                return
        if not self.started:
            # The run's task has not begun yet (or waits for num_concurrent_runs): keep
            # the event until the start event is routed and saved waiters are re-armed.
            if self.early_events is None:
                self.early_events = []
            self.early_events.append(EarlyEvent(event=event, source=source, target=target))
            return
        self.emit(event, source, from_step, invocation_id, lineage, target=target, sender=sender)

    def write_to_stream(self, event: Event, step: str | None = None, invocation_id: int | None = None) -> None:
        if self.done:
            return
        journal = self.journal
        if not journal.full:
            self.stream.add_event(event)  # the stream is the only reader: it needs the event, not a record
            return
        journal.add(
            EventEmitted(
                run=self.info, event=event, event_id=self._new_event_id(), source="stream", step=step,
                invocation_id=invocation_id,
            ),
            streamed=True,
        )

    # ------------------------------------------------------------------ collect / wait
    def collect(
        self, step: str, buffer_id: str, event: Event, expected: list[type[Event]], invocation_id: int | None = None,
        seq: int | None = None,
    ) -> list[Event] | None:
        key = (step, buffer_id)
        buffer = self.collect_buffers.get(key)
        if not isinstance(buffer, CollectBuffer):
            buffer = self.collect_buffers[key] = CollectBuffer(expected)
        elif buffer.expected is not expected and buffer.expected != expected:
            # The step changed its mind about what it waits for: keep what still fits.
            kept = buffer.events()
            buffer = self.collect_buffers[key] = CollectBuffer(expected)
            for ev in kept:
                buffer.add(ev)
        complete = buffer.add(event)
        if complete is not None and self.journal.full:
            self.journal.add(CollectBuffered(
                run=self.info, step=step, buffer_id=buffer_id, event=event, expected=tuple(expected),
                complete=complete, invocation_id=invocation_id, seq=seq,
            ))
        if not complete:
            return None
        del self.collect_buffers[key]
        return buffer.ordered()

    def join(self, step: str, event: Event, invocation_id: int, seq: int) -> list[Event] | None:
        """Buffer ``event`` for a multi-slot join step: one event per slot once every slot has one, else ``None``."""
        key = (step, JOIN_BUFFER)
        buffer = self.collect_buffers.get(key)
        if not isinstance(buffer, JoinBuffer):
            config = self.routes.steps[step].config
            buffer = self.collect_buffers[key] = JoinBuffer(
                list(config.event_parameters.values()), config.accept_event_subclasses
            )
        handed = buffer.add(event)
        if self.journal.full:
            self.journal.add(CollectBuffered(
                run=self.info, step=step, buffer_id=JOIN_BUFFER, event=event, expected=tuple(buffer.expected),
                complete=handed is not None, invocation_id=invocation_id, seq=seq,
            ))
        return handed

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
        if self.journal.full:
            self.journal.add(WaitStarted(
                run=self.info, step=step, invocation_id=invocation_id, waiter_id=waiter_id, event_type=event_type,
                requirements=requirements, timeout=timeout, seq=item.seq,
            ))
        deadline = None if timeout is None else self.loop.time() + timeout
        self.arm(Waiter(
            step=step, item=item, waiter_id=waiter_id, event_type=event_type, requirements=requirements,
            subclasses=subclasses, deadline=deadline,
        ))
        if waiter_event is not None:
            self.write_to_stream(waiter_event, step, invocation_id)

    def arm(self, waiter: Waiter) -> None:
        self.waiters.append(waiter)
        if waiter.deadline is not None:
            waiter.timer = self.loop.call_at(waiter.deadline, _wait_timed_out, weakref.ref(self), waiter)

    def _resume(self, waiter: Waiter, event: Event) -> WorkItem:
        self.waiters.remove(waiter)
        if waiter.timer is not None:
            waiter.timer.cancel()
        item = waiter.item
        if self.journal.full:
            self.journal.add(WaitEnded(
                run=self.info, step=waiter.step, waiter_id=waiter.waiter_id, outcome="received", event=event,
                seq=item.seq,
            ))
        resolved = dict(item.resolved or {})
        resolved[waiter.waiter_id] = event
        return WorkItem(
            item.event, item.event_id, item.seq, item.lineage, resolved, item.timed_out, item.attempts, item.stream
        )

    def waiter_timed_out(self, waiter: Waiter) -> None:
        if self.done or waiter not in self.waiters:
            return
        self.waiters.remove(waiter)
        item = waiter.item
        if self.journal.full:
            self.journal.add(WaitEnded(
                run=self.info, step=waiter.step, waiter_id=waiter.waiter_id, outcome="timed_out", seq=item.seq,
            ))
        timed_out = frozenset(item.timed_out or ()) | {waiter.waiter_id}
        resumed = WorkItem(
            item.event, item.event_id, item.seq, item.lineage, item.resolved, timed_out, item.attempts, item.stream
        )
        self.place(self.steps[waiter.step], resumed, None, 0, None)

    # ------------------------------------------------------------------ snapshot
    def take_snapshot(self) -> RunSnapshot:
        """The run as plain data: what is queued or in progress, collected, awaited."""
        return restore.take_snapshot(self)
