"""llama-index-utils-workflow's five drawing functions on this engine's workflows and runs."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from conftest import scripted_llm
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.utils.workflow import (
    draw_agent_workflow,
    draw_all_possible_flows,
    draw_all_possible_flows_mermaid,
    draw_most_recent_execution,
    draw_most_recent_execution_mermaid,
)

from workflows import Context, Workflow, step
from workflows.events import Event, HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent


class Draft(Event):
    text: str


class Review(Workflow):
    @step
    async def write(self, ev: StartEvent) -> Draft:
        return Draft(text="hello")

    @step
    async def ask(self, ctx: Context, ev: Draft) -> InputRequiredEvent | StopEvent:
        if ev.text == "skip":
            return StopEvent(result="skipped")
        return InputRequiredEvent(prefix="ok?")

    @step
    async def publish(self, ev: HumanResponseEvent) -> StopEvent:
        return StopEvent(result=ev.response)


def test_draw_all_possible_flows(tmp_path: Path):
    out = tmp_path / "flows.html"
    draw_all_possible_flows(Review, filename=str(out))
    html = out.read_text()
    for name in ("write", "ask", "publish", "Draft", "StopEvent", "external_step"):
        assert name in html


def test_draw_all_possible_flows_mermaid(tmp_path: Path):
    diagram = draw_all_possible_flows_mermaid(Review(), filename=str(tmp_path / "flows.mermaid"))
    assert diagram.startswith("flowchart TD")
    assert "step_write" in diagram and "event_Draft" in diagram
    assert "step_write --> event_Draft" in diagram and "event_Draft --> step_ask" in diagram
    assert (tmp_path / "flows.mermaid").read_text() == diagram


def test_draw_agent_workflow(tmp_path: Path):
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    planner = FunctionAgent(name="planner", description="p", llm=scripted_llm(), can_handoff_to=["calc"])
    calc = FunctionAgent(name="calc", description="c", llm=scripted_llm(), tools=[add])
    flow = AgentWorkflow(agents=[planner, calc], root_agent="planner")
    out = tmp_path / "agents.html"
    assert draw_agent_workflow(flow, filename=str(out)) == str(out)
    html = out.read_text()
    assert "planner" in html and "calc" in html and "calc_add" in html


async def _finished_review():
    handler = Review().run()
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            handler.ctx.send_event(HumanResponseEvent(response="published"))
    assert await handler == "published"
    return handler


async def test_draw_most_recent_execution(tmp_path: Path):
    handler = await _finished_review()
    out = tmp_path / "run.html"
    draw_most_recent_execution(handler, filename=str(out))
    html = out.read_text()
    for label in ("write#1", "ask#1", "publish#1", "HumanResponseEvent", "external_step"):
        assert label in html
    # A well-formed page whose graph data is consistent: the body's tags balance, the node and
    # edge data sets are valid JSON, and every edge joins two drawn nodes.
    assert _unbalanced_body_tags(html) == []
    nodes = json.loads(re.search(r"nodes = new vis\.DataSet\((\[.*?\])\);", html).group(1))
    edges = json.loads(re.search(r"edges = new vis\.DataSet\((\[.*?\])\);", html).group(1))
    ids = {node["id"] for node in nodes}
    assert len(ids) == len(nodes) == 9 and all(edge["from"] in ids and edge["to"] in ids for edge in edges)


def _unbalanced_body_tags(page: str) -> list[str]:
    class Checker(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.open: list[str] = []
            self.problems: list[str] = []

        def handle_starttag(self, tag: str, attrs: object) -> None:
            if tag not in ("meta", "link", "br", "img", "input", "hr"):
                self.open.append(tag)

        def handle_endtag(self, tag: str) -> None:
            if self.open and self.open[-1] == tag:
                self.open.pop()
            else:
                self.problems.append(f"</{tag}> at {self.getpos()} closes {self.open[-1:] or 'nothing'}")

    checker = Checker()
    checker.feed(page[page.index("<body>"):page.index("</html>")])
    return checker.problems + [f"<{tag}> left open" for tag in checker.open if tag != "body"]


async def test_draw_most_recent_execution_mermaid(tmp_path: Path):
    handler = await _finished_review()
    diagram = draw_most_recent_execution_mermaid(handler, filename=str(tmp_path / "run.mermaid"))
    lines = set(diagram.splitlines())
    # start event from outside -> write -> Draft -> ask; the human's answer from outside -> publish -> StopEvent
    assert "    external_step --> event_StartEvent_0" in lines
    assert "    event_StartEvent_0 --> step_write_1" in lines
    assert "    step_write_1 --> event_Draft_1" in lines
    assert "    event_Draft_1 --> step_ask_1" in lines
    assert any(line.startswith("    external_step --> event_HumanResponseEvent_") for line in lines)
    assert any(line.startswith("    step_publish_1 --> event_StopEvent_") for line in lines)
