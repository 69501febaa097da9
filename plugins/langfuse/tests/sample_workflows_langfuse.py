"""Workflows the plugin's tests run: the seed quickstart, a failing step, a step that
succeeds on its second attempt, a parent running a child workflow, and an agent step
that calls an OpenAI-compatible model."""

from __future__ import annotations

import openai
from pydantic import BaseModel, Field

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent
from workflows.retry_policy import retry_policy, stop_after_attempt, wait_fixed


# -- the quickstart of the founding README, unchanged ------------------------------------
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
        data_length = len("".join(ev.msg))
        new_msg = f"Processed {len(ev.msg)} times, data length: {data_length}"
        return StopEvent(result=new_msg)


# -- failures and retries ----------------------------------------------------------------
class PaymentDeclined(Exception):
    pass


class FailingWorkflow(Workflow):
    @step
    async def charge(self, ev: StartEvent) -> StopEvent:
        raise PaymentDeclined(f"card {ev.card} was declined")


class FlakyWorkflow(Workflow):
    """Its step fails on the first attempt and succeeds on the second."""

    attempts = 0

    @step(retry_policy=retry_policy(wait=wait_fixed(0), stop=stop_after_attempt(3)))
    async def fetch(self, ev: StartEvent) -> StopEvent:
        FlakyWorkflow.attempts += 1
        if FlakyWorkflow.attempts == 1:
            raise ConnectionError("upstream reset the connection")
        return StopEvent(result=f"fetched after {FlakyWorkflow.attempts} attempts")


# -- a workflow inside a workflow ----------------------------------------------------------
class Summarize(Workflow):
    @step
    async def summarize(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=ev.text[:12])


class Pipeline(Workflow):
    @step
    async def delegate(self, ev: StartEvent) -> StopEvent:
        summary = await Summarize().run(text=ev.document)
        return StopEvent(result={"summary": summary})


# -- an LLM call -------------------------------------------------------------------------
class AskModel(Workflow):
    """One step that asks a chat model; ``base_url`` points at the scripted server."""

    def __init__(self, base_url: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-test", max_retries=0)

    @step
    async def ask(self, ev: StartEvent) -> StopEvent:
        completion = await self.client.chat.completions.create(
            model="gpt-test",
            temperature=0,
            messages=[
                {"role": "system", "content": "Answer in one word."},
                {"role": "user", "content": ev.question},
            ],
        )
        return StopEvent(result=completion.choices[0].message.content)
