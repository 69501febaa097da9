"""Conformance: the Context's faces, its state store and its snapshots, used from runs (API.md §7)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from workflows import Context, Workflow, step
from workflows.context import PickleSerializer
from workflows.errors import ContextSerdeError, ContextStateError, WorkflowRuntimeError
from workflows.events import Event, StartEvent, StopEvent


class Ping(Event):
    i: int = 0


class Tick(Event):
    pass


class Counter(BaseModel):
    count: int = 0
    label: str = "default"


class ParentState(BaseModel):
    shared: str = "p"


class ChildState(ParentState):
    own: int = 7


class OtherState(BaseModel):
    z: int = 0


class Lock:
    """Stands for a value no JSON serializer can carry (but pickle can)."""

    def __init__(self) -> None:
        self.name = "lock"

    def __reduce__(self) -> Any:
        return (Lock, ())


class Counting(Workflow):
    """Counts its runs in a typed state (defaults for every field)."""

    @step
    async def s(self, ctx: Context[Counter], ev: StartEvent) -> StopEvent:
        async with ctx.store.edit_state() as state:
            state.count += 1
        return StopEvent(result=await ctx.store.get("count"))


class Untyped(Workflow):
    """Doubles the ``n`` found in the store and records who ran."""

    @step
    async def s(self, ctx: Context, ev: StartEvent) -> StopEvent:
        n = await ctx.store.get("n", default=0)
        await ctx.store.set("doubled", n * 2)
        return StopEvent(result=n)


# checklist 36
async def test_collect_events_returns_none_until_the_set_is_complete() -> None:
    returns: list[Any] = []

    class Gather(Workflow):
        @step
        async def start(self, ctx: Context, ev: StartEvent) -> Ping | None:
            for i in range(3):
                ctx.send_event(Ping(i=i))
            return None

        @step
        async def gather(self, ctx: Context, ev: Ping) -> StopEvent | None:
            assert ctx.collect_events(ev, []) == []
            got = ctx.collect_events(ev, [Ping] * 3)
            returns.append(got)
            return None if got is None else StopEvent(result=[p.i for p in got])

    assert sorted(await Gather().run()) == [0, 1, 2]
    assert returns[:2] == [None, None]
    assert len(returns) == 3 and len(returns[2]) == 3


async def test_collect_events_gathers_two_thousand_fanned_out_events() -> None:
    count = 2000

    class Many(Workflow):
        @step
        async def start(self, ctx: Context, ev: StartEvent) -> Ping | None:
            for i in range(count):
                ctx.send_event(Ping(i=i))
            return None

        @step(num_workers=8)
        async def gather(self, ctx: Context, ev: Ping) -> StopEvent | None:
            got = ctx.collect_events(ev, [Ping] * count)
            return None if got is None else StopEvent(result=[p.i for p in got])

    result = await Many(timeout=20).run()
    assert len(result) == count
    assert sorted(result) == list(range(count))


# checklist 47
async def test_store_paths_missing_values_defaults_and_nested_sets() -> None:
    class Paths(Workflow):
        @step
        async def s(self, ctx: Context, ev: StartEvent) -> StopEvent:
            outcome: dict[str, Any] = {}
            try:
                await ctx.store.get("missing")
            except ValueError as exc:
                outcome["error"] = str(exc)
            outcome["default"] = await ctx.store.get("missing", default=None)
            await ctx.store.set("a.b.c", 1)
            outcome["a"] = await ctx.store.get("a")
            outcome["deep"] = await ctx.store.get("a.b.c")
            return StopEvent(result=outcome)

    outcome = await Paths().run()
    assert outcome == {
        "error": "Path 'missing' not found in state",
        "default": None,
        "a": {"b": {"c": 1}},
        "deep": 1,
    }


# checklist 48
async def test_edit_state_commits_on_exit_reads_inside_see_old_value_and_writers_inside_raise() -> None:
    class Edits(Workflow):
        @step
        async def s(self, ctx: Context[Counter], ev: StartEvent) -> StopEvent:
            seen: dict[str, Any] = {}
            async with ctx.store.edit_state() as state:
                state.count = 5
                seen["inside"] = await ctx.store.get("count")
                try:
                    await ctx.store.set("count", 9)
                except RuntimeError as exc:
                    seen["writer"] = str(exc)
            seen["after"] = await ctx.store.get("count")
            return StopEvent(result=seen)

    seen = await Edits().run()
    assert seen["inside"] == 0
    assert seen["after"] == 5
    assert "writer called inside edit_state" in seen["writer"]


# checklist 49
async def test_concurrent_edit_state_increments_never_lose_an_update() -> None:
    class Increments(Workflow):
        @step
        async def start(self, ctx: Context[Counter], ev: StartEvent) -> Ping | None:
            for i in range(20):
                ctx.send_event(Ping(i=i))
            return None

        @step(num_workers=8)
        async def bump(self, ctx: Context[Counter], ev: Ping) -> Tick:
            async with ctx.store.edit_state() as state:
                before = state.count
                await asyncio.sleep(0)  # give the other workers a chance to interleave
                state.count = before + 1
            return Tick()

        @step
        async def gather(self, ctx: Context[Counter], ev: Tick) -> StopEvent | None:
            if ctx.collect_events(ev, [Tick] * 20) is None:
                return None
            return StopEvent(result=await ctx.store.get("count"))

    assert await Increments().run() == 20


# checklist 50
async def test_typed_state_store_returns_the_model_and_rejects_unknown_fields() -> None:
    class Typed(Workflow):
        @step
        async def s(self, ctx: Context[Counter], ev: StartEvent) -> StopEvent:
            seen: dict[str, Any] = {"state": await ctx.store.get_state()}
            async with ctx.store.edit_state() as state:
                seen["edited"] = type(state)
                state.label = "edited"
            try:
                await ctx.store.set("nope", 1)
            except ValueError as exc:
                seen["unknown"] = str(exc)
            seen["final"] = await ctx.store.get_state()
            return StopEvent(result=seen)

    seen = await Typed().run()
    assert seen["state"] == Counter()
    assert seen["edited"] is Counter
    assert "nope" in seen["unknown"]
    assert isinstance(seen["final"], Counter) and seen["final"].label == "edited"


# checklist 51
async def test_set_state_with_a_parent_model_merges_and_an_unrelated_model_raises() -> None:
    class Inherit(Workflow):
        @step
        async def s(self, ctx: Context[ChildState], ev: StartEvent) -> StopEvent:
            await ctx.store.set("own", 42)
            await ctx.store.set_state(ParentState(shared="new"))
            merged = await ctx.store.get_state()
            try:
                await ctx.store.set_state(OtherState())
            except ValueError as exc:
                return StopEvent(result=(merged, str(exc)))
            return StopEvent(result=(merged, None))

    merged, error = await Inherit().run()
    assert merged == ChildState(shared="new", own=42)
    assert error == "State must be of type ChildState or a parent type, got OtherState"


# checklist 52
async def test_store_values_set_before_the_run_are_seen_by_steps_and_step_writes_are_seen_after() -> None:
    workflow = Untyped()
    ctx: Context[Any] = Context(workflow)
    await ctx.store.set("n", 21)
    assert await workflow.run(ctx=ctx) == 21
    assert await ctx.store.get("doubled") == 42


# checklist 53
async def test_reusing_a_context_keeps_typed_state_across_runs() -> None:
    workflow = Counting()
    ctx: Context[Any] = Context(workflow)
    assert await workflow.run(ctx=ctx) == 1
    assert await workflow.run(ctx=ctx) == 2
    state = await ctx.store.get_state()
    assert isinstance(state, Counter)
    assert state == Counter(count=2, label="default")


# checklist 53
async def test_starting_a_second_run_on_a_live_context_raises() -> None:
    release = asyncio.Event()

    class Blocks(Workflow):
        @step
        async def s(self, ev: StartEvent) -> StopEvent:
            await release.wait()
            return StopEvent(result="first")

    workflow = Blocks()
    ctx: Context[Any] = Context(workflow)
    handler = workflow.run(ctx=ctx)
    with pytest.raises(ContextStateError, match="Cannot start a new run while context is already running"):
        workflow.run(ctx=ctx)
    release.set()
    assert await handler == "first"


class NoDefaults(BaseModel):
    required: int


async def test_typed_state_without_defaults_fails_when_the_run_starts() -> None:
    class Strict(Workflow):
        @step
        async def s(self, ctx: Context[NoDefaults], ev: StartEvent) -> StopEvent:
            return StopEvent()

    with pytest.raises(ValidationError):
        Strict().run()


async def test_steps_with_unrelated_state_types_fail_when_the_run_starts() -> None:
    class Mixed(Workflow):
        @step
        async def s(self, ctx: Context[Counter], ev: StartEvent) -> Tick:
            return Tick()

        @step
        async def t(self, ctx: Context[OtherState], ev: Tick) -> StopEvent:
            return StopEvent()

    with pytest.raises(ValueError, match="Multiple state types are not in a compatible inheritance hierarchy"):
        Mixed().run()


async def test_steps_on_one_state_inheritance_chain_share_the_most_derived_state() -> None:
    class Chain(Workflow):
        @step
        async def s(self, ctx: Context[ParentState], ev: StartEvent) -> Tick:
            await ctx.store.set("shared", "from parent step")
            return Tick()

        @step
        async def t(self, ctx: Context[ChildState], ev: Tick) -> StopEvent:
            return StopEvent(result=await ctx.store.get_state())

    assert await Chain().run() == ChildState(shared="from parent step", own=7)


# checklist 54
async def test_context_restored_from_json_carries_state_into_a_new_run() -> None:
    workflow = Counting()
    ctx: Context[Any] = Context(workflow)
    await workflow.run(ctx=ctx)
    payload = json.loads(json.dumps(ctx.to_dict()))
    restored = Context.from_dict(workflow, payload)
    assert await workflow.run(ctx=restored) == 2


# checklist 55
async def test_unserializable_state_needs_the_pickle_serializer() -> None:
    workflow = Untyped()
    ctx: Context[Any] = Context(workflow)
    await ctx.store.set("lock", Lock())
    await workflow.run(ctx=ctx)
    with pytest.raises(ValueError):
        ctx.to_dict()
    payload = ctx.to_dict(serializer=PickleSerializer())
    restored = Context.from_dict(workflow, json.loads(json.dumps(payload)), serializer=PickleSerializer())
    lock = await restored.store.get("lock")
    assert isinstance(lock, Lock) and lock.name == "lock"
    assert await restored.store.get("doubled") == 0


# checklist 56
@pytest.mark.parametrize(
    "payload",
    [
        {"version": 99},
        {"version": 2, "state": {"store_type": "in_memory"}, "is_running": False},
        {"version": 2, "state": {}, "workers": "not a mapping"},
        {"version": 2, "state": {}, "workers": {"s": {"queue": [{"event": "{not json"}]}}},
    ],
)
def test_malformed_or_future_payloads_raise_context_serde_error(payload: dict[str, Any]) -> None:
    with pytest.raises(ContextSerdeError):
        Context.from_dict(Untyped(), payload)


# checklist 57
def test_sending_on_a_context_before_its_run_raises() -> None:
    with pytest.raises(ContextStateError, match=r"send_event\(\) called before workflow started"):
        Context(Untyped()).send_event(Ping())


def test_streaming_from_a_context_before_its_run_raises_at_the_call() -> None:
    # At the call, as the reference does, not at the first iteration.
    with pytest.raises(ContextStateError, match=r"^stream_events requires a running workflow. Call workflow.run\(\) first.$"):
        Context(Untyped()).stream_events()


async def test_is_running_inside_a_step_is_true_with_the_references_deprecation_warning() -> None:
    class Asks(Workflow):
        @step
        async def s(self, ctx: Context, ev: StartEvent) -> StopEvent:
            return StopEvent(result=ctx.is_running)

    with pytest.warns(DeprecationWarning, match="^is_running called from within a step; the workflow is always running"):
        assert await Asks().run() is True


# checklist 57
async def test_handler_only_methods_raise_inside_steps() -> None:
    class Misuse(Workflow):
        @step
        async def s(self, ctx: Context, ev: StartEvent) -> StopEvent:
            errors = []
            try:
                ctx.to_dict()
            except ContextStateError as exc:
                errors.append(str(exc))
            try:
                async for _ in ctx.stream_events():
                    pass
            except ContextStateError as exc:
                errors.append(str(exc))
            return StopEvent(result=errors)

    errors = await Misuse().run()
    assert len(errors) == 2
    assert all("only available from handler code, not from within steps" in e for e in errors)


# checklist 58
async def test_get_step_context_outside_a_step_raises() -> None:
    with pytest.raises(WorkflowRuntimeError, match="may only be called from within a step function"):
        Context.get_step_context()


def _helper_called_by_a_step(note: str) -> None:
    ctx = Context.get_step_context()
    ctx.write_event_to_stream(Ping(i=len(note)))


# checklist 58
async def test_get_step_context_inside_a_step_gives_a_usable_context_even_from_threads() -> None:
    threads: list[int] = []

    class Helpers(Workflow):
        @step
        async def first(self, ev: StartEvent) -> Tick:
            _helper_called_by_a_step("abc")
            await Context.get_step_context().store.set("seen", True)
            return Tick()

        @step
        def second(self, ev: Tick) -> StopEvent:  # no ctx parameter, runs in a thread
            threads.append(threading.get_ident())
            _helper_called_by_a_step("abcdef")
            return StopEvent(result="ok")

    handler = Helpers().run()
    written = [ev async for ev in handler.stream_events()]
    assert await handler == "ok"
    assert [ev.i for ev in written if isinstance(ev, Ping)] == [3, 6]
    assert await handler.ctx.store.get("seen") is True
    assert threads and threads[0] != threading.get_ident()
