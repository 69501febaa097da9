"""A function-calling agent built with the real ``openai`` client, and its trace.

What it shows:
- an agent as a workflow: call the LLM; run the tools it asks for, in parallel; give it
  the results and call it again; until it answers;
- the trace of that run, as a backend receives it: the agent run, each step, each tool
  call, and each LLM call (model, messages, token counts) nested under the step that
  made it. The LLM spans come from ``openinference-instrumentation-openai``; the
  engine's spans and theirs form one tree because the engine makes each step's span
  the current span while the step runs.

By default the agent talks to a scripted OpenAI-compatible server that the example
starts on 127.0.0.1 (``fake_model.py``), so it needs no key and no network.

Run:
    python examples/agent.py
    python examples/agent.py "Is it warmer in Lisbon or in Oslo?"
    OPENAI_API_KEY=sk-... python examples/agent.py --model gpt-4o-mini
    WORKFLOWS_EXPORTERS=phoenix python examples/agent.py    # also send the trace to Phoenix

Needs: pip install "otel-workflows[examples]"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

from fake_model import MODEL as OFFLINE_MODEL
from fake_model import fake_model_server
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionToolParam
from openinference.instrumentation.openai import OpenAIInstrumentor
from pydantic import BaseModel, Field
from trace_tree import record_spans

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent
from workflows.instrumentation import get_dispatcher

DEFAULT_QUESTION = "What's the weather like in Paris and in Tokyo right now?"
SYSTEM_PROMPT = (
    "You are a weather assistant. Call get_weather for every city the user asks about, "
    "all at once, then answer in one or two sentences."
)

dispatcher = get_dispatcher(__name__)

# -- the tools ---------------------------------------------------------------------------

WEATHER = {"paris": "18 °C, light rain", "tokyo": "24 °C, sunny", "lisbon": "21 °C, clear", "oslo": "9 °C, windy"}


@dispatcher.span  # each call becomes a span, with its arguments and result
async def get_weather(city: str) -> str:
    """The current weather in a city (canned data, so that the example runs offline)."""
    await asyncio.sleep(0.05)  # stands for a weather API's latency
    return f"{city}: {WEATHER.get(city.lower(), 'no data')}."


TOOLS = {"get_weather": get_weather}
TOOL_SCHEMAS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]

# -- the agent ---------------------------------------------------------------------------


class Think(Event):
    """Time to ask the model what to do next."""


class ToolCall(Event):
    call_id: str
    name: str
    arguments: str  # JSON, as the model wrote it


class ToolResult(Event):
    call_id: str
    content: str


class AgentState(BaseModel):
    messages: list[dict[str, Any]] = Field(default_factory=list)
    pending_tool_calls: int = 0
    llm_calls: int = 0


class WeatherAgent(Workflow):
    """Answers questions about the weather, calling ``get_weather`` as often as it needs."""

    is_agent = True  # its runs are AGENT spans in Phoenix and Langfuse

    def __init__(self, llm: AsyncOpenAI, model: str, max_llm_calls: int = 5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.llm = llm
        self.model = model
        self.max_llm_calls = max_llm_calls

    @step
    async def start(self, ctx: Context[AgentState], ev: StartEvent) -> Think:
        async with ctx.store.edit_state() as state:
            state.messages = [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": ev.question},
            ]
        return Think()

    @step
    async def call_llm(self, ctx: Context[AgentState], ev: Think) -> ToolCall | StopEvent | None:
        state = await ctx.store.get_state()
        if state.llm_calls == self.max_llm_calls:
            return StopEvent(result=f"(no answer after {self.max_llm_calls} model calls)")
        response = await self.llm.chat.completions.create(
            model=self.model,
            messages=state.messages,  # type: ignore[arg-type]  # plain dicts: the state stays JSON
            tools=TOOL_SCHEMAS,
        )
        message = response.choices[0].message
        tool_calls = [
            ToolCall(call_id=call.id, name=call.function.name, arguments=call.function.arguments)
            for call in message.tool_calls or []
            if call.type == "function"
        ]
        async with ctx.store.edit_state() as state:
            state.messages.append(message.model_dump(exclude_none=True))
            state.pending_tool_calls = len(tool_calls)
            state.llm_calls += 1
        if not tool_calls:
            return StopEvent(result=message.content)
        for tool_call in tool_calls:  # each goes to its own call_tool worker: they run in parallel
            ctx.send_event(tool_call)
        return None

    @step(num_workers=8)
    async def call_tool(self, ev: ToolCall) -> ToolResult:
        tool = TOOLS.get(ev.name)
        try:
            content = await tool(**json.loads(ev.arguments)) if tool else f"error: no tool named {ev.name}"
        except (TypeError, ValueError) as exc:  # arguments the model got wrong: tell it
            content = f"error: {exc}"
        return ToolResult(call_id=ev.call_id, content=content)

    @step
    async def gather_results(self, ctx: Context[AgentState], ev: ToolResult) -> Think | None:
        state = await ctx.store.get_state()
        results = ctx.collect_events(ev, [ToolResult] * state.pending_tool_calls)
        if results is None:  # some tools are still running
            return None
        async with ctx.store.edit_state() as state:
            state.messages.extend(
                {"role": "tool", "tool_call_id": r.call_id, "content": r.content} for r in results
            )
        return Think()


async def ask(question: str, *, model: str, base_url: str | None = None, api_key: str | None = None) -> str:
    """Run the agent once and return its answer (``base_url``/``api_key`` default to
    the ``openai`` client's own: ``OPENAI_BASE_URL``, ``OPENAI_API_KEY``)."""
    async with AsyncOpenAI(base_url=base_url, api_key=api_key) as llm:
        return str(await WeatherAgent(llm, model, timeout=120).run(question=question))


def ask_offline(question: str) -> str:
    """Run the agent against the scripted model, started for this one question."""
    with fake_model_server() as server:
        return asyncio.run(ask(question, model=OFFLINE_MODEL, base_url=server.base_url, api_key="offline"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default=DEFAULT_QUESTION)
    parser.add_argument("--model", help="a real model (needs OPENAI_API_KEY); default: the offline scripted model")
    args = parser.parse_args()
    if args.model and not os.environ.get("OPENAI_API_KEY"):
        parser.error("--model talks to a real provider: set OPENAI_API_KEY (and OPENAI_BASE_URL if not OpenAI's)")

    provider, tree = record_spans()
    OpenAIInstrumentor().instrument(tracer_provider=provider)  # each chat completion becomes an LLM span
    if args.model:
        answer = asyncio.run(ask(args.question, model=args.model))
    else:
        answer = ask_offline(args.question)

    print(f"Question: {args.question}")
    print(f"Answer:   {answer}")
    if not args.model:
        print("          (offline: a scripted model on 127.0.0.1; use --model and OPENAI_API_KEY for a real one)")
    print()
    print(tree.render())
    print()
    print(
        "See this trace in Phoenix: python examples/phoenix  |  in Langfuse: "
        "LANGFUSE_PUBLIC_KEY=... LANGFUSE_SECRET_KEY=... WORKFLOWS_EXPORTERS=langfuse python examples/agent.py"
    )


if __name__ == "__main__":
    main()
