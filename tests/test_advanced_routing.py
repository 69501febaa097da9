"""The advanced routing of 2.26.1 (API.md 3.9): joins, list fan-out, list[E] collect steps.

Everything goes through the public API: decorated steps, ``run()``, the stream,
``ctx.to_dict()`` / ``Context.from_dict()``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

import pytest

from workflows import Context, Workflow, step
from workflows.collect import All, Collect, Take
from workflows.decorators import catch_error
from workflows.errors import WorkflowRuntimeError, WorkflowTimeoutError, WorkflowValidationError
from workflows.events import (
    CollectionReleaseEvent,
    Event,
    HumanResponseEvent,
    StartEvent,
    StepFailedEvent,
    StepState,
    StepStateChanged,
    StopEvent,
)
from workflows.retry_policy import retry_policy, stop_after_attempt, wait_fixed


class Item(Event):
    i: int


class Done(Event):
    i: int


class Other(Event):
    pass


class A(Event):
    i: int = 0


class B(Event):
    i: int = 0


class C(Event):
    i: int = 0


# --- the verified example ------------------------------------------------------------------


class Split(Workflow):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(timeout=5, **kwargs)
        self.calls: list[list[int]] = []

    @step
    async def split(self, ev: StartEvent) -> list[Item]:
        return [Item(i=i) for i in range(ev.get("n", 5))]

    @step
    async def work(self, ev: Item) -> Done:
        await asyncio.sleep(0.001 * (5 - ev.i))  # they finish out of order
        return Done(i=ev.i)

    @step
    async def join(self, evs: list[Done]) -> StopEvent:
        self.calls.append([e.i for e in evs])
        return StopEvent(result=sorted(e.i for e in evs))


async def test_split_work_join_gives_join_all_five_dones_in_one_call() -> None:
    workflow = Split()
    assert await workflow.run() == [0, 1, 2, 3, 4]
    assert len(workflow.calls) == 1 and sorted(workflow.calls[0]) == [0, 1, 2, 3, 4]


async def test_an_empty_list_opens_an_empty_stream_whose_collect_step_gets_no_events() -> None:
    workflow = Split()
    assert await workflow.run(n=0) == []
    assert workflow.calls == [[]]


async def test_the_collect_step_runs_on_a_release_event_seen_in_the_internal_stream() -> None:
    handler = Split().run(n=2)
    states = [
        (e.name, e.step_state, e.input_event_name)
        async for e in handler.stream_events(expose_internal=True)
        if isinstance(e, StepStateChanged)
    ]
    await handler
    assert ("join", StepState.RUNNING, "CollectionReleaseEvent") in states
    assert [s for s in states if s[0] == "join"][-1][1] == StepState.NOT_RUNNING
    assert sum(1 for s in states if s[0] == "work" and s[1] == StepState.RUNNING) == 2


# --- fan-out return values ------------------------------------------------------------------


class Mixed(Workflow):
    @step
    async def split(self, ev: StartEvent) -> list[Item] | Other | None:
        mode = ev.get("mode")
        if mode == "bare":
            return Other()
        if mode == "none":
            return None
        if mode == "bare-list-type":
            return Item(i=1)  # type: ignore[return-value]
        if mode == "not-an-event":
            return [Item(i=1), 3]  # type: ignore[list-item]
        if mode == "stop":
            return [Item(i=1), StopEvent(result="stopped from the list")]  # type: ignore[list-item]
        return [Item(i=1), Item(i=2)]

    @step
    async def work(self, ev: Item) -> Done:
        return Done(i=ev.i)

    @step
    async def other(self, ev: Other) -> StopEvent:
        return StopEvent(result="bare")

    @step
    async def join(self, evs: list[Done]) -> StopEvent:
        return StopEvent(result=[e.i for e in sorted(evs, key=lambda e: e.i)])


async def test_a_list_or_bare_step_may_return_the_bare_member_or_nothing() -> None:
    assert await Mixed(timeout=5).run() == [1, 2]
    assert await Mixed(timeout=5).run(mode="bare") == "bare"
    with pytest.raises(WorkflowTimeoutError):
        await Mixed(timeout=0.2).run(mode="none")


async def test_a_bare_event_whose_type_is_only_inside_the_list_fails_the_step() -> None:
    with pytest.raises(WorkflowRuntimeError, match=r"returned a bare Item.*only inside a list"):
        await Mixed(timeout=5).run(mode="bare-list-type")


async def test_a_list_with_a_non_event_fails_the_step() -> None:
    with pytest.raises(WorkflowRuntimeError, match=r"returned a list containing int \(item 1\)"):
        await Mixed(timeout=5).run(mode="not-an-event")


async def test_a_stop_event_inside_the_list_ends_the_run() -> None:
    assert await Mixed(timeout=5).run(mode="stop") == "stopped from the list"


async def test_a_list_from_a_step_not_annotated_to_return_one_is_an_error() -> None:
    class NotFanOut(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            return [StopEvent()]  # type: ignore[return-value]

    with pytest.raises(WorkflowRuntimeError, match="returned list instead of an Event instance"):
        await NotFanOut(timeout=5).run()


# --- Take(n) --------------------------------------------------------------------------------


class Taking(Workflow):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(timeout=5, **kwargs)
        self.calls: list[list[int]] = []
        self.worked = 0

    @step
    async def split(self, ev: StartEvent) -> list[Item]:
        return [Item(i=i) for i in range(ev.n)]

    @step(num_workers=1)
    async def work(self, ev: Item) -> Done:
        self.worked += 1
        return Done(i=ev.i)

    @step
    async def first(self, evs: Annotated[list[Done], Collect(Take(3))]) -> StopEvent:
        self.calls.append([e.i for e in evs])
        return StopEvent(result=[e.i for e in evs])


async def test_take_n_fires_on_the_nth_arrival_with_the_first_n() -> None:
    workflow = Taking()
    assert await workflow.run(n=6) == [0, 1, 2]  # one worker: arrival order is item order
    assert workflow.calls == [[0, 1, 2]]


async def test_take_n_of_a_shorter_stream_fires_when_it_closes_with_what_arrived() -> None:
    workflow = Taking()
    assert await workflow.run(n=2) == [0, 1]
    assert await Taking().run(n=0) == []


async def test_collect_all_is_the_default_cardinality() -> None:
    class Explicit(Workflow):
        @step
        async def split(self, ev: StartEvent) -> list[Item]:
            return [Item(i=i) for i in range(3)]

        @step
        async def join(self, evs: Annotated[list[Item], Collect(All())]) -> StopEvent:
            return StopEvent(result=len(evs))

    assert await Explicit(timeout=5).run() == 3


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2"])
def test_take_needs_an_integer_of_at_least_one(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"Take\(n\) requires an integer n >= 1"):
        Take(bad)


# --- streams through several steps ----------------------------------------------------------


class Group(Event):
    g: int


class Member(Event):
    g: int
    i: int


class MemberDone(Event):
    g: int


class GroupDone(Event):
    g: int
    n: int


class Nested(Workflow):
    @step
    async def groups(self, ev: StartEvent) -> list[Group]:
        return [Group(g=g) for g in range(3)]

    @step
    async def members(self, ev: Group) -> list[Member]:
        return [Member(g=ev.g, i=i) for i in range(ev.g)]

    @step
    async def work(self, ev: Member) -> MemberDone:
        return MemberDone(g=ev.g)

    @step
    async def per_group(self, evs: list[MemberDone]) -> GroupDone:
        assert len({e.g for e in evs}) <= 1  # one group's stream, never mixed
        return GroupDone(g=evs[0].g if evs else 0, n=len(evs))

    @step
    async def total(self, evs: list[GroupDone]) -> StopEvent:
        return StopEvent(result=sorted(e.n for e in evs))


async def test_nested_fan_outs_collect_per_inner_stream_and_continue_in_the_outer_one() -> None:
    assert await Nested(timeout=5).run() == [0, 1, 2]


async def test_a_stream_reaches_a_collect_step_and_other_steps_alike() -> None:
    seen: list[int] = []

    class Both(Workflow):
        @step
        async def split(self, ev: StartEvent) -> list[Item]:
            return [Item(i=i) for i in range(3)]

        @step
        async def side(self, ev: Item) -> None:
            seen.append(ev.i)

        @step
        async def join(self, evs: list[Item]) -> StopEvent:
            return StopEvent(result=sorted(e.i for e in evs))

    assert await Both(timeout=5).run() == [0, 1, 2]
    assert sorted(seen) == [0, 1, 2]


async def test_a_failing_collect_step_shows_its_release_event_to_catch_error() -> None:
    class Failing(Workflow):
        @step
        async def split(self, ev: StartEvent) -> list[Item]:
            return [Item(i=0), Item(i=1)]

        @step
        async def join(self, evs: list[Item]) -> StopEvent:
            raise ValueError("cannot join")

        @catch_error
        async def recover(self, ev: StepFailedEvent) -> StopEvent:
            release = ev.input_event
            assert isinstance(release, CollectionReleaseEvent)
            return StopEvent(result=(ev.step_name, [e.i for e in release.events]))  # type: ignore[attr-defined]

    assert await Failing(timeout=5).run() == ("join", [0, 1])


# --- send_event never joins a batch ---------------------------------------------------------


class Sending(Workflow):
    @step
    async def split(self, ctx: Context, ev: StartEvent) -> list[Item] | Other:
        if ev.get("target"):
            ctx.send_event(Done(i=99), step="join")
        else:
            ctx.send_event(Done(i=99))
        return [Item(i=1), Item(i=2)]

    @step
    async def work(self, ev: Item) -> Done:
        return Done(i=ev.i)

    @step
    async def other(self, ev: Other) -> None:
        return None

    @step
    async def join(self, evs: list[Done]) -> StopEvent:
        return StopEvent(result=sorted(e.i for e in evs))


async def test_an_untargeted_sent_event_is_ignored_by_collect_steps_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="workflows.runtime"):
        assert await Sending(timeout=5).run() == [1, 2]
    assert any("ignoring Done for collect step 'join'" in r.getMessage() for r in caplog.records)


async def test_an_event_sent_to_a_collect_step_fails_the_run() -> None:
    with pytest.raises(WorkflowRuntimeError, match=r"sent to collect step 'join'.*cannot receive targeted events"):
        await Sending(timeout=5).run(target=True)


# --- multi-slot joins -----------------------------------------------------------------------


class Joining(Workflow):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{"timeout": 5, **kwargs})
        self.sets: list[tuple[int, int]] = []

    @step
    async def start(self, ctx: Context, ev: StartEvent) -> A | B | None:
        for event in ev.events:
            ctx.send_event(event)
        return None

    @step
    async def join(self, a: A, b: B) -> StopEvent | None:
        self.sets.append((a.i, b.i))
        return StopEvent(result=self.sets) if len(self.sets) == 2 else None


async def test_a_join_fires_once_one_event_of_each_type_arrived_and_later_ones_wait_their_turn() -> None:
    workflow = Joining()
    events = [A(i=1), A(i=2), B(i=1), B(i=2), B(i=3)]
    assert await workflow.run(events=events) == [(1, 1), (2, 2)]


async def test_a_join_waits_while_a_slot_is_empty() -> None:
    with pytest.raises(WorkflowTimeoutError):
        await Joining(timeout=0.2).run(events=[A(i=1), A(i=2)])


async def test_a_join_may_have_several_slots_of_one_type_and_a_context_and_run_sync() -> None:
    class Three(Workflow):
        @step
        async def start(self, ctx: Context, ev: StartEvent) -> A | C | None:
            ctx.send_event(A(i=1))
            ctx.send_event(C(i=3))
            ctx.send_event(A(i=2))
            return None

        @step
        def join(self, first: A, ctx: Context, second: A, c: C) -> StopEvent:
            assert isinstance(ctx, Context)
            return StopEvent(result=(first.i, second.i, c.i))

    assert await Three(timeout=5).run() == (1, 2, 3)


async def test_a_retried_join_gets_the_same_set_again() -> None:
    calls: list[tuple[int, int]] = []

    class Flaky(Workflow):
        @step
        async def start(self, ctx: Context, ev: StartEvent) -> A | B | None:
            ctx.send_event(A(i=1))
            ctx.send_event(B(i=2))
            return None

        @step(retry_policy=retry_policy(wait=wait_fixed(0), stop=stop_after_attempt(3)))
        async def join(self, a: A, b: B) -> StopEvent:
            calls.append((a.i, b.i))
            if len(calls) == 1:
                raise ValueError("first attempt fails")
            return StopEvent(result=calls)

    assert await Flaky(timeout=5).run() == [(1, 2), (1, 2)]


async def test_a_join_downstream_of_a_fan_out_stays_in_its_stream() -> None:
    class JoinInStream(Workflow):
        @step
        async def split(self, ev: StartEvent) -> list[A | B]:
            return [A(i=1), B(i=10), A(i=2), B(i=20)]

        @step
        async def pair(self, a: A, b: B) -> C:
            return C(i=a.i + b.i)

        @step
        async def gather(self, evs: list[C]) -> StopEvent:
            return StopEvent(result=sorted(e.i for e in evs))

    assert await JoinInStream(timeout=5).run() == [11, 22]


# --- decoration and validation errors -------------------------------------------------------


def _decorate(signature: str) -> None:
    namespace: dict[str, Any] = {}
    source = (
        "class W(Workflow):\n"
        "    @step\n"
        f"    async def s(self, {signature}:\n"
        "        return None\n"
    )
    exec(source, {**globals(), "Annotated": Annotated}, namespace)


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        (
            "a: A | B, b: C) -> StopEvent",
            r"^Collect-mode steps \(more than one event parameter\) require each event parameter to declare a single "
            r"event type, but parameter 'a' of step s declares 2",
        ),
        ("a: list[A], b: list[B]) -> StopEvent", r"two list\[E\] collect parameters \('a' and 'b'\)"),
        ("a: list[A], b: B) -> StopEvent", r"list\[E\] collect parameter 'a' cannot be combined with the event parameter 'b'"),
        ("a: Annotated[A, Collect(Take(2))]) -> StopEvent", r"parameter 'a' carries a Collect marker but is not annotated list\[E\]"),
        ("a: list[int]) -> StopEvent", r"^Step signature must have at least one parameter annotated as type Event$"),
    ],
)
def test_decoration_errors(signature: str, message: str) -> None:
    with pytest.raises(WorkflowValidationError, match=message):
        _decorate(signature)


@pytest.mark.parametrize(
    "signature",
    [
        "a: A | None, b: B) -> StopEvent",  # None is dropped: one type
        "a: A, b: A) -> StopEvent",
        "evs: list[A | B]) -> StopEvent",
        "evs: Annotated[list[A], Collect(Take(2))], ctx: Context) -> list[B] | C",
    ],
)
def test_accepted_signatures(signature: str) -> None:
    _decorate(signature)


def test_the_step_config_describes_each_kind_of_step() -> None:
    config = Taking.first._step_config  # type: ignore[attr-defined]
    assert (config.inputs, config.collect_parameter, config.collect_take, config.accepted_events) == (
        "collect", "evs", 3, [Done],
    )
    join = Joining.join._step_config  # type: ignore[attr-defined]
    assert join.inputs == "join" and join.event_parameters == {"a": A, "b": B} and join.accepted_events == [A, B]
    mixed = Mixed.split._step_config  # type: ignore[attr-defined]
    assert mixed.fan_out_types == [Item] and mixed.fan_out_only == frozenset({Item})
    assert set(mixed.return_types) == {Item, Other}


async def test_a_collect_step_that_no_fan_out_feeds_is_rejected_by_validation() -> None:
    class Unfed(Workflow):
        @step
        async def s(self, ev: StartEvent) -> Done:
            return Done(i=1)

        @step
        async def j(self, evs: list[Done]) -> StopEvent:
            return StopEvent()

    message = r"Step 'j' parameter 'evs' collects list\[Done\], but no step returning a list \(a fan-out\)"
    with pytest.raises(WorkflowValidationError, match=message):
        Unfed().validate()
    with pytest.raises(WorkflowValidationError, match=message):
        await Unfed(timeout=5).run()


# --- saving and resuming mid-stream ---------------------------------------------------------


class Answer(HumanResponseEvent):
    i: int


class Paused(Workflow):
    """Items wait for a human each; Take(2) fires early, All at the end."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(timeout=5, **kwargs)
        self.worked: list[int] = []
        self.firsts: list[list[int]] = []

    @step
    async def split(self, ev: StartEvent) -> list[Item]:
        return [Item(i=i) for i in range(4)]

    @step
    async def work(self, ctx: Context, ev: Item) -> Done:
        if ev.i >= 2:
            await ctx.wait_for_event(Answer, requirements={"i": ev.i}, timeout=None)
        self.worked.append(ev.i)
        return Done(i=ev.i)

    @step
    async def firsts_(self, evs: Annotated[list[Done], Collect(Take(2))]) -> C:
        self.firsts.append(sorted(e.i for e in evs))
        return C(i=len(evs))

    @step
    async def every(self, evs: list[Done]) -> B:
        return B(i=sum(e.i for e in evs))

    @step
    async def finish(self, c: C, b: B) -> StopEvent:
        return StopEvent(result=(c.i, b.i))


