"""A travel-weather agent served by the workflow server, to watch and drive in its debugger.

What it shows (open http://127.0.0.1:8080 once it runs):
- ``travel_assistant``: an agent that asks an LLM which cities to look up (a tool
  call), looks their weather up with a flaky service (its first attempt times out and
  the step is retried after a back-off), asks the LLM to write the answer, and waits
  for a person to approve it before it is sent (a run waiting for a human);
- ``weather_agent``: the function-calling agent of ``agent.py`` (parallel tool calls,
  a fan-in with ``ctx.collect_events``).

Both talk to the scripted OpenAI-compatible model of ``fake_model.py``, started on
127.0.0.1 by this file, through the real ``openai`` client, instrumented by
OpenInference: the debugger shows each LLM call's tokens and answer under its step.

Run:
    workflows-server examples/agent_server.py                # then open http://127.0.0.1:8080
    WORKFLOWS_SERVER_PHOENIX_URL=http://localhost:6006 WORKFLOWS_EXPORTERS=phoenix \\
        workflows-server examples/agent_server.py             # and link each run to its trace in Phoenix

Needs: pip install "otel-workflows[examples]" otel-workflows-server
"""

from __future__ import annotations

import asyncio
import atexit
import json
from typing import Any

from agent import WeatherAgent, get_weather
from fake_model import MODEL, respond
from openai import AsyncOpenAI
from openinference.instrumentation.openai import OpenAIInstrumentor
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel, Field

from workflows import Context, Workflow, step
from workflows.events import Event, HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent
from workflows.retry_policy import retry_policy, stop_after_attempt, wait_fixed
from workflows.testing.openai_server import ScriptedOpenAIServer
from workflows_server import WorkflowServer

# The scripted model, on a free loopback port for as long as the server runs.
model_server = ScriptedOpenAIServer(responder=respond, models=[MODEL]).start()
atexit.register(model_server.stop)

# LLM calls become spans (OpenInference), which the debugger reads for tokens and answers.
# An exporter plugin (WORKFLOWS_EXPORTERS=phoenix, ...) installs its own SDK provider instead.
if not hasattr(trace.get_tracer_provider(), "add_span_processor"):
    trace.set_tracer_provider(TracerProvider())
OpenAIInstrumentor().instrument()

SYSTEM_PROMPT = "You are a travel assistant. Look up the weather of every city the traveller names, then answer briefly."


class Lookup(Event):
    """The cities the model asked to look up."""

    cities: list[str]
    call_ids: list[str]


class Draft(Event):
    """The weather is known: time to write the answer."""


class Review(Event):
    answer: str


class TripState(BaseModel):
    question: str = ""
    messages: list[dict[str, Any]] = Field(default_factory=list)
    cities: list[str] = Field(default_factory=list)
    weather: dict[str, str] = Field(default_factory=dict)
    draft: str = ""
    approved: bool | None = None


class WeatherServiceTimeout(TimeoutError):
    """The weather service did not answer in time."""


class TravelAssistant(Workflow):
    """Answers a traveller's weather question; a person approves each answer before it is sent."""

    is_agent = True

    def __init__(self, llm: AsyncOpenAI, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.llm = llm

    @step
    async def plan(self, ctx: Context[TripState], ev: StartEvent) -> Lookup | StopEvent:
        question = str(ev.get("question", "") or "What's the weather in Paris?")
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]
        response = await self.llm.chat.completions.create(
            model=MODEL, messages=messages,  # type: ignore[arg-type]
            tools=[{"type": "function", "function": {
                "name": "get_weather", "description": "The current weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            }}],
        )
        message = response.choices[0].message
        calls = [c for c in message.tool_calls or [] if c.type == "function"]
        cities = [json.loads(c.function.arguments)["city"] for c in calls]
        async with ctx.store.edit_state() as state:
            state.question = question
            state.messages = [*messages, message.model_dump(exclude_none=True)]
            state.cities = cities
        if not cities:
            return StopEvent(result=message.content)
        return Lookup(cities=cities, call_ids=[c.id for c in calls])

    @step(retry_policy=retry_policy(wait=wait_fixed(0.5), stop=stop_after_attempt(3)))
    async def lookup(self, ctx: Context[TripState], ev: Lookup) -> Draft:
        if ctx.retry_info().retry_number == 0:
            # The weather service is flaky: its first answer always comes too late.
            await asyncio.sleep(0.05)
            raise WeatherServiceTimeout(f"weather service did not answer for {', '.join(ev.cities)} within 50 ms")
        reports = [await get_weather(city) for city in ev.cities]
        # The service is slow, even when it answers: this is the step the debugger marks as
        # the slowest, well above what the two LLM calls take on a busy machine.
        await asyncio.sleep(1.0)
        async with ctx.store.edit_state() as state:
            state.weather = {city: report for city, report in zip(ev.cities, reports)}
            state.messages.extend(
                {"role": "tool", "tool_call_id": call_id, "content": report}
                for call_id, report in zip(ev.call_ids, reports)
            )
        return Draft()

    @step
    async def draft(self, ctx: Context[TripState], ev: Draft) -> Review:
        state = await ctx.store.get_state()
        response = await self.llm.chat.completions.create(model=MODEL, messages=state.messages)  # type: ignore[arg-type]
        answer = response.choices[0].message.content or ""
        await ctx.store.set("draft", answer)
        return Review(answer=answer)

    @step
    async def review(self, ctx: Context[TripState], ev: Review) -> StopEvent:
        reply = await ctx.wait_for_event(
            HumanResponseEvent,
            waiter_event=InputRequiredEvent(prefix=f"Send this answer to the traveller? (yes / no)\n\n{ev.answer}"),
            timeout=None,
        )
        approved = reply.response.strip().lower() in ("yes", "y", "ok", "send")
        await ctx.store.set("approved", approved)
        return StopEvent(result=ev.answer if approved else "(the reviewer withheld the answer)")


llm = AsyncOpenAI(base_url=model_server.base_url, api_key="offline")
server = WorkflowServer()
server.add_workflow("travel_assistant", TravelAssistant(llm, timeout=None), additional_events=[HumanResponseEvent])
server.add_workflow("weather_agent", WeatherAgent(llm, MODEL, timeout=120))
