"""One step invocation: its attempts, its retries, and how each attempt can end.

Every way out of a step is turned into one of the outcomes of ``StepFinished`` by the
same code: a result (or ``None``), a wait (``WaitSuspended``), the run's own end
(cancelled or timed out: the run cancelled the task), or a failure. A failure is
anything else the step raised: an ``Exception`` (retried by the step's policy, then
recovered by its ``@catch_error`` step or failing the run), a ``CancelledError`` the run
did not cause (a step awaiting a task that other code cancelled: a
``WorkflowRuntimeError`` naming the step, then like any ``Exception``), or another
``BaseException`` (it fails the run at once and ``await handler`` raises it).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from workflows.errors import WorkflowRuntimeError
from workflows.events import CollectionReleaseEvent, Event, StopEvent
from workflows.retry_policy import RetryInfo, next_delay
from workflows.runtime.journal import StepFinished, StepOutcome, StepStarted, current_run
from workflows.runtime.routing import WorkItem
from workflows.runtime.scope import WaitSuspended, current_step_context
from workflows.runtime.steps import StepSpec

if TYPE_CHECKING:
    from workflows.runtime.run import Handoff, StepRuntime, WorkflowRun

logger = logging.getLogger("workflows.runtime")


class SyncStepThreads:
    """Counts a run's sync steps whose executor thread is still running.

    A thread cannot be stopped: when its run ends first (timeout, cancel, failure), the
    thread finishes on its own and what it returns is dropped. The run reports how many
    it left behind (``RunFinished.detached_threads``, and a warning in the log).
    """

    __slots__ = ("running", "_lock")

    def __init__(self) -> None:
        self.running = 0
        self._lock = threading.Lock()

    def call(self, function: Any) -> Any:
        with self._lock:
            self.running += 1
        try:
            return function()
        finally:
            with self._lock:
                self.running -= 1


def _cancel_requested() -> bool:
    """Whether this task itself was asked to stop (as opposed to an awaited task being cancelled)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or cancelling() > 0


def _retry_delay(spec: StepSpec, first_started: float, attempt: int, exc: Exception) -> float | Exception | None:
    policy = spec.config.retry_policy
    if policy is None:
        return None
    try:
        return next_delay(policy, time.monotonic() - first_started, attempt, exc)
    except Exception as policy_error:
        return policy_error


_JOIN_INCOMPLETE: dict[str, Any] = {}


class _Inputs:
    """The event arguments of one invocation, worked out by its first attempt.

    A join buffers its event once per invocation: a retried attempt calls the step
    again with the set the first attempt completed.
    """

    __slots__ = ("kwargs",)

    def __init__(self) -> None:
        self.kwargs: dict[str, Any] | None = None


def _event_arguments(run: WorkflowRun, spec: StepSpec, item: WorkItem, invocation_id: int) -> dict[str, Any]:
    """The event parameters of a join or collect step (``_JOIN_INCOMPLETE`` while a join waits)."""
    config = spec.config
    if config.inputs == "join":
        events = run.join(spec.name, item.event, invocation_id, item.seq)
        if events is None:
            return _JOIN_INCOMPLETE
        return dict(zip(config.event_parameters, events))
    release = item.event
    if not isinstance(release, CollectionReleaseEvent):
        raise WorkflowRuntimeError(
            f"Collect step {spec.name} received a {type(release).__name__}; it only runs on the batch of a fan-out stream"
        )
    return {config.event_name: list(release.events)}


def _check_result(spec: StepSpec, result: Any) -> None:
    config = spec.config
    if isinstance(result, Event):
        if config.fan_out_only and type(result) in config.fan_out_only:
            raise WorkflowRuntimeError(
                f"Step function {spec.name} returned a bare {type(result).__name__}, but its return annotation "
                "declares that type only inside a list. Return a one-element list to fan out, or add the bare type "
                "to the annotation (-> list[A] | A) to return it on its own."
            )
        return
    if type(result) is list and config.fan_out_types:
        for index, element in enumerate(result):
            if not isinstance(element, Event):
                raise WorkflowRuntimeError(
                    f"Step function {spec.name} returned a list containing {type(element).__name__} (item {index}) "
                    "instead of an Event instance; a fan-out list holds events only."
                )
        return
    raise WorkflowRuntimeError(f"Step function {spec.name} returned {type(result).__name__} instead of an Event instance.")


async def _call(
    run: WorkflowRun, spec: StepSpec, item: WorkItem, step_ctx: Any, invocation_id: int, inputs: _Inputs | None
) -> Any:
    config = spec.config
    if inputs is None:
        kwargs: dict[str, Any] = {config.event_name: item.event}
    else:
        if inputs.kwargs is None:
            inputs.kwargs = _event_arguments(run, spec, item, invocation_id)
        if inputs.kwargs is _JOIN_INCOMPLETE:
            return None  # the event waits in the join's buffer for the rest of its set
        kwargs = dict(inputs.kwargs)
    if config.context_parameter is not None:
        kwargs[config.context_parameter] = step_ctx
    if config.resources:
        kwargs.update(await run.config.resolve_resources(config.resources))
    if config.is_async:
        result = await spec.func(**kwargs)
    else:
        call = functools.partial(contextvars.copy_context().run, functools.partial(spec.func, **kwargs))
        threads = run.threads
        if threads is None:
            threads = run.threads = SyncStepThreads()
        result = await run.loop.run_in_executor(None, threads.call, call)
    if result is not None and (config.fan_out_only or not isinstance(result, Event)):
        _check_result(spec, result)
    return result