async def _idle(handler: Any) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    async for event in handler.stream_events(expose_internal=True):
        if type(event).__name__ == "WorkflowIdleEvent":
            return
        assert loop.time() < deadline


async def test_a_run_saved_mid_stream_resumes_with_its_streams_batches_and_membership() -> None:
    first = Paused()
    handler = first.run()
    await _idle(handler)  # items 0 and 1 done (Take(2) released), 2 and 3 wait for answers
    payload = handler.ctx.to_dict()
    await handler.cancel_run()
    assert sorted(first.worked) == [0, 1] and first.firsts == [[0, 1]]
    (stream,) = payload["streams"]
    assert stream["step"] == "split" and stream["released"] == ["firsts_"]
    assert len(stream["batches"]["every"]) == 2
    waits = payload["workers"]["work"]["collected_waiters"]
    assert [w["stream"] for w in waits] == [stream["stream"]] * 2

    second = Paused()
    ctx = Context.from_dict(second, payload)
    resumed = second.run(ctx=ctx)
    await _idle(resumed)
    ctx.send_event(Answer(i=2))
    ctx.send_event(Answer(i=3))
    assert await resumed == (2, 0 + 1 + 2 + 3)
    assert sorted(second.worked) == [2, 3] and second.firsts == []  # Take(2) is not released again


