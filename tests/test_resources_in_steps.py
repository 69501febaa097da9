"""Conformance: resources injected into steps, their caching and config files (API.md §11, §4.4 item 6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import BaseModel

from workflows import Workflow, step
from workflows.errors import WorkflowValidationError
from workflows.events import Event, StartEvent, StopEvent
from workflows.resource import Resource, ResourceConfig


class Client:
    """A stand-in for an expensive client; each construction is a new object."""


class Handoff(Event):
    first: object = None


class LLMConfig(BaseModel):
    model: str
    temperature: float = 0.0


def make_shared_client() -> Client:
    return Client()


def make_fresh_client() -> Client:
    return Client()


class SharedClient(Workflow):
    @step
    async def first(self, ev: StartEvent, client: Annotated[Client, Resource(make_shared_client)]) -> Handoff:
        return Handoff(first=client)

    @step
    async def second(self, ev: Handoff, client: Annotated[Client, Resource(make_shared_client)]) -> StopEvent:
        return StopEvent(result=(ev.first, client))


# checklist 71
async def test_cached_resource_is_shared_by_steps_and_runs_of_one_instance_only() -> None:
    workflow = SharedClient()
    first, second = await workflow.run()
    assert isinstance(first, Client)
    assert first is second
    again, _ = await workflow.run()
    assert again is first
    other, _ = await SharedClient().run()
    assert other is not first


# checklist 72
async def test_uncached_resource_is_new_per_invocation_but_shared_within_one() -> None:
    class FreshClient(Workflow):
        @step
        async def first(
            self,
            ev: StartEvent,
            a: Annotated[Client, Resource(make_fresh_client, cache=False)],
            b: Annotated[Client, Resource(make_fresh_client, cache=False)],
        ) -> Handoff:
            assert a is b
            return Handoff(first=a)

        @step
        async def second(
            self, ev: Handoff, client: Annotated[Client, Resource(make_fresh_client, cache=False)]
        ) -> StopEvent:
            return StopEvent(result=(ev.first, client))

    workflow = FreshClient()
    first, second = await workflow.run()
    assert isinstance(first, Client) and isinstance(second, Client)
    assert first is not second
    again, _ = await workflow.run()
    assert again is not first


# checklist 73
async def test_resource_config_injects_the_validated_model_at_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "c.json").write_text(json.dumps({"llm": {"model": "tiny", "temperature": 0.5}}), encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    class Configured(Workflow):
        @step
        async def s(
            self, ev: StartEvent, cfg: Annotated[LLMConfig, ResourceConfig(config_file="c.json", path_selector="llm")]
        ) -> StopEvent:
            return StopEvent(result=cfg)

    cfg = await Configured().run()
    assert cfg == LLMConfig(model="tiny", temperature=0.5)


# checklist 73
def test_missing_config_file_fails_validation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    class Unconfigured(Workflow):
        @step
        async def s(
            self, ev: StartEvent, cfg: Annotated[LLMConfig, ResourceConfig(config_file="missing.json")]
        ) -> StopEvent:
            return StopEvent(result=cfg)

    with pytest.raises(WorkflowValidationError) as info:
        Unconfigured().validate()
    message = str(info.value)
    assert message.startswith("Resource config validation failed:")
    assert "missing.json" in message and "'s'" in message and "'cfg'" in message


# checklist 73
def test_non_json_config_file_is_rejected_at_construction() -> None:
    with pytest.raises(ValueError, match="Only JSON files can be used to load Pydantic-based resources."):
        ResourceConfig(config_file="settings.yaml")


async def test_a_factory_cached_by_one_step_is_built_fresh_for_a_step_that_does_not_cache_it():
    from workflows.events import Event

    built: list[object] = []

    def make() -> object:
        built.append(object())
        return built[-1]

    class Middle(Event):
        pass

    class W(Workflow):
        @step
        async def first(self, ev: StartEvent, shared: Annotated[object, Resource(make)]) -> Middle:
            return Middle(shared=shared)

        @step
        async def second(
            self,
            ev: Middle,
            a: Annotated[object, Resource(make, cache=False)],
            b: Annotated[object, Resource(make, cache=False)],
        ) -> StopEvent:
            return StopEvent(result=(ev.shared, a, b))

    wf = W()
    shared, a, b = await wf.run()
    assert a is b and a is not shared  # one fresh value for the invocation, not the cached one
    shared2, a2, _ = await wf.run()
    assert shared2 is shared and a2 is not a
    assert len(built) == 3
