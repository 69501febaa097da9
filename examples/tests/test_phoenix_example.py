"""``examples/phoenix`` and ``agent.py`` with ``WORKFLOWS_EXPORTERS=phoenix``: the agent's
trace lands in a real Phoenix, whole, with its LLM calls under the steps that made them.

Needs the Phoenix server (``scripts/setup.sh --test`` installs it in ``.venv-phoenix``,
apart from the project's environment) and the Phoenix plugin; skipped without them.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any

import pytest
from example_runner import run_example

pytest.importorskip("workflows_phoenix", reason="the Phoenix plugin is not installed")

from support.phoenix import (
    PhoenixServer,
    get_spans,
    phoenix_command,
    unique_project_name,
    wait_for_spans,
)

PHOENIX = phoenix_command()
if PHOENIX is None:
    pytest.skip("the Phoenix server is not installed (scripts/setup.sh --test)", allow_module_level=True)


def whole_agent_trace(spans: list[dict[str, Any]]) -> bool:
    """Phoenix holds the run's root span, both LLM calls and the parent of every span."""
    ids = {span["context"]["span_id"] for span in spans}
    return (
        any(span["parent_id"] is None for span in spans)
        and all(span["parent_id"] is None or span["parent_id"] in ids for span in spans)
        and sum(span["span_kind"] == "LLM" for span in spans) == 2
    )


def assert_is_the_agent_trace(spans: list[dict[str, Any]]) -> None:
    """One AGENT run whose two LLM calls are children of its call_llm steps, all in its session."""
    by_id = {span["context"]["span_id"]: span for span in spans}
    [root] = [span for span in spans if span["parent_id"] is None]
    assert root["name"] == "WeatherAgent.run" and root["span_kind"] == "AGENT"
    llm_calls = [span for span in spans if span["span_kind"] == "LLM"]
    for call in llm_calls:
        assert by_id[call["parent_id"]]["name"] == "WeatherAgent.call_llm"
        assert call["attributes"]["llm.model_name"] == "scripted-model"
        assert call["attributes"]["llm.token_count.prompt"] > 0
    assert len([span for span in spans if span["name"] == "get_weather"]) == 2
    session = root["attributes"]["session.id"]
    engine_spans = [span for span in spans if span["span_kind"] != "LLM"]
    assert all(span["attributes"]["session.id"] == session for span in engine_spans)


def test_phoenix_example_stores_the_agent_trace_in_a_running_phoenix(phoenix_server: PhoenixServer) -> None:
    output = run_example("phoenix", "--endpoint", phoenix_server.base_url, timeout=180).stdout

    assert "Answer:   Here is the weather you asked for." in output
    url = re.search(r"^    (http://\S+/redirects/traces/([0-9a-f]{32}))$", output, re.MULTILINE)
    assert url is not None and url.group(1).startswith(phoenix_server.base_url)
    spans = get_spans(phoenix_server.base_url, "weather-agent", trace_id=[url.group(2)])
    assert whole_agent_trace(spans)  # the example waited for the whole trace before printing
    assert f"Phoenix stored the trace ({len(spans)} spans)" in output
    assert_is_the_agent_trace(spans)


def test_agent_with_workflows_exporters_sends_the_same_trace_to_phoenix(phoenix_server: PhoenixServer) -> None:
    project = unique_project_name("agent-example")
    env = {
        "WORKFLOWS_EXPORTERS": "phoenix",
        "PHOENIX_COLLECTOR_ENDPOINT": phoenix_server.base_url,
        "PHOENIX_PROJECT_NAME": project,
    }

    output = run_example("agent", env=env, timeout=180).stdout

    [(trace_id, count)] = re.findall(r"^trace ([0-9a-f]{32})  \((\d+) spans", output, re.MULTILINE)
    spans = wait_for_spans(phoenix_server.base_url, project, whole_agent_trace, trace_id=[trace_id])
    assert len(spans) == int(count)  # the very trace the example printed
    assert_is_the_agent_trace(spans)


def test_phoenix_example_starts_its_own_phoenix_and_stops_it() -> None:
    # As with ``pipx install arize-phoenix``: the server is a ``phoenix`` command on PATH,
    # not a package of the example's environment.
    assert PHOENIX is not None
    path = os.pathsep.join([os.path.dirname(PHOENIX[0]), os.environ.get("PATH", "")])
    output = run_example("phoenix", "--exit", env={"PATH": path}, timeout=300).stdout

    assert output.startswith("Starting Phoenix on 127.0.0.1")
    assert re.search(r"Phoenix stored the trace \(\d+ spans\)", output)
    url = re.search(r"http://127\.0\.0\.1:(\d+)/redirects/traces/[0-9a-f]{32}", output)
    assert url is not None
    with socket.socket() as sock:  # stopped on exit: nothing listens on its port any more
        assert sock.connect_ex(("127.0.0.1", int(url.group(1)))) != 0
