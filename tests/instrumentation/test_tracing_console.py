"""The console tree printed for each finished run."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from pydantic import BaseModel, Field

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent
from workflows.instrumentation import ConsoleTraceHandler, get_dispatcher

DURATION = re.compile(r"\d+(\.\d+)? (µs|ms|s)")


class MyEvent(Event):
    msg: list[str]


class RunState(BaseModel):
    num_runs: int = Field(default=0)


class MyWorkflow(Workflow):
    @step
    async def start(self, ctx: Context[RunState], ev: StartEvent) -> MyEvent:
        async with ctx.store.edit_state() as state:
            state.num_runs += 1
            return MyEvent(msg=[ev.input_msg] * state.num_runs)

    @step
    async def process(self, ctx: Context[RunState], ev: MyEvent) -> StopEvent:
        return StopEvent(result=f"Processed {len(ev.msg)} times")


class Child(Workflow):
    @step
    async def echo(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=f"child:{ev.x}")


class Parent(Workflow):
    @step
    async def call(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=await Child().run(x="hi"))


class Broken(Workflow):
    @step
    async def explode(self, ev: StartEvent) -> StopEvent:
        raise ValueError("kaboom")


@pytest.fixture
def console(isolated_root: None) -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = ConsoleTraceHandler(out, color=False)
    get_dispatcher().add_handler(handler)
    yield out
    get_dispatcher().remove_handler(handler)


def plain(text: str) -> list[str]:
    """The printed lines with durations and ids replaced, so they can be compared."""
    text = DURATION.sub("<t>", text)
    text = re.sub(r"\(run \w+, session \w+\)", "(ids)", text)
    return text.splitlines()


async def test_run_is_printed_as_a_tree_of_steps_events_and_state(console: io.StringIO) -> None:
    await MyWorkflow().run(input_msg="Hello")
    assert plain(console.getvalue()) == [
        "MyWorkflow.run  <t>  completed  (ids)",
        '├─ emit StartEvent → start  {"input_msg": "Hello"}',
        "├─ start  <t>  ← StartEvent",
        "│  ├─ state.edit  /num_runs = 1",
        '│  └─ emit MyEvent → process  {"msg": ["Hello"]}',
        "├─ process  <t>  ← MyEvent",
        '│  └─ emit StopEvent  {"result": "Processed 1 times"}',
        "└─ result  Processed 1 times",
    ]


async def test_child_run_is_printed_inside_the_calling_step(console: io.StringIO) -> None:
    await Parent().run()
    lines = plain(console.getvalue())
    assert lines[0] == "Parent.run  <t>  completed  (ids)"
    assert "├─ call  <t>  ← StartEvent" in lines
    assert "│  ├─ Child.run  <t>  completed  (ids)" in lines
    assert '│  │  ├─ emit StartEvent → echo  {"x": "hi"}' in lines
    assert sum(line.startswith("Child.run") for line in lines) == 0  # not printed on its own


async def test_failure_is_shown_on_the_step_and_the_run(console: io.StringIO) -> None:
    with pytest.raises(ValueError):
        await Broken().run()
    lines = plain(console.getvalue())
    assert lines[0] == "Broken.run  <t>  failed  (ids)  ValueError: kaboom"
    assert lines[-1] == "└─ explode  <t>  failed  ← StartEvent  ValueError: kaboom"


async def test_long_payloads_are_cut_to_one_line(isolated_root: None) -> None:
    out = io.StringIO()
    handler = ConsoleTraceHandler(out, color=False, width=40)
    get_dispatcher().add_handler(handler)
    try:
        await MyWorkflow().run(input_msg="x" * 200 + "\nsecond line")
    finally:
        get_dispatcher().remove_handler(handler)
    emit_line = next(line for line in out.getvalue().splitlines() if "emit StartEvent" in line)
    assert emit_line.endswith("…")
    assert len(emit_line.split("  ", 1)[1]) <= 40


async def test_colors_only_when_asked(isolated_root: None) -> None:
    out = io.StringIO()
    handler = ConsoleTraceHandler(out, color=True)
    get_dispatcher().add_handler(handler)
    try:
        await MyWorkflow().run(input_msg="x")
    finally:
        get_dispatcher().remove_handler(handler)
    assert "\033[32mcompleted\033[0m" in out.getvalue()
