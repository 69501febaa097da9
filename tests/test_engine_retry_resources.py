"""Retry policies and resources inside real workflow runs."""

from __future__ import annotations

import json
import threading
from datetime import timezone
from pathlib import Path
from typing import Annotated, Any

import pydantic
import pytest

from workflows import Context, Workflow, step
from workflows.errors import WorkflowValidationError
from workflows.events import Event, StartEvent, StopEvent, WorkflowFailedEvent
from workflows.resource import Resource, ResourceConfig, ResourceManager
from workflows.retry_policy import (
    ConstantDelayRetryPolicy,
    RetryInfo,
    retry_if_exception_type,
    retry_policy,
    stop_after_attempt,
    wait_fixed,
)

NO_WAIT_THREE_ATTEMPTS = retry_policy(wait=wait_fixed(0), stop=stop_after_attempt(3))


class Middle(Event):
    pass


class Settings(pydantic.BaseModel):
    model: str
    temperature: float = 0.0


# --------------------------------------------------------------------------- retries


async def test_step_that_fails_twice_then_succeeds_sees_its_retry_info() -> None:
    seen: list[RetryInfo] = []

    class Flaky(Workflow):
        @step(retry_policy=NO_WAIT_THREE_ATTEMPTS)
        async def work(self, ctx: Context, ev: StartEvent) -> StopEvent:
            info = ctx.retry_info()
            seen.append(info)
            if info.retry_number < 2:
                raise ValueError(f"fail {info.retry_number}")
            return StopEvent(result="done")

    assert await Flaky().run() == "done"
    assert [i.retry_number for i in seen] == [0, 1, 2]
    assert seen[0].last_exception is None and seen[0].last_failed_at is None
    assert [str(i.last_exception) for i in seen[1:]] == ["fail 0", "fail 1"]
    assert all(i.last_failed_at is not None and i.last_failed_at.tzinfo == timezone.utc for i in seen[1:])
    assert seen[2].elapsed_seconds >= seen[1].elapsed_seconds >= 0.0


async def test_step_that_always_fails_runs_three_times_and_raises_the_last_error() -> None:
    calls = 0

    class AlwaysFails(Workflow):
        @step(retry_policy=NO_WAIT_THREE_ATTEMPTS)
        async def work(self, ev: StartEvent) -> StopEvent:
            nonlocal calls
            calls += 1
            raise ValueError(f"fail {calls}")

    handler = AlwaysFails().run()
    events = [ev async for ev in handler.stream_events()]
    with pytest.raises(ValueError, match="^fail 3$"):
        await handler
    assert calls == 3
    assert isinstance(events[-1], WorkflowFailedEvent)
    assert events[-1].attempts == 3 and events[-1].step_name == "work"


async def test_retry_condition_that_rejects_the_error_fails_at_once() -> None:
    calls = 0

    class OnlyKeyErrors(Workflow):
        @step(retry_policy=retry_policy(retry=retry_if_exception_type(KeyError), wait=wait_fixed(0)))
        async def work(self, ev: StartEvent) -> StopEvent:
            nonlocal calls
            calls += 1
            raise ValueError("not retried")

    with pytest.raises(ValueError, match="not retried"):
        await OnlyKeyErrors().run()
    assert calls == 1


async def test_custom_three_argument_policy_is_honoured() -> None:
    calls = 0

    class TwoTries:
        def next(self, elapsed_time: float, attempts: int, error: Exception) -> float | None:
            return 0 if attempts < 2 else None

    class Custom(Workflow):
        @step(retry_policy=TwoTries())  # type: ignore[call-overload]  # old 3-argument policies work at runtime
        async def work(self, ev: StartEvent) -> StopEvent:
            nonlocal calls
            calls += 1
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await Custom().run()
    assert calls == 2


async def test_policy_that_raises_fails_the_run_with_its_own_error() -> None:
    class BrokenPolicy:
        def next(self, elapsed_time: float, attempts: int, error: Exception, *, seed: int | None = None) -> float:
            raise LookupError("policy bug")

    class UsesBroken(Workflow):
        @step(retry_policy=BrokenPolicy())
        async def work(self, ev: StartEvent) -> StopEvent:
            raise ValueError("step error")

    with pytest.raises(LookupError, match="policy bug") as caught:
        await UsesBroken().run()
    assert isinstance(caught.value.__cause__, ValueError)


async def test_deprecated_constant_delay_policy_drives_a_step() -> None:
    calls = 0
    with pytest.warns(DeprecationWarning):
        policy = ConstantDelayRetryPolicy(maximum_attempts=2, delay=0)

    class Legacy(Workflow):
        @step(retry_policy=policy)
        async def work(self, ev: StartEvent) -> StopEvent:
            nonlocal calls
            calls += 1
            raise ValueError("again")

    with pytest.raises(ValueError, match="again"):
        await Legacy().run()
    assert calls == 2


