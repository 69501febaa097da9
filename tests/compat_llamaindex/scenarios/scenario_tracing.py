"""One trace per run with OpenInference's LlamaIndexInstrumentor on, checked in a real Phoenix;
and with llama-index-observability-otel on (in a subprocess, see observability_otel.py).

The outer test (``../test_llamaindex_clients.py``) starts Phoenix and passes its URL in
``WORKFLOWS_TEST_PHOENIX_URL``. The engine's OpenTelemetry handler and the instrumentor
share one tracer provider exporting to Phoenix, as ``phoenix.otel.register()`` would
set up (a handler of its own here rather than the global provider, which would stay
set for the scenarios that run after this one).
"""

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
from conftest import ToolCall, scripted_llm
from llama_index.core.agent.workflow import FunctionAgent
from observability_otel import OneStep, add

from workflows.instrumentation import get_dispatcher
from workflows.instrumentation.otel import OpenTelemetryHandler

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from support.phoenix import wait_for_spans  # noqa: E402

PHOENIX = os.environ.get("WORKFLOWS_TEST_PHOENIX_URL")
needs_phoenix = pytest.mark.skipif(not PHOENIX, reason="needs a Phoenix server (WORKFLOWS_TEST_PHOENIX_URL)")


@pytest.fixture
def traced():
    """A tracer provider exporting to a project of its own in Phoenix, used by this engine
    and by OpenInference's instrumentor; yields the project name."""
    from openinference.instrumentation.llama_index import LlamaIndexInstrumentor
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    project = f"one-trace-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider(resource=Resource({"openinference.project.name": project}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{PHOENIX}/v1/traces")))
    engine = OpenTelemetryHandler(tracer_provider=provider, metrics=False)
    get_dispatcher().add_handler(engine)
    instrumentor = LlamaIndexInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield project
    finally:
        instrumentor.uninstrument()
        get_dispatcher().remove_handler(engine)
        provider.shutdown()


def _by_id(spans):
    return {span["context"]["span_id"]: span for span in spans}


@needs_phoenix
async def test_a_one_step_run_is_one_trace_of_run_step_and_emit_spans(traced):
    assert await OneStep(timeout=10).run() == "done"
    spans = wait_for_spans(PHOENIX, traced, lambda found: any(s["name"] == "OneStep.run" for s in found))
    names = Counter(span["name"] for span in spans)
    assert names["OneStep.run"] == 1 and names["OneStep.step1"] == 1, names
    assert len({span["context"]["trace_id"] for span in spans}) == 1
    # Nothing but this engine's spans: no second copy of the run or the step from the bridge.
    assert set(names) <= {"OneStep.run", "OneStep.step1", "emit StartEvent", "emit StopEvent"}, names


@needs_phoenix
async def test_an_agent_run_is_one_trace_with_llm_and_tool_spans_under_the_steps(traced):
    llm = scripted_llm(ToolCall(name="add", kwargs={"a": 2, "b": 3}), "The sum is 5.")
    agent = FunctionAgent(tools=[add], llm=llm, system_prompt="You add numbers.")
    response = await agent.run(user_msg="What is 2 + 3?")
    assert str(response) == "The sum is 5."

    def complete(found):
        return any(s["name"] == "FunctionAgent.run" for s in found) and any(
            s["name"].endswith("achat") or "chat" in s["name"].lower() for s in found
        )

    spans = wait_for_spans(PHOENIX, traced, complete)
    by_id = _by_id(spans)
    names = Counter(span["name"] for span in spans)
    assert names["FunctionAgent.run"] == 1, names
    assert len({span["context"]["trace_id"] for span in spans}) == 1, names
    steps = {i for i, s in by_id.items() if s["name"].startswith("FunctionAgent.") and s["name"] != "FunctionAgent.run"}
    # every step span is this engine's (one per attempt, each a child of the one run span)
    run_id = next(i for i, s in by_id.items() if s["name"] == "FunctionAgent.run")
    assert steps and all(by_id[i]["parent_id"] == run_id for i in steps), names
    # OpenInference's LLM and tool spans hang under this engine's step spans
    llm_spans = [s for s in spans if s["span_kind"] == "LLM"]
    tool_spans = [s for s in spans if s["span_kind"] == "TOOL" and s["name"] == "FunctionTool.acall"]
    assert llm_spans and tool_spans, names

    def step_above(span):
        while span["parent_id"] is not None:
            if span["parent_id"] in steps:
                return True
            span = by_id[span["parent_id"]]
        return False

    assert all(step_above(s) for s in llm_spans + tool_spans), names


def test_llama_index_observability_otel_gets_one_trace_per_run():
    # No Phoenix needed: the package exports to an in-memory exporter, in a process of its own
    # (it sets the global tracer provider, which this engine then follows too).
    done = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "observability_otel.py")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    spans = [dict(zip(("name", "id", "parent", "trace"), row)) for row in json.loads(done.stdout.strip().splitlines()[-1])["spans"]]
    names = Counter(span["name"] for span in spans)
    assert names["OneStep.run"] == names["OneStep.step1"] == names["FunctionAgent.run"] == 1, names
    assert len({span["trace"] for span in spans}) == 2, names  # one trace per run
    by_id = {span["id"]: span for span in spans}
    steps = {span["id"] for span in spans if span["name"].startswith("FunctionAgent.") and span["name"] != "FunctionAgent.run"}
    llm = [span for span in spans if span["name"].endswith("astream_chat")]
    tool = [span for span in spans if span["name"] == "FunctionTool.acall"]
    assert llm and tool, names
    for span in llm + tool:
        chain = span
        while chain["parent"] is not None and chain["parent"] not in steps:
            chain = by_id[chain["parent"]]
        assert chain["parent"] in steps, f"{span['name']} is not under a step span"


def test_llama_index_events_of_a_step_land_on_its_span_under_observability_otel():
    # As with LlamaIndex Workflows, where they land on the handler's copy of the step span:
    # that copy is not made here (one trace per run), so the engine's step span takes them,
    # also after an LLM call whose nested spans leave another OpenTelemetry span current.
    done = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "observability_otel.py"), "events"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])["events"]
    marks = [(span, attributes) for span, name, attributes in found if "label" in attributes]
    assert [(span, attributes["label"]) for span, attributes in marks] == [
        ("Marking.mark", "before"),
        ("Marking.mark", "after"),
    ], found
    for _, attributes in marks:
        assert attributes["tags.llamaindex.step.input_event"] == "StartEvent"
        assert attributes["tags.llamaindex.run_id"]
