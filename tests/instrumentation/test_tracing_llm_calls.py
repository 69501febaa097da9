"""An LLM call made inside a step (real openai client + OpenInference) nests under that step."""

from __future__ import annotations

import pytest
from instrumentation.tracing_support import Tracing

from workflows import Workflow, step
from workflows.events import StartEvent, StopEvent
from workflows.testing.openai_server import ScriptedOpenAIServer, ScriptedReply

openai = pytest.importorskip("openai")
instrumentor_module = pytest.importorskip("openinference.instrumentation.openai")


class Ask(Workflow):
    def __init__(self, base_url: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.client = openai.AsyncOpenAI(base_url=base_url, api_key="test", max_retries=0)

    @step
    async def ask(self, ev: StartEvent) -> StopEvent:
        reply = await self.client.chat.completions.create(
            model="scripted-model", messages=[{"role": "user", "content": ev.question}]
        )
        return StopEvent(result=reply.choices[0].message.content)


async def test_llm_span_is_a_child_of_its_step_and_joins_the_session(
    tracing: Tracing, openai_server: ScriptedOpenAIServer
) -> None:
    openai_server.add_reply(ScriptedReply.text("Paris."))
    instrumentor = instrumentor_module.OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tracing.provider)
    try:
        workflow = Ask(openai_server.base_url)
        handler = workflow.run(question="Capital of France?")
        assert await handler == "Paris."
    finally:
        instrumentor.uninstrument()
    step_span = tracing.one("Ask.ask")
    llm_spans = [s for s in tracing.spans() if s.attributes.get("openinference.span.kind") == "LLM"]
    assert len(llm_spans) == 1
    llm = llm_spans[0]
    assert llm.parent is not None and llm.parent.span_id == step_span.context.span_id
    assert llm.attributes.get("session.id") == step_span.attributes["session.id"]
    assert llm.attributes.get("llm.token_count.total", 0) > 0
