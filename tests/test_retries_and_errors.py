"""Conformance: step failures, retry policies and @catch_error recovery in runs (API.md §4.6, §9, §10, §12)."""

from __future__ import annotations

import traceback
from datetime import datetime

import pytest

from workflows import Context, Workflow, catch_error, step
from workflows.errors import WorkflowValidationError
from workflows.events import Event, StartEvent, StepFailedEvent, StopEvent, WorkflowFailedEvent
from workflows.retry_policy import (
    ConstantDelayRetryPolicy,
    RetryPolicy,
    retry_if_exception_type,
    retry_policy,
    stop_after_attempt,
    wait_fixed,
)

NO_WAIT_THREE_ATTEMPTS = retry_policy(wait=wait_fixed(0), stop=stop_after_attempt(3))


class Again(Event):
    pass


# checklist 43
async def test_failing_step_fails_the_run_with_its_own_exception_and_a_failed_event() -> None:
    raised: list[BaseException] = []

    class Fails(Workflow):
        @step
        async def explode(self, ev: StartEvent) -> StopEvent:
            error = KeyError("boom")
            raised.append(error)
            raise error

    handler = Fails().run()
    with pytest.raises(KeyError) as info:
        await handler
    assert info.value is raised[0]
    assert str(info.value) == "'boom'"
    events = [ev async for ev in handler.stream_events()]
    failed = events[-1]
    assert isinstance(failed, WorkflowFailedEvent)
    assert failed.step_name == "explode"
    assert failed.attempts == 1
    assert handler.get_stop_event() is None


async def test_step_error_keeps_its_traceback_down_to_the_step_frame() -> None:
    def deep_helper() -> None:
        raise ValueError("from deep inside")

    class Fails(Workflow):
        @step
        async def explode_here(self, ev: StartEvent) -> StopEvent:
            deep_helper()
            return StopEvent()

    with pytest.raises(ValueError, match="from deep inside") as info:
        await Fails().run()
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "explode_here" in frames
    assert frames[-1] == "deep_helper"


async def test_sync_step_error_keeps_its_type_and_traceback() -> None:
    class Fails(Workflow):
        @step
        def sync_explode(self, ev: StartEvent) -> StopEvent:
            raise LookupError("sync failure")

    with pytest.raises(LookupError, match="sync failure") as info:
        await Fails().run()
    assert "sync_explode" in [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]


# checklist 63
async def test_retried_step_that_recovers_completes_and_sees_its_retry_info() -> None:
    seen: list[tuple[int, str | None]] = []

    class Flaky(Workflow):
        @step(retry_policy=NO_WAIT_THREE_ATTEMPTS)
        async def s(self, ctx: Context, ev: StartEvent) -> StopEvent:
            info = ctx.retry_info()
            seen.append((info.retry_number, None if info.last_exception is None else str(info.last_exception)))
            if info.retry_number < 2:
                raise ValueError(f"fail {info.retry_number}")
            return StopEvent(result="recovered")

    assert await Flaky().run() == "recovered"
    assert seen == [(0, None), (1, "fail 0"), (2, "fail 1")]


# checklist 64
async def test_step_failing_every_attempt_runs_three_times_and_raises_the_last_error() -> None:
    attempts: list[int] = []

    class AlwaysFails(Workflow):
        @step(retry_policy=NO_WAIT_THREE_ATTEMPTS)
        async def s(self, ev: StartEvent) -> StopEvent:
            attempts.append(len(attempts))
            raise ValueError(f"attempt {len(attempts)}")

    handler = AlwaysFails().run()
    with pytest.raises(ValueError, match="attempt 3"):
        await handler
    assert len(attempts) == 3
    failed = [ev async for ev in handler.stream_events()][-1]
    assert isinstance(failed, WorkflowFailedEvent)
    assert failed.attempts == 3


# checklist 65
def test_default_retry_policy_waits_five_seconds_twice_then_stops() -> None:
    policy = retry_policy()
    error = RuntimeError("x")
    assert [policy.next(0, n, error) for n in (1, 2, 3)] == [5.0, 5.0, None]
    only_key_errors = retry_policy(retry=retry_if_exception_type(KeyError))
    assert only_key_errors.next(0, 1, ValueError("v")) is None
    assert only_key_errors.next(0, 1, KeyError("k")) == 5.0


# checklist 66
async def test_legacy_three_argument_policy_object_drives_retries() -> None:
    calls: list[tuple[int, str]] = []

    class RetryOnce:
        def next(self, elapsed_time: float, attempts: int, error: Exception) -> float | None:
            calls.append((attempts, str(error)))
            return 0 if attempts < 2 else None

    policy = RetryOnce()
    assert isinstance(policy, RetryPolicy)
    runs: list[int] = []

    class Legacy(Workflow):
        @step(retry_policy=policy)
        async def s(self, ev: StartEvent) -> StopEvent:
            runs.append(1)
            if len(runs) < 2:
                raise ValueError("first attempt")
            return StopEvent(result=len(runs))

    assert await Legacy().run() == 2
    assert calls == [(1, "first attempt")]


