"""The static graph of a workflow, and its Mermaid and HTML drawings."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflows import Workflow, step
from workflows.events import Event, HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent
from workflows.representation import (
    WorkflowEventNode,
    draw_html,
    draw_mermaid,
    get_workflow_representation,
)


class A(Event):
    text: str = ""


class Pipeline(Workflow):
    """Asks a human, then finishes."""

    @step
    async def s(self, ev: StartEvent) -> A | InputRequiredEvent:
        return A()

    @step
    async def t(self, ev: A | HumanResponseEvent) -> StopEvent:
        return StopEvent()


def edges(graph):
    return {(e.source, e.target, e.label) for e in graph.edges}


def test_graph_has_step_and_event_nodes_with_producers():  # checklist 77
    graph = get_workflow_representation(Pipeline)
    kinds = {n.id: n.node_type for n in graph.nodes}
    assert kinds["s"] == kinds["t"] == "step"
    assert kinds["A"] == kinds["StartEvent"] == kinds["StopEvent"] == "event"
    assert kinds["external_step"] == "external"
    a = next(n for n in graph.nodes if n.id == "A")
    assert isinstance(a, WorkflowEventNode) and a.produced_by == ["s"]
    assert graph.name == "Pipeline" and graph.description == "Asks a human, then finishes."


def test_graph_edges_follow_events_between_steps():  # checklist 77
    graph = get_workflow_representation(Pipeline())
    assert {
        ("StartEvent", "s", None),
        ("s", "A", None),
        ("A", "t", None),
        ("t", "StopEvent", None),
        ("InputRequiredEvent", "external_step", None),
        ("external_step", "HumanResponseEvent", None),
    } <= edges(graph)


def test_filtering_events_links_steps_labelled_by_the_event():  # checklist 77
    graph = get_workflow_representation(Pipeline).filter_by_node_type("event")
    assert ("s", "t", "A") in edges(graph)
    assert all(n.node_type != "event" for n in graph.nodes)


def test_truncated_label_marks_the_cut():
    node = next(n for n in get_workflow_representation(Pipeline).nodes if n.id == "InputRequiredEvent")
    assert node.truncated_label(6) == "Input*"
    assert node.truncated_label(None) == "InputRequiredEvent"


def test_mermaid_drawing_lists_nodes_and_edges(tmp_path: Path):
    out = tmp_path / "flow.mermaid"
    text = draw_mermaid(Pipeline, filename=str(out))
    assert text.startswith("flowchart TD")
    assert 'step_s["s"]' in text and 'event_A(["A"])' in text
    assert "event_A --> step_t" in text
    assert out.read_text() == text


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed")
def test_html_drawing_renders_every_node_in_a_real_browser(tmp_path: Path):
    playwright = pytest.importorskip("playwright.sync_api")
    page_file = tmp_path / "flow.html"
    draw_html(Pipeline, str(page_file))
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri())
            ids = page.eval_on_selector_all("g.node", "els => els.map(e => e.dataset.id)")
            boxes = page.eval_on_selector_all("g.node rect", "els => els.map(e => e.getBoundingClientRect().width)")
            assert page.title() == "Pipeline"
        finally:
            browser.close()
    assert set(ids) == {n.id for n in get_workflow_representation(Pipeline).nodes}
    assert all(width > 0 for width in boxes)
