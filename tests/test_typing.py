"""The public API is typed: the package and code written against it pass mypy."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

USER_CODE = textwrap.dedent(
    '''
    from pydantic import BaseModel
    from workflows import Context, Workflow, step
    from workflows.events import Event, StartEvent, StopEvent
    from workflows.retry_policy import retry_policy, stop_after_attempt, wait_fixed


    class Progress(Event):
        done: int


    class State(BaseModel):
        runs: int = 0


    class Counter(Workflow):
        @step(retry_policy=retry_policy(wait=wait_fixed(0), stop=stop_after_attempt(2)))
        async def count(self, ctx: Context[State], ev: StartEvent) -> StopEvent:
            async with ctx.store.edit_state() as state:
                state.runs += 1
            ctx.write_event_to_stream(Progress(done=1))
            return StopEvent(result=ev.get("label"))


    async def main() -> None:
        workflow = Counter(timeout=10)
        ctx = Context(workflow)
        handler = workflow.run(ctx=ctx, label="x")
        async for event in handler.stream_events():
            print(event)
        result = await handler
        state = await ctx.store.get_state()
        print(result, handler.run_id, state)
    '''
)


def run_mypy(*targets: str) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--config-file", str(ROOT / "pyproject.toml"), *targets],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_package_type_checks_cleanly():
    result = run_mypy("src/workflows")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_plugins_type_check_cleanly():
    packages = sorted(str(p) for p in (ROOT / "plugins").glob("*/src/*") if (p / "py.typed").exists())
    assert len(packages) >= 4
    result = run_mypy(*packages)
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_written_against_the_public_api_type_checks(tmp_path: Path):
    sample = tmp_path / "user_code.py"
    sample.write_text(USER_CODE)
    result = run_mypy(str(sample))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_repository_passes_the_linter():
    pytest.importorskip("ruff")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
