"""A run serialized mid-wait and resumed in a fresh process continues the same trace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from instrumentation.resume_app import Greeter
from instrumentation.tracing_support import Tracing

from workflows.errors import WorkflowCancelledByUser
from workflows.events import InputRequiredEvent

APP = Path(__file__).with_name("resume_app.py")


async def test_resumed_run_in_another_process_continues_the_trace(tracing: Tracing, tmp_path: Path) -> None:
    workflow = Greeter()
    handler = workflow.run()
    async for event in handler.stream_events():
        if isinstance(event, InputRequiredEvent):
            break
    await handler.cancel_run()
    with pytest.raises(WorkflowCancelledByUser):
        await handler
    saved = handler.ctx.to_dict()
    original = tracing.one("Greeter.run")
    assert saved["session_id"] == handler.ctx.session_id

    context_file = tmp_path / "context.json"
    context_file.write_text(json.dumps(saved), encoding="utf-8")
    env = {**os.environ, "WORKFLOWS_TRACING": "false"}  # only the script's own handler
    done = subprocess.run(
        [sys.executable, str(APP), str(context_file)], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[-1] == {"result": "hello ann"}
    spans = {span["name"]: span for span in lines[:-1] if span["name"] != "Greeter.ask"}
    resumed = spans["Greeter.run"]
    trace_id = format(original.context.trace_id, "032x")
    assert resumed["trace_id"] == trace_id
    assert resumed["parent_id"] == format(original.context.span_id, "016x")
    assert resumed["attributes"]["workflow.resumed"] is True
    assert all(span["trace_id"] == trace_id for span in lines[:-1])
    assert {span["attributes"]["session.id"] for span in lines[:-1]} == {handler.ctx.session_id}
    assert resumed["attributes"]["workflow.run.status"] == "completed"
