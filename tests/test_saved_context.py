"""Saved contexts (``ctx.to_dict()``) under corruption and hostile input (issue 16).

Real paused runs are saved, then every field is corrupted in turn (types, missing and
extra keys, versions, huge values). Each corrupted payload must be refused by
``Context.from_dict`` with a ``ContextSerdeError`` naming the field, or load and finish
exactly as the intact payload does; never a bare ``TypeError``, never a hang.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import re
import sys
import threading
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from workflows import Context, Workflow, step
from workflows.context import JsonSerializer, PickleSerializer
from workflows.errors import (
    ContextResumedTwiceWarning,
    ContextSerdeError,
    WorkflowCancelledByUser,
    WorkflowTimeoutError,
)
from workflows.events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
)

INVALID = "Context dict specified in an invalid format"


# --- workflows that pause ------------------------------------------------------------------


class Measure(Event):
    value: float
    label: str = ""


class Verdict(HumanResponseEvent):
    kind: str


class Part(Event):
    n: int


class Last(Event):
    pass


class Tally(BaseModel):
    seen: int = 0
    ratio: float = 0.0


class Measuring(Workflow):
    """A waiter with requirements, holding an event with a NaN, and a typed state with an inf."""

    @step
    async def start(self, ctx: Context[Tally], ev: StartEvent) -> Measure:
        async with ctx.store.edit_state() as tally:
            tally.ratio = math.inf
        return Measure(value=math.nan, label="probe", spread=-math.inf)

    @step
    async def judge(self, ctx: Context[Tally], ev: Measure) -> StopEvent:
        async with ctx.store.edit_state() as tally:
            tally.seen += 1
        verdict = await ctx.wait_for_event(
            Verdict, waiter_event=InputRequiredEvent(prefix="judge?"), requirements={"kind": "final"}, timeout=600
        )
        state = await ctx.store.get_state()
        return StopEvent(
            result={
                "nan": math.isnan(ev.value),
                "spread": ev.spread,
                "label": ev.label,
                "verdict": verdict.response,
                "seen": state.seen,
                "ratio": state.ratio,
            }
        )


class Asking(Workflow):
    """Returns an InputRequiredEvent; the answer is a new event (no waiter is saved)."""

    @step
    async def ask(self, ctx: Context, ev: StartEvent) -> InputRequiredEvent:
        await ctx.store.set("question", ev.question)
        await ctx.store.set("weights", [0.5, math.nan])
        return InputRequiredEvent(prefix=ev.question)

    @step
    async def answer(self, ctx: Context, ev: HumanResponseEvent) -> StopEvent:
        weights = await ctx.store.get("weights")
        return StopEvent(result={"q": await ctx.store.get("question"), "a": ev.response, "w": repr(weights)})


class Gathering(Workflow):
    """Two parts collected, the last one still missing when the run is saved."""

    @step
    async def fan(self, ctx: Context, ev: StartEvent) -> Part:
        ctx.send_event(Part(n=1))
        return Part(n=2)

    @step
    async def join(self, ctx: Context, ev: Part | Last) -> StopEvent | None:
        got = ctx.collect_events(ev, [Part, Part, Last])
        if got is None:
            parts = await ctx.store.get("parts", default=0) + 1
            await ctx.store.set("parts", parts)
            if parts == 2:
                # Saved here, this invocation is in progress: the snapshot queues it again.
                ctx.write_event_to_stream(InputRequiredEvent(prefix="last part?"))
            return None
        return StopEvent(result=sorted(type(e).__name__ + str(getattr(e, "n", "")) for e in got))


@dataclass(kw_only=True)
class Case:
    """A paused run: how to make it, how to finish it once resumed, and its result."""

    name: str
    workflow: Callable[[], Workflow]
    start: dict[str, Any]
    answer: Callable[[], Event]
    pause_on: type[Event]


CASES = [
    Case(name="wait", workflow=lambda: Measuring(timeout=10), start={}, answer=lambda: Verdict(response="ok", kind="final"), pause_on=InputRequiredEvent),
    Case(name="ask", workflow=lambda: Asking(timeout=10), start={"question": "q?"}, answer=lambda: HumanResponseEvent(response="a"), pause_on=InputRequiredEvent),
    Case(name="collect", workflow=lambda: Gathering(timeout=10, disable_validation=True), start={}, answer=Last, pause_on=InputRequiredEvent),
]


async def _pause(case: Case) -> dict[str, Any]:
    handler = case.workflow().run(**case.start)
    payload: dict[str, Any] = {}
    async for ev in handler.stream_events():
        if isinstance(ev, case.pause_on):
            payload = handler.ctx.to_dict()
            await handler.cancel_run()
    with pytest.raises(WorkflowCancelledByUser):
        await handler
    assert payload["is_running"] is True
    # Strict JSON: the saved context must travel through any JSON parser.
    return json.loads(json.dumps(payload, allow_nan=False))


async def _resume(case: Case, payload: dict[str, Any]) -> Any:
    workflow = case.workflow()
    handler = workflow.run(ctx=Context.from_dict(workflow, payload))
    handler.ctx.send_event(case.answer())
    return await asyncio.wait_for(handler, 20)


PAYLOADS: dict[str, dict[str, Any]] = {}
RESULTS: dict[str, Any] = {}


def _saved(case: Case) -> tuple[dict[str, Any], Any]:
    if case.name not in PAYLOADS:
        payload = asyncio.run(_pause(case))
        PAYLOADS[case.name] = payload
        RESULTS[case.name] = asyncio.run(_resume(case, _fresh(payload)))
    return _fresh(PAYLOADS[case.name]), RESULTS[case.name]


def _fresh(payload: dict[str, Any]) -> dict[str, Any]:
    # A new session id per use, so resuming copies is not a second resume of one payload.
    copied = copy.deepcopy(payload)
    copied["session_id"] = uuid.uuid4().hex
    return copied


# --- the intact round trips -----------------------------------------------------------------


def test_intact_saved_contexts_resume_with_nan_and_inf_intact() -> None:
    _, wait_result = _saved(CASES[0])
    assert wait_result == {
        "nan": True, "spread": -math.inf, "label": "probe", "verdict": "ok", "seen": 2, "ratio": math.inf,
    }  # fmt: skip
    _, ask_result = _saved(CASES[1])
    assert ask_result == {"q": "q?", "a": "a", "w": "[0.5, nan]"}
    _, collect_result = _saved(CASES[2])
    assert collect_result == ["Last", "Part1", "Part2"]


def test_saved_context_has_version_id_and_resume_count() -> None:
    payload, _ = _saved(CASES[0])
    assert payload["version"] == 4 and payload["resume_count"] == 0 and payload["session_id"]
    waiter = payload["workers"]["judge"]["collected_waiters"][0]
    assert json.loads(waiter["requirements"]) == {"kind": "final"}


# --- corruption, property style -------------------------------------------------------------

# Dicts whose keys are data (step names, state keys, ...), not schema fields.
DATA_MAPS = {"workers", "trace_context", "_data", "resolved", "lineage", "collected_events"}
SERIALIZED = {"event", "requirements", "state_data"}  # keys whose string value is a serializer string
ALTERNATIVES: list[Any] = [None, True, 0, -1, 2.5, "x", [], {}, ["ok"], {"k": 1}]


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    out = [(path, value)]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_nodes(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.extend(_nodes(item, (*path, index)))
    return out


def _dotted(path: tuple[Any, ...]) -> str:
    text = ""
    for key in path:
        text = f"{text}[{key}]" if isinstance(key, int) else (f"{text}.{key}" if text else str(key))
    return text


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _parent(payload: dict[str, Any], path: tuple[Any, ...]) -> Any:
    node: Any = payload
    for key in path[:-1]:
        node = node[key]
    return node


def _in_data_map(path: tuple[Any, ...]) -> bool:
    return len(path) >= 2 and path[-2] in DATA_MAPS


@dataclass(kw_only=True)
class Mutation:
    kind: str
    path: tuple[Any, ...]
    apply: Callable[[dict[str, Any]], None]
    may_load: bool  # a valid but equivalent payload may come out of it


def _mutations(payload: dict[str, Any]) -> list[Mutation]:
    found: list[Mutation] = []
    for path, value in _nodes(payload):
        if not path or path == ("session_id",):
            continue
        parent_is_data = _in_data_map(path)

        def setter(new: Any, path: tuple[Any, ...] = path) -> Callable[[dict[str, Any]], None]:
            return lambda p: _parent(p, path).__setitem__(path[-1], new)

        for alternative in ALTERNATIVES:
            if _kind(alternative) != _kind(value):
                # None is valid for optional fields; other types never are.
                # None is valid for optional fields, and an empty map can stand for a None one.
                may_load = alternative is None or (value is None and alternative in ({}, []))
                found.append(Mutation(kind="retype", path=path, apply=setter(alternative), may_load=may_load))
        if isinstance(path[-1], str) and not parent_is_data:
            found.append(Mutation(kind="delete", path=path, apply=lambda p, path=path: _parent(p, path).pop(path[-1]), may_load=False))
        if isinstance(value, dict):
            extra = (*path, "unexpected")
            data_map = path[-1] in DATA_MAPS
            found.append(Mutation(kind="extra", path=extra, apply=setter({"k": 1}, extra), may_load=False))
            if data_map:
                found.append(Mutation(kind="extra", path=extra, apply=setter(1, extra), may_load=True))
                found.append(Mutation(kind="extra", path=extra, apply=setter("1", extra), may_load=True))
        if isinstance(value, str):
            found.append(Mutation(kind="huge", path=path, apply=setter("y" * 20_000), may_load=False))
            if path[-1] in SERIALIZED or (len(path) >= 2 and path[-2] in ("_data", "resolved")):
                found.append(Mutation(kind="garble", path=path, apply=setter(value[: len(value) // 2] + "\x00{"), may_load=False))
        if _kind(value) == "number" and path[-1] != "version":
            for huge in (10**30, 1e308, -1e308, -1):
                # A huge remaining time is valid; a huge elapsed time times the run out.
                seconds = path[-1] in ("remaining", "elapsed_alive") and huge > 0
                found.append(Mutation(kind="huge", path=path, apply=setter(huge), may_load=seconds))
    for version in (-1, 5, 99, "4", 4.5, True, None, 0, 1, 2, 3):
        found.append(Mutation(kind="version", path=("version",), apply=lambda p, v=version: p.__setitem__("version", v), may_load=version in (0, 1, 2)))
    return found


MUTATIONS = {case.name: _mutations(_saved(case)[0]) for case in CASES}


def _check(case: Case, mutation: Mutation) -> None:
    payload, expected = _saved(case)
    mutation.apply(payload)
    workflow = case.workflow()
    try:
        Context.from_dict(workflow, payload)
    except ContextSerdeError as exc:
        message = str(exc)
        assert message.startswith(INVALID), message
        where = "version" if mutation.kind == "version" and not mutation.may_load else _dotted(mutation.path)
        assert where in message or mutation.kind == "version", (mutation.kind, where, message[:400])
        assert "y" * 300 not in message and len(message) < 3_000
        return
    assert mutation.may_load or mutation.path[-1] in ("lineage", "unexpected") or _in_data_map(mutation.path), (
        f"{mutation.kind} at {_dotted(mutation.path)} was accepted"
    )
    try:
        result = asyncio.run(_resume(case, payload))
    except WorkflowTimeoutError:
        assert mutation.path == ("elapsed_alive",), _dotted(mutation.path)
        return
    assert result == expected, (mutation.kind, _dotted(mutation.path))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_corrupted_field_is_refused_by_name_or_changes_nothing(case: Case, data: st.DataObject) -> None:
    mutation = data.draw(st.sampled_from(MUTATIONS[case.name]), label="mutation")
    _check(case, mutation)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_field_deleted_or_retyped_once(case: Case) -> None:
    # Exhaustive over missing keys and wrong types (the property test samples the rest).
    for mutation in MUTATIONS[case.name]:
        if mutation.kind == "delete" or (mutation.kind == "retype" and _kind(_value_at(case, mutation.path)) != "dict"):
            _check(case, mutation)


def _value_at(case: Case, path: tuple[Any, ...]) -> Any:
    node: Any = PAYLOADS[case.name]
    for key in path:
        node = node[key]
    return node


# --- the examples -------------------------------------------------------------------


def _waiter_payload() -> dict[str, Any]:
    return _saved(CASES[0])[0]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("seq", "x", "collected_waiters[0].seq: Input should be a valid integer"),
        ("remaining", "10", "collected_waiters[0].remaining: Input should be a valid number"),
        ("requirements", ["ok"], "collected_waiters[0].requirements: Input should be a valid string"),
        ("waiter_id", 7, "collected_waiters[0].waiter_id: Input should be a valid string"),
    ],
)
def test_corrupted_waiter_fields_are_refused_by_path(field: str, value: Any, expected: str) -> None:
    payload = _waiter_payload()
    payload["workers"]["judge"]["collected_waiters"][0][field] = value
    with pytest.raises(ContextSerdeError, match=rf"^{INVALID}: workers\.judge\.{re.escape(expected)}"):
        Context.from_dict(Measuring(), payload)


def test_requirements_that_are_not_an_object_are_refused() -> None:
    payload = _waiter_payload()
    payload["workers"]["judge"]["collected_waiters"][0]["requirements"] = '["ok"]'
    with pytest.raises(ContextSerdeError, match=r"requirements: expected an object with string keys, got a list"):
        Context.from_dict(Measuring(), payload)


def test_unknown_step_is_refused_at_load_not_left_idle() -> None:
    payload = _waiter_payload()
    payload["workers"]["no_such_step"] = payload["workers"].pop("judge")
    with pytest.raises(ContextSerdeError, match="workers.no_such_step: Measuring has no step named 'no_such_step'"):
        Context.from_dict(Measuring(), payload)


def test_an_event_the_step_does_not_accept_is_refused() -> None:
    payload = _waiter_payload()
    waiter = payload["workers"]["judge"]["collected_waiters"][0]
    waiter["event"] = JsonSerializer().serialize(StartEvent())
    with pytest.raises(ContextSerdeError, match=r"collected_waiters\[0\]\.event: step judge does not accept a StartEvent"):
        Context.from_dict(Measuring(), payload)


def test_a_value_that_is_not_an_event_is_refused_where_an_event_belongs() -> None:
    payload = _waiter_payload()
    payload["workers"]["judge"]["collected_waiters"][0]["event"] = "[1, 2]"
    with pytest.raises(ContextSerdeError, match=r"\[0\]\.event: expected a serialized event, got a list"):
        Context.from_dict(Measuring(), payload)


@pytest.mark.parametrize("elapsed", [-1e9, "1", None, math.nan, math.inf])
def test_elapsed_time_must_be_a_finite_non_negative_number(elapsed: Any) -> None:
    payload = _waiter_payload()
    payload["elapsed_alive"] = elapsed
    with pytest.raises(ContextSerdeError, match="^Context dict specified in an invalid format: elapsed_alive: "):
        Context.from_dict(Measuring(), payload)


def test_elapsed_time_beyond_the_timeout_times_the_run_out_instead_of_disabling_it() -> None:
    payload = _waiter_payload()
    payload["elapsed_alive"] = 1e9

    async def resume_without_answer() -> None:
        workflow = Measuring(timeout=60)
        # Far less than the 60 s timeout: the saved elapsed time counts.
        await asyncio.wait_for(workflow.run(ctx=Context.from_dict(workflow, payload)), 10)

    with pytest.raises(WorkflowTimeoutError):
        asyncio.run(resume_without_answer())


def test_waiter_and_event_types_from_elsewhere_are_refused_by_name() -> None:
    payload = _waiter_payload()
    waiter = payload["workers"]["judge"]["collected_waiters"][0]
    waiter["event_type"] = "this.Nope"
    with pytest.raises(ContextSerdeError, match=r"event_type: Type 'this.Nope' is not allowed .*allowed_types"):
        Context.from_dict(Measuring(), payload)


def test_an_allow_listed_type_resolves_in_a_saved_context() -> None:
    class Outside(BaseModel):
        v: int

    payload = _waiter_payload()
    payload["state"] = {}
    ctx = Context(Asking())
    asyncio.run(ctx.store.set("outside", Outside(v=1)))
    saved = ctx.to_dict()
    with pytest.raises(ContextSerdeError, match=r"state\.state_data\._data\.outside: Type '.*Outside' is not allowed"):
        Context.from_dict(Asking(), saved)
    restored = Context.from_dict(Asking(), saved, serializer=JsonSerializer(allowed_types=[Outside]))
    assert asyncio.run(restored.store.get("outside")) == Outside(v=1)


def test_a_saved_context_naming_a_module_with_import_time_effects_does_not_import_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "side_effect_module.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\nclass Evil:\n    pass\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    hostile = json.dumps({"__is_pydantic": True, "value": {}, "qualified_name": "side_effect_module.Evil"})
    for place in ("event", "state", "expected"):
        payload, _ = _saved(CASES[2]) if place == "expected" else _saved(CASES[0])
        if place == "event":
            payload["workers"]["judge"]["collected_waiters"][0]["event"] = hostile
        elif place == "state":
            payload["state"] = {"store_type": "in_memory", "state_type": "Evil", "state_module": "side_effect_module", "state_data": hostile}
        else:
            buffer = next(iter(payload["workers"]["join"]["collected_events"].values()))
            buffer["expected"][0] = "side_effect_module.Evil"
        with pytest.raises(ContextSerdeError, match="'side_effect_module.Evil' is not allowed"):
            Context.from_dict(Gathering(disable_validation=True) if place == "expected" else Measuring(), payload)
    assert not marker.exists() and "side_effect_module" not in sys.modules


@pytest.mark.parametrize("version", [5, 99])
def test_a_newer_version_is_refused_with_the_supported_one(version: int) -> None:
    payload = _waiter_payload()
    payload["version"] = version
    with pytest.raises(ContextSerdeError, match=f"version: version {version} is newer than this engine reads \\(up to 4\\)"):
        Context.from_dict(Measuring(), payload)


def test_a_version_2_payload_is_upgraded_and_resumes() -> None:
    payload = _waiter_payload()
    payload["version"] = 2
    del payload["resume_count"]
    waiter = payload["workers"]["judge"]["collected_waiters"][0]
    waiter["requirements"] = json.loads(waiter["requirements"])
    del payload["workers"]["judge"]["collected_events"]
    payload["stream_seq"] = 4  # keys of other engines' version 2 are ignored
    ctx = Context.from_dict(Measuring(), payload)
    assert ctx.resume_count == 0
    assert asyncio.run(_resume(CASES[0], payload)) == RESULTS["wait"]


def test_in_progress_work_of_another_engine_is_refused() -> None:
    payload = _waiter_payload()
    payload["version"] = 2
    payload["workers"]["judge"]["collected_waiters"][0]["requirements"] = None
    payload["workers"]["judge"]["in_progress"] = [{"event": "{}"}]
    with pytest.raises(ContextSerdeError, match="workers.judge.in_progress: in-progress work saved by another engine"):
        Context.from_dict(Measuring(), payload)


def test_a_payload_that_is_not_a_dict_is_refused() -> None:
    with pytest.raises(ContextSerdeError, match="must be a dict"):
        Context.from_dict(Measuring(), [1, 2])  # type: ignore[arg-type]


def test_a_deeply_nested_payload_is_refused_without_recursion_errors() -> None:
    payload = _waiter_payload()
    deep: Any = {}
    for _ in range(5_000):
        deep = {"k": deep}
    payload["trace_context"] = deep
    with pytest.raises(ContextSerdeError, match="trace_context"):
        Context.from_dict(Measuring(), payload)
    payload = _waiter_payload()
    payload["workers"]["judge"]["collected_waiters"][0]["event"] = "[" * 5_000 + "]" * 5_000
    with pytest.raises(ContextSerdeError, match=r"collected_waiters\[0\]\.event: the value is nested"):
        Context.from_dict(Measuring(), payload)


# --- saving: errors name the key, never the value ---------------------------------------------


class Secret:
    def __repr__(self) -> str:
        return "Secret(sk-live-do-not-print)"


async def test_to_dict_errors_name_key_and_type_but_not_the_value() -> None:
    ctx = Context(Asking())
    await ctx.store.set("token", Secret())
    with pytest.raises(ValueError) as info:
        ctx.to_dict()
    message = str(info.value)
    assert "key token" in message and "Secret" in message and "sk-live" not in message


async def test_to_dict_reports_deep_and_cyclic_state_values_by_key() -> None:
    deep: Any = 0
    for _ in range(10_000):
        deep = [deep]
    ctx = Context(Asking())
    await ctx.store.set("deep", deep)
    with pytest.raises(ValueError, match="key deep: .*nested deeper than 200 levels"):
        ctx.to_dict()
    cyclic: dict[str, Any] = {}
    cyclic["me"] = cyclic
    ctx = Context(Asking())
    await ctx.store.set("cyclic", cyclic)
    with pytest.raises(ValueError, match=r"key cyclic: .*reference cycle"):
        ctx.to_dict()


# --- resuming twice ---------------------------------------------------------------------------


def test_a_second_resume_of_one_saved_context_warns_once_and_is_detectable() -> None:
    payload, expected = _saved(CASES[0])
    first = Context.from_dict(Measuring(), payload)
    assert first.resume_id == f"{payload['session_id']}:0"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ContextResumedTwiceWarning)
        assert asyncio.run(_resume(CASES[0], copy.deepcopy(payload))) == expected
    with pytest.warns(ContextResumedTwiceWarning, match="resumed a second time"):
        assert asyncio.run(_resume(CASES[0], copy.deepcopy(payload))) == expected
    with warnings.catch_warnings():
        warnings.simplefilter("error", ContextResumedTwiceWarning)  # once, not on every further resume
        assert asyncio.run(_resume(CASES[0], copy.deepcopy(payload))) == expected


async def test_a_payload_saved_after_a_resume_carries_the_next_resume_count() -> None:
    payload = _fresh(await _pause(CASES[0]))
    workflow = Measuring(timeout=10)
    ctx = Context.from_dict(workflow, payload)
    assert ctx.resume_count == 0 and ctx.is_running
    handler = workflow.run(ctx=ctx)
    assert ctx.resume_id is None  # running now: nothing left to resume
    second = handler.ctx.to_dict()
    assert second["resume_count"] == 1 and second["session_id"] == payload["session_id"]
    handler.ctx.send_event(Verdict(response="ok", kind="final"))
    await handler
    assert Context.from_dict(Measuring(), json.loads(json.dumps(second))).resume_id == f"{payload['session_id']}:1"


def test_a_finished_context_has_nothing_to_resume() -> None:
    ctx = Context(Asking())
    assert ctx.resume_id is None
    assert Context.from_dict(Asking(), ctx.to_dict()).resume_id is None



class _Unpicklable:
    """A requirement value no serializer can save (it holds a lock); equal to any of its kind."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Unpicklable)

    __hash__ = None  # type: ignore[assignment]