# checklist 67
def test_constant_delay_policy_is_deprecated_and_equivalent_to_the_composed_one() -> None:
    with pytest.warns(DeprecationWarning):
        legacy = ConstantDelayRetryPolicy(maximum_attempts=4, delay=2)
    composed = retry_policy(wait=wait_fixed(2), stop=stop_after_attempt(4))
    error = ValueError("v")
    expected = [composed.next(0.5, n, error) for n in range(1, 6)]
    assert [legacy.next(0.5, n, error) for n in range(1, 6)] == expected
    assert expected == [2.0, 2.0, 2.0, None, None]


# checklist 68
async def test_wildcard_catch_error_receives_the_failure_after_retries_and_its_stop_event_wins() -> None:
    received: list[StepFailedEvent] = []

    class Recovers(Workflow):
        @step(retry_policy=retry_policy(wait=wait_fixed(0), stop=stop_after_attempt(2)))
        async def fragile(self, ev: StartEvent) -> StopEvent:
            raise ValueError("fragile broke")

        @catch_error
        async def recover(self, ev: StepFailedEvent) -> StopEvent:
            received.append(ev)
            return StopEvent(result=f"recovered from {ev.step_name}")

    start = StartEvent(tag="t")
    assert await Recovers().run(start_event=start) == "recovered from fragile"
    assert len(received) == 1
    failure = received[0]
    assert failure.step_name == "fragile"
    assert failure.input_event is start
    assert isinstance(failure.exception, ValueError) and str(failure.exception) == "fragile broke"
    assert failure.attempts == 2
    assert failure.elapsed_seconds >= 0
    assert isinstance(failure.failed_at, datetime) and failure.failed_at.utcoffset() is not None


def _handler_structures() -> dict[str, type[Workflow]]:
    class TwoWildcards(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @catch_error
        async def h1(self, ev: StepFailedEvent) -> StopEvent:
            return StopEvent()

        @catch_error
        async def h2(self, ev: StepFailedEvent) -> StopEvent:
            return StopEvent()

    class UnknownStep(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @catch_error(for_steps=["nope"])
        async def h(self, ev: StepFailedEvent) -> StopEvent:
            return StopEvent()

    class ClaimedTwice(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @catch_error(for_steps=["s"])
        async def h1(self, ev: StepFailedEvent) -> StopEvent:
            return StopEvent()

        @catch_error(for_steps=["s"])
        async def h2(self, ev: StepFailedEvent) -> StopEvent:
            return StopEvent()

    return {
        "Only one wildcard @catch_error handler is allowed per workflow, found 2: h1, h2": TwoWildcards,
        "@catch_error handler 'h' lists unknown step 'nope' in for_steps.": UnknownStep,
        "Step 's' is claimed by two @catch_error handlers: 'h1' and 'h2'.": ClaimedTwice,
    }


# checklist 69
@pytest.mark.parametrize("message", list(_handler_structures()))
async def test_bad_catch_error_structure_is_rejected_by_validate_and_run(message: str) -> None:
    workflow_class = _handler_structures()[message]
    with pytest.raises(WorkflowValidationError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        workflow_class().validate()
    with pytest.raises(WorkflowValidationError) as info:
        workflow_class(disable_validation=True).run()
    assert message in str(info.value)


# checklist 69
def test_catch_error_max_recoveries_below_one_is_rejected_at_decoration() -> None:
    with pytest.raises(WorkflowValidationError, match="@catch_error max_recoveries must be an integer >= 1"):
        catch_error(max_recoveries=0)


# checklist 70
async def test_catch_error_handler_that_raises_fails_the_run_with_its_own_error() -> None:
    class HandlerFails(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            raise ValueError("step error")

        @catch_error
        async def h(self, ev: StepFailedEvent) -> StopEvent:
            raise KeyError("from handler")

    with pytest.raises(KeyError, match="from handler"):
        await HandlerFails().run()


# checklist 70
async def test_recoveries_past_max_recoveries_fail_the_run_with_the_step_error() -> None:
    runs: list[int] = []
    recoveries: list[int] = []

    class Loops(Workflow):
        @step
        async def s(self, ev: StartEvent | Again) -> StopEvent:
            runs.append(1)
            raise ValueError(f"step error {len(runs)}")

        @catch_error(max_recoveries=2)
        async def h(self, ev: StepFailedEvent) -> Again:
            recoveries.append(1)
            return Again()

    with pytest.raises(ValueError, match="step error 3"):
        await Loops().run()
    assert len(runs) == 3
    assert len(recoveries) == 2
