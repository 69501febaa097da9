"""An LLM call made inside a step, through the real ``openai`` client and its OpenInference
instrumentation (turned on by ``register(auto_instrument=True)``), shows in Phoenix as an
LLM span under that step, with its token counts."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
import workflows_phoenix
from openinference.instrumentation.openai import OpenAIInstrumentor
from support.phoenix import PhoenixProject, PhoenixServer, unique_project_name

from workflows import Workflow, step
from workflows.events import StartEvent, StopEvent
from workflows.testing.openai_server import ScriptedOpenAIServer, ScriptedReply


class TravelAgent(Workflow):
    def __init__(self, llm: openai.AsyncOpenAI) -> None:
        super().__init__()
        self.llm = llm

    @step
    async def ask(self, ev: StartEvent) -> StopEvent:
        completion = await self.llm.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": f"One sight in {ev.city}?"}],
        )
        return StopEvent(result=completion.choices[0].message.content)


@pytest.fixture
def instrumented_project(phoenix_server: PhoenixServer) -> Iterator[PhoenixProject]:
    name = unique_project_name("llm")
    provider = workflows_phoenix.register(
        name, endpoint=phoenix_server.base_url, set_global=False, auto_instrument=True
    )
    try:
        yield PhoenixProject(phoenix_server, name, provider)
    finally:
        # instrumentors are process-wide: leave the openai client as other tests expect it
        OpenAIInstrumentor().uninstrument()
        provider.shutdown()


async def test_llm_call_nests_under_its_step_with_token_counts(
    instrumented_project: PhoenixProject, openai_server: ScriptedOpenAIServer
) -> None:
    openai_server.add_reply(ScriptedReply.text("The Belem Tower.", prompt_tokens=12, completion_tokens=5))
    llm = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="test-key", max_retries=0)

    assert await TravelAgent(llm).run(city="Lisbon") == "The Belem Tower."

    spans = instrumented_project.spans(5)  # run, emit StartEvent, ask, LLM call, emit StopEvent

    [llm_span] = [s for s in spans if s["span_kind"] == "LLM"]
    ask = next(s for s in spans if s["name"] == "TravelAgent.ask")
    assert llm_span["parent_id"] == ask["context"]["span_id"]
    assert llm_span["context"]["trace_id"] == ask["context"]["trace_id"]
    attributes = llm_span["attributes"]
    assert attributes["llm.model_name"] == "gpt-test"
    assert attributes["llm.token_count.prompt"] == 12
    assert attributes["llm.token_count.completion"] == 5
    assert attributes["llm.token_count.total"] == 17
    assert attributes["llm.input_messages.0.message.content"] == "One sight in Lisbon?"
    assert attributes["llm.output_messages.0.message.content"] == "The Belem Tower."
    # Phoenix sums the tokens of the trace's LLM spans onto the trace
    [trace] = instrumented_project.traces(1)
    assert trace["token_count_total"] == 17
    assert openai_server.chat_requests[0]["model"] == "gpt-test"