async def invoke(run: WorkflowRun, state: StepRuntime, item: WorkItem, slot: int) -> Handoff | None:
    """Run one delivery of an event to a step, with its retries; return the work its worker takes next."""
    spec = state.spec
    journal = run.journal
    invocation_id = run.next_invocation
    run.next_invocation += 1
    state.in_progress[invocation_id] = item
    step_ctx = run.config.make_step_context(run.ctx, run, spec.name, item, invocation_id)
    # Set, never reset with a token: a worker owns its task's context, and a run dropped
    # in a closed loop may be finalized outside that context.
    current_step_context.set(step_ctx)
    first_started = time.monotonic()
    inputs = None if spec.config.inputs == "event" else _Inputs()
    attempt = item.attempts
    if attempt:
        # Attempts made by a process that died count: the step can tell it runs again.
        step_ctx._retry_info = RetryInfo(retry_number=attempt)
    try:
        while True:
            attempt += 1
            journal.add(
                StepStarted(
                    run=run.info, step=spec.name, invocation_id=invocation_id, attempt=attempt, worker=slot,
                    event=item.event, event_id=item.event_id, seq=item.seq,
                ),
                streamed=not run.done,
            )
            failure: BaseException
            try:
                if journal.durable is not None:
                    # The step acts outside the run: what led to it must be durable first.
                    await journal.settle()
                    if run.done:  # the journal could not be written: the run has failed
                        raise asyncio.CancelledError
                result = await _call(run, spec, item, step_ctx, invocation_id, inputs)
            except WaitSuspended:
                run.finish_attempt(StepFinished(
                    run=run.info, step=spec.name, invocation_id=invocation_id, attempt=attempt, outcome="waiting",
                    worker=slot, event=item.event, seq=item.seq,
                ))
                return None
            except asyncio.CancelledError as exc:
                if run.done or _cancel_requested():
                    outcome: StepOutcome = "timed_out" if run.status == "timed_out" else "cancelled"
                    run.finish_attempt(StepFinished(
                        run=run.info, step=spec.name, invocation_id=invocation_id, attempt=attempt, outcome=outcome,
                        worker=slot, event=item.event, seq=item.seq,
                    ))
                    raise
                failure = WorkflowRuntimeError(
                    f"Step {spec.name} was cancelled by code outside the run (a task it awaited was cancelled)"
                )
                failure.__cause__ = exc
            except BaseException as exc:  # every failure, whatever its class, is this step's
                failure = exc
            else:
                handed = None if result is None else run.step_returned(spec, item, invocation_id, result, state, slot)
                fanned = type(result) is list
                run.finish_attempt(StepFinished(
                    run=run.info, step=spec.name, invocation_id=invocation_id, attempt=attempt, outcome="completed",
                    output=(result[-1] if result else None) if fanned else result, worker=slot, event=item.event,
                    seq=item.seq,
                ))
                stop = next((e for e in result if isinstance(e, StopEvent)), None) if fanned else result
                if isinstance(stop, StopEvent):
                    # Concluded after the step's end is journaled, so the stream shows
                    # the step finishing before the stop event that closes it.
                    run.stop(stop)
                elif item.stream is not None:
                    run.stream_left(item.stream)
                return handed
            if run.done:
                run.finish_attempt(StepFinished(
                    run=run.info, step=spec.name, invocation_id=invocation_id, attempt=attempt, outcome="failed",
                    error=failure, worker=slot, event=item.event, seq=item.seq,
                ))
                return None
            delay = _retry_delay(spec, first_started, attempt, failure) if isinstance(failure, Exception) else None
            if isinstance(delay, Exception):
                failure, delay = delay, None  # the policy itself raised: that is the failure
            if delay is not None and isinstance(failure, Exception):
                run.finish_attempt(StepFinished(
                    run=run.info, step=spec.name, invocation_id=invocation_id, attempt=attempt, outcome="retrying",
                    error=failure, retry_delay=delay, worker=slot, event=item.event, seq=item.seq,
                ))
                step_ctx._retry_info = RetryInfo(
                    retry_number=attempt,
                    elapsed_seconds=time.monotonic() - first_started,
                    last_exception=failure,
                    last_failed_at=datetime.now(timezone.utc),
                )
                await asyncio.sleep(delay)
                continue
            run.finish_attempt(StepFinished(
                run=run.info, step=spec.name, invocation_id=invocation_id, attempt=attempt, outcome="failed",
                error=failure, worker=slot, event=item.event, seq=item.seq,
            ))
            run.step_failed(spec, item, failure, attempt, time.monotonic() - first_started)
            if item.stream is not None:
                run.stream_left(item.stream)
            return None
    finally:
        current_step_context.set(None)
        del state.in_progress[invocation_id]
        run.work_done()


async def work(run: WorkflowRun, state: StepRuntime, item: WorkItem, slot: int) -> None:
    """A worker task: runs ``item``, then whatever its step queued or its results hand it."""
    current_run.set(run.info)  # the task's own context: nothing to reset when it ends
    try:
        while True:
            handed = await invoke(run, state, item, slot)
            if handed is not None:
                if handed.state is not state:
                    if state.queue and not run.done:
                        # This step still has queued work for this worker: the handed
                        # event gets a task of its own (its slot is already taken).
                        run.spawn(handed.state, handed.item, handed.slot)
                        item = state.queue.popleft()
                        continue
                    state.free_slots.append(slot)
                    state, slot = handed.state, handed.slot
                item = handed.item
                if run.done:
                    break
                continue
            if run.done or not state.queue:
                break
            if state.spec.config.inputs == "join":
                # Deliveries already handed to other workers buffer first, so a join
                # forms its sets in the order its events arrived.
                await asyncio.sleep(0)
                if run.done or not state.queue:
                    break
            item = state.queue.popleft()
    finally:
        state.free_slots.append(slot)
