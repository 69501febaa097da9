"""A run killed after any journal record continues from what was written, and ends the same.

The recording runtime keeps each record encoded (as a store would) and "crashes" the
run after N records. The run is then rebuilt in a fresh workflow from the snapshot
taken before it started plus the N records, and continued: it must give the same
result, and no step invocation whose completion was written may run again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from support.journaled_workflows import Journeyed, RecordingRuntime, Routed

from workflows import Context
from workflows.events import HumanResponseEvent, IdleReleasedEvent, InputRequiredEvent, StopEvent
from workflows.runtime.journal import (
    EventEmitted,
    JournalRecord,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
)
from workflows.runtime.replay import outcome

EXPECTED = "t:5:3:yes"  # topic, 0 + 1 + 4, three parts seen, the human's answer


async def _crash_after(limit: int | None) -> tuple[dict[str, Any], RecordingRuntime, Any]:
    runtime = RecordingRuntime(crash_after=limit)
    workflow = Journeyed(runtime=runtime)
    ctx = Context(workflow)
    base = ctx.to_dict()
    try:
        result: Any = await workflow.run(ctx=ctx, topic="t")
    except ConnectionError as exc:  # the crash fails the run
        result = exc
    return base, runtime, result


def _completed(records: list[JournalRecord]) -> set[tuple[str, int]]:
    return {(r.step, r.seq) for r in records if isinstance(r, StepFinished) and r.outcome == "completed"}


async def test_a_complete_run_journals_every_kind_of_transition() -> None:
    base, runtime, result = await _crash_after(None)
    assert result == EXPECTED
    kinds = {type(r).__name__ for r in runtime.decoded()}
    assert {
        "RunStarted", "EventEmitted", "StepStarted", "StepFinished", "StepQueued", "StateChanged", "CollectBuffered",
        "WaitStarted", "WaitEnded", "RunIdle", "RunConcluded", "RunFinished",
    } <= kinds
    outcomes = {r.outcome for r in runtime.decoded() if isinstance(r, StepFinished)}
    assert {"completed", "retrying", "waiting"} <= outcomes
    assert runtime.closed


async def test_a_run_killed_after_any_record_continues_to_the_same_result_without_rerunning_finished_steps() -> None:
    _, full, _ = await _crash_after(None)
    total = len(full.journals[0].records)
    assert total > 40
    for limit in range(1, total):
        base, crashed, _ = await _crash_after(limit)
        written = crashed.decoded()
        assert len(written) == limit
        final = outcome(written)
        if final is not None:
            # The outcome was written before the crash: there is nothing to continue.
            assert isinstance(final, StopEvent) and final.result == EXPECTED, limit
            continue
        workflow = Journeyed(runtime=(resumed := RecordingRuntime()))
        ctx = Context.from_journal(workflow, base, written)
        result = await workflow.run(ctx=ctx)
        assert result == EXPECTED, f"after {limit} records: {result!r}"
        again = {(r.step, r.seq) for r in resumed.decoded() if isinstance(r, StepStarted)}
        assert not (_completed(written) & again), f"after {limit} records, finished steps ran again: {again}"
        assert workflow.executions["begin"] == (0 if ("begin", 0) in _completed(written) else 1), limit


async def test_an_interrupted_step_runs_again_with_the_next_attempt_number() -> None:
    _, full, _ = await _crash_after(None)
    records = full.decoded()
    # Crash right after the first attempt of a square step started.
    cut = next(i for i, r in enumerate(records) if isinstance(r, StepStarted) and r.step == "square") + 1
    base, crashed, _ = await _crash_after(cut)
    written = crashed.decoded()
    started = written[-1]
    assert isinstance(started, StepStarted) and started.attempt == 1
    workflow = Journeyed(runtime=(resumed := RecordingRuntime()))
    assert await workflow.run(ctx=Context.from_journal(workflow, base, written)) == EXPECTED
    rerun = next(r for r in resumed.decoded() if isinstance(r, StepStarted) and r.seq == started.seq)
    assert rerun.attempt == 2


async def test_a_rebuilt_run_keeps_numbering_its_work_after_the_numbers_already_used() -> None:
    base, crashed, _ = await _crash_after(12)
    written = crashed.decoded()
    used = {seq for r in written if isinstance(r, EventEmitted) for seq in r.seqs}
    workflow = Journeyed(runtime=(resumed := RecordingRuntime()))
    await workflow.run(ctx=Context.from_journal(workflow, base, written))
    new = {seq for r in resumed.decoded() if isinstance(r, EventEmitted) for seq in r.seqs}
    assert used and new and not (used & new)
    assert isinstance(resumed.decoded()[0], RunStarted) and resumed.decoded()[0].resumed


async def test_a_released_waiting_run_holds_no_task_and_continues_from_its_journal() -> None:
    runtime = RecordingRuntime(answer=None)
    workflow = Journeyed(runtime=runtime)
    ctx = Context(workflow)
    base = ctx.to_dict()
    handler = workflow.run(ctx=ctx, topic="t")
    async for event in handler.stream_events():
        if isinstance(event, InputRequiredEvent):
            break
    deadline = asyncio.get_running_loop().time() + 5
    while not handler.release_idle():  # the asking step parks right after its question
        assert asyncio.get_running_loop().time() < deadline, "the run never became idle"
        await asyncio.sleep(0)
    assert isinstance(await handler, IdleReleasedEvent)
    assert runtime.closed
    written = runtime.decoded()
    assert not any(isinstance(r, RunFinished) for r in written)  # the journal still shows a waiting run

    again = Journeyed(runtime=RecordingRuntime(answer=None))
    ctx = Context.from_journal(again, base, written)
    resumed = again.run(ctx=ctx)
    ctx.send_event(HumanResponseEvent(response="yes"))
    assert await resumed == EXPECTED
    assert again.executions["square"] == 0 and again.executions["ask"] == 1


ROUTED = "t:14:2:0"  # topic, 0 + 1 + 4 + 9, Take(2) got two, the empty stream's collect got none
ONCE = ("begin", "tagger", "total", "first_two", "extras", "count_extras")


async def _routed_crash_after(limit: int | None) -> tuple[dict[str, Any], RecordingRuntime, Any]:
    runtime = RecordingRuntime(crash_after=limit)
    workflow = Routed(runtime=runtime)
    ctx = Context(workflow)
    base = ctx.to_dict()
    try:
        result: Any = await workflow.run(ctx=ctx, topic="t")
    except ConnectionError as exc:
        result = exc
    return base, runtime, result


def _done(records: list[JournalRecord]) -> set[tuple[str, int]]:
    """Deliveries the records show done: their step finished, or the event it returned was routed."""
    done = _completed(records)
    done |= {(r.step, r.completes) for r in records if isinstance(r, EventEmitted) and r.step and r.completes is not None}
    return done


async def test_a_routed_run_journals_its_streams() -> None:
    _, runtime, result = await _routed_crash_after(None)
    assert result == ROUTED
    records = runtime.decoded(Routed())
    opened = [r for r in records if type(r).__name__ == "StreamOpened"]
    assert sorted((r.step, r.size) for r in opened) == [("begin", 4), ("extras", 0)]  # type: ignore[attr-defined]
    releases = [r for r in records if isinstance(r, EventEmitted) and r.releases is not None]
    assert sorted(r.targets[0] for r in releases) == ["count_extras", "first_two", "total"]
    assert sum(1 for r in records if isinstance(r, EventEmitted) and r.collected) == 4  # each PartDone, once


async def test_a_routed_run_killed_after_any_record_continues_without_releasing_twice() -> None:
    _, full, _ = await _routed_crash_after(None)
    total = len(full.journals[0].records)
    assert total > 40
    for limit in range(1, total):
        base, crashed, _ = await _routed_crash_after(limit)
        written = crashed.decoded(Routed())
        final = outcome(written)
        if final is not None:
            assert isinstance(final, StopEvent) and final.result == ROUTED, limit
            continue
        workflow = Routed(runtime=(resumed := RecordingRuntime()))
        result = await workflow.run(ctx=Context.from_journal(workflow, base, written))
        assert result == ROUTED, f"after {limit} records: {result!r}"
        again = {(r.step, r.seq) for r in resumed.decoded(Routed()) if isinstance(r, StepStarted)}
        assert not (_completed(written) & again), f"after {limit} records, finished steps ran again: {again}"
        # Each fan-out and collect step got one delivery done over both processes: no
        # batch was released twice, no stream was lost.
        done = _done(written) | _done(resumed.decoded(Routed()))
        for name in ONCE:
            assert sum(1 for step, _ in done if step == name) == 1, (limit, name, sorted(done))


async def test_a_runtime_set_between_runs_journals_the_next_run():
    # The workflow shares one run configuration between its runs: a new runtime must reach it.
    workflow = Journeyed(runtime=(first := RecordingRuntime()))
    assert await workflow.run(topic="t", run_id="before") == EXPECTED
    workflow.runtime = second = RecordingRuntime()
    assert await workflow.run(topic="t", run_id="after") == EXPECTED
    assert [journal.run.run_id for journal in first.journals] == ["before"]
    assert [journal.run.run_id for journal in second.journals] == ["after"]