class Key(Event):
    key: Any


class LockedWait(Workflow):
    @step
    async def hold(self, ctx: Context, ev: StartEvent) -> StopEvent:
        got = await ctx.wait_for_event(
            Key, waiter_event=InputRequiredEvent(prefix="key?"), waiter_id="key", requirements={"key": _Unpicklable()}
        )
        return StopEvent(result=type(got.key).__name__)


@pytest.mark.parametrize("serializer", [JsonSerializer(), PickleSerializer()], ids=["json", "pickle"])
async def test_a_wait_whose_requirements_cannot_be_saved_is_saved_without_them(
    serializer: JsonSerializer | PickleSerializer, caplog: pytest.LogCaptureFixture
) -> None:
    # Saving does not fail: the wait is kept, its requirements are dropped with a warning naming
    # them, and after a resume the next event of the awaited type answers it.
    wf = LockedWait()
    handler = wf.run()
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            break
    with caplog.at_level("WARNING", logger="workflows.runtime"):
        saved = handler.ctx.to_dict(serializer=serializer)
    await handler.cancel_run()
    with pytest.raises(WorkflowCancelledByUser):
        await handler
    assert "workers.hold.collected_waiters[0].requirements of wait 'key' could not be saved" in caplog.text
    assert "any Key answers it" in caplog.text

    resumed = wf.run(ctx=Context.from_dict(wf, saved, serializer=serializer))
    resumed.ctx.send_event(Key(key="plain"))
    assert await asyncio.wait_for(resumed, timeout=10) == "str"