# --------------------------------------------------------------------------- resources


async def test_cached_resource_is_shared_by_steps_and_runs_of_one_instance() -> None:
    built: list[object] = []

    def make_client() -> object:
        client = object()
        built.append(client)
        return client

    seen: list[object] = []

    class Uses(Workflow):
        @step
        async def first(self, ev: StartEvent, client: Annotated[object, Resource(make_client)]) -> Middle:
            seen.append(client)
            return Middle()

        @step
        async def second(self, ev: Middle, client: Annotated[object, Resource(make_client)]) -> StopEvent:
            seen.append(client)
            return StopEvent()

    workflow = Uses()
    await workflow.run()
    await workflow.run()
    assert len(built) == 1 and seen == [built[0]] * 4
    await Uses().run()
    assert len(built) == 2 and seen[-1] is built[1]


async def test_uncached_resource_is_new_per_invocation_and_shared_within_it() -> None:
    pairs: list[tuple[object, object]] = []

    class Scratch(Workflow):
        @step
        async def work(
            self,
            ev: StartEvent,
            a: Annotated[list[int], Resource(list, cache=False)],
            b: Annotated[list[int], Resource(list, cache=False)],
        ) -> StopEvent:
            pairs.append((a, b))
            return StopEvent()

    workflow = Scratch()
    await workflow.run()
    await workflow.run()
    assert pairs[0][0] is pairs[0][1]
    assert pairs[1][0] is not pairs[0][0]


async def test_async_factory_chain_and_sync_step(tmp_path: Path) -> None:
    config_file = tmp_path / "c.json"
    config_file.write_text(json.dumps({"llm": {"model": "gpt-test"}}))

    async def make_llm(settings: Annotated[Settings, ResourceConfig(str(config_file), path_selector="llm")]) -> str:
        return f"llm({settings.model})"

    threads: list[int] = []

    class Chained(Workflow):
        @step
        def work(
            self,
            ev: StartEvent,
            llm: Annotated[str, Resource(make_llm)],
            settings: Annotated[Settings, ResourceConfig(str(config_file), path_selector="llm")],
        ) -> StopEvent:
            threads.append(threading.get_ident())
            return StopEvent(result=(llm, settings))

    assert await Chained().run() == ("llm(gpt-test)", Settings(model="gpt-test"))
    assert threads != [threading.get_ident()]


async def test_preseeded_resource_manager_replaces_the_factory() -> None:
    def make_client() -> str:
        raise AssertionError("the pre-seeded value should be used")

    class Uses(Workflow):
        @step
        async def work(self, ev: StartEvent, client: Annotated[str, Resource(make_client)]) -> StopEvent:
            return StopEvent(result=client)

    manager = ResourceManager()
    await manager.set(make_client.__qualname__, "fake client")
    assert await Uses(resource_manager=manager).run() == "fake client"


async def test_failing_factory_is_a_step_failure_that_can_be_retried() -> None:
    attempts = 0

    def flaky_client() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("not yet")
        return "client"

    class Uses(Workflow):
        @step(retry_policy=NO_WAIT_THREE_ATTEMPTS)
        async def work(self, ev: StartEvent, client: Annotated[str, Resource(flaky_client)]) -> StopEvent:
            return StopEvent(result=client)

    assert await Uses().run() == "client"
    assert attempts == 2


# --------------------------------------------------------------------------- validation


def test_missing_config_file_fails_validation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    class NeedsConfig(Workflow):
        @step
        async def work(self, ev: StartEvent, cfg: Annotated[Settings, ResourceConfig("missing.json")]) -> StopEvent:
            return StopEvent()

    with pytest.raises(WorkflowValidationError) as caught:
        NeedsConfig().validate()
    assert str(caught.value) == (
        "Resource config validation failed:\n  - In step 'work', parameter 'cfg': No such file: missing.json"
    )


def test_validate_resources_reports_a_cycle() -> None:
    def make_a(b: Annotated[Any, Resource(make_b)]) -> Any:
        return b

    def make_b(a: Annotated[Any, Resource(make_a)]) -> Any:
        return a

    class Cyclic(Workflow):
        @step
        async def work(self, ev: StartEvent, a: Annotated[Any, Resource(make_a)]) -> StopEvent:
            return StopEvent()

    workflow = Cyclic()
    assert workflow.validate() is False  # resources are not built by default
    with pytest.raises(WorkflowValidationError, match="^Resource validation failed: .*Circular resource dependency detected: "):
        workflow.validate(validate_resources=True)