async def test_a_format_3_payload_without_streams_is_upgraded() -> None:
    first = Joining()
    handler = first.run(events=[A(i=1)])
    await _idle(handler)
    payload = handler.ctx.to_dict()
    await handler.cancel_run()
    assert payload["version"] == 4 and payload["streams"] == []
    payload["version"] = 3
    del payload["streams"]
    for worker in payload["workers"].values():
        for item in worker["queue"]:
            del item["stream"]
        for waiter in worker["collected_waiters"]:
            del waiter["stream"]
    second = Joining()
    ctx = Context.from_dict(second, payload)
    resumed = second.run(ctx=ctx)
    await _idle(resumed)
    ctx.send_event(B(i=1))
    ctx.send_event(A(i=2))
    ctx.send_event(B(i=2))
    assert await resumed == [(1, 1), (2, 2)]  # the saved A waited in the join's buffer


async def test_a_saved_delivery_naming_an_unknown_stream_is_refused() -> None:
    from workflows.errors import ContextSerdeError

    handler = Paused().run()
    await _idle(handler)
    payload = handler.ctx.to_dict()
    await handler.cancel_run()
    payload["workers"]["work"]["collected_waiters"][0]["stream"] = 12345
    with pytest.raises(ContextSerdeError, match=r"collected_waiters\[0\]\.stream: names stream 12345"):
        Context.from_dict(Paused(), payload)
    payload["workers"]["work"]["collected_waiters"][0]["stream"] = None
    payload["streams"][0]["step"] = "work"
    with pytest.raises(ContextSerdeError, match=r"streams\[0\]\.step: step work does not return a list"):
        Context.from_dict(Paused(), payload)
