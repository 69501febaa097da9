"""The stream the store keeps is the stream a local reader of the run sees, event for event."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workflows.events import HumanResponseEvent, InputRequiredEvent
from workflows_server.durable import DurableRuntime
from workflows_server.durable.envelopes import envelope


@pytest.fixture(autouse=True)
def side_effects(tmp_path: Path) -> None:
    os.environ["WORKFLOWS_TEST_LOG"] = str(tmp_path / "log")


async def _compare(tmp_path: Path, workflow_class: type, answer: bool = False, **start: object) -> None:
    runtime = DurableRuntime(f"sqlite:///{tmp_path / 'runs.db'}")
    workflow = workflow_class(runtime=runtime, timeout=None)
    handler = workflow.run(run_id="p", **start)
    local = []
    async for event in handler.stream_events(expose_internal=True):
        local.append(envelope(event))
        if answer and isinstance(event, InputRequiredEvent):
            handler.ctx.send_event(HumanResponseEvent(response="ok"))
    await handler
    stored = [e.envelope for e in runtime.store.stream("p")]
    assert stored == local
    assert stored[-1]["type"] == "StopEvent" and runtime.store.stream("p")[-1].terminal


@pytest.fixture(autouse=True)
def apps_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "apps"))


async def test_streams_match_for_stream_writes_fan_out_and_human_in_the_loop(tmp_path: Path) -> None:
    from durable_app import AskHuman, Streams, TwoSteps

    await _compare(tmp_path / "a", Streams, count=3)
    await _compare(tmp_path / "b", TwoSteps, tag="x")
    await _compare(tmp_path / "c", AskHuman, answer=True, tag="y")
